//! What the server keeps in its data directory, and which of it a running
//! server could not open ([`Persisted`]).
//!
//! Availability comes first (see [`app`](crate::app)): a journal, cache,
//! archive or history store that cannot be opened is logged and the server
//! runs without it. It then still serves, but loses what that part keeps
//! across a crash or a restart, so `GET /readyz` reports it as a
//! degradation, naming each part ([`describe`]). The parts are ordered as
//! declared, as [`Persisted::ALL`].
//!
//! ```
//! use spe_server_example::persistence::{Persisted, describe};
//!
//! assert_eq!(
//!     describe(&[Persisted::Journal, Persisted::History]),
//!     "running without the incident journal and the history store (they could not be opened)"
//! );
//! assert_eq!(serde_json::to_value(Persisted::WeatherCache).unwrap(), "weather_cache");
//! ```

use serde::Serialize;
use utoipa::ToSchema;

// The type's doc comment is its description in the OpenAPI document:
// plain text (the example is in the module's documentation).
/// A part of the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Persisted {
    /// The incident journal (`incidents.journal`): without it incidents are
    /// only logged.
    Journal,
    /// The long-term history store (`history/`): without it nothing is
    /// recorded and `GET /api/history` answers 503.
    History,
    /// The cache of the last live weather: without it a restart starts from
    /// the synthetic estimate.
    WeatherCache,
    /// The cache of the last good predictions: without it a restart has no
    /// predictions until its first run, and the chain no tier 3.
    PredictionsCache,
    /// The archive of past predictions: without it the forecast error of
    /// the last day stays unknown.
    Archive,
}

impl Persisted {
    /// Every part, in the order [`describe`] names them.
    pub const ALL: [Persisted; 5] = [
        Persisted::Journal,
        Persisted::History,
        Persisted::WeatherCache,
        Persisted::PredictionsCache,
        Persisted::Archive,
    ];

    /// The part in words (`the incident journal`, …).
    pub fn label(self) -> &'static str {
        match self {
            Persisted::Journal => "the incident journal",
            Persisted::History => "the history store",
            Persisted::WeatherCache => "the weather cache",
            Persisted::PredictionsCache => "the predictions cache",
            Persisted::Archive => "the forecast archive",
        }
    }
}

/// A sentence naming the `missing` parts (empty for none).
pub fn describe(missing: &[Persisted]) -> String {
    let labels: Vec<&str> = missing.iter().map(|p| p.label()).collect();
    let list = match labels.as_slice() {
        [] => return String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    let they = if labels.len() == 1 { "it" } else { "they" };
    format!("running without {list} ({they} could not be opened)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentence_names_each_part() {
        assert_eq!(describe(&[]), "");
        assert_eq!(
            describe(&[Persisted::Journal]),
            "running without the incident journal (it could not be opened)"
        );
        assert_eq!(
            describe(&Persisted::ALL),
            "running without the incident journal, the history store, the weather cache, \
             the predictions cache and the forecast archive (they could not be opened)"
        );
    }
}
