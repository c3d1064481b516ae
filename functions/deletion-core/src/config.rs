//! Settings read from the environment once, at start-up. A bad value stops
//! the function at init with a message naming the variable.

use chrono::Duration;
use thiserror::Error;

use crate::datamap::DataMapError;
use crate::lifecycle::Periods;
use crate::model::quota::{
    Limits, DEFAULT_REQUESTS_PER_MINUTE, DEFAULT_SUBJECTS_PER_MONTH, MAX_REQUESTS_PER_MINUTE, MAX_SUBJECTS_PER_MONTH,
};

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name}={value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error(transparent)]
    DataMap(#[from] DataMapError),
}

/// A required variable.
pub fn required(name: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing(name)),
    }
}

/// A whole number of seconds, within bounds, or the default.
pub fn seconds(name: &'static str, default: i64, min: i64, max: i64) -> Result<Duration, ConfigError> {
    let Ok(value) = std::env::var(name) else {
        return Ok(Duration::seconds(default));
    };
    match value.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Duration::seconds(n)),
        Ok(_) => Err(ConfigError::Invalid {
            name,
            value,
            reason: "out of the allowed range",
        }),
        Err(_) => Err(ConfigError::Invalid {
            name,
            value,
            reason: "must be a whole number of seconds",
        }),
    }
}

/// A whole number within bounds, or the default.
pub fn whole(name: &'static str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
    let Ok(value) = std::env::var(name) else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::Invalid {
            name,
            value,
            reason: "must be a whole number in the allowed range",
        }),
    }
}

/// The deployment's default quotas: `REQUESTS_PER_MINUTE` (600) and
/// `SUBJECTS_PER_MONTH` (110,000), per workspace.
pub fn limits_from_env() -> Result<Limits, ConfigError> {
    let requests = whole(
        "REQUESTS_PER_MINUTE",
        u64::from(DEFAULT_REQUESTS_PER_MINUTE),
        1,
        u64::from(MAX_REQUESTS_PER_MINUTE),
    )?;
    Ok(Limits {
        requests_per_minute: u32::try_from(requests).unwrap_or(MAX_REQUESTS_PER_MINUTE),
        subjects_per_month: whole(
            "SUBJECTS_PER_MONTH",
            DEFAULT_SUBJECTS_PER_MONTH,
            1,
            MAX_SUBJECTS_PER_MONTH,
        )?,
    })
}

/// `GRACE_SECONDS` (default 5 days) and `DEADLINE_DAYS` (default 30).
pub fn periods_from_env() -> Result<Periods, ConfigError> {
    let grace = seconds("GRACE_SECONDS", 5 * 86_400, 0, 30 * 86_400)?;
    let deadline = seconds("DEADLINE_SECONDS", 30 * 86_400, 86_400, 365 * 86_400)?;
    if grace >= deadline {
        return Err(ConfigError::Invalid {
            name: "GRACE_SECONDS",
            value: grace.num_seconds().to_string(),
            reason: "the grace must end before the deadline",
        });
    }
    let source_days_grace = seconds("SOURCE_DAYS_GRACE_SECONDS", 0, 0, 30 * 86_400)?;
    if source_days_grace >= deadline {
        return Err(ConfigError::Invalid {
            name: "SOURCE_DAYS_GRACE_SECONDS",
            value: source_days_grace.num_seconds().to_string(),
            reason: "the grace must end before the deadline",
        });
    }
    Ok(Periods {
        grace,
        source_days_grace,
        deadline,
    })
}
