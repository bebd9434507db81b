"""The history store: the compiled core plus pandas in and out."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from spe import _spe
from spe._frames import import_pandas
from spe._spe import ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HistoryStore"]


class HistoryStore(_spe.HistoryStore):
    """Long-term history in an embedded SQLite database, with backups.

    The store the example server keeps in ``<data dir>/history/``: hourly
    observations of any series (weather, ``demand_mw``, supply columns, your
    own), every prediction made, and KPIs hour by hour. Opening
    ``HistoryStore(path)`` creates the directory and the database
    (``history.sqlite``) if needed.

    - **Which value wins.** A value replaces the stored one of its series and
      time unless it is less real: ``"live"`` beats ``"cached"``, which beats
      ``"synthetic"`` and ``"fallback"``. An hour measured live is never
      overwritten by an estimate.
    - **Durability.** Write-ahead log with full sync: a ``record`` that
      returned is on disk. :meth:`maintain` (call it every few minutes)
      makes a backup in ``backups/`` every ``backup_every_s`` seconds (SQLite's
      online backup, fsynced), keeps ``backups_kept`` and prunes predictions
      older than ``predictions_kept_days``.
    - **Damage.** A damaged or missing database is quarantined
      (``history.sqlite.corrupt-<time>``) and the newest sound backup restored
      when the store opens; :attr:`open_report` says what happened. Damage
      found later raises :class:`spe.StoreCorruptError`; :meth:`recover`
      repairs it without reopening. Another application's database, or a
      newer SP-E's, raises :class:`spe.StoreError` and is left untouched.

    Times are UTC, to the second. Every method releases the GIL; threads
    may share one store. A pickled store reopens its path.

    >>> import spe, tempfile, numpy as np, pandas as pd
    >>> store = spe.HistoryStore(tempfile.mkdtemp())
    >>> store.open_report["created"]
    True
    >>> hours = pd.date_range("2026-03-01", periods=4, freq="h", tz="UTC")
    >>> store.record("demand_mw", pd.Series([910.0, 925.0, np.nan, 940.0], index=hours))
    3
    >>> store.record("demand_mw", [1.0, 2.0], times=hours[:2], provenance="synthetic")
    0
    >>> df = store.read("demand_mw", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z")
    >>> df["value"].tolist(), df["provenance"].unique().tolist()
    ([910.0, 925.0, 940.0], ['live'])
    >>> str(df.index.tz)
    'UTC'
    >>> store.backup()["bytes"] > 0
    True
    """

    __slots__ = ()

    def record(
        self,
        series: str,
        values: Any,
        times: Any = None,
        *,
        provenance: str = "live",
        cached_age_s: float | None = None,
    ) -> int:
        """Record ``values`` of ``series``; returns how many rows were written
        (a value less real than the stored one is not).

        ``values`` is a pandas Series on a timezone-aware ``DatetimeIndex``,
        or an array-like with ``times`` (timezone-aware datetimes, RFC 3339
        strings with an offset, or a timezone-aware ``DatetimeIndex``). NaN
        marks a missing value: it is not recorded. An infinite value raises
        :class:`spe.ConfigError` and nothing is written. ``provenance`` is
        ``"live"``, ``"synthetic"``, ``"cached"`` or ``"fallback"``;
        ``"cached"`` values need ``cached_age_s``, how old they were when
        they were handed out, in seconds (it reads back in
        :meth:`read`'s ``cached_age_s`` column).
        """
        pd = import_pandas("HistoryStore.record")
        if times is None:
            index = getattr(values, "index", None)
            if not isinstance(index, pd.DatetimeIndex):
                raise TypeError(
                    "values must be a pandas Series on a DatetimeIndex, or pass times="
                )
            times = index
        values = np.asarray(values)
        if values.dtype.kind not in "fiub":
            raise TypeError(f"values must be numbers, not {values.dtype} values")
        values = values.astype(np.float64)
        seconds = _utc_seconds(pd, times, "times")
        if values.ndim != 1:
            raise ConfigError(f"values must be one-dimensional, not of shape {values.shape}")
        if len(values) != len(seconds):
            raise ConfigError(
                f"{len(seconds)} times for {len(values)} values: give one time per value"
            )
        keep = ~np.isnan(values)
        return int(
            self._record(
                series, seconds[keep].tolist(), values[keep].tolist(), provenance, cached_age_s
            )
        )

    def read(self, series: str, start: Any, end: Any) -> pd.DataFrame:
        """The observations of ``series`` in ``[start, end)``, oldest first: a
        DataFrame on a UTC ``DatetimeIndex`` named ``time``, with columns
        ``value``, ``provenance`` and ``cached_age_s`` (for a ``"cached"``
        value, how old it was when handed out, in seconds; NaN otherwise).
        ``start`` and ``end``: RFC 3339 strings with an offset, or
        timezone-aware datetimes."""
        pd = import_pandas("HistoryStore.read")
        seconds, values, provenance, age = self._read(series, start, end)
        return pd.DataFrame(
            {
                "value": np.array(values),
                "provenance": np.array(provenance, dtype=object),
                "cached_age_s": np.array(age, dtype=np.float64),
            },
            index=_index(pd, seconds),
        )

    def read_kpis(self, name: str, start: Any, end: Any) -> pd.DataFrame:
        """The KPI ``name`` hour by hour in ``[start, end)``: a DataFrame on a
        UTC ``DatetimeIndex`` with columns ``value`` (NaN when it was
        unknown), ``status``, ``unit``, ``provenance`` (of the data the KPIs
        were computed from) and ``cached_age_s`` (its age if it was cached,
        in seconds; NaN otherwise)."""
        pd = import_pandas("HistoryStore.read_kpis")
        seconds, values, status, unit, provenance, age = self._read_kpis(name, start, end)
        return pd.DataFrame(
            {
                "value": np.array(values),
                "status": np.array(status, dtype=object),
                "unit": np.array(unit, dtype=object),
                "provenance": np.array(provenance, dtype=object),
                "cached_age_s": np.array(age, dtype=np.float64),
            },
            index=_index(pd, seconds),
        )


    def read_predictions(
        self, start: Any, end: Any, *, lead_hours: float = 24.0
    ) -> pd.DataFrame:
        """What was predicted for each time in ``[start, end)``: for each
        target time that has one, the latest prediction made at least
        ``lead_hours`` before it — the day-ahead forecast by default, the
        latest made before the hour began with ``lead_hours=0`` (a
        prediction made during an hour is not a forecast of it).

        A DataFrame on a UTC ``DatetimeIndex`` named ``time`` (the target),
        with columns ``made_at`` (UTC), ``model``, ``tier``, ``inputs`` (the
        provenance of the history they were made from), ``inputs_age_s``
        (its age in seconds if it was cached, NaN otherwise), ``mean``, then ``lower_<level>`` and ``upper_<level>`` for each
        interval level recorded (NaN for steps recorded without it), levels
        in increasing order. Join it with :meth:`read` on the index to set
        forecasts against what was measured.

        >>> import spe, tempfile
        >>> store = spe.HistoryStore(tempfile.mkdtemp())
        >>> store.read_predictions("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z").shape
        (0, 6)
        """
        pd = import_pandas("HistoryStore.read_predictions")
        if isinstance(lead_hours, (bool, np.bool_)) or not isinstance(lead_hours, numbers.Real):
            raise TypeError(
                f"lead_hours must be a number of hours, not {type(lead_hours).__name__}"
            )
        targets, made_at, model, tier, inputs, inputs_age, mean, bounds = self._read_predictions(
            start, end, lead_hours
        )
        levels = sorted({level for step in bounds for level, _, _ in step})
        columns: dict[str, Any] = {
            "made_at": pd.to_datetime(np.asarray(made_at), unit="s", utc=True),
            "model": np.array(model, dtype=object),
            "tier": np.array(tier, dtype=object),
            "inputs": np.array(inputs, dtype=object),
            "inputs_age_s": np.array(inputs_age, dtype=np.float64),
            "mean": np.array(mean, dtype=np.float64),
        }
        for level in levels:
            lower = np.full(len(bounds), np.nan)
            upper = np.full(len(bounds), np.nan)
            for i, step in enumerate(bounds):
                for lv, lo, up in step:
                    if lv == level:
                        lower[i], upper[i] = lo, up
            name = f"{level:.15g}"  # 95 -> "95", 97.5 -> "97.5", no two alike
            columns[f"lower_{name}"] = lower
            columns[f"upper_{name}"] = upper
        return pd.DataFrame(columns, index=_index(pd, targets))


def _utc_seconds(pd: Any, times: Any, what: str) -> Any:
    """Timezone-aware times as int64 UTC seconds (rounded down). Naive times
    are refused, not guessed; each may carry its own offset (the hour a
    clock change repeats is told apart by its offset)."""
    if isinstance(times, pd.DatetimeIndex):
        if times.tz is None and len(times) > 0:
            raise ConfigError(_naive(what))
        index = times.tz_convert("UTC") if len(times) > 0 else times
    else:
        items = [times] if isinstance(times, (str, bytes)) else list(times)
        for item in items:
            try:
                aware = pd.Timestamp(item).tzinfo is not None
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{what}: {item!r} is not a time ({e})") from e
            if not aware:
                raise ConfigError(_naive(what))
        try:
            index = pd.DatetimeIndex(pd.to_datetime(items, utc=True))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{what}: not times ({e})") from e
    if len(index) == 0:
        return np.zeros(0, dtype=np.int64)
    per_second = {"s": 1, "ms": 10**3, "us": 10**6, "ns": 10**9}[str(index.unit)]
    return np.asarray(index.asi8, dtype=np.int64) // per_second


def _naive(what: str) -> str:
    return (
        f"{what} have no time zone: localize them (tz_localize('UTC'), or the "
        "site's zone) so hours are not guessed"
    )


def _index(pd: Any, seconds: Any) -> Any:
    return pd.DatetimeIndex(
        pd.to_datetime(np.asarray(seconds), unit="s", utc=True), name="time"
    )
