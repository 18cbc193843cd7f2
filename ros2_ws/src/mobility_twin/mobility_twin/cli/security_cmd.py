"""`mtwin security`: the project CA, TLS links between hosts, and an SROS2 keystore for full ROS 2 installs.

    mtwin security init --out DIR --peers cloud=10.0.0.2:7410,edge-site-1=10.0.0.3:7410 [--hosts ...]
    mtwin security check DIR/hosts/HOST
    mtwin security discovery-server --host-dir DIR/hosts/HOST        (one per host, before its nodes)
    mtwin security exec --host-dir DIR/hosts/HOST -- COMMAND ...      (a process with a port of its own)
    mtwin security sros2 --out KEYSTORE [--enclaves rsu,vehicle,edge,cloud,sim] [--ca DIR/ca]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mobility_twin.cli import add_verb, command_error, help_without_verb


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("security", help="project CA, TLS links between hosts, SROS2 keystore",
                       description="Who may publish: certificates from a project CA, Fast DDS TCP links with TLS and "
                       "mutual authentication between hosts, and SROS2 enclaves for full ROS 2 installs.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB")

    i = add_verb(
        verbs, "init", run_init, help="make the CA and each host's key, certificate and TLS profiles",
        description="Create (or extend) the project CA in OUT/ca and, for each host, OUT/hosts/HOST: its key "
        "(0600), its certificate signed by the CA, the CA certificate, and Fast DDS profiles that use only TCPv4 "
        "with TLS and mutual authentication (peers must present a certificate of this CA). Each host runs a "
        "discovery server on its IP:PORT, linked to the other hosts' servers; its other processes listen on the "
        "ports above PORT. Copy OUT/hosts/HOST to HOST; the CA key (OUT/ca/ca.key.pem) stays here.")
    i.add_argument("--out", type=Path, help="folder for the CA and the hosts' folders (required)")
    i.add_argument("--hosts", help="comma-separated host names to issue certificates for (default: every host of "
                   "--peers), e.g. rsu-00,edge-site-1,cloud")
    peers = i.add_mutually_exclusive_group()
    peers.add_argument("--peers", help="every host's address: HOST=IP:PORT,... (the port of its discovery server)")
    peers.add_argument("--peers-file", type=Path, help="YAML file with 'peers: {HOST: IP:PORT, ...}'")
    i.add_argument("--days", type=int, default=825, help="validity of new certificates in days (default 825)")
    i.add_argument("--participant-ports", type=int, default=32, metavar="N",
                   help="processes per host: each listens on one of the N ports above its host's PORT (default 32)")
    i.add_argument("--install-dir", type=Path, metavar="PATH",
                   help="where each host's folder will be on that host, for the paths in its static profiles "
                   "(default: the folder's path here)")
    i.add_argument("--renew", action="store_true", help="issue new keys and certificates for the listed hosts")

    c = add_verb(verbs, "check", run_check, help="check a host folder (key, certificate, CA, settings)",
                 description="Check everything a process of the host needs: the key is owner-only and matches "
                 "the certificate, the certificate was issued by the CA to this host and is valid now, the "
                 "settings and profiles parse. Fast DDS would otherwise fall back to plain TCP or UDP.")
    c.add_argument("host_dir", type=Path, help="OUT/hosts/HOST as written by `mtwin security init`")

    d = add_verb(verbs, "discovery-server", run_discovery_server, help="run the host's discovery server (TLS)",
                 description="Run the discovery server of the host: it listens on the host's IP:PORT, "
                 "accepts only peers with a certificate of the CA and links to the other hosts' servers. "
                 "Start it on every host before the host's nodes.")
    d.add_argument("--host-dir", type=Path, required=True, help="OUT/hosts/HOST")
    d.add_argument("--duration", type=float, default=0.0, help="stop after this many seconds (0: until Ctrl-C)")

    e = add_verb(verbs, "exec", run_exec, help="run COMMAND as a TLS participant of the host",
                 description="Check the host folder, claim a free participant port of the host (held until "
                 "COMMAND ends), point FASTDDS_DEFAULT_PROFILES_FILE at a profile with that port and OPENSSL_CONF "
                 "at the host's openssl.cnf (peers must present a certificate) and run COMMAND in place of this process. One DDS process per `exec`; for a launch file, set "
                 "MTWIN_TLS_HOST_DIR=OUT/hosts/HOST instead (each node claims its own port).")
    e.add_argument("--host-dir", type=Path, required=True, help="OUT/hosts/HOST")
    e.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND [ARGS...]")

    s = add_verb(
        verbs, "sros2", run_sros2, help="write an SROS2 keystore: enclaves and signed permissions per role",
        description="Write an SROS2 keystore (the layout `ros2 security` makes) with one enclave per role, each "
        "with its identity and permissions.xml naming the topics the role may publish and subscribe, signed "
        "(S/MIME) by the CA. For full ROS 2 installs: the Fast DDS of the PyPI wheels has no DDS Security "
        "plugins, so these files cannot be used there.")
    s.add_argument("--out", type=Path, help="the keystore folder (required; ROS_SECURITY_KEYSTORE)")
    s.add_argument("--enclaves", default="rsu,vehicle,edge,cloud,sim",
                   help="ROLE or ROLE:ID items (roles: rsu, vehicle, edge, cloud, sim; an id binds the enclave to one "
                   "RSU, vehicle or site), default: rsu,vehicle,edge,cloud,sim")
    s.add_argument("--ca", type=Path, metavar="DIR", help="sign with this CA (e.g. OUT/ca of `mtwin security init`; "
                   "default: the keystore's own, or a new one)")
    s.add_argument("--days", type=int, default=825, help="validity of new identities in days (default 825)")
    s.add_argument("--domain-id", type=int, default=None,
                   help="the ROS domain the permissions grant (default: ROS_DOMAIN_ID or 0)")

    help_without_verb(p)


def run_init(args: argparse.Namespace) -> int:
    from mobility_twin.security import SecurityError, init_tls, load_peers, parse_host_list, parse_peers

    try:
        if args.out is None:
            raise SecurityError("--out is required: the folder to write the CA and the hosts' files to")
        if args.peers is None and args.peers_file is None:
            raise SecurityError("give every host's address with --peers HOST=IP:PORT,... or --peers-file FILE")
        peers = parse_peers(args.peers) if args.peers is not None else load_peers(args.peers_file)
        hosts = parse_host_list(args.hosts) if args.hosts is not None else list(peers)
        unknown = [h for h in hosts if h not in peers]
        if unknown:
            raise SecurityError(f"--hosts: no address for {', '.join(unknown)}: add HOST=IP:PORT to the peers")
        report = init_tls(args.out, hosts, peers, days=args.days, participant_ports=args.participant_ports,
                          install_dir=args.install_dir, renew=args.renew)
    except (SecurityError, OSError) as err:
        return command_error("security init", err)
    print(f"CA: {report.ca_folder} ({'new' if report.new_ca else 'existing'}; its key ca.key.pem stays here)")
    for h in report.hosts:
        cfg = h.config
        links = ", ".join(p.host for p in cfg.servers) or "none (the others link to it)"
        print(f"host {h.host}: {h.folder}  ({'new' if h.new_certificate else 'kept'} certificate; discovery server "
              f"{cfg.address}:{cfg.port}, links to {links}; participant ports "
              f"{cfg.participant_ports[0]}-{cfg.participant_ports[1]})")
    return 0


def run_check(args: argparse.Namespace) -> int:
    from mobility_twin.security import SecurityError, check_host, participant_profile, server_profile
    from mobility_twin.security.fastdds import check_profile_text

    try:
        cfg = check_host(args.host_dir)
        for name in ("fastdds_tls.xml", "discovery_server.xml"):
            path = args.host_dir / name
            if path.exists():
                check_profile_text(path.read_text(), where=str(path))
        check_profile_text(participant_profile(cfg, args.host_dir.resolve()), where="participant profile")
        check_profile_text(server_profile(cfg, args.host_dir.resolve()), where="server profile")
    except (SecurityError, OSError) as err:
        return command_error("security check", err)
    print(f"{args.host_dir}: host {cfg.host} ok (server {cfg.address}:{cfg.port}, participant ports "
          f"{cfg.participant_ports[0]}-{cfg.participant_ports[1]})")
    return 0


def run_exec(args: argparse.Namespace) -> int:
    from mobility_twin.security import SecurityError, claim_participant_profile, process_environment
    from mobility_twin.security.fastdds import HOST_DIR_ENV

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        return command_error("security exec",
                             ValueError("no COMMAND: mtwin security exec --host-dir DIR -- COMMAND [ARGS...]"))
    try:
        claim = claim_participant_profile(args.host_dir, inheritable=True)
    except (SecurityError, OSError) as err:
        return command_error("security exec", err)
    env = {**os.environ, **process_environment(args.host_dir, claim.profile)}
    env.pop(HOST_DIR_ENV, None)  # the profile is chosen: a node must not claim a second port
    print(f"mtwin security exec: TLS participant on port {claim.port} ({claim.profile})", file=sys.stderr, flush=True)
    try:
        os.execvpe(command[0], command, env)
    except OSError as err:
        return command_error("security exec", OSError(f"cannot run {command[0]!r}: {err.strerror}"))
    return 0  # not reached


def run_discovery_server(args: argparse.Namespace) -> int:
    from mobility_twin.security import SecurityError, load_host, process_environment, write_server_profile
    from mobility_twin.security.fastdds import HOST_DIR_ENV

    try:
        profile = write_server_profile(args.host_dir)
        cfg = load_host(args.host_dir)
    except (SecurityError, OSError) as err:
        return command_error("security discovery-server", err)
    os.environ.update(process_environment(args.host_dir, profile))  # before the first participant of this process
    os.environ.pop(HOST_DIR_ENV, None)
    import time

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init(args=["mtwin_discovery_server"])
    node = rclpy.create_node("tls_discovery_server_" + "".join(c if c.isalnum() else "_" for c in cfg.host))
    node.get_logger().info(f"discovery server of {cfg.host} on {cfg.address}:{cfg.port} (TLS), linked to "
                           f"{', '.join(f'{p.host} {p.address}:{p.port}' for p in cfg.servers) or 'no server'}")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    end = time.monotonic() + args.duration if args.duration > 0 else None
    try:
        while rclpy.ok() and (end is None or time.monotonic() < end):
            executor.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def run_sros2(args: argparse.Namespace) -> int:
    from mobility_twin.security import CertificateAuthority, SecurityError, parse_enclaves, write_keystore

    try:
        if args.out is None:
            raise SecurityError("--out is required: the keystore folder to write")
        domain = args.domain_id
        if domain is None:
            text = os.environ.get("ROS_DOMAIN_ID", "0") or "0"
            try:
                domain = int(text)
            except ValueError:
                raise SecurityError(f"ROS_DOMAIN_ID={text!r} is not a number: give --domain-id") from None
        policies = parse_enclaves(args.enclaves)
        ca = CertificateAuthority.load(args.ca) if args.ca is not None else None
        enclaves = write_keystore(args.out, policies, days=args.days, domain_id=domain, ca=ca)
    except (SecurityError, OSError) as err:
        return command_error("security sros2", err)
    print(f"keystore {args.out} (domain {domain}; ROS_SECURITY_KEYSTORE={Path(args.out).resolve()})")
    for e in enclaves:
        print(f"  enclave {e.path}: may publish {len(e.publish)} and subscribe {len(e.subscribe)} DDS topics")
    print("DDS Security needs a full ROS 2 install: the Fast DDS of the PyPI wheels has no security plugins.")
    return 0
