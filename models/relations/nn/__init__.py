"""Neural operators of the relation model (one per file)."""

from models.relations.nn.candidate_scorer import CandidateScorer
from models.relations.nn.encoder import RelationEncoder
from models.relations.nn.model import Predictions, RelationModel
from models.relations.nn.relation_conv import RelationConv

__all__ = ["CandidateScorer", "Predictions", "RelationConv", "RelationEncoder", "RelationModel"]
