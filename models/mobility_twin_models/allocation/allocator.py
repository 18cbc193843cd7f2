"""The allocation loop a ``resource_allocator`` node wraps: one object per edge site.

Every slot the node passes the site's servers (frequency available, uplink band) and the tasks of the
vehicles that offloading sends to each of them (:class:`TaskRequest`; :func:`requests_from_snapshot` builds
both from a :class:`~mobility_twin_core.TwinSnapshot`). :meth:`SiteAllocator.decide` returns every vehicle's
bandwidth (Hz) and CPU (Hz) at once, from one batched pass of the actor over the site's servers, and keeps
what it decided; :meth:`SiteAllocator.learn` then spends at most ``budget_s`` of wall time turning the
pending slots into transitions (the decided allocation and the twin's emulated alternatives, scored on
the twin's model) and taking gradient steps, so the node can call it in its timer without ever blocking
the twin. :meth:`SiteAllocator.save` / :meth:`SiteAllocator.load` checkpoint and resume, in the stack's one
checkpoint format (:mod:`mobility_twin_core.checkpoint`: kind ``allocation_site``, atomic writes, read with
``weights_only=True``).

``decide`` and ``learn`` may run in two threads (a node decides in its executor and learns in a thread of its
own): decisions act with a copy of the actor that ``learn`` brings up to date at the end of each round, and
the pending slots are handed over under a lock, so a decision never waits for a learning round.

Bad input never raises: a server with an empty or repeated id or a non-positive or non-finite frequency or
band, a task with a non-finite or non-positive field, an unknown server or a repeated vehicle is skipped
and counted in :attr:`SiteDecision.skipped`; tasks beyond a server's ``max_vehicles`` easiest get nothing
(counted as ``over_capacity``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mobility_twin_core import checkpoint as core_checkpoint
from mobility_twin_core.errors import CheckpointError as CoreCheckpointError
from mobility_twin_models.allocation import equations as eq
from mobility_twin_models.allocation.agent import ContinualDDPG
from mobility_twin_models.allocation.config import AgentConfig, ContinualConfig, SiteConfig
from mobility_twin_models.allocation.errors import AllocationError, CheckpointError
from mobility_twin_models.allocation.exact import ServerProblem
from mobility_twin_models.allocation.site import SiteFeatures, equal_share, exact_shares

POLICIES = ("cddpg", "equal_share", "exact")
CHECKPOINT_KIND = "allocation_site"
CHECKPOINT_VERSION = 2  # 2: the actor scores tasks (per-task scorer, admission and exact shares)
RETRAIN = "mtwin bench allocation --quick --checkpoint PATH"


@dataclass(frozen=True)
class ServerState:
    """A server of the site as its twin sees it: frequency available to the tasks (Hz), uplink band (Hz)."""

    server_id: str
    cpu_hz: float
    bandwidth_hz: float


@dataclass(frozen=True)
class TaskRequest:
    """A vehicle's task this slot (DITEN: ``eta`` bits, ``lambda`` cycles, deadline ``gamma``), the server
    offloading sent it to, its uplink's spectral efficiency ``log2(1 + SINR)`` and its wired latency (s)."""

    vehicle_id: str
    server_id: str
    size_bits: float
    cycles: float
    deadline_s: float
    spectral_eff: float
    wired_s: float = 0.0


@dataclass(frozen=True)
class VehicleAllocation:
    vehicle_id: str
    server_id: str
    bandwidth_hz: float
    cpu_hz: float
    expected_latency_s: float  # the twin's prediction (inf when given nothing)
    deadline_s: float

    @property
    def on_time(self) -> bool:
        return self.expected_latency_s <= self.deadline_s


@dataclass(frozen=True)
class SiteDecision:
    allocations: tuple[VehicleAllocation, ...]
    skipped: Counter
    decide_s: float
    policy: str


@dataclass
class _Pending:
    obs: np.ndarray
    action: np.ndarray
    problem: ServerProblem


