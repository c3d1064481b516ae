//! Every limit, latency and price the simulation assumes, in one place,
//! each with where it comes from. They are parameters (`Limits`), with
//! AWS's documented figures as defaults and nothing kinder.

use std::time::Duration;

/// What the simulated services enforce and charge.
#[derive(Debug, Clone)]
pub struct Limits {
    // S3 (User Guide, "Best practices design patterns: optimizing Amazon S3
    // performance": at least 3,500 PUT/COPY/POST/DELETE and 5,500
    // GET/HEAD requests per second per partitioned prefix; DeleteObjects
    // counts each key as one delete; 503 SlowDown beyond).
    pub s3_deletes_per_partition: f64,
    pub s3_reads_per_partition: f64,
    /// A partition whose demand stays above this share of its rate...
    pub s3_split_load: f64,
    /// ...for this long splits in two at the median of its recent keys
    /// (S3 documents gradual scaling, not its rule: this is the model's).
    pub s3_split_after: Duration,
    /// LIST page of 1,000 entries (assumed: typical p50 in one region).
    pub s3_list_latency: Duration,
    /// DeleteObjects of 1,000 keys (assumed; scaled by keys sent).
    pub s3_delete_latency: Duration,
    /// Any other request, and a 503 answer (assumed).
    pub s3_small_latency: Duration,

    // DynamoDB (Developer Guide, "Service, account, and table quotas":
    // 1,000 WCU and 3,000 RCU per second per partition, 40,000 each per
    // on-demand table by default; 400 KB per item; 100 items per
    // transaction). A partition key's item collection is one partition's.
    // The ledger's transactions hold 2 or 3 items (a split: both shards and
    // the plan count; a request's last update and its scope lock), so the
    // 100-item limit never binds and is not checked call by call.
    pub ddb_wcu_per_partition: f64,
    pub ddb_rcu_per_partition: f64,
    pub ddb_wcu_per_table: f64,
    pub ddb_rcu_per_table: f64,
    /// One call, answered (assumed: single-digit milliseconds).
    pub ddb_latency: Duration,

    // The SDK's retries (aws-smithy-runtime: the functions configure
    // `RetryConfig::adaptive().with_max_attempts(8)`; exponential backoff
    // with full jitter, 1 s initial, 20 s at most). The adaptive mode's
    // client-side rate limiter is not modelled.
    pub sdk_max_attempts: u32,
    pub sdk_initial_backoff: Duration,
    pub sdk_max_backoff: Duration,

    // Lambda (Developer Guide, "Lambda quotas": 15 minutes per invocation,
    // 1,000 concurrent executions per account by default; asynchronous
    // invocations queue while the function is at its concurrency).
    pub lambda_timeout: Duration,
    pub lambda_account_concurrency: u32,
    /// The purge function's reserved concurrency (template parameter).
    pub purge_reserved_concurrency: u32,
    /// The purge function's memory (template.yaml `MemorySize`).
    pub purge_memory_mb: u32,
    /// The grace-timer's (the sweep's) memory and rate (template.yaml).
    pub sweep_memory_mb: u32,
    pub sweep_every: Duration,

    // EventBridge Scheduler (User Guide: a one-time schedule fires at its
    // minute, at least once; the simulation fires it once, at the minute.
    // "Quotas for Amazon EventBridge Scheduler": CreateSchedule 1,000
    // requests a second in us-east-1 (5,000 in newer figures: the lower is
    // taken), invocations throttled at 1,000 a second, beyond which
    // Scheduler delays them). A fire beyond the rate waits for the next
    // second; creations are counted against their rate (`peak_creates`).
    pub scheduler_creates_per_s: f64,
    pub scheduler_invocations_per_s: f64,

