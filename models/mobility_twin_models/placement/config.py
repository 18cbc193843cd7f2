"""Configuration of the edge/cloud twin-placement model (Zhang et al., Table 2), as frozen dataclasses.

Units used throughout the package (the paper gives numbers without a consistent unit system, so these
are our reading and are stated once here):

* data ``w``: megabytes (MB); bandwidth ``b``: MB/s (Table 2's 1000 Mbps = 125 MB/s);
* CPU clock ``f``: GHz, i.e. 1e9 instructions per second; ``delta``: instructions per MB of data,
  counted in *giga-instructions* (Ginstr/MB), so ``delta * w / f`` is in seconds;
* execution energy ``theta``: the paper's "mJ per instruction", read as mJ per giga-instruction (the
  unit the clock is given in; 0.1 mJ per single instruction would put every energy term 1e9 above
  every time term and make alpha meaningless); transmission energy ``e_t``: mJ per MB;
* times in seconds, energies in mJ; the weighted cost ``Q = alpha T + (1 - alpha) E`` adds the two
  numbers as the paper does (eq. 17).

Values the paper does not give (gamma, lambda, delta, server positions, the largest twin) are chosen
so that every host is the best one for some twins at every alpha > 0 (see :class:`SystemConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mobility_twin_core.checks import check_fields, check_greater, checked, fraction


def _check_range(name: str, value: tuple[float, float], *, positive: bool = True) -> None:
    lo, hi = value
    if not lo <= hi or (positive and lo <= 0):
        raise ValueError(f"{name} must be an increasing pair of {'positive ' if positive else ''}numbers, got {value!r}")


def _not_below(name: str, value: float, *, low: float) -> None:
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value!r}")


def positive(default: float):
    """A config field that must be > 0."""
    return checked(default, check_greater, low=0)


def at_least(default: float, low: float):
    """A config field that must not be below ``low``."""
    return checked(default, _not_below, low=low)


@dataclass(frozen=True)
class SystemConfig:
    """The servers, the network and the energy constants (Table 2 and Sec. 5.1).

    Args:
        n_edge: S, the number of edge servers (Table 2: 3). Host index ``S`` is the cloud.
        cloud_freq_ghz: f_c (Table 2: 3.5 GHz).
        edge_freq_ghz: range of f_e^s; each edge server draws its clock once, uniformly (Table 2: 1.8-3.0 GHz).
        field_m: width and height of the field in metres (Table 2: 1000 m x 800 m).
        edge_layout: edge-server positions as fractions of the field. The paper is silent; we spread the
            three servers as a triangle, (1/4, 1/4), (3/4, 1/4), (1/2, 3/4). Used when ``n_edge == 3``;
            other counts are placed on a centred circle.
        bandwidth_mbps: b_n, device to base station (Table 2: 1000 Mbps); eq. 1 uses it in MB/s.
        gamma: the network discount in eq. 1 (paper silent; ours 0.5: the cloud path delivers half the
            radio bandwidth through the core network).
        lam_mb_m_per_s: lambda of eq. 4, rate x distance in MB*m/s (paper silent; ours 40000: a device
            250 m from an edge server uploads at 160 MB/s, faster than the cloud path's 62.5 MB/s;
            beyond 640 m the edge link is slower than the cloud path).
        delta_ginstr_per_mb: delta, instructions per MB (paper silent; ours 0.008 Ginstr/MB, i.e. 8
            instructions per byte: a 25 MB upload takes 0.057 s on the cloud and 0.067-0.11 s on an edge).
            With delta < 1 an edge server always costs less energy than the cloud (eq. 3 vs 7), so at
            alpha = 0 every twin belongs on an edge server (all edges tie); the cloud wins on time only.
            gamma, lambda and delta were chosen together so that at alpha = 1 about a third of the
            twins belong in the cloud and the rest spread over the three edge servers.
        theta_cloud_mj: theta_c, execution energy in the cloud per Ginstr (Sec. 5.1: 0.1 mJ).
        theta_edge_mj: theta_e^s, execution energy on every edge server per Ginstr (Sec. 5.1: 0.125 mJ;
            Table 2 swaps the two labels, the text is unambiguous).
        e_t_cloud_mj_per_mb: e_t^c, transmission energy to the cloud (0.15 mJ per MB).
        e_t_edge_mj_per_mb: e_t^e, transmission energy to an edge server (0.125 mJ per MB).
    """

    n_edge: int = at_least(3, 1)
    cloud_freq_ghz: float = positive(3.5)
    edge_freq_ghz: tuple[float, float] = checked((1.8, 3.0), _check_range)
    field_m: tuple[float, float] = (1000.0, 800.0)
    edge_layout: tuple[tuple[float, float], ...] = ((0.25, 0.25), (0.75, 0.25), (0.5, 0.75))
    bandwidth_mbps: float = positive(1000.0)
    gamma: float = positive(0.5)
    lam_mb_m_per_s: float = positive(40_000.0)
    delta_ginstr_per_mb: float = positive(0.008)
    theta_cloud_mj: float = at_least(0.1, 0)
    theta_edge_mj: float = at_least(0.125, 0)
    e_t_cloud_mj_per_mb: float = at_least(0.15, 0)
    e_t_edge_mj_per_mb: float = at_least(0.125, 0)

    def __post_init__(self) -> None:
        check_fields(self)
        _check_range("field_m", (min(self.field_m), max(self.field_m)))

    @property
    def n_hosts(self) -> int:
        """S + 1: the edge servers and the cloud."""
        return self.n_edge + 1

    @property
    def bandwidth_mb_per_s(self) -> float:
        return self.bandwidth_mbps / 8.0


@dataclass(frozen=True)
class ScenarioConfig:
    """How problem instances are drawn (Sec. 5.1: "locations and device ownership are randomly simulated").

    Args:
        n_devices: N, devices (Table 2: 120).
        n_twins: M, twins (Table 2: 15); every twin gets at least one device.
        workload_mb: range of w_n, uniform (Table 2: 10-40 MB).
        max_devices_per_twin: the largest twin (paper silent; ours 16, twice the mean of 8 at
            N = 120, M = 15: ownership is uniform among the twins not yet full, and the cap rarely binds).
            It fixes the input width of the DDL feature extractor.
    """

    n_devices: int = 120
    n_twins: int = at_least(15, 1)
    workload_mb: tuple[float, float] = checked((10.0, 40.0), _check_range)
    max_devices_per_twin: int = 16

    def __post_init__(self) -> None:
        check_fields(self)
        if self.n_devices < self.n_twins:
            raise ValueError(f"n_devices ({self.n_devices}) must be >= n_twins ({self.n_twins}): every twin needs a device")
        if self.n_devices > self.n_twins * self.max_devices_per_twin:
            raise ValueError(
                f"n_devices ({self.n_devices}) exceeds n_twins x max_devices_per_twin "
                f"({self.n_twins} x {self.max_devices_per_twin})"
            )


@dataclass(frozen=True)
class PlacementSetup:
    """A whole set-up: the system, how instances are drawn, the weight alpha of eq. 17."""

    system: SystemConfig = field(default_factory=SystemConfig)
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    alpha: float = fraction(0.5)

    def __post_init__(self) -> None:
        check_fields(self)


TABLE2 = PlacementSetup()
"""The paper's Table 2 set-up with alpha = 0.5."""
