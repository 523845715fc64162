//! Wiring and running the server: backends from the settings, the engine,
//! the HTTP router, background recovery, and a graceful stop.
//!
//! [`Application::build`] opens the store and the PSP and binds the
//! listener, so the bound address (also for port 0) is known before
//! [`Application::run`] serves. On SIGINT or SIGTERM, in-flight requests
//! finish, then background recovery is stopped and awaited, and the engine is
//! dropped last so the store can flush.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use oncepay_check_redis::RedisCheck;
use oncepay_engine::{
    DurableStore, Engine, EngineConfig, FastCheck, InProcessCheck, LayeredCheck, Metrics,
    PaymentProvider, recovery,
};
use oncepay_http_api::{AppState, Auth, router};
use oncepay_psp_sim::{SimConfig, SimulatedPsp};
use oncepay_store_mongo::MongoStore;
use oncepay_store_postgres::PostgresStore;
use oncepay_store_sqlite::SqliteStore;
use secrecy::ExposeSecret;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::config::{Database, Settings};
use crate::shutdown;

/// The mode line of the startup event in dev mode.
const DEV_MODE: &str = "dev: default merchant, loopback only";

/// A server that is bound and ready to serve.
pub struct Application {
    listener: TcpListener,
    engine: Arc<Engine>,
    settings: Settings,
    psp_name: &'static str,
}

impl Application {
    /// Opens the backends, builds the engine and binds the listener.
    ///
    /// # Errors
    ///
    /// The store or the PSP ledger cannot be opened, or the address bound.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = open_store(&settings).await?;
        let psp = open_psp(&settings)?;
        let psp_name = psp.name();
        let check = open_check(&settings).await?;
        let engine = Arc::new(Engine::new(
            store,
            check,
            psp,
            Arc::new(Metrics::default()),
            engine_config(&settings),
        ));
        let listener =
            listen(settings.listen).with_context(|| format!("bind {}", settings.listen))?;
        Ok(Self {
            listener,
            engine,
            settings,
            psp_name,
        })
    }

    /// The address actually bound.
    ///
    /// # Errors
    ///
    /// The operating system cannot tell the socket's address.
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener.local_addr().context("read the bound address")
    }

    /// Serves until SIGINT or SIGTERM, then stops gracefully.
    ///
    /// # Errors
    ///
    /// Serving failed.
    pub async fn run(self) -> anyhow::Result<()> {
        let addr = self.local_addr()?;
        let mode = self.settings.is_dev_mode().then_some(DEV_MODE);
        let store = self.engine.store().backend();
        let check = self.engine.check_backend();
        info!(addr = %addr, store = %store, check = %check, psp = %self.psp_name, mode, "oncepay listening");

        let (stop_recovery, stopped) = watch::channel(false);
        let interval = self.settings.recovery_interval;
        let recovery = tokio::spawn(recovery::run(Arc::clone(&self.engine), interval, stopped));

        let app = router(app_state(&self.settings, Arc::clone(&self.engine)));
        let served = axum::serve(self.listener, app)
            .with_graceful_shutdown(shutdown::signal())
            .await;

        // Connections are closed; payments whose client hung up may still be
        // running. Let them finish and record, then stop recovery.
        self.engine.finish_payments().await;
        let _ = stop_recovery.send(true);
        if let Err(error) = recovery.await {
            warn!(%error, "background recovery ended abnormally");
        }
        drop(self.engine);
        served.context("serve HTTP")?;
        info!("oncepay stopped; every payment it started is recorded");
        Ok(())
    }
}

async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn DurableStore>> {
    match &settings.database {
        Database::Sqlite(path) => {
            let store = SqliteStore::open(path)
                .with_context(|| format!("open the SQLite store at {}", path.display()))?;
            Ok(Arc::new(store))
        }
        Database::Mongo(url) => {
            let store = MongoStore::open(url.expose_secret(), settings.database_pool_size)
                .await
                .context("connect to MongoDB (ONCEPAY_DATABASE_URL)")?;
            Ok(Arc::new(store))
        }
        Database::Postgres(url) => {
            let store = PostgresStore::connect(url.expose_secret(), settings.database_pool_size)
                .await
                .context("connect to PostgreSQL (ONCEPAY_DATABASE_URL)")?;
            Ok(Arc::new(store))
        }
    }
}

/// Redis when configured, behind this process's own in-process check, else
/// the in-process check alone. Redis must answer at start, so a wrong URL is
/// found at once; later outages only cost speed.
async fn open_check(settings: &Settings) -> anyhow::Result<Arc<dyn FastCheck>> {
    let Some(url) = &settings.redis_url else {
        return Ok(Arc::new(InProcessCheck::default()));
    };
    let check = RedisCheck::connect(url.expose_secret(), &settings.redis_prefix)
        .await
        .context("connect to Redis (ONCEPAY_REDIS_URL)")?;
    Ok(Arc::new(LayeredCheck::new(Arc::new(check))))
}

fn open_psp(settings: &Settings) -> anyhow::Result<Arc<dyn PaymentProvider>> {
    let config = SimConfig {
        latency: settings.psp_latency,
        ledger: settings.psp_ledger.clone(),
    };
    let psp = SimulatedPsp::new(config).context("open the simulated PSP's ledger")?;
    Ok(Arc::new(psp))
}

fn engine_config(settings: &Settings) -> EngineConfig {
    let defaults = EngineConfig::default();
    EngineConfig {
        lease_ttl: settings.lease_ttl,
        retention: settings.retention,
        psp_timeout: settings.psp_timeout,
        redrive_after: settings.redrive_after,
        // A cached answer must not outlive the record it stands for.
        answer_ttl: defaults.answer_ttl.min(settings.retention),
    }
}

fn app_state(settings: &Settings, engine: Arc<Engine>) -> AppState {
    let auth = if settings.is_dev_mode() {
        Auth::DevMode
    } else {
        Auth::api_keys(settings.api_keys.iter().cloned())
    };
    AppState::new(
        engine,
        auth,
        settings.webhook_secret.clone(),
        settings.max_body_bytes,
    )
}

/// Connections the kernel may hold for us before we accept them. tokio's
/// default (1024) overflowed when 1000 clients retried at once: the dropped
/// handshakes came back only after TCP's 200 ms retransmission timeout. The
/// kernel caps this at `net.core.somaxconn`.
const ACCEPT_BACKLOG: u32 = 4096;

fn listen(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(ACCEPT_BACKLOG)
}
