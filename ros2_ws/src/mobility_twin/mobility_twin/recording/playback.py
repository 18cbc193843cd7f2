"""The timing of a playback: when each recorded message is due, for a rate, and where the playback is.

A message logged ``dt`` after the first one played is due ``dt / rate`` after the playback started; rate
0 means as fast as possible (everything is due at once). ROS-free; times in ns (recording) and s
(monotonic clock of the player).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PlaybackClock:
    """Recording time ``first_ns`` played at monotonic time ``started`` (s), ``rate`` times real time."""

    first_ns: int
    started: float
    rate: float = 1.0

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError(f"playback rate {self.rate} is negative (0 plays as fast as possible)")

    def due(self, log_time_ns: int) -> float:
        """Monotonic time (s) at which the message logged at ``log_time_ns`` is due."""
        if self.rate == 0:
            return self.started
        return self.started + max(0, log_time_ns - self.first_ns) * 1e-9 / self.rate

    def position_ns(self, now: float) -> int:
        """Recording time (ns) reached at monotonic time ``now`` (meaningless at rate 0)."""
        return self.first_ns + round(max(0.0, now - self.started) * self.rate * 1e9)


def schedule(log_times_ns: list[int], rate: float) -> list[float]:
    """Seconds after the start of the playback at which each message is due."""
    if not log_times_ns:
        return []
    clock = PlaybackClock(min(log_times_ns), 0.0, rate)
    return [clock.due(t) for t in log_times_ns]
