"""The rear-end conflict model: a small MLP from a follower-leader pair's features (:mod:`.features`) to the
probability that the follower's time to collision falls below the critical value (1.5 s) within the horizon.

Trained on SUMO runs with the surrogate-safety device's conflicts as labels (:mod:`.train`); the features are
standardised with the training set's mean and deviation, kept in the model (buffers) and in its checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mobility_twin_core import CheckpointError
from mobility_twin_core import checkpoint as core_checkpoint
from mobility_twin_models.safety.features import FEATURES

CHECKPOINT_KIND, CHECKPOINT_VERSION = "rear_end_conflict", 1
RETRAIN = "python -m mobility_twin_models.safety.train"
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "rear_end_conflict.pt"


@dataclass(frozen=True)
class ConflictModelConfig:
    hidden: int = 32
    layers: int = 2
    horizon_s: float = 4.0  # the label's window after the prediction (s), as the warnings' horizon
    ttc_critical_s: float = 1.5  # the time to collision that is a conflict (SUMO ssm's usual threshold)


class RearEndModel(nn.Module):
    def __init__(self, config: ConflictModelConfig = ConflictModelConfig()) -> None:
        super().__init__()
        self.config = config
        width, body = len(FEATURES), []
        for _ in range(config.layers):
            body += [nn.Linear(width, config.hidden), nn.ReLU()]
            width = config.hidden
        self.net = nn.Sequential(*body, nn.Linear(width, 1))
        self.register_buffer("mean", torch.zeros(len(FEATURES)))
        self.register_buffer("scale", torch.ones(len(FEATURES)))

    def fit_scaling(self, features: np.ndarray) -> None:
        """Standardise inputs with the mean and deviation of ``features`` (the training rows)."""
        f = torch.as_tensor(np.asarray(features, np.float32))
        self.mean.copy_(f.mean(dim=0))
        self.scale.copy_(f.std(dim=0).clamp_min(1e-3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (K,) of rows (K, len(FEATURES))."""
        return self.net((features - self.mean) / self.scale)[:, 0]

    @torch.no_grad()
    def probability(self, features: np.ndarray) -> np.ndarray:
        """The conflict probability of each feature row (K,), float64."""
        if not len(features):
            return np.zeros(0)
        return torch.sigmoid(self(torch.as_tensor(np.asarray(features, np.float32)))).double().numpy()


def save_checkpoint(path: str | Path, model: RearEndModel, extra: dict | None = None) -> Path:
    return core_checkpoint.save_checkpoint(path, kind=CHECKPOINT_KIND, version=CHECKPOINT_VERSION, metadata=extra,
                                           state={"config": asdict(model.config), "features": list(FEATURES),
                                                  "state_dict": model.state_dict()})


def load_checkpoint(path: str | Path = DEFAULT_CHECKPOINT) -> tuple[RearEndModel, dict]:
    """``(model in eval mode, metadata)`` of a checkpoint written by :func:`save_checkpoint`."""
    ckpt = core_checkpoint.load_checkpoint(path, kind=CHECKPOINT_KIND, version=CHECKPOINT_VERSION, retrain=RETRAIN)
    if tuple(ckpt.state.get("features", ())) != FEATURES:
        raise CheckpointError(
            f"{path} was trained on features {ckpt.state.get('features')}, this code computes {list(FEATURES)}; "
            f"make one with: {RETRAIN}")
    model = RearEndModel(ConflictModelConfig(**ckpt.state["config"]))
    model.load_state_dict(ckpt.state["state_dict"])
    return model.eval(), ckpt.metadata
