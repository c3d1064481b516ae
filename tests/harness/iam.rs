//! IAM in tests: every function's AWS calls go through a loopback proxy that
//! authorises each of them against the policy `template.yaml` gives that
//! function, the way AWS does, before forwarding it (DynamoDB to DynamoDB
//! Local, the rest to moto).
//!
//! - The policies are read from `template.yaml` itself and their
//!   intrinsics (`!Sub`, `!GetAtt`, `!Ref`) resolved for the test
//!   deployment's names, so a test fails when the template lacks an action
//!   the code calls.
//! - Each request is mapped to the IAM actions AWS authorises it by, on the
//!   resources it names: every item of a `TransactWriteItems` as its own
//!   `PutItem`/`UpdateItem`/`DeleteItem`/`ConditionCheckItem`, every key of
//!   a `DeleteObjects` as `DeleteObject` or `DeleteObjectVersion`, the role
//!   of a schedule's target as `iam:PassRole`. (moto's own IAM check cannot
//!   do this: outside S3 it matches every statement against the resource
//!   `*`, and it authorises a transaction as one action.)
//! - A function is known by its access key id; other callers (the test
//!   itself, the runner's Lambda-service parts, provisioning) pass unchecked.
//! - What is refused is answered as AWS answers it (`AccessDenied`), and
//!   every decision is recorded, so a test can also prove the converse:
//!   that each action a policy grants is one the code calls.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use deletion_aws::LocalEndpoints;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use serde_norway::Value as Yaml;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// The template's functions, by the access key id each runs under in tests.
pub const FUNCTIONS: [(&str, &str); 4] = [
    ("IntakeFunction", "AKIAINTAKEFUNCTION00"),
    ("GraceTimerFunction", "AKIAGRACETIMER000000"),
    ("PurgeFunction", "AKIAPURGEFUNCTION000"),
    ("NotifierFunction", "AKIANOTIFIER00000000"),
];

/// The access key id a function runs under.
pub fn access_key(function: &str) -> &'static str {
    FUNCTIONS
        .iter()
        .find(|(f, _)| *f == function)
        .map(|(_, k)| *k)
        .unwrap_or_else(|| panic!("no function {function} in the template"))
}

/// The names a deployment's intrinsics resolve to.
#[derive(Clone, Debug)]
pub struct Names {
    pub table: String,
    pub archive_bucket: String,
    pub profiles_bucket: String,
    pub schedule_group: String,
    pub receipt_signing_key_arn: String,
    pub opendsr_key_arn: String,
    pub receipt_key_arn: String,
    pub callback_key_arn: String,
    pub subject_key_arn: String,
    pub scheduler_role_arn: String,
    pub purge_function_arn: String,
}

impl Names {
    fn table_arn(&self) -> String {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{}", self.table)
    }

    /// `${X}` or `!Ref X` / `!GetAtt X` of the template, resolved.
    fn resolve(&self, name: &str) -> String {
        match name {
            "AWS::Partition" => "aws".into(),
            "AWS::Region" => REGION.into(),
            "AWS::AccountId" => ACCOUNT.into(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            "AWS::StackName" => "deletion".into(),
            "ArchiveBucketName" => self.archive_bucket.clone(),
            "ProfilesBucketName" => self.profiles_bucket.clone(),
            "ScheduleGroupName" | "GraceScheduleGroup" => self.schedule_group.clone(),
            "LedgerTableName" | "LedgerTable" => self.table.clone(),
            "LedgerTable.Arn" => self.table_arn(),
            "LedgerTable.StreamArn" => format!("{}/stream/*", self.table_arn()),
            "ReceiptSigningKey.Arn" => self.receipt_signing_key_arn.clone(),
            "OpenDsrKey.Arn" => self.opendsr_key_arn.clone(),
            "ReceiptKey.Arn" => self.receipt_key_arn.clone(),
            "CallbackKey.Arn" => self.callback_key_arn.clone(),
            "SubjectKey.Arn" => self.subject_key_arn.clone(),
            "SchedulerRole.Arn" => self.scheduler_role_arn.clone(),
            "PurgeFunction.Arn" => self.purge_function_arn.clone(),
            other => panic!("template.yaml names {other}, which the IAM test cannot resolve"),
        }
    }

    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closed ${ in !Sub") + start;
            out.push_str(&self.resolve(&rest[start + 2..end]));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A policy value of the template with its intrinsics resolved.
    fn render(&self, value: &Yaml) -> Value {
        match value {
            Yaml::Tagged(tagged) => {
                let inner = tagged.value.as_str().expect("a string under an intrinsic tag");
                match tagged.tag.to_string().as_str() {
                    "!Sub" => Value::String(self.substitute(inner)),
                    "!Ref" | "!GetAtt" => Value::String(self.resolve(inner)),
                    other => panic!("intrinsic {other} in a policy is not understood by the IAM test"),
                }
            }
            Yaml::Sequence(items) => Value::Array(items.iter().map(|v| self.render(v)).collect()),
            Yaml::Mapping(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.as_str().expect("string keys").to_owned(), self.render(v)))
                    .collect(),
            ),
            Yaml::String(s) => Value::String(s.clone()),
            Yaml::Bool(b) => Value::Bool(*b),
            Yaml::Number(n) => Value::String(n.to_string()),
            Yaml::Null => Value::Null,
        }
    }
}

