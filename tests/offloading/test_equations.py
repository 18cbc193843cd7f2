"""Each DITEN equation against a hand computation."""

import math

import numpy as np
import pytest

from mobility_twin_models.offloading import equations as eq
from mobility_twin_models.offloading.config import MigrationConfig, NetworkConfig, TaskConfig
from mobility_twin_models.offloading.env import interference_at_access


def test_migration_cost_is_h_times_c_eq3():
    assert eq.migration_cost([True, False], 2.5).tolist() == [2.5, 0.0]


def test_uplink_latency_is_size_over_shannon_rate_eq5():
    # 1 MB over 20 MHz at SINR 3: log2(4) = 2 bit/s/Hz -> 40 Mbit/s -> 0.2 s
    assert eq.uplink_latency(8e6, 20e6, 3.0) == pytest.approx(0.2)


def test_sinr_divides_received_power_by_noise_plus_interference_eq6():
    # 0.5 W at 100 m, alpha 2 -> 5e-5 W; one interferer 0.5 W at 200 m -> 1.25e-5 W; noise 2e-12 W
    interference = eq.received_power(0.5, 200.0, 2.0)
    assert interference == pytest.approx(1.25e-5)
    assert eq.sinr(0.5, 100.0, interference, 2e-12, 2.0) == pytest.approx(5e-5 / (2e-12 + 1.25e-5))


def test_path_loss_distance_is_clamped_at_the_minimum():
    assert eq.received_power(1.0, 0.0, 4.0, min_distance_m=1.0) == 1.0


def test_wired_latency_is_psi_times_distance_eq7():
    assert eq.wired_latency(250.0, 2e-5) == pytest.approx(5e-3)
    # Table II's 2 ms router queue with one router per 100 m of wire
    assert NetworkConfig().wired_s_per_m == pytest.approx(2e-5)


def test_communication_latency_adds_uplink_and_wired_eq4():
    assert eq.communication_latency(0.03, 0.004) == pytest.approx(0.034)


def test_estimated_computation_latency_is_cycles_over_frequency_eq8():
    assert eq.estimated_computation_latency(2e9, 10e9) == pytest.approx(0.2)


def test_computation_gap_matches_hand_value_eq9():
    # -2e9 * 0.5e9 / (10e9 * 10.5e9)
    assert eq.computation_gap(2e9, 10e9, 0.5e9) == pytest.approx(-1e18 / 1.05e20)


def test_actual_computation_latency_is_cycles_over_true_frequency_eq10():
    assert eq.computation_latency(2e9, 10e9, 0.5e9) == pytest.approx(2e9 / 10.5e9)
    assert eq.computation_latency(2e9, 10e9, -2e9) == pytest.approx(2e9 / 8e9)  # twin too optimistic


def test_offloading_latency_sums_communication_and_computation():
    total = eq.offloading_latency(0.03, 0.002, 2e9, 10e9, 0.0)
    assert total == pytest.approx(0.232)


def test_deficit_queue_grows_by_cost_minus_budget_and_floors_at_zero_eq12():
    assert eq.deficit_queue_next(0.5, 1.0, 1.0, 0.2) == pytest.approx(1.3)
    assert eq.deficit_queue_next(0.1, 0.0, 1.0, 0.2) == 0.0


def test_deficit_queue_trace_over_a_journey():
    # migrate, stay x4, migrate, migrate, stay: beta 0.2, C 1
    trace = eq.deficit_queue_trace([1, 0, 0, 0, 0, 1, 1, 0], 1.0, 0.2)
    assert trace == pytest.approx([0.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.8, 1.6, 1.4])


def test_deficit_queue_stays_empty_when_migrations_are_within_budget():
    h = np.zeros(50)
    h[::5] = 1  # exactly beta = 0.2
    assert eq.deficit_queue_trace(h, 1.0, 0.2).max() == pytest.approx(0.8)
    assert eq.deficit_queue_trace(h, 1.0, 0.2)[-1] == pytest.approx(0.0)


def test_reward_is_minus_weighted_latency_minus_queue_times_cost_eq16():
    assert eq.reward(0.15, 0.5, 1.0, 10.0) == pytest.approx(-2.0)
    assert eq.reward(0.15, 0.5, 0.0, 10.0) == pytest.approx(-1.5)


def test_budget_in_migrations_is_floor_of_beta_tau():
    assert MigrationConfig(budget_rate=0.2).budget_migrations(100) == 20
    assert MigrationConfig(budget_rate=0.2).budget_migrations(7) == 1
    assert MigrationConfig(budget_rate=0.3).budget_migrations(10) == 3  # 0.3 * 10 is 2.9999... in floats


def test_task_means_follow_table_ii_in_bits_and_cycles_per_bit():
    task = TaskConfig()
    assert task.mean_bits == pytest.approx(8 * 700e3)
    assert task.mean_cycles == pytest.approx(8 * 700e3 * 300)
    assert task.mean_deadline_s == pytest.approx(0.2)


def test_interference_counts_same_channel_users_of_other_stations_only():
    users = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 200.0], [300.0, 0.0]])
    stations = np.array([[0.0, 10.0], [100.0, 10.0], [0.0, 10.0], [300.0, 10.0]])
    access = np.array([0, 1, 0, 2])
    channel = np.array([0, 0, 0, 1])
    power = np.array([1.0, 2.0, 3.0, 4.0])
    got = interference_at_access(users, stations, access, channel, power, 2.0, 1.0)
    # user 0 (station 0 at (0,10)): user 1 (other station, same channel) at distance sqrt(100^2+10^2);
    # user 2 shares station 0 -> orthogonal; user 3 is on another channel
    assert got[0] == pytest.approx(2.0 / (100.0**2 + 10.0**2))
    # user 1 (station 1 at (100,10)): users 0 and 2
    assert got[1] == pytest.approx(1.0 / (100.0**2 + 10.0**2) + 3.0 / (100.0**2 + 190.0**2))
    assert got[3] == 0.0
    assert math.isfinite(got.sum())
