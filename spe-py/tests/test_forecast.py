"""spe.forecast, spe.forecast_many, spe.backtest, spe.Forecast."""

from __future__ import annotations

import concurrent.futures
import copy
import multiprocessing
import pickle
import threading
import time

import numpy as np
import pytest

import spe

HOURS = np.arange(24 * 21)
DAILY = 100 + 10 * np.sin(2 * np.pi * HOURS / 24) + np.random.default_rng(3).normal(0, 1, HOURS.size)
MODELS = ["auto", "seasonal_naive", "naive", "ets", "auto_ets", "mstl", "mstl_loess"]


@pytest.fixture(scope="module")
def demand() -> np.ndarray:
    """Eight weeks of the generator's hourly demand."""
    gen = spe.SyntheticGenerator(seed=7)
    return gen.arrays("2026-01-05T00:00:00Z", hours=24 * 7 * 8)["demand_mw"]


# --- the result ---------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_every_model_gives_a_consistent_forecast(model: str) -> None:
    fc = spe.forecast(DAILY, horizon=36, season_length=24, model=model, levels=(80, 95))
    assert isinstance(fc, spe.Forecast)
    assert fc.horizon == len(fc) == 36
    assert fc.levels == (80, 95)
    assert fc.mean.dtype == np.float64 and fc.mean.shape == (36,)
    assert np.isfinite(fc.mean).all()
    for level in (80, 95):
        assert (fc.lower(level) <= fc.mean + 1e-9).all()
        assert (fc.mean <= fc.upper(level) + 1e-9).all()
    # The 95 % interval contains the 80 % one.
    assert (fc.lower(95) <= fc.lower(80) + 1e-9).all()
    assert (fc.upper(80) <= fc.upper(95) + 1e-9).all()
    expected = {"auto_ets": "auto_ets", "ets": "auto_ets"}.get(model, model)
    assert fc.model.startswith(expected) or fc.model.startswith("ets("), fc.model


def test_seasonal_naive_repeats_the_last_season() -> None:
    y = np.tile([1.0, 5.0, 3.0], 10)
    fc = spe.forecast(y, horizon=5, season_length=3, model="seasonal_naive")
    np.testing.assert_array_equal(fc.mean, [1.0, 5.0, 3.0, 1.0, 5.0])


def test_auto_reports_its_candidates(demand: np.ndarray) -> None:
    fc = spe.forecast(demand, horizon=24, season_length=(24, 168), model="auto")
    assert fc.model.startswith("auto(")
    assert fc.scores is not None
    names = [s["model"] for s in fc.scores]
    assert {"seasonal_naive", "mstl", "weather_regression"} <= set(names)
    chosen = fc.model[len("auto(") : -1]
    assert chosen in names
    for score in fc.scores:
        assert set(score) == {"model", "mase", "geo_mase", "rmse", "error"}
        assert (score["error"] is None) == (score["rmse"] is not None), score
    # No regressors: the regression is skipped and says why.
    [regression] = [s for s in fc.scores if s["model"] == "weather_regression"]
    assert "regressors" in regression["error"]
    assert spe.forecast(demand, 24, 24, model="naive").scores is None


def test_arrays_are_read_only_and_shared() -> None:
    fc = spe.forecast(DAILY, 12, 24, model="naive")
    with pytest.raises(ValueError):
        fc.mean[0] = 1.0
    assert fc.mean is fc.mean or np.shares_memory(fc.mean, fc.mean)
    writable = fc.mean.copy()
    writable[0] = 1.0


def test_unknown_level_says_which_levels_exist() -> None:
    fc = spe.forecast(DAILY, 12, 24, model="naive", levels=(80,))
    with pytest.raises(spe.ConfigError, match=r"no 90 % interval, only 80"):
        fc.lower(90)
    none = spe.forecast(DAILY, 12, 24, model="naive", levels=())
    assert none.levels == ()
    with pytest.raises(spe.ConfigError, match="no intervals"):
        none.upper(95)


