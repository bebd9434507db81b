#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod breaker;
mod calendar;
mod frame;
mod kpi;
mod provenance;
mod series;
mod site;
mod source;
mod synth;

pub use breaker::{
    BreakerConfig, BreakerConfigError, BreakerError, BreakerMetrics, BreakerState, CircuitBreaker,
    Classify, Clock, ErrorClass, ManualClock, Rejected, Sleep, SlidingWindow, StateChange,
    SystemClock, TransitionReason,
};
pub use calendar::{Country, DayType, UnknownCountry, easter_sunday};
pub use frame::{
    Column, EnergyColumns, EnergyFrame, SupplySource, WeatherColumns, WeatherFrame, WeatherVariable,
};
pub use kpi::*;
pub use provenance::{Mode, ParseModeError, Provenance};
pub use series::{HOUR, HourlySeries, SeriesError, TimeAxis};
pub use site::{Site, SiteError};
pub use source::{
    DataSource, Fault, MAX_FORECAST_DAYS, MAX_PAST_DAYS, OpenMeteo, OpenMeteoConfig, Replay,
    ReplayError, SourceError, Window, parse_forecast,
};
pub use synth::*;
