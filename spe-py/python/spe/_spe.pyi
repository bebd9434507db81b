"""Compiled core of SP-E; import ``spe`` instead.

Type stubs of the extension module ``spe._spe``; ``mypy.stubtest spe`` checks
them against the module (see tests/test_package.py).
"""

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any, ClassVar, Literal, SupportsFloat, SupportsIndex, final

import numpy as np
import numpy.typing as npt
import pandas as pd
from typing_extensions import Self, disjoint_base

from spe._model import Model

__all__ = [
    "__version__",
    "SpeError",
    "ConfigError",
    "ForecastError",
    "ForecastInputError",
    "CircuitOpenError",
    "UpstreamError",
    "CallTimeoutError",
    "CacheCorruptError",
    "CacheError",
    "JournalError",
    "StoreError",
    "StoreCorruptError",
    "SyntheticGenerator",
    "Forecast",
    "forecast",
    "forecast_many",
    "_fit",
    "_model_spec",
    "_FittedModel",
    "backtest",
    "calendar_exog",
    "compute_kpis",
    "CircuitBreaker",
    "_Call",
    "ManualClock",
    "Journal",
    "HistoryStore",
    "Retex",
    "WeatherService",
    "WeatherSnapshot",
    "ResilientForecaster",
    "Prediction",
]

__version__: str

_Instant = str | datetime
_FloatArray = npt.NDArray[np.float64]

class SpeError(Exception):
    """Base class of every exception SP-E raises."""

class ConfigError(SpeError, ValueError):
    """An invalid argument or setting; also a ``ValueError``."""

class ForecastError(SpeError):
    """A model could not be fitted or could not forecast."""

class ForecastInputError(ForecastError, ConfigError):
    """The series or a forecasting argument cannot be used as given."""

class CircuitOpenError(SpeError):
    """A circuit breaker refused the call without running it."""

    retry_after_s: float | None
    state: str

class UpstreamError(SpeError):
    """An upstream (the weather API) failed."""

    status: int | None
    fault: str | None

class CallTimeoutError(UpstreamError, TimeoutError):
    """A call ran past its timeout and was abandoned."""

    timeout_s: float

class CacheError(SpeError, OSError):
    """A cache cannot be opened, read or written."""

class CacheCorruptError(CacheError):
    """A cache file is corrupt."""

class JournalError(SpeError, OSError):
    """The incident journal cannot be used."""

class StoreError(SpeError, OSError):
    """The history store cannot be opened, read or written."""

class StoreCorruptError(StoreError):
    """The history database was found damaged while in use."""

