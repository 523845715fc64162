//! Background work: re-drive pending payments, resume lapsed leases, and
//! delete idempotency records past retention.

use std::sync::Arc;
use std::time::Duration;

use oncepay_domain::time_fmt::now_millis;
use oncepay_domain::{IdempotencyKey, MerchantId};
use tokio::sync::watch;
use tracing::{debug, error, info};

use crate::check::KeyScope;
use crate::engine::{Engine, millis};
use crate::store::{Claim, ClaimOutcome, StoreError};

/// Keys looked at per round.
const BATCH: usize = 100;

/// Runs recovery and the reaper every `interval` until `shutdown` turns true.
pub async fn run(engine: Arc<Engine>, interval: Duration, mut shutdown: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        let stopping = || *shutdown.borrow();
        if let Err(failure) = engine.recover_until(&stopping).await {
            error!(error = %failure, "recovery round failed");
        }
        if let Err(failure) = engine.reap_once().await {
            error!(error = %failure, "reaper round failed");
        }
        engine.check.purge_expired().await;
    }
    debug!("background recovery stopped");
}

impl Engine {
    /// One recovery round; returns how many keys were resumed.
    pub async fn recover_once(&self) -> Result<usize, StoreError> {
        self.recover_until(&|| false).await
    }

    /// One recovery round that ends early, between two keys, once
    /// `stopping` says so: each key may wait for the PSP, and a graceful stop
    /// must not wait for a whole round of them (100 slow re-drives held one
    /// for a minute and a half). A key not reached keeps its state and is
    /// resumed after the restart.
    async fn recover_until(
        &self,
        stopping: &(dyn Fn() -> bool + Sync),
    ) -> Result<usize, StoreError> {
        let now = now_millis();
        let checked_before = now.saturating_sub(millis(self.config.redrive_after));
        let stalled = self.store.stalled(now, checked_before, BATCH).await?;
        let mut resumed = 0;
        for (merchant, key) in stalled {
            if stopping() {
                debug!(resumed, "recovery round cut short by shutdown");
                break;
            }
            if self.resume(merchant, key).await? {
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    /// Takes the lease of one stalled key and asks the PSP again.
    async fn resume(&self, merchant: MerchantId, key: IdempotencyKey) -> Result<bool, StoreError> {
        let now = now_millis();
        let lease = self.new_lease(now);
        let claim = Claim {
            merchant: merchant.clone(),
            key: key.clone(),
            fingerprint: None,
            lease: lease.clone(),
            new_payment: None,
            now_millis: now,
            expires_at_millis: now.saturating_add(millis(self.config.retention)),
        };
        let ClaimOutcome::Resumed { payment, took_over } = self.store.claim(claim).await? else {
            return Ok(false);
        };
        self.note_resumption(&payment, took_over);
        let scope = KeyScope { merchant, key };
        self.execute(&scope, &lease.owner, payment).await?;
        Ok(true)
    }

    /// One reaper round; returns how many records were deleted.
    pub async fn reap_once(&self) -> Result<u64, StoreError> {
        let reaped = self.store.reap(now_millis(), 1000).await?;
        if reaped > 0 {
            info!(reaped, "deleted idempotency records past retention");
        }
        Ok(reaped)
    }
}
