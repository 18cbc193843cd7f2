"""Run a LaunchPlan: one process per node, prefixed logs, supervision, clean shutdown.

The process model follows ``ros2 launch``: every node is a child process started with ``--ros-args``
(node name, namespace, parameter files, remappings); its output lines are prefixed with ``[label-N]``.
What happens when a node's process exits is what ``ros2 launch`` does (launch's ExecuteLocal):

* ``on_exit="shutdown"``: the launch shuts down, whatever the exit status, also when the node has
  ``respawn`` (under ``ros2 launch`` the Shutdown its on_exit emits cancels the pending respawn);
* ``respawn="true"``: the process is started again ``respawn_delay`` seconds after it exited, whatever
  its exit status, at most ``respawn_max_retries`` times (negative: no limit);
* otherwise the launch goes on without it: the other nodes keep running.

On top of that, the runner bounds crash loops, which ``ros2 launch`` does not: a respawning node that
exited ``respawn_limit`` times within ``respawn_window`` seconds is given up (reported with its last
exit status and the tail of its stderr) and not started again; the rest of the stack keeps running.

The launch ends when the duration elapses, on Ctrl-C / SIGTERM, on an ``on_exit="shutdown"``, or when
no process is running or waiting to be respawned. On the way out the remaining nodes get SIGINT, then
SIGTERM, then SIGKILL.

Exit status: 130 on Ctrl-C, 143 on SIGTERM; after an ``on_exit="shutdown"``, that node's status (0 for
a clean exit); otherwise the status of the first node that died and was not brought back (non-zero
exit without respawn, or given up), or 0.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import yaml

from .errors import LaunchError
from .xml_loader import LaunchPlan, NodeAction, ParamFile, ParamValue


@dataclass(frozen=True)
class RunOptions:
    duration: float | None = None  # seconds; None runs until the nodes finish or Ctrl-C
    shutdown_timeout: float = 5.0  # seconds between SIGINT and SIGTERM
    log_dir: Path | None = None  # where output="log"/"both" nodes write; default ROS_LOG_DIR or ~/.ros/log
    respawn_limit: int = 5  # a respawning node that exited this many times ...
    respawn_window: float = 60.0  # ... within this many seconds is given up
    tail_lines: int = 20  # stderr lines kept per process, reported when a node is given up

    def __post_init__(self) -> None:
        if self.respawn_limit < 1:
            raise LaunchError(f"respawn limit {self.respawn_limit}: must be at least 1")
        if not self.respawn_window > 0:
            raise LaunchError(f"respawn window {self.respawn_window} s: must be positive")


def node_command(node: NodeAction, params_dir: Path, index: int) -> list[str]:
    """The argv that starts ``node``; inline parameters go to a params file in ``params_dir``."""
    cmd = [str(node.executable_path()), *node.arguments, "--ros-args"]
    if node.name:
        cmd += ["-r", f"__node:={node.name}"]
    if node.namespace != "/":
        cmd += ["-r", f"__ns:={node.namespace}"]
    inline: dict[str, object] = {}
    sources: list[Path] = []

    def flush_inline() -> None:
        if inline:
            path = params_dir / f"{index:02d}_{node.label}_{len(sources)}.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": dict(inline)}}, sort_keys=False))
            sources.append(path)
            inline.clear()

    for param in node.parameters:
        if isinstance(param, ParamFile):
            flush_inline()
            sources.append(param.path)
        else:
            assert isinstance(param, ParamValue)
            inline[param.name] = param.value
    flush_inline()
    for path in sources:
        cmd += ["--params-file", str(path)]
    for src, dst in node.remappings:
        cmd += ["-r", f"{src}:={dst}"]
    return cmd


def describe_status(code: int) -> str:
    """'exit code 3' or 'signal 9 (SIGKILL)' for a Popen return code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {-code} ({signal.Signals(-code).name})"
    except ValueError:
        return f"signal {-code}"


def shell_status(code: int) -> int:
    """The status a shell would report for a Popen return code (128 + N for signal N)."""
    return code if code >= 0 else 128 - code


