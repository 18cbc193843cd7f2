"""docker/: the image and the compose file, checked with what runs here (no Docker engine does).

The compose file's services are checked against the launch files they run and the default scenario's
layout; the Dockerfile against the repository and .dockerignore; the image's steps against
docker/README.md and `make setup`; docker/requirements.txt against the lock. The last test runs the
compose topology for real: each service's command under `mtwin launch`, as processes on this machine.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from mobility_twin.launch_runner import declared_arguments
from tests.deploy.compose import (
    COMPOSE,
    REPO,
    SMALL_SITE_1,
    ComposeError,
    interpolate,
    load_compose,
    role_launches,
)

DOCKER = REPO / "docker"
DOCKERFILE = DOCKER / "Dockerfile"
OFFICIAL_ROS_IMAGE = re.compile(r"^(ros|osrf/ros):kilted-[a-z-]+$")


# ---------------------------------------------------------------------------------------------- parsing
def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):  # a comment inside a continued instruction
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, rest = text.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def copy_sources(instructions: list[tuple[str, str]]) -> list[str]:
    sources = []
    for keyword, rest in instructions:
        if keyword in ("COPY", "ADD"):
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            sources += words[:-1]
    return sources


def dockerignore_excludes(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` (relative to the context) out of the build context.

    Patterns as Docker reads them: ``*`` within one path segment, ``**`` across segments, ``!`` to
    re-include, the last matching pattern wins, and a pattern matching a folder excludes what is in it.
    """
    def regex(pattern: str) -> re.Pattern:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + "(?:/.*)?$")

    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().strip("/")
        if pattern and regex(pattern).match(path):
            excluded = not negate
    return excluded


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def setup_ros_phases(text: str) -> list[str]:
    return re.findall(r"docker/setup_ros\.sh (system|python|build|all)\b", text)


def colcon_command(script: Path) -> list[str]:
    """The `colcon ... build ...` command of a shell script, as words, continuation lines joined."""
    text = script.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if line.strip().startswith("colcon "))
    return shlex.split(line.strip())


def requirement_names_in(text: str) -> dict[str, str | None]:
    """name (normalised) -> pinned version (None when unpinned) of requirements text."""
    out = {}
    for line in text.splitlines():
        name, _, version = line.split("#", 1)[0].strip().partition("==")
        if name:
            out[re.sub(r"[-_.]+", "-", name.strip().lower())] = version.strip() or None
    return out


def requirement_names(path: Path) -> dict[str, str | None]:
    return requirement_names_in(path.read_text())


# ---------------------------------------------------------------------------------------------- compose
def test_compose_interpolation_follows_the_compose_rules():
    env = {"SET": "x", "EMPTY": ""}
    assert interpolate("${SET:-d} ${EMPTY:-d} ${EMPTY-d} ${UNSET-d} ${UNSET} $SET $$SET", env) == "x d  d  x $SET"
    with pytest.raises(ComposeError, match="unsupported"):
        interpolate("${SET:?required}", env)
    with pytest.raises(ComposeError, match="nested"):
        interpolate("${UNSET:-${SET}}", env)


def test_every_service_runs_a_role_launch_file_with_arguments_it_declares():
    roles = role_launches({"MTWIN_SCENARIO": "default"})
    kinds = sorted(r.launch_file.name for r in roles.values())
    assert kinds == ["cloud.launch.xml", "edge.launch.xml", "replay.launch.xml", "rsu.launch.xml", "rsu.launch.xml"]
    for role in roles.values():
        assert role.launch_file.is_file(), f"{role.service}: {role.launch_file} is not in launch/"
        declared = {a.name: a for a in declared_arguments(role.launch_file)}
        unknown = set(role.arguments) - set(declared)
        assert not unknown, f"{role.service}: {sorted(unknown)} not declared by {role.launch_file.name}"
        missing = [n for n, a in declared.items() if a.default is None and n not in role.arguments]
        assert not missing, f"{role.service}: required argument(s) {missing} of {role.launch_file.name} not given"
    (sim,) = [r for r in roles.values() if r.launch_file.name == "replay.launch.xml"]
    assert sim.arguments["hil"] == "true", "separate hosts need wall-clock stamps (hardware-in-the-loop), no /clock"
    assert all(r.arguments.get("use_sim_time", "false") == "false" for r in roles.values())


