"""The online controller the ROS node wraps: decisions, the per-vehicle deficit queue, bad input counted."""

import math
from typing import NamedTuple

import numpy as np
import pytest

from mobility_twin_core import TwinSnapshot
from mobility_twin_models.offloading.agent import ActorCritic, AgentSpec, save_checkpoint
from mobility_twin_models.offloading.config import MigrationConfig
from mobility_twin_models.offloading.controller import ControllerConfig, OffloadingController
from mobility_twin_models.offloading.errors import CheckpointError, OffloadingError


class Vehicle(NamedTuple):
    vehicle_id: str
    x: float
    y: float
    track_id: int = 0


class ServerTwin(NamedTuple):
    server_id: str
    x: float
    y: float
    f_est_hz: float
    deviation_hz: float = 0.0
    coverage_radius_m: float = 150.0


def twin(vehicles: list[Vehicle], servers: list[ServerTwin]) -> TwinSnapshot:
    """The twin snapshot the node's twin reader would build."""
    v, s = len(vehicles), len(servers)
    return TwinSnapshot(
        t=0.0, vehicle_ids=np.array([x.vehicle_id for x in vehicles], dtype=object),
        vehicle_xy=np.array([(x.x, x.y) for x in vehicles], float).reshape(v, 2), vehicle_vel=np.zeros((v, 2)),
        server_ids=np.array([x.server_id for x in servers], dtype=object),
        server_xy=np.array([(x.x, x.y) for x in servers], float).reshape(s, 2),
        server_coverage_m=np.array([x.coverage_radius_m for x in servers], float),
        server_capacity_ghz=np.full(s, 20.0), rsu_ids=np.zeros(0, dtype=object), rsu_xy=np.zeros((0, 2)),
        vehicle_track_id=np.array([x.track_id for x in vehicles], dtype=np.int64),
        server_estimate_hz=np.array([x.f_est_hz for x in servers], float),
        server_deviation_hz=np.array([x.deviation_hz for x in servers], float),
    )


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
    result = ctl.decide(0.0, twin([Vehicle("car_a", 10.0, 5.0, 7), Vehicle("car_b", 440.0, 300.0)], grid_servers()))
    by_id = {d.vehicle_id: d for d in result.decisions}
    assert by_id["car_a"].server_id == by_id["car_a"].access_server_id == "edge_0_0"
    assert by_id["car_a"].track_id == 7
    assert by_id["car_b"].server_id == "edge_3_2"
    assert not any(d.migrated for d in result.decisions)
    assert all(0 < d.expected_latency_s < 1 for d in result.decisions)


def test_greedy_avoids_a_busy_nearest_server():
    ctl = OffloadingController(ControllerConfig(policy="greedy"))
    result = ctl.decide(0.0, twin([Vehicle("car", 10.0, 5.0)], grid_servers(busy={"edge_0_0"})))
    assert result.decisions[0].server_id != "edge_0_0"
    assert result.decisions[0].access_server_id == "edge_0_0"


def test_migrations_feed_the_per_vehicle_deficit_queue():
    ctl = OffloadingController(ControllerConfig(policy="nearest_first", migration=MigrationConfig(budget_rate=0.2)))
    ctl.decide(0.0, twin([Vehicle("car", 10.0, 5.0)], grid_servers()))
    moved = ctl.decide(1.0, twin([Vehicle("car", 160.0, 5.0)], grid_servers()))  # now nearest to edge_1_0
    d = moved.decisions[0]
    assert d.migrated and d.previous_server_id == "edge_0_0" and d.server_id == "edge_1_0"
    assert d.migration_cost == 1.0
    assert moved.mean_queue == pytest.approx(0.8)
    stay = ctl.decide(2.0, twin([Vehicle("car", 165.0, 5.0)], grid_servers()))
    assert not stay.decisions[0].migrated
    assert stay.mean_queue == pytest.approx(0.6)


