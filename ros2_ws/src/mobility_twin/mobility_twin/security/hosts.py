"""Hosts of a deployment and the TCP address each listens on: from ``--peers`` text or a small YAML file.

``--peers rsu-00=10.0.0.11:7410,cloud=10.0.0.2:7410`` or a YAML file::

    peers:
      rsu-00: 10.0.0.11:7410
      cloud: {address: 10.0.0.2, port: 7410}

A host name names files and folders, so it is letters, digits, ``.``, ``_`` and ``-`` only (not starting
with ``.`` or ``-``), at most 63 characters.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from mobility_twin.security.errors import SecurityError

HOST_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,62}")


def check_host_name(name: str, *, where: str = "host name") -> str:
    if not isinstance(name, str) or not HOST_NAME.fullmatch(name):
        raise SecurityError(f"{where} {name!r} is not a valid file name: use 1-63 letters, digits, '.', '_' or '-', "
                            "not starting with '.' or '-'")
    return name


def parse_host_list(text: str) -> list[str]:
    """``rsu-00,edge-site-1,cloud`` -> the names, each checked, no duplicates."""
    names = [n.strip() for n in text.split(",")]
    if not text.strip() or any(not n for n in names):
        raise SecurityError(f"--hosts {text!r}: expected comma-separated host names, e.g. rsu-00,edge-site-1,cloud")
    seen: set[str] = set()
    for name in names:
        check_host_name(name, where="--hosts: host name")
        if name in seen:
            raise SecurityError(f"--hosts: host {name!r} is listed twice")
        seen.add(name)
    return names


@dataclass(frozen=True)
class Peer:
    """A host's TCP listening address: the other hosts connect to ``address:port``."""

    host: str
    address: str  # IPv4, dotted quad
    port: int

    def __str__(self) -> str:
        return f"{self.host}={self.address}:{self.port}"


def parse_address(text: str, *, where: str) -> tuple[str, int]:
    """``"10.0.0.2:7410"`` -> ("10.0.0.2", 7410)."""
    host, sep, port = str(text).strip().rpartition(":")
    try:
        if not sep:
            raise ValueError
        address = ipaddress.IPv4Address(host)
        number = int(port)
    except ValueError:
        raise SecurityError(f"{where}: {text!r} is not IP:PORT (an IPv4 address and a TCP port, e.g. 10.0.0.2:7410)"
                            ) from None
    if not 1 <= number <= 65535:
        raise SecurityError(f"{where}: port {number} in {text!r} is outside 1..65535")
    if address.is_unspecified or address.is_multicast:
        raise SecurityError(f"{where}: {address} in {text!r} is not a host's unicast address")
    return str(address), number


def _checked(peers: list[Peer], where: str) -> dict[str, Peer]:
    out: dict[str, Peer] = {}
    endpoints: dict[tuple[str, int], str] = {}
    for peer in peers:
        if peer.host in out:
            raise SecurityError(f"{where}: host {peer.host!r} is given twice")
        other = endpoints.get((peer.address, peer.port))
        if other:
            raise SecurityError(f"{where}: {peer.host!r} and {other!r} both listen on {peer.address}:{peer.port}")
        out[peer.host] = peer
        endpoints[(peer.address, peer.port)] = peer.host
    return out


def parse_peers(text: str) -> dict[str, Peer]:
    """``host=ip:port,...`` -> {host: Peer}."""
    items = [item.strip() for item in text.split(",")]
    if not text.strip() or any(not i for i in items):
        raise SecurityError(f"--peers {text!r}: expected host=IP:PORT,... e.g. cloud=10.0.0.2:7410,rsu-00=10.0.0.11:7410")
    peers = []
    for item in items:
        host, sep, address = item.partition("=")
        if not sep:
            raise SecurityError(f"--peers: {item!r} is not host=IP:PORT")
        host = check_host_name(host.strip(), where="--peers: host name")
        peers.append(Peer(host, *parse_address(address, where=f"--peers {host}")))
    return _checked(peers, "--peers")


def load_peers(path: Path) -> dict[str, Peer]:
    """The ``peers:`` mapping of a YAML file (host: "IP:PORT" or {address: IP, port: PORT})."""
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SecurityError(f"cannot read the peers file {path}: {err}") from None
    table = data.get("peers") if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise SecurityError(f"{path}: expected a non-empty mapping 'peers: {{host: IP:PORT, ...}}'")
    peers = []
    for host, value in table.items():
        host = check_host_name(str(host), where=f"{path}: peers: host name")
        where = f"{path}: peers: {host}"
        if isinstance(value, dict):
            unknown = set(value) - {"address", "port"}
            if unknown or "address" not in value or "port" not in value:
                raise SecurityError(f"{where}: expected {{address: IP, port: PORT}}, got {value!r}")
            value = f"{value['address']}:{value['port']}"
        elif not isinstance(value, str):
            raise SecurityError(f"{where}: expected \"IP:PORT\" or {{address: IP, port: PORT}}, got {value!r}")
        peers.append(Peer(host, *parse_address(value, where=where)))
    return _checked(peers, str(path))
