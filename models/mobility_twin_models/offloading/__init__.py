"""Mobile offloading and service migration in a digital twin edge network (DITEN; Sun et al., IEEE TVT 2020).

Users moving along T-Drive trajectories offload a task every slot to one of their N nearest edge
servers; the twins of the servers estimate how fast each server is (with a deviation); the serving
server may change (a migration, with a long-term budget). The pieces:

* :mod:`.config` the environment's parameters (Table II), :mod:`.equations` eq. 3-16 one by one;
* :mod:`.env` journeys with every latency precomputed, in the twin's view and the real one;
* :mod:`.rollout` policies (nearest-first, greedy, drift-plus-penalty), the deficit queue, the metrics;
* :mod:`.oracle` the exact offline optimum of P1 by dynamic programming;
* :mod:`.agent` the actor-critic and its checkpoint, :mod:`.training` Algorithms 1 and 2;
* :mod:`.controller` the online decision loop the ROS node wraps.

ROS-free: nothing here imports rclpy.
"""

from mobility_twin_models.offloading.agent import (
    DEFAULT_CHECKPOINT,
    ActorCritic,
    ActorCriticPolicy,
    AgentSpec,
    load_checkpoint,
    save_checkpoint,
)
from mobility_twin_models.offloading.config import (
    EnvConfig,
    LoadConfig,
    MigrationConfig,
    NetworkConfig,
    RadioConfig,
    TaskConfig,
    TrajectoryConfig,
    TwinConfig,
)
from mobility_twin_models.offloading.env import Environment, Episode
from mobility_twin_models.offloading.errors import CheckpointError, OffloadingError
from mobility_twin_models.offloading.features import FeatureSpec, state_features
from mobility_twin_models.offloading.oracle import OracleResult, brute_force_p1, oracle_plan, solve_p1
from mobility_twin_models.offloading.rollout import (
    DriftPlusPenalty,
    Greedy,
    NearestFirst,
    Observation,
    Planned,
    Policy,
    Rollout,
    rollout,
)
from mobility_twin_models.offloading.training import OnlineAgent, TrainConfig, TrainingLog, train

__all__ = [
    "DEFAULT_CHECKPOINT",
    "ActorCritic",
    "ActorCriticPolicy",
    "AgentSpec",
    "CheckpointError",
    "DriftPlusPenalty",
    "EnvConfig",
    "Environment",
    "Episode",
    "FeatureSpec",
    "Greedy",
    "LoadConfig",
    "MigrationConfig",
    "NearestFirst",
    "NetworkConfig",
    "Observation",
    "OffloadingError",
    "OnlineAgent",
    "OracleResult",
    "Planned",
    "Policy",
    "RadioConfig",
    "Rollout",
    "TaskConfig",
    "TrainConfig",
    "TrainingLog",
    "TrajectoryConfig",
    "TwinConfig",
    "brute_force_p1",
    "load_checkpoint",
    "oracle_plan",
    "rollout",
    "save_checkpoint",
    "solve_p1",
    "state_features",
    "train",
]