def test_fractional_levels_and_to_dict() -> None:
    fc = spe.forecast(DAILY, 6, 24, model="seasonal_naive", levels=[97.5, 50])
    assert fc.levels == (97.5, 50)
    assert list(fc.to_dict()) == ["mean", "lower_97.5", "upper_97.5", "lower_50", "upper_50"]


def test_to_pandas_continues_a_datetime_index() -> None:
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2026-01-01", periods=DAILY.size, freq="h", tz="UTC", name="time")
    fc = spe.forecast(pd.Series(DAILY, index=index), horizon=48, season_length=24, model="mstl")
    df = fc.to_pandas()
    assert list(df.columns) == ["mean", "lower_80", "upper_80", "lower_95", "upper_95"]
    assert df.index[0] == index[-1] + pd.Timedelta(hours=1)
    assert len(df) == 48 and df.index.tz is not None and df.index.name == "time"
    assert df.attrs["model"] == fc.model
    np.testing.assert_array_equal(df["mean"].to_numpy(), fc.mean)


def test_to_pandas_without_an_index_uses_steps() -> None:
    pytest.importorskip("pandas")
    df = spe.forecast(list(DAILY), 5, 24, model="naive").to_pandas()
    assert list(df.index) == [1, 2, 3, 4, 5] and df.index.name == "step"


def test_forecast_constructor_validates() -> None:
    fc = spe.Forecast("mine", [1.0, 2.0], intervals={80: ([0.0, 1.0], [2.0, 3.0])})
    assert fc.model == "mine" and fc.levels == (80,)
    with pytest.raises(spe.ForecastInputError, match="does not contain the mean"):
        spe.Forecast("mine", [1.0, 2.0], intervals={80: ([1.5, 1.0], [2.0, 3.0])})
    with pytest.raises(spe.ForecastInputError, match="not a finite number"):
        spe.Forecast("mine", [1.0, float("nan")])
    with pytest.raises(spe.ForecastInputError):
        spe.Forecast("mine", [1.0, 2.0], intervals={80: ([0.0], [2.0])})
    with pytest.raises(spe.ConfigError, match="index has 3 entries"):
        spe.Forecast("mine", [1.0, 2.0], index=[1, 2, 3])


def test_pickle_and_copy_keep_everything() -> None:
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2026-01-01", periods=DAILY.size, freq="h", tz="UTC")
    fc = spe.forecast(pd.Series(DAILY, index=index), 24, 24, model="ets")
    for other in (pickle.loads(pickle.dumps(fc)), copy.copy(fc), copy.deepcopy(fc)):
        assert other.model == fc.model and other.levels == fc.levels
        np.testing.assert_array_equal(other.mean, fc.mean)
        np.testing.assert_array_equal(other.upper(95), fc.upper(95))
        assert (other.index == fc.index).all()
    auto = spe.forecast(DAILY, 24, 24)
    assert auto.scores is not None
    for other in (pickle.loads(pickle.dumps(auto)), copy.copy(auto), copy.deepcopy(auto)):
        assert other.scores == auto.scores and other.model == auto.model


def test_forecasts_compare_by_value() -> None:
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2026-01-01", periods=DAILY.size, freq="h", tz="UTC")
    fc = spe.forecast(pd.Series(DAILY, index=index), 24, 24, model="ets")
    assert pickle.loads(pickle.dumps(fc)) == fc
    assert fc == spe.forecast(pd.Series(DAILY, index=index), 24, 24, model="ets")
    band = {80: ([0.5, 1.0], [1.5, 3.0])}
    mine = spe.Forecast("mine", [1.0, 2.0], intervals=band)
    assert mine == spe.Forecast("mine", [1.0, 2.0], intervals=band)
    assert mine != spe.Forecast("other", [1.0, 2.0], intervals=band)
    assert mine != spe.Forecast("mine", [1.0, 2.5], intervals={80: ([0.5, 1.0], [1.5, 3.0])})
    assert mine != spe.Forecast("mine", [1.0, 2.0], intervals={80: ([0.5, 0.9], [1.5, 3.0])})
    assert mine != spe.Forecast("mine", [1.0, 2.0], intervals={95: ([0.5, 1.0], [1.5, 3.0])})
    assert mine != spe.Forecast("mine", [1.0, 2.0])
    assert mine != mine.with_index(pd.date_range("2026-01-01", periods=2, freq="h", tz="UTC"))
    assert mine != "mine"
    with pytest.raises(TypeError, match="unhashable"):
        hash(mine)


