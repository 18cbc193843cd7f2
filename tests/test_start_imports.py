"""A node's start imports only what it needs to start: a restarted node is useful again in seconds only if
the heavy libraries (open3d and its visualisation stack, torch and torch_geometric, scipy.spatial) come later,
when (or while) the node is up. Each node module is imported in a fresh interpreter, as its executable does."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("open3d", "torch", "torch_geometric", "scipy.spatial", "pandas", "matplotlib", "motmetrics", "dash")


@pytest.mark.ros
@pytest.mark.parametrize(("module", "allowed"), [
    ("mobility_twin.nodes.perception", ()),
    ("mobility_twin.nodes.local_twin", ("scipy.spatial",)),  # the tracker's, needed for the first frame
    ("mobility_twin.nodes.global_twin", ("scipy.spatial",)),
    ("mobility_twin.nodes.relation_learner", ()),
    # the simulator builds its LiDAR simulation (open3d) before its first output anyway
    ("mobility_twin.nodes.replay", ("open3d", "dash", "scipy.spatial")),
])
def test_importing_a_node_module_leaves_the_heavy_libraries_for_later(module, allowed):
    code = f"import sys, json, {module}; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1])) - set(allowed)
    assert not loaded, f"importing {module} imports {sorted(loaded)}"
