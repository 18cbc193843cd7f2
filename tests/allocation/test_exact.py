"""The exact per-update reference against brute force on tiny cases, and the convex core's closed form."""

import numpy as np
import pytest

from mobility_twin_models.allocation import equations as eq
from mobility_twin_models.allocation.exact import (
    ServerProblem,
    VRProblem,
    server_brute_force,
    server_exact,
    spectral_radius,
    vr_brute_force,
    vr_exact,
    weighted_square_root,
)

SCORE = eq.resolution_score(np.array([1920 * 1080, 2560 * 1440, 3840 * 2160], dtype=float), 1280 * 720)


def tiny_vr(rng, users):
    scale = rng.uniform(0.3, 0.9)
    bits = np.array([44e3, 88e3, 220e3]) * scale * rng.uniform(0.8, 1.2, (users, 1))
    return VRProblem(rng.uniform(0, 1, users), bits, 700.0, 3.75e9 * users, 2.5e6 * users, SCORE, 0.15, 0.7, 0.3)


def tiny_server(rng, n):
    size = 8 * rng.uniform(600e3, 800e3, n)
    return ServerProblem(size, size * rng.uniform(200, 400, n) * rng.uniform(0.1, 0.4), rng.uniform(0.15, 0.25, n),
                         rng.uniform(4, 12, n), rng.uniform(0, 3e-3, n), 20e6, 20e9, 0.5)


@pytest.mark.parametrize("seed", range(12))
def test_vr_exact_matches_brute_force_on_one_and_two_users(seed):
    rng = np.random.default_rng(seed)
    problem = tiny_vr(rng, 1 + seed % 2)
    exact = vr_exact(problem)
    brute = vr_brute_force(problem, steps=200)
    # the grid can only approach the optimum from below; the exact one is at least as good and close
    assert exact.mean_qoe >= brute - 1e-9
    assert exact.mean_qoe <= brute + 2e-3
    assert exact.qoe == pytest.approx(problem.qoe(exact.decision))


@pytest.mark.parametrize("seed", range(4))
def test_vr_exact_matches_brute_force_on_three_users(seed):
    problem = tiny_vr(np.random.default_rng(100 + seed), 3)
    exact = vr_exact(problem)
    brute = vr_brute_force(problem, steps=30)
    assert brute - 1e-9 <= exact.mean_qoe <= brute + 1e-2


@pytest.mark.parametrize("seed", range(12))
def test_server_exact_matches_brute_force_on_tiny_slots(seed):
    rng = np.random.default_rng(seed)
    n = 1 + seed % 3
    problem = tiny_server(rng, n)
    exact = server_exact(problem)
    brute = server_brute_force(problem, steps=300 if n <= 2 else 60)
    assert exact.utility.sum() >= brute - 1e-9
    assert exact.utility.sum() <= brute + (5e-3 if n <= 2 else 2e-2)
    assert exact.bandwidth_share.sum() <= 1 + 1e-9 and exact.cpu_share.sum() <= 1 + 1e-9
    # the tasks it serves make their deadlines, the others get nothing
    lat = problem.latency(exact.bandwidth_share, exact.cpu_share)
    assert np.all(lat[exact.served] <= problem.deadline_s[exact.served])
    assert np.all(exact.bandwidth_share[~exact.served] == 0)


def test_square_root_rule_is_the_closed_form_when_no_budget_binds():
    A, B = np.array([[1.0, 4.0, 9.0]]), np.array([[4.0, 1.0, 1.0]])
    sol = weighted_square_root(A, B, 1e9, 1.0, np.ones((1, 3), dtype=bool))
    assert sol.feasible[0]
    assert sol.x[0] == pytest.approx(np.sqrt(A[0]) / np.sqrt(A[0]).sum())
    assert sol.y[0] == pytest.approx(np.sqrt(B[0]) / np.sqrt(B[0]).sum())
    # minimum of sum A/x + B/y on the simplex: (sum sqrt A)^2 + (sum sqrt B)^2
    assert sol.objective[0] == pytest.approx(6.0 ** 2 + 4.0 ** 2)


