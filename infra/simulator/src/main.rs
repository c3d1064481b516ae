//! `purge-sim`: the purge engine against simulated AWS at scale (see the
//! library's docs and the README's "Scale simulation").

use std::time::Instant;

use clap::Parser;
use simulator::catalog::{scenario, Which};
use simulator::report::{quotas, table, timeline, Figures};
use simulator::scenario::{run, Options};

#[derive(Parser, Debug)]
#[command(
    about = "The real purge engine against S3, DynamoDB, Scheduler and Lambda at their documented limits, in simulated time"
)]
struct Args {
    #[arg(value_enum)]
    scenario: Which,
    /// Multiplies the objects of each scenario (0.01: a quick run).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// PURGE_WORKERS (template default 4).
    #[arg(long, default_value_t = 4)]
    workers: u32,
    /// SHARDS_IN_FLIGHT (template default 4).
    #[arg(long, default_value_t = 4)]
    shards_in_flight: u32,
    /// The purge function's reserved concurrency.
    #[arg(long, default_value_t = 100)]
    reserved: u32,
    /// The purge function's memory (template.yaml: 1024), billed per GB-s.
    #[arg(long, default_value_t = 1024)]
    memory_mb: u32,
    /// Writes each run's timeline (one row a minute) to DIR/<scenario>.csv.
    #[arg(long, value_name = "DIR")]
    timeline: Option<std::path::PathBuf>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let mut options = Options {
        seed: args.seed,
        workers: args.workers,
        shards_in_flight: args.shards_in_flight,
        ..Options::default()
    };
    options.limits.purge_reserved_concurrency = args.reserved;
    options.limits.purge_memory_mb = args.memory_mb;
    let which = match args.scenario {
        Which::All => vec![
            Which::Sources,
            Which::Sources1000,
            Which::Flat,
            Which::Tenants,
            Which::Versioned,
        ],
        w => vec![w],
    };
    let mut rows = Vec::new();
    for w in which {
        let started = Instant::now();
        match run(scenario(w, args.scale), &options) {
            Ok(outcome) => {
                let f = Figures::of(&outcome, &options.limits);
                eprintln!(
                    "{}: simulated in {:.1} s of real time",
                    f.name,
                    started.elapsed().as_secs_f64()
                );
                if let Some(dir) = &args.timeline {
                    let path = dir.join(format!("{}.csv", w.name()));
                    if let Err(e) =
                        std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, timeline(&outcome)))
                    {
                        eprintln!("purge-sim: cannot write {}: {e}", path.display());
                        return std::process::ExitCode::FAILURE;
                    }
                }
                rows.push(f);
            }
            Err(e) => {
                eprintln!("purge-sim: {e}");
                return std::process::ExitCode::FAILURE;
            }
        }
    }
    print!("{}\n{}", table(&rows), quotas(&rows, &options.limits));
    let clean = rows
        .iter()
        .all(|f| f.left == 0 && f.outside_touched == 0 && f.completed == f.requests);
    if clean {
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!("purge-sim: a run left entries in scope, touched entries outside it, or did not complete");
        std::process::ExitCode::FAILURE
    }
}
