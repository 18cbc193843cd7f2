"""Fast DDS profiles for TLS links between hosts: TCPv4 only, TLS with mutual authentication, no UDP, no SHM.

Why a discovery server per host (measured with the Fast DDS 3.2 of the wheels, in network namespaces):

* Several processes on one host cannot share one TCP listening port (the second one's bind fails and its
  peers then reach the wrong process); a participant whose listening port is 0 (chosen by the system) makes
  every pair of participants connect both ways at once, and about one pair in ten never matched.
* Participants with fixed, distinct ports matched every time; but with simple discovery each one would have
  to list every port of every host as an initial peer.

So each host runs one discovery server (``mtwin security discovery-server``) on the host's well-known port
(``--peers host=IP:PORT``); it connects to the servers of the hosts listed before it, so every pair of
hosts has exactly one link. Every other participant of the host is a discovery client of its host's server
and listens on a port of its own from the host's participant range (PORT+1 ... PORT+N), claimed with a
lock file (:func:`claim_participant_profile`); data flows directly between participants, over TLS.

Mutual authentication needs more than the profile: Fast DDS 3.2 applies ``verify_mode`` only to the
connections it opens, never to the ones it accepts (its SSL context keeps OpenSSL's default, no client
certificate requested; measured: ``openssl s_client`` without a certificate, or with one of another CA,
completed the handshake with a participant listening with VERIFY_PEER + VERIFY_FAIL_IF_NO_PEER_CERT, and such
a stranger's discovery data reached the other participants). The OpenSSL 1.1.1 inside the wheels reads
``OPENSSL_CONF`` when it starts; each host folder has an ``openssl.cnf`` whose ``system_default`` section
makes every TLS context of the process request and require a peer certificate (``VerifyMode =
Peer,Request,Require``), verified against the CA the profile names, and TLS 1.2 at least. Every process of
the host runs with ``OPENSSL_CONF`` pointing at it (:func:`process_environment`); with it the same probes
were refused (``certificate required``, ``unknown ca``).

Fail-open traps of Fast DDS that the checks here close: a profile file that does not parse makes Fast DDS
fall back to its default transports (UDP and shared memory, no authentication), and a TLS configuration it
cannot load (a missing or unreadable key) makes it use plain TCP. :func:`check_host` refuses both (and a
missing or altered ``openssl.cnf``) before a profile is handed to a process.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
import stat
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography.x509.oid import NameOID

from mobility_twin.security.errors import SecurityError
from mobility_twin.security.files import make_dir, write_file
from mobility_twin.security.hosts import Peer, check_host_name, parse_address
from mobility_twin.security.pki import load_cert, verify_issued

NS = "http://www.eprosima.com"
HOST_FILE = "host.yaml"
CA_FILE = "ca.cert.pem"
CERT_FILE = "cert.pem"  # the host's certificate followed by the CA's (the chain Fast DDS presents)
KEY_FILE = "key.pem"
PARTICIPANT_PROFILE = "fastdds_tls.xml"
SERVER_PROFILE = "discovery_server.xml"
OPENSSL_FILE = "openssl.cnf"  # makes the TLS contexts of a process require the peer's certificate
TRANSPORT_ID = "mobility_twin_tls"
#: the environment variable naming a host's folder; :func:`use_host_profile` gives the process a profile of it
HOST_DIR_ENV = "MTWIN_TLS_HOST_DIR"
RUN_DIR_ENV = "MTWIN_TLS_RUN_DIR"
PROFILE_ENV = "FASTDDS_DEFAULT_PROFILES_FILE"
OPENSSL_ENV = "OPENSSL_CONF"
TLS_OPTIONS = ("DEFAULT_WORKAROUNDS", "NO_SSLV2", "NO_SSLV3", "NO_TLSV1", "NO_TLSV1_1")

ET.register_namespace("", NS)


@dataclass(frozen=True)
class HostConfig:
    """One host's link settings, saved as ``host.yaml`` in its folder."""

    host: str
    address: str
    port: int  # the host's discovery server listens here
    participant_ports: tuple[int, int]  # first, last: one per process of the host
    servers: tuple[Peer, ...]  # the discovery servers this host's server connects to

    def to_dict(self) -> dict:
        return {"host": self.host, "address": self.address, "port": self.port,
                "participant_ports": list(self.participant_ports),
                "servers": [{"host": p.host, "address": p.address, "port": p.port} for p in self.servers]}

    @classmethod
    def from_dict(cls, data: dict, *, where: str) -> HostConfig:
        try:
            host = check_host_name(data["host"], where=f"{where}: host")
            address, port = parse_address(f"{data['address']}:{data['port']}", where=f"{where}: address")
            first, last = (int(p) for p in data["participant_ports"])
            servers = tuple(Peer(s["host"], *parse_address(f"{s['address']}:{s['port']}", where=f"{where}: servers"))
                            for s in data.get("servers") or [])
        except (KeyError, TypeError, ValueError) as err:
            if isinstance(err, SecurityError):
                raise
            raise SecurityError(f"{where}: malformed host settings ({type(err).__name__}: {err})") from None
        if not port < first <= last <= 65535:
            raise SecurityError(f"{where}: participant_ports {first}..{last} must lie above the server port {port}")
        return cls(host, address, port, (first, last), servers)