@disjoint_base
class SyntheticGenerator:
    """Deterministic synthetic weather, demand and supply for one site."""

    def __new__(
        cls,
        seed: SupportsIndex = 6168614,
        latitude: float = 48.85,
        longitude: float = 2.35,
        timezone: str = "Europe/Paris",
        country: str = "FR",
        params: Mapping[str, Any] | None = None,
    ) -> Self: ...
    @property
    def seed(self) -> int:
        """The seed of every random stream."""
    @property
    def latitude(self) -> float:
        """Latitude in degrees north."""
    @property
    def longitude(self) -> float:
        """Longitude in degrees east."""
    @property
    def timezone(self) -> str:
        """IANA time zone name (local hours drive the demand profile)."""
    @property
    def country(self) -> str:
        """Holiday calendar: ``"FR"`` or ``"none"``."""
    @property
    def params(self) -> dict[str, Any] | None:
        """The generator's parameters, or ``None`` for the defaults."""
    def arrays(self, start: _Instant, hours: SupportsIndex) -> dict[str, npt.NDArray[Any]]:
        """Hourly synthetic weather, demand and supply as numpy arrays.

        ``time`` is ``datetime64[ns]`` (UTC, hourly from ``start``); the other
        arrays are ``float64``, NaN where a value is missing.
        """
    def _calibrate(self, history: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Fit the parameters to a recorded history: ``(params, report)``."""
    def __getnewargs_ex__(self) -> tuple[tuple[()], dict[str, Any]]:
        """Pickle and copy support: rebuilt from its arguments."""

@final
class Forecast:
    """A forecast: the mean path, prediction intervals and the model that made it."""

    def __new__(
        cls,
        model: str,
        mean: npt.ArrayLike,
        intervals: Mapping[float, tuple[npt.ArrayLike, npt.ArrayLike]] | None = None,
        index: Any = None,
    ) -> Self: ...
    @property
    def model(self) -> str:
        """The model that made the forecast."""
    @property
    def mean(self) -> _FloatArray:
        """The mean path (read-only)."""
    @property
    def horizon(self) -> int:
        """Number of steps."""
    @property
    def levels(self) -> tuple[float, ...]:
        """The interval levels (percent)."""
    @property
    def index(self) -> Any:
        """The time index of the steps, or ``None``."""
    @property
    def scores(self) -> list[dict[str, Any]] | None:
        """For ``model="auto"``: each candidate's backtest score."""
    def lower(self, level: float) -> _FloatArray:
        """Lower bounds of the ``level`` % interval."""
    def upper(self, level: float) -> _FloatArray:
        """Upper bounds of the ``level`` % interval."""
    def with_index(self, index: Any) -> Forecast:
        """The same forecast on another time index."""
    def to_dict(self) -> dict[str, _FloatArray]:
        """``mean``, ``lower_<level>``, ``upper_<level>``."""
    def to_pandas(self) -> pd.DataFrame:
        """The forecast as a pandas DataFrame."""
    def __len__(self) -> int: ...
    def __eq__(self, value: object, /) -> bool:
        """The same model, mean, intervals and index."""
    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Pickle and copy support."""

def _model_spec(
    model: str,
    season_length: SupportsIndex | Sequence[SupportsIndex],
    box_cox: SupportsFloat | None = None,
) -> tuple[str, list[int], float | None]:
    """``model``, ``season_length`` and ``box_cox`` checked (``spe.Model`` keeps them)."""

def _fit(
    y: npt.ArrayLike,
    season_length: SupportsIndex | Sequence[SupportsIndex],
    model: str = "auto",
    exog: Mapping[str, npt.ArrayLike] | None = None,
    box_cox: SupportsFloat | None = None,
) -> _FittedModel:
    """The compiled core of ``spe.Model.fit``; use that."""

@final
class _FittedModel:
    """A model fitted on a history (the compiled core of ``spe.FittedModel``)."""

    @property
    def model(self) -> str: ...
    @property
    def params(self) -> dict[str, float]: ...
    @property
    def components(self) -> dict[str, _FloatArray]: ...
    @property
    def residuals(self) -> _FloatArray: ...
    @property
    def scores(self) -> list[dict[str, Any]] | None: ...
    @property
    def n_obs(self) -> int: ...
    @property
    def box_cox(self) -> float | None: ...
    @property
    def season_length(self) -> tuple[int, ...]: ...
    @property
    def uses_exog(self) -> bool: ...
    def predict(
        self,
        horizon: SupportsIndex,
        levels: float | Sequence[float] | None = None,
        exog_future: Mapping[str, npt.ArrayLike] | None = None,
    ) -> Forecast: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

def forecast(
    y: npt.ArrayLike,
    horizon: SupportsIndex,
    season_length: SupportsIndex | Sequence[SupportsIndex],
    model: str = "auto",
    levels: float | Sequence[float] | None = None,
    exog: Mapping[str, npt.ArrayLike] | None = None,
    exog_future: Mapping[str, npt.ArrayLike] | None = None,
    box_cox: SupportsFloat | None = None,
) -> Forecast:
    """Forecast one series (use ``spe.forecast``)."""

def forecast_many(
    ys: Any,
    horizon: SupportsIndex,
    season_length: SupportsIndex | Sequence[SupportsIndex],
    model: str = "auto",
    levels: float | Sequence[float] | None = None,
    n_jobs: SupportsIndex | None = None,
    on_error: str = "raise",
    box_cox: SupportsFloat | None = None,
) -> list[Forecast | None]:
    """Forecast many series in parallel (use ``spe.forecast_many``)."""

def backtest(
    y: npt.ArrayLike,
    horizon: SupportsIndex,
    season_length: SupportsIndex | Sequence[SupportsIndex],
    model: str = "auto",
    folds: SupportsIndex | None = 3,
    step: SupportsIndex | None = None,
    levels: float | Sequence[float] | None = (80, 95),
    exog: Mapping[str, npt.ArrayLike] | None = None,
    refit: bool = True,
    box_cox: SupportsFloat | None = None,
) -> dict[str, Any]:
    """A rolling-origin backtest of ``model`` on ``y``; returns its scores."""

def calendar_exog(
    start: _Instant,
    temperature: npt.ArrayLike,
    timezone: str = "Europe/Paris",
    country: str = "FR",
) -> dict[str, _FloatArray]:
    """The regressors of ``model="regression"``."""

def compute_kpis(
    energy: Mapping[str, Any],
    now: _Instant | None = None,
    produced_at: _Instant | None = None,
    provenance: str = "live",
    available_capacity_mw: float | None = None,
    last_live_at: _Instant | None = None,
) -> dict[str, Any]:
    """The KPIs of hourly energy data (use ``spe.compute_kpis``)."""

@final
class ManualClock:
    """A clock that moves only when told to."""

    def __new__(cls) -> Self: ...
    @property
    def now_s(self) -> float:
        """Seconds since the clock was made."""
    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""

@final
class _Call:
    """A call admitted by a circuit breaker."""

    def success(self) -> bool:
        """The call returned normally; ``True`` if it was late."""
    def failure(self, exc: BaseException) -> bool:
        """The call raised ``exc``; ``True`` if it counted as a failure."""
    def timed_out(self) -> CallTimeoutError:
        """The call ran past the timeout; returns the error to raise."""
    def cancel(self) -> None:
        """The call was cancelled: nothing is recorded."""
    @property
    def elapsed_s(self) -> float:
        """Seconds since the call was admitted."""

@disjoint_base
class CircuitBreaker:
    """A circuit breaker (use ``spe.CircuitBreaker``)."""

    def __new__(
        cls,
        timeout_s: float | None = 5.0,
        failure_rate: float = 0.5,
        open_s: float = 30.0,
        *,
        minimum_calls: int = 2,
        window: int = 10,
        window_s: int | None = None,
        slow_call_s: float = 3.0,
        slow_call_rate: float = 0.8,
        backoff: float = 2.0,
        max_open_s: float = 600.0,
        jitter: float = 0.1,
        half_open_probes: int = 1,
        ignore: type[BaseException] | Sequence[type[BaseException]] | None = None,
        clock: ManualClock | None = None,
    ) -> Self: ...
    @property
    def state(self) -> str:
        """``closed``, ``open``, ``half_open``, ``forced_open`` or ``disabled``."""
    @property
    def retry_after_s(self) -> float | None:
        """Seconds until an open circuit lets a probe through."""
    @property
    def timeout_s(self) -> float | None:
        """The call timeout in seconds, or ``None``."""
    @property
    def clock(self) -> ManualClock | None:
        """The manual clock, or ``None``."""
    @property
    def ignore(self) -> tuple[type[BaseException], ...]:
        """Exception types that count neither as success nor as failure."""
    def config(self) -> dict[str, Any]:
        """The settings, as keyword arguments of the constructor."""
    def metrics(self) -> dict[str, Any]:
        """A snapshot of the counters."""
    def force_open(self) -> None:
        """Refuse every call until ``reset``."""
    def disable(self) -> None:
        """Let every call through and record nothing, until ``reset``."""
    def reset(self) -> None:
        """Back to closed."""
    def _admit(self) -> _Call:
        """Ask for permission to make one call."""
    def __getnewargs_ex__(self) -> tuple[tuple[()], dict[str, Any]]:
        """Pickle and copy support."""

@disjoint_base
class HistoryStore:
    """The long-term history store (use ``spe.HistoryStore``)."""

    def __new__(
        cls,
        path: str | PathLike[str],
        *,
        backup_every_s: float = 1800.0,
        backups_kept: int | None = None,
        predictions_kept_days: float = 90.0,
    ) -> Self: ...
    @property
    def path(self) -> Path:
        """The store's directory."""
    @property
    def open_report(self) -> dict[str, Any]:
        """What opening found and did."""
    def _record(
        self,
        series: str,
        seconds: Sequence[int],
        values: Sequence[float],
        provenance: str,
        cached_age_s: float | None = None,
    ) -> int:
        """Record values at UTC seconds."""
    def _read(
        self, series: str, start: _Instant, end: _Instant
    ) -> tuple[npt.NDArray[np.int64], _FloatArray, list[str], _FloatArray]:
        """Observations as UTC seconds, values, provenances, cached ages."""
    def _read_kpis(
        self, name: str, start: _Instant, end: _Instant
    ) -> tuple[
        npt.NDArray[np.int64], _FloatArray, list[str], list[str], list[str], _FloatArray
    ]:
        """A KPI as UTC seconds, values, statuses, units, provenances, cached ages."""
    def record_predictions(self, prediction: Prediction) -> int:
        """Record every step of a prediction, keyed by the second it was made
        at (a later record of that second replaces it whole); returns the
        steps written."""
    def _read_predictions(
        self, start: _Instant, end: _Instant, lead_hours: float
    ) -> tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.int64],
        list[str],
        list[str],
        list[str],
        _FloatArray,
        _FloatArray,
        list[list[tuple[float, float, float]]],
    ]:
        """Recorded predictions as columns."""
    def series(self) -> list[str]:
        """The names of the series that have observations."""
    def stats(self) -> dict[str, Any]:
        """Counts and bounds."""
    def backups(self) -> list[dict[str, Any]]:
        """The backups on disk, oldest first."""
    def backup(self, *, now: _Instant | None = None) -> dict[str, Any] | None:
        """Make a backup now."""
    def maintain(self, *, now: _Instant | None = None) -> dict[str, Any]:
        """The periodic upkeep: backup when due, pruning."""
    def recover(self, *, now: _Instant | None = None) -> dict[str, Any]:
        """Quarantine a damaged database and restore the newest sound backup."""
    def __getnewargs_ex__(self) -> tuple[tuple[Path], dict[str, Any]]:
        """Pickle and copy support."""

