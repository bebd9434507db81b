"""spe.HistoryStore: the long-term history store, on real files."""

from __future__ import annotations

import os
import pickle
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spe

T0 = pd.Timestamp("2026-03-01T00:00:00Z")
FAR_PAST = "2000-01-01T00:00:00Z"
FAR_FUTURE = "2100-01-01T00:00:00Z"


def hours(n: int, start: pd.Timestamp = T0) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="h")


def test_values_round_trip_with_their_times_and_provenance(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path)
    assert store.open_report["created"] and store.open_report["clean"]
    assert store.path == tmp_path
    assert repr(store) == f"HistoryStore({str(tmp_path)!r})".replace("'", '"')
    values = pd.Series([1.5, np.nan, 3.5, -4.25], index=hours(4))
    assert store.record("temperature_2m", values) == 3  # NaN: missing, not recorded
    df = store.read("temperature_2m", FAR_PAST, FAR_FUTURE)
    assert list(df.columns) == ["value", "provenance", "cached_age_s"]
    assert df.index.name == "time" and str(df.index.tz) == "UTC"
    assert list(df.index) == [hours(4)[0], hours(4)[2], hours(4)[3]]
    assert df["value"].tolist() == [1.5, 3.5, -4.25]
    assert set(df["provenance"]) == {"live"}
    assert store.series() == ["temperature_2m"]
    # [start, end): the end is excluded.
    part = store.read("temperature_2m", hours(4)[0].isoformat(), hours(4)[2].isoformat())
    assert len(part) == 1
    # Times in another zone are the same instants.
    paris = hours(2).tz_convert("Europe/Paris")
    store.record("demand_mw", [100.0, 200.0], times=paris)
    assert list(store.read("demand_mw", FAR_PAST, FAR_FUTURE).index) == list(hours(2))
    stats = store.stats()
    assert (stats["observations"], stats["predictions"], stats["kpis"]) == (5, 0, 0)
    assert stats["observed_from"] == T0.to_pydatetime()


def test_an_estimate_never_replaces_a_live_value(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path)
    t = hours(1)
    assert store.record("demand_mw", [10.0], times=t, provenance="synthetic") == 1
    assert store.record("demand_mw", [20.0], times=t, provenance="live") == 1
    assert store.record("demand_mw", [30.0], times=t, provenance="synthetic") == 0
    assert store.record("demand_mw", [40.0], times=t, provenance="cached", cached_age_s=60) == 0
    row = store.read("demand_mw", FAR_PAST, FAR_FUTURE).iloc[0]
    assert (row["value"], row["provenance"]) == (20.0, "live")


def test_bad_input_raises_clear_errors_and_writes_nothing(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path)
    with pytest.raises(spe.ConfigError, match="not finite|nothing was written"):
        store.record("demand_mw", [1.0, np.inf], times=hours(2))
    with pytest.raises(spe.ConfigError, match="no time zone"):
        store.record("demand_mw", [1.0], times=pd.date_range("2026-01-01", periods=1, freq="h"))
    with pytest.raises(spe.ConfigError, match="one time per value"):
        store.record("demand_mw", [1.0, 2.0], times=hours(3))
    with pytest.raises(spe.ConfigError, match="not a provenance"):
        store.record("demand_mw", [1.0], times=hours(1), provenance="measured")
    with pytest.raises(spe.ConfigError, match="series name"):
        store.record("", [1.0], times=hours(1))
    with pytest.raises(TypeError, match="DatetimeIndex"):
        store.record("demand_mw", [1.0, 2.0])
    with pytest.raises(spe.ConfigError, match="before"):
        store.read("demand_mw", FAR_FUTURE, FAR_PAST)
    with pytest.raises(TypeError, match="RFC 3339"):
        store.read("demand_mw", 1, 2)
    assert store.stats()["observations"] == 0
    with pytest.raises(TypeError, match="numbers"):
        store.record("demand_mw", ["1.5", "2"], times=hours(2))
    with pytest.raises(spe.ConfigError, match="one-dimensional"):
        store.record("demand_mw", [[1.0, 2.0]], times=hours(2))
    for kwargs in (
        {"backup_every_s": 0.0},
        {"backups_kept": 0},
        {"backups_kept": -1},
        {"predictions_kept_days": 1.0},
    ):
        with pytest.raises(spe.ConfigError):
            spe.HistoryStore(tmp_path / "other", **kwargs)


