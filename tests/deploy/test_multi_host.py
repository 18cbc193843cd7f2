"""The roles as separate hosts: cut one off, the rest keeps running, its tracks age out, and it recovers.

Three hosts (network namespaces joined by a bridge, made by the test; DDS discovers across them by
multicast): ``sim`` runs the replay (hardware-in-the-loop: wall-clock stamps), ``rsu`` the two RSUs'
perception, ``twin`` the edge site's local twin, the cloud's global twin and a probe that writes what it
sees. Each role runs the command of its service in docker/compose.yaml.

The RSU host is then cut off until the twin host's discovery has forgotten it (Fast DDS's participant
lease, 20 s), so that it must be discovered again: meanwhile the local twin marks both RSUs stale, its
tracks and the global twin's age out, while the simulator's data still reaches the twin host and both
twins keep publishing; when the host returns, the RSUs are fresh again and the global twin tracks
vehicles again.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.deploy.compose import SMALL_SITE_1, role_launches
from tests.netns import Hosts, netns_unavailable
from tests.ros_helpers import REPO, stop

pytestmark = [pytest.mark.ros, pytest.mark.netns, pytest.mark.slow]

SITE = "site_1"
RSUS = ("rsu_00", "rsu_01")
HOST_OF = {"sim": "sim", "rsu-00": "rsu", "rsu-01": "rsu", "edge-site-1": "twin", "cloud": "twin"}
CUT_S = 25.0  # at least: longer than Fast DDS's default participant lease duration (20 s)


class Probe:
    """The probe's JSON lines, read as they are written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[dict] = []
        self._offset = 0

    def poll(self) -> list[dict]:
        if not self.path.exists():
            return self.lines
        with self.path.open() as f:
            f.seek(self._offset)
            chunk = f.read()
        complete = chunk[: chunk.rfind("\n") + 1]
        self._offset += len(complete.encode())
        self.lines += [json.loads(line) for line in complete.splitlines() if line]
        return self.lines

    def recent(self, topic: str, since: float) -> list[dict]:
        return [e for e in self.lines if e["topic"] == topic and e["t"] >= since]

    def last(self, topic: str) -> dict | None:
        return next((e for e in reversed(self.lines) if e["topic"] == topic), None)


