"""The DITEN environment: journeys of many users through the edge network, with every latency precomputed.

Because the servers' load is exogenous to the evaluated decisions (:class:`~mobility_twin_models.offloading.config.LoadConfig`),
everything a decision can change is known per (slot, user, candidate) once the journey is drawn: an
:class:`Episode` holds the candidate servers of every user at every slot and the offloading latency of
each choice twice, as the *twin of the system* computes it (eq. 10 with the deviation the server twins
report) and as the *real* environment delivers it (with the true deviation). Training runs on the twin's
latencies, evaluation on the real ones; policies, the oracle and the metrics all read the same arrays.

Randomness: one :class:`Environment` has a seed; the network is drawn from it once, and journey ``index``
of split ``s`` from ``(seed, split, index)``. Same seed and index, same episode, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mobility_twin_models.offloading import equations as eq
from mobility_twin_models.offloading.config import EnvConfig
from mobility_twin_models.offloading.errors import OffloadingError
from mobility_twin_models.offloading.network import Network, build_network
from mobility_twin_models.offloading.trajectories import Journeys, load_fleet, sample_journeys

VIEWS = ("twin", "true")
_SPLIT_CODE = {"train": 1, "test": 2, "all": 3}


@dataclass(frozen=True, eq=False)
class Episode:
    """One journey of ``U`` users over ``tau`` slots with ``N`` candidates each. Arrays are (tau, U[, N]).

    Attributes:
        servers: candidate server indices, nearest first (``servers[..., 0]`` is the access station).
        distance_m: user-to-candidate distances (``d_e`` of eq. 7 and 14).
        covered: the access station is within its coverage radius.
        size_bits, cycles, deadline_s: the task ``(eta, lambda, gamma)`` of each user and slot.
        uplink_s: eq. 5 through the access station.
        wired_s: eq. 7 to each candidate.
        f_est_hz: the twins' estimate ``f`` of the frequency a task gets on each candidate.
        deviation_reported_hz: the deviation ``f_hat`` the twins report (eq. 9, state of eq. 14).
        deviation_true_hz: the deviation that actually holds this slot.
        latency_twin_s: ``T^glob`` as the twin of the system computes it (eq. 4-10, reported deviation).
        latency_true_s: ``T^glob`` in the real environment (true deviation); ``inf`` when the task cannot
            be uplinked (uncovered, with ``uncovered_fails``).
        query_cost_direct: cost of querying every candidate server for its state (system cost without twins).
        query_cost_twin: cost of querying the servers hosting the candidates' twins (with twins, Fig. 9).
    """

    config: EnvConfig
    journeys: Journeys
    servers: np.ndarray
    distance_m: np.ndarray
    covered: np.ndarray
    size_bits: np.ndarray
    cycles: np.ndarray
    deadline_s: np.ndarray
    uplink_s: np.ndarray
    wired_s: np.ndarray
    f_est_hz: np.ndarray
    deviation_reported_hz: np.ndarray
    deviation_true_hz: np.ndarray
    latency_twin_s: np.ndarray
    latency_true_s: np.ndarray
    query_cost_direct: np.ndarray
    query_cost_twin: np.ndarray

    @property
    def n_slots(self) -> int:
        return self.servers.shape[0]

    @property
    def n_users(self) -> int:
        return self.servers.shape[1]

    @property
    def n_candidates(self) -> int:
        return self.servers.shape[2]

    def latency(self, view: str) -> np.ndarray:
        if view == "twin":
            return self.latency_twin_s
        if view == "true":
            return self.latency_true_s
        raise OffloadingError(f"view must be one of {VIEWS}, got {view!r}")

    def users(self, index) -> Episode:
        """The same journey restricted to some users (their load and interference stay as drawn)."""
        fields = {name: getattr(self, name)[:, index] for name in _PER_USER}
        j = self.journeys
        journeys = Journeys(j.taxi_ids[index], j.xy[:, index], j.start_s, j.step_s, j.slot_s)
        return Episode(self.config, journeys, **fields)


_PER_USER = ("servers", "distance_m", "covered", "size_bits", "cycles", "deadline_s", "uplink_s", "wired_s",
             "f_est_hz", "deviation_reported_hz", "deviation_true_hz", "latency_twin_s", "latency_true_s",
             "query_cost_direct", "query_cost_twin")


class Environment:
    """Draws :class:`Episode` s of the configured DITEN system. See the module docstring."""

    def __init__(self, config: EnvConfig | None = None, *, seed: int = 0, network: Network | None = None) -> None:
        config = config if config is not None else EnvConfig()
        self.config = config
        self.seed = int(seed)
        self.network = network if network is not None else build_network(
            config.network, config.twin, config.load.background_mean, self.seed)
        if self.network.n_servers < config.candidates:
            raise OffloadingError(f"network has {self.network.n_servers} servers, fewer than N={config.candidates}")

    def episode(self, index: int, split: str | None = None) -> Episode:
        """Journey ``index`` of ``split`` (default: the trajectory config's split)."""
        cfg = self.config
        traj = cfg.trajectory
        if split is not None and split != traj.split:
            from dataclasses import replace

            traj = replace(traj, split=split)
        rng = np.random.default_rng([self.seed, _SPLIT_CODE[traj.split], int(index)])
        fleet = load_fleet(traj, cfg.network.side_m)
        journeys = sample_journeys(fleet, traj, cfg.network.side_m, cfg.users, rng)
        return generate_episode(cfg, self.network, journeys, rng)


def generate_episode(cfg: EnvConfig, net: Network, journeys: Journeys, rng: np.random.Generator) -> Episode:
    """Draw load, deviations, tasks, powers and channels for ``journeys`` and precompute every latency."""
    tau, n_users, n = journeys.n_slots, journeys.n_users, cfg.candidates
    s = net.n_servers
    dist, servers = net.nearest(journeys.xy, n)  # (tau, U, N)
    access = servers[..., 0]
    covered = dist[..., 0] <= cfg.network.coverage_radius_m

    # server state: background utilisation (AR(1)), crowd sharing, twin deviations
    load = cfg.load
    u = np.empty((tau, s))
    a = 1.0 - load.persistence
    stationary = load.innovation_std / np.sqrt(max(1.0 - load.persistence**2, 1e-12)) if load.persistence < 1 else 0.0
    u[0] = net.background_mean + stationary * rng.standard_normal(s)
    np.clip(u[0], 0.0, load.max_utilisation, out=u[0])
    for t in range(1, tau):
        u[t] = u[t - 1] + a * (net.background_mean - u[t - 1]) + load.innovation_std * rng.standard_normal(s)
        np.clip(u[t], 0.0, load.max_utilisation, out=u[t])
    free_hz = net.capacity_hz[None, :] * (1.0 - u)  # (tau, S)
    if load.crowd:
        counts = np.zeros((tau, s))
        for t in range(tau):
            counts[t] = np.bincount(access[t], minlength=s)
        t_idx = np.arange(tau)[:, None, None]
        others = counts[t_idx, servers] - (servers == access[..., None])  # other users' tasks on each candidate
    else:
        others = np.zeros(servers.shape)
    t_idx = np.arange(tau)[:, None, None]
    f_est = free_hz[t_idx, servers] / (1.0 + others)

    twin = cfg.twin
    dev_reported = net.twin_bias_hz[servers]
    dev_slot = net.twin_bias_hz[None, :] + twin.deviation_noise_hz * rng.standard_normal((tau, s))
    dev_true = dev_slot[t_idx, servers]
    floor = twin.min_true_fraction
    dev_reported = np.maximum(f_est + dev_reported, floor * f_est) - f_est
    dev_true = np.maximum(f_est + dev_true, floor * f_est) - f_est

    # tasks
    task = cfg.task
    size_bits = 8.0 * rng.uniform(*task.size_bytes, size=(tau, n_users))
    cycles = size_bits * rng.uniform(*task.cycles_per_bit, size=(tau, n_users))
    deadline = rng.uniform(*task.deadline_s, size=(tau, n_users))

    # uplink (eq. 5-6): interference from same-channel users attached to other stations
    radio = cfg.radio
    power = rng.uniform(*radio.tx_power_w, size=n_users)
    channel = rng.integers(0, radio.channels, size=(tau, n_users))
    uplink = np.empty((tau, n_users))
    for t in range(tau):
        interference = interference_at_access(journeys.xy[t], net.xy[access[t]], access[t], channel[t], power,
                                              radio.path_loss_exponent, radio.min_distance_m)
        snr = eq.sinr(power, dist[t, :, 0], interference, radio.noise_w, radio.path_loss_exponent,
                      radio.min_distance_m)
        uplink[t] = eq.uplink_latency(size_bits[t], radio.bandwidth_hz, snr)

    wired = eq.wired_latency(dist, cfg.network.wired_s_per_m)
    base = uplink[..., None] + wired
    latency_twin = base + eq.computation_latency(cycles[..., None], f_est, dev_reported)
    latency_true = base + eq.computation_latency(cycles[..., None], f_est, dev_true)
    if cfg.network.uncovered_fails:
        latency_true = np.where(covered[..., None], latency_true, np.inf)

    direct, with_twin = query_costs(cfg, net, servers)
    return Episode(cfg, journeys, servers, dist, covered, size_bits, cycles, deadline, uplink, wired, f_est,
                   dev_reported, dev_true, latency_twin, latency_true, direct, with_twin)


def interference_at_access(user_xy: np.ndarray, access_xy: np.ndarray, access: np.ndarray, channel: np.ndarray,
                           power: np.ndarray, alpha: float, min_distance_m: float) -> np.ndarray:
    """Eq. 6's sum ``sum_{j in Phi} p_j d_{b,j}^-alpha`` for every user: Phi = same channel, other station."""
    out = np.zeros(len(user_xy))
    for c in np.unique(channel):
        idx = np.flatnonzero(channel == c)
        if len(idx) < 2:
            continue
        diff = access_xy[idx, None, :] - user_xy[None, idx, :]  # (receiver, transmitter)
        d2 = np.maximum(np.einsum("ijk,ijk->ij", diff, diff), min_distance_m**2)
        rx = power[idx][None, :] * d2 ** (-alpha / 2.0)
        rx[access[idx][:, None] == access[idx][None, :]] = 0.0
        out[idx] = rx.sum(axis=1)
    return out


def query_costs(cfg: EnvConfig, net: Network, servers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """State-query cost per user and slot without twins (every candidate) and with (their twins' hosts)."""
    nc = cfg.network
    access_xy = net.xy[servers[..., :1]]

    def cost(targets: np.ndarray, keep: np.ndarray) -> np.ndarray:
        km = np.linalg.norm(net.xy[targets] - access_xy, axis=-1) / 1000.0
        return np.sum((nc.query_cost + nc.query_cost_per_km * km) * keep, axis=-1)

    direct = cost(servers, np.ones(servers.shape, dtype=bool))
    hosts = np.sort(net.twin_host[servers], axis=-1)
    first = np.ones(hosts.shape, dtype=bool)
    first[..., 1:] = hosts[..., 1:] != hosts[..., :-1]
    return direct, cost(hosts, first)