def test_services_share_one_network_and_take_the_domain_id_from_the_environment():
    raw = yaml.safe_load(COMPOSE.read_text())
    networks = set(raw["networks"])
    assert len(networks) == 1
    for name, service in raw["services"].items():
        assert service["networks"] == list(networks), name
        assert service["environment"]["ROS_DOMAIN_ID"].startswith("${ROS_DOMAIN_ID"), name
    roles = role_launches({"ROS_DOMAIN_ID": "7"})
    assert {r.environment["ROS_DOMAIN_ID"] for r in roles.values()} == {"7"}
    assert {r.environment["ROS_DOMAIN_ID"] for r in role_launches({}).values()} == {"0"}
    build = load_compose(env={})["services"]["sim"]["build"]
    context = (COMPOSE.parent / build["context"]).resolve()
    assert context == REPO and (context / build["dockerfile"]).resolve() == DOCKERFILE


@pytest.mark.parametrize("scenario", ["default", "small_site_1"])
def test_the_compose_sites_and_rsus_exist_in_the_scenario(scenario, tmp_path):
    from mobility_twin_sim.scenario import load_scenario, scenario_from_dict
    from mobility_twin_sim.world import build_world

    world = build_world(load_scenario("default") if scenario == "default" else scenario_from_dict(SMALL_SITE_1))
    site_of = {r.rsu_id: r.site_id for r in world.layout.rsus}
    roles = role_launches({})
    rsus = sorted(r.arguments["rsu_id"] for r in roles.values() if r.launch_file.name == "rsu.launch.xml")
    (edge,) = [r for r in roles.values() if r.launch_file.name == "edge.launch.xml"]
    (cloud,) = [r for r in roles.values() if r.launch_file.name == "cloud.launch.xml"]
    site = edge.arguments["site_id"]
    assert edge.arguments["layout_from_topic"] == "true"  # the simulator's layout: the edge site has all its RSUs
    assert all(r.arguments["calibration_from_layout"] == "true" for r in roles.values()
               if r.launch_file.name == "rsu.launch.xml")
    assert set(rsus) <= {r.rsu_id for r in world.layout.rsus_of(site)}
    assert site in cloud.arguments["sites"].split(",")
    assert {site_of.get(r) for r in rsus} == {site}, f"{rsus} are not all RSUs of {site} in {scenario}: {site_of}"


# ---------------------------------------------------------------------------------------------- Dockerfile
def test_the_image_is_built_from_the_official_ros_image():
    instructions = dockerfile_instructions()
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest)
    assert OFFICIAL_ROS_IMAGE.match(args["BASE_IMAGE"]), args["BASE_IMAGE"]
    (base,) = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert base == "${BASE_IMAGE}"
    readme = (DOCKER / "README.md").read_text()
    for image in re.findall(r"BASE_IMAGE=(\S+)", readme):
        assert OFFICIAL_ROS_IMAGE.match(image), image


def test_every_copied_path_exists_and_is_in_the_build_context():
    patterns = dockerignore_patterns()
    sources = copy_sources(dockerfile_instructions())
    assert "." in sources
    for source in sources:
        if source == ".":
            continue
        assert (REPO / source).exists(), f"COPY {source}: not in the repository"
        assert not dockerignore_excludes(source, patterns), f"COPY {source}: excluded by .dockerignore"


def test_dockerignore_keeps_local_builds_out_and_the_sources_in():
    patterns = dockerignore_patterns()
    for out in [".venv/lib/python3.11/site-packages/x.py", "ros2_ws/build/mobility_twin/setup.py",
                "ros2_ws/install/setup.bash", "ros2_ws/log/latest", ".git/HEAD", "runs/demo/report.md",
                "sim/__pycache__/world.cpython-311.pyc"]:
        assert dockerignore_excludes(out, patterns), out
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    needed = [p for p in tracked if p.startswith(("launch/", "config/", "sim/", "models/", "ros2_ws/src/", "docker/",
                                                   "requirements/", "bin/"))] + ["pyproject.toml"]
    assert len(needed) > 20
    left_out = [p for p in needed if dockerignore_excludes(p, patterns)]
    assert not left_out, f".dockerignore leaves out tracked sources: {left_out[:10]}"


