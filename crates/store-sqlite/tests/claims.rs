//! Store-level semantics of the SQLite store, on real files.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use oncepay_domain::{
    Amount, Currency, IdempotencyKey, MerchantId, Money, Payment, PaymentId, PaymentStatus, PspKey,
    RequestFingerprint, StatusChange,
};
use oncepay_engine::{
    Claim, ClaimOutcome, DurableStore, Lease, SettleOutcome, Settlement, UpdateOutcome,
};
use oncepay_store_sqlite::SqliteStore;

const NOW: i64 = 1_700_000_000_000;

fn merchant() -> MerchantId {
    MerchantId::default_merchant()
}

fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text.as_bytes()).unwrap()
}

fn fingerprint(amount: i64) -> RequestFingerprint {
    RequestFingerprint::of(
        "POST",
        "/v1/payments",
        &serde_json::json!({ "amount": amount }),
    )
}

fn payment(now: i64) -> Payment {
    Payment {
        id: PaymentId::generate(),
        merchant: merchant(),
        money: Money {
            amount: Amount::parse(1000).unwrap(),
            currency: Currency::parse("EUR").unwrap(),
        },
        status: PaymentStatus::Pending,
        payment_method: "pm_card_ok".to_owned(),
        description: None,
        metadata: BTreeMap::new(),
        psp_key: PspKey::generate(),
        created_at_millis: now,
        updated_at_millis: now,
        history: vec![StatusChange {
            status: PaymentStatus::Pending,
            at_millis: now,
            cause: "created".to_owned(),
        }],
    }
}

fn claim(text: &str, amount: i64, owner: &str, now: i64) -> Claim {
    Claim {
        merchant: merchant(),
        key: key(text),
        fingerprint: Some(fingerprint(amount)),
        lease: Lease {
            owner: owner.to_owned(),
            until_millis: now + 1000,
        },
        new_payment: Some(payment(now)),
        now_millis: now,
        expires_at_millis: now + 60_000,
    }
}

fn settlement(text: &str, owner: &str, id: &PaymentId, to: Option<PaymentStatus>) -> Settlement {
    Settlement {
        merchant: merchant(),
        key: key(text),
        lease_owner: owner.to_owned(),
        payment_id: id.clone(),
        change: to.map(|status| (status, "psp".to_owned())),
        now_millis: NOW + 10,
    }
}

fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(&dir.path().join("oncepay.db")).unwrap()
}

#[tokio::test]
async fn a_new_key_records_a_pending_payment_and_a_duplicate_sees_it_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ClaimOutcome::Created(created) = store.claim(claim("k1", 1, "a", NOW)).await.unwrap()
    else {
        panic!("first claim must create");
    };
    assert_eq!(created.status, PaymentStatus::Pending);
    let duplicate = store.claim(claim("k1", 1, "b", NOW + 5)).await.unwrap();
    assert!(
        matches!(duplicate, ClaimOutcome::InFlight { lease_until_millis } if lease_until_millis == NOW + 1000)
    );
    let other_body = store.claim(claim("k1", 2, "b", NOW + 5)).await.unwrap();
    assert!(matches!(other_body, ClaimOutcome::Mismatch));
}

#[tokio::test]
async fn a_settled_key_answers_from_the_record_even_after_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ClaimOutcome::Created(created) = store.claim(claim("k2", 1, "a", NOW)).await.unwrap()
    else {
        panic!("first claim must create");
    };
    let settled = store
        .settle(settlement(
            "k2",
            "a",
            &created.id,
            Some(PaymentStatus::Succeeded),
        ))
        .await
        .unwrap();
    assert!(
        matches!(settled, SettleOutcome::Settled(ref p) if p.status == PaymentStatus::Succeeded)
    );
    drop(store);

    let reopened = open(&dir);
    let ClaimOutcome::Finished(found) =
        reopened.claim(claim("k2", 1, "c", NOW + 20)).await.unwrap()
    else {
        panic!("a settled key must be finished");
    };
    assert_eq!(found.id, created.id);
    assert_eq!(found.history.len(), 2);
}

