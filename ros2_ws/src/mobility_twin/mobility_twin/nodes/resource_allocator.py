"""resource_allocator (one per edge site): every slot, share each server's CPU and uplink band among its vehicles.

Issue 20, "in the stack": the local twin of an edge site decides how much of a server, and of the server's
cell's uplink band, each vehicle that offloading sends to it gets, and keeps learning online (continual DDPG).
The node reads

* the site's twin through the twin-state adapter (:class:`mobility_twin.ros.twin_reader.TwinReader`): its
  vehicles (``/twin/local/<site>/objects``) and its server twins (``/twin/local/<site>/edge_servers``; a
  server's CPU to share is the twin's estimate plus its deviation, DITEN eq. 9-10);
* the site's offloading decisions (``/offloading/<site>/decisions``, ``OffloadDecisionArray``): which server
  computes each vehicle's task. A vehicle without a fresh decision (no offloading node, or its decisions
  older than ``decisions_timeout_s``) is served by the association rule (nearest server whose disc holds
  it) unless ``fallback_association`` is false;
* the vehicles' tasks, by ``task_source``:

  - ``diten`` (the default, what makes the simulated stacks and the demo work: the simulator has no task
    generator): every served vehicle offloads one task per slot drawn from the offloading package's task model
    (:class:`mobility_twin_models.offloading.config.TaskConfig`, DITEN Table II: 600-800 kB, 200-400 cycles per
    bit, 150-250 ms), from ``numpy.random.default_rng(task_seed)`` in the twin's vehicle order, so the same
    twin stream gives the same tasks. This is the assumption the offloading node already makes;
  - ``topic``: the tasks the vehicles send (``/allocation/<site>/tasks``, ``TaskRequestArray``); each request
    is allocated in the first slot after it arrives, and a vehicle that sent none gets nothing.

Every ``slot_s`` it runs :class:`mobility_twin_models.allocation.SiteAllocator` (``policy``: ``cddpg``, the
continual DDPG; ``equal_share``, the offloading node's own assumption; ``exact``, the per-slot exact
reference) and publishes a ``ResourceAllocationArray`` on ``/allocation/<site>/allocations``: per vehicle its
server, bandwidth (Hz), CPU (Hz), the twin's predicted latency and the deadline, and what each server had to
share (the allocations on a server never add up to more).

Learning never blocks the twin: with ``cddpg``, a thread of its own takes one learning round per decided slot
(the paper's CDDPG trains on every DT update), each within ``learn_budget_s`` of wall time; the decisions act
with a copy of the actor that the thread refreshes after each round, so a decision never waits for learning
(the executor is single-threaded, callback groups would not run the two at once). Rounds and their wall
times are counted and summarised every ``log_period_s``, with the rounds that went over the budget.

State: the learner (weights, optimisers, replay) is checkpointed every ``save_period_s`` and on shutdown to
``state_path`` (default ``resource_allocator.pt`` in the node's folder of the stack's state folder,
:mod:`mobility_twin.ros.state`), in the stack's one checkpoint format, and resumed from there after a
restart; a first start takes ``initial_checkpoint`` (e.g. one written by ``mtwin bench allocation
--checkpoint PATH``) or a fresh learner. ``learn`` and ``learn_budget_s`` may be changed at run time.

Nothing the inputs carry stops the node: decision and task messages stamped outside the window around the
node's clock, decisions naming a vehicle or server the twin does not have, tasks that are not finite and
positive, slots without fresh twin state are refused or skipped; every one is counted by reason, logged
(throttled) and summarised.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Header

from mobility_twin.ros import topics
from mobility_twin.ros.convert import from_time
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.guard import guarded
from mobility_twin.ros.node_params import TwinInputParams
from mobility_twin.ros.params import bind_dynamic, declare_config, field
from mobility_twin.ros.qos import EVENTS
from mobility_twin.ros.state import resolve_state_path
from mobility_twin.ros.twin_reader import TwinReader, TwinReaderConfig
from mobility_twin.twin.validation import InputLimits, InputValidator
from mobility_twin_core import TwinSnapshot
from mobility_twin_msgs.msg import (
    OffloadDecisionArray,
    ResourceAllocation,
    ResourceAllocationArray,
    TaskRequestArray,
)

# The library's names, repeated so that importing this module (the launch-time parameter check does) does not
# load torch; a test checks they are the library's.
POLICIES = ("cddpg", "equal_share", "exact")  # mobility_twin_models.allocation.allocator.POLICIES
STRATEGIES = ("naive", "replay", "ewc", "replay_ewc")  # mobility_twin_models.allocation.config.STRATEGIES
TASK_SOURCES = ("diten", "topic")
#: reasons that are the normal course of things (no request, outside every server's disc, more vehicles than
#: the policy allocates among, learning behind): counted and summarised, not warned about
QUIET = frozenset({"no_task", "no_server", "learning_backlog_dropped", "over_capacity"})


@dataclass(frozen=True)
class ResourceAllocatorConfig(TwinInputParams):
    """The twin-input parameters (vehicle classes, staleness limits, log period) as every consumer node has them;
    the topics default to the site's local twin instead of the global one."""

    CONFIG_FILE = "config/resource_allocator.yaml"

    site_id: str = field("", "the edge site whose servers this node allocates (required)")
    policy: str = field("cddpg", "cddpg (continual DDPG, keeps learning), equal_share (the offloading node's "
                                 "assumption), exact (the per-slot exact reference)", choices=POLICIES)
    slot_s: float = field(1.0, "seconds between two allocations (one slot, one DT update)", low=0.01, high=3600.0)
    task_source: str = field("diten", "where the vehicles' tasks come from: diten (drawn per vehicle and slot, "
                                      "DITEN Table II; the simulator sends none) or topic (tasks_topic)",
                             choices=TASK_SOURCES)
    task_seed: int = field(0, "seed of the DITEN task draws (task_source diten)", low=0, high=2**31 - 1)
    objects_topic: str = field("", "TrackedObjectArray with the site's vehicles ('' = /twin/local/<site>/objects)")
    servers_topic: str = field("", "EdgeServerStateArray with the site's server twins "
                                   "('' = /twin/local/<site>/edge_servers)")
    decisions_topic: str = field("", "OffloadDecisionArray of the site's offloading node "
                                     "('' = /offloading/<site>/decisions)")
    tasks_topic: str = field("", "TaskRequestArray of the vehicles' tasks, task_source topic "
                                 "('' = /allocation/<site>/tasks)")
    allocations_topic: str = field("", "where the ResourceAllocationArray of each slot goes "
                                       "('' = /allocation/<site>/allocations)")
    decisions_timeout_s: float = field(3.0, "offloading decisions that arrived longer ago than this are not used (s)",
                                       low=0.0, high=3600.0)
    fallback_association: bool = field(True, "a vehicle without a fresh offloading decision is served by the "
                                             "association rule (nearest server whose disc holds it); false: it "
                                             "gets nothing")
    uplink_bandwidth_hz: float = field(20e6, "each server's cell's uplink band, Hz (DITEN Table II: 20 MHz)",
                                       low=1e3, high=1e11)
    max_vehicles: int = field(8, "vehicles the learned policy allocates among per server; beyond, the hardest "
                                 "tasks get nothing (a checkpoint fixes it)", low=1, high=256)
    latency_weight: float = field(0.5, "w_l of the task utility: meeting the deadline first, then fast", low=0.0,
                                  high=1e3)
    learn: bool = field(True, "keep learning from the live twin (cddpg)", dynamic=True)
    learn_budget_s: float = field(0.05, "wall time one learning round may use (s); one round per slot", low=0.001,
                                  high=60.0, dynamic=True)
    strategy: str = field("replay", "continual learning of a fresh learner: naive, replay (recent + reservoir), ewc, "
                                    "replay_ewc (a checkpoint brings its own)", choices=STRATEGIES)
    seed: int = field(0, "seed of a fresh learner's networks, exploration and replay", low=0, high=2**31 - 1)
    state_path: str = field("", "resume from and checkpoint the learner to this file ('' = resource_allocator.pt in "
                                "the node's state folder, 'none' = no checkpoints)")
    initial_checkpoint: str = field("", "learner to start from when state_path does not exist yet ('' = a fresh "
                                        "learner; e.g. one written by mtwin bench allocation --checkpoint PATH)")
    save_period_s: float = field(60.0, "seconds between two checkpoints (and one on shutdown)", low=0.05,
                                 high=86400.0)
    max_future_s: float = field(2.0, "decision and task messages stamped later than this after the node's clock "
                                     "are refused (s)", low=0.0, high=3600.0)
    max_age_s: float = field(10.0, "decision and task messages stamped earlier than this before the node's clock "
                                   "are refused (s)", low=0.0, high=86400.0)
    def check(self) -> None:
        if not self.site_id:
            raise ValueError("parameter 'site_id' is required")

    def topic(self, name: str) -> str:
        """A topic parameter, or its default for the site."""
        value = getattr(self, f"{name}_topic")
        if value:
            return value
        return {"objects": topics.local_objects, "servers": topics.local_edge_servers,
                "decisions": topics.offload_decisions, "tasks": topics.task_requests,
                "allocations": topics.resource_allocations}[name](self.site_id)