def test_repr() -> None:
    fc = spe.forecast(DAILY, 24, 24, model="seasonal_naive")
    assert repr(fc) == "Forecast(model='seasonal_naive', horizon=24, levels=(80, 95))"


# --- inputs -------------------------------------------------------------------


def test_any_float_array_like_gives_the_same_forecast() -> None:
    reference = spe.forecast(DAILY, 24, 24, model="seasonal_naive").mean
    strided = np.repeat(DAILY, 2)[::2]
    assert not strided.flags.c_contiguous or strided.base is not None
    for y in (list(DAILY), tuple(DAILY), strided, DAILY.astype(np.float64)):
        np.testing.assert_array_equal(spe.forecast(y, 24, 24, model="seasonal_naive").mean, reference)
    as32 = spe.forecast(DAILY.astype(np.float32), 24, 24, model="seasonal_naive").mean
    np.testing.assert_allclose(as32, reference, rtol=1e-6)
    ints = np.arange(48) % 24
    assert spe.forecast(ints, 24, 24, model="seasonal_naive").mean.tolist() == list(range(24))


def misaligned(values: np.ndarray) -> np.ndarray:
    """The same values in a buffer whose data is not 8-byte aligned (as pickle
    protocol 5 out-of-band buffers can be: Dask, multiprocessing)."""
    raw = bytearray(values.astype(np.float64).nbytes + 1)
    out = np.frombuffer(raw, dtype=np.float64, offset=1, count=values.size).reshape(values.shape)
    assert not out.flags.aligned
    out[...] = values
    return out


def test_misaligned_arrays_are_read_safely() -> None:
    reference = spe.forecast(DAILY, 24, 24, model="seasonal_naive").mean
    np.testing.assert_array_equal(spe.forecast(misaligned(DAILY), 24, 24, model="seasonal_naive").mean,
                                  reference)
    Y = misaligned(np.stack([DAILY, DAILY * 2]))
    many = spe.forecast_many(Y, 24, 24, model="seasonal_naive")
    np.testing.assert_array_equal(many[0].mean, reference)  # type: ignore[union-attr]
    scores = spe.backtest(misaligned(DAILY), 24, 24, model="naive")
    assert scores["folds"] == 3


def test_pandas_series_with_missing_values() -> None:
    pd = pytest.importorskip("pandas")
    y = pd.Series(DAILY, dtype="Float64")
    y.iloc[100] = pd.NA
    y.iloc[200:203] = None
    fc = spe.forecast(y, 24, 24, model="seasonal_naive")
    assert np.isfinite(fc.mean).all()


def test_short_gaps_are_interpolated_long_ones_refused() -> None:
    y = DAILY.copy()
    y[50:56] = np.nan  # 6: the most the rule fills
    assert np.isfinite(spe.forecast(y, 24, 24, model="mstl").mean).all()
    y[50:57] = np.nan
    with pytest.raises(spe.ForecastInputError, match=r"7 consecutive missing values \(NaN\) from index 50"):
        spe.forecast(y, 24, 24, model="mstl")


def test_missing_tail_says_to_cut_it() -> None:
    y = DAILY.copy()
    y[-2:] = np.nan
    with pytest.raises(spe.ForecastInputError, match=r"y\[:-2\]"):
        spe.forecast(y, 24, 24)


def test_infinity_is_refused() -> None:
    y = DAILY.copy()
    y[10] = np.inf
    with pytest.raises(spe.ForecastInputError, match="index 10 is inf"):
        spe.forecast(y, 24, 24, model="naive")


