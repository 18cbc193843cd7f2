"""Shared by the placement tests: one torch thread, and a tiny hand-computable instance."""

from __future__ import annotations

import numpy as np
import pytest

from mobility_twin_models.placement import Instance, Servers, SystemConfig


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny networks: one thread is faster, and the machine is shared (the default would use every core)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_system() -> SystemConfig:
    """Round numbers: b = 80 Mbps = 10 MB/s, gamma 0.5, lambda 100 MB*m/s, delta 0.5 Ginstr/MB."""
    return SystemConfig(
        n_edge=1, cloud_freq_ghz=4.0, bandwidth_mbps=80.0, gamma=0.5, lam_mb_m_per_s=100.0,
        delta_ginstr_per_mb=0.5, theta_cloud_mj=0.1, theta_edge_mj=0.2, e_t_cloud_mj_per_mb=0.3,
        e_t_edge_mj_per_mb=0.4,
    )


@pytest.fixture
def tiny_instance() -> Instance:
    """One edge server at the origin (2 GHz), the cloud (4 GHz); twin 0 = devices 0, 1; twin 1 = device 2.

    Device distances to the edge server: 5 m, 10 m, 10 m.
    """
    servers = Servers(np.array([[0.0, 0.0]]), np.array([2.0]), 4.0)
    return Instance(np.array([10.0, 20.0, 4.0]), np.array([[3.0, 4.0], [0.0, 10.0], [6.0, 8.0]]),
                    np.array([0, 0, 1]), 2, servers)
