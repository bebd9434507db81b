//! The failover data service against a real HTTP upstream on loopback that
//! misbehaves for real: it hangs, answers 503, closes mid-body, sends garbage.
//!
//! The breaker's timeout and waits run on a manual clock, so the test moves
//! time instead of sleeping; the HTTP exchanges are real.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use spe_core::{
    BreakerConfig, BreakerState, FailoverConfig, FailoverService, IncidentKind, Journal,
    ManualClock, Mode, OpenMeteo, OpenMeteoConfig, Provenance, RefreshOutcome, Site,
};
use spe_tests::{Behavior, FakeOpenMeteo, fixture};

struct Rig {
    fake: FakeOpenMeteo,
    service: FailoverService,
    clock: ManualClock,
    journal: Journal,
    _dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    let now = Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap();
    let fake = FakeOpenMeteo::start().await;
    fake.set_now(Some(now));
    // The HTTP client's own timeout is long: the breaker's (manual) one rules.
    let client = OpenMeteo::new(OpenMeteoConfig {
        base_url: fake.base_url(),
        timeout: Duration::from_secs(120),
        ..OpenMeteoConfig::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path().join("incidents.journal")).unwrap();
    let clock = ManualClock::new();
    let service = FailoverService::builder(Site::paris(), Arc::new(client))
        .config(FailoverConfig {
            breaker: BreakerConfig {
                jitter: 0.0,
                ..BreakerConfig::default()
            },
            ..FailoverConfig::default()
        })
        .clock(clock.clone(), now)
        .journal(journal.clone())
        .build()
        .unwrap();
    Rig {
        fake,
        service,
        clock,
        journal,
        _dir: dir,
    }
}

/// Heal the upstream and let the breaker's probe bring `nominal` back.
async fn heal(r: &Rig) {
    r.fake.set_behavior(Behavior::Healthy);
    if let Some(wait) = r.service.breaker().retry_after() {
        r.clock.advance(wait);
    }
    let outcome = r.service.refresh().await;
    assert!(matches!(outcome, RefreshOutcome::Live), "{outcome:?}");
    let snap = r.service.snapshot();
    assert_eq!(snap.mode, Mode::Nominal);
    assert_eq!(snap.weather.provenance(), Provenance::Live);
    assert_eq!(r.service.breaker().state(), BreakerState::Closed);
}

fn assert_estimating(r: &Rig, kind: IncidentKind) {
    let snap = r.service.snapshot();
    assert_eq!(snap.mode, Mode::Estimation);
    assert_eq!(snap.weather.provenance(), Provenance::Synthetic);
    assert_eq!(snap.energy.provenance(), Provenance::Synthetic);
    assert!(snap.notice().is_some());
    let open = r.journal.open_incidents();
    assert_eq!(open.len(), 1, "one incident per outage: {open:?}");
    assert_eq!(open[0].kind, kind);
    assert_eq!(snap.incident, Some(open[0].id));
}

#[tokio::test]
async fn failover_survives_every_misbehaviour_and_recovers_by_itself() {
    let r = rig().await;
    heal(&r).await;
    let mut modes = r.service.mode_changes();

    // 1. Hang: the refresh waits on the breaker's timeout; readers never wait.
    r.fake.set_behavior(Behavior::Hang);
    let refresh = tokio::spawn({
        let s = r.service.clone();
        async move { s.refresh().await }
    });
    while r.clock.sleepers() == 0 {
        tokio::task::yield_now().await;
    }
    let readers: Vec<_> = (0..50)
        .map(|_| {
            let s = r.service.clone();
            tokio::spawn(async move { s.snapshot() })
        })
        .collect();
    for reader in readers {
        let snap = reader.await.unwrap();
        assert_eq!(snap.mode, Mode::Nominal, "served from the last good data");
        assert_eq!(snap.weather.provenance(), Provenance::Live);
    }
    assert!(
        !refresh.is_finished(),
        "the refresh is still waiting on the upstream"
    );
    r.clock.advance(Duration::from_secs(5));
    assert!(matches!(
        refresh.await.unwrap(),
        RefreshOutcome::TimedOut(_)
    ));
    assert_estimating(&r, IncidentKind::UpstreamTimeout);
    heal(&r).await;

    // 2. 503 with a JSON body; 3. a body cut in the middle; 4. garbage.
    let cases = [
        (
            Behavior::service_unavailable_json(),
            IncidentKind::Upstream5xx,
        ),
        (
            Behavior::CutBody {
                body: fixture("paris_72h_last_23_null.json"),
            },
            IncidentKind::BadPayload,
        ),
        (Behavior::Garbage, IncidentKind::BadPayload),
        (Behavior::Closed, IncidentKind::UpstreamUnreachable),
    ];
    for (behavior, kind) in cases {
        r.fake.set_behavior(behavior.clone());
        let outcome = r.service.refresh().await;
        assert!(
            matches!(outcome, RefreshOutcome::Failed(_)),
            "{behavior:?}: {outcome:?}"
        );
        assert_estimating(&r, kind);
        // Retrying while it still misbehaves keeps the same incident.
        r.clock.advance(r.service.next_delay(&outcome));
        r.service.refresh().await;
        assert_estimating(&r, kind);
        heal(&r).await;
    }

    // Every outage: one incident, opened and closed exactly once, with its
    // two mode changes; one mode event each way per outage.
    let incidents = r.journal.incidents(..);
    assert_eq!(incidents.len(), 5, "{incidents:?}");
    for i in &incidents {
        assert!(!i.is_open(), "{i:?}");
        let changes: Vec<_> = i.mode_changes.iter().map(|c| (c.from, c.to)).collect();
        assert_eq!(
            changes,
            [
                (Mode::Nominal, Mode::Estimation),
                (Mode::Estimation, Mode::Nominal)
            ]
        );
    }
    let mut events = Vec::new();
    while let Ok(e) = modes.try_recv() {
        events.push((e.from, e.to));
    }
    assert_eq!(events.len(), 10);
    assert!(events.chunks(2).all(|p| p
        == [
            (Mode::Nominal, Mode::Estimation),
            (Mode::Estimation, Mode::Nominal)
        ]));
    assert!(r.journal.open_incidents().is_empty());
}
