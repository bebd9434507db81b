"""spe.SyntheticGenerator: arrays, frame, determinism, arguments and errors."""

from __future__ import annotations

import copy
import inspect
import pickle
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

import spe
from columns import FLOAT_COLUMNS

START = "2026-01-01T00:00:00Z"
MAX_HOURS = 87_840


@pytest.fixture(scope="module")
def gen() -> spe.SyntheticGenerator:
    return spe.SyntheticGenerator(seed=7, latitude=48.85, longitude=2.35)


# --- arrays -----------------------------------------------------------------


def test_arrays_keys_dtypes_and_shapes(gen: spe.SyntheticGenerator) -> None:
    a = gen.arrays(START, hours=48)
    assert list(a) == ["time", *FLOAT_COLUMNS]
    assert a["time"].dtype == np.dtype("datetime64[ns]")
    for name in FLOAT_COLUMNS:
        assert a[name].dtype == np.float64, name
    for name, values in a.items():
        assert isinstance(values, np.ndarray), name
        assert values.shape == (48,), name
        assert values.flags.c_contiguous, name


def test_time_is_hourly_utc_from_start(gen: spe.SyntheticGenerator) -> None:
    t = gen.arrays(START, hours=30)["time"]
    expected = np.datetime64("2026-01-01T00:00:00", "ns") + np.arange(30) * np.timedelta64(1, "h")
    np.testing.assert_array_equal(t, expected)


def test_values_are_plausible_for_a_year(gen: spe.SyntheticGenerator) -> None:
    a = gen.arrays(START, hours=8760)
    for name in FLOAT_COLUMNS:
        assert np.isfinite(a[name]).all(), name
    assert (a["demand_mw"] > 0).all()
    assert (a["shortwave_radiation"] >= 0).all()
    assert ((a["cloud_cover"] >= 0) & (a["cloud_cover"] <= 100)).all()
    for name in ["wind_speed_10m", "solar_mw", "wind_mw", "other_mw", "imports_mw"]:
        assert (a[name] >= 0).all(), name
    # Paris: cold winters, warm summers, no sun at night.
    temperature = a["temperature_2m"]
    assert temperature[:24 * 31].mean() < temperature[24 * 181 : 24 * 212].mean()
    assert a["shortwave_radiation"][0] == 0.0  # midnight UTC


def test_each_call_returns_fresh_arrays(gen: spe.SyntheticGenerator) -> None:
    a = gen.arrays(START, hours=5)
    a["demand_mw"][:] = -1.0
    b = gen.arrays(START, hours=5)
    assert (b["demand_mw"] > 0).all()


def test_start_forms_agree(gen: spe.SyntheticGenerator) -> None:
    pd = pytest.importorskip("pandas")
    reference = gen.arrays(START, hours=6)
    for start in [
        "2026-01-01T01:00:00+01:00",
        "2025-12-31T19:00:00-05:00",
        "2026-01-01 00:00:00Z",
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        datetime(2026, 1, 1, 1, tzinfo=timezone(timedelta(hours=1))),
        pd.Timestamp("2026-01-01", tz="UTC"),
        pd.Timestamp("2026-01-01 01:00", tz="Europe/Paris"),
    ]:
        other = gen.arrays(start, hours=6)
        for name in reference:
            np.testing.assert_array_equal(other[name], reference[name], err_msg=f"{start!r}: {name}")


def test_zoneinfo_datetime() -> None:
    zoneinfo = pytest.importorskip("zoneinfo")
    try:
        paris = zoneinfo.ZoneInfo("Europe/Paris")
    except zoneinfo.ZoneInfoNotFoundError:
        pytest.skip("no time zone database")
    gen = spe.SyntheticGenerator()
    summer = gen.arrays(datetime(2026, 7, 1, 2, tzinfo=paris), hours=3)["time"]
    assert summer[0] == np.datetime64("2026-07-01T00:00:00", "ns")


