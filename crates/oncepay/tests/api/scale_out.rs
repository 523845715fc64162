//! Several oncepay processes sharing one PostgreSQL database, with or without
//! Redis in front: duplicates sprayed across all of them still make one
//! payment and one charge per key, and every process lists the same payments.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Barrier;

use crate::helpers::{Answer, Settings, TestApp, eventually, fresh_key, payment_body};
use crate::ledger;
use crate::services::{TestDatabase, TestMongoDatabase, TestRedisPrefix, local_redis_cluster};

const PROCESSES: usize = 3;
const KEYS: usize = 20;
const DUPLICATES_PER_PROCESS: usize = 4;

/// Three processes sharing one database, one PSP ledger and, when given, one
/// Redis (URL list and prefix); a slow PSP makes duplicates overlap.
struct Deployment {
    apps: Vec<TestApp>,
    ledger_file: PathBuf,
    _ledger_dir: tempfile::TempDir,
}

/// Starts the deployment and checks its startup line names `stack`.
async fn deploy(database_url: &str, redis: Option<(&str, &str)>, stack: &str) -> Deployment {
    let ledger_dir = tempfile::tempdir().expect("a directory for the shared ledger");
    let ledger_file = ledger_dir.path().join("ledger.db");
    let mut apps = Vec::new();
    for _ in 0..PROCESSES {
        let mut settings = Settings::new()
            .env("ONCEPAY_DATABASE_URL", database_url)
            .env("ONCEPAY_PSP_LEDGER", ledger_file.display())
            .env("ONCEPAY_PSP_LATENCY_MS", 150);
        if let Some((url, prefix)) = redis {
            settings = settings
                .env("ONCEPAY_REDIS_URL", url)
                .env("ONCEPAY_REDIS_PREFIX", prefix);
        }
        apps.push(TestApp::spawn_with(settings).await);
    }
    assert!(apps[0].logs().contains(stack), "{}", apps[0].logs());
    Deployment {
        apps,
        ledger_file,
        _ledger_dir: ledger_dir,
    }
}

/// Sends every (process, key, duplicate) request at once; returns statuses.
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

/// The whole scenario: spray, count charges, compare lists, replay.
async fn one_payment_and_one_charge_per_key(deployment: &Deployment) {
    let (apps, ledger_file) = (&deployment.apps, deployment.ledger_file.as_path());
    let keys: Vec<String> = (0..KEYS).map(|_| fresh_key()).collect();
    let statuses = spray(apps, &keys).await;
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&409), "the duplicates never overlapped");
    assert_eq!(ledger::read(ledger_file).len(), KEYS, "one charge per key");

    let mut lists = Vec::new();
    for app in apps {
        lists.push(listed_ids(app).await);
    }
    assert_eq!(lists[0].len(), KEYS, "one payment per key");
    assert!(
        lists.iter().all(|list| list == &lists[0]),
        "every process lists the same payments"
    );

    for (index, key) in keys.iter().enumerate() {
        let app = &apps[index % PROCESSES];
        // A 409 with Retry-After is a valid answer to a retry for a moment
        // after a storm (an in-flight mark may outlive its request by up to
        // two seconds when Redis hiccups); the retry must then replay.
        let replay = eventually("the retry is replayed", Duration::from_secs(10), || async {
            let answer = app.post_payment(key, &payment_body("pm_card_ok")).await;
            (answer.status != 409).then_some(answer)
        })
        .await;
        replay.assert_status(201);
        assert_eq!(replay.replayed(), Some("true"));
    }
    assert_eq!(
        ledger::read(ledger_file).len(),
        KEYS,
        "replays charge nothing"
    );
}

