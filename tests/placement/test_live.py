"""The live placement controller the node runs: twin groups, placement, moves with their size and time."""

from typing import NamedTuple

import numpy as np
import pytest

from mobility_twin_core import TwinSnapshot
from mobility_twin_models.placement import PlacementError
from mobility_twin_models.placement.live import ControllerConfig, Hosts, PlacementController, TwinGroups


class Device(NamedTuple):
    device_id: str
    x_m: float
    y_m: float
    workload_mb: float


class EdgeHost(NamedTuple):
    host_id: str
    x_m: float
    y_m: float
    freq_ghz: float


def scene(devices: list[Device], hosts: list[EdgeHost]) -> tuple[TwinSnapshot, np.ndarray]:
    """The twin snapshot the node's twin reader builds (server clocks as the twin's estimates), and the
    vehicles' workloads."""
    v, s = len(devices), len(hosts)
    twin = TwinSnapshot(
        t=0.0, vehicle_ids=np.array([d.device_id for d in devices], dtype=object),
        vehicle_xy=np.array([(d.x_m, d.y_m) for d in devices], float).reshape(v, 2), vehicle_vel=np.zeros((v, 2)),
        server_ids=np.array([h.host_id for h in hosts], dtype=object),
        server_xy=np.array([(h.x_m, h.y_m) for h in hosts], float).reshape(s, 2), server_coverage_m=np.full(s, 150.0),
        server_capacity_ghz=np.full(s, 5.0), rsu_ids=np.zeros(0, dtype=object), rsu_xy=np.zeros((0, 2)),
        server_estimate_hz=np.array([h.freq_ghz * 1e9 for h in hosts], float))
    return twin, np.array([d.workload_mb for d in devices], float)


def groups_of(groups: TwinGroups, devices: list[Device], hosts: list[EdgeHost]):
    twin, _ = scene(devices, hosts)
    return groups.update([str(v) for v in twin.vehicle_ids], twin.vehicle_xy, Hosts.of(twin)[0])

A, B = EdgeHost("edge_a", 0.0, 0.0, 3.0), EdgeHost("edge_b", 1000.0, 0.0, 3.0)


def cars_near(x, y, n, prefix="car", workload=25.0):
    return [Device(f"{prefix}_{i:02d}", x + i * 0.1, y, workload) for i in range(n)]


def test_vehicles_form_twins_by_nearest_site_capped_in_size():
    groups = groups_of(TwinGroups(max_devices_per_twin=8), cars_near(10, 0, 10) + cars_near(990, 0, 3, "bus"), [A, B])
    assert {t: len(m) for t, m in groups.items()} == {"edge_a/0": 8, "edge_a/1": 2, "edge_b/0": 3}


def test_twin_membership_is_sticky_when_vehicles_come_and_go():
    groups = TwinGroups(max_devices_per_twin=3)
    first = groups_of(groups, cars_near(10, 0, 5), [A, B])
    # car_00 leaves; a newcomer "aaa" (first in sort order) must not push the others around
    second = groups_of(groups, [Device("aaa", 5.0, 0.0, 25.0), *cars_near(10, 0, 5)[1:]], [A, B])
    assert first == {"edge_a/0": ["car_00", "car_01", "car_02"], "edge_a/1": ["car_03", "car_04"]}
    assert second == {"edge_a/0": ["car_01", "car_02", "aaa"], "edge_a/1": ["car_03", "car_04"]}


def test_vehicle_changing_site_changes_twin():
    groups = TwinGroups(max_devices_per_twin=8)
    groups_of(groups, cars_near(10, 0, 2), [A, B])
    moved = groups_of(groups, [Device("car_00", 10.0, 0.0, 25.0), Device("car_01", 990.0, 0.0, 25.0)], [A, B])
    assert moved == {"edge_a/0": ["car_00"], "edge_b/0": ["car_01"]}


def test_first_round_places_every_twin_with_its_synchronisation_time():
    ctl = PlacementController(ControllerConfig(alpha=1.0, solver="exact"))
    result = ctl.step(*scene(cars_near(1, 0, 8), [A, B]))
    assert result.hosts == {"edge_a/0": "edge_a"}  # next to a 3 GHz server: no upload time to speak of
    (m,) = result.migrations
    assert (m.twin_id, m.from_host, m.to_host, m.devices) == ("edge_a/0", "", "edge_a", 8)
    assert m.size_bytes == pytest.approx(8 * 25e6)
    # eq. 5 for the farthest car (1.7 m): 25 MB * 1.7 m / 40000 MB*m/s
    assert m.transfer_time_s == pytest.approx(25 * 1.7 / 40000)
    assert result.cost == pytest.approx(result.optimal_cost)


