"""An SROS2 keystore for full ROS 2 installs (DDS Security): the layout ``ros2 security`` makes, with one
enclave per role and permissions that name each role's topics.

::

    KEYSTORE/
      public/ca.cert.pem, identity_ca.cert.pem -> ca.cert.pem, permissions_ca.cert.pem -> ca.cert.pem
      private/ca.key.pem (0600), identity_ca.key.pem -> ca.key.pem, permissions_ca.key.pem -> ca.key.pem
      enclaves/governance.xml, governance.p7s
      enclaves/mobility_twin/<role>[/<id>]/
        cert.pem, key.pem (0600)            the enclave's identity (CN=/mobility_twin/<role>[/<id>])
        identity_ca.cert.pem, permissions_ca.cert.pem -> ../../public/...
        governance.p7s -> ../../governance.p7s
        permissions.xml, permissions.p7s    what the enclave may publish and subscribe, signed by the CA

Documents are signed as SROS2 signs them (clear-signed S/MIME, SHA-256) with the project CA. A node runs in
an enclave with ``ROS_SECURITY_KEYSTORE=KEYSTORE ROS_SECURITY_ENABLE=true ROS_SECURITY_STRATEGY=Enforce``
and ``--ros-args --enclave /mobility_twin/<role>``. The Fast DDS of the PyPI wheels has no DDS Security
plugins, so these files cannot be exercised there; their structure and signatures are checked by tests.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from mobility_twin.security.errors import SecurityError
from mobility_twin.security.files import make_dir, symlink, write_file
from mobility_twin.security.pki import CertificateAuthority, cert_pem, key_pem, load_cert, verify_issued
from mobility_twin.security.roles import RolePolicy

XSI = "http://www.w3.org/2001/XMLSchema-instance"
GOVERNANCE_XSD = "http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_governance.xsd"
PERMISSIONS_XSD = "http://www.omg.org/spec/DDS-SECURITY/20170901/omg_shared_ca_permissions.xsd"
#: rmw_fastrtps publishes and reads the ROS graph on this DDS topic
ROS_DISCOVERY_TOPIC = "ros_discovery_info"


def dds_topic(ros_topic: str) -> str:
    """``/twin/global/objects`` -> ``rt/twin/global/objects`` (ROS topics travel as ``rt/...`` on DDS)."""
    return "rt" + ros_topic


def _xml(root: ET.Element) -> bytes:
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def _dds_root(schema: str) -> ET.Element:
    ET.register_namespace("xsi", XSI)
    root = ET.Element("dds")
    root.set(f"{{{XSI}}}noNamespaceSchemaLocation", schema)
    return root


def governance_xml(domain_id: int) -> bytes:
    """Authenticated, encrypted, access-controlled domain: strangers may not join, every topic is checked."""
    root = _dds_root(GOVERNANCE_XSD)
    rule = ET.SubElement(ET.SubElement(root, "domain_access_rules"), "domain_rule")
    ET.SubElement(ET.SubElement(rule, "domains"), "id").text = str(domain_id)
    for tag, text in (("allow_unauthenticated_participants", "false"), ("enable_join_access_control", "true"),
                      ("discovery_protection_kind", "ENCRYPT"), ("liveliness_protection_kind", "ENCRYPT"),
                      ("rtps_protection_kind", "ENCRYPT")):
        ET.SubElement(rule, tag).text = text
    topic_rule = ET.SubElement(ET.SubElement(rule, "topic_access_rules"), "topic_rule")
    for tag, text in (("topic_expression", "*"), ("enable_discovery_protection", "true"),
                      ("enable_liveliness_protection", "true"), ("enable_read_access_control", "true"),
                      ("enable_write_access_control", "true"), ("metadata_protection_kind", "ENCRYPT"),
                      ("data_protection_kind", "ENCRYPT")):
        ET.SubElement(topic_rule, tag).text = text
    return _xml(root)


def policy_topics(policy: RolePolicy) -> tuple[list[str], list[str]]:
    """(DDS topics the enclave may publish, DDS topics it may subscribe), parameter services included."""
    publish = [dds_topic(t) for t in policy.publish] + [ROS_DISCOVERY_TOPIC]
    subscribe = [dds_topic(t) for t in policy.subscribe] + [ROS_DISCOVERY_TOPIC]
    for ns in policy.node_namespaces:  # the nodes answer their parameter services (reply side)
        subscribe.append(f"rq{ns}/*Request")
        publish.append(f"rr{ns}/*Reply")
    return list(dict.fromkeys(publish)), list(dict.fromkeys(subscribe))


def permissions_xml(policy: RolePolicy, *, subject: str, not_before: str, not_after: str, domain_id: int) -> bytes:
    root = _dds_root(PERMISSIONS_XSD)
    grant = ET.SubElement(ET.SubElement(root, "permissions"), "grant", name=policy.enclave)
    ET.SubElement(grant, "subject_name").text = subject
    validity = ET.SubElement(grant, "validity")
    ET.SubElement(validity, "not_before").text = not_before
    ET.SubElement(validity, "not_after").text = not_after
    allow = ET.SubElement(grant, "allow_rule")
    ET.SubElement(ET.SubElement(allow, "domains"), "id").text = str(domain_id)
    publish, subscribe = policy_topics(policy)
    for tag, names in (("publish", publish), ("subscribe", subscribe)):
        listed = ET.SubElement(ET.SubElement(allow, tag), "topics")
        for name in sorted(names):
            ET.SubElement(listed, "topic").text = name
    ET.SubElement(grant, "default").text = "DENY"
    return _xml(root)


@dataclass(frozen=True)
class Enclave:
    path: str  # /mobility_twin/<role>[/<id>]
    folder: Path
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def _ca_for(keystore: Path, ca: CertificateAuthority | None, days: int) -> CertificateAuthority:
    """The CA given, else the keystore's own (a keystore made earlier), else a new one."""
    if ca is not None:
        return ca
    if (keystore / "private" / "ca.key.pem").is_file():
        key_path, cert_path = keystore / "private" / "ca.key.pem", keystore / "public" / "ca.cert.pem"
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as err:
            raise SecurityError(f"cannot read the keystore's CA key {key_path}: {err}") from None
        cert = load_cert(cert_path)
        if key.public_key() != cert.public_key():
            raise SecurityError(f"{key_path} is not the key of {cert_path}")
        return CertificateAuthority(key, cert)  # type: ignore[arg-type]
    return CertificateAuthority.create("mobility_twin SROS2 CA", days=days)


