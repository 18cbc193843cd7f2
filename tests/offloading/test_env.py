"""The DITEN environment: deployment, journeys from T-Drive, determinism, the twin's and the real view."""

import numpy as np
import pytest

from mobility_twin_models.offloading import equations as eq
from mobility_twin_models.offloading.config import EnvConfig, NetworkConfig, TrajectoryConfig
from mobility_twin_models.offloading.env import Environment
from mobility_twin_models.offloading.errors import OffloadingError
from mobility_twin_models.offloading.network import build_network
from mobility_twin_models.offloading.trajectories import load_fleet, sample_journeys
from mobility_twin_sim.tdrive import BUNDLED

SMALL = EnvConfig(users=30, candidates=5).with_(trajectory__slots=20)


@pytest.fixture(scope="module")
def episode():
    return Environment(SMALL, seed=11).episode(0, "train")


def test_grid_deployment_has_the_papers_density_and_covers_the_square():
    net = build_network(NetworkConfig(), SMALL.twin, SMALL.load.background_mean, seed=0)
    assert net.n_servers == 32 * 32  # 40 per km^2 on 25 km^2, as a lattice
    assert net.xy.min() > 0 and net.xy.max() < 5000
    rng = np.random.default_rng(0)
    d, _ = net.nearest(rng.uniform(0, 5000, size=(2000, 2)), 1)
    assert d.max() <= 150.0  # every point within the 150 m radius of a station
    assert np.all((net.capacity_hz >= 15e9) & (net.capacity_hz <= 25e9))


def test_each_twin_is_hosted_by_the_most_capable_server_of_its_block():
    net = build_network(NetworkConfig(), SMALL.twin, SMALL.load.background_mean, seed=0)
    for host in np.unique(net.twin_host):
        members = np.flatnonzero(net.twin_host == host)
        assert net.capacity_hz[host] == net.capacity_hz[members].max()


def test_journeys_are_tdrive_taxis_inside_the_square_for_every_slot():
    traj = TrajectoryConfig(slots=15)
    fleet = load_fleet(traj, 5000.0)
    j = sample_journeys(fleet, traj, 5000.0, 25, np.random.default_rng(0))
    assert j.xy.shape == (15, 25, 2)
    assert np.all((j.xy >= 0) & (j.xy <= 5000))
    assert len(set(j.taxi_ids.tolist())) == 25


def test_speed_factor_scales_the_users_speed():
    slow = Environment(SMALL, seed=1).episode(0).journeys.mean_speed()
    fast = Environment(SMALL.with_(trajectory__speed_factor=4.0), seed=1).episode(0).journeys.mean_speed()
    assert fast > 2.0 * slow


def test_asking_for_more_users_than_the_data_has_names_the_count():
    cfg = SMALL.with_(users=5000, trajectory__source=str(BUNDLED / "sample"))
    with pytest.raises(OffloadingError, match="asked for 5000 users"):
        Environment(cfg, seed=0).episode(0)


def test_same_seed_and_index_give_the_same_episode(episode):
    again = Environment(SMALL, seed=11).episode(0, "train")
    for name in ("servers", "latency_true_s", "latency_twin_s", "uplink_s", "deadline_s"):
        np.testing.assert_array_equal(getattr(episode, name), getattr(again, name))
    other = Environment(SMALL, seed=11).episode(1, "train")
    assert not np.array_equal(other.latency_true_s, episode.latency_true_s)


def test_candidates_are_the_n_nearest_servers_nearest_first(episode):
    assert episode.servers.shape == (20, 30, 5)
    assert np.all(np.diff(episode.distance_m, axis=-1) >= 0)
    assert np.all(episode.covered)


def test_episode_latencies_follow_eq_4_to_10(episode):
    cycles = episode.cycles[..., None]
    twin = episode.uplink_s[..., None] + episode.wired_s + eq.computation_latency(
        cycles, episode.f_est_hz, episode.deviation_reported_hz)
    true = episode.uplink_s[..., None] + episode.wired_s + cycles / (episode.f_est_hz + episode.deviation_true_hz)
    np.testing.assert_allclose(episode.latency_twin_s, twin, rtol=1e-12)
    np.testing.assert_allclose(episode.latency_true_s, true, rtol=1e-12)
    assert np.all(episode.wired_s == pytest.approx(2e-5 * episode.distance_m))


def test_real_environment_differs_from_the_twin_by_the_unknown_deviation(episode):
    assert not np.allclose(episode.latency_true_s, episode.latency_twin_s)
    exact = Environment(SMALL.with_(twin__deviation_noise_hz=0.0), seed=11).episode(0, "train")
    np.testing.assert_allclose(exact.latency_true_s, exact.latency_twin_s)


def test_larger_mean_twin_deviation_lowers_the_real_latency():
    low = Environment(SMALL.with_(twin__deviation_mean_hz=0.0), seed=2).episode(0)
    high = Environment(SMALL.with_(twin__deviation_mean_hz=1.5e9), seed=2).episode(0)
    assert high.latency_true_s.mean() < low.latency_true_s.mean()


def test_more_users_load_the_servers_and_the_air():
    few = Environment(SMALL.with_(users=20), seed=4).episode(0)
    many = Environment(SMALL.with_(users=300), seed=4).episode(0)
    assert many.f_est_hz[..., 0].mean() < few.f_est_hz[..., 0].mean()
    assert np.median(many.uplink_s) > np.median(few.uplink_s)


def test_twins_reduce_the_state_query_cost(episode):
    assert np.all(episode.query_cost_twin <= episode.query_cost_direct + 1e-12)
    assert episode.query_cost_twin.sum() < episode.query_cost_direct.sum()


def test_uncovered_users_fail_only_when_configured():
    cfg = SMALL.with_(network__layout="uniform", network__bs_density_per_km2=10.0, network__uncovered_fails=True)
    ep = Environment(cfg, seed=5).episode(0)
    assert not ep.covered.all()
    assert np.all(np.isinf(ep.latency_true_s[~ep.covered]))


@pytest.mark.parametrize(("changes", "match"), [
    ({"network__layout": "hex"}, "layout"),
    ({"radio__channels": 0}, "channels"),
    ({"task__deadline_s": (0.3, 0.1)}, "deadline_s"),
    ({"migration__budget_rate": 1.5}, "beta"),
    ({"load__persistence": 2.0}, "persistence"),
    ({"twin__deviation_mean_hz": float("nan")}, "deviation_mean_hz"),
    ({"candidates": 0}, "candidates"),
    ({"trajectory__split": "dev"}, "split"),
])
def test_bad_configuration_is_rejected_with_the_value_named(changes, match):
    with pytest.raises(OffloadingError, match=match):
        SMALL.with_(**changes)
