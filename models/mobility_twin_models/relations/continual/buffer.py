"""A bounded replay buffer: reservoir sampling over everything seen (Vitter's algorithm R)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Generic, TypeVar

from mobility_twin_core.checks import check_int_at_least

T = TypeVar("T")


class ReservoirBuffer(Generic[T]):
    """Keeps at most ``capacity`` items; after ``n`` additions every item seen is in it with probability
    ``capacity / n``, whatever the order (so old tasks keep their share as new ones arrive).

    Args:
        capacity: the most items held (>= 1).
        seed: seed of the replacement and sampling draws.
        nbytes: optional function giving an item's size in bytes, for :attr:`nbytes`.
    """

    def __init__(self, capacity: int, *, seed: int = 0, nbytes: Callable[[T], int] | None = None) -> None:
        check_int_at_least("capacity", capacity, 1)
        self.capacity = capacity
        self.items: list[T] = []
        self.seen = 0
        self._rng = random.Random(seed)
        self._nbytes = nbytes

    def __len__(self) -> int:
        return len(self.items)

    def add(self, item: T) -> None:
        self.seen += 1
        if len(self.items) < self.capacity:
            self.items.append(item)
            return
        j = self._rng.randrange(self.seen)
        if j < self.capacity:
            self.items[j] = item

    def sample(self, n: int) -> list[T]:
        """Up to ``n`` distinct items, uniformly."""
        if n <= 0 or not self.items:
            return []
        return self._rng.sample(self.items, min(n, len(self.items)))

    @property
    def nbytes(self) -> int:
        if self._nbytes is None:
            return 0
        return sum(self._nbytes(item) for item in self.items)

    def state_dict(self) -> dict:
        return {"capacity": self.capacity, "items": list(self.items), "seen": self.seen,
                "rng": self._rng.getstate()}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"buffer state has capacity {state['capacity']}, this buffer {self.capacity}")
        self.items = list(state["items"])
        self.seen = int(state["seen"])
        self._rng.setstate(state["rng"])