/// One Allow statement of a policy.
#[derive(Clone, Debug)]
pub struct Statement {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// A statement with a condition is never taken as granting anything
    /// here: its condition cannot be judged from the request alone.
    pub conditional: bool,
    /// The service a condition says the calls come through
    /// (`kms:ViaService`), if it says one.
    pub via_service: Option<String>,
}

/// A function's identity policy: every Allow statement of its `Policies`.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl Policy {
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.statements.iter().any(|s| {
            !s.conditional
                && s.actions
                    .iter()
                    .any(|a| wildcard(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()))
                && s.resources.iter().any(|r| wildcard(r, resource))
        })
    }

    /// Every action the policy grants the function's own calls (its
    /// wildcards as written).
    pub fn actions(&self) -> BTreeSet<String> {
        self.statements
            .iter()
            .filter(|s| !s.conditional)
            .flat_map(|s| s.actions.iter().cloned())
            .collect()
    }
}

fn template() -> Yaml {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

/// The policy `template.yaml` gives each function, resolved for `names`.
pub fn template_policies(names: &Names) -> BTreeMap<String, Policy> {
    let template = template();
    let mut out = BTreeMap::new();
    for (function, _) in FUNCTIONS {
        let properties = &template["Resources"][function]["Properties"];
        assert!(properties.is_mapping(), "template.yaml has no function {function}");
        let mut policy = Policy::default();
        for entry in properties["Policies"].as_sequence().into_iter().flatten() {
            let document = if entry["PolicyDocument"].is_mapping() {
                &entry["PolicyDocument"]
            } else {
                entry
            };
            assert!(
                document["Statement"].is_sequence(),
                "{function}: only inline statements are understood here, not {entry:?}"
            );
            for statement in names.render(&document["Statement"]).as_array().into_iter().flatten() {
                assert_eq!(
                    statement["Effect"], "Allow",
                    "{function}: only Allow statements are used"
                );
                policy.statements.push(Statement {
                    actions: strings(&statement["Action"]),
                    resources: strings(&statement["Resource"]),
                    conditional: statement.get("Condition").is_some(),
                    via_service: statement["Condition"]["StringEquals"]["kms:ViaService"]
                        .as_str()
                        .map(str::to_owned),
                });
            }
        }
        out.insert(function.to_owned(), policy);
    }
    out
}

/// One authorisation a request needs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Need {
    pub action: String,
    pub resource: String,
}

fn need(action: impl Into<String>, resource: impl Into<String>) -> Need {
    Need {
        action: action.into(),
        resource: resource.into(),
    }
}

fn table_arn(table: &str) -> String {
    if table.starts_with("arn:") {
        table.to_owned()
    } else {
        format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}")
    }
}

