r"""The exact per-update allocation: what the twin would decide if it solved every update's problem.

Both settings share one convex core. For a set ``S`` of users that are to be served, latencies of the form
``T_i = A_i / x_i + B_i / y_i`` (``x``, ``y`` the shares of two resources), budgets ``D_i`` and weights
``w_i > 0``:

.. math::
    \min_{x, y} \sum_{i \in S} w_i \left(\frac{A_i}{x_i} + \frac{B_i}{y_i}\right)
    \quad \text{s.t.} \quad \frac{A_i}{x_i} + \frac{B_i}{y_i} \le D_i,\ \sum_i x_i \le 1,\ \sum_i y_i \le 1.

The problem is convex (``1/x`` is convex on ``x > 0``). With multipliers ``mu_i >= 0`` of the latency
budgets and ``s_i = sqrt(w_i + mu_i)``, stationarity gives the *weighted square-root rule*

.. math::
    x_i = \frac{s_i \sqrt{A_i}}{\sum_k s_k \sqrt{A_k}}, \qquad y_i = \frac{s_i \sqrt{B_i}}{\sum_k s_k \sqrt{B_k}},
    \qquad T_i = \frac{\sqrt{A_i}\, S_A + \sqrt{B_i}\, S_B}{s_i},

and complementary slackness makes ``s`` the least fixed point of
``s_i = max(sqrt(w_i), (sqrt(A_i) S_A + sqrt(B_i) S_B) / D_i)`` (where the KKT conditions hold: the optimum,
since the problem is convex). The map is monotone, convex and piecewise linear in the two sums
``(S_A, S_B)``, so Newton's method on them climbs from ``s = sqrt(w)`` to the least fixed point in a few
exact steps. The map is ``max(sqrt(w), M s)`` with ``M`` of rank 2, and a fixed point exists, i.e. the
budgets can be met, iff the spectral radius of ``M`` is below 1: a closed-form feasibility test
(:func:`spectral_radius`). Without binding budgets it is the closed form ``x_i ∝ sqrt(w_i A_i)``.

The *discrete* part (which users are served; in the VR setting each served user's resolution) is
enumerated: ``(L + 1)^U`` combinations for ``U`` VR users and ``L`` levels (256 for the paper's 4 users
and 3 levels); for a server's tasks, every subset that passes the necessary condition
``sum_S A_i / D_i < 1`` and ``sum_S B_i / D_i < 1`` (grown by size, so that supersets of a set that fails
it are never visited). A user left out gets no resources and counts as late (QoE 0, a failed task).

:func:`vr_brute_force` and :func:`site_brute_force` search grids of shares directly on the equations of
:mod:`.equations`, for the tests on tiny cases.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mobility_twin_models.allocation import equations as eq
from mobility_twin_models.allocation.errors import AllocationError

#: Newton steps before a combination is declared infeasible (a few suffice: the map is piecewise linear)
MAX_ITERATIONS = 100
#: relative residual of the sums ``(S_A, S_B)`` below which the fixed point has converged
TOLERANCE = 1e-13


@dataclass(frozen=True)
class SquareRootSolution:
    """Solutions of a batch of problems ``[..., n]``: shares, latencies, feasibility, objective."""

    x: np.ndarray
    y: np.ndarray
    latency: np.ndarray  # A/x + B/y; 0 for users outside S
    feasible: np.ndarray  # [...]
    objective: np.ndarray  # [...] sum_S w T (inf where infeasible)
    iterations: int


def weighted_square_root(A, B, D, weight, served) -> SquareRootSolution:
    """Solve the convex core for a batch ``[..., n]`` (see the module docstring).

    Feasibility is decided in closed form: with ``u_i = (sqrt(A_i), sqrt(B_i)) / D_i`` and ``v_i = (sqrt(A_i),
    sqrt(B_i))``, the map ``s -> (sqrt(A) S_A + sqrt(B) S_B) / D`` is ``M s`` with ``M = sum_i u_i v_i^T`` of rank
    2, and the budgets of ``S`` can be met iff its spectral radius, the largest eigenvalue of the 2x2 matrix
    ``[[sum A/D, sum sqrt(AB)/D], [sum sqrt(AB)/D, sum B/D]]``, is below 1 (one task: ``(A + B) / D < 1``).
    The least fixed point is then found by Newton's method on the two sums ``(S_A, S_B)`` (the map is monotone,
    convex and piecewise linear, so Newton from below converges in a few exact steps).

    Args:
        A, B: work on each resource at the full resource (seconds); ``>= 0``.
        D: latency budget of each user (seconds, ``> 0``).
        weight: objective weight of each user (``> 0``).
        served: bool mask of ``S``; users outside get ``x = y = 0``.
    """
    A, B, D, w = (np.asarray(v, dtype=float) for v in (A, B, D, weight))
    served = np.asarray(served, dtype=bool)
    A, B, D, w, served = np.broadcast_arrays(A, B, D, w, served)
    shape = A.shape[:-1]
    n = A.shape[-1]
    A2, B2, D2, w2, m2 = (v.reshape(-1, n) for v in (A, B, D, w, served))
    sa, sb = np.sqrt(A2) * m2, np.sqrt(B2) * m2
    sw = np.sqrt(w2) * m2
    # the budgets are met with a relative margin of 1e-9, so that a tight user stays on time after rounding
    Dsafe = np.where(m2, D2, 1.0) * (1.0 - 1e-9)
    possible = spectral_radius(A2, B2, Dsafe, m2) < 1.0
    ua, ub = sa / Dsafe, sb / Dsafe
    SA, SB = np.sum(sa * sw, axis=1), np.sum(sb * sw, axis=1)  # the sums at s = sqrt(w): below the fixed point
    active = np.flatnonzero(possible & m2.any(axis=1))
    it = 0
    while active.size and it < MAX_ITERATIONS:
        it += 1
        sa_a, sb_a, ua_a, ub_a, sw_a, m_a = sa[active], sb[active], ua[active], ub[active], sw[active], m2[active]
        need = ua_a * SA[active, None] + ub_a * SB[active, None]
        bind = m_a & (need > sw_a)
        s_a = np.where(m_a, np.maximum(sw_a, need), 0.0)
        fa, fb = np.sum(sa_a * s_a, axis=1), np.sum(sb_a * s_a, axis=1)
        ra, rb = fa - SA[active], fb - SB[active]
        # Jacobian of (S_A, S_B) -> (F_A, F_B) on the binding users, and one Newton step (I - J) d = r
        j11 = np.sum(np.where(bind, sa_a * ua_a, 0.0), axis=1)
        j22 = np.sum(np.where(bind, sb_a * ub_a, 0.0), axis=1)
        j12 = np.sum(np.where(bind, sa_a * ub_a, 0.0), axis=1)
        det = (1.0 - j11) * (1.0 - j22) - j12 * j12
        SA[active] += ((1.0 - j22) * ra + j12 * rb) / det
        SB[active] += (j12 * ra + (1.0 - j11) * rb) / det
        done = (np.abs(ra) <= TOLERANCE * np.maximum(fa, 1e-300)) & (np.abs(rb) <= TOLERANCE * np.maximum(fb, 1e-300))
        active = active[~done]
    possible[active] = False  # not converged within the budget of iterations: treated as infeasible
    s = np.where(m2, np.maximum(sw, ua * SA[:, None] + ub * SB[:, None]), 0.0)
    SA = np.sum(s * sa, axis=1, keepdims=True)
    SB = np.sum(s * sb, axis=1, keepdims=True)
    count = np.maximum(m2.sum(axis=1, keepdims=True), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(SA > 0, s * sa / np.where(SA > 0, SA, 1.0), m2 / count)
        y = np.where(SB > 0, s * sb / np.where(SB > 0, SB, 1.0), m2 / count)
        lat = np.where(m2, np.where(A2 > 0, A2 / x, 0.0) + np.where(B2 > 0, B2 / y, 0.0), 0.0)
    feasible = possible & np.all(~m2 | (lat <= D2), axis=1)
    objective = np.where(feasible, np.sum(np.where(m2, w2 * lat, 0.0), axis=1), np.inf)
    return SquareRootSolution(x.reshape(*shape, n), y.reshape(*shape, n), lat.reshape(*shape, n),
                              feasible.reshape(shape), objective.reshape(shape), it)


def spectral_radius(A, B, D, served) -> np.ndarray:
    """``[...]`` the largest eigenvalue of ``[[sum A/D, sum sqrt(AB)/D], [sum sqrt(AB)/D, sum B/D]]`` over the
    served users of each row of ``[..., n]`` arrays: the budgets ``D`` of the served set can be met (some
    shares ``x``, ``y`` with ``A/x + B/y <= D``) iff it is below 1."""
    A, B, D, served = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (A, B, D)),
                                          np.asarray(served, dtype=bool))
    Dm = np.where(served, D, 1.0)
    a = np.sum(np.where(served, A / Dm, 0.0), axis=-1)
    b = np.sum(np.where(served, B / Dm, 0.0), axis=-1)
    c = np.sum(np.where(served, np.sqrt(A * B) / Dm, 0.0), axis=-1)
    return 0.5 * (a + b) + np.sqrt(0.25 * (a - b) ** 2 + c * c)


def best_combination(A, B, D, weight, served, gain, scale) -> tuple[int, SquareRootSolution, np.ndarray]:
    """The combination ``k`` (rows of ``[K, n]`` arrays) maximising ``gain_k - scale * objective_k``.

    Bound first: the unconstrained closed form (``s = sqrt(w)``) gives a lower bound on each objective, so
    an upper bound on each value, and the exact value wherever it already meets the budgets. Only the
    combinations whose bound beats the best exact value so far go through the fixed point.
    Returns ``(k, solution of the rows solved, value of every row)`` with ``value = -inf`` where infeasible
    or pruned; ``k = -1`` when no combination is feasible.
    """
    A, B, D, w, served = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (A, B, D, weight)),
                                             np.asarray(served, dtype=bool))
    gain = np.asarray(gain, dtype=float)
    closed = _closed_form(A, B, w, served)
    upper = gain - scale * np.sum(np.where(served, w * closed, 0.0), axis=1)
    done = np.all(~served | (closed <= D * (1.0 - 1e-9)), axis=1)
    value = np.where(done, upper, -np.inf)
    lower = value.max() if value.size else -np.inf
    rest = np.flatnonzero(~done & (upper > lower))
    if rest.size:
        sol = weighted_square_root(A[rest], B[rest], D[rest], w[rest], served[rest])
        value[rest] = np.where(sol.feasible, gain[rest] - scale * sol.objective, -np.inf)
    k = int(np.argmax(value)) if value.size and np.isfinite(value.max()) else -1
    return k, weighted_square_root(A[k:k + 1], B[k:k + 1], D[k:k + 1], w[k:k + 1], served[k:k + 1]) if k >= 0 \
        else None, value


def _closed_form(A, B, w, served) -> np.ndarray:
    """Latencies of the unconstrained optimum ``x_i ∝ sqrt(w_i A_i)``, ``y_i ∝ sqrt(w_i B_i)``: [K, n]."""
    sa, sb = np.sqrt(w * A) * served, np.sqrt(w * B) * served
    SA, SB = sa.sum(axis=1, keepdims=True), sb.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        # A / x = A SA / sqrt(w A) = sqrt(A / w) SA
        return np.where(served, np.sqrt(A / w) * SA + np.sqrt(B / w) * SB, 0.0)


# ------------------------------------------------------------------------------------------------ VR


@dataclass(frozen=True)
class VRDecision:
    """One DT update's allocation for ``U`` VR users: level index (0 = lowest), CPU share, bandwidth share."""

    level: np.ndarray  # [U] int
    cpu_share: np.ndarray  # [U]
    bandwidth_share: np.ndarray  # [U]

    def __post_init__(self) -> None:
        u = len(self.level)
        for name in ("cpu_share", "bandwidth_share"):
            value = np.asarray(getattr(self, name), dtype=float)
            if value.shape != (u,):
                raise AllocationError(f"{name} has shape {value.shape}, expected ({u},)")
            if np.any(~np.isfinite(value)) or np.any(value < 0) or value.sum() > 1.0 + 1e-6:
                raise AllocationError(f"{name} must be finite shares >= 0 summing to <= 1, got {value}")