/// The deployment on a database and a Redis prefix of its own; `None` (the
/// test is skipped) when PostgreSQL or Redis is not there.
async fn deploy_on_redis_and_postgres() -> Option<(TestDatabase, TestRedisPrefix, Deployment)> {
    let database = TestDatabase::create().await?;
    let redis = TestRedisPrefix::new().await?;
    let redis_at = Some((redis.url.as_str(), redis.prefix.as_str()));
    let deployment = deploy(&database.url, redis_at, "store=postgres check=redis").await;
    Some((database, redis, deployment))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_sprayed_across_three_processes_on_postgres_charge_once_per_key() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let deployment = deploy(&database.url, None, "store=postgres").await;
    one_payment_and_one_charge_per_key(&deployment).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_sprayed_across_three_processes_sharing_redis_and_postgres_charge_once_per_key()
{
    let Some((_database, redis, deployment)) = deploy_on_redis_and_postgres().await else {
        return;
    };
    one_payment_and_one_charge_per_key(&deployment).await;
    redis.clean_up().await;
}

/// Sends `request` until it is answered with something other than `409`.
async fn send_until_not_in_flight(request: reqwest::RequestBuilder) -> Answer {
    loop {
        let again = request.try_clone().expect("a request with a plain body");
        let response = again.send().await.expect("oncepay answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("a body").to_vec();
        if status != 409 {
            return Answer {
                status,
                headers,
                body,
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// With Redis and each process's own near check in front of it, a request
/// with another body under a key in flight elsewhere, or answered elsewhere,
/// never gets that key's payment, even when Redis loses every entry in the
/// middle of the storm; each key still makes one payment and one charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_body_among_duplicates_across_processes_never_gets_their_payment() {
    let Some((_database, redis, deployment)) = deploy_on_redis_and_postgres().await else {
        return;
    };
    let keys: Vec<String> = (0..KEYS).map(|_| fresh_key()).collect();
    let mut requests = Vec::new();
    for app in &deployment.apps {
        for key in &keys {
            for duplicate in 0..DUPLICATES_PER_PROCESS {
                let amount = if duplicate == 0 { 9_999 } else { 1_250 };
                let body = serde_json::json!({
                    "amount": amount, "currency": "EUR", "payment_method": "pm_card_ok"
                });
                requests.push((key.clone(), amount, app.payment_request(key, &body)));
            }
        }
    }

    let barrier = Arc::new(Barrier::new(requests.len() + 1));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(key, amount, request)| {
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                (key, amount, send_until_not_in_flight(request).await)
            })
        })
        .collect();
    barrier.wait().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    redis.clean_up().await;
    let mut payments = std::collections::BTreeMap::<String, BTreeSet<String>>::new();
    for task in tasks {
        let (key, amount, answer) = task.await.expect("the request task");
        if answer.status == 422 {
            continue;
        }
        let payment = answer.assert_succeeded();
        assert_eq!(
            payment["amount"], amount,
            "{key} answered another body's payment"
        );
        let id = payment["id"].as_str().expect("an id").to_owned();
        payments.entry(key).or_default().insert(id);
    }

    assert_eq!(payments.len(), KEYS, "every key was paid");
    assert!(payments.values().all(|ids| ids.len() == 1), "{payments:?}");
    let charged = ledger::read(&deployment.ledger_file);
    assert_eq!(charged.len(), KEYS, "one charge per key");
    redis.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_sprayed_across_three_processes_sharing_a_redis_cluster_charge_once_per_key() {
    let Some(database) = TestDatabase::create().await else {
        return;
    };
    let Some(cluster) = local_redis_cluster(3) else {
        return;
    };
    let nodes = cluster.url_list();
    let deployment = deploy(
        &database.url,
        Some((&nodes, "scale:")),
        "check=redis-cluster",
    )
    .await;
    one_payment_and_one_charge_per_key(&deployment).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicates_sprayed_across_three_processes_sharing_redis_and_mongodb_charge_once_per_key() {
    let Some(database) = TestMongoDatabase::create() else {
        return;
    };
    let Some(redis) = TestRedisPrefix::new().await else {
        return;
    };
    let redis_at = Some((redis.url.as_str(), redis.prefix.as_str()));
    let deployment = deploy(&database.url, redis_at, "store=mongodb check=redis").await;
    one_payment_and_one_charge_per_key(&deployment).await;
    redis.clean_up().await;
}
