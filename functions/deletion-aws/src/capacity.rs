//! A meter of the DynamoDB capacity a client consumes, for benchmarks:
//! an SDK interceptor that asks DynamoDB for `ReturnConsumedCapacity:
//! TOTAL` on every request that can carry it (unless the caller asked for
//! something already) and adds up the `ConsumedCapacity` of every answer.
//! The adapter's call sites are untouched; a client without the
//! interceptor (production) behaves exactly as before.
//!
//! Read and write units are kept apart. An answer that names them
//! (`ReadCapacityUnits`, `WriteCapacityUnits`) is taken at its word; one
//! that only gives `CapacityUnits` counts as read units for the read
//! operations (GetItem, Query, Scan, BatchGetItem, TransactGetItems) and as
//! write units for the others. A failed call (a condition that did not
//! hold, a cancelled transaction) carries no `ConsumedCapacity`, so what
//! DynamoDB charges for it is not seen here; its attempt is still counted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use serde_json::{Map, Value};

use crate::{Clients, LocalEndpoints};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The operations whose requests accept `ReturnConsumedCapacity`.
const METERED: &[&str] = &[
    "GetItem",
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "Query",
    "Scan",
    "BatchGetItem",
    "BatchWriteItem",
    "TransactGetItems",
    "TransactWriteItems",
    "ExecuteStatement",
    "BatchExecuteStatement",
    "ExecuteTransaction",
];

/// What a metered client consumed so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Consumed {
    pub read_units: f64,
    pub write_units: f64,
    /// Attempts (HTTP requests, retries included) per operation, from the
    /// requests' `X-Amz-Target`.
    pub calls: BTreeMap<String, u64>,
}

