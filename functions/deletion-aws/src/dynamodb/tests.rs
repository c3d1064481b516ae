//! The adapter's unit tests: items as stored, and (against canned
//! DynamoDB answers, `aws-smithy-mocks`) its mapping of DynamoDB's errors.

use std::collections::HashMap;

use chrono::Utc;
use deletion_core::model::{DeletionRequest, PrefixReceipt, Scope};
use deletion_core::LedgerError;

use super::items::{decode, item_size, n, ITEM_LIMIT};
use super::requests::request_items;
use chrono::{Duration, NaiveDate};
use deletion_core::ids::{SourceId, WorkspaceId};
use deletion_core::lifecycle::{Periods, MAX_HISTORY, MAX_NOTE_BYTES};
use deletion_core::model::{Counts, Receipt, Status, Transition};

/// A completed request of `days` days of a source, with its receipt
/// (one entry per day) and a history as long and wordy as it gets.
fn completed(days: u64) -> DeletionRequest {
    let from = NaiveDate::from_ymd_opt(2016, 1, 1).unwrap();
    let scope = Scope::SourceDays {
        workspace: WorkspaceId::parse("acme-corporation-production").unwrap(),
        source: SourceId::parse("web-frontend-tracking").unwrap(),
        from,
        to: from + chrono::Days::new(days - 1),
    };
    let now = Utc::now();
    let mut r = DeletionRequest::new(scope.clone(), "alice", None, now, Periods::default());
    let prefixes: Vec<PrefixReceipt> = (0..days)
        .map(|d| PrefixReceipt {
            store: "archive".into(),
            bucket: "acme-archive-bucket-us-east-1-production".into(),
            prefix: format!(
                "acme-corporation-production/web-frontend-tracking/{}/",
                from + chrono::Days::new(d)
            ),
            deleted: Counts {
                objects: u64::MAX,
                versions: u64::MAX,
                delete_markers: u64::MAX,
                uploads_aborted: u64::MAX,
                bytes: u64::MAX,
            },
            rewritten: None,
        })
        .collect();
    r.history = vec![
        Transition {
            status: Status::Purging,
            at: now,
            by: "w".repeat(64),
            note: Some("n".repeat(MAX_NOTE_BYTES)),
        };
        MAX_HISTORY
    ];
    r.failure = Some("f".repeat(MAX_NOTE_BYTES));
    r.status = Status::Completed;
    r.receipt = Some(Receipt {
        request_id: r.id.clone(),
        scope,
        prefixes,
        totals: Counts::default(),
        purge_started_at: now,
        purge_finished_at: now + Duration::hours(1),
        verified_at: now + Duration::hours(1),
        verification: "nothing left".into(),
        signature: None,
    });
    r
}

#[test]
fn a_completed_request_with_a_3660_day_receipt_is_stored_in_items_under_the_limit() {
    let r = completed(3660);
    let (item, chunk_items) = request_items(&r).unwrap();
    assert!(
        item_size(&item) < ITEM_LIMIT,
        "request item: {} bytes",
        item_size(&item)
    );
    assert!(chunk_items.len() >= 2, "the receipt moved out: {}", chunk_items.len());
    let mut prefixes = Vec::new();
    for chunk in &chunk_items {
        assert!(item_size(chunk) < ITEM_LIMIT, "chunk: {} bytes", item_size(chunk));
        prefixes.extend(decode::<Vec<PrefixReceipt>>(chunk).unwrap());
    }
    assert_eq!(
        &prefixes,
        &r.receipt.as_ref().unwrap().prefixes,
        "every prefix, in order"
    );
    assert_eq!(item.get("receipt_chunks"), Some(&n(chunk_items.len() as u64)));
    // A small receipt stays in the request item.
    let (_, none) = request_items(&completed(30)).unwrap();
    assert!(none.is_empty());
}

/// The adapter's error mapping, against canned DynamoDB answers.
mod mapped {
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
    use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
    use aws_sdk_dynamodb::types::error::{
        ConditionalCheckFailedException, InternalServerError, ProvisionedThroughputExceededException,
        ThrottlingException, TransactionCanceledException, TransactionInProgressException,
    };
    use aws_sdk_dynamodb::types::{CancellationReason, KeysAndAttributes};
    use aws_sdk_dynamodb::Client;
    use aws_smithy_mocks::{mock, Rule};
    use deletion_core::ids::{IdempotencyKey, RequestId};
    use deletion_core::model::Shard;
    use deletion_core::ports::{Hold, Holds, Ledger, Regulations};
    use deletion_core::regulation::UserId;

