"""Before and after, side by side: `mtwin eval tracking` run alternately in two checkouts of the stack.

    python scripts/ab_tracking.py BEFORE_DIR AFTER_DIR [--scenario dense] [--duration 60] [--runs 4]

Each checkout must be set up (`make setup`); every run uses that checkout's own `env.sh`. The runs alternate
(before, after, before, ...), so that a slow spell of the machine falls on both; on a shared 2-core machine the
spread between runs of the same code is several milliseconds, so compare medians of several runs. Prints a
table (per run and per side: global MOTA / IDF1, end-to-end p50 / p99, the p50 of each twin stage and the
end-to-end p50 of each kind of source: V2X relays, RSU and CAV LiDAR) and the
Mann-Whitney p-value of each latency difference, and writes the same to ``--out`` (JSON).

This is how issue 14's before/after latency was measured (9073f6d against the redesign).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

STAGES = ("local_received", "local_twin", "global_received", "global_twin")


def one_run(checkout: Path, scenario: str, duration: float, out: Path) -> dict:
    command = (f"source {checkout / 'env.sh'} >/dev/null && cd {checkout} && "
               f"mtwin eval tracking --scenario {scenario} --duration {duration:g} --out {out}")
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{checkout}: mtwin eval tracking failed ({done.returncode}):\n{done.stdout[-2000:]}"
                         f"{done.stderr[-2000:]}")
    result = json.loads((out / "tracking.json").read_text())
    latency, best = result["latency_ms"], result["tracking"]["global"]
    return {"mota": best["mota"], "idf1": best["idf1"], "p50_ms": latency["end_to_end"]["p50"],
            "p99_ms": latency["end_to_end"]["p99"],
            **{f"{s}_p50_ms": latency[s]["p50"] for s in STAGES if s in latency},
            # end to end per kind of source: a change can slow one path (the V2X relays) and not the others
            **{f"{kind}_p50_ms": v["p50"] for kind, v in latency.get("end_to_end_by_source", {}).items() if v.get("n")}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--scenario", default="dense")
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=4, help="runs per side (default 4)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "ab_tracking.json")
    args = parser.parse_args()
    for side in (args.before, args.after):
        if not (side / "env.sh").is_file():
            raise SystemExit(f"{side}: not a checkout of the stack (no env.sh); clone it and run `make setup`")
    if args.runs < 1:
        raise SystemExit(f"--runs must be >= 1, got {args.runs}")

    from scipy.stats import mannwhitneyu

    from mobility_twin_bench.common import format_table

    rows = []
    with tempfile.TemporaryDirectory(prefix="ab_tracking_") as tmp:
        for i in range(args.runs):
            for side, checkout in (("before", args.before), ("after", args.after)):
                print(f"run {i + 1}/{args.runs}, {side} ({checkout}) ...", flush=True)
                rows.append({"side": side, "run": i + 1,
                             **one_run(checkout.resolve(), args.scenario, args.duration, Path(tmp) / f"{side}{i}")})
    keys = list(dict.fromkeys(k for r in rows for k in r if k not in ("side", "run")))
    summary = []
    for side in ("before", "after"):
        mine = [r for r in rows if r["side"] == side]
        summary.append({"side": side, "runs": len(mine),
                        **{k: statistics.median(r[k] for r in mine if k in r) for k in keys if any(k in r for r in mine)}})
    tests = {}
    for k in keys:
        if k in ("mota", "idf1"):
            continue
        a = [r[k] for r in rows if r["side"] == "before" and k in r]
        b = [r[k] for r in rows if r["side"] == "after" and k in r]
        if len(a) >= 2 and len(b) >= 2:
            tests[k] = float(mannwhitneyu(a, b).pvalue)
    print(format_table(rows, ["side", "run", *keys], title=f"\n{args.scenario}, {args.duration:g} s, each run"))
    print(format_table(summary, ["side", "runs", *keys], title="\nMedians"))
    print("\nMann-Whitney p (before vs after): " + ", ".join(f"{k} {p:.3f}" for k, p in tests.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"scenario": args.scenario, "duration_s": args.duration,
                                    "before": str(args.before), "after": str(args.after), "runs": rows,
                                    "medians": summary, "mann_whitney_p": tests}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