def test_values_beyond_the_models_range_are_refused_not_blamed_as_infinite() -> None:
    y = DAILY.copy()
    y[7] = 1e307
    with pytest.raises(spe.ForecastInputError, match="observation 7 is 1e307.*rescale"):
        spe.forecast(y, 24, 24, model="mstl")
    with pytest.raises(spe.ForecastInputError, match="rescale"):
        spe.backtest(y, 24, 24, model="naive")
    y[7] = 1e306  # the largest taken
    assert np.isfinite(spe.forecast(y, 24, 24, model="naive").mean).all()


def test_too_short_says_what_is_needed() -> None:
    with pytest.raises(spe.ForecastInputError, match="needs at least 25 observations, got 10") as info:
        spe.forecast(np.ones(10), 24, 24, model="seasonal_naive")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"horizon": 0}, spe.ConfigError, "horizon=0 is out of range"),
        ({"horizon": 10**9}, spe.ConfigError, "horizon=1000000000 is out of range"),
        ({"horizon": 2.5}, TypeError, "horizon must be an integer"),
        ({"season_length": 0}, spe.ConfigError, "season_length=0 is out of range"),
        ({"season_length": "24"}, TypeError, "season_length must be an integer"),
        ({"model": "prophet"}, spe.ConfigError, "use one of"),
        ({"model": 3}, TypeError, "model must be a model name"),
        ({"levels": (80, 100)}, spe.ConfigError, "strictly between 0 and 100"),
        ({"levels": (80, 80)}, spe.ConfigError, "given twice"),
        ({"levels": "80"}, TypeError, "levels must be numbers"),
        ({"exog": {"temperature_2m": [1.0]}}, spe.ConfigError, 'only by model="regression"'),
        ({"exog": {"temperature_2m": [1.0]}, "model": "auto"}, spe.ForecastInputError,
         "exog_future"),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], error: type[Exception], pattern: str) -> None:
    args: dict[str, object] = {"horizon": 24, "season_length": 24, "model": "naive"}
    args.update(kwargs)
    with pytest.raises(error, match=pattern):
        spe.forecast(DAILY, **args)  # type: ignore[arg-type]


def test_bad_series() -> None:
    with pytest.raises(TypeError, match="array-like of numbers"):
        spe.forecast("abc", 24, 24)
    with pytest.raises(TypeError, match="array-like of numbers"):
        spe.forecast(["a", "b"], 24, 24)
    with pytest.raises(spe.ConfigError, match=r"shape \(3, 4\).*forecast_many"):
        spe.forecast(np.ones((3, 4)), 24, 24)
    with pytest.raises(spe.ConfigError, match=r"shape \(\) \(a scalar\)"):
        spe.forecast(5.0, 24, 24)
    # numpy would wrap these as one opaque object: say what to pass instead.
    with pytest.raises(TypeError, match="got a generator: pass a list or numpy array"):
        spe.forecast((v for v in DAILY), 24, 24)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="got a list_iterator: pass a list"):
        spe.forecast(iter(list(DAILY)), 24, 24)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="array-like of numbers .*, not object$"):
        spe.forecast(object(), 24, 24)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "pattern"),
    [
        (np.datetime64("2026-01-01T00", "h") + np.arange(48), r"datetime64.*times"),
        (np.arange(48).astype("timedelta64[h]"), r"timedelta64.*durations"),
        (np.ones(48, dtype=bool), r"bool.*booleans"),
        (np.ones(48) * 1j, r"complex"),
        (np.array(["1.5"] * 48), r"strings"),
    ],
)
def test_values_that_are_not_numbers_are_refused(values: np.ndarray, pattern: str) -> None:
    with pytest.raises(TypeError, match=pattern):
        spe.forecast(values, 24, 24, model="naive")
    pd = pytest.importorskip("pandas")
    with pytest.raises(TypeError, match=pattern):
        spe.forecast(pd.Series(values), 24, 24, model="naive")


def test_levels_are_numbers_not_booleans() -> None:
    for levels in (True, [80, True]):
        with pytest.raises(TypeError, match="not bool"):
            spe.forecast(DAILY, 24, 24, model="naive", levels=levels)  # type: ignore[arg-type]
    fc = spe.forecast(DAILY, 24, 24, model="naive", levels=(x for x in (80, 95)))
    assert fc.levels == (80, 95)


