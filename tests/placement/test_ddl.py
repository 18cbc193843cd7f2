"""DDL pieces: eq. 19 quantisation, host codes, the replay memory, eq. 21, training, checkpoints."""

import numpy as np
import pytest
import torch

from mobility_twin_models.placement import (
    CheckpointError,
    DDLConfig,
    DDLModel,
    DDLPlacer,
    DDLTrainer,
    InputSpec,
    InstanceGenerator,
    PlacementSetup,
    ReplayMemory,
    ScenarioConfig,
    SystemConfig,
    convergence_rate,
    load_checkpoint,
    save_checkpoint,
    twin_cost_table,
)
from mobility_twin_models.placement.ddl import bits_to_hosts, encode, hosts_to_bits, quantise, select_best

SMALL = PlacementSetup(SystemConfig(), ScenarioConfig(n_devices=20, n_twins=5, max_devices_per_twin=8), alpha=1.0)


def small_config(**kw):
    base = dict(k=6, extractor_hidden=16, features=8, hidden=(32, 16), memory_size=64, batch_size=16,
                learning_rate=3e-3, iterations=0)
    return DDLConfig(**{**base, **kw})


def test_eq19_maps_outputs_up_to_one_half_to_one():
    np.testing.assert_array_equal(quantise(np.array([0.0, 0.2, 0.5, 0.5001, 0.9])), [1, 1, 1, 0, 0])
    np.testing.assert_array_equal(quantise(torch.tensor([0.7, 0.3])), [0, 1])


