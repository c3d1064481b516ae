//! `deletionctl` against the local runner over real HTTP (the runner's
//! JWT check in front of the intake's router, DynamoDB Local and moto
//! behind it): every command, its text and `--json`, and the exit codes
//! (0 done, 1 refused, 2 bad usage, 3 not found), problems printed as
//! their title and detail.

use std::sync::Arc;

use chrono::Duration;
use clap::Parser;
use deletion_core::access::OPERATOR_SCOPE;
use deletionctl::{run, Cli, Exit, Output};
use integration_tests::{env, Env, Versioning};
use local_runner::token::DevIssuer;
use serde_json::Value;

struct Ctl {
    base: String,
    token: String,
}

struct Ran {
    exit: Exit,
    out: String,
    err: String,
}

impl Ran {
    fn json(&self) -> Value {
        serde_json::from_str(&self.out).unwrap_or_else(|e| panic!("{e}: {}", self.out))
    }
}

impl Ctl {
    /// The local runner's HTTP server for `env`, and an operator's token.
    async fn serve(env: &Env) -> Ctl {
        let issuer = DevIssuer::new("cli-key", "http://127.0.0.1/local-issuer", "deletion-service");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(local_runner::http::serve_on(
            listener,
            Arc::clone(&env.stack.intake),
            issuer.clone(),
        ));
        let token = issuer
            .mint("ops", &[OPERATOR_SCOPE], chrono::Utc::now().timestamp(), 3600)
            .unwrap();
        Ctl { base, token }
    }

    async fn run(&self, args: &[&str]) -> Ran {
        self.run_with(Some(&self.token), args).await
    }

    async fn run_with(&self, token: Option<&str>, args: &[&str]) -> Ran {
        let mut argv = vec!["deletionctl", "--api", &self.base];
        if let Some(token) = token {
            argv.extend(["--token", token]);
        }
        argv.extend(args);
        run_bare(&argv).await
    }
}

