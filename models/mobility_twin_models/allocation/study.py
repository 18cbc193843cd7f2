"""The paper's schedule run end to end on a trace: every policy decides every DT update on the same state.

:func:`run_vr_study` is the case study of the bi-directional twin paper (Fig. 3-4): the 2K-average and
adaptive-average benchmarks, DDPG trained offline on the first ``offline_updates`` updates and then frozen,
CDDPG (the same network, trained on every update from ``continual_from``), and the per-update exact
reference. Before ``start_update`` the system runs the default allocation (2K, equal shares) and the learned
policies' rewards are what the twin predicts for them; from ``start_update`` on their decisions are applied.

The records are per update and per policy, so the benchmark can cut them as it likes (metrics after
``start_update``, the reward curve, per phase).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from mobility_twin_models.allocation.agent import ContinualDDPG
from mobility_twin_models.allocation.config import AgentConfig, ContinualConfig, ScheduleConfig, VRConfig
from mobility_twin_models.allocation.vr import (
    FairnessWindow,
    VRFeatures,
    VRTrace,
    adaptive_average,
    exact_decision,
    two_k_average,
    vr_outcome,
)

#: the policies of the VR study, in table order
VR_POLICIES = ("2k_average", "adaptive_average", "ddpg", "cddpg", "exact")


@dataclass
class Records:
    """Per-update records of one policy: [T] arrays (``latency_s`` and ``success`` are means over users)."""

    reward: np.ndarray
    qoe: np.ndarray
    latency_s: np.ndarray
    success: np.ndarray
    hf_qoe: np.ndarray

    @classmethod
    def empty(cls, n: int) -> Records:
        return cls(*(np.full(n, np.nan) for _ in range(5)))


@dataclass
class VRStudy:
    records: dict[str, Records]
    schedule: ScheduleConfig
    seconds: dict[str, float] = field(default_factory=dict)
    cddpg: ContinualDDPG | None = None

    def summary(self, start: int | None = None, end: int | None = None) -> dict[str, dict[str, float]]:
        """Mean reward, QoE, latency (ms), success rate and hfQoE (mean and minimum) per policy over updates
        ``[start, end)`` (default: from the start of allocation to the end)."""
        s = self.schedule.start_update if start is None else start
        out = {}
        for name, r in self.records.items():
            sl = slice(s, end)
            out[name] = {"reward": float(np.mean(r.reward[sl])), "qoe": float(np.mean(r.qoe[sl])),
                         "latency_ms": float(np.mean(r.latency_s[sl]) * 1e3),
                         "success": float(np.mean(r.success[sl])), "hf_qoe": float(np.mean(r.hf_qoe[sl])),
                         "hf_qoe_min": float(np.min(r.hf_qoe[sl]))}
        return out


def run_vr_study(config: VRConfig, schedule: ScheduleConfig, agent: AgentConfig, continual: ContinualConfig,
                 seed: int = 0) -> VRStudy:
    """Run every VR policy on one trace of ``schedule.total_updates`` updates drawn from ``seed``."""
    t_total = schedule.total_updates
    trace = VRTrace(config, t_total, seed=seed)
    features = VRFeatures(config, agent.share_temperature)
    records = {name: Records.empty(t_total) for name in VR_POLICIES}
    windows = {name: FairnessWindow(config.users, config.fairness_horizon) for name in VR_POLICIES}
    rules = {"2k_average": two_k_average, "adaptive_average": adaptive_average, "exact": exact_decision}
    seconds = dict.fromkeys(VR_POLICIES, 0.0)
    seconds["offline_training"] = seconds["continual_training"] = 0.0
    learner = ContinualDDPG(features.obs_dim, features.act_dim, agent, continual)
    frozen: ContinualDDPG | None = None
    logged: list[tuple] = []
    default = np.zeros(features.act_dim, dtype=np.float32)  # 2K, equal shares: the system's default allocation

    def record(name, t, outcome):
        r = records[name]
        r.reward[t], r.qoe[t] = outcome.reward, float(outcome.qoe.mean())
        r.latency_s[t] = float(np.mean(np.minimum(outcome.latency_s, 10.0)))
        r.success[t], r.hf_qoe[t] = float(outcome.success.mean()), outcome.hf_qoe
        windows[name].push(outcome.qoe)

    for t in range(t_total):
        problem = trace.problem(t)
        for name, rule in rules.items():
            t0 = time.perf_counter()
            decision = rule(config, problem)
            seconds[name] += time.perf_counter() - t0
            record(name, t, vr_outcome(config, problem, decision, windows[name]))
        if t < schedule.offline_updates:
            # the DT logs the default allocation's updates (state, the twin's model of it, the outcome)
            window = windows["cddpg"]
            obs = features.encode(problem, window)
            emulate = features.emulator(problem, window)
            outcome = vr_outcome(config, problem, features.decode(default, problem), window)
            logged.append((obs, emulate, default, outcome.reward))
            for name in ("ddpg", "cddpg"):
                record(name, t, vr_outcome(config, problem, features.decode(default, problem), windows[name]))
            if t == schedule.offline_updates - 1:
                t0 = time.perf_counter()
                learner.fit_offline(logged)
                seconds["offline_training"] = time.perf_counter() - t0
                frozen = ContinualDDPG.from_state_dict(learner.state_dict(with_buffer=False))
                logged.clear()
            continue
        # DDPG: frozen after its offline training
        t0 = time.perf_counter()
        obs = features.encode(problem, windows["ddpg"])
        decision = features.decode(frozen.act(obs), problem)
        seconds["ddpg"] += time.perf_counter() - t0
        record("ddpg", t, vr_outcome(config, problem, decision, windows["ddpg"]))
        # CDDPG: decides, then learns from the outcome and the twin's emulated actions
        t0 = time.perf_counter()
        window = windows["cddpg"]
        obs = features.encode(problem, window)
        action = learner.act(obs)
        decision = features.decode(action, problem)
        seconds["cddpg"] += time.perf_counter() - t0
        emulate = features.emulator(problem, window)
        outcome = vr_outcome(config, problem, decision, window)
        record("cddpg", t, outcome)
        if t >= schedule.continual_from:
            t0 = time.perf_counter()
            learner.observe_update(obs, action, outcome.reward, features.encode(problem, window), emulate)
            learner.train(agent.gradient_steps)
            seconds["continual_training"] += time.perf_counter() - t0
    return VRStudy(records, schedule, seconds, learner)


# ------------------------------------------------------------------------------------------------ vehicular

#: the rule-based policies of the vehicular study (the learned ones are ``untrained``, ``ddpg`` and
#: ``cddpg_<strategy>``). Every policy decides on the slot as the twin predicts it, except ``exact``, the
#: per-slot exact reference, which solves the slot as it is (the limit); ``exact_on_twin`` is the same solver
#: on the twin's prediction; ``arrival_order`` is the learners' decoding with equal priorities and no
#: correction (admission in the order the vehicles came): what the decoding buys without learning.
SITE_RULES = ("equal_share", "equal_share_shield", "arrival_order", "greedy_convex", "exact_on_twin", "exact")


@dataclass
class SiteRecords:
    """Per-slot records of one policy: mean utility, success rate, mean latency (failed tasks count with
    their deadline), tasks; NaN in slots without a task."""

    utility: np.ndarray
    success: np.ndarray
    latency_s: np.ndarray
    tasks: np.ndarray

    @classmethod
    def empty(cls, n: int) -> SiteRecords:
        return cls(np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan), np.zeros(n))


@dataclass
class SiteStudy:
    records: dict[str, SiteRecords]
    schedule: ScheduleConfig
    regimes: tuple
    regime_names: list[str]
    probe: dict[str, dict[int, float]]  # strategy -> {slot: probe score}
    seconds: dict[str, float]
    learners: dict[str, ContinualDDPG]

    def summary(self, start: int | None = None, end: int | None = None) -> dict[str, dict[str, float]]:
        """Task-weighted success rate, mean latency (ms) and mean utility per policy over ``[start, end)``."""
        s = self.schedule.start_update if start is None else start
        out = {}
        for name, r in self.records.items():
            sl = slice(s, end)
            w = r.tasks[sl]
            has = w > 0
            out[name] = {"success": float(np.sum(r.success[sl][has] * w[has]) / max(w.sum(), 1)),
                         "latency_ms": float(np.sum(r.latency_s[sl][has] * w[has]) / max(w.sum(), 1) * 1e3),
                         "utility": float(np.sum(r.utility[sl][has] * w[has]) / max(w.sum(), 1))}
        return out


def _site_decide(name, predicted, actual, features, learners, frozen):
    """(bandwidth share, CPU share) that policy ``name`` gives the tasks of a slot the twin predicts as
    ``predicted`` (``actual``: the slot as it is, for the exact reference only)."""
    from mobility_twin_models.allocation.site import (
        equal_share,
        equal_share_shielded,
        exact_shares,
        greedy_convex,
    )

    if name == "equal_share":
        return equal_share(predicted)
    if name == "greedy_convex":
        return greedy_convex(predicted)
    if name == "equal_share_shield":
        return equal_share_shielded(predicted)
    if name == "exact":
        return exact_shares(actual)
    if name == "exact_on_twin":
        return exact_shares(predicted)
    if name == "arrival_order":
        return features.decode(np.zeros(features.act_dim), predicted)
    agent = frozen if name == "ddpg" else learners[name]
    return features.decode(agent.act(features.encode(predicted)), predicted)


def probe_score(agent: ContinualDDPG, features, probe_slots, probe_reference: float) -> float:
    """Mean utility of the agent's greedy allocations on a fixed set of ``(predicted, actual)`` slots, over the
    exact reference's."""
    from mobility_twin_models.allocation.site import slot_outcome

    if not probe_slots:
        return float("nan")
    obs = np.stack([features.encode(p) for p, _ in probe_slots])
    actions = agent.act(obs)
    got = np.mean([slot_outcome(q, *features.decode(a, p)).reward for a, (p, q) in zip(actions, probe_slots,
                                                                                        strict=True)])
    return float(got / probe_reference) if probe_reference > 0 else float("nan")


