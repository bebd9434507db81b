"""spe.compute_kpis."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

import spe


def energy(hours: int = 48) -> dict[str, np.ndarray]:
    time = np.datetime64("2026-06-01T00:00:00", "ns") + np.arange(hours) * np.timedelta64(1, "h")
    return {
        "time": time,
        "demand_mw": np.full(hours, 800.0),
        "solar_mw": np.full(hours, 100.0),
        "wind_mw": np.full(hours, 100.0),
        "other_mw": np.full(hours, 500.0),
        "imports_mw": np.full(hours, 120.0),
    }


def test_current_hour_kpis() -> None:
    k = spe.compute_kpis(energy(), now="2026-06-01T10:30:00Z")
    assert k["demand_mw"] == {"value": 800.0, "unit": "MW", "status": "ok",
                              "at": datetime(2026, 6, 1, 10, tzinfo=timezone.utc)}
    assert k["supply_mw"]["value"] == 820.0
    assert k["balance_mw"]["value"] == 20.0
    assert k["coverage_ratio"]["value"] == pytest.approx(820 / 800)
    assert k["renewable_share"]["value"] == pytest.approx(200 / 820)
    assert k["computed_at"] == datetime(2026, 6, 1, 10, 30, tzinfo=timezone.utc)
    assert k["provenance"] == "live"
    names = {"demand_mw", "supply_mw", "solar_mw", "wind_mw", "other_mw", "imports_mw",
             "balance_mw", "coverage_ratio", "renewable_share", "peak_demand_mw",
             "self_sufficiency", "data_freshness_s"}
    assert names <= set(k)


def test_statuses_follow_the_data() -> None:
    data = energy()
    data["imports_mw"] = np.zeros(48)  # supply 700 for demand 800
    k = spe.compute_kpis(data, now="2026-06-01T10:30:00Z", produced_at="2026-06-01T10:00:00Z")
    assert k["coverage_ratio"]["status"] == "critical"
    assert k["status"] == "critical"
    assert k["data_freshness_s"]["value"] == 1800.0
    capped = spe.compute_kpis(energy(), now="2026-06-01T10:30:00Z", available_capacity_mw=780.0)
    assert capped["peak_demand_mw"]["status"] == "critical"  # 800 MW of 780
    near = spe.compute_kpis(energy(), now="2026-06-01T10:30:00Z", available_capacity_mw=850.0)
    assert near["peak_demand_mw"]["status"] == "warning"  # 94 %


def test_estimated_data_is_as_fresh_as_the_last_live_data() -> None:
    now = "2026-06-01T10:30:00Z"
    produced = "2026-06-01T10:29:00Z"  # an estimate made a minute ago

    def freshness(provenance: str, last_live_at: object) -> dict[str, object]:
        k = spe.compute_kpis(energy(), now=now, produced_at=produced, provenance=provenance,
                             last_live_at=last_live_at)
        return k["data_freshness_s"]

    # By default: the age of the data given, fresh.
    assert freshness("synthetic", None)["value"] == 60.0
    # Live data last came two hours ago: critical (over the one-hour RPO).
    two_hours = freshness("synthetic", datetime(2026, 6, 1, 8, 30, tzinfo=timezone.utc))
    assert two_hours == {"value": 7200.0, "unit": "s", "status": "critical",
                         "at": datetime(2026, 6, 1, 8, 30, tzinfo=timezone.utc)}
    assert freshness("fallback", "2026-06-01T10:20:00Z")["value"] == 600.0
    # Never: unknown, and critical.
    assert freshness("synthetic", "never") == {"value": None, "unit": "s", "status": "critical",
                                               "at": None}
    # Live data is as fresh as itself, whatever came before.
    assert freshness("live", "never")["value"] == 60.0
    with pytest.raises(spe.ConfigError):
        freshness("synthetic", "yesterday")


def test_missing_values_and_dataframes() -> None:
    pd = pytest.importorskip("pandas")
    gen = spe.SyntheticGenerator(seed=2)
    df = gen.frame("2026-06-01T00:00:00Z", hours=24)
    df.loc[df.index[12], "wind_mw"] = np.nan
    k = spe.compute_kpis(df, now="2026-06-01T12:20:00Z", provenance="synthetic")
    assert k["demand_mw"]["at"] == datetime(2026, 6, 1, 11, tzinfo=timezone.utc)  # last complete hour
    assert k["provenance"] == "synthetic"
    naive = df.tz_localize(None)
    with pytest.raises(spe.ConfigError, match="no time zone"):
        spe.compute_kpis(naive)
    local = df.tz_convert("Europe/Paris")
    assert spe.compute_kpis(local, now="2026-06-01T12:20:00Z")["demand_mw"] == spe.compute_kpis(
        df, now="2026-06-01T12:20:00Z")["demand_mw"]
    # The times as a column: aware ones in any zone, never naive ones.
    with_column = local.reset_index()
    assert spe.compute_kpis(with_column, now="2026-06-01T12:20:00Z")["demand_mw"] == (
        spe.compute_kpis(df, now="2026-06-01T12:20:00Z")["demand_mw"])
    with pytest.raises(spe.ConfigError, match="'time' column has no time zone"):
        spe.compute_kpis(naive.reset_index())


def test_bad_input() -> None:
    data = energy()
    del data["demand_mw"]
    with pytest.raises(spe.ConfigError, match="no \"demand_mw\" column"):
        spe.compute_kpis(data)
    data = energy()
    data["time"] = data["time"][::-1]
    with pytest.raises(spe.ConfigError, match="hourly and complete"):
        spe.compute_kpis(data)
    data = energy()
    data["solar_mw"][3] = -5.0
    with pytest.raises(spe.ConfigError, match="solar_mw"):
        spe.compute_kpis(data)
    with pytest.raises(spe.ConfigError, match="provenance"):
        spe.compute_kpis(energy(), provenance="guess")
    for capacity in (float("nan"), -100.0, 0.0, float("inf")):
        with pytest.raises(spe.ConfigError, match="available_capacity_mw=.* is not a capacity"):
            spe.compute_kpis(energy(), available_capacity_mw=capacity)
    with pytest.raises(TypeError, match="DataFrame on a DatetimeIndex or a dict"):
        spe.compute_kpis([1, 2, 3])
