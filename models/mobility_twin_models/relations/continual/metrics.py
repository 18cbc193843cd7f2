r"""Continual-learning metrics from an accuracy matrix (Lopez-Paz & Ranzato 2017; Chaudhry et al. 2018).

``R[i, j]`` is the accuracy on task ``j``'s test data after training on tasks ``0..i``; ``b[j]`` the
accuracy of the model before any training (random initialisation) on task ``j``. With ``T`` tasks:

* average accuracy :math:`\mathrm{ACC} = \frac{1}{T} \sum_j R_{T-1,j}`
* backward transfer :math:`\mathrm{BWT} = \frac{1}{T-1} \sum_{j<T-1} (R_{T-1,j} - R_{j,j})` (negative: forgetting)
* average forgetting :math:`F = \frac{1}{T-1} \sum_{j<T-1} \max_{i<T-1} (R_{i,j} - R_{T-1,j})`
* forward transfer :math:`\mathrm{FWT} = \frac{1}{T-1} \sum_{j>0} (R_{j-1,j} - b_j)`
"""

from __future__ import annotations

import numpy as np


def continual_metrics(R: np.ndarray, b: np.ndarray | None = None) -> dict[str, float]:
    """ACC, BWT, forgetting and (when ``b`` is given) FWT of a ``T x T`` accuracy matrix."""
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] < 1:
        raise ValueError(f"accuracy matrix must be square T x T with T >= 1, got shape {R.shape}")
    t = R.shape[0]
    out = {"acc": float(R[-1].mean())}
    if t < 2:
        out.update(bwt=float("nan"), forgetting=float("nan"), fwt=float("nan"))
        return out
    out["bwt"] = float(np.mean([R[-1, j] - R[j, j] for j in range(t - 1)]))
    out["forgetting"] = float(np.mean([R[: t - 1, j].max() - R[-1, j] for j in range(t - 1)]))
    if b is not None:
        b = np.asarray(b, dtype=float)
        if b.shape != (t,):
            raise ValueError(f"b must have one accuracy per task ({t}), got shape {b.shape}")
        out["fwt"] = float(np.mean([R[j - 1, j] - b[j] for j in range(1, t)]))
    else:
        out["fwt"] = float("nan")
    return out
