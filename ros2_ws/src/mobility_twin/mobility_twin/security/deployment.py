"""``mtwin security init``: the project CA and, per host, what the host needs to join the TLS links.

::

    OUT/ca/ca.cert.pem, ca.key.pem (0600, folder 0700)   the CA: keep its key on the machine that signs
    OUT/hosts/<host>/                                      copy this folder to <host>, and only this one
      ca.cert.pem     the CA certificate (peers must chain to it)
      cert.pem        the host's certificate, then the CA's
      key.pem         the host's key (0600)
      host.yaml       address, discovery port, participant ports, the servers it links to
      openssl.cnf     OPENSSL_CONF of the host's DDS processes: peers must present a certificate
      fastdds_tls.xml       profile of one participant (FASTDDS_DEFAULT_PROFILES_FILE of a one-process host)
      discovery_server.xml  profile of the host's discovery server

An existing CA in OUT is reused (to add hosts later), and so are a host's existing key and certificate when
the CA issued them (``renew`` issues new ones); profiles are always rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from mobility_twin.security.errors import SecurityError
from mobility_twin.security.fastdds import (
    CA_FILE,
    CERT_FILE,
    KEY_FILE,
    OPENSSL_FILE,
    PARTICIPANT_PROFILE,
    SERVER_PROFILE,
    HostConfig,
    check_profile_text,
    openssl_config,
    participant_profile,
    save_host,
    server_profile,
)
from mobility_twin.security.files import make_dir, write_file
from mobility_twin.security.hosts import Peer, check_host_name
from mobility_twin.security.pki import (
    CA_CERT,
    CA_KEY,
    CertificateAuthority,
    cert_pem,
    check_days,
    key_pem,
    load_cert,
    verify_issued,
)

DEFAULT_PARTICIPANT_PORTS = 32


@dataclass(frozen=True)
class HostFiles:
    host: str
    folder: Path
    config: HostConfig
    new_certificate: bool


@dataclass(frozen=True)
class InitReport:
    ca_folder: Path
    new_ca: bool
    hosts: tuple[HostFiles, ...]


def load_or_create_ca(folder: Path, *, days: int) -> tuple[CertificateAuthority, bool]:
    if (folder / CA_CERT).exists() or (folder / CA_KEY).exists():
        return CertificateAuthority.load(folder), False
    ca = CertificateAuthority.create(days=days)
    ca.save(folder)
    return ca, True


def host_configs(hosts: list[str], peers: dict[str, Peer], participant_ports: int) -> dict[str, HostConfig]:
    """Each host's settings: its server links to the servers of the hosts listed before it in ``peers``."""
    if not 1 <= participant_ports <= 1000:
        raise SecurityError(f"--participant-ports {participant_ports}: expected 1..1000 (processes per host)")
    missing = [h for h in hosts if h not in peers]
    if missing:
        raise SecurityError(f"no address for host(s) {', '.join(missing)}: add HOST=IP:PORT to --peers (or the peers file)")
    order = list(peers)
    ranges: dict[str, range] = {}
    for name, peer in peers.items():
        ports = range(peer.port, peer.port + participant_ports + 1)  # the server's port, then the participants'
        if ports[-1] > 65535:
            raise SecurityError(f"--peers {name}: port {peer.port} leaves no room for {participant_ports} participant "
                                f"ports below 65536")
        for other, taken in ranges.items():
            if peers[other].address == peer.address and set(ports) & set(taken):
                raise SecurityError(f"--peers: {name} and {other} share {peer.address} and their port ranges "
                                    f"{ports[0]}..{ports[-1]} and {taken[0]}..{taken[-1]} overlap "
                                    f"(each host uses its port and the {participant_ports} above it)")
        ranges[name] = ports
    configs = {}
    for name in hosts:
        peer = peers[name]
        before = tuple(peers[h] for h in order[:order.index(name)])
        configs[name] = HostConfig(name, peer.address, peer.port,
                                   (peer.port + 1, peer.port + participant_ports), before)
    return configs


def _host_certificate(folder: Path, host: str, address: str, ca: CertificateAuthority, days: int,
                      renew: bool) -> bool:
    """Write the host's key and certificate unless valid ones of this CA exist; True when new ones were issued."""
    cert_path, key_path = folder / CERT_FILE, folder / KEY_FILE
    if not renew and cert_path.exists() and key_path.exists():
        cert = load_cert(cert_path)
        try:
            verify_issued(cert, ca.cert)
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (SecurityError, ValueError, TypeError) as err:
            raise SecurityError(f"{folder}: the existing key or certificate is not usable with this CA ({err}); "
                                "use --renew to issue new ones") from None
        if key.public_key() != cert.public_key():
            raise SecurityError(f"{key_path} is not the key of {cert_path}; use --renew to issue new ones")
        key_path.chmod(0o600)
        return False
    issued = ca.issue(host, days=days, dns_names=(host,), ip_addresses=(address,))
    write_file(key_path, key_pem(issued.key), secret=True)
    write_file(cert_path, cert_pem(issued.cert, ca.cert))
    return True


def init_tls(out: Path, hosts: list[str], peers: dict[str, Peer], *, days: int = 825,
             participant_ports: int = DEFAULT_PARTICIPANT_PORTS, install_dir: Path | None = None,
             renew: bool = False) -> InitReport:
    """Create (or extend) the CA in ``out/ca`` and the folders of ``hosts`` in ``out/hosts``.

    ``install_dir``: where each host's folder will be on that host, e.g. ``/etc/mobility_twin/tls`` (the
    paths written into the static XML profiles); by default the folder's own absolute path here.
    """
    if out is None or not str(out).strip():
        raise SecurityError("--out is required: the folder to write the CA and the hosts' files to")
    check_days(days)
    for host in hosts:
        check_host_name(host)
    if not hosts:
        raise SecurityError("no host: give --hosts or --peers")
    if install_dir is not None and not Path(install_dir).is_absolute():
        raise SecurityError(f"--install-dir {install_dir}: must be an absolute path (Fast DDS reads the files from it)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SecurityError(f"--out {out}: exists and is not a folder")
    configs = host_configs(hosts, peers, participant_ports)
    make_dir(out)
    ca, new_ca = load_or_create_ca(out / "ca", days=days)
    written = []
    for host in hosts:
        cfg = configs[host]
        folder = make_dir(out / "hosts" / host)
        new = _host_certificate(folder, host, cfg.address, ca, days, renew)
        write_file(folder / CA_FILE, cert_pem(ca.cert))
        save_host(folder, cfg)
        write_file(folder / OPENSSL_FILE, openssl_config(cfg))
        files_dir = Path(install_dir) if install_dir else folder.resolve()
        for name, text in ((PARTICIPANT_PROFILE, participant_profile(cfg, files_dir)),
                           (SERVER_PROFILE, server_profile(cfg, files_dir))):
            check_profile_text(text, where=str(folder / name))
            write_file(folder / name, text)
        written.append(HostFiles(host, folder, cfg, new))
    return InitReport(out / "ca", new_ca, tuple(written))