@lru_cache(maxsize=16)
def _vr_combinations(users: int, levels: int) -> np.ndarray:
    """[K, U] option per user: -1 not served, else a level; all (L + 1)^U combinations."""
    return np.array(list(itertools.product(range(-1, levels), repeat=users)), dtype=np.int64)


@dataclass(frozen=True)
class VRProblem:
    """One DT update's allocation problem (what the local twin knows at that update).

    Args:
        attention: [U] attention of each user, in [0, 1].
        gop_bits: [U, L] GOP bits of each user at each level.
        cycles_per_bit: rendering cycles per GOP bit.
        cpu_hz: CPU available to the VR users.
        bandwidth_bps: downlink bandwidth available.
        score: [L] resolution score of each level.
        threshold_s, quality_weight, latency_weight: of the QoE.
    """

    attention: np.ndarray
    gop_bits: np.ndarray
    cycles_per_bit: float
    cpu_hz: float
    bandwidth_bps: float
    score: np.ndarray
    threshold_s: float
    quality_weight: float
    latency_weight: float

    def latencies(self, decision: VRDecision) -> tuple[np.ndarray, np.ndarray]:
        """(rendering, downloading) latency of each user, seconds."""
        bits = self.gop_bits[np.arange(len(decision.level)), decision.level]
        return (eq.rendering_latency(bits, self.cycles_per_bit, decision.cpu_share, self.cpu_hz),
                eq.downloading_latency(bits, decision.bandwidth_share, self.bandwidth_bps))

    def qoe(self, decision: VRDecision) -> np.ndarray:
        """[U] QoE of a decision (eq. in :mod:`.equations`)."""
        ren, dl = self.latencies(decision)
        quality = eq.perceived_quality(self.attention, self.score[decision.level])
        return eq.vr_qoe(ren + dl, quality, self.threshold_s, self.quality_weight, self.latency_weight)


