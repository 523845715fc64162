//! The scenarios, and a master's restart, against Redis Clusters of three
//! masters started for each test on free loopback ports and stopped after it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oncepay_check_redis::test_support::LocalRedisCluster;
use oncepay_check_redis::{RedisCheck, RedisCheckOptions};
use oncepay_engine::{CheckError, FastCheck, KeyScope};

use crate::helpers::{fingerprint, scope_of, skip_or_fail, unique_prefix};
use crate::scenarios;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_keeps_every_promise_of_the_check() {
    let started = tokio::task::spawn_blocking(|| LocalRedisCluster::start(3))
        .await
        .expect("the cluster start-up finishes");
    let cluster = match started {
        Ok(cluster) => cluster,
        Err(error) => return skip_or_fail("a Redis Cluster of our own", error),
    };
    let options = RedisCheckOptions {
        call_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(5),
    };

    let check = RedisCheck::connect_with(&cluster.url_list(), &unique_prefix(), options)
        .await
        .expect("the cluster answers");

    assert_eq!(check.backend(), "redis-cluster");
    scenarios::all(Arc::new(check)).await;
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_cluster_node_serves_again_without_a_new_check() {
    let started = tokio::task::spawn_blocking(|| LocalRedisCluster::start(3))
        .await
        .expect("the cluster start-up finishes");
    let mut cluster = match started {
        Ok(cluster) => cluster,
        Err(error) => return skip_or_fail("a Redis Cluster of our own", error),
    };
    let options = RedisCheckOptions {
        call_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_secs(5),
    };
    let check = RedisCheck::connect_with(&cluster.url_list(), &unique_prefix(), options)
        .await
        .expect("the cluster answers");
    // Keys of several merchants spread over the slots of every master.
    let keys: Vec<_> = (0..12)
        .map(|n| scope_of(&format!("merchant-{n}"), "node-restart"))
        .collect();

    cluster.nodes_mut()[0].stop().expect("kill one master");
    let failed = begin_all(&check, &keys, Until::Failure, Duration::from_secs(10)).await;
    assert!(
        failed.is_err(),
        "a cluster without one master fails some calls"
    );

    cluster.nodes_mut()[0]
        .start_again()
        .expect("restart the master");
    let back = begin_all(&check, &keys, Until::Success, Duration::from_secs(20)).await;
    assert!(back.is_ok(), "{back:?}");
}

/// What a poll waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Until {
    Failure,
    Success,
}

/// Runs `begin` on every key until that fails or succeeds, as `until` says,
/// or the time is up; returns the last outcome.
async fn begin_all(
    check: &RedisCheck,
    keys: &[KeyScope],
    until: Until,
    limit: Duration,
) -> Result<(), CheckError> {
    let deadline = Instant::now() + limit;
    loop {
        let outcome = begin_each(check, keys).await;
        let reached = match until {
            Until::Failure => outcome.is_err(),
            Until::Success => outcome.is_ok(),
        };
        if reached || Instant::now() > deadline {
            return outcome;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn begin_each(check: &RedisCheck, keys: &[KeyScope]) -> Result<(), CheckError> {
    for key in keys {
        check.begin(key, &fingerprint(1), 60_000).await?;
    }
    Ok(())
}
