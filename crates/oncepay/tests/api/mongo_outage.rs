//! MongoDB going away under oncepay: requests get a 503 problem and record
//! nothing, `/readyz` says so, and service resumes by itself when MongoDB is
//! back, with every answered payment still there and no second charge.
//!
//! Runs its own MongoDB-compatible server (SecantusDB, which `.ci/mongo`
//! installs): `ONCEPAY_TEST_SECANTUSD` names its executable.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{Settings, TestApp, eventually, fresh_key, payment_body};

/// A SecantusDB server on a fixed port and data directory, so it can be
/// killed and started again on the same data.
struct LocalMongo {
    executable: PathBuf,
    port: u16,
    data: tempfile::TempDir,
    process: Option<Child>,
}

impl LocalMongo {
    fn start() -> Option<Self> {
        let Some(executable) = std::env::var_os("ONCEPAY_TEST_SECANTUSD") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must set ONCEPAY_TEST_SECANTUSD (see .ci/run)"
            );
            eprintln!("skipped: ONCEPAY_TEST_SECANTUSD is not set (.ci/mongo installs it)");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let data = tempfile::tempdir().expect("a data directory");
        let mut server = Self {
            executable: executable.into(),
            port,
            data,
            process: None,
        };
        server.start_again();
        Some(server)
    }

    fn start_again(&mut self) {
        let child = Command::new(&self.executable)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--storage-path",
            ])
            .arg(self.data.path())
            .args(["--sync-on-commit", "--log-level", "WARNING"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start SecantusDB");
        self.process = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("mongodb://127.0.0.1:{}/outage", self.port)
    }
}

impl Drop for LocalMongo {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_mongodb_is_down_payments_get_503_and_nothing_is_lost_or_charged_twice() {
    let Some(mut mongo) = LocalMongo::start() else {
        return;
    };
    let settings = Settings::new()
        .on_sqlite()
        .env("ONCEPAY_DATABASE_URL", mongo.url());
    let app = TestApp::spawn_with(settings).await;
    let before = fresh_key();
    let answered = app.post_payment(&before, &payment_body("pm_card_ok")).await;
    answered.assert_succeeded();

    mongo.kill();
    let during = fresh_key();
    let refused = app.post_payment(&during, &payment_body("pm_card_ok")).await;
    refused.assert_problem(503, "store-unavailable");
    assert_eq!(app.get("/readyz").await.status, 503);
    assert_eq!(
        app.charges().len(),
        1,
        "nothing was charged while the store was down"
    );

    mongo.start_again();
    eventually(
        "oncepay is ready again",
        Duration::from_secs(30),
        || async { (app.get("/readyz").await.status == 200).then_some(()) },
    )
    .await;
    let retried = app.post_payment(&during, &payment_body("pm_card_ok")).await;
    retried.assert_succeeded();
    assert_eq!(
        retried.replayed(),
        Some("false"),
        "the refused request recorded nothing"
    );
    let replay = app.post_payment(&before, &payment_body("pm_card_ok")).await;
    assert_eq!(
        replay.body, answered.body,
        "the payment answered before the outage is kept"
    );
    assert_eq!(app.charges().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mongodb_killed_in_the_middle_of_a_storm_never_charges_twice_or_loses_a_payment() {
    let Some(mut mongo) = LocalMongo::start() else {
        return;
    };
    let settings = Settings::new()
        .on_sqlite()
        .env("ONCEPAY_DATABASE_URL", mongo.url())
        .env("ONCEPAY_PSP_LATENCY_MS", 300)
        .env("ONCEPAY_LEASE_TTL_MS", 3000)
        .env("ONCEPAY_PSP_TIMEOUT_MS", 2000)
        .env("ONCEPAY_RECOVERY_INTERVAL_MS", 200);
    let app = TestApp::spawn_with(settings).await;
    let keys: Vec<String> = (0..10).map(|_| fresh_key()).collect();

    let mut storm = Vec::new();
    for key in &keys {
        for _ in 0..5 {
            let request = app.payment_request(key, &payment_body("pm_card_ok"));
            storm.push(tokio::spawn(async move {
                request.send().await.map(|r| r.status().as_u16())
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    mongo.kill();
    for request in storm {
        let status = request
            .await
            .expect("the request task")
            .expect("oncepay answers");
        // 201 or 202 when the store took the answer (or the PSP's answer
        // could not be recorded), 409 for duplicates, 503 before execution.
        assert!(
            matches!(status, 201 | 202 | 409 | 503),
            "unexpected {status}"
        );
    }

    mongo.start_again();
    let mut ids = std::collections::BTreeSet::new();
    for key in &keys {
        let id = eventually(
            "the key ends with its payment",
            Duration::from_secs(60),
            || async {
                let answer = app.post_payment(key, &payment_body("pm_card_ok")).await;
                (answer.status == 201).then(|| answer.payment_id())
            },
        )
        .await;
        ids.insert(id);
    }
    assert_eq!(ids.len(), keys.len(), "one payment per key");
    assert_eq!(app.charges().len(), keys.len(), "one charge per key");
}