# ---------------------------------------------------------------------------------------------- ROS-free helpers
def route_vehicles(snapshot: TwinSnapshot, decisions: Mapping[str, str] | None, *, fallback: bool,
                   counts: Counter) -> tuple[TwinSnapshot, int]:
    """The snapshot of the vehicles to allocate, each with the server offloading sent it to
    (``vehicle_server``), and how many were left to the association rule.

    A vehicle with a decision naming a server the twin has goes there; one naming another server is left out
    (``decision_unknown_server``); one without a decision is left to the association rule (``vehicle_server``
    -1) with ``fallback``, else left out (``no_offloading_decision``). Decisions for vehicles the twin does not
    have are counted (``decision_unknown_vehicle``)."""
    server_index = {str(s): j for j, s in enumerate(snapshot.server_ids)}
    ids = [str(v) for v in snapshot.vehicle_ids]
    serving = np.full(len(ids), -1, dtype=np.int64)
    keep = np.ones(len(ids), dtype=bool)
    by_association = 0
    decisions = decisions or {}
    for i, vid in enumerate(ids):
        sid = decisions.get(vid)
        if sid is None:
            if fallback:
                by_association += 1
            else:
                keep[i] = False
                counts["no_offloading_decision"] += 1
        elif sid in server_index:
            serving[i] = server_index[sid]
        else:
            keep[i] = False
            counts["decision_unknown_server"] += 1
    unknown = len(set(decisions) - set(ids))
    if unknown:
        counts["decision_unknown_vehicle"] += unknown
    return snapshot.select(vehicles=keep, vehicle_server=serving[keep]), by_association


