//! The request-intake function: the HTTP API behind API Gateway, as one
//! axum `Router` (`Intake::router`) that Lambda runs with
//! `lambda_http::run` and the local runner serves with `axum::serve`.
//!
//! - `state`: the intake's state and what handlers ask of it (below the
//!   router, the guards and the routes, which import it)
//! - `app`: the router and the layers around the routes
//! - `routes`: one annotated handler per operation
//! - `extract`: callers, guards, ids, query and body
//! - `input`, `views`, `schemas`: what comes in and goes out, typed
//! - `problem`: every refusal as problem+json
//! - `doc`: the OpenAPI document made from the above

pub mod app;
pub mod auth;
pub mod doc;
pub mod extract;
pub mod input;
pub mod problem;
pub mod routes;
pub mod schemas;
pub mod state;
pub mod views;

pub use state::{App, CallbackConfig, Intake, OpenDsrConfig};

#[cfg(test)]
mod memory_tests;
