//! Medians and ranges over the repeated runs of each tool, the ratios of
//! the purge to the ceiling and to s5cmd, and the purge engine's targets
//! beside them (PASS/MISS, printed, never failing the run).

use crate::tools::Measure;

/// The runs of one tool in one scenario.
pub struct Runs {
    pub tool: &'static str,
    pub runs: Vec<Measure>,
}

#[derive(Clone, Copy, Debug)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some(Spread {
        median,
        min: v[0],
        max: v[n - 1],
    })
}

fn show(s: Option<Spread>, decimals: usize) -> String {
    match s {
        None => "n/a".to_owned(),
        Some(s) if s.min == s.max => format!("{:.*}", decimals, s.median),
        Some(s) => format!(
            "{:.*} ({:.*}–{:.*})",
            decimals, s.median, decimals, s.min, decimals, s.max
        ),
    }
}

/// Per-run figures of a tool, `objects` being the population of each run.
struct Figures {
    seconds: Option<Spread>,
    rate: Option<Spread>,
    requests_per_k: Option<Spread>,
    cpu: Option<Spread>,
    wru_per_k: Option<Spread>,
    rru_per_k: Option<Spread>,
    ledger_calls_per_k: Option<Spread>,
    left: usize,
}

fn figures(runs: &[Measure], objects: usize) -> Figures {
    let per_k = |x: f64| x * 1000.0 / objects as f64;
    let ledger = |f: fn(&deletion_aws::capacity::Consumed) -> f64| {
        spread(runs.iter().filter_map(|m| m.ledger.as_ref()).map(|c| per_k(f(c))))
    };
    Figures {
        seconds: spread(runs.iter().map(|m| m.seconds)),
        rate: spread(runs.iter().map(|m| objects as f64 / m.seconds)),
        requests_per_k: spread(runs.iter().filter_map(|m| m.requests).map(|r| per_k(r as f64))),
        cpu: spread(runs.iter().map(|m| m.cpu)),
        wru_per_k: ledger(|c| c.write_units),
        rru_per_k: ledger(|c| c.read_units),
        ledger_calls_per_k: ledger(|c| c.total_calls() as f64),
        left: runs.iter().map(|m| m.left).max().unwrap_or(0),
    }
}

/// Prints the scenario's table, ratios and targets, and one `BENCH` line
/// of JSON with every run.
pub fn report(scenario: &str, objects: usize, tools: &[Runs]) {
    println!("\n## {scenario}: {objects} entries per run");
    println!("| tool | runs | seconds | objects/s | S3 requests / 1,000 | client CPU s | ledger WRU / 1,000 | ledger RRU / 1,000 | ledger calls / 1,000 | left behind (max) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let all: Vec<(&str, Figures)> = tools.iter().map(|t| (t.tool, figures(&t.runs, objects))).collect();
    for ((name, f), t) in all.iter().zip(tools) {
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            t.runs.len(),
            show(f.seconds, 2),
            show(f.rate, 0),
            show(f.requests_per_k, 2),
            show(f.cpu, 2),
            show(f.wru_per_k, 2),
            show(f.rru_per_k, 2),
            show(f.ledger_calls_per_k, 2),
            f.left
        );
    }
    let find = |name: &str| all.iter().find(|(n, _)| *n == name).map(|(_, f)| f);
    if let Some(purge) = find("purge") {
        targets(objects, purge, find("ceiling"), find("s5cmd"));
    }
    for t in tools {
        if let Some(calls) = t.runs.first().and_then(|m| m.ledger.as_ref()) {
            println!("ledger calls of the first {} run: {:?}", t.tool, calls.calls);
        }
        if let Some(calls) = t.runs.first().and_then(|m| m.store_calls.as_ref()) {
            println!("store calls of the first {} run: {calls:?}", t.tool);
        }
    }
    let runs: serde_json::Map<String, serde_json::Value> = tools
        .iter()
        .map(|t| (t.tool.to_owned(), t.runs.iter().map(run_json).collect()))
        .collect();
    println!(
        "BENCH {}",
        serde_json::json!({"scenario": scenario, "objects": objects, "runs": runs})
    );
}

fn run_json(m: &Measure) -> serde_json::Value {
    serde_json::json!({
        "seconds": m.seconds, "cpu_s": m.cpu, "requests": m.requests, "left": m.left,
        "store_calls": m.store_calls,
        "ledger": m.ledger.as_ref().map(|c| serde_json::json!({
            "read_units": c.read_units, "write_units": c.write_units, "calls": c.calls,
        })),
    })
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}

/// The purge engine's targets, on medians.
fn targets(objects: usize, purge: &Figures, ceiling: Option<&Figures>, s5cmd: Option<&Figures>) {
    let median = |s: Option<Spread>| s.map(|s| s.median);
    let rate = median(purge.rate);
    let mut lines: Vec<(String, Option<f64>, bool)> = Vec::new();
    let ratio = |other: Option<&Figures>| Some(rate? / median(other?.rate)?);
    lines.push(("purge / ceiling objects/s ≥ 0.90".into(), ratio(ceiling), true));
    lines.push(("purge / s5cmd objects/s ≥ 1.50".into(), ratio(s5cmd), true));
    let cpu = median(purge.cpu).map(|c| c * 100_000.0 / objects as f64);
    lines.push(("client CPU s per 100,000 objects ≤ 1.00".into(), cpu, false));
    lines.push(("S3 requests / 1,000 ≤ 2.02".into(), median(purge.requests_per_k), false));
    lines.push(("ledger WRU / 1,000 ≤ 5".into(), median(purge.wru_per_k), false));
    lines.push(("ledger RRU / 1,000 ≤ 2".into(), median(purge.rru_per_k), false));
    let limits = [0.90, 1.50, 1.00, 2.02, 5.0, 2.0];
    for ((what, value, at_least), limit) in lines.into_iter().zip(limits) {
        match value {
            None => println!("target {what}: n/a"),
            Some(v) => {
                let pass = if at_least { v >= limit } else { v <= limit };
                println!("target {what}: {v:.2} {}", verdict(pass));
            }
        }
    }
}
