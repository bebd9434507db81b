#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod breaker;
mod cache;
mod calendar;
mod durable;
mod failover;
mod file_lock;
mod forecast;
mod frame;
mod journal;
mod kpi;
mod predict;
mod provenance;
mod series;
mod site;
mod source;
mod store;
mod synth;

pub use breaker::{
    BreakerConfig, BreakerConfigError, BreakerError, BreakerMetrics, BreakerState, CircuitBreaker,
    Classify, Clock, ErrorClass, ManualClock, Rejected, Sleep, SlidingWindow, StateChange,
    SystemClock, TransitionReason,
};
pub use cache::{
    CACHE_FORMAT_VERSION, CACHE_HEADER_LEN, CACHE_MAGIC, Cache, CacheConfig, CacheError, CacheIoOp,
    Cached, CorruptionReason, Generation, LoadReport, Quarantined, UnreadableFile, WeakCache,
};
pub use calendar::{Country, DayType, UnknownCountry, easter_sunday};
pub use failover::{
    FailoverBuilder, FailoverConfig, FailoverError, FailoverService, ModeEvent, RefreshOutcome,
    WeatherSnapshot,
};
pub use forecast::{
    AccuracyMetrics, AutoEts, AutoModel, BacktestConfig, BacktestFold, BacktestReport, BoxCox,
    CandidateScore, DEFAULT_MAX_GAP, DynFit, Ets, EtsParams, Exog, Fit, FittedAuto, FittedBoxCox,
    FittedEts, FittedMstl, FittedSeasonalNaive, FittedSummary, FittedWeatherRegression, Forecast,
    ForecastError, History, IntervalCoverage, MAX_HORIZON, MAX_LAMBDA, MAX_OBSERVATION, Minimum,
    Mstl, Naive, NelderMead, Predict, PredictionInterval, SeasonalNaive, Smoother, Stl,
    StlDecomposition, Trend, WeatherRegression, backtest, backtest_with_exog, bias, calendar_exog,
    conformal_intervals, conformal_intervals_pooled, conformal_min_scores, coverage, fill_gaps,
    fill_nan_gaps, mae, mape, mape_skipped, mase, mase_scale, normal_intervals, normal_quantile,
    rmse, smape, validate_horizon, validate_levels, z_for_level,
};
pub use frame::{
    Column, EnergyColumns, EnergyFrame, SupplySource, WeatherColumns, WeatherFrame, WeatherVariable,
};
pub use journal::{
    ComponentFigures, CorruptReason, CorruptRegion, IgnoreReason, IgnoredEvent, Incident,
    IncidentId, IncidentKind, Journal, JournalError, JournalEvent, LongestOutage, ModeChange,
    OpenReport, Retex,
};
pub use kpi::{
    DAY_AHEAD, Direction, FORECAST_ERROR_MIN_HOURS, Kpi, KpiConfig, KpiSet, KpiStatus, SupplyKpis,
    Threshold, compute_kpis, compute_kpis_with_forecast, forecast_error_kpi,
    live_data_freshness_kpi,
};
pub use predict::{
    ARCHIVE_FUTURE_SLACK, ArchiveConfig, ChainError, ChainResult, CommandPredictor,
    CommandPredictorBuilder, DEFAULT_COMMAND_TIMEOUT, DEFAULT_HORIZON, FRESH_BACKLOG,
    IntervalColumns, MAX_OUTPUT_BYTES, ModelPredictor, NOTICE_REASON_CHARS, OUTPUT_FILE_ENV,
    PLAUSIBLE_SPREADS, PREDICTION_ARCHIVE_NAME, PREDICTION_SCHEMA_VERSION, PREDICTIONS_CACHE_NAME,
    PredictionArchive, PredictionChain, PredictionChainBuilder, PredictionRequest,
    PredictionRequestBuilder, Predictions, Predictor, PredictorError, RUN_ID_ENV, RunLimit,
    RunPermit, STDERR_TAIL_BYTES, Tier, TierFailure, check_forecast, parse_predictor_output,
    request_json,
};
pub use provenance::{Mode, ParseModeError, Provenance};
pub use series::{HOUR, HourlySeries, SeriesError, TimeAxis};
pub use site::{Site, SiteError};
pub use source::{
    DataSource, Fault, MAX_ANSWER_DISTANCE_KM, MAX_FORECAST_DAYS, MAX_PAST_DAYS, OpenMeteo,
    OpenMeteoConfig, Replay, ReplayError, SourceError, Window, parse_forecast,
};
pub use store::{
    BACKUP_DIR, BackupInfo, HISTORY_FILE, HistoryStore, KpiRecord, MAX_REAL_WEATHER_HOURS,
    Maintenance, Observation, PredictionRecord, StoreConfig, StoreError, StoreOpenReport,
    StoreStats,
};
pub use synth::{
    CalibrationError, CalibrationReport, ClimateParams, ConfigError, DemandFit, DemandParams,
    EnergyTwin, Generator, GridParams, MIN_CALIBRATION_HOURS, MIN_DEMAND_R_SQUARED, PvParams,
    SOLAR_CONSTANT, SunPosition, SynthConfig, SyntheticFrames, TemperatureFit, WindParams,
    clear_sky_ghi, cloud_transmittance, erbs_diffuse_fraction, extraterrestrial, plane_of_array,
    sun_position,
};