def test_data_survives_reopening_and_pickling(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path, backups_kept=3)
    store.record("demand_mw", pd.Series([5.0, 6.0], index=hours(2)))
    del store
    again = spe.HistoryStore(tmp_path, backups_kept=3)
    assert again.open_report["clean"] and not again.open_report["created"]
    copy = pickle.loads(pickle.dumps(again))
    assert isinstance(copy, spe.HistoryStore)
    assert copy.read("demand_mw", FAR_PAST, FAR_FUTURE)["value"].tolist() == [5.0, 6.0]


def test_backups_rotate_and_restore_a_damaged_database(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path, backups_kept=2)
    store.record("demand_mw", pd.Series([1.0, 2.0, 3.0], index=hours(3)))
    first = store.maintain(now="2026-03-01T01:00:00Z")
    assert first["backup"]["bytes"] > 0
    assert store.maintain(now="2026-03-01T01:10:00Z")["backup"] is None  # not due
    store.maintain(now="2026-03-01T01:30:00Z")
    third = store.maintain(now="2026-03-01T02:00:00Z")
    assert third["backups_deleted"] == 1
    assert [b["sequence"] for b in store.backups()] == [2, 3]
    assert [b["taken_at"].isoformat() for b in store.backups()] == [
        "2026-03-01T01:30:00+00:00",
        "2026-03-01T02:00:00+00:00",
    ]
    # Written after the last backup: lost with the database.
    store.record("demand_mw", pd.Series([4.0], index=hours(1, T0 + pd.Timedelta(hours=3))))
    del store
    db = tmp_path / "history.sqlite"
    db.write_bytes(b"the disk ate it " * 64)
    for side in ("history.sqlite-wal", "history.sqlite-shm"):
        if (tmp_path / side).exists():
            os.remove(tmp_path / side)
    store = spe.HistoryStore(tmp_path)
    report = store.open_report
    assert not report["clean"]
    assert Path(report["quarantined"]).name.startswith("history.sqlite.corrupt-")
    assert Path(report["quarantined"]).read_bytes().startswith(b"the disk ate it")
    assert report["restored_from"]["taken_at"].isoformat() == "2026-03-01T02:00:00+00:00"
    assert "restored the backup" in report["summary"]
    assert report["unusable_backups"] == [] and report["skipped_backups"] == []
    assert store.read("demand_mw", FAR_PAST, FAR_FUTURE)["value"].tolist() == [1.0, 2.0, 3.0]
    # A sound database is left alone by recover().
    assert store.recover()["clean"]


def test_a_newer_builds_backup_is_skipped_and_kept(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path)
    store.record("demand_mw", pd.Series([1.0], index=hours(1, T0)))
    store.backup(now="2026-03-01T01:00:00Z")
    store.record("demand_mw", pd.Series([2.0], index=hours(1, T0 + pd.Timedelta(hours=1))))
    newest = Path(store.backup(now="2026-03-01T02:00:00Z")["path"])
    del store
    with sqlite3.connect(newest) as conn:
        conn.execute("PRAGMA user_version = 99")
    (tmp_path / "history.sqlite").write_bytes(b"the disk ate it " * 64)
    store = spe.HistoryStore(tmp_path)
    report = store.open_report
    assert report["restored_from"]["taken_at"].isoformat() == "2026-03-01T01:00:00+00:00"
    [(path, why)] = report["skipped_backups"]
    assert Path(path) == newest and newest.exists() and "schema version 99" in why
    assert store.read("demand_mw", FAR_PAST, FAR_FUTURE)["value"].tolist() == [1.0]


def test_another_applications_database_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA application_id = 7")
        conn.execute("CREATE TABLE mine (x)")
    before = db.read_bytes()
    with pytest.raises(spe.StoreError, match="another application") as info:
        spe.HistoryStore(tmp_path)
    assert isinstance(info.value, OSError)
    assert not isinstance(info.value, spe.StoreCorruptError)
    assert db.read_bytes() == before


def test_cached_values_read_back_with_their_age_and_the_others_with_nan(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path)
    store.record(
        "demand_mw", pd.Series([1.0, 2.0], index=hours(2)), provenance="cached", cached_age_s=90.7
    )
    store.record("demand_mw", pd.Series([3.0], index=hours(3)[2:]), provenance="synthetic")
    df = store.read("demand_mw", FAR_PAST, FAR_FUTURE)
    assert df["provenance"].tolist() == ["cached", "cached", "synthetic"]
    assert df["cached_age_s"].tolist()[:2] == [90.0, 90.0]  # whole seconds
    assert np.isnan(df["cached_age_s"].iloc[2])
    assert df["cached_age_s"].dtype == np.float64


