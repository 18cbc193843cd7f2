r"""The vehicular setting: one edge server of a site sharing its CPU and its cell's uplink among the vehicles
offloading sends to it, every slot, with the DITEN tasks of Table II.

The trace (:class:`SiteTrace`) is the world the twin mirrors, drawn once per seed so that every policy
sees the same slots:

* **users join and leave**: vehicles enter the cell (Poisson, ``arrival_per_slot`` scaled by the regime) and
  cross it on a straight chord at a constant speed (5-20 m/s), leaving at the far edge;
* **channels change with mobility**: the uplink SINR follows the vehicle's distance to the antenna (path
  loss exponent 4, DITEN eq. 6 with the other cells' vehicles as a mean interference power) and a log-normal
  shadowing that decorrelates as it moves (AR(1) per slot);
* **a server slows down**: the regime's ``cpu_scale`` of the server's frequency (drawn once in 15-25 GHz);
* every vehicle offloads one task per slot (DITEN: "users offload computing tasks ... every time slot"):
  size, cycles and deadline drawn from Table II.

The regime follows a schedule ``((start_slot, Regime), ...)``.

A learner sees the server's slot through :class:`SiteFeatures`: the vehicles sorted by how hard their task
is (``(A_i + B_i) / D_i``: upload time on the whole band plus computation time on the whole server, over
the latency budget), at most ``max_vehicles`` of them, and decides two logits per vehicle (bandwidth, CPU).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mobility_twin_models.allocation import equations as eq
from mobility_twin_models.allocation.config import NORMAL, Regime, SiteConfig
from mobility_twin_models.allocation.errors import AllocationError
from mobility_twin_models.allocation.exact import ServerProblem, server_exact, weighted_square_root


@dataclass(frozen=True)
class SlotOutcome:
    """What a server's allocation does in one slot: per task, then the slot's summary."""

    latency_s: np.ndarray  # [N] uncapped (inf for a task given nothing)
    success: np.ndarray  # [N] bool
    utility: np.ndarray  # [N]

    @property
    def n(self) -> int:
        return len(self.latency_s)

    @property
    def reward(self) -> float:
        """Mean task utility (0 with no task)."""
        return float(self.utility.mean()) if self.n else 0.0


def slot_outcome(problem: ServerProblem, bandwidth_share: np.ndarray, cpu_share: np.ndarray) -> SlotOutcome:
    lat = problem.latency(bandwidth_share, cpu_share)
    return SlotOutcome(lat, lat <= problem.deadline_s, eq.task_utility(lat, problem.deadline_s, problem.latency_weight))


def regime_at(schedule: Sequence[tuple[int, Regime]], slot: int) -> Regime:
    out = schedule[0][1]
    for start, regime in schedule:
        if slot >= start:
            out = regime
    return out


def validate_regimes(schedule) -> None:
    ok = isinstance(schedule, tuple | list) and len(schedule) >= 1 and all(
        isinstance(p, tuple | list) and len(p) == 2 and isinstance(p[0], int) and isinstance(p[1], Regime)
        for p in schedule)
    ok = ok and schedule[0][0] == 0 and all(b[0] > a[0] for a, b in itertools.pairwise(schedule))
    if not ok:
        raise AllocationError(f"regimes must be ((0, Regime), (start, Regime), ...) with increasing starts, "
                              f"got {schedule!r}")


class SiteTrace:
    """``slots`` slots of one server's cell, drawn from ``seed``: per slot a :class:`ServerProblem`."""

    def __init__(self, config: SiteConfig, slots: int, regimes: Sequence[tuple[int, Regime]] = ((0, NORMAL),),
                 seed: int = 0) -> None:
        if not (isinstance(slots, int) and slots >= 1):
            raise AllocationError(f"slots must be an integer >= 1, got {slots!r}")
        validate_regimes(regimes)
        self.config = config
        self.regimes = tuple(regimes)
        rng = np.random.default_rng(seed)
        self.server_hz = float(rng.uniform(*config.server_freq_hz))
        c, r, task = config, config.radio, config.task
        rho = c.shadowing_persistence
        innovation = c.shadowing_db * np.sqrt(max(0.0, 1.0 - rho * rho))
        vehicles: list[dict] = []
        next_id = 0
        self.problems: list[ServerProblem] = []
        self.vehicle_ids: list[np.ndarray] = []
        self.regime_names: list[str] = []
        for t in range(slots):
            regime = regime_at(self.regimes, t)
            for _ in range(rng.poisson(c.arrival_per_slot * regime.arrival_scale)):
                h = rng.uniform(0.0, 0.95 * c.coverage_radius_m)
                half = np.sqrt(c.coverage_radius_m ** 2 - h * h)
                vehicles.append({"id": next_id, "h": h, "x": -half, "end": half,
                                 "v": rng.uniform(*c.speed_mps) * c.slot_s, "p": rng.uniform(*r.tx_power_w),
                                 "shadow": rng.normal(0.0, c.shadowing_db)})
                next_id += 1
            n = len(vehicles)
            d = np.array([max(c.min_distance_m, np.hypot(v["x"], v["h"])) for v in vehicles])
            p = np.array([v["p"] for v in vehicles])
            shadow = np.array([v["shadow"] for v in vehicles])
            gain = d ** (-r.path_loss_exponent) * 10.0 ** (-(shadow + regime.extra_loss_db) / 10.0)
            sinr = p * gain / (r.noise_w + c.interference_w)
            size, cycles, deadline = task.draw(rng, n)
            self.problems.append(ServerProblem(size, cycles, deadline, eq.spectral_efficiency(sinr),
                                               c.wired_s_per_m * d, r.bandwidth_hz, self.server_hz * regime.cpu_scale,
                                               c.latency_weight))
            self.vehicle_ids.append(np.array([v["id"] for v in vehicles], dtype=np.int64))
            self.regime_names.append(regime.name)
            # move on: vehicles advance along their chords, shadowing decorrelates, those past the edge leave
            for v in vehicles:
                v["x"] += v["v"]
                v["shadow"] = rho * v["shadow"] + rng.normal(0.0, innovation)
            vehicles = [v for v in vehicles if v["x"] <= v["end"]]

    def __len__(self) -> int:
        return len(self.problems)

    def problem(self, t: int) -> ServerProblem:
        return self.problems[t]


