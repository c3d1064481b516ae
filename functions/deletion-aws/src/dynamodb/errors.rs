//! DynamoDB's errors as the ledger's: a failed condition is a `Conflict`
//! (or, where the write is idempotent, success), a cancelled transaction
//! is read by its items' reasons, anything else is `Unavailable`.

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use deletion_core::LedgerError;

use crate::describe;

pub fn unavailable<E: std::error::Error>(e: &E) -> LedgerError {
    LedgerError::Unavailable(describe(e))
}

/// A conditional PutItem's outcome: written (`true`), its condition failed
/// (`false`), or an error.
pub fn written<O, R>(result: Result<O, SdkError<PutItemError, R>>) -> Result<bool, LedgerError>
where
    R: std::fmt::Debug,
{
    match result {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => Ok(false),
        Err(e) => Err(unavailable(&e)),
    }
}

/// A conditional PutItem whose failed condition is a `Conflict`.
pub fn conflict_unless_written<O, R>(result: Result<O, SdkError<PutItemError, R>>) -> Result<(), LedgerError>
where
    R: std::fmt::Debug,
{
    if written(result)? {
        Ok(())
    } else {
        Err(LedgerError::Conflict)
    }
}

/// A failed TransactWriteItems: a cancelled one by its reasons.
pub fn transaction<R: std::fmt::Debug>(e: SdkError<TransactWriteItemsError, R>) -> LedgerError {
    match &e {
        SdkError::ServiceError(s) => match s.err() {
            TransactWriteItemsError::TransactionCanceledException(c) => cancelled(c),
            _ => unavailable(&e),
        },
        _ => unavailable(&e),
    }
}

/// What a cancelled transaction means, by its items' reasons: a failed
/// condition is a `Conflict` (also when the server names no reason);
/// contention and throttling are worth a retry (`Unavailable`); anything
/// else (a validation error, an item collection over its size limit) is
/// `Refused`: no retry will make it pass.
pub fn cancelled(e: &TransactionCanceledException) -> LedgerError {
    let codes: Vec<&str> = e
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code())
        .filter(|c| *c != "None")
        .collect();
    let message = e.message().unwrap_or_default();
    if codes.is_empty() || codes.contains(&"ConditionalCheckFailed") {
        LedgerError::Conflict
    } else if codes.iter().all(|c| {
        matches!(
            *c,
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded" | "RequestLimitExceeded"
        )
    }) {
        LedgerError::Unavailable(format!("transaction cancelled ({}): {message}", codes.join(", ")))
    } else {
        LedgerError::Refused(format!("transaction cancelled ({}): {message}", codes.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_transaction_is_a_conflict_only_when_a_condition_failed() {
        use aws_sdk_dynamodb::types::CancellationReason;
        let cancel = |codes: &[&str]| {
            let mut e = TransactionCanceledException::builder().message("cancelled");
            for c in codes {
                e = e.cancellation_reasons(CancellationReason::builder().code(*c).build());
            }
            cancelled(&e.build())
        };
        assert!(matches!(
            cancel(&["ConditionalCheckFailed", "None"]),
            LedgerError::Conflict
        ));
        assert!(matches!(cancel(&[]), LedgerError::Conflict), "no reasons named");
        assert!(matches!(
            cancel(&["None", "TransactionConflict"]),
            LedgerError::Unavailable(_)
        ));
        assert!(matches!(
            cancel(&["ThrottlingError", "None"]),
            LedgerError::Unavailable(_)
        ));
        match cancel(&["ValidationError", "None"]) {
            LedgerError::Refused(m) => assert!(m.contains("ValidationError"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cancel(&["ItemCollectionSizeLimitExceeded"]),
            LedgerError::Refused(_)
        ));
    }
}