def run_site_study(config, regimes, schedule: ScheduleConfig, agent: AgentConfig, continual: ContinualConfig,
                   strategies=("naive", "replay", "ewc"), *, seed: int = 0, probe_slots: int = 200,
                   probe_at: tuple[int, ...] = ()) -> SiteStudy:
    """Run the vehicular policies on one server's trace with a regime schedule.

    Every policy decides on the slot as the twin predicts it and is scored on the slot as it is (the two
    differ where a regime has ``unseen_loss_db``). DDPG trains offline on the first ``offline_updates`` slots
    (the default allocation, equal shares, is applied meanwhile) and is then frozen; CDDPG, the same network,
    trains on every slot from ``continual_from`` (with ``continual``'s replay) and, when allocation starts at
    ``start_update``, forks into one learner per strategy (``continual`` with its ``strategy`` replaced): the
    strategies differ in how they meet a new regime, and the benchmark's first change comes after that.
    ``untrained`` is the same network before any training (what the decoding does with the outputs of a random
    network). The twin learns from a slot once it is over: the actions (the applied one and the emulated
    ones) are decoded on what it predicted when it decided and scored on the slot as the station measured it.
    ``probe_at``: slots at which each learner's greedy policy is scored on ``probe_slots`` slots of the first
    regime drawn from another seed (forgetting).
    """
    from mobility_twin_models.allocation.site import SiteFeatures, SiteTrace, equal_share, slot_outcome

    trace = SiteTrace(config, schedule.total_updates, regimes, seed=seed)
    features = SiteFeatures(config)
    probe_trace = SiteTrace(config, probe_slots * 3, ((0, regimes[0][1]),), seed=seed + 7919)
    probe_problems = [(p, q) for p, q in zip(probe_trace.predictions, probe_trace.problems, strict=True)
                      if p.n > 0][:probe_slots]
    probe_reference = float(np.mean([slot_outcome(q, *_site_decide("exact", p, q, features, {}, None)).reward
                                     for p, q in probe_problems])) if probe_problems else 0.0
    learned = ["untrained", "ddpg", *(f"cddpg_{s}" for s in strategies)]
    names = [*SITE_RULES, *learned]
    records = {n: SiteRecords.empty(len(trace)) for n in names}
    seconds = dict.fromkeys(names, 0.0)
    seconds["offline_training"] = seconds["continual_training"] = 0.0
    base = ContinualDDPG(features.obs_dim, features.act_dim, agent, replace_strategy(continual, "replay"),
                         task_layout=features.layout)
    # which agent decides for each learned policy (the strategies share the base until they fork)
    acting: dict[str, ContinualDDPG] = {"untrained": ContinualDDPG.from_state_dict(base.state_dict(with_buffer=False))}
    training: list[ContinualDDPG] = []
    logged = []
    probe: dict[str, dict[int, float]] = {f"cddpg_{s}": {} for s in strategies}
    for t in range(len(trace)):
        problem, predicted = trace.problem(t), trace.predicted(t)
        if t == schedule.offline_updates:
            t0 = time.perf_counter()
            base.fit_offline(logged)
            seconds["offline_training"] = time.perf_counter() - t0
            logged.clear()
            acting["ddpg"] = ContinualDDPG.from_state_dict(base.state_dict(with_buffer=False))
            acting.update({f"cddpg_{s}": base for s in strategies})
            training = [base]
        if t == schedule.start_update:
            forks = {f"cddpg_{s}": clone_with(base, replace_strategy(continual, s)) for s in strategies}
            acting.update(forks)
            training = list(forks.values())
        if t in probe_at and t >= schedule.offline_updates:
            for name in probe:
                probe[name][t] = probe_score(acting[name], features, probe_problems, probe_reference)
        if problem.n == 0:
            continue
        obs = features.encode(predicted)
        decided: dict[int, tuple] = {}  # id(agent) -> (action, outcome): each agent decides once per slot
        for name in names:
            t0 = time.perf_counter()
            action = None
            if name in SITE_RULES:
                bw, cpu = _site_decide(name, predicted, problem, features, {}, None)
            elif name not in acting:  # a learned policy before the offline training: the default allocation
                bw, cpu = equal_share(predicted)
            elif id(acting[name]) in decided:
                action, o = decided[id(acting[name])]
            else:
                action = acting[name].act(obs)
                bw, cpu = features.decode(action, predicted)
            if action is None or id(acting[name]) not in decided:
                o = slot_outcome(problem, bw, cpu)
                if action is not None:
                    decided[id(acting[name])] = (action, o)
            seconds[name] += time.perf_counter() - t0
            r = records[name]
            r.utility[t], r.success[t] = o.reward, float(o.success.mean())
            r.latency_s[t] = float(eq_dropped_mean(o.latency_s, problem.deadline_s))
            r.tasks[t] = problem.n
        if t < schedule.offline_updates:
            # the applied default (equal shares) is no action of the learner: the twin emulates its own
            logged.append((obs, features.emulator(predicted, problem), None, 0.0))
        elif t >= schedule.continual_from:
            t0 = time.perf_counter()
            emulate = features.emulator(predicted, problem)
            for learner in training:
                action, o = decided[id(learner)]
                learner.observe_update(obs, action, o.reward, obs, emulate)
                learner.train(agent.gradient_steps)
            seconds["continual_training"] += time.perf_counter() - t0
    learners = {name: acting[name] for name in probe}
    return SiteStudy(records, schedule, tuple(regimes), trace.regime_names, probe, seconds, learners)


