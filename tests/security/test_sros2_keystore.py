"""`mtwin security sros2`: the SROS2 keystore layout, signed governance and permissions, topics per role.

The Fast DDS of the PyPI wheels has no DDS Security plugins, so the keystore cannot be used here; these
tests check what can be checked without them: the files SROS2 expects, XML that parses, permissions that
name every topic a role's nodes use and none that another role owns, and S/MIME signatures that verify
against the CA (with ``cryptography`` and, where installed, the ``openssl`` command).
"""

from __future__ import annotations

import fnmatch
import shutil
import stat
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mobility_twin.cli.main import main
from mobility_twin.ros import topics
from mobility_twin.security import SecurityError, parse_enclaves, verify_smime
from mobility_twin.security.pki import CertificateAuthority, load_cert
from mobility_twin.security.roles import ROLE_EXECUTABLES, ROLE_LAUNCH

REPO = Path(__file__).resolve().parents[2]

# What each role's nodes publish and subscribe (read from the nodes: perception, local_twin, offloading,
# global_twin, relation_learner, placement, replay), with example ids
NEEDS = {
    "rsu": {"publish": [topics.rsu_detections("rsu_00")],
            "subscribe": [topics.rsu_points("rsu_00"), topics.LAYOUT]},
    "vehicle": {"publish": [topics.cav_detections("cav_3171"), topics.cav_route_status("cav_3171"),
                            topics.cav_control_command("cav_3171"), topics.ROUTE_REQUESTS],
                "subscribe": [topics.cav_points("cav_3171"), topics.cav_odometry("cav_3171"), topics.LAYOUT,
                              topics.cav_route_command("cav_3171"), topics.cav_control_status("cav_3171"),
                              topics.cav_destination("cav_3171")]},
    "edge": {"publish": [topics.local_objects("site_1"), topics.local_state("site_1"),
                         topics.local_edge_servers("site_1"), topics.offload_decisions("site_1")],
             "subscribe": [topics.rsu_detections("rsu_00"), topics.cav_detections("cav_3171"),
                           topics.edge_v2x("edge_2"), topics.EDGE_SERVER_REPORTS, topics.LAYOUT,
                           topics.local_objects("site_1"), topics.local_edge_servers("site_1")]},
    "cloud": {"publish": [topics.GLOBAL_OBJECTS, topics.GLOBAL_STATE, topics.GLOBAL_EDGE_SERVERS, topics.RELATIONS,
                          topics.MIGRATIONS, topics.OFFLOAD_DECISIONS],
              "subscribe": [topics.local_objects("site_1"), topics.local_state("site_1"),
                            topics.local_edge_servers("site_1"), topics.GLOBAL_OBJECTS, topics.GLOBAL_EDGE_SERVERS,
                            topics.GLOBAL_STATE, topics.LAYOUT]},
    "sim": {"publish": [topics.CLOCK, topics.GROUND_TRUTH, topics.LAYOUT, topics.EDGE_SERVER_REPORTS,
                        topics.rsu_points("rsu_00"), topics.cav_points("cav_3171"), topics.cav_odometry("cav_3171"),
                        topics.edge_v2x("edge_2"), topics.SIGNALS, topics.cav_control_status("cav_0"),
                        topics.cav_destination("cav_0")],
            "subscribe": [topics.cav_control_command("cav_0")]},
}
# What a role must not publish: another role's output (a compromised RSU must not speak for the twins)
FORBIDDEN = {
    "rsu": [topics.local_objects("site_1"), topics.GLOBAL_OBJECTS, topics.cav_detections("cav_3171")],
    "vehicle": [topics.rsu_detections("rsu_00"), topics.local_objects("site_1"), topics.GLOBAL_OBJECTS],
    "edge": [topics.GLOBAL_OBJECTS, topics.GROUND_TRUTH, topics.rsu_detections("rsu_00")],
    "cloud": [topics.local_objects("site_1"), topics.rsu_detections("rsu_00"), topics.GROUND_TRUTH],
    "sim": [topics.local_objects("site_1"), topics.GLOBAL_OBJECTS, topics.rsu_detections("rsu_00")],
}
COMMON = {"publish": ["rt/rosout", "rt/parameter_events", "ros_discovery_info"],
          "subscribe": ["ros_discovery_info", "rt/clock"]}


