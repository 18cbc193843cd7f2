"""The co-simulation control interface as messages: a CAV's route command in, its status out, the signals.

A route planner (the twin's route guidance, an operator, a test) sends a ``RouteCommand`` to
``/cav/<id>/route_command``; the vehicle's ``route_follower`` checks it, passes it to the vehicle's drive
interface (``/cav/<id>/control/route_command``) and answers on ``/cav/<id>/route_command/status`` with a
``RouteCommandStatus``. In simulation the replay node is the drive interface: it queues the command and
applies it between two simulation steps (the world is advanced and commanded from one thread), through
:meth:`mobility_twin_sim.replay.Replay.command`. The traffic signals' twin goes out as a
``SignalStateArray`` on ``/infrastructure/signals``.

The functions here turn messages into the world's commands (:mod:`mobility_twin_sim.backend`) and results
into statuses; they use the message types but need no running node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from geometry_msgs.msg import Point
from std_msgs.msg import Header

from mobility_twin.ros.convert import from_time, to_time
from mobility_twin_msgs.msg import (
    RouteCommand,
    RouteCommandStatus,
    RouteGuidanceStatus,
    SignalState,
    SignalStateArray,
)
from mobility_twin_sim import backend
from mobility_twin_sim.backend import Command, CommandResult, SignalStates, SpeedCommand, TargetCommand

S = RouteCommandStatus
#: the start of a world's rejection reason -> the status it is
_REASONS = (("unknown vehicle", S.STATUS_UNKNOWN_VEHICLE), ("unknown edge", S.STATUS_UNKNOWN_EDGE),
            ("route refused", S.STATUS_NO_ROUTE), ("no route", S.STATUS_NO_ROUTE),
            ("empty route", S.STATUS_NO_ROUTE), ("bad speed", S.STATUS_INVALID))
STATUS_NAMES = {S.STATUS_ACCEPTED: "accepted", S.STATUS_UNKNOWN_VEHICLE: "unknown_vehicle",
                S.STATUS_UNKNOWN_EDGE: "unknown_edge", S.STATUS_NO_ROUTE: "no_route", S.STATUS_EXPIRED: "expired",
                S.STATUS_INVALID: "invalid", S.STATUS_NOT_SUPPORTED: "not_supported"}

#: RouteGuidanceStatus.status -> its name (``routed``, ``vehicle_left``, ...)
GUIDANCE_STATUS_NAMES = {getattr(RouteGuidanceStatus, n): n.removeprefix("STATUS_").lower()
                         for n in dir(RouteGuidanceStatus) if n.startswith("STATUS_")}


@dataclass(frozen=True)
class Refusal:
    """A command refused before it reached the world."""

    status: int
    reason: str


def status_of(reason: str) -> int:
    """The status of a world's rejection ``reason`` (:class:`mobility_twin_sim.backend.CommandResult`)."""
    for prefix, status in _REASONS:
        if reason.startswith(prefix):
            return status
    return S.STATUS_NOT_SUPPORTED if "does not take commands" in reason else S.STATUS_INVALID


def world_commands(msg: RouteCommand, cav_id: str, now: float) -> list[Command] | Refusal:
    """The world's commands for a ``RouteCommand`` received on ``cav_id``'s topic at ``now`` (the clock the
    stamps are in), in the order they are applied: the route (or the target), then the speed. Refused
    before anything is applied: another vehicle's topic, an expired command, nothing to do, a bad speed."""
    vehicle = msg.vehicle_id or cav_id
    if vehicle != cav_id:
        return Refusal(S.STATUS_INVALID, f"the command names {vehicle!r} but came on {cav_id!r}'s topic")
    if msg.validity < 0 or not math.isfinite(msg.validity):
        return Refusal(S.STATUS_INVALID, f"bad validity: {msg.validity!r} (seconds >= 0, 0 = no expiry)")
    stamp = from_time(msg.header.stamp)
    if msg.validity > 0 and now > stamp + msg.validity:
        return Refusal(S.STATUS_EXPIRED, f"expired: issued at {stamp:.3f}, valid {msg.validity:g} s, "
                                         f"received at {now:.3f}")
    if msg.set_speed and not math.isfinite(msg.speed):
        return Refusal(S.STATUS_INVALID, f"bad speed: {msg.speed!r}")
    commands: list[Command] = []
    if msg.edges:
        commands.append(backend.RouteCommand(cav_id, tuple(msg.edges)))
    elif msg.target_edge:
        commands.append(TargetCommand(cav_id, msg.target_edge))
    if msg.set_speed:
        commands.append(SpeedCommand(cav_id, float(msg.speed)))
    if not commands:
        return Refusal(S.STATUS_INVALID, "nothing to do: no edges, no target_edge and set_speed false")
    return commands


def status_msg(msg: RouteCommand, cav_id: str, stamp: float, result: CommandResult | Refusal,
               route: tuple[str, ...] = (), road: str = "") -> RouteCommandStatus:
    """The answer to ``msg``: ``result`` is the world's (the first rejected command's, else the last's)."""
    if isinstance(result, Refusal):
        status, reason = result.status, result.reason
    elif result.accepted:
        status, reason = S.STATUS_ACCEPTED, ""
    else:
        status, reason = status_of(result.reason), result.reason
    return RouteCommandStatus(header=Header(stamp=to_time(stamp), frame_id="map"), command_id=msg.command_id,
                              vehicle_id=msg.vehicle_id or cav_id, status=status, reason=reason,
                              route=list(route) if status == S.STATUS_ACCEPTED else [], road=road)


def signals_msg(signals: SignalStates, stamp: float) -> SignalStateArray:
    """The traffic signals of the world at ``stamp`` (map frame)."""
    return SignalStateArray(header=Header(stamp=to_time(stamp), frame_id="map"), signals=[
        SignalState(signal_id=sid, position=Point(x=float(x), y=float(y)), state=state, phase=int(phase),
                    time_to_switch=float(nxt))
        for sid, x, y, state, phase, nxt in zip(signals.ids, signals.x, signals.y, signals.state, signals.phase,
                                                signals.next_switch_s, strict=True)])


def signals_from_msg(msg: SignalStateArray) -> SignalStates:
    """The traffic signals of a ``SignalStateArray`` (the inverse of :func:`signals_msg`). A signal whose
    id repeats or whose time to switch is not finite is left out."""
    import numpy as np

    seen: set[str] = set()
    kept = []
    for s in msg.signals:
        if s.signal_id in seen or not math.isfinite(s.time_to_switch):
            continue
        seen.add(s.signal_id)
        kept.append(s)
    return SignalStates(from_time(msg.header.stamp), tuple(s.signal_id for s in kept),
                        np.asarray([s.position.x for s in kept], float), np.asarray([s.position.y for s in kept], float),
                        tuple(s.state for s in kept), np.asarray([s.phase for s in kept], np.int64),
                        np.asarray([s.time_to_switch for s in kept], float))
