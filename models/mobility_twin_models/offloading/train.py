"""Train the DITEN actor-critic agents on the twin of the system and write the shipped checkpoint.

    python -m mobility_twin_models.offloading.train                       # N = 5 and 10, writes the shipped offloading_actor_critic.pt
    python -m mobility_twin_models.offloading.train --candidates 5 --joint-episodes 50 --out /tmp/ac.pt   # a quick one

Each agent is trained by Algorithm 1 (:func:`mobility_twin_models.offloading.training.train`) on journeys of the
``train`` half of the busy hour, with latencies from the twins' view; ``--randomise`` draws, per
training journey, the number of users, the speed, beta, the base-station density and the twins' mean
deviation from the ranges the benchmark sweeps, so that one agent serves every sweep point. The
checkpoint records the command, the configuration and the training curve. Seeded: the same command on
the same machine gives the same weights (torch CPU kernels are deterministic for these layers).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

SWEEP_RANGES = {
    "users": (100, 400),
    "speed_factor": (1.0, 8.0),
    "budget_rate": (0.05, 0.4),
    "density": (20.0, 60.0),
    "deviation_mean_hz": (-0.5e9, 1.5e9),
}


def training_episodes(base, *, seed: int, randomise: bool):
    """``i -> Episode`` of the twin of the system (train split), optionally with randomised settings."""
    from mobility_twin_models.offloading.env import Environment

    envs: dict = {}

    def make(i: int):
        cfg = base
        if randomise:
            rng = np.random.default_rng([seed, 0xD0, i])
            lo, hi = SWEEP_RANGES["users"]
            cfg = cfg.with_(
                users=int(rng.integers(lo, hi + 1)),
                trajectory__speed_factor=float(np.exp(rng.uniform(*np.log(SWEEP_RANGES["speed_factor"])))),
                migration__budget_rate=float(rng.uniform(*SWEEP_RANGES["budget_rate"])),
                network__bs_density_per_km2=float(rng.choice([20.0, 30.0, 40.0, 50.0, 60.0])),
                twin__deviation_mean_hz=float(rng.uniform(*SWEEP_RANGES["deviation_mean_hz"])),
            )
        key = (cfg.network, cfg.twin, cfg.load.background_mean)
        if key not in envs:
            envs[key] = Environment(cfg, seed=seed)
        env = envs[key]
        if env.config != cfg:
            env = Environment(cfg, seed=seed, network=env.network)
        return env.episode(i, "train")

    return make


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mobility_twin_models.offloading.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--candidates", type=int, nargs="+", default=[5, 10], help="N values to train (default 5 10)")
    p.add_argument("--users", type=int, default=100, help="users per training journey (default 100)")
    p.add_argument("--pretrain-episodes", type=int, default=20, help="K1 (default 20)")
    p.add_argument("--joint-episodes", type=int, default=200, help="K2 (default 200)")
    p.add_argument("--actor", choices=("flat", "shared"), default="shared", help="actor network (default shared)")
    p.add_argument("--actor-update", choices=("td", "advantage", "expected"), default="expected")
    p.add_argument("--hidden", default="64,64,32", help="hidden sizes of both networks (default 64,64,32)")
    p.add_argument("--randomise", action="store_true", help="randomise the sweep settings per training journey")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--out", type=Path, default=None, help="checkpoint path (default: the shipped one)")
    args = p.parse_args(argv)

    import torch

    from mobility_twin_models.offloading.agent import (
        DEFAULT_CHECKPOINT,
        ActorCritic,
        AgentSpec,
        save_checkpoint,
    )
    from mobility_twin_models.offloading.config import EnvConfig
    from mobility_twin_models.offloading.training import TrainConfig, train

    torch.set_num_threads(args.threads)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    if len(hidden) != 3:
        p.error(f"--hidden needs three sizes (the paper's three hidden layers), got {args.hidden!r}")
    tc = TrainConfig(pretrain_episodes=args.pretrain_episodes, joint_episodes=args.joint_episodes,
                     actor_update=args.actor_update, actor_lr=1e-4, critic_lr=1e-3, pretrain_stay=0.8,
                     seed=args.seed)
    agents, logs = {}, {}
    for n in args.candidates:
        base = EnvConfig(users=args.users, candidates=n)
        agent = ActorCritic(AgentSpec(n, actor_hidden=hidden, critic_hidden=hidden, actor_kind=args.actor),
                            seed=args.seed)
        start = time.perf_counter()

        def progress(i: int, phase: str, r: float, n=n, start=start) -> None:
            if i % 20 == 0:
                print(f"N={n} episode {i:4d} {phase:8s} mean reward {r:8.3f}  {time.perf_counter() - start:6.0f} s",
                      flush=True)

        log = train(agent, training_episodes(base, seed=args.seed, randomise=args.randomise), tc, progress=progress)
        agents[n], logs[str(n)] = agent, log.to_dict()
        print(f"N={n}: trained in {log.seconds:.0f} s", flush=True)
    out = args.out or DEFAULT_CHECKPOINT
    meta = {
        "command": "python -m mobility_twin_models.offloading.train " + " ".join(sys.argv[1:] if argv is None else argv),
        "train_config": asdict(tc),
        "env_users": args.users,
        "randomise": args.randomise,
        "sweep_ranges": SWEEP_RANGES if args.randomise else {},
        "training": logs,
    }
    path = save_checkpoint(out, agents, meta)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} kB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