def test_bad_vehicles_and_servers_are_counted_not_fatal():
    servers = [*grid_servers(), ServerTwin("broken", math.nan, 0.0, 1e9), ServerTwin("idle", 0.0, 0.0, 0.0)]
    vehicles = [Vehicle("ok", 10.0, 10.0), Vehicle("ok", 20.0, 20.0), Vehicle("", 1.0, 1.0)]
    result = OffloadingController(ControllerConfig(policy="greedy")).decide(0.0, twin(vehicles, servers))
    assert [d.vehicle_id for d in result.decisions] == ["ok"]
    assert result.skipped["bad_server"] == 2
    assert result.skipped["bad_vehicle"] == 1
    assert result.skipped["duplicate_vehicle"] == 1


def test_no_servers_means_no_decisions_and_a_count():
    result = OffloadingController(ControllerConfig(policy="greedy")).decide(0.0, twin([Vehicle("car", 0.0, 0.0)], []))
    assert result.decisions == [] and result.skipped["no_server"] == 1


def test_too_few_servers_fall_back_to_greedy():
    result = OffloadingController(ControllerConfig(policy="nearest_first", candidates=5)).decide(0.0, twin([Vehicle("car", 0.0, 0.0)], grid_servers()[:3]))
    assert result.skipped["too_few_servers"] == 1
    assert result.policy == "nearest_first->greedy"
    assert len(result.decisions) == 1


def test_vanished_previous_server_forces_a_migration_and_unseen_vehicles_are_forgotten():
    ctl = OffloadingController(ControllerConfig(policy="nearest_first", vehicle_timeout_s=5.0))
    ctl.decide(0.0, twin([Vehicle("car", 10.0, 5.0), Vehicle("bus", 300.0, 300.0)], grid_servers()))
    without = [s for s in grid_servers() if s.server_id != "edge_0_0"]
    result = ctl.decide(1.0, twin([Vehicle("car", 10.0, 5.0)], without))
    assert result.skipped["previous_server_gone"] == 1
    assert result.decisions[0].migrated
    later = ctl.decide(10.0, twin([Vehicle("car", 10.0, 5.0)], without))
    assert later.skipped["vehicle_expired"] == 1  # the bus, unseen for 10 s
    assert "bus" not in ctl.memory


def test_actor_critic_controller_loads_a_checkpoint_and_decides(tmp_path):
    agent = ActorCritic(AgentSpec(5, actor_kind="shared", actor_hidden=(16, 16, 8), critic_hidden=(16, 16, 8)))
    path = save_checkpoint(tmp_path / "ac.pt", {5: agent})
    ctl = OffloadingController(ControllerConfig(policy="actor_critic", checkpoint=str(path)))
    result = ctl.decide(0.0, twin([Vehicle(f"car_{i}", 30.0 * i, 40.0 * i) for i in range(6)], grid_servers()))
    assert len(result.decisions) == 6 and result.policy == "actor_critic"
    with pytest.raises(CheckpointError, match="not N=10"):
        OffloadingController(ControllerConfig(policy="actor_critic", checkpoint=str(path), candidates=10))


def test_unknown_policy_is_rejected_by_name():
    with pytest.raises(OffloadingError, match="'random'"):
        ControllerConfig(policy="random")


def test_a_policy_registered_by_name_is_used_by_the_controller():
    from mobility_twin_models.offloading.controller import POLICIES, register_policy

    class FarthestCandidate:
        name = "farthest_candidate"

        def act(self, obs):
            return np.full(obs.servers.shape[0], obs.servers.shape[1] - 1)

    register_policy("farthest_candidate")(lambda config, agent: FarthestCandidate())
    try:
        ctl = OffloadingController(ControllerConfig(policy="farthest_candidate", candidates=3))
        result = ctl.decide(0.0, twin([Vehicle("car", 10.0, 5.0)], grid_servers()))
        d = result.decisions[0]
        assert result.policy == "farthest_candidate"
        assert d.access_server_id == "edge_0_0" and d.server_id not in ("edge_0_0",)
    finally:
        del POLICIES["farthest_candidate"]
    with pytest.raises(OffloadingError, match="'farthest_candidate'"):
        ControllerConfig(policy="farthest_candidate")