impl Consumed {
    /// Attempts of every operation.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    /// What was consumed since `earlier` (a snapshot of the same meter).
    pub fn since(&self, earlier: &Consumed) -> Consumed {
        let calls = self
            .calls
            .iter()
            .map(|(op, n)| (op.clone(), n - earlier.calls.get(op).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        Consumed {
            read_units: self.read_units - earlier.read_units,
            write_units: self.write_units - earlier.write_units,
            calls,
        }
    }
}

/// A shared tally; clones count into the same one.
#[derive(Clone, Debug, Default)]
pub struct CapacityMeter {
    totals: Arc<Mutex<Consumed>>,
}

impl CapacityMeter {
    pub fn new() -> CapacityMeter {
        CapacityMeter::default()
    }

    /// What was consumed so far.
    pub fn snapshot(&self) -> Consumed {
        self.with(|t| t.clone())
    }

    fn with<R>(&self, f: impl FnOnce(&mut Consumed) -> R) -> R {
        // A panic elsewhere while holding the lock leaves the numbers as
        // they were: still worth reading.
        let mut totals = self.totals.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut totals)
    }

    fn add_call(&self, operation: &str) {
        self.with(|t| *t.calls.entry(operation.to_owned()).or_insert(0) += 1);
    }

    fn add_units(&self, read: f64, write: f64) {
        self.with(|t| {
            t.read_units += read;
            t.write_units += write;
        });
    }

    /// `builder` with this meter's interceptor.
    pub fn install(&self, builder: aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder {
        builder.interceptor(MeterInterceptor { meter: self.clone() })
    }
}

impl Clients {
    /// As [`Clients::for_local_with`], the DynamoDB client metered by
    /// `meter` (the streams' client is not).
    pub async fn for_local_metered(
        endpoints: &LocalEndpoints,
        access_key: &str,
        secret_key: &str,
        meter: &CapacityMeter,
    ) -> Clients {
        let aws = Clients::local_config(&endpoints.aws, access_key, secret_key).await;
        let ledger = Clients::local_config(&endpoints.dynamodb, access_key, secret_key).await;
        let mut clients = Clients::from_configs(&aws, &ledger);
        let config = meter.install(aws_sdk_dynamodb::config::Builder::from(&ledger)).build();
        clients.dynamodb = aws_sdk_dynamodb::Client::from_conf(config);
        clients
    }
}

#[derive(Debug)]
struct MeterInterceptor {
    meter: CapacityMeter,
}

impl Intercept for MeterInterceptor {
    fn name(&self) -> &'static str {
        "CapacityMeter"
    }

    fn modify_before_signing(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request_mut();
        let Some(operation) = request.headers().get("x-amz-target").and_then(operation_of) else {
            return Ok(());
        };
        let operation = operation.to_owned();
        self.meter.add_call(&operation);
        if !METERED.contains(&operation.as_str()) {
            return Ok(());
        }
        let Some(body) = request.body().bytes().and_then(with_total_capacity) else {
            return Ok(());
        };
        request.headers_mut().insert("content-length", body.len().to_string());
        *request.body_mut() = body.into();
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(body) = context.response().body().bytes() else {
            return Ok(());
        };
        use aws_sdk_dynamodb::operation as op;
        let reads = matches!(context.output_or_error(), Ok(output)
            if output.downcast_ref::<op::get_item::GetItemOutput>().is_some()
                || output.downcast_ref::<op::query::QueryOutput>().is_some()
                || output.downcast_ref::<op::scan::ScanOutput>().is_some()
                || output.downcast_ref::<op::batch_get_item::BatchGetItemOutput>().is_some()
                || output.downcast_ref::<op::transact_get_items::TransactGetItemsOutput>().is_some());
        let (read, write) = consumed_units(body, reads);
        if read != 0.0 || write != 0.0 {
            self.meter.add_units(read, write);
        }
        Ok(())
    }
}

/// `PutItem` of `DynamoDB_20120810.PutItem`.
fn operation_of(target: &str) -> Option<&str> {
    target.rsplit_once('.').map(|(_, op)| op)
}

/// The JSON request `body` asking for `ReturnConsumedCapacity: TOTAL`, or
/// `None` when it asks for some already (or is not a JSON object).
fn with_total_capacity(body: &[u8]) -> Option<Vec<u8>> {
    let mut request: Map<String, Value> = serde_json::from_slice(body).ok()?;
    if request.contains_key("ReturnConsumedCapacity") {
        return None;
    }
    request.insert("ReturnConsumedCapacity".to_owned(), Value::from("TOTAL"));
    serde_json::to_vec(&request).ok()
}

/// (read units, write units) in an answer's `ConsumedCapacity` (one
/// object, or one per table); `CapacityUnits` alone counts as read units
/// when `reads`, as write units otherwise.
fn consumed_units(body: &[u8], reads: bool) -> (f64, f64) {
    let Ok(answer) = serde_json::from_slice::<Map<String, Value>>(body) else {
        return (0.0, 0.0);
    };
    let entries: Vec<&Value> = match answer.get("ConsumedCapacity") {
        Some(Value::Array(all)) => all.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => return (0.0, 0.0),
    };
    entries.into_iter().fold((0.0, 0.0), |(r, w), entry| {
        let units = |name: &str| entry.get(name).and_then(Value::as_f64);
        match (units("ReadCapacityUnits"), units("WriteCapacityUnits")) {
            (None, None) => {
                let total = units("CapacityUnits").unwrap_or(0.0);
                if reads {
                    (r + total, w)
                } else {
                    (r, w + total)
                }
            }
            (read, write) => (r + read.unwrap_or(0.0), w + write.unwrap_or(0.0)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, Rule};

    /// Keeps the body of every request as sent.
    #[derive(Debug, Default, Clone)]
    struct Sent(Arc<Mutex<Vec<Value>>>);

    impl Intercept for Sent {
        fn name(&self) -> &'static str {
            "Sent"
        }
        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _components: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            let request = context.request();
            let body = request.body().bytes().unwrap_or_default();
            assert_eq!(
                request.headers().get("content-length"),
                Some(body.len().to_string().as_str())
            );
            self.0.lock().unwrap().push(serde_json::from_slice(body)?);
            Ok(())
        }
    }

    fn answer(body: &str) -> Rule {
        mock!(Client::put_item)
            .sequence()
            .http_status(200, Some(body.to_owned()))
            .build()
    }

    fn metered(rules: &[&Rule]) -> (Client, CapacityMeter, Sent) {
        let (meter, sent) = (CapacityMeter::new(), Sent::default());
        let config = mocked_config!(aws_sdk_dynamodb, rules);
        let builder = meter.install(config.to_builder()).interceptor(sent.clone());
        (Client::from_conf(builder.build()), meter, sent)
    }

    #[tokio::test]
    async fn asks_for_the_total_and_adds_up_what_each_answer_says() {
        let put = answer(r#"{"ConsumedCapacity":{"TableName":"t","CapacityUnits":1.0}}"#);
        let split = answer(
            r#"{"ConsumedCapacity":{"TableName":"t","CapacityUnits":3.5,"ReadCapacityUnits":0.5,"WriteCapacityUnits":3.0}}"#,
        );
        let none = answer("{}");
        let (client, meter, sent) = metered(&[&put, &split, &none]);
        for _ in 0..2 {
            let call = client
                .put_item()
                .table_name("t")
                .item("pk", AttributeValue::S("a".into()));
            call.send().await.unwrap();
        }
        let asked = client
            .put_item()
            .table_name("t")
            .item("pk", AttributeValue::S("a".into()));
        asked
            .return_consumed_capacity(ReturnConsumedCapacity::Indexes)
            .send()
            .await
            .unwrap();

        let consumed = meter.snapshot();
        assert_eq!((consumed.read_units, consumed.write_units), (0.5, 4.0));
        assert_eq!(consumed.calls, BTreeMap::from([("PutItem".to_owned(), 3)]));
        let sent = sent.0.lock().unwrap();
        let asked: Vec<_> = sent.iter().map(|b| b["ReturnConsumedCapacity"].clone()).collect();
        assert_eq!(asked, ["TOTAL", "TOTAL", "INDEXES"]);
        assert_eq!(sent[0]["Item"]["pk"]["S"], "a", "the rest of the request is kept");
    }

    #[tokio::test]
    async fn counts_capacity_units_of_a_read_as_read_units() {
        let get = mock!(Client::get_item)
            .sequence()
            .http_status(
                200,
                Some(r#"{"ConsumedCapacity":{"TableName":"t","CapacityUnits":0.5}}"#.to_owned()),
            )
            .build();
        let (client, meter, _) = metered(&[&get]);
        let key = AttributeValue::S("a".into());
        client.get_item().table_name("t").key("pk", key).send().await.unwrap();
        let consumed = meter.snapshot();
        assert_eq!((consumed.read_units, consumed.write_units), (0.5, 0.0));
        assert_eq!(consumed.total_calls(), 1);
    }

    #[test]
    fn sums_one_entry_per_table() {
        let body = br#"{"ConsumedCapacity":[{"TableName":"a","CapacityUnits":2.0},{"TableName":"b","WriteCapacityUnits":1.0}]}"#;
        assert_eq!(consumed_units(body, false), (0.0, 3.0));
        assert_eq!(consumed_units(body, true), (2.0, 1.0));
        assert_eq!(consumed_units(b"{}", true), (0.0, 0.0));
        assert_eq!(consumed_units(b"not json", true), (0.0, 0.0));
    }

    #[test]
    fn leaves_a_request_alone_that_asks_already_or_is_not_json() {
        assert_eq!(with_total_capacity(br#"{"ReturnConsumedCapacity":"NONE"}"#), None);
        assert_eq!(with_total_capacity(b"[]"), None);
        assert_eq!(
            with_total_capacity(b"{}").as_deref(),
            Some(&br#"{"ReturnConsumedCapacity":"TOTAL"}"#[..])
        );
    }

    #[test]
    fn since_is_the_difference_of_two_snapshots() {
        let earlier = Consumed {
            read_units: 1.0,
            write_units: 2.0,
            calls: BTreeMap::from([("Query".to_owned(), 1)]),
        };
        let later = Consumed {
            read_units: 1.5,
            write_units: 5.0,
            calls: BTreeMap::from([("Query".to_owned(), 1), ("PutItem".to_owned(), 2)]),
        };
        let delta = later.since(&earlier);
        assert_eq!((delta.read_units, delta.write_units), (0.5, 3.0));
        assert_eq!(delta.calls, BTreeMap::from([("PutItem".to_owned(), 2)]));
    }
}
