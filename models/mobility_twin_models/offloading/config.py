"""Configuration of the DITEN offloading environment (Sun et al., Table II and Sec. V) as frozen dataclasses.

Units are SI throughout: metres, seconds, hertz (CPU cycles per second), watts, bits. The paper's
Table II values are the defaults; every value the paper does not give is marked *paper silent* in the
field's description, with the reason for our choice.

Reading of Table II:

* "The sum frequency of servers [15, 25] GHz": the total CPU frequency ``F_i`` of each edge server,
  drawn once per server. The frequency a new task gets (``f`` in eq. 8) is what is left of it after the
  server's background utilisation and the other users' tasks (:class:`LoadConfig`).
* "Task data volume [600, 800] kB" with "CPU cycles required for unit data volume [200, 400]": the unit
  is the bit (the usual unit in the MEC literature), so a task needs ``lambda = 8 * eta * c`` cycles,
  1.0e9 to 2.6e9. Per byte, a task would take about 10 ms on an idle server and no server choice
  would matter against 150-250 ms deadlines.
* "Mean of DTs' estimation error 0.5": the deviation ``f_hat`` of eq. 9 in GHz, so 0.5e9 Hz. A positive
  deviation means the server is faster than its twin says (eq. 9-10: the true frequency is ``f + f_hat``).
* "Router queuing latency 2 ms": the latency per router hop of the wired backhaul; with one router per
  ``hop_m`` of wired path this gives eq. 7's latency per metre, ``psi = 2 ms / hop_m``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from mobility_twin_core.checks import (
    check_fields,
    check_fraction,
    checked,
    fraction,
    non_negative,
    positive,
    with_changes,
)
from mobility_twin_models.offloading.errors import OffloadingError


def _range(name: str, value: tuple[float, float], *, low: float = 0.0, strict: bool = True) -> None:
    lo, hi = value
    ok = (lo > low if strict else lo >= low) and lo <= hi and math.isfinite(hi)
    if not ok:
        bound = f"> {low}" if strict else f">= {low}"
        raise OffloadingError(f"{name} must be an increasing pair of finite numbers {bound}, got {value!r}")


def _count(name: str, value: int) -> None:
    if not (isinstance(value, int) and value >= 1):
        raise OffloadingError(f"{name} must be an integer >= 1, got {value!r}")


# Declared ranges of the fields (checked by check_fields in __post_init__), raising OffloadingError.
def _positive(default: float):
    return positive(default, OffloadingError)


def _non_negative(default: float):
    return non_negative(default, OffloadingError)


def _pair(default: tuple[float, float], *, strict: bool = True):
    """An increasing pair of finite numbers > 0 (>= 0 with ``strict=False``)."""
    return checked(default, _range, strict=strict)


@dataclass(frozen=True)
class NetworkConfig:
    """Base stations with co-located edge servers in a square area (Sec. V).

    Args:
        side_m: side of the square area (paper: 5 km).
        bs_density_per_km2: base stations (each with an edge server) per km^2 (paper: 40).
        layout: ``"grid"``: "distributed evenly" read as a square lattice with the given density
            (32 x 32 = 1,024 stations at 40/km^2 on 5 km, spacing 156 m, so every point is within
            110 m of a station and the 150 m radius covers the whole area); ``"uniform"``: the same
            number of stations drawn uniformly at random (coverage holes appear).
        coverage_radius_m: base-station radius (paper: 150 m). A user always uplinks through its
            nearest station (paper, Sec. III-C); slots where that station is farther than the radius are
            counted as uncovered in the metrics and, with ``uncovered_fails``, fail.
        uncovered_fails: a task uplinked from outside every radius fails (paper silent; default off,
            as the paper assumes access to the nearest station).
        server_freq_hz: range of each server's total CPU frequency ``F_i`` (Table II: 15-25 GHz).
        router_queue_s: latency of one router hop (Table II: 2 ms).
        hop_m: wired path per router hop (paper silent; 100 m, so ``psi = 2e-5`` s/m: 1-8 ms to the
            candidates of a user).
        dt_block_m: the twins of the servers inside each block of this side are hosted together on the
            block's most capable server ("DTs within a geographical range may be stored on ... other
            resource-rich edge servers", Sec. III-A; paper silent on the range; 500 m: about 10 servers).
        query_cost: cost of one state query message (system cost, Fig. 9; paper silent; 1 unit).
        query_cost_per_km: extra query cost per km between the user's access station and the queried
            server (paper silent; 1 unit per km).
    """

    side_m: float = _positive(5000.0)
    bs_density_per_km2: float = _positive(40.0)
    layout: str = "grid"
    coverage_radius_m: float = _positive(150.0)
    uncovered_fails: bool = False
    server_freq_hz: tuple[float, float] = _pair((15e9, 25e9))
    router_queue_s: float = _non_negative(2e-3)
    hop_m: float = _positive(100.0)
    dt_block_m: float = _positive(500.0)
    query_cost: float = _non_negative(1.0)
    query_cost_per_km: float = _non_negative(1.0)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.layout not in ("grid", "uniform"):
            raise OffloadingError(f"layout must be 'grid' or 'uniform', got {self.layout!r}")
        if self.n_stations < 1:
            raise OffloadingError(f"density {self.bs_density_per_km2}/km^2 on {self.side_m} m gives no station")

    @property
    def wired_s_per_m(self) -> float:
        """psi of eq. 7, seconds per metre."""
        return self.router_queue_s / self.hop_m

    @property
    def n_stations(self) -> int:
        """Number of stations: the lattice side rounded to the nearest integer for ``grid``."""
        area_km2 = (self.side_m / 1000.0) ** 2
        if self.layout == "grid":
            return round(math.sqrt(self.bs_density_per_km2 * area_km2)) ** 2
        return round(self.bs_density_per_km2 * area_km2)


@dataclass(frozen=True)
class RadioConfig:
    """Uplink of eq. 5-6.

    Args:
        bandwidth_hz: W (Table II: 20 MHz).
        tx_power_w: range of each user's transmit power p, drawn once per user (Table II: 0.2-0.6 W).
        noise_w: sigma^2 (Table II: 2e-12 W).
        path_loss_exponent: alpha (paper silent; 4, urban micro-cell without line of sight).
        channels: orthogonal channels of W each; every slot each user transmits on one, drawn uniformly.
            Phi of eq. 6 is the set of the other users on the same channel attached to *other* stations
            (users of one station are scheduled orthogonally). Paper silent; 8 keeps the median uplink
            at 20-40 ms with hundreds of users; 1 is full reuse (interference-limited).
        min_distance_m: distances below this are clamped in the path loss (the model is singular at 0).
    """

    bandwidth_hz: float = _positive(20e6)
    tx_power_w: tuple[float, float] = _pair((0.2, 0.6))
    noise_w: float = _positive(2e-12)
    path_loss_exponent: float = _positive(4.0)
    channels: int = checked(8, _count)
    min_distance_m: float = _positive(1.0)

    def __post_init__(self) -> None:
        check_fields(self)


@dataclass(frozen=True)
class TaskConfig:
    """The task ``k_t = (eta, lambda, gamma)`` each user offloads every slot, drawn per user and slot.

    Args:
        size_bytes: eta (Table II: 600-800 kB, kB = 1000 bytes).
        cycles_per_bit: CPU cycles per bit (Table II: 200-400 "per unit data volume").
        deadline_s: gamma (Table II: 150-250 ms).
    """

    size_bytes: tuple[float, float] = _pair((600e3, 800e3))
    cycles_per_bit: tuple[float, float] = _pair((200.0, 400.0))
    deadline_s: tuple[float, float] = _pair((0.150, 0.250))

    def __post_init__(self) -> None:
        check_fields(self)

    def draw(self, rng, n) -> tuple:
        """``n`` tasks (an int or a shape), uniform in the ranges: ``(size_bits, cycles, deadline_s)`` arrays,
        drawn from ``rng`` (a ``numpy.random.Generator``) in that order."""
        size_bits = 8.0 * rng.uniform(*self.size_bytes, n)
        cycles = size_bits * rng.uniform(*self.cycles_per_bit, n)
        deadline_s = rng.uniform(*self.deadline_s, n)
        return size_bits, cycles, deadline_s

    @property
    def mean_bits(self) -> float:
        return 8.0 * sum(self.size_bytes) / 2.0

    @property
    def mean_cycles(self) -> float:
        return self.mean_bits * sum(self.cycles_per_bit) / 2.0

    @property
    def mean_deadline_s(self) -> float:
        return sum(self.deadline_s) / 2.0


@dataclass(frozen=True)
class LoadConfig:
    """How busy the edge servers are: the frequency ``f`` a new task gets (eq. 8). Paper silent.

    ``f_i(t) = F_i (1 - u_i(t)) / (1 + m_i(t))``: the server's total frequency ``F_i``, less its background
    utilisation ``u_i(t)``, shared equally (processor sharing) with the ``m_i(t)`` tasks of the *other*
    users whose nearest server is ``i`` in slot ``t`` (``crowd``). ``u_i`` follows a mean-reverting AR(1)
    process per server: ``u(t+1) = u(t) + (1 - persistence) (u_bar_i - u(t)) + innovation_std * N(0, 1)``,
    clipped to ``[0, max_utilisation]``, with ``u_bar_i`` uniform in ``background_mean`` and ``u(0)`` drawn
    from the stationary spread.

    The other users' tasks enter as they would under the network's default nearest-server rule, not as
    the evaluated policy moves them: the load is exogenous to the decisions (a small-share assumption,
    exact for nearest-first). This keeps P1 a per-user problem as the paper writes it, and its offline
    optimum exact (:mod:`mobility_twin_models.offloading.oracle`).

    Args:
        background_mean: range of the per-server mean utilisation ``u_bar_i``.
        persistence: AR(1) coefficient per slot (0: i.i.d. every slot; 0.95: slowly varying).
        innovation_std: standard deviation of the utilisation innovation per slot.
        max_utilisation: ceiling of ``u`` (a server always keeps some capacity).
        crowd: share servers with the other users' tasks; off: background only.
    """

    background_mean: tuple[float, float] = _pair((0.0, 0.4), strict=False)
    persistence: float = fraction(0.9, OffloadingError)
    innovation_std: float = _non_negative(0.08)
    max_utilisation: float = 0.9
    crowd: bool = True

    def __post_init__(self) -> None:
        check_fields(self)
        if not 0.0 < self.max_utilisation < 1.0:
            raise OffloadingError(f"max_utilisation must be in (0, 1), got {self.max_utilisation!r}")
        if self.background_mean[1] > self.max_utilisation:
            raise OffloadingError(f"background_mean {self.background_mean} exceeds max_utilisation {self.max_utilisation}")


@dataclass(frozen=True)
class TwinConfig:
    """The twins of the edge servers: estimate ``f`` and deviation ``f_hat`` (eq. 1, 8-10).

    The true frequency a task gets is ``f + f_hat`` (eq. 9-10). The twin of server ``i`` has a systematic
    deviation ``b_i ~ N(deviation_mean, deviation_spread)`` that it knows (calibrated from its history) and
    reports as ``f_hat`` (the paper's "deviation obtained in advance"), plus a per-slot error
    ``N(0, deviation_noise)`` that it does not know. The agent's state and the twin of the system use
    the reported ``f_hat``; the real environment uses the true one. Paper silent on everything but the
    mean.

    Args:
        deviation_mean_hz: mean of f_hat (Table II: 0.5, read as GHz).
        deviation_spread_hz: standard deviation of the per-server systematic deviation.
        deviation_noise_hz: standard deviation of the per-slot deviation the twin does not know.
        min_true_fraction: the true frequency is at least this fraction of the estimate (keeps eq. 10 finite).
    """

    deviation_mean_hz: float = 0.5e9
    deviation_spread_hz: float = _non_negative(0.25e9)
    deviation_noise_hz: float = _non_negative(0.25e9)
    min_true_fraction: float = 0.1

    def __post_init__(self) -> None:
        if not math.isfinite(self.deviation_mean_hz):
            raise OffloadingError(f"deviation_mean_hz must be finite, got {self.deviation_mean_hz!r}")
        check_fields(self)
        if not 0.0 < self.min_true_fraction <= 1.0:
            raise OffloadingError(f"min_true_fraction must be in (0, 1], got {self.min_true_fraction!r}")


@dataclass(frozen=True)
class MigrationConfig:
    """Migration cost (eq. 3), the long-term budget (eq. 11a) and the Lyapunov weight (eq. 13, 16).

    Args:
        cost: C, the cost of one service migration (paper: a constant; 1 unit).
        budget_rate: beta, the upper limit of the migration rate over the journey (paper: 0.2 in Fig. 8).
        latency_weight: v of eq. 13 and 16, per second of latency (paper silent; 10: 100 ms of latency
            weighs as much as one migration when the deficit queue holds one migration's cost).
        first_slot_free: the first slot's attachment is not a migration (``h_1 = 0``; paper silent).
    """

    cost: float = _positive(1.0)
    budget_rate: float = 0.2
    latency_weight: float = _positive(10.0)
    first_slot_free: bool = True

    def __post_init__(self) -> None:
        check_fields(self)
        check_fraction("budget_rate (beta)", self.budget_rate, OffloadingError)

    def budget_migrations(self, slots: int) -> int:
        """The largest number of migrations eq. 11a allows in ``slots`` slots: ``floor(beta * slots)``.

        ``sum_t C h_t <= beta C tau`` with ``C > 0`` is ``sum_t h_t <= beta tau``, and the left side is an
        integer, so the constraint is exactly ``sum_t h_t <= floor(beta tau)``: counting migrations is an
        exact discretisation of the budget (no rounding of costs is involved).
        """
        return math.floor(self.budget_rate * slots + 1e-9)


#: The CBD / Jianguomen centre of the bundled ``cbd`` subset (sim/data/tdrive/SOURCE.md).
CBD_CENTRE = (116.4468, 39.9135)


@dataclass(frozen=True)
class TrajectoryConfig:
    """Users moving along T-Drive trajectories scaled into the square (Sec. V).

    A square of ``box_side_m`` around ``centre`` (local ENU metres) is scaled into the network's square
    (:class:`mobility_twin_sim.geo.SquareScaler`); taxis are interpolated between fixes at most ``max_gap_s`` apart
    (:class:`mobility_twin_sim.fleet.Fleet`). A journey is ``slots`` consecutive slots; slot ``k`` samples the fleet at
    trajectory time ``t0 + k * slot_s * speed_factor`` (``speed_factor`` > 1 replays the trajectories
    faster: the speed sweep of Fig. 8-9). Users are taxis present and inside the square for the whole
    journey.

    Args:
        source: T-Drive file, folder or archive; ``""`` is the bundled 1,300-taxi CBD subset.
        centre_lon, centre_lat: centre of the scaled box (default: the CBD subset's centre).
        box_side_m: side of the box scaled into the network square (paper silent; 6 km, so about 600
            taxis are present at once in the CBD subset and speeds shrink by 5/6).
        max_gap_s: longest gap between fixes that is interpolated (the bundled data has a fix every
            ~200 s; 600 s keeps most taxis present for the whole hour).
        slot_s: duration of a slot (paper silent; 1 s).
        slots: tau, slots per journey (paper silent; 100).
        speed_factor: trajectory seconds per simulated second.
        split: time window the journeys start in: ``"train"`` the first half of the data's busy hour,
            ``"test"`` the second half, ``"all"`` anywhere (the twin of the system trains on one, the
            real environment is evaluated on the other).
    """

    source: str = ""
    centre_lon: float = CBD_CENTRE[0]
    centre_lat: float = CBD_CENTRE[1]
    box_side_m: float = _positive(6000.0)
    max_gap_s: float = _positive(600.0)
    slot_s: float = _positive(1.0)
    slots: int = checked(100, _count)
    speed_factor: float = _positive(1.0)
    split: str = "all"

    def __post_init__(self) -> None:
        check_fields(self)
        if self.split not in ("train", "test", "all"):
            raise OffloadingError(f"split must be 'train', 'test' or 'all', got {self.split!r}")
        if self.source and not Path(self.source).exists():
            raise OffloadingError(f"trajectory source {self.source} does not exist")


@dataclass(frozen=True)
class EnvConfig:
    """The whole DITEN environment: one journey of ``users`` users with ``candidates`` servers each.

    Args:
        users: users (taxis) in the area; all of them load the servers and interfere (paper: varied).
        candidates: N, the candidate servers of a user: the N nearest (paper: 5 or 10).
    """

    network: NetworkConfig = field(default_factory=NetworkConfig)
    radio: RadioConfig = field(default_factory=RadioConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    load: LoadConfig = field(default_factory=LoadConfig)
    twin: TwinConfig = field(default_factory=TwinConfig)
    migration: MigrationConfig = field(default_factory=MigrationConfig)
    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    users: int = checked(200, _count)
    candidates: int = 5

    def __post_init__(self) -> None:
        check_fields(self)
        if not (isinstance(self.candidates, int) and self.candidates >= 1):
            raise OffloadingError(f"candidates (N) must be an integer >= 1, got {self.candidates!r}")
        if self.candidates > self.network.n_stations:
            raise OffloadingError(f"candidates N={self.candidates} exceeds the {self.network.n_stations} stations")

    def with_(self, **changes) -> EnvConfig:
        """A copy with top-level fields or ``section__field`` entries changed, e.g. ``twin__deviation_mean_hz=0``."""
        return with_changes(self, OffloadingError, **changes)
