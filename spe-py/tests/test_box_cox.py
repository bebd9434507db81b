"""box_cox=: models fitted on the Box–Cox transform, forecasts transformed back."""

from __future__ import annotations

import copy as copy_module
import pickle

import numpy as np
import pytest

import spe

HOURS = np.arange(24 * 28)
# A daily swing of ±20 % around a level that doubles over four weeks:
# multiplicative seasonality, which the additive models miss.
GROWING = (500 * (1 + HOURS / HOURS.size)) * (1 + 0.2 * np.sin(2 * np.pi * HOURS / 24))
GROWING = GROWING * np.exp(np.random.default_rng(11).normal(0, 0.01, HOURS.size))


@pytest.mark.parametrize("model", ["auto", "seasonal_naive", "ets", "mstl", "mstl_loess"])
@pytest.mark.parametrize("box_cox", [0, 0.5, -1])
def test_forecast_and_a_fitted_model_agree_under_the_transform(model: str, box_cox: float) -> None:
    fc = spe.forecast(GROWING, 36, 24, model=model, box_cox=box_cox)
    fitted = spe.Model(model, 24, box_cox=box_cox).fit(GROWING)
    again = fitted.predict(36)
    assert fc.model == again.model == fitted.model
    assert fc.model.startswith(f"box_cox({box_cox:g})+")
    np.testing.assert_array_equal(fc.mean, again.mean)
    for level in fc.levels:
        np.testing.assert_array_equal(fc.lower(level), again.lower(level))
        lower, upper = fc.lower(level), fc.upper(level)
        # Bounds transformed back: positive, ordered, around the median.
        assert (lower > 0).all() and (lower <= fc.mean).all() and (fc.mean <= upper).all()
    assert fitted.params["box_cox_lambda"] == box_cox
    assert next(iter(fitted.params)) == "box_cox_lambda"


def test_the_log_fits_a_swing_that_grows_with_the_level() -> None:
    plain = spe.backtest(GROWING, 24, 24, model="mstl", folds=4)
    log = spe.backtest(GROWING, 24, 24, model="mstl", folds=4, box_cox=0)
    assert log["mase"] < 0.6 * plain["mase"], (log["mase"], plain["mase"])
    # The intervals keep their coverage when transformed back.
    assert log["coverage"][95] >= 0.85, log["coverage"]


def test_the_intervals_are_not_symmetric_under_the_log() -> None:
    fc = spe.forecast(GROWING, 24, 24, model="mstl", levels=95, box_cox=0)
    above = fc.upper(95) - fc.mean
    below = fc.mean - fc.lower(95)
    assert (above > below).all()  # the log stretches the upper side


def test_lambda_one_is_a_shift_that_changes_nothing() -> None:
    for model in ("seasonal_naive", "naive"):
        shifted = spe.forecast(GROWING, 48, 24, model=model, box_cox=1)
        plain = spe.forecast(GROWING, 48, 24, model=model)
        np.testing.assert_allclose(shifted.mean, plain.mean, rtol=1e-12)
        np.testing.assert_allclose(shifted.upper(95), plain.upper(95), rtol=1e-12)


def test_residuals_are_on_the_series_scale_and_components_on_the_transformed_one() -> None:
    """Observed minus the back-transformed fitted value of the model of the log."""
    fitted = spe.Model("mstl", 24, box_cox=0).fit(GROWING)
    of_log = spe.Model("mstl", 24).fit(np.log(GROWING))
    residuals = fitted.residuals
    assert residuals.shape == GROWING.shape and not residuals.flags.writeable
    expected = GROWING - np.exp(np.log(GROWING) - of_log.residuals)
    np.testing.assert_allclose(residuals, expected, rtol=1e-9, atol=1e-9)
    components = fitted.components
    total = components["seasonal_24"] + components["adjusted"]
    np.testing.assert_allclose(total, np.log(GROWING), rtol=1e-9)
    assert fitted.params == {"box_cox_lambda": 0.0, **of_log.params}


def test_auto_under_the_transform_still_reports_its_candidates() -> None:
    fc = spe.forecast(GROWING, 24, 24, box_cox=0)
    assert fc.model.startswith("box_cox(0)+auto(")
    plain = spe.forecast(GROWING, 24, 24)
    assert fc.scores is not None and plain.scores is not None
    assert [s["model"] for s in fc.scores] == [s["model"] for s in plain.scores]
    chosen = fc.model.removeprefix("box_cox(0)+auto(").split(")")[0]
    assert any(s["model"].startswith(chosen) for s in fc.scores)


def test_forecast_many_takes_the_transform_and_skips_a_series_it_cannot_take() -> None:
    with_zero = GROWING.copy()
    with_zero[10] = 0.0
    fcs = spe.forecast_many([GROWING, with_zero], 24, 24, model="mstl", on_error="skip", box_cox=0)
    assert fcs[1] is None and fcs[0] is not None
    np.testing.assert_array_equal(
        fcs[0].mean, spe.forecast(GROWING, 24, 24, model="mstl", box_cox=0).mean
    )
    with pytest.raises(spe.ForecastInputError, match="series 1"):
        spe.forecast_many([GROWING, with_zero], 24, 24, model="mstl", box_cox=0)


def test_non_positive_values_are_refused_with_the_observation_named() -> None:
    y = GROWING.copy()
    y[100] = -3.0
    for call in (
        lambda: spe.forecast(y, 24, 24, model="mstl", box_cox=0),
        lambda: spe.Model("ets", box_cox=0.5).fit(y),
        lambda: spe.backtest(y, 24, 24, model="seasonal_naive", box_cox=0),
    ):
        with pytest.raises(spe.ForecastInputError, match="observation 100 is -3"):
            call()
    # Without the transform the same series is fine.
    assert spe.forecast(y, 24, 24, model="mstl").mean.shape == (24,)


