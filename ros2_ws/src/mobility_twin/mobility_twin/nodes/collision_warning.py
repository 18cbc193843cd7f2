"""collision_warning (edge): predicts conflicts between the twin's road users and warns the vehicles involved.

Issue 18, "Collision warning". Every ``period_s`` the node takes the newest ``TrackedObjectArray`` of a twin
(``objects_topic``: the global twin by default, or a site's local twin), keeps the confirmed road users of
``classes`` whose last measurement is at most ``max_age_s`` old, and runs the ROS-free predictor
(:mod:`mobility_twin.safety`): candidate pairs from a KD-tree, Monte Carlo over each track's covariance and
a random acceleration over ``horizon_s``, time to collision, post-encroachment time, a conflict probability.
Warnings start and end with hysteresis (:class:`mobility_twin.safety.WarningTracker`) and go out

* on ``warnings_topic`` (``CollisionWarningArray``, every cycle that has a warning new, ongoing or cleared):
  one ``CollisionWarning`` per party;
* to a connected automated vehicle involved (a track whose ``vehicle_id`` starts with ``cav_prefix``), on its
  V2X topic ``/cav/<id>/collision_warning``;
* with ``brake``: a CAV told to yield gets a ``RouteCommand`` (``set_speed``: its speed less
  ``brake_drop_mps``, valid ``command_validity_s``) on ``/cav/<id>/route_command``, and its own speed back
  (``speed`` -1) when the warning ends. The CAV's ``route_follower`` passes it to its drive interface (in
  simulation the replay node, which applies it between two steps).

Nothing the input carries stops the node: a track array older than ``objects_timeout_s`` on the node's clock,
in another frame, or not decodable skips the cycle; tracks that are not finite, stale, with a bad covariance
or a repeated id are skipped; every skip is counted by reason and summarised every ``log_period_s``.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
from geometry_msgs.msg import Point
from rclpy.node import Node
from std_msgs.msg import Header

from mobility_twin.ros import topics
from mobility_twin.ros.convert import to_time
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.guard import guarded
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import EVENTS, TWIN_STATE
from mobility_twin_core import VEHICLE_CLASSES, CheckpointError
from mobility_twin_msgs.msg import (
    CollisionWarning,
    CollisionWarningArray,
    DetectedObjectArray,
    RouteCommand,
    TrackedObjectArray,
)

WARNINGS_TOPIC = topics.COLLISION_WARNINGS


def cav_warning_topic(cav_id: str) -> str:
    return f"/cav/{cav_id}/collision_warning"


@dataclass(frozen=True)
class CollisionWarningConfig:
    CONFIG_FILE = "config/collision_warning.yaml"

    objects_topic: str = field("/twin/global/objects", "TrackedObjectArray of the twin whose road users are watched")
    twin_id: str = field("global", "the twin's name in the warnings (e.g. global, local/site_0)")
    warnings_topic: str = field(WARNINGS_TOPIC, "where every cycle's CollisionWarningArray goes")
    period_s: float = field(0.1, "seconds between two predictions", low=0.02, high=10.0)
    predictor: str = field("monte_carlo", "how conflicts are predicted: monte_carlo (every pair: the bodies touching "
                           "under random accelerations) or learned (rear-end conflicts only: a model trained on SUMO's "
                           "surrogate-safety conflicts, mobility_twin_models.safety)")
    model: str = field("", "learned: the model's checkpoint ('' = the shipped rear_end_conflict.pt)")
    horizon_s: float = field(4.0, "how far ahead conflicts are predicted (s)", low=0.5, high=10.0)
    step_s: float = field(0.1, "time step of the prediction (s)", low=0.02, high=1.0)
    samples: int = field(32, "Monte Carlo draws per road user (0: the mean motion only)", low=0, high=1024)
    accel_sigma: float = field(1.0, "random constant acceleration of a draw along its heading (m/s^2)", low=0.0,
                               high=10.0)
    lateral_sigma: float = field(0.3, "... across its heading (m/s^2)", low=0.0, high=10.0)
    network: str = field("", "the road network ('' = none; a georeferenced SUMO network, e.g. beijing_cbd): road "
                         "users on a lane move along it")
    lane_lateral_sigma: float = field(0.05, "... across its heading on a known lane (m/s^2)", low=0.0, high=10.0)
    signals_topic: str = field(topics.SIGNALS, "SignalStateArray: the lights' phases, read with a network: a road "
                                               "user a red light will stop is held at its line ('' = none)")
    signals_max_age_s: float = field(1.0, "signal phases older than this (twin time) count as unknown (s)", low=0.0,
                                     high=3600.0)
    views_topics: tuple[str, ...] = field([], "learned: DetectedObjectArray topics (the site's RSU and CAV "
                                          "detections) whose LiDAR views tell whether the road between a follower "
                                          "and the road user ahead was in plain view ([] = none)")
    max_unseen_gap_m: float = field(0.0, "learned, with views_topics: a follower with a stretch at least this long "
                                    "of the road to the road user ahead that no view saw clear (a car the twin does "
                                    "not hold may stand there) is not warned (m; 0 = off)", low=0.0, high=200.0)
    views_max_age_s: float = field(0.5, "a view older than this at the twin's time takes no part (s; with none "
                                   "fresh the gate is skipped and counted)", low=0.05, high=10.0)
    margin_m: float = field(0.2, "added to each body disc's radius (m)", low=0.0, high=5.0)
    p_on: float = field(0.5, "a warning starts at this conflict probability ...", low=0.01, high=1.0)
    ttc_on_s: float = field(2.0, "... and a time to collision at most this (s)", low=0.1, high=10.0)
    p_off: float = field(0.25, "a warning holds while the probability stays at this ...", low=0.01, high=1.0)
    ttc_off_s: float = field(4.0, "... and the time to collision at most this (s)", low=0.1, high=10.0)
    confirm: int = field(2, "consecutive cycles above the start bars before a warning starts", low=1, high=100)
    hold_s: float = field(1.0, "a warning ends after this long below the hold bars (s)", low=0.0, high=60.0)
    refractory_s: float = field(2.0, "an ended pair is not warned again this soon (s)", low=0.0, high=600.0)
    max_age_s: float = field(1.0, "tracks whose last measurement is older than this are skipped (s)", low=0.01,
                             high=60.0)
    objects_timeout_s: float = field(1.0, "skip the cycle when the newest track array is older than this (s)", low=0.01,
                                     high=3600.0)
    classes: tuple[int, ...] = field([int(c) for c in VEHICLE_CLASSES], "TrackedObject.object_class values "
                                     "watched (1 car, 2 truck, 3 bus, 4 motorcycle; 5 pedestrian)", low=0, high=255)
    cav_prefix: str = field("cav_", "vehicle ids starting with this have a V2X topic /cav/<id>/collision_warning")
    brake: bool = field(False, "send a CAV told to yield a speed command (/cav/<id>/route_command)")
    brake_drop_mps: float = field(4.0, "brake: the commanded speed is the CAV's speed less this (m/s)", low=0.0,
                                  high=40.0)
    command_validity_s: float = field(1.0, "brake: validity of the speed command (s)", low=0.0, high=60.0)
    seed: int = field(0, "seed of the Monte Carlo draws", low=0, high=2**31 - 1)
    log_period_s: float = field(10.0, "seconds between summary log lines", low=0.1, high=86400.0)

    def check(self) -> None:
        if self.predictor not in ("monte_carlo", "learned"):
            raise ValueError(f"predictor must be monte_carlo or learned, not {self.predictor!r}")
        if self.p_off > self.p_on or self.ttc_off_s < self.ttc_on_s:
            raise ValueError("p_off must be <= p_on and ttc_off_s >= ttc_on_s (hysteresis)")
        if self.step_s > self.horizon_s:
            raise ValueError("step_s must be <= horizon_s")


def warning_messages(w, state: int, stamp, frame_id: str, ids: dict[int, str]) -> list[CollisionWarning]:
    """The two parties' ``CollisionWarning`` of one :class:`~mobility_twin.safety.ActiveWarning`."""
    c = w.conflict
    out = []
    for me, other, yields in ((c.a, c.b, c.yield_a), (c.b, c.a, c.yield_b)):
        out.append(CollisionWarning(
            header=Header(stamp=stamp, frame_id=frame_id), warning_id=f"{w.a}-{w.b}-{w.started:.1f}", state=state,
            track_id=int(me), vehicle_id=ids.get(int(me), ""), other_track_id=int(other),
            other_vehicle_id=ids.get(int(other), ""), kind=int(c.kind), time_to_conflict=float(c.ttc_s),
            post_encroachment_time=float(c.pet_s), probability=float(c.probability),
            min_distance=float(c.min_distance_m), conflict_point=Point(x=c.point[0], y=c.point[1], z=0.0),
            should_yield=bool(yields)))
    return out


class CollisionWarningNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("collision_warning", **kwargs)
        self.config = cfg = declare_config(self, CollisionWarningConfig)
        from mobility_twin.ros.road_network import LatestSignals, load_map_roads
        from mobility_twin.safety import (
            ConflictPredictor,
            LaneHeadings,
            PredictorConfig,
            WarningConfig,
            WarningTracker,
        )

        self.lanes = LaneHeadings(load_map_roads(cfg.network, cfg.CONFIG_FILE)) if cfg.network else None
        self.counts: Counter = Counter()
        # the views gate: the learned predictor, a gap to judge by, and views to judge it from
        views_gate = cfg.predictor == "learned" and cfg.max_unseen_gap_m > 0 and bool(cfg.views_topics)
        self.signals = LatestSignals(self, cfg.signals_topic if cfg.network else "", cfg.signals_max_age_s,
                                     self.counts)
        try:
            rule = WarningConfig(p_on=cfg.p_on, ttc_on_s=cfg.ttc_on_s, p_off=cfg.p_off, ttc_off_s=cfg.ttc_off_s,
                                 confirm=cfg.confirm, hold_s=cfg.hold_s, refractory_s=cfg.refractory_s)
            if cfg.predictor == "learned":
                from mobility_twin.safety.learned import LearnedConflictPredictor, learned_warning_config
                from mobility_twin_models.safety.model import DEFAULT_CHECKPOINT, load_checkpoint

                model, _ = load_checkpoint(cfg.model or DEFAULT_CHECKPOINT)
                self.predictor = LearnedConflictPredictor(
                    model, max_age_s=cfg.max_age_s,
                    max_unseen_gap_m=cfg.max_unseen_gap_m if views_gate else None)
                rule = learned_warning_config(rule, self.predictor.horizon_s)
            else:
                self.predictor = ConflictPredictor(PredictorConfig(
                    horizon_s=cfg.horizon_s, step_s=cfg.step_s, samples=cfg.samples, accel_sigma=cfg.accel_sigma,
                    lateral_sigma=cfg.lateral_sigma, lane_lateral_sigma=cfg.lane_lateral_sigma, margin_m=cfg.margin_m,
                    max_age_s=cfg.max_age_s, seed=cfg.seed))
            self.warnings = WarningTracker(rule)
        except (ValueError, CheckpointError) as err:
            raise ConfigurationError(f"collision_warning: {err} (parameters predictor, model and the others in "
                                     f"{cfg.CONFIG_FILE})") from None
        self._raw: bytes | None = None
        self._raw_at = -math.inf
        self._last_stamp = -math.inf
        self._last_ids: dict[int, str] = {}
        self._last_tracks = None
        guard = guarded(self, self.counts, "twin tracks")
        self.create_subscription(TrackedObjectArray, cfg.objects_topic, guard(self._on_objects), TWIN_STATE, raw=True)
        self.views = None
        if views_gate:
            from mobility_twin.safety.views import SensorViews

            self.views = SensorViews(cfg.views_max_age_s)
            view_guard = guarded(self, self.counts, "sensor views")
            for topic in cfg.views_topics:
                self.create_subscription(DetectedObjectArray, topic, view_guard(self._on_view), TWIN_STATE,
                                         raw=True)
        self.pub = self.create_publisher(CollisionWarningArray, cfg.warnings_topic, EVENTS)
        self.cav_pubs: dict[str, object] = {}
        self.cmd_pubs: dict[str, object] = {}
        self.braking: dict[str, tuple[int, int]] = {}  # CAV -> the warning pair it brakes for
        self.cycles = self.predicted = self.started = self.commands = 0
        self.decide_s = 0.0
        self.timer = self.create_timer(cfg.period_s, guarded(self, self.counts, "cycle")(self.on_cycle))
        self.last_log = time.monotonic()
        self.get_logger().info(
            f"{cfg.objects_topic} -> {cfg.warnings_topic} + /cav/<id>/collision_warning every {cfg.period_s:g} s, "
            + (f"learned rear-end model (horizon {self.predictor.horizon_s:g} s), warn at p >= {cfg.p_on:g}"
               if cfg.predictor == "learned" else
               f"horizon {cfg.horizon_s:g} s, {cfg.samples} draws, warn at p >= {cfg.p_on:g} and TTC <= "
               f"{cfg.ttc_on_s:g} s") + f"{', CAVs told to yield brake' if cfg.brake else ''}"
            f"{f', lanes of {cfg.network}' if self.lanes is not None else ', no road network'}"
            f"{f', no warning across {cfg.max_unseen_gap_m:g} m unseen ({len(cfg.views_topics)} views)' if self.views else ''}")

    def now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_objects(self, data: bytes) -> None:
        self._raw, self._raw_at = data, self.now_s()

    def _on_view(self, data: bytes) -> None:
        """A LiDAR frame's detections: what it saw of the road (its visibility), kept as its sensor's view."""
        from mobility_twin.perception.visibility import Visibility
        from mobility_twin.ros.cdr import CdrError, decode_detections

        try:
            table = decode_detections(data)
            visibility = None if table.visibility is None else Visibility.unpacked(*table.visibility)
        except (CdrError, ValueError, IndexError):
            self.counts["undecodable_views"] += 1
            return
        if visibility is None:
            self.counts["frames_without_view"] += 1
            return
        if table.frame_id not in ("", "map"):  # (the views' bearings and the sensor's place are in map)
            self.counts["views_in_other_frame"] += 1
            return
        self.views.add(table.source_id, table.stamp_ns * 1e-9, visibility, table.sensor_pose[:2])

    # ------------------------------------------------------------------------------------------ the cycle
    def on_cycle(self) -> None:
        from mobility_twin.ros.cdr import CdrError, decode_tracks
        from mobility_twin.ros.tables import table_to_tracks
        from mobility_twin.safety import Motion

        cfg = self.config
        self._maybe_log()
        if self._raw is None:
            self.counts["no_tracks_yet"] += 1
            return
        try:
            table = decode_tracks(self._raw)
        except (CdrError, ValueError, IndexError) as err:
            self.counts["undecodable_tracks"] += 1
            self.get_logger().warning(f"track array not decodable: {err}", throttle_duration_sec=10.0)
            self._raw = None
            return
        stamp = table.stamp
        if self.now_s() - stamp > cfg.objects_timeout_s:
            self.counts["tracks_stale"] += 1
            self.get_logger().warning(f"cycle skipped: the newest tracks are {self.now_s() - stamp:.1f} s old",
                                      throttle_duration_sec=10.0)
            if self.warnings.active:  # no warning outlives the data it stands on: end them (and release brakes)
                ended = self.warnings.forget(set(self.warnings_ids()))
                self._publish(ended, table.stamp_ns, table.frame_id or "map", self._last_ids, self._last_tracks, 0,
                              0.0)
            return
        if stamp <= self._last_stamp:
            return  # nothing new since the last cycle
        self._last_stamp = stamp
        t0 = time.perf_counter()
        tracks = table_to_tracks(table)
        rec = table.records
        watched = np.isin(tracks.object_class, np.asarray(cfg.classes, dtype=np.int64)) & (rec["state"] != 0)
        self.counts["other_class_or_tentative"] += int((~watched).sum())
        tracks = tracks.select(watched)
        yaw_rate = rec["wz"][watched].astype(float) if "wz" in rec.dtype.names else None
        motion = Motion.from_tracks(tracks, stamp, yaw_rate, lanes=self.lanes, signals=self.signals.at(stamp))
        conflicts = self.predictor.predict(replace(motion, views=self.views))
        events = self.warnings.update(stamp, conflicts)
        events += self.warnings.forget(set(self.warnings_ids()) - set(int(i) for i in tracks.ids))
        ids = {int(i): str(v or "") for i, v in zip(tracks.ids, tracks.vehicle_id, strict=True)}
        self._last_ids, self._last_tracks = ids, tracks
        self.decide_s += time.perf_counter() - t0
        self.cycles += 1
        self.predicted += len(tracks)
        self._publish(events, table.stamp_ns, table.frame_id or "map", ids, tracks, len(conflicts),
                      time.perf_counter() - t0)

    def warnings_ids(self):
        for a, b in self.warnings.active:
            yield a
            yield b

    def _publish(self, events, stamp_ns: int, frame_id: str, ids: dict[int, str], tracks, n_conflicts: int,
                 decide_s: float) -> None:
        cfg = self.config
        if not events:
            return
        stamp = to_time(stamp_ns * 1e-9)
        state = {"start": CollisionWarning.STATE_NEW, "update": CollisionWarning.STATE_ONGOING,
                 "end": CollisionWarning.STATE_CLEARED}
        msg = CollisionWarningArray(header=Header(stamp=stamp, frame_id=frame_id), twin_id=cfg.twin_id,
                                    tracks=len(tracks) if tracks is not None else 0, pairs_sampled=n_conflicts,
                                    decision_time=float(decide_s))
        speed = {} if tracks is None else \
            {int(i): float(np.hypot(x[2], x[3])) for i, x in zip(tracks.ids, tracks.x, strict=True)}
        for ev in events:
            self.started += ev.kind == "start"
            for w in warning_messages(ev.warning, state[ev.kind], stamp, frame_id, ids):
                msg.warnings.append(w)
                if w.vehicle_id and w.vehicle_id.startswith(cfg.cav_prefix):
                    self._to_cav(w, ev, speed.get(int(w.track_id), math.nan))
        self.pub.publish(msg)

    def _to_cav(self, w: CollisionWarning, ev, speed: float) -> None:
        cfg = self.config
        cav = w.vehicle_id
        pub = self.cav_pubs.get(cav)
        if pub is None:
            pub = self.cav_pubs[cav] = self.create_publisher(CollisionWarning, cav_warning_topic(cav), EVENTS)
        pub.publish(w)
        if not cfg.brake:
            return
        key = (ev.warning.a, ev.warning.b)
        if ev.kind == "start" and w.should_yield and math.isfinite(speed):
            self._command(cav, max(0.0, speed - cfg.brake_drop_mps), w)
            self.braking[cav] = key
        elif ev.kind == "end" and self.braking.get(cav) == key:
            self._command(cav, -1.0, w)
            del self.braking[cav]

    def _command(self, cav: str, speed: float, w: CollisionWarning) -> None:
        pub = self.cmd_pubs.get(cav)
        if pub is None:
            pub = self.cmd_pubs[cav] = self.create_publisher(RouteCommand, topics.cav_route_command(cav), EVENTS)
        pub.publish(RouteCommand(header=Header(stamp=self.get_clock().now().to_msg(), frame_id=""),
                                 command_id=f"collision-{w.warning_id}-{'brake' if speed >= 0 else 'release'}",
                                 vehicle_id=cav, set_speed=True, speed=float(speed),
                                 validity=float(self.config.command_validity_s)))
        self.commands += 1

    def _maybe_log(self, force: bool = False) -> None:
        if not force and time.monotonic() - self.last_log < self.config.log_period_s:
            return
        self.last_log = time.monotonic()
        counts = self.counts + self.predictor.counts
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v) or "none"
        mean_ms = 1e3 * self.decide_s / self.cycles if self.cycles else 0.0
        self.get_logger().info(
            f"{self.cycles} cycles ({mean_ms:.1f} ms each), {self.predicted} track predictions, {self.started} "
            f"warnings started, {len(self.warnings.active)} active, {self.commands} speed commands; counts: {skipped}")


    def destroy_node(self) -> None:
        if self.context.ok():  # (after Ctrl-C the context is shut down already)
            self._maybe_log(force=True)
        super().destroy_node()


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": CollisionWarningConfig}


def main() -> int:
    return run_node(CollisionWarningNode)


if __name__ == "__main__":
    sys.exit(main())
