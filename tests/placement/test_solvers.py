"""The exact solvers agree with brute force, the baselines do what Sec. 5.3 says."""

import itertools

import numpy as np
import pytest

from mobility_twin_models.placement import (
    InstanceGenerator,
    PlacementError,
    ScenarioConfig,
    SystemConfig,
    solvers,
    system_cost,
    twin_cost_table,
)
from mobility_twin_models.placement.cost import placement_matrix

SYSTEM = SystemConfig()


def instances(n_twins, n_devices, count, seed=0):
    gen = InstanceGenerator(ScenarioConfig(n_devices=n_devices, n_twins=n_twins), SYSTEM, seed)
    return gen.batch(count)


def brute_force(instance, alpha):
    """Every placement scored with the matrix form of eq. 17 (no cost table)."""
    hosts = instance.servers.n_hosts
    return min(system_cost(instance, SYSTEM, placement_matrix(p, hosts), alpha)
               for p in itertools.product(range(hosts), repeat=instance.n_twins))


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.75, 1.0])
def test_enumeration_and_argmin_equal_brute_force_on_tiny_instances(alpha):
    for inst in instances(n_twins=3, n_devices=9, count=4, seed=1):
        best = brute_force(inst, alpha)
        table = twin_cost_table(inst, SYSTEM, alpha)
        for hosts in (solvers.enumerate_optimum(table), solvers.separable_optimum(table), solvers.solve_exact(inst, SYSTEM, alpha)):
            x = placement_matrix(hosts, inst.servers.n_hosts)
            assert system_cost(inst, SYSTEM, x, alpha) == pytest.approx(best, rel=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_mip_equals_enumeration_where_both_run(alpha):
    for inst in instances(n_twins=6, n_devices=30, count=3, seed=2):
        table = twin_cost_table(inst, SYSTEM, alpha)
        enum_cost = table[np.arange(6), solvers.enumerate_optimum(table)].sum()
        mip = solvers.mip_optimum(inst, SYSTEM, alpha)
        assert mip.objective == pytest.approx(enum_cost, rel=1e-7)
        assert table[np.arange(6), mip.hosts].sum() == pytest.approx(enum_cost, rel=1e-9)


def test_mip_solves_the_table2_size_that_enumeration_cannot():
    inst = instances(n_twins=15, n_devices=120, count=1, seed=3)[0]
    table = twin_cost_table(inst, SYSTEM, 1.0)
    with pytest.raises(PlacementError, match=r"4\^15 = 1073741824 placements"):
        solvers.enumerate_optimum(table)
    mip = solvers.mip_optimum(inst, SYSTEM, 1.0)
    assert mip.objective == pytest.approx(table.min(axis=1).sum(), rel=1e-7)


def test_cloud_only_puts_every_twin_on_the_last_host():
    np.testing.assert_array_equal(solvers.cloud_only(5, 4), [3, 3, 3, 3, 3])


def test_average_distribution_balances_workload_largest_first():
    # largest first, each to the least-loaded host: 50->h0, 40->h1, 30->h2, 20->h3, 10->h3 (now 30), 5->h2 (30, first)
    hosts = solvers.average_distribution(np.array([50.0, 10.0, 40.0, 30.0, 20.0, 5.0]), 4)
    np.testing.assert_array_equal(hosts, [0, 3, 1, 2, 3, 2])
    loads = np.bincount(hosts, weights=[50.0, 10.0, 40.0, 30.0, 20.0, 5.0], minlength=4)
    np.testing.assert_allclose(loads, [50.0, 40.0, 35.0, 30.0])


def test_random_placement_uses_every_host_and_nothing_else():
    hosts = solvers.random_placement(2000, 4, np.random.default_rng(0))
    assert set(hosts.tolist()) == {0, 1, 2, 3}


def test_single_twin_refinement_reaches_the_optimum_of_the_separable_cost():
    inst = instances(n_twins=15, n_devices=120, count=1, seed=4)[0]
    table = twin_cost_table(inst, SYSTEM, 0.75)
    start = solvers.cloud_only(15, 4)
    refined = solvers.refine_single_moves(table, start)
    assert table[np.arange(15), refined].sum() == pytest.approx(table.min(axis=1).sum())
