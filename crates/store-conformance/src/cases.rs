//! The cases: store-level semantics of DESIGN.md, races included.

use std::sync::Arc;

use oncepay_domain::{Payment, PaymentId, PaymentStatus};
use oncepay_engine::{ClaimOutcome, DurableStore, SettleOutcome, UpdateOutcome};

use crate::StoreHarness;
use crate::fixtures::{LEASE_MS, NOW, claim, claim_for, key, merchant, settlement};

async fn create(store: &dyn DurableStore, text: &str, owner: &str) -> Payment {
    match store.claim(claim(text, 1, owner, NOW)).await.unwrap() {
        ClaimOutcome::Created(payment) => payment,
        other => panic!("a new key must be created, got {other:?}"),
    }
}

async fn settle(
    store: &dyn DurableStore,
    text: &str,
    owner: &str,
    claimed: &Payment,
    to: Option<PaymentStatus>,
) -> Payment {
    match store
        .settle(settlement(text, owner, claimed, to))
        .await
        .unwrap()
    {
        SettleOutcome::Settled(payment) => payment,
        SettleOutcome::LeaseLost(_) => panic!("the lease holder must be able to settle"),
    }
}

pub async fn a_new_key_records_a_pending_payment_and_a_duplicate_sees_it_in_flight(
    h: &dyn StoreHarness,
) {
    let store = h.open().await;
    let created = create(store.as_ref(), "k1", "a").await;
    assert_eq!(created.status, PaymentStatus::Pending);
    let found = store
        .payment(&merchant("default"), &created.id)
        .await
        .unwrap();
    assert_eq!(
        found.as_ref(),
        Some(&created),
        "the payment is recorded with the claim"
    );

    let duplicate = store.claim(claim("k1", 1, "b", NOW + 5)).await.unwrap();
    assert!(
        matches!(duplicate, ClaimOutcome::InFlight { lease_until_millis } if lease_until_millis == NOW + LEASE_MS)
    );
}

pub async fn the_same_key_with_another_fingerprint_is_a_mismatch(h: &dyn StoreHarness) {
    let store = h.open().await;
    let created = create(store.as_ref(), "k1", "a").await;
    assert!(matches!(
        store.claim(claim("k1", 2, "b", NOW + 5)).await.unwrap(),
        ClaimOutcome::Mismatch
    ));
    settle(
        store.as_ref(),
        "k1",
        "a",
        &created,
        Some(PaymentStatus::Succeeded),
    )
    .await;
    assert!(matches!(
        store.claim(claim("k1", 2, "c", NOW + 20)).await.unwrap(),
        ClaimOutcome::Mismatch
    ));
}

pub async fn a_settled_key_is_finished_even_after_reopening_the_store(h: &dyn StoreHarness) {
    let store = h.open().await;
    let created = create(store.as_ref(), "k2", "a").await;
    let settled = settle(
        store.as_ref(),
        "k2",
        "a",
        &created,
        Some(PaymentStatus::Succeeded),
    )
    .await;
    assert_eq!(settled.status, PaymentStatus::Succeeded);
    drop(store);

    let reopened = h.open().await;
    let ClaimOutcome::Finished(found) =
        reopened.claim(claim("k2", 1, "c", NOW + 20)).await.unwrap()
    else {
        panic!("a settled key must be finished");
    };
    assert_eq!(found, settled);
    assert_eq!(found.history.len(), 2);
}

pub async fn a_lapsed_lease_is_taken_over_and_the_old_holder_cannot_settle(h: &dyn StoreHarness) {
    let store = h.open().await;
    let created = create(store.as_ref(), "k3", "slow").await;
    let resumed = store
        .claim(claim("k3", 1, "fast", NOW + LEASE_MS + 1))
        .await
        .unwrap();
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
            &created,
            Some(PaymentStatus::Failed),
        ))
        .await
        .unwrap();
    assert!(matches!(late, SettleOutcome::LeaseLost(ref p) if p.status == PaymentStatus::Pending));
    let current = settle(
        store.as_ref(),
        "k3",
        "fast",
        &created,
        Some(PaymentStatus::Succeeded),
    )
    .await;
    assert_eq!(current.status, PaymentStatus::Succeeded);
}

pub async fn a_pending_payment_is_resumed_without_a_takeover(h: &dyn StoreHarness) {
    let store = h.open().await;
    let created = create(store.as_ref(), "k4", "a").await;
    settle(store.as_ref(), "k4", "a", &created, None).await;
    let resumed = store.claim(claim("k4", 1, "b", NOW + 20)).await.unwrap();
    assert!(
        matches!(resumed, ClaimOutcome::Resumed { took_over: false, ref payment } if payment.id == created.id)
    );
    let again = store.claim(claim("k4", 1, "c", NOW + 21)).await.unwrap();
    assert!(
        matches!(again, ClaimOutcome::InFlight { .. }),
        "the re-drive holds the lease"
    );
}