@final
class Retex:
    """A post-incident review over a period."""

    @property
    def availability_percent(self) -> float:
        """Availability over the elapsed part of the period, percent."""
    @property
    def incident_count(self) -> int:
        """Incidents overlapping the period."""
    @property
    def downtime_s(self) -> float:
        """Seconds of downtime in the period."""
    @property
    def mttr_s(self) -> float | None:
        """Mean time to recovery, seconds."""
    def to_dict(self) -> dict[str, Any]:
        """Everything as a dict."""
    def to_markdown(self) -> str:
        """The review as a Markdown report."""
    def __eq__(self, value: object, /) -> bool:
        """Equal to another review with the same figures and incidents."""
    __hash__: ClassVar[None]  # type: ignore[assignment]
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        """Pickle and copy support: the review as it is, not recomputed."""
    @staticmethod
    def _restore(state: str) -> Retex:
        """A pickled review, rebuilt."""

@final
class Journal:
    """The incident journal."""

    def __new__(cls, path: str | PathLike[str]) -> Self: ...
    @property
    def path(self) -> Path:
        """The journal's file."""
    @property
    def open_report(self) -> dict[str, Any]:
        """What opening found."""
    def incidents(
        self, start: _Instant | None = None, end: _Instant | None = None
    ) -> list[dict[str, Any]]:
        """The incidents overlapping ``[start, end]``, newest first."""
    def open_incidents(self) -> list[dict[str, Any]]:
        """The incidents still open, newest first."""
    def incident(self, id: int) -> dict[str, Any] | None:
        """The incident with this id, or ``None``."""
    def open_incident(
        self, component: str, kind: str, details: str = "", at: _Instant | None = None
    ) -> int:
        """Record a new incident; returns its id."""
    def mode_changed(
        self, id: int, from_mode: str, to_mode: str, at: _Instant | None = None
    ) -> None:
        """Record a mode change of incident ``id``."""
    def note(self, id: int, details: str, at: _Instant | None = None) -> None:
        """Add a note to incident ``id``."""
    def close_incident(
        self, id: int, details: str = "", at: _Instant | None = None
    ) -> dict[str, Any]:
        """Record the end of incident ``id``."""
    def retex(
        self,
        start: _Instant | None = None,
        end: _Instant | None = None,
        now: _Instant | None = None,
    ) -> Retex:
        """The post-incident review of ``[start, end)``."""
    def __reduce__(self) -> tuple[Any, tuple[Path]]:
        """Pickle and copy support: reopened from its path, sharing the
        journal open in this process if there is one."""