@dataclass(frozen=True)
class VRExact:
    decision: VRDecision
    qoe: np.ndarray  # [U]
    mean_qoe: float


def vr_exact(problem: VRProblem) -> VRExact:
    """The decision with the highest mean QoE for this update, by enumeration of (served users, levels) and
    the convex core for the shares of each combination."""
    users, levels = problem.gop_bits.shape
    combos = _vr_combinations(users, levels)  # [K, U]
    served = combos >= 0
    lvl = np.maximum(combos, 0)
    bits = problem.gop_bits[np.arange(users)[None, :], lvl]  # [K, U]
    A = np.where(served, bits / problem.bandwidth_bps, 0.0)
    B = np.where(served, bits * problem.cycles_per_bit / problem.cpu_hz, 0.0)
    quality = eq.perceived_quality(problem.attention[None, :], problem.score[lvl])
    gain = np.where(served, problem.quality_weight * quality + problem.latency_weight, 0.0).sum(axis=1)
    k, sol, _ = best_combination(A, B, problem.threshold_s, 1.0, served, gain,
                                 problem.latency_weight / problem.threshold_s)
    # the empty combination (nobody served) is always feasible, so k >= 0
    decision = VRDecision(lvl[k].copy(), sol.y[0].copy(), sol.x[0].copy())
    q = problem.qoe(decision)
    return VRExact(decision, q, float(q.mean()))