#[tokio::test]
async fn a_lapsed_lease_is_taken_over_and_the_old_holder_cannot_settle() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ClaimOutcome::Created(created) = store.claim(claim("k3", 1, "slow", NOW)).await.unwrap()
    else {
        panic!("first claim must create");
    };
    let later = NOW + 1001;
    let resumed = store.claim(claim("k3", 1, "fast", later)).await.unwrap();
    assert!(matches!(
        resumed,
        ClaimOutcome::Resumed {
            took_over: true,
            ..
        }
    ));

    let late = store
        .settle(settlement(
            "k3",
            "slow",
            &created.id,
            Some(PaymentStatus::Failed),
        ))
        .await
        .unwrap();
    assert!(matches!(late, SettleOutcome::LeaseLost(ref p) if p.status == PaymentStatus::Pending));
    let current = store
        .settle(settlement(
            "k3",
            "fast",
            &created.id,
            Some(PaymentStatus::Succeeded),
        ))
        .await
        .unwrap();
    assert!(
        matches!(current, SettleOutcome::Settled(ref p) if p.status == PaymentStatus::Succeeded)
    );
}

#[tokio::test]
async fn concurrent_claims_on_one_key_create_exactly_one_payment() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(&dir));
    let attempts = (0..100).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .claim(claim("storm", 1, &format!("o{i}"), NOW))
                .await
                .unwrap()
        })
    });
    let mut created = 0;
    for attempt in attempts {
        if matches!(attempt.await.unwrap(), ClaimOutcome::Created(_)) {
            created += 1;
        }
    }
    assert_eq!(created, 1);
    let page = store.list(&merchant(), None, 100).await.unwrap();
    assert_eq!(page.payments.len(), 1);
}

#[tokio::test]
async fn a_repeated_status_event_changes_nothing_and_a_contrary_one_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ClaimOutcome::Created(created) = store.claim(claim("k4", 1, "a", NOW)).await.unwrap()
    else {
        panic!("first claim must create");
    };
    let first = store
        .apply_status_update(&created.id, "evt_1", PaymentStatus::Succeeded, NOW + 1)
        .await
        .unwrap();
    assert!(matches!(first, UpdateOutcome::Applied(_)));
    let again = store
        .apply_status_update(&created.id, "evt_1", PaymentStatus::Succeeded, NOW + 2)
        .await
        .unwrap();
    assert!(
        matches!(again, UpdateOutcome::Repeated { ref payment, .. } if payment.history.len() == 2)
    );
    let contrary = store
        .apply_status_update(&created.id, "evt_2", PaymentStatus::Failed, NOW + 3)
        .await
        .unwrap();
    assert!(matches!(contrary, UpdateOutcome::Conflict(_)));
}

#[tokio::test]
async fn the_reaper_deletes_expired_records_of_final_payments_and_keeps_the_payments() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    let ClaimOutcome::Created(done) = store.claim(claim("final", 1, "a", NOW)).await.unwrap()
    else {
        panic!("first claim must create");
    };
    store
        .settle(settlement(
            "final",
            "a",
            &done.id,
            Some(PaymentStatus::Succeeded),
        ))
        .await
        .unwrap();
    let ClaimOutcome::Created(open_one) = store.claim(claim("open", 1, "b", NOW)).await.unwrap()
    else {
        panic!("first claim must create");
    };
    store
        .settle(settlement("open", "b", &open_one.id, None))
        .await
        .unwrap();

    let reaped = store.reap(NOW + 120_000, 100).await.unwrap();
    assert_eq!(reaped, 1, "only the final payment's record goes");
    assert!(
        store
            .payment(&merchant(), &done.id)
            .await
            .unwrap()
            .is_some()
    );
    let again = store
        .claim(claim("open", 1, "c", NOW + 120_000))
        .await
        .unwrap();
    assert!(matches!(
        again,
        ClaimOutcome::Resumed {
            took_over: false,
            ..
        }
    ));
}
