"""The vehicle's end of route guidance, ROS-free: which route commands a CAV hands to its drive interface,
and when it asks the route guidance for a route (issue 18, the ``route_follower`` node's logic).

A command reaches the vehicle over V2X from whoever plans for it (the twin's route guidance, the collision
warning's brake, an operator). Before the vehicle's drive interface sees it, :meth:`RouteFollower.check`
refuses, with a status name of ``RouteCommandStatus`` and a reason:

* ``unknown_edge``: with the vehicle's map, a road id the map does not have;
* ``no_route``: with the map, consecutive roads of the route that do not connect;
* ``expired`` (superseded): an older command than the newest one of its kind already passed on (a route
  or a destination, or a speed: V2X may deliver out of order, and an old route must not undo a newer one).

A command passed on waits for the drive interface's answer; one not answered within ``control_timeout_s``
is given up (:meth:`RouteFollower.overdue`, status ``not_supported``): the sender is told, never left waiting.
A late answer to a command given up is still passed on (:meth:`RouteFollower.answered`): the vehicle may
have applied it after all.

The vehicle's destination (its mission) becomes route requests: :meth:`RouteFollower.request_due` gives a new
request id when one is to be sent, at once for a new destination and again while the guidance has not
answered it (a guidance that starts after the vehicle, or a lost message), after ``request_retry_s`` and then
twice as long each time up to 8x, so that a guidance slowed down is not flooded. The guidance's answer to
any of the requests for the destination (a late one too) ends the retries; an ``arrived``, ``unreachable``,
``unknown_edge`` or ``invalid`` answer ends the request until the destination changes. A guidance that has
said nothing about the vehicle for ``silence_s`` (it restarted, and forgot its CAVs) is asked again when the
mission repeats its destination. A request names the vehicle's road only while it is fresh
(``road_max_age_s``); with an older one the guidance finds the vehicle in the twin.

A clock that goes back (a simulation restarted under sim time) starts the follower afresh
(:meth:`RouteFollower.tick`).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from mobility_twin_core.roads import RoadGraph

#: an unanswered request is retried after request_retry_s, then twice as long each time, up to this many times it
MAX_BACKOFF = 8.0
#: the guidance answers after which the follower stops asking for its current destination
FINAL_ANSWERS = frozenset({"arrived", "unreachable", "unknown_edge", "invalid"})


@dataclass(frozen=True)
class FollowerConfig:
    control_timeout_s: float = 2.0  # a command the drive interface has not answered in this long is given up
    request_retry_s: float = 5.0  # ask the guidance again when it has not answered in this long
    silence_s: float = 120.0  # a guidance silent about the vehicle this long is asked again (a restart)
    road_max_age_s: float = 5.0  # a request names the vehicle's road only when it is at most this old

    def __post_init__(self) -> None:
        for name in ("control_timeout_s", "request_retry_s", "silence_s", "road_max_age_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")


@dataclass(frozen=True)
class Command:
    """What the follower reads of a ``RouteCommand``."""

    command_id: str
    stamp: float  # when issued (s)
    edges: tuple[str, ...] = ()
    target_edge: str = ""
    set_speed: bool = False

    @property
    def kinds(self) -> tuple[str, ...]:
        """What the command changes: ``route`` (edges or a target) and/or ``speed``."""
        return (("route",) if self.edges or self.target_edge else ()) + (("speed",) if self.set_speed else ())


@dataclass
class _Request:
    destination: str
    number: int = 0  # requests sent for this destination
    request_id: str = ""
    sent: set[str] = field(default_factory=set)  # every request id sent for it (a late answer to any counts)
    sent_at: float = -math.inf
    wait_s: float = 0.0  # before the next retry: doubles with every unanswered request
    answered: bool = False
    final: str = ""  # the guidance's final answer ("" while it guides)


@dataclass
class RouteFollower:
    """One CAV's command filter and route-request state. ``graph`` is the vehicle's map (None: no map checks)."""

    cav_id: str
    graph: RoadGraph | None = None
    config: FollowerConfig = field(default_factory=FollowerConfig)

    def __post_init__(self) -> None:
        self._newest: dict[str, tuple[float, str]] = {}  # kind -> (stamp, command id) of the newest passed on
        self._pending: dict[str, float] = {}  # command id -> when passed on
        self._given_up: deque[str] = deque(maxlen=64)  # commands answered not_supported (a late answer counts)
        self._request: _Request | None = None
        self._heard = -math.inf  # when the guidance last said something about the vehicle
        self._now = -math.inf
        self.road = ""  # the vehicle's road and remaining route, from its mission and the drive interface
        self.road_at = -math.inf
        self.route: tuple[str, ...] = ()

    def tick(self, now: float) -> bool:
        """The clock reads ``now``; False (and everything forgotten) when it went back by more than a second."""
        if now < self._now - 1.0:
            self.__post_init__()
            self._now = now
            return False
        self._now = max(self._now, now)
        return True

    def at_road(self, road: str, now: float, route: tuple[str, ...] = ()) -> None:
        """The vehicle is on ``road`` at ``now`` (its mission or its drive interface says so)."""
        if road:
            self.road, self.road_at = road, now
            self.route = tuple(route) or self.route

    def fresh_road(self, now: float) -> str:
        """The vehicle's road when it is fresh and not inside a junction, else ''."""
        fresh = now - self.road_at <= self.config.road_max_age_s
        return self.road if fresh and self.road and not self.road.startswith(":") else ""

    # -------------------------------------------------------------------------------------------- commands
    def check(self, command: Command) -> tuple[str, str] | None:
        """None when ``command`` may go to the drive interface, else (status name, reason)."""
        if self.graph is not None:
            roads = command.edges + ((command.target_edge,) if command.target_edge and not command.edges else ())
            index = self.graph.route_indices(roads)
            if index is None:
                unknown = next(e for e in roads if e not in self.graph.index)
                return "unknown_edge", f"unknown edge {unknown!r}: not a road of the vehicle's map"
            for k in range(len(command.edges) - 1):
                if index[k + 1] not in self.graph.successors(index[k]):
                    return "no_route", (f"route refused: {command.edges[k]!r} does not lead to "
                                        f"{command.edges[k + 1]!r}")
        for kind in command.kinds:
            newest = self._newest.get(kind)
            if newest is not None and command.stamp < newest[0]:
                return "expired", (f"superseded: issued at {command.stamp:.3f}, before {kind} command "
                                   f"{newest[1]!r} issued at {newest[0]:.3f}")
        return None

    def passed_on(self, command: Command, now: float) -> None:
        """``command`` went to the drive interface at ``now``."""
        for kind in command.kinds:
            self._newest[kind] = (command.stamp, command.command_id)
        self._pending[command.command_id] = now

    def answered(self, command_id: str, now: float, road: str = "", route: tuple[str, ...] = ()) -> bool:
        """The drive interface answered ``command_id`` at ``now``: True when the follower passed it on (waiting
        for it, or given up on it: a late answer still tells what the vehicle did)."""
        self.at_road(road, now, route)
        if self._pending.pop(command_id, None) is not None:
            return True
        if command_id in self._given_up:
            self._given_up.remove(command_id)
            return True
        return False

    def overdue(self, now: float) -> list[str]:
        """The commands the drive interface has not answered within ``control_timeout_s`` (given up)."""
        late = [c for c, t in self._pending.items() if now - t > self.config.control_timeout_s]
        for c in late:
            del self._pending[c]
            self._given_up.append(c)
        return late

    # -------------------------------------------------------------------------------------------- requests
    def set_destination(self, edge: str, now: float = -math.inf) -> tuple[str, str] | None:
        """The vehicle's mission names ``edge`` ('' : none) at ``now``. None when accepted, else (status name,
        reason) and no destination. The same destination again changes nothing, unless the guidance has been
        silent about the vehicle for ``silence_s`` (it is asked again)."""
        if not edge:
            self._request = None
            return None
        if self.graph is not None and edge not in self.graph.index:
            self._request = None
            return "unknown_edge", f"unknown edge {edge!r}: the destination is not a road of the vehicle's map"
        r = self._request
        if r is None or r.destination != edge:
            self._request = _Request(edge)
        elif r.answered and not r.final and now - self._heard > self.config.silence_s:
            r.answered, r.wait_s, self._heard = False, 0.0, now  # a guidance that forgot the vehicle
        return None

    @property
    def destination(self) -> str:
        return self._request.destination if self._request else ""

    def request_due(self, now: float) -> str | None:
        """A new request id when a route request is to be sent now, else None."""
        r = self._request
        if r is None or r.final or r.answered or now - r.sent_at < r.wait_s:
            return None
        r.number += 1
        r.request_id, r.sent_at = f"{self.cav_id}-{r.destination}-{r.number}", now
        r.sent.add(r.request_id)
        r.wait_s = min(2.0 * r.wait_s, MAX_BACKOFF * self.config.request_retry_s) if r.wait_s else \
            self.config.request_retry_s
        return r.request_id

    def on_guidance(self, request_id: str, status: str, now: float = -math.inf) -> None:
        """The guidance's status ``status`` (a ``RouteGuidanceStatus`` name) about ``request_id``, at ``now``."""
        self._heard = max(self._heard, now)
        r = self._request
        if r is None or request_id not in r.sent:
            return
        if status == "stale_twin" or status == "unknown_vehicle":  # not yet: ask again after the retry time
            return
        r.answered = True
        if status in FINAL_ANSWERS:
            r.final = status
        elif status == "vehicle_left":  # the guidance lost the vehicle (out of the twin's sight): ask again,
            r.answered = False  # after the back-off, which goes on growing: not a new route every few seconds
