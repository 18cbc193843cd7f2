"""DITEN mobile offloading (Sun et al.): actor-critic vs nearest-first, greedy, drift-plus-penalty, the exact oracle.

Users move along T-Drive taxi trajectories (the bundled 1,300-taxi CBD subset, or ``--data``) scaled
into 5 km x 5 km with 40 base stations per km^2; each slot every user offloads a Table II task to one
of its N nearest edge servers. The policies, evaluated in the *real* environment on journeys of the
held-out half hour:

* ``nearest_first``: the paper's benchmark, always the nearest server;
* ``greedy``: the least latency the twins predict now, blind to the migration budget;
* ``drift_plus_penalty``: the one-slot Lyapunov rule, ``argmin v T + Q(t) C(e_t)`` (not in the paper);
* ``actor_critic``: the paper's scheme, trained on the twin of the system (the shipped checkpoint);
* ``oracle``: the exact optimum of P1 with the whole journey and the true server states known.

Sections: the headline in the paper's setting (N = 5 and 10) against the targets of issue 5; the
decision time of the actor; the sweeps of Fig. 5-9 (users x N; base-station density x twin error;
speed x beta; system cost with and without twins x speed x N); with ``--full`` also Algorithm 2's
online retraining from its training pool. Prints tables, writes offloading.json and PNG plots.
``--quick`` takes a few minutes on 2 cores; ``--full`` runs the whole sweep with more journeys.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

SUMMARY = "DITEN mobile offloading: actor-critic vs nearest-first, greedy and the exact P1 oracle (Fig. 5-9)"

POLICIES = ("nearest_first", "greedy", "drift_plus_penalty", "actor_critic", "oracle")
TARGET_SPEEDUP = 1.2  # nearest-first latency / actor-critic latency, at least
TARGET_ORACLE_GAP = 0.05  # actor-critic latency within 5 % of the oracle's
TARGET_DECISION_MS = 1.0

PRESETS = {
    "quick": dict(episodes=3, headline_episodes=6, users=(100, 300, 500), densities=(20.0, 40.0, 60.0),
                  deviations=(0.0, 0.5e9, 1.0e9), speeds=(5.0, 15.0, 25.0), betas=(0.1, 0.2),
                  online_rounds=0),
    "full": dict(episodes=8, headline_episodes=16, users=(100, 200, 300, 400, 500),
                 densities=(20.0, 30.0, 40.0, 50.0, 60.0), deviations=(-0.5e9, 0.0, 0.5e9, 1.0e9),
                 speeds=(5.0, 10.0, 15.0, 20.0, 25.0, 30.0), betas=(0.1, 0.2, 0.3), online_rounds=12),
}


def configure(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="2-4 journeys per point, 3 values per sweep (minutes)")
    mode.add_argument("--full", action="store_true", help="8-16 journeys per point, the whole sweep, Algorithm 2")
    parser.add_argument("--checkpoint", type=Path, default=None, help="actor-critic checkpoint (default: the shipped one)")
    parser.add_argument("--compare", type=Path, nargs="+", default=[],
                        help="more checkpoints to evaluate in the headline (e.g. the paper's flat actor)")
    parser.add_argument("--episodes", type=int, default=None, help="journeys per sweep point (overrides the preset)")
    parser.add_argument("--users", type=int, default=200, help="users in the headline setting (default 200)")
    parser.add_argument("--data", type=Path, default=None,
                        help="T-Drive source instead of the bundled CBD subset, e.g. /work/shared/data/tdrive/city")
    parser.add_argument("--sections", nargs="+", default=["headline", "timing", "users", "density", "speed"],
                        choices=["headline", "timing", "users", "density", "speed", "online"],
                        help="what to run (default: all but online; --full adds online)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the network and the journeys")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from mobility_twin_bench.common import RESULTS, format_table, write_results
    from mobility_twin_models.offloading import (
        DEFAULT_CHECKPOINT,
        ActorCriticPolicy,
        DriftPlusPenalty,
        EnvConfig,
        Environment,
        Greedy,
        NearestFirst,
        OnlineAgent,
        TrainConfig,
        load_checkpoint,
        oracle_plan,
        rollout,
    )
    from mobility_twin_models.offloading.rollout import observe

    torch.set_num_threads(args.threads)
    preset = dict(PRESETS["full" if args.full else "quick"])
    if args.episodes:
        preset["episodes"] = args.episodes
        preset["headline_episodes"] = max(args.episodes, preset["headline_episodes"])
    sections = list(args.sections) + (["online"] if args.full and "online" not in args.sections else [])
    out_dir = Path(args.out) if args.out else RESULTS
    checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    agents, meta = load_checkpoint(checkpoint)
    base = EnvConfig(users=args.users)
    if args.data:
        base = base.with_(trajectory__source=str(args.data))
    started = time.perf_counter()
    print(f"offloading benchmark: checkpoint {checkpoint} (agents for N in {sorted(agents)}), "
          f"{'full' if args.full else 'quick'} preset, torch threads {args.threads}")

    compared = {f"actor_critic[{p.stem}]": load_checkpoint(p)[0] for p in args.compare}

    def policies_for(cfg, extra: bool = False):
        mig = cfg.migration
        out = [NearestFirst(), Greedy(), DriftPlusPenalty(mig.latency_weight, mig.cost)]
        if cfg.candidates in agents:
            out.append(ActorCriticPolicy(agents[cfg.candidates], mig.cost))
        if extra:
            out += [ActorCriticPolicy(a[cfg.candidates], mig.cost, name=name)
                    for name, a in compared.items() if cfg.candidates in a]
        return out

    def evaluate(cfg, n_episodes: int, extra: bool = False) -> dict:
        """Mean metrics per policy over ``n_episodes`` test journeys of ``cfg`` (same seed: same network)."""
        env = Environment(cfg, seed=args.seed)
        per: dict[str, list[dict]] = {}
        speed = []
        for k in range(n_episodes):
            ep = env.episode(k, "test")
            speed.append(ep.journeys.mean_speed())
            plan, _ = oracle_plan(ep)
            for policy in [*policies_for(cfg, extra), plan]:
                per.setdefault(policy.name, []).append(rollout(ep, policy).metrics())
        out = {}
        for name, ms in per.items():
            out[name] = {key: float(np.mean([m[key] for m in ms])) for key in ms[0] if key != "policy"}
        out["_speed_mps"] = float(np.mean(speed))
        return out

    results: dict = {"preset": preset, "checkpoint": str(checkpoint), "checkpoint_meta": {
        k: v for k, v in meta.items() if k != "training"}, "config": _describe(base)}
    ok = True

    # ------------------------------------------------------------------ headline: the paper's setting
    if "headline" in sections:
        rows, head = [], {}
        for n in (5, 10):
            cfg = base.with_(candidates=n)
            res = evaluate(cfg, preset["headline_episodes"], extra=True)
            head[n] = res
            oracle = res["oracle"]["avg_latency_s"]
            for name in [*POLICIES, *compared]:
                if name not in res:
                    continue
                m = res[name]
                rows.append({"N": n, "policy": name, "avg_latency_ms": 1e3 * m["avg_latency_s"],
                             "vs_oracle": m["avg_latency_s"] / oracle,
                             "nearest_over_this": res["nearest_first"]["avg_latency_s"] / m["avg_latency_s"],
                             "failure_rate": m["failure_rate"], "migration_rate": m["migration_rate"],
                             "budget_met": m["budget_met"], "raw_latency_ms": 1e3 * m["avg_latency_raw_s"]})
        print()
        print(format_table(rows, title=f"Headline: {args.users} users, beta {base.migration.budget_rate}, "
                           f"{preset['headline_episodes']} test journeys of {base.trajectory.slots} slots, real "
                           "environment (avg latency capped at the deadline; budget_met: share of users within "
                           "floor(beta tau) migrations)"))
        checks = []
        for n, res in head.items():
            if "actor_critic" not in res:
                continue
            ac, near, orc = (res[p]["avg_latency_s"] for p in ("actor_critic", "nearest_first", "oracle"))
            speedup, gap = near / ac, ac / orc - 1.0
            checks.append({"N": n, "target": f"nearest / actor_critic >= {TARGET_SPEEDUP}", "value": speedup,
                           "met": "yes" if speedup >= TARGET_SPEEDUP else "NO"})
            checks.append({"N": n, "target": f"actor_critic / oracle - 1 <= {TARGET_ORACLE_GAP:.0%}", "value": gap,
                           "met": "yes" if gap <= TARGET_ORACLE_GAP else "NO"})
            ok &= speedup >= TARGET_SPEEDUP and gap <= TARGET_ORACLE_GAP
        print()
        print(format_table(checks, title="Targets (issue 5)"))
        results["headline"] = {"rows": rows, "targets": checks}

    # ------------------------------------------------------------------ decision time
    if "timing" in sections and agents:
        cfg = base.with_(candidates=min(agents))
        ep = Environment(cfg, seed=args.seed).episode(0, "test")
        rows = []
        for n, agent in sorted(agents.items()):
            ep_n = ep if n == cfg.candidates else Environment(base.with_(candidates=n), seed=args.seed).episode(0, "test")
            single = ep_n.users(np.arange(1))
            policy = ActorCriticPolicy(agent, cfg.migration.cost)
            obs = observe(single, 0, np.full(1, -1), np.zeros(1))
            for _ in range(50):
                policy.act(obs)
            times = []
            for t in range(2000):
                o = observe(single, t % single.n_slots, np.full(1, -1), np.zeros(1))
                s = time.perf_counter()
                policy.act(o)
                times.append(time.perf_counter() - s)
            batch = rollout(ep_n, policy).metrics()["decide_us_per_user_slot"]
            ms = np.array(times) * 1e3
            median = float(np.median(ms))
            rows.append({"N": n, "median_ms": median, "p90_ms": float(np.percentile(ms, 90)),
                         "p99_ms": float(np.percentile(ms, 99)), "batched_us_per_decision": batch,
                         "load_avg_1min": os.getloadavg()[0], "target_ms": TARGET_DECISION_MS,
                         "met": "yes" if median < TARGET_DECISION_MS else "NO"})
            ok &= median < TARGET_DECISION_MS
        print()
        print(format_table(rows, title="Actor decision time: one vehicle (features + actor + argmax), 2000 calls, "
                           "target on the median; and per vehicle when a slot's vehicles are batched. The tail "
                           "(p99) is the scheduler's when the machine is shared: see load_avg_1min"))
        results["timing"] = rows

    # ------------------------------------------------------------------ Fig. 5 and 7: users x N
    if "users" in sections:
        rows = []
        for n in (5, 10):
            for users in preset["users"]:
                res = evaluate(base.with_(candidates=n, users=users), preset["episodes"])
                for name in POLICIES:
                    if name in res:
                        m = res[name]
                        rows.append({"N": n, "users": users, "policy": name, "avg_latency_ms": 1e3 * m["avg_latency_s"],
                                     "failure_rate": m["failure_rate"], "migration_rate": m["migration_rate"]})
        print()
        print(format_table(rows, title="Fig. 5 / Fig. 7: average latency and failure rate vs users and N"))
        results["users"] = rows

    # ------------------------------------------------------------------ Fig. 6: density x twin error
    if "density" in sections:
        rows = []
        for dev in preset["deviations"]:
            for density in preset["densities"]:
                cfg = base.with_(network__bs_density_per_km2=density, twin__deviation_mean_hz=dev)
                res = evaluate(cfg, preset["episodes"])
                for name in POLICIES:
                    if name in res:
                        rows.append({"twin_error_ghz": dev / 1e9, "bs_per_km2": density, "policy": name,
                                     "avg_latency_ms": 1e3 * res[name]["avg_latency_s"],
                                     "failure_rate": res[name]["failure_rate"]})
        print()
        print(format_table(rows, title="Fig. 6: average latency vs base-station density and the twins' mean "
                                       "estimation error (N = 5)"))
        results["density"] = rows

    # ------------------------------------------------------------------ Fig. 8 and 9: speed x beta, cost
    if "speed" in sections:
        natural_env = Environment(base, seed=args.seed)
        natural = float(np.mean([natural_env.episode(k, "test").journeys.mean_speed() for k in range(3)]))
        rows, cost_rows = [], []
        for speed in preset["speeds"]:
            factor = speed / max(natural, 1e-6)
            for beta in preset["betas"]:
                cfg = base.with_(trajectory__speed_factor=factor, migration__budget_rate=beta)
                res = evaluate(cfg, preset["episodes"])
                for name in POLICIES:
                    if name in res:
                        rows.append({"speed_mps": res["_speed_mps"], "beta": beta, "policy": name,
                                     "migration_rate": res[name]["migration_rate"],
                                     "budget_met": res[name]["budget_met"],
                                     "avg_latency_ms": 1e3 * res[name]["avg_latency_s"]})
            for n in (5, 10):
                res = evaluate(base.with_(candidates=n, trajectory__speed_factor=factor), 1)
                m = res["nearest_first"]
                km = res["_speed_mps"] * base.trajectory.slot_s * m["slots"] / 1000.0
                cost_rows.append({"speed_mps": res["_speed_mps"], "N": n,
                                  "cost_with_twins": m["system_cost_twin"], "cost_without_twins": m["system_cost_direct"],
                                  "with_twins_per_km": m["system_cost_twin"] / km,
                                  "without_twins_per_km": m["system_cost_direct"] / km})
        print()
        print(format_table(rows, title="Fig. 8: migration rate vs speed and beta (N = 5)"))
        print()
        print(format_table(cost_rows, title="Fig. 9: system cost of state queries per journey (100 slots) and per km "
                                            "travelled, with the twins and querying every candidate"))
        results["speed"] = rows
        results["system_cost"] = cost_rows

    # ------------------------------------------------------------------ Algorithm 2: online with the pool
    if "online" in sections and 5 in agents:
        import copy

        cfg = base.with_(candidates=5)
        env = Environment(cfg, seed=args.seed)
        frozen = agents[5]
        online = OnlineAgent(copy.deepcopy(frozen), cfg.migration.cost, TrainConfig(actor_lr=3e-5, critic_lr=3e-4))
        rows, pool = [], 0
        for k in range(preset["online_rounds"]):
            ep = env.episode(1000 + k, "test")
            r_online = rollout(ep, online)
            fixed = rollout(ep, ActorCriticPolicy(frozen, cfg.migration.cost)).metrics()
            plan, _ = oracle_plan(ep)
            orc = rollout(ep, plan).metrics()["avg_latency_s"]
            m = r_online.metrics()
            pool += online.record(r_online)
            rows.append({"journey": k, "frozen_ms": 1e3 * fixed["avg_latency_s"], "online_ms": 1e3 * m["avg_latency_s"],
                         "oracle_ms": 1e3 * orc, "online_vs_oracle": m["avg_latency_s"] / orc, "pool": pool})
            online.retrain(updates=300, batch=512)
        print()
        print(format_table(rows, title="Algorithm 2: the trained agent deciding greedily in the real environment, "
                                       "retrained from its training pool after every journey"))
        results["online"] = rows

    results["seconds"] = time.perf_counter() - started
    path = write_results("offloading", results, out_dir)
    if not args.no_plots:
        _plots(results, meta, out_dir)
    print(f"\nwrote {path} ({results['seconds']:.0f} s)")
    return 0 if ok else 1


def _describe(cfg) -> dict:
    from dataclasses import asdict

    return asdict(cfg)


def _plots(results: dict, meta: dict, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    styles = {"nearest_first": "tab:red", "greedy": "tab:orange", "drift_plus_penalty": "tab:purple",
              "actor_critic": "tab:blue", "oracle": "k"}
    dashes = ["-", "--", ":", "-."]

    def lines(ax, rows, x, y, group, scale=1.0, policies=POLICIES, once=()):
        groups = sorted({r[group] for r in rows})
        for gi, g in enumerate(groups):
            for name in policies:
                if name in once and gi > 0:
                    continue
                pts = sorted((r[x], r[y]) for r in rows if r[group] == g and r["policy"] == name)
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, np.array(ys) * scale, dashes[gi % len(dashes)], color=styles[name], marker="o",
                            ms=3, label=f"{name}, {group}={g:g}")
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(out_dir / name, dpi=120)
        plt.close(fig)

    training = meta.get("training", {})
    if training:
        fig, ax = plt.subplots(figsize=(6, 4))
        for n, log in sorted(training.items(), key=lambda kv: int(kv[0])):
            r = np.array(log["mean_reward"])
            k = max(1, len(r) // 40)
            smooth = np.convolve(r, np.ones(k) / k, mode="valid")
            ax.plot(np.arange(len(smooth)) + k - 1, smooth, label=f"N={n}")
        ax.set_xlabel("training episode (Algorithm 1; pre-training first)")
        ax.set_ylabel("mean reward per user-slot (twin of the system)")
        ax.set_ylim(bottom=max(ax.get_ylim()[0], -10))
        ax.grid(alpha=0.3)
        ax.legend()
        save(fig, "offloading_fig4_training.png")
    if "users" in results:
        for key, ylabel, name in (("avg_latency_ms", "average latency (ms)", "offloading_fig5_latency_users.png"),
                                  ("failure_rate", "task failure rate", "offloading_fig7_failure_users.png")):
            fig, ax = plt.subplots(figsize=(6, 4))
            lines(ax, results["users"], "users", key, "N", once=("nearest_first",))
            ax.set_ylabel(ylabel)
            save(fig, name)
    if "density" in results:
        fig, ax = plt.subplots(figsize=(6, 4))
        lines(ax, results["density"], "bs_per_km2", "avg_latency_ms", "twin_error_ghz",
              policies=("nearest_first", "actor_critic", "oracle"))
        ax.set_ylabel("average latency (ms)")
        save(fig, "offloading_fig6_latency_density.png")
    if "speed" in results:
        fig, ax = plt.subplots(figsize=(6, 4))
        lines(ax, results["speed"], "speed_mps", "migration_rate", "beta",
              policies=("nearest_first", "greedy", "actor_critic", "oracle"), once=("nearest_first", "greedy"))
        for beta in sorted({r["beta"] for r in results["speed"]}):
            ax.axhline(beta, color="0.6", lw=0.8)
        ax.set_ylabel("service migration rate (grey: the budgets beta)")
        save(fig, "offloading_fig8_migration_speed.png")
    if "system_cost" in results:
        fig, ax = plt.subplots(figsize=(6, 4))
        for gi, n in enumerate(sorted({r["N"] for r in results["system_cost"]})):
            pts = sorted((r["speed_mps"], r["with_twins_per_km"], r["without_twins_per_km"])
                         for r in results["system_cost"] if r["N"] == n)
            xs, tw, dr = zip(*pts, strict=True)
            ax.plot(xs, tw, dashes[gi], color="tab:blue", marker="o", ms=3, label=f"with twins, N={n}")
            ax.plot(xs, dr, dashes[gi], color="tab:red", marker="o", ms=3, label=f"without twins, N={n}")
        ax.set_xlabel("speed (m/s)")
        ax.set_ylabel("state-query cost per km travelled")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        save(fig, "offloading_fig9_cost_speed.png")