def test_square_root_rule_with_a_binding_budget_meets_it_exactly():
    A, B = np.array([[1.0, 1.0]]), np.array([[1.0, 1.0]])
    D = np.array([[3.0, 100.0]])  # the first user would get 4 s unconstrained
    sol = weighted_square_root(A, B, D, 1.0, np.ones((1, 2), dtype=bool))
    assert sol.feasible[0]
    assert sol.latency[0, 0] == pytest.approx(3.0)
    # by hand: x1 = y1 = 2/3 makes T1 = 3, T2 = 6: the optimum of T1 + T2 subject to T1 <= 3
    assert sol.x[0, 0] == pytest.approx(2 / 3)
    assert sol.objective[0] == pytest.approx(9.0)


def test_square_root_rule_detects_infeasible_budgets():
    A, B = np.array([[1.0, 1.0]]), np.array([[1.0, 1.0]])
    sol = weighted_square_root(A, B, 3.9, 1.0, np.ones((1, 2), dtype=bool))  # 4 s is the best for both at once
    assert not sol.feasible[0]
    assert sol.objective[0] == np.inf


def test_an_empty_server_and_an_impossible_task_get_nothing():
    empty = ServerProblem(*(np.zeros(0) for _ in range(5)), 20e6, 20e9, 0.5)
    assert server_exact(empty).utility.shape == (0,)
    hopeless = ServerProblem(np.array([5e6]), np.array([1e11]), np.array([0.2]), np.array([8.0]), np.array([0.0]),
                             20e6, 20e9, 0.5)
    out = server_exact(hopeless)
    assert not out.served[0] and out.utility[0] == 0.0


@pytest.mark.parametrize("seed", range(6))
def test_greedy_rule_is_feasible_and_never_beats_the_exact_reference(seed):
    from mobility_twin_models.allocation.site import greedy_convex

    problem = tiny_server(np.random.default_rng(50 + seed), 2 + seed % 3)
    bw, cpu = greedy_convex(problem)
    held = bw > 0
    assert np.all(problem.latency(bw, cpu)[held] <= problem.deadline_s[held])
    assert problem.utility(bw, cpu).sum() <= server_exact(problem).utility.sum() + 1e-9


@pytest.mark.parametrize("seed", range(6))
def test_closed_form_feasibility_matches_a_search_over_shares_on_two_tasks(seed):
    rng = np.random.default_rng(100 + seed)
    grid = np.linspace(1e-3, 1 - 1e-3, 999)
    for _ in range(20):
        A, B = rng.uniform(0.01, 0.12, 2), rng.uniform(0.01, 0.12, 2)
        D = rng.uniform(0.1, 0.3, 2)
        # the best y for each x: task 0 needs y0 >= B0 / (D0 - A0/x), task 1 needs 1 - y0 >= B1 / (D1 - A1/(1-x))
        r0, r1 = D[0] - A[0] / grid, D[1] - A[1] / (1 - grid)
        ok = (r0 > 0) & (r1 > 0)
        need = np.where(ok, B[0] / np.where(ok, r0, 1) + B[1] / np.where(ok, r1, 1), np.inf)
        rho = spectral_radius(A, B, D, np.ones(2, dtype=bool))
        sol = weighted_square_root(A[None], B[None], D[None], 1.0, np.ones((1, 2), dtype=bool))
        assert bool(sol.feasible[0]) == bool(rho < 1.0)
        if abs(rho - 1.0) > 0.02:  # away from the boundary the grid decides the same
            assert bool(need.min() <= 1.0) == bool(rho < 1.0)
        if sol.feasible[0]:
            lat = A / sol.x[0] + B / sol.y[0]
            assert np.all(lat <= D * (1 + 1e-9))
    assert spectral_radius(np.array([0.3]), np.array([0.6]), np.array([1.0]), np.array([True])) == pytest.approx(0.9)
