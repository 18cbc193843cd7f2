"""Twin migration at handover: reactive costs a full transfer, a timely correct prediction hides it."""

import pytest

from mobility_twin_models.relations import MigrationConfig, simulate_migration
from mobility_twin_models.relations.migration import SlotView

CONFIG = MigrationConfig(twin_size_mb=50.0, backhaul_mbps=1000.0, hop_latency_ms=2.0, dirty_rate_mb_s=0.5,
                         sync_interval_s=1.0, threshold=0.5)


def slots(predicted: str | None, probability: float = 0.9):
    """One vehicle on s0 for 30 s, then on s1; the predictor names ``predicted`` from t = 0."""
    return [SlotView(float(t), ["v"], ["s0" if t < 30 else "s1"], [predicted], [probability]) for t in range(0, 40, 5)]


def test_reactive_migration_interrupts_for_a_full_transfer():
    result = simulate_migration(slots("s1"), CONFIG, proactive=False)
    assert result.handovers == 1
    assert result.interruption_mean_ms == pytest.approx(CONFIG.transfer_s(50.0) * 1000.0)
    assert result.interruption_mean_ms == pytest.approx(402.0)
    assert result.hidden_fraction == 0.0


def test_correct_early_prediction_leaves_only_the_last_sync_to_move():
    result = simulate_migration(slots("s1"), CONFIG)
    assert result.hidden_fraction == 1.0
    # the replica synced every second; at most 1 s of dirty state (0.5 MB) moves at the handover
    assert result.interruption_mean_ms <= CONFIG.transfer_s(0.5) * 1000.0 + 1e-9
    assert result.wasted_copies_per_handover == 0.0


def test_wrong_or_unsure_predictions_fall_back_to_reactive():
    wrong = simulate_migration(slots("s2"), CONFIG)
    assert wrong.interruption_mean_ms == pytest.approx(402.0)
    assert wrong.wasted_copies_per_handover == 1.0
    unsure = simulate_migration(slots("s1", probability=0.3), CONFIG)
    assert unsure.interruption_mean_ms == pytest.approx(402.0)
    assert unsure.backhaul_mb_per_handover == pytest.approx(50.0)


def test_migration_config_names_a_bad_value():
    with pytest.raises(ValueError, match="threshold must be in"):
        MigrationConfig(threshold=1.5)
