"""Base stations with edge servers: layout, capacities, twin hosting, candidate sets.

A :class:`Network` is drawn once from a seed and kept across journeys (the city's deployment does not
change between two users' trips); journeys draw their own load, deviations, tasks and users.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from mobility_twin_core import ServerSet
from mobility_twin_models.offloading.config import NetworkConfig, TwinConfig


@dataclass(frozen=True, eq=False)
class Network:
    """``S`` stations: position (m), total CPU frequency ``F_i`` (Hz), twin bias ``b_i`` (Hz), twin host.

    Attributes:
        xy: (S, 2) positions in the network square.
        capacity_hz: (S,) total frequency ``F_i``.
        twin_bias_hz: (S,) the systematic deviation ``b_i`` of each server's twin (:class:`TwinConfig`).
        twin_host: (S,) index of the server that hosts the twin of each server.
        background_mean: (S,) mean background utilisation ``u_bar_i`` (:class:`LoadConfig`), set by the
            environment that owns the network.
    """

    config: NetworkConfig
    xy: np.ndarray
    capacity_hz: np.ndarray
    twin_bias_hz: np.ndarray
    twin_host: np.ndarray
    background_mean: np.ndarray

    @property
    def n_servers(self) -> int:
        return len(self.xy)

    @property
    def ids(self) -> list[str]:
        return [f"edge_{i}" for i in range(self.n_servers)]

    @cached_property
    def servers(self) -> ServerSet:
        """The stations as the twin model's :class:`~mobility_twin_core.ServerSet` (association, nearest)."""
        return ServerSet.from_arrays(self.ids, self.xy, self.config.coverage_radius_m, self.capacity_hz)

    def nearest(self, xy: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances (m) and indices of the ``k`` nearest servers of each point, nearest first: (..., k)."""
        return self.servers.nearest(xy, k)


def station_positions(config: NetworkConfig, rng: np.random.Generator) -> np.ndarray:
    """(S, 2) station positions in [0, side]^2: a centred square lattice, or uniform at random."""
    n = config.n_stations
    if config.layout == "grid":
        per_side = round(np.sqrt(n))
        spacing = config.side_m / per_side
        axis = (np.arange(per_side) + 0.5) * spacing
        gx, gy = np.meshgrid(axis, axis, indexing="xy")
        return np.column_stack([gx.ravel(), gy.ravel()])
    return rng.uniform(0.0, config.side_m, size=(n, 2))


def twin_hosts(config: NetworkConfig, xy: np.ndarray, capacity_hz: np.ndarray) -> np.ndarray:
    """For each server, the most capable server of its ``dt_block_m`` block (which hosts its twin)."""
    block = np.floor(xy / config.dt_block_m).astype(np.int64)
    key = block[:, 0] * 1_000_003 + block[:, 1]
    host = np.empty(len(xy), dtype=np.int64)
    for k in np.unique(key):
        members = np.flatnonzero(key == k)
        host[members] = members[np.argmax(capacity_hz[members])]
    return host


def build_network(config: NetworkConfig, twin: TwinConfig, background_mean: tuple[float, float],
                  seed: int) -> Network:
    """Draw a deployment: stations, ``F_i ~ U(server_freq_hz)``, twin biases, hosts, mean utilisations."""
    rng = np.random.default_rng([seed, 0x5EB])
    xy = station_positions(config, rng)
    s = len(xy)
    capacity = rng.uniform(*config.server_freq_hz, size=s)
    bias = twin.deviation_mean_hz + twin.deviation_spread_hz * rng.standard_normal(s)
    u_bar = rng.uniform(*background_mean, size=s)
    return Network(config, xy, capacity, bias, twin_hosts(config, xy, capacity), u_bar)
