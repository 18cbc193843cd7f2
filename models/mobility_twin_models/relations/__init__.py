"""Continual graph learning of the relations between twins (IoFDT Sec. III-C-1; bi-directional twin Sec. V-C).

The twins of a mobility system (vehicles, RSUs, edge servers) and their relations (proximity, serving
association, server adjacency, RSU attachment) form a typed graph (:func:`build_graph`). A heterogeneous
GNN (:class:`RelationModel`) learns on it to predict each vehicle's serving edge server ``k`` slots ahead
(handover) and each server's load ``h`` slots ahead, and keeps learning on fresh twin data
(:class:`RelationLearner`: naive fine-tuning, experience replay with a bounded reservoir, EWC). The
predicted next server drives proactive twin migration (:func:`simulate_migration`).

ROS-free: the node ``relation_learner`` feeds it twin messages; ``mtwin bench relations`` measures it.
"""

from mobility_twin_models.relations.baselines import (
    MarkovHandover,
    constant_velocity,
    dead_reckoning,
    last_value,
    moving_average,
    stay,
)
from mobility_twin_models.relations.config import GraphConfig, LayoutConfig, ModelConfig, TrainConfig
from mobility_twin_models.relations.continual.buffer import ReservoirBuffer
from mobility_twin_models.relations.continual.ewc import EWC
from mobility_twin_models.relations.continual.metrics import continual_metrics
from mobility_twin_models.relations.dataset import Sample, make_samples, observe_fleet
from mobility_twin_models.relations.errors import CheckpointError, RelationsError
from mobility_twin_models.relations.graph import build_graph
from mobility_twin_models.relations.layout import Area, hex_layout
from mobility_twin_models.relations.learner import RelationLearner
from mobility_twin_models.relations.migration import MigrationConfig, simulate_migration
from mobility_twin_models.relations.nn.model import RelationModel
from mobility_twin_models.relations.snapshot import ObservedSnapshot, TwinHistory, TwinSnapshot

__all__ = [
    "EWC",
    "Area",
    "CheckpointError",
    "GraphConfig",
    "LayoutConfig",
    "MarkovHandover",
    "MigrationConfig",
    "ModelConfig",
    "ObservedSnapshot",
    "RelationLearner",
    "RelationModel",
    "RelationsError",
    "ReservoirBuffer",
    "Sample",
    "TrainConfig",
    "TwinHistory",
    "TwinSnapshot",
    "build_graph",
    "constant_velocity",
    "continual_metrics",
    "dead_reckoning",
    "hex_layout",
    "last_value",
    "make_samples",
    "moving_average",
    "observe_fleet",
    "simulate_migration",
    "stay",
]