# ------------------------------------------------------------------------------------------------ learner's view


def hardness(problem: ServerProblem) -> np.ndarray:
    """``(A_i + B_i) / D_i``: 1 means the task just makes its deadline with the whole server and band."""
    budget = problem.budget_s
    return np.where(budget > 0, (problem.upload_s + problem.compute_s) / np.where(budget > 0, budget, 1.0), np.inf)


class SiteFeatures:
    """Observation and action of a learner for one server's slot.

    Observation (``4 K + 2``, ``K = max_vehicles``): for the ``K`` easiest tasks (by :func:`hardness`, easiest
    first), whether the slot holds a task, ``A_i / D_i`` and ``B_i / D_i`` (clipped to 2) and ``gamma_i / 0.25 s``;
    then the number of tasks over ``K`` and the server's frequency over 25 GHz.

    Action (``2 K`` in [-1, 1]): bandwidth logits, then CPU logits; the shares are the softmax of
    ``temperature * action`` over the slots that hold a task. Tasks beyond the ``K`` easiest get nothing.

    Decoding ends with the twin's *deadline shield*: while a task is predicted late on its shares, the one
    latest relative to its deadline is given nothing and its shares go to the others in proportion to
    theirs (the twin does not spend a server on a task it predicts will be dropped at its deadline).
    """

    def __init__(self, config: SiteConfig, temperature: float, *, shield: bool = True) -> None:
        self.config = config
        self.temperature = temperature
        self.shield = shield

    @property
    def k(self) -> int:
        return self.config.max_vehicles

    @property
    def obs_dim(self) -> int:
        return 4 * self.k + 2

    @property
    def act_dim(self) -> int:
        return 2 * self.k

    def order(self, problem: ServerProblem) -> np.ndarray:
        """Indices of the tasks a learner allocates among, easiest first (at most K)."""
        return np.argsort(hardness(problem), kind="stable")[:self.k]

    def encode(self, problem: ServerProblem) -> np.ndarray:
        k = self.k
        idx = self.order(problem)
        m = len(idx)
        budget = np.maximum(problem.budget_s[idx], 1e-6)
        obs = np.zeros(4 * k + 2, dtype=np.float32)
        obs[:m] = 1.0
        obs[k:k + m] = np.minimum(problem.upload_s[idx] / budget, 2.0)
        obs[2 * k:2 * k + m] = np.minimum(problem.compute_s[idx] / budget, 2.0)
        obs[3 * k:3 * k + m] = problem.deadline_s[idx] / 0.25
        obs[4 * k] = min(problem.n / k, 4.0)
        obs[4 * k + 1] = problem.cpu_hz / 25e9
        return obs

    def decode(self, action: np.ndarray, problem: ServerProblem) -> tuple[np.ndarray, np.ndarray]:
        """(bandwidth share [N], CPU share [N]) of every task of the slot."""
        a = np.clip(np.asarray(action, dtype=float).reshape(-1), -1.0, 1.0)
        if a.shape != (2 * self.k,):
            raise AllocationError(f"a site action has {2 * self.k} values, got {a.shape}")
        idx = self.order(problem)
        bw, cpu = np.zeros(problem.n), np.zeros(problem.n)
        if len(idx) == 0:
            return bw, cpu
        bw[idx] = _softmax(self.temperature * a[:len(idx)])
        cpu[idx] = _softmax(self.temperature * a[self.k:self.k + len(idx)])
        if self.shield:
            bw, cpu = shield_deadlines(problem, bw, cpu)
        return bw, cpu

    def emulator(self, problem: ServerProblem) -> Callable[[np.ndarray], np.ndarray]:
        """The twin's model of this slot: actions [B, 2K] -> rewards [B]."""
        def emulate(actions: np.ndarray) -> np.ndarray:
            return np.array([slot_outcome(problem, *self.decode(a, problem)).reward for a in np.atleast_2d(actions)])
        return emulate


