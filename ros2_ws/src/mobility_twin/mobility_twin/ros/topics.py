"""Topic names of the stack, in one place. Per-entity topics are functions of the entity id.

Sensor and per-entity topics are absolute so that launch namespaces (used to separate node *names*) do
not move them; remap them in a launch file to run several stacks on one DDS domain.
"""

CLOCK = "/clock"

# Infrastructure (deployment): the layout (latched) and the edge servers' own state reports
LAYOUT = "/infrastructure/layout"  # mobility_twin_msgs/Layout, transient local: RSUs, CAVs, servers, sites, cloud
EDGE_SERVER_REPORTS = "/infrastructure/edge_servers/reports"  # EdgeServerStateArray: what each server reports of itself
SIGNALS = "/infrastructure/signals"  # SignalStateArray: the traffic signals' states (SPaT), on change and every second

# Simulator (evaluation-only topics are under /sim and must never be fused)
GROUND_TRUTH = "/sim/ground_truth"  # TrackedObjectArray, vehicle_id = taxi id


def safe_id(name: str) -> bool:
    """An entity id (a vehicle's, an RSU's) that can be part of a topic name."""
    return bool(name) and name.replace("_", "a").isalnum() and name[0].isalpha()


def rsu_points(rsu_id: str) -> str:
    return f"/rsu/{rsu_id}/points"  # sensor_msgs/PointCloud2 in the RSU's lidar frame


def rsu_detections(rsu_id: str) -> str:
    return f"/rsu/{rsu_id}/detections"  # DetectedObjectArray in map


def cav_points(cav_id: str) -> str:
    return f"/cav/{cav_id}/points"  # sensor_msgs/PointCloud2 in the CAV's lidar frame


def cav_odometry(cav_id: str) -> str:
    return f"/cav/{cav_id}/odom"  # nav_msgs/Odometry, map -> base_link


def cav_route_command(cav_id: str) -> str:
    return f"/cav/{cav_id}/route_command"  # RouteCommand: a new route, destination or speed for the CAV


def cav_route_status(cav_id: str) -> str:
    return f"/cav/{cav_id}/route_command/status"  # RouteCommandStatus: the CAV's answer to each RouteCommand


def cav_control_command(cav_id: str) -> str:
    return f"/cav/{cav_id}/control/route_command"  # RouteCommand the route_follower passes to the drive interface


def cav_control_status(cav_id: str) -> str:
    return f"/cav/{cav_id}/control/route_command/status"  # RouteCommandStatus: the drive interface's answer


def cav_destination(cav_id: str) -> str:
    return f"/cav/{cav_id}/destination"  # RouteRequest: the vehicle's mission (its destination road)


def cav_detections(cav_id: str) -> str:
    return f"/cav/{cav_id}/detections"  # DetectedObjectArray in map (includes the self-report)


def edge_v2x(server_id: str) -> str:
    return f"/edge/{server_id}/v2x"  # DetectedObjectArray of self-reports relayed by the server's base station


def local_objects(site_id: str) -> str:
    return f"/twin/local/{site_id}/objects"  # TrackedObjectArray


def local_state(site_id: str) -> str:
    return f"/twin/local/{site_id}/state"  # TwinStateArray


def local_edge_servers(site_id: str) -> str:
    return f"/twin/local/{site_id}/edge_servers"  # EdgeServerStateArray: the site's server twins


GLOBAL_OBJECTS = "/twin/global/objects"  # TrackedObjectArray
GLOBAL_STATE = "/twin/global/state"  # TwinStateArray
GLOBAL_EDGE_SERVERS = "/twin/global/edge_servers"  # EdgeServerStateArray
RELATIONS = "/twin/relations"  # RelationGraph
OFFLOAD_DECISIONS = "/offloading/decisions"  # OffloadDecisionArray (one offloading node for the global twin)


def offload_decisions(site_id: str) -> str:
    return f"/offloading/{site_id}/decisions"  # OffloadDecisionArray of a site's offloading node (edge role)


def task_requests(site_id: str) -> str:
    return f"/allocation/{site_id}/tasks"  # TaskRequestArray: the vehicles' tasks relayed by the site's stations


def resource_allocations(site_id: str) -> str:
    return f"/allocation/{site_id}/allocations"  # ResourceAllocationArray of a site's resource_allocator


ROUTE_REQUESTS = "/guidance/route_requests"  # RouteRequest: CAVs ask the route guidance for a route
GUIDANCE_STATUS = "/guidance/status"  # RouteGuidanceStatus: the route guidance's answers and decisions
COLLISION_WARNINGS = "/safety/collision_warnings"  # CollisionWarningArray: every warning cycle's warnings
MIGRATIONS = "/placement/migrations"  # MigrationEvent
VIZ_MARKERS = "/twin/markers"  # visualization_msgs/MarkerArray
