"""Continual learning: a bounded replay reservoir, EWC, and the metrics of an accuracy matrix."""

from mobility_twin_models.relations.continual.buffer import ReservoirBuffer
from mobility_twin_models.relations.continual.ewc import EWC
from mobility_twin_models.relations.continual.metrics import continual_metrics

__all__ = ["EWC", "ReservoirBuffer", "continual_metrics"]
