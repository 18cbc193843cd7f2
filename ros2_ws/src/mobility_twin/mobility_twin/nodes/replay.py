"""replay: the CARLA-free simulator as a ROS node (T-Drive replay or SUMO city, synthetic LiDAR, odometry, clock).

Publishes /clock (other nodes run with use_sim_time), ground truth on /sim/ground_truth (evaluation
only), the scenario's layout on /infrastructure/layout (latched, as a site's layout node publishes it), the
edge servers' own state reports on /infrastructure/edge_servers/reports (what real servers report of
themselves), and per sensor /rsu/<id>/points, /cav/<id>/points, /cav/<id>/odom, at the scenario's rates;
with V2X on, /edge/<server>/v2x carries the connected vehicles' own reports relayed by each edge server.
The layout message is stamped with the scenario start (sim time). The world is the scenario's (``world:``
section): the T-Drive replay, or SUMO (``mtwin replay --scenario city``), whose LiDARs also see buildings.

Co-simulation (SUMO worlds; the T-Drive replay answers every command on its drive interfaces "not
supported", and its stacks run no route follower):

* ``/infrastructure/signals`` (SignalStateArray): the traffic signals' states, when one changes and at
  least once a sim second: the twin of the signals for route guidance and collision warning.
* ``/cav/<id>/control/route_command`` (RouteCommand, per CAV): the simulated vehicle's drive interface, which
  the CAV's ``route_follower`` passes checked commands to (a new route: ``edges``, from where the vehicle is; a
  destination: ``target_edge``, by the fastest route; and/or a speed). The command is queued and applied
  between two simulation steps (libsumo is not thread-safe), then answered on
  ``/cav/<id>/control/route_command/status`` (RouteCommandStatus: accepted with the new route, or the reason:
  unknown vehicle or road, no route, expired, invalid). A bad command is counted by status (on /diagnostics
  and in the final summary) and never stops the node. ``mobility_twin.ros.route_commands`` has the details.
* ``/cav/<id>/destination`` (RouteRequest, per CAV): the simulated vehicle's mission, its destination road
  (the last road of its route) and the road it is on, whenever the destination changes and every
  ``destination_period_s``: what the route follower asks the route guidance for.

SUMO's own outputs (trip info, surrogate-safety conflicts, statistics) are written into ``output_dir`` (the
run folder: ``mtwin replay`` and ``mtwin eval tracking`` pass one), else the scenario's
``world.output_dir``, else a run folder under the SUMO cache; never the working directory.

Pacing: ``rate`` is the real-time factor (0: as fast as possible). At run time, set the parameter
``paused`` (true/false) to pause and resume, ``seek_to_s`` (>= 0) to jump to that offset from the
scenario start (SUMO: forward only), and ``rate`` to change the pace.

Hardware-in-the-loop (``hil: true``): wall-clock pacing at rate 1, stamps in wall-clock time and no
/clock, so processes on another host consume the topics as from real sensors; an event published later
than ``deadline_tolerance_s`` after its due time is a deadline miss, counted and reported on
/diagnostics and in the final summary. A late event is stamped when it is published (as a sensor stamps
when it measures), and the schedule slips by its lateness: the total slip is reported too. While it slips,
the world runs slower than the stamps, so every velocity the replay reports (V2X, odometry, ground truth) is
scaled by the pace (sim seconds per stamp second over the last 5 s): positions and velocities stay
consistent in stamp time (:func:`mobility_twin_sim.replay.time_dilated`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import Header

from mobility_twin.perception.reports import load_backend, v2x_report_detections
from mobility_twin.ros import topics
from mobility_twin.ros.cdr import (
    TrackTable,
    encode_cloud,
    encode_detections,
    encode_tracks,
    seconds_to_ns,
)
from mobility_twin.ros.convert import to_time, yaw_quaternion
from mobility_twin.ros.entry import ConfigurationError, run_node
from mobility_twin.ros.layout_msg import layout_to_msg
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.qos import CLOCK, EVENTS, LATCHED, SENSOR_STREAM, TWIN_STATE
from mobility_twin.ros.route_commands import STATUS_NAMES, Refusal, signals_msg, status_msg, world_commands
from mobility_twin.ros.tables import detections_to_table
from mobility_twin_msgs.msg import (
    DetectedObjectArray,
    EdgeServerState,
    EdgeServerStateArray,
    RouteCommand,
    RouteCommandStatus,
    RouteRequest,
    SignalStateArray,
    TrackedObjectArray,
)
from mobility_twin_msgs.msg import Layout as LayoutMsg


@dataclass(frozen=True)
class ReplayConfig:
    CONFIG_FILE = "config/replay.yaml"

    scenario: str = field("default", "scenario file, or the name of one shipped in sim/scenarios")
    rate: float = field(1.0, "real-time factor; 0 runs as fast as possible (changeable at run time)", low=0.0,
                        high=1000.0, dynamic=True)
    start_offset_s: float = field(0.0, "start this many seconds after the scenario start", low=0.0, high=1e7)
    duration_s: float = field(0.0, "stop after this much sim time (0: at the scenario end)", low=0.0, high=1e7)
    lidar: bool = field(True, "simulate the LiDARs (false: trajectories, odometry and ground truth only)")
    hil: bool = field(False, "hardware-in-the-loop: wall-clock pacing and stamps, no /clock, deadlines counted")
    deadline_tolerance_s: float = field(0.02, "an event published later than this after its due time is a miss",
                                        low=0.0, high=60.0)
    progress_period_s: float = field(10.0, "wall seconds between progress lines", low=0.1, high=86400.0)
    paused: bool = field(False, "pause (true) / resume (false) at run time", dynamic=True)
    seek_to_s: float = field(-1.0, "set to an offset >= 0 at run time to jump there", dynamic=True)
    exit_when_done: bool = field(True, "end the process when the scenario is over (else idle)")
    output_dir: str = field("", "folder for the world's own outputs (SUMO: tripinfo.xml, ssm.xml, stats.xml); "
                                "empty: the scenario's world.output_dir, else a run folder under the SUMO cache")
    destination_period_s: float = field(30.0, "sim seconds between two messages of a CAV's unchanged destination",
                                        low=1.0, high=86400.0)
    signal_period_s: float = field(1.0, "sim seconds between two traffic-signal messages when no signal changes",
                                   low=0.01, high=3600.0)


class ReplayNode(Node):
    def __init__(self) -> None:
        super().__init__("replay")
        self.config = declare_config(self, ReplayConfig)
        self.exit_code: int | None = None
        from mobility_twin_sim.replay import Replay, ReplayOptions
        from mobility_twin_sim.scenario import ScenarioError, load_scenario
        from mobility_twin_sim.sumo.errors import SumoError
        from mobility_twin_sim.world import build_world

        started = time.monotonic()
        try:
            scenario = load_scenario(self.config.scenario)
        except ScenarioError as err:
            raise ConfigurationError(f"parameter 'scenario': {err}") from None
        log = self.get_logger()
        self.layout_pub = self.create_publisher(LayoutMsg, topics.LAYOUT, LATCHED)
        try:
            self.world = build_world(scenario, run_dir=self.config.output_dir or None, start=False,
                                     log=lambda *parts: log.info(" ".join(str(p) for p in parts)))
            # the layout is known before SUMO simulates its warm-up (minutes in a city): the twins start now
            self.layout_pub.publish(layout_to_msg(self.world.layout, self.world.start_s))
            if self.world.kind == "sumo":
                self.world.open()
        except SumoError as err:  # a network that does not load, an unknown network or edge: a clear line
            raise ConfigurationError(f"parameter 'scenario': {scenario.source}: {err}") from None
        if self.world.kind == "tdrive_replay":
            report = self.world.load_report.to_dict()
            loaded = (f"{len(self.world.fleet)} taxis; T-Drive lines read {report['lines_read']}, kept "
                      f"{report['kept']}, skipped {report['skipped']}")
        else:
            loaded = (f"SUMO on {self.world.statics.label}, {len(self.world.statics.structures or ())} buildings, "
                      f"RSUs at junctions {', '.join(self.world.junctions) or '(given positions)'}, outputs to "
                      f"{self.world.backend.run_dir}")
        log.info(f"scenario {scenario.name!r}: {len(self.world.rsus)} RSUs, {len(self.world.cavs)} CAVs, "
                 f"{len(self.world.edge_servers)} edge servers; {loaded} (built in {time.monotonic() - started:.1f} s)")
        self.replay = Replay(self.world, ReplayOptions(lidar=self.config.lidar))
        if self.config.start_offset_s:
            self.replay.seek(self.config.start_offset_s)
        self.end_offset = self.replay.duration
        if self.config.duration_s > 0:
            self.end_offset = min(self.end_offset, self.replay.position + self.config.duration_s)
        self._control = threading.Lock()
        self._rate = 1.0 if self.config.hil else self.config.rate
        self._paused = self.config.paused
        self._seek: float | None = None
        self.add_on_set_parameters_callback(self._on_parameters)

        self.clock_pub = None if self.config.hil else self.create_publisher(Clock, topics.CLOCK, CLOCK)
        self.gt_pub = self.create_publisher(TrackedObjectArray, topics.GROUND_TRUTH, TWIN_STATE)
        self.server_pub = self.create_publisher(EdgeServerStateArray, topics.EDGE_SERVER_REPORTS, TWIN_STATE)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", TWIN_STATE)
        self.cloud_pubs = {r.rsu_id: self.create_publisher(PointCloud2, topics.rsu_points(r.rsu_id), SENSOR_STREAM)
                           for r in self.world.rsus}
        for cav in self.world.cavs:
            self.cloud_pubs[cav.cav_id] = self.create_publisher(PointCloud2, topics.cav_points(cav.cav_id),
                                                                SENSOR_STREAM)
        self.odom_pubs = {c.cav_id: self.create_publisher(Odometry, topics.cav_odometry(c.cav_id), SENSOR_STREAM)
                          for c in self.world.cavs}
        self.v2x_pubs = {}
        if scenario.v2x.penetration > 0:
            load_backend()  # now, not in the paced loop at the first report
            self.v2x_pubs = {e.server_id: self.create_publisher(DetectedObjectArray, topics.edge_v2x(e.server_id),
                                                                TWIN_STATE) for e in self.world.edge_servers}
        self.signals_pub = None
        if self.world.kind == "sumo":
            self.signals_pub = self.create_publisher(SignalStateArray, topics.SIGNALS, TWIN_STATE)
        # the control interface: commands queue up here and are applied by the worker between two steps
        self._commands: queue.Queue[tuple[str, RouteCommand]] = queue.Queue()
        self.status_pubs = {c.cav_id: self.create_publisher(RouteCommandStatus, topics.cav_control_status(c.cav_id),
                                                            EVENTS) for c in self.world.cavs}
        for cav in self.world.cavs:
            self.create_subscription(RouteCommand, topics.cav_control_command(cav.cav_id),
                                     lambda msg, cav_id=cav.cav_id: self._commands.put((cav_id, msg)), EVENTS)
        self.destination_pubs = {}  # the CAVs' missions: a SUMO world's CAVs drive to destinations
        if self.world.kind == "sumo":
            self.destination_pubs = {c.cav_id: self.create_publisher(RouteRequest, topics.cav_destination(c.cav_id),
                                                                     EVENTS) for c in self.world.cavs}
        self._destinations: dict[str, tuple[str, float]] = {}  # CAV -> (destination, sim time published)
        self._destinations_checked = -1e18  # sim time the CAVs' routes were last looked at
        self.command_counts: Counter = Counter()  # route commands by status name
        self._last_signals: tuple[float, tuple[str, ...]] | None = None  # (stamp, states) last published
        self._now_stamp = self.world.start_s + self.replay.position  # the clock commands are stamped in
        self.outputs: dict = {}

        self._stopping = False
        self.stats = {"ticks": 0, "frames": 0, "points": 0, "deadline_misses": 0, "max_lateness_s": 0.0,
                      "slip_s": 0.0, "route_commands": 0}
        self._worker = threading.Thread(target=self._run, name="replay", daemon=True)
        self._worker.start()

    def close(self) -> None:
        """Stop the worker before the node is destroyed (called by run_node)."""
        self._stopping = True
        self._worker.join(timeout=5.0)

    # ---------------------------------------------------------------------------------- run-time control
    def _on_parameters(self, params) -> SetParametersResult:
        with self._control:
            for p in params:
                if p.name == "paused":
                    self._paused = bool(p.value)
                    self.get_logger().info("paused" if self._paused else "resumed")
                elif p.name == "seek_to_s" and p.value is not None and float(p.value) >= 0:
                    if not self.world.seekable and float(p.value) < self.replay.position:
                        return SetParametersResult(successful=False, reason=f"the {self.world.kind} world only goes "
                                                   f"forward (now at {self.replay.position:.1f} s)")
                    self._seek = float(p.value)
                elif p.name == "rate" and not self.config.hil:
                    if float(p.value) < 0:
                        return SetParametersResult(successful=False, reason="rate must be >= 0")
                    self._rate = float(p.value)
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------------------------- the loop
    def _run(self) -> None:
        try:
            self._loop()
        except Exception as err:
            if self._stopping or not self.context.ok():
                return  # shutting down (Ctrl-C): publishing into a closed context is expected, not a failure
            self.get_logger().error(f"replay failed: {err!r}")
            self.exit_code = 1
        finally:
            self._close_world()

    def _close_world(self) -> None:
        """End the world from the thread that advanced it (SUMO writes its outputs now)."""
        try:
            self.outputs = self.replay.close()
        except Exception as err:  # a world that cannot write its outputs: say so, the run itself is done
            self.get_logger().error(f"closing the world failed: {err!r}")
            return
        if self.outputs.get("outputs"):
            files = ", ".join(self.outputs["outputs"].values())
            self.get_logger().info(f"world outputs: {files}; counters {self.outputs.get('counters', {})}")

    def _loop(self) -> None:
        from mobility_twin_sim.replay import Pace, time_dilated

        wall0, sim0 = time.monotonic(), self.replay.position
        last_progress = wall0
        stamp_offset = time.time() - self.world.start_s - sim0  # HIL: wall stamp = sim time + offset
        pace = Pace()  # HIL: sim seconds per stamp second (below 1 while the schedule slips)
        pace_now = 1.0
        while self.exit_code is None and not self._stopping:
            with self._control:
                paused, seek, rate = self._paused, self._seek, self._rate
                self._seek = None
            self._apply_commands()
            self._publish_destinations()
            if seek is not None:
                try:
                    self.replay.seek(seek)
                except ValueError as err:  # a backward seek in a world that only goes forward
                    self.get_logger().warning(f"seek refused: {err}")
                    continue
                self.get_logger().info(f"seek to {self.replay.position:.1f} s")
                wall0, sim0 = time.monotonic(), self.replay.position
                stamp_offset = time.time() - self.world.start_s - sim0
                pace.reset()
            if paused:
                time.sleep(0.05)
                wall0, sim0 = time.monotonic(), self.replay.position
                stamp_offset = time.time() - self.world.start_s - sim0
                pace.reset()
                continue
            nxt = self.replay.next_time()
            if nxt is None or nxt > self.end_offset + 1e-9:
                self._finish()
                return
            # compute and encode the event first (ray casting takes milliseconds), then publish it when it is
            # due: the sensors' data leave on schedule, as a real sensor's would
            tick = self.replay.step()
            stamp = tick.t + stamp_offset if self.config.hil else tick.t
            self._now_stamp = stamp
            signals = self._signals_due(tick, stamp)
            batch = self._encode(time_dilated(tick, pace_now), stamp, signals)
            slipped = False
            if rate > 0:
                due = wall0 + (nxt - sim0) / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                lateness = max(0.0, time.monotonic() - due)
                self.stats["max_lateness_s"] = max(self.stats["max_lateness_s"], lateness)
                if lateness > self.config.deadline_tolerance_s:
                    self.stats["deadline_misses"] += 1
                    if self.config.hil:
                        # a real sensor stamps when it measures: slip the schedule rather than stamp the past
                        wall0 += lateness
                        stamp_offset += lateness
                        self.stats["slip_s"] += lateness
                        stamp = tick.t + stamp_offset
                        slipped = True
            if self.config.hil:
                pace_now = pace.update(stamp, tick.t)
                if slipped:
                    batch = self._encode(time_dilated(tick, pace_now), stamp, signals)
            for publisher, message in batch:
                publisher.publish(message)
            self.stats["ticks"] += 1
            self.stats["frames"] += len(tick.frames)
            self.stats["points"] += sum(len(f.scan) for f in tick.frames)
            now = time.monotonic()
            if now - last_progress >= self.config.progress_period_s:
                last_progress = now
                self._progress(now - wall0, self.replay.position - sim0)

    # ---------------------------------------------------------------------------------- co-simulation control
    def _apply_commands(self) -> None:
        """Apply the route commands that arrived since the last step (in the worker: between two steps)."""
        while True:
            try:
                cav_id, msg = self._commands.get_nowait()
            except queue.Empty:
                return
            now = self._now_stamp
            commands = world_commands(msg, cav_id, now)
            if isinstance(commands, Refusal):
                result = commands
            else:
                for command in commands:
                    result = self.replay.command(command)
                    if not result.accepted:
                        break
            status = status_msg(msg, cav_id, now, result, self.world.route_of(cav_id), self.world.road_of(cav_id))
            name = STATUS_NAMES.get(status.status, str(status.status))
            self.command_counts[name] += 1
            self.stats["route_commands"] += 1
            if status.status == RouteCommandStatus.STATUS_ACCEPTED:
                self.get_logger().info(f"route command {msg.command_id!r} for {cav_id} applied: now on "
                                       f"{status.road or '?'}, route {' '.join(status.route[:6])}"
                                       f"{' ...' if len(status.route) > 6 else ''}")
            else:
                self.get_logger().warning(f"route command {msg.command_id!r} for {cav_id} refused ({name}): "
                                          f"{status.reason}")
            self.status_pubs[cav_id].publish(status)

    def _publish_destinations(self) -> None:
        """Each CAV's destination when it changed or ``destination_period_s`` passed (in the worker; looked at
        once a sim second). A world that cannot say is counted, never stops the replay."""
        t = self.replay.position
        if not self.destination_pubs or t - self._destinations_checked < 1.0:
            return
        self._destinations_checked = t
        for cav, pub in self.destination_pubs.items():
            try:
                route = self.world.route_of(cav)
                road = self.world.road_of(cav) if route else ""
            except Exception as err:  # the simulator's error: the mission is left out this second
                self.command_counts["destination_error"] += 1
                self.get_logger().warning(f"{cav}'s destination: {type(err).__name__}: {err}",
                                          throttle_duration_sec=10.0)
                continue
            if not route:
                continue
            last = self._destinations.get(cav)
            if last is not None and last[0] == route[-1] and t - last[1] < self.config.destination_period_s:
                continue
            self._destinations[cav] = (route[-1], t)
            pub.publish(RouteRequest(header=Header(stamp=to_time(self._now_stamp), frame_id="map"),
                                     request_id=f"{cav}-mission", vehicle_id=cav, destination_edge=route[-1],
                                     current_edge=road))

    def _signals_due(self, tick, stamp: float):
        """The signals of this tick when they are to be published: a state changed, or a period has passed."""
        gt = tick.ground_truth
        if self.signals_pub is None or gt is None or gt.signals is None or not len(gt.signals):
            return None
        last = self._last_signals
        if last is not None and last[1] == gt.signals.state and tick.t - last[0] < self.config.signal_period_s - 1e-9:
            return None
        self._last_signals = (tick.t, gt.signals.state)
        return gt.signals

    def _encode(self, tick, stamp: float, signals=None) -> list[tuple]:
        """(publisher, message) pairs of a tick, in publishing order: the clock (sim time: it advances before
        the data of its instant), what the stack consumes (V2X relays, odometry, clouds), the server reports,
        the traffic signals, then the evaluation-only ground truth."""
        batch = [] if self.clock_pub is None else [(self.clock_pub, Clock(clock=to_time(stamp)))]
        batch += [(self.v2x_pubs[report.server_id], self._v2x(report, stamp)) for report in tick.v2x]
        batch += [(self.odom_pubs[odo.cav_id], self._odometry(odo, stamp)) for odo in tick.odometry]
        for frame in tick.frames:
            s = frame.scan
            batch.append((self.cloud_pubs[frame.sensor_id],
                          encode_cloud(s.points, s.intensity, s.ring, frame.frame_id, seconds_to_ns(stamp))))
        if tick.servers is not None:
            batch.append((self.server_pub, self._servers(tick.servers, stamp)))
        if signals is not None:
            batch.append((self.signals_pub, signals_msg(signals, stamp)))
        if tick.ground_truth is not None:
            batch.append((self.gt_pub, self._ground_truth(tick.ground_truth, stamp)))
        return batch

    def _progress(self, wall: float, sim: float) -> None:
        total = self.end_offset
        pos = self.replay.position
        rtf = sim / wall if wall > 0 else 0.0
        self.get_logger().info(
            f"sim {pos:7.1f} / {total:.1f} s ({100 * pos / max(total, 1e-9):3.0f}%)  RTF {rtf:5.2f}  "
            f"frames {self.stats['frames']}  deadline misses {self.stats['deadline_misses']}"
        )
        diag = DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()))
        level = DiagnosticStatus.OK if self.stats["deadline_misses"] == 0 else DiagnosticStatus.WARN
        diag.status.append(DiagnosticStatus(
            level=level, name="replay", message=f"{100 * pos / max(total, 1e-9):.0f}% done, RTF {rtf:.2f}",
            values=[KeyValue(key=k, value=str(v)) for k, v in self.stats.items()] + [
                KeyValue(key=f"route_commands_{k}", value=str(v)) for k, v in sorted(self.command_counts.items())] + [
                KeyValue(key="position_s", value=f"{pos:.3f}"), KeyValue(key="rtf", value=f"{rtf:.3f}")],
        ))
        self.diag_pub.publish(diag)

    def _finish(self) -> None:
        self.get_logger().info(
            f"scenario done at {self.replay.position:.1f} s: {self.stats['ticks']} ticks, {self.stats['frames']} "
            f"LiDAR frames, {self.stats['points']} points, deadline misses {self.stats['deadline_misses']} "
            f"(max lateness {1000 * self.stats['max_lateness_s']:.1f} ms, total slip {self.stats['slip_s']:.2f} s)"
            + (f"; route commands {dict(self.command_counts)}" if self.command_counts else "")
        )
        if self.config.exit_when_done:
            self.exit_code = 0

    # ---------------------------------------------------------------------------------- messages
    def _odometry(self, odo, stamp: float) -> Odometry:
        msg = Odometry()
        msg.header = Header(stamp=to_time(stamp), frame_id="map")
        msg.child_frame_id = odo.base_frame
        msg.pose.pose.position.x, msg.pose.pose.position.y = odo.x, odo.y
        msg.pose.pose.orientation = yaw_quaternion(odo.yaw)
        cov = [0.0] * 36
        cov[0] = cov[7] = odo.sigma_position**2
        cov[14] = cov[21] = cov[28] = 1e6  # z, roll, pitch not measured
        cov[35] = odo.sigma_yaw**2
        msg.pose.covariance = cov
        msg.twist.twist.linear.x = odo.speed  # in the child (base_link) frame
        msg.twist.twist.angular.z = odo.yaw_rate
        tcov = [0.0] * 36
        tcov[0] = odo.sigma_speed**2
        tcov[35] = 0.01
        msg.twist.covariance = tcov
        return msg

    def _ground_truth(self, gt, stamp: float) -> bytes:
        """TrackedObjectArray of every road user (vehicle_id = the world's id: the taxi id for the T-Drive
        replay; site_id 'outside' outside the area)."""
        s, b = gt.state, gt.boxes
        n = len(s)
        rec = TrackTable.allocate(n)
        rec["track_id"] = s.ids
        rec["object_class"] = s.object_class
        rec["state"] = 1
        rec["existence"] = 1.0
        rec["px"], rec["py"], rec["pz"] = s.x, s.y, b.height / 2
        rec["qz"], rec["qw"] = np.sin(s.heading / 2), np.cos(s.heading / 2)
        rec["vx"], rec["vy"] = s.velocity()
        rec["length"], rec["width"], rec["height"] = b.length, b.width, b.height
        ns = seconds_to_ns(stamp)
        rec["lm_sec"], rec["lm_nanosec"] = ns // 1_000_000_000, ns % 1_000_000_000
        ids = [str(int(i)) for i in s.ids]
        sites = ["" if inside else "outside" for inside in gt.in_area]
        return encode_tracks(TrackTable(ns, "map", "ground_truth", rec, [[] for _ in range(n)], sites, ids))

    def _v2x(self, report, stamp: float) -> bytes:
        """Self-reports of the connected vehicles a server relays (DetectedObjectArray, SOURCE_V2X)."""
        return encode_detections(detections_to_table(v2x_report_detections(self.world, report, stamp)))

    def _servers(self, servers: list[dict], stamp: float) -> EdgeServerStateArray:
        msg = EdgeServerStateArray(header=Header(stamp=to_time(stamp), frame_id="map"))
        for s in servers:
            free = s["cpu_hz"] * (1.0 - s["load"])
            msg.servers.append(EdgeServerState(
                server_id=s["server_id"], position=Point(x=s["x"], y=s["y"]), coverage_radius=s["coverage_radius"],
                cpu_frequency_max=s["cpu_hz"], cpu_frequency_estimate=free, cpu_frequency_deviation=0.0,
                load=s["load"], vehicles_served=s["vehicles_served"],
            ))
        return msg


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": ReplayConfig}


def main() -> int:
    return run_node(ReplayNode)

