//! Identifiers that end up inside S3 keys, DynamoDB keys and schedule names.
//!
//! Every id is validated before it reaches a key: a fixed alphabet, bounded
//! length, no `/`, no `..`. A valid id can never widen a prefix.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// Longest id accepted for a workspace, source, space or account.
pub const MAX_ID_LEN: usize = 64;

fn validate_slug(kind: &'static str, value: &str) -> Result<(), InputError> {
    if value.is_empty() {
        return Err(InputError::InvalidId {
            kind,
            value: value.to_owned(),
            reason: "must not be empty",
        });
    }
    if value.len() > MAX_ID_LEN {
        return Err(InputError::InvalidId {
            kind,
            value: value.chars().take(MAX_ID_LEN).collect::<String>() + "…",
            reason: "must be at most 64 characters",
        });
    }
    let first = value.as_bytes()[0];
    if !first.is_ascii_alphanumeric() {
        return Err(InputError::InvalidId {
            kind,
            value: value.to_owned(),
            reason: "must start with a letter or a digit",
        });
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(InputError::InvalidId {
            kind,
            value: value.to_owned(),
            reason: "may contain only letters, digits, '-' and '_'",
        });
    }
    Ok(())
}

macro_rules! slug_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            pub fn parse(value: &str) -> Result<Self, InputError> {
                validate_slug($kind, value)?;
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InputError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                validate_slug($kind, &value)?;
                Ok(Self(value))
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(
    /// A workspace id or slug.
    WorkspaceId,
    "workspace"
);

slug_id!(
    /// A space (profiles, computed traits, audiences, journeys) of a workspace.
    SpaceId,
    "space"
);

slug_id!(
    /// A source of a workspace's events.
    SourceId,
    "source"
);

slug_id!(
    /// A user account, admin or member of workspaces.
    AccountId,
    "account"
);

/// A deletion request id: a UUID (v7, so ids sort by creation time).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

impl RequestId {
    pub fn new() -> Self {
        Self(uuid::Uuid::now_v7().hyphenated().to_string())
    }

    pub fn parse(value: &str) -> Result<Self, InputError> {
        match uuid::Uuid::try_parse(value) {
            Ok(id) if value.len() == 36 => Ok(Self(id.hyphenated().to_string())),
            _ => Err(InputError::InvalidId {
                kind: "deletion request",
                value: value.chars().take(40).collect(),
                reason: "must be a UUID such as 0193c9a2-7b1e-7cc0-9a3e-5f0d2c1b4e6f",
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl TryFrom<String> for RequestId {
    type Error = InputError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RequestId> for String {
    fn from(value: RequestId) -> String {
        value.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client-chosen idempotency key (header `Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(value: &str) -> Result<Self, InputError> {
        let ok = !value.is_empty()
            && value.len() <= 128
            && value
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b'#' && b != b'"' && b != b'\\');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(InputError::InvalidHeader {
                header: "Idempotency-Key",
                reason: "must be 1 to 128 visible ASCII characters, without '#', '\"' or '\\'",
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_slugs() {
        for ok in ["acme", "acme-corp", "a", "A_1", &"x".repeat(64)] {
            assert!(WorkspaceId::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_path_tricks_and_odd_characters() {
        for bad in [
            "",
            "..",
            "a/b",
            "acme/",
            "../acme",
            "-acme",
            "_acme",
            "acme corp",
            "acme%2F",
            "ac.me",
            "åcme",
            "acme\n",
            &"x".repeat(65),
        ] {
            assert!(WorkspaceId::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn request_ids_are_uuids() {
        let id = RequestId::new();
        assert_eq!(RequestId::parse(id.as_str()).unwrap(), id);
        assert!(RequestId::parse("not-a-uuid").is_err());
        assert!(RequestId::parse("0193c9a27b1e7cc09a3e5f0d2c1b4e6f").is_err());
    }

    #[test]
    fn idempotency_keys_are_bounded() {
        assert!(IdempotencyKey::parse("order-42").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("a#b").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(129)).is_err());
    }
}
