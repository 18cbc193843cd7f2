"""Who may publish, across hosts: TLS links with certificates of the project CA, and a stranger who cannot join.

Three hosts (network namespaces on one bridge, made by the test): ``cloud`` and ``edge`` get their folders
from one `mtwin security init`; each runs its discovery server (`mtwin security discovery-server`), the edge
two publishers standing for the local twin of site_x (one started with `mtwin security exec`, one claiming
its port itself from MTWIN_TLS_HOST_DIR, as a node's entry point does), the cloud a subscriber standing for
the global twin. On the same link, ``stranger`` publishes the same local-twin
messages (same topic, same twin_id, same domain) four ways:

* ``udp``: no certificate at all, Fast DDS's default transports (the stack's config/fastdds.xml);
* ``plain-tcp``: the legitimate profile without its TLS section, aimed at the cloud's discovery server;
* ``no-cert``: TLS that trusts the project CA (its certificate is public) but presents no certificate, and
  listens on no port (it opens every connection itself, so only the peer it reaches can refuse it);
* ``other-ca``: a certificate and profile from another `mtwin security init` (another CA) for a host that
  calls itself ``cloud``, aimed at the real cloud's discovery server.

The cloud's subscriber must receive the edge's messages and none of the stranger's; a stranger subscriber
(default transports) must receive none of the edge's, while it does receive the ``udp`` stranger's (the
stranger's set-up works: only the TLS links keep it out).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.netns import Hosts, netns_unavailable
from tests.ros_helpers import REPO, stop

pytestmark = [pytest.mark.ros, pytest.mark.netns]

PORT = 7410
PUBLISH_S = 20.0  # each publisher: 200 messages at 10 Hz
LISTEN_S = 30.0
STRANGERS = ("udp", "plain-tcp", "no-cert", "other-ca")
NS = "{http://www.eprosima.com}"


def _mtwin(*args: str) -> list[str]:
    return [sys.executable, "-m", "mobility_twin.cli", *args]


def _peer(*args: str) -> list[str]:
    return [sys.executable, "-m", "tests.security.tls_peer", *args]


def _stripped_profile(source: Path, out: Path, *, drop: tuple[str, ...]) -> Path:
    """``source`` with the TLS elements named in ``drop`` removed (``tls``: the whole section)."""
    ET.register_namespace("", NS.strip("{}"))
    tree = ET.parse(source)
    for parent in list(tree.iter()):
        for child in list(parent):
            if child.tag.removeprefix(NS) in drop:
                parent.remove(child)
    tree.write(out, xml_declaration=True, encoding="UTF-8")
    return out


def _sent(log: Path) -> int:
    found = re.findall(r'\{"sent": (\d+)\}', log.read_text()) if log.exists() else []
    return int(found[-1]) if found else 0


def test_a_stranger_host_without_a_certificate_of_the_ca_never_reaches_the_twin(tmp_path):
    reason = netns_unavailable()
    if reason:
        pytest.skip(f"TLS host test needs network namespaces, unavailable here: {reason}")
    with Hosts(["cloud", "edge", "stranger"]) as hosts:
        ip = hosts.address
        pki, other = tmp_path / "pki", tmp_path / "other"
        subprocess.run(_mtwin("security", "init", "--out", str(pki), "--days", "2",
                              "--peers", f"cloud={ip['cloud']}:{PORT},edge={ip['edge']}:{PORT}"),
                       check=True, capture_output=True, text=True, cwd=REPO)
        # the stranger: another CA, a host calling itself "cloud" whose discovery server is the real cloud's
        subprocess.run(_mtwin("security", "init", "--out", str(other), "--days", "2", "--hosts", "cloud",
                              "--peers", f"cloud={ip['cloud']}:{PORT}"),
                       check=True, capture_output=True, text=True, cwd=REPO)
        legit_edge = pki / "hosts" / "edge"
        # profiles a stranger can make from public knowledge: the address, the port, the CA certificate
        plain_tcp = _stripped_profile(legit_edge / "fastdds_tls.xml", tmp_path / "plain_tcp.xml", drop=("tls",))
        # a pure TLS client (no listening port): it opens every connection itself, so only the peer it connects
        # to can refuse it
        no_cert = _stripped_profile(legit_edge / "fastdds_tls.xml", tmp_path / "no_cert.xml",
                                    drop=("private_key_file", "cert_chain_file", "listening_ports"))
        aimed = f"<address>{ip['edge']}</address>"
        for path in (plain_tcp, no_cert):  # aim them at the cloud's discovery server, from the stranger's address
            path.write_text(path.read_text().replace(aimed, f"<address>{ip['cloud']}</address>"))

        run_env = {"MTWIN_TLS_RUN_DIR": str(tmp_path / "run")}
        procs: dict[str, subprocess.Popen] = {}
        logs = {name: tmp_path / f"{name}.log" for name in
                ("server-cloud", "server-edge", "global", "local", "local-b", "stranger-sub", *STRANGERS)}

        def start(name: str, host: str, argv: list[str], profile: Path | None = None, host_dir: Path | None = None) -> None:
            env = [f"{k}={v}" for k, v in run_env.items()]
            if profile is not None:
                env.append(f"FASTDDS_DEFAULT_PROFILES_FILE={profile}")
            if host_dir is not None:  # the process claims its profile itself (as a node's entry point)
                env.append(f"MTWIN_TLS_HOST_DIR={host_dir}")
            procs[name] = hosts.popen(host, ["env", *env, *argv], logs[name], cwd=REPO)

        try:
            start("server-cloud", "cloud", _mtwin("security", "discovery-server", "--host-dir", str(pki / "hosts" / "cloud")))
            start("server-edge", "edge", _mtwin("security", "discovery-server", "--host-dir", str(legit_edge)))
            start("global", "cloud", _peer("sub", "--duration", str(LISTEN_S), "--out", str(tmp_path / "global.json")),
                  host_dir=pki / "hosts" / "cloud")
            start("stranger-sub", "stranger", _peer("sub", "--duration", str(LISTEN_S), "--out",
                                                    str(tmp_path / "stranger_sub.json")),
                  profile=REPO / "config" / "fastdds.xml")
            time.sleep(2.0)  # the servers up before their clients
            pub = ("pub", "--count", str(int(PUBLISH_S * 10)), "--rate", "10")
            start("local", "edge", _mtwin("security", "exec", "--host-dir", str(legit_edge), "--",
                                          *_peer(*pub, "--label", "edge")))
            start("local-b", "edge", _peer(*pub, "--label", "edge-b"), host_dir=legit_edge)  # a second process
            start("udp", "stranger", _peer(*pub, "--label", "stranger-udp"), profile=REPO / "config" / "fastdds.xml")
            start("plain-tcp", "stranger", _peer(*pub, "--label", "stranger-plain-tcp"), profile=plain_tcp)
            start("no-cert", "stranger", _peer(*pub, "--label", "stranger-no-cert"), profile=no_cert)
            start("other-ca", "stranger", _mtwin("security", "exec", "--host-dir", str(other / "hosts" / "cloud"),
                                                 "--", *_peer(*pub, "--label", "stranger-other-ca")))
            end = time.monotonic() + LISTEN_S + 30
            for name in ("global", "stranger-sub", "local", "local-b", *STRANGERS):
                procs[name].wait(timeout=max(1.0, end - time.monotonic()))
            servers_alive = {name: procs[name].poll() is None for name in ("server-cloud", "server-edge")}
        finally:
            for proc in procs.values():
                stop(proc)

    def story() -> str:
        return "\n".join(f"--- {name}\n{path.read_text()[-1500:]}" for name, path in logs.items() if path.exists())

    assert (tmp_path / "global.json").exists(), story()
    received = json.loads((tmp_path / "global.json").read_text())["counts"]
    stranger_saw = json.loads((tmp_path / "stranger_sub.json").read_text())["counts"]
    sent = {name: _sent(logs[name]) for name in ("local", "local-b", *STRANGERS)}
    print(f"sent {sent}; the cloud's subscriber received {received}; the stranger's subscriber received {stranger_saw}")
    assert servers_alive == {"server-cloud": True, "server-edge": True}, story()
    assert all(n == PUBLISH_S * 10 for n in sent.values()), f"a publisher did not finish: {sent}\n{story()}"
    # the legitimate links carry both edge processes' messages (those sent before the link was up are lost)
    for label, name in (("edge", "local"), ("edge-b", "local-b")):
        assert received.get(label, 0) >= 0.5 * sent[name], f"legitimate messages missing: {received}\n{story()}"
    # and nothing of any stranger reaches the twin
    assert set(received) == {"edge", "edge-b"}, f"a stranger's messages reached the twin: {received}\n{story()}"
    # the stranger sees its own UDP messages (its set-up works) but nothing of the legitimate link
    assert stranger_saw.get("stranger-udp", 0) > 0, f"the stranger's control link did not work: {stranger_saw}"
    assert "edge" not in stranger_saw, f"the legitimate messages leaked to the stranger: {stranger_saw}"
    # the TLS refusals are real handshake failures, seen by the stranger's TLS processes
    refused = logs["other-ca"].read_text() + logs["no-cert"].read_text()
    assert "Handshake failed" in refused or "handshake" in refused.lower(), story()
