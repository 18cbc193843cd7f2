"""Edge/cloud placement of multi-device digital twins (Zhang et al., "Efficient Task Offloading Algorithm
for Digital Twin in Edge/Cloud Computing Environment"): the cost model (eq. 1-17), problem P (eq. 18),
the DDL of Algorithm 1, the paper's baselines and the exact optimum. ROS-free: numpy, torch, highspy.

Units and the values the paper leaves open are documented in :mod:`mobility_twin_models.placement.config`.
"""

from mobility_twin_models.placement.config import TABLE2, PlacementSetup, ScenarioConfig, SystemConfig
from mobility_twin_models.placement.cost import (
    placement_costs,
    system_cost,
    system_energy,
    system_time,
    twin_cost_table,
)
from mobility_twin_models.placement.ddl import (
    DDLConfig,
    DDLModel,
    DDLPlacer,
    DDLTrainer,
    InputSpec,
    ReplayMemory,
    convergence_rate,
    load_checkpoint,
    save_checkpoint,
)
from mobility_twin_models.placement.errors import CheckpointError, PlacementError
from mobility_twin_models.placement.instance import Instance, InstanceGenerator, Servers
from mobility_twin_models.placement.solvers import (
    average_distribution,
    cloud_only,
    enumerate_optimum,
    mip_optimum,
    random_placement,
    refine_single_moves,
    separable_optimum,
    solve_exact,
)

__all__ = [
    "TABLE2",
    "CheckpointError",
    "DDLConfig",
    "DDLModel",
    "DDLPlacer",
    "DDLTrainer",
    "InputSpec",
    "Instance",
    "InstanceGenerator",
    "PlacementError",
    "PlacementSetup",
    "ReplayMemory",
    "ScenarioConfig",
    "Servers",
    "SystemConfig",
    "average_distribution",
    "cloud_only",
    "convergence_rate",
    "enumerate_optimum",
    "load_checkpoint",
    "mip_optimum",
    "placement_costs",
    "random_placement",
    "refine_single_moves",
    "save_checkpoint",
    "separable_optimum",
    "solve_exact",
    "system_cost",
    "system_energy",
    "system_time",
    "twin_cost_table",
]