def test_half_hour_start_is_allowed(gen: spe.SyntheticGenerator) -> None:
    t = gen.arrays("2026-01-01T00:30:00Z", hours=2)["time"]
    assert t[0] == np.datetime64("2026-01-01T00:30:00", "ns")


def test_longest_window(gen: spe.SyntheticGenerator) -> None:
    a = gen.arrays(START, hours=MAX_HOURS)
    assert a["demand_mw"].shape == (MAX_HOURS,)


# --- determinism ------------------------------------------------------------


def test_same_seed_same_values() -> None:
    a = spe.SyntheticGenerator(seed=42).arrays(START, hours=72)
    b = spe.SyntheticGenerator(seed=42).arrays(START, hours=72)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_other_seed_other_values() -> None:
    a = spe.SyntheticGenerator(seed=1).arrays(START, hours=72)
    b = spe.SyntheticGenerator(seed=2).arrays(START, hours=72)
    assert not np.array_equal(a["temperature_2m"], b["temperature_2m"])
    assert not np.array_equal(a["demand_mw"], b["demand_mw"])


def test_overlapping_windows_agree_on_the_overlap(gen: spe.SyntheticGenerator) -> None:
    whole = gen.arrays(START, hours=200)
    later = gen.arrays("2026-01-03T02:00:00Z", hours=100)  # hours 50..150
    for name in whole:
        np.testing.assert_array_equal(later[name], whole[name][50:150], err_msg=name)


def test_default_site_is_paris_and_default_seed_is_stable() -> None:
    default = spe.SyntheticGenerator()
    explicit = spe.SyntheticGenerator(
        seed=6168614, latitude=48.85, longitude=2.35, timezone="Europe/Paris", country="FR"
    )
    a, b = default.arrays(START, hours=24), explicit.arrays(START, hours=24)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_signature_shows_the_defaults_in_force() -> None:
    default = spe.SyntheticGenerator()
    params = inspect.signature(spe.SyntheticGenerator).parameters
    assert list(params) == ["seed", "latitude", "longitude", "timezone", "country", "params"]
    for name, param in params.items():
        assert param.default == getattr(default, name), name
    assert default.params is None


# --- frame ------------------------------------------------------------------


def test_frame_index_is_utc_hourly_named_time(gen: spe.SyntheticGenerator) -> None:
    pd = pytest.importorskip("pandas")
    df = gen.frame(START, hours=72)
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == FLOAT_COLUMNS
    assert isinstance(df.index, pd.DatetimeIndex)
    assert df.index.name == "time"
    assert str(df.index.tz) == "UTC"
    assert df.index.freq == pd.offsets.Hour()
    assert (df.index[1:] - df.index[:-1] == pd.Timedelta(hours=1)).all()
    assert df.index[0] == pd.Timestamp(START)
    assert all(df[c].dtype == np.float64 for c in df.columns)


def test_frame_matches_arrays(gen: spe.SyntheticGenerator) -> None:
    pd = pytest.importorskip("pandas")
    df = gen.frame(START, hours=48)
    a = gen.arrays(START, hours=48)
    assert isinstance(df.index, pd.DatetimeIndex)
    np.testing.assert_array_equal(df.index.tz_convert(None).to_numpy(), a["time"])
    for name in FLOAT_COLUMNS:
        np.testing.assert_array_equal(df[name].to_numpy(), a[name], err_msg=name)


