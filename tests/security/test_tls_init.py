"""`mtwin security init / check`: the CA, the hosts' keys, certificates and Fast DDS TLS profiles; bad input."""

from __future__ import annotations

import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from mobility_twin.cli.main import main
from mobility_twin.security import SecurityError, check_host, claim_participant_profile, use_host_profile
from mobility_twin.security.fastdds import NS, OPENSSL_ENV, PROFILE_ENV, RUN_DIR_ENV
from mobility_twin.security.pki import CertificateAuthority, load_cert, verify_issued

PEERS = "cloud=10.0.0.2:47410,edge-site-1=10.0.0.3:47410,rsu-00=10.0.0.11:47410"
Q = f"{{{NS}}}"
XSD = Path(__file__).resolve().parents[2] / ".venv" / "share" / "fastdds" / "fastdds_profiles.xsd"


def _init(out: Path, *extra: str, peers: str = PEERS) -> int:
    return main(["security", "init", "--out", str(out), "--peers", peers, "--days", "30", *extra])


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def deployment(tmp_path) -> Path:
    assert _init(tmp_path / "pki") == 0
    return tmp_path / "pki"


def test_init_writes_the_ca_and_one_folder_per_host_with_keys_readable_by_their_owner_only(deployment):
    assert _mode(deployment / "ca") == 0o700 and _mode(deployment / "ca" / "ca.key.pem") == 0o600
    ca = load_cert(deployment / "ca" / "ca.cert.pem")
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for host, address in (("cloud", "10.0.0.2"), ("edge-site-1", "10.0.0.3"), ("rsu-00", "10.0.0.11")):
        folder = deployment / "hosts" / host
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            ["ca.cert.pem", "cert.pem", "key.pem", "host.yaml", "openssl.cnf", "fastdds_tls.xml", "discovery_server.xml"])
        assert _mode(folder / "key.pem") == 0o600
        assert _mode(folder / "cert.pem") == 0o644
        cert = load_cert(folder / "cert.pem")
        verify_issued(cert, ca)
        assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == host
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.DNSName) == [host]
        assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == [address]
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert {u.dotted_string for u in usage} == {"1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"}  # server and client
        assert check_host(folder).host == host
    if shutil.which("openssl"):  # the chain as OpenSSL reads it (Fast DDS uses OpenSSL)
        result = subprocess.run(["openssl", "verify", "-CAfile", str(deployment / "ca" / "ca.cert.pem"),
                                 str(deployment / "hosts" / "rsu-00" / "cert.pem")], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def _tls(profile: Path) -> ET.Element:
    root = ET.parse(profile).getroot()
    descriptors = root.findall(f".//{Q}transport_descriptor")
    assert [d.findtext(f"{Q}type") for d in descriptors] == ["TCPv4"]
    assert root.findtext(f".//{Q}useBuiltinTransports") == "false"  # no UDP, no shared memory besides
    assert [t.text for t in root.findall(f".//{Q}userTransports/{Q}transport_id")] == [descriptors[0].findtext(f"{Q}transport_id")]
    tls = descriptors[0].find(f"{Q}tls")
    assert [v.text for v in tls.findall(f"{Q}verify_mode/{Q}verify")] == ["VERIFY_PEER", "VERIFY_FAIL_IF_NO_PEER_CERT"]
    return root


def test_profiles_use_only_tcp_with_tls_and_name_the_hosts_files_and_servers(deployment):
    folder = deployment / "hosts" / "rsu-00"
    for name in ("fastdds_tls.xml", "discovery_server.xml"):
        root = _tls(folder / name)
        tls = root.find(f".//{Q}tls")
        assert Path(tls.findtext(f"{Q}verify_file")) == (folder / "ca.cert.pem").resolve()
        assert Path(tls.findtext(f"{Q}cert_chain_file")) == (folder / "cert.pem").resolve()
        assert Path(tls.findtext(f"{Q}private_key_file")) == (folder / "key.pem").resolve()
    participant = ET.parse(folder / "fastdds_tls.xml").getroot()
    assert participant.findtext(f".//{Q}discoveryProtocol") == "CLIENT"
    assert participant.findtext(f".//{Q}listening_ports/{Q}port") == "47411"
    assert [(a.text, p.text) for a, p in zip(participant.findall(f".//{Q}discoveryServersList//{Q}address"),
                                              participant.findall(f".//{Q}discoveryServersList//{Q}physical_port"),
                                              strict=True)] == [("10.0.0.11", "47410")]  # its own host's server
    # each server links to the servers of the hosts listed before it: every pair of hosts has one link
    links = {}
    for host in ("cloud", "edge-site-1", "rsu-00"):
        server = ET.parse(deployment / "hosts" / host / "discovery_server.xml").getroot()
        assert server.findtext(f".//{Q}discoveryProtocol") == "SERVER"
        assert server.findtext(f".//{Q}metatrafficUnicastLocatorList//{Q}physical_port") == "47410"
        links[host] = [a.text for a in server.findall(f".//{Q}discoveryServersList//{Q}address")]
    assert links == {"cloud": [], "edge-site-1": ["10.0.0.2"], "rsu-00": ["10.0.0.2", "10.0.0.3"]}
    openssl = (folder / "openssl.cnf").read_text()
    assert "VerifyMode = Peer,Request,Require" in openssl and "system_default" in openssl
    if shutil.which("xmllint") and XSD.exists():  # the schema of the Fast DDS the wheels ship
        result = subprocess.run(["xmllint", "--noout", "--schema", str(XSD), str(folder / "fastdds_tls.xml"),
                                 str(folder / "discovery_server.xml")], capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_init_reuses_the_ca_and_keeps_host_keys_unless_renewed(deployment):
    key = (deployment / "hosts" / "cloud" / "key.pem").read_bytes()
    ca = (deployment / "ca" / "ca.cert.pem").read_bytes()
    assert _init(deployment, "--hosts", "cloud") == 0
    assert (deployment / "ca" / "ca.cert.pem").read_bytes() == ca
    assert (deployment / "hosts" / "cloud" / "key.pem").read_bytes() == key
    assert _init(deployment, "--hosts", "cloud", "--renew") == 0
    assert (deployment / "hosts" / "cloud" / "key.pem").read_bytes() != key
    verify_issued(load_cert(deployment / "hosts" / "cloud" / "cert.pem"), load_cert(deployment / "ca" / "ca.cert.pem"))


def test_install_dir_and_a_peers_file(tmp_path):
    peers = tmp_path / "peers.yaml"
    peers.write_text("peers:\n  cloud: 10.0.0.2:7410\n  rsu-00: {address: 10.0.0.11, port: 7500}\n")
    assert main(["security", "init", "--out", str(tmp_path / "pki"), "--peers-file", str(peers),
                 "--install-dir", "/etc/mobility_twin/tls"]) == 0
    root = ET.parse(tmp_path / "pki" / "hosts" / "rsu-00" / "fastdds_tls.xml").getroot()
    assert root.findtext(f".//{Q}verify_file") == "/etc/mobility_twin/tls/ca.cert.pem"
    assert root.findtext(f".//{Q}listening_ports/{Q}port") == "7501"


@pytest.mark.parametrize(("argv", "message"), [
    (["--peers", PEERS], "--out is required"),
    (["--out", "{tmp}/x"], "give every host's address"),
    (["--out", "{tmp}/x", "--peers", "../etc=10.0.0.2:7410"], "'../etc' is not a valid file name"),
    (["--out", "{tmp}/x", "--peers", "cloud=10.0.0.2"], "'10.0.0.2' is not IP:PORT"),
    (["--out", "{tmp}/x", "--peers", "cloud=10.0.0.999:7410"], "is not IP:PORT"),
    (["--out", "{tmp}/x", "--peers", "cloud=10.0.0.2:70000"], "port 70000"),
    (["--out", "{tmp}/x", "--peers", "cloud 10.0.0.2:7410"], "is not host=IP:PORT"),
    (["--out", "{tmp}/x", "--peers", "cloud=10.0.0.2:7410,cloud=10.0.0.3:7410"], "'cloud' is given twice"),
    (["--out", "{tmp}/x", "--peers", "a=10.0.0.2:7410,b=10.0.0.2:7420"], "port ranges"),
    (["--out", "{tmp}/x", "--peers", "cloud=10.0.0.2:7410", "--hosts", "cloud,rsu-00"], "no address for rsu-00"),
    (["--out", "{tmp}/x", "--peers", "cloud=10.0.0.2:7410", "--hosts", "cloud,"], "expected comma-separated"),
    (["--out", "{tmp}/x", "--peers", "cloud=10.0.0.2:7410", "--days", "0"], "--days 0"),
    (["--out", "{tmp}/x", "--peers", "cloud=10.0.0.2:7410", "--install-dir", "relative"], "absolute path"),
    (["--out", "{tmp}/x", "--peers-file", "{tmp}/missing.yaml"], "cannot read the peers file"),
])
def test_bad_input_is_refused_naming_what_is_wrong(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["security", "init", *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x" / "ca").exists()  # nothing half-written


def test_check_refuses_a_host_folder_that_would_leave_the_link_open(deployment, capsys):
    folder = deployment / "hosts" / "cloud"
    assert main(["security", "check", str(folder)]) == 0
    (folder / "key.pem").chmod(0o644)
    with pytest.raises(SecurityError, match="readable by others"):
        check_host(folder)
    (folder / "key.pem").chmod(0o600)
    openssl = (folder / "openssl.cnf").read_text()
    (folder / "openssl.cnf").write_text("# emptied\n")
    assert main(["security", "check", str(folder)]) == 2
    assert "openssl.cnf differs" in capsys.readouterr().err
    (folder / "openssl.cnf").unlink()
    with pytest.raises(SecurityError, match=r"openssl\.cnf is missing"):
        check_host(folder)
    (folder / "openssl.cnf").write_text(openssl)
    check_host(folder)
    other = CertificateAuthority.create("another CA", days=5)
    (folder / "ca.cert.pem").write_bytes(other.cert.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(SecurityError, match="was not issued by"):
        check_host(folder)
    with pytest.raises(SecurityError, match="not a host folder"):
        check_host(deployment)


def test_each_process_claims_a_participant_port_of_its_own(deployment, tmp_path, monkeypatch):
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "run"))
    folder = deployment / "hosts" / "edge-site-1"
    first = claim_participant_profile(folder)
    second = claim_participant_profile(folder)
    assert (first.port, second.port) == (47411, 47412)
    for claim in (first, second):
        assert ET.parse(claim.profile).getroot().findtext(f".//{Q}listening_ports/{Q}port") == str(claim.port)
    env = {"MTWIN_TLS_HOST_DIR": str(folder)}
    profile = use_host_profile(env)
    assert env[PROFILE_ENV] == str(profile) and profile.name == "edge-site-1-47413.xml"
    assert env[OPENSSL_ENV] == str(folder.resolve() / "openssl.cnf")
    assert use_host_profile({}) is None


def test_exec_and_discovery_server_refuse_an_unusable_host_folder(deployment, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "run"))
    assert main(["security", "exec", "--host-dir", str(tmp_path / "nowhere"), "--", "true"]) == 2
    assert "not a host folder" in capsys.readouterr().err
    assert main(["security", "exec", "--host-dir", str(deployment / "hosts" / "cloud")]) == 2
    assert "no COMMAND" in capsys.readouterr().err
    (deployment / "hosts" / "cloud" / "key.pem").unlink()
    assert main(["security", "discovery-server", "--host-dir", str(deployment / "hosts" / "cloud")]) == 2
    assert "key.pem is missing" in capsys.readouterr().err
