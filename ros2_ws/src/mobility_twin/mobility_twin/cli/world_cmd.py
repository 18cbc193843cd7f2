"""`mtwin world build`: a SUMO world of your own city from an OpenStreetMap extract or a SUMO network.

``--osm FILE.osm`` runs netconvert with SUMO's OSM type maps (and polyconvert for the buildings) into
``--out``; ``--net FILE.net.xml`` takes an existing network. Either way a scenario skeleton
(``scenario.yaml``, ``world: {kind: sumo, network: <the network>}``, random-trip demand) is written next to
the network: run it with ``mtwin replay --scenario DIR/scenario.yaml``. A file that does not convert or does
not load is an error naming it (exit status 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mobility_twin.cli import add_verb, command_error, help_without_verb


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("world", help="build SUMO worlds (road network, buildings, scenario) from your own city",
                       description="SUMO worlds for the simulator (scenarios with world: {kind: sumo}).")
    what = p.add_subparsers(dest="what", metavar="WHAT")
    b = add_verb(what, "build", run_build,
                 help="a network (and buildings) from an OSM file or a .net.xml, and a scenario skeleton",
                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = b.add_mutually_exclusive_group(required=True)
    source.add_argument("--osm", type=Path, metavar="FILE.osm", help="an OpenStreetMap extract (.osm or .osm.gz)")
    source.add_argument("--net", type=Path, metavar="FILE.net.xml", help="an existing SUMO road network")
    b.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the network, buildings and scenario")
    b.add_argument("--name", default="", help="name of the world and its scenario (default: from the file name)")

    help_without_verb(p)


def run_build(args: argparse.Namespace) -> int:
    from mobility_twin_sim.sumo import NetworkError, SumoError, build_world_from_osm

    try:
        built = build_world_from_osm(osm=args.osm, net=args.net, out_dir=args.out, name=args.name or None)
    except (NetworkError, SumoError) as err:
        return command_error("world build", err)
    net = built.network
    print(f"mtwin world build: {net.name}: {net.label}")
    print(f"  network   {net.net_file}")
    print(f"  buildings {built.poly_file or '(none in the source: city blocks are used)'}")
    print(f"  scenario  {built.scenario_file}")
    print(f"run it: mtwin replay --scenario {built.scenario_file}")
    return 0
