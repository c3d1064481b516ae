//! Scenario "claims": what taking a shard costs the ledger at 10, 1,000
//! and 10,000 shards (`CLAIM_SHARDS`), on DynamoDB Local, metered: the
//! purge's own path (`deletion_core::purge::next_free`) and the claim's
//! conditional write, on the first pass (the counter) and after it (the
//! index of open shards: every number drawn, the claimed shards leased,
//! the rest free). Each figure is the mean over `CLAIMS` claims (10, at
//! most half the shards); the claims are taken by one ledger client, as a
//! worker takes them (a process new to a request reads its plan once more).

use chrono::Duration;
use deletion_aws::capacity::Consumed;
use deletion_aws::dynamodb::DynamoLedger;
use deletion_core::ids::RequestId;
use deletion_core::model::Shard;
use deletion_core::ports::{Clock, Ledger as _, SystemClock};
use deletion_core::purge::{next_free, Next, PurgeConfig};
use futures::stream::{self, TryStreamExt};

use crate::tools::Ledger;
use crate::{env, number, BoxError};

/// Per claim: read units, write units, ledger calls.
#[derive(Clone, Copy, Debug)]
struct Cost {
    rru: f64,
    wru: f64,
    calls: f64,
}

fn per_claim(c: &Consumed, claims: usize) -> Cost {
    let k = claims.max(1) as f64;
    Cost {
        rru: c.read_units / k,
        wru: c.write_units / k,
        calls: c.total_calls() as f64 / k,
    }
}

/// `n` shards of one request, planned as the purge plans them (chunks of
/// a thousand written side by side).
async fn plan(table: &DynamoLedger, id: &RequestId, n: u32) -> Result<(), BoxError> {
    let shards: Vec<Shard> = (0..n)
        .map(|i| Shard::planned(id, i, "bench", "bench", &format!("claims/s{i:05}/"), "claims/"))
        .collect();
    // The first chunk alone fixes the plan's layout; the rest side by side.
    let (first, rest) = shards.split_at(shards.len().min(1000));
    table.insert_shards(first).await?;
    stream::iter(rest.chunks(1000).map(Ok::<_, BoxError>))
        .try_for_each_concurrent(4, |chunk| async move { Ok(table.insert_shards(chunk).await?) })
        .await
}

/// `claims` shards taken one after another through the purge's own path.
async fn take(
    ledger: &Ledger<'_>,
    table: &DynamoLedger,
    id: &RequestId,
    claims: usize,
    first: bool,
) -> Result<Cost, BoxError> {
    let workers = PurgeConfig::default().workers;
    let before = ledger.meter.snapshot();
    let mut first_pass = first;
    for _ in 0..claims {
        let now = SystemClock.now();
        match next_free(table, id, workers, now, &mut first_pass).await? {
            Next::Free(shard) => {
                table
                    .update_shard(&shard.claimed("bench", now, Duration::minutes(16)))
                    .await?
            }
            other => return Err(format!("no free shard to take: {other:?}").into()),
        }
    }
    Ok(per_claim(&ledger.meter.snapshot().since(&before), claims))
}

/// Every number of the counter drawn (the first pass over).
async fn draw_all(table: &DynamoLedger, id: &RequestId) -> Result<(), BoxError> {
    let draw = || async {
        while table.next_unstarted(id).await?.is_some() {}
        Ok::<_, BoxError>(())
    };
    futures::future::try_join_all((0..8).map(|_| draw())).await?;
    Ok(())
}

pub async fn claims(ledger: &Ledger<'_>) -> Result<(), BoxError> {
    let sizes: Vec<u32> = env("CLAIM_SHARDS", "10,1000,10000")
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("CLAIM_SHARDS: {e}"))?;
    let sample = number("CLAIMS", 10)?;
    let table = DynamoLedger::new(ledger.clients.dynamodb.clone(), ledger.table);
    let mut rows: Vec<(u32, Cost, Cost)> = Vec::new();
    for n in sizes {
        let k = sample.min(n as usize / 2).max(1);
        let id = RequestId::new();
        eprintln!("claims: planning {n} shards");
        plan(&table, &id, n).await?;
        let first = take(ledger, &table, &id, k, true).await?;
        draw_all(&table, &id).await?;
        let after = take(ledger, &table, &id, k, false).await?;
        rows.push((n, first, after));
    }
    print_claims(sample, &rows);
    Ok(())
}

fn print_claims(sample: usize, rows: &[(u32, Cost, Cost)]) {
    println!("\n## Taking a shard (DynamoDB Local): ledger cost per claim, mean of up to {sample} claims");
    println!("| shards | first pass: RRU | WRU | calls | after it (index): RRU | WRU | calls |");
    println!("|---|---|---|---|---|---|---|");
    for (n, f, a) in rows {
        println!(
            "| {n} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            f.rru, f.wru, f.calls, a.rru, a.wru, a.calls
        );
    }
    // O(1): the reads per claim at the most shards within 1.5x (+1 unit,
    // for rounding of tiny reads) of those at the fewest.
    if let (Some(small), Some(large)) = (rows.first(), rows.last()) {
        for (what, s, l) in [("first pass", small.1, large.1), ("index", small.2, large.2)] {
            let pass = l.rru <= s.rru * 1.5 + 1.0;
            let verdict = if pass { "PASS" } else { "MISS" };
            println!(
                "target {what} RRU per claim at {} shards ≤ 1.5× that at {} (+1): {:.2} vs {:.2} {verdict}",
                large.0, small.0, l.rru, s.rru
            );
        }
    }
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|(n, f, a)| {
            serde_json::json!({"shards": n,
                "first_pass": {"rru": f.rru, "wru": f.wru, "calls": f.calls},
                "index": {"rru": a.rru, "wru": a.wru, "calls": a.calls}})
        })
        .collect();
    println!("BENCH {}", serde_json::json!({"scenario": "claims", "rows": json}));
}
