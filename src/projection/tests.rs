use super::*;
use crate::config::Config;
use crate::event::test_support::sample_attempt;
use crate::event::{Assessment, Decision, HistoryState};
use crate::projection::keys::{CountryCode, DeviceKey};

fn projection(attempts_max: usize) -> Projection {
    Projection::new(Config::embedded().unwrap().projection, attempts_max)
}

fn assessment() -> Assessment {
    Assessment {
        decision: Decision::Allow,
        risk: 0.1,
        reasons: vec![],
        history: HistoryState::None,
        ruleset: "t".into(),
    }
}

fn attempt(user: &str, id: &str, device: &str, country: &str) -> LoginAttempt {
    let mut a = sample_attempt(user);
    a.attempt_id = id.to_owned();
    a.device_id = Some(device.to_owned());
    a.geo.country = Some(country.to_owned());
    a
}

fn scored(user: &str, id: &str, device: &str, country: &str) -> Event {
    Event::Attempt {
        attempt: attempt(user, id, device, country),
        assessment: assessment(),
    }
}

fn outcome(user: &str, id: &str, outcome: Outcome) -> Event {
    Event::Outcome(OutcomeReport {
        attempt_id: id.into(),
        user_id: user.into(),
        outcome,
        timestamp_ms: 0,
    })
}

fn knows_device(p: &Projection, user: &str, device: &str) -> bool {
    p.user(user)
        .is_some_and(|u| u.devices.contains(&DeviceKey::Id(device.into())))
}

#[test]
fn only_success_and_challenge_passed_teach_the_context() {
    let global = GlobalState::new();
    let mut p = projection(100);
    for (i, o) in Outcome::ALL.into_iter().enumerate() {
        let id = format!("a{i}");
        let device = format!("d-{}", o.as_str());
        p.apply(&scored("u", &id, &device, "SE"), &global);
        assert_eq!(p.apply(&outcome("u", &id, o), &global), Applied::Recorded);
        assert_eq!(knows_device(&p, "u", &device), o.teaches_context(), "{o:?}");
    }
    let user = p.user("u").unwrap();
    assert_eq!(user.successes, 2);
    assert_eq!(user.failures.len(), 2);
    assert!(user.countries.contains(&CountryCode::parse("SE").unwrap()));
    assert_eq!(global.model.entries(), 2);
}

#[test]
fn a_scored_attempt_alone_teaches_nothing() {
    let global = GlobalState::new();
    let mut p = projection(100);
    p.apply(&scored("u", "a1", "d1", "SE"), &global);
    assert!(p.user("u").is_none());
    assert!(p.attempt("a1").is_some());
}

#[test]
fn a_repeated_outcome_changes_nothing() {
    let global = GlobalState::new();
    let mut p = projection(100);
    p.apply(&scored("u", "a1", "d1", "SE"), &global);
    p.apply(&outcome("u", "a1", Outcome::Success), &global);
    let before = p.clone();
    assert_eq!(
        p.apply(&outcome("u", "a1", Outcome::Success), &global),
        Applied::Duplicate
    );
    assert_eq!(p, before);
    assert_eq!(global.model.entries(), 1);
}

#[test]
fn an_outcome_for_an_unknown_or_foreign_attempt_is_ignored() {
    let global = GlobalState::new();
    let mut p = projection(100);
    p.apply(&scored("u", "a1", "d1", "SE"), &global);
    assert_eq!(
        p.apply(&outcome("u", "nope", Outcome::Success), &global),
        Applied::UnknownAttempt
    );
    assert_eq!(
        p.apply(&outcome("other", "a1", Outcome::Success), &global),
        Applied::UnknownAttempt
    );
    assert!(p.user("other").is_none() && p.user("u").is_none());
}

