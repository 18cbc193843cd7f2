"""Who may publish and subscribe what: the topics of each deployment role, for SROS2 permissions.

One role per launch file of a host (``rsu``, ``vehicle``, ``edge``, ``cloud``) plus the simulator (``sim``).
Topic names come from :mod:`mobility_twin.ros.topics`; ``*`` stands for any id (DDS Security matches
topic expressions with fnmatch, where ``*`` also crosses ``/``). A role bound to one entity (``rsu:rsu_03``,
``vehicle:cav_3171``, ``edge:site_1``) gets that entity's topics only, so an RSU's key cannot speak for
another RSU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mobility_twin.ros import topics
from mobility_twin.security.errors import SecurityError

ANY = "*"
ROLES = ("rsu", "vehicle", "edge", "cloud", "sim")

#: node executables each role's launch file starts (launch/<file>.launch.xml)
ROLE_LAUNCH = {"rsu": "rsu", "vehicle": "vehicle", "edge": "edge", "cloud": "cloud", "sim": "replay"}
ROLE_EXECUTABLES = {
    "rsu": ("rsu_perception",),
    "vehicle": ("cav_perception", "route_follower"),
    "edge": ("local_twin", "offloading", "resource_allocator", "collision_warning"),
    "cloud": ("global_twin", "relation_learner", "placement", "route_guidance"),
    "sim": ("replay",),
}
#: roles whose launch file serves one entity, and the launch argument naming it
ENTITY_ARGUMENT = {"rsu": "rsu_id", "vehicle": "cav_id", "edge": "site_id"}

ID_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class RolePolicy:
    """ROS names (topics, and node namespaces whose parameter services the role answers)."""

    role: str
    entity: str | None
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    node_namespaces: tuple[str, ...] = field(default=())

    @property
    def enclave(self) -> str:
        return f"/mobility_twin/{self.role}" + (f"/{self.entity}" if self.entity else "")


def _rsu(i: str) -> tuple[list[str], list[str], list[str]]:
    # the RSU's own LiDAR driver publishes its points; its perception turns them into detections
    return ([topics.rsu_detections(i), topics.rsu_points(i)], [topics.rsu_points(i), topics.LAYOUT], [f"/rsu/{i}"])


def _vehicle(i: str) -> tuple[list[str], list[str], list[str]]:
    # the vehicle's route follower takes its route commands, passes them to its drive interface and answers
    # them, and asks the route guidance for routes to its destination
    return ([topics.cav_detections(i), topics.cav_points(i), topics.cav_odometry(i), topics.cav_route_status(i),
             topics.ROUTE_REQUESTS, topics.cav_control_command(i)],
            [topics.cav_points(i), topics.cav_odometry(i), topics.LAYOUT, topics.cav_route_command(i),
             topics.cav_control_status(i), topics.cav_destination(i),
             topics.SIGNALS, f"/cav/{i}/collision_warning", topics.GUIDANCE_STATUS], [f"/cav/{i}"])


def _edge(site: str) -> tuple[list[str], list[str], list[str]]:
    publish = [topics.local_objects(site), topics.local_state(site), topics.local_edge_servers(site),
               topics.offload_decisions(site), topics.resource_allocations(site),
               topics.edge_v2x(ANY),  # the site's base stations relay the vehicles' own reports
               topics.EDGE_SERVER_REPORTS,  # the site's servers report their own state
               topics.COLLISION_WARNINGS, f"/cav/{ANY}/collision_warning",  # collision warning ...
               topics.cav_route_command(ANY)]  # ... and a warned CAV's brake command
    subscribe = [topics.rsu_detections(ANY), topics.cav_detections(ANY), topics.edge_v2x(ANY),
                 topics.EDGE_SERVER_REPORTS, topics.LAYOUT,
                 topics.local_objects(site), topics.local_edge_servers(site),  # the site's offloading node
                 topics.offload_decisions(site), topics.task_requests(site),  # the site's resource allocator
                 topics.SIGNALS,  # the traffic signals' twin (collision warning)
                 topics.GLOBAL_OBJECTS]  # collision warning on the global twin
    return publish, subscribe, [f"/edge/{site}"]


def _cloud(_: str) -> tuple[list[str], list[str], list[str]]:
    publish = [topics.GLOBAL_OBJECTS, topics.GLOBAL_STATE, topics.GLOBAL_EDGE_SERVERS, topics.RELATIONS,
               topics.MIGRATIONS, topics.OFFLOAD_DECISIONS, topics.VIZ_MARKERS,
               topics.LAYOUT,  # the layout node runs with the cloud
               topics.cav_route_command(ANY), topics.GUIDANCE_STATUS]  # route guidance sends the CAVs their routes
    subscribe = [topics.local_objects(ANY), topics.local_state(ANY), topics.local_edge_servers(ANY),
                 topics.GLOBAL_OBJECTS, topics.GLOBAL_STATE, topics.GLOBAL_EDGE_SERVERS, topics.RELATIONS,
                 topics.MIGRATIONS, topics.OFFLOAD_DECISIONS, topics.offload_decisions(ANY),
                 topics.LAYOUT, topics.EDGE_SERVER_REPORTS, topics.SIGNALS, topics.cav_route_status(ANY),
                 topics.ROUTE_REQUESTS, topics.GUIDANCE_STATUS, topics.COLLISION_WARNINGS]  # (+ twin_viz)
    return publish, subscribe, ["/cloud", "/infrastructure"]


def _sim(_: str) -> tuple[list[str], list[str], list[str]]:
    publish = [topics.CLOCK, topics.GROUND_TRUTH, topics.LAYOUT, topics.EDGE_SERVER_REPORTS,
               "/diagnostics", topics.rsu_points(ANY), topics.cav_points(ANY), topics.cav_odometry(ANY),
               topics.edge_v2x(ANY), topics.SIGNALS, topics.cav_control_status(ANY), topics.cav_destination(ANY)]
    # the simulated CAVs' drive interfaces take their route followers' commands
    return publish, [topics.cav_control_command(ANY)], ["/sim"]


_BUILDERS = {"rsu": _rsu, "vehicle": _vehicle, "edge": _edge, "cloud": _cloud, "sim": _sim}
#: every ROS 2 node publishes its log and parameter events; /clock is read under the simulator's time
COMMON_PUBLISH = ("/rosout", "/parameter_events")
COMMON_SUBSCRIBE = (topics.CLOCK,)


def role_policy(role: str, entity: str | None = None) -> RolePolicy:
    if role not in _BUILDERS:
        raise SecurityError(f"--enclaves: unknown role {role!r}; roles: {', '.join(ROLES)}")
    if entity is not None:
        if role not in ENTITY_ARGUMENT:
            raise SecurityError(f"--enclaves {role}:{entity}: the {role} role serves no single entity; use {role}")
        if not ID_PATTERN.fullmatch(entity):
            raise SecurityError(f"--enclaves {role}:{entity}: an id is a letter then letters, digits or '_'")
    publish, subscribe, namespaces = _BUILDERS[role](entity or ANY)
    return RolePolicy(role, entity, tuple(dict.fromkeys([*publish, *COMMON_PUBLISH])),
                      tuple(dict.fromkeys([*subscribe, *COMMON_SUBSCRIBE])), tuple(namespaces))


def parse_enclaves(text: str) -> list[RolePolicy]:
    """``rsu,edge:site_1,cloud`` -> the policies, in order, without duplicates."""
    items = [i.strip() for i in text.split(",")]
    if not text.strip() or any(not i for i in items):
        raise SecurityError(f"--enclaves {text!r}: expected ROLE or ROLE:ID items, e.g. rsu,edge:site_1,cloud")
    policies, seen = [], set()
    for item in items:
        role, _, entity = item.partition(":")
        policy = role_policy(role.strip(), entity.strip() or None)
        if policy.enclave in seen:
            raise SecurityError(f"--enclaves: {item!r} is given twice")
        seen.add(policy.enclave)
        policies.append(policy)
    return policies
