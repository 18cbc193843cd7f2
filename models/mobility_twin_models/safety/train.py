"""Train the rear-end conflict model (:mod:`.model`) on saved collision-benchmark runs.

A run folder is what ``mtwin bench collision`` writes per (seed, loop) under ``collision_runs/``:
``result.json`` (the run's settings, RSU positions and SUMO's ssm conflicts with their critical stretches) and
``inputs_<who>.npz`` (every prediction cycle's road users as ``who`` saw them: ``twin``, ``baseline`` or
``oracle``, with each one's true vehicle id). Every cycle's follower-leader pairs (:func:`.features.
follower_pairs`) are rows; a row is positive when SUMO measured a time to collision below the critical value
for that pair of vehicles, inside sensor coverage, from 1 s before the cycle to ``horizon + 1 s`` after it
(the benchmark's rule for a right warning). Runs of seeds the benchmark scores must not be trained on.

    python -m mobility_twin_models.safety.train --runs RUN [RUN ...] [--test-runs RUN ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mobility_twin_models.safety.features import FEATURES, Accelerations, follower_pairs
from mobility_twin_models.safety.model import (
    DEFAULT_CHECKPOINT,
    ConflictModelConfig,
    RearEndModel,
    save_checkpoint,
)


def run_rows(run_dir: Path, who: str = "twin", config: ConflictModelConfig = ConflictModelConfig()
             ) -> tuple[np.ndarray, np.ndarray]:
    """(features (K, F) float32, labels (K,) bool) of one saved run's cycles as ``who`` saw them."""
    run_dir = Path(run_dir)
    try:
        result = json.loads((run_dir / "result.json").read_text())
        data = np.load(run_dir / f"inputs_{who}.npz")
    except (OSError, ValueError) as err:
        raise ValueError(f"{run_dir} is not a saved collision run with {who}'s inputs: {err}") from None
    job = result["job"]
    rsu = np.asarray(result["rsu_xy"], float).reshape(-1, 2)
    coverage = float(job["coverage_m"])
    stretches: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for c in result["conflicts"]:
        for first, last, x, y in c.get("critical", []):
            if (np.hypot(rsu[:, 0] - x, rsu[:, 1] - y) <= coverage).any():
                stretches.setdefault((min(c["a"], c["b"]), max(c["a"], c["b"])), []).append((first, last))
    arrays = {k: data[k] for k in data.files}
    bounds = np.r_[0, np.cumsum(arrays["rows"])]
    lo = result["start_s"] + job["warmup_s"]
    before, after = 1.0, config.horizon_s + 1.0
    feats, labels = [], []
    history = Accelerations()
    for k, t in enumerate(arrays["t"]):
        a, b = bounds[k], bounds[k + 1]
        accel = history.update(t, arrays["ids"][a:b], arrays["x"][a:b])
        if t < lo:
            continue
        heading = arrays["heading"][a:b] if "heading" in arrays else None
        age = t - arrays["last_update"][a:b] if "last_update" in arrays else None
        i, j, f = follower_pairs(arrays["x"][a:b], arrays["length"][a:b], heading, P=arrays["P"][a:b] if "P" in arrays else None,
                                 lane_heading=arrays["lane_heading"][a:b] if "lane_heading" in arrays else None,
                                 stop_m=arrays["stop_m"][a:b] if "stop_m" in arrays else None, age_s=age,
                                 accel=accel)
        if not len(i):
            continue
        truth = arrays["truth"][a:b]
        for ti, tj in zip(truth[i].tolist(), truth[j].tolist(), strict=True):
            spans = stretches.get((min(ti, tj), max(ti, tj)), ()) if ti >= 0 and tj >= 0 else ()
            labels.append(any(first <= t + after and last >= t - before for first, last in spans))
        feats.append(f)
    if not feats:
        return np.zeros((0, len(FEATURES)), np.float32), np.zeros(0, bool)
    return np.concatenate(feats), np.asarray(labels, bool)


def dataset(runs, who: tuple[str, ...] = ("twin",), log=print) -> tuple[np.ndarray, np.ndarray]:
    feats, labels = [], []
    for run in runs:
        for w in who:
            f, y = run_rows(Path(run), w)
            log(f"  {run} ({w}): {len(y)} pairs, {int(y.sum())} before a conflict")
            feats.append(f)
            labels.append(y)
    return np.concatenate(feats), np.concatenate(labels)


def train(features: np.ndarray, labels: np.ndarray, config: ConflictModelConfig = ConflictModelConfig(), *,
          epochs: int = 600, lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0) -> RearEndModel:
    """A model fitted to the rows (full-batch Adam on the binary cross-entropy; seeded)."""
    if not len(labels) or labels.all() or not labels.any():
        raise ValueError(f"training needs rows of both kinds: {len(labels)} rows, {int(labels.sum())} positive")
    torch.manual_seed(seed)
    model = RearEndModel(config)
    model.fit_scaling(features)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    X, Y = torch.as_tensor(features), torch.as_tensor(labels, dtype=torch.float32)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(X), Y)
        loss.backward()
        opt.step()
    return model.eval()


def row_scores(model: RearEndModel, features: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict:
    p = model.probability(features)
    hit = p >= threshold
    tp = int((hit & labels).sum())
    return {"rows": len(labels), "positive": int(labels.sum()), "flagged": int(hit.sum()),
            "precision": tp / max(int(hit.sum()), 1), "recall": tp / max(int(labels.sum()), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mobility_twin_models.safety.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, help="saved runs to train on (collision_runs/*)")
    parser.add_argument("--test-runs", type=Path, nargs="*", default=[], help="saved runs to report on (not trained on)")
    parser.add_argument("--who", default="twin,oracle,baseline", help="whose inputs to learn from, comma-separated: twin, "
                        "oracle, baseline (default all three: the twin's errors and other noise; scored on the twin's)")
    parser.add_argument("--epochs", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=DEFAULT_CHECKPOINT)
    args = parser.parse_args(argv)
    who = tuple(w.strip() for w in args.who.split(",") if w.strip())
    t0 = time.monotonic()
    print("training rows:")
    try:
        X, y = dataset(args.runs, who)
        model = train(X, y, epochs=args.epochs, seed=args.seed)
    except ValueError as err:
        print(f"train: {err}", file=sys.stderr)
        return 2
    scores = {"train": row_scores(model, X, y)}
    if args.test_runs:
        print("held-out rows:")
        Xt, yt = dataset(args.test_runs, ("twin",))
        scores["held_out"] = row_scores(model, Xt, yt)
    for name, s in scores.items():
        print(f"{name}: {s['rows']} pairs, {s['positive']} before a conflict; at p >= 0.5 precision "
              f"{s['precision']:.3f} recall {s['recall']:.3f}")
    path = save_checkpoint(args.out, model, extra={"runs": [str(r) for r in args.runs], "who": list(who),
                                                   "epochs": args.epochs, "seed": args.seed, "scores": scores})
    print(f"wrote {path} ({time.monotonic() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
