//! OpenDSR 2.0 over real HTTP (the local runner in front of the intake,
//! DynamoDB Local and moto behind it, a callback receiver on loopback):
//! the spec's own example request (OpenGDPR 0.1.4 §7.2, with OpenDSR 2.0's
//! `regulation` and this processor's extension) becomes a regulation whose
//! id is its `subject_request_id`; status, cancel and discovery answer as
//! the spec says, every answer and callback signed with the published key
//! over the body as sent; bad requests are refused as problems.

use std::sync::{Arc, Mutex};

use deletion_core::access::OPERATOR_SCOPE;
use deletion_core::signing::{verify_message_offline, Jwks, ReceiptSignature, ED25519};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use integration_tests::{env, Env, Versioning};
use local_runner::token::DevIssuer;
use serde_json::{json, Value};

const ID: &str = "a7551968-d5d6-44b2-9831-815ac9017798";

struct Api {
    base: String,
    host: String,
    ops: String,
    ann: String,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

struct Reply {
    status: u16,
    domain: String,
    signature: String,
    bytes: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

impl Api {
    async fn serve(env: &Env) -> Api {
        let issuer = DevIssuer::new("dsr-key", "http://127.0.0.1/local-issuer", "deletion-service");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        tokio::spawn(local_runner::http::serve_on(
            listener,
            Arc::clone(&env.stack.intake),
            issuer.clone(),
        ));
        let now = chrono::Utc::now().timestamp();
        Api {
            base: format!("http://{host}"),
            host,
            ops: issuer.mint("ops", &[OPERATOR_SCOPE], now, 3600).unwrap(),
            ann: issuer.mint("ann", &[], now, 3600).unwrap(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn send(&self, token: &str, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let answer = self
            .client
            .request(req.body(Full::new(payload)).unwrap())
            .await
            .unwrap();
        let header = |n: &str| {
            answer
                .headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (status, domain, signature) = (
            answer.status().as_u16(),
            header("x-opendsr-processor-domain"),
            header("x-opendsr-signature"),
        );
        let bytes = answer.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply {
            status,
            domain,
            signature,
            bytes,
        }
    }

    async fn keys(&self) -> Jwks {
        let reply = self.send("none", "GET", "/.well-known/opendsr-jwks.json", None).await;
        assert_eq!(reply.status, 200);
        serde_json::from_slice(&reply.bytes).unwrap()
    }
}

/// Whether `signature` is the OpenDSR key's over `bytes`.
fn signed_by_opendsr_key(keys: &Jwks, bytes: &[u8], signature: &str) -> bool {
    let signature = ReceiptSignature {
        algorithm: ED25519.into(),
        key_id: "local:opendsr".into(),
        value: signature.into(),
    };
    verify_message_offline(&keys.keys, bytes, &signature)
}

/// The spec's example request (OpenGDPR 0.1.4 §7.2) as OpenDSR 2.0 sends
/// it, with this processor's extension naming the workspace.
fn spec_example(domain: &str, callback: &str) -> Value {
    json!({
        "regulation": "gdpr",
        "subject_request_id": ID,
        "subject_request_type": "erasure",
        "submitted_time": "2018-10-02T15:00:00Z",
        "subject_identities": [
            {"identity_type": "email", "identity_value": "johndoe@example.com", "identity_format": "raw"}
        ],
        "api_version": "2.0",
        "status_callback_urls": [callback],
        "extensions": {
            domain: {"workspace": "acme"},
            "example-other-processor.com": {"foo-other-processor-custom-id": 654321}
        }
    })
}

#[derive(Clone)]
struct Hit {
    domain: String,
    signature: String,
    body: Vec<u8>,
}

/// A callback receiver on loopback recording what it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Hit>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/opendsr/callbacks", listener.local_addr().unwrap());
    let hits: Arc<Mutex<Vec<Hit>>> = Arc::default();
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let h = h.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let h = h.clone();
                    async move {
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned()
                        };
                        let (domain, signature) = (header("x-opendsr-processor-domain"), header("x-opendsr-signature"));
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes().to_vec())
                            .unwrap_or_default();
                        h.lock().unwrap().push(Hit {
                            domain,
                            signature,
                            body,
                        });
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, hits)
}

#[tokio::test]
async fn the_spec_example_becomes_a_regulation_reported_and_signed_as_opendsr_says() {
    let env = env(Versioning::None).await;
    let events = "{\"userId\":\"u1\",\"traits\":{\"email\":\"johndoe@example.com\"}}\n{\"userId\":\"u2\",\"traits\":{\"email\":\"ann@example.com\"}}\n";
    deletion_aws::provision::put_object(&env.clients, &env.archive, "acme/web/2024-01-01/e.json.gz", &gz(events))
        .await
        .unwrap();
    let api = Api::serve(&env).await;
    let keys = api.keys().await;
    let (hooks, hits) = receiver().await;

    let discovery = api.send(&api.ops, "GET", "/opendsr/discovery", None).await;
    assert_eq!(discovery.status, 200, "{:?}", discovery.json());
    assert!(signed_by_opendsr_key(&keys, &discovery.bytes, &discovery.signature));
    let d = discovery.json();
    assert_eq!(d["api_version"], "2.0");
    assert_eq!(d["supported_subject_request_types"], json!(["erasure"]));
    let identities: Vec<&str> = d["supported_identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["identity_type"].as_str().unwrap())
        .collect();
    assert!(
        identities.contains(&"controller_customer_id") && identities.contains(&"email"),
        "{identities:?}"
    );
    assert_eq!(
        d["processor_certificate"],
        format!("https://{}/.well-known/opendsr-jwks.json", api.host)
    );

    let body = spec_example(&api.host, &hooks);
    let created = api.send(&api.ops, "POST", "/opendsr/requests", Some(&body)).await;
    assert_eq!(created.status, 201, "{:?}", created.json());
    assert_eq!(created.domain, api.host);
    assert!(
        signed_by_opendsr_key(&keys, &created.bytes, &created.signature),
        "the answer is signed"
    );
    assert!(!signed_by_opendsr_key(&keys, b"{}", &created.signature));
    let c = created.json();
    assert_eq!(
        (c["subject_request_id"].as_str(), c["controller_id"].as_str()),
        (Some(ID), Some("acme"))
    );
    assert_eq!(
        c["expected_completion_time"], "2018-11-01T15:00:00Z",
        "30 days from submitted_time"
    );
    let encoded = base64_decode(c["encoded_request"].as_str().unwrap());
    assert_eq!(
        serde_json::from_slice::<Value>(&encoded).unwrap(),
        body,
        "the request, base64"
    );
    // The same request again answers the request it made.
    let again = api.send(&api.ops, "POST", "/opendsr/requests", Some(&body)).await;
    assert_eq!(
        (again.status, again.json()["received_time"].clone()),
        (201, c["received_time"].clone())
    );
    // The same id with another identity is not the same request: 409,
    // never an answer that lets the controller believe it is erased.
    let mut other = body.clone();
    other["subject_identities"][0]["identity_value"] = json!("someone.else@example.com");
    let taken = api.send(&api.ops, "POST", "/opendsr/requests", Some(&other)).await;
    assert_eq!(taken.status, 409, "{:?}", taken.json());
    assert_eq!(
        taken.json()["type"],
        "urn:deletion-service:problem:subject-request-id-taken"
    );

    // It is a regulation of the workspace, by the same id.
    let regulation = env.call("GET", &format!("/v1/regulations/{ID}"), None, &[]).await;
    assert_eq!(regulation.status, 200, "{:#}", regulation.body);
    assert_eq!(
        (
            regulation.body["type"].as_str(),
            regulation.body["subject_type"].as_str()
        ),
        (Some("DELETE_ONLY"), Some("EMAIL")),
        "the suppression list holds user ids: an e-mail address is erased, not suppressed"
    );
    let listed = env.call("GET", "/v1/workspaces/acme/suppressions", None, &[]).await;
    assert_eq!(listed.body["items"], json!([]), "{:#}", listed.body);

    env.settle().await;
    env.stack.retry_callbacks().await.unwrap();
    let status = api
        .send(&api.ops, "GET", &format!("/opendsr/requests/{ID}"), None)
        .await;
    assert_eq!(status.status, 200);
    assert!(signed_by_opendsr_key(&keys, &status.bytes, &status.signature));
    let s = status.json();
    assert_eq!(s["request_status"], "completed", "{s:#}");
    // Every field of the spec's status example (§8.4), and its response's (§7.4).
    for field in [
        "controller_id",
        "expected_completion_time",
        "subject_request_id",
        "request_status",
        "api_version",
        "results_url",
    ] {
        assert!(s.get(field).is_some(), "status without {field}: {s:#}");
    }
    for field in [
        "controller_id",
        "expected_completion_time",
        "received_time",
        "encoded_request",
        "subject_request_id",
    ] {
        assert!(c.get(field).is_some(), "response without {field}: {c:#}");
    }
    assert_eq!(
        (s["submitted_time"].as_str(), s["api_version"].as_str()),
        (Some("2018-10-02T15:00:00Z"), Some("2.0"))
    );
    assert_eq!(s["extensions"][&api.host]["status"], "FINISHED");
    let stored = deletion_aws::provision::get_object(&env.clients, &env.archive, "acme/web/2024-01-01/e.json.gz", None)
        .await
        .unwrap();
    let left = gunzip(&stored);
    assert!(!left.contains("johndoe") && left.contains("ann@example.com"), "{left}");

    // Callbacks: one per OpenDSR status, each signed over the body as sent.
    let hits = hits.lock().unwrap().clone();
    let statuses: Vec<String> = hits
        .iter()
        .map(|h| {
            assert_eq!(h.domain, api.host);
            assert!(signed_by_opendsr_key(&keys, &h.body, &h.signature), "a callback signed");
            let b: Value = serde_json::from_slice(&h.body).unwrap();
            assert_eq!(
                (b["subject_request_id"].as_str(), b["status_callback_url"].as_str()),
                (Some(ID), Some(hooks.as_str()))
            );
            b["request_status"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(statuses, ["pending", "in_progress", "completed"]);

    // Once taken, it cannot be cancelled.
    let late = api
        .send(&api.ops, "DELETE", &format!("/opendsr/requests/{ID}"), None)
        .await;
    assert_eq!(late.status, 409, "{:?}", late.json());
}

fn gz(text: &str) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    e.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> String {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).unwrap()
}

#[tokio::test]
async fn a_pending_request_is_cancelled_and_bad_requests_are_refused() {
    let env = env(Versioning::None).await;
    env.member("acme", "ann", "admin").await;
    let api = Api::serve(&env).await;
    let keys = api.keys().await;
    let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    let mut body = spec_example(&api.host, "https://hooks.example.com/opendsr");
    body["subject_request_id"] = json!(id);
    body["subject_identities"] =
        json!([{"identity_type": "controller_customer_id", "identity_value": "bob", "identity_format": "raw"}]);
    body.as_object_mut().unwrap().remove("status_callback_urls");
    let created = api.send(&api.ann, "POST", "/opendsr/requests", Some(&body)).await;
    assert_eq!(created.status, 201, "{:?}", created.json());
    let bob = env.call("GET", "/v1/workspaces/acme/suppressions/bob", None, &[]).await;
    assert_eq!(
        bob.body["suppressed"], true,
        "a customer id is suppressed: {:#}",
        bob.body
    );
    let pending = api
        .send(&api.ann, "GET", &format!("/opendsr/requests/{id}"), None)
        .await;
    assert_eq!(pending.json()["request_status"], "pending", "{:?}", pending.json());
    let cancelled = api
        .send(&api.ann, "DELETE", &format!("/opendsr/requests/{id}"), None)
        .await;
    assert_eq!(cancelled.status, 202, "{:?}", cancelled.json());
    assert!(signed_by_opendsr_key(&keys, &cancelled.bytes, &cancelled.signature));
    assert_eq!(cancelled.json()["subject_request_id"], id);
    // The fields of the spec's cancellation example (§9.3).
    for field in ["controller_id", "subject_request_id", "received_time", "api_version"] {
        assert!(cancelled.json().get(field).is_some(), "cancellation without {field}");
    }
    let now = api
        .send(&api.ann, "GET", &format!("/opendsr/requests/{id}"), None)
        .await;
    assert_eq!(now.json()["request_status"], "cancelled");
    let suppressed = env.call("GET", "/v1/workspaces/acme/suppressions/bob", None, &[]).await;
    assert_eq!(
        suppressed.body["suppressed"], false,
        "its suppression lifted: {:#}",
        suppressed.body
    );

    let refused = |mut change: Box<dyn FnMut(&mut Value)>| {
        let mut b = body.clone();
        b["subject_request_id"] = json!("3b241101-e2bb-4255-8caf-4136c566a962");
        change(&mut b);
        b
    };
    for (why, b, says) in [
        (
            "no id",
            refused(Box::new(|b| {
                b.as_object_mut().unwrap().remove("subject_request_id");
            })),
            "subject_request_id field is required",
        ),
        (
            "not v4",
            refused(Box::new(|b| {
                b["subject_request_id"] = json!("01a24300-0000-7000-8000-000000000000")
            })),
            "UUID v4",
        ),
        (
            "access",
            refused(Box::new(|b| b["subject_request_type"] = json!("access"))),
            "erases only",
        ),
        (
            "hashed",
            refused(Box::new(|b| {
                b["subject_identities"][0]["identity_format"] = json!("sha256")
            })),
            "only raw",
        ),
        (
            "unknown type",
            refused(Box::new(|b| {
                b["subject_identities"][0]["identity_type"] = json!("roku_advertising_id")
            })),
            "not supported",
        ),
        (
            "two types",
            refused(Box::new(|b| {
                b["subject_identities"] = json!([
            {"identity_type": "controller_customer_id", "identity_value": "bob", "identity_format": "raw"},
            {"identity_type": "email", "identity_value": "b@example.com", "identity_format": "raw"}])
            })),
            "one identity_type",
        ),
        (
            "no workspace",
            refused(Box::new(|b| {
                b.as_object_mut().unwrap().remove("extensions");
            })),
            "extensions must name the workspace",
        ),
        (
            "no regulation",
            refused(Box::new(|b| {
                b.as_object_mut().unwrap().remove("regulation");
            })),
            "regulation field is required",
        ),
        (
            "two callbacks",
            refused(Box::new(|b| {
                b["status_callback_urls"] = json!(["https://a.example.com/x", "https://b.example.com/x"])
            })),
            "at most one",
        ),
    ] {
        let reply = api.send(&api.ann, "POST", "/opendsr/requests", Some(&b)).await;
        assert_eq!(reply.status, 400, "{why}: {:?}", reply.json());
        let detail = reply.json()["detail"].as_str().unwrap_or("").to_owned();
        assert!(detail.contains(says), "{why}: {detail}");
    }
    // Only the workspace's admins; an id nobody made is not found.
    let mut other = body.clone();
    other["subject_request_id"] = json!("6fa459ea-ee8a-4ca4-894e-db77e160355e");
    other["extensions"] = json!({ api.host.clone(): {"workspace": "globex"} });
    assert_eq!(
        api.send(&api.ann, "POST", "/opendsr/requests", Some(&other))
            .await
            .status,
        403
    );
    let unknown = api
        .send(
            &api.ann,
            "GET",
            "/opendsr/requests/6fa459ea-ee8a-4ca4-894e-db77e160355e",
            None,
        )
        .await;
    assert_eq!(unknown.status, 404);
    let ws_regulation = env
        .call(
            "POST",
            "/v1/workspaces/acme/regulations",
            Some(r#"{"type": "DELETE_ONLY", "subject_type": "USER_ID", "subject_ids": ["zed"]}"#),
            &[],
        )
        .await;
    let plain = ws_regulation.body["id"].as_str().unwrap().to_owned();
    let not_dsr = api
        .send(&api.ann, "GET", &format!("/opendsr/requests/{plain}"), None)
        .await;
    assert_eq!(not_dsr.status, 404, "a regulation made without OpenDSR");
}