def test_twin_moves_when_its_server_slows_down_and_the_move_costs_its_state_over_the_backhaul():
    ctl = PlacementController(ControllerConfig(alpha=1.0, solver="exact", backhaul_mbps=1000.0))
    cars = cars_near(1, 0, 8)
    ctl.step(*scene(cars, [A, B]))
    result = ctl.step(*scene(cars, [EdgeHost("edge_a", 0.0, 0.0, 0.5), B]))
    (m,) = result.migrations
    assert (m.from_host, m.to_host) == ("edge_a", "cloud")
    # 200 MB at 125 MB/s discounted by gamma = 0.5 on the way to the cloud
    assert m.transfer_time_s == pytest.approx(200 / 62.5)
    assert result.hosts == {"edge_a/0": "cloud"}


def test_small_change_within_hysteresis_moves_nothing():
    ctl = PlacementController(ControllerConfig(alpha=1.0, solver="exact", hysteresis=0.05))
    cars = cars_near(1, 0, 8)
    ctl.step(*scene(cars, [A, B]))
    result = ctl.step(*scene(cars, [EdgeHost("edge_a", 0.0, 0.0, 2.9), B]))
    assert result.migrations == []
    assert result.hosts == {"edge_a/0": "edge_a"}


def random_scene(rng, n_servers, n_cars):
    hosts = [EdgeHost(f"e{i}", *rng.uniform(0, 1000, 2), rng.uniform(1.8, 3.0)) for i in range(n_servers)]
    cars = [Device(f"v{i}", *rng.uniform(0, 1000, 2), rng.uniform(10, 40)) for i in range(n_cars)]
    return cars, hosts


@pytest.mark.parametrize("n_servers", [3, 7])
def test_shipped_ddl_with_refinement_places_at_the_optimum(n_servers):
    rng = np.random.default_rng(n_servers)
    ctl = PlacementController(ControllerConfig(alpha=0.5, solver="ddl", hysteresis=0.0))
    for _ in range(3):
        result = ctl.step(*scene(*random_scene(rng, n_servers, 60)))
        assert result.solver == "ddl+refine"
        assert result.cost == pytest.approx(result.optimal_cost)


def test_plain_ddl_decision_is_a_valid_placement_near_the_optimum():
    rng = np.random.default_rng(0)
    ctl = PlacementController(ControllerConfig(alpha=0.5, solver="ddl", refine=False, hysteresis=0.0))
    cars, hosts = random_scene(rng, 3, 90)
    result = ctl.step(*scene(cars, hosts))
    assert result.solver == "ddl"
    assert set(result.hosts.values()) <= {"e0", "e1", "e2", "cloud"}
    assert result.optimal_cost <= result.cost < 1.2 * result.optimal_cost


def test_ddl_falls_back_to_the_exact_solver_with_too_few_servers():
    ctl = PlacementController(ControllerConfig(solver="ddl"))
    result = ctl.step(*scene(cars_near(1, 0, 4), [A, B]))
    assert result.solver.startswith("exact (fallback: 2 edge servers, the DDL needs 3")
    assert result.cost == pytest.approx(result.optimal_cost)


def test_empty_scene_places_nothing_and_ends_old_twins():
    ctl = PlacementController(ControllerConfig(solver="exact"))
    ctl.step(*scene(cars_near(1, 0, 4), [A, B]))
    result = ctl.step(*scene([], [A, B]))
    assert result.hosts == {} and result.migrations == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"solver": "milp"}, "solver must be one of"), ({"hysteresis": 1.0}, r"hysteresis must be in \[0, 1\)"),
     ({"alpha": -0.1}, "alpha must be in")],
)
def test_bad_controller_configuration_names_the_value(kwargs, message):
    with pytest.raises(PlacementError, match=message):
        ControllerConfig(**kwargs)


def test_server_named_like_the_cloud_is_rejected():
    ctl = PlacementController(ControllerConfig(solver="exact"))
    with pytest.raises(PlacementError, match="differ from 'cloud'"):
        ctl.step(*scene(cars_near(1, 0, 2), [EdgeHost("cloud", 0.0, 0.0, 3.0)]))


def test_a_solver_registered_by_name_places_the_twins():
    from mobility_twin_models.placement.live import SOLVERS, register_solver

    @register_solver("all_in_cloud")
    class AllInCloud:
        model_alpha = None

        def __init__(self, config):
            pass

        def decide(self, instance, table, twin_ids, hosts):
            return np.full(len(twin_ids), len(hosts.ids)), "all_in_cloud"

    try:
        result = PlacementController(ControllerConfig(solver="all_in_cloud")).step(*scene(cars_near(1, 0, 4), [A, B]))
        assert result.hosts == {"edge_a/0": "cloud"} and result.solver == "all_in_cloud"
    finally:
        del SOLVERS["all_in_cloud"]
