"""The road network a node's ``network`` parameter names, with its frame to ``map`` (shared by the nodes
that read the roads: route guidance, relation learner, collision warning)."""

from __future__ import annotations

from mobility_twin.ros.entry import ConfigurationError


def load_map_network(name: str, where: str):
    """The :class:`mobility_twin_sim.sumo.network.Network` ``name`` (a shipped network or a .net.xml path),
    which must be georeferenced (have a frame to ``map``); a :class:`ConfigurationError` naming the parameter
    and ``where`` (the node's config file) otherwise."""
    from mobility_twin_sim.sumo.errors import SumoError
    from mobility_twin_sim.sumo.network import load_network

    try:
        network = load_network(name)
    except SumoError as err:
        raise ConfigurationError(f"parameter 'network': {err} (set it in {where})") from None
    if network.frame is None:
        raise ConfigurationError(f"parameter 'network': {name} has no frame to the map (not georeferenced; set it "
                                 f"in {where})")
    return network


def load_map_roads(name: str, where: str):
    """:func:`load_map_network`'s roads as a :class:`mobility_twin_core.roads.RoadGraph` in the ``map`` frame."""
    from mobility_twin_core.roads import RoadGraph

    network = load_map_network(name, where)
    return RoadGraph.from_net_file(network.net_file).in_frame(network.frame.to_map)


class LatestSignals:
    """The newest traffic-light phases (SPaT) on ``topic`` (a ``SignalStateArray``), for a node that reads the
    roads: :meth:`at` gives them while they are fresh at twin time ``t`` (within ``max_age_s``), else None and
    counts ``stale_signals`` in ``counts``."""

    def __init__(self, node, topic: str, max_age_s: float, counts) -> None:
        from mobility_twin.ros.qos import TWIN_STATE
        from mobility_twin_msgs.msg import SignalStateArray

        self.max_age_s = max_age_s
        self.counts = counts
        self.latest = None
        if topic:
            node.create_subscription(SignalStateArray, topic, self._on_signals, TWIN_STATE)

    def _on_signals(self, msg) -> None:
        from mobility_twin.ros.route_commands import signals_from_msg

        self.latest = signals_from_msg(msg)

    def at(self, t: float):
        if self.latest is None:
            return None
        if abs(t - self.latest.t) > self.max_age_s:
            self.counts["stale_signals"] += 1
            return None
        return self.latest
