"""Problem instances: the servers (fixed for an environment) and the devices with their twins (drawn per instance).

Host indices: ``0 .. S-1`` are the edge servers, ``S`` is the cloud (the paper's ``s = S + 1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobility_twin_models.placement.config import ScenarioConfig, SystemConfig
from mobility_twin_models.placement.errors import PlacementError


@dataclass(frozen=True)
class Servers:
    """The S edge servers and the cloud.

    Attributes:
        edge_xy_m: (S, 2) edge-server positions L_s, metres.
        edge_freq_ghz: (S,) f_e^s, GHz.
        cloud_freq_ghz: f_c, GHz.
        ids: host names, S edge servers then the cloud (default ``edge_0 .. edge_{S-1}``, ``cloud``).
    """

    edge_xy_m: np.ndarray
    edge_freq_ghz: np.ndarray
    cloud_freq_ghz: float
    ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        xy = np.asarray(self.edge_xy_m, dtype=np.float64)
        freq = np.asarray(self.edge_freq_ghz, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] < 1:
            raise PlacementError(f"edge_xy_m must have shape (S, 2) with S >= 1, got {xy.shape}")
        if freq.shape != (xy.shape[0],):
            raise PlacementError(f"edge_freq_ghz must have shape ({xy.shape[0]},), got {freq.shape}")
        if not np.all(freq > 0) or not self.cloud_freq_ghz > 0:
            raise PlacementError(f"clock speeds must be > 0, got edge {freq.tolist()} and cloud {self.cloud_freq_ghz!r}")
        ids = tuple(self.ids) or (*(f"edge_{s}" for s in range(xy.shape[0])), "cloud")
        if len(ids) != xy.shape[0] + 1:
            raise PlacementError(f"ids must name {xy.shape[0]} edge servers and the cloud, got {ids!r}")
        object.__setattr__(self, "edge_xy_m", xy)
        object.__setattr__(self, "edge_freq_ghz", freq)
        object.__setattr__(self, "ids", ids)

    @property
    def n_edge(self) -> int:
        return int(self.edge_xy_m.shape[0])

    @property
    def n_hosts(self) -> int:
        return self.n_edge + 1


@dataclass(frozen=True)
class Instance:
    """One offloading environment (W, L, G of the paper) on given servers.

    Attributes:
        workload_mb: (N,) w_n, MB.
        xy_m: (N, 2) device positions L_n, metres.
        owner: (N,) index of the twin each device belongs to (G_n of eq. 8 as an index), in ``[0, M)``.
        n_twins: M. A twin may have no device (its cost is zero); generated instances give every twin one.
        servers: the hosts.
    """

    workload_mb: np.ndarray
    xy_m: np.ndarray
    owner: np.ndarray
    n_twins: int
    servers: Servers

    def __post_init__(self) -> None:
        w = np.asarray(self.workload_mb, dtype=np.float64)
        xy = np.asarray(self.xy_m, dtype=np.float64)
        owner = np.asarray(self.owner, dtype=np.int64)
        n = w.shape[0]
        if w.ndim != 1 or n < 1:
            raise PlacementError(f"workload_mb must be a non-empty vector, got shape {w.shape}")
        if xy.shape != (n, 2):
            raise PlacementError(f"xy_m must have shape ({n}, 2), got {xy.shape}")
        if owner.shape != (n,):
            raise PlacementError(f"owner must have shape ({n},), got {owner.shape}")
        if self.n_twins < 1 or owner.min() < 0 or owner.max() >= self.n_twins:
            raise PlacementError(f"owner must index twins in [0, {self.n_twins}), got values {sorted(set(owner.tolist()))}")
        if not np.all(w >= 0):
            raise PlacementError(f"workload_mb must be >= 0, got min {w.min()!r}")
        object.__setattr__(self, "workload_mb", w)
        object.__setattr__(self, "xy_m", xy)
        object.__setattr__(self, "owner", owner)

    @property
    def n_devices(self) -> int:
        return int(self.workload_mb.shape[0])

    @property
    def twin_sizes(self) -> np.ndarray:
        """(M,) ||I_m||, the number of devices of each twin."""
        return np.bincount(self.owner, minlength=self.n_twins)


def edge_positions(system: SystemConfig) -> np.ndarray:
    """(S, 2) edge-server positions in metres for a system (see ``SystemConfig.edge_layout``)."""
    width, height = system.field_m
    if system.n_edge == len(system.edge_layout):
        frac = np.asarray(system.edge_layout, dtype=np.float64)
    else:
        angle = 2.0 * np.pi * np.arange(system.n_edge) / system.n_edge
        frac = 0.5 + 0.3 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return frac * np.array([width, height])


def make_servers(system: SystemConfig, rng: np.random.Generator) -> Servers:
    """The environment's servers: the layout of ``system`` and clocks drawn once from ``edge_freq_ghz``."""
    lo, hi = system.edge_freq_ghz
    return Servers(edge_positions(system), rng.uniform(lo, hi, size=system.n_edge), system.cloud_freq_ghz)


