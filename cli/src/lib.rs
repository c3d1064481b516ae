//! `deletionctl`: the deletion service's HTTP API from a terminal or a
//! script.
//!
//! Invariants:
//! - Every answer the API refuses is printed as its problem's title and
//!   detail (never a raw body), and the exit code says what happened:
//!   [`Exit`] 0 done, 1 refused (or the service unreachable, or a receipt
//!   not valid), 2 bad usage (the command line, or input the API called
//!   malformed), 3 not found.
//! - `--json` prints the API's own JSON answer (for `verify-receipt`, the
//!   verdict), one document per command, and nothing else on stdout.
//! - Path parameters are percent-encoded as segments: an id can never
//!   reach another route.

pub mod args;
pub mod client;
mod commands;
mod render;
mod watch;

use std::io::Write;

pub use args::{Cli, Command};
pub use client::{Api, CliError};

/// What a command's exit code says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Done = 0,
    Refused = 1,
    Usage = 2,
    NotFound = 3,
}

/// Where a command writes: its answer to `out`, diagnostics to `err`;
/// `tty` when `out` is a terminal (live progress bars instead of lines).
pub struct Output<'a> {
    pub out: &'a mut (dyn Write + Send),
    pub err: &'a mut (dyn Write + Send),
    pub tty: bool,
}

/// Runs one parsed command line.
pub async fn run(cli: Cli, output: &mut Output<'_>) -> Exit {
    let result = match &cli.command {
        // A receipt checked against a saved key set needs no API.
        args::Command::VerifyReceipt { file, jwks: Some(jwks) } => {
            commands::verify_receipt(None, file, Some(jwks), cli.json, output).await
        }
        _ => match Api::new(cli.api.as_deref(), cli.token.clone()) {
            Ok(api) => commands::run(&api, &cli, output).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(exit) => exit,
        Err(e) => {
            let _ = writeln!(output.err, "deletionctl: {e}");
            e.exit()
        }
    }
}