def write_keystore(keystore: Path, policies: list[RolePolicy], *, days: int, domain_id: int,
                   ca: CertificateAuthority | None = None) -> list[Enclave]:
    """Create or update the keystore with one enclave per policy; the enclaves written."""
    if not policies:
        raise SecurityError("--enclaves: no enclave to write")
    if not 0 <= domain_id <= 232:
        raise SecurityError(f"--domain-id {domain_id}: a ROS domain id is 0..232")
    keystore = Path(keystore)
    ca = _ca_for(keystore, ca, days)
    public, private = make_dir(keystore / "public"), make_dir(keystore / "private", private=True)
    enclaves_dir = make_dir(keystore / "enclaves")
    write_file(public / "ca.cert.pem", cert_pem(ca.cert))
    write_file(private / "ca.key.pem", key_pem(ca.key), secret=True)
    for kind in ("identity_ca", "permissions_ca"):
        symlink("ca.cert.pem", public / f"{kind}.cert.pem")
        symlink("ca.key.pem", private / f"{kind}.key.pem")
    governance = governance_xml(domain_id)
    write_file(enclaves_dir / "governance.xml", governance)
    write_file(enclaves_dir / "governance.p7s", ca.sign_smime(governance))
    written = []
    for policy in policies:
        folder = make_dir(enclaves_dir.joinpath(*policy.enclave.strip("/").split("/")))
        up = os.path.relpath(keystore, folder)
        for kind in ("identity_ca", "permissions_ca"):
            symlink(f"{up}/public/{kind}.cert.pem", folder / f"{kind}.cert.pem")
        symlink(os.path.relpath(enclaves_dir / "governance.p7s", folder), folder / "governance.p7s")
        cert = _identity(folder, policy.enclave, ca, days)
        subject = cert.subject.rfc4514_string()
        permissions = permissions_xml(policy, subject=subject, domain_id=domain_id,
                                      not_before=cert.not_valid_before_utc.isoformat(),
                                      not_after=cert.not_valid_after_utc.isoformat())
        write_file(folder / "permissions.xml", permissions)
        write_file(folder / "permissions.p7s", ca.sign_smime(permissions))
        publish, subscribe = policy_topics(policy)
        written.append(Enclave(policy.enclave, folder, tuple(publish), tuple(subscribe)))
    return written


def _identity(folder: Path, enclave: str, ca: CertificateAuthority, days: int):
    """The enclave's certificate: kept when it is the CA's and matches its key, else a new key and certificate."""
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    if cert_path.is_file() and key_path.is_file():
        try:
            cert = load_cert(cert_path)
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            verify_issued(cert, ca.cert)
            if key.public_key() == cert.public_key() and cert.subject.rfc4514_string() == f"CN={enclave}":
                os.chmod(key_path, 0o600)
                return cert
        except (SecurityError, ValueError, TypeError):
            pass
    issued = ca.issue(enclave, days=days, tls=False)
    write_file(key_path, key_pem(issued.key), secret=True)
    write_file(cert_path, cert_pem(issued.cert))
    return issued.cert