def test_masked_values_are_missing() -> None:
    y = DAILY.copy()
    mask = np.zeros(len(y), dtype=bool)
    mask[100:103] = True
    masked = np.ma.masked_array(np.where(mask, 1e9, y), mask=mask)
    with_nan = np.where(mask, np.nan, y)
    a = spe.forecast(masked, 24, 24, model="seasonal_naive")
    b = spe.forecast(with_nan, 24, 24, model="seasonal_naive")
    np.testing.assert_array_equal(a.mean, b.mean)
    assert a.mean.max() < 1e6  # the values under the mask are not used
    mask[-1] = True
    with pytest.raises(spe.ForecastInputError, match="last 1 values are missing"):
        spe.forecast(np.ma.masked_array(y, mask=mask), 24, 24, model="seasonal_naive")


def test_season_length_forms_agree() -> None:
    a = spe.forecast(DAILY, 24, [24, 168], model="seasonal_naive").mean
    b = spe.forecast(DAILY, 24, (168, 24, 24, 1), model="seasonal_naive").mean
    c = spe.forecast(DAILY, 24, np.array([24, 168]), model="seasonal_naive").mean
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


# --- regression ---------------------------------------------------------------


def test_regression_on_weather_and_calendar() -> None:
    gen = spe.SyntheticGenerator(seed=11)
    history = gen.arrays("2026-01-05T00:00:00Z", hours=24 * 28)
    future = gen.arrays("2026-02-02T00:00:00Z", hours=48)
    exog = spe.calendar_exog("2026-01-05T00:00:00Z", history["temperature_2m"])
    exog_future = spe.calendar_exog("2026-02-02T00:00:00Z", future["temperature_2m"])
    fc = spe.forecast(history["demand_mw"], 48, 24, model="regression", exog=exog,
                      exog_future=exog_future)
    assert fc.model.startswith("weather_regression")
    error = np.abs(fc.mean - future["demand_mw"]).mean() / future["demand_mw"].mean()
    assert error < 0.1, error
    with pytest.raises(spe.ForecastInputError, match="exog_future="):
        spe.forecast(history["demand_mw"], 48, 24, model="regression", exog=exog)
    with pytest.raises(spe.ForecastInputError, match="rows"):
        spe.forecast(history["demand_mw"][:-1], 48, 24, model="regression", exog=exog,
                     exog_future=exog_future)


def test_auto_with_regressors_can_choose_the_regression() -> None:
    gen = spe.SyntheticGenerator(seed=11)
    history = gen.arrays("2026-01-05T00:00:00Z", hours=24 * 7 * 8)
    future = gen.arrays("2026-03-02T00:00:00Z", hours=48)
    exog = spe.calendar_exog("2026-01-05T00:00:00Z", history["temperature_2m"])
    exog_future = spe.calendar_exog("2026-03-02T00:00:00Z", future["temperature_2m"])
    fc = spe.forecast(history["demand_mw"], 48, (24, 168), model="auto", exog=exog,
                      exog_future=exog_future)
    assert fc.scores is not None
    [regression] = [s for s in fc.scores if s["model"] == "weather_regression"]
    assert regression["error"] is None and regression["mase"] is not None
    assert np.isfinite(fc.mean).all()


def test_backtest_of_the_regression() -> None:
    gen = spe.SyntheticGenerator(seed=5)
    history = gen.arrays("2026-01-05T00:00:00Z", hours=24 * 35)
    exog = spe.calendar_exog("2026-01-05T00:00:00Z", history["temperature_2m"])
    scores = spe.backtest(history["demand_mw"], 24, 24, model="regression", folds=3, exog=exog)
    assert scores["model"] == "weather_regression" and scores["mape"] < 10
    with pytest.raises(spe.ForecastInputError, match="exog is missing"):
        spe.backtest(history["demand_mw"], 24, 24, model="regression")
    with pytest.raises(spe.ConfigError, match="exog is used only"):
        spe.backtest(history["demand_mw"], 24, 24, model="mstl", exog=exog)