/// What a DynamoDB (or DynamoDB Streams) request needs.
fn dynamodb_needs(operation: &str, body: &Value) -> Vec<Need> {
    let table = |v: &Value| table_arn(v["TableName"].as_str().unwrap_or("*"));
    match operation {
        "TransactWriteItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|item| {
                [
                    ("Put", "PutItem"),
                    ("Update", "UpdateItem"),
                    ("Delete", "DeleteItem"),
                    ("ConditionCheck", "ConditionCheckItem"),
                ]
                .into_iter()
                .filter(|(k, _)| item.get(*k).is_some())
                .map(|(k, a)| need(format!("dynamodb:{a}"), table(&item[k])))
                .collect::<Vec<_>>()
            })
            .collect(),
        "TransactGetItems" => body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|item| need("dynamodb:GetItem", table(&item["Get"])))
            .collect(),
        "BatchGetItem" | "BatchWriteItem" => body["RequestItems"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(t, _)| need(format!("dynamodb:{operation}"), table_arn(t)))
            .collect(),
        "Query" | "Scan" if body["IndexName"].is_string() => vec![need(
            format!("dynamodb:{operation}"),
            format!("{}/index/{}", table(body), body["IndexName"].as_str().unwrap_or("")),
        )],
        "GetRecords" | "GetShardIterator" | "DescribeStream" => vec![need(
            format!("dynamodb:{operation}"),
            body["StreamArn"].as_str().unwrap_or("*").to_owned(),
        )],
        _ => vec![need(format!("dynamodb:{operation}"), table(body))],
    }
}

fn kms_needs(operation: &str, body: &Value) -> Vec<Need> {
    let key = body["KeyId"].as_str().unwrap_or("*");
    let arn = if key.starts_with("arn:") || key == "*" {
        key.to_owned()
    } else {
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{key}")
    };
    vec![need(format!("kms:{operation}"), arn)]
}

fn query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == name).then_some(v)
    })
}

fn decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn scheduler_needs(method: &str, path: &str, query: &str, body: &Value) -> Vec<Need> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["schedules", name] => {
            let group = body["GroupName"]
                .as_str()
                .map(str::to_owned)
                .or_else(|| query_value(query, "groupName").map(decode))
                .unwrap_or_else(|| "default".into());
            let resource = format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{group}/{}", decode(name));
            let action = match method {
                "POST" => "CreateSchedule",
                "PUT" => "UpdateSchedule",
                "DELETE" => "DeleteSchedule",
                _ => "GetSchedule",
            };
            let mut needs = vec![need(format!("scheduler:{action}"), resource)];
            if let Some(role) = body["Target"]["RoleArn"].as_str() {
                needs.push(need("iam:PassRole", role));
            }
            needs
        }
        ["schedules"] => vec![need("scheduler:ListSchedules", "*")],
        ["schedule-groups", name] => {
            let resource = format!("arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{}", decode(name));
            let action = match method {
                "POST" => "CreateScheduleGroup",
                "DELETE" => "DeleteScheduleGroup",
                _ => "GetScheduleGroup",
            };
            vec![need(format!("scheduler:{action}"), resource)]
        }
        _ => vec![need(format!("scheduler:{method}{path}"), "*")],
    }
}

/// The text of each `<tag>` element of an XML body, unescaped.
fn xml_elements(body: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    body.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(inner, _)| inner))
        .map(|s| {
            s.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}

/// What an S3 request (path style) needs.
fn s3_needs(method: &str, path: &str, query: &str, body: &[u8]) -> Vec<Need> {
    let path = path.trim_start_matches('/');
    let (bucket, key) = path.split_once('/').unwrap_or((path, ""));
    let key = decode(key);
    let bucket_arn = format!("arn:aws:s3:::{bucket}");
    let object = |k: &str| format!("arn:aws:s3:::{bucket}/{k}");
    let has = |name: &str| query_value(query, name).is_some();
    if key.is_empty() {
        let action = match method {
            "POST" if has("delete") => {
                let body = String::from_utf8_lossy(body);
                return xml_elements(&body, "Object")
                    .iter()
                    .flat_map(|o| {
                        let key = xml_elements(o, "Key").into_iter().next().unwrap_or_default();
                        let versioned = !xml_elements(o, "VersionId").is_empty();
                        let action = if versioned {
                            "s3:DeleteObjectVersion"
                        } else {
                            "s3:DeleteObject"
                        };
                        Some(need(action, object(&key)))
                    })
                    .collect();
            }
            "GET" if has("versions") => "s3:ListBucketVersions",
            "GET" if has("uploads") => "s3:ListBucketMultipartUploads",
            "GET" if has("versioning") => "s3:GetBucketVersioning",
            "GET" if has("location") => "s3:GetBucketLocation",
            "PUT" if has("versioning") => "s3:PutBucketVersioning",
            "PUT" => "s3:CreateBucket",
            "DELETE" => "s3:DeleteBucket",
            _ => "s3:ListBucket",
        };
        return vec![need(action, bucket_arn)];
    }
    let action = match method {
        "GET" | "HEAD" if has("versionId") => "s3:GetObjectVersion",
        "GET" | "HEAD" if has("uploadId") => "s3:ListMultipartUploadParts",
        "GET" | "HEAD" => "s3:GetObject",
        "DELETE" if has("uploadId") => "s3:AbortMultipartUpload",
        "DELETE" if has("versionId") => "s3:DeleteObjectVersion",
        "DELETE" => "s3:DeleteObject",
        _ => "s3:PutObject",
    };
    vec![need(action, object(&key))]
}

/// Everything a request needs, by the protocol it speaks.
pub fn needs(method: &str, path: &str, query: &str, target: Option<&str>, body: &[u8]) -> Vec<Need> {
    let json = || serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
    match target.and_then(|t| t.split_once('.')) {
        Some((service, op)) if service.starts_with("DynamoDB") => dynamodb_needs(op, &json()),
        Some(("TrentService", op)) => kms_needs(op, &json()),
        Some((service, op)) => vec![need(format!("{service}:{op}"), "*")],
        None if path.starts_with("/schedules") || path.starts_with("/schedule-groups") => {
            scheduler_needs(method, path, query, &json())
        }
        None => s3_needs(method, path, query, body),
    }
}

/// One authorisation decision of the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub function: String,
    pub need: Need,
    pub allowed: bool,
}

