//! The chain: tiers, derived intervals, single flight, cancellation, the
//! cache (corrupt, restart, failing writes) and the journal.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::super::{
    ChainError, CommandPredictor, ModelPredictor, PredictionChain, PredictionChainBuilder,
    PredictionRequest, Predictions, Predictor, PredictorError, Tier,
};
use super::{good_output, history, request, t0};
use crate::breaker::ManualClock;
use crate::cache::{Cache, LoadReport, WeakCache};
use crate::forecast::{DynFit, Forecast, ForecastError, History, Predict, SeasonalNaive};
use crate::journal::{IncidentKind, Journal};
use crate::provenance::Provenance;

/// A predictor scripted in Rust: answers, fails, hangs or panics.
#[derive(Debug)]
enum Scripted {
    Answer(Forecast),
    Fail,
    Hang,
    Panic,
}

#[derive(Debug)]
struct Fake {
    behaviour: std::sync::Mutex<Scripted>,
    calls: AtomicUsize,
}

impl Fake {
    fn new(b: Scripted) -> Arc<Self> {
        Arc::new(Fake {
            behaviour: std::sync::Mutex::new(b),
            calls: AtomicUsize::new(0),
        })
    }
    fn set(&self, b: Scripted) {
        *self.behaviour.lock().unwrap() = b;
    }
}

#[async_trait]
impl Predictor for Fake {
    fn name(&self) -> String {
        "fake".into()
    }
    async fn predict(&self, _: &PredictionRequest) -> Result<Forecast, PredictorError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (answer, hang) = {
            let b = self.behaviour.lock().unwrap();
            match &*b {
                Scripted::Answer(f) => (Some(f.clone()), false),
                Scripted::Fail => (None, false),
                Scripted::Hang => (None, true),
                Scripted::Panic => panic!("the model blew up"),
            }
        };
        if hang {
            std::future::pending::<()>().await;
        }
        answer.ok_or_else(|| PredictorError::crashed("raised RuntimeError", "no model file"))
    }
}

/// A fallback model that can never be fitted.
#[derive(Debug)]
struct BrokenModel;

impl DynFit for BrokenModel {
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

/// A fallback model that panics.
#[derive(Debug)]
struct PanickingModel;

impl DynFit for PanickingModel {
    fn name(&self) -> String {
        "panicking".into()
    }
    fn fit_dyn(&self, _: &History<'_>) -> Result<Box<dyn Predict>, ForecastError> {
        panic!("index out of bounds in the fallback")
    }
}

fn mean_only(horizon: usize) -> Forecast {
    Forecast::new("mean-only", vec![200.0; horizon], vec![]).unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    journal: Journal,
    clock: ManualClock,
    /// The cache the chains built so far share while one of them is alive
    /// (a cache is open once); opened again, as by a restart, once they are
    /// all dropped.
    cache: std::sync::Mutex<Option<WeakCache<Predictions>>>,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        Setup {
            journal: Journal::open(path.join("incidents.journal")).unwrap(),
            dir: path,
            _dir: dir,
            clock: ManualClock::new(),
            cache: std::sync::Mutex::new(None),
        }
    }

    fn cache_dir(&self) -> std::path::PathBuf {
        self.dir.join("cache")
    }

    /// A chain over this setup's cache, journal and clock, with the seasonal
    /// naive fallback (fast).
    fn chain(&self, primary: Option<Arc<dyn Predictor>>) -> PredictionChainBuilder {
        let mut shared = self.cache.lock().unwrap();
        let (cache, report) = match shared.as_ref().and_then(WeakCache::upgrade) {
            Some(open) => (open, LoadReport::default()),
            None => PredictionChain::open_cache(self.cache_dir()).unwrap(),
        };
        *shared = Some(cache.downgrade());
        let mut b = PredictionChain::builder()
            .fallback(Arc::new(SeasonalNaive::default()))
            .cache(cache)
            .cache_report(report)
            .journal(self.journal.clone())
            .clock(self.clock.clone(), t0());
        if let Some(p) = primary {
            b = b.primary(p);
        }
        b
    }
}

fn sh_script(dir: &Path, name: &str, body: &str) -> Arc<dyn Predictor> {
    let s = super::script(dir, name, body);
    Arc::new(
        CommandPredictor::builder("/bin/sh")
            .arg(s)
            .env("DIR", dir)
            .timeout(Duration::from_secs(20))
            .build(),
    )
}

#[tokio::test]
async fn a_good_primary_answers_and_its_predictions_are_cached() {
    let s = Setup::new();
    let out = good_output(4, "gbm");
    let primary = sh_script(
        &s.dir,
        "good.sh",
        &format!("cat > /dev/null\nprintf '%s' '{out}'"),
    );
    let chain = s.chain(Some(primary)).build();
    assert!(chain.latest().is_none());
    let mut updates = chain.subscribe();
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Primary);
    assert!(r.failures.is_empty());
    assert_eq!(r.provenance(chain.now()), Provenance::Live);
    let p = &r.predictions;
    assert_eq!(
        (p.forecast.model(), p.tier, p.step_s),
        ("gbm", Tier::Primary, 3600)
    );
    assert_eq!((p.start, p.made_at), (t0(), t0()));
    assert_eq!(p.intervals_from, None);
    // Cached, published, not journaled.
    let cached = chain.cache().unwrap().get().unwrap();
    assert_eq!(*cached.value, r.predictions);
    assert!(Arc::ptr_eq(&chain.latest().unwrap(), &r));
    assert!(updates.has_changed().unwrap());
    assert!(Arc::ptr_eq(
        updates.borrow_and_update().as_ref().unwrap(),
        &r
    ));
    assert!(s.journal.incidents(..).is_empty());
    // The JSON the server serves.
    let json = r.to_json(chain.now());
    assert_eq!(json["upper_95"][0], 109.0);
    assert_eq!(
        (json["tier"].as_str(), json["provenance"].as_str()),
        (Some("primary"), Some("live"))
    );
    assert_eq!(json["time"][3], "2026-11-25T03:00:00Z");
}

