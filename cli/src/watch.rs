//! `watch ID`: polls a deletion until it ends. On a terminal, one progress
//! bar per store (entries deleted of those planned, entries/s, ETA); else
//! one plain line per change. Ends with the receipt's summary.
//!
//! A bar's length is what the plan counted under the store's prefixes when
//! the watch began plus what was deleted by then; it grows if more turns up
//! (a plan stops counting at 10,000 entries per prefix).

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::client::{Api, CliError};
use crate::commands::io;
use crate::{render, Exit, Output};

/// Entries a store's progress counts: objects, versions and markers.
fn entries(v: &Value) -> u64 {
    ["objects", "versions", "delete_markers"]
        .iter()
        .map(|k| v[*k].as_u64().unwrap_or(0))
        .sum()
}

/// Per store, what the plan finds there now.
async fn planned(api: &Api, id: &str) -> Result<BTreeMap<String, u64>, CliError> {
    let plan = api.get(&["v1", "deletions", id, "plan"], &[]).await?;
    let mut per_store = BTreeMap::new();
    for prefix in plan["plan"]["prefixes"].as_array().into_iter().flatten() {
        let store = prefix["store"].as_str().unwrap_or("-").to_owned();
        *per_store.entry(store).or_insert(0) += entries(&prefix["found"]);
    }
    Ok(per_store)
}

/// Per store, what is deleted so far.
fn deleted(request: &Value) -> BTreeMap<String, u64> {
    request["progress"]["stores"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| (s["store"].as_str().unwrap_or("-").to_owned(), entries(s)))
        .collect()
}

struct Bars {
    multi: MultiProgress,
    bars: BTreeMap<String, ProgressBar>,
    totals: BTreeMap<String, u64>,
}

impl Bars {
    fn new(tty: bool, totals: BTreeMap<String, u64>) -> Bars {
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bars {
            multi: MultiProgress::with_draw_target(target),
            bars: BTreeMap::new(),
            totals,
        }
    }

    fn update(&mut self, done: &BTreeMap<String, u64>) {
        let style = ProgressStyle::with_template("{prefix:>10} [{bar:32}] {pos}/{len} {per_sec} ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        for (store, &count) in done {
            let total = *self.totals.entry(store.clone()).or_insert(0);
            let bar = self.bars.entry(store.clone()).or_insert_with(|| {
                let bar = self.multi.add(ProgressBar::new(total));
                bar.set_style(style.clone());
                bar.set_prefix(store.clone());
                bar
            });
            bar.set_length(total.max(count));
            bar.set_position(count);
        }
    }

    fn finish(&self) {
        for bar in self.bars.values() {
            bar.finish();
        }
    }
}

pub async fn run(api: &Api, id: &str, interval: f64, as_json: bool, o: &mut Output<'_>) -> Result<Exit, CliError> {
    if !(0.01..=3600.0).contains(&interval) {
        return Err(CliError::Usage(format!(
            "--interval {interval}: between 0.01 and 3600 seconds"
        )));
    }
    let mut request = api.get(&["v1", "deletions", id], &[]).await?;
    let mut totals = BTreeMap::new();
    let already = deleted(&request);
    if !is_final(&request) {
        totals = planned(api, id).await.unwrap_or_default();
        for (store, count) in &already {
            *totals.entry(store.clone()).or_insert(0) += count;
        }
    }
    let mut bars = Bars::new(o.tty && !as_json, totals);
    let mut last_line = String::new();
    loop {
        let done = deleted(&request);
        bars.update(&done);
        let line = status_line(&request, &done);
        if line != last_line && !o.tty && !as_json {
            writeln!(o.out, "{line}").map_err(io)?;
        } else if line != last_line && o.tty && !as_json {
            bars.multi.println(&line).map_err(io)?;
        }
        last_line = line;
        if is_final(&request) {
            break;
        }
        tokio::time::sleep(Duration::from_secs_f64(interval)).await;
        request = api.get(&["v1", "deletions", id], &[]).await?;
    }
    bars.finish();
    if as_json {
        writeln!(o.out, "{}", serde_json::to_string_pretty(&request).unwrap_or_default()).map_err(io)?;
    } else if request["receipt"].is_object() {
        render::receipt(&request["receipt"], o.out).map_err(io)?;
    } else if let Some(failure) = request["failure"].as_str() {
        writeln!(o.out, "  failure:   {failure}").map_err(io)?;
    }
    Ok(match request["status"].as_str() {
        Some("COMPLETED") => Exit::Done,
        _ => Exit::Refused,
    })
}

fn is_final(request: &Value) -> bool {
    matches!(request["status"].as_str(), Some("COMPLETED" | "FAILED" | "REVOKED"))
}

fn status_line(request: &Value, done: &BTreeMap<String, u64>) -> String {
    let status = request["status"].as_str().unwrap_or("-");
    let mut line = format!("{} {status}", request["id"].as_str().unwrap_or("-"));
    match status {
        "SCHEDULED" => line.push_str(&format!(
            ": in grace until {}",
            request["grace_ends_at"].as_str().unwrap_or("-")
        )),
        "ON_HOLD" => line.push_str(": a legal hold stands"),
        _ => {
            let p = &request["progress"];
            if p.is_object() {
                line.push_str(&format!(
                    ": {}/{} shards",
                    p["shards_done"].as_u64().unwrap_or(0),
                    p["shards_total"].as_u64().unwrap_or(0)
                ));
                for (store, count) in done {
                    line.push_str(&format!(", {store} {count} deleted"));
                }
            }
        }
    }
    line
}
