"""Learned collision risk (issue 18): follower-leader pair features and a rear-end conflict model trained on
SUMO's surrogate-safety conflicts."""

from mobility_twin_models.safety.features import FEATURES, follower_pairs
from mobility_twin_models.safety.model import (
    ConflictModelConfig,
    RearEndModel,
    load_checkpoint,
    save_checkpoint,
)

__all__ = ["FEATURES", "ConflictModelConfig", "RearEndModel", "follower_pairs", "load_checkpoint", "save_checkpoint"]