#[tokio::test]
async fn a_crashing_script_falls_back_and_the_outage_is_one_incident() {
    let s = Setup::new();
    let crash = sh_script(
        &s.dir,
        "crash.sh",
        "cat > /dev/null\necho 'FileNotFoundError: model.pkl' >&2\nexit 3",
    );
    let chain = s.chain(Some(crash)).build();
    for _ in 0..3 {
        let r = chain.generate(request(4)).await.unwrap();
        assert_eq!(r.tier, Tier::Fallback);
        assert_eq!(r.provenance(chain.now()), Provenance::Fallback);
        assert_eq!(r.predictions.tier, Tier::Fallback);
        assert_eq!(r.predictions.forecast.model(), "seasonal_naive");
        assert_eq!(r.failures.len(), 1);
        let f = &r.failures[0];
        assert_eq!((f.tier, f.kind), (Tier::Primary, IncidentKind::ModelCrash));
        assert!(
            f.message.contains("exit code 3") && f.message.contains("model.pkl"),
            "{}",
            f.message
        );
        assert!(r.notice().unwrap().contains("model.pkl"));
        // The fallback's answer is cached too.
        assert_eq!(
            chain.cache().unwrap().get().unwrap().value.tier,
            Tier::Fallback
        );
    }
    let incidents = s.journal.incidents(..);
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let i = &incidents[0];
    assert!(i.is_open());
    assert_eq!(
        (i.component.as_str(), i.kind),
        ("prediction", IncidentKind::ModelCrash)
    );
    assert!(
        i.details.contains("model.pkl") && i.details.contains("served: fallback"),
        "{}",
        i.details
    );
    assert!(i.notes.is_empty(), "same failure, no note: {:?}", i.notes);
}

#[tokio::test]
async fn the_incident_notes_changes_and_closes_when_the_primary_recovers() {
    let s = Setup::new();
    let fake = Fake::new(Scripted::Fail);
    let chain = s.chain(Some(fake.clone())).build();
    chain.generate(request(4)).await.unwrap();
    fake.set(Scripted::Answer(
        Forecast::new("m", vec![1.0; 4], vec![]).unwrap(),
    ));
    // Mean only: intervals derived, a success.
    s.clock.advance(Duration::from_secs(60));
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Primary);
    let incidents = s.journal.incidents(..);
    assert_eq!(incidents.len(), 1);
    assert!(!incidents[0].is_open());
    assert_eq!(incidents[0].end, Some(t0() + chrono::Duration::seconds(60)));
    // A new outage of another kind is a new incident; a change is a note.
    fake.set(Scripted::Answer(
        Forecast::new("m", vec![1.0; 3], vec![]).unwrap(),
    ));
    chain.generate(request(4)).await.unwrap();
    fake.set(Scripted::Fail);
    chain.generate(request(4)).await.unwrap();
    let incidents = s.journal.incidents(..);
    assert_eq!(incidents.len(), 2, "{incidents:?}");
    let open = s.journal.open_incidents();
    assert_eq!(open[0].kind, IncidentKind::ModelBadOutput);
    assert!(
        open[0].details.contains("3 steps, expected 4"),
        "{}",
        open[0].details
    );
    assert_eq!(open[0].notes.len(), 1);
    assert!(
        open[0].notes[0].1.contains("crashed"),
        "{:?}",
        open[0].notes
    );
}

#[tokio::test]
async fn a_mean_only_primary_gets_the_fallbacks_interval_widths() {
    let s = Setup::new();
    let chain = s
        .chain(Some(Fake::new(Scripted::Answer(mean_only(4)))))
        .build();
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Primary);
    let p = &r.predictions;
    assert_eq!(p.forecast.model(), "mean-only");
    assert_eq!(p.intervals_from.as_deref(), Some("seasonal_naive"));
    // The fallback alone, for the widths.
    let fb = ModelPredictor::new(Arc::new(SeasonalNaive::default()))
        .predict(&request(4))
        .await
        .unwrap();
    for level in [80.0, 95.0] {
        for i in 0..4 {
            let below = fb.mean()[i] - fb.lower(level).unwrap()[i];
            let above = fb.upper(level).unwrap()[i] - fb.mean()[i];
            assert!((p.forecast.lower(level).unwrap()[i] - (200.0 - below)).abs() < 1e-9);
            assert!((p.forecast.upper(level).unwrap()[i] - (200.0 + above)).abs() < 1e-9);
        }
    }
    // Without a fallback to borrow from, a mean-only answer is bad output.
    let chain = s
        .chain(Some(Fake::new(Scripted::Answer(mean_only(4)))))
        .fallback(Arc::new(BrokenModel))
        .build();
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Cache);
    assert_eq!(r.failures[0].kind, IncidentKind::ModelBadOutput);
    assert!(
        r.failures[0].message.contains("could not derive"),
        "{}",
        r.failures[0].message
    );
}