@final
class WeatherSnapshot:
    """What the weather service serves at one instant."""

    @property
    def mode(self) -> Literal["nominal", "estimation"]:
        """``nominal`` or ``estimation``."""
    @property
    def provenance(self) -> str:
        """``live``, ``cached`` or ``synthetic``."""
    @property
    def age_s(self) -> float:
        """Age of the weather in seconds."""
    @property
    def breaker_state(self) -> str:
        """The breaker's state when the snapshot was made."""
    @property
    def made_at(self) -> datetime:
        """When the snapshot was made (UTC)."""
    @property
    def last_live_at(self) -> datetime | None:
        """When live data last arrived."""
    @property
    def degradation(self) -> str | None:
        """Why the service is in estimation mode."""
    @property
    def notice(self) -> str | None:
        """The operator's notice in estimation mode."""
    @property
    def incident_id(self) -> int | None:
        """The open incident's id in the journal."""
    @property
    def outcome(self) -> str | None:
        """What the refresh before this snapshot did."""
    def arrays(self) -> dict[str, npt.NDArray[Any]]:
        """The hourly values as numpy arrays."""
    def frame(self) -> pd.DataFrame:
        """The hourly values as a pandas DataFrame."""
    def kpis(self, now: _Instant | None = None) -> dict[str, Any]:
        """The dashboard's KPIs (an estimate's freshness: that of the last live data)."""
    def __len__(self) -> int: ...
    def __reduce__(self) -> tuple[Any, tuple[str, int, str | None]]:
        """Pickle and copy support, with the age it had when handed out."""
    @staticmethod
    def _restore(state: str, now_ns: int, outcome: str | None = None) -> WeatherSnapshot:
        """A pickled snapshot, rebuilt (its frames checked again)."""

