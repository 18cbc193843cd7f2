"""The launch file running a whole stack on one machine for a scenario (replay, every RSU, CAV, site, cloud).

It only includes the role launch files of launch/ with arguments, so it is an ordinary launch file for
``ros2 launch`` and ``mtwin launch``; ``mtwin demo`` and ``mtwin eval tracking`` write one per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

ROLE = "$(find-pkg-share mobility_twin)/launch"


@dataclass(frozen=True)
class StackOptions:
    scenario: str = "default"
    rate: float = 1.0
    duration_s: float = 0.0
    start_offset_s: float = 0.0
    hil: bool = False
    extra: str = ""  # further XML inserted before </launch> (other nodes of a run)


def _include(role: str, **args) -> str:
    inner = "".join(f"\n    <arg name={quoteattr(k)} value={quoteattr(str(v))}/>" for k, v in args.items())
    return f'  <include file="{ROLE}/{role}.launch.xml">{inner}\n  </include>'


def stack_launch_xml(layout: dict, options: StackOptions = StackOptions()) -> str:
    """XML of a launch file for the world ``layout`` (World.describe())."""
    sim_time = "false" if options.hil else "true"
    parts = ['<?xml version="1.0"?>',
             f"<!-- The whole mobility_twin stack for scenario {layout.get('scenario', '?')!r}, on one machine. -->",
             "<launch>",
             _include("replay", scenario=options.scenario, rate=options.rate, duration_s=options.duration_s,
                      start_offset_s=options.start_offset_s, hil=str(options.hil).lower())]
    for rsu in layout["rsus"]:
        extrinsic = f"{rsu['x']:.3f},{rsu['y']:.3f},{rsu['z']:.3f},0.0"
        parts.append(_include("rsu", rsu_id=rsu["id"], extrinsic=extrinsic, use_sim_time=sim_time))
    for cav in layout["cavs"]:
        parts.append(_include("vehicle", cav_id=cav["id"], lidar_height_m=f"{cav['lidar_height']:.3f}",
                              use_sim_time=sim_time))
    cavs = ",".join(c["id"] for c in layout["cavs"])
    for site in layout["sites"]:
        rsus = ",".join(r["id"] for r in layout["rsus"] if r["site"] == site["id"])
        parts.append(_include("edge", site_id=site["id"], rsus=rsus, cavs=cavs, use_sim_time=sim_time))
    parts.append(_include("cloud", sites=",".join(s["id"] for s in layout["sites"]), use_sim_time=sim_time))
    if options.extra:
        parts.append(options.extra)
    parts.append("</launch>\n")
    return "\n".join(parts)