#[tokio::test]
async fn absurd_or_crossed_answers_are_bad_output_and_the_fallback_answers() {
    use crate::forecast::PredictionInterval;
    let s = Setup::new();
    let band = |level: f64, half: f64| PredictionInterval {
        level,
        lower: vec![500.0 - half; 4],
        upper: vec![500.0 + half; 4],
    };
    // The history spans 450 to 550 MW: -1e9 and 1e300 are garbage.
    let absurd = [
        (
            Forecast::new("neg", vec![-1e9; 4], vec![]).unwrap(),
            "mean[0] = -1000000000 is implausible",
        ),
        (
            Forecast::new("huge", vec![500.0, 500.0, 500.0, 1e300], vec![]).unwrap(),
            "mean[3] = 1e300 is implausible",
        ),
        (
            Forecast::new(
                "wide",
                vec![500.0; 4],
                vec![band(80.0, 10.0), band(95.0, 1e7)],
            )
            .unwrap(),
            "lower_95[0] = -9999500 is implausible",
        ),
    ];
    for (answer, message) in absurd {
        let chain = s.chain(Some(Fake::new(Scripted::Answer(answer)))).build();
        let r = chain.generate(request(4)).await.unwrap();
        assert_eq!(r.tier, Tier::Fallback);
        assert_eq!(r.failures[0].kind, IncidentKind::ModelBadOutput);
        assert!(
            r.failures[0].message.contains(message),
            "{}",
            r.failures[0].message
        );
    }
    // Within ten spreads (550 MW) of the range: a bold forecast, served.
    let bold = Forecast::new("bold", vec![5000.0; 4], vec![]).unwrap();
    let chain = s.chain(Some(Fake::new(Scripted::Answer(bold)))).build();
    assert_eq!(
        chain.generate(request(4)).await.unwrap().tier,
        Tier::Primary
    );
    // A command whose 95 % band is narrower than its 80 % band: bad output.
    let crossed = serde_json::json!({
        "mean": [500.0, 500.0, 500.0, 500.0],
        "lower_80": [480.0, 480.0, 480.0, 480.0], "upper_80": [520.0, 520.0, 520.0, 520.0],
        "lower_95": [490.0, 490.0, 490.0, 490.0], "upper_95": [510.0, 510.0, 510.0, 510.0],
    });
    let e =
        super::super::parse_predictor_output(crossed.to_string().as_bytes(), 4, "cmd").unwrap_err();
    assert_eq!(e.incident_kind(), IncidentKind::ModelBadOutput);
    assert!(
        e.to_string().contains("not within the 95 % interval"),
        "{e}"
    );
}

#[tokio::test]
async fn derived_intervals_nest_with_the_primarys_own() {
    use crate::forecast::PredictionInterval;
    let s = Setup::new();
    // Its own 80 % band is wider than the fallback's 95 %: the derived 95 %
    // band is widened to hold it, not refused as crossed.
    let wide = |half: f64| PredictionInterval {
        level: 80.0,
        lower: vec![500.0 - half; 4],
        upper: vec![500.0 + half; 4],
    };
    let answer = Forecast::new("own-80", vec![500.0; 4], vec![wide(400.0)]).unwrap();
    let chain = s.chain(Some(Fake::new(Scripted::Answer(answer)))).build();
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Primary, "{:?}", r.failures);
    let f = &r.predictions.forecast;
    assert_eq!(f.lower(80.0).unwrap(), &[100.0; 4]);
    assert_eq!(f.lower(95.0).unwrap(), &[100.0; 4]);
    assert_eq!(f.upper(95.0).unwrap(), &[900.0; 4]);
    // The fallback's own 95 % band (a seasonal naive of a pure cycle:
    // no width) is what was widened.
    let fb = ModelPredictor::new(Arc::new(SeasonalNaive::default()))
        .predict(&request(4))
        .await
        .unwrap();
    assert!(fb.upper(95.0).unwrap()[0] - fb.lower(95.0).unwrap()[0] < 800.0);
}

#[tokio::test]
async fn a_mean_only_primary_on_a_short_history_borrows_auto_ets_intervals() {
    // Twenty hours, daily and weekly periods: too short for both periods,
    // and for the seasonal naive; auto's ETS still derives the intervals.
    let chain = PredictionChain::builder()
        .primary(Fake::new(Scripted::Answer(mean_only(24))))
        .build();
    let request = PredictionRequest::builder(t0(), history(20))
        .periods(vec![24, 168])
        .horizon(24)
        .build()
        .unwrap();
    let r = chain.generate(request).await.unwrap();
    assert_eq!(r.tier, Tier::Primary, "{:?}", r.failures);
    assert_eq!(
        r.predictions.intervals_from.as_deref(),
        Some("auto(auto_ets)")
    );
    assert_eq!(r.predictions.forecast.intervals().len(), 2);
}

#[tokio::test]
async fn panics_in_the_primary_or_the_fallback_are_contained() {
    let s = Setup::new();
    let chain = s.chain(Some(Fake::new(Scripted::Panic))).build();
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Fallback);
    assert!(
        r.failures[0].message.contains("panicked"),
        "{}",
        r.failures[0].message
    );
    let chain = s
        .chain(Some(Fake::new(Scripted::Panic)))
        .fallback(Arc::new(PanickingModel))
        .build();
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Cache);
    assert!(
        r.failures[1].message.contains("panicked"),
        "{}",
        r.failures[1].message
    );
}

#[tokio::test]
async fn a_hanging_primary_times_out_and_falls_back() {
    let s = Setup::new();
    let chain = PredictionChain::builder()
        .primary(Fake::new(Scripted::Hang))
        .fallback(Arc::new(SeasonalNaive::default()))
        .timeout(Duration::from_millis(200))
        .journal(s.journal.clone())
        .build();
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Fallback);
    assert_eq!(r.failures[0].kind, IncidentKind::ModelTimeout);
    assert_eq!(
        s.journal.open_incidents()[0].kind,
        IncidentKind::ModelTimeout
    );
}

