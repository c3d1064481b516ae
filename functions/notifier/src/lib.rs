//! The notifier function: POSTs each request's status changes to its
//! callback URL, driven by the ledger's stream, and retries failed ones
//! from a recurring schedule. It only reads requests: a slow or failing
//! receiver never holds up a purge.

pub mod handler;

pub use handler::{CallbackHandler, NotifierEvent};
