"""Gating: the squared Mahalanobis distance of position innovations, in closed form for 2 x 2 covariances.

Every association in the stack (the tracker's detections to tracks, re-identification, the global twin's
local tracks to global ones) gates with :func:`mahalanobis2`.
"""

from __future__ import annotations

import numpy as np


def mahalanobis2(innov: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(d^2, det S) of innovations ``innov`` (..., 2) with covariances ``S`` (..., 2, 2). Where ``det S <= 0``
    (a degenerate covariance) d^2 is inf or nan: callers gate on ``det > 0``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return mahalanobis2_unchecked(innov, S)


def mahalanobis2_unchecked(innov: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`mahalanobis2` for a caller already inside ``np.errstate`` (a degenerate ``S`` would warn)."""
    a, b, d = S[..., 0, 0], S[..., 0, 1], S[..., 1, 1]
    x, y = innov[..., 0], innov[..., 1]
    det = a * d - b * b
    return ((d * x - 2.0 * b * y) * x + a * y * y) / det, det
