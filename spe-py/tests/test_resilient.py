"""spe.ResilientForecaster: a Python model as tier 1, then the fallback, then the cache."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from processes import another_process_holding

import spe

HISTORY = 100 + 10 * np.sin(np.arange(24 * 14) * 2 * np.pi / 24)
HORIZON = 24


def mean_model(history: np.ndarray, horizon: int) -> np.ndarray:
    """A module-level model (so it pickles): the mean of the last day."""
    return np.full(horizon, history[-24:].mean())


def predict(primary: Callable[..., Any], **kwargs: Any) -> spe.Prediction:
    settings: dict[str, Any] = {"fallback": "seasonal_naive", "timeout_s": 5.0}
    settings.update(kwargs)
    return spe.ResilientForecaster(primary, **settings).predict(HISTORY, HORIZON, season_length=24)


# --- tier 1 answers -----------------------------------------------------------


def test_the_primary_answers_with_an_array() -> None:
    calls: list[tuple[np.ndarray, int]] = []

    def model(history: np.ndarray, horizon: int) -> list[float]:
        calls.append((history, horizon))
        return [float(v) for v in mean_model(history, horizon)]

    p = predict(model)
    assert (p.tier, p.provenance, p.model, p.failures, p.notice) == (
        "primary", "live", "test_the_primary_answers_with_an_array.<locals>.model", [], None
    )
    [(history, horizon)] = calls
    assert isinstance(history, np.ndarray) and history.dtype == np.float64
    np.testing.assert_array_equal(history, HISTORY)
    assert horizon == HORIZON
    np.testing.assert_allclose(p.mean, HISTORY[-24:].mean())
    # No intervals given: borrowed from the fallback around the primary's mean.
    assert p.intervals_from == "seasonal_naive"
    assert p.forecast.levels == (80, 95)
    assert (p.lower(95) <= p.mean).all() and (p.mean <= p.upper(95)).all()


def test_the_primary_answers_with_a_dict() -> None:
    def model(history: np.ndarray, horizon: int) -> dict[str, Any]:
        mean = np.full(horizon, 100.0)
        return {"mean": mean, "lower_80": mean - 5, "upper_80": mean + 5, "lower_95": mean - 9,
                "upper_95": mean + 9, "model": "gbm-v3"}

    p = predict(model)
    assert (p.tier, p.model, p.intervals_from) == ("primary", "gbm-v3", None)
    np.testing.assert_array_equal(p.upper(80), np.full(HORIZON, 105.0))
    np.testing.assert_array_equal(p.lower(95), np.full(HORIZON, 91.0))


def test_array_likes_are_read_as_arrays_not_mappings() -> None:
    """A pandas Series (or Index) has ``keys`` too, but is one array."""
    pd = pytest.importorskip("pandas")
    answers: dict[str, Callable[[np.ndarray, int], Any]] = {
        "Series": lambda h, n: pd.Series(np.full(n, 7.0)),
        "Series on times": lambda h, n: pd.Series(
            np.full(n, 7.0), index=pd.date_range("2026-01-01", periods=n, freq="h")
        ),
        "Index": lambda h, n: pd.Index(np.full(n, 7.0)),
        "tuple": lambda h, n: (7.0,) * n,
        "float32": lambda h, n: np.full(n, 7.0, dtype=np.float32),
        "integers": lambda h, n: np.full(n, 7),
        "a mask with nothing masked": lambda h, n: np.ma.masked_array(np.full(n, 7.0)),
        "a mapping holding a Series": lambda h, n: {"mean": pd.Series(np.full(n, 7.0))},
    }
    for case, model in answers.items():
        p = predict(model)
        assert p.tier == "primary", (case, p.failures)
        np.testing.assert_array_equal(p.mean, np.full(HORIZON, 7.0))


# --- tier 1 fails: the fallback answers ----------------------------------------


def raises(history: np.ndarray, horizon: int) -> np.ndarray:
    raise ValueError("the feature store is down")


BAD_ANSWERS: dict[str, tuple[Callable[[np.ndarray, int], Any], str, str]] = {
    "raises": (raises, "model_crash", "raised ValueError"),
    "too long": (lambda h, n: np.ones(n + 1), "model_bad_output", "25 values, expected 24"),
    "too short": (lambda h, n: [1.0], "model_bad_output", "1 value, expected 24"),
    "2-D": (lambda h, n: np.ones((n, 2)), "model_bad_output", "shape"),
    "NaN": (lambda h, n: np.r_[np.ones(n - 1), np.nan], "model_bad_output", "[23] is NaN"),
    "infinity": (lambda h, n: np.r_[np.inf, np.ones(n - 1)], "model_bad_output", "[0] is inf"),
    "None": (lambda h, n: None, "model_bad_output", "returned None"),
    "text": (lambda h, n: "forty-two", "model_bad_output", "must be an array-like of numbers"),
    # The dtype rules of spe.forecast's inputs.
    "times": (
        lambda h, n: np.arange(n).astype("datetime64[h]"), "model_bad_output", "times (datetime64)"
    ),
    "strings": (lambda h, n: np.array(["1.0"] * n), "model_bad_output", "strings"),
    "strings in a list": (lambda h, n: ["1.0"] * n, "model_bad_output", "strings"),
    "complex": (lambda h, n: np.ones(n) + 0j, "model_bad_output", "complex numbers"),
    "booleans": (lambda h, n: np.ones(n, dtype=bool), "model_bad_output", "booleans"),
    "booleans as the mean": (lambda h, n: {"mean": [True] * n}, "model_bad_output", "mean must"),
    "masked": (
        lambda h, n: np.ma.masked_array(np.ones(n), mask=np.arange(n) < 2),
        "model_bad_output",
        "masked array with 2 masked values",
    ),
    "a generator": (lambda h, n: (1.0 for _ in range(n)), "model_bad_output", "got a generator"),
    "no mean": (lambda h, n: {"lower_80": np.ones(n)}, "model_bad_output", 'no "mean"'),
    "unknown key": (lambda h, n: {"mean": np.ones(n), "median": 1}, "model_bad_output", '"median"'),
    "lower above upper": (
        lambda h, n: {"mean": np.ones(n), "lower_80": np.full(n, 2.0), "upper_80": np.zeros(n)},
        "model_bad_output",
        "above upper_80",
    ),
    "half an interval": (
        lambda h, n: {"mean": np.ones(n), "lower_80": np.zeros(n)},
        "model_bad_output",
        '"lower_80" has no matching "upper_80"',
    ),
    "a level given twice": (
        lambda h, n: {"mean": np.ones(n), "lower_80": np.zeros(n), "lower_80.0": np.zeros(n),
                      "upper_80": np.full(n, 2.0)},
        "model_bad_output",
        'level 80 given twice ("lower_80" and "lower_80.0")',
    ),
    "a level that is not one": (
        lambda h, n: {"mean": np.ones(n), "lower_nan": np.zeros(n), "upper_nan": np.full(n, 2.0)},
        "model_bad_output",
        "level NaN is outside (0, 100)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_ANSWERS))
def test_a_failing_primary_is_replaced_by_the_fallback(case: str) -> None:
    model, kind, message = BAD_ANSWERS[case]
    p = predict(model)
    assert (p.tier, p.provenance, p.model) == ("fallback", "fallback", "seasonal_naive")
    [failure] = p.failures
    assert failure["tier"] == "primary" and failure["kind"] == kind
    assert message in failure["message"], failure["message"]
    assert p.notice is not None and "statistical fallback" in p.notice
    assert np.isfinite(p.mean).all() and len(p) == HORIZON


def test_the_traceback_of_an_exception_is_kept() -> None:
    [failure] = predict(raises).failures
    assert "Traceback" in failure["message"] and "the feature store is down" in failure["message"]


def test_a_prediction_pickles_and_copies_with_everything() -> None:
    import copy

    p = predict(raises)
    for other in (pickle.loads(pickle.dumps(p)), copy.copy(p), copy.deepcopy(p)):
        assert (other.tier, other.provenance, other.inputs, other.model) == (
            p.tier, p.provenance, p.inputs, p.model)
        assert other.failures == p.failures and other.notice == p.notice
        assert (other.made_at, other.age_s, other.intervals_from) == (
            p.made_at, p.age_s, p.intervals_from)
        assert other.forecast == p.forecast
        np.testing.assert_array_equal(other.times, p.times)
    with pytest.raises(spe.ConfigError, match="not a pickled prediction"):
        spe.Prediction._restore("{}", 0)


class HangingPrimary:
    """A primary that hangs until released, recording its calls; inside
    ``with``, a thread moves ``clock`` past the 5 s timeout once a call is
    running (no sleeps), and leaving releases the call."""

    def __init__(self, clock: spe.ManualClock) -> None:
        self.clock = clock
        self.calls: list[int] = []
        self.started, self.release = threading.Event(), threading.Event()
        self.mover = threading.Thread(target=self._advance_once_started)

    def __call__(self, history: np.ndarray, horizon: int) -> np.ndarray:
        self.calls.append(horizon)
        self.started.set()
        self.release.wait(30)
        return np.ones(horizon)

    def _advance_once_started(self) -> None:
        if self.started.wait(30):
            self.clock.advance(5.0)

    def __enter__(self) -> HangingPrimary:
        self.mover.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.mover.join()


def test_a_hanging_primary_times_out_without_blocking() -> None:
    """Timed on a manual clock: the test moves it once the model is running."""
    clock = spe.ManualClock()
    with HangingPrimary(clock) as hangs:
        p = predict(hangs, clock=clock)
    assert p.tier == "fallback"
    [failure] = p.failures
    assert failure["kind"] == "model_timeout" and "no answer within 5 s" in failure["message"]


def test_a_primary_still_hanging_is_not_called_again() -> None:
    """A call cannot be interrupted: while it hangs, later runs skip it."""
    clock = spe.ManualClock()
    with HangingPrimary(clock) as hangs:
        rf = spe.ResilientForecaster(hangs, fallback="seasonal_naive", timeout_s=5.0, clock=clock)
        first = rf.predict(HISTORY, HORIZON, season_length=24)
        second = rf.predict(HISTORY, HORIZON + 1, season_length=24)
    assert first.tier == "fallback" and second.tier == "fallback"
    [failure] = second.failures
    assert failure["kind"] == "model_timeout" and "still running" in failure["message"]
    assert hangs.calls == [HORIZON]


def test_a_slow_primary_under_the_timeout_answers() -> None:
    clock = spe.ManualClock()

    def slow(history: np.ndarray, horizon: int) -> np.ndarray:
        clock.advance(4.9)
        return mean_model(history, horizon)

    assert predict(slow, clock=clock).tier == "primary"


# --- tier 3: the cache ----------------------------------------------------------


def test_the_cache_serves_when_both_fail_even_after_a_restart(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = spe.ResilientForecaster(mean_model, fallback="seasonal_naive", cache_dir=cache)
    first = good.predict(HISTORY, HORIZON, season_length=24)
    assert first.tier == "primary"
    del good
    # A new process-like start: the cached predictions are there at once.
    bad = spe.ResilientForecaster(raises, fallback="seasonal_naive", cache_dir=cache)
    assert bad.cache_report == {"loaded": 1, "quarantined": [], "unreadable": []}
    latest = bad.latest()
    assert latest is not None and latest.tier == "cache"
    # The fallback cannot fit 10 points with a daily season: tier 3 answers.
    p = bad.predict(HISTORY[:10], HORIZON, season_length=24)
    assert (p.tier, p.provenance) == ("cache", "cached")
    assert [f["tier"] for f in p.failures] == ["primary", "fallback"]
    assert p.failures[1]["message"].startswith("seasonal naive")
    np.testing.assert_array_equal(p.mean, first.mean)
    assert p.model == first.model
    assert p.notice is not None and "last good predictions" in p.notice


def test_predictions_from_an_estimated_history_never_pass_for_live(tmp_path: Path) -> None:
    rf = spe.ResilientForecaster(mean_model, fallback="seasonal_naive", cache_dir=tmp_path / "cache")
    p = rf.predict(HISTORY, HORIZON, season_length=24, inputs="synthetic")
    assert (p.tier, p.provenance, p.inputs) == ("primary", "synthetic", "synthetic")
    assert p.notice is not None and "estimated (synthetic) history" in p.notice
    assert p.to_pandas().attrs["inputs"] == "synthetic"
    live = rf.predict(HISTORY, HORIZON, season_length=24)
    assert (live.provenance, live.inputs, live.notice) == ("live", "live", None)
    with pytest.raises(spe.ConfigError, match='inputs="cached"'):
        rf.predict(HISTORY, HORIZON, season_length=24, inputs="cached")


def test_no_tier_left_raises_with_the_failures() -> None:
    rf = spe.ResilientForecaster(raises, fallback="seasonal_naive")
    with pytest.raises(spe.ForecastError, match="no cached predictions") as info:
        rf.predict(HISTORY[:10], HORIZON, season_length=24)
    failures = info.value.failures  # type: ignore[attr-defined]
    assert [f["tier"] for f in failures] == ["primary", "fallback"]
    assert failures[0]["kind"] == "model_crash"


def test_a_corrupt_cache_is_quarantined_or_raised(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spe.ResilientForecaster(mean_model, cache_dir=cache).predict(HISTORY, HORIZON, season_length=24)
    [generation] = list(cache.glob("predictions.*.spc"))
    data = bytearray(generation.read_bytes())
    data[-5] ^= 0xFF
    generation.write_bytes(bytes(data))
    with pytest.raises(spe.CacheCorruptError, match="quarantined"):
        spe.ResilientForecaster(mean_model, cache_dir=cache, on_corrupt_cache="raise")
    # Quarantined by the first open: the next start is clean (and empty).
    rf = spe.ResilientForecaster(mean_model, cache_dir=cache, on_corrupt_cache="raise")
    assert rf.latest() is None
    assert rf.cache_report is not None and rf.cache_report["loaded"] is None
    # A pickled copy keeps the policy: it raises on a corrupt cache too.
    rf.predict(HISTORY, HORIZON, season_length=24)
    pickled = pickle.dumps(rf)
    generation = sorted(cache.glob("predictions.*.spc"))[-1]
    data = bytearray(generation.read_bytes())
    data[-5] ^= 0xFF
    generation.write_bytes(bytes(data))
    del rf  # else the copy shares its open cache, which serves from memory
    with pytest.raises(spe.CacheCorruptError, match="quarantined"):
        pickle.loads(pickled)


def test_failures_are_journaled(tmp_path: Path) -> None:
    journal = spe.Journal(tmp_path / "incidents.journal")
    rf = spe.ResilientForecaster(raises, fallback="seasonal_naive", journal=journal)
    rf.predict(HISTORY, HORIZON, season_length=24)
    [incident] = journal.open_incidents()
    assert (incident["component"], incident["kind"]) == ("prediction", "model_crash")


# --- requests -------------------------------------------------------------------


def test_time_axis_from_a_pandas_index() -> None:
    pd = pytest.importorskip("pandas")
    index = pd.date_range("2026-01-01", periods=HISTORY.size, freq="15min", tz="UTC")
    rf = spe.ResilientForecaster(mean_model, fallback="naive")
    p = rf.predict(pd.Series(HISTORY, index=index), horizon=4, season_length=96)
    assert p.times[0] == np.datetime64((index[-1] + pd.Timedelta("15min")).tz_localize(None), "ns")
    df = p.to_pandas()
    assert df.index.freqstr == "15min" and df.attrs["tier"] == "primary"
    p = rf.predict(HISTORY, horizon=3, start="2026-05-01T00:00:00Z", step_s=60)
    assert p.times[-1] == np.datetime64("2026-05-01T00:02:00", "ns")


def test_missing_values_in_the_history() -> None:
    history = HISTORY.copy()
    history[50:53] = np.nan
    seen: list[np.ndarray] = []

    def model(h: np.ndarray, n: int) -> np.ndarray:
        seen.append(h)
        return np.ones(n)

    spe.ResilientForecaster(model).predict(history, HORIZON, season_length=24)
    assert np.isfinite(seen[0]).all()
    history[-1] = np.nan
    with pytest.raises(spe.ForecastInputError, match="history: the last 1 values"):
        spe.ResilientForecaster(model).predict(history, HORIZON)


def test_bad_settings() -> None:
    with pytest.raises(TypeError, match="callable"):
        spe.ResilientForecaster(42)  # type: ignore[arg-type]
    with pytest.raises(spe.ConfigError, match="timeout_s=0"):
        spe.ResilientForecaster(mean_model, timeout_s=0)
    with pytest.raises(spe.ConfigError, match="use one of"):
        spe.ResilientForecaster(mean_model, fallback="prophet")
    with pytest.raises(spe.ConfigError, match="on_corrupt_cache"):
        spe.ResilientForecaster(mean_model, on_corrupt_cache="ignore")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="^clock must be a spe.ManualClock or None .*, not str"):
        spe.ResilientForecaster(mean_model, clock="x")  # type: ignore[arg-type]
    rf = spe.ResilientForecaster(mean_model)
    with pytest.raises(spe.ConfigError, match="horizon=0"):
        rf.predict(HISTORY, 0)
    with pytest.raises(spe.ConfigError, match="exog_future"):
        rf.predict(HISTORY, 24, exog={"temperature_2m": HISTORY})
    huge = np.array(HISTORY, dtype=float)
    huge[3] = -1e307
    with pytest.raises(spe.ConfigError, match="rescale"):
        rf.predict(huge, 24)


def test_forecasters_of_one_process_share_a_cache_dir(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = spe.ResilientForecaster(mean_model, fallback="seasonal_naive", cache_dir=cache)
    # A second one on the same directory (a notebook cell run again while
    # the first is still bound) shares the open cache instead of being refused.
    link = tmp_path / "link"
    link.symlink_to(cache, target_is_directory=True)
    bad = spe.ResilientForecaster(raises, fallback="seasonal_naive", cache_dir=link)
    assert bad.cache_report == {"loaded": None, "quarantined": [], "unreadable": []}
    first = good.predict(HISTORY, HORIZON, season_length=24)
    # The newest answer of one is the other's tier 3.
    p = bad.predict(HISTORY[:10], HORIZON, season_length=24)
    assert p.tier == "cache"
    np.testing.assert_array_equal(p.mean, first.mean)
    third = spe.ResilientForecaster(raises, fallback="seasonal_naive", cache_dir=cache)
    assert third.cache_report == {"loaded": 1, "quarantined": [], "unreadable": []}
    # Closed with its last forecaster: the next one opens it from disk.
    del good, bad, third
    reopened = spe.ResilientForecaster(raises, fallback="seasonal_naive", cache_dir=cache)
    latest = reopened.latest()
    assert latest is not None and latest.tier == "cache"


def test_a_cache_dir_open_in_another_process_is_refused_and_left_whole(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    spe.ResilientForecaster(mean_model, cache_dir=cache).predict(HISTORY, HORIZON, season_length=24)
    # The other process opens the cache and holds it.
    opens = "import spe; rf = spe.ResilientForecaster(lambda h, n: h[-n:], cache_dir=sys.argv[1])"
    with another_process_holding(opens, str(cache)):
        with pytest.raises(spe.CacheError, match="already open in another process") as info:
            spe.ResilientForecaster(mean_model, cache_dir=cache)
        assert isinstance(info.value, OSError)
        assert "predictions.lock" in str(info.value)
    # Its lock went with it; the cached predictions are there.
    rf = spe.ResilientForecaster(raises, fallback="seasonal_naive", cache_dir=cache)
    assert rf.cache_report == {"loaded": 1, "quarantined": [], "unreadable": []}


def test_a_cache_dir_that_cannot_be_one_is_an_os_error(tmp_path: Path) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    with pytest.raises(spe.CacheError) as info:
        spe.ResilientForecaster(mean_model, cache_dir=a_file)
    assert isinstance(info.value, OSError) and isinstance(info.value, spe.SpeError)
    assert str(a_file) in str(info.value)


def test_levels_that_look_like_fractions_warn() -> None:
    rf = spe.ResilientForecaster(mean_model, fallback="seasonal_naive")
    with pytest.warns(UserWarning, match=r"did you mean levels=\(80, 95\)\?") as warned:
        p = rf.predict(HISTORY, HORIZON, season_length=24, levels=(0.8, 0.95))
    assert p.forecast.levels == (0.8, 0.95)
    # Attributed to the caller, not to spe's own code.
    assert [w.filename for w in warned] == [__file__]


# --- the object -----------------------------------------------------------------


def test_repr_and_pickle(tmp_path: Path) -> None:
    rf = spe.ResilientForecaster(mean_model, fallback="mstl", timeout_s=2.0, cache_dir=tmp_path)
    assert repr(rf) == (
        f"ResilientForecaster(primary='mean_model', fallback='mstl', timeout_s=2.0, "
        f"cache_dir={str(tmp_path)!r})"
    )
    p = rf.predict(HISTORY, HORIZON, season_length=24)
    assert repr(p) == "Prediction(tier='primary', model='mean_model', horizon=24, provenance='live')"
    # Unpickled in another process: the same settings, the cache reopened
    # (once this process has let it go: a cache_dir is one process's).
    code = (
        "import pickle, sys; rf = pickle.loads(sys.stdin.buffer.read()); "
        "print(repr(rf)); print(rf.latest().tier)"
    )
    pickled, expected = pickle.dumps(rf), repr(rf)
    held = subprocess.run([sys.executable, "-c", code], input=pickled,
                          capture_output=True, cwd=Path(__file__).parent)
    assert held.returncode == 1
    assert b"spe.CacheError" in held.stderr and b"already open in another process" in held.stderr
    del rf
    out = subprocess.run([sys.executable, "-c", code], input=pickled,
                         capture_output=True, check=True, cwd=Path(__file__).parent)
    lines = out.stdout.decode().splitlines()
    assert lines == [expected, "cache"]


def test_a_lambda_primary_says_why_it_cannot_be_pickled() -> None:
    rf = spe.ResilientForecaster(lambda h, n: np.ones(n))
    with pytest.raises(TypeError, match="module-level function"):
        pickle.dumps(rf)


def test_threads_can_predict_at_once() -> None:
    """Concurrent calls (they share a run when they overlap) all get an answer."""
    rf = spe.ResilientForecaster(mean_model, fallback="naive")
    results: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        p = rf.predict(HISTORY, HORIZON, season_length=24)
        with lock:
            results.append(p.tier)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["primary"] * 6
    latest = rf.latest()
    assert latest is not None and latest.tier == "primary"


def test_a_call_with_other_arguments_gets_its_own_predictions() -> None:
    """A call made while another request runs waits, then runs its own."""
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def gated(history: np.ndarray, horizon: int) -> np.ndarray:
        calls.append(horizon)
        started.set()
        release.wait(10)
        return np.full(horizon, history[-1])

    rf = spe.ResilientForecaster(gated, fallback="naive", timeout_s=20.0)
    out: dict[str, spe.Prediction] = {}
    a = threading.Thread(target=lambda: out.update(a=rf.predict(np.arange(100.0), 3)))
    b = threading.Thread(target=lambda: out.update(b=rf.predict(np.arange(100.0) * 1000, 48)))
    a.start()
    assert started.wait(10)
    b.start()
    release.set()
    a.join()
    b.join()
    assert (out["a"].tier, len(out["a"]), out["a"].mean[0]) == ("primary", 3, 99.0)
    assert (out["b"].tier, len(out["b"]), out["b"].mean[0]) == ("primary", 48, 99000.0)
    assert calls == [3, 48]


def test_time_indexes_that_would_misplace_the_forecast_are_refused() -> None:
    pd = pytest.importorskip("pandas")
    rf = spe.ResilientForecaster(mean_model, fallback="naive")
    index = pd.date_range("2026-01-01", periods=HISTORY.size, freq="h", tz="UTC")
    y = pd.Series(HISTORY, index=index)
    with pytest.raises(spe.ConfigError, match="does not increase"):
        rf.predict(y[::-1], 3)
    with pytest.raises(spe.ConfigError, match=r"not regular: 7200 s between positions"):
        rf.predict(y.drop(index[-2]), 3)
    with pytest.raises(spe.ConfigError, match="no time zone"):
        rf.predict(y.tz_localize(None), 3)
    # A naive index is not read when start= and step_s= say where the steps are.
    p = rf.predict(y.tz_localize(None), 3, start="2026-05-01T00:00:00Z", step_s=3600)
    assert p.times[0] == np.datetime64("2026-05-01T00:00:00", "ns")
    with pytest.raises(spe.ConfigError, match="datetime64"):
        rf.predict(HISTORY, 3, start="2262-04-12T00:00:00Z")


# --- the primary's thread, interpreter shutdown and Ctrl-C ----------------------

SUBPROCESS_PRELUDE = """
import sys, time
import numpy as np, spe
HISTORY = 100 + 10 * np.sin(np.arange(24 * 14) * 2 * np.pi / 24)
"""

# The model is still running Python code when the interpreter exits: a pure
# loop that never ends, a loop of short sleeps (the thread lets go of the GIL
# and takes it back, possibly during finalization), a model that returns
# while the interpreter finalizes.
STILL_RUNNING_AT_EXIT = {
    "busy loop": "    n = 0\n    while True:\n        n += 1\n",
    "sleeping loop": "    while True:\n        time.sleep(0.001)\n",
    "returns late": "    for _ in range(100):\n        time.sleep(0.001)\n    return np.ones(horizon)\n",
}


@pytest.mark.parametrize("body", sorted(STILL_RUNNING_AT_EXIT))
def test_the_interpreter_exits_cleanly_while_a_timed_out_primary_runs(body: str) -> None:
    script = SUBPROCESS_PRELUDE + (
        "def model(history, horizon):\n"
        + STILL_RUNNING_AT_EXIT[body]
        + "rf = spe.ResilientForecaster(model, fallback='seasonal_naive', timeout_s=0.05)\n"
        "print(rf.predict(HISTORY, 24, season_length=24).tier)\n"
    )
    for _ in range(4):
        run = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
        )
        assert "Fatal Python error" not in run.stderr, run.stderr
        assert run.returncode == 0, run.stderr
        assert run.stdout.split() == ["fallback"], run.stdout + run.stderr


def test_ctrl_c_while_the_primary_thread_starts_is_the_callers() -> None:
    """``Thread.start`` waits for the new thread in Python code, where a
    Ctrl-C is handled: one that lands there interrupts ``predict``; it is not
    taken for the model failing to start (and the fallback's answer)."""
    script = SUBPROCESS_PRELUDE + (
        "import threading\n"
        "real_start = threading.Thread.start\n"
        "def start(self):\n"
        "    real_start(self)\n"
        "    raise KeyboardInterrupt\n"
        "threading.Thread.start = start\n"
        "rf = spe.ResilientForecaster(lambda h, n: np.ones(n), fallback='seasonal_naive', timeout_s=60)\n"
        "try:\n"
        "    rf.predict(HISTORY, 24, season_length=24)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "else:\n"
        "    print('not interrupted', flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["interrupted"], out.stdout + out.stderr


def test_ctrl_c_interrupts_predict_while_the_primary_runs() -> None:
    """The model tells the test it started (a line on stdout), the test sends
    SIGINT: ``predict`` raises KeyboardInterrupt while the model still runs
    (it would finish and answer after 3000 short sleeps, long before the
    600 s timeout). The model keeps running afterwards, so the next call
    gets the fallback without waiting, and the interpreter exits cleanly."""
    signal = pytest.importorskip("signal")
    if sys.platform == "win32":
        pytest.skip("SIGINT to a child process is a POSIX matter")
    script = SUBPROCESS_PRELUDE + (
        "done = []\n"
        "def model(history, horizon):\n"
        "    print('started', flush=True)\n"
        "    for _ in range(3000):\n"
        "        time.sleep(0.01)\n"
        "    done.append(True)\n"
        "    return np.ones(horizon)\n"
        "rf = spe.ResilientForecaster(model, fallback='seasonal_naive', timeout_s=600)\n"
        "try:\n"
        "    rf.predict(HISTORY, 24, season_length=24)\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', 'completed' if done else 'running', flush=True)\n"
        "else:\n"
        "    print('not interrupted', flush=True)\n"
        "p = rf.predict(HISTORY, 24, season_length=24)\n"
        "print(p.tier, p.failures[0]['kind'], 'running' if not done else 'completed')\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert "Fatal Python error" not in err, err
    assert child.returncode == 0, err
    assert out.splitlines() == ["interrupted running", "fallback model_timeout running"], out + err


def test_an_answer_holding_a_forecaster_is_dropped_safely() -> None:
    """The answer is read, and freed, inside the chain's task: a forecaster
    in it (with its own runtime) must not be dropped as tokio forbids."""

    def model(history: np.ndarray, horizon: int) -> Any:
        return {"mean": spe.ResilientForecaster(mean_model)}

    p = predict(model)
    assert p.tier == "fallback"
    [failure] = p.failures
    assert failure["kind"] == "model_bad_output"
    assert "ResilientForecaster" in failure["message"], failure["message"]


def test_the_traceback_starts_in_the_model() -> None:
    [failure] = predict(raises).failures
    assert "_primary.py" not in failure["message"], failure["message"]
    assert "in raises" in failure["message"]


def test_a_spe_model_as_the_fallback_brings_its_transform_and_periods() -> None:
    fallback = spe.Model("mstl", season_length=24, box_cox=0)
    rf = spe.ResilientForecaster(raises, fallback=fallback)
    assert rf.fallback == "box_cox(0)+mstl"
    assert repr(rf) == (
        "ResilientForecaster(primary='raises', fallback=Model('mstl', season_length=(24,), "
        "box_cox=0.0), timeout_s=5.0, cache_dir=None)"
    )
    # No season_length given: the Model's; the fallback is the Model's forecast.
    p = rf.predict(HISTORY, HORIZON)
    expected = fallback.fit(HISTORY).predict(HORIZON)
    assert (p.tier, p.model) == ("fallback", expected.model)
    np.testing.assert_array_equal(p.mean, expected.mean)
    np.testing.assert_array_equal(p.upper(95), expected.upper(95))
    # A season_length given to predict wins.
    p = rf.predict(HISTORY, HORIZON, season_length=12)
    assert p.model == spe.forecast(HISTORY, HORIZON, 12, model="mstl", box_cox=0).model
    # A history the transform cannot take: the fallback fails and says why.
    with pytest.raises(spe.ForecastError) as info:
        rf.predict(HISTORY - 100, HORIZON)
    [_, fallback_failure] = info.value.failures
    assert fallback_failure["tier"] == "fallback"
    assert "positive observations" in fallback_failure["message"]
    # It pickles with its Model.
    again = pickle.loads(pickle.dumps(rf))
    assert repr(again) == repr(rf)
    np.testing.assert_array_equal(again.predict(HISTORY, HORIZON).mean, expected.mean)


def test_a_fallback_that_is_neither_a_name_nor_a_model_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"^fallback must be a model name .* or a spe.Model, not int"):
        spe.ResilientForecaster(mean_model, fallback=42)  # type: ignore[arg-type]
