"""Continual learning: a bounded replay reservoir, EWC, and the metrics of an accuracy matrix."""

from models.relations.continual.buffer import ReservoirBuffer
from models.relations.continual.ewc import EWC
from models.relations.continual.metrics import continual_metrics

__all__ = ["EWC", "ReservoirBuffer", "continual_metrics"]