    // List prices, us-east-1, 2026 (aws.amazon.com/{lambda,dynamodb,s3}/pricing):
    /// Lambda arm64, per GB-second.
    pub price_lambda_gb_s: f64,
    /// Lambda, per million requests.
    pub price_lambda_requests: f64,
    /// DynamoDB on-demand, per million write / read request units.
    pub price_wru: f64,
    pub price_rru: f64,
    /// S3 Standard, per 1,000 LIST (and PUT/COPY/POST) requests; DELETE is free.
    pub price_s3_list: f64,
    /// S3 Standard, per 1,000 GET (and other) requests.
    pub price_s3_get: f64,
    /// EventBridge Scheduler, per million invocations (14 million a month free).
    pub price_schedules: f64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            s3_deletes_per_partition: 3500.0,
            s3_reads_per_partition: 5500.0,
            s3_split_load: 0.5,
            s3_split_after: Duration::from_secs(30 * 60),
            s3_list_latency: Duration::from_millis(200),
            s3_delete_latency: Duration::from_secs(1),
            s3_small_latency: Duration::from_millis(20),
            ddb_wcu_per_partition: 1000.0,
            ddb_rcu_per_partition: 3000.0,
            ddb_wcu_per_table: 40_000.0,
            ddb_rcu_per_table: 40_000.0,
            ddb_latency: Duration::from_millis(5),
            sdk_max_attempts: 8,
            sdk_initial_backoff: Duration::from_secs(1),
            sdk_max_backoff: Duration::from_secs(20),
            lambda_timeout: Duration::from_secs(15 * 60),
            lambda_account_concurrency: 1000,
            purge_reserved_concurrency: 100,
            purge_memory_mb: 1024,
            sweep_memory_mb: 256,
            sweep_every: Duration::from_secs(15 * 60),
            scheduler_creates_per_s: 1000.0,
            scheduler_invocations_per_s: 1000.0,
            price_lambda_gb_s: 0.000_013_333_4,
            price_lambda_requests: 0.20,
            price_wru: 0.625,
            price_rru: 0.125,
            price_s3_list: 0.005,
            price_s3_get: 0.0004,
            price_schedules: 1.00,
        }
    }
}

/// A token bucket: `rate` a second, holding at most one second of it.
#[derive(Debug, Clone)]
pub struct Bucket {
    rate: f64,
    tokens: f64,
    at: tokio::time::Instant,
}

impl Bucket {
    pub fn new(rate: f64, now: tokio::time::Instant) -> Bucket {
        Bucket {
            rate,
            tokens: rate,
            at: now,
        }
    }

    fn refill(&mut self, now: tokio::time::Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.rate);
        self.at = now;
    }

    /// Whether `n` tokens are there (taking nothing).
    pub fn has(&mut self, n: f64, now: tokio::time::Instant) -> bool {
        self.refill(now);
        // A request larger than the whole bucket passes when it is full.
        self.tokens >= n.min(self.rate)
    }

    pub fn take(&mut self, n: f64, now: tokio::time::Instant) {
        self.refill(now);
        self.tokens -= n;
    }
}

/// The SDK's backoff before attempt `attempt` (from 1, after the first
/// failure): full jitter over an exponentially growing cap.
pub fn backoff(limits: &Limits, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
    let cap = limits
        .sdk_initial_backoff
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(limits.sdk_max_backoff);
    cap.mul_f64(rng.f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_bucket_refuses_above_its_rate_and_refills_with_time() {
        let now = tokio::time::Instant::now();
        let mut b = Bucket::new(3500.0, now);
        for _ in 0..3 {
            assert!(b.has(1000.0, now));
            b.take(1000.0, now);
        }
        assert!(
            !b.has(1000.0, now),
            "3,500 a second: a fourth 1,000 at once is too many"
        );
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(b.has(1000.0, tokio::time::Instant::now()), "700 more after 0.2 s");
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let limits = Limits::default();
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 1..12 {
            let cap = Duration::from_secs(1 << (attempt - 1)).min(Duration::from_secs(20));
            assert!(backoff(&limits, attempt, &mut rng) <= cap);
        }
    }
}