#[test]
fn fraud_confirmed_marks_device_and_ip_hostile_and_erasure_unmarks() {
    let global = GlobalState::new();
    let mut p = projection(100);
    let event = scored("u", "a1", "d-evil", "US");
    let ip = match &event {
        Event::Attempt { attempt, .. } => attempt.ip,
        _ => unreachable!(),
    };
    p.apply(&event, &global);
    p.apply(&outcome("u", "a1", Outcome::FraudConfirmed), &global);
    assert!(p
        .user("u")
        .unwrap()
        .hostile_devices
        .contains(&DeviceKey::Id("d-evil".into())));
    assert!(global.is_hostile_ip(&ip));
    assert_eq!(
        p.apply(
            &Event::Erase {
                user_id: "u".into(),
                timestamp_ms: 0
            },
            &global
        ),
        Applied::Erased { existed: true }
    );
    assert!(!global.is_hostile_ip(&ip));
    assert!(p.user("u").is_none() && p.attempt("a1").is_none());
}

#[test]
fn erasure_removes_the_users_share_of_global_statistics() {
    let global = GlobalState::new();
    let mut p = projection(100);
    for (user, id) in [("u", "a1"), ("v", "b1"), ("u", "a2")] {
        p.apply(&scored(user, id, "d", "SE"), &global);
        p.apply(&outcome(user, id, Outcome::Success), &global);
    }
    assert_eq!((global.model.entries(), global.model.users()), (3, 2));
    p.apply(
        &Event::Erase {
            user_id: "u".into(),
            timestamp_ms: 0,
        },
        &global,
    );
    assert_eq!((global.model.entries(), global.model.users()), (1, 1));
}

#[test]
fn remembered_attempts_are_bounded_oldest_first() {
    let global = GlobalState::new();
    let mut p = projection(3);
    for i in 0..5 {
        p.apply(&scored("u", &format!("a{i}"), "d", "SE"), &global);
    }
    assert_eq!(p.attempts_len(), 3);
    assert!(p.attempt("a0").is_none() && p.attempt("a1").is_none() && p.attempt("a4").is_some());
    assert_eq!(
        p.apply(&outcome("u", "a0", Outcome::Success), &global),
        Applied::UnknownAttempt
    );
}

#[test]
fn an_ingested_login_teaches_like_a_score_and_outcome_and_is_idempotent() {
    let global_a = GlobalState::new();
    let mut a = projection(100);
    a.apply(&scored("u", "x", "d1", "NO"), &global_a);
    a.apply(&outcome("u", "x", Outcome::Success), &global_a);
    let global_b = GlobalState::new();
    let mut b = projection(100);
    let login = Event::Login {
        attempt: attempt("u", "x", "d1", "NO"),
        outcome: Outcome::Success,
    };
    assert_eq!(b.apply(&login, &global_b), Applied::Recorded);
    assert_eq!(b.apply(&login, &global_b), Applied::Duplicate);
    assert_eq!(a.user("u"), b.user("u"));
    assert_eq!(global_a.model.entries(), global_b.model.entries());
}

#[test]
fn per_user_sets_respect_their_caps() {
    let global = GlobalState::new();
    let mut p = projection(1000);
    let cap = Config::embedded().unwrap().projection.devices_per_user_max;
    for i in 0..cap + 10 {
        let id = format!("a{i}");
        let mut event = scored("u", &id, &format!("d{i}"), "SE");
        if let Event::Attempt { attempt, .. } = &mut event {
            attempt.timestamp_ms += i as i64;
        }
        p.apply(&event, &global);
        p.apply(&outcome("u", &id, Outcome::Success), &global);
    }
    let user = p.user("u").unwrap();
    assert_eq!(user.devices.len(), cap);
    assert!(
        !knows_device(&p, "u", "d0"),
        "the oldest device is forgotten first"
    );
    assert!(knows_device(&p, "u", &format!("d{}", cap + 9)));
}

#[test]
fn one_attempt_teaches_its_context_once() {
    let global = GlobalState::new();
    let mut p = projection(100);
    p.apply(&scored("u", "a1", "d1", "SE"), &global);
    assert_eq!(
        p.apply(&outcome("u", "a1", Outcome::Success), &global),
        Applied::Recorded
    );
    assert_eq!(
        p.apply(&outcome("u", "a1", Outcome::ChallengePassed), &global),
        Applied::Duplicate
    );
    assert_eq!(p.user("u").unwrap().successes, 1);
    assert_eq!(global.model.entries(), 1);
    // A fraud confirmed later is still applied.
    assert_eq!(
        p.apply(&outcome("u", "a1", Outcome::FraudConfirmed), &global),
        Applied::Recorded
    );
}