def load_host(host_dir: Path) -> HostConfig:
    path = Path(host_dir) / HOST_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise SecurityError(f"{host_dir} is not a host folder of `mtwin security init` (cannot read {HOST_FILE}: "
                            f"{err})") from None
    if not isinstance(data, dict):
        raise SecurityError(f"{path}: expected a mapping")
    return HostConfig.from_dict(data, where=str(path))


def save_host(host_dir: Path, cfg: HostConfig) -> Path:
    text = ("# Written by `mtwin security init`: this host's TLS link settings, read by `mtwin security exec`,\n"
            "# `mtwin security discovery-server` and `mtwin security check`.\n")
    return write_file(Path(host_dir) / HOST_FILE, text + yaml.safe_dump(cfg.to_dict(), sort_keys=False))


# ---------------------------------------------------------------------------------------------- profiles
def _el(parent: ET.Element, tag: str, text: str | int | None = None) -> ET.Element:
    child = ET.SubElement(parent, f"{{{NS}}}{tag}")
    if text is not None:
        child.text = str(text)
    return child


def _tcp_locator(parent: ET.Element, address: str, port: int) -> None:
    tcp = _el(_el(parent, "locator"), "tcpv4")
    _el(tcp, "address", address)
    _el(tcp, "physical_port", port)
    _el(tcp, "port", port)  # logical port: the same number, on both ends of a discovery-server link


def _transport(profiles: ET.Element, files_dir: Path, listening_port: int) -> None:
    descriptor = _el(_el(profiles, "transport_descriptors"), "transport_descriptor")
    _el(descriptor, "transport_id", TRANSPORT_ID)
    _el(descriptor, "type", "TCPv4")
    _el(_el(descriptor, "listening_ports"), "port", listening_port)
    tls = _el(descriptor, "tls")
    _el(tls, "private_key_file", files_dir / KEY_FILE)
    _el(tls, "cert_chain_file", files_dir / CERT_FILE)
    _el(tls, "verify_file", files_dir / CA_FILE)
    verify = _el(tls, "verify_mode")
    _el(verify, "verify", "VERIFY_PEER")
    _el(verify, "verify", "VERIFY_FAIL_IF_NO_PEER_CERT")
    options = _el(tls, "options")
    for option in TLS_OPTIONS:
        _el(options, "option", option)
    # no handshake_role: TLS client on the end that connects, server on the end that accepts; both verify


