"""Run a LaunchPlan: one process per node, prefixed logs, clean shutdown.

The process model follows ``ros2 launch``: every node is a child process started with ``--ros-args``
(node name, namespace, parameter files, remappings); its output lines are prefixed with ``[label-N]``.
The launch ends when the duration elapses, on Ctrl-C / SIGTERM, when a node with ``on_exit="shutdown"``
exits, when a node crashes (non-zero exit), or when every node has finished. On the way out the
remaining nodes get SIGINT, then SIGTERM, then SIGKILL.

Exit status: 0 for a clean end (duration, finished, on_exit shutdown with status 0); the crashed node's
status (at least 1) when a node crashed; 130 on Ctrl-C, 143 on SIGTERM.
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
from dataclasses import dataclass
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


class LaunchRunner:
    def __init__(self, plan: LaunchPlan, options: RunOptions = RunOptions(), out: TextIO = sys.stdout) -> None:
        if not plan.nodes:
            raise LaunchError("the launch file starts no node", plan.files[0] if plan.files else None)
        self.plan = plan
        self.options = options
        self.out = out
        self._lock = threading.Lock()
        self._procs: list[tuple[NodeAction, str, subprocess.Popen]] = []
        self._threads: list[threading.Thread] = []
        self._signal: int | None = None

    # ---------------------------------------------------------------------------------- output
    def say(self, text: str) -> None:
        with self._lock:
            self.out.write(f"[mtwin launch] {text}\n")
            self.out.flush()

    def _pump(self, label: str, stream, log_file: Path | None, to_screen: bool) -> None:
        log = log_file.open("ab") if log_file else None
        try:
            for raw in iter(stream.readline, b""):
                if log:
                    log.write(raw)
                    log.flush()
                if to_screen:
                    line = raw.decode("utf-8", errors="replace").rstrip("\n")
                    with self._lock:
                        self.out.write(f"[{label}] {line}\n")
                        self.out.flush()
        finally:
            stream.close()
            if log:
                log.close()

    # ---------------------------------------------------------------------------------- lifecycle
    def _start(self, params_dir: Path, log_dir: Path) -> None:
        for index, node in enumerate(self.plan.nodes):
            label = f"{node.label}-{index}"
            cmd = node_command(node, params_dir, index)
            env = dict(os.environ)
            env.update(node.env)
            try:
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=env, start_new_session=True,
                )
            except OSError as err:
                raise LaunchError(f"{node.origin}: cannot start {cmd[0]}: {err.strerror}") from None
            self._procs.append((node, label, proc))
            self.say(f"process started with pid [{proc.pid}]: {label} ({node.package}/{node.executable})")
            log_file = log_dir / f"{label}.log" if node.output in ("log", "both") else None
            thread = threading.Thread(
                target=self._pump, args=(label, proc.stdout, log_file, node.output != "log"), daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _on_signal(self, signum: int, _frame) -> None:
        self._signal = signum

    def _stop_all(self) -> None:
        running = [(label, p) for _, label, p in self._procs if p.poll() is None]
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
        for thread in self._threads:
            thread.join(timeout=2.0)

    def run(self) -> int:
        log_dir = self.options.log_dir or Path(
            os.environ.get("ROS_LOG_DIR", Path.home() / ".ros" / "log"), f"mtwin_launch_{time.strftime('%Y%m%d-%H%M%S')}"
        )
        if any(n.output != "screen" for n in self.plan.nodes):
            log_dir.mkdir(parents=True, exist_ok=True)
            self.say(f"node logs in {log_dir}")
        params_dir = Path(tempfile.mkdtemp(prefix="mtwin_launch_params_"))
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        status = 0
        try:
            self._start(params_dir, log_dir)
            start = time.monotonic()
            finished: set[int] = set()
            while True:
                if self._signal is not None:
                    name = signal.Signals(self._signal).name
                    self.say(f"{name} received: shutting down")
                    status = 128 + self._signal
                    break
                if self.options.duration is not None and time.monotonic() - start >= self.options.duration:
                    self.say(f"duration of {self.options.duration:g} s reached: shutting down")
                    break
                crashed = None
                for index, (node, label, proc) in enumerate(self._procs):
                    code = proc.poll()
                    if code is None or index in finished:
                        continue
                    finished.add(index)
                    if code != 0:
                        reason = f"signal {-code}" if code < 0 else f"exit code {code}"
                        self.say(f"process has died [pid {proc.pid}, {reason}]: {label} ({node.origin})")
                        crashed = code if code > 0 else 128 - code
                        break
                    self.say(f"process has finished cleanly [pid {proc.pid}]: {label}")
                    if node.shutdown_on_exit:
                        self.say(f"{label} has on_exit=shutdown: shutting down")
                        crashed = 0
                        break
                if crashed is not None:
                    status = crashed
                    break
                if len(finished) == len(self._procs):
                    self.say("all processes have finished")
                    break
                time.sleep(0.05)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(params_dir, ignore_errors=True)
        self.say(f"done (exit status {status})")
        return status
