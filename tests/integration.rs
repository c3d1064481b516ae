//! The integration tests, one module per area, in one test binary: the
//! harness (`harness/lib.rs`) starts one DynamoDB Local and one moto for
//! the whole run and gives every test a deployment of its own (table,
//! buckets, schedule group, IAM gate), so tests of different modules run
//! side by side without seeing each other.

mod access;
mod callbacks;
mod cli;
mod dashboard;
mod holds;
mod hostile;
mod iam;
mod ledger_layout;
mod openapi;
mod opendsr;
mod receipts;
mod regulations;
mod reminders;
mod resilience;
mod retention;
mod scopes;
mod subjects;
mod workspace_deletion;
