//! Several oncepay processes sharing one PostgreSQL database: duplicates
//! sprayed across all of them still make one payment and one charge per key.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Barrier;

use crate::helpers::{Settings, TestApp, fresh_key, payment_body};
use crate::ledger;
use crate::services::TestDatabase;

const PROCESSES: usize = 3;
const KEYS: usize = 20;
const DUPLICATES_PER_PROCESS: usize = 4;

/// Three processes on one database and one PSP ledger, with a slow PSP so
/// duplicates overlap.
async fn cluster(database: &TestDatabase, ledger: &std::path::Path) -> Vec<TestApp> {
    let mut apps = Vec::new();
    for _ in 0..PROCESSES {
        let settings = Settings::new()
            .env("ONCEPAY_DATABASE_URL", &database.url)
            .env("ONCEPAY_PSP_LEDGER", ledger.display())
            .env("ONCEPAY_PSP_LATENCY_MS", 150);
        apps.push(TestApp::spawn_with(settings).await);
    }
    apps
}

/// Sends every (process, key) request at once and returns the statuses.
async fn spray(apps: &[TestApp], keys: &[String]) -> Vec<u16> {
    let mut requests = Vec::new();
    for app in apps {
        for key in keys {
            for _ in 0..DUPLICATES_PER_PROCESS {
                requests.push(app.payment_request(key, &payment_body("pm_card_ok")));
            }
        }
    }
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|request| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                request
                    .send()
                    .await
                    .expect("oncepay answers")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.expect("the request task"));
    }
    statuses
}

async fn listed_ids(app: &TestApp) -> BTreeSet<String> {
    let page = app
        .list_payments("limit=100")
        .await
        .assert_status(200)
        .json();
    let data = page["data"].as_array().expect("a data array").clone();
    data.iter()
        .map(|p: &Value| p["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_sprayed_across_three_processes_make_one_payment_and_one_charge_per_key() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let shared = tempfile::tempdir().expect("a directory for the shared ledger");
    let ledger_file = shared.path().join("ledger.db");
    let apps = cluster(&database, &ledger_file).await;
    let keys: Vec<String> = (0..KEYS).map(|_| fresh_key()).collect();

    let statuses = spray(&apps, &keys).await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&409), "the duplicates never overlapped");

    let charges = ledger::read(&ledger_file);
    assert_eq!(charges.len(), KEYS, "one charge per key");
    let lists: Vec<_> = lists_of_every_process(&apps).await;
    assert_eq!(lists[0].len(), KEYS, "one payment per key");
    assert!(
        lists.iter().all(|list| list == &lists[0]),
        "every process lists the same payments"
    );

    for (index, key) in keys.iter().enumerate() {
        let app = &apps[index % PROCESSES];
        let replay = app.post_payment(key, &payment_body("pm_card_ok")).await;
        replay.assert_status(201);
        assert_eq!(replay.replayed(), Some("true"));
    }
    assert_eq!(
        ledger::read(&ledger_file).len(),
        KEYS,
        "replays charge nothing"
    );
}

async fn lists_of_every_process(apps: &[TestApp]) -> Vec<BTreeSet<String>> {
    let mut lists = Vec::new();
    for app in apps {
        lists.push(listed_ids(app).await);
    }
    lists
}
