"""Test set-up shared by the whole suite.

ROS isolation: every test session gets its own ROS_DOMAIN_ID (from its process id) and discovery limited
to this host, so that concurrent runs on one machine (CI jobs, developers) never see each other's topics.

Ctrl-C: the tests stop the processes they start with SIGINT, as a user would. A shell without job
control starts background commands (``make test &``, many CI runners) with SIGINT ignored, and children
inherit that, so such processes would ignore the tests' SIGINT and be killed instead. The session
restores Python's Ctrl-C handler, which its children see as the default disposition.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

if "MTWIN_TEST_DOMAIN_ID" in os.environ:
    os.environ["ROS_DOMAIN_ID"] = os.environ["MTWIN_TEST_DOMAIN_ID"]
else:
    os.environ["ROS_DOMAIN_ID"] = str(1 + os.getpid() % 100)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _workspace_sourced() -> bool:
    try:
        import rclpy  # noqa: F401

        import mobility_twin_msgs.msg  # noqa: F401
    except ImportError:
        return False
    return True


def pytest_collection_modifyitems(config, items):
    if _workspace_sourced():
        return
    needs_ros = [i for i in items if "ros" in i.keywords]
    if needs_ros:
        raise pytest.UsageError(
            "the ROS workspace is not on the path: run `make test` (or `source env.sh` before pytest); "
            "run `make setup` first on a new machine"
        )


@pytest.fixture(autouse=True)
def state_folder(tmp_path_factory, monkeypatch) -> Path:
    """Each test's nodes keep their restart state (ids, checkpoints) in a folder of their own, so that no test
    resumes another's."""
    folder = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("MTWIN_STATE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def run_mtwin(*args: str, timeout: float = 120.0, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run the real `mtwin` command line in a child process and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "mobility_twin.cli", *args], cwd=cwd, capture_output=True, text=True,
        timeout=timeout,
    )
