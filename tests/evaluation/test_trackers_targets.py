"""The verdicts of `mtwin bench trackers`: every RSU and both metrics against every peer, time against norfair."""

import pytest

from mobility_twin_bench.trackers import _targets


def result(ours: dict, peers: dict, ours_ms=0.3, norfair_ms=0.4) -> dict:
    def tracker(scores, ms):
        by_rsu = {rid: {"mota": m, "idf1": i} for rid, (m, i) in scores.items()}
        by_rsu["overall"] = {"mota": min(m for m, _ in scores.values()), "idf1": min(i for _, i in scores.values())}
        return {"scores": by_rsu, "update_ms": {"overall": {"mean_ms": ms, "median_ms": ms}}}

    out = {"mobility_twin": tracker(ours, ours_ms)}
    out.update({name: tracker(s, norfair_ms if name == "norfair" else 0.1) for name, s in peers.items()})
    return {"trackers": out}


def test_the_tracker_passes_when_at_or_above_every_peer_on_every_rsu_and_not_slower_than_norfair():
    r = result({"rsu_00": (0.95, 0.97), "rsu_01": (1.0, 1.0)},
               {"norfair": {"rsu_00": (0.95, 0.96), "rsu_01": (1.0, 1.0)},
                "motpy": {"rsu_00": (0.90, 0.90), "rsu_01": (0.99, 0.99)}})
    quality, speed = _targets("default", r)
    assert quality["verdict"] == "pass" and quality["shortfalls"] == []
    assert speed["verdict"] == "pass" and speed["ratios"]["norfair"] == 0.3 / 0.4


def test_one_rsu_one_metric_below_one_peer_fails_and_is_named():
    r = result({"rsu_00": (0.95, 0.97), "rsu_01": (1.0, 0.98)},
               {"norfair": {"rsu_00": (0.94, 0.96), "rsu_01": (1.0, 0.99)}}, ours_ms=0.5, norfair_ms=0.4)
    quality, speed = _targets("dense", r)
    assert quality["verdict"] == "fail"
    assert [(s["rsu"], s["peer"], s["metric"]) for s in quality["shortfalls"]] == [("rsu_01", "norfair", "idf1")]
    assert speed["verdict"] == "fail"


def test_without_peers_the_targets_are_not_measured():
    r = result({"rsu_00": (0.95, 0.97)}, {})
    assert all(t["verdict"].startswith("not measured") for t in _targets("default", r))


def test_a_sweep_folder_stands_for_its_scenario_files_and_an_empty_folder_is_refused(tmp_path):
    from mobility_twin_bench.trackers import _expand

    for name in ("s01_b", "s00_a"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "scenario.yaml").write_text("name: " + name + "\n")
    assert _expand(f"default, {tmp_path},dense") == [
        "default", str(tmp_path / "s00_a" / "scenario.yaml"), str(tmp_path / "s01_b" / "scenario.yaml"), "dense"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="without"):
        _expand(str(tmp_path / "empty"))
