"""spe.Model and spe.FittedModel: fit once, forecast many times, inspect."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import spe

HOURS = np.arange(24 * 21)
NOISY = 100 + 10 * np.sin(2 * np.pi * HOURS / 24) + np.random.default_rng(3).normal(0, 1, HOURS.size)
MODELS = ["auto", "seasonal_naive", "naive", "ets", "mstl", "mstl_loess"]


def same(a: spe.Forecast, b: spe.Forecast) -> None:
    assert a.model == b.model
    np.testing.assert_array_equal(a.mean, b.mean)
    assert a.levels == b.levels
    for level in a.levels:
        np.testing.assert_array_equal(a.lower(level), b.lower(level))
        np.testing.assert_array_equal(a.upper(level), b.upper(level))


@pytest.mark.parametrize("model", MODELS)
def test_a_fitted_model_forecasts_as_spe_forecast_does(model: str) -> None:
    fitted = spe.Model(model, season_length=24).fit(NOISY)
    for horizon, levels in [(36, (80, 95)), (5, 90), (100, ())]:
        same(
            fitted.predict(horizon, levels=levels),
            spe.forecast(NOISY, horizon, 24, model=model, levels=levels),
        )
    assert fitted.model == fitted.predict(1).model
    assert fitted.n_obs == NOISY.size
    assert fitted.spec == spe.Model(model, 24)
    residuals = fitted.residuals
    assert residuals.dtype == np.float64 and not residuals.flags.writeable
    assert np.isfinite(residuals).all() and 0 < residuals.size <= NOISY.size
    assert all(isinstance(v, float) and np.isfinite(v) for v in fitted.params.values())


def test_ets_parameters_are_recovered() -> None:
    """A simulated ETS(A,N,N) with alpha = 0.3: the fitted alpha says so."""
    rng = np.random.default_rng(5)
    level, y = 50.0, []
    for _ in range(3000):
        e = rng.normal(0, 1)
        y.append(level + e)
        level += 0.3 * e
    fitted = spe.Model("ets").fit(np.array(y))
    assert fitted.model == "ets(A,N,N)"
    params = fitted.params
    assert abs(params["alpha"] - 0.3) < 0.05, params
    assert abs(params["sigma2"] - 1.0) < 0.1, params
    assert params["n_obs"] == 3000
    assert "beta" not in params and "gamma" not in params
    assert fitted.components == {}


def test_mstl_components_add_up_to_the_history() -> None:
    t = np.arange(24 * 7 * 4)
    weekly = np.where((t // 24) % 7 >= 5, -15.0, 0.0)
    y = 200 + 20 * np.sin(2 * np.pi * t / 24) + weekly + 0.05 * t
    fitted = spe.Model("mstl", (24, 168)).fit(y)
    components = fitted.components
    assert list(components) == ["seasonal_24", "seasonal_168", "adjusted"]
    for values in components.values():
        assert values.shape == y.shape and not values.flags.writeable
    np.testing.assert_allclose(sum(components.values()), y, rtol=1e-9)
    params = fitted.params
    assert params["window_24"] >= 7 and params["window_168"] >= 7
    assert {"ets_alpha", "ets_sigma2", "cycle_smoothing_168"} <= set(params)
    # The weekend dip is in the weekly component, not the daily one.
    assert components["seasonal_168"][(t // 24) % 7 == 6].mean() < -10
    assert abs(components["seasonal_24"].mean()) < 1


def test_seasonal_naive_and_auto_say_what_they_chose() -> None:
    fitted = spe.Model("seasonal_naive", 24).fit(NOISY)
    assert fitted.params["period"] == 24 and fitted.params["sigma"] > 0
    assert fitted.residuals.size == NOISY.size - 24
    assert fitted.scores is None
    auto = spe.Model("auto", 24).fit(NOISY)
    chosen = auto.model.removeprefix("auto(").removesuffix(")")
    assert auto.scores is not None and chosen in {s["model"] for s in auto.scores}
    fc = auto.predict(24)
    assert fc.scores == auto.scores and fc.model == auto.model


def test_the_regression_learns_the_heating_slope_and_needs_future_weather() -> None:
    gen = spe.SyntheticGenerator(seed=11)
    history = gen.arrays("2026-01-05T00:00:00Z", hours=24 * 28)
    future = gen.arrays("2026-02-02T00:00:00Z", hours=48)
    exog = spe.calendar_exog("2026-01-05T00:00:00Z", history["temperature_2m"])
    exog_future = spe.calendar_exog("2026-02-02T00:00:00Z", future["temperature_2m"])
    fitted = spe.Model("regression", 24).fit(history["demand_mw"], exog=exog)
    params = fitted.params
    # Winter demand rises as it gets colder.
    assert params["heating_slope"] > 0, params
    assert 5 <= params["heating_base_c"] <= 25, params
    assert {"hour_effect_working_07", "hour_effect_saturday_07"} <= set(params)
    same(
        fitted.predict(48, exog_future=exog_future),
        spe.forecast(history["demand_mw"], 48, 24, model="regression", exog=exog,
                     exog_future=exog_future),
    )
    with pytest.raises(spe.ForecastInputError, match="exog_future .* is missing"):
        fitted.predict(48)
    with pytest.raises(spe.ForecastInputError, match="rows"):
        fitted.predict(47, exog_future=exog_future)
    with pytest.raises(spe.ForecastInputError, match="exog .* is missing"):
        spe.Model("regression", 24).fit(history["demand_mw"])
    with pytest.raises(spe.ConfigError, match="exog is used only"):
        spe.Model("mstl", 24).fit(history["demand_mw"], exog=exog)
    with pytest.raises(spe.ConfigError, match="fitted without exog"):
        spe.Model("mstl", 24).fit(history["demand_mw"]).predict(48, exog_future=exog_future)


def test_a_series_index_is_continued_and_checked() -> None:
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2026-03-01", periods=NOISY.size, freq="h", tz="UTC")
    fitted = spe.Model("mstl", 24).fit(pd.Series(NOISY, index=index))
    assert fitted.index.equals(index)
    fc = fitted.predict(6)
    assert fc.index[0] == index[-1] + pd.Timedelta(hours=1) and len(fc.index) == 6
    assert fitted.predict(3).to_pandas().index.equals(fc.index[:3])
    with pytest.raises(spe.ConfigError, match="does not increase"):
        spe.Model("mstl", 24).fit(pd.Series(NOISY, index=index[::-1]))
    # Regressors over the horizon must start right after the history.
    gen = spe.SyntheticGenerator(seed=11)
    history = gen.frame("2026-01-05T00:00:00Z", hours=24 * 28)
    exog = pd.DataFrame(spe.calendar_exog(history.index[0], history["temperature_2m"]),
                        index=history.index)
    regression = spe.Model("regression", 24).fit(history["demand_mw"], exog=exog)
    late = gen.frame("2026-02-03T00:00:00Z", hours=24)
    late_exog = pd.DataFrame(spe.calendar_exog(late.index[0], late["temperature_2m"]),
                             index=late.index)
    with pytest.raises(spe.ConfigError, match="not one step after"):
        regression.predict(24, exog_future=late_exog)


def test_missing_values_follow_the_documented_rule() -> None:
    gappy = NOISY.copy()
    gappy[100:104] = np.nan
    fitted = spe.Model("mstl", 24).fit(gappy)
    assert fitted.n_obs == gappy.size
    assert np.isfinite(fitted.components["adjusted"]).all()
    gappy[200:220] = np.nan
    with pytest.raises(spe.ForecastInputError, match="gap"):
        spe.Model("mstl", 24).fit(gappy)


def test_a_fitted_model_pickles_and_copies_and_forecasts_the_same() -> None:
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2026-03-01", periods=NOISY.size, freq="h", tz="UTC")
    gen = spe.SyntheticGenerator(seed=11)
    history = gen.arrays("2026-01-05T00:00:00Z", hours=24 * 28)
    exog = spe.calendar_exog("2026-01-05T00:00:00Z", history["temperature_2m"])
    future = spe.calendar_exog("2026-02-02T00:00:00Z", [5.0] * 24)
    cases = [
        (spe.Model("auto", (24, 168)).fit(pd.Series(NOISY, index=index)), {}),
        (spe.Model("regression", 24).fit(history["demand_mw"], exog=exog),
         {"exog_future": future}),
    ]
    for fitted, kwargs in cases:
        expected = fitted.predict(24, **kwargs)
        for other in (pickle.loads(pickle.dumps(fitted)), copy.copy(fitted), copy.deepcopy(fitted)):
            assert type(other) is spe.FittedModel
            assert repr(other) == repr(fitted)
            assert other.params == fitted.params
            same(other.predict(24, **kwargs), expected)
            if expected.index is not None:
                assert other.predict(24).index.equals(expected.index)
    model = spe.Model("MSTL-loess", [168, 24, 1])
    assert pickle.loads(pickle.dumps(model)) == model
    assert len({model, spe.Model("mstl_loess", (24, 168))}) == 1


def test_reprs_and_bad_arguments() -> None:
    model = spe.Model("mstl", season_length=(168, 24))
    assert repr(model) == "Model('mstl', season_length=(24, 168))"
    assert (model.name, model.season_length) == ("mstl", (24, 168))
    fitted = model.fit(NOISY)
    assert repr(fitted) == f"FittedModel(model={fitted.model!r}, n_obs=504, season_length=(24, 168))"
    assert repr(fitted._native).startswith("_FittedModel(model='mstl(24,168)+ets(")
    assert spe.Model("ets", 1).season_length == ()
    with pytest.raises(spe.ConfigError, match="not a model SP-E knows"):
        spe.Model("prophet", 24)
    with pytest.raises(spe.ConfigError, match="season_length"):
        spe.Model("mstl", 0)
    with pytest.raises(TypeError, match="season_length"):
        spe.Model("mstl", "24")
    with pytest.raises(TypeError, match="made by Model.fit"):
        spe.FittedModel()
    with pytest.raises(spe.ConfigError, match="horizon"):
        fitted.predict(0)
    with pytest.raises(spe.ConfigError, match="level"):
        fitted.predict(4, levels=100)
    with pytest.raises(spe.ForecastInputError):
        spe.Model("mstl", 24).fit([1.0, 2.0])
    with pytest.raises(spe.ForecastInputError, match="infinite|finite"):
        spe.Model("naive").fit([1.0, np.inf, 2.0])
