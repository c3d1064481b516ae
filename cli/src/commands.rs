//! One function per command: the API calls it makes and what it prints.

use serde_json::{json, Map, Value};

use deletion_core::model::Receipt;
use deletion_core::signing::{canonical, verify_offline, Jwks, HMAC_SHA_256};

use crate::args::{Cli, Command, Create, CreateArgs, List, Regulate};
use crate::client::{Api, CliError};
use crate::{render, watch, Exit, Output};

pub async fn run(api: &Api, cli: &Cli, o: &mut Output<'_>) -> Result<Exit, CliError> {
    let answer = match &cli.command {
        Command::Create(create) => create_request(api, create).await?,
        Command::Revoke { id } => revoke(api, id).await?,
        Command::Show { id } => show(api, id).await?,
        Command::List(list) => list_requests(api, list).await?,
        Command::Plan { id } => api.get(&["v1", "deletions", id, "plan"], &[]).await?,
        Command::Watch { id, interval } => return watch::run(api, id, *interval, cli.json, o).await,
        Command::Hold { workspace, reason } => {
            let url = api.url(&["v1", "workspaces", workspace, "hold"], &[]);
            api.send("PUT", &url, Some(&json!({ "reason": reason }))).await?
        }
        Command::Release { workspace } => {
            let url = api.url(&["v1", "workspaces", workspace, "hold"], &[]);
            api.send("DELETE", &url, None).await?
        }
        Command::Regulate(r) => regulate(api, r).await?,
        Command::Suppressed {
            workspace,
            user_ids,
            source,
        } => suppressed(api, workspace, user_ids, source.as_deref()).await?,
        Command::VerifyReceipt { file, jwks } => {
            return verify_receipt(Some(api), file, jwks.as_deref(), cli.json, o).await
        }
    };
    if cli.json {
        writeln!(o.out, "{}", serde_json::to_string_pretty(&answer).unwrap_or_default()).map_err(io)?;
    } else {
        render::answer(&cli.command, &answer, o.out).map_err(io)?;
    }
    Ok(Exit::Done)
}

pub fn io(e: std::io::Error) -> CliError {
    CliError::Transport(format!("cannot write the answer: {e}"))
}

/// The body every create takes.
fn create_body(common: &CreateArgs, mut body: Map<String, Value>) -> Value {
    if let Some(reason) = &common.reason {
        body.insert("reason".into(), json!(reason));
    }
    if let Some(url) = &common.callback_url {
        body.insert("callback_url".into(), json!(url));
    }
    Value::Object(body)
}

async fn create_request(api: &Api, create: &Create) -> Result<Value, CliError> {
    let (segments, common, body): (Vec<&str>, &CreateArgs, Map<String, Value>) = match create {
        Create::Workspace { workspace, common } => {
            (vec!["v1", "workspaces", workspace, "deletion"], common, Map::new())
        }
        Create::Space {
            workspace,
            space,
            common,
        } => (
            vec!["v1", "workspaces", workspace, "spaces", space, "deletion"],
            common,
            Map::new(),
        ),
        Create::SourceDays {
            workspace,
            source,
            from,
            to,
            common,
        } => {
            let mut body = Map::new();
            body.insert("from".into(), json!(from));
            body.insert("to".into(), json!(to));
            (
                vec!["v1", "workspaces", workspace, "sources", source, "deletions"],
                common,
                body,
            )
        }
        Create::Account { account, common } => (vec!["v1", "accounts", account, "deletion"], common, Map::new()),
        Create::Purge { workspace, common } => {
            let mut body = Map::new();
            body.insert("workspace".into(), json!(workspace));
            (vec!["v1", "purges"], common, body)
        }
    };
    let query = if common.dry_run {
        vec![("dry_run", "true".to_owned())]
    } else {
        vec![]
    };
    let url = api.url(&segments, &query);
    api.send("POST", &url, Some(&create_body(common, body))).await
}

/// A deletion, or a regulation as the regulations API shows it.
async fn show(api: &Api, id: &str) -> Result<Value, CliError> {
    let request = api.get(&["v1", "deletions", id], &[]).await?;
    if request["kind"] == "regulation" {
        return api.get(&["v1", "regulations", id], &[]).await;
    }
    Ok(request)
}

/// Revokes a deletion, or cancels a regulation.
async fn revoke(api: &Api, id: &str) -> Result<Value, CliError> {
    let request = api.get(&["v1", "deletions", id], &[]).await?;
    let what = if request["kind"] == "regulation" {
        "regulations"
    } else {
        "deletions"
    };
    api.send("DELETE", &api.url(&["v1", what, id], &[]), None).await
}

async fn list_requests(api: &Api, list: &List) -> Result<Value, CliError> {
    let segments: Vec<&str> = match (&list.owner.workspace, &list.owner.account) {
        (Some(ws), _) => vec!["v1", "workspaces", ws, "deletions"],
        (None, Some(account)) => vec!["v1", "accounts", account, "deletions"],
        (None, None) => return Err(CliError::Usage("list needs --workspace or --account".into())),
    };
    let mut query: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("status", &list.status),
        ("kind", &list.kind),
        ("created_after", &list.created_after),
        ("created_before", &list.created_before),
    ] {
        if let Some(v) = value {
            query.push((name, v.clone()));
        }
    }
    if let Some(limit) = list.limit {
        query.push(("limit", limit.to_string()));
    }
    pages(api, &segments, query, list.all).await
}