@pytest.mark.parametrize("bad", [2.5, -3, float("nan"), float("inf"), 10**400])
def test_a_lambda_out_of_range_is_a_config_error_before_any_fitting(bad: float) -> None:
    calls = [
        lambda: spe.Model("mstl", 24, box_cox=bad),
        lambda: spe.forecast(GROWING, 24, 24, box_cox=bad),
        lambda: spe.backtest(GROWING, 24, 24, box_cox=bad),
        # Even when failing series are skipped: the argument is wrong, not a series.
        lambda: spe.forecast_many([GROWING, GROWING], 24, 24, box_cox=bad, on_error="skip"),
        lambda: spe.ResilientForecaster(len, fallback=spe.Model("ets", box_cox=bad)),
    ]
    for call in calls:
        with pytest.raises(spe.ConfigError, match="box_cox") as info:
            call()
        assert not isinstance(info.value, spe.ForecastError)


@pytest.mark.parametrize("bad", [True, np.bool_(False), "log", [0]])
def test_a_lambda_that_is_not_a_number_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="box_cox must be a number"):
        spe.forecast(GROWING, 24, 24, box_cox=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="box_cox must be a number"):
        spe.Model("mstl", 24, box_cox=bad)  # type: ignore[arg-type]


def test_numpy_numbers_are_lambdas_and_minus_zero_is_zero() -> None:
    for lam in (np.float32(0.5), np.int64(1), np.float64(-0.5)):
        fc = spe.forecast(GROWING, 12, 24, model="seasonal_naive", box_cox=lam)
        assert fc.model == f"box_cox({float(lam):g})+seasonal_naive"
    minus_zero = spe.Model("mstl", 24, box_cox=-0.0)
    assert repr(minus_zero) == "Model('mstl', season_length=(24,), box_cox=0.0)"
    same_as_log = spe.forecast(GROWING, 12, 24, model="mstl", box_cox=-0.0)
    assert same_as_log == spe.forecast(GROWING, 12, 24, model="mstl", box_cox=0)


@pytest.mark.parametrize("tiny", [1e-300, -1e-15, 1e-12])
def test_a_lambda_near_zero_is_near_the_log(tiny: float) -> None:
    log = spe.forecast(GROWING, 24, 24, model="seasonal_naive", box_cox=0)
    near = spe.forecast(GROWING, 24, 24, model="seasonal_naive", box_cox=tiny)
    np.testing.assert_allclose(near.mean, log.mean, rtol=1e-6)
    np.testing.assert_allclose(near.upper(95), log.upper(95), rtol=1e-6)
    assert len(near.model) < 40  # "box_cox(1e-300)+…", not 300 digits


def test_below_the_range_is_zero_and_above_it_names_the_step() -> None:
    falling = 200 * np.linspace(1, 0.01, 300) + np.random.default_rng(3).uniform(0.01, 0.1, 300)
    for lam in (0.5, 1, 2):
        fc = spe.forecast(falling, 50, 1, model="ets", box_cox=lam)
        assert (fc.mean >= 0).all() and (fc.lower(95) >= 0).all()
        assert (fc.upper(95) >= fc.mean).all() and fc.mean[-1] == 0
    walk = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.02, 500)))
    with pytest.raises(spe.ForecastError, match=r"upper bound at step \d+ is beyond") as info:
        spe.forecast(walk, 500, 1, model="naive", box_cox=-2)
    assert "could not forecast" in str(info.value) and "shorter horizon" in str(info.value)
    assert not isinstance(info.value, spe.ForecastInputError)
    # A shorter horizon is fine.
    assert spe.forecast(walk, 24, 1, model="naive", box_cox=-2).mean.shape == (24,)


def test_residuals_stay_in_line_with_the_history() -> None:
    y = np.exp(np.arange(300.0) / 10) + 1
    residuals = spe.Model("ets", 1, box_cox=-2).fit(y).residuals
    assert residuals.shape == y.shape
    assert np.isnan(residuals).any()  # fitted values beyond the transform's bound
    assert np.isfinite(residuals[~np.isnan(residuals)]).all()


def test_a_transform_that_loses_the_series_is_refused() -> None:
    with pytest.raises(spe.ForecastInputError, match="rescale the series"):
        spe.forecast(GROWING * 1e100, 24, 24, model="ets", box_cox=-2)
    with pytest.raises(spe.ForecastInputError, match=r"observation 0 \(5\.0\d*e-308\) is -1\.99\d*e307, beyond"):
        spe.forecast(GROWING * 1e-310, 3, 24, model="ets", box_cox=-1)


def test_the_transform_is_part_of_the_model_and_survives_a_pickle() -> None:
    m = spe.Model("mstl", 24, box_cox=0)
    assert m.box_cox == 0.0 and isinstance(m.box_cox, float)
    assert repr(m) == "Model('mstl', season_length=(24,), box_cox=0.0)"
    assert repr(spe.Model("mstl", 24)) == "Model('mstl', season_length=(24,))"
    assert m != spe.Model("mstl", 24) and m == spe.Model("mstl", 24, box_cox=0.0)
    assert len({m, spe.Model("mstl", 24, box_cox=0), spe.Model("mstl", 24)}) == 2
    assert pickle.loads(pickle.dumps(m)) == m
    fitted = m.fit(GROWING)
    assert copy_module.copy(fitted) is fitted and copy_module.deepcopy(fitted) is fitted
    copy = pickle.loads(pickle.dumps(fitted))
    assert copy.spec.box_cox == 0.0 and copy.model == fitted.model
    np.testing.assert_array_equal(copy.predict(24).upper(95), fitted.predict(24).upper(95))
