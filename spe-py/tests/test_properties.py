"""Property tests: any seed and site give plausible, finite values."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import spe
from columns import FLOAT_COLUMNS

EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**64 - 1),
    latitude=st.floats(min_value=-66.0, max_value=66.0),
    longitude=st.floats(min_value=-180.0, max_value=180.0),
    start_hour=st.integers(min_value=0, max_value=50 * 8766),
    hours=st.integers(min_value=1, max_value=96),
)
def test_values_are_finite_and_physical(
    seed: int, latitude: float, longitude: float, start_hour: int, hours: int
) -> None:
    gen = spe.SyntheticGenerator(seed=seed, latitude=latitude, longitude=longitude,
                                 timezone="UTC", country="none")
    a = gen.arrays(EPOCH + timedelta(hours=start_hour), hours)
    for name in FLOAT_COLUMNS:
        assert a[name].shape == (hours,)
        assert np.isfinite(a[name]).all(), name
    assert (a["demand_mw"] > 0).all()
    assert (a["shortwave_radiation"] >= 0).all()
    assert ((a["cloud_cover"] >= 0) & (a["cloud_cover"] <= 100)).all()
    for name in ["wind_speed_10m", "solar_mw", "wind_mw", "other_mw", "imports_mw"]:
        assert (a[name] >= 0).all(), name


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**64 - 1),
    offset=st.integers(min_value=0, max_value=48),
    hours=st.integers(min_value=1, max_value=48),
)
def test_any_window_agrees_with_a_larger_one(seed: int, offset: int, hours: int) -> None:
    gen = spe.SyntheticGenerator(seed=seed)
    whole = gen.arrays("2026-03-28T00:00:00Z", hours=96)  # spans the spring DST change
    part = gen.arrays(datetime(2026, 3, 28, tzinfo=timezone.utc) + timedelta(hours=offset), hours)
    for name in whole:
        np.testing.assert_array_equal(part[name], whole[name][offset : offset + hours], err_msg=name)


# --- forecasting --------------------------------------------------------------

FORECAST_MODELS = ["auto", "seasonal_naive", "naive", "ets", "mstl"]


# Levels of 1 % or less warn (they look like fractions): expected here.
@pytest.mark.filterwarnings("ignore:levels are percentages")
@settings(max_examples=120, deadline=None)
@given(
    y=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=0, max_size=400),
    horizon=st.integers(min_value=1, max_value=60),
    season=st.one_of(st.integers(min_value=1, max_value=60),
                     st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=3)),
    model=st.sampled_from(FORECAST_MODELS),
    levels=st.lists(st.floats(min_value=0.5, max_value=99.5), max_size=3, unique=True),
)
def test_forecast_never_panics_and_is_finite(
    y: list[float], horizon: int, season: int | list[int], model: str, levels: list[float]
) -> None:
    """Any finite series: a finite forecast with ordered intervals, or a clean SpeError."""
    try:
        fc = spe.forecast(y, horizon, season, model=model, levels=levels)
    except spe.SpeError as e:
        assert str(e)  # a message, not a panic (PanicException is not an SpeError)
        event("refused")
        return
    event("forecast")
    assert fc.mean.shape == (horizon,)
    assert np.isfinite(fc.mean).all()
    for level in levels:
        lower, upper = fc.lower(level), fc.upper(level)
        assert np.isfinite(lower).all() and np.isfinite(upper).all()
        assert (lower <= fc.mean + 1e-6 * np.abs(fc.mean).clip(1)).all()
        assert (fc.mean <= upper + 1e-6 * np.abs(fc.mean).clip(1)).all()


@settings(max_examples=40, deadline=None)
@given(
    ys=st.lists(
        st.lists(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), min_size=0, max_size=120),
        min_size=0,
        max_size=6,
    ),
    model=st.sampled_from(FORECAST_MODELS),
)
def test_forecast_many_agrees_with_forecast(ys: list[list[float]], model: str) -> None:
    """In parallel or one by one, the same forecasts (or the same failures)."""
    many = spe.forecast_many(ys, 12, 24, model=model, on_error="skip", n_jobs=3) if ys else []
    assert len(many) == len(ys)
    for y, fc in zip(ys, many):
        try:
            one = spe.forecast(y, 12, 24, model=model)
        except spe.SpeError:
            assert fc is None
            continue
        assert fc is not None
        np.testing.assert_array_equal(fc.mean, one.mean)


@settings(max_examples=60, deadline=None)
@given(
    y=st.lists(st.floats(min_value=-1e4, max_value=1e4, allow_nan=False), min_size=0, max_size=300),
    horizons=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=3),
    season=st.one_of(st.integers(min_value=1, max_value=50),
                     st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=2)),
    model=st.sampled_from(FORECAST_MODELS),
)
def test_a_fitted_model_agrees_with_forecast_and_its_pickle(
    y: list[float], horizons: list[int], season: int | list[int], model: str
) -> None:
    """Fit once, forecast several horizons: each is spe.forecast's, and a
    pickled copy (which refits) gives the same; a series spe.forecast
    refuses, fit refuses too."""
    import pickle

    try:
        fitted = spe.Model(model, season).fit(y)
    except spe.SpeError:
        with pytest.raises(spe.SpeError):
            spe.forecast(y, horizons[0], season, model=model)
        return
    again = pickle.loads(pickle.dumps(fitted))
    for h in horizons:
        fc = fitted.predict(h)
        np.testing.assert_array_equal(fc.mean, spe.forecast(y, h, season, model=model).mean)
        np.testing.assert_array_equal(again.predict(h).mean, fc.mean)
    assert all(np.isfinite(v) for v in fitted.params.values())
    for values in fitted.components.values():
        assert values.shape == (len(y),) and np.isfinite(values).all()


@settings(max_examples=60, deadline=None)
@given(
    y=st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=0, max_size=300),
    folds=st.integers(min_value=1, max_value=6),
    horizon=st.integers(min_value=1, max_value=30),
)
def test_backtest_never_panics(y: list[float], folds: int, horizon: int) -> None:
    try:
        scores = spe.backtest(y, horizon, 24, model="seasonal_naive", folds=folds)
    except spe.SpeError:
        return
    assert scores["folds"] == folds
    for key in ("mape", "smape", "mase", "rmse", "mae", "bias"):
        assert scores[key] is None or np.isfinite(scores[key]), key


@settings(max_examples=80, deadline=None)
@given(
    y=st.lists(st.floats(min_value=1e-3, max_value=1e6), min_size=0, max_size=300),
    box_cox=st.floats(min_value=-2, max_value=2),
    season=st.integers(min_value=1, max_value=48),
    model=st.sampled_from(FORECAST_MODELS),
)
def test_a_box_cox_forecast_is_finite_positive_and_ordered(
    y: list[float], box_cox: float, season: int, model: str
) -> None:
    """Any positive series and any lambda in range: a forecast whose bounds
    are finite, not negative and ordered around the mean, or a clean SpeError."""
    try:
        fc = spe.forecast(y, 24, season, model=model, box_cox=box_cox)
    except spe.SpeError as e:
        assert str(e)
        event("refused")
        return
    event("forecast")
    assert fc.model.startswith("box_cox(")
    assert np.isfinite(fc.mean).all() and (fc.mean >= 0).all()
    for level in fc.levels:
        lower, upper = fc.lower(level), fc.upper(level)
        assert np.isfinite(upper).all() and (lower >= 0).all()
        assert (lower <= fc.mean * (1 + 1e-9)).all() and (fc.mean <= upper * (1 + 1e-9)).all()
