"""Each equation of the cost model (eq. 1-17) against a hand computation on the tiny instance.

Hand values (tiny_instance, tiny_system): w = 10, 20, 4 MB; d = 5, 10, 10 m.
"""

import numpy as np
import pytest

from mobility_twin_models.placement import (
    PlacementError,
    system_cost,
    system_energy,
    system_time,
    twin_cost_table,
)
from mobility_twin_models.placement import cost as c

EDGE, CLOUD = 0, 1
PLACEMENT = np.array([EDGE, CLOUD])  # twin 0 on the edge server, twin 1 in the cloud


def test_eq1_cloud_transmission_is_data_over_discounted_bandwidth(tiny_system):
    # w / (b gamma) = w / (10 MB/s * 0.5)
    assert c.cloud_transmission_time([10.0, 20.0, 4.0], tiny_system) == pytest.approx([2.0, 4.0, 0.8])


def test_eq2_cloud_execution_is_instructions_over_clock(tiny_system):
    # delta w / f_c = 0.5 w / 4
    assert c.cloud_execution_time([10.0, 20.0, 4.0], tiny_system) == pytest.approx([1.25, 2.5, 0.5])


def test_eq3_cloud_energy_adds_transmission_and_execution(tiny_system):
    # 0.3 w + 0.1 * 0.5 w
    assert c.cloud_energy([10.0, 20.0, 4.0], tiny_system) == pytest.approx([3.5, 7.0, 1.4])


def test_eq4_edge_rate_falls_with_distance(tiny_system):
    assert c.edge_rate([5.0, 10.0], tiny_system) == pytest.approx([20.0, 10.0])


def test_eq5_edge_transmission_is_data_times_distance_over_lambda(tiny_system, tiny_instance):
    d = c.distances(tiny_instance)[:, 0]
    assert d == pytest.approx([5.0, 10.0, 10.0])
    assert c.edge_transmission_time([10.0, 20.0, 4.0], d, tiny_system) == pytest.approx([0.5, 2.0, 0.4])
    # eq. 5 is eq. 4 inverted: w / p
    assert c.edge_transmission_time(10.0, 5.0, tiny_system) == pytest.approx(10.0 / c.edge_rate(5.0, tiny_system))


def test_eq6_edge_execution_uses_the_edge_clock(tiny_system):
    assert c.edge_execution_time([10.0, 20.0, 4.0], 2.0, tiny_system) == pytest.approx([2.5, 5.0, 1.0])


def test_eq7_edge_energy_adds_transmission_and_execution(tiny_system):
    # 0.4 w + 0.2 * 0.5 w
    assert c.edge_energy([10.0, 20.0, 4.0], tiny_system) == pytest.approx([5.0, 10.0, 2.0])


def test_delay_matrices_stack_edge_columns_then_the_cloud(tiny_system, tiny_instance):
    psi_t, psi_c, xi = c.delay_matrices(tiny_instance, tiny_system)
    np.testing.assert_allclose(psi_t, [[0.5, 2.0], [2.0, 4.0], [0.4, 0.8]])
    np.testing.assert_allclose(psi_c, [[2.5, 1.25], [5.0, 2.5], [1.0, 0.5]])
    np.testing.assert_allclose(xi, [[5.0, 3.5], [10.0, 7.0], [2.0, 1.4]])


def test_eq8_to_eq10_device_decisions_follow_their_twin(tiny_instance):
    g = c.ownership_matrix(tiny_instance)
    np.testing.assert_array_equal(g, [[1, 0], [1, 0], [0, 1]])
    x = c.placement_matrix(PLACEMENT, 2)
    np.testing.assert_array_equal(x, [[1, 0], [0, 1]])
    np.testing.assert_array_equal(c.device_decisions(tiny_instance, x), [[1, 0], [1, 0], [0, 1]])


def test_eq13_eq14_energy_per_twin_and_in_total(tiny_system, tiny_instance):
    x = c.placement_matrix(PLACEMENT, 2)
    assert c.twin_energy(tiny_instance, tiny_system, x) == pytest.approx([15.0, 1.4])
    assert system_energy(tiny_instance, tiny_system, x) == pytest.approx(16.4)


def test_eq15_synchronisation_waits_for_the_slowest_device(tiny_system, tiny_instance):
    x = c.placement_matrix(PLACEMENT, 2)
    sync, _ = c.twin_times(tiny_instance, tiny_system, x)
    assert sync == pytest.approx([2.0, 0.8])  # max(0.5, 2.0); the lone device 2 in the cloud


def test_eq16_group_time_is_device_count_times_sync_plus_execution(tiny_system, tiny_instance):
    x = c.placement_matrix(PLACEMENT, 2)
    _, group = c.twin_times(tiny_instance, tiny_system, x)
    assert group == pytest.approx([2 * (2.0 + 2.5 + 5.0), 1 * (0.8 + 0.5)])
    assert system_time(tiny_instance, tiny_system, x) == pytest.approx(20.3)


@pytest.mark.parametrize(("alpha", "expected"), [(0.0, 16.4), (0.25, 17.375), (1.0, 20.3)])
def test_eq17_weights_time_against_energy(tiny_system, tiny_instance, alpha, expected):
    x = c.placement_matrix(PLACEMENT, 2)
    assert system_cost(tiny_instance, tiny_system, x, alpha) == pytest.approx(expected)


def test_twin_cost_table_regroups_eq17_by_twin(tiny_system, tiny_instance):
    table = twin_cost_table(tiny_instance, tiny_system, 0.25)
    np.testing.assert_allclose(table, [[16.0, 11.75], [1.85, 1.375]])
    for hosts in ([0, 0], [0, 1], [1, 0], [1, 1]):
        x = c.placement_matrix(hosts, 2)
        assert c.placement_costs(table, np.array(hosts)) == pytest.approx(system_cost(tiny_instance, tiny_system, x, 0.25))


def test_placement_costs_scores_many_placements_at_once(tiny_system, tiny_instance):
    table = twin_cost_table(tiny_instance, tiny_system, 0.25)
    costs = c.placement_costs(table, np.array([[0, 1], [1, 1]]))
    assert costs == pytest.approx([17.375, 13.125])


def test_placement_that_is_not_one_hot_is_rejected(tiny_system, tiny_instance):
    with pytest.raises(PlacementError, match="one-hot"):
        system_cost(tiny_instance, tiny_system, np.array([[1.0, 1.0], [0.0, 1.0]]), 0.5)
    with pytest.raises(PlacementError, match=r"host index in \[0, 2\)"):
        c.placement_matrix([0, 2], 2)


def test_alpha_outside_unit_interval_is_rejected(tiny_system, tiny_instance):
    with pytest.raises(PlacementError, match="alpha must be in"):
        twin_cost_table(tiny_instance, tiny_system, 1.5)
