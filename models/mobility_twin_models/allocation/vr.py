r"""The paper's VR setting: the exogenous DT trace, the fairness window, the twin's model of an update,
the observation and action of a learner, and the paper's benchmarks.

Per DT update ``t`` the users' twins report each user's attention ``a_u(t)`` (eye tracking) and the content
complexity ``m_u(t)`` of the user's scene (GOP bits ``m_u(t) * bitrate_r * gop_s`` at level ``r``); the
server's twin reports the CPU available. The local DTEC decides a level, a CPU share and a bandwidth share
per user (:class:`~mobility_twin_models.allocation.exact.VRDecision`); the outcome follows the equations of
:mod:`.equations`.

Exogenous processes (paper silent, see :class:`~mobility_twin_models.allocation.config.VRConfig`):

* attention: ``a_u(t) = sigmoid(z_u(t))``, ``z_u(t+1) = mu_u + delta(t) + phi (z_u(t) - mu_u - delta(t)) +
  sigma_z N(0, 1)``, with a mean ``mu_u ~ N(0, attention_bias)`` per user and a drift ``delta(t)`` from
  ``attention_schedule``;
* complexity: each user's scene lasts a geometric number of updates (mean ``scene_updates``) with a
  multiplier ``m ~ U(complexity) * scale(t)`` (``complexity_schedule``);
* CPU: ``cpu_hz * fraction(t)`` (``cpu_schedule``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mobility_twin_models.allocation import equations as eq
from mobility_twin_models.allocation.config import VRConfig, schedule_value
from mobility_twin_models.allocation.errors import AllocationError
from mobility_twin_models.allocation.exact import VRDecision, VRProblem, vr_exact


class VRTrace:
    """The exogenous state of ``updates`` DT updates, drawn once from ``seed`` (every policy sees the same)."""

    def __init__(self, config: VRConfig, updates: int, seed: int = 0) -> None:
        if not (isinstance(updates, int) and updates >= 1):
            raise AllocationError(f"updates must be an integer >= 1, got {updates!r}")
        self.config = config
        rng = np.random.default_rng(seed)
        u = config.users
        bias = rng.normal(0.0, config.attention_bias, u)
        shift = np.array([schedule_value(config.attention_schedule, t) for t in range(updates)])
        z = np.empty((updates, u))
        phi = config.attention_persistence
        stationary = config.attention_noise / np.sqrt(max(1e-9, 1.0 - phi * phi))
        z[0] = bias + shift[0] + rng.normal(0.0, stationary, u)
        for t in range(1, updates):
            mean = bias + shift[t]
            z[t] = mean + phi * (z[t - 1] - mean) + rng.normal(0.0, config.attention_noise, u)
        self.attention = 1.0 / (1.0 + np.exp(-z))
        scale = np.array([schedule_value(config.complexity_schedule, t) for t in range(updates)])
        base = np.empty((updates, u))
        lo, hi = config.complexity
        p_change = 1.0 / config.scene_updates
        base[0] = rng.uniform(lo, hi, u)
        for t in range(1, updates):
            change = rng.random(u) < p_change
            base[t] = np.where(change, rng.uniform(lo, hi, u), base[t - 1])
        self.complexity = base * scale[:, None]
        self.cpu_fraction = np.array([schedule_value(config.cpu_schedule, t) for t in range(updates)])
        self._score = eq.resolution_score(np.asarray(config.level_pixels), config.reference_pixels)
        self._bits = np.asarray(config.gop_bits)

    def __len__(self) -> int:
        return len(self.attention)

    def problem(self, t: int) -> VRProblem:
        c = self.config
        return VRProblem(self.attention[t], self.complexity[t][:, None] * self._bits[None, :], c.cycles_per_bit,
                         c.cpu_hz * self.cpu_fraction[t], c.bandwidth_bps, self._score, c.threshold_s,
                         c.quality_weight, c.latency_weight)


class FairnessWindow:
    """Each user's QoE over the last ``horizon`` DT updates; hfQoE is Jain's index of the users' means."""

    def __init__(self, users: int, horizon: int) -> None:
        self.values = np.zeros((horizon, users))
        self.count = 0

    @property
    def horizon(self) -> int:
        return self.values.shape[0]

    def means(self) -> np.ndarray:
        """[U] mean QoE of each user over the window (zeros before the first update)."""
        n = min(self.count, self.horizon)
        return self.values[:n].mean(axis=0) if n else np.zeros(self.values.shape[1])

    def hf_with(self, qoe: np.ndarray) -> float:
        """hfQoE of the window if ``qoe`` were the next update's QoE."""
        n = min(self.count, self.horizon)
        keep = self.values[:n] if n < self.horizon else np.delete(self.values, self.count % self.horizon, axis=0)
        return float(eq.jain_index(np.vstack([keep, qoe[None, :]]).mean(axis=0)))

    def copy(self) -> FairnessWindow:
        out = FairnessWindow(self.values.shape[1], self.horizon)
        out.values[:] = self.values
        out.count = self.count
        return out

    def push(self, qoe: np.ndarray) -> None:
        self.values[self.count % self.horizon] = qoe
        self.count += 1