#[tokio::test]
async fn tier_3_serves_the_last_good_predictions_with_their_age() {
    let s = Setup::new();
    let fake = Fake::new(Scripted::Answer(good(4)));
    let chain = s
        .chain(Some(fake.clone()))
        .fallback(Arc::new(BrokenModel))
        .build();
    let first = chain.generate(request(4)).await.unwrap();
    assert_eq!(first.tier, Tier::Primary);
    fake.set(Scripted::Fail);
    s.clock.advance(Duration::from_secs(7200));
    // A longer horizon than the cached predictions have: they are served as
    // they are, and the notice says which hours they cover.
    let r = chain.generate(request(8)).await.unwrap();
    assert_eq!(r.tier, Tier::Cache);
    assert_eq!(r.predictions, first.predictions);
    assert_eq!(r.predictions.forecast.horizon(), 4);
    assert_eq!(r.age(chain.now()), Duration::from_secs(7200));
    assert_eq!(
        r.provenance(chain.now()),
        Provenance::Cached { age_s: 7200 }
    );
    let tiers: Vec<Tier> = r.failures.iter().map(|f| f.tier).collect();
    assert_eq!(tiers, [Tier::Primary, Tier::Fallback]);
    assert!(
        r.failures[1].message.contains("broken could not be fitted"),
        "{}",
        r.failures[1].message
    );
    let notice = r.notice().unwrap();
    assert!(
        notice.contains(
            "last good predictions, made at 2026-11-25T00:00:00Z, \
             for 2026-11-25T00:00:00Z to 2026-11-25T03:00:00Z."
        ),
        "{notice}"
    );
    // Published, not re-cached.
    assert_eq!(chain.latest().unwrap().tier, Tier::Cache);
    assert_eq!(chain.cache().unwrap().generations().unwrap().len(), 1);
    let i = &s.journal.open_incidents()[0];
    assert!(
        i.details.contains(
            "served: cached predictions of gbm made at 2026-11-25T00:00:00Z \
             (7200 s old, up to 2026-11-25T03:00:00Z)"
        ),
        "{}",
        i.details
    );
    assert!(
        i.details.contains("fallback (broken) failed"),
        "{}",
        i.details
    );
}

#[tokio::test]
async fn nothing_at_all_is_a_clean_no_predictions_error() {
    let s = Setup::new();
    let chain = s
        .chain(Some(Fake::new(Scripted::Fail)))
        .fallback(Arc::new(BrokenModel))
        .build();
    let e = chain.generate(request(4)).await.unwrap_err();
    let ChainError::NoPredictions { failures } = &e else {
        panic!("{e:?}");
    };
    assert_eq!(failures.len(), 2);
    assert!(e.to_string().contains("no cached predictions"), "{e}");
    assert!(chain.latest().is_none());
    let i = &s.journal.open_incidents()[0];
    assert!(i.details.contains("nothing served"), "{}", i.details);
    // Without a primary, the fallback model is tier 1 and there is no tier 2.
    let chain = s.chain(None).fallback(Arc::new(BrokenModel)).build();
    let e = chain.generate(request(4)).await.unwrap_err();
    assert!(
        matches!(&e, ChainError::NoPredictions { failures } if failures.len() == 1 && failures[0].tier == Tier::Primary && failures[0].predictor == "broken"),
        "{e:?}"
    );
}

#[tokio::test]
async fn without_a_primary_the_fallback_model_is_the_primary() {
    let s = Setup::new();
    let chain = s.chain(None).build();
    assert_eq!(chain.primary_name(), "seasonal_naive");
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(
        (r.tier, r.predictions.forecast.model()),
        (Tier::Primary, "seasonal_naive")
    );
}

#[tokio::test]
async fn the_default_fallback_is_auto() {
    let chain = PredictionChain::builder()
        .primary(Fake::new(Scripted::Fail))
        .build();
    assert_eq!(chain.fallback_name(), "auto");
    let request = PredictionRequest::builder(t0(), history(24 * 14))
        .horizon(24)
        .build()
        .unwrap();
    let r = chain.generate(request).await.unwrap();
    assert_eq!(r.tier, Tier::Fallback);
    assert!(
        r.predictions.forecast.model().starts_with("auto("),
        "{}",
        r.predictions.forecast.model()
    );
    assert_eq!(r.predictions.forecast.intervals().len(), 2);
}

#[tokio::test]
async fn an_invalid_request_runs_nothing() {
    let fake = Fake::new(Scripted::Fail);
    let chain = PredictionChain::builder().primary(fake.clone()).build();
    let mut r = request(4);
    r.levels = vec![0.0];
    assert!(matches!(
        chain.generate(r).await,
        Err(ChainError::InvalidRequest(_))
    ));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

fn good(horizon: usize) -> Forecast {
    crate::predict::parse_predictor_output(good_output(horizon, "gbm").as_bytes(), horizon, "x")
        .unwrap()
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_script_deleted_mid_run_falls_back_and_then_cannot_start() {
    let s = Setup::new();
    let scripts = s.dir.join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    let sync = s.dir.join("sync");
    std::fs::create_dir(&sync).unwrap();
    let out = good_output(4, "gbm");
    // The entry point waits for the test, then runs its second stage.
    super::script(&scripts, "stage2.sh", &format!("printf '%s' '{out}'"));
    let main = super::script(
        &scripts,
        "main.sh",
        &format!(
            "cat > /dev/null\necho $$ > \"{sync}/pid\"\nwhile [ ! -e \"{sync}/go\" ]; do sleep 0.01; done\n. \"{scripts}/stage2.sh\"",
            sync = sync.display(),
            scripts = scripts.display()
        ),
    );
    let chain = s
        .chain(Some(Arc::new(
            CommandPredictor::builder("/bin/sh").arg(&main).build(),
        )))
        .build();
    let run = tokio::spawn({
        let chain = chain.clone();
        async move { chain.generate(request(4)).await }
    });
    super::read_pid(&sync.join("pid")).await;
    std::fs::remove_dir_all(&scripts).unwrap();
    std::fs::write(sync.join("go"), "").unwrap();
    let r = run.await.unwrap().unwrap();
    assert_eq!(r.tier, Tier::Fallback);
    assert_eq!(r.failures[0].kind, IncidentKind::ModelCrash);
    assert!(
        r.failures[0].message.contains("stage2.sh"),
        "{}",
        r.failures[0].message
    );
    // The next run: the script is gone.
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Fallback);
    assert!(
        r.failures[0].message.contains("main.sh"),
        "{}",
        r.failures[0].message
    );
    // As the program itself, a deleted script cannot even start.
    let chain = s
        .chain(Some(Arc::new(CommandPredictor::builder(&main).build())))
        .build();
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Fallback);
    assert!(
        r.failures[0].to_string().starts_with("primary"),
        "{}",
        r.failures[0]
    );
    assert!(
        r.failures[0].message.contains("cannot start"),
        "{}",
        r.failures[0].message
    );
}

