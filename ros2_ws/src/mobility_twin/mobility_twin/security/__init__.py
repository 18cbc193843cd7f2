"""Who may publish: the project CA, TLS links between hosts (Fast DDS TCPv4 + TLS, mutual authentication) and
an SROS2 keystore with per-role permissions for full ROS 2 installs.

ROS-free: certificates and signatures come from ``cryptography``; profiles are Fast DDS XML. The command
line is ``mtwin security`` (``mobility_twin/cli/security_cmd.py``).
"""

from mobility_twin.security.deployment import InitReport, init_tls
from mobility_twin.security.errors import SecurityError
from mobility_twin.security.fastdds import (
    HOST_DIR_ENV,
    HostConfig,
    check_host,
    claim_participant_profile,
    load_host,
    participant_profile,
    process_environment,
    server_profile,
    use_host_profile,
    write_server_profile,
)
from mobility_twin.security.hosts import Peer, load_peers, parse_host_list, parse_peers
from mobility_twin.security.pki import CertificateAuthority
from mobility_twin.security.roles import ROLES, RolePolicy, parse_enclaves, role_policy
from mobility_twin.security.smime import verify_smime
from mobility_twin.security.sros2 import write_keystore

__all__ = [
    "HOST_DIR_ENV",
    "ROLES",
    "CertificateAuthority",
    "HostConfig",
    "InitReport",
    "Peer",
    "RolePolicy",
    "SecurityError",
    "check_host",
    "claim_participant_profile",
    "init_tls",
    "load_host",
    "load_peers",
    "parse_enclaves",
    "parse_host_list",
    "parse_peers",
    "participant_profile",
    "process_environment",
    "role_policy",
    "server_profile",
    "use_host_profile",
    "verify_smime",
    "write_keystore",
    "write_server_profile",
]
