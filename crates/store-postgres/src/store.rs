//! `DurableStore` for PostgreSQL.

use async_trait::async_trait;
use oncepay_domain::time_fmt::now_millis;
use oncepay_domain::{IdempotencyKey, MerchantId, Payment, PaymentId, PaymentStatus};
use oncepay_engine::{
    Claim, ClaimOutcome, Cursor, DurableStore, Page, SettleOutcome, Settlement, StoreError,
    UpdateOutcome,
};

use crate::{PostgresStore, claims, reads, status_events, unavailable};

#[async_trait]
impl DurableStore for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn issue_key(
        &self,
        merchant: &MerchantId,
        key: &IdempotencyKey,
        expires_at_millis: i64,
    ) -> Result<(), StoreError> {
        claims::issue_key(&self.pool, merchant, key, now_millis(), expires_at_millis).await
    }

    async fn claim(&self, claim: Claim) -> Result<ClaimOutcome, StoreError> {
        claims::claim(&self.pool, &claim).await
    }

    async fn settle(&self, settlement: Settlement) -> Result<SettleOutcome, StoreError> {
        claims::settle(&self.pool, settlement).await
    }

    async fn apply_status_update(
        &self,
        payment_id: &PaymentId,
        event_id: &str,
        status: PaymentStatus,
        now_millis: i64,
    ) -> Result<UpdateOutcome, StoreError> {
        status_events::apply(&self.pool, payment_id, event_id, status, now_millis).await
    }

    async fn payment(
        &self,
        merchant: &MerchantId,
        id: &PaymentId,
    ) -> Result<Option<Payment>, StoreError> {
        reads::payment(&self.pool, merchant, id).await
    }

    async fn list(
        &self,
        merchant: &MerchantId,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        reads::list(&self.pool, merchant, cursor, limit).await
    }

    async fn stalled(
        &self,
        now_millis: i64,
        checked_before_millis: i64,
        limit: usize,
    ) -> Result<Vec<(MerchantId, IdempotencyKey)>, StoreError> {
        reads::stalled(&self.pool, now_millis, checked_before_millis, limit).await
    }

    async fn reap(&self, now_millis: i64, limit: usize) -> Result<u64, StoreError> {
        reads::reap(&self.pool, now_millis, limit).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