def draw_tasks(rng: np.random.Generator, vehicle_ids, task) -> dict[str, tuple[float, float, float]]:
    """One DITEN task ``(size_bits, cycles, deadline_s)`` per vehicle, from ``task`` (an offloading
    :class:`~mobility_twin_models.offloading.config.TaskConfig`), in the order of ``vehicle_ids``."""
    ids = [str(v) for v in vehicle_ids]
    size, cycles, deadline = task.draw(rng, len(ids))
    return {vid: (float(s), float(c), float(d)) for vid, s, c, d in zip(ids, size, cycles, deadline, strict=True)}


def task_ok(size_bits: float, cycles: float, deadline_s: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) and v > 0 for v in (size_bits, cycles, deadline_s))


def allocation_message(decision, servers, *, site_id: str, task_source: str, slot_s: float, model_updates: int,
                       stamp, frame_id: str) -> ResourceAllocationArray:
    """The ``ResourceAllocationArray`` of one :class:`~mobility_twin_models.allocation.SiteDecision` on
    ``servers`` (:class:`~mobility_twin_models.allocation.ServerState`; only the usable ones are listed)."""
    usable = {}
    for s in servers:
        if s.server_id and s.server_id not in usable and task_ok(s.cpu_hz, s.bandwidth_hz, 1.0):
            usable[s.server_id] = s
    usable = list(usable.values())
    msg = ResourceAllocationArray(header=Header(stamp=stamp, frame_id=frame_id))
    msg.site_id, msg.policy, msg.task_source = site_id, decision.policy, task_source
    msg.slot_duration = float(slot_s)
    msg.decision_time = float(decision.decide_s)
    msg.model_updates = int(model_updates)
    msg.server_ids = [s.server_id for s in usable]
    msg.server_cpu_frequency = [float(s.cpu_hz) for s in usable]
    msg.server_bandwidth = [float(s.bandwidth_hz) for s in usable]
    msg.allocations = [ResourceAllocation(
        vehicle_id=a.vehicle_id, server_id=a.server_id, bandwidth=a.bandwidth_hz, cpu_frequency=a.cpu_hz,
        expected_latency=a.expected_latency_s, deadline=a.deadline_s) for a in decision.allocations]
    return msg


