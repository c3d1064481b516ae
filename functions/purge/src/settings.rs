//! The purge function's settings, read once at start-up.
//!
//! Invariant: a shard's (and the verification's) lease outlives every
//! invocation that can hold it. A lease shorter than the function's timeout
//! could expire under a live worker, and a second one would take the same
//! shard: such a setting stops the function at init, with the reason.

use chrono::Duration;
use deletion_core::config::{self, ConfigError};

/// The function's timeout (`Timeout` of the purge function in
/// `template.yaml`), which the environment repeats as
/// `FUNCTION_TIMEOUT_SECONDS`. Unset, the longest Lambda allows.
pub fn function_timeout() -> Result<Duration, ConfigError> {
    config::seconds("FUNCTION_TIMEOUT_SECONDS", 900, 1, 900)
}

/// `LEASE_SECONDS`, refused unless it exceeds `timeout`.
pub fn lease(timeout: Duration) -> Result<Duration, ConfigError> {
    let lease = config::seconds("LEASE_SECONDS", 960, 60, 86_400)?;
    check_lease(lease, timeout)?;
    Ok(lease)
}

/// A lease must be longer than the longest invocation.
pub fn check_lease(lease: Duration, timeout: Duration) -> Result<(), ConfigError> {
    if lease > timeout {
        Ok(())
    } else {
        Err(ConfigError::Invalid {
            name: "LEASE_SECONDS",
            value: lease.num_seconds().to_string(),
            reason: "must exceed the function's timeout (FUNCTION_TIMEOUT_SECONDS, default 900): \
                     a shorter lease expires under a live worker and lets a second one take its shard",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_not_longer_than_the_timeout_is_refused_with_the_reason() {
        let timeout = Duration::seconds(900);
        assert!(check_lease(Duration::seconds(960), timeout).is_ok());
        for short in [60, 899, 900] {
            let err = check_lease(Duration::seconds(short), timeout).unwrap_err().to_string();
            assert!(err.contains("LEASE_SECONDS"), "{err}");
            assert!(err.contains("timeout"), "{err}");
        }
    }
}
