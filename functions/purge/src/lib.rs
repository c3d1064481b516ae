//! The purge function: claims a request whose grace ended, deletes every
//! object version, delete marker and unfinished upload under its prefixes,
//! verifies by listing again, and completes it with a receipt.

pub mod handler;
pub mod settings;

pub use handler::{PurgeEvent, PurgeHandler, PurgeResult};