def test_the_image_runs_the_steps_of_the_full_ros_install_section():
    runs = " ".join(rest for keyword, rest in dockerfile_instructions() if keyword == "RUN")
    readme = (DOCKER / "README.md").read_text()
    section = readme[readme.index("## Running on a full ROS 2 install"):]
    block = section[section.index("```bash"):section.index("```", section.index("```bash") + 3)]
    assert setup_ros_phases(runs) == setup_ros_phases(block) == ["system", "python", "build"]
    entrypoint = json.loads(next(rest for keyword, rest in dockerfile_instructions() if keyword == "ENTRYPOINT"))
    workdir = next(rest for keyword, rest in dockerfile_instructions() if keyword == "WORKDIR")
    assert entrypoint == [f"{workdir}/docker/entrypoint.sh"]
    cmd = json.loads(next(rest for keyword, rest in dockerfile_instructions() if keyword == "CMD"))
    assert cmd[:3] == ["ros2", "launch", "mobility_twin"] and (REPO / "launch" / cmd[3]).is_file(), cmd
    assert os.access(DOCKER / "entrypoint.sh", os.X_OK) and os.access(DOCKER / "setup_ros.sh", os.X_OK)


def _resolve_args(text: str, instructions: list[tuple[str, str]]) -> str:
    """``text`` with ``${NAME}`` / ``$NAME`` of the Dockerfile's ARG defaults substituted."""
    args = dict(rest.split("=", 1) for keyword, rest in instructions if keyword == "ARG" and "=" in rest)
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), text)


