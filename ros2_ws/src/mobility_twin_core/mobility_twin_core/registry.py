"""Factories registered by name: how the stack's extension points (offloading policies, placement solvers) are
filled, so that a new one is added by registration, not by editing the code that picks it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


class Registry(dict):
    """A dict of name -> factory; :meth:`register` is the decorator that adds one."""

    def register(self, name: str) -> Callable[[F], F]:
        """A decorator registering the factory it decorates under ``name`` (and returning it unchanged)."""
        def add(factory: F) -> F:
            self[name] = factory
            return factory

        return add