#[tokio::test]
async fn concurrent_calls_share_one_run() {
    let s = Setup::new();
    let out = good_output(4, "gbm");
    let go = s.dir.join("go");
    let primary = sh_script(
        &s.dir,
        "once.sh",
        &format!(
            "cat > /dev/null\necho run >> \"$DIR/runs\"\nwhile [ ! -e \"{}\" ]; do sleep 0.01; done\nprintf '%s' '{out}'",
            go.display()
        ),
    );
    let chain = s.chain(Some(primary)).build();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let chain = chain.clone();
        tasks.spawn(async move { chain.generate(request(4)).await });
    }
    // Wait until the 20 callers wait on the same run.
    loop {
        if chain.waiters() == 20 {
            break;
        }
        tokio::task::yield_now().await;
    }
    std::fs::write(&go, "").unwrap();
    let results: Vec<_> = tasks
        .join_all()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(results.iter().all(|r| Arc::ptr_eq(r, &results[0])));
    assert_eq!(
        std::fs::read_to_string(s.dir.join("runs")).unwrap(),
        "run\n"
    );
    assert_eq!(chain.cache().unwrap().generations().unwrap().len(), 1);
    assert!(!chain.is_running());
    // The next call is a new run.
    chain.generate(request(4)).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(s.dir.join("runs")).unwrap(),
        "run\nrun\n"
    );
}

/// Answers the request's last observation for each step, once let through.
#[derive(Debug)]
struct Gated {
    gate: tokio::sync::Semaphore,
    calls: AtomicUsize,
}

#[async_trait]
impl Predictor for Gated {
    fn name(&self) -> String {
        "gated".into()
    }
    async fn predict(&self, r: &PredictionRequest) -> Result<Forecast, PredictorError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.gate
            .acquire()
            .await
            .map_err(|_| PredictorError::crashed("gate closed", ""))?
            .forget();
        let last = r.history.last().copied().unwrap_or(0.0);
        Ok(Forecast::new("gated", vec![last; r.horizon], vec![]).unwrap())
    }
}

#[tokio::test]
async fn a_different_request_waits_for_the_run_in_flight_then_runs_its_own() {
    let s = Setup::new();
    let primary = Arc::new(Gated {
        gate: tokio::sync::Semaphore::new(0),
        calls: AtomicUsize::new(0),
    });
    let chain = s.chain(Some(primary.clone())).build();
    let a = {
        let chain = chain.clone();
        tokio::spawn(async move { chain.generate(request(4)).await })
    };
    while primary.calls.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    let other = PredictionRequest::builder(t0(), vec![7.0; 48])
        .horizon(6)
        .build()
        .unwrap();
    let b = {
        let chain = chain.clone();
        tokio::spawn(async move { chain.generate(other).await })
    };
    // An equal request joins; the other one does not.
    let same = {
        let chain = chain.clone();
        tokio::spawn(async move { chain.generate(request(4)).await })
    };
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(chain.waiters(), 2, "A and its twin, not B");
    assert_eq!(primary.calls.load(Ordering::SeqCst), 1, "B has not run yet");

    primary.gate.add_permits(2);
    let a = a.await.unwrap().unwrap();
    let same = same.await.unwrap().unwrap();
    let b = b.await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&a, &same));
    assert_eq!(a.tier, Tier::Primary);
    assert_eq!(
        a.predictions.forecast.mean(),
        &[*history(48).last().unwrap(); 4][..]
    );
    assert_eq!(b.tier, Tier::Primary);
    assert_eq!(
        b.predictions.forecast.mean(),
        &[7.0; 6][..],
        "B got its own predictions"
    );
    assert_eq!(primary.calls.load(Ordering::SeqCst), 2);
    assert!(!chain.is_running());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn dropping_the_last_caller_cancels_the_run_and_kills_the_child() {
    let s = Setup::new();
    let primary = sh_script(
        &s.dir,
        "hang.sh",
        "sleep 3600 &\necho $! > \"$DIR/grandchild\"\necho $$ > \"$DIR/pid\"\nwait",
    );
    let chain = s.chain(Some(primary)).build();
    let caller = tokio::spawn({
        let chain = chain.clone();
        async move { chain.generate(request(4)).await }
    });
    let pid = super::read_pid(&s.dir.join("pid")).await;
    let grandchild = super::read_pid(&s.dir.join("grandchild")).await;
    assert!(chain.is_running());
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    assert!(
        !chain.is_running(),
        "the run is cancelled with its last caller"
    );
    assert!(
        super::wait_dead(pid).await,
        "the script {pid} is still running"
    );
    assert!(
        super::wait_dead(grandchild).await,
        "the grandchild {grandchild} is still running"
    );
    assert!(chain.latest().is_none());
    assert!(
        s.journal.incidents(..).is_empty(),
        "a cancelled run is not an incident"
    );
}

