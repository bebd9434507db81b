//! `auto`: choose a model by a rolling-origin backtest on the history.

use std::sync::Arc;

use super::{
    AutoEts, BacktestConfig, DynFit, Exog, Fit, Forecast, ForecastError, History, Mstl, Predict,
    SeasonalNaive, backtest,
};

/// Picks, among candidate models, the one with the lowest MASE (ties and
/// undefined MASE broken by RMSE) in a rolling-origin backtest on the
/// history, then fits it on the whole history.
///
/// Candidates that cannot be backtested (too little history, a model that
/// needs regressors the backtest does not pass) are skipped and reported in
/// [`FittedAuto::scores`]; if none can, the error of the last one is
/// returned. The default candidates are the seasonal naive, the MSTL-style
/// model and AutoEts; the backtest uses 2 folds of 24 steps.
///
/// ```
/// use spe_core::{AutoModel, Fit, History, Predict};
///
/// // Two weeks of a daily cycle: every candidate can be backtested.
/// let y: Vec<f64> = (0..24 * 14).map(|t| 100.0 + 10.0 * ((t % 24) as f64 / 24.0 * 6.283).sin()).collect();
/// let fitted = AutoModel::default().fit(&History::new(&y, &[24])).unwrap();
/// let f = fitted.predict(24, &[80.0], None).unwrap();
/// assert!(f.model().starts_with("auto("));
/// assert_eq!(fitted.scores().len(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct AutoModel {
    /// The models to choose from.
    pub candidates: Vec<Arc<dyn DynFit>>,
    /// Steps forecast in each backtest fold.
    pub horizon: usize,
    /// Backtest folds.
    pub folds: usize,
}

impl Default for AutoModel {
    fn default() -> Self {
        AutoModel {
            candidates: vec![
                Arc::new(SeasonalNaive::default()),
                Arc::new(Mstl::default()),
                Arc::new(AutoEts::default()),
            ],
            horizon: 24,
            folds: 2,
        }
    }
}

/// A candidate's backtest score.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateScore {
    /// The candidate's name.
    pub model: String,
    /// Its backtest MASE, if it could be computed.
    pub mase: Option<f64>,
    /// Its backtest RMSE, if it could be computed.
    pub rmse: Option<f64>,
    /// Why it could not be backtested, if so.
    pub error: Option<String>,
}

/// The model `auto` chose, fitted on the whole history.
#[derive(Debug)]
pub struct FittedAuto {
    chosen: String,
    inner: Box<dyn Predict>,
    scores: Vec<CandidateScore>,
}

impl FittedAuto {
    /// The chosen model's name.
    pub fn chosen(&self) -> &str {
        &self.chosen
    }

    /// Every candidate's score, in candidate order.
    pub fn scores(&self) -> &[CandidateScore] {
        &self.scores
    }
}

fn rank(s: &CandidateScore) -> (f64, f64) {
    (
        s.mase.unwrap_or(f64::INFINITY),
        s.rmse.unwrap_or(f64::INFINITY),
    )
}

impl Fit for AutoModel {
    type Fitted = FittedAuto;

    fn name(&self) -> String {
        "auto".into()
    }