def test_the_image_runs_as_an_unprivileged_user_from_after_the_system_packages_on():
    instructions = dockerfile_instructions()
    users = [(i, _resolve_args(rest, instructions)) for i, (keyword, rest) in enumerate(instructions)
             if keyword == "USER"]
    assert users, "no USER instruction: the image would run as root"
    switch, user = users[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and gid.isdigit() and int(gid) >= 1000, user  # numeric: verifiable
    assert len(users) == 1, "one switch, never back to root"
    created = [_resolve_args(rest, instructions) for keyword, rest in instructions[:switch]
               if keyword == "RUN" and "useradd" in rest]
    assert created and re.search(rf"useradd --uid \"?{uid}\"? --gid \"?{gid}\"?", created[0]), created
    assert re.search(rf"groupadd --gid \"?{gid}\"?", created[0]) and re.search(
        rf"chown -R \"?{uid}:{gid}\"? /opt/mobility_twin", created[0]), "the user owns the working folder"
    before = " ".join(rest for keyword, rest in instructions[:switch] if keyword == "RUN")
    after = " ".join(rest for keyword, rest in instructions[switch:] if keyword == "RUN")
    assert setup_ros_phases(before) == ["system"] and setup_ros_phases(after) == ["python", "build"]
    for keyword, rest in instructions[switch:]:
        if keyword in ("COPY", "ADD"):
            assert f"--chown={uid}:{gid}" in _resolve_args(rest, instructions), f"{keyword} {rest}: owned by root"
    assert [k for k, _ in instructions].index("ENTRYPOINT") > switch
    entrypoint = (DOCKER / "entrypoint.sh").read_text()
    assert not re.search(r"\b(sudo|su|chown|gosu|setpriv)\b", entrypoint), "the entrypoint needs no privileges"


def test_no_compose_service_runs_as_root_or_gains_privileges():
    for name, service in load_compose(env={})["services"].items():
        assert "user" not in service or str(service["user"]).split(":")[0] not in ("root", "0"), name
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("privileged", False), name


def test_the_workspace_is_built_with_the_same_colcon_command_as_make_setup():
    """Both build with colcon_build of scripts/lib.sh, given the venv's Python (it runs the nodes: their shebang)."""
    assert "-DPython3_EXECUTABLE=$2" in colcon_command(REPO / "scripts" / "lib.sh")
    for script in (DOCKER / "setup_ros.sh", REPO / "scripts" / "setup.sh"):
        text = script.read_text()
        assert 'source "$ROOT/scripts/lib.sh"' in text, script
        calls = re.findall(r'^\s*colcon_build "\$(?:WS|ROOT/ros2_ws)" "\$VPY" ', text, flags=re.M)
        assert len(calls) == 1, script
        assert not any(line.strip().startswith("colcon ") for line in text.splitlines()), f"{script}: a colcon of its own"


def test_shell_scripts_parse():
    for script in ("setup_ros.sh", "entrypoint.sh"):
        result = subprocess.run(["bash", "-n", str(DOCKER / script)], capture_output=True, text=True)
        assert result.returncode == 0, f"{script}: {result.stderr}"


# ---------------------------------------------------------------------------------------------- requirements
# Pins of docker/requirements.txt that differ from the lock on purpose: the ROS install's numpy (1.26).
NUMPY_1_PINS = {"pandas"}
# In requirements/requirements.txt but not needed on a full ROS 2 install: ROS 2 brings them.
FROM_ROS = {"numpy", "pyyaml"}
TOOLS = {"pytest", "pytest-timeout", "ruff"}


def test_docker_requirements_are_pinned_by_the_lock():
    lock = requirement_names(REPO / "requirements" / "constraints.txt")
    docker = requirement_names(DOCKER / "requirements.txt")
    assert "numpy" not in docker
    for name, version in docker.items():
        assert name in lock, f"{name} is not in requirements/constraints.txt: add it there (make lock)"
        if version is None:
            continue
        if name in NUMPY_1_PINS:
            assert version != lock[name] and re.search(rf"{name}.*numpy", (DOCKER / "requirements.txt").read_text(),
                                                       re.IGNORECASE), f"say why {name} is pinned"
        else:
            assert version == lock[name].split("+")[0], f"{name}=={version} but the lock has {lock[name]}"


def test_docker_requirements_cover_what_the_stack_needs():
    wanted = {name for name in requirement_names(REPO / "requirements" / "requirements.txt")
              if not name.startswith("ros-")} - FROM_ROS - TOOLS
    missing = wanted - set(requirement_names(DOCKER / "requirements.txt"))
    assert not missing, f"in requirements/requirements.txt but not in docker/requirements.txt: {sorted(missing)}"


def test_setup_ros_pins_numpy_to_the_ros_install_and_replaces_only_the_numpy_1_pins():
    result = subprocess.run(["bash", str(DOCKER / "setup_ros.sh"), "constraints", "1.26.4"], capture_output=True,
                            text=True, check=True)
    used = requirement_names_in(result.stdout)
    lock = requirement_names(REPO / "requirements" / "constraints.txt")
    assert used["numpy"] == "1.26.4"
    assert set(lock) - set(used) == NUMPY_1_PINS
    assert all(used[name] == version for name, version in lock.items() if name not in NUMPY_1_PINS | {"numpy"})
    assert used["torch"].endswith("+cpu")  # the CPU build


# ---------------------------------------------------------------------------------------------- a real run
@pytest.mark.ros
@pytest.mark.slow
def test_the_compose_services_run_here_and_the_twins_track(tmp_path):
    """The five compose commands under `mtwin launch`, as processes on this machine, for a short run."""
    from mobility_twin_msgs.msg import DetectedObjectArray, TrackedObjectArray, TwinStateArray
    from tests.ros_helpers import Collector, start_mtwin, stop

    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(yaml.safe_dump(SMALL_SITE_1))
    roles = role_launches({**os.environ, "MTWIN_SCENARIO": str(scenario)})
    procs = {}
    topics = {"/rsu/rsu_00/detections": DetectedObjectArray, "/rsu/rsu_01/detections": DetectedObjectArray,
              "/twin/local/site_1/state": TwinStateArray, "/twin/global/objects": TrackedObjectArray}
    try:
        for name, role in roles.items():
            # the service's environment, but discovery kept on this machine (no multicast onto its network)
            env = {**role.environment, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
            procs[name] = start_mtwin(*role.mtwin_argv()[3:], env=env, log=tmp_path / f"{name}.log")
        with Collector(topics) as c:
            def fresh_rsus(m) -> dict:
                states = m["/twin/local/site_1/state"]
                return {e.entity_id: e.stale for e in states[-1].entities if e.kind == e.KIND_RSU} if states else {}

            def tracking(m) -> bool:
                recent = m["/twin/global/objects"][-10:]
                return (len(m["/rsu/rsu_00/detections"]) >= 5 and len(m["/rsu/rsu_01/detections"]) >= 5
                        and fresh_rsus(m) == {"rsu_00": False, "rsu_01": False}
                        and len(recent) == 10 and all(len(msg.objects) for msg in recent))

            end = time.monotonic() + 150
            ok = False
            while not ok and time.monotonic() < end and all(p.poll() is None for p in procs.values()):
                ok = c.wait_for(tracking, timeout=1.0)
            alive = {name: p.poll() is None for name, p in procs.items()}
            rsus = fresh_rsus(c.messages)
    finally:
        for p in procs.values():
            stop(p)
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(tmp_path.glob("*.log")))
    assert ok and all(alive.values()), f"alive: {alive}, RSUs stale: {rsus}\n{logs}"
