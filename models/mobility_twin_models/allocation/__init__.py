"""Continual resource allocation in the local edge twin (issue 20; Yu et al., bi-directional twin, Sec. IV-D).

The local twin of an edge server decides how the server's CPU and its cell's bandwidth are shared among
the users it serves, every update, and keeps learning from fresh twin data (continual DDPG) instead of a
policy trained once and frozen. Two settings:

* the paper's VR case study (:mod:`.vr`): 4 users, 15 GHz, 10 Mbps; per update a resolution, a CPU share and a
  bandwidth share per user; QoE and horizon fairness (:mod:`.equations`);
* the stack's vehicular setting (:mod:`.site`): a server's vehicles with DITEN Table II tasks, Shannon uplink,
  users joining and leaving, channels changing with mobility, a server slowing down.

The pieces: :mod:`.config` (frozen, validated), :mod:`.equations`, :mod:`.exact` (the per-update exact
reference and brute force), :mod:`.agent` (stable-baselines3's DDPG as the core; replay and EWC ours),
:mod:`.study` (the paper's schedule run end to end), :mod:`.allocator` (the loop a ROS node wraps: decide,
learn within a time budget, save and load).

ROS-free: nothing here imports rclpy.
"""

from mobility_twin_models.allocation.agent import ContinualDDPG, RegimeReplay, load_state
from mobility_twin_models.allocation.allocator import (
    ServerState,
    SiteAllocator,
    SiteDecision,
    TaskRequest,
    VehicleAllocation,
    requests_from_snapshot,
)
from mobility_twin_models.allocation.config import (
    NORMAL,
    RUSH_HOUR,
    SLOW_SERVER,
    STRATEGIES,
    AgentConfig,
    ContinualConfig,
    Regime,
    ScheduleConfig,
    SiteConfig,
    VRConfig,
)
from mobility_twin_models.allocation.errors import AllocationError, CheckpointError
from mobility_twin_models.allocation.exact import (
    ServerExact,
    ServerProblem,
    VRDecision,
    VRExact,
    VRProblem,
    server_brute_force,
    server_exact,
    vr_brute_force,
    vr_exact,
    weighted_square_root,
)
from mobility_twin_models.allocation.site import SiteFeatures, SiteTrace, equal_share, slot_outcome
from mobility_twin_models.allocation.study import (
    VR_POLICIES,
    SiteStudy,
    VRStudy,
    recovery_updates,
    run_site_study,
    run_vr_study,
)
from mobility_twin_models.allocation.vr import FairnessWindow, VRFeatures, VRTrace, vr_outcome

__all__ = [
    "NORMAL",
    "RUSH_HOUR",
    "SLOW_SERVER",
    "STRATEGIES",
    "VR_POLICIES",
    "AgentConfig",
    "AllocationError",
    "CheckpointError",
    "ContinualConfig",
    "ContinualDDPG",
    "FairnessWindow",
    "Regime",
    "RegimeReplay",
    "ScheduleConfig",
    "ServerExact",
    "ServerProblem",
    "ServerState",
    "SiteAllocator",
    "SiteConfig",
    "SiteDecision",
    "SiteFeatures",
    "SiteStudy",
    "SiteTrace",
    "TaskRequest",
    "VRConfig",
    "VRDecision",
    "VRExact",
    "VRFeatures",
    "VRProblem",
    "VRStudy",
    "VRTrace",
    "VehicleAllocation",
    "equal_share",
    "load_state",
    "recovery_updates",
    "requests_from_snapshot",
    "run_site_study",
    "run_vr_study",
    "server_brute_force",
    "server_exact",
    "slot_outcome",
    "vr_brute_force",
    "vr_exact",
    "vr_outcome",
    "weighted_square_root",
]
