//! Text for people: each answer as a few lines or a table. Scripts use
//! `--json`.

use std::io::{self, Write};

use serde_json::Value;

use crate::args::Command;

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("-")
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Bytes as people read them.
pub fn bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = b as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Rows under a header, columns padded to their widest cell.
pub fn table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(header.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

pub fn answer(command: &Command, v: &Value, out: &mut dyn Write) -> io::Result<()> {
    match command {
        Command::Plan { .. } => plan(&v["plan"], out),
        Command::List(_) => requests(v, out),
        Command::Suppressed { user_ids, .. } if user_ids.is_empty() => suppressions(v, out),
        Command::Suppressed { .. } => checks(v, out),
        Command::Hold { .. } => writeln!(
            out,
            "held: {} since {} ({})",
            s(&v["workspace"]),
            s(&v["since"]),
            s(&v["reason"])
        ),
        Command::Release { .. } => writeln!(out, "released: {}", s(&v["workspace"])),
        _ if v["dry_run"] == true => {
            writeln!(
                out,
                "dry run: {} deletion, nothing written; it would delete:",
                s(&v["kind"])
            )?;
            plan(&v["plan"], out)
        }
        _ if v.get("subject_count").is_some() && v.get("scope").is_none() => regulation(v, out),
        _ => request(v, out),
    }
}

fn plan(p: &Value, out: &mut dyn Write) -> io::Result<()> {
    let mut rows = Vec::new();
    for prefix in p["prefixes"].as_array().into_iter().flatten() {
        let found = &prefix["found"];
        let floor = if prefix["complete"] == false { "≥" } else { "" };
        rows.push(vec![
            s(&prefix["store"]).to_owned(),
            format!("s3://{}/{}", s(&prefix["bucket"]), s(&prefix["prefix"])),
            format!("{floor}{}", n(&found["objects"])),
            format!("{floor}{}", n(&found["versions"]) + n(&found["delete_markers"])),
            format!("{floor}{}", bytes(n(&found["bytes"]))),
        ]);
    }
    let t = &p["totals"];
    let floor = if p["complete"] == false { "≥" } else { "" };
    rows.push(vec![
        "total".into(),
        String::new(),
        format!("{floor}{}", n(&t["objects"])),
        format!("{floor}{}", n(&t["versions"]) + n(&t["delete_markers"])),
        format!("{floor}{}", bytes(n(&t["bytes"]))),
    ]);
    table(out, &["STORE", "PREFIX", "OBJECTS", "VERSIONS", "BYTES"], &rows)
}

fn request(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{} {} {}", s(&v["id"]), s(&v["kind"]), s(&v["status"]))?;
    if let Some(scope) = v["scope"].as_object() {
        let parts: Vec<String> = scope
            .iter()
            .map(|(k, x)| format!("{k}={}", x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string())))
            .collect();
        writeln!(out, "  scope:     {}", parts.join(" "))?;
    }
    writeln!(out, "  requested: {} by {}", s(&v["created_at"]), s(&v["requested_by"]))?;
    let revocable = if v["revocable"] == true { " (revocable)" } else { "" };
    writeln!(out, "  grace:     ends {}{revocable}", s(&v["grace_ends_at"]))?;
    match v["days_left"].as_i64() {
        Some(days) => writeln!(out, "  deadline:  {} ({days} days left)", s(&v["deadline"]))?,
        None => writeln!(out, "  deadline:  {}", s(&v["deadline"]))?,
    }
    if let Some(p) = v.get("progress") {
        writeln!(
            out,
            "  progress:  {}/{} shards, {} objects, {} versions, {} deleted",
            n(&p["shards_done"]),
            n(&p["shards_total"]),
            n(&p["objects"]),
            n(&p["versions"]) + n(&p["delete_markers"]),
            bytes(n(&p["bytes"]))
        )?;
    }
    if let Some(failure) = v["failure"].as_str() {
        writeln!(out, "  failure:   {failure}")?;
    }
    if v["receipt"].is_object() {
        receipt(&v["receipt"], out)?;
    }
    Ok(())
}

/// A receipt's summary.
pub fn receipt(r: &Value, out: &mut dyn Write) -> io::Result<()> {
    let t = &r["totals"];
    writeln!(
        out,
        "  receipt:   {} objects, {} versions, {} markers, {} uploads aborted, {}; verified {} at {}",
        n(&t["objects"]),
        n(&t["versions"]),
        n(&t["delete_markers"]),
        n(&t["uploads_aborted"]),
        bytes(n(&t["bytes"])),
        s(&r["verification"]),
        s(&r["verified_at"])
    )?;
    writeln!(
        out,
        "  signed:    {} by {}",
        s(&r["signature"]["algorithm"]),
        s(&r["signature"]["key_id"])
    )
}

fn regulation(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{} regulation {} {}", s(&v["id"]), s(&v["type"]), s(&v["status"]))?;
    let source = v["source"]
        .as_str()
        .map(|x| format!(", source {x}"))
        .unwrap_or_default();
    writeln!(
        out,
        "  subjects:  {} {} in {}{source}",
        n(&v["subject_count"]),
        s(&v["subject_type"]),
        s(&v["workspace"])
    )?;
    writeln!(out, "  requested: {} by {}", s(&v["created_at"]), s(&v["requested_by"]))?;
    for store in v["stores"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "  {}: {} ({} objects rewritten, {} events removed, {} versions deleted, {} failed)",
            s(&store["store"]),
            s(&store["status"]),
            n(&store["objects_rewritten"]),
            n(&store["events_removed"]),
            n(&store["versions_deleted"]),
            n(&store["objects_failed"])
        )?;
    }
    if let Some(failure) = v["failure"].as_str() {
        writeln!(out, "  failure:   {failure}")?;
    }
    if v["receipt"].is_object() {
        let sig = &v["receipt"]["signature"];
        writeln!(out, "  signed:    {} by {}", s(&sig["algorithm"]), s(&sig["key_id"]))?;
    }
    Ok(())
}

fn requests(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<Vec<String>> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                s(&r["id"]).to_owned(),
                s(&r["kind"]).to_owned(),
                s(&r["status"]).to_owned(),
                s(&r["created_at"]).to_owned(),
                r["days_left"]
                    .as_i64()
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(out, &["ID", "KIND", "STATUS", "CREATED", "DAYS LEFT"], &rows)?;
    if let Some(cursor) = v["next_cursor"].as_str() {
        writeln!(out, "(more: --all follows every page; next cursor {cursor})")?;
    }
    Ok(())
}

fn suppressions(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    let rows: Vec<Vec<String>> = v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            vec![
                s(&x["user_id"]).to_owned(),
                x["source"].as_str().unwrap_or("(workspace)").to_owned(),
                s(&x["since"]).to_owned(),
                s(&x["regulation_id"]).to_owned(),
            ]
        })
        .collect();
    table(out, &["USER", "SOURCE", "SINCE", "REGULATION"], &rows)
}

fn checks(v: &Value, out: &mut dyn Write) -> io::Result<()> {
    for r in v["results"].as_array().into_iter().flatten() {
        let state = if r["suppressed"] == true {
            "suppressed"
        } else {
            "not suppressed"
        };
        writeln!(out, "{}: {state}", s(&r["user_id"]))?;
    }
    Ok(())
}