@dataclass
class _Supervised:
    """One node of the plan and the process currently running it (or waiting to be respawned)."""

    node: NodeAction
    label: str
    cmd: list[str]
    proc: subprocess.Popen | None = None
    pumps: list[threading.Thread] = field(default_factory=list)
    tail: deque = field(default_factory=deque)  # last stderr lines of the current (or last) process
    starts: int = 0
    exits: deque = field(default_factory=deque)  # monotonic times of recent exits (crash-loop window)
    restart_at: float | None = None
    done: bool = False  # will not run again


class LaunchRunner:
    def __init__(self, plan: LaunchPlan, options: RunOptions = RunOptions(), out: TextIO = sys.stdout) -> None:
        if not plan.nodes:
            raise LaunchError("the launch file starts no node", plan.files[0] if plan.files else None)
        self.plan = plan
        self.options = options
        self.out = out
        self._lock = threading.Lock()
        self._nodes: list[_Supervised] = []
        self._signal: int | None = None
        self.given_up: list[str] = []  # labels of nodes that could not stay up

    # ---------------------------------------------------------------------------------- output
    def say(self, text: str) -> None:
        with self._lock:
            self.out.write(f"[mtwin launch] {text}\n")
            self.out.flush()

    def _pump(self, label: str, stream, log_file: Path | None, to_screen: bool, tail: deque | None) -> None:
        log = log_file.open("ab") if log_file else None
        try:
            for raw in iter(stream.readline, b""):
                if log:
                    log.write(raw)
                    log.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\n")
                if tail is not None:
                    with self._lock:
                        tail.append(line)
                        while len(tail) > self.options.tail_lines:
                            tail.popleft()
                if to_screen:
                    with self._lock:
                        self.out.write(f"[{label}] {line}\n")
                        self.out.flush()
        finally:
            stream.close()
            if log:
                log.close()

    # ---------------------------------------------------------------------------------- lifecycle
    def _prepare(self, params_dir: Path) -> None:
        for index, node in enumerate(self.plan.nodes):
            self._nodes.append(_Supervised(node, f"{node.label}-{index}", node_command(node, params_dir, index)))
            if node.respawn and node.shutdown_on_exit:
                self.say(f"{node.label}-{index} has respawn and on_exit=shutdown: as under ros2 launch, its first "
                         f"exit shuts the launch down and it is not respawned ({node.origin})")

    def _spawn(self, sup: _Supervised, log_dir: Path) -> None:
        node = sup.node
        env = dict(os.environ)
        env.update(node.env)
        try:
            proc = subprocess.Popen(
                sup.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
                start_new_session=True,
            )
        except OSError as err:
            raise LaunchError(f"{node.origin}: cannot start {sup.cmd[0]}: {err.strerror}") from None
        sup.proc = proc
        sup.starts += 1
        sup.restart_at = None
        with self._lock:
            sup.tail.clear()
        again = f" (start {sup.starts})" if sup.starts > 1 else ""
        self.say(f"process started with pid [{proc.pid}]: {sup.label} ({node.package}/{node.executable}){again}")
        log_file = log_dir / f"{sup.label}.log" if node.output in ("log", "both") else None
        sup.pumps = [
            threading.Thread(target=self._pump, args=(sup.label, stream, log_file, node.output != "log", tail),
                             daemon=True)
            for stream, tail in ((proc.stdout, None), (proc.stderr, sup.tail))
        ]
        for thread in sup.pumps:
            thread.start()

    def _on_signal(self, signum: int, _frame) -> None:
        self._signal = signum

    def _stop_all(self) -> None:
        running = [(s.label, s.proc) for s in self._nodes if s.proc is not None and s.proc.poll() is None]
        for sig, wait in ((signal.SIGINT, self.options.shutdown_timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            if not running:
                break
            for label, proc in running:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
                if sig != signal.SIGINT:
                    self.say(f"sending {signal.Signals(sig).name} to {label} (did not stop in time)")
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(p.poll() is None for _, p in running):
                time.sleep(0.05)
            running = [(label, p) for label, p in running if p.poll() is None]
        for sup in self._nodes:
            for thread in sup.pumps:
                thread.join(timeout=2.0)

    def _give_up(self, sup: _Supervised, code: int, why: str) -> None:
        for thread in sup.pumps:  # the last lines the process wrote
            thread.join(timeout=1.0)
        with self._lock:
            tail = list(sup.tail)
        lines = "\n".join(f"    {line}" for line in tail) or "    (nothing on stderr)"
        self.say(f"giving up on {sup.label}: {why}; last {describe_status(code)}; not restarted again; the other "
                 f"nodes keep running ({sup.node.origin}). Last lines of its stderr:\n{lines}")
        self.given_up.append(sup.label)
        sup.done = True

    def _exited(self, sup: _Supervised, code: int, now: float) -> int | None:
        """Handle the exit of ``sup``'s process. Returns the launch's exit status when the launch must shut
        down (on_exit=shutdown), else None."""
        node, pid = sup.node, sup.proc.pid
        if code == 0:
            self.say(f"process has finished cleanly [pid {pid}]: {sup.label}")
        else:
            self.say(f"process has died [pid {pid}, {describe_status(code)}]: {sup.label} ({node.origin})")
        if node.shutdown_on_exit:
            self.say(f"{sup.label} has on_exit=shutdown: shutting down")
            sup.done = True
            return shell_status(code)
        if not node.respawn:
            sup.done = True
            if code != 0:
                self._failures.append(shell_status(code))
            return None
        sup.exits.append(now)
        while sup.exits and now - sup.exits[0] > self.options.respawn_window:
            sup.exits.popleft()
        if len(sup.exits) >= self.options.respawn_limit:
            self._give_up(sup, code, f"it exited {len(sup.exits)} times within {self.options.respawn_window:g} s")
            self._failures.append(max(1, shell_status(code)))
        elif 0 <= node.respawn_max_retries <= sup.starts - 1:
            self.say(f"not respawning {sup.label} again: respawn_max_retries={node.respawn_max_retries} reached")
            sup.done = True
            if code != 0:
                self._failures.append(shell_status(code))
        else:
            sup.restart_at = now + node.respawn_delay
            self.say(f"respawning {sup.label} in {node.respawn_delay:g} s")
        return None

    def run(self) -> int:
        log_dir = self.options.log_dir or Path(
            os.environ.get("ROS_LOG_DIR", Path.home() / ".ros" / "log"), f"mtwin_launch_{time.strftime('%Y%m%d-%H%M%S')}"
        )
        if any(n.output != "screen" for n in self.plan.nodes):
            log_dir.mkdir(parents=True, exist_ok=True)
            self.say(f"node logs in {log_dir}")
        params_dir = Path(tempfile.mkdtemp(prefix="mtwin_launch_params_"))
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        self._failures: list[int] = []
        status: int | None = None
        try:
            self._prepare(params_dir)
            for sup in self._nodes:
                self._spawn(sup, log_dir)
            start = time.monotonic()
            while status is None:
                if self._signal is not None:
                    self.say(f"{signal.Signals(self._signal).name} received: shutting down")
                    status = 128 + self._signal
                    break
                now = time.monotonic()
                if self.options.duration is not None and now - start >= self.options.duration:
                    self.say(f"duration of {self.options.duration:g} s reached: shutting down")
                    break
                for sup in self._nodes:
                    if sup.done:
                        continue
                    if sup.restart_at is not None:
                        if now >= sup.restart_at:
                            try:
                                self._spawn(sup, log_dir)
                            except LaunchError as err:
                                self._give_up(sup, 127, f"it cannot be started again: {err}")
                                self._failures.append(127)
                        continue
                    code = sup.proc.poll()
                    if code is not None:
                        status = self._exited(sup, code, now)
                        if status is not None:
                            break
                if status is None and all(s.done for s in self._nodes):
                    self.say("all processes have finished")
                    break
                time.sleep(0.05)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(params_dir, ignore_errors=True)
        if status is None:
            status = self._failures[0] if self._failures else 0
        if self.given_up:
            self.say(f"given up (could not stay up): {', '.join(self.given_up)}")
        self.say(f"done (exit status {status})")
        return status