@dataclass(frozen=True)
class VROutcome:
    """The outcome of one decision at one update: per user, then the update's hfQoE and reward."""

    latency_s: np.ndarray
    success: np.ndarray
    qoe: np.ndarray
    hf_qoe: float
    reward: float


def vr_outcome(config: VRConfig, problem: VRProblem, decision: VRDecision, window: FairnessWindow) -> VROutcome:
    """What the twin predicts (and, for the applied decision, what the physical system does) at one update."""
    ren, dl = problem.latencies(decision)
    latency = ren + dl
    qoe = problem.qoe(decision)
    success = latency <= config.threshold_s
    hf = window.hf_with(qoe)
    reward = float(eq.vr_reward(qoe, hf, config.fairness_threshold, config.fairness_penalty)
                   - config.late_penalty * float(np.mean(~success)))
    return VROutcome(latency, success, qoe, hf, reward)


# ------------------------------------------------------------------------------------------------ learner's view


class VRFeatures:
    """Observation and action of a learner in the VR setting.

    Observation (``3 U + 1``): each user's attention; each user's content complexity ``(m - 1) / 0.3``; each
    user's mean QoE over the fairness window; the fraction of the nominal CPU available.

    Action (``3 U`` in [-1, 1]): a level per user (``[-1, 1]`` cut into ``L`` equal bins), CPU logits and
    bandwidth logits (shares = softmax of ``temperature * action``).

    Decoding ends with the twin's *resolution shield*: a user whose GOP the twin predicts late on the shares
    decided is moved down a level, until it is on time or at the lowest level (the shares stay as decided).
    The twin knows the latency model, so it never sends a GOP at a level it can predict will miss the
    threshold while a lower one would not; the learner still decides every share and every level the
    shield leaves alone.
    """

    def __init__(self, config: VRConfig, temperature: float, *, shield: bool = True) -> None:
        self.config = config
        self.temperature = temperature
        self.shield = shield

    @property
    def obs_dim(self) -> int:
        return 3 * self.config.users + 1

    @property
    def act_dim(self) -> int:
        return 3 * self.config.users

    def encode(self, problem: VRProblem, window: FairnessWindow) -> np.ndarray:
        c = self.config
        complexity = problem.gop_bits[:, 0] / c.gop_bits[0]
        return np.concatenate([problem.attention, (complexity - 1.0) / 0.3, window.means(),
                               [problem.cpu_hz / c.cpu_hz]]).astype(np.float32)

    def decode(self, action: np.ndarray, problem: VRProblem) -> VRDecision:
        a = np.clip(np.asarray(action, dtype=float).reshape(-1), -1.0, 1.0)
        u, levels = self.config.users, self.config.levels
        if a.shape != (3 * u,):
            raise AllocationError(f"a VR action has {3 * u} values, got {a.shape}")
        level = np.minimum((0.5 * (a[:u] + 1.0) * levels).astype(np.int64), levels - 1)
        decision = VRDecision(level, _softmax(self.temperature * a[u:2 * u]), _softmax(self.temperature * a[2 * u:]))
        if self.shield:
            decision = shield_levels(problem, decision)
        return decision

    def emulator(self, problem: VRProblem, window: FairnessWindow) -> Callable[[np.ndarray], np.ndarray]:
        """The twin's model of this update (its window as it is now) as a function of a batch of actions
        [B, 3U] -> rewards [B]."""
        window = window.copy()
        return lambda actions: np.array([vr_outcome(self.config, problem, self.decode(a, problem), window).reward
                                         for a in np.atleast_2d(actions)])


def shield_levels(problem: VRProblem, decision: VRDecision) -> VRDecision:
    """Lower the level of every user predicted late, one level at a time, until on time or at level 0."""
    level = decision.level.copy()
    for _ in range(problem.gop_bits.shape[1]):
        ren, dl = problem.latencies(VRDecision(level, decision.cpu_share, decision.bandwidth_share))
        late = (ren + dl > problem.threshold_s) & (level > 0)
        if not late.any():
            break
        level = np.where(late, level - 1, level)
    return VRDecision(level, decision.cpu_share, decision.bandwidth_share)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


# ------------------------------------------------------------------------------------------------ benchmarks


def average_allocation(config: VRConfig, level: np.ndarray) -> VRDecision:
    u = config.users
    return VRDecision(np.asarray(level, dtype=np.int64), np.full(u, 1.0 / u), np.full(u, 1.0 / u))


def two_k_average(config: VRConfig, problem: VRProblem) -> VRDecision:
    """Benchmark 1: 2K for every attention level, CPU and bandwidth shared equally."""
    return average_allocation(config, np.full(config.users, config.baseline_level))


def adaptive_average(config: VRConfig, problem: VRProblem) -> VRDecision:
    """Benchmark 2: attention-based resolution (one level up per threshold crossed), equal shares."""
    level = np.searchsorted(np.asarray(config.adaptive_thresholds), problem.attention, side="right")
    return average_allocation(config, level)


def exact_decision(config: VRConfig, problem: VRProblem) -> VRDecision:
    """The per-update exact reference (:func:`~mobility_twin_models.allocation.exact.vr_exact`)."""
    return vr_exact(problem).decision
