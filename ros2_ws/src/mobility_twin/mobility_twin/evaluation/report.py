"""Plain-text tables of evaluation results."""

from __future__ import annotations


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
              for r in rows]
    return "\n".join(lines)


def tracking_table(results: dict) -> str:
    """Tracking metrics per system and latency per stage."""
    rows = []
    for name, m in results["tracking"].items():
        if not m.get("num_frames"):
            continue
        rows.append([name, f"{m['mota']:.3f}", f"{m['idf1']:.3f}", f"{m['motp']:.2f}", str(m["num_switches"]),
                     str(m["num_false_positives"]), str(m["num_misses"]), str(m["num_objects"])])
    out = [_table(rows, ["system", "MOTA", "IDF1", "MOTP m", "IDSW", "FP", "FN", "GT objects"])]
    lat = results.get("latency_ms", {})
    lrows = [[stage, f"{v['p50']:.1f}", f"{v['p99']:.1f}", f"{v['max']:.1f}", str(v["n"])]
             for stage, v in lat.items() if isinstance(v, dict) and v.get("n")]
    lrows += [[f"end_to_end ({kind})", f"{v['p50']:.1f}", f"{v['p99']:.1f}", f"{v['max']:.1f}", str(v["n"])]
              for kind, v in lat.get("end_to_end_by_source", {}).items() if v.get("n")]
    if lrows:
        warm = (f"; the first {results['warmup_s']:g} s ({lat.get('frames_in_warmup', 0)} frames) are warm-up, "
                "not scored" if "warmup_s" in results else "")
        out += ["", f"latency, ms (end to end from the {lat.get('end_to_end_from', '?')}{warm})",
                _table(lrows, ["stage (time since previous)", "p50", "p99", "max", "frames"])]
    tracks = results.get("global_tracks", {})
    if tracks.get("n"):
        out.append(f"\nglobal twin tracks per update: mean {tracks['mean']:.1f}, max {tracks['max']:.0f}")
    return "\n".join(out)