def test_regression_takes_a_dataframe_and_keeps_its_index() -> None:
    pd = pytest.importorskip("pandas")
    gen = spe.SyntheticGenerator(seed=11)
    history = gen.frame("2026-01-05T00:00:00Z", hours=24 * 28)
    future = gen.frame("2026-02-02T00:00:00Z", hours=24)
    exog = pd.DataFrame(spe.calendar_exog(history.index[0], history["temperature_2m"]),
                        index=history.index)
    exog_future = pd.DataFrame(spe.calendar_exog(future.index[0], future["temperature_2m"]),
                               index=future.index)
    fc = spe.forecast(history["demand_mw"], 24, 24, model="regression", exog=exog,
                      exog_future=exog_future)
    assert (fc.index == future.index).all()


# --- many series --------------------------------------------------------------


def test_forecast_many_matches_one_by_one(demand: np.ndarray) -> None:
    Y = np.stack([demand * k for k in (1.0, 1.5, 2.0, 0.5)])
    many = spe.forecast_many(Y, 24, (24, 168), model="mstl", n_jobs=2)
    assert len(many) == 4
    for y, fc in zip(Y, many):
        assert fc is not None
        one = spe.forecast(y, 24, (24, 168), model="mstl")
        np.testing.assert_array_equal(fc.mean, one.mean)
        np.testing.assert_array_equal(fc.upper(95), one.upper(95))


def test_forecast_many_takes_ragged_lists_and_series() -> None:
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2026-01-01", periods=DAILY.size, freq="h", tz="UTC")
    fcs = spe.forecast_many([DAILY, list(DAILY[:200]), pd.Series(DAILY, index=index)], 12, 24,
                            model="seasonal_naive")
    assert [f.horizon for f in fcs if f is not None] == [12, 12, 12]
    assert fcs[0] is not None and fcs[0].index is None
    assert fcs[2] is not None and fcs[2].index[0] == index[-1] + pd.Timedelta(hours=1)


def test_forecast_many_names_the_failing_series() -> None:
    with pytest.raises(spe.ForecastInputError, match="^series 1: "):
        spe.forecast_many([DAILY, [1.0, 2.0], DAILY], 24, 24, model="seasonal_naive")
    fcs = spe.forecast_many([DAILY, [1.0, 2.0], DAILY], 24, 24, model="seasonal_naive",
                            on_error="skip")
    assert fcs[1] is None and fcs[0] is not None and fcs[2] is not None


def test_forecast_many_checks_each_time_index_as_forecast_does() -> None:
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2026-01-01", periods=DAILY.size, freq="h", tz="UTC")
    good = pd.Series(DAILY, index=index)
    refused = {
        "reversed": (pd.Series(DAILY, index=index[::-1]), "does not increase"),
        "duplicated": (pd.Series(np.r_[DAILY, 0.0], index=index.append(index[-1:])),
                       "does not increase"),
        "NaT": (pd.Series(DAILY, index=pd.DatetimeIndex(list(index[:-1]) + [pd.NaT])), "NaT"),
    }
    for case, (y, message) in refused.items():
        with pytest.raises(spe.ConfigError, match=message):
            spe.forecast(y, 3, 24, model="naive")
        with pytest.raises(spe.ConfigError, match=f"^series 1: .*{message}"):
            spe.forecast_many([good, y, good], 3, 24, model="naive")
        fcs = spe.forecast_many([good, y, DAILY], 3, 24, model="naive", on_error="skip")
        assert fcs[1] is None, case
        assert fcs[0] is not None and fcs[0].index[0] == index[-1] + pd.Timedelta(hours=1)
        assert fcs[2] is not None and fcs[2].index is None
        np.testing.assert_array_equal(fcs[2].mean, np.full(3, DAILY[-1]))
    # All refused: nothing left to forecast.
    assert spe.forecast_many([refused["NaT"][0]], 3, 24, on_error="skip") == [None]


