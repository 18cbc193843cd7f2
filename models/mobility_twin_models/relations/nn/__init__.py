"""Neural operators of the relation model (one per file)."""

from mobility_twin_models.relations.nn.candidate_scorer import CandidateScorer
from mobility_twin_models.relations.nn.encoder import RelationEncoder
from mobility_twin_models.relations.nn.model import Predictions, RelationModel
from mobility_twin_models.relations.nn.relation_conv import RelationConv

__all__ = ["CandidateScorer", "Predictions", "RelationConv", "RelationEncoder", "RelationModel"]
