//! `deletionctl`: see the crate's docs and `deletionctl --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use deletionctl::{run, Cli, Output};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // clap exits 2 on bad usage, 0 for --help and --version.
    let cli = Cli::parse();
    let tty = std::io::stdout().is_terminal();
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let mut output = Output {
        out: &mut out,
        err: &mut err,
        tty,
    };
    ExitCode::from(run(cli, &mut output).await as u8)
}
