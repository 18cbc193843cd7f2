"""recorder: the chosen topics of the live graph into an MCAP file that `ros2 bag` and Foxglove read.

Records, raw (the CDR bytes as received), every topic whose name matches ``topics`` (names or regular
expressions; default: the layout, ground truth, twins, relations, state, offloading decisions, migrations,
detections, odometry and /clock) and not ``exclude``, plus the point clouds with ``clouds: true``. Topics
are discovered on the graph, also those that appear later; each is subscribed with the QoS its publishers
offer (best effort for clouds, transient local for the layout on /infrastructure/layout). The file is closed, with its summary and
statistics, on Ctrl-C, SIGTERM, shutdown, or after ``duration_s``. See mobility_twin.recording for the format.

A crash (``kill -9``) loses at most the last ``flush_interval_s`` of messages: the chunk in progress is
written and flushed to the operating system that often; ``mtwin recording repair FILE`` then rewrites
the file with its summary. A recorder started again (``respawn``) never overwrites a recording: when
``output`` exists it writes ``<name>.1.mcap`` (``.2``, ...) beside it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from mobility_twin.recording import RecordingWriter, TopicSelection
from mobility_twin.recording.selection import CLOUDS, DEFAULT_EXCLUDE, DEFAULT_TOPICS
from mobility_twin.ros.entry import run_node
from mobility_twin.ros.params import declare_config, field
from mobility_twin.ros.recorder import TopicRecorder


@dataclass(frozen=True)
class RecorderConfig:
    output: str = field("", "the .mcap file to write ('' = runs/record-<date>-<time>.mcap)")
    topics: tuple[str, ...] = field(list(DEFAULT_TOPICS), "topic names or regular expressions (whole name) to record")
    exclude: tuple[str, ...] = field(list(DEFAULT_EXCLUDE), "topic names or regular expressions not to record")
    clouds: bool = field(False, "also record the point clouds (/rsu/*/points, /cav/*/points): big")
    compression: str = field("zstd", "chunk compression: zstd, lz4 or none")
    chunk_size_kb: int = field(1024, "kB of messages per MCAP chunk (written when full)")
    flush_interval_s: float = field(1.0, "write the chunk in progress and flush the file once its oldest message "
                                    "has waited this long (s): at most this much is lost if the recorder is "
                                    "killed; 0: only when a chunk is full")
    depth: int = field(100, "queue depth of the subscriptions")
    discovery_period_s: float = field(0.5, "how often to look for new topics on the graph (s)")
    duration_s: float = field(0.0, "stop after this long (s); 0: until Ctrl-C or shutdown")
    stats_period_s: float = field(10.0, "seconds between progress log lines (0: none)")


def default_output() -> Path:
    return Path("runs") / time.strftime("record-%Y%m%d-%H%M%S.mcap")


def unused_path(path: Path) -> Path:
    """``path`` if nothing is there, else the first free ``<stem>.<n><suffix>`` beside it."""
    if not path.exists():
        return path
    n = 1
    while (candidate := path.with_name(f"{path.stem}.{n}{path.suffix}")).exists():
        n += 1
    return candidate


class RecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("recorder")
        self.config = cfg = declare_config(self, RecorderConfig)
        self.exit_code: int | None = None
        selection = TopicSelection(cfg.topics + (CLOUDS if cfg.clouds else ()), cfg.exclude)
        wanted = Path(cfg.output) if cfg.output else default_output()
        path = unused_path(wanted)
        if path != wanted:
            self.get_logger().warning(f"{wanted} exists (an earlier run, or this recorder before a restart): "
                                      f"writing {path} instead; if {wanted.name} was cut short, "
                                      f"`mtwin recording repair {wanted}` rewrites it whole")
        self.writer = RecordingWriter(path, compression=cfg.compression, chunk_size=cfg.chunk_size_kb * 1024,
                                      flush_interval_s=cfg.flush_interval_s or None)
        self.get_logger().info(f"recording to {self.writer.path}"
                               + (f" (flushed every {cfg.flush_interval_s:g} s)" if cfg.flush_interval_s else ""))
        self.recorder = TopicRecorder(
            self, self.writer, selection, discovery_period_s=cfg.discovery_period_s, depth=cfg.depth,
            on_new_topic=lambda topic, type_name: self.get_logger().info(f"recording {topic} [{type_name}]"))
        self.started = time.monotonic()
        steady = Clock(clock_type=ClockType.STEADY_TIME)  # wall seconds, also under use_sim_time
        if cfg.duration_s > 0:
            self.create_timer(cfg.duration_s, self._done, clock=steady)
        if cfg.stats_period_s > 0:
            self.create_timer(cfg.stats_period_s, self._log_stats, clock=steady)
        if cfg.flush_interval_s > 0:  # also when no message comes to trigger it
            self.create_timer(max(0.05, cfg.flush_interval_s / 4), self.writer.flush_if_due, clock=steady)

    def _done(self) -> None:
        self.exit_code = 0

    def _log_stats(self) -> None:
        s = self.writer.summary()
        size = sum(t.bytes for t in s.topics.values())
        self.get_logger().info(f"{s.message_count} messages on {len(s.topics)} topics ({size / 1e6:.1f} MB) "
                               f"in {time.monotonic() - self.started:.0f} s")

    def close(self) -> None:
        if self.writer.closed:
            return
        self.recorder.close()
        s = self.writer.close({"node": self.get_fully_qualified_name(), "topics_selected": ",".join(self.config.topics)})
        self.get_logger().info(f"wrote {s.path}: {s.message_count} messages on {len(s.topics)} topics, "
                               f"{s.duration_s:.1f} s")


#: the parameters of each entry point (what `mtwin launch` checks a launch file against before it starts)
ENTRY_CONFIGS = {"main": RecorderConfig}


def main() -> int:
    return run_node(RecorderNode)
