//! The timers' unit tests.

use super::*;

#[test]
fn at_rounds_up_and_round_trips() {
    let t = DateTime::parse_from_rfc3339("2026-11-27T15:40:00.250Z")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(at_expression(t), "at(2026-11-27T15:40:01)");
    let whole = DateTime::parse_from_rfc3339("2026-11-27T15:40:00Z")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(at_expression(whole), "at(2026-11-27T15:40:00)");
    assert_eq!(parse_at(&at_expression(whole)), Some(whole));
    assert_eq!(parse_at("rate(5 minutes)"), None);
    let id = RequestId::new();
    assert!(schedule_name(&id).len() <= 64);
}