def _wait(probe: Probe, condition, timeout: float, procs: dict) -> float | None:
    """Poll until ``condition()`` holds; the wall time when it did, or None. Fails early if a role dies."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        probe.poll()
        if condition():
            return time.time()
        dead = [name for name, p in procs.items() if p.poll() is not None]
        assert not dead, f"role process(es) ended: {dead}"
        time.sleep(0.25)
    return None


def test_a_cut_off_rsu_host_goes_stale_and_its_tracks_age_out_then_recover(tmp_path):
    reason = netns_unavailable()
    if reason:
        pytest.skip(f"multi-host test needs network namespaces, unavailable here: {reason}")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SMALL_SITE_1))
    roles = role_launches({**os.environ, "MTWIN_SCENARIO": str(scenario)})  # the test's ROS_DOMAIN_ID
    assert set(roles) == set(HOST_OF), "docker/compose.yaml services changed: update HOST_OF"
    probe = Probe(tmp_path / "probe.jsonl")
    timeline: dict[str, float | None] = {}
    procs: dict = {}
    with Hosts(["sim", "rsu", "twin"]) as hosts:
        try:
            t0 = time.time()
            for name, role in roles.items():  # the service's environment (domain id, DDS transport) and command
                argv = ["env", *(f"{k}={v}" for k, v in role.environment.items()), *role.mtwin_argv()]
                procs[name] = hosts.popen(HOST_OF[name], argv, tmp_path / f"{name}.log", cwd=REPO)
            procs["probe"] = hosts.popen("twin", [sys.executable, "-m", "tests.deploy.twin_probe", "--site", SITE,
                                                  "--rsus", ",".join(RSUS), "--out", str(probe.path), "--duration", "300"],
                                         tmp_path / "probe.log", cwd=REPO)

            def rsus_stale(topic: str = "local_state") -> bool | None:
                """True/False when both RSUs are stale/fresh in the last state on ``topic``, else None."""
                last = probe.last(topic)
                flags = [last["stale"].get(r) for r in RSUS] if last else [None]
                return flags[0] if None not in flags and len(set(flags)) == 1 else None

            def tracking_for(topic: str, seconds: float) -> bool:
                """The twin on ``topic`` has had tracks in every message for ``seconds``, up to now."""
                run = []
                for e in reversed(probe.lines):
                    if e["topic"] == topic:
                        if e["n"] == 0:
                            break
                        run.append(e["t"])
                return bool(run) and time.time() - run[0] < 1.0 and run[0] - run[-1] >= seconds

            def empty(topic: str, since: float) -> bool:
                recent = probe.recent(topic, since)
                return len(recent) >= 3 and all(e["n"] == 0 for e in recent[-3:])

            # 1. everything up: both RSUs fresh in the local twin, the global twin tracking vehicles for 3 s
            timeline["up"] = _wait(probe, lambda: rsus_stale() is False and tracking_for("global_objects", 3.0),
                                   150, procs)
            assert timeline["up"], _story(probe, tmp_path, "the stack never tracked vehicles across the hosts")

            # 2. the RSU host cut off: the edge marks its RSUs stale, then the local and global tracks age out
            hosts.cut("rsu")
            cut = timeline["cut"] = time.time()
            timeline["rsus_stale"] = _wait(probe, lambda: rsus_stale() is True, 20, procs)
            timeline["cloud_sees_rsus_stale"] = _wait(probe, lambda: rsus_stale("global_state") is True, 20, procs)
            timeline["local_tracks_gone"] = _wait(probe, lambda: empty("local_objects", cut), 20, procs)
            timeline["global_tracks_gone"] = _wait(probe, lambda: empty("global_objects", cut), 20, procs)
            for key in ("rsus_stale", "cloud_sees_rsus_stale", "local_tracks_gone", "global_tracks_gone"):
                assert timeline[key], _story(probe, tmp_path, f"after the cut: never {key.replace('_', ' ')}")
            # hold the cut until discovery on the twin host has forgotten the RSUs' publishers (lease expiry)
            timeline["rsus_forgotten"] = _wait(probe, lambda: (probe.last("graph") or {}).get("rsu_publishers") == 0,
                                               CUT_S + 15, procs)
            _wait(probe, lambda: False, max(0.0, cut + CUT_S - time.time()), procs)
            during = (timeline["global_tracks_gone"], time.time())
            seen = {topic: [e for e in probe.lines if e["topic"] == topic and during[0] <= e["t"] <= during[1]]
                    for topic in ("sim", "local_objects", "global_state")}

            # 3. the RSU host back: its RSUs fresh again, the global twin tracking vehicles again for 3 s
            hosts.restore("rsu")
            timeline["restored"] = time.time()
            timeline["rsus_fresh"] = _wait(probe, lambda: rsus_stale() is False, 60, procs)
            timeline["global_tracks_back"] = _wait(probe, lambda: tracking_for("global_objects", 3.0), 60, procs)
            alive = {name: p.poll() is None for name, p in procs.items()}
        finally:
            for p in procs.values():
                stop(p)
    probe.poll()
    timeline["first_global_track_back"] = next(
        (e["t"] for e in probe.lines if e["topic"] == "global_objects" and e["t"] > timeline["restored"] and e["n"]),
        None)
    events = sorted(((k, v) for k, v in timeline.items() if k != "up"), key=lambda kv: kv[1] or float("inf"))
    report = "timeline (s after the cut): " + ", ".join(
        f"{k} {v - timeline['cut']:+.1f}" if v else f"{k} never" for k, v in events)
    report += f"; stack up {timeline['up'] - t0:.1f} s after start"
    print(report)
    (tmp_path / "timeline.txt").write_text(report + "\n")
    # the rest kept running through the cut: the simulator's host still reached the twin host, the
    # local twin kept publishing (empty) and the cloud never took the site for silent
    hold = max(during[1] - during[0], 1e-3)
    assert all(alive.values()), alive
    assert len(seen["sim"]) / hold > 2.0, f"ground truth stopped reaching the twin host: {len(seen['sim'])} in {hold:.0f} s"
    assert len(seen["local_objects"]) / hold > 2.0, f"the local twin stopped publishing: {len(seen['local_objects'])}"
    site_stale = [e["stale"].get(SITE) for e in seen["global_state"]]
    assert len(site_stale) >= 5 and not any(site_stale), f"the cloud marked {SITE} stale: {site_stale}"
    assert timeline["rsus_forgotten"], "the twin host never forgot the RSUs' publishers: was the cut too short?"
    # and recovered
    assert timeline["rsus_fresh"], _story(probe, tmp_path, "the RSUs never came back")
    assert timeline["global_tracks_back"], _story(probe, tmp_path, "the global twin never tracked again")


def _story(probe: Probe, tmp_path: Path, what: str) -> str:
    probe.poll()
    counts = {}
    for e in probe.lines:
        counts[e["topic"]] = counts.get(e["topic"], 0) + 1
    logs = "\n".join(f"--- {p.name}\n" + p.read_text()[-2000:] for p in sorted(tmp_path.glob("*.log")))
    return f"{what}\nprobe messages: {counts}\nlast local state: {probe.last('local_state')}\n{logs}"
