"""Parameter groups that several nodes declare alike: each declared once here, inherited by a node's config.

A node's config dataclass (see :mod:`mobility_twin.ros.params`) inherits the groups it needs, and each group
builds what its parameters configure, so that a node neither re-declares nor re-wires them:

* :class:`LayoutParams`: where the deployment's layout comes from (:meth:`LayoutParams.layout_source`); a node
  whose switch to the topic has a name of its own (perception's ``calibration_from_layout``) inherits
  :class:`LayoutFileParams` and gives the switch to :meth:`LayoutFileParams.layout_source`;
* :class:`TwinOutputParams`: how often a twin publishes its objects, state and server twins;
* :class:`InputCheckParams`: what a twin refuses as implausible (:meth:`InputCheckParams.input_limits`) and how
  often it sums up what it refused;
* :class:`StateParams`: where a node keeps the state that survives a restart (:meth:`StateParams.state_file`);
* :class:`TwinInputParams`: the twin a consumer node acts on, read through the twin-state adapter
  (:meth:`TwinInputParams.twin_reader`).

A node's own field of the same name (another default, range or description) overrides the group's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rclpy.node import Node

from mobility_twin.ros import topics
from mobility_twin.ros.params import field
from mobility_twin.ros.state import resolve_state_path
from mobility_twin.ros.twin_reader import TwinReader, TwinReaderConfig
from mobility_twin_core import VEHICLE_CLASSES, Layout

if TYPE_CHECKING:  # imported where used: a node that has no layout or validation does not load them at its start
    from mobility_twin.ros.layout_source import LayoutSource
    from mobility_twin.twin.validation import InputLimits


def _config_file(params) -> str:
    return getattr(params, "CONFIG_FILE", "")


@dataclass(frozen=True)
class LayoutFileParams:
    layout_file: str = field("", "the deployment's layout.yaml (RSUs, edge servers, sites, CAVs); '' = none")
    layout_timeout_s: float = field(30.0, "with the layout from the topic: stop when no valid layout came this long "
                                          "(s)", low=0.1, high=86400.0)
    layout_name: str = field("", "the deployment's layout name: a layout of another name is refused ('' = any)")
    layout_cache_path: str = field("", "with the layout from the topic: the last layout received is kept here and used "
                                       "at once after a restart ('' = layout.json in the node's state folder, 'none' "
                                       "= no cache)")
    layout_cache_max_age_s: float = field(300.0, "the cached layout is not used when the node held it longer ago than "
                                                 "this (s, wall time)", low=0.0, high=1e7)

    def layout_source(self, node: Node, on_layout: Callable[[Layout], None], from_topic: bool) -> LayoutSource:
        """The node's :class:`LayoutSource`, calling ``on_layout`` with the layout of ``layout_file``, or of the
        latched topic when ``from_topic``."""
        from mobility_twin.ros.layout_source import LayoutSource

        return LayoutSource(node, on_layout, layout_file=self.layout_file, from_topic=from_topic,
                            timeout_s=self.layout_timeout_s, config_file=_config_file(self), name=self.layout_name,
                            cache=self.layout_cache_path, cache_max_age_s=self.layout_cache_max_age_s)


@dataclass(frozen=True)
class LayoutParams(LayoutFileParams):
    layout_from_topic: bool = field(False, "take the layout from the latched /infrastructure/layout instead")

    def layout_source(self, node: Node, on_layout: Callable[[Layout], None]) -> LayoutSource:
        return super().layout_source(node, on_layout, self.layout_from_topic)


@dataclass(frozen=True)
class TwinOutputParams:
    publish_period_s: float = field(0.1, "publish the twin's objects at least this often (s)", low=0.005, high=60.0)
    event_publish: bool = field(True, "also publish right after each fused input (lowest latency)")
    min_publish_interval_s: float = field(0.0, "event publications at least this far apart (s; 0: right after "
                                               "the queued input is fused); inputs in between go out together",
                                          low=0.0, high=60.0)
    state_period_s: float = field(0.5, "period of the state and edge-server outputs (s)", low=0.01, high=3600.0)


@dataclass(frozen=True)
class InputCheckParams:
    input_area_margin_m: float = field(200.0, "inputs farther than this outside the layout's area are refused (m)",
                                       low=0.0, high=1e5)
    max_future_s: float = field(2.0, "inputs stamped later than this after the node's clock are refused (s)",
                                low=0.0, high=3600.0)
    max_age_s: float = field(30.0, "inputs stamped earlier than this before the node's clock are refused (s)",
                             low=0.0, high=86400.0)
    log_period_s: float = field(10.0, "seconds between summary lines of what was refused", low=0.1, high=86400.0)

    def input_limits(self, area=()) -> InputLimits:
        """The validation limits of these parameters for a deployment's ``area`` (() = no area check)."""
        from mobility_twin.twin.validation import InputLimits

        return InputLimits(area=area, area_margin_m=self.input_area_margin_m, max_future_s=self.max_future_s,
                           max_age_s=self.max_age_s)


@dataclass(frozen=True)
class StateParams:
    #: the state's file in the node's state folder (a config sets its own)
    STATE_FILE = "state.json"

    state_path: str = field("", "where the node keeps its state across restarts ('' = its file in the node's "
                                "state folder, 'none' = nowhere)")
    save_period_s: float = field(1.0, "seconds between two saves of that state", low=0.05, high=3600.0)
    resume_max_age_s: float = field(60.0, "a saved state older than this is not resumed (s, wall time)", low=0.0,
                                    high=86400.0)

    def state_file(self, node: Node) -> Path | None:
        """The node's state file (None: keep no state)."""
        return resolve_state_path(self.state_path, node.get_fully_qualified_name(), self.STATE_FILE)


@dataclass(frozen=True)
class TwinInputParams:
    objects_topic: str = field(topics.GLOBAL_OBJECTS, "TrackedObjectArray with the vehicles of the twin")
    servers_topic: str = field(topics.GLOBAL_EDGE_SERVERS, "EdgeServerStateArray with the twins of the edge servers")
    vehicle_classes: tuple[int, ...] = field(
        [int(c) for c in VEHICLE_CLASSES], "TrackedObject.object_class values that are vehicles (1 car, 2 truck, "
                                           "3 bus, 4 motorcycle)", low=0, high=255)
    objects_timeout_s: float = field(3.0, "skip the slot when the newest vehicles are older than this (s)",
                                     low=0.0, high=3600.0)
    servers_timeout_s: float = field(5.0, "skip the slot when the newest server twins are older than this (s)",
                                     low=0.0, high=3600.0)
    log_period_s: float = field(10.0, "seconds between summary log lines", low=0.1, high=86400.0)

    def twin_reader(self, node: Node, **options) -> TwinReader:
        """``node``'s :class:`TwinReader` of the twin these parameters name; ``options``: further
        :class:`TwinReaderConfig` fields (``state_topic``, ``default_coverage_m``...)."""
        return TwinReader(node, TwinReaderConfig(
            objects_topic=self.objects_topic, servers_topic=self.servers_topic, vehicle_classes=self.vehicle_classes,
            objects_timeout_s=self.objects_timeout_s, servers_timeout_s=self.servers_timeout_s, **options))
