//! The conformance suite for durable stores.
//!
//! Every store implements [`StoreHarness`] in its own test file and invokes
//! [`conformance_suite!`] once; that expands to one test per case below, so a
//! new store joins the suite with one line and each case fails by name.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

pub mod cases;
pub mod fixtures;

use std::sync::Arc;

use async_trait::async_trait;
use oncepay_engine::DurableStore;

/// Gives the suite fresh, isolated stores of one backend.
#[async_trait]
pub trait StoreHarness: Send + Sync {
    /// Opens (or reopens, after an earlier handle was dropped) this test's
    /// store. Every call sees the same data.
    async fn open(&self) -> Arc<dyn DurableStore>;

    /// Removes what the test created (a schema, a database); called once the
    /// case passed.
    async fn clean_up(&self) {}
}

/// Expands to one `#[tokio::test]` per conformance case. `$harness` is an
/// expression giving an `Option` of a harness (it may `.await`), evaluated
/// per test; `None` means the backend is not reachable here and the harness
/// has already said why the test is skipped.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance_suite!(@cases $harness;
            a_new_key_records_a_pending_payment_and_a_duplicate_sees_it_in_flight,
            the_same_key_with_another_fingerprint_is_a_mismatch,
            a_settled_key_is_finished_even_after_reopening_the_store,
            a_lapsed_lease_is_taken_over_and_the_old_holder_cannot_settle,
            a_pending_payment_is_resumed_without_a_takeover,
            concurrent_claims_on_one_key_create_exactly_one_payment,
            concurrent_claims_on_many_keys_create_one_payment_each,
            an_issued_key_is_claimed_like_a_new_one,
            the_same_key_for_two_merchants_guards_two_payments,
            a_repeated_status_event_changes_nothing_and_a_contrary_one_conflicts,
            a_status_update_for_an_unknown_payment_is_not_found,
            a_late_psp_answer_never_overwrites_a_status_update,
            the_reaper_deletes_expired_records_of_final_payments_and_keeps_the_payments,
            a_payment_that_settles_late_keeps_its_record_for_a_retention_period,
            stalled_keys_are_lapsed_leases_and_pending_payments_due_again,
            the_list_is_newest_first_and_pages_without_gaps,
            a_payment_of_another_merchant_is_not_found
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(harness) = $harness else { return };
                $crate::cases::$case(&harness).await;
                $crate::StoreHarness::clean_up(&harness).await;
            }
        )*
    };
}
