"""The online controller the ROS node wraps: decisions, the per-vehicle deficit queue, bad input counted."""

import math

import pytest

from mobility_twin_models.offloading.agent import ActorCritic, AgentSpec, save_checkpoint
from mobility_twin_models.offloading.config import MigrationConfig
from mobility_twin_models.offloading.controller import (
    ControllerConfig,
    OffloadingController,
    ServerTwin,
    Vehicle,
)
from mobility_twin_models.offloading.errors import CheckpointError, OffloadingError


def grid_servers(busy: set[str] = frozenset()):
    """A 4 x 4 lattice, 150 m apart; ``busy`` servers have a tenth of the frequency of the others."""
    out = []
    for i in range(4):
        for j in range(4):
            sid = f"edge_{i}_{j}"
            out.append(ServerTwin(sid, 150.0 * i, 150.0 * j, 2e9 if sid in busy else 20e9, 0.5e9))
    return out


def test_nearest_first_serves_each_vehicle_from_its_nearest_server():
    ctl = OffloadingController(ControllerConfig(policy="nearest_first"))
    result = ctl.decide(0.0, [Vehicle("car_a", 10.0, 5.0, 7), Vehicle("car_b", 440.0, 300.0)], grid_servers())
    by_id = {d.vehicle_id: d for d in result.decisions}
    assert by_id["car_a"].server_id == by_id["car_a"].access_server_id == "edge_0_0"
    assert by_id["car_a"].track_id == 7
    assert by_id["car_b"].server_id == "edge_3_2"
    assert not any(d.migrated for d in result.decisions)
    assert all(0 < d.expected_latency_s < 1 for d in result.decisions)


def test_greedy_avoids_a_busy_nearest_server():
    ctl = OffloadingController(ControllerConfig(policy="greedy"))
    result = ctl.decide(0.0, [Vehicle("car", 10.0, 5.0)], grid_servers(busy={"edge_0_0"}))
    assert result.decisions[0].server_id != "edge_0_0"
    assert result.decisions[0].access_server_id == "edge_0_0"


def test_migrations_feed_the_per_vehicle_deficit_queue():
    ctl = OffloadingController(ControllerConfig(policy="nearest_first", migration=MigrationConfig(budget_rate=0.2)))
    ctl.decide(0.0, [Vehicle("car", 10.0, 5.0)], grid_servers())
    moved = ctl.decide(1.0, [Vehicle("car", 160.0, 5.0)], grid_servers())  # now nearest to edge_1_0
    d = moved.decisions[0]
    assert d.migrated and d.previous_server_id == "edge_0_0" and d.server_id == "edge_1_0"
    assert d.migration_cost == 1.0
    assert moved.mean_queue == pytest.approx(0.8)
    stay = ctl.decide(2.0, [Vehicle("car", 165.0, 5.0)], grid_servers())
    assert not stay.decisions[0].migrated
    assert stay.mean_queue == pytest.approx(0.6)


def test_bad_vehicles_and_servers_are_counted_not_fatal():
    servers = [*grid_servers(), ServerTwin("broken", math.nan, 0.0, 1e9), ServerTwin("idle", 0.0, 0.0, 0.0)]
    vehicles = [Vehicle("ok", 10.0, 10.0), Vehicle("nan", math.nan, 0.0), Vehicle("ok", 20.0, 20.0),
                Vehicle("", 1.0, 1.0)]
    result = OffloadingController(ControllerConfig(policy="greedy")).decide(0.0, vehicles, servers)
    assert [d.vehicle_id for d in result.decisions] == ["ok"]
    assert result.skipped["bad_server"] == 2
    assert result.skipped["bad_vehicle"] == 2
    assert result.skipped["duplicate_vehicle"] == 1


def test_no_servers_means_no_decisions_and_a_count():
    result = OffloadingController(ControllerConfig(policy="greedy")).decide(0.0, [Vehicle("car", 0.0, 0.0)], [])
    assert result.decisions == [] and result.skipped["no_server"] == 1


def test_too_few_servers_fall_back_to_greedy():
    result = OffloadingController(ControllerConfig(policy="nearest_first", candidates=5)).decide(
        0.0, [Vehicle("car", 0.0, 0.0)], grid_servers()[:3])
    assert result.skipped["too_few_servers"] == 1
    assert result.policy == "nearest_first->greedy"
    assert len(result.decisions) == 1


def test_vanished_previous_server_forces_a_migration_and_unseen_vehicles_are_forgotten():
    ctl = OffloadingController(ControllerConfig(policy="nearest_first", vehicle_timeout_s=5.0))
    ctl.decide(0.0, [Vehicle("car", 10.0, 5.0), Vehicle("bus", 300.0, 300.0)], grid_servers())
    without = [s for s in grid_servers() if s.server_id != "edge_0_0"]
    result = ctl.decide(1.0, [Vehicle("car", 10.0, 5.0)], without)
    assert result.skipped["previous_server_gone"] == 1
    assert result.decisions[0].migrated
    later = ctl.decide(10.0, [Vehicle("car", 10.0, 5.0)], without)
    assert later.skipped["vehicle_expired"] == 1  # the bus, unseen for 10 s
    assert "bus" not in ctl.memory


def test_actor_critic_controller_loads_a_checkpoint_and_decides(tmp_path):
    agent = ActorCritic(AgentSpec(5, actor_kind="shared", actor_hidden=(16, 16, 8), critic_hidden=(16, 16, 8)))
    path = save_checkpoint(tmp_path / "ac.pt", {5: agent})
    ctl = OffloadingController(ControllerConfig(policy="actor_critic", checkpoint=str(path)))
    result = ctl.decide(0.0, [Vehicle(f"car_{i}", 30.0 * i, 40.0 * i) for i in range(6)], grid_servers())
    assert len(result.decisions) == 6 and result.policy == "actor_critic"
    with pytest.raises(CheckpointError, match="not N=10"):
        OffloadingController(ControllerConfig(policy="actor_critic", checkpoint=str(path), candidates=10))


def test_unknown_policy_is_rejected_by_name():
    with pytest.raises(OffloadingError, match="'random'"):
        ControllerConfig(policy="random")