def test_frame_without_pandas_says_how_to_install(
    gen: spe.SyntheticGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    with pytest.raises(ImportError, match=r"pip install 'spe\[pandas\]'") as info:
        gen.frame(START, hours=3)
    assert info.value.name == "pandas"
    assert gen.arrays(START, hours=3)["demand_mw"].shape == (3,)


def test_frame_validates_like_arrays(gen: spe.SyntheticGenerator) -> None:
    pytest.importorskip("pandas")
    with pytest.raises(spe.ConfigError, match="hours"):
        gen.frame(START, hours=0)


# --- errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"latitude": 91.0}, r"latitude=91\.0 is outside -90\.\.=90"),
        ({"latitude": -90.5}, "latitude"),
        ({"latitude": float("nan")}, "latitude"),
        ({"longitude": 181.0}, "longitude=181"),
        ({"timezone": "Mars/Olympus"}, r'timezone="Mars/Olympus" is not an IANA time zone.*"Europe/Paris"'),
        ({"timezone": ""}, "timezone"),
        ({"country": "XX"}, r'country="XX".*"FR".*"none"'),
        ({"seed": -1}, r"seed=-1 is out of range.*2\*\*64 - 1"),
        ({"seed": 2**64}, "seed=18446744073709551616 is out of range"),
        ({"params": {"climate": {"temp_mean_cc": 30}}}, "unknown field `temp_mean_cc`"),
        ({"params": {"demnd": {}}}, "unknown field `demnd`"),
    ],
)
def test_bad_settings_raise_config_error(kwargs: dict[str, object], pattern: str) -> None:
    with pytest.raises(spe.ConfigError, match=pattern) as info:
        spe.SyntheticGenerator(**kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, spe.SpeError)


def test_largest_seed_and_holiday_free_site_are_fine() -> None:
    gen = spe.SyntheticGenerator(seed=2**64 - 1, latitude=-33.9, longitude=151.2,
                                 timezone="Australia/Sydney", country="none")
    assert gen.seed == 2**64 - 1
    assert gen.country == "none"
    assert (gen.arrays(START, hours=24)["demand_mw"] > 0).all()


@pytest.mark.parametrize(
    ("start", "pattern"),
    [
        ("2026-01-01T00:00:00", r"no UTC offset.*append \"Z\""),
        ("2026-01-01", "not an RFC 3339 timestamp"),
        ("yesterday", r"not an RFC 3339 timestamp.*\"2026-01-01T00:00:00Z\""),
        ("2026-13-01T00:00:00Z", "not an RFC 3339 timestamp"),
        ("", "not an RFC 3339 timestamp"),
        ("2026-01-01T00:00:30Z", "not on a whole minute"),
        (datetime(2026, 1, 1), r"naive datetime.*tzinfo=timezone\.utc"),
        (datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=timezone.utc), "not on a whole minute"),
        ("2262-04-01T00:00:00Z", r"datetime64\[ns\] range"),
        ("1600-01-01T00:00:00Z", r"datetime64\[ns\] range"),
    ],
)
def test_bad_start_raises_config_error(
    gen: spe.SyntheticGenerator, start: str | datetime, pattern: str
) -> None:
    with pytest.raises(spe.ConfigError, match=pattern):
        gen.arrays(start, hours=24 * 30)


@pytest.mark.parametrize("hours", [0, -1, -(2**70), MAX_HOURS + 1, 2**64])
def test_bad_hours_raise_config_error(gen: spe.SyntheticGenerator, hours: int) -> None:
    with pytest.raises(spe.ConfigError, match=rf"hours={hours} is out of range: ask for 1 to {MAX_HOURS}"):
        gen.arrays(START, hours=hours)