class LearningTimes:
    """Wall time of the learning rounds against their budget: counts, mean, maximum, overruns."""

    def __init__(self) -> None:
        self.rounds = self.slots = self.steps = 0
        self.over_budget = 0  # rounds longer than their budget
        self.over_by_half = 0  # rounds longer than 1.5 times their budget
        self.total_s = self.max_s = 0.0
        self.recent: deque[float] = deque(maxlen=256)

    def add(self, elapsed_s: float, budget_s: float, out: Mapping[str, int]) -> None:
        self.rounds += 1
        self.slots += int(out.get("slots", 0))
        self.steps += int(out.get("steps", 0))
        self.over_budget += elapsed_s > budget_s
        self.over_by_half += elapsed_s > 1.5 * budget_s
        self.total_s += elapsed_s
        self.max_s = max(self.max_s, elapsed_s)
        self.recent.append(elapsed_s)

    def summary(self, budget_s: float) -> str:
        if not self.rounds:
            return "learning: no round yet"
        p95 = float(np.percentile(np.asarray(self.recent), 95))
        return (f"learning: {self.rounds} rounds ({self.slots} server slots, {self.steps} steps), budget "
                f"{budget_s * 1e3:.1f} ms, mean {self.total_s / self.rounds * 1e3:.1f} ms, p95 {p95 * 1e3:.1f} ms, "
                f"max {self.max_s * 1e3:.1f} ms, {self.over_budget} over budget, {self.over_by_half} over by half")