def eq_dropped_mean(latency_s, deadline_s) -> float:
    from mobility_twin_models.allocation.equations import dropped_latency

    return float(np.mean(dropped_latency(latency_s, deadline_s)))


def replace_strategy(continual: ContinualConfig, strategy: str) -> ContinualConfig:
    from dataclasses import replace

    return replace(continual, strategy=strategy)


def clone_with(learner: ContinualDDPG, continual: ContinualConfig) -> ContinualDDPG:
    """A learner with ``learner``'s networks, optimisers and recent replay, and the ``continual`` configuration
    (the reservoir is kept only if the clone replays; an EWC clone anchors at the current weights)."""
    state = learner.state_dict(with_buffer=True)
    state["continual"] = {**state["continual"], **{k: getattr(continual, k) for k in state["continual"]}}
    if not continual.replays:
        buf = state["buffer"]
        for k in ("res_obs", "res_next_obs", "res_actions", "res_rewards"):
            buf[k] = buf[k][:0]
        buf["seen"] = 0
    out = ContinualDDPG.from_state_dict(state)
    if continual.consolidates:
        out.consolidate()
    return out


def recovery_updates(policy: np.ndarray, reference: np.ndarray, switch: int, end: int, *, window: int = 100,
                     tolerance: float = 0.05) -> int | None:
    """Slots after ``switch`` until the policy's mean over the trailing ``window`` slots (with tasks) is within
    ``tolerance`` of the reference's over the same slots; None if not before ``end``."""
    p, r = np.asarray(policy, dtype=float), np.asarray(reference, dtype=float)
    for t in range(switch + window, end + 1):
        sl = slice(t - window, t)
        has = ~np.isnan(r[sl])
        if not has.any():
            continue
        ref = np.mean(r[sl][has])
        if ref > 0 and np.mean(p[sl][has]) >= (1.0 - tolerance) * ref:
            return t - switch
    return None