def test_host_codes_round_trip_most_significant_bit_first():
    hosts = np.array([0, 1, 2, 3])
    bits = hosts_to_bits(hosts, 2)
    np.testing.assert_array_equal(bits, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(bits_to_hosts(bits, 4), hosts)


def test_codes_beyond_the_last_host_mean_the_cloud():
    # S = 2 edge servers + cloud = 3 hosts in 2 bits: code 3 does not exist, it is read as the cloud (2)
    np.testing.assert_array_equal(bits_to_hosts(np.array([[1, 1], [1, 0]]), 3), [2, 2])


def test_replay_memory_replaces_the_oldest_entry_once_full():
    spec = InputSpec(max_twins=2, max_devices_per_twin=2, n_edge=1)
    memory = ReplayMemory(3, spec)
    gen = InstanceGenerator(ScenarioConfig(n_devices=3, n_twins=2, max_devices_per_twin=2),
                            SystemConfig(n_edge=1), seed=0)
    for cost in range(5):
        batch = encode([gen()], spec)
        memory.add(batch, np.array([[0, 1]]), np.array([float(cost)]), spec.n_bits)
    assert len(memory) == 3 and memory.full
    assert sorted(memory.cost.tolist()) == [2.0, 3.0, 4.0]  # entries 0 and 1, the oldest, are gone
    assert sorted(memory.serial.tolist()) == [2, 3, 4]


def test_replay_memory_stores_labels_in_the_eq19_sense():
    spec = InputSpec(max_twins=2, max_devices_per_twin=2, n_edge=3)
    memory = ReplayMemory(2, spec)
    gen = InstanceGenerator(ScenarioConfig(n_devices=3, n_twins=2, max_devices_per_twin=2), SystemConfig(), seed=0)
    memory.add(encode([gen()], spec), np.array([[2, 3]]), np.array([1.0]), spec.n_bits)
    # eq. 19 applied to the stored targets gives back the codes of hosts 2 and 3
    np.testing.assert_array_equal(bits_to_hosts(quantise(memory.targets[0]), 4), [2, 3])


def test_eq21_convergence_rate_is_mean_min_over_max():
    assert convergence_rate([1.0, 2.0, 4.0], [1.0, 4.0, 2.0]) == pytest.approx((1.0 + 0.5 + 0.5) / 3)
    assert convergence_rate([3.0, 5.0], [3.0, 5.0]) == 1.0


def test_encode_groups_devices_by_twin_largest_workload_first():
    spec = InputSpec.for_setup(SMALL.scenario, SMALL.system)
    inst = InstanceGenerator(SMALL.scenario, SMALL.system, seed=3)()
    batch = encode([inst], spec)
    dev = batch.devices[0].reshape(spec.max_twins, spec.max_devices_per_twin, 4)
    for m in range(inst.n_twins):
        present = dev[m, :, 0] == 1
        assert present.sum() == inst.twin_sizes[m]
        w = dev[m, present, 1] * spec.workload_scale_mb
        np.testing.assert_allclose(w, np.sort(inst.workload_mb[inst.owner == m])[::-1], rtol=1e-6)
    assert batch.twin_mask[0].tolist() == [True] * 5


def test_model_gives_k_decisions_of_b_bits_per_twin():
    spec = InputSpec.for_setup(SMALL.scenario, SMALL.system)
    model = DDLModel(spec, small_config())
    inst = InstanceGenerator(SMALL.scenario, SMALL.system, seed=0)()
    batch = encode([inst, inst], spec)
    out = model(torch.from_numpy(batch.devices), torch.from_numpy(batch.servers))
    assert out.shape == (6, 2, 5, 2)
    assert torch.all((out > 0) & (out < 1))


def test_best_of_k_picks_the_cheapest_proposal():
    table = np.array([[1.0, 5.0], [2.0, 0.5]])
    candidates = np.array([[[0, 0]], [[1, 1]], [[0, 1]]])  # (K=3, batch=1, M=2)
    hosts, costs = select_best(candidates, [table])
    np.testing.assert_array_equal(hosts[0], [0, 1])
    assert costs[0] == pytest.approx(1.5)


def test_crossover_takes_each_twins_best_host_among_the_proposals():
    table = np.array([[1.0, 5.0, 0.1], [2.0, 0.5, 9.0]])
    candidates = np.array([[[0, 0]], [[1, 1]]])  # host 2 is never proposed
    hosts, costs = select_best(candidates, [table], crossover=True)
    np.testing.assert_array_equal(hosts[0], [0, 1])
    assert costs[0] == pytest.approx(1.5)


def _test_set():
    gen = InstanceGenerator(SMALL.scenario, SMALL.system, seed=99)
    test = gen.batch(64)
    return test, [twin_cost_table(i, SMALL.system, SMALL.alpha) for i in test]


def test_training_with_self_generated_labels_lowers_the_cost():
    # 8 twins of 40 devices, alpha 0.5: big enough that the best of K untrained proposals is a poor placement.
    # (On very small instances at alpha = 1 the best of K random proposals is hard to beat: the K DNNs learn
    # each other's labels and soon all propose the same placement, the known weakness of self-labelling.)
    setup = PlacementSetup(SystemConfig(), ScenarioConfig(n_devices=40, n_twins=8, max_devices_per_twin=10), alpha=0.5)
    trainer = DDLTrainer(setup, small_config(), seed=1)
    gen = InstanceGenerator(setup.scenario, setup.system, seed=99, servers=trainer.servers)
    test = gen.batch(64)
    tables = [twin_cost_table(i, setup.system, setup.alpha) for i in test]
    before = trainer.evaluate(test, tables).mean()
    log = trainer.train(600, test=test, test_tables=tables, eval_every=100)
    after = trainer.evaluate(test, tables).mean()
    assert after < before
    assert len(log.convergence) == 6 and all(0 < c <= 1 for c in log.convergence)


def test_training_starts_only_once_the_memory_is_full():
    trainer = DDLTrainer(SMALL, small_config(memory_size=32), seed=0)
    weights = [p.detach().clone() for p in trainer.model.parameters()]
    trainer.train(32)
    assert all(torch.equal(a, b) for a, b in zip(weights, trainer.model.parameters(), strict=True))
    trainer.train(2)
    assert not all(torch.equal(a, b) for a, b in zip(weights, trainer.model.parameters(), strict=True))


def test_checkpoint_round_trip_gives_the_same_decisions(tmp_path):
    trainer = DDLTrainer(SMALL, small_config(), seed=2)
    trainer.train(80)
    path = save_checkpoint(tmp_path / "ddl.pt", trainer.model, SMALL, half=False, extra={"note": "test"})
    model, setup, extra = load_checkpoint(path)
    assert setup == SMALL and extra["note"] == "test" and "created" in extra
    test, tables = _test_set()
    a = DDLPlacer(trainer.model, SMALL.system, 1.0).place_many(test, tables)
    b = DDLPlacer(model, setup.system, 1.0).place_many(test, tables)
    np.testing.assert_array_equal(a, b)


def test_missing_checkpoint_is_an_error_naming_the_path(tmp_path):
    with pytest.raises(CheckpointError, match=r"placement_ddl checkpoint .*nothing\.pt does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")


def test_instance_with_too_many_twins_for_the_network_is_rejected():
    spec = InputSpec(max_twins=3, max_devices_per_twin=8, n_edge=3)
    inst = InstanceGenerator(SMALL.scenario, SMALL.system, seed=0)()
    with pytest.raises(ValueError, match="5 twins, the network takes at most 3"):
        encode([inst], spec)
