"""KPIs from hourly demand and supply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spe import _spe
from spe._frames import to_arrays

__all__ = ["compute_kpis"]


def compute_kpis(
    energy: Any,
    now: str | datetime | None = None,
    *,
    produced_at: str | datetime | None = None,
    provenance: str = "live",
    available_capacity_mw: float | None = None,
    last_live_at: str | datetime | None = None,
) -> dict[str, Any]:
    """The dashboard's KPIs at ``now`` (default: the current time).

    ``energy`` is hourly data in MW: a pandas DataFrame on a timezone-aware
    ``DatetimeIndex`` or a dict of arrays with a UTC ``time`` array, with
    ``demand_mw`` and the supply columns ``solar_mw``, ``wind_mw``,
    ``other_mw`` and ``imports_mw`` (absent columns and NaN are missing
    values), e.g. what :meth:`SyntheticGenerator.frame` or
    :meth:`WeatherSnapshot.frame` return. ``produced_at`` (default: the end
    of the last hour, or ``now`` if earlier) dates the data for the
    freshness KPI; ``provenance`` is ``"live"``, ``"synthetic"``,
    ``"cached"`` or ``"fallback"``. ``available_capacity_mw`` lets the peak
    demand KPI warn when it comes close to capacity. ``last_live_at``, for
    estimated data (``"synthetic"`` or ``"fallback"``), is when live data
    last came: ``data_freshness_s`` is then the age of that data, as the
    dashboard shows it (``"never"``: unknown, and critical); by default it
    is the age of the data given.

    Returns a dict: ``status`` (the worst of all: ``"ok"``, ``"warning"``
    or ``"critical"``), ``computed_at``, ``provenance``, and one dict per KPI
    (``value``, ``unit``, ``status``, ``at``: the hour it describes) named
    ``demand_mw``, ``supply_mw``, ``solar_mw``, ``wind_mw``, ``other_mw``,
    ``imports_mw``, ``balance_mw``, ``coverage_ratio``, ``renewable_share``,
    ``peak_demand_mw``, ``self_sufficiency`` and ``data_freshness_s``. The
    "current" KPIs describe the hour containing ``now`` (or the last
    complete hour before it); the peak is over the last 24 hours.

    >>> import spe
    >>> gen = spe.SyntheticGenerator(seed=7)
    >>> k = spe.compute_kpis(gen.frame("2026-01-15T00:00:00Z", 48), now="2026-01-16T12:30:00Z",
    ...                      provenance="synthetic")
    >>> k["demand_mw"]["unit"], k["provenance"], k["status"] in ("ok", "warning", "critical")
    ('MW', 'synthetic', True)
    >>> k["demand_mw"]["at"].isoformat()
    '2026-01-16T12:00:00+00:00'
    >>> spe.compute_kpis(gen.frame("2026-01-15T00:00:00Z", 48), now="2026-01-16T12:30:00Z",
    ...                  provenance="synthetic", last_live_at="2026-01-16T10:30:00Z")["data_freshness_s"]["value"]
    7200.0
    """
    return _spe.compute_kpis(
        to_arrays(energy, "compute_kpis()"),
        now,
        produced_at,
        provenance,
        available_capacity_mw,
        last_live_at,
    )