/// The policy-enforcing proxy of one deployment.
pub struct Gate {
    pub endpoint: String,
    pub policies: BTreeMap<String, Policy>,
    decisions: Arc<Mutex<Vec<Decision>>>,
    /// A test that makes refused calls on purpose says so.
    pub refusals_expected: std::sync::atomic::AtomicBool,
}

impl Gate {
    /// Fails the test if a function's call was refused (unless the test
    /// meant it): a refusal a function handles quietly (a best-effort
    /// call) would otherwise go unseen.
    pub fn assert_nothing_refused(&self) {
        if self.refusals_expected.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let denied = self.denied();
        assert!(
            denied.is_empty(),
            "calls template.yaml does not allow its function: {denied:#?}"
        );
    }

    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions.lock().expect("decisions").clone()
    }

    pub fn denied(&self) -> Vec<Decision> {
        self.decisions().into_iter().filter(|d| !d.allowed).collect()
    }
}

fn caller(headers: &hyper::HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    let key = credential.split('/').next()?;
    FUNCTIONS.iter().find(|(_, k)| *k == key).map(|(f, _)| (*f).to_owned())
}

/// AWS's answer to a refused call, in the caller's protocol.
fn access_denied(target: Option<&str>, function: &str, need: &Need) -> hyper::Response<Full<Bytes>> {
    let message = format!(
        "User: arn:aws:sts::{ACCOUNT}:assumed-role/{function}Role/{function} is not authorized to perform: {} on resource: {} because no identity-based policy allows the {} action",
        need.action, need.resource, need.action
    );
    let (status, content_type, body) = match target {
        Some(t) if t.starts_with("DynamoDB") || t.starts_with("TrentService") => (
            400,
            "application/x-amz-json-1.0",
            serde_json::json!({"__type": "com.amazon.coral.service#AccessDeniedException", "message": message})
                .to_string(),
        ),
        _ if need.action.starts_with("scheduler:") || need.action.starts_with("iam:") => (
            403,
            "application/json",
            serde_json::json!({"Message": message}).to_string(),
        ),
        _ => (
            403,
            "application/xml",
            format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{message}</Message><RequestId>iam</RequestId></Error>"),
        ),
    };
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
    r.headers_mut()
        .insert("content-type", content_type.parse().expect("header"));
    if status == 403 && content_type == "application/json" {
        r.headers_mut()
            .insert("x-amzn-errortype", "AccessDeniedException".parse().expect("header"));
    }
    r
}

