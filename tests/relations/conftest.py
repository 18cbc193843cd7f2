"""Hand-made twin snapshots for the relation tests."""

from __future__ import annotations

import numpy as np
import pytest

from mobility_twin_models.relations import GraphConfig, TwinSnapshot


def make_snapshot(t: float, vehicles: dict[str, tuple[float, float, float, float]],
                  servers: dict[str, tuple[float, float]] | None = None, *, coverage: float = 200.0,
                  rsus: dict[str, tuple[float, float]] | None = None) -> TwinSnapshot:
    """vehicles: id -> (x, y, vx, vy); servers: id -> (x, y); rsus: id -> (x, y)."""
    servers = servers if servers is not None else {"s0": (0.0, 0.0), "s1": (300.0, 0.0)}
    rsus = rsus if rsus is not None else {"r0": (290.0, 10.0)}
    v = np.asarray(list(vehicles.values()), dtype=float).reshape(-1, 4)
    s = np.asarray(list(servers.values()), dtype=float).reshape(-1, 2)
    r = np.asarray(list(rsus.values()), dtype=float).reshape(-1, 2)
    return TwinSnapshot(
        t=t, vehicle_ids=np.asarray(list(vehicles), dtype=object), vehicle_xy=v[:, :2], vehicle_vel=v[:, 2:],
        server_ids=np.asarray(list(servers), dtype=object), server_xy=s,
        server_coverage_m=np.full(len(s), coverage), server_capacity_ghz=np.full(len(s), 2.0),
        rsu_ids=np.asarray(list(rsus), dtype=object), rsu_xy=r,
    )


@pytest.fixture
def config() -> GraphConfig:
    return GraphConfig(vehicle_radius_m=50.0, candidate_radius_m=400.0, horizon_s=30.0, load_lags=3)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The models are small: one thread is as fast, and does not fight other jobs for the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
