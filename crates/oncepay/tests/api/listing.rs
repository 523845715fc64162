//! `GET /v1/payments`: newest first, cursor pages that stay stable while
//! payments are added, and a bounded `limit`.

use serde_json::Value;

use crate::helpers::{TestApp, fresh_key, payment_body};

/// Creates `count` payments one after the other; returns their ids, oldest
/// first.
async fn pay_many(app: &TestApp, count: usize) -> Vec<String> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let answer = app
            .post_payment(&fresh_key(), &payment_body("pm_card_ok"))
            .await;
        answer.assert_status(201);
        ids.push(answer.payment_id());
    }
    ids
}

/// One page: its ids, and the cursor of the next page if there is one.
async fn page(app: &TestApp, query: &str) -> (Vec<String>, Option<String>) {
    let page = app.list_payments(query).await.assert_status(200).json();
    let ids = page["data"]
        .as_array()
        .expect("a data array")
        .iter()
        .map(|payment| payment["id"].as_str().expect("an id").to_owned())
        .collect();
    let has_more = page["has_more"].as_bool().expect("has_more");
    let cursor = page["next_cursor"].as_str().map(str::to_owned);
    assert_eq!(
        has_more,
        cursor.is_some(),
        "has_more agrees with next_cursor: {page}"
    );
    (ids, cursor)
}

/// Percent-encodes a cursor for the query string; cursors are opaque.
fn encode(cursor: &str) -> String {
    cursor
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn newest_first(ids: &[String]) -> Vec<String> {
    ids.iter().rev().cloned().collect()
}

#[tokio::test]
async fn payments_of_every_outcome_are_listed_newest_first() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for method in [
        "pm_card_ok",
        "pm_card_declined",
        "pm_card_pending",
        "pm_card_ok",
    ] {
        let answer = app.post_payment(&fresh_key(), &payment_body(method)).await;
        ids.push(answer.payment_id());
    }

    let listed = app.list_payments("").await.assert_status(200).json();

    let data = listed["data"].as_array().expect("a data array");
    let listed_ids: Vec<&str> = data.iter().filter_map(|p| p["id"].as_str()).collect();
    assert_eq!(listed_ids, newest_first(&ids));
    let statuses: Vec<&Value> = data.iter().map(|p| &p["status"]).collect();
    assert_eq!(statuses, ["succeeded", "pending", "failed", "succeeded"]);
    assert_eq!(listed["has_more"], false);
    assert_eq!(listed["next_cursor"], Value::Null);
}

#[tokio::test]
async fn pages_follow_each_other_without_duplicates_or_gaps_while_payments_are_added() {
    let app = TestApp::spawn().await;
    let original = pay_many(&app, 7).await;

    let (first, cursor) = page(&app, "limit=3").await;
    let added_early = pay_many(&app, 2).await;
    let cursor = cursor.expect("a second page");
    let (second, cursor) = page(&app, &format!("limit=3&cursor={}", encode(&cursor))).await;
    let added_late = pay_many(&app, 1).await;
    let cursor = cursor.expect("a third page");
    let (third, cursor) = page(&app, &format!("limit=3&cursor={}", encode(&cursor))).await;
    let (fresh, _) = page(&app, "limit=3").await;

    let walked: Vec<String> = [first, second, third].concat();
    assert_eq!(
        walked,
        newest_first(&original),
        "every payment exactly once"
    );
    assert_eq!(cursor, None, "the walk ends after the oldest payment");
    let newest = [added_early, added_late].concat();
    assert_eq!(fresh, newest_first(&newest));
}

#[tokio::test]
async fn limit_defaults_to_20_and_accepts_1_to_100() {
    let app = TestApp::spawn().await;
    let ids = pay_many(&app, 21).await;

    let (default_page, default_cursor) = page(&app, "").await;
    let (one, _) = page(&app, "limit=1").await;
    let (all, all_cursor) = page(&app, "limit=100").await;

    assert_eq!(default_page, newest_first(&ids)[..20]);
    assert!(default_cursor.is_some());
    assert_eq!(one, newest_first(&ids)[..1]);
    assert_eq!(all, newest_first(&ids));
    assert_eq!(all_cursor, None);
}

#[tokio::test]
async fn a_limit_outside_1_to_100_is_refused_with_400() {
    let app = TestApp::spawn().await;

    for limit in ["0", "101", "-1", "abc", "2.5"] {
        let answer = app.list_payments(&format!("limit={limit}")).await;

        assert_eq!(answer.status, 400, "limit={limit}: {}", answer.text());
        answer.assert_problem(400, "invalid-parameter");
    }
}

#[tokio::test]
async fn a_cursor_oncepay_did_not_issue_is_refused_with_400() {
    let app = TestApp::spawn().await;
    pay_many(&app, 2).await;

    for cursor in ["garbage", "%00%01", "eyJ0b3RhbGx5Ijoibm90In0"] {
        let answer = app.list_payments(&format!("cursor={cursor}")).await;

        assert_eq!(answer.status, 400, "cursor={cursor}: {}", answer.text());
        answer.assert_problem(400, "invalid-cursor");
    }
}
