r"""Proactive twin migration: move a vehicle's twin before its handover, using a predicted next server.

**Migration-time model** (the papers give the shape, not the numbers; ours are stated in
:class:`MigrationConfig`): moving ``b`` megabytes of twin state between edge servers takes

.. math::
    T(b) = \frac{8\,b}{B} + h\,\ell

with ``B`` the backhaul bandwidth (Mbit/s), ``h`` hops of latency ``l`` each (DITEN, 004: 2 ms router
queuing). A twin is its current state plus its history (000, Sec. V-B), ``twin_size_mb`` in all; while it
runs, its state changes at ``dirty_rate_mb_s``.

* **Reactive** migration starts when the vehicle is handed over: the twin is unavailable on the new
  server for :math:`T(\mathrm{size})` (the interruption).
* **Proactive** migration (pre-copy, as in live VM migration): whenever the predictor says that in ``k``
  slots the vehicle will be served by a server other than the one hosting its twin (with probability at
  least ``threshold``), a replica is copied there, then kept in sync every ``sync_interval_s``. At the
  handover, if the replica is on the new server, only the state changed since its last sync moves
  (plus the rest of the copy if it is still in flight); otherwise the move is reactive. A replica on
  a server that does not become the host is wasted bandwidth. At most one replica per twin: a new
  prediction replaces it.

:func:`simulate_migration` replays per-slot serving servers and predictions and returns interruption
per handover and backhaul volume, so reactive, proactive-with-a-predictor and proactive-with-an-oracle
can be compared on the same trajectories.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mobility_twin_core.checks import (
    check_at_least,
    check_fields,
    check_greater,
    checked,
    fraction,
    int_at_least,
)


@dataclass(frozen=True)
class MigrationConfig:
    """Args:
        twin_size_mb: state moved by a full migration (default 50 MB: a vehicle twin's state, its recent
            sensor history and its model).
        backhaul_mbps: edge-to-edge bandwidth (default 1000 Mbit/s).
        hop_latency_ms: latency per backhaul hop (default 2 ms, DITEN's router queuing).
        hops: hops between neighbouring edge servers (default 1).
        dirty_rate_mb_s: rate at which a running twin's state changes (default 0.5 MB/s).
        sync_interval_s: a replica is brought up to date this often (default 1 s).
        threshold: least predicted probability that starts a pre-copy (default 0.5).
    """

    twin_size_mb: float = checked(50.0, check_greater, low=0)
    backhaul_mbps: float = checked(1000.0, check_greater, low=0)
    hop_latency_ms: float = checked(2.0, check_at_least, low=0)
    hops: int = int_at_least(1, low=0)
    dirty_rate_mb_s: float = checked(0.5, check_at_least, low=0)
    sync_interval_s: float = checked(1.0, check_greater, low=0)
    threshold: float = fraction(0.5)

    def __post_init__(self) -> None:
        check_fields(self)

    def transfer_s(self, megabytes: float) -> float:
        """T(b): seconds to move ``megabytes`` between neighbouring servers."""
        return 8.0 * megabytes / self.backhaul_mbps + self.hops * self.hop_latency_ms / 1000.0


@dataclass(frozen=True)
class SlotView:
    """One slot: each present vehicle's serving server and the predicted server ``k`` slots ahead.
    ``predicted`` may hold None (no prediction); ``probability`` is its confidence."""

    t: float
    vehicle_ids: Sequence
    serving: Sequence
    predicted: Sequence
    probability: Sequence


@dataclass(frozen=True)
class MigrationResult:
    handovers: int
    interruption_mean_ms: float
    interruption_p95_ms: float
    hidden_fraction: float  # handovers whose twin was already on the new server
    backhaul_mb_per_handover: float
    wasted_copies_per_handover: float

    def as_row(self, name: str) -> dict:
        return {"strategy": name, "handovers": self.handovers, "interruption_ms": self.interruption_mean_ms,
                "p95_ms": self.interruption_p95_ms, "hidden": self.hidden_fraction,
                "backhaul_MB_per_ho": self.backhaul_mb_per_handover,
                "wasted_copies_per_ho": self.wasted_copies_per_handover}


@dataclass
class _Replica:
    server: object
    started: float


@dataclass
class _Twin:
    host: object
    replica: _Replica | None = None


def simulate_migration(slots: Sequence[SlotView], config: MigrationConfig = MigrationConfig(), *,
                       proactive: bool = True) -> MigrationResult:
    """Replay ``slots`` (time order) and account every handover's interruption and every transfer.

    A vehicle's first appearance places its twin on its serving server (not a handover); a vehicle
    that disappears takes its twin (and replica) with it.
    """
    full_s = config.transfer_s(config.twin_size_mb)
    twins: dict[object, _Twin] = {}
    interruptions: list[float] = []
    hidden = 0
    backhaul_mb = 0.0
    wasted = 0
    for slot in slots:
        t = float(slot.t)
        present = set()
        for vid, server, pred, prob in zip(slot.vehicle_ids, slot.serving, slot.predicted, slot.probability,
                                           strict=True):
            present.add(vid)
            twin = twins.get(vid)
            if twin is None:
                twins[vid] = _Twin(server)
                continue
            if server != twin.host:  # handover: the twin must be on `server` now
                rep = twin.replica
                if proactive and rep is not None and rep.server == server:
                    done = rep.started + full_s
                    since_sync = (t - done) % config.sync_interval_s if t >= done else t - rep.started
                    residual_mb = min(config.dirty_rate_mb_s * since_sync, config.twin_size_mb)
                    wait = max(0.0, done - t) + config.transfer_s(residual_mb)
                    backhaul_mb += residual_mb + _sync_volume(rep.started, t, full_s, config)
                    hidden += int(t >= done)
                else:
                    if rep is not None:
                        wasted += 1
                        backhaul_mb += _sync_volume(rep.started, t, full_s, config)
                    wait = full_s
                    backhaul_mb += config.twin_size_mb
                interruptions.append(wait)
                twin.host, twin.replica = server, None
            if not proactive or pred is None or prob < config.threshold or pred == twin.host:
                continue
            if twin.replica is not None and twin.replica.server == pred:
                continue
            if twin.replica is not None:  # the prediction changed: the old replica is wasted
                wasted += 1
                backhaul_mb += _sync_volume(twin.replica.started, t, full_s, config)
            twin.replica = _Replica(pred, t)
            backhaul_mb += config.twin_size_mb
        for vid in list(twins):
            if vid not in present:
                rep = twins.pop(vid).replica
                if rep is not None:
                    wasted += 1
    n = len(interruptions)
    arr = np.asarray(interruptions) * 1000.0
    return MigrationResult(
        handovers=n,
        interruption_mean_ms=float(arr.mean()) if n else math.nan,
        interruption_p95_ms=float(np.percentile(arr, 95)) if n else math.nan,
        hidden_fraction=hidden / n if n else math.nan,
        backhaul_mb_per_handover=backhaul_mb / n if n else math.nan,
        wasted_copies_per_handover=wasted / n if n else math.nan,
    )


def _sync_volume(started: float, now: float, full_s: float, config: MigrationConfig) -> float:
    """Megabytes sent to keep a replica in sync from the end of its copy until ``now``."""
    return max(0.0, now - (started + full_s)) * config.dirty_rate_mb_s