#[tokio::test]
async fn predictions_from_estimated_history_never_pass_for_live_ones() {
    let s = Setup::new();
    let mut estimated = request(4);
    estimated.inputs = Provenance::Synthetic;
    {
        let chain = s.chain(Some(Fake::new(Scripted::Answer(good(4))))).build();
        let r = chain.generate(estimated).await.unwrap();
        assert_eq!(r.tier, Tier::Primary);
        assert_eq!(r.provenance(chain.now()), Provenance::Synthetic);
        assert_eq!(r.predictions.inputs, Provenance::Synthetic);
        assert!(
            r.notice()
                .unwrap()
                .contains("estimated (synthetic) history")
        );
        let json = r.to_json(chain.now());
        assert_eq!(
            (json["provenance"].as_str(), json["inputs"].as_str()),
            (Some("synthetic"), Some("synthetic"))
        );
        // Live history again: live predictions.
        let r = chain.generate(request(4)).await.unwrap();
        assert_eq!(r.provenance(chain.now()), Provenance::Live);
        assert_eq!(r.notice(), None);
        // The fallback says it is the fallback, and where its history came from.
        let mut estimated = request(4);
        estimated.inputs = Provenance::Synthetic;
        let chain = s.chain(Some(Fake::new(Scripted::Fail))).build();
        let r = chain.generate(estimated).await.unwrap();
        assert_eq!(r.provenance(chain.now()), Provenance::Fallback);
        let notice = r.notice().unwrap();
        assert!(
            notice.contains("statistical fallback") && notice.contains("estimated"),
            "{notice}"
        );
    }
    // The cache keeps where the history came from across a restart.
    let (cache, report) = PredictionChain::open_cache(s.cache_dir()).unwrap();
    let chain = PredictionChain::builder()
        .cache(cache)
        .cache_report(report)
        .clock(ManualClock::new(), t0())
        .build();
    let latest = chain.latest().unwrap();
    assert_eq!(latest.predictions.inputs, Provenance::Synthetic);
    assert_eq!(latest.predictions.tier, Tier::Fallback);
}

#[test]
fn predictions_cached_before_the_inputs_field_read_as_live() {
    let mut json = serde_json::to_value(Predictions {
        start: t0(),
        step_s: 3600,
        forecast: good(2),
        made_at: t0(),
        tier: Tier::Primary,
        intervals_from: None,
        inputs: Provenance::Synthetic,
    })
    .unwrap();
    assert_eq!(json["inputs"]["kind"], "synthetic");
    json.as_object_mut().unwrap().remove("inputs");
    let old: Predictions = serde_json::from_value(json).unwrap();
    assert_eq!(old.inputs, Provenance::Live);
}

#[tokio::test]
async fn a_restarted_chain_serves_the_cache_with_its_age() {
    let s = Setup::new();
    {
        let chain = s.chain(Some(Fake::new(Scripted::Answer(good(4))))).build();
        chain.generate(request(4)).await.unwrap();
    }
    let later = t0() + chrono::Duration::hours(3);
    let (cache, report) = PredictionChain::open_cache(s.cache_dir()).unwrap();
    assert!(report.is_clean());
    let chain = PredictionChain::builder()
        .cache(cache)
        .cache_report(report)
        .journal(s.journal.clone())
        .clock(ManualClock::new(), later)
        .build();
    let latest = chain.latest().unwrap();
    assert_eq!(latest.tier, Tier::Cache);
    assert_eq!(latest.predictions.tier, Tier::Primary);
    assert_eq!(latest.predictions.forecast.model(), "gbm");
    assert_eq!(latest.age(chain.now()), Duration::from_secs(3 * 3600));
    assert_eq!(latest.to_json(chain.now())["age_s"], 3 * 3600);
    assert!(s.journal.incidents(..).is_empty());
}

#[tokio::test]
async fn an_open_incident_survives_a_restart_and_is_closed_by_the_recovery() {
    let s = Setup::new();
    {
        let chain = s.chain(Some(Fake::new(Scripted::Fail))).build();
        chain.generate(request(4)).await.unwrap();
    }
    let chain = s.chain(Some(Fake::new(Scripted::Answer(good(4))))).build();
    chain.generate(request(4)).await.unwrap();
    let incidents = s.journal.incidents(..);
    assert_eq!(incidents.len(), 1);
    assert!(!incidents[0].is_open());
    assert!(
        incidents[0]
            .notes
            .iter()
            .any(|(_, n)| n.contains("restarted")),
        "{:?}",
        incidents[0].notes
    );
}

/// A failing cache write's incident, left open by a stop, is continued
/// (not duplicated) and closed by the first write that works.
#[tokio::test]
async fn an_open_disk_incident_survives_a_restart_and_is_closed_by_a_good_write() {
    let s = Setup::new();
    {
        let chain = s.chain(Some(Fake::new(Scripted::Answer(good(4))))).build();
        std::fs::remove_dir_all(s.cache_dir()).unwrap();
        chain.generate(request(4)).await.unwrap();
    }
    let open = s.journal.open_incidents();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].kind, IncidentKind::DiskError);
    let chain = s.chain(Some(Fake::new(Scripted::Answer(good(4))))).build();
    chain.generate(request(4)).await.unwrap();
    let incidents = s.journal.incidents(..);
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert!(!incidents[0].is_open());
}

/// Several open incidents of the chain's component (an older crash): the
/// newest is continued, the others closed as superseded.
#[tokio::test]
async fn older_open_incidents_of_the_component_are_closed_at_restart() {
    let s = Setup::new();
    let older = s
        .journal
        .open_incident("prediction", IncidentKind::ModelCrash, t0(), "older")
        .unwrap();
    let newer = s
        .journal
        .open_incident("prediction", IncidentKind::ModelTimeout, t0(), "newer")
        .unwrap();
    let chain = s.chain(Some(Fake::new(Scripted::Answer(good(4))))).build();
    let closed = s.journal.incident(older).unwrap();
    assert!(!closed.is_open());
    assert!(
        closed
            .resolution
            .as_deref()
            .is_some_and(|r| r.contains("superseded")),
        "{closed:?}"
    );
    assert!(s.journal.incident(newer).unwrap().is_open());
    chain.generate(request(4)).await.unwrap();
    assert!(s.journal.open_incidents().is_empty());
}

