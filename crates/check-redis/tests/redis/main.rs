//! Tests of the Redis primary check against real Redis servers.
//!
//! Most tests use the shared server (`ONCEPAY_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`) under a key prefix of their own, deleted when the
//! test ends; they never flush it. Tests that stop, freeze or cluster Redis
//! start their own servers on free loopback ports. When Redis cannot be
//! reached or started, the tests fail under `CI` and are skipped elsewhere.

mod cluster;
mod helpers;
mod outage;
mod scenarios;
mod standalone;