def _document(cfg: HostConfig, files_dir: Path, *, server: bool, listening_port: int) -> str:
    root = ET.Element(f"{{{NS}}}dds")
    what = (f"the discovery server of host {cfg.host}: listens on {cfg.address}:{cfg.port} and links to "
            + (", ".join(f"{p.host} ({p.address}:{p.port})" for p in cfg.servers) or "no other server (the "
               "other hosts' servers link to it)")
            if server else
            f"a participant of host {cfg.host}: listens on TCP port {listening_port}, discovers through the host's "
            f"server at {cfg.address}:{cfg.port}")
    root.append(ET.Comment(
        f" Written by `mtwin security init`: {what}. TCPv4 with TLS only (no UDP, no shared memory); the peer's "
        "certificate must chain to the project CA (ca.cert.pem) or the link is refused. Run with "
        "OPENSSL_CONF=<this folder>/openssl.cnf: without it, peers that connect are not asked for a certificate. "))
    profiles = _el(root, "profiles")
    _transport(profiles, files_dir, listening_port)
    participant = _el(profiles, "participant")
    participant.set("profile_name", f"mobility_twin_tls_{'server' if server else 'participant'}")
    participant.set("is_default_profile", "true")
    rtps = _el(participant, "rtps")
    _el(_el(rtps, "userTransports"), "transport_id", TRANSPORT_ID)
    _el(rtps, "useBuiltinTransports", "false")
    builtin = _el(rtps, "builtin")
    discovery = _el(builtin, "discovery_config")
    _el(discovery, "discoveryProtocol", "SERVER" if server else "CLIENT")
    servers = [Peer(cfg.host, cfg.address, cfg.port)] if not server else list(cfg.servers)
    if servers:
        listed = _el(discovery, "discoveryServersList")
        for peer in servers:
            _tcp_locator(listed, peer.address, peer.port)
    if server:
        _tcp_locator(_el(builtin, "metatrafficUnicastLocatorList"), cfg.address, cfg.port)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def participant_profile(cfg: HostConfig, files_dir: Path, port: int | None = None) -> str:
    """The profile of a participant of ``cfg.host`` listening on ``port`` (default: the first of its range)."""
    port = cfg.participant_ports[0] if port is None else port
    if not cfg.participant_ports[0] <= port <= cfg.participant_ports[1]:
        raise SecurityError(f"port {port} is outside host {cfg.host}'s participant ports "
                            f"{cfg.participant_ports[0]}..{cfg.participant_ports[1]}")
    return _document(cfg, Path(files_dir), server=False, listening_port=port)


def server_profile(cfg: HostConfig, files_dir: Path) -> str:
    """The profile of ``cfg.host``'s discovery server."""
    return _document(cfg, Path(files_dir), server=True, listening_port=cfg.port)


def openssl_config(cfg: HostConfig) -> str:
    """``openssl.cnf`` of a host: every TLS context requests and requires the peer's certificate."""
    return (f"# Written by `mtwin security init` for host {cfg.host}. Every DDS process of the host runs with\n"
            "# OPENSSL_CONF pointing here: Fast DDS does not ask the peers that connect to it for a certificate,\n"
            "# this makes each TLS context of the process require one (verified against the CA of the profile).\n"
            "openssl_conf = mobility_twin_openssl\n\n"
            "[mobility_twin_openssl]\nssl_conf = mobility_twin_ssl\n\n"
            "[mobility_twin_ssl]\nsystem_default = mobility_twin_tls\n\n"
            "[mobility_twin_tls]\nMinProtocol = TLSv1.2\nVerifyMode = Peer,Request,Require\n")


# ---------------------------------------------------------------------------------------------- checks
def _mode_problem(path: Path) -> str | None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return f"{path} is readable by others (mode {mode:o}): chmod 600 {path}"
    return None


def check_host(host_dir: Path) -> HostConfig:
    """Everything a process of the host needs, or :class:`SecurityError` listing what is wrong.

    The host's settings; its key (owner-only, matching its certificate); its certificate (issued by the CA in
    the folder to this host, valid now); the CA. Fast DDS would otherwise fall back silently to plain TCP.
    """
    host_dir = Path(host_dir)
    cfg = load_host(host_dir)
    problems: list[str] = []
    for name in (CA_FILE, CERT_FILE, KEY_FILE, OPENSSL_FILE):
        if not (host_dir / name).is_file():
            problems.append(f"{host_dir / name} is missing")
    if problems:
        raise SecurityError(f"host folder {host_dir}: " + "; ".join(problems))
    from cryptography.hazmat.primitives import serialization

    key_path = host_dir / KEY_FILE
    if (problem := _mode_problem(key_path)) is not None:
        problems.append(problem)
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise SecurityError(f"cannot read the host key {key_path}: {err}") from None
    ca = load_cert(host_dir / CA_FILE)
    cert = load_cert(host_dir / CERT_FILE)  # the first certificate of the chain is the host's
    if key.public_key() != cert.public_key():
        problems.append(f"{key_path} is not the key of {host_dir / CERT_FILE}")
    try:
        verify_issued(cert, ca)
    except SecurityError as err:
        problems.append(str(err))
    names = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names != [cfg.host]:
        problems.append(f"{host_dir / CERT_FILE} is issued to {names}, not to host {cfg.host!r}")
    if (host_dir / OPENSSL_FILE).read_text() != openssl_config(cfg):
        problems.append(f"{host_dir / OPENSSL_FILE} differs from what `mtwin security init` writes (without it the host's "
                        "participants accept peers without a certificate): re-run init")
    if problems:
        raise SecurityError(f"host folder {host_dir}: " + "; ".join(problems))
    return cfg


