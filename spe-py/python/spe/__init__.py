"""SP-E: keep energy dashboards alive and honest when their data sources fail.

The Python face of the SP-E Rust core. For now it holds the synthetic
generator: deterministic, physically plausible hourly weather, electricity
demand and supply for a site, the data a dashboard shows in estimation mode.

>>> import spe
>>> gen = spe.SyntheticGenerator(seed=7, latitude=48.85, longitude=2.35)
>>> arrays = gen.arrays("2026-01-01T00:00:00Z", hours=48)
>>> arrays["demand_mw"].shape, str(arrays["demand_mw"].dtype)
((48,), 'float64')
>>> df = gen.frame("2026-01-01T00:00:00Z", hours=48)   # needs pandas
>>> str(df.index.tz), df.index.freqstr
('UTC', 'h')

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
from spe._kpi import compute_kpis
from spe._spe import (
    CacheCorruptError,
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
    "CallTimeoutError",
    "CircuitBreaker",
    "CircuitOpenError",
    "ConfigError",
    "Forecast",
    "ForecastError",
    "ForecastInputError",
    "Journal",
    "JournalError",
    "ManualClock",
    "Prediction",
    "ResilientForecaster",
    "Retex",
    "SpeError",
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