/// Starts the proxy for a deployment named by `names`.
pub async fn start(targets: &LocalEndpoints, names: &Names) -> Gate {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let policies = Arc::new(template_policies(names));
    let decisions: Arc<Mutex<Vec<Decision>>> = Arc::default();
    let client = http();
    let shared = (client, targets.clone(), policies.clone(), decisions.clone());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let shared = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<Incoming>| {
                    let (client, targets, policies, decisions) = shared.clone();
                    async move { Ok::<_, Infallible>(gate(req, client, targets, policies, decisions).await) }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Gate {
        endpoint,
        policies: (*policies).clone(),
        decisions,
        refusals_expected: Default::default(),
    }
}

async fn gate(
    req: hyper::Request<Incoming>,
    client: Http,
    targets: LocalEndpoints,
    policies: Arc<BTreeMap<String, Policy>>,
    decisions: Arc<Mutex<Vec<Decision>>>,
) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .map(str::to_owned);
    if let Some(function) = caller(&parts.headers) {
        let policy = policies.get(&function).cloned().unwrap_or_default();
        let query = parts.uri.query().unwrap_or("");
        let wanted = needs(
            parts.method.as_str(),
            parts.uri.path(),
            query,
            target.as_deref(),
            &bytes,
        );
        let mut refused = None;
        for need in wanted {
            let allowed = policy.allows(&need.action, &need.resource);
            if !allowed && refused.is_none() {
                refused = Some(need.clone());
            }
            decisions.lock().expect("decisions").push(Decision {
                function: function.clone(),
                need,
                allowed,
            });
        }
        if let Some(need) = refused {
            return access_denied(target.as_deref(), &function, &need);
        }
    }
    forward(&client, &targets, parts, bytes).await
}

/// An HTTP client for forwarding.
pub type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

pub fn http() -> Http {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Whether a request is the ledger's: DynamoDB or DynamoDB Streams.
pub fn is_ledger(headers: &hyper::HeaderMap) -> bool {
    headers
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .is_some_and(|t| t.starts_with("DynamoDB"))
}

/// Forwards a request as it came, the ledger's to DynamoDB Local and the
/// rest to moto, and answers what they answer.
pub async fn forward(
    client: &Http,
    targets: &LocalEndpoints,
    parts: hyper::http::request::Parts,
    bytes: Bytes,
) -> hyper::Response<Full<Bytes>> {
    let base = if is_ledger(&parts.headers) {
        &targets.dynamodb
    } else {
        &targets.aws
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut forward = hyper::Request::builder()
        .method(parts.method)
        .uri(format!("{base}{path}"));
    for (k, v) in &parts.headers {
        forward = forward.header(k, v);
    }
    let Ok(forward) = forward.body(Full::new(bytes)) else {
        return status_only(hyper::StatusCode::BAD_REQUEST);
    };
    match client.request(forward).await {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            let bytes = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            hyper::Response::from_parts(parts, Full::new(bytes))
        }
        Err(_) => status_only(hyper::StatusCode::BAD_GATEWAY),
    }
}

fn status_only(status: hyper::StatusCode) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_iam_does() {
        assert!(wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::b/k/x"));
        assert!(!wildcard("arn:aws:s3:::b/*", "arn:aws:s3:::b"));
        assert!(!wildcard("arn:aws:s3:::b", "arn:aws:s3:::bb"));
        assert!(wildcard("dynamodb:*", "dynamodb:getitem"));
        assert!(wildcard("a?c", "abc"));
        assert!(!wildcard("a?c", "ac"));
    }

    #[test]
    fn a_transaction_needs_each_item_and_a_batch_delete_each_key() {
        let tx = serde_json::json!({"TransactItems": [
            {"Put": {"TableName": "t"}}, {"Delete": {"TableName": "t"}}, {"ConditionCheck": {"TableName": "u"}}]});
        let needs = needs(
            "POST",
            "/",
            "",
            Some("DynamoDB_20120810.TransactWriteItems"),
            tx.to_string().as_bytes(),
        );
        let actions: Vec<&str> = needs.iter().map(|n| n.action.as_str()).collect();
        assert_eq!(
            actions,
            ["dynamodb:PutItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"]
        );
        assert_eq!(
            needs[2].resource,
            format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/u")
        );
        let body = b"<Delete><Object><Key>a/b&amp;c</Key></Object><Object><Key>d</Key><VersionId>v</VersionId></Object></Delete>";
        let needs = super::needs("POST", "/bkt", "delete", None, body);
        assert_eq!(
            needs,
            [
                need("s3:DeleteObject", "arn:aws:s3:::bkt/a/b&c"),
                need("s3:DeleteObjectVersion", "arn:aws:s3:::bkt/d")
            ]
        );
    }
}