class SiteAllocator:
    """Per-slot CPU and uplink shares for every server of a site, learning online from the twin.

    Args:
        config: the vehicular setting (``max_vehicles``, ``latency_weight``, ...).
        agent, continual: the learner's configuration (ignored when ``learner`` is given).
        policy: ``cddpg`` (learned, keeps learning), ``equal_share`` (the offloading node's rule) or ``exact``
            (the per-slot exact reference; fine for a few vehicles per server, slow for many).
        learner: a trained :class:`ContinualDDPG` to start from.
        max_pending: slots kept for learning; older ones are dropped (counted) when ``learn`` falls behind.
    """

    def __init__(self, config: SiteConfig | None = None, agent: AgentConfig | None = None,
                 continual: ContinualConfig | None = None, *, policy: str = "cddpg",
                 learner: ContinualDDPG | None = None, max_pending: int = 64) -> None:
        if policy not in POLICIES:
            raise AllocationError(f"policy must be one of {POLICIES}, got {policy!r}")
        self.config = config or SiteConfig()
        self.policy = policy
        agent = agent or AgentConfig()
        self.features = SiteFeatures(self.config)
        self.learner = learner
        if policy == "cddpg" and learner is None:
            self.learner = ContinualDDPG(self.features.obs_dim, self.features.act_dim, agent, continual,
                                         task_layout=self.features.layout)
        if self.learner is not None and (self.learner.obs_dim, self.learner.act_dim, self.learner.task_layout) != (
                self.features.obs_dim, self.features.act_dim, self.features.layout):
            raise AllocationError(f"the learner has obs/act sizes {self.learner.obs_dim}/{self.learner.act_dim} and "
                                  f"task layout {self.learner.task_layout}, the site needs "
                                  f"{self.features.obs_dim}/{self.features.act_dim} and {self.features.layout} "
                                  f"(max_vehicles)")
        self.pending: list[_Pending] = []
        self.max_pending = max_pending
        self.totals: Counter = Counter()
        self._slot_s: list[float] = []  # recent times to turn one pending slot into transitions
        self._lock = threading.Lock()  # the pending slots and the acting copy of the actor
        self._acting = self.learner.acting_copy() if self.learner is not None else None

    # -------------------------------------------------------------------------------- decide
    def decide(self, servers: Sequence[ServerState], tasks: Sequence[TaskRequest]) -> SiteDecision:
        t0 = time.perf_counter()
        skipped: Counter = Counter()
        good: dict[str, ServerState] = {}
        for s in servers:
            if not s.server_id or not _positive(s.cpu_hz, s.bandwidth_hz):
                skipped["bad_server"] += 1
            elif s.server_id in good:
                skipped["duplicate_server"] += 1
            else:
                good[s.server_id] = s
        per_server: dict[str, list[TaskRequest]] = {sid: [] for sid in good}
        seen: set[str] = set()
        for task in tasks:
            if not task.vehicle_id or not _positive(task.size_bits, task.cycles, task.deadline_s, task.spectral_eff) \
                    or not (_finite(task.wired_s) and 0 <= task.wired_s < task.deadline_s):
                skipped["bad_task"] += 1
            elif task.vehicle_id in seen:
                skipped["duplicate_vehicle"] += 1
            elif task.server_id not in good:
                skipped["unknown_server"] += 1
            else:
                seen.add(task.vehicle_id)
                per_server[task.server_id].append(task)
        batch = [(sid, reqs, self._problem(good[sid], reqs)) for sid, reqs in per_server.items() if reqs]
        allocations: list[VehicleAllocation] = []
        if batch:
            if self.policy == "cddpg":
                obs = np.stack([self.features.encode(p) for _, _, p in batch])
                with self._lock:
                    actions = self.learner.act(obs, self._acting)
                    for o, a, (_, _, p) in zip(obs, actions, batch, strict=True):
                        self.pending.append(_Pending(o, a, p))
                    if len(self.pending) > self.max_pending:
                        skipped["learning_backlog_dropped"] += len(self.pending) - self.max_pending
                        del self.pending[:len(self.pending) - self.max_pending]
                shares = self.features.decode_many(actions, [p for _, _, p in batch])
            elif self.policy == "equal_share":
                shares = [equal_share(p) for _, _, p in batch]
            else:
                shares = [exact_shares(p) for _, _, p in batch]
            for (sid, reqs, p), (bw, cpu) in zip(batch, shares, strict=True):
                lat = p.latency(bw, cpu)
                over = len(reqs) - self.config.max_vehicles if self.policy == "cddpg" else 0
                if over > 0:
                    skipped["over_capacity"] += over
                server = good[sid]
                for i, r in enumerate(reqs):
                    allocations.append(VehicleAllocation(r.vehicle_id, sid, float(bw[i] * server.bandwidth_hz),
                                                         float(cpu[i] * server.cpu_hz), float(lat[i]), r.deadline_s))
        self.totals.update(skipped)
        return SiteDecision(tuple(allocations), skipped, time.perf_counter() - t0, self.policy)

    def _problem(self, server: ServerState, reqs: list[TaskRequest]) -> ServerProblem:
        def col(name):
            return np.array([getattr(r, name) for r in reqs], dtype=float)

        return ServerProblem(col("size_bits"), col("cycles"), col("deadline_s"), col("spectral_eff"), col("wired_s"),
                             server.bandwidth_hz, server.cpu_hz, self.config.latency_weight)

    # -------------------------------------------------------------------------------- learn
    def learn(self, budget_s: float) -> dict:
        """Within ``budget_s`` seconds: score the pending slots on the twin's model (the decided allocation and
        the emulated ones) into the replay, then gradient steps with the time left; then the decisions act with
        the new weights. Returns counts. Call it from one thread at a time (``decide`` may run meanwhile).

        A slot or step time recorded once that alone exceeds the budget (a cold start, a preempted step) is
        forgotten when it stops rounds (:meth:`ContinualDDPG.after_round`), so one outlier never stops learning
        for good."""
        if not (isinstance(budget_s, int | float) and math.isfinite(budget_s) and budget_s >= 0):
            raise AllocationError(f"budget_s must be a finite number >= 0, got {budget_s!r}")
        if self.learner is None:
            return {"slots": 0, "steps": 0, "pending": 0}
        start = time.perf_counter()
        slots = 0
        # half of the budget at most for scoring slots, each started only if the slowest recent one would fit
        while self.pending and time.perf_counter() - start + max(self._slot_s, default=0.0) <= 0.5 * budget_s:
            t0 = time.perf_counter()
            with self._lock:
                if not self.pending:
                    break
                item = self.pending.pop(0)
            emulate = self.features.emulator(item.problem)
            reward = float(emulate(item.action[None, :])[0])
            self.learner.observe_update(item.obs, item.action, reward, item.obs, emulate)
            self._slot_s = [*self._slot_s[-31:], time.perf_counter() - t0]
            slots += 1
        if not slots and self.pending:  # outliers alone over the budget stopped the round: forget them
            self._slot_s = [s for s in self._slot_s if s <= 0.5 * budget_s]
        steps = self.learner.learn(max(0.0, budget_s - (time.perf_counter() - start)))
        self.learner.after_round(steps, budget_s)
        if steps:
            with self._lock:
                self._acting.load_state_dict(self.learner.actor.state_dict())
        return {"slots": slots, "steps": steps, "pending": len(self.pending)}

    # -------------------------------------------------------------------------------- checkpoints
    def save(self, path: Path | str, *, with_buffer: bool = True) -> Path:
        """Write the learner (networks, optimisers, EWC state, counters and, ``with_buffer``, the replay) as an
        ``allocation_site`` checkpoint, atomically. Call it from the thread that calls ``learn``."""
        if self.learner is None:
            raise AllocationError(f"policy {self.policy!r} has nothing to save")
        meta = {"site": _plain(asdict(self.config)), "policy": self.policy}
        return core_checkpoint.save_checkpoint(path, kind=CHECKPOINT_KIND, version=CHECKPOINT_VERSION,
                                               state=self.learner.state_dict(with_buffer=with_buffer), metadata=meta)

    @classmethod
    def load(cls, path: Path | str, config: SiteConfig | None = None) -> SiteAllocator:
        """Resume a saved allocator. ``config`` (default: the saved one's ``max_vehicles`` and
        ``latency_weight`` on default radio and tasks) must give the learner's sizes."""
        try:
            saved = core_checkpoint.load_checkpoint(path, kind=CHECKPOINT_KIND, version=CHECKPOINT_VERSION,
                                                    retrain=RETRAIN)
        except CoreCheckpointError as err:
            raise CheckpointError(str(err)) from None
        learner = ContinualDDPG.from_state_dict(saved.state)
        if config is None:
            site = saved.metadata.get("site", {})
            try:
                config = SiteConfig(max_vehicles=int(site.get("max_vehicles", 8)),
                                    latency_weight=float(site.get("latency_weight", 0.5)))
            except (TypeError, ValueError) as err:
                raise CheckpointError(f"allocation checkpoint {path} has a malformed site config: {err}") from None
        return cls(config, learner.agent_config, learner.continual, learner=learner)