def shield_deadlines(problem: ServerProblem, bandwidth_share: np.ndarray, cpu_share: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Drop the task latest relative to its deadline while any task with a share is predicted late, giving
    its shares to the others in proportion."""
    bw, cpu = bandwidth_share.copy(), cpu_share.copy()
    up, comp, deadline = problem.upload_s, problem.compute_s, problem.deadline_s
    for _ in range(problem.n):
        held = (bw > 0) & (cpu > 0)
        lat = problem.wired_s + np.divide(up, bw, out=np.full(problem.n, np.inf), where=held) \
            + np.divide(comp, cpu, out=np.full(problem.n, np.inf), where=held)
        ratio = np.where(held, lat / deadline, 0.0)
        worst = int(np.argmax(ratio))
        if ratio[worst] <= 1.0:
            break
        bw[worst] = cpu[worst] = 0.0
        total_bw, total_cpu = bw.sum(), cpu.sum()
        if total_bw > 0:
            bw /= total_bw
        if total_cpu > 0:
            cpu /= total_cpu
    return bw, cpu


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


# ------------------------------------------------------------------------------------------------ benchmarks


def equal_share(problem: ServerProblem) -> tuple[np.ndarray, np.ndarray]:
    """The offloading node's allocation: every task gets ``1 / N`` of the band and of the server (DITEN's
    processor sharing ``f = F / (1 + m)``)."""
    n = problem.n
    share = np.full(n, 1.0 / n) if n else np.zeros(0)
    return share, share.copy()


def equal_share_shielded(problem: ServerProblem) -> tuple[np.ndarray, np.ndarray]:
    """Equal shares followed by the twin's deadline shield (an ablation: what the shield alone buys)."""
    return shield_deadlines(problem, *equal_share(problem))


def exact_shares(problem: ServerProblem) -> tuple[np.ndarray, np.ndarray]:
    """The per-slot exact reference (:func:`~mobility_twin_models.allocation.exact.server_exact`)."""
    ex = server_exact(problem)
    return ex.bandwidth_share, ex.cpu_share


def greedy_convex(problem: ServerProblem) -> tuple[np.ndarray, np.ndarray]:
    """A rule of ours: serve every task, and while the convex core (weights ``1 / gamma_i``) finds no shares
    meeting all the deadlines of the served ones, stop serving the hardest (:func:`hardness`). One fixed point
    per dropped task instead of the exact reference's enumeration of subsets; on the benchmark's slots it
    reaches the exact reference's utility (reported side by side)."""
    h = hardness(problem)
    D = np.where(problem.budget_s > 0, problem.budget_s, 1.0)
    served = problem.budget_s > 0
    a, b = problem.upload_s / D, problem.compute_s / D
    # each resource alone must fit (necessary): drop the hardest until it does, before any fixed point
    while served.any() and (a[served].sum() >= 1.0 or b[served].sum() >= 1.0):
        served[int(np.argmax(np.where(served, h, -np.inf)))] = False
    while served.any():
        sol = weighted_square_root(problem.upload_s[None], problem.compute_s[None], D[None],
                                   (1.0 / problem.deadline_s)[None], served[None])
        if sol.feasible[0]:
            return sol.x[0], sol.y[0]
        served[int(np.argmax(np.where(served, h, -np.inf)))] = False
    return np.zeros(problem.n), np.zeros(problem.n)