pub async fn concurrent_claims_on_one_key_create_exactly_one_payment(h: &dyn StoreHarness) {
    let store = h.open().await;
    let attempts: Vec<_> = (0..100)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .claim(claim("storm", 1, &format!("o{i}"), NOW))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            ClaimOutcome::Created(_) => created += 1,
            ClaimOutcome::InFlight { .. } => {}
            other => panic!("a duplicate must see the key in flight, got {other:?}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(
        store
            .list(&merchant("default"), None, 100)
            .await
            .unwrap()
            .payments
            .len(),
        1
    );
}

pub async fn concurrent_claims_on_many_keys_create_one_payment_each(h: &dyn StoreHarness) {
    let store = h.open().await;
    let attempts: Vec<_> = (0..200)
        .map(|i| {
            let store = Arc::clone(&store);
            let text = format!("key-{}", i % 20);
            tokio::spawn(async move {
                store
                    .claim(claim(&text, 1, &format!("o{i}"), NOW))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for attempt in attempts {
        if matches!(attempt.await.unwrap(), ClaimOutcome::Created(_)) {
            created += 1;
        }
    }
    assert_eq!(created, 20);
    assert_eq!(
        store
            .list(&merchant("default"), None, 100)
            .await
            .unwrap()
            .payments
            .len(),
        20
    );
}

pub async fn an_issued_key_is_claimed_like_a_new_one(h: &dyn StoreHarness) {
    let store = h.open().await;
    store
        .issue_key(&merchant("default"), &key("idk_issued"), NOW + 60_000)
        .await
        .unwrap();
    create(store.as_ref(), "idk_issued", "a").await;
    let duplicate = store
        .claim(claim("idk_issued", 1, "b", NOW + 1))
        .await
        .unwrap();
    assert!(matches!(duplicate, ClaimOutcome::InFlight { .. }));
}

pub async fn the_same_key_for_two_merchants_guards_two_payments(h: &dyn StoreHarness) {
    let store = h.open().await;
    let a = store
        .claim(claim_for("acme", "shared", 1, "a", NOW))
        .await
        .unwrap();
    let b = store
        .claim(claim_for("globex", "shared", 2, "b", NOW))
        .await
        .unwrap();
    let (ClaimOutcome::Created(a), ClaimOutcome::Created(b)) = (a, b) else {
        panic!("each merchant's key is independent");
    };
    assert_ne!(a.id, b.id);
}

pub async fn a_repeated_status_event_changes_nothing_and_a_contrary_one_conflicts(
    h: &dyn StoreHarness,
) {
    let store = h.open().await;
    let created = create(store.as_ref(), "k5", "a").await;
    let first = store
        .apply_status_update(&created.id, "evt_1", PaymentStatus::Succeeded, NOW + 1)
        .await
        .unwrap();
    assert!(matches!(first, UpdateOutcome::Applied(ref p) if p.status == PaymentStatus::Succeeded));
    let again = store
        .apply_status_update(&created.id, "evt_1", PaymentStatus::Failed, NOW + 2)
        .await
        .unwrap();
    assert!(
        matches!(again, UpdateOutcome::Repeated { ref payment, .. } if payment.history.len() == 2 && payment.status == PaymentStatus::Succeeded)
    );
    let contrary = store
        .apply_status_update(&created.id, "evt_2", PaymentStatus::Failed, NOW + 3)
        .await
        .unwrap();
    assert!(matches!(contrary, UpdateOutcome::Conflict(_)));
    let same = store
        .apply_status_update(&created.id, "evt_3", PaymentStatus::Succeeded, NOW + 4)
        .await
        .unwrap();
    assert!(matches!(same, UpdateOutcome::Unchanged(ref p) if p.history.len() == 2));
}

pub async fn a_status_update_for_an_unknown_payment_is_not_found(h: &dyn StoreHarness) {
    let store = h.open().await;
    let outcome = store
        .apply_status_update(&PaymentId::generate(), "evt", PaymentStatus::Failed, NOW)
        .await
        .unwrap();
    assert!(matches!(outcome, UpdateOutcome::NotFound));
}

pub async fn a_late_psp_answer_never_overwrites_a_status_update(h: &dyn StoreHarness) {
    let store = h.open().await;
    let created = create(store.as_ref(), "k6", "a").await;
    store
        .apply_status_update(&created.id, "evt_1", PaymentStatus::Failed, NOW + 1)
        .await
        .unwrap();
    let settled = settle(
        store.as_ref(),
        "k6",
        "a",
        &created,
        Some(PaymentStatus::Succeeded),
    )
    .await;
    assert_eq!(settled.status, PaymentStatus::Failed);
    assert!(matches!(
        store.claim(claim("k6", 1, "b", NOW + 20)).await.unwrap(),
        ClaimOutcome::Finished(_)
    ));
}

pub async fn the_reaper_deletes_expired_records_of_final_payments_and_keeps_the_payments(
    h: &dyn StoreHarness,
) {
    let store = h.open().await;
    let done = create(store.as_ref(), "final", "a").await;
    settle(
        store.as_ref(),
        "final",
        "a",
        &done,
        Some(PaymentStatus::Succeeded),
    )
    .await;
    let open = create(store.as_ref(), "open", "b").await;
    settle(store.as_ref(), "open", "b", &open, None).await;

    assert_eq!(
        store.reap(NOW + 120_000, 100).await.unwrap(),
        1,
        "only the final payment's record goes"
    );
    assert!(
        store
            .payment(&merchant("default"), &done.id)
            .await
            .unwrap()
            .is_some()
    );
    let again = store
        .claim(claim("final", 1, "c", NOW + 120_000))
        .await
        .unwrap();
    assert!(
        matches!(again, ClaimOutcome::Created(ref p) if p.id != done.id),
        "a reaped key is new"
    );
    let pending = store
        .claim(claim("open", 1, "d", NOW + 120_000))
        .await
        .unwrap();
    assert!(matches!(
        pending,
        ClaimOutcome::Resumed {
            took_over: false,
            ..
        }
    ));
}

pub async fn a_payment_that_settles_late_keeps_its_record_for_a_retention_period(
    h: &dyn StoreHarness,
) {
    let store = h.open().await;
    let created = create(store.as_ref(), "late", "a").await;
    settle(store.as_ref(), "late", "a", &created, None).await;
    // Retention is 60 s (see `claim`); the status update comes long after.
    let settled_at = NOW + 600_000;
    store
        .apply_status_update(
            &created.id,
            "evt_late",
            PaymentStatus::Succeeded,
            settled_at,
        )
        .await
        .unwrap();

    assert_eq!(
        store.reap(settled_at + 1_000, 100).await.unwrap(),
        0,
        "kept after settling"
    );
    let retry = store
        .claim(claim("late", 1, "b", settled_at + 1_000))
        .await
        .unwrap();
    assert!(matches!(retry, ClaimOutcome::Finished(ref p) if p.id == created.id));
    assert_eq!(
        store.reap(settled_at + 60_001, 100).await.unwrap(),
        1,
        "then reaped"
    );
}

pub async fn stalled_keys_are_lapsed_leases_and_pending_payments_due_again(h: &dyn StoreHarness) {
    let store = h.open().await;
    create(store.as_ref(), "crashed", "gone").await;
    let pending = create(store.as_ref(), "waiting", "a").await;
    settle(store.as_ref(), "waiting", "a", &pending, None).await;
    let done = create(store.as_ref(), "done", "a").await;
    settle(
        store.as_ref(),
        "done",
        "a",
        &done,
        Some(PaymentStatus::Succeeded),
    )
    .await;

    let early = store.stalled(NOW + 5, NOW - 1, 100).await.unwrap();
    assert!(early.is_empty(), "nothing is due yet: {early:?}");
    let mut due: Vec<String> = store
        .stalled(NOW + LEASE_MS + 1, NOW + 10, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, key)| key.as_str().to_owned())
        .collect();
    due.sort();
    assert_eq!(due, vec!["crashed".to_owned(), "waiting".to_owned()]);
}

pub async fn the_list_is_newest_first_and_pages_without_gaps(h: &dyn StoreHarness) {
    let store = h.open().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(create(store.as_ref(), &format!("list-{i}"), "a").await.id);
    }
    let first = store.list(&merchant("default"), None, 2).await.unwrap();
    assert_eq!(
        first
            .payments
            .iter()
            .map(|p| p.id.clone())
            .collect::<Vec<_>>(),
        vec![ids[4].clone(), ids[3].clone()]
    );
    create(store.as_ref(), "list-new", "a").await;
    let second = store
        .list(&merchant("default"), first.next, 2)
        .await
        .unwrap();
    assert_eq!(
        second
            .payments
            .iter()
            .map(|p| p.id.clone())
            .collect::<Vec<_>>(),
        vec![ids[2].clone(), ids[1].clone()]
    );
    let last = store
        .list(&merchant("default"), second.next, 2)
        .await
        .unwrap();
    assert_eq!(last.payments.len(), 1);
    assert!(last.next.is_none());
}

pub async fn a_payment_of_another_merchant_is_not_found(h: &dyn StoreHarness) {
    let store = h.open().await;
    let created = create(store.as_ref(), "mine", "a").await;
    assert!(
        store
            .payment(&merchant("intruder"), &created.id)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .list(&merchant("intruder"), None, 10)
            .await
            .unwrap()
            .payments
            .is_empty()
    );
}