def _finite(*values) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _positive(*values) -> bool:
    return _finite(*values) and all(v > 0 for v in values)


def _plain(d: dict) -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out[k] = _plain(v)
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = v
    return out


def requests_from_snapshot(snapshot, tasks: Mapping[str, tuple[float, float, float]], config: SiteConfig | None = None,
                           *, tx_power_w: float | None = None) -> tuple[list[ServerState], list[TaskRequest], Counter]:
    """The site's servers and task requests from a :class:`~mobility_twin_core.TwinSnapshot`.

    ``tasks`` maps a vehicle id to its task ``(size_bits, cycles, deadline_s)``. A vehicle's server is the one
    the network reports (``vehicle_server``, what offloading chose) or else the association rule
    (:meth:`~mobility_twin_core.ServerSet.serving`); its spectral efficiency follows DITEN eq. 5-6 from its
    distance to its access station, the nearest (DITEN Sec. III-C: a user always uplinks through its nearest
    station; the offloading package's rule), with the mean transmit power (the twin does not know each
    device's) and the configured interference; its wired latency is eq. 7 over its distance to the serving
    server. A server's frequency is the twin's estimate plus its deviation (DITEN eq. 9-10). Vehicles with no
    task, no server or a malformed task are counted, not raised.
    """
    config = config or SiteConfig()
    radio = config.radio
    p = float(np.mean(radio.tx_power_w)) if tx_power_w is None else tx_power_w
    skipped: Counter = Counter()
    cpu = np.asarray(snapshot.server_estimate_hz, dtype=float) + np.asarray(snapshot.server_deviation_hz, dtype=float)
    servers = [ServerState(str(sid), float(f), radio.bandwidth_hz) for sid, f in zip(snapshot.server_ids, cpu, strict=True)]
    serving = np.asarray(snapshot.vehicle_server, dtype=np.int64).copy()
    unknown = serving < 0
    if unknown.any() and len(snapshot.server_ids):
        serving[unknown] = snapshot.server_set().serving(snapshot.vehicle_xy[unknown])
    xy = np.asarray(snapshot.vehicle_xy, dtype=float).reshape(-1, 2)
    sxy = np.asarray(snapshot.server_xy, dtype=float).reshape(-1, 2)
    to_access = np.linalg.norm(xy[:, None, :] - sxy[None, :, :], axis=-1).min(axis=1, initial=np.inf)
    requests: list[TaskRequest] = []
    for i, vid in enumerate(snapshot.vehicle_ids):
        vid = str(vid)
        if vid not in tasks:
            skipped["no_task"] += 1
            continue
        if serving[i] < 0 or serving[i] >= len(servers):
            skipped["no_server"] += 1
            continue
        try:
            size, cycles, deadline = (float(v) for v in tasks[vid])
        except (TypeError, ValueError):
            skipped["bad_task"] += 1
            continue
        d = max(config.min_distance_m, float(np.hypot(*(xy[i] - sxy[serving[i]]))))
        d_access = max(config.min_distance_m, float(to_access[i]))
        sinr = p * d_access ** (-radio.path_loss_exponent) / (radio.noise_w + config.interference_w)
        requests.append(TaskRequest(vid, servers[serving[i]].server_id, size, cycles, deadline,
                                    float(eq.spectral_efficiency(sinr)), config.wired_s_per_m * d))
    return servers, requests, skipped
