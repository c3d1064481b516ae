//! The request-intake function: the HTTP API behind API Gateway.

pub mod auth;
pub mod handler;
pub mod problem;
pub mod views;

pub use handler::{CallbackConfig, Intake};
