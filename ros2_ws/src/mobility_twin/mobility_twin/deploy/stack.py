"""The launch file running a whole stack on one machine for a scenario's layout.

Replay, one perception per RSU and CAV, a local twin (with its offloading node) per site, the cloud (global
twin, relation learner, placement), optionally the rviz markers and the MCAP recorder. It only includes
the role launch files of launch/ with arguments, and declares the run's settings as launch arguments, so
it is an ordinary launch file for ``ros2 launch`` and ``mtwin launch``. The twins take the layout from the
latched /infrastructure/layout that the replay publishes (``layout_from_topic``): the one place where a
launch file turns that on.

    mtwin launch launch/demo.launch.xml duration_s:=60 hil:=true

``launch/demo.launch.xml`` is this file for the default scenario (``scripts/generate_demo_launch.py``
writes it; a test checks it is current); ``mtwin eval tracking`` writes one per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

from mobility_twin_core import Layout

ROLE = "$(find-pkg-share mobility_twin)/launch"


@dataclass(frozen=True)
class StackOptions:
    """Defaults of the launch arguments, and what the file contains."""

    scenario: str = "default"
    rate: float = 1.0
    duration_s: float = 0.0
    start_offset_s: float = 0.0
    hil: bool = True
    offloading: bool = True
    relations: bool = True
    placement: bool = True
    viz: bool = True
    record: str = ""  # MCAP path ('' records nothing)
    network: str = ""  # a SUMO world's road network: route followers on the CAVs, the city's applications ('' : none)
    guidance: bool = False  # with a network: the route guidance in the cloud
    collision_warning: bool = False  # with a network: a collision warning per site, a CAV told to yield brakes
    output_dir: str = ""  # the world's own outputs (SUMO: tripinfo, ssm), e.g. <run>/sumo ('' : not an argument)
    extra: str = ""  # further XML inserted before </launch> (other nodes of a run)


def _include(role: str, **args) -> str:
    inner = "".join(f"\n    <arg name={quoteattr(k)} value={quoteattr(str(v))}/>" for k, v in args.items())
    return f'  <include file="{ROLE}/{role}.launch.xml">{inner}\n  </include>'


def _arg(name: str, default, description: str) -> str:
    value = str(default).lower() if isinstance(default, bool) else str(default)
    return f"  <arg name={quoteattr(name)} default={quoteattr(value)} description={quoteattr(description)}/>"


def stack_launch_xml(layout: Layout, options: StackOptions = StackOptions()) -> str:
    """XML of a launch file for the world's ``layout`` (``mobility_twin_sim.world.World.layout``)."""
    o = options
    parts = [
        '<?xml version="1.0"?>',
        f"<!-- The whole mobility_twin stack on one machine, for the layout of scenario {layout.name or '?'!r}:",
        "     replay, perception per RSU and CAV, a local twin with offloading per site, the cloud (global twin,",
        "     relation learner, placement), the rviz markers and the recorder. Generated from the scenario by",
        "     mobility_twin.deploy.stack (scripts/generate_demo_launch.py for launch/demo.launch.xml). -->",
        "<launch>",
        _arg("scenario", o.scenario, "scenario file or shipped name (its layout must match this file)"),
        _arg("rate", o.rate, "replay real-time factor (ignored with hil)"),
        _arg("duration_s", o.duration_s, "sim seconds to run (0: the whole scenario)"),
        _arg("start_offset_s", o.start_offset_s, "start this far into the scenario (s)"),
        _arg("hil", o.hil, "hardware-in-the-loop: wall-clock pacing and stamps (true), or /clock sim time (false)"),
        _arg("offloading", o.offloading, "run an offloading node per site"),
        _arg("relations", o.relations, "run the relation learner"),
        _arg("placement", o.placement, "run the twin placement"),
        _arg("viz", o.viz, "publish rviz markers on /twin/markers"),
        _arg("record", o.record, "MCAP file to record the twin's topics to (empty: no recording)"),
        '  <let name="use_sim_time" value="$(eval \'$(var hil)\' == \'false\')"/>',
    ]
    replay = {"scenario": "$(var scenario)", "rate": "$(var rate)", "duration_s": "$(var duration_s)",
              "start_offset_s": "$(var start_offset_s)", "hil": "$(var hil)"}
    if o.output_dir:  # a run folder for the world's outputs (SUMO)
        parts.insert(-1, _arg("output_dir", o.output_dir, "folder for the world's own outputs (SUMO: tripinfo, ssm)"))
        replay["output_dir"] = "$(var output_dir)"
    if o.network:  # a world of roads: the city's applications (issue 18)
        parts.insert(-1, _arg("guidance", o.guidance, "route guidance for the CAVs (cloud)"))
        parts.insert(-1, _arg("collision_warning", o.collision_warning,
                              "collision warning per site; a CAV told to yield brakes"))
    parts.append(_include("replay", **replay))
    for rsu in layout.rsus:
        extrinsic = f"{rsu.x:.3f},{rsu.y:.3f},{rsu.z:.3f},{rsu.yaw:.4f}"
        parts.append(_include("rsu", rsu_id=rsu.rsu_id, extrinsic=extrinsic, use_sim_time="$(var use_sim_time)"))
    # a world of roads: route followers on the CAVs, and the city's applications at the edge and in the cloud
    net = {"network": o.network} if o.network else {}
    vehicle_args = {"route_follower": "true", **net} if o.network else {"route_follower": "false"}
    edge_args = {"collision_warning": "$(var collision_warning)", "collision_brake": "$(var collision_warning)",
                 **net} if o.network else {}
    cloud_args = {"guidance": "$(var guidance)", **net} if o.network else {}
    for cav in layout.cavs:
        parts.append(_include("vehicle", cav_id=cav.cav_id, lidar_height_m=f"{cav.lidar_height_m:.3f}",
                              use_sim_time="$(var use_sim_time)", **vehicle_args))
    for site in layout.sites:
        parts.append(_include("edge", site_id=site.site_id, layout_from_topic="true",
                              use_sim_time="$(var use_sim_time)", offloading="$(var offloading)", **edge_args))
    parts.append(_include("cloud", sites=",".join(s.site_id for s in layout.sites),
                          use_sim_time="$(var use_sim_time)", relations="$(var relations)",
                          placement="$(var placement)", **cloud_args))
    parts.append('  <group if="$(var viz)">\n' + _include("viz", use_sim_time="$(var use_sim_time)", **net).replace(
        "\n", "\n  ").replace("  <include", "    <include", 1) + "\n  </group>")
    parts.append('  <group unless="$(eval \'$(var record)\' == \'\')">\n'
                 + _include("record", output="$(var record)", use_sim_time="$(var use_sim_time)").replace(
                     "\n", "\n  ").replace("  <include", "    <include", 1) + "\n  </group>")
    if o.extra:
        parts.append(o.extra)
    parts.append("</launch>\n")
    return "\n".join(parts)