@pytest.fixture(scope="module")
def keystore(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("sros2")
    assert main(["security", "init", "--out", str(tmp / "pki"), "--peers", "cloud=10.0.0.2:7410"]) == 0
    assert main(["security", "sros2", "--out", str(tmp / "keystore"), "--ca", str(tmp / "pki" / "ca"),
                 "--enclaves", "rsu,vehicle,edge,cloud,sim,rsu:rsu_00,edge:site_1", "--domain-id", "7"]) == 0
    return tmp / "keystore"


def _grant(folder: Path) -> tuple[ET.Element, dict[str, list[str]]]:
    root = ET.parse(folder / "permissions.xml").getroot()
    grant = root.find("permissions/grant")
    allow = grant.find("allow_rule")
    rules = {kind: [t.text for t in allow.findall(f"{kind}/topics/topic")] for kind in ("publish", "subscribe")}
    return grant, rules


def _allowed(rules: list[str], dds_topic: str) -> bool:
    return any(fnmatch.fnmatchcase(dds_topic, rule) for rule in rules)


def test_the_keystore_has_the_layout_sros2_expects(keystore, tmp_path):
    ca = keystore / "public" / "ca.cert.pem"
    assert (keystore / "public" / "identity_ca.cert.pem").resolve() == ca.resolve()
    assert (keystore / "public" / "permissions_ca.cert.pem").resolve() == ca.resolve()
    assert (keystore / "private" / "identity_ca.key.pem").resolve() == (keystore / "private" / "ca.key.pem").resolve()
    assert stat.S_IMODE((keystore / "private" / "ca.key.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE((keystore / "private").stat().st_mode) == 0o700
    # signed with the same CA as the TLS certificates
    assert ca.read_bytes() == (keystore.parent / "pki" / "ca" / "ca.cert.pem").read_bytes()
    for enclave in ("rsu", "vehicle", "edge", "cloud", "sim", "rsu/rsu_00", "edge/site_1"):
        folder = keystore / "enclaves" / "mobility_twin" / enclave
        for name in ("cert.pem", "key.pem", "identity_ca.cert.pem", "permissions_ca.cert.pem", "governance.p7s",
                     "permissions.xml", "permissions.p7s"):
            assert (folder / name).is_file(), f"{folder / name} missing"  # symlinks resolve
        assert stat.S_IMODE((folder / "key.pem").stat().st_mode) == 0o600
        assert (folder / "governance.p7s").resolve() == (keystore / "enclaves" / "governance.p7s").resolve()
        cert = load_cert(folder / "cert.pem")
        assert cert.subject.rfc4514_string() == f"CN=/mobility_twin/{enclave}"
        grant, _ = _grant(folder)
        assert grant.get("name") == f"/mobility_twin/{enclave}"
        assert grant.findtext("subject_name") == cert.subject.rfc4514_string()
        assert grant.findtext("validity/not_after") == cert.not_valid_after_utc.isoformat()
        assert grant.findtext("allow_rule/domains/id") == "7"
        assert grant.findtext("default") == "DENY"
    governance = ET.parse(keystore / "enclaves" / "governance.xml").getroot()
    rule = governance.find("domain_access_rules/domain_rule")
    assert rule.findtext("domains/id") == "7"
    assert rule.findtext("allow_unauthenticated_participants") == "false"
    assert rule.findtext("topic_access_rules/topic_rule/enable_write_access_control") == "true"


@pytest.mark.parametrize("role", sorted(NEEDS))
def test_every_role_may_publish_and_subscribe_what_its_nodes_use_and_nothing_another_role_owns(keystore, role):
    _, rules = _grant(keystore / "enclaves" / "mobility_twin" / role)
    for kind in ("publish", "subscribe"):
        for topic in NEEDS[role][kind]:
            assert _allowed(rules[kind], "rt" + topic), f"{role} may not {kind} {topic}: {rules[kind]}"
        for name in COMMON[kind]:
            assert _allowed(rules[kind], name), f"{role} may not {kind} {name}"
    for topic in FORBIDDEN[role]:
        assert not _allowed(rules["publish"], "rt" + topic), f"{role} may publish {topic}"


def test_an_enclave_bound_to_one_entity_speaks_only_for_it(keystore):
    _, rsu = _grant(keystore / "enclaves" / "mobility_twin" / "rsu" / "rsu_00")
    assert _allowed(rsu["publish"], "rt/rsu/rsu_00/detections")
    assert not _allowed(rsu["publish"], "rt/rsu/rsu_01/detections")
    _, site = _grant(keystore / "enclaves" / "mobility_twin" / "edge" / "site_1")
    assert _allowed(site["publish"], "rt/twin/local/site_1/objects")
    assert not _allowed(site["publish"], "rt/twin/local/site_0/objects")
    assert _allowed(site["subscribe"], "rt/rsu/rsu_07/detections")  # any RSU of the layout may report to it


def test_the_roles_are_the_launch_files_of_the_hosts():
    for role, launch in ROLE_LAUNCH.items():
        root = ET.parse(REPO / "launch" / f"{launch}.launch.xml").getroot()
        assert tuple(sorted(n.get("exec") for n in root.iter("node"))) == tuple(sorted(ROLE_EXECUTABLES[role])), role


def test_signatures_verify_against_the_ca_and_not_once_altered(keystore, tmp_path):
    ca = load_cert(keystore / "public" / "ca.cert.pem")
    signed = [keystore / "enclaves" / "governance.p7s",
              *sorted((keystore / "enclaves").rglob("permissions.p7s"))]
    assert len(signed) == 8
    for path in signed:
        plain = path.with_suffix(".xml")
        assert verify_smime(path.read_bytes(), ca) == plain.read_bytes()
        if shutil.which("openssl"):  # as DDS Security's OpenSSL reads them
            result = subprocess.run(["openssl", "smime", "-verify", "-in", str(path), "-CAfile",
                                     str(keystore / "public" / "ca.cert.pem"), "-text"], capture_output=True)
            assert result.returncode == 0, result.stderr.decode()
            assert result.stdout == plain.read_bytes().replace(b"\n", b"\r\n") or result.stdout == plain.read_bytes()
    document = signed[1].read_bytes()
    with pytest.raises(SecurityError, match="altered"):
        verify_smime(document.replace(b"<default>DENY</default>", b"<default>ALLOW</default>"), ca)
    with pytest.raises(SecurityError, match="did not issue"):
        verify_smime(document, CertificateAuthority.create("another CA", days=2).cert)


@pytest.mark.parametrize(("argv", "message"), [
    (["--enclaves", "rsu"], "--out is required"),
    (["--out", "{tmp}/k", "--enclaves", "router"], "unknown role 'router'"),
    (["--out", "{tmp}/k", "--enclaves", "cloud:eu"], "serves no single entity"),
    (["--out", "{tmp}/k", "--enclaves", "rsu:../x"], "an id is a letter"),
    (["--out", "{tmp}/k", "--enclaves", "rsu,rsu"], "given twice"),
    (["--out", "{tmp}/k", "--domain-id", "300"], "--domain-id 300"),
    (["--out", "{tmp}/k", "--ca", "{tmp}/nowhere"], "cannot read the certificate"),
])
def test_bad_sros2_input_is_refused(tmp_path, capsys, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["security", "sros2", *argv]) == 2
    assert message in capsys.readouterr().err


def test_enclave_list_parsing():
    assert [p.enclave for p in parse_enclaves("rsu, vehicle:cav_1,cloud")] == [
        "/mobility_twin/rsu", "/mobility_twin/vehicle/cav_1", "/mobility_twin/cloud"]