def test_wrong_types_raise_type_error(gen: spe.SyntheticGenerator) -> None:
    with pytest.raises(TypeError, match="start must be an RFC 3339 string"):
        gen.arrays(1767225600, hours=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hours must be an integer, not float"):
        gen.arrays(START, hours=24.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hours must be an integer, not bool"):
        gen.arrays(START, hours=True)
    with pytest.raises(TypeError, match="seed must be an integer, not str"):
        spe.SyntheticGenerator(seed="7")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed must be an integer, not bool"):
        spe.SyntheticGenerator(seed=True)
    with pytest.raises(TypeError):
        spe.SyntheticGenerator(latitude="north")  # type: ignore[arg-type]


def test_numpy_integers_are_accepted(gen: spe.SyntheticGenerator) -> None:
    a = spe.SyntheticGenerator(seed=np.uint64(7)).arrays(START, hours=np.int64(5))
    np.testing.assert_array_equal(a["demand_mw"], gen.arrays(START, hours=5)["demand_mw"])


# --- the object -------------------------------------------------------------


def test_repr(gen: spe.SyntheticGenerator) -> None:
    expected = (
        "SyntheticGenerator(seed=7, latitude=48.85, longitude=2.35, "
        "timezone='Europe/Paris', country='FR')"
    )
    assert repr(gen) == expected
    assert repr(spe._spe.SyntheticGenerator(seed=7)) == expected
    assert repr(spe.SyntheticGenerator(seed=1, latitude=-45, longitude=170.5, timezone="UTC",
                                       country="none")) == (
        "SyntheticGenerator(seed=1, latitude=-45.0, longitude=170.5, timezone='UTC', country='none')"
    )


def test_repr_round_trips(gen: spe.SyntheticGenerator) -> None:
    again = eval(repr(gen), {"SyntheticGenerator": spe.SyntheticGenerator})  # noqa: S307
    assert repr(again) == repr(gen)


def test_properties(gen: spe.SyntheticGenerator) -> None:
    assert (gen.seed, gen.latitude, gen.longitude, gen.timezone, gen.country) == (
        7, 48.85, 2.35, "Europe/Paris", "FR"
    )
    with pytest.raises(AttributeError):
        gen.seed = 8  # type: ignore[misc]


def test_is_the_compiled_class(gen: spe.SyntheticGenerator) -> None:
    assert isinstance(gen, spe._spe.SyntheticGenerator)
    assert spe.SyntheticGenerator.__module__ == "spe._synthetic"


def test_pickle_and_copy(gen: spe.SyntheticGenerator) -> None:
    for other in (pickle.loads(pickle.dumps(gen)), copy.copy(gen), copy.deepcopy(gen)):
        assert type(other) is spe.SyntheticGenerator
        assert repr(other) == repr(gen)
        np.testing.assert_array_equal(
            other.arrays(START, hours=5)["demand_mw"], gen.arrays(START, hours=5)["demand_mw"]
        )


def test_threads_get_identical_results(gen: spe.SyntheticGenerator) -> None:
    results: list[np.ndarray] = []
    lock = threading.Lock()

    def work() -> None:
        demand = gen.arrays(START, hours=2000)["demand_mw"]
        with lock:
            results.append(demand)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])


def test_generation_releases_the_gil(gen: spe.SyntheticGenerator) -> None:
    """Python code keeps running while another thread generates ten years."""
    done = threading.Event()
    elapsed: list[float] = []

    def work() -> None:
        t0 = time.perf_counter()
        gen.arrays(START, hours=MAX_HOURS)
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
        pytest.skip(f"generation too fast ({elapsed[0]:.3f} s) to tell")
    # Holding the GIL would stall this loop for the whole generation.
    assert longest_gap < 0.5 * elapsed[0], (longest_gap, elapsed[0])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_a_non_finite_parameter_is_named(value: float) -> None:
    with pytest.raises(spe.ConfigError, match=r"^params\['pv'\]\['capacity_mwp'\] is (NaN|inf|-inf): give a finite number"):
        spe.SyntheticGenerator(params={"pv": {"capacity_mwp": value}})
    with pytest.raises(spe.ConfigError, match=r"^params\['climate'\]\['temp_mean_c'\] is"):
        spe.SyntheticGenerator(params={"pv": {"capacity_mwp": 5.0}, "climate": {"temp_mean_c": value}})


def test_cyclic_or_deep_parameters_are_refused_not_a_crash() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(spe.ConfigError, match="params must be plain data"):
        spe.SyntheticGenerator(params={"pv": loop})
    deep: object = 1.0
    for _ in range(10_000):
        deep = [deep]
    with pytest.raises((spe.ConfigError, RecursionError)):
        spe.SyntheticGenerator(params={"pv": deep})
