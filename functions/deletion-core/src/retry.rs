//! The one loop of every state change: read the latest version, decide
//! (a pure transition), write it conditionally on the version read, and on
//! a lost race (`LedgerError::Conflict`) judge again from a fresh read.
//!
//! A write is never blind: the attempt re-reads, so a change made by the
//! winner of the race (a revoke, a claim, another worker) is judged, not
//! overwritten. After `MAX_RACES` lost races the caller hears
//! `ServiceError::Contention` and nothing of the last attempt was written.

use std::fmt::Display;
use std::future::Future;

use crate::error::{LedgerError, ServiceError};

/// How many times a read → decide → conditional write is tried before
/// `Contention`. Every loop uses it: a race is lost only to another writer
/// that did change the item, so five losses in a row means heavy contention
/// the caller should hear about. (The sweep's give-up once stopped at
/// three; nothing depended on that: the next sweep re-judges anyway.)
pub const MAX_RACES: usize = 5;

/// Runs `attempt` until it ends other than in a lost race, at most
/// `MAX_RACES` times. An attempt loses a race by returning
/// `LedgerError::Conflict` (a conditional write's, through `?`, or its own
/// to say "judge again"); any other error ends the loop as it is.
/// `subject` names what was contended in the `Contention` error.
pub async fn retry_on_conflict<T, S, F, Fut>(subject: &S, mut attempt: F) -> Result<T, ServiceError>
where
    S: Display + ?Sized,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ServiceError>>,
{
    for _ in 0..MAX_RACES {
        match attempt().await {
            Err(ServiceError::Ledger(LedgerError::Conflict)) => continue,
            other => return other,
        }
    }
    Err(ServiceError::Contention {
        id: subject.to_string(),
    })
}

/// The error an attempt returns to be judged again.
pub fn raced<T>() -> Result<T, ServiceError> {
    Err(LedgerError::Conflict.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_lost_race_is_judged_again_up_to_the_bound() {
        let tries = AtomicUsize::new(0);
        let won = retry_on_conflict("r1", || async {
            if tries.fetch_add(1, Ordering::SeqCst) < 2 {
                raced()
            } else {
                Ok("written")
            }
        })
        .await;
        assert_eq!(won.ok(), Some("written"));
        assert_eq!(tries.load(Ordering::SeqCst), 3);

        let tries = AtomicUsize::new(0);
        let lost: Result<(), _> = retry_on_conflict("r2", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            raced()
        })
        .await;
        assert!(matches!(lost, Err(ServiceError::Contention { id }) if id == "r2"));
        assert_eq!(tries.load(Ordering::SeqCst), MAX_RACES);
    }

    #[tokio::test]
    async fn other_errors_end_the_loop_at_once() {
        let tries = AtomicUsize::new(0);
        let r: Result<(), _> = retry_on_conflict("r3", || async {
            tries.fetch_add(1, Ordering::SeqCst);
            Err(ServiceError::NotFound("r3".into()))
        })
        .await;
        assert!(matches!(r, Err(ServiceError::NotFound(_))));
        assert_eq!(tries.load(Ordering::SeqCst), 1);
    }
}
