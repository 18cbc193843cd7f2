"""Imperfect drivers in the SUMO world (collision-warning scenarios): sigma, tau, red-light runners."""

from dataclasses import replace

import pytest

pytest.importorskip("libsumo")

from mobility_twin_sim.scenario import load_scenario
from mobility_twin_sim.sumo import DemandSection, SumoSetup, SumoWorld, SumoWorldConfig
from mobility_twin_sim.sumo.config import DriversSection, SumoConfigError

CONFIG = SumoWorldConfig(demand=DemandSection(scale=2.0, pedestrians_period_s=0.0, bicycles_period_s=0.0),
                         ssm_probability=0.0, drivers=DriversSection(sigma=0.8, tau=0.6, red_light_share=0.5,
                                                                     red_light_time_s=2.0))
SETUP = SumoSetup(start="2008-02-02 16:01:00", duration_s=60.0, seed=5, cav_count=1)

pytestmark = pytest.mark.usefixtures("sumo_cache")


def test_bad_driver_values_are_refused_naming_the_key():
    for bad in (DriversSection(sigma=1.5), DriversSection(tau=0.0), DriversSection(red_light_share=2.0),
                DriversSection(red_light_time_s=-1.0)):
        with pytest.raises(SumoConfigError, match=r"world\.drivers"):
            replace(CONFIG, drivers=bad).validate()
    assert load_scenario("city_conflicts").world.drivers == DriversSection(sigma=0.6, tau=0.6, red_light_share=0.05,
                                                                           red_light_time_s=2.0)


def test_drivers_are_imperfect_and_some_run_red_lights(tmp_path):
    with SumoWorld(CONFIG, SETUP, run_dir=tmp_path, log=lambda *a: None) as world:
        sumo = world._sumo
        assert sumo.vehicletype.getImperfection("car") == pytest.approx(0.8)
        assert sumo.vehicletype.getTau("car") == pytest.approx(0.6)
        assert sumo.vehicletype.getTau("cav") != pytest.approx(0.6)  # CAVs drive as they are
        t = world.start_s
        for _ in range(50):
            t += world.slot_s
            world.advance(t)
        violators = world.counters["red_light_violators"]
        departed = len(world._num)
        assert 0.3 * departed <= violators <= 0.7 * departed
        red = [v for v in sumo.vehicle.getIDList() if sumo.vehicle.getTypeID(v).endswith("_red")]
        assert red and not any(v.startswith("cav_") for v in red)
        assert sumo.vehicletype.getImperfection(sumo.vehicle.getTypeID(red[0])) == pytest.approx(0.8)
    assert (tmp_path / "drivers.add.xml").exists()