def _simplex_grid(n: int, steps: int) -> np.ndarray:
    """[P, n] every share vector with entries in multiples of 1/steps summing to 1."""
    pts = [c for c in itertools.product(range(steps + 1), repeat=n - 1) if sum(c) <= steps]
    arr = np.array([(*c, steps - sum(c)) for c in pts], dtype=float)
    return arr / steps


def vr_brute_force(problem: VRProblem, steps: int = 40) -> float:
    """Best mean QoE over every level vector and every pair of share vectors on a grid of 1/steps (tiny U)."""
    users, levels = problem.gop_bits.shape
    grid = _simplex_grid(users, steps)  # [P, U]
    best = 0.0
    for lv in itertools.product(range(levels), repeat=users):
        lv = np.array(lv)
        bits = problem.gop_bits[np.arange(users), lv]
        ren = eq.rendering_latency(bits[None, :], problem.cycles_per_bit, grid, problem.cpu_hz)  # [P, U]
        dl = eq.downloading_latency(bits[None, :], grid, problem.bandwidth_bps)  # [P, U]
        quality = eq.perceived_quality(problem.attention, problem.score[lv])
        total = ren[:, None, :] + dl[None, :, :]  # [P cpu, P bw, U]
        q = eq.vr_qoe(total, quality, problem.threshold_s, problem.quality_weight, problem.latency_weight)
        best = max(best, float(q.mean(axis=-1).max()))
    return best


# ------------------------------------------------------------------------------------------------ vehicular


