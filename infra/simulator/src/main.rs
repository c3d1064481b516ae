//! `purge-sim`: the purge engine against simulated AWS at scale (see the
//! library's docs and the README's "Scale simulation").

use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use simulator::keyspace::{Grid, Level};
use simulator::report::{table, timeline, Figures};
use simulator::scenario::{run, Options, Scenario};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Which {
    /// One workspace, 10,000,000 objects: 10,000 sources × 10 days × 100.
    Sources,
    /// The same 10,000,000 under 1,000 sources × 10 days × 1,000.
    Sources1000,
    /// One flat prefix of 5,000,000 keys below the workspace.
    Flat,
    /// 1,000 workspaces of 10,000 objects, graces ending within one hour.
    Tenants,
    /// 1,000,000 keys × 3 versions + 200,000 delete markers.
    Versioned,
    /// Every scenario above, one after the other.
    All,
}

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
    /// Writes each run's timeline (one row a minute) to DIR/<scenario>.csv.
    #[arg(long, value_name = "DIR")]
    timeline: Option<std::path::PathBuf>,
}

impl Which {
    fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_owned())
    }
}

fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale).round() as u64).max(1)
}

fn scenario(which: Which, scale: f64) -> Scenario {
    let one = |levels: Vec<Level>, versioned, versions, markers, name: &str| Scenario {
        name: name.into(),
        grid: Grid::new(levels, versioned, versions, markers),
        workspaces: vec!["ws-0000".into()],
        stagger: Duration::ZERO,
    };
    match which {
        Which::Sources | Which::All => one(
            vec![
                Level::new("ws-", 1, 4),
                Level::new("src-", 10_000, 5),
                Level::new("day-", 10, 2),
                Level::leaf("part-", scaled(100, scale), 4),
            ],
            false,
            1,
            0,
            "1: 10,000 sources × 10 days",
        ),
        Which::Sources1000 => one(
            vec![
                Level::new("ws-", 1, 4),
                Level::new("src-", 1_000, 4),
                Level::new("day-", 10, 2),
                Level::leaf("part-", scaled(1_000, scale), 5),
            ],
            false,
            1,
            0,
            "1b: 1,000 sources × 10 days",
        ),
        Which::Flat => one(
            vec![
                Level::new("ws-", 1, 4),
                Level::leaf("event-", scaled(5_000_000, scale), 7),
            ],
            false,
            1,
            0,
            "2: one flat prefix",
        ),
        Which::Versioned => one(
            vec![
                Level::new("ws-", 1, 4),
                Level::new("src-", 100, 3),
                Level::new("day-", 10, 2),
                Level::leaf("part-", scaled(1_000, scale), 5),
            ],
            true,
            3,
            5,
            "4: versioned, 3 versions + markers",
        ),
        Which::Tenants => Scenario {
            name: "3: 1,000 tenants, graces in one hour".into(),
            grid: Grid::new(
                vec![
                    Level::new("ws-", 1_000, 4),
                    Level::new("src-", 10, 2),
                    Level::new("day-", 10, 2),
                    Level::leaf("part-", scaled(100, scale), 4),
                ],
                false,
                1,
                0,
            ),
            workspaces: (0..1000).map(|w| format!("ws-{w:04}")).collect(),
            stagger: Duration::from_millis(3600),
        },
    }
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
    print!("{}", table(&rows));
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