/// A listing's items, of its first page or (`all`) of every page.
async fn pages(api: &Api, segments: &[&str], mut query: Vec<(&str, String)>, all: bool) -> Result<Value, CliError> {
    let mut items = Vec::new();
    loop {
        let page = api.get(segments, &query).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(cursor) if all => {
                query.retain(|(k, _)| *k != "cursor");
                query.push(("cursor", cursor.to_owned()));
            }
            cursor => return Ok(json!({ "items": items, "next_cursor": cursor })),
        }
    }
}

async fn regulate(api: &Api, r: &Regulate) -> Result<Value, CliError> {
    let segments: Vec<&str> = match &r.source {
        Some(source) => vec!["v1", "workspaces", &r.workspace, "sources", source, "regulations"],
        None => vec!["v1", "workspaces", &r.workspace, "regulations"],
    };
    let mut body = json!({
        "type": r.kind,
        "subject_type": r.subject_type,
        "subject_ids": r.subject_ids,
    });
    if let Some(url) = &r.callback_url {
        body["callback_url"] = json!(url);
    }
    api.send("POST", &api.url(&segments, &[]), Some(&body)).await
}

async fn suppressed(api: &Api, workspace: &str, user_ids: &[String], source: Option<&str>) -> Result<Value, CliError> {
    if user_ids.is_empty() {
        // The whole list: a first page alone would look complete.
        return pages(api, &["v1", "workspaces", workspace, "suppressions"], Vec::new(), true).await;
    }
    let mut body = json!({ "user_ids": user_ids });
    if let Some(source) = source {
        body["source"] = json!(source);
    }
    let url = api.url(&["v1", "workspaces", workspace, "suppressions:check"], &[]);
    api.send("POST", &url, Some(&body)).await
}

/// Reads a receipt (or a whole status answer holding one) from a file or
/// stdin: the receipt, its JSON as written, and whether it was inside an
/// answer (whose other fields no signature covers).
fn read_receipt(file: &str) -> Result<(Receipt, Value, bool), CliError> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map(|_| text)
    } else {
        std::fs::read_to_string(file)
    }
    .map_err(|e| CliError::Usage(format!("{file}: {e}")))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("{file}: not JSON: {e}")))?;
    let (written, wrapped) = match value.get("receipt") {
        Some(inner) if inner.is_object() => (inner.clone(), true),
        _ => (value, false),
    };
    let receipt =
        serde_json::from_value(written.clone()).map_err(|e| CliError::Usage(format!("{file}: not a receipt: {e}")))?;
    Ok((receipt, written, wrapped))
}

/// Whether the receipt as written is exactly what its signature covers:
/// no field the signed form drops (an unknown one), none changed in the
/// reading.
fn covers_all(written: &Value, message: &[u8]) -> bool {
    let mut unsigned = written.clone();
    if let Some(fields) = unsigned.as_object_mut() {
        fields.remove("signature");
    }
    serde_json::from_slice::<Value>(message).is_ok_and(|signed| signed == unsigned)
}

pub(crate) async fn verify_receipt(
    api: Option<&Api>,
    file: &str,
    jwks: Option<&str>,
    as_json: bool,
    o: &mut Output<'_>,
) -> Result<Exit, CliError> {
    let (receipt, written, wrapped) = read_receipt(file)?;
    let Some(signature) = receipt.signature.clone() else {
        return Err(CliError::Failed(format!(
            "receipt of request {} is not signed",
            receipt.request_id
        )));
    };
    if signature.algorithm == HMAC_SHA_256 {
        return Err(CliError::Failed(format!(
            "receipt of request {} is signed with an HMAC key, which only the service holds: \
             check it with POST /v1/receipts:verify",
            receipt.request_id
        )));
    }
    let keys: Jwks = match jwks {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("{path}: {e}")))?;
            serde_json::from_str(&text).map_err(|e| CliError::Usage(format!("{path}: not a key set: {e}")))?
        }
        None => {
            let api =
                api.ok_or_else(|| CliError::Usage("no API: set DELETION_API, pass --api URL or --jwks FILE".into()))?;
            serde_json::from_value(api.get(&[".well-known", "jwks.json"], &[]).await?)
                .map_err(|e| CliError::Transport(format!("the API's key set: {e}")))?
        }
    };
    let message = canonical(&receipt).map_err(|e| CliError::Usage(e.to_string()))?;
    if !covers_all(&written, &message) {
        return Err(CliError::Failed(format!(
            "NOT valid: receipt of request {} holds fields its signature does not cover",
            receipt.request_id
        )));
    }
    let valid = verify_offline(&keys.keys, &message, &signature);
    if as_json {
        let verdict = json!({
            "valid": valid,
            "request_id": receipt.request_id,
            "key_id": signature.key_id,
            "algorithm": signature.algorithm,
            "covers": if wrapped { "the answer's receipt only" } else { "the whole file" },
        });
        writeln!(o.out, "{}", serde_json::to_string_pretty(&verdict).unwrap_or_default()).map_err(io)?;
    } else if valid {
        writeln!(
            o.out,
            "valid: receipt of request {} signed by {} ({})",
            receipt.request_id, signature.key_id, signature.algorithm
        )
        .map_err(io)?;
        if wrapped {
            writeln!(
                o.out,
                "  (its receipt only: the answer's other fields carry no signature)"
            )
            .map_err(io)?;
        }
    }
    if valid {
        return Ok(Exit::Done);
    }
    let known = keys.keys.iter().any(|k| k.kid == signature.key_id);
    Err(CliError::Failed(format!(
        "NOT valid: receipt of request {} {}",
        receipt.request_id,
        if known {
            "does not match its signature (changed after signing?)"
        } else {
            "names a key the key set does not hold"
        }
    )))
}