/// Flip one payload byte of a generation file (its checksum no longer matches).
fn corrupt(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x55;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn a_corrupt_cache_is_quarantined_journaled_and_the_previous_generation_served() {
    let s = Setup::new();
    let fake = Fake::new(Scripted::Answer(good(4)));
    {
        let chain = s.chain(Some(fake.clone())).build();
        chain.generate(request(4)).await.unwrap();
        fake.set(Scripted::Answer(
            Forecast::new("newer", vec![7.0; 4], vec![]).unwrap(),
        ));
        s.clock.advance(Duration::from_secs(60));
        let r = chain.generate(request(4)).await.unwrap();
        assert_eq!(r.predictions.forecast.model(), "newer");
        let generations = chain.cache().unwrap().generations().unwrap();
        assert_eq!(generations.len(), 2);
        corrupt(&generations[0].path);
    }
    // Restart: the newest generation is quarantined, the older one served.
    let (cache, report) = PredictionChain::open_cache(s.cache_dir()).unwrap();
    assert_eq!(report.quarantined.len(), 1);
    let chain = PredictionChain::builder()
        .primary(Fake::new(Scripted::Fail))
        .fallback(Arc::new(BrokenModel))
        .cache(cache)
        .cache_report(report)
        .journal(s.journal.clone())
        .clock(ManualClock::new(), t0() + chrono::Duration::hours(1))
        .build();
    let latest = chain.latest().unwrap();
    assert_eq!(
        (latest.tier, latest.predictions.forecast.model()),
        (Tier::Cache, "gbm")
    );
    let corrupt_incidents: Vec<_> = s
        .journal
        .incidents(..)
        .into_iter()
        .filter(|i| i.kind == IncidentKind::CacheCorrupt)
        .collect();
    assert_eq!(corrupt_incidents.len(), 1);
    let i = &corrupt_incidents[0];
    assert_eq!(i.component, "prediction-cache");
    assert!(!i.is_open(), "handled at open");
    assert!(i.details.contains("serving generation 1"), "{}", i.details);
    // Both predictors failing: tier 3 serves the intact generation.
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(
        (r.tier, r.predictions.forecast.model()),
        (Tier::Cache, "gbm")
    );
    assert_eq!(r.age(chain.now()), Duration::from_secs(3600));

    // Every generation corrupt: nothing served, a clean error.
    for g in chain.cache().unwrap().generations().unwrap() {
        corrupt(&g.path);
    }
    drop(chain);
    let (cache, report) = PredictionChain::open_cache(s.cache_dir()).unwrap();
    let chain = PredictionChain::builder()
        .primary(Fake::new(Scripted::Fail))
        .fallback(Arc::new(BrokenModel))
        .cache(cache)
        .cache_report(report)
        .journal(s.journal.clone())
        .build();
    assert!(chain.latest().is_none());
    assert!(matches!(
        chain.generate(request(4)).await,
        Err(ChainError::NoPredictions { .. })
    ));
    let last_corrupt = s.journal.incidents(..).into_iter().find(|i| {
        i.kind == IncidentKind::CacheCorrupt && i.details.contains("no valid generation left")
    });
    assert!(last_corrupt.is_some());
}

/// Checksummed and decodable, but the cache tier cannot be an origin.
fn invalid_predictions() -> Predictions {
    Predictions {
        start: t0(),
        step_s: 3600,
        forecast: good(4),
        made_at: t0(),
        tier: Tier::Cache,
        intervals_from: None,
        inputs: crate::Provenance::Live,
    }
}

#[tokio::test]
async fn invalid_cached_predictions_are_not_served() {
    let s = Setup::new();
    // A cache opened without the check (as a user may): the chain checks too.
    let (cache, _) =
        Cache::<Predictions>::open(s.cache_dir(), "predictions", Default::default()).unwrap();
    cache.put(invalid_predictions(), t0()).unwrap();
    let chain = PredictionChain::builder()
        .primary(Fake::new(Scripted::Fail))
        .fallback(Arc::new(BrokenModel))
        .cache(cache)
        .journal(s.journal.clone())
        .clock(s.clock.clone(), t0())
        .build();
    assert!(chain.latest().is_none());
    assert!(chain.generate(request(4)).await.is_err());
    assert!(
        s.journal
            .incidents(..)
            .iter()
            .any(|i| i.kind == IncidentKind::CacheCorrupt && i.details.contains("invalid"))
    );
}

/// An invalid newest generation no longer hides a valid older one: it is
/// quarantined at open and the older one served (tier 3 included).
#[tokio::test]
async fn an_invalid_newest_generation_is_quarantined_and_the_previous_served() {
    let s = Setup::new();
    let chain = s.chain(Some(Fake::new(Scripted::Answer(good(4))))).build();
    chain.generate(request(4)).await.unwrap();
    let valid = chain.cache().unwrap().get().unwrap().generation;
    chain
        .cache()
        .unwrap()
        .put(invalid_predictions(), t0())
        .unwrap();
    drop(chain);

    let chain = s
        .chain(Some(Fake::new(Scripted::Fail)))
        .fallback(Arc::new(BrokenModel))
        .build();
    let latest = chain.latest().expect("the older generation");
    assert_eq!(latest.tier, Tier::Cache);
    assert_eq!(chain.cache().unwrap().get().unwrap().generation, valid);
    let r = chain.generate(request(4)).await.unwrap();
    assert_eq!(r.tier, Tier::Cache);
    let generations: Vec<u64> = chain
        .cache()
        .unwrap()
        .generations()
        .unwrap()
        .iter()
        .map(|g| g.seq)
        .collect();
    assert_eq!(generations, [valid], "the invalid one is set aside");
    let quarantined = s
        .journal
        .incidents(..)
        .into_iter()
        .find(|i| i.kind == IncidentKind::CacheCorrupt && i.details.contains("Invalid"));
    assert!(
        quarantined.is_some_and(|i| i.details.contains(&format!("serving generation {valid}"))),
        "{:?}",
        s.journal.incidents(..)
    );
}

#[tokio::test]
async fn a_failing_cache_write_is_journaled_and_the_answer_still_served() {
    let s = Setup::new();
    let chain = s.chain(Some(Fake::new(Scripted::Answer(good(4))))).build();
    std::fs::remove_dir_all(s.cache_dir()).unwrap();
    for _ in 0..2 {
        let r = chain.generate(request(4)).await.unwrap();
        assert_eq!(r.tier, Tier::Primary);
    }
    let open = s.journal.open_incidents();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(
        (open[0].kind, open[0].component.as_str()),
        (IncidentKind::DiskError, "prediction-cache")
    );
    std::fs::create_dir(s.cache_dir()).unwrap();
    chain.generate(request(4)).await.unwrap();
    assert!(s.journal.open_incidents().is_empty());
    let closed = &s.journal.incidents(..)[0];
    assert!(closed.notes.is_empty());
    assert_eq!(chain.cache().unwrap().generations().unwrap().len(), 1);
}

#[tokio::test]
async fn a_caller_leaving_does_not_cancel_the_run_for_the_others() {
    let s = Setup::new();
    let out = good_output(4, "gbm");
    let go = s.dir.join("go");
    let primary = sh_script(
        &s.dir,
        "wait.sh",
        &format!(
            "cat > /dev/null\necho run >> \"$DIR/runs\"\nwhile [ ! -e \"{}\" ]; do sleep 0.01; done\nprintf '%s' '{out}'",
            go.display()
        ),
    );
    let chain = s.chain(Some(primary)).build();
    let spawn = || {
        let chain = chain.clone();
        tokio::spawn(async move { chain.generate(request(4)).await })
    };
    let (leaving, staying) = (spawn(), spawn());
    while chain.waiters() < 2 {
        tokio::task::yield_now().await;
    }
    leaving.abort();
    assert!(leaving.await.unwrap_err().is_cancelled());
    assert_eq!(chain.waiters(), 1);
    assert!(chain.is_running());
    std::fs::write(&go, "").unwrap();
    let r = staying.await.unwrap().unwrap();
    assert_eq!(r.tier, Tier::Primary);
    assert_eq!(
        std::fs::read_to_string(s.dir.join("runs")).unwrap(),
        "run\n"
    );
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_chain_timeout_kills_a_command_with_a_longer_timeout_of_its_own() {
    let s = Setup::new();
    let hang = super::script(&s.dir, "hang.sh", "echo $$ > \"$DIR/pid\"\nsleep 3600");
    let command = CommandPredictor::builder("/bin/sh")
        .arg(hang)
        .env("DIR", &s.dir)
        .timeout(Duration::from_secs(3600))
        .build();
    let chain = PredictionChain::builder()
        .primary(Arc::new(command))
        .fallback(Arc::new(SeasonalNaive::default()))
        .timeout(Duration::from_secs(30))
        .clock(s.clock.clone(), t0())
        .build();
    let run = tokio::spawn({
        let chain = chain.clone();
        async move { chain.generate(request(4)).await }
    });
    // The command runs: now let the chain's 30 s pass.
    let pid = super::read_pid(&s.dir.join("pid")).await;
    s.clock.advance(Duration::from_secs(30));
    let r = run.await.unwrap().unwrap();
    assert_eq!(r.tier, Tier::Fallback);
    assert_eq!(r.failures[0].kind, IncidentKind::ModelTimeout);
    assert!(
        r.failures[0].message.contains("30 s"),
        "{}",
        r.failures[0].message
    );
    assert!(
        super::wait_dead(pid).await,
        "the script {pid} is still running"
    );
}

/// A Rust model whose fit blocks until let through (one fit per message),
/// counting the fits that started.
#[derive(Debug)]
struct BlockingModel {
    gate: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
    started: AtomicUsize,
}

impl DynFit for BlockingModel {
    fn name(&self) -> String {
        "blocking".into()
    }
    fn fit_dyn(&self, h: &History<'_>) -> Result<Box<dyn Predict>, ForecastError> {
        self.started.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().unwrap();
        gate.recv().map_err(|_| ForecastError::FitFailed {
            model: "blocking".into(),
            reason: "gate closed".into(),
        })?;
        SeasonalNaive::default().fit_dyn(h)
    }
}

#[tokio::test]
async fn a_rust_fit_hanging_past_its_timeout_holds_one_thread_and_later_calls_are_busy() {
    let s = Setup::new();
    let (open, gate) = std::sync::mpsc::channel();
    let model = Arc::new(BlockingModel {
        gate: std::sync::Mutex::new(gate),
        started: AtomicUsize::new(0),
    });
    let primary = ModelPredictor::new(model.clone());
    let limit = primary.limit().clone();
    let chain = s
        .chain(Some(Arc::new(primary)))
        .timeout(Duration::from_secs(5))
        .build();
    // First run: the fit blocks; past its timeout, the fallback answers.
    let first = {
        let chain = chain.clone();
        tokio::spawn(async move { chain.generate(request(4)).await })
    };
    while model.started.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    s.clock.advance(Duration::from_secs(5));
    let r = first.await.unwrap().unwrap();
    assert_eq!(
        (r.tier, r.failures[0].kind),
        (Tier::Fallback, IncidentKind::ModelTimeout)
    );
    assert_eq!(limit.running(), 1, "the fit still runs on its thread");

    // Second run: the primary is not started again.
    let r = chain.generate(request(6)).await.unwrap();
    assert_eq!(r.tier, Tier::Fallback);
    assert_eq!(r.failures[0].kind, IncidentKind::ModelTimeout);
    assert!(
        r.failures[0].message.contains("still running"),
        "{}",
        r.failures[0].message
    );
    assert_eq!(model.started.load(Ordering::SeqCst), 1, "no second thread");

    // The hung fit ends: the next run's primary answers.
    open.send(()).unwrap();
    while limit.running() > 0 {
        tokio::task::yield_now().await;
    }
    open.send(()).unwrap();
    let r = chain.generate(request(8)).await.unwrap();
    assert_eq!(r.tier, Tier::Primary);
    assert_eq!(model.started.load(Ordering::SeqCst), 2);
}
