"""relation_learner: the continual GNN of the relations between twins, on the live global twin.

Reads the global twin through the twin-state adapter (:class:`mobility_twin.ros.twin_reader.TwinReader`:
vehicles from /twin/global/objects, edge-server twins from /twin/global/edge_servers, and the RSUs of the
entity twins on /twin/global/state). Every ``slot_s`` it builds the typed graph of the newest twin state with :class:`mobility_twin_models.relations.online.OnlineRelationLearner`, predicts each vehicle's serving
edge server and each server's load ``horizon`` seconds ahead, and publishes them with the graph as a
``RelationGraph`` on /twin/relations.

On a road network (parameter ``network``, for a model with road relations such as the shipped one), the
graph also holds the roads: each vehicle twin is map-matched to its road and lane, the roads carry their
traffic (vehicles, mean speed, share standing), and each vehicle is linked to the roads its lane leads to
with the phase of the light that controls that turn, from the SPaT on ``signals_topic``.

It keeps learning: once a horizon has passed, what happened labels the graph observed then, and a
background thread makes incremental updates (replay by default) within ``update_budget_s`` of wall time
each; the callbacks only ever wait for the copy of the new weights. It checkpoints every
``checkpoint_every_s`` and on shutdown to ``checkpoint_path`` (default: ``relations.pt`` in the node's
folder of the stack's state folder, :mod:`mobility_twin.ros.state`) and resumes from it after a restart; a
new deployment starts from ``initial_checkpoint`` (default: the shipped relations_gnn.pt of
mobility_twin_models). ``learn`` and ``update_budget_s`` may be changed at run time.

Bad inputs never stop the node: a slot without servers or vehicles is skipped, a malformed entity is
skipped; both are counted and logged (throttled).

The model is loaded in the background (importing torch and torch_geometric alone takes seconds): the node
subscribes and connects at once, and skips the slots before the model is there (counted as
``model_loading``), so that a restarted node's first graph waits for the slowest of the two, not their sum.
A checkpoint that cannot be loaded then stops the node (exit status 2) as a bad parameter does.
"""

from __future__ import annotations

import os
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
from mobility_twin.ros.convert import to_time
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.guard import Every, count_summary
from mobility_twin.ros.node_params import TwinInputParams
from mobility_twin.ros.params import bind_dynamic, declare_config, field
from mobility_twin.ros.qos import TWIN_STATE
from mobility_twin.ros.road_network import LatestSignals
from mobility_twin.ros.state import resolve_state_path
from mobility_twin_core import EntityKind
from mobility_twin_msgs.msg import HandoverPrediction, LoadForecast, RelationGraph


