"""Fixtures shared by the simulator's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def sumo_cache(tmp_path_factory):
    """A cache of generated SUMO files (networks, routes) for one test module only: ``$MTWIN_SUMO_CACHE`` is set
    for the module's tests and restored after them. A module uses it with
    ``pytestmark = pytest.mark.usefixtures("sumo_cache")``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MTWIN_SUMO_CACHE", str(tmp_path_factory.mktemp("sumo_cache")))
        yield
