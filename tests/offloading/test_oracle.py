"""The offline oracle (exact P1 by dynamic programming) against brute force, and its edge cases."""

import itertools

import numpy as np
import pytest

from mobility_twin_models.offloading.errors import OffloadingError
from mobility_twin_models.offloading.oracle import brute_force_p1, min_migrations, solve_p1


def tiny_instance(rng, tau, n, pool):
    """Candidates drawn from a small pool of servers so that servers recur across slots (stays are possible)."""
    servers = np.stack([rng.choice(pool, size=n, replace=False) for _ in range(tau)])
    cost = rng.uniform(0.05, 0.25, size=(tau, n)).round(3)
    return cost, servers


@pytest.mark.parametrize("seed", range(40))
def test_oracle_equals_brute_force_on_tiny_journeys(seed):
    rng = np.random.default_rng(seed)
    tau, n = int(rng.integers(1, 7)), int(rng.integers(1, 4))
    cost, servers = tiny_instance(rng, tau, n, pool=int(rng.integers(n, n + 3)))
    for budget in range(tau):
        best, _ = brute_force_p1(cost, servers, budget)
        result = solve_p1(cost[:, None], servers[:, None], budget)
        if np.isfinite(best):
            assert result.feasible[0]
            assert result.objective[0] == pytest.approx(best)
            # the returned plan achieves the objective within the budget
            plan = result.actions[:, 0]
            assert cost[np.arange(tau), plan].sum() == pytest.approx(best)
            chosen = servers[np.arange(tau), plan]
            assert np.sum(chosen[1:] != chosen[:-1]) <= budget
            assert result.migrations[0] <= budget
        else:
            assert not result.feasible[0]
            assert result.budget[0] == min_migrations(servers[:, None])[0] > budget


def test_oracle_solves_many_users_at_once_like_one_at_a_time():
    rng = np.random.default_rng(7)
    instances = [tiny_instance(rng, 5, 3, 5) for _ in range(6)]
    cost = np.stack([c for c, _ in instances], axis=1)
    servers = np.stack([s for _, s in instances], axis=1)
    together = solve_p1(cost, servers, 2)
    for u, (c, s) in enumerate(instances):
        alone = solve_p1(c[:, None], s[:, None], 2)
        assert together.objective[u] == pytest.approx(alone.objective[0])


def test_zero_budget_keeps_the_first_server_when_it_stays_a_candidate():
    servers = np.array([[1, 2], [2, 1], [1, 2]])
    cost = np.array([[0.2, 0.1], [0.1, 0.2], [0.2, 0.1]])  # the cheap one alternates between servers 1 and 2
    result = solve_p1(cost[:, None], servers[:, None], 0)
    chosen = servers[np.arange(3), result.actions[:, 0]]
    assert len(set(chosen)) == 1
    assert result.objective[0] == pytest.approx(0.1 + 0.1 + 0.1)  # server 2 is cheap throughout


def test_budget_that_cannot_be_met_is_raised_to_the_forced_migrations():
    servers = np.array([[0], [1], [2], [3]])  # a new server every slot: 3 forced migrations
    cost = np.full((4, 1), 0.1)
    result = solve_p1(cost[:, None], servers[:, None], 1)
    assert not result.feasible[0]
    assert result.budget[0] == 3
    assert result.migrations[0] == 3


def test_more_budget_never_costs_more():
    rng = np.random.default_rng(3)
    cost, servers = tiny_instance(rng, 12, 3, 5)
    values = [solve_p1(cost[:, None], servers[:, None], b).objective[0] for b in range(12)]
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(values))


def test_oracle_rejects_infinite_costs_and_mismatched_shapes():
    with pytest.raises(OffloadingError, match="finite"):
        solve_p1(np.full((2, 1, 2), np.inf), np.zeros((2, 1, 2), dtype=int), 1)
    with pytest.raises(OffloadingError, match="same"):
        solve_p1(np.zeros((2, 1, 2)), np.zeros((2, 1, 3), dtype=int), 1)
