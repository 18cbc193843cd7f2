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
the latency budget), at most ``max_vehicles`` of them, and decides a priority score per vehicle; the tasks
are admitted in the order of the scores while the admitted ones can all meet their deadlines, and the
admitted set gets the exact shares of the convex core.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mobility_twin_models.allocation import equations as eq
from mobility_twin_models.allocation.config import NORMAL, Regime, SiteConfig
from mobility_twin_models.allocation.errors import AllocationError
from mobility_twin_models.allocation.exact import (
    ServerProblem,
    server_exact,
    weighted_square_root,
)


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
    """``slots`` slots of one server's cell, drawn from ``seed``: per slot a :class:`ServerProblem` as it is
    (:meth:`problem`) and as the twin predicts it when it decides (:meth:`predicted`: the same tasks, server and
    distances, the uplinks without the regime's ``unseen_loss_db``). Policies decide on the prediction; what
    they achieve is scored on the slot as it is; the per-slot exact reference solves the slot as it is."""

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
        self.predictions: list[ServerProblem] = []
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
            unseen = 10.0 ** (-regime.unseen_loss_db / 10.0)
            size, cycles, deadline = task.draw(rng, n)
            for out, factor in ((self.problems, unseen), (self.predictions, 1.0)):
                out.append(ServerProblem(size, cycles, deadline, eq.spectral_efficiency(sinr * factor),
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
        """Slot ``t`` as it is."""
        return self.problems[t]

    def predicted(self, t: int) -> ServerProblem:
        """Slot ``t`` as the twin predicts it when it decides."""
        return self.predictions[t]


# ------------------------------------------------------------------------------------------------ learner's view


def hardness(problem: ServerProblem) -> np.ndarray:
    """``(A_i + B_i) / D_i``: 1 means the task just makes its deadline with the whole server and band."""
    budget = problem.budget_s
    return np.where(budget > 0, (problem.upload_s + problem.compute_s) / np.where(budget > 0, budget, 1.0), np.inf)


#: relative margin below the feasibility bound at which :meth:`SiteFeatures.admit` admits a set
ADMISSION_MARGIN = 1e-12


class SiteFeatures:
    """Observation and action of a learner for one server's slot, as the twin predicts it.

    Observation (``5 K + 2``, ``K = max_vehicles``, feature-major as :class:`~.agent.TaskLayout` has it): for
    the ``K`` easiest tasks (by :func:`hardness`, easiest first), whether the slot holds a task,
    ``A_i / D_i`` and ``B_i / D_i`` (clipped to 2), ``gamma_i / 0.25 s`` and the predicted spectral efficiency
    over 10 bit/s/Hz; then the number of tasks over ``K`` and the server's frequency over 25 GHz.

    Action (``2 K`` in [-1, 1]): per slot a *priority* (the first ``K``) and an *uplink correction* (the next
    ``K``): the learner decides which tasks the server takes on and how much longer than the twin predicts
    each upload will take; the twin computes the shares exactly:

    1. **correction**: task ``i``'s upload time on the whole band is taken as ``A_i 2^{c_i}``: the twin's
       prediction at ``c_i = 0``, from half to twice it (no correction sits inside the range, not at its end,
       so that the actor's tanh does not saturate where the twin is right and stay there when it is not);
    2. **admission**: the tasks are considered in decreasing order of their priorities (ties in the order the
       vehicles came, never the slots' order, which is by hardness), and a task is admitted if the admitted
       ones with it can all still meet their deadlines on some shares (the closed-form test of
       :func:`~mobility_twin_models.allocation.exact.spectral_radius`), else skipped;
    3. **shares**: the admitted tasks get the exact optimum of the convex core for that set (weights
       ``1 / gamma_i``, :func:`~mobility_twin_models.allocation.exact.weighted_square_root`), the others
       nothing. Tasks beyond the ``K`` easiest get nothing.

    So a decision never gives a task resources that the twin, corrected, predicts it will be late with, and
    where the twin's prediction is right and the corrections are off it is the per-slot exact reference's
    allocation for the set admitted. What is learned is the order of admission (an uninformed one loses
    10-20 % of the reference's successes on the benchmark's slots) and, where the twin's channel model is off,
    the correction of its uplinks.
    """

    TASK_FEATURES = 5
    CONTEXT = 2
    TASK_ACTIONS = 2

    def __init__(self, config: SiteConfig) -> None:
        self.config = config

    @property
    def k(self) -> int:
        return self.config.max_vehicles

    @property
    def obs_dim(self) -> int:
        return self.TASK_FEATURES * self.k + self.CONTEXT

    @property
    def act_dim(self) -> int:
        return self.TASK_ACTIONS * self.k

    @property
    def layout(self):
        from mobility_twin_models.allocation.agent import TaskLayout

        return TaskLayout(self.k, self.TASK_FEATURES, self.CONTEXT, self.TASK_ACTIONS)

    def order(self, problem: ServerProblem) -> np.ndarray:
        """Indices of the tasks a learner allocates among, easiest first (at most K)."""
        return np.argsort(hardness(problem), kind="stable")[:self.k]

    def encode(self, problem: ServerProblem) -> np.ndarray:
        k = self.k
        idx = self.order(problem)
        m = len(idx)
        budget = np.maximum(problem.budget_s[idx], 1e-6)
        obs = np.zeros(self.obs_dim, dtype=np.float32)
        obs[:m] = 1.0
        obs[k:k + m] = np.minimum(problem.upload_s[idx] / budget, 2.0)
        obs[2 * k:2 * k + m] = np.minimum(problem.compute_s[idx] / budget, 2.0)
        obs[3 * k:3 * k + m] = problem.deadline_s[idx] / 0.25
        obs[4 * k:4 * k + m] = problem.spectral_eff[idx] / 10.0
        obs[5 * k] = min(problem.n / k, 4.0)
        obs[5 * k + 1] = problem.cpu_hz / 25e9
        return obs

    def _actions(self, actions) -> np.ndarray:
        a = np.clip(np.atleast_2d(np.asarray(actions, dtype=float)), -1.0, 1.0)
        if a.ndim != 2 or a.shape[1] != self.act_dim:
            raise AllocationError(f"a site action has {self.act_dim} values, got {a.shape[-1]}")
        return a

    def upload_factor(self, actions, problem: ServerProblem) -> np.ndarray:
        """[B, N] the factor on each task's predicted upload time (1 for the tasks beyond the K easiest)."""
        a = self._actions(actions)
        idx = self.order(problem)
        out = np.ones((len(a), problem.n))
        out[:, idx] = 2.0 ** a[:, self.k:self.k + len(idx)]
        return out

    def admit(self, actions, problem: ServerProblem) -> np.ndarray:
        """[B, N] bool: the tasks each of the actions ``[B, 2K]`` admits (see the class docstring)."""
        a = self._actions(actions)
        idx = self.order(problem)
        admitted = np.zeros((len(a), problem.n), dtype=bool)
        admitted[:, idx] = self._decode_rows(a, *self._rows([problem], [idx], len(a)), shares=False)[0]
        return admitted

    def _rows(self, problems, orders, repeat: int = 1):
        """Per-row arrays ``[R, M]`` of the tasks in ``orders`` (each problem's K easiest, padded to the
        longest): upload and computation times at the full resources, latency budgets, deadlines, arrival
        indices and which entries hold a task. One problem repeated ``repeat`` times, or one row per problem."""
        m = max((len(o) for o in orders), default=0)
        out = [np.ones((len(problems), m)) for _ in range(4)] + [np.full((len(problems), m), np.iinfo(np.int64).max),
                                                                np.zeros((len(problems), m), dtype=bool)]
        for r, (p, o) in enumerate(zip(problems, orders, strict=True)):
            j = len(o)
            out[0][r, :j], out[1][r, :j] = p.upload_s[o], p.compute_s[o]
            out[2][r, :j], out[3][r, :j] = p.budget_s[o], p.deadline_s[o]
            out[4][r, :j], out[5][r, :j] = o, True
        if repeat != 1:
            out = [np.repeat(v, repeat, axis=0) for v in out]
        return out

    def _decode_rows(self, a, upload, compute, budget, deadline, arrival, valid, *, shares: bool = True):
        """Admission and exact shares for rows of tasks (see the class docstring), the tasks of row ``r``
        being ``[r, :]`` of the arrays from :meth:`_rows` and the actions ``a [R, 2K]`` (slot ``j`` of the
        action for entry ``j``). Returns (admitted, bandwidth share, CPU share), each ``[R, M]``.

        The feasibility test of a set is the spectral radius of the 2x2 matrix of its sums
        ``[[sum A/D, sum sqrt(AB)/D], [sum sqrt(AB)/D, sum B/D]]``
        (:func:`~mobility_twin_models.allocation.exact.spectral_radius`); the sums of the admitted set are kept
        and each candidate adds its own terms, so a decision costs ``O(R K)``. A set is admitted below
        ``1 - ADMISSION_MARGIN``, so that the convex core, summing in another order, finds it feasible too."""
        n_rows, m = upload.shape
        admitted = np.zeros((n_rows, m), dtype=bool)
        bw, cpu = np.zeros((n_rows, m)), np.zeros((n_rows, m))
        if m == 0:
            return admitted, bw, cpu
        rows = np.arange(n_rows)
        A = upload * 2.0 ** a[:, self.k:self.k + m]  # the corrected upload times
        usable = valid & (budget > 0)
        Dw = np.where(usable, budget, 1.0)
        D = Dw * (1.0 - 1e-9)  # the margin of weighted_square_root
        # decreasing priority, ties by arrival (the index in the problem), never the slots' order
        order = np.lexsort((arrival, -np.where(valid, a[:, :m], -np.inf)), axis=-1)
        ta, tb = np.take_along_axis(A / D, order, axis=1), np.take_along_axis(compute / D, order, axis=1)
        tc = np.take_along_axis(np.sqrt(A * compute) / D, order, axis=1)
        use = np.take_along_axis(usable, order, axis=1)
        sa, sb, sc = np.zeros(n_rows), np.zeros(n_rows), np.zeros(n_rows)
        for j in range(m):
            na, nb, nc = sa + ta[:, j], sb + tb[:, j], sc + tc[:, j]
            rho = 0.5 * (na + nb) + np.sqrt(0.25 * (na - nb) ** 2 + nc * nc)
            ok = use[:, j] & (rho < 1.0 - ADMISSION_MARGIN)
            admitted[rows, order[:, j]] = ok
            sa, sb, sc = np.where(ok, na, sa), np.where(ok, nb, sb), np.where(ok, nc, sc)
        some = admitted.any(axis=1)
        if shares and some.any():
            sol = weighted_square_root(A[some], compute[some], Dw[some], 1.0 / deadline[some], admitted[some])
            ok = sol.feasible[:, None]  # always, for the sets admitted
            bw[some], cpu[some] = np.where(ok, sol.x, 0.0), np.where(ok, sol.y, 0.0)
        return admitted, bw, cpu

    def decode_batch(self, actions, problem: ServerProblem) -> tuple[np.ndarray, np.ndarray]:
        """(bandwidth share [B, N], CPU share [B, N]) of actions ``[B, 2K]``."""
        a = self._actions(actions)
        idx = self.order(problem)
        bw, cpu = np.zeros((len(a), problem.n)), np.zeros((len(a), problem.n))
        _, bw[:, idx], cpu[:, idx] = self._decode_rows(a, *self._rows([problem], [idx], len(a)))
        return bw, cpu

    def decode_many(self, actions, problems) -> list[tuple[np.ndarray, np.ndarray]]:
        """(bandwidth share [N_s], CPU share [N_s]) of each problem ``s`` from its action ``actions[s]``
        (``[S, 2K]``), decoded together (one admission loop and one convex solve for a whole site)."""
        a = self._actions(actions)
        if len(a) != len(problems):
            raise AllocationError(f"{len(a)} actions for {len(problems)} problems")
        orders = [self.order(p) for p in problems]
        _, bw, cpu = self._decode_rows(a, *self._rows(problems, orders))
        out = []
        for r, (p, o) in enumerate(zip(problems, orders, strict=True)):
            b, c = np.zeros(p.n), np.zeros(p.n)
            b[o], c[o] = bw[r, :len(o)], cpu[r, :len(o)]
            out.append((b, c))
        return out

    def decode(self, action: np.ndarray, problem: ServerProblem) -> tuple[np.ndarray, np.ndarray]:
        """(bandwidth share [N], CPU share [N]) of every task of the slot, from one action ``[2K]``."""
        a = np.asarray(action, dtype=float)
        if a.shape != (self.act_dim,):
            raise AllocationError(f"a site action has {self.act_dim} values, got {a.shape}")
        bw, cpu = self.decode_batch(a[None, :], problem)
        return bw[0], cpu[0]

    def emulator(self, problem: ServerProblem, outcome: ServerProblem | None = None
                 ) -> Callable[[np.ndarray], np.ndarray]:
        """The twin's model of this slot: actions [B, 2K] -> rewards [B] (mean task utility). The actions are
        decoded on ``problem`` (what the twin predicted when it decided) and scored on ``outcome`` (the slot
        as measured afterwards; default ``problem``)."""
        scored = problem if outcome is None else outcome

        def emulate(actions: np.ndarray) -> np.ndarray:
            bw, cpu = self.decode_batch(actions, problem)
            if problem.n == 0:
                return np.zeros(len(bw))
            return scored.utility(bw, cpu).mean(axis=-1)
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