def random_servers(system: SystemConfig, rng: np.random.Generator) -> Servers:
    """Servers anywhere in the field with random clocks (for models that must work on any server layout)."""
    width, height = system.field_m
    xy = rng.uniform(0.0, 1.0, size=(system.n_edge, 2)) * np.array([width, height])
    lo, hi = system.edge_freq_ghz
    return Servers(xy, rng.uniform(lo, hi, size=system.n_edge), system.cloud_freq_ghz)


def random_ownership(scenario: ScenarioConfig, rng: np.random.Generator) -> np.ndarray:
    """(N,) twin index per device: one device for each twin, the others uniformly among the twins.

    A twin above ``max_devices_per_twin`` hands its surplus devices (chosen at random) to random twins
    below the cap, until none is above it.
    """
    n, m, cap = scenario.n_devices, scenario.n_twins, scenario.max_devices_per_twin
    owner = np.empty(n, dtype=np.int64)
    order = rng.permutation(n)
    owner[order[:m]] = np.arange(m)
    owner[order[m:]] = rng.integers(0, m, size=n - m)
    counts = np.bincount(owner, minlength=m)
    while counts.max() > cap:
        for t in np.flatnonzero(counts > cap):
            members = np.flatnonzero(owner == t)
            surplus = rng.choice(members, size=counts[t] - cap, replace=False)
            open_twins = np.flatnonzero(counts < cap)
            owner[surplus] = rng.choice(open_twins, size=surplus.size)
            counts = np.bincount(owner, minlength=m)
    return owner


def random_instance(scenario: ScenarioConfig, system: SystemConfig, servers: Servers,
                    rng: np.random.Generator) -> Instance:
    """One instance: workloads uniform in ``workload_mb``, positions uniform in the field, random ownership."""
    if servers.n_edge != system.n_edge:
        raise PlacementError(f"servers have {servers.n_edge} edge servers, the system config {system.n_edge}")
    lo, hi = scenario.workload_mb
    width, height = system.field_m
    n = scenario.n_devices
    w = rng.uniform(lo, hi, size=n)
    xy = rng.uniform(0.0, 1.0, size=(n, 2)) * np.array([width, height])
    return Instance(w, xy, random_ownership(scenario, rng), scenario.n_twins, servers)


class InstanceGenerator:
    """A seeded stream of instances on one environment (servers drawn once from the same seed).

    With ``vary_servers`` every instance also gets new servers (positions anywhere in the field, new clocks).
    """

    def __init__(self, scenario: ScenarioConfig, system: SystemConfig, seed: int = 0, *,
                 vary_servers: bool = False, servers: Servers | None = None) -> None:
        self.scenario = scenario
        self.system = system
        self.vary_servers = vary_servers
        self.rng = np.random.default_rng(seed)
        self.servers = servers if servers is not None else make_servers(system, np.random.default_rng([seed, 1]))

    def __call__(self) -> Instance:
        servers = random_servers(self.system, self.rng) if self.vary_servers else self.servers
        return random_instance(self.scenario, self.system, servers, self.rng)

    def batch(self, count: int) -> list[Instance]:
        return [self() for _ in range(count)]