@final
class WeatherService:
    """Weather for a site that never fails."""

    def __new__(
        cls,
        latitude: float = 48.85,
        longitude: float = 2.35,
        base_url: str | None = None,
        *,
        timezone: str = "Europe/Paris",
        country: str = "FR",
        timeout_s: float = 5.0,
        past_days: int = 2,
        forecast_days: int = 7,
        stale_after_s: float = 900.0,
        seed: SupportsIndex = 6168614,
        breaker: CircuitBreaker | None = None,
        generator: SyntheticGenerator | None = None,
        journal: Journal | None = None,
        clock: ManualClock | None = None,
    ) -> Self: ...
    def fetch(self) -> WeatherSnapshot:
        """Ask the weather API once, then return the snapshot."""
    def snapshot(self) -> WeatherSnapshot:
        """The current snapshot, without calling the API."""
    def fetch_live(self) -> WeatherSnapshot:
        """One call to the weather API, without failover."""
    @property
    def mode(self) -> Literal["nominal", "estimation"]:
        """``nominal`` or ``estimation``, now."""
    @property
    def breaker_state(self) -> str:
        """The breaker's state."""
    @property
    def endpoint(self) -> str:
        """The Open-Meteo endpoint called."""
    def breaker_metrics(self) -> dict[str, Any]:
        """The breaker's counters."""
    def __getnewargs_ex__(
        self,
    ) -> tuple[tuple[float, float, str | None], dict[str, Any]]:
        """Pickle and copy support."""