    fn fit(&self, history: &History<'_>) -> Result<FittedAuto, ForecastError> {
        history.validate()?;
        if self.candidates.is_empty() {
            return Err(ForecastError::invalid(
                "auto needs at least one candidate model",
            ));
        }
        let config = BacktestConfig::new(self.horizon, self.folds);
        let mut scores = Vec::with_capacity(self.candidates.len());
        let mut last_error = None;
        for candidate in &self.candidates {
            let score = match backtest(candidate.as_ref(), history.y, history.periods, &config) {
                Ok(report) => CandidateScore {
                    model: candidate.name(),
                    mase: report.overall.mase,
                    rmse: report.overall.rmse,
                    error: None,
                },
                Err(e) => {
                    let score = CandidateScore {
                        model: candidate.name(),
                        mase: None,
                        rmse: None,
                        error: Some(e.to_string()),
                    };
                    last_error = Some(e);
                    score
                }
            };
            scores.push(score);
        }
        let best = scores
            .iter()
            .enumerate()
            .filter(|(_, s)| s.error.is_none())
            .min_by(|(_, a), (_, b)| {
                rank(a)
                    .partial_cmp(&rank(b))
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
            .map(|(i, _)| i);
        let Some(best) = best else {
            return Err(last_error
                .unwrap_or_else(|| ForecastError::invalid("no candidate could be backtested")));
        };
        let inner = self.candidates[best].fit_dyn(history)?;
        tracing::debug!(chosen = %scores[best].model, "auto model selection");
        Ok(FittedAuto {
            chosen: scores[best].model.clone(),
            inner,
            scores,
        })
    }
}

impl Predict for FittedAuto {
    fn predict(
        &self,
        horizon: usize,
        levels: &[f64],
        future: Option<&Exog>,
    ) -> Result<Forecast, ForecastError> {
        let f = self.inner.predict(horizon, levels, future)?;
        Ok(f.renamed(format!("auto({})", self.chosen)))
    }

    fn residuals(&self) -> &[f64] {
        self.inner.residuals()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that can never be fitted.
    #[derive(Debug)]
    struct Broken;

    impl DynFit for Broken {
        fn name(&self) -> String {
            "broken".into()
        }
        fn fit_dyn(&self, _: &History<'_>) -> Result<Box<dyn Predict>, ForecastError> {
            Err(ForecastError::FitFailed {
                model: "broken".into(),
                reason: "always".into(),
            })
        }
    }

    fn seasonal(n: usize) -> Vec<f64> {
        // A daily cycle with a slow deterministic wobble.
        (0..n)
            .map(|t| {
                500.0
                    + 50.0 * ((t % 24) as f64 / 24.0 * std::f64::consts::TAU).sin()
                    + ((t * 7919) % 13) as f64
            })
            .collect()
    }

    #[test]
    fn picks_the_best_backtested_candidate_and_forecasts_with_it() {
        let y = seasonal(24 * 21);
        let auto = AutoModel::default();
        let fitted = auto.fit(&History::new(&y, &[24])).unwrap();
        let best = fitted
            .scores()
            .iter()
            .filter(|s| s.error.is_none())
            .min_by(|a, b| rank(a).partial_cmp(&rank(b)).unwrap())
            .unwrap();
        assert_eq!(fitted.chosen(), best.model);
        let f = fitted.predict(24, &[80.0, 95.0], None).unwrap();
        assert_eq!(f.model(), format!("auto({})", best.model));
        // Same forecast as the chosen model fitted directly.
        let direct = auto
            .candidates
            .iter()
            .find(|c| c.name() == best.model)
            .unwrap()
            .fit_dyn(&History::new(&y, &[24]))
            .unwrap()
            .predict(24, &[80.0, 95.0], None)
            .unwrap();
        assert_eq!(f.mean(), direct.mean());
    }

    #[test]
    fn broken_candidates_are_skipped_and_all_broken_is_an_error() {
        let y = seasonal(24 * 14);
        let auto = AutoModel {
            candidates: vec![Arc::new(Broken), Arc::new(SeasonalNaive::default())],
            ..AutoModel::default()
        };
        let fitted = auto.fit(&History::new(&y, &[24])).unwrap();
        assert_eq!(fitted.chosen(), "seasonal_naive");
        assert!(fitted.scores()[0].error.is_some());
        let all_broken = AutoModel {
            candidates: vec![Arc::new(Broken)],
            ..AutoModel::default()
        };
        assert!(matches!(
            all_broken.fit(&History::new(&y, &[24])),
            Err(ForecastError::FitFailed { .. } | ForecastError::TooShort { .. })
        ));
        let none = AutoModel {
            candidates: vec![],
            ..AutoModel::default()
        };
        assert!(none.fit(&History::new(&y, &[24])).is_err());
    }

    #[test]
    fn bad_input_is_a_clean_error() {
        assert!(
            AutoModel::default()
                .fit(&History::new(&[1.0, f64::NAN], &[24]))
                .is_err()
        );
        assert!(
            AutoModel::default()
                .fit(&History::new(&[1.0; 10], &[24]))
                .is_err()
        );
    }
}
