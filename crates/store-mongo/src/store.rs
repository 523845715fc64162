//! `DurableStore` for MongoDB.

use async_trait::async_trait;
use oncepay_domain::time_fmt::now_millis;
use oncepay_domain::{IdempotencyKey, MerchantId, Payment, PaymentId, PaymentStatus};
use oncepay_engine::{
    Claim, ClaimOutcome, Cursor, DurableStore, Page, SettleOutcome, Settlement, StoreError,
    UpdateOutcome,
};

use crate::{MongoStore, claims, reads, retention, status_events};

#[async_trait]
impl DurableStore for MongoStore {
    fn backend(&self) -> &'static str {
        "mongodb"
    }

    async fn issue_key(
        &self,
        merchant: &MerchantId,
        key: &IdempotencyKey,
        expires_at_millis: i64,
    ) -> Result<(), StoreError> {
        claims::issue_key(self, merchant, key, now_millis(), expires_at_millis).await
    }

    async fn claim(&self, claim: Claim) -> Result<ClaimOutcome, StoreError> {
        claims::claim(self, &claim).await
    }

    async fn settle(&self, settlement: Settlement) -> Result<SettleOutcome, StoreError> {
        claims::settle(self, settlement).await
    }

    async fn apply_status_update(
        &self,
        payment_id: &PaymentId,
        event_id: &str,
        status: PaymentStatus,
        now_millis: i64,
    ) -> Result<UpdateOutcome, StoreError> {
        status_events::apply(self, payment_id, event_id, status, now_millis).await
    }

    async fn payment(
        &self,
        merchant: &MerchantId,
        id: &PaymentId,
    ) -> Result<Option<Payment>, StoreError> {
        reads::payment(self, merchant, id).await
    }

    async fn list(
        &self,
        merchant: &MerchantId,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        reads::list(self, merchant, cursor, limit).await
    }

    async fn stalled(
        &self,
        now_millis: i64,
        checked_before_millis: i64,
        limit: usize,
    ) -> Result<Vec<(MerchantId, IdempotencyKey)>, StoreError> {
        reads::stalled(self, now_millis, checked_before_millis, limit).await
    }

    async fn reap(&self, now_millis: i64, limit: usize) -> Result<u64, StoreError> {
        retention::reap(self, now_millis, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        MongoStore::ping(self).await
    }
}
