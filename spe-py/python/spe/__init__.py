"""SP-E: keep energy dashboards alive and honest when their data sources fail.

The Python face of the SP-E Rust core:

- :class:`SyntheticGenerator`: deterministic, physically plausible hourly
  weather, electricity demand and supply for a site (what a dashboard shows
  in estimation mode), calibrated to a real site with ``calibrate``;
- :func:`forecast`, :func:`forecast_many`, :func:`backtest`: seasonal naive,
  ETS, MSTL, weather regression and automatic selection, with intervals;
  :class:`Model` fits one once (:class:`FittedModel`: forecast any
  horizon, inspect its parameters and components);
- :class:`CircuitBreaker`, :class:`WeatherService` (Open-Meteo with
  failover to the generator), :class:`ResilientForecaster` (your model with
  a statistical fallback and a crash-safe cache around it);
- :class:`Journal` (incidents, the RETEX report) and :func:`compute_kpis`;
- :class:`HistoryStore`: long-term history (observations, predictions,
  KPIs) in SQLite, with backups, as the example server keeps it.

The work runs in Rust without holding the GIL; arrays come back as numpy
arrays without a copy.

>>> import spe
>>> gen = spe.SyntheticGenerator(seed=7, latitude=48.85, longitude=2.35)
>>> arrays = gen.arrays("2026-01-01T00:00:00Z", hours=48)
>>> arrays["demand_mw"].shape, str(arrays["demand_mw"].dtype)
((48,), 'float64')
>>> df = gen.frame("2026-01-01T00:00:00Z", hours=24 * 28)   # needs pandas
>>> str(df.index.tz), df.index.freqstr
('UTC', 'h')
>>> fc = spe.forecast(df["demand_mw"], horizon=24, season_length=(24, 168), model="mstl")
>>> fc.mean.shape, str(fc.index[0])
((24,), '2026-01-29 00:00:00+00:00')

Every exception SP-E raises derives from :class:`SpeError`; a bad argument
raises :class:`ConfigError`, which is also a :class:`ValueError`:

>>> try:
...     spe.SyntheticGenerator(latitude=91.0)
... except ValueError as e:
...     print(type(e).__name__)
ConfigError
"""

from spe._breaker import CircuitBreaker
from spe._forecast import forecast, forecast_many
from spe._history import HistoryStore
from spe._kpi import compute_kpis
from spe._model import FittedModel, Model
from spe._spe import (
    CacheCorruptError,
    CacheError,
    CallTimeoutError,
    CircuitOpenError,
    ConfigError,
    Forecast,
    ForecastError,
    ForecastInputError,
    Journal,
    JournalError,
    ManualClock,
    Prediction,
    ResilientForecaster,
    Retex,
    SpeError,
    StoreCorruptError,
    StoreError,
    UpstreamError,
    WeatherService,
    WeatherSnapshot,
    __version__,
    backtest,
    calendar_exog,
)
from spe._synthetic import SyntheticGenerator

__all__ = [
    "CacheCorruptError",
    "CacheError",
    "CallTimeoutError",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigError",
    "FittedModel",
    "Forecast",
    "ForecastError",
    "ForecastInputError",
    "HistoryStore",
    "Journal",
    "JournalError",
    "ManualClock",
    "Model",
    "Prediction",
    "ResilientForecaster",
    "Retex",
    "SpeError",
    "StoreCorruptError",
    "StoreError",
    "SyntheticGenerator",
    "UpstreamError",
    "WeatherService",
    "WeatherSnapshot",
    "__version__",
    "backtest",
    "calendar_exog",
    "compute_kpis",
    "forecast",
    "forecast_many",
]
