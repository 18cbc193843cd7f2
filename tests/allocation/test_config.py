"""Bad configurations are refused with an error naming the key."""

import pytest

from mobility_twin_models.allocation import (
    AgentConfig,
    AllocationError,
    ContinualConfig,
    Regime,
    ScheduleConfig,
    SiteConfig,
    VRConfig,
)


@pytest.mark.parametrize(("factory", "key", "value"), [
    (VRConfig, "users", 0),
    (VRConfig, "cpu_hz", -15e9),
    (VRConfig, "bandwidth_bps", float("nan")),
    (VRConfig, "threshold_s", 0.0),
    (VRConfig, "fairness_threshold", 1.5),
    (VRConfig, "fairness_horizon", 0),
    (VRConfig, "level_pixels", (1.0, 3.0)),
    (VRConfig, "adaptive_thresholds", (0.5,)),
    (VRConfig, "baseline_level", 7),
    (VRConfig, "complexity", (1.2, 0.6)),
    (VRConfig, "cpu_schedule", ((10, 1.0),)),
    (VRConfig, "attention_persistence", 1.5),
    (SiteConfig, "server_freq_hz", (25e9, 15e9)),
    (SiteConfig, "coverage_radius_m", 0.0),
    (SiteConfig, "max_vehicles", 0),
    (SiteConfig, "speed_mps", (-1.0, 5.0)),
    (SiteConfig, "shadowing_persistence", 2.0),
    (AgentConfig, "hidden", ()),
    (AgentConfig, "learning_rate", 0.0),
    (AgentConfig, "gamma", 1.0),
    (AgentConfig, "batch_size", 0),
    (AgentConfig, "emulated_actions", -1),
    (ContinualConfig, "strategy", "forget"),
    (ContinualConfig, "recent_capacity", 0),
    (ContinualConfig, "reservoir_fraction", 1.5),
    (ScheduleConfig, "offline_updates", 0),
])
def test_bad_value_is_refused_naming_the_key(factory, key, value):
    with pytest.raises(AllocationError, match=key):
        factory(**{key: value})


def test_schedule_order_is_checked():
    with pytest.raises(AllocationError, match="start_update"):
        ScheduleConfig(offline_updates=1000, continual_from=1000, start_update=500, total_updates=4000)


def test_regime_values_are_checked_with_its_name():
    with pytest.raises(AllocationError, match=r"slow.*cpu_scale"):
        Regime("slow", cpu_scale=0.0)


def test_unknown_key_of_with_is_named():
    with pytest.raises(AllocationError, match="no field 'usres'"):
        VRConfig().with_(usres=3)
    assert SiteConfig().with_(task__deadline_s=(0.1, 0.2)).task.deadline_s == (0.1, 0.2)


def test_paper_values_are_the_defaults():
    c = VRConfig()
    assert (c.users, c.cpu_hz, c.bandwidth_bps, c.threshold_s, c.fairness_threshold) == (4, 15e9, 10e6, 0.150, 0.97)
    s = ScheduleConfig()
    assert (s.offline_updates, s.start_update) == (1000, 2000)
    site = SiteConfig()
    assert site.task.size_bytes == (600e3, 800e3) and site.task.deadline_s == (0.150, 0.250)
    assert site.radio.bandwidth_hz == 20e6 and site.server_freq_hz == (15e9, 25e9)
