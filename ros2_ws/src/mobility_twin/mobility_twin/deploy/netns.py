"""Several hosts on one machine: network namespaces joined by veth pairs to a bridge (tests, `mtwin bench chaos`).

Each host gets its own namespace with loopback, one interface ``eth0`` at ``10.<net>.0.<n>/24`` and the
multicast route DDS discovery needs; the bridge lives in a namespace of its own, so the machine's own
network is never touched. ``cut(host)`` and ``restore(host)`` take a host off the network and back.
Everything is deleted on close. Needs root and iproute2; :func:`netns_unavailable` says why not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def netns_unavailable() -> str | None:
    """None when namespaces can be made here, else the reason (for pytest.skip)."""
    if shutil.which("ip") is None:
        return "iproute2 (the `ip` command) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"mtw_probe_{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as err:
        return f"`ip netns add` failed: {err.stderr.strip()}"
    _ip("netns", "delete", probe)
    return None


class Hosts:
    def __init__(self, names: list[str], net: int | None = None) -> None:
        self.tag = f"{os.getpid() % 100000}"
        self.net = net if net is not None else 100 + os.getpid() % 100
        self.switch = f"mtw_sw_{self.tag}"
        self.names = list(names)
        self.ns = {name: f"mtw_{name}_{self.tag}" for name in names}
        self.address = {name: f"10.{self.net}.0.{i + 1}" for i, name in enumerate(names)}
        self._port = {name: f"s{self.tag}{i}" for i, name in enumerate(names)}
        try:
            self._create()
        except Exception:
            self.close()
            raise

    def _create(self) -> None:
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for name in self.names:
            ns, port = self.ns[name], self._port[name]
            _ip("netns", "add", ns)
            _ip("link", "add", port, "type", "veth", "peer", "name", f"h{port}")
            _ip("link", "set", port, "netns", self.switch)
            _ip("link", "set", f"h{port}", "netns", ns)
            _ip("-n", self.switch, "link", "set", port, "master", "br0")
            _ip("-n", self.switch, "link", "set", port, "up")
            _ip("-n", ns, "link", "set", f"h{port}", "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{self.address[name]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up", "multicast", "on")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")

    def command(self, host: str, argv: list[str]) -> list[str]:
        """``argv`` run inside ``host``'s namespace."""
        return ["ip", "netns", "exec", self.ns[host], *argv]

    def env(self) -> dict[str, str]:
        """Environment for DDS across hosts: discovery over the subnet, not only localhost."""
        env = dict(os.environ)
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"
        env.pop("ROS_LOCALHOST_ONLY", None)
        return env

    def popen(self, host: str, argv: list[str], log: Path, **kwargs) -> subprocess.Popen:
        return subprocess.Popen(self.command(host, argv), stdout=log.open("w"), stderr=subprocess.STDOUT,
                                env=self.env(), start_new_session=True, **kwargs)

    def cut(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", self._port[host], "down")

    def restore(self, host: str) -> None:
        _ip("-n", self.switch, "link", "set", self._port[host], "up")

    def close(self) -> None:
        for ns in [*self.ns.values(), self.switch]:
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True)

    def __enter__(self) -> Hosts:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
