"""relation_learner: the continual GNN of the relations between twins, on the live global twin.

Subscribes to the vehicles (``TrackedObjectArray``, /twin/global/objects), the edge-server twins
(``EdgeServerStateArray``, /twin/global/edge_servers) and the entity twins (``TwinStateArray``,
/twin/global/state; its RSUs join the graph). Every ``slot_s`` it builds the typed graph of the newest
twin state with :class:`mobility_twin_models.relations.online.OnlineRelationLearner`, predicts each vehicle's serving
edge server and each server's load ``horizon`` seconds ahead, and publishes them with the graph as a
``RelationGraph`` on /twin/relations.

It keeps learning: once a horizon has passed, what happened labels the graph observed then, and a
background thread makes incremental updates (replay by default) within ``update_budget_s`` of wall time
each; the callbacks only ever wait for the copy of the new weights. It checkpoints every
``checkpoint_every_s`` and on shutdown to ``checkpoint_path`` and resumes from it after a restart; a new
deployment starts from ``initial_checkpoint`` (default: the shipped relations_gnn.pt of mobility_twin_models).

Bad inputs never stop the node: a slot without servers or vehicles is skipped, a malformed entity is
skipped; both are counted and logged (throttled).
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.node import Node
from std_msgs.msg import Header

from mobility_twin.ros import topics
from mobility_twin.ros.convert import from_time, to_time
from mobility_twin.ros.entry import run_node
from mobility_twin.ros.latest import LatestMessage
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import TWIN_STATE
from mobility_twin_msgs.msg import (
    EdgeServerStateArray,
    HandoverPrediction,
    LoadForecast,
    RelationGraph,
    TrackedObject,
    TrackedObjectArray,
    TwinEntity,
    TwinStateArray,
)


@dataclass(frozen=True)
class RelationLearnerConfig:
    objects_topic: str = field(topics.GLOBAL_OBJECTS, "TrackedObjectArray with the vehicle twins")
    servers_topic: str = field(topics.GLOBAL_EDGE_SERVERS, "EdgeServerStateArray with the edge-server twins")
    state_topic: str = field(topics.GLOBAL_STATE, "TwinStateArray; its RSU entities join the graph")
    relations_topic: str = field(topics.RELATIONS, "where the RelationGraph of each slot goes")
    slot_s: float = field(1.0, "seconds between two graphs (and predictions)")
    checkpoint_path: str = field("", "resume from and checkpoint to this file ('' = no checkpoints)")
    initial_checkpoint: str = field("", "model to start from when checkpoint_path does not exist yet "
                                        "('' = the shipped relations_gnn.pt, 'none' = a fresh model)")
    horizon_s: float = field(30.0, "prediction horizon of a fresh model (a checkpoint brings its own)")
    learn: bool = field(True, "keep learning on the live twin")
    strategy: str = field("replay", "continual-learning strategy of the updates: naive | replay | ewc")
    buffer_graphs: int = field(32, "replay reservoir capacity, in graphs")
    update_budget_s: float = field(0.15, "wall time one background update round may use")
    update_pause_s: float = field(0.5, "pause of the background thread between update rounds")
    checkpoint_every_s: float = field(60.0, "seconds between checkpoints (0 = only on shutdown)")
    publish_edges: bool = field(True, "include the graph's nodes and edges, not only the predictions")
    default_coverage_m: float = field(200.0, "coverage radius of a server twin that reports none")
    objects_timeout_s: float = field(3.0, "skip the slot when the newest vehicles arrived longer ago than this")
    vehicle_classes: tuple[int, ...] = field(
        [1, 2, 3, 4], "TrackedObject.object_class values that are vehicles (1 car, 2 truck, 3 bus, 4 motorcycle)")
    log_period_s: float = field(10.0, "seconds between summary log lines")


class RelationLearnerNode(Node):
    def __init__(self) -> None:
        super().__init__("relation_learner")
        self.config = cfg = declare_config(self, RelationLearnerConfig)
        if cfg.slot_s <= 0 or cfg.update_budget_s <= 0:
            raise ValueError(f"slot_s ({cfg.slot_s}) and update_budget_s ({cfg.update_budget_s}) must be > 0")
        import torch

        torch.set_num_threads(1)
        self.online, origin = self._make_learner()
        self.counts: Counter = Counter()
        self._objects = LatestMessage(TrackedObjectArray)  # deserialised once per slot, not per message
        self.objects_at = 0.0
        self.servers: EdgeServerStateArray | None = None
        self.rsus: dict[str, tuple[float, float]] = {}
        self.slots = 0
        self.last_t: float | None = None
        self.create_subscription(TrackedObjectArray, cfg.objects_topic, self.on_objects, TWIN_STATE, raw=True)
        self.create_subscription(EdgeServerStateArray, cfg.servers_topic, self.on_servers, TWIN_STATE)
        self.create_subscription(TwinStateArray, cfg.state_topic, self.on_state, TWIN_STATE)
        self.pub = self.create_publisher(RelationGraph, cfg.relations_topic, TWIN_STATE)
        self.timer = self.create_timer(cfg.slot_s, self.on_slot)
        self.last_log = time.monotonic()
        self._stop = threading.Event()
        self._saved_at = time.monotonic()
        self._thread = threading.Thread(target=self._train_loop, name="relation_updates", daemon=True)
        if cfg.learn:
            self._thread.start()
        self.get_logger().info(
            f"{origin}; horizon {self.online.horizon_s:g} s, slot {cfg.slot_s:g} s, "
            f"{'learning (' + self.online.learner.train_config.strategy + ')' if cfg.learn else 'not learning'}: "
            f"{cfg.objects_topic} + {cfg.servers_topic} + {cfg.state_topic} -> {cfg.relations_topic}")

    # ------------------------------------------------------------------------------------------ setup
    def _make_learner(self):
        from mobility_twin_models.relations import GraphConfig, RelationLearner, TrainConfig
        from mobility_twin_models.relations.online import OnlineRelationLearner

        cfg = self.config
        train = TrainConfig(strategy=cfg.strategy, buffer_graphs=cfg.buffer_graphs, graphs_per_step=1)
        resume = Path(cfg.checkpoint_path) if cfg.checkpoint_path else None
        if resume is not None and resume.exists():
            learner = RelationLearner.load(resume)
            return OnlineRelationLearner(learner), f"resumed {resume} ({learner.updates} updates)"
        if cfg.initial_checkpoint != "none":
            from mobility_twin_models.relations.learner import DEFAULT_CHECKPOINT

            path = Path(cfg.initial_checkpoint) if cfg.initial_checkpoint else DEFAULT_CHECKPOINT
            if path.exists():
                learner = RelationLearner.load(path, train=train)
                return OnlineRelationLearner(learner), f"started from {path} ({learner.updates} updates)"
            self.get_logger().warning(f"initial checkpoint {path} does not exist: starting from a fresh model")
        learner = RelationLearner(GraphConfig(horizon_s=cfg.horizon_s,
                                              candidate_radius_m=200.0 + 20.0 * cfg.horizon_s), train=train)
        return OnlineRelationLearner(learner), "fresh model"

    # ------------------------------------------------------------------------------------------ callbacks
    @property
    def objects(self) -> TrackedObjectArray | None:
        return self._objects.get()

    def on_objects(self, data: bytes) -> None:
        self._objects.set(data)
        self.objects_at = time.monotonic()

    def on_servers(self, msg: EdgeServerStateArray) -> None:
        self.servers = msg

    def on_state(self, msg: TwinStateArray) -> None:
        for e in msg.entities:
            if e.kind != TwinEntity.KIND_RSU or not e.entity_id:
                continue
            p = e.pose.position
            if math.isfinite(p.x) and math.isfinite(p.y):
                self.rsus[e.entity_id] = (float(p.x), float(p.y))
            else:
                self.counts["rsu_not_finite"] += 1

    def on_slot(self) -> None:
        if self.servers is None or not self.servers.servers:
            self._skip("no_server_twins_yet")
            return
        if self.objects is None:
            self._skip("no_vehicles_yet")
            return
        if time.monotonic() - self.objects_at > self.config.objects_timeout_s:
            self._skip("vehicles_stale")
            return
        if self.last_t is not None and from_time(self.objects.header.stamp) == self.last_t:
            self.counts["no_new_twin_state"] += 1  # the twin has not published since the last slot
            return
        snapshot, skipped = twin_snapshot(self.objects, self.servers, self.rsus, self.config)
        for reason, n in skipped.items():
            self.counts[reason] += n
        if snapshot is None:
            self._skip("no_usable_servers")
            return
        if self.last_t is not None and snapshot.t < self.last_t:
            self._skip("time_went_back")  # e.g. a replay was rewound: start the history again
            self.online.history.reset()
        try:
            result = self.online.observe(snapshot)
        except ValueError as err:
            self.counts["bad_snapshot"] += 1
            self.get_logger().warning(f"slot skipped: {err}", throttle_duration_sec=10.0)
            return
        self.last_t = snapshot.t
        self.pub.publish(relation_message(result, self.online, self.config.publish_edges,
                                          self.objects.header.frame_id or "map"))
        self.slots += 1
        self._maybe_log(result.seconds)

    def _skip(self, reason: str) -> None:
        self.counts[reason] += 1
        self.get_logger().warning(f"slot skipped: {reason}", throttle_duration_sec=10.0)

    def _maybe_log(self, seconds: float) -> None:
        if time.monotonic() - self.last_log < self.config.log_period_s:
            return
        self.last_log = time.monotonic()
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items())) or "none"
        self.get_logger().info(
            f"{self.slots} graphs published (last built and predicted in {seconds * 1e3:.1f} ms), "
            f"{self.online.labelled_total} labelled, {self.online.updates} updates; skipped: {skipped}")

    # ------------------------------------------------------------------------------------------ learning
    def _train_loop(self) -> None:
        cfg = self.config
        while not self._stop.is_set():
            try:
                steps = self.online.train_for(cfg.update_budget_s)
            except Exception as err:  # a failed update must not kill the thread; it is logged
                self.counts["update_failed"] += 1
                self.get_logger().error(f"update failed: {err!r}", throttle_duration_sec=10.0)
                steps = 0
            if cfg.checkpoint_path and cfg.checkpoint_every_s > 0 and \
                    time.monotonic() - self._saved_at >= cfg.checkpoint_every_s:
                self._checkpoint()
            self._stop.wait(cfg.update_pause_s if steps == 0 else 0.05)

    def _checkpoint(self) -> None:
        try:
            self.online.save(self.config.checkpoint_path)
            self._saved_at = time.monotonic()
        except OSError as err:
            self.counts["checkpoint_failed"] += 1
            self.get_logger().error(f"cannot write checkpoint {self.config.checkpoint_path}: {err}")

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10.0)
        if self.config.checkpoint_path:
            self._checkpoint()
        super().destroy_node()


# ---------------------------------------------------------------------------------------------- messages
def twin_snapshot(objects: TrackedObjectArray, servers: EdgeServerStateArray, rsus: dict[str, tuple[float, float]],
                  config: RelationLearnerConfig):
    """(TwinSnapshot, skipped counts) of the newest twin messages; the snapshot is None without servers.

    Vehicles: confirmed and coasting tracks of vehicle classes (id: ``vehicle_id`` or ``track_<id>``),
    with their age of information. Servers: every server twin with a finite position."""
    from mobility_twin_models.relations import TwinSnapshot

    skipped: Counter = Counter()
    classes = set(config.vehicle_classes)
    v_ids, v_xy, v_vel, v_age = [], [], [], []
    seen = set()
    for o in objects.objects:
        if o.object_class not in classes or o.state == TrackedObject.STATE_TENTATIVE:
            skipped["not_a_confirmed_vehicle"] += 1
            continue
        vid = o.vehicle_id or f"track_{o.track_id}"
        p, v = o.pose.pose.position, o.twist.twist.linear
        values = (p.x, p.y, v.x, v.y, o.age_of_information)
        if vid in seen or not all(math.isfinite(x) for x in values):
            skipped["vehicle_duplicate_or_not_finite"] += 1
            continue
        seen.add(vid)
        v_ids.append(vid)
        v_xy.append((p.x, p.y))
        v_vel.append((v.x, v.y))
        v_age.append(max(0.0, float(o.age_of_information)))
    s_ids, s_xy, s_cov, s_cap = [], [], [], []
    for s in servers.servers:
        p = s.position
        if not s.server_id or s.server_id in s_ids or not (math.isfinite(p.x) and math.isfinite(p.y)):
            skipped["server_unnamed_duplicate_or_not_finite"] += 1
            continue
        s_ids.append(s.server_id)
        s_xy.append((p.x, p.y))
        cov = float(s.coverage_radius)
        s_cov.append(cov if math.isfinite(cov) and cov > 0 else config.default_coverage_m)
        cap = float(s.cpu_frequency_max)
        s_cap.append(cap / 1e9 if math.isfinite(cap) and cap > 0 else 2.0)
    if not s_ids:
        return None, skipped
    r_ids = sorted(rsus)
    return TwinSnapshot(
        t=from_time(objects.header.stamp),
        vehicle_ids=np.asarray(v_ids, dtype=object), vehicle_xy=np.asarray(v_xy, float).reshape(-1, 2),
        vehicle_vel=np.asarray(v_vel, float).reshape(-1, 2),
        server_ids=np.asarray(s_ids, dtype=object), server_xy=np.asarray(s_xy, float).reshape(-1, 2),
        server_coverage_m=np.asarray(s_cov, float), server_capacity_ghz=np.asarray(s_cap, float),
        rsu_ids=np.asarray(r_ids, dtype=object), rsu_xy=np.asarray([rsus[r] for r in r_ids], float).reshape(-1, 2),
        vehicle_age_s=np.asarray(v_age, float),
    ), skipped


def relation_message(result, online, publish_edges: bool, frame_id: str) -> RelationGraph:
    """The RelationGraph of one observation: nodes, edges (one per undirected relation, weight: metres) and
    the predictions."""
    from mobility_twin_models.relations.graph import RS, SS, VS, VV

    obs, graph, pred = result.obs, result.graph, result.predictions
    s = obs.snapshot
    msg = RelationGraph()
    msg.header = Header(stamp=to_time(s.t), frame_id=frame_id)
    n_v, n_s = len(s.vehicle_ids), len(s.server_ids)
    horizon = float(online.horizon_s)
    servers = [str(x) for x in s.server_ids]
    vehicles = [str(x) for x in s.vehicle_ids]
    if publish_edges:
        msg.node_ids = vehicles + servers + [str(x) for x in s.rsu_ids]
        msg.node_kinds = ([TwinEntity.KIND_VEHICLE] * n_v + [TwinEntity.KIND_EDGE_SERVER] * n_s
                          + [TwinEntity.KIND_RSU] * len(s.rsu_ids))
        src, dst, kinds, weights = [], [], [], []
        offsets = {"vehicle": 0, "server": n_v, "rsu": n_v + n_s}
        pos = np.concatenate([graph[t].pos.numpy() for t in ("vehicle", "server", "rsu")])
        for et, kind, undirected in ((VV, RelationGraph.EDGE_VEHICLE_VEHICLE, True),
                                     (VS, RelationGraph.EDGE_VEHICLE_SERVER, False),
                                     (SS, RelationGraph.EDGE_SERVER_SERVER, True),
                                     (RS, RelationGraph.EDGE_RSU_SERVER, False)):
            ei = graph[et].edge_index
            a, b = ei[0].numpy() + offsets[et[0]], ei[1].numpy() + offsets[et[2]]
            keep = a < b if undirected else np.ones(len(a), bool)
            d = np.linalg.norm(pos[a[keep]] - pos[b[keep]], axis=1)
            src += a[keep].tolist()
            dst += b[keep].tolist()
            kinds += [kind] * int(keep.sum())
            weights += d.astype(float).tolist()
        msg.edge_source, msg.edge_target, msg.edge_kinds, msg.edge_weights = src, dst, kinds, weights
    serving = obs.serving
    msg.handovers = [
        HandoverPrediction(vehicle_id=vehicles[i], current_server_id=servers[serving[i]],
                           predicted_server_id=servers[p] if p >= 0 else "", probability=float(q), horizon=horizon)
        for i, (p, q) in enumerate(zip(pred.server.tolist(), pred.probability.tolist(), strict=True))
    ]
    msg.load_forecasts = [
        LoadForecast(server_id=servers[j], current_load=float(obs.load[j]), predicted_load=float(pred.load[j]),
                     horizon=horizon)
        for j in range(n_s)
    ]
    msg.model_id = f"relation_gnn/{online.learner.train_config.strategy}"
    msg.model_updates = int(online.updates)
    return msg


def main() -> int:
    return run_node(RelationLearnerNode)


if __name__ == "__main__":
    sys.exit(main())
