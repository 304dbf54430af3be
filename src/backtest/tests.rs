use super::*;
use crate::dataset::Label;
use crate::event::{ClientInfo, DeviceType, LoginAttempt, Outcome};
use crate::geoip::GeoInfo;

const T0: i64 = 1_748_822_400_000;

fn login(user: &str, minute: i64, device: &str, outcome: Outcome, label: Label) -> LabelledLogin {
    LabelledLogin {
        attempt: LoginAttempt {
            attempt_id: format!("{user}-{minute}"),
            user_id: user.to_owned(),
            timestamp_ms: T0 + minute * 60_000,
            ip: "192.0.2.10".parse().unwrap(),
            device_id: Some(device.to_owned()),
            user_agent: None,
            client: ClientInfo {
                browser: Some("Chrome 120.0.6099".into()),
                os: Some("Windows 10".into()),
                device_type: DeviceType::Desktop,
            },
            geo: GeoInfo {
                country: Some("NO".into()),
                city: Some("Oslo".into()),
                asn: Some(64500),
                ..GeoInfo::default()
            },
            signals: Vec::new(),
        },
        outcome,
        label,
    }
}

fn legit() -> Label {
    Label::default()
}

fn config() -> Config {
    Config::embedded().unwrap()
}

fn has_reason(assessment: &Assessment, code: &str) -> bool {
    assessment.reasons.iter().any(|r| r.code == code)
}

#[test]
fn a_login_is_scored_before_its_own_outcome_teaches_the_device() {
    let mut backtest = Backtest::new(&config(), Ruleset::embedded().unwrap(), None);
    for day in 0..6 {
        backtest.push(login("u1", day * 1440, "laptop", Outcome::Success, legit()));
    }
    let first = backtest.push(login("u1", 9000, "phone", Outcome::Success, legit()))[0].clone();
    assert!(has_reason(&first, "new_device"), "{first:?}");
    let second = backtest.push(login("u1", 9100, "phone", Outcome::Success, legit()))[0].clone();
    assert!(!has_reason(&second, "new_device"), "{second:?}");
}

#[test]
fn labels_are_counted_per_kind_and_history() {
    let mut backtest = Backtest::new(&config(), Ruleset::embedded().unwrap(), None);
    backtest.push(login("u1", 0, "laptop", Outcome::Success, legit()));
    let attack = Label {
        attack: true,
        takeover: false,
        kind: Some("naive".into()),
    };
    backtest.push(login("u1", 10, "evil", Outcome::Failure, attack));
    let report = backtest.report();
    assert_eq!(report.logins, 2);
    assert!(report.labelled);
    let labels = report.rulesets[0].labels.as_ref().unwrap();
    assert_eq!(labels.attacks_challenged_or_denied.logins, 1);
    assert_eq!(labels.legit_challenged_or_denied.logins, 1);
    assert_eq!(labels.legit_challenged_or_denied_by_history.none.logins, 1);
    assert_eq!(labels.users_with_legit_logins, 1);
    let kinds: Vec<(Option<&str>, bool)> = labels
        .kinds
        .iter()
        .map(|k| (k.kind.as_deref(), k.attack))
        .collect();
    assert_eq!(kinds, [(Some("naive"), true), (None, false)]);
    // The table renders every section.
    let text = report.to_string();
    assert!(text.contains("naive (attack)"), "{text}");
}

#[test]
fn without_labels_the_report_has_decisions_only() {
    let mut backtest = Backtest::new(&config(), Ruleset::embedded().unwrap(), None);
    backtest.push(login("u1", 0, "laptop", Outcome::Success, legit()));
    let report = backtest.report();
    assert!(!report.labelled);
    assert!(report.rulesets[0].labels.is_none());
    assert_eq!(report.rulesets[0].decisions.allow.hits, 1);
}

#[test]
fn a_candidate_is_scored_on_the_same_state_and_compared() {
    let live = Ruleset::embedded().unwrap();
    let mut candidate = live.clone();
    candidate.name = "strict".into();
    candidate.decision.challenge_at = 0.0;
    let mut backtest = Backtest::new(&config(), live, Some(candidate));
    for minute in 0..30 {
        let assessments = backtest.push(login("u1", minute, "laptop", Outcome::Success, legit()));
        assert_eq!(assessments.len(), 2);
        assert_eq!(assessments[0].history, assessments[1].history);
        assert_eq!(assessments[0].risk, assessments[1].risk);
    }
    let report = backtest.report();
    let comparison = report.comparison.as_ref().unwrap();
    assert_eq!(comparison.candidate, "strict@1");
    assert!(comparison.differing > 0);
    assert_eq!(comparison.by_kind[0].stricter, comparison.differing);
    assert!(comparison.examples.len() <= EXAMPLES_PER_KIND_MAX);
    assert_eq!(comparison.examples[0].verdicts.len(), 2);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["comparison"]["matrix"][0]["live"], "allow");
}

#[test]
fn out_of_order_logins_are_counted() {
    let mut backtest = Backtest::new(&config(), Ruleset::embedded().unwrap(), None);
    backtest.push(login("u1", 10, "laptop", Outcome::Success, legit()));
    backtest.push(login("u1", 5, "laptop", Outcome::Success, legit()));
    assert_eq!(backtest.report().out_of_order, 1);
    let mut logins = vec![
        login("u1", 10, "a", Outcome::Success, legit()),
        login("u1", 5, "b", Outcome::Success, legit()),
        login("u1", 10, "c", Outcome::Success, legit()),
    ];
    sort_by_event_time(&mut logins);
    let devices: Vec<_> = logins
        .iter()
        .map(|l| l.attempt.device_id.as_deref().unwrap())
        .collect();
    assert_eq!(devices, ["b", "a", "c"]);
}
