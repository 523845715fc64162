//! `DurableStore` for SQLite: writes through the writer, reads from the pool.

use async_trait::async_trait;
use oncepay_domain::time_fmt::now_millis;
use oncepay_domain::{IdempotencyKey, MerchantId, Payment, PaymentId, PaymentStatus};
use oncepay_engine::{
    Claim, ClaimOutcome, Cursor, DurableStore, Page, SettleOutcome, Settlement, StoreError,
    UpdateOutcome,
};

use crate::{SqliteStore, claims, reads, status_events, unavailable};

#[async_trait]
impl DurableStore for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn issue_key(
        &self,
        merchant: &MerchantId,
        key: &IdempotencyKey,
        expires_at_millis: i64,
    ) -> Result<(), StoreError> {
        let (merchant, key) = (merchant.clone(), key.clone());
        let now = now_millis();
        self.writer
            .write(move |c| claims::issue_key(c, &merchant, &key, now, expires_at_millis))
            .await
    }

    async fn claim(&self, claim: Claim) -> Result<ClaimOutcome, StoreError> {
        self.writer.write(move |c| claims::claim(c, &claim)).await
    }

    async fn settle(&self, settlement: Settlement) -> Result<SettleOutcome, StoreError> {
        let (settled, row) = claims::plan_settlement(&settlement)?;
        let outcome = self
            .writer
            .write(move |c| claims::settle(c, &settlement, &row))
            .await?;
        Ok(match outcome {
            claims::Settled::AsPlanned => SettleOutcome::Settled(settled),
            claims::Settled::Otherwise(outcome) => *outcome,
        })
    }

    async fn apply_status_update(
        &self,
        payment_id: &PaymentId,
        event_id: &str,
        status: PaymentStatus,
        now_millis: i64,
    ) -> Result<UpdateOutcome, StoreError> {
        let (payment_id, event_id) = (payment_id.clone(), event_id.to_owned());
        self.writer
            .write(move |c| status_events::apply(c, &payment_id, &event_id, status, now_millis))
            .await
    }

    async fn payment(
        &self,
        merchant: &MerchantId,
        id: &PaymentId,
    ) -> Result<Option<Payment>, StoreError> {
        let (merchant, id) = (merchant.clone(), id.clone());
        self.readers
            .read(move |c| reads::payment(c, &merchant, &id))
            .await
    }

    async fn list(
        &self,
        merchant: &MerchantId,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        let merchant = merchant.clone();
        self.readers
            .read(move |c| reads::list(c, &merchant, cursor, limit))
            .await
    }

    async fn stalled(
        &self,
        now_millis: i64,
        checked_before_millis: i64,
        limit: usize,
    ) -> Result<Vec<(MerchantId, IdempotencyKey)>, StoreError> {
        self.readers
            .read(move |c| reads::stalled(c, now_millis, checked_before_millis, limit))
            .await
    }

    async fn reap(&self, now_millis: i64, limit: usize) -> Result<u64, StoreError> {
        self.writer
            .write(move |c| reads::reap(c, now_millis, limit))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.readers
            .read(|c| c.query_row("SELECT 1", [], |_| Ok(())).map_err(unavailable))
            .await
    }
}
