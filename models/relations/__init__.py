"""Continual graph learning of the relations between twins (IoFDT Sec. III-C-1; bi-directional twin Sec. V-C).

The twins of a mobility system (vehicles, RSUs, edge servers) and their relations (proximity, serving
association, server adjacency, RSU attachment) form a typed graph (:func:`build_graph`). A heterogeneous
GNN (:class:`RelationModel`) learns on it to predict each vehicle's serving edge server ``k`` slots ahead
(handover) and each server's load ``h`` slots ahead, and keeps learning on fresh twin data
(:class:`RelationLearner`: naive fine-tuning, experience replay with a bounded reservoir, EWC). The
predicted next server drives proactive twin migration (:func:`simulate_migration`).

ROS-free: the node ``relation_learner`` feeds it twin messages; ``mtwin bench relations`` measures it.
"""

from models.relations.baselines import (
    MarkovHandover,
    constant_velocity,
    dead_reckoning,
    last_value,
    moving_average,
    stay,
)
from models.relations.config import GraphConfig, LayoutConfig, ModelConfig, TrainConfig
from models.relations.continual.buffer import ReservoirBuffer
from models.relations.continual.ewc import EWC
from models.relations.continual.metrics import continual_metrics
from models.relations.dataset import Sample, make_samples, observe_fleet
from models.relations.errors import CheckpointError, RelationsError
from models.relations.graph import build_graph
from models.relations.layout import Area, ServerIndex, ServerLayout, hex_layout, serving_server
from models.relations.learner import RelationLearner
from models.relations.migration import MigrationConfig, simulate_migration
from models.relations.nn.model import RelationModel
from models.relations.snapshot import ObservedSnapshot, TwinHistory, TwinSnapshot

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
    "ServerIndex",
    "ServerLayout",
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
    "serving_server",
    "simulate_migration",
    "stay",
]
