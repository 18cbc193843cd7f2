"""Warnings with hysteresis: a predicted conflict becomes a warning, and stays one, without flapping.

A pair is warned when its conflict probability reaches ``p_on`` with a time to collision at most ``ttc_on_s``
in ``confirm`` consecutive predictions (one noisy cycle does not warn). It stays warned while the
conflict holds at the lower bars ``p_off`` / ``ttc_off_s``, and is cleared only after ``hold_s`` without them
(a warning that blinks off for one cycle does not end and start again). A cleared pair cannot be warned again
within ``refractory_s``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mobility_twin.safety.predictor import Conflict


@dataclass(frozen=True)
class WarningConfig:
    p_on: float = 0.5  # a warning starts at this conflict probability ...
    # ... with a time to collision at most this (s). 2 s: with SUMO's ssm conflicts (TTC < 1.5 s) as truth, 3 s
    # warned of every approach to a queue, most of whose drivers then braked in time: mtwin bench collision
    # --repredict on seeds 7-10, the twin's precision 0.15-0.19 at 3 s, 0.21-0.27 at 2 s, the same recall
    # (0.71-0.81 / 0.71-0.80), median lead 1.57-1.80 s (2.1-2.4 at 3 s)
    ttc_on_s: float = 2.0
    p_off: float = 0.25  # a started warning holds while the probability stays at this ...
    ttc_off_s: float = 4.0  # ... and the time to collision at most this (s)
    confirm: int = 2  # consecutive predictions above the on-bars before a warning starts
    hold_s: float = 1.0  # below the off-bars this long before a warning ends (s)
    refractory_s: float = 2.0  # after a warning ended, the pair is not warned again this soon (s)

    def check(self) -> None:
        if not (0 < self.p_off <= self.p_on <= 1 and 0 < self.ttc_on_s <= self.ttc_off_s and self.confirm >= 1
                and self.hold_s >= 0 and self.refractory_s >= 0):
            raise ValueError("warnings: 0 < p_off <= p_on <= 1, 0 < ttc_on_s <= ttc_off_s, confirm >= 1, "
                             "hold_s >= 0, refractory_s >= 0")


@dataclass
class ActiveWarning:
    a: int
    b: int
    started: float
    conflict: Conflict
    last_seen: float  # last time the conflict held at the off-bars
    updates: int = 1


@dataclass
class WarningEvent:
    kind: str  # "start" | "update" | "end"
    t: float
    warning: ActiveWarning


@dataclass
class WarningTracker:
    config: WarningConfig = field(default_factory=WarningConfig)

    def __post_init__(self) -> None:
        self.config.check()
        self.active: dict[tuple[int, int], ActiveWarning] = {}
        self._pending: dict[tuple[int, int], int] = {}
        self._ended: dict[tuple[int, int], float] = {}
        self.started = 0
        self.ended = 0

    def update(self, t: float, conflicts: list[Conflict]) -> list[WarningEvent]:
        """Feed one prediction cycle at ``t``; returns what started, continued and ended."""
        cfg = self.config
        events: list[WarningEvent] = []
        seen = set()
        pending: dict[tuple[int, int], int] = {}
        for c in conflicts:
            key = (min(c.a, c.b), max(c.a, c.b))
            seen.add(key)
            w = self.active.get(key)
            holds = c.probability >= cfg.p_off and c.ttc_s <= cfg.ttc_off_s
            if w is not None:
                if holds:
                    w.conflict, w.last_seen, w.updates = c, t, w.updates + 1
                    events.append(WarningEvent("update", t, w))
                continue
            if c.probability >= cfg.p_on and c.ttc_s <= cfg.ttc_on_s and math.isfinite(c.ttc_s):
                if t - self._ended.get(key, -math.inf) < cfg.refractory_s:
                    continue
                n = self._pending.get(key, 0) + 1
                if n >= cfg.confirm:
                    w = ActiveWarning(key[0], key[1], t, c, t)
                    self.active[key] = w
                    self.started += 1
                    events.append(WarningEvent("start", t, w))
                else:
                    pending[key] = n
        self._pending = pending
        for key, w in list(self.active.items()):
            if t - w.last_seen > cfg.hold_s or (key not in seen and t - w.last_seen > cfg.hold_s):
                del self.active[key]
                self._ended[key] = t
                self.ended += 1
                events.append(WarningEvent("end", t, w))
        if len(self._ended) > 10_000:  # forget old refractory entries
            self._ended = {k: v for k, v in self._ended.items() if t - v < cfg.refractory_s}
        return events

    def forget(self, ids) -> list[WarningEvent]:
        """End the warnings of road users that are gone (``ids``), e.g. tracks the twin dropped."""
        gone = set(int(i) for i in ids)
        events = []
        for key, w in list(self.active.items()):
            if key[0] in gone or key[1] in gone:
                del self.active[key]
                self.ended += 1
                events.append(WarningEvent("end", w.last_seen, w))
        return events