def test_wrong_types_name_the_argument() -> None:
    with pytest.raises(TypeError, match="^on_error must be a str .*, not NoneType"):
        spe.forecast_many([DAILY], 24, 24, on_error=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^refit must be True or False, not int"):
        spe.backtest(DAILY, 24, 24, refit=0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^model must be a str .*, not NoneType"):
        spe.Forecast(model=None, mean=[1.0, 2.0])  # type: ignore[arg-type]


def test_levels_that_look_like_fractions_warn() -> None:
    with pytest.warns(UserWarning, match=r"did you mean levels=\(80, 95\)\?") as warned:
        fc = spe.forecast(DAILY, 24, 24, model="naive", levels=(0.8, 0.95))
    assert fc.levels == (0.8, 0.95)
    assert [w.filename for w in warned] == [__file__]
    with pytest.warns(UserWarning, match=r"levels=\(90,\)"):
        spe.backtest(DAILY, 24, 24, model="naive", levels=0.9)
    with pytest.warns(UserWarning, match=r"levels=\(1e-7,\)"):
        spe.forecast(DAILY, 24, 24, model="naive", levels=1e-9)
    with pytest.raises(TypeError, match="not bool"):
        spe.forecast(DAILY, 24, 24, model="naive", levels=[np.bool_(True)])
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spe.forecast(DAILY, 24, 24, model="naive", levels=(0.8, 95))  # percentages: no warning


def test_forecast_many_bad_arguments() -> None:
    with pytest.raises(spe.ConfigError, match="list of numbers"):
        spe.forecast_many(list(DAILY), 24, 24)
    with pytest.raises(spe.ConfigError, match="on_error"):
        spe.forecast_many([DAILY], 24, 24, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(spe.ConfigError, match="n_jobs=0"):
        spe.forecast_many([DAILY], 24, 24, n_jobs=0)
    with pytest.raises(spe.ConfigError, match="regression"):
        spe.forecast_many([DAILY], 24, 24, model="regression")
    with pytest.raises(spe.ConfigError, match=r"2-D.*shape \(2, 3, 4\)"):
        spe.forecast_many(np.ones((2, 3, 4)), 24, 24)
    assert spe.forecast_many(np.ones((0, 10)), 24, 24) == []


def test_forecast_many_releases_the_gil(demand: np.ndarray) -> None:
    """Python code keeps running while another thread forecasts many series."""
    Y = np.stack([demand * (1 + k / 10) for k in range(40)])
    done = threading.Event()
    elapsed: list[float] = []

    def work() -> None:
        t0 = time.perf_counter()
        spe.forecast_many(Y, 24, (24, 168), model="ets", n_jobs=1)
        elapsed.append(time.perf_counter() - t0)
        done.set()

    worker = threading.Thread(target=work)
    longest_gap = 0.0
    last = time.perf_counter()
    worker.start()
    while not done.is_set():
        now = time.perf_counter()
        longest_gap = max(longest_gap, now - last)
        last = now
    worker.join()
    if elapsed[0] < 0.05:
        pytest.skip(f"forecasting too fast ({elapsed[0]:.3f} s) to tell")
    # Holding the GIL would stall this loop for the whole run.
    assert longest_gap < 0.5 * elapsed[0], (longest_gap, elapsed[0])


# --- backtest -----------------------------------------------------------------


def test_backtest_scores() -> None:
    scores = spe.backtest(DAILY, horizon=24, season_length=24, model="seasonal_naive", folds=5)
    assert scores["model"] == "seasonal_naive"
    assert (scores["folds"], scores["horizon"], scores["step"], scores["mase_period"]) == (5, 24, 24, 24)
    for key in ("mape", "smape", "mase", "rmse", "mae", "bias"):
        assert isinstance(scores[key], float) and np.isfinite(scores[key]), key
    assert set(scores["coverage"]) == {80, 95}
    assert all(0.0 <= c <= 1.0 for c in scores["coverage"].values())
    assert scores["mae_per_step"].shape == (24,)
    assert [f["origin"] for f in scores["per_fold"]] == [DAILY.size - 24 * (5 - k) for k in range(5)]
    # MAE pooled over equal-sized folds is the mean of the folds' MAE.
    assert scores["mae"] == pytest.approx(np.mean([f["mae"] for f in scores["per_fold"]]))
    # The errors themselves: actual - forecast, a row per step, a column per fold.
    errors = scores["errors_per_step"]
    assert errors.shape == (24, 5) and not errors.flags.writeable
    np.testing.assert_allclose(np.abs(errors).mean(axis=1), scores["mae_per_step"])
    assert scores["bias"] == pytest.approx(-errors.mean())
    first = scores["per_fold"][0]["origin"]
    np.testing.assert_allclose(errors[:, 0], DAILY[first:first + 24] - DAILY[first - 24:first])
    assert scores["refit"] is True


def test_backtest_without_refit_forecasts_once_from_the_first_origin() -> None:
    refit = spe.backtest(DAILY, 24, 24, model="naive", folds=3)
    once = spe.backtest(DAILY, 24, 24, model="naive", folds=3, refit=False)
    assert once["refit"] is False
    origins = [f["origin"] for f in once["per_fold"]]
    assert origins == [f["origin"] for f in refit["per_fold"]]
    # The naive forecast is the last value before the first origin, for
    # every fold: the errors are the actuals minus that one value.
    last = DAILY[origins[0] - 1]
    for k, origin in enumerate(origins):
        np.testing.assert_allclose(once["errors_per_step"][:, k], DAILY[origin:origin + 24] - last)
    assert not np.allclose(once["errors_per_step"], refit["errors_per_step"])
    with pytest.raises(TypeError):
        spe.backtest(DAILY, 24, 24, model="naive", refit="no")  # type: ignore[arg-type]


def test_backtest_step_and_errors() -> None:
    scores = spe.backtest(DAILY, 24, 24, model="naive", folds=3, step=6, levels=(90,))
    assert [f["origin"] for f in scores["per_fold"]] == [DAILY.size - 24 - 12, DAILY.size - 24 - 6,
                                                          DAILY.size - 24]
    assert list(scores["coverage"]) == [90]
    with pytest.raises(spe.ForecastInputError, match="needs at least"):
        spe.backtest(DAILY[:60], 24, 24, model="seasonal_naive", folds=3)
    with pytest.raises(spe.ConfigError, match="folds=0"):
        spe.backtest(DAILY, 24, 24, folds=0)


# --- beyond one process -------------------------------------------------------


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_forecast_in_a_process_pool(method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    context = multiprocessing.get_context(method)
    series = [DAILY * k for k in (1.0, 2.0, 3.0)]
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        results = list(pool.map(spe.forecast, series, [24] * 3, [24] * 3, ["mstl"] * 3))
    for y, fc in zip(series, results):
        assert isinstance(fc, spe.Forecast)
        np.testing.assert_array_equal(fc.mean, spe.forecast(y, 24, 24, "mstl").mean)


def test_time_indexes_that_would_misplace_values_are_refused() -> None:
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2026-01-01", periods=DAILY.size, freq="h", tz="UTC")
    y = pd.Series(DAILY, index=index)
    with pytest.raises(spe.ConfigError, match="does not increase"):
        spe.forecast(y[::-1], 24, 24, model="naive")
    with pytest.raises(spe.ConfigError, match="NaT"):
        spe.forecast(pd.Series(DAILY[:3], index=[index[0], index[1], pd.NaT]), 2, 1, model="naive")
    exog = pd.DataFrame(spe.calendar_exog(index[0], 10 + 8 * np.sin(np.arange(y.size) / 50)), index=index)
    future_index = pd.date_range(index[-1] + pd.Timedelta("1h"), periods=24, freq="h")
    future = pd.DataFrame(spe.calendar_exog(future_index[0], np.full(24, 12.0)), index=future_index)
    fc = spe.forecast(y, 24, 24, model="regression", exog=exog, exog_future=future)
    assert fc.index[0] == future_index[0]
    with pytest.raises(spe.ConfigError, match="exog's index"):
        spe.forecast(y, 24, 24, model="regression", exog=exog.shift(7, freq="D"),
                     exog_future=future)
    with pytest.raises(spe.ConfigError, match="exog_future's index starts"):
        spe.forecast(y, 24, 24, model="regression", exog=exog,
                     exog_future=future.shift(365, freq="D"))