def test_a_cached_age_goes_with_cached_values_only(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path)
    values = pd.Series([1.0], index=hours(1))
    with pytest.raises(spe.ConfigError, match="needs cached_age_s"):
        store.record("demand_mw", values, provenance="cached")
    with pytest.raises(spe.ConfigError, match="cached_age_s is for"):
        store.record("demand_mw", values, provenance="live", cached_age_s=5)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(spe.ConfigError, match="cached_age_s"):
            store.record("demand_mw", values, provenance="cached", cached_age_s=bad)
    with pytest.raises(TypeError, match="cached_age_s"):
        store.record("demand_mw", values, provenance="cached", cached_age_s=True)
    assert store.read("demand_mw", FAR_PAST, FAR_FUTURE).empty


def test_kpis_read_back_as_a_frame(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path)
    df = store.read_kpis("coverage_ratio", FAR_PAST, FAR_FUTURE)
    assert list(df.columns) == ["value", "status", "unit", "provenance", "cached_age_s"]
    assert len(df) == 0 and str(df.index.tz) == "UTC"
    assert [str(df[c].dtype) for c in df.columns] == [
        "float64", "object", "object", "object", "float64",
    ]


PROVENANCES = ["live", "cached", "synthetic", "fallback"]
RANK = {"live": 2, "cached": 1, "synthetic": 0, "fallback": 0}

batches = st.lists(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.integers(-48, 48),
            st.floats(-1e12, 1e12, allow_nan=False),
            st.sampled_from(PROVENANCES),
        ),
        max_size=12,
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=batches)
def test_what_is_read_is_what_the_rule_kept(tmp_path_factory: pytest.TempPathFactory, batches: list) -> None:
    store = spe.HistoryStore(tmp_path_factory.mktemp("store"))
    model: dict[tuple[str, pd.Timestamp], tuple[float, str, float | None]] = {}
    for i, batch in enumerate(batches):
        for series, hour, value, provenance in batch:
            t = T0 + pd.Timedelta(hours=hour)
            age = float(60 * i + hour + 48) if provenance == "cached" else None
            store.record(
                series, [value], times=pd.DatetimeIndex([t]), provenance=provenance, cached_age_s=age
            )
            old = model.get((series, t))
            if old is None or RANK[old[1]] <= RANK[provenance]:
                model[(series, t)] = (value, provenance, age)
    read = {}
    for series in ("a", "b"):
        df = store.read(series, FAR_PAST, FAR_FUTURE)
        for t, row in df.iterrows():
            age = None if np.isnan(row["cached_age_s"]) else row["cached_age_s"]
            read[(series, t)] = (row["value"], row["provenance"], age)
    assert read == model


def test_times_carry_their_own_offsets_and_far_dates_work(tmp_path: Path) -> None:
    from datetime import datetime, timezone

    store = spe.HistoryStore(tmp_path)
    # The hour Paris repeats when its clocks go back: two instants, told
    # apart by their offsets.
    n = store.record(
        "demand_mw",
        [1.0, 2.0],
        times=["2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00"],
    )
    assert n == 2
    df = store.read("demand_mw", FAR_PAST, FAR_FUTURE)
    assert [t.isoformat() for t in df.index] == [
        "2026-10-25T00:30:00+00:00",
        "2026-10-25T01:30:00+00:00",
    ]
    # One naive time among aware ones is refused, not guessed.
    with pytest.raises(spe.ConfigError, match="no time zone"):
        store.record("demand_mw", [1.0, 2.0], times=["2026-10-25T05:00:00Z", "2026-10-25T06:00:00"])
    # Far from 1970, and to the second.
    far = datetime(2200, 1, 1, 12, 0, 30, 900_000, tzinfo=timezone.utc)
    assert store.record("far", [3.0], times=[far]) == 1
    read = store.read("far", "2150-01-01T00:00:00Z", "2250-01-01T00:00:00Z")
    assert read.index[0].isoformat() == "2200-01-01T12:00:30+00:00"


def test_a_pickled_store_reopens_its_directory_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = spe.HistoryStore("rel")
    store.record("demand_mw", pd.Series([5.0], index=hours(1)))
    data = pickle.dumps(store)
    assert store.path.is_absolute()
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    copy = pickle.loads(data)
    assert copy.path == tmp_path / "rel"
    assert copy.read("demand_mw", FAR_PAST, FAR_FUTURE)["value"].tolist() == [5.0]


def _day_mean(history: np.ndarray, horizon: int) -> np.ndarray:
    return np.full(horizon, history[-24:].mean())


