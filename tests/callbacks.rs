//! Status callbacks against a real moto server and a real HTTP receiver on
//! loopback: every status change is POSTed in order, signed with the secret
//! the requester was given; a failing receiver is retried with backoff and
//! never holds up the purge; callbacks never go to private addresses in AWS.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Duration;
use deletion_aws::webhook::HttpSender;
use deletion_core::callbacks::{verify_signature, MAX_ATTEMPTS};
use deletion_core::ports::CallbackSender;
use deletion_core::DeliveryError;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use integration_tests::{env, Env, Versioning};
use serde_json::Value;

#[derive(Debug, Clone)]
struct Hit {
    signature: String,
    event_id: String,
    body: Vec<u8>,
}

impl Hit {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("event is JSON")
    }
}

/// A webhook receiver on loopback that records what it is sent and answers
/// with the status it is told to.
struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
    answer: Arc<AtomicU16>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hooks/deletions", listener.local_addr().expect("addr"));
        let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
        let answer = Arc::new(AtomicU16::new(200));
        let (h, a) = (hits.clone(), answer.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (h, a) = (h.clone(), a.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let (h, a) = (h.clone(), a.clone());
                        async move {
                            let header = |n: &str| {
                                req.headers()
                                    .get(n)
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("")
                                    .to_owned()
                            };
                            let (signature, event_id) = (header("deletion-signature"), header("deletion-event-id"));
                            let body = req.into_body().collect().await.map(|b| b.to_bytes().to_vec());
                            h.lock().unwrap().push(Hit {
                                signature,
                                event_id,
                                body: body.unwrap_or_default(),
                            });
                            let status = a.load(Ordering::SeqCst);
                            Ok::<_, std::convert::Infallible>(
                                hyper::Response::builder()
                                    .status(status)
                                    .body(Full::new(Bytes::from_static(b"ok")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver { url, hits, answer }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    fn answer_with(&self, status: u16) {
        self.answer.store(status, Ordering::SeqCst);
    }
}

/// Asks for a workspace deletion reporting to `url`; its id and secret.
async fn delete_workspace(env: &Env, ws: &str, url: &str) -> (String, String) {
    let body = format!(r#"{{"reason": "customer asked", "callback_url": "{url}"}}"#);
    let created = env
        .call("POST", &format!("/v1/workspaces/{ws}/deletion"), Some(&body), &[])
        .await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    assert_eq!(created.body["callback_url"].as_str(), Some(url));
    let callback = &created.body["callback"];
    assert_eq!(callback["url"].as_str(), Some(url));
    assert_eq!(callback["signature_header"].as_str(), Some("deletion-signature"));
    let secret = callback["secret"].as_str().expect("a secret").to_owned();
    assert!(secret.len() > 20, "{secret}");
    (created.body["id"].as_str().unwrap().to_owned(), secret)
}

async fn status_of(env: &Env, id: &str) -> Value {
    let a = env.call("GET", &format!("/v1/deletions/{id}"), None, &[]).await;
    assert_eq!(a.status, 200, "{:#}", a.body);
    a.body
}

#[tokio::test]
async fn every_status_change_is_posted_in_order_and_signed() {
    let env = env(Versioning::None).await;
    let receiver = Receiver::start().await;
    env.put(&env.archive, "acme/web/2024-01-01/a.json.gz").await;
    let (id, secret) = delete_workspace(&env, "acme", &receiver.url).await;

    env.settle().await;
    let hits = receiver.hits();
    assert_eq!(hits.len(), 1, "the request's creation is reported at once");
    assert_eq!(hits[0].json()["status"], "SCHEDULED");

    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    env.settle().await;
    let status = status_of(&env, &id).await;
    assert_eq!(status["status"], "COMPLETED", "{status:#}");
    let history: Vec<&str> = status["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();

    let hits = receiver.hits();
    let statuses: Vec<String> = hits
        .iter()
        .map(|h| h.json()["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, history, "one event per history entry, in order, none twice");
    for (n, hit) in hits.iter().enumerate() {
        let event = hit.json();
        assert_eq!(event["request_id"].as_str(), Some(id.as_str()));
        assert_eq!(event["sequence"].as_u64(), Some(n as u64));
        assert_eq!(hit.event_id, format!("{id}:{n}"));
        assert_eq!(event["id"].as_str(), Some(hit.event_id.as_str()));
        assert_eq!(
            event["status_url"].as_str(),
            Some(format!("/v1/deletions/{id}").as_str())
        );
        assert!(
            verify_signature(&secret, &hit.signature, &hit.body),
            "event {n} is signed with the request's secret: {}",
            hit.signature
        );
        assert!(!verify_signature("dcs_someone-else", &hit.signature, &hit.body));
    }
    assert_eq!(hits.last().unwrap().json()["previous_status"], "VERIFYING");

    let callbacks = &status["callbacks"];
    assert_eq!(
        callbacks["events"].as_u64(),
        Some(history.len() as u64),
        "{callbacks:#}"
    );
    assert_eq!(callbacks["delivered"], callbacks["events"]);
    assert_eq!(callbacks["pending"].as_u64(), Some(0));

    // Replayed stream records and later rounds send nothing again.
    env.settle().await;
    assert_eq!(receiver.hits().len(), hits.len());
    // Every status delivered: the state expires a week on (the table's TTL).
    let item = env
        .raw_item(&format!("REQ#{id}"), "CALLBACK")
        .await
        .expect("callback state");
    let expires: i64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    use deletion_core::ports::Clock;
    let week = (env.clock.now() + deletion_core::model::ledger::CALLBACK_STATE_KEPT).timestamp();
    assert!((week - 60..=week).contains(&expires), "{expires} vs {week}");
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_and_never_holds_up_the_purge() {
    let env = env(Versioning::None).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(503);
    env.put(&env.archive, "beta/web/2024-01-01/a.json.gz").await;
    let (id, secret) = delete_workspace(&env, "beta", &receiver.url).await;
    env.settle().await;
    assert_eq!(receiver.hits().len(), 1);

    // The grace ends and the purge runs while the receiver is down.
    env.clock.advance(Duration::days(5) + Duration::seconds(1));
    env.settle().await;
    let status = status_of(&env, &id).await;
    assert_eq!(status["status"], "COMPLETED", "the purge did not wait for callbacks");
    assert!(env.inventory(&env.archive, "beta/").await.versions.is_empty());
    let callbacks = &status["callbacks"];
    assert_eq!(callbacks["delivered"].as_u64(), Some(0), "{callbacks:#}");
    assert_eq!(callbacks["last_error"].as_str(), Some("the receiver answered HTTP 503"));
    let attempts = receiver.hits().len();
    assert!(attempts >= 2, "tried again once its 30 s backoff ran out: {attempts}");

    // Before the backoff runs out, nothing is sent.
    let waiting_until = callbacks["next_attempt_at"].as_str().expect("a retry time").to_owned();
    env.settle().await;
    assert_eq!(receiver.hits().len(), attempts);

    // The receiver is back: after the backoff every event arrives, in order.
    receiver.answer_with(200);
    env.clock.advance(Duration::hours(1));
    env.settle().await;
    let status = status_of(&env, &id).await;
    let callbacks = &status["callbacks"];
    assert_eq!(callbacks["pending"].as_u64(), Some(0), "{callbacks:#}");
    assert!(callbacks["last_error"].is_null());
    let accepted: Vec<Hit> = receiver.hits().into_iter().skip(attempts).collect();
    let statuses: Vec<String> = accepted
        .iter()
        .map(|h| h.json()["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(statuses, ["SCHEDULED", "PURGING", "VERIFYING", "COMPLETED"]);
    assert!(accepted
        .iter()
        .all(|h| verify_signature(&secret, &h.signature, &h.body)));
    assert!(waiting_until.as_str() > "", "{waiting_until}");
}

#[tokio::test]
async fn an_event_is_given_up_after_its_last_attempt_and_the_next_goes_on() {
    let env = env(Versioning::None).await;
    let receiver = Receiver::start().await;
    receiver.answer_with(500);
    let (id, _) = delete_workspace(&env, "gamma", &receiver.url).await;
    env.settle().await;
    for _ in 1..MAX_ATTEMPTS {
        env.clock.advance(Duration::hours(1));
        env.settle().await;
    }
    assert_eq!(receiver.hits().len(), MAX_ATTEMPTS as usize, "no attempt past the last");
    let callbacks = status_of(&env, &id).await["callbacks"].clone();
    assert_eq!(callbacks["given_up"].as_u64(), Some(1), "{callbacks:#}");
    assert_eq!(callbacks["pending"].as_u64(), Some(0));

    // The revoke is the next event: it is delivered.
    receiver.answer_with(204);
    let revoked = env.call("DELETE", "/v1/workspaces/gamma/deletion", None, &[]).await;
    assert_eq!(revoked.status, 200, "{:#}", revoked.body);
    env.settle().await;
    let last = receiver.hits().last().cloned().unwrap();
    assert_eq!(last.json()["status"], "REVOKED");
    assert_eq!(last.json()["sequence"].as_u64(), Some(1));
    let callbacks = status_of(&env, &id).await["callbacks"].clone();
    assert_eq!(
        (callbacks["delivered"].as_u64(), callbacks["given_up"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn account_children_report_to_the_account_requests_callback() {
    let env = env(Versioning::None).await;
    let receiver = Receiver::start().await;
    env.member("ws-a", "acct-1", "admin").await;
    env.member("ws-b", "acct-1", "admin").await;
    let body = format!(r#"{{"callback_url": "{}"}}"#, receiver.url);
    let created = env.call("POST", "/v1/accounts/acct-1/deletion", Some(&body), &[]).await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    let parent = created.body["id"].as_str().unwrap().to_owned();
    env.settle().await;
    let hits = receiver.hits();
    let mut requests: Vec<String> = hits
        .iter()
        .map(|h| h.json()["request_id"].as_str().unwrap().to_owned())
        .collect();
    requests.sort();
    requests.dedup();
    assert_eq!(requests.len(), 3, "the account request and both children: {requests:?}");
    let children: Vec<Value> = hits
        .iter()
        .map(Hit::json)
        .filter(|e| e["request_id"].as_str() != Some(parent.as_str()))
        .collect();
    assert!(children
        .iter()
        .all(|e| e["parent_id"].as_str() == Some(parent.as_str())));
}

#[tokio::test]
async fn bad_callback_urls_are_refused_and_nothing_is_written() {
    let env = env(Versioning::None).await;
    let long = format!("https://example.com/{}", "a".repeat(2100));
    for (body, says) in [
        (r#"{"callback_url": "ftp://example.com/x"}"#.to_owned(), "scheme"),
        (
            r#"{"callback_url": "https://user:pw@example.com/x"}"#.to_owned(),
            "credentials",
        ),
        (r#"{"callback_url": "not a url"}"#.to_owned(), "not a URL"),
        (r#"{"callback_url": 17}"#.to_owned(), "expected a string"),
        (format!(r#"{{"callback_url": "{long}"}}"#), "2048"),
    ] {
        let a = env
            .call("POST", "/v1/workspaces/delta/deletion", Some(&body), &[])
            .await;
        let problem = a.problem(400);
        assert!(problem["detail"].as_str().unwrap().contains(says), "{problem:#}");
    }
    let listed = env.call("GET", "/v1/workspaces/delta/deletions", None, &[]).await;
    assert_eq!(
        listed.body["items"].as_array().map(Vec::len),
        Some(0),
        "{:#}",
        listed.body
    );
}

#[tokio::test]
async fn in_aws_callbacks_never_reach_loopback_or_private_addresses() {
    let receiver = Receiver::start().await;
    let strict = HttpSender::new(false).expect("sender");
    let headers = [("content-type".to_owned(), "application/json".to_owned())];
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for url in [
        format!("https://127.0.0.1:{port}/hooks"),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        "https://[::1]/hooks".to_owned(),
    ] {
        let sent = strict.post(&url, &headers, b"{}".to_vec()).await;
        assert!(matches!(sent, Err(DeliveryError::Refused(_))), "{url}: {sent:?}");
    }
    // A name that resolves to loopback is refused when resolved.
    let sent = strict
        .post(&format!("https://localhost:{port}/hooks"), &headers, b"{}".to_vec())
        .await;
    match sent {
        Err(DeliveryError::Unreachable(why)) => assert!(why.contains("no public address"), "{why}"),
        other => panic!("localhost was not refused: {other:?}"),
    }
    // Plain http is refused too.
    let sent = strict
        .post(&format!("http://localhost:{port}/hooks"), &headers, b"{}".to_vec())
        .await;
    assert!(sent.is_err(), "{sent:?}");
    assert!(receiver.hits().is_empty(), "nothing reached the receiver");

    // The local sender (tests and the local runner only) does reach it.
    let local = HttpSender::new(true).expect("sender");
    let sent = local.post(&receiver.url, &headers, b"{}".to_vec()).await;
    assert_eq!(sent, Ok(200));
}

#[tokio::test]
async fn only_the_requester_is_given_the_callback_secret() {
    let env = env(Versioning::None).await;
    env.member("acme", "ann", "admin").await;
    env.member("acme", "dan", "admin").await;
    let none: &[&str] = &[];
    let body = r#"{"callback_url": "http://127.0.0.1:9/anns-hook"}"#;
    let key = [("idempotency-key", "ann-1")];
    let path = "/v1/workspaces/acme/deletion";
    let created = env.call_as(Some(("ann", none)), "POST", path, Some(body), &key).await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    let secret = created.body["callback"]["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    // Another admin asking for the same deletion finds it, without the secret.
    let other = env.call_as(Some(("dan", none)), "POST", path, None, &[]).await;
    assert_eq!((other.status.as_u16(), &other.body["id"]), (200, &created.body["id"]));
    assert!(other.body.get("callback").is_none(), "{:#}", other.body);
    assert!(!other.body.to_string().contains(&secret));
    let with_url = env.call_as(Some(("dan", none)), "POST", path, Some(body), &[]).await;
    assert_eq!(with_url.status, 200, "{:#}", with_url.body);
    assert!(!with_url.body.to_string().contains(&secret), "{:#}", with_url.body);
    // Even with the same key: the key is ann's, not his.
    let same_key = env.call_as(Some(("dan", none)), "POST", path, Some(body), &key).await;
    assert!(!same_key.body.to_string().contains(&secret), "{:#}", same_key.body);
    // ann's replay with her key is given it again.
    let replay = env.call_as(Some(("ann", none)), "POST", path, Some(body), &key).await;
    assert_eq!(replay.status, 200, "{:#}", replay.body);
    assert_eq!(replay.body["callback"]["secret"].as_str(), Some(secret.as_str()));
}

#[tokio::test]
async fn an_account_requests_children_sign_with_the_secret_its_requester_was_given() {
    let env = env(Versioning::None).await;
    let receiver = Receiver::start().await;
    env.member("ws-a", "acct-1", "admin").await;
    env.member("ws-b", "acct-1", "admin").await;
    let body = format!(r#"{{"callback_url": "{}"}}"#, receiver.url);
    let created = env.call("POST", "/v1/accounts/acct-1/deletion", Some(&body), &[]).await;
    assert_eq!(created.status, 202, "{:#}", created.body);
    let secret = created.body["callback"]["secret"]
        .as_str()
        .expect("a secret")
        .to_owned();
    env.settle().await;
    let hits = receiver.hits();
    assert!(hits.len() >= 3, "{hits:?}");
    for hit in &hits {
        assert!(
            verify_signature(&secret, &hit.signature, &hit.body),
            "event {} does not verify with the secret given",
            hit.event_id
        );
    }
}