@final
class Prediction:
    """What ``ResilientForecaster.predict`` answers."""

    @property
    def tier(self) -> Literal["primary", "fallback", "cache"]:
        """The tier that answered."""
    @property
    def provenance(self) -> Literal["live", "fallback", "cached", "synthetic"]:
        """``live``, ``fallback`` or ``cached``; ``synthetic`` from an estimated history."""
    @property
    def inputs(self) -> Literal["live", "synthetic"]:
        """Where the history came from."""
    @property
    def model(self) -> str:
        """The model that made the forecast."""
    @property
    def forecast(self) -> Forecast:
        """The forecast."""
    @property
    def mean(self) -> _FloatArray:
        """The mean path."""
    def lower(self, level: float) -> _FloatArray:
        """Lower bounds of the ``level`` % interval."""
    def upper(self, level: float) -> _FloatArray:
        """Upper bounds of the ``level`` % interval."""
    @property
    def failures(self) -> list[dict[str, str]]:
        """Why the tiers above this one failed."""
    @property
    def notice(self) -> str | None:
        """A sentence for an operator."""
    @property
    def made_at(self) -> datetime:
        """When the predictions were made."""
    @property
    def age_s(self) -> float:
        """Seconds since the predictions were made."""
    @property
    def intervals_from(self) -> str | None:
        """The model whose intervals were borrowed."""
    @property
    def times(self) -> npt.NDArray[np.datetime64]:
        """The time of each step (UTC)."""
    def to_pandas(self) -> pd.DataFrame:
        """The forecast as a DataFrame on a UTC index."""
    def __len__(self) -> int: ...
    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        """Pickle and copy support."""
    @staticmethod
    def _restore(state: str, now_ns: int) -> Prediction:
        """A pickled prediction, rebuilt."""

@final
class ResilientForecaster:
    """Your model, with SP-E's fallback around it."""

    def __new__(
        cls,
        primary: Callable[[_FloatArray, int], Any],
        fallback: str | Model = "auto",
        timeout_s: float = 5.0,
        cache_dir: str | PathLike[str] | None = None,
        *,
        fallback_timeout_s: float = 120.0,
        journal: Journal | None = None,
        on_corrupt_cache: Literal["quarantine", "raise"] = "quarantine",
        clock: ManualClock | None = None,
    ) -> Self: ...
    def predict(
        self,
        history: npt.ArrayLike,
        horizon: SupportsIndex = 48,
        season_length: SupportsIndex | Sequence[SupportsIndex] | None = None,
        levels: float | Sequence[float] | None = None,
        start: _Instant | None = None,
        step_s: SupportsIndex | None = None,
        exog: Mapping[str, npt.ArrayLike] | None = None,
        exog_future: Mapping[str, npt.ArrayLike] | None = None,
        inputs: Literal["live", "synthetic"] = "live",
    ) -> Prediction:
        """Forecast: your model, else the fallback, else the last good predictions."""
    def latest(self) -> Prediction | None:
        """The last answer, or the cached predictions after a restart."""
    @property
    def cache_report(self) -> dict[str, Any] | None:
        """What opening ``cache_dir`` found."""
    @property
    def primary(self) -> Callable[[_FloatArray, int], Any]:
        """The primary callable."""
    @property
    def fallback(self) -> str:
        """The fallback model's name."""
    @property
    def timeout_s(self) -> float:
        """The primary's timeout, seconds."""
    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Pickle support."""