/// A GET over plain HTTP (the runner's key sets need no token).
async fn http_get(url: &str) -> String {
    let uri: hyper::Uri = url.parse().unwrap();
    let host = uri.authority().unwrap().as_str().to_owned();
    let stream = tokio::net::TcpStream::connect(&host).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(uri.path())
        .header("host", host)
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

/// The CLI with exactly these arguments (no --api, no token).
async fn run_bare(argv: &[&str]) -> Ran {
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = run(
        cli,
        &mut Output {
            out: &mut out,
            err: &mut err,
            tty: false,
        },
    )
    .await;
    Ran {
        exit,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
    }
}

fn done(ran: &Ran) {
    assert_eq!(ran.exit, Exit::Done, "out: {}\nerr: {}", ran.out, ran.err);
}

/// A refusal: the problem's title and detail on stderr, never its body.
fn refused(ran: &Ran, exit: Exit, says: &str) {
    assert_eq!(ran.exit, exit, "out: {}\nerr: {}", ran.out, ran.err);
    assert!(ran.err.contains(says), "{:?} should say {says:?}", ran.err);
    assert!(!ran.err.contains('{'), "a raw body: {}", ran.err);
    assert!(ran.out.is_empty(), "{}", ran.out);
}

#[tokio::test]
async fn a_workspace_deletion_from_create_to_a_receipt_checked_offline() {
    let env = env(Versioning::None).await;
    env.put(&env.archive, "acme/web/2024-01-01/e.json.gz").await;
    env.put(&env.archive, "acme/web/2024-01-02/e.json.gz").await;
    env.put(&env.profiles, "acme/spaces/main/p.json").await;
    env.put(&env.archive, "acme-corp/web/2024-01-01/e.json.gz").await;
    let ctl = Ctl::serve(&env).await;

    let dry = ctl.run(&["create", "workspace", "acme", "--dry-run"]).await;
    done(&dry);
    assert!(
        dry.out.contains("dry run: workspace deletion, nothing written"),
        "{}",
        dry.out
    );
    let created = ctl
        .run(&["--json", "create", "workspace", "acme", "--reason", "closed"])
        .await;
    done(&created);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(created.json()["status"], "SCHEDULED");

    let shown = ctl.run(&["show", &id]).await;
    done(&shown);
    assert!(
        shown.out.starts_with(&format!("{id} workspace SCHEDULED")),
        "{}",
        shown.out
    );
    assert!(shown.out.contains("(revocable)"), "{}", shown.out);
    let listed = ctl.run(&["list", "--workspace", "acme", "--status", "SCHEDULED"]).await;
    done(&listed);
    assert!(listed.out.lines().next().unwrap().starts_with("ID"), "{}", listed.out);
    assert!(listed.out.contains(&id), "{}", listed.out);
    let none = ctl.run(&["list", "--workspace", "acme", "--status", "COMPLETED"]).await;
    assert!(!none.out.contains(&id), "filtered: {}", none.out);

    let plan = ctl.run(&["plan", &id]).await;
    done(&plan);
    let archive_row = plan.out.lines().find(|l| l.starts_with("archive")).expect(&plan.out);
    assert!(
        archive_row.contains(&format!("s3://{}/acme/", env.archive)),
        "{archive_row}"
    );
    assert!(
        archive_row.split_whitespace().nth(2) == Some("2"),
        "two objects: {archive_row}"
    );
    let total = plan.out.lines().find(|l| l.starts_with("total")).expect(&plan.out);
    assert_eq!(total.split_whitespace().nth(1), Some("3"), "{}", plan.out);

    // The watch follows it from grace to the receipt while the runner works.
    let watcher = {
        let (base, token, id) = (ctl.base.clone(), ctl.token.clone(), id.clone());
        tokio::spawn(async move { Ctl { base, token }.run(&["watch", &id, "--interval", "0.02"]).await })
    };
    env.clock.advance(Duration::days(5) + Duration::minutes(1));
    env.settle().await;
    // The request is final now: the watch ends at its next poll.
    let watched = watcher.await.expect("the watch ends once the request is final");
    done(&watched);
    let last = watched
        .out
        .lines()
        .find(|l| l.contains("COMPLETED"))
        .expect(&watched.out);
    assert!(
        last.contains("archive 2 deleted") && last.contains("profiles 1 deleted"),
        "{last}"
    );
    assert!(watched.out.contains("receipt:   3 objects"), "{}", watched.out);
    assert!(
        watched.out.contains("signed:    ED25519 by local:receipts"),
        "{}",
        watched.out
    );
    assert_eq!(
        env.inventory(&env.archive, "acme-corp/").await.versions.len(),
        1,
        "outside the scope"
    );

    // The receipt, checked offline with the published keys.
    let shown = ctl.run(&["--json", "show", &id]).await;
    let dir = std::env::temp_dir().join(format!("deletionctl-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("answer.json");
    std::fs::write(&file, &shown.out).unwrap();
    let verified = ctl.run(&["verify-receipt", file.to_str().unwrap()]).await;
    done(&verified);
    assert!(
        verified.out.starts_with(&format!(
            "valid: receipt of request {id} signed by local:receipts (ED25519)"
        )),
        "{}",
        verified.out
    );
    let mut changed = shown.json();
    changed["receipt"]["totals"]["objects"] = 2.into();
    std::fs::write(&file, changed.to_string()).unwrap();
    let tampered = ctl.run(&["verify-receipt", file.to_str().unwrap()]).await;
    refused(&tampered, Exit::Refused, "NOT valid: receipt of request");
    assert!(
        tampered.err.contains("does not match its signature"),
        "{}",
        tampered.err
    );
    // Against another deployment's key set, given as a file: not its key.
    std::fs::write(&file, &shown.out).unwrap();
    let keys = dir.join("other-keys.json");
    let other = deletion_core::signing::Ed25519Signer::from_secret("other", b"another deployment").unwrap();
    std::fs::write(&keys, serde_json::json!({"keys": [other.jwk()]}).to_string()).unwrap();
    let foreign = ctl
        .run(&[
            "verify-receipt",
            file.to_str().unwrap(),
            "--jwks",
            keys.to_str().unwrap(),
        ])
        .await;
    refused(&foreign, Exit::Refused, "names a key the key set does not hold");
    let verdict = ctl.run(&["--json", "verify-receipt", file.to_str().unwrap()]).await;
    done(&verdict);
    assert_eq!(verdict.json()["valid"], true);
    assert_eq!(verdict.json()["covers"], "the answer's receipt only");

    // A field the signature does not cover, added: refused, though the
    // signed form (which drops it) would still match.
    let mut padded = shown.json();
    padded["receipt"]["complete"] = true.into();
    std::fs::write(&file, padded.to_string()).unwrap();
    let padded = ctl.run(&["verify-receipt", file.to_str().unwrap()]).await;
    refused(&padded, Exit::Refused, "holds fields its signature does not cover");

    // Offline for real: the published key set saved, no API at all.
    let receipt_keys = dir.join("receipt-keys.json");
    let set = http_get(&format!("{}/.well-known/jwks.json", ctl.base)).await;
    std::fs::write(&receipt_keys, &set).unwrap();
    std::fs::write(&file, &shown.out).unwrap();
    let offline = run_bare(&[
        "deletionctl",
        "verify-receipt",
        file.to_str().unwrap(),
        "--jwks",
        receipt_keys.to_str().unwrap(),
    ])
    .await;
    done(&offline);
    // The OpenDSR key (which the intake may sign with) is not a receipt
    // key: a receipt it signed is refused.
    let opendsr = http_get(&format!("{}/.well-known/opendsr-jwks.json", ctl.base)).await;
    assert!(
        !set.contains("local:opendsr") && opendsr.contains("local:opendsr"),
        "{set} {opendsr}"
    );
    let mut forged: deletion_core::model::Receipt = serde_json::from_value(shown.json()["receipt"].clone()).unwrap();
    let intake_key =
        deletion_core::signing::Ed25519Signer::from_secret("opendsr", env.stack.settings.opendsr_key.as_bytes())
            .unwrap();
    deletion_core::signing::sign_receipt(&intake_key, &mut forged)
        .await
        .unwrap();
    std::fs::write(&file, serde_json::to_string(&forged).unwrap()).unwrap();
    let forged = ctl.run(&["verify-receipt", file.to_str().unwrap()]).await;
    refused(&forged, Exit::Refused, "names a key the key set does not hold");

    // A purge done is irreversible: refused, said as the problem says it.
    let late = ctl.run(&["revoke", &id]).await;
    refused(&late, Exit::Refused, "(409)");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn holds_revokes_regulations_and_suppressions() {
    let env = env(Versioning::None).await;
    let ctl = Ctl::serve(&env).await;
    let held = ctl.run(&["hold", "acme", "--reason", "litigation 2026-17"]).await;
    done(&held);
    assert!(held.out.starts_with("held: acme since"), "{}", held.out);
    assert!(held.out.contains("litigation 2026-17"), "{}", held.out);
    done(&ctl.run(&["release", "acme"]).await);
    refused(&ctl.run(&["release", "acme"]).await, Exit::NotFound, "(404)");

    let space = ctl.run(&["--json", "create", "space", "acme", "main"]).await;
    done(&space);
    let id = space.json()["id"].as_str().unwrap().to_owned();
    let revoked = ctl.run(&["revoke", &id]).await;
    done(&revoked);
    assert!(
        revoked.out.starts_with(&format!("{id} space REVOKED")),
        "{}",
        revoked.out
    );
    let days = ctl
        .run(&[
            "--json",
            "create",
            "source-days",
            "acme",
            "web",
            "--from",
            "2024-01-01",
            "--to",
            "2024-01-02",
        ])
        .await;
    done(&days);
    assert_eq!(days.json()["kind"], "source_days");
    refused(
        &ctl.run(&[
            "create",
            "source-days",
            "acme",
            "web",
            "--from",
            "2024-01-02T10:00:00Z",
            "--to",
            "2024-01-03",
        ])
        .await,
        Exit::Usage,
        "whole days",
    );
    refused(
        &ctl.run(&["create", "workspace", "acme/../other"]).await,
        Exit::Usage,
        "(400)",
    );
    let unknown = "0193c9a2-7b1e-7cc0-9a3e-5f0d2c1b4e6f";
    refused(&ctl.run(&["show", unknown]).await, Exit::NotFound, "(404)");

    let regulation = ctl
        .run(&["--json", "regulate", "acme", "bob", "--type", "SUPPRESS_ONLY"])
        .await;
    done(&regulation);
    let reg_id = regulation.json()["id"].as_str().unwrap().to_owned();
    env.settle().await;
    let shown = ctl.run(&["show", &reg_id]).await;
    done(&shown);
    assert!(
        shown.out.starts_with(&format!("{reg_id} regulation SUPPRESS_ONLY")),
        "{}",
        shown.out
    );
    let checked = ctl.run(&["suppressed", "acme", "bob", "ann"]).await;
    done(&checked);
    assert_eq!(checked.out, "bob: suppressed\nann: not suppressed\n");
    let listed = ctl.run(&["suppressed", "acme"]).await;
    done(&listed);
    let row = listed.out.lines().nth(1).expect(&listed.out);
    assert!(
        row.starts_with("bob") && row.contains("(workspace)") && row.contains(&reg_id),
        "{row}"
    );
    refused(
        &ctl.run(&["regulate", "acme", "bob", "--type", "FORGET"]).await,
        Exit::Usage,
        "(400)",
    );
}

#[tokio::test]
async fn without_a_token_or_an_api_the_cli_says_what_is_missing() {
    let env = env(Versioning::None).await;
    let ctl = Ctl::serve(&env).await;
    refused(
        &ctl.run_with(None, &["show", "0193c9a2-7b1e-7cc0-9a3e-5f0d2c1b4e6f"])
            .await,
        Exit::Refused,
        "Unauthorized",
    );
    // The published keys need no token.
    let file = std::env::temp_dir().join(format!("deletionctl-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, r#"{"receipt": {"not": "a receipt"}}"#).unwrap();
    refused(
        &ctl.run_with(None, &["verify-receipt", file.to_str().unwrap()]).await,
        Exit::Usage,
        "not a receipt",
    );
    let _ = std::fs::remove_file(file);
    // Bad usage, as clap answers it in the binary: exit 2.
    let e = Cli::try_parse_from(["deletionctl", "create"]).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let e = Cli::try_parse_from(["deletionctl", "list"]).unwrap_err();
    assert_eq!(e.exit_code(), 2, "--workspace or --account");
    let refused_api = Cli::try_parse_from(["deletionctl", "--api", "ftp://x", "show", "x"]).unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let exit = run(
        refused_api,
        &mut Output {
            out: &mut out,
            err: &mut err,
            tty: false,
        },
    )
    .await;
    assert_eq!(exit, Exit::Usage, "{}", String::from_utf8_lossy(&err));
}

#[tokio::test]
async fn a_cloud_receipt_signed_in_kms_is_checked_offline_with_the_published_key() {
    let env = integration_tests::deploy(Versioning::None, integration_tests::Signing::Kms).await;
    env.put(&env.archive, "acme/web/2024-01-01/e.json.gz").await;
    let ctl = Ctl::serve(&env).await;
    let created = ctl.run(&["--json", "create", "workspace", "acme"]).await;
    done(&created);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    env.stack.pump_stream().await.unwrap();
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    env.settle().await;

    let shown = ctl.run(&["--json", "show", &id]).await;
    done(&shown);
    assert_eq!(shown.json()["receipt"]["signature"]["algorithm"], "ECDSA_SHA_256");
    let dir = std::env::temp_dir().join(format!("deletionctl-kms-{id}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (file, keys) = (dir.join("receipt.json"), dir.join("jwks.json"));
    std::fs::write(&file, shown.json()["receipt"].to_string()).unwrap();
    std::fs::write(&keys, http_get(&format!("{}/.well-known/jwks.json", ctl.base)).await).unwrap();
    let offline = |file: &std::path::Path| {
        let argv = [
            "deletionctl",
            "verify-receipt",
            file.to_str().unwrap(),
            "--jwks",
            keys.to_str().unwrap(),
        ]
        .map(str::to_owned);
        async move { run_bare(&argv.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };
    let valid = offline(&file).await;
    done(&valid);
    assert!(valid.out.contains("(ECDSA_SHA_256)"), "{}", valid.out);
    // One byte of the receipt changed: the P-256 signature fails.
    let text = shown.json()["receipt"].to_string().replacen("acme", "acmf", 1);
    std::fs::write(&file, text).unwrap();
    refused(&offline(&file).await, Exit::Refused, "does not match its signature");
    let _ = std::fs::remove_dir_all(dir);
}