def check_profile_text(text: str, *, where: str) -> None:
    """The profile parses and uses only the TLS transport (what Fast DDS would otherwise ignore or replace)."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise SecurityError(f"{where}: not well-formed XML ({err}); Fast DDS would fall back to UDP") from None
    q = f"{{{NS}}}"
    builtin = root.findall(f".//{q}useBuiltinTransports")
    types = [t.text for t in root.findall(f".//{q}transport_descriptor/{q}type")]
    if [b.text for b in builtin] != ["false"] or types != ["TCPv4"] or root.find(f".//{q}tls") is None:
        raise SecurityError(f"{where}: expected one TCPv4 transport with TLS and the built-in transports off")


# ---------------------------------------------------------------------------------------------- per process
def run_dir() -> Path:
    base = os.environ.get(RUN_DIR_ENV) or Path(tempfile.gettempdir()) / f"mtwin_tls-{os.getuid()}"
    return make_dir(Path(base), private=True)


@dataclass
class Claim:
    """A participant port held by this process (its lock file stays locked while the process lives)."""

    port: int
    profile: Path
    lock_fd: int


_claims: list[Claim] = []


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def claim_participant_profile(host_dir: Path, *, inheritable: bool = False) -> Claim:
    """Check the host folder, claim a free participant port of its range and write this process's profile.

    The port is locked (``flock`` on a file of the run folder) for as long as the returned descriptor is
    open, so concurrent processes of the host never take the same one; ``inheritable`` keeps the lock across
    ``exec``.
    """
    host_dir = Path(host_dir).resolve()
    cfg = check_host(host_dir)
    folder = make_dir(run_dir() / hashlib.sha1(str(host_dir).encode()).hexdigest()[:12], private=True)
    first, last = cfg.participant_ports
    for port in range(first, last + 1):
        fd = os.open(folder / f"{port}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        if not _port_free(port):
            os.close(fd)
            continue
        text = participant_profile(cfg, host_dir, port)
        check_profile_text(text, where=f"profile of {cfg.host}:{port}")
        profile = write_file(folder / f"{cfg.host}-{port}.xml", text)
        os.set_inheritable(fd, inheritable)
        claim = Claim(port, profile, fd)
        _claims.append(claim)
        return claim
    raise SecurityError(f"host {cfg.host}: every participant port {first}..{last} is taken; run fewer processes or "
                        "re-run `mtwin security init` with a larger --participant-ports")


def process_environment(host_dir: Path, profile: Path) -> dict[str, str]:
    """The variables a DDS process of the host runs with: its profile and the OpenSSL configuration."""
    return {PROFILE_ENV: str(profile), OPENSSL_ENV: str(Path(host_dir).resolve() / OPENSSL_FILE)}


def use_host_profile(environ: dict | None = None) -> Path | None:
    """If ``MTWIN_TLS_HOST_DIR`` names a host folder, give this process a TLS profile of that host.

    To be called before ``rclpy.init``: sets ``FASTDDS_DEFAULT_PROFILES_FILE`` to a profile with a port of
    its own and ``OPENSSL_CONF`` to the host's ``openssl.cnf``. Raises :class:`SecurityError` (the process
    must not start unprotected) when the folder is not usable. Returns the profile, or None when the variable
    is not set.
    """
    env = os.environ if environ is None else environ
    host_dir = env.get(HOST_DIR_ENV)
    if not host_dir:
        return None
    claim = claim_participant_profile(Path(host_dir))
    env.update(process_environment(Path(host_dir), claim.profile))
    return claim.profile


def write_server_profile(host_dir: Path) -> Path:
    """Check the host folder and that its server port is free; write the server's profile to the run folder."""
    host_dir = Path(host_dir).resolve()
    cfg = check_host(host_dir)
    if not _port_free(cfg.port):
        raise SecurityError(f"host {cfg.host}: TCP port {cfg.port} is in use (is its discovery server already running?)")
    text = server_profile(cfg, host_dir)
    check_profile_text(text, where=f"discovery server profile of {cfg.host}")
    folder = make_dir(run_dir() / hashlib.sha1(str(host_dir).encode()).hexdigest()[:12], private=True)
    return write_file(folder / f"{cfg.host}-server.xml", text)
