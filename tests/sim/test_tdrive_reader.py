"""The T-Drive reader keeps or skips every line, with a reason, from folders, files and archives."""

import json
import tarfile
import zipfile
from datetime import datetime

import pytest

from mobility_twin_sim.tdrive import BUNDLED, ReaderConfig, SkipReason, TDriveError, check, iter_tracks
from tests.conftest import run_mtwin

# One line per skip reason (and some good ones), in taxi 77's file.
MALFORMED = """\
id,time,long,lat
77,2008-02-02 16:00:00,116.40000,39.90000
77,2008-02-02 16:00:10,116.40010,39.90010

77,2008-02-02 16:00:20,116.40020
77,2008-02-02 16:0x:20,116.40020,39.90020
77,2008-02-02 16:00:30,abc,39.90030
77,2008-02-02 16:00:40,0.0,0.0
77,2008-02-02 16:00:50,103.43000,29.53000
77,2008-02-02 16:00:10,116.40010,39.90010
77,2008-02-02 16:00:10,116.40500,39.90500
77,2008-02-02 16:00:05,116.40005,39.90005
78,2008-02-02 16:01:00,116.40100,39.90100
77,2008-02-02 16:01:10,116.50000,39.90100
77,2008-02-02 16:01:20,116.40120,39.90120
77,2008-02-02 16:01:30,116.40130,39.90130
"""

EXPECTED = {
    SkipReason.HEADER: 1,
    SkipReason.BLANK: 1,
    SkipReason.FIELD_COUNT: 1,
    SkipReason.BAD_TIME: 1,
    SkipReason.BAD_COORDINATE: 1,
    SkipReason.ZERO_COORDINATE: 1,
    SkipReason.OUTSIDE_AREA: 1,
    SkipReason.DUPLICATE: 1,
    SkipReason.REPEATED_TIME: 1,
    SkipReason.OUT_OF_ORDER: 1,
    SkipReason.ID_MISMATCH: 1,
    SkipReason.SPEED: 1,
}


@pytest.fixture
def malformed(tmp_path):
    folder = tmp_path / "tdrive"
    folder.mkdir()
    (folder / "77.txt").write_text(MALFORMED)
    return folder


def test_malformed_fixture_counts_each_reason_exactly(malformed):
    report = check(malformed)
    assert report.lines_read == 16
    assert {SkipReason(k): v for k, v in report.skipped.items()} == EXPECTED
    assert report.kept == 4
    assert report.kept + report.skipped_total == report.lines_read
    assert report.examples["exact_duplicate"] == [f"{malformed / '77.txt'}:10"]
    assert report.examples["implied_speed_above_limit"] == [f"{malformed / '77.txt'}:14"]


def test_kept_points_are_the_good_lines_in_order(malformed):
    (track,) = list(iter_tracks(malformed))
    assert track.taxi_id == 77
    assert track.lat.tolist() == [39.9, 39.9001, 39.9012, 39.9013]
    assert list(track.t) == sorted(track.t)


def test_gps_jump_drops_the_jump_not_the_points_after_it(tmp_path):
    lines = ["5,2008-02-02 16:00:00,116.4000,39.9000", "5,2008-02-02 16:00:10,116.4010,39.9000",
             "5,2008-02-02 16:00:20,116.5000,39.9000",  # 8.5 km away in 10 s: the glitch
             "5,2008-02-02 16:00:30,116.4030,39.9000", "5,2008-02-02 16:00:40,116.4040,39.9000"]
    (tmp_path / "5.txt").write_text("\n".join(lines) + "\n")
    report = check(tmp_path)
    assert report.kept == 4 and report.examples["implied_speed_above_limit"] == [f"{tmp_path / '5.txt'}:3"]


def test_glitch_as_first_point_does_not_drop_the_taxi(tmp_path):
    lines = ["6,2008-02-02 16:00:00,116.2000,40.0800",  # far from all the others
             "6,2008-02-02 16:02:20,116.4000,39.9000", "6,2008-02-02 16:02:30,116.4010,39.9000",
             "6,2008-02-02 16:02:40,116.4020,39.9000"]
    (tmp_path / "6.txt").write_text("\n".join(lines) + "\n")
    report = check(tmp_path)
    assert report.kept == 3 and report.skipped == {"implied_speed_above_limit": 1}


def test_real_sample_is_accounted_line_by_line():
    report = check(BUNDLED / "sample")
    assert report.lines_read == 4064
    assert report.files == 40 and report.taxis_with_points == 40
    # The source notes: one (0, 0) point, two more outside the Beijing box, one repeated timestamp.
    assert report.skipped["zero_coordinate"] == 1
    assert report.skipped["outside_area"] == 2
    assert report.skipped["repeated_time_other_position"] == 1
    assert report.kept + report.skipped_total == 4064


def test_time_window_and_area_filters_are_counted(malformed):
    config = ReaderConfig(start=datetime(2008, 2, 2, 16, 1, 0), end=datetime(2008, 2, 2, 16, 1, 25))
    report = check(malformed, config)
    assert report.skipped["outside_time_window"] > 0
    assert report.kept == 1  # 16:01:20 only
    assert report.kept + report.skipped_total == report.lines_read


def test_zip_and_tar_archives_read_like_the_folder(tmp_path):
    folder = BUNDLED / "sample"
    zpath = tmp_path / "t.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for f in sorted(folder.glob("*.txt")):
            zf.write(f, f"taxis/{f.name}")
    tpath = tmp_path / "t.tar.gz"
    with tarfile.open(tpath, "w:gz") as tf:
        for f in sorted(folder.glob("*.txt")):
            tf.add(f, f"taxis/{f.name}")
    ref = check(folder)
    for archive in (zpath, tpath):
        got = check(archive)
        assert (got.lines_read, got.kept, dict(got.skipped)) == (ref.lines_read, ref.kept, dict(ref.skipped))
        assert got.examples["zero_coordinate"][0].startswith(f"{archive}!taxis/4819.txt:")


def test_missing_path_and_empty_folder_are_clear_errors(tmp_path):
    with pytest.raises(TDriveError, match="does not exist"):
        check(tmp_path / "nope")
    with pytest.raises(TDriveError, match="no T-Drive files"):
        check(tmp_path)


def test_data_check_command_prints_counts_and_json(malformed):
    result = run_mtwin("data", "check", str(malformed), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["lines_read"] == 16 and data["kept"] == 4 and data["skipped_total"] == 12
    text = run_mtwin("data", "check", str(malformed), timeout=60)
    assert "exact_duplicate" in text.stdout and "77.txt:10" in text.stdout
    bad = run_mtwin("data", "check", str(malformed / "missing"), timeout=60)
    assert bad.returncode == 2 and "does not exist" in bad.stderr