    use super::*;
    use crate::dynamodb::items::{key, s, Item};
    use crate::dynamodb::{keys, DynamoLedger};

    const TABLE: &str = "ledger";

    /// A ledger whose client answers with `rules`, in order, and never
    /// retries (the SDK's own retries are not under test).
    fn ledger(rules: &[&Rule]) -> DynamoLedger {
        let config = mocked_config!(aws_sdk_dynamodb, rules);
        DynamoLedger::new(Client::from_conf(config), TABLE)
    }

    fn request(status: Status) -> DeletionRequest {
        let scope = Scope::Workspace {
            workspace: WorkspaceId::parse("acme").unwrap(),
        };
        let mut r = DeletionRequest::new(scope, "alice", None, Utc::now(), Periods::default());
        r.status = status;
        r.version += 1;
        r
    }

    fn condition_failed() -> Rule {
        mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
        })
    }

    fn cancelled(codes: &'static [&'static str]) -> Rule {
        mock!(Client::transact_write_items).then_error(move || {
            let mut e = TransactionCanceledException::builder().message("Transaction cancelled");
            for code in codes {
                e = e.cancellation_reasons(CancellationReason::builder().code(*code).build());
            }
            TransactWriteItemsError::TransactionCanceledException(e.build())
        })
    }

    #[tokio::test]
    async fn a_failed_condition_on_a_versioned_write_is_a_conflict() {
        let rule = condition_failed();
        let ledger = ledger(&[&rule]);
        let r = request(Status::Purging);
        assert!(matches!(ledger.update(&r).await, Err(LedgerError::Conflict)));
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn throttling_that_outlasts_the_sdks_retries_is_unavailable_not_a_conflict() {
        let rule = mock!(Client::put_item).then_error(|| {
            PutItemError::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder()
                    .message("slow down")
                    .build(),
            )
        });
        let ledger = ledger(&[&rule]);
        match ledger.update(&request(Status::Purging)).await {
            Err(LedgerError::Unavailable(m)) => assert!(m.contains("slow down"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_cancelled_release_is_mapped_by_its_cancellation_reasons() {
        // A final state releases the scope in a transaction.
        let conflict = cancelled(&["ConditionalCheckFailed", "None"]);
        let r = request(Status::Revoked);
        assert!(matches!(
            ledger(&[&conflict]).update(&r).await,
            Err(LedgerError::Conflict)
        ));
        let contention = cancelled(&["None", "TransactionConflict"]);
        assert!(matches!(
            ledger(&[&contention]).update(&r).await,
            Err(LedgerError::Unavailable(_))
        ));
        let invalid = cancelled(&["ValidationError", "None"]);
        match ledger(&[&invalid]).update(&r).await {
            Err(LedgerError::Refused(m)) => assert!(m.contains("ValidationError"), "{m}"),
            other => panic!("{other:?}"),
        }
        let too_big = cancelled(&["None", "ItemCollectionSizeLimitExceeded"]);
        match ledger(&[&too_big]).update(&r).await {
            Err(LedgerError::Refused(m)) => assert!(m.contains("ItemCollectionSizeLimitExceeded"), "{m}"),
            other => panic!("{other:?}"),
        }
        // A failed condition beside contention is still a conflict.
        let both = cancelled(&["TransactionConflict", "ConditionalCheckFailed"]);
        assert!(matches!(ledger(&[&both]).update(&r).await, Err(LedgerError::Conflict)));
    }

    #[tokio::test]
    async fn a_transaction_refused_before_any_item_is_unavailable_not_a_conflict() {
        let refusals: [fn() -> TransactWriteItemsError; 3] = [
            || TransactWriteItemsError::InternalServerError(InternalServerError::builder().message("internal").build()),
            || {
                TransactWriteItemsError::ThrottlingException(
                    ThrottlingException::builder().message("throttled").build(),
                )
            },
            || {
                TransactWriteItemsError::TransactionInProgressException(
                    TransactionInProgressException::builder().message("in progress").build(),
                )
            },
        ];
        for refusal in refusals {
            // A final state's release, and an insert.
            let rule = mock!(Client::transact_write_items).then_error(refusal);
            match ledger(&[&rule]).update(&request(Status::Revoked)).await {
                Err(LedgerError::Unavailable(m)) => assert!(m.contains(&refusal().to_string()), "{m}"),
                other => panic!("{other:?}"),
            }
            // No holder is read: nothing says the scope is taken.
            let rule = mock!(Client::transact_write_items).then_error(refusal);
            assert!(matches!(
                ledger(&[&rule]).insert(&request(Status::Scheduled), None).await,
                Err(LedgerError::Unavailable(_))
            ));
        }
    }

    #[tokio::test]
    async fn a_cancelled_insert_whose_idempotency_key_is_anothers_names_that_request() {
        let r = request(Status::Scheduled);
        let idem = IdempotencyKey::parse("create-acme-1").unwrap();
        let other = RequestId::new();
        let idem_pk = keys::idem_pk(&idem);
        let used = {
            let other = other.clone();
            let asked = idem_pk.clone();
            mock!(Client::get_item)
                .match_requests(move |req| req.key().and_then(|k| k.get("pk")) == Some(&s(asked.clone())))
                .then_output(move || {
                    let mut item = key(idem_pk.clone(), keys::IDEM_SK);
                    item.insert("request_id".into(), s(other.as_str()));
                    GetItemOutput::builder().set_item(Some(item)).build()
                })
        };
        let tx = cancelled(&["None", "None", "ConditionalCheckFailed"]);
        match ledger(&[&tx, &used]).insert(&r, Some(&idem)).await {
            Err(LedgerError::IdempotencyKeyUsed { holder }) => assert_eq!(holder, other.as_str()),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_cancelled_insert_names_the_holder_of_the_scope_or_is_a_conflict_once_released() {
        let r = request(Status::Scheduled);
        let holder = RequestId::new();
        let lock_pk = keys::lock_pk(&r.scope);
        let held = {
            let lock_pk = lock_pk.clone();
            let holder = holder.clone();
            mock!(Client::get_item)
                .match_requests(move |req| req.key().and_then(|k| k.get("pk")) == Some(&s(lock_pk.clone())))
                .then_output(move || {
                    let mut item = key(keys::lock_pk(&request(Status::Scheduled).scope), keys::LOCK_SK);
                    item.insert("request_id".into(), s(holder.as_str()));
                    GetItemOutput::builder().set_item(Some(item)).build()
                })
        };
        let tx = cancelled(&[]);
        match ledger(&[&tx, &held]).insert(&r, None).await {
            Err(LedgerError::ScopeBusy { scope, holder: h }) => {
                assert_eq!(scope, r.scope.lock_key());
                assert_eq!(h, holder.as_str());
            }
            other => panic!("{other:?}"),
        }
        // The lock was released in between: the caller tries again.
        let tx = cancelled(&["None", "ConditionalCheckFailed"]);
        let gone = mock!(Client::get_item).then_output(|| GetItemOutput::builder().build());
        assert!(matches!(
            ledger(&[&tx, &gone]).insert(&r, None).await,
            Err(LedgerError::Conflict)
        ));
    }

    /// The plan item as stored: its layout (`groups`) and count.
    fn plan_item(r: &DeletionRequest, groups: Option<u64>, total: u64) -> Rule {
        let pk = keys::request_pk(&r.id);
        mock!(Client::get_item).then_output(move || {
            let mut item = key(pk.clone(), keys::SHARD_PLAN_SK);
            item.insert("total".into(), n(total));
            if let Some(groups) = groups {
                item.insert("groups".into(), n(groups));
            }
            GetItemOutput::builder().set_item(Some(item)).build()
        })
    }

    #[tokio::test]
    async fn a_shard_planned_already_keeps_its_checkpoint() {
        let r = request(Status::Purging);
        let plan = plan_item(&r, Some(16), 1);
        let group = keys::shard_group_pk(&r.id, 0);
        let rule = mock!(Client::put_item)
            .match_requests(move |req| req.item().and_then(|i| i.get("pk")) == Some(&s(group.clone())))
            .then_error(|| {
                PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
            });
        // The plan's count is stored already, as high or higher.
        let counted = mock!(Client::update_item).then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
        });
        let shard = shard(&r, 0);
        ledger(&[&plan, &rule, &counted]).insert_shards(&[shard]).await.unwrap();
        assert_eq!((rule.num_calls(), counted.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn the_counter_hands_out_the_number_it_held_and_none_once_all_were() {
        let first =
            mock!(Client::update_item).then_output(|| UpdateItemOutput::builder().attributes("next", n(7)).build());
        let r = request(Status::Purging);
        assert_eq!(ledger(&[&first]).next_unstarted(&r.id).await.unwrap(), Some(7));
        let spent = mock!(Client::update_item).then_error(|| {
            UpdateItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
        });
        assert_eq!(ledger(&[&spent]).next_unstarted(&r.id).await.unwrap(), None);
    }

    #[tokio::test]
    async fn the_open_index_gives_lease_ends_and_numbers_and_skips_what_it_cannot_read() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let r = request(Status::Purging);
        let entries = [keys::open_sk(None, 3), "garbage".to_owned(), keys::open_sk(Some(at), 1)];
        let rule = mock!(Client::query).then_output(move || {
            let items = entries
                .iter()
                .map(|sk| HashMap::from([("gsi3sk".to_owned(), s(sk.clone()))]))
                .collect();
            QueryOutput::builder().set_items(Some(items)).build()
        });
        let open = ledger(&[&rule]).open_shards(&r.id, 8).await.unwrap();
        let got: Vec<(u32, Option<chrono::DateTime<Utc>>)> = open.iter().map(|o| (o.index, o.lease_until)).collect();
        assert_eq!(got, [(3, None), (1, Some(at))]);
    }

    #[tokio::test]
    async fn a_hold_placed_twice_answers_the_one_in_force() {
        let ws = WorkspaceId::parse("acme").unwrap();
        let first = Hold {
            workspace: ws.clone(),
            reason: "litigation".into(),
            placed_by: "ops".into(),
            since: Utc::now(),
        };
        let stored = {
            let first = first.clone();
            mock!(Client::get_item).then_output(move || {
                let mut item = key(keys::hold_pk(&first.workspace), keys::HOLD_SK);
                item.insert("reason".into(), s(first.reason.clone()));
                item.insert("placed_by".into(), s(first.placed_by.clone()));
                item.insert("since".into(), s("2026-01-01T00:00:00.000Z"));
                GetItemOutput::builder().set_item(Some(item)).build()
            })
        };
        let second = Hold {
            reason: "another".into(),
            ..first.clone()
        };
        let put = condition_failed();
        let held = ledger(&[&put, &stored]).place_hold(&second).await.unwrap();
        assert_eq!(held.reason, "litigation");
    }

    fn suppression_item(ws: &WorkspaceId, user: &str) -> Item {
        let mut item = key(
            keys::suppression_pk(ws),
            keys::suppression_sk(&UserId::parse(user).unwrap()),
        );
        item.insert("user_id".into(), s(user));
        item.insert("suppressed".into(), aws_sdk_dynamodb::types::AttributeValue::Bool(true));
        item.insert("since".into(), s("2026-01-01T00:00:00.000Z"));
        item.insert("regulation".into(), s(RequestId::new().as_str()));
        item.insert("stamp".into(), s("2026-01-01T00:00:00.000Z#x"));
        item
    }

    #[tokio::test]
    async fn unprocessed_keys_of_a_batch_read_are_asked_again() {
        let ws = WorkspaceId::parse("acme").unwrap();
        let users = [UserId::parse("ann").unwrap(), UserId::parse("bob").unwrap()];
        let first = {
            let ws = ws.clone();
            mock!(Client::batch_get_item).then_output(move || {
                let bob = key(keys::suppression_pk(&ws), "U#bob");
                BatchGetItemOutput::builder()
                    .responses(TABLE, vec![suppression_item(&ws, "ann")])
                    .unprocessed_keys(TABLE, KeysAndAttributes::builder().keys(bob).build().unwrap())
                    .build()
            })
        };
        let second = {
            let ws = ws.clone();
            mock!(Client::batch_get_item)
                .match_requests(|req| {
                    req.request_items()
                        .and_then(|r| r.get(TABLE))
                        .is_some_and(|k| k.keys().len() == 1)
                })
                .then_output(move || {
                    BatchGetItemOutput::builder()
                        .responses(TABLE, vec![suppression_item(&ws, "bob")])
                        .build()
                })
        };
        let found = ledger(&[&first, &second])
            .suppressions(&ws, None, &users)
            .await
            .unwrap();
        let ids: Vec<&str> = found.iter().map(|f| f.user_id.as_str()).collect();
        assert_eq!(ids, ["ann", "bob"]);
        assert_eq!(second.num_calls(), 1, "the unprocessed key, asked again");
    }

    #[tokio::test]
    async fn a_suppression_older_than_the_one_stored_leaves_it_standing() {
        let ws = WorkspaceId::parse("acme").unwrap();
        let users = [UserId::parse("ann").unwrap()];
        // The stored entry's stamp is later: the condition fails, and that
        // is the outcome wanted, not an error.
        let later = mock!(Client::put_item)
            .match_requests(|req| {
                req.condition_expression()
                    .is_some_and(|c| c.contains("stamp <= :stamp"))
            })
            .then_error(|| {
                PutItemError::ConditionalCheckFailedException(ConditionalCheckFailedException::builder().build())
            });
        ledger(&[&later])
            .set_suppressed(&ws, None, &users, true, &RequestId::new(), Utc::now())
            .await
            .unwrap();
        assert_eq!(later.num_calls(), 1);
        let throttled = mock!(Client::put_item).then_error(|| {
            PutItemError::ProvisionedThroughputExceededException(
                ProvisionedThroughputExceededException::builder().build(),
            )
        });
        assert!(matches!(
            ledger(&[&throttled])
                .set_suppressed(&ws, None, &users, false, &RequestId::new(), Utc::now())
                .await,
            Err(LedgerError::Unavailable(_))
        ));
    }

    fn shard(r: &DeletionRequest, index: u32) -> Shard {
        Shard::planned(&r.id, index, "archive", "cdp-archive", "acme/", "")
    }

    fn shard_item(sh: &Shard) -> Item {
        let mut item = key(keys::request_pk(&sh.request_id), keys::shard_sk(sh.index));
        item.insert("doc".into(), s(serde_json::to_string(sh).unwrap()));
        item
    }

    #[tokio::test]
    async fn a_query_over_several_pages_hands_each_last_evaluated_key_back() {
        let r = request(Status::Purging);
        let (first, second) = (shard(&r, 0), shard(&r, 1));
        let last = key(keys::request_pk(&r.id), keys::shard_sk(0));
        let page1 = {
            let (item, last) = (shard_item(&first), last.clone());
            mock!(Client::query)
                .match_requests(|req| req.exclusive_start_key().is_none())
                .then_output(move || {
                    QueryOutput::builder()
                        .items(item.clone())
                        .set_last_evaluated_key(Some(last.clone()))
                        .build()
                })
        };
        let page2 = {
            let item = shard_item(&second);
            mock!(Client::query)
                .match_requests(move |req| req.exclusive_start_key() == Some(&last))
                .then_output(move || QueryOutput::builder().items(item.clone()).build())
        };
        // A plan from before the spreading: its shards beside the request.
        let plan = plan_item(&r, None, 2);
        let shards = ledger(&[&plan, &page1, &page2]).shards(&r.id).await.unwrap();
        let indices: Vec<u32> = shards.iter().map(|s| s.index).collect();
        assert_eq!(indices, [0, 1]);
        assert_eq!(page2.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_entry_that_does_not_decode_is_corrupt_and_named() {
        let ws = WorkspaceId::parse("acme").unwrap();
        let rule = {
            let ws = ws.clone();
            mock!(Client::get_item).then_output(move || {
                let mut item = suppression_item(&ws, "ann");
                item.insert("suppressed".into(), s("yes"));
                GetItemOutput::builder().set_item(Some(item)).build()
            })
        };
        match ledger(&[&rule]).suppression(&ws, &UserId::parse("ann").unwrap()).await {
            Err(LedgerError::Corrupt { key, .. }) => assert_eq!(key, "SUPP#acme"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_item_keeps_its_attributes_and_keys() {
        let r = request(Status::Scheduled);
        let (item, _) = request_items(&r).unwrap();
        let mut names: Vec<&str> = item.keys().map(String::as_str).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "doc",
                "grace_ends_at",
                "gsi1pk",
                "gsi1sk",
                "gsi2pk",
                "gsi2sk",
                "id",
                "kind",
                "pk",
                "sk",
                "status",
                "version"
            ]
        );
        assert_eq!(item["pk"], s(format!("REQ#{}", r.id)));
        assert_eq!(item["gsi1pk"], s("WS#acme"));
        assert_eq!(item["gsi2pk"], s("ACTIVE"));
        assert_eq!(item["version"], n(r.version));
        let done = request(Status::Completed);
        let (item, _) = request_items(&done).unwrap();
        assert!(!item.contains_key("gsi2pk") && !item.contains_key("gsi2sk"));
        let _: HashMap<String, _> = item;
    }
}