@dataclass(frozen=True)
class ServerProblem:
    """One slot of one edge server: the tasks of the vehicles it serves and the resources it shares.

    Args:
        size_bits, cycles, deadline_s: [N] the tasks (DITEN Table II).
        spectral_eff: [N] ``log2(1 + SINR)`` of each vehicle's uplink (bit/s/Hz).
        wired_s: [N] wired latency to the server (DITEN eq. 7).
        bandwidth_hz: uplink band of the cell.
        cpu_hz: frequency of the server available to the tasks.
        latency_weight: ``w_l`` of the utility.
    """

    size_bits: np.ndarray
    cycles: np.ndarray
    deadline_s: np.ndarray
    spectral_eff: np.ndarray
    wired_s: np.ndarray
    bandwidth_hz: float
    cpu_hz: float
    latency_weight: float

    @property
    def n(self) -> int:
        return len(self.size_bits)

    @property
    def upload_s(self) -> np.ndarray:
        """``A_i``: the upload time on the whole band."""
        return self.size_bits / (self.bandwidth_hz * self.spectral_eff)

    @property
    def compute_s(self) -> np.ndarray:
        """``B_i``: the computation time on the whole server."""
        return self.cycles / self.cpu_hz

    @property
    def budget_s(self) -> np.ndarray:
        """``D_i = gamma_i - psi d_i``."""
        return self.deadline_s - self.wired_s

    def latency(self, bandwidth_share, cpu_share) -> np.ndarray:
        return eq.task_latency(self.size_bits, self.cycles, self.spectral_eff, self.wired_s, bandwidth_share,
                               cpu_share, self.bandwidth_hz, self.cpu_hz)

    def utility(self, bandwidth_share, cpu_share) -> np.ndarray:
        """[N] utility of each task."""
        return eq.task_utility(self.latency(bandwidth_share, cpu_share), self.deadline_s, self.latency_weight)


@dataclass(frozen=True)
class ServerExact:
    bandwidth_share: np.ndarray  # [N]
    cpu_share: np.ndarray  # [N]
    served: np.ndarray  # [N] bool
    utility: np.ndarray  # [N]
    subsets: int  # subsets solved


def _candidate_subsets(a: np.ndarray, b: np.ndarray, max_subsets: int) -> list[tuple[int, ...]]:
    """Subsets passing ``sum a < 1 and sum b < 1``, grown by size from the feasible smaller ones."""
    n = len(a)
    level = [(i,) for i in range(n) if a[i] < 1.0 and b[i] < 1.0]
    out = list(level)
    while level and len(out) < max_subsets:
        nxt = []
        for sub in level:
            sa, sb = a[list(sub)].sum(), b[list(sub)].sum()
            for j in range(sub[-1] + 1, n):
                if sa + a[j] < 1.0 and sb + b[j] < 1.0:
                    nxt.append((*sub, j))
        out += nxt
        level = nxt
    if len(out) > max_subsets:
        raise AllocationError(f"the exact reference would solve more than max_subsets={max_subsets} subsets "
                              f"({n} tasks); raise it or split the server's tasks")
    return out


def server_exact(problem: ServerProblem, *, max_subsets: int = 200_000) -> ServerExact:
    """The shares with the highest total utility for this slot: enumeration of the served subset and the
    convex core with weights ``1 / gamma_i`` (utility is affine in ``T_i / gamma_i`` for a served task)."""
    n = problem.n
    if n == 0:
        empty = np.zeros(0)
        return ServerExact(empty, empty, np.zeros(0, dtype=bool), empty, 0)
    A, B, D = problem.upload_s, problem.compute_s, problem.budget_s
    ok = D > 0
    subsets = _candidate_subsets(np.where(ok, A / np.where(ok, D, 1.0), 2.0),
                                 np.where(ok, B / np.where(ok, D, 1.0), 2.0), max_subsets)
    if not subsets:
        zero = np.zeros(n)
        return ServerExact(zero, zero, np.zeros(n, dtype=bool), zero.copy(), 0)
    mask = np.zeros((len(subsets), n), dtype=bool)
    for k, sub in enumerate(subsets):
        mask[k, list(sub)] = True
    g = problem.deadline_s
    wl = problem.latency_weight
    gain = np.where(mask, 1.0 + wl * (1.0 - problem.wired_s / g), 0.0).sum(axis=1)
    k, sol, _ = best_combination(A[None, :], B[None, :], np.where(ok, D, 1.0)[None, :], (1.0 / g)[None, :], mask,
                                 gain, wl)
    if k < 0:
        zero = np.zeros(n)
        return ServerExact(zero, zero, np.zeros(n, dtype=bool), zero.copy(), len(subsets))
    bw, cpu = sol.x[0].copy(), sol.y[0].copy()
    return ServerExact(bw, cpu, mask[k].copy(), problem.utility(bw, cpu), len(subsets))


def server_brute_force(problem: ServerProblem, steps: int = 60) -> float:
    """Best total utility over every pair of share vectors on a grid of 1/steps (tiny N)."""
    grid = _simplex_grid(problem.n, steps)  # [P, N]
    lat = (eq.uplink_latency(problem.size_bits, grid[:, None, :], problem.bandwidth_hz, problem.spectral_eff)
           + problem.wired_s + eq.computation_latency(problem.cycles, grid[None, :, :], problem.cpu_hz))
    u = eq.task_utility(lat, problem.deadline_s, problem.latency_weight)
    return float(u.sum(axis=-1).max())
