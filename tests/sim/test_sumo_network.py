"""SUMO road networks: the synthetic CBD lines up with `map`, bad networks are refused, OSM builds a world."""

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("libsumo")

from mobility_twin_sim.geo import LocalENU
from mobility_twin_sim.sumo import (
    SYNTHETIC_LABEL,
    NetworkError,
    build_beijing_cbd,
    build_world_from_osm,
    load_network,
    real_streets,
    tools,
)
from mobility_twin_sim.sumo.network import CbdGridSpec, NetFrame, read_location

pytestmark = pytest.mark.usefixtures("sumo_cache")  # a SUMO cache of this module's own (conftest)


def _geo(net_file: Path, xy: np.ndarray) -> np.ndarray:
    """lon/lat of SUMO points through SUMO's own projection (a short libsumo session)."""
    import libsumo

    os.environ.setdefault("PROJ_DATA", str(tools.sumo_home() / "data" / "proj"))
    libsumo.start(["sumo", "-n", str(net_file), "--no-step-log", "--no-warnings"])
    try:
        return np.array([libsumo.simulation.convertGeo(float(x), float(y)) for x, y in xy])
    finally:
        libsumo.close()


def test_cbd_network_coordinates_are_the_map_frame_plus_a_constant_offset():
    net = build_beijing_cbd()
    assert net.synthetic and net.label == SYNTHETIC_LABEL
    assert SYNTHETIC_LABEL in net.net_file.read_text()[:5000]  # labelled inside the file too
    x0, y0, x1, y1 = net.location.conv_boundary
    gx, gy = np.meshgrid(np.linspace(x0, x1, 4), np.linspace(y0, y1, 4))
    sumo_xy = np.column_stack([gx.ravel(), gy.ravel()])
    lonlat = _geo(net.net_file, sumo_xy)
    mx, my = LocalENU(*net.origin).forward(lonlat[:, 0], lonlat[:, 1])
    offset = sumo_xy - np.column_stack([mx, my])
    assert np.allclose(offset, offset[0], atol=0.05)  # one constant offset over 2.7 km (TM vs tangent plane)
    assert np.allclose(offset[0], net.location.net_offset, atol=0.05)
    back = net.frame.to_map(sumo_xy[:, 0], sumo_xy[:, 1])
    assert np.max(np.hypot(back[0] - mx, back[1] - my)) < 0.05


def test_cbd_network_has_wide_avenues_signals_and_sidewalks():
    import sumolib

    spec = CbdGridSpec()
    net = build_beijing_cbd(spec)
    sn = sumolib.net.readNet(str(net.net_file))
    _, oy = net.location.net_offset
    # the east-west avenue through the origin: 4 lanes for cars plus a sidewalk
    avenue = [e for e in sn.getEdges() if abs(e.getFromNode().getCoord()[1] - oy) < 1 and
              abs(e.getToNode().getCoord()[1] - oy) < 1]
    assert avenue and all(sum(ln.allows("passenger") for ln in e.getLanes()) == spec.lanes[0] for e in avenue)
    assert all(any(ln.getPermissions() == {"pedestrian"} for ln in e.getLanes()) for e in avenue)
    assert len(sn.getTrafficLights()) >= 40
    assert net.sidewalks


def test_frame_fit_recovers_a_rotation_and_an_offset():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 3000, (30, 2))
    truth = NetFrame(-500.0, 120.0, 0.02, 1.0)
    mx, my = truth.to_map(pts[:, 0], pts[:, 1])
    fit = NetFrame.fit(pts, np.column_stack([mx, my]))
    assert fit.rotation == pytest.approx(0.02, abs=1e-9) and fit.residual_m < 1e-6
    sx, sy = fit.to_sumo(mx, my)
    assert np.allclose(np.column_stack([sx, sy]), pts)


def test_unknown_network_name_is_a_clear_error():
    with pytest.raises(NetworkError, match=r"unknown network 'beijing_cdb'.*beijing_cbd, real_streets"):
        load_network("beijing_cdb")


def test_network_that_does_not_load_is_refused_without_crashing(tmp_path):
    bad = tmp_path / "broken.net.xml"
    bad.write_text('<net><location netOffset="0,0" convBoundary="0,0,1,1" origBoundary="0,0,1,1" '
                   'projParameter="!"/><edge id="a" from="x" to="y"/></net>')
    with pytest.raises(NetworkError, match="does not load"):
        load_network(bad)
    with pytest.raises(NetworkError, match="does not exist"):
        load_network(tmp_path / "missing.net.xml")
    (tmp_path / "text.net.xml").write_text("not xml at all")
    with pytest.raises(NetworkError, match="no <location>"):
        read_location(tmp_path / "text.net.xml")


def test_real_streets_is_a_real_osm_network_with_sidewalks():
    net = real_streets()
    assert not net.synthetic and "OpenStreetMap" in net.label
    lon, lat = net.origin
    assert 13.3 < lon < 13.7 and 52.3 < lat < 52.6  # Berlin
    assert net.sidewalks


def test_build_world_from_osm_writes_network_buildings_and_scenario(tmp_path):
    osm = tools.sumo_home() / "tools" / "game" / "racing" / "spreewaldring.osm"
    built = build_world_from_osm(osm=osm, out_dir=tmp_path)
    assert built.network.net_file.is_file() and built.poly_file is not None
    assert 'type="building' in built.poly_file.read_text()
    text = built.scenario_file.read_text()
    assert "kind: sumo" in text and "spreewaldring.net.xml" in text and "origin:" in text
    # an existing network file is accepted as it is
    again = build_world_from_osm(net=built.network.net_file, out_dir=tmp_path / "again")
    assert again.network.net_file == built.network.net_file.resolve()
    with pytest.raises(NetworkError, match="exactly one"):
        build_world_from_osm(out_dir=tmp_path)


def test_the_shipped_sumo_scenarios_load_with_their_world_sections():
    from mobility_twin_sim.scenario import load_scenario

    for name in ("city", "real_streets"):
        scenario = load_scenario(name)
        assert scenario.world.kind == "sumo" and scenario.world.network in ("beijing_cbd", "real_streets")


def test_mtwin_world_build_writes_a_scenario_that_loads_and_refuses_a_bad_file(tmp_path, capsys):
    from mobility_twin.cli.main import main
    from mobility_twin_sim.scenario import load_scenario

    osm = tools.sumo_home() / "tools" / "game" / "racing" / "spreewaldring.osm"
    assert main(["world", "build", "--osm", str(osm), "--out", str(tmp_path / "a")]) == 0
    built = load_scenario(tmp_path / "a" / "spreewaldring.yaml")
    assert built.world.kind == "sumo" and built.world.network == str((tmp_path / "a" / "spreewaldring.net.xml").resolve())
    # a network elsewhere is named by its absolute path in the skeleton
    assert main(["world", "build", "--net", built.world.network, "--out", str(tmp_path / "b"), "--name", "ring"]) == 0
    assert load_scenario(tmp_path / "b" / "ring.yaml").world.network == built.world.network
    (tmp_path / "broken.net.xml").write_text("<net><edge id='x'></net>")
    capsys.readouterr()
    assert main(["world", "build", "--net", str(tmp_path / "broken.net.xml"), "--out", str(tmp_path / "c")]) == 2
    assert "broken.net.xml" in capsys.readouterr().err