def test_predictions_round_trip_and_read_day_ahead(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path)
    rf = spe.ResilientForecaster(_day_mean, fallback="seasonal_naive")
    y = 100.0 + 10.0 * np.sin(np.arange(24 * 14) * 2 * np.pi / 24)
    p = rf.predict(y, 48, season_length=24, levels=[80, 95], step_s=3600)
    assert p.tier == "primary"
    assert store.record_predictions(p) == 48
    made = pd.Timestamp(p.made_at)
    times = pd.DatetimeIndex(p.times).tz_localize("UTC")  # numpy times are UTC, without a zone
    # The latest prediction of every step (no lead): all 48, as predicted.
    latest = store.read_predictions(FAR_PAST, FAR_FUTURE, lead_hours=0)
    assert list(latest.columns) == [
        "made_at", "model", "tier", "inputs", "inputs_age_s", "mean",
        "lower_80", "upper_80", "lower_95", "upper_95",
    ]
    assert latest.index.name == "time" and str(latest.index.tz) == "UTC"
    assert list(latest.index) == list(times.floor("s"))
    assert np.allclose(latest["mean"], p.mean)
    assert np.allclose(latest["lower_95"], p.lower(95)) and np.allclose(latest["upper_80"], p.upper(80))
    assert set(latest["tier"]) == {"primary"} and set(latest["inputs"]) == {"live"}
    assert latest["inputs_age_s"].isna().all()  # live inputs have no cached age
    assert (latest["made_at"] == made.floor("s")).all()
    # Day-ahead (the default): only the steps at least 24 h after it was made.
    ahead = store.read_predictions(FAR_PAST, FAR_FUTURE)
    assert len(ahead) == sum(t - made >= pd.Timedelta(hours=24) for t in times.floor("s"))
    assert 0 < len(ahead) < 48
    assert (ahead.index - made.floor("s") >= pd.Timedelta(hours=24)).all()
    # A range: [start, end).
    part = store.read_predictions(times[0].isoformat(), times[3].isoformat(), lead_hours=0)
    assert len(part) == 3
    assert store.stats()["predictions"] == 48


def test_read_predictions_refuses_bad_leads_and_ranges(tmp_path: Path) -> None:
    store = spe.HistoryStore(tmp_path)
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(spe.ConfigError, match="lead_hours"):
            store.read_predictions(FAR_PAST, FAR_FUTURE, lead_hours=bad)
    for wrong in (True, np.True_, "24", None, __import__("decimal").Decimal(24)):
        with pytest.raises(TypeError, match="lead_hours must be a number of hours"):
            store.read_predictions(FAR_PAST, FAR_FUTURE, lead_hours=wrong)  # type: ignore[arg-type]
    with pytest.raises(spe.ConfigError, match="must be before"):
        store.read_predictions(FAR_FUTURE, FAR_PAST)
    with pytest.raises(TypeError):
        store.record_predictions("not a prediction")  # type: ignore[arg-type]


def test_read_predictions_on_nothing_has_the_columns_and_their_types(tmp_path: Path) -> None:
    df = spe.HistoryStore(tmp_path).read_predictions(FAR_PAST, FAR_FUTURE)
    assert list(df.columns) == ["made_at", "model", "tier", "inputs", "inputs_age_s", "mean"]
    assert [str(df[c].dtype) for c in ("model", "tier", "inputs", "inputs_age_s", "mean")] == [
        "object", "object", "object", "float64", "float64",
    ]
    assert str(df["made_at"].dtype).startswith("datetime64") and str(df.index.tz) == "UTC"


@pytest.mark.skipif(os.name != "posix", reason="flock")
def test_a_backup_in_progress_elsewhere_is_not_waited_for(tmp_path: Path) -> None:
    """Another holder of the backup lock (another process's store): an
    explicit backup says so, the upkeep skips its turn, neither waits."""
    import fcntl

    store = spe.HistoryStore(tmp_path)
    store.record("demand_mw", [1.0], times=hours(1))
    assert store.backup(now="2026-03-01T01:00:00Z") is not None
    with open(tmp_path / "backups" / "backups.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(spe.StoreError, match="another store is making or rotating"):
            store.backup(now="2026-03-01T02:00:00Z")
        done = store.maintain(now="2026-03-01T03:00:00Z")
        assert done["backup"] is None and done["backups_deleted"] == 0
        fcntl.flock(held, fcntl.LOCK_UN)
    assert store.maintain(now="2026-03-01T04:00:00Z")["backup"]["sequence"] == 2
