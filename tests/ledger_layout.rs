//! Where the ledger keeps a purge's shards, on DynamoDB Local: a new plan
//! spreads them over partitions of their own; a plan written by an earlier
//! version (its shards beside the request, in the deployed key format) is
//! read, taken, checkpointed and split where it is. What the service no
//! longer needs carries the table's TTL attribute, and a key past its
//! lifetime is free again.

use std::collections::{BTreeSet, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Duration;
use deletion_aws::dynamodb::DynamoLedger;
use deletion_core::ids::RequestId;
use deletion_core::model::Shard;
use deletion_core::ports::{Clock, Ledger};
use integration_tests::{env, Env, Versioning};

fn planned(env: &Env, id: &RequestId, n: u32) -> Vec<Shard> {
    (0..n)
        .map(|i| Shard::planned(id, i, "archive", &env.archive, &format!("acme/s{i:02}/"), "acme/"))
        .collect()
}

/// The partition keys of every shard item of the request, read raw.
async fn partitions_holding(env: &Env, id: &RequestId) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut start = None;
    loop {
        let out = env
            .clients
            .dynamodb
            .scan()
            .table_name(&env.stack.settings.table)
            .filter_expression("begins_with(sk, :s) AND contains(pk, :id)")
            .expression_attribute_values(":s", AttributeValue::S("SHARD#".into()))
            .expression_attribute_values(":id", AttributeValue::S(id.to_string()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in out.items() {
            found.insert(item["pk"].as_s().unwrap().clone());
        }
        start = out.last_evaluated_key;
        if start.is_none() {
            return found;
        }
    }
}

/// A shard as a version before the spreading wrote it: beside the request.
async fn put_as_before(env: &Env, sh: &Shard) {
    let s = |v: String| AttributeValue::S(v);
    let item = HashMap::from([
        ("pk".to_owned(), s(format!("REQ#{}", sh.request_id))),
        ("sk".to_owned(), s(format!("SHARD#{:06}", sh.index))),
        ("version".to_owned(), AttributeValue::N(sh.version.to_string())),
        ("done".to_owned(), AttributeValue::Bool(false)),
        ("doc".to_owned(), s(serde_json::to_string(sh).unwrap())),
        ("gsi3pk".to_owned(), s(format!("OPEN#{}", sh.request_id))),
        ("gsi3sk".to_owned(), s(format!("0#{:06}", sh.index))),
    ]);
    env.clients
        .dynamodb
        .put_item()
        .table_name(&env.stack.settings.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plan_spreads_its_shards_over_sixteen_partitions_of_their_own() {
    let env = env(Versioning::None).await;
    let id = RequestId::new();
    env.stack.ledger.insert_shards(&planned(&env, &id, 40)).await.unwrap();
    let pks = partitions_holding(&env, &id).await;
    assert_eq!(pks.len(), 16, "{pks:?}");
    assert!(!pks.contains(&format!("REQ#{id}")), "none beside the request");
    // A process that has not seen the plan finds every shard, in order.
    let fresh = DynamoLedger::new(env.clients.dynamodb.clone(), env.stack.settings.table.clone());
    let all: Vec<u32> = fresh.shards(&id).await.unwrap().iter().map(|s| s.index).collect();
    assert_eq!(all, (0..40).collect::<Vec<_>>());
    assert_eq!(fresh.shard(&id, 17).await.unwrap().unwrap().prefix, "acme/s17/");
    // Taken, checkpointed and split in their own partitions.
    let now = env.clock.now();
    let taken = fresh
        .shard(&id, 3)
        .await
        .unwrap()
        .unwrap()
        .claimed("w", now, Duration::minutes(16));
    fresh.update_shard(&taken).await.unwrap();
    let (mine, new) = taken.split_at("acme/s03/m", 40);
    fresh.split_shard(&mine, &new).await.unwrap();
    assert_eq!(env.stack.ledger.shards_planned(&id).await.unwrap(), Some(41));
    assert_eq!(
        env.stack.ledger.shard(&id, 40).await.unwrap().unwrap().after.as_deref(),
        Some("acme/s03/m")
    );
    assert_eq!(
        partitions_holding(&env, &id).await,
        pks,
        "the new shard in group 40 mod 16"
    );
    // A stale checkpoint is refused, as beside the request.
    assert!(matches!(
        fresh.update_shard(&taken).await,
        Err(deletion_core::LedgerError::Conflict)
    ));
    // A small plan uses as many partitions as it has shards.
    let small = RequestId::new();
    env.stack.ledger.insert_shards(&planned(&env, &small, 3)).await.unwrap();
    assert_eq!(partitions_holding(&env, &small).await.len(), 3);
    assert_eq!(fresh.shards(&small).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_written_before_the_spreading_is_worked_where_it_is() {
    let env = env(Versioning::None).await;
    let id = RequestId::new();
    let old = planned(&env, &id, 3);
    for sh in &old {
        put_as_before(&env, sh).await;
    }
    let ledger = DynamoLedger::new(env.clients.dynamodb.clone(), env.stack.settings.table.clone());
    // Not counted yet (as plans before the counter): counting it keeps
    // every shard where it is, with its checkpoint.
    assert_eq!(ledger.shards_planned(&id).await.unwrap(), None);
    assert_eq!(ledger.shards(&id).await.unwrap().len(), 3);
    ledger.insert_shards(&old).await.unwrap();
    assert_eq!(ledger.shards_planned(&id).await.unwrap(), Some(3));
    let beside = BTreeSet::from([format!("REQ#{id}")]);
    assert_eq!(partitions_holding(&env, &id).await, beside);
    // Another process (no layout remembered) takes, checkpoints, splits.
    let other = DynamoLedger::new(env.clients.dynamodb.clone(), env.stack.settings.table.clone());
    assert_eq!(other.next_unstarted(&id).await.unwrap(), Some(0));
    let now = env.clock.now();
    let taken = other
        .shard(&id, 0)
        .await
        .unwrap()
        .unwrap()
        .claimed("w", now, Duration::minutes(16));
    other.update_shard(&taken).await.unwrap();
    let (mine, new) = taken.split_at("acme/s00/m", 3);
    other.split_shard(&mine, &new).await.unwrap();
    let all: Vec<u32> = other.shards(&id).await.unwrap().iter().map(|s| s.index).collect();
    assert_eq!(all, [0, 1, 2, 3]);
    assert_eq!(partitions_holding(&env, &id).await, beside, "nothing moved or copied");
    let open = other.open_shards(&id, 10).await.unwrap();
    assert_eq!(open.len(), 4, "the index covers the old plan too");
}

/// The TTL attribute of a raw item, in epoch seconds.
fn expiry(item: &HashMap<String, AttributeValue>) -> Option<i64> {
    item.get("expires_at")?.as_n().ok()?.parse().ok()
}

#[tokio::test]
async fn what_the_ledger_no_longer_needs_expires_and_a_key_past_its_day_is_free() {
    let env = env(Versioning::None).await;
    env.put(&env.archive, "acme/web/2024-01-01/x.json.gz").await;
    env.put(&env.archive, "acme/ios/2024-01-01/x.json.gz").await;
    let key = [("Idempotency-Key", "close-acme-1")];
    let first = env.call("POST", "/v1/workspaces/acme/deletion", None, &key).await;
    assert_eq!(first.status, 202, "{:#}", first.body);
    let id = first.body["id"].as_str().unwrap().to_owned();
    let created = env.clock.now();

    // The key's item expires a day after the request's creation.
    let idem: Vec<(String, String)> = env
        .ledger_keys()
        .await
        .into_iter()
        .filter(|(pk, _)| pk.starts_with("IDEM#"))
        .collect();
    assert_eq!(idem.len(), 1);
    let item = env.raw_item(&idem[0].0, &idem[0].1).await.unwrap();
    assert_eq!(expiry(&item), Some((created + Duration::hours(24)).timestamp()));
    let again = env.call("POST", "/v1/workspaces/acme/deletion", None, &key).await;
    assert_eq!(
        (again.status.as_u16(), again.body["id"].as_str()),
        (200, Some(id.as_str())),
        "a retry"
    );

    env.settle().await;
    env.clock.advance(Duration::days(5) + Duration::minutes(2));
    env.settle().await;
    let done = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await.body;
    assert_eq!(done["status"], "COMPLETED", "{done:#}");
    assert_eq!(done["progress"]["shards_done"], done["progress"]["shards_total"]);
    assert!(done["progress"]["shards_total"].as_u64().unwrap() >= 2, "{done:#}");

    // The shards and the plan expire a week after the receipt; the
    // request, its lock's release and its receipt stay.
    let week = (env.clock.now() + deletion_core::model::ledger::WORK_KEPT_AFTER_COMPLETION).timestamp();
    let mut shards = 0;
    for (pk, sk) in env.ledger_keys().await {
        if !pk.contains(id.as_str()) {
            continue;
        }
        let item = env.raw_item(&pk, &sk).await.unwrap();
        if sk.starts_with("SHARD") {
            shards += u32::from(sk.starts_with("SHARD#"));
            let at = expiry(&item).unwrap_or_else(|| panic!("{pk}/{sk} does not expire"));
            assert!((week - 60..=week).contains(&at), "{pk}/{sk}: {at} vs {week}");
        } else {
            assert_eq!(expiry(&item), None, "{pk}/{sk} is kept");
        }
    }
    assert!(shards >= 2);

    // A day after its request's creation the key is free: asking with it
    // again makes a new request, not a replay of the old.
    env.put(&env.archive, "acme/web/2024-02-01/x.json.gz").await;
    let later = env.call("POST", "/v1/workspaces/acme/deletion", None, &key).await;
    assert_eq!(later.status, 202, "{:#}", later.body);
    assert_ne!(later.body["id"].as_str(), Some(id.as_str()));
}
