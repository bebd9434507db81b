"""SyntheticGenerator.calibrate and params."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import spe


@pytest.fixture(scope="module")
def history() -> dict[str, np.ndarray]:
    real = spe.SyntheticGenerator(seed=1, params={"climate": {"temp_mean_c": 8.0},
                                                  "demand": {"heating_mw_per_c": 70.0}})
    return real.arrays("2025-01-01T00:00:00Z", hours=2 * 8760)


def test_calibration_recovers_the_site(history: dict[str, np.ndarray]) -> None:
    gen = spe.SyntheticGenerator(seed=7)
    fitted, report = gen.calibrate(history)
    assert type(fitted) is spe.SyntheticGenerator
    assert (fitted.seed, fitted.latitude, fitted.timezone) == (7, gen.latitude, gen.timezone)
    assert report["temperature"]["mean_c"] == pytest.approx(8.0, abs=0.6)
    assert report["demand"]["heating_mw_per_c"] == pytest.approx(70.0, abs=10.0)
    assert report["hours_used"] > 8000
    assert fitted.params is not None
    assert fitted.params["climate"]["temp_mean_c"] == report["temperature"]["mean_c"]
    assert "params={...}" in repr(fitted)
    # The calibrated generator is colder than the default one.
    t_fitted = fitted.arrays("2026-01-01T00:00:00Z", 8760)["temperature_2m"].mean()
    t_default = gen.arrays("2026-01-01T00:00:00Z", 8760)["temperature_2m"].mean()
    assert t_fitted < t_default - 1.0


def test_calibrated_generator_pickles_with_its_params(history: dict[str, np.ndarray]) -> None:
    fitted, _ = spe.SyntheticGenerator(seed=7).calibrate(history)
    again = pickle.loads(pickle.dumps(fitted))
    assert again.params == fitted.params
    np.testing.assert_array_equal(again.arrays("2026-01-01T00:00:00Z", 48)["demand_mw"],
                                  fitted.arrays("2026-01-01T00:00:00Z", 48)["demand_mw"])


def test_calibrate_from_a_dataframe_with_gaps(history: dict[str, np.ndarray]) -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({k: v for k, v in history.items() if k != "time"},
                      index=pd.DatetimeIndex(history["time"]).tz_localize("UTC"))
    df = df[["temperature_2m", "demand_mw"]].copy()
    df.iloc[100:200, 0] = np.nan
    _, report = spe.SyntheticGenerator().calibrate(df.tz_convert("Europe/Paris"))
    assert report["hours_used"] <= len(df) - 100
    assert report["wind_mean_ms"] is None


def test_calibration_errors(history: dict[str, np.ndarray]) -> None:
    gen = spe.SyntheticGenerator()
    short = {k: v[:100] for k, v in history.items()}
    with pytest.raises(spe.ConfigError, match="at least 168 hours"):
        gen.calibrate(short)
    gappy = dict(history)
    gappy["time"] = np.delete(history["time"], 5)
    with pytest.raises(spe.ConfigError, match="hourly and complete"):
        gen.calibrate({k: (v if k == "time" else np.delete(v, 5)) for k, v in gappy.items()})
    with pytest.raises(TypeError, match="DataFrame on a DatetimeIndex"):
        gen.calibrate([1.0, 2.0])


def test_params_are_checked() -> None:
    with pytest.raises(spe.ConfigError, match="seed="):
        spe.SyntheticGenerator(params={"seed": 3})
    with pytest.raises(spe.ConfigError, match="params"):
        spe.SyntheticGenerator(params={"climate": {"temp_mean_c": "warm"}})
    with pytest.raises(spe.ConfigError, match="base_mw"):
        spe.SyntheticGenerator(params={"demand": {"base_mw": -5.0}})
    assert spe.SyntheticGenerator(params={}).params is None
