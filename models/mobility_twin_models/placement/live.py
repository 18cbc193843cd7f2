"""Placement of the twins of a live mobility twin (what the ROS node runs, without ROS).

**Twin groups.** The paper's multi-device twins are "the vehicles in the same street" (Sec. 3.1). Here a
vehicle belongs to the edge site it is in (its nearest edge server), and the vehicles of a site form
twins of at most ``max_devices_per_twin`` (default 8, the paper's 120 devices / 15 twins). Membership
is sticky: a vehicle stays in its twin while it stays in the same site and the twin has room; a new
vehicle (or one that changed site) joins the site's first twin with room, ``<site>/0``, ``<site>/1``...;
a twin without vehicles ends. Twin ids are therefore stable while the traffic is.

**Placement.** Every step builds the paper's instance (devices = vehicles with ``device_workload_mb``
each, hosts = the live edge servers and the cloud), the cost table of eq. 17, and places every twin:

* ``solver="exact"``: the per-twin argmin, the optimum of P (the cost is a sum of per-twin terms);
* ``solver="ddl"``: the shipped DDL checkpoint proposes K placements (Algorithm 1 line 19-24), the best
  by the true cost is taken, then (``refine``) single-twin moves polish it, which on this cost reaches
  the optimum. The network was trained for S edge servers (3): with more live servers, each site's
  twins choose among the S servers nearest the site and the cloud (refinement still sees all hosts).
  Positions are shifted (and shrunk if needed) into the network's field for its input only.

A twin already placed moves only when the new host is cheaper by more than ``hysteresis`` (relative).
A move's time is the twin's state over the backhaul (``backhaul_mbps``, with the paper's network
discount gamma when the cloud is an end); a first placement costs the twin's synchronisation time on
its host (eq. 15).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mobility_twin_core import ServerSet, TwinSnapshot
from mobility_twin_core.registry import Registry
from mobility_twin_models.placement.config import SystemConfig
from mobility_twin_models.placement.cost import delay_matrices, twin_cost_table
from mobility_twin_models.placement.errors import CheckpointError, PlacementError
from mobility_twin_models.placement.instance import Instance, Servers
from mobility_twin_models.placement.solvers import refine_single_moves

DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "placement_ddl.pt"

@dataclass(frozen=True)
class Hosts:
    """The edge servers a round places twins on: ids, positions (m) and the CPU clock a twin gets (GHz)."""

    ids: tuple[str, ...]
    xy: np.ndarray  # [S, 2]
    freq_ghz: np.ndarray  # [S]

    @classmethod
    def of(cls, twin: TwinSnapshot) -> tuple[Hosts, int]:
        """The servers of ``twin`` with a usable clock (the twin's estimate, its capacity when the estimate is
        0) and a finite position, and how many were left out."""
        freq = np.where(twin.server_estimate_hz > 0, twin.server_estimate_hz * 1e-9, twin.server_capacity_ghz)
        ok = np.isfinite(twin.server_xy).all(axis=1) & np.isfinite(freq) & (freq > 0) \
            & np.array([bool(str(i)) for i in twin.server_ids], dtype=bool)
        return cls(tuple(str(i) for i in twin.server_ids[ok]), twin.server_xy[ok], freq[ok]), int(np.count_nonzero(~ok))


#: name -> factory(config) of a solver: an object with ``decide(instance, table, twin_ids, hosts) -> (chosen
#: host index per twin, label)`` and a ``model_alpha`` (None when it has no model). Add one with
#: :func:`register_solver`.
SOLVERS: Registry = Registry()


def register_solver(name: str):
    """Register a placement solver factory ``factory(config) -> solver`` under ``name`` (a decorator)."""
    return SOLVERS.register(name)


@dataclass(frozen=True)
class Migration:
    """A twin placed for the first time (``from_host == ""``) or moved between hosts."""

    twin_id: str
    from_host: str
    to_host: str
    size_bytes: float
    transfer_time_s: float
    devices: int


@dataclass(frozen=True)
class ControllerConfig:
    """Args:
        alpha: weight of eq. 17.
        solver: a name registered in :data:`SOLVERS` (``"ddl"``, ``"exact"``).
        checkpoint: DDL checkpoint ('' = the shipped placement_ddl.pt).
        refine: polish the DDL decision with single-twin moves.
        max_devices_per_twin: largest twin group.
        hysteresis: relative saving a placed twin needs before it moves.
        backhaul_mbps: rate at which a twin's state moves between hosts.
        cloud_id: name of the cloud host.
        system: the cost constants (the cloud clock is taken from here).
    """

    alpha: float = 0.5
    solver: str = "ddl"
    checkpoint: str = ""
    refine: bool = True
    max_devices_per_twin: int = 8
    hysteresis: float = 0.05
    backhaul_mbps: float = 1000.0
    cloud_id: str = "cloud"
    system: SystemConfig = field(default_factory=SystemConfig)

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise PlacementError(f"solver must be one of {sorted(SOLVERS)}, got {self.solver!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise PlacementError(f"alpha must be in [0, 1], got {self.alpha!r}")
        if self.max_devices_per_twin < 1:
            raise PlacementError(f"max_devices_per_twin must be >= 1, got {self.max_devices_per_twin!r}")
        if not 0.0 <= self.hysteresis < 1.0:
            raise PlacementError(f"hysteresis must be in [0, 1), got {self.hysteresis!r}")
        if not self.backhaul_mbps > 0:
            raise PlacementError(f"backhaul_mbps must be > 0, got {self.backhaul_mbps!r}")


@dataclass
class StepResult:
    """One placement round."""

    hosts: dict[str, str]  # twin id -> host id
    members: dict[str, list[str]]  # twin id -> device ids
    migrations: list[Migration]
    cost: float  # Q of the placement in force
    optimal_cost: float  # Q of the optimum of P
    decision_s: float  # wall time of the decision (cost table, proposals, refinement)
    solver: str  # what decided: "exact", "ddl", "ddl+refine", or "exact (fallback: ...)"


class TwinGroups:
    """Sticky grouping of devices into twins by edge site (see the module docstring)."""

    def __init__(self, max_devices_per_twin: int) -> None:
        self.capacity = max_devices_per_twin
        self.twin_of: dict[str, str] = {}

    def update(self, device_ids: list[str], device_xy: np.ndarray, hosts: Hosts) -> dict[str, list[str]]:
        """Assign every device to a twin; return twin id -> member device ids (sorted by twin id)."""
        nearest = ServerSet.from_arrays(hosts.ids, hosts.xy, math.inf).nearest_index(device_xy)
        site_of = {d: hosts.ids[k] for d, k in zip(device_ids, nearest.tolist(), strict=True)}
        members: dict[str, list[str]] = {}
        pending = []
        for d in sorted(device_ids):
            twin = self.twin_of.get(d)
            if twin is not None and twin.rsplit("/", 1)[0] == site_of[d] and len(members.get(twin, [])) < self.capacity:
                members.setdefault(twin, []).append(d)
            else:
                pending.append(d)
        for d in pending:
            site = site_of[d]
            k = 0
            while len(members.get(f"{site}/{k}", [])) >= self.capacity:
                k += 1
            members.setdefault(f"{site}/{k}", []).append(d)
        self.twin_of = {dev: twin for twin, devs in members.items() for dev in devs}
        return dict(sorted(members.items()))


class PlacementController:
    """Places the twins of a live scene every :meth:`step` and reports the moves."""

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config
        self.groups = TwinGroups(config.max_devices_per_twin)
        self.current: dict[str, str] = {}  # twin id -> host id
        self.solver = SOLVERS[config.solver](config)
        self.skipped_servers = 0

    @property
    def model_alpha(self) -> float | None:
        return self.solver.model_alpha

    def step(self, twin: TwinSnapshot, workload_mb: float | np.ndarray) -> StepResult:
        """Group the vehicles of ``twin`` (``workload_mb`` each: data per synchronisation, MB) into twins,
        place them on its edge servers or the cloud, compare with the previous round; an empty scene places
        nothing."""
        cfg = self.config
        hosts, skipped = Hosts.of(twin)
        self.skipped_servers += skipped
        if not hosts.ids:
            raise PlacementError("no usable edge server (id, position and clock): need one to form twin groups")
        if len(set(hosts.ids)) != len(hosts.ids) or cfg.cloud_id in hosts.ids:
            raise PlacementError(f"edge server ids must be unique and differ from {cfg.cloud_id!r}, got {list(hosts.ids)}")
        workload = np.broadcast_to(np.asarray(workload_mb, dtype=float), (len(twin.vehicle_ids),))
        device_ids = [str(v) for v in twin.vehicle_ids]
        start = time.perf_counter()
        members = self.groups.update(device_ids, twin.vehicle_xy, hosts)
        if not members:
            self.current = {}
            return StepResult({}, {}, [], 0.0, 0.0, time.perf_counter() - start, cfg.solver)
        twin_ids = list(members)
        row = {d: i for i, d in enumerate(device_ids)}
        order = np.array([row[dev] for t in twin_ids for dev in members[t]], dtype=np.int64)
        owner = np.repeat(np.arange(len(twin_ids)), [len(members[t]) for t in twin_ids])
        servers = Servers(hosts.xy, hosts.freq_ghz, cfg.system.cloud_freq_ghz, ids=(*hosts.ids, cfg.cloud_id))
        instance = Instance(workload[order], twin.vehicle_xy[order], owner, len(twin_ids), servers)
        table = twin_cost_table(instance, cfg.system, cfg.alpha)
        chosen, solver = self.solver.decide(instance, table, twin_ids, hosts)
        decision_s = time.perf_counter() - start

        host_names = servers.ids
        index = {h: i for i, h in enumerate(host_names)}
        rows = np.arange(len(twin_ids))
        for m, twin in enumerate(twin_ids):  # hysteresis: stay unless clearly better
            prev = self.current.get(twin)
            if prev in index and table[m, chosen[m]] >= (1.0 - cfg.hysteresis) * table[m, index[prev]]:
                chosen[m] = index[prev]
        psi_t, _, _ = delay_matrices(instance, cfg.system)
        migrations = []
        for m, twin in enumerate(twin_ids):
            to_host, prev = host_names[chosen[m]], self.current.get(twin, "")
            if to_host == prev:
                continue
            size_mb = float(instance.workload_mb[owner == m].sum())
            if prev:  # (also when the old host has gone: its state still has to move)
                rate = cfg.backhaul_mbps / 8.0 * (cfg.system.gamma if cfg.cloud_id in (prev, to_host) else 1.0)
                seconds = size_mb / rate
            else:
                seconds = float(psi_t[owner == m, chosen[m]].max())  # eq. 15 on the new host
            migrations.append(Migration(twin, prev, to_host, size_mb * 1e6, seconds, len(members[twin])))
        self.current = {twin: host_names[chosen[m]] for m, twin in enumerate(twin_ids)}
        return StepResult(dict(self.current), members, migrations, float(table[rows, chosen].sum()),
                          float(table.min(axis=1).sum()), decision_s, solver)


@register_solver("exact")
class ExactSolver:
    """The per-twin argmin of the cost table: the optimum of P (the cost is a sum of per-twin terms)."""

    model_alpha = None

    def __init__(self, config: ControllerConfig) -> None:
        self.config = config

    def decide(self, instance: Instance, table: np.ndarray, twin_ids: list[str], hosts: Hosts
               ) -> tuple[np.ndarray, str]:
        return table.argmin(axis=1), "exact"


@register_solver("ddl")
class DdlSolver:
    """The shipped DDL checkpoint (best of K proposals), polished by single-twin moves (``refine``); the exact
    solver when the network cannot be used (see the module docstring)."""

    def __init__(self, config: ControllerConfig) -> None:
        from mobility_twin_models.placement.ddl import load_checkpoint

        self.config = config
        path = Path(config.checkpoint) if config.checkpoint else DEFAULT_CHECKPOINT
        self.model, self.model_setup, _ = load_checkpoint(path)

    @property
    def model_alpha(self) -> float:
        return self.model_setup.alpha

    def decide(self, instance: Instance, table: np.ndarray, twin_ids: list[str], hosts: Hosts
               ) -> tuple[np.ndarray, str]:
        spec = self.model.spec
        if len(hosts.ids) < spec.n_edge:
            return table.argmin(axis=1), f"exact (fallback: {len(hosts.ids)} edge servers, the DDL needs {spec.n_edge})"
        try:
            chosen = self._ddl(instance, table, twin_ids, hosts)
        except (PlacementError, CheckpointError) as err:
            return table.argmin(axis=1), f"exact (fallback: {err})"
        if self.config.refine:
            return refine_single_moves(table, chosen), "ddl+refine"
        return chosen, "ddl"
    def _ddl(self, instance: Instance, table: np.ndarray, twin_ids: list[str], hosts: Hosts) -> np.ndarray:
        """Best of K DDL proposals per block of twins sharing candidate servers (see the module docstring)."""
        from mobility_twin_models.placement.ddl import candidate_hosts, encode, select_best

        spec = self.model.spec
        cloud = len(hosts.ids)
        host_xy = instance.servers.edge_xy_m
        site_index = {h: i for i, h in enumerate(hosts.ids)}
        blocks: dict[tuple[int, ...], list[int]] = {}
        for m, twin in enumerate(twin_ids):
            site = site_index[twin.rsplit("/", 1)[0]]
            near = np.argsort(np.hypot(*(host_xy - host_xy[site]).T), kind="stable")[: spec.n_edge]
            blocks.setdefault(tuple(sorted(near.tolist())), []).append(m)
        chosen = np.empty(len(twin_ids), dtype=np.int64)
        for cand, twins in blocks.items():
            cols = [*cand, cloud]
            for lo in range(0, len(twins), spec.max_twins):
                block = twins[lo: lo + spec.max_twins]
                sub = self._sub_instance(instance, block, list(cand))
                props = candidate_hosts(self.model, encode([sub], spec))  # (K, 1, M_net), local host indices
                local_table = table[np.ix_(block, cols)]
                best, _ = select_best(props, [local_table], crossover=self.model.config.crossover_decisions)
                chosen[block] = np.asarray(cols)[best[0, : len(block)]]
        return chosen

    def _sub_instance(self, instance: Instance, twins: list[int], edge: list[int]) -> Instance:
        """The block's devices and candidate servers, moved (and shrunk if needed) into the network's field."""
        spec = self.model.spec
        keep = np.isin(instance.owner, twins)
        remap = {t: i for i, t in enumerate(twins)}
        owner = np.array([remap[t] for t in instance.owner[keep]])
        xy = instance.xy_m[keep]
        sxy = instance.servers.edge_xy_m[edge]
        pts = np.vstack([xy, sxy])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        field_m = np.asarray(spec.field_m)
        scale = min(1.0, *(field_m / np.maximum(hi - lo, 1e-9)))
        shift = field_m / 2 - scale * (lo + hi) / 2
        servers = Servers(scale * sxy + shift, instance.servers.edge_freq_ghz[edge], instance.servers.cloud_freq_ghz)
        return Instance(instance.workload_mb[keep], scale * xy + shift, owner, len(twins), servers)
