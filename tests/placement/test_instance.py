"""Seeded instances and configuration checks."""

import numpy as np
import pytest

from mobility_twin_models.placement import InstanceGenerator, PlacementSetup, ScenarioConfig, SystemConfig
from mobility_twin_models.placement.instance import edge_positions


def test_generator_is_reproducible_from_its_seed():
    a = InstanceGenerator(ScenarioConfig(), SystemConfig(), seed=5).batch(3)
    b = InstanceGenerator(ScenarioConfig(), SystemConfig(), seed=5).batch(3)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.workload_mb, y.workload_mb)
        np.testing.assert_array_equal(x.owner, y.owner)


def test_table2_instances_respect_the_paper_ranges():
    system = SystemConfig()
    gen = InstanceGenerator(ScenarioConfig(), system, seed=0)
    assert np.all((gen.servers.edge_freq_ghz >= 1.8) & (gen.servers.edge_freq_ghz <= 3.0))
    assert gen.servers.cloud_freq_ghz == 3.5
    for inst in gen.batch(20):
        assert inst.n_devices == 120 and inst.n_twins == 15
        assert np.all((inst.workload_mb >= 10) & (inst.workload_mb <= 40))
        assert np.all(inst.xy_m >= 0) and np.all(inst.xy_m <= [1000.0, 800.0])
        sizes = inst.twin_sizes
        assert sizes.min() >= 1 and sizes.max() <= 16 and sizes.sum() == 120


def test_servers_stay_fixed_unless_asked_to_vary():
    gen = InstanceGenerator(ScenarioConfig(), SystemConfig(), seed=0)
    assert gen().servers is gen().servers
    varying = InstanceGenerator(ScenarioConfig(), SystemConfig(), seed=0, vary_servers=True)
    assert not np.array_equal(varying().servers.edge_xy_m, varying().servers.edge_xy_m)


def test_default_edge_layout_is_a_triangle_in_the_field():
    np.testing.assert_allclose(edge_positions(SystemConfig()), [[250, 200], [750, 200], [500, 600]])


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: SystemConfig(gamma=0.0), "gamma must be > 0, got 0.0"),
        (lambda: SystemConfig(edge_freq_ghz=(3.0, 1.8)), r"edge_freq_ghz must be an increasing pair"),
        (lambda: ScenarioConfig(n_devices=10, n_twins=15), r"n_devices \(10\) must be >= n_twins \(15\)"),
        (lambda: ScenarioConfig(n_devices=200, n_twins=10, max_devices_per_twin=16), "exceeds n_twins x"),
        (lambda: PlacementSetup(alpha=1.2), "alpha must be in"),
    ],
)
def test_bad_configuration_names_the_value(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()