# ---------------------------------------------------------------------------------------------- node
class ResourceAllocatorNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("resource_allocator", **kwargs)
        self.config = cfg = declare_config(self, ResourceAllocatorConfig)
        import torch

        from mobility_twin_models.allocation import SiteConfig

        torch.set_num_threads(1)  # small networks: one thread is fastest and leaves the cores to the twin
        try:
            self.site = SiteConfig(max_vehicles=cfg.max_vehicles, latency_weight=cfg.latency_weight).with_(
                radio__bandwidth_hz=cfg.uplink_bandwidth_hz)
        except ValueError as err:
            raise ConfigurationError(f"resource_allocator: {err} (parameters in {cfg.CONFIG_FILE})") from None
        self.state_file = resolve_state_path(cfg.state_path, self.get_fully_qualified_name(), "resource_allocator.pt") \
            if cfg.policy == "cddpg" else None
        self.allocator, origin = self._make_allocator()
        bind_dynamic(self)
        self.counts: Counter = Counter()
        self.validator = InputValidator(InputLimits(max_future_s=cfg.max_future_s, max_age_s=cfg.max_age_s))
        self.twin = TwinReader(self, TwinReaderConfig(
            objects_topic=cfg.topic("objects"), servers_topic=cfg.topic("servers"),
            vehicle_classes=cfg.vehicle_classes, objects_timeout_s=cfg.objects_timeout_s,
            servers_timeout_s=cfg.servers_timeout_s))
        self.decisions: dict[str, str] = {}
        self.decisions_at = -math.inf
        self.requests: dict[str, tuple[float, float, float]] = {}
        self.rng = np.random.default_rng(cfg.task_seed)
        self.create_subscription(OffloadDecisionArray, cfg.topic("decisions"),
                                 guarded(self, self.counts, "offloading decisions")(self.on_decisions), EVENTS)
        if cfg.task_source == "topic":
            self.create_subscription(TaskRequestArray, cfg.topic("tasks"),
                                     guarded(self, self.counts, "task requests")(self.on_tasks), EVENTS)
        self.pub = self.create_publisher(ResourceAllocationArray, cfg.topic("allocations"), EVENTS)
        self.slots = self.allocations = self.on_time = self.by_association = 0
        self.decide_s = 0.0
        self.timer = self.create_timer(cfg.slot_s, guarded(self, self.counts, "slot")(self.on_slot))
        self.last_log = time.monotonic()
        self.times = LearningTimes()
        self._stop = threading.Event()
        self._new_slot = threading.Event()
        self._saved_at = time.monotonic()
        self._thread: threading.Thread | None = None
        if self.allocator.learner is not None:
            self._thread = threading.Thread(target=self._learn_loop, name="allocation_learning", daemon=True)
            self._thread.start()
        learning = f"learning within {cfg.learn_budget_s * 1e3:.0f} ms per slot" if self._thread and cfg.learn \
            else "not learning"
        seed = f" (seed {cfg.task_seed})" if cfg.task_source == "diten" else ""
        self.get_logger().info(
            f"site {cfg.site_id}: policy {cfg.policy} ({origin}), tasks {cfg.task_source}{seed}, slot "
            f"{cfg.slot_s:g} s, {learning}, "
            f"checkpoints {self.state_file or 'off'}: {cfg.topic('objects')} + {cfg.topic('servers')} + "
            f"{cfg.topic('decisions')}{' + ' + cfg.topic('tasks') if cfg.task_source == 'topic' else ''} -> "
            f"{cfg.topic('allocations')}")

    # ------------------------------------------------------------------------------------------ setup
    def _make_allocator(self):
        from mobility_twin_models.allocation import (
            AgentConfig,
            AllocationError,
            ContinualConfig,
            SiteAllocator,
        )

        cfg = self.config
        if cfg.policy != "cddpg":
            return SiteAllocator(self.site, policy=cfg.policy), "no learning"
        if self.state_file is not None and self.state_file.exists():
            try:
                allocator = SiteAllocator.load(self.state_file, self.site)
                return allocator, f"resumed {self.state_file} ({allocator.learner.updates} updates)"
            except AllocationError as err:
                kept = self.state_file.with_name(self.state_file.name + f".unusable-{time.strftime('%Y%m%dT%H%M%S')}")
                try:
                    self.state_file.rename(kept)
                except OSError:
                    kept = self.state_file
                self.get_logger().error(f"cannot resume: {err}; kept as {kept}, starting from the initial checkpoint")
        if cfg.initial_checkpoint:
            path = Path(cfg.initial_checkpoint).expanduser()
            try:
                allocator = SiteAllocator.load(path, self.site)
            except AllocationError as err:
                raise ConfigurationError(f"parameter 'initial_checkpoint': {err} (set it in {cfg.CONFIG_FILE}; '' "
                                         f"starts a fresh learner)") from None
            return allocator, f"started from {path} ({allocator.learner.updates} updates)"
        try:
            allocator = SiteAllocator(self.site, AgentConfig(seed=cfg.seed), ContinualConfig(strategy=cfg.strategy))
        except AllocationError as err:
            raise ConfigurationError(f"resource_allocator: {err} (parameters in {cfg.CONFIG_FILE})") from None
        return allocator, f"fresh learner ({cfg.strategy})"

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------------------------------ inputs
    def on_decisions(self, msg: OffloadDecisionArray) -> None:
        now = self.now_s()
        if not self.validator.stamp_ok(from_time(msg.header.stamp), now):
            self.get_logger().warning("offloading decisions refused: stamped outside the window around the clock",
                                      throttle_duration_sec=10.0)
            return
        routed: dict[str, str] = {}
        for d in msg.decisions:
            if not d.vehicle_id or not d.server_id:
                self.counts["bad_decision"] += 1
            elif d.vehicle_id in routed:
                self.counts["duplicate_decision"] += 1
            else:
                routed[d.vehicle_id] = d.server_id
        self.decisions, self.decisions_at = routed, now

    def on_tasks(self, msg: TaskRequestArray) -> None:
        if not self.validator.stamp_ok(from_time(msg.header.stamp), self.now_s()):
            self.get_logger().warning("task requests refused: stamped outside the window around the clock",
                                      throttle_duration_sec=10.0)
            return
        for t in msg.tasks:
            if not t.vehicle_id or not task_ok(t.size_bits, t.cycles, t.deadline):
                self.counts["bad_task_request"] += 1
                continue
            if t.vehicle_id in self.requests:
                self.counts["task_replaced"] += 1  # a newer request of the same slot wins
            self.requests[t.vehicle_id] = (float(t.size_bits), float(t.cycles), float(t.deadline))

    # ------------------------------------------------------------------------------------------ the slot
    def on_slot(self) -> None:
        from mobility_twin_models.allocation import requests_from_snapshot

        cfg = self.config
        snapshot, skip = self.twin.snapshot()
        if snapshot is None:
            self.get_logger().warning(f"slot skipped: {skip}", throttle_duration_sec=10.0)
            self._maybe_log()
            return
        decisions = self.decisions
        if decisions and self.now_s() - self.decisions_at > cfg.decisions_timeout_s:
            self.counts["decisions_stale"] += 1
            decisions = {}
        slot_counts: Counter = Counter()
        routed, by_association = route_vehicles(snapshot, decisions, fallback=cfg.fallback_association,
                                                counts=slot_counts)
        if cfg.task_source == "diten":
            tasks = draw_tasks(self.rng, routed.vehicle_ids, self.site.task)
        else:
            tasks, self.requests = self.requests, {}
            known = {str(v) for v in snapshot.vehicle_ids}
            slot_counts["task_unknown_vehicle"] += sum(vid not in known for vid in tasks)
        servers, requests, skipped = requests_from_snapshot(routed, tasks, self.site)
        decision = self.allocator.decide(servers, requests)
        slot_counts.update(skipped)
        slot_counts.update(decision.skipped)
        for reason, n in slot_counts.items():
            if n and reason not in QUIET:
                self.get_logger().warning(f"{n} skipped this slot: {reason}", throttle_duration_sec=10.0)
        self.counts.update(+slot_counts)
        learner = self.allocator.learner
        self.pub.publish(allocation_message(
            decision, servers, site_id=cfg.site_id, task_source=cfg.task_source, slot_s=cfg.slot_s,
            model_updates=learner.updates if learner is not None else 0, stamp=self.get_clock().now().to_msg(),
            frame_id=self.twin.servers_frame or "map"))
        if decision.allocations and self._thread is not None:
            self._new_slot.set()
        self.slots += 1
        self.allocations += len(decision.allocations)
        self.on_time += sum(a.on_time and a.cpu_hz > 0 for a in decision.allocations)
        self.by_association += by_association
        self.decide_s += decision.decide_s
        self._maybe_log()

    def _maybe_log(self) -> None:
        if time.monotonic() - self.last_log < self.config.log_period_s:
            return
        self.last_log = time.monotonic()
        counts = self.counts + self.twin.counts + self.validator.rejected
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
        mean_ms = 1e3 * self.decide_s / self.slots if self.slots else 0.0
        on_time = self.on_time / self.allocations if self.allocations else 0.0
        learning = self.times.summary(self.config.learn_budget_s) if self._thread is not None else "not learning"
        updates = self.allocator.learner.updates if self.allocator.learner is not None else 0
        self.get_logger().info(
            f"{self.slots} slots, {self.allocations} allocations ({on_time:.1%} predicted on time, "
            f"{self.by_association} by association), decision {mean_ms:.2f} ms; {learning}; {updates} updates; "
            f"skipped: {skipped}")

    # ------------------------------------------------------------------------------------------ learning
    def _learn_loop(self) -> None:
        while not self._stop.is_set():
            if self._new_slot.wait(timeout=0.5):
                self._new_slot.clear()
                cfg = self.config  # (learn and learn_budget_s may change at run time)
                if cfg.learn and not self._stop.is_set():
                    t0 = time.perf_counter()
                    try:
                        out = self.allocator.learn(cfg.learn_budget_s)
                    except Exception as err:  # a failed round must not kill the thread; it is logged
                        self.counts["learning_failed"] += 1
                        self.get_logger().error(f"learning round failed: {err!r}", throttle_duration_sec=10.0)
                    else:
                        self.times.add(time.perf_counter() - t0, cfg.learn_budget_s, out)
            if self.state_file is not None and time.monotonic() - self._saved_at >= self.config.save_period_s:
                self._checkpoint()

    def _checkpoint(self) -> None:
        """Save the learner (from the learning thread, or after it stopped)."""
        self._saved_at = time.monotonic()
        try:
            self.allocator.save(self.state_file)
        except (OSError, RuntimeError) as err:
            self.counts["checkpoint_failed"] += 1
            self.get_logger().error(f"cannot write checkpoint {self.state_file}: {err}", throttle_duration_sec=30.0)

    def destroy_node(self) -> None:
        self._stop.set()
        self._new_slot.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=30.0)
        if self.state_file is not None and self._thread is not None and not self._thread.is_alive():
            self._checkpoint()
        if self._thread is not None and self.context.ok():  # (after Ctrl-C the context is shut down already)
            self.get_logger().info(self.times.summary(self.config.learn_budget_s))
        super().destroy_node()


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": ResourceAllocatorConfig}


def main() -> int:
    return run_node(ResourceAllocatorNode)


if __name__ == "__main__":
    sys.exit(main())