@dataclass(frozen=True)
class RelationLearnerConfig(TwinInputParams):
    CONFIG_FILE = "config/relation_learner.yaml"

    state_topic: str = field(topics.GLOBAL_STATE, "TwinStateArray; its RSU entities join the graph")
    relations_topic: str = field(topics.RELATIONS, "where the RelationGraph of each slot goes")
    slot_s: float = field(1.0, "seconds between two graphs (and predictions)", low=0.01, high=3600.0)
    checkpoint_path: str = field("", "resume from and checkpoint to this file ('' = relations.pt in the node's "
                                     "state folder, 'none' = no checkpoints)")
    initial_checkpoint: str = field("", "model to start from when checkpoint_path does not exist yet "
                                        "('' = the shipped relations_gnn.pt, 'none' = a fresh model)")
    horizon_s: float = field(30.0, "prediction horizon of a fresh model (a checkpoint brings its own), s",
                             low=0.1, high=3600.0)
    learn: bool = field(True, "keep learning on the live twin", dynamic=True)
    strategy: str = field("replay", "continual-learning strategy of the updates", choices=("naive", "replay", "ewc"))
    buffer_graphs: int = field(32, "replay reservoir capacity, in graphs", low=1, high=100000)
    update_budget_s: float = field(0.15, "wall time one background update round may use (s)", low=0.001, high=60.0,
                                   dynamic=True)
    update_pause_s: float = field(0.5, "pause of the background thread between update rounds (s)", low=0.0,
                                  high=3600.0)
    checkpoint_every_s: float = field(60.0, "seconds between checkpoints (0 = only on shutdown)", low=0.0,
                                      high=86400.0)
    publish_edges: bool = field(True, "include the graph's nodes and edges, not only the predictions")
    compile_model: bool = field(True, "compile the model's forward pass (torch.compile) in the background after "
                                      "loading: tens of seconds of CPU once, predicting eagerly meanwhile; then "
                                      "each prediction's forward pass is about a fifth faster")
    default_coverage_m: float = field(200.0, "coverage radius of a server twin that reports none (m)", low=1.0,
                                      high=1e5)
    servers_timeout_s: float = field(10.0, "skip the slot when the newest server twins arrived longer ago than this "
                                           "(s)", low=0.0, high=3600.0)
    network: str = field("", "road network the vehicles drive on, for a model with road relations ('' = none; a "
                             "georeferenced SUMO network: beijing_cbd or a .net.xml with its frame)")
    signals_topic: str = field(topics.SIGNALS, "SignalStateArray: the traffic lights' phases, read with a network "
                                               "('' = none)")
    signals_max_age_s: float = field(5.0, "signal phases older than this (twin time) count as unknown (s)", low=0.0,
                                     high=3600.0)


class RelationLearnerNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("relation_learner", **kwargs)
        self.config = cfg = declare_config(self, RelationLearnerConfig)
        self.exit_code: int | None = None
        self.checkpoint = resolve_state_path(cfg.checkpoint_path, self.get_fully_qualified_name(), "relations.pt")
        self.online = None  # the learner, once loaded by the background thread
        bind_dynamic(self)
        self.counts: Counter = Counter()
        self.twin = cfg.twin_reader(self, state_topic=cfg.state_topic, default_coverage_m=cfg.default_coverage_m)
        self.slots = 0
        self.last_t: float | None = None
        self.pub = self.create_publisher(RelationGraph, cfg.relations_topic, TWIN_STATE)
        self.signals = LatestSignals(self, cfg.signals_topic if cfg.network else "", cfg.signals_max_age_s,
                                     self.counts)  # the lights' phases, with a road network
        self.timer = self.create_timer(cfg.slot_s, self.on_slot)
        # one extra slot as soon as the model is there, so that the first graph need not wait for the next slot
        self._loaded_timer = self.create_timer(min(0.05, cfg.slot_s), self._on_loaded)
        self.log_every = Every(cfg.log_period_s)
        self._stop = threading.Event()
        self._saved_at = time.monotonic()
        self._thread = threading.Thread(target=self._load_and_train, name="relation_updates", daemon=True)
        self._thread.start()
        self.get_logger().info(
            f"loading the model; slot {cfg.slot_s:g} s, checkpoints {self.checkpoint or 'off'}: "
            f"{cfg.objects_topic} + {cfg.servers_topic} + {cfg.state_topic} -> {cfg.relations_topic}")

    # ------------------------------------------------------------------------------------------ setup
    def _load_and_train(self) -> None:
        """The background thread: load the model (torch, the checkpoint), then keep learning."""
        cfg = self.config
        started = time.monotonic()
        try:
            import torch

            from mobility_twin_models.relations.online import OnlineRelationLearner

            torch.set_num_threads(1)
            learner, origin = self._make_learner()
            roads = self._road_network(learner)
            online = OnlineRelationLearner(learner, roads=roads)
            if roads is not None:
                origin += f"; on the road network {cfg.network} ({len(roads)} roads)"
        except ConfigurationError as err:  # as run_node does for one raised while the node is built
            self.get_logger().fatal(str(err))
            self.exit_code = 2
            return
        except Exception as err:  # no model, no node: stop as a failed start would, not skip slots for ever
            self.get_logger().fatal(f"cannot load the model: {err!r}")
            self.exit_code = 1
            return
        self.online = online
        self.get_logger().info(
            f"{origin} in {time.monotonic() - started:.1f} s; horizon {online.horizon_s:g} s, "
            f"{'learning (' + online.learner.train_config.strategy + ')' if cfg.learn else 'not learning'}")
        if cfg.compile_model:  # beside the updates, which must not wait for it
            thread = threading.Thread(target=self._compile, name="relation_compile", daemon=True)
            COMPILING.add(thread)
            thread.start()
        self._train_loop()

    def _compile(self) -> None:
        started = time.monotonic()
        try:
            error = self.online.compile()
        except Exception as err:  # predicting eagerly is still right; say why it stays so
            error = repr(err)
        finally:
            COMPILING.discard(threading.current_thread())
        if error is None:
            repaired = self.online.compiled.repaired
            self.get_logger().info(f"forward pass compiled in {time.monotonic() - started:.1f} s: predictions "
                                   f"use it from now on" + (f" (removed {len(repaired)} damaged file(s) of the "
                                                            f"compiler's cache first)" if repaired else ""))
        else:
            self.counts["compile_failed"] += 1
            self.get_logger().warning(f"forward pass not compiled ({error}); predictions stay eager")

    def _make_learner(self):
        """(the RelationLearner to start from, where it came from)."""
        from mobility_twin_models.relations import CheckpointError, GraphConfig, RelationLearner, TrainConfig

        cfg = self.config
        train = TrainConfig(strategy=cfg.strategy, buffer_graphs=cfg.buffer_graphs, graphs_per_step=1)
        if self.checkpoint is not None and self.checkpoint.exists():
            try:
                learner = RelationLearner.load(self.checkpoint)
                return learner, f"resumed {self.checkpoint} ({learner.updates} updates)"
            except CheckpointError as err:
                self.get_logger().error(f"cannot resume: {err}; starting from the initial checkpoint")
        if cfg.initial_checkpoint != "none":
            from mobility_twin_models.relations.learner import DEFAULT_CHECKPOINT

            path = Path(cfg.initial_checkpoint) if cfg.initial_checkpoint else DEFAULT_CHECKPOINT
            if not path.exists():
                raise ConfigurationError(f"parameter 'initial_checkpoint': {path} does not exist (set it in "
                                         f"{cfg.CONFIG_FILE}; 'none' starts a fresh model)")
            try:
                learner = RelationLearner.load(path, train=train)
            except CheckpointError as err:
                raise ConfigurationError(f"parameter 'initial_checkpoint': {err}") from None
            return learner, f"started from {path} ({learner.updates} updates)"
        learner = RelationLearner(GraphConfig(horizon_s=cfg.horizon_s,
                                              candidate_radius_m=200.0 + 20.0 * cfg.horizon_s), train=train)
        return learner, "fresh model"

    def _road_network(self, learner):
        """The RoadNetwork of parameter ``network`` in the map frame (None without one, or when the model has
        no road relations)."""
        cfg = self.config
        if not cfg.network:
            return None
        if not learner.graph_config.roads:
            self.get_logger().warning(f"parameter 'network': the model has no road relations (trained without "
                                      f"roads), so {cfg.network} is not used")
            return None
        from mobility_twin.ros.road_network import load_map_roads
        from mobility_twin_models.relations.roads import RoadNetwork

        return RoadNetwork.of(load_map_roads(cfg.network, cfg.CONFIG_FILE))

    # ------------------------------------------------------------------------------------------ callbacks
    def _on_loaded(self) -> None:
        if self.online is not None:
            self._loaded_timer.cancel()
            self.on_slot()

    def on_slot(self) -> None:
        if self.online is None:
            self.counts["model_loading"] += 1
            return
        snapshot = self.twin.take("slot")
        if snapshot is None:
            return
        if self.last_t is not None and snapshot.t == self.last_t:
            self.counts["no_new_twin_state"] += 1  # the twin has not published since the last slot
            return
        if self.last_t is not None and snapshot.t < self.last_t:
            self._skip("time_went_back")  # e.g. a replay was rewound: start the history again
            self.online.history.reset()
        try:
            result = self.online.observe(snapshot, self.signals.at(snapshot.t))
        except ValueError as err:
            self.counts["bad_snapshot"] += 1
            self.get_logger().warning(f"slot skipped: {err}", throttle_duration_sec=10.0)
            return
        self.last_t = snapshot.t
        self.pub.publish(relation_message(result, self.online, self.config.publish_edges,
                                          self.twin.servers_frame or "map"))
        self.slots += 1
        self._maybe_log(result.seconds)

    def _skip(self, reason: str) -> None:
        self.counts[reason] += 1
        self.get_logger().warning(f"slot skipped: {reason}", throttle_duration_sec=10.0)

    def _maybe_log(self, seconds: float) -> None:
        if not self.log_every.due():
            return
        skipped = count_summary(self.counts + self.twin.counts)
        compiled = self.online.compiled
        how = "eager" if compiled is None else \
            f"compiled: {compiled.calls}" + (f", {compiled.eager_fallbacks} eager after {compiled.error}"
                                             if compiled.eager_fallbacks else "") + \
            (f", {compiled.other_graphs} eager with other relations" if compiled.other_graphs else "")
        self.get_logger().info(
            f"{self.slots} graphs published (last built and predicted in {seconds * 1e3:.1f} ms, {how}), "
            f"{self.online.labelled_total} labelled, {self.online.updates} updates; skipped: {skipped}")

    # ------------------------------------------------------------------------------------------ learning
    def _train_loop(self) -> None:
        cfg = self.config
        while not self._stop.is_set():
            cfg = self.config  # (learn and update_budget_s may change at run time)
            if not cfg.learn:
                self._stop.wait(cfg.update_pause_s or 0.5)
                continue
            try:
                steps = self.online.train_for(cfg.update_budget_s)
            except Exception as err:  # a failed update must not kill the thread; it is logged
                self.counts["update_failed"] += 1
                self.get_logger().error(f"update failed: {err!r}", throttle_duration_sec=10.0)
                steps = 0
            if self.checkpoint is not None and cfg.checkpoint_every_s > 0 and \
                    time.monotonic() - self._saved_at >= cfg.checkpoint_every_s:
                self._checkpoint()
            self._stop.wait(cfg.update_pause_s if steps == 0 else 0.05)

    def _checkpoint(self) -> None:
        try:
            self.online.save(self.checkpoint)
            self._saved_at = time.monotonic()
        except OSError as err:
            self.counts["checkpoint_failed"] += 1
            self.get_logger().error(f"cannot write checkpoint {self.checkpoint}: {err}")

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread.is_alive():  # still loading the model (an import cannot be stopped) or in an update round
            self._thread.join(timeout=10.0 if self.online is not None else 120.0)
        if self.checkpoint is not None and self.online is not None:  # never a checkpoint of a model not loaded
            self._checkpoint()
        super().destroy_node()


# ---------------------------------------------------------------------------------------------- messages
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
        msg.node_kinds = ([int(EntityKind.VEHICLE)] * n_v + [int(EntityKind.EDGE_SERVER)] * n_s
                          + [int(EntityKind.RSU)] * len(s.rsu_ids))
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


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": RelationLearnerConfig}


#: the threads compiling a forward pass right now. A compile cannot be stopped, and a Python interpreter that
#: finalises under one aborts (its C++ frames unwound by force): main then ends the process without finalising.
COMPILING: set[threading.Thread] = set()


def main() -> int:
    code = run_node(RelationLearnerNode)
    if COMPILING:  # (destroy_node has saved the checkpoint; rclpy is shut down)
        print("relation_learner: stopped while compiling the forward pass; exiting without waiting for it",
              file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
