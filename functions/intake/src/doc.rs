//! The OpenAPI 3.1 document: its frame (info, security, tags, shared
//! answers) here, its operations from the handlers' annotations
//! (`routes::api`). `api/openapi.json` is this document as JSON; the
//! tests fail when the committed file differs (`UPDATE_OPENAPI=1 cargo
//! test -p integration-tests --test integration openapi::` writes it).

use serde_json::Value;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi as _};

use crate::problem::{
    BadRequest, BodyTooLarge, Conflict, Forbidden, GatewayUnauthorized, NotFound, ProblemBody, TooManyRequests,
    Unauthorized, Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::schemas::StatusChangedEvent;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Data-deletion service",
        version = "1.0.0",
        description = "Deletes what a customer-data platform's customers ask it to delete: workspaces after a 5-day grace, spaces, a source's archive by days, accounts, complete purges, and end users' data (regulations and the suppression list).\n\nEvery call carries `Authorization: Bearer <token>` (a JWT: `sub` is the caller's account id, scopes come from `scope` or `scp`). Every refusal is `application/problem+json` (RFC 9457). Besides the answers listed per operation: a path no route serves is `404 not-found`, and a method a path does not allow is `405 method-not-allowed` with `Allow`.\n\nGenerated from the intake's handlers (functions/intake); `infra/api-fuzz.sh` runs schemathesis with it against the local service.",
        license(name = "Apache-2.0"),
    ),
    servers((url = "http://127.0.0.1:8787", description = "infra/run-local.sh")),
    security(("bearerAuth" = [])),
    tags(
        (name = "deletions", description = "Workspaces, spaces, a source's days; requests by id."),
        (name = "accounts", description = "Every workspace an account administers."),
        (name = "purges", description = "Complete purges of workspaces deleted long ago (operators)."),
        (name = "regulations", description = "Per end user: delete events, suppress."),
        (name = "suppressions", description = "The suppression list an ingest path asks."),
        (name = "holds", description = "Legal holds (operators)."),
        (name = "members", description = "The membership directory (operators)."),
        (name = "receipts", description = "Signed receipts of completed purges."),
    ),
    components(
        schemas(ProblemBody, GatewayUnauthorized, StatusChangedEvent),
        responses(BadRequest, Unauthorized, Forbidden, NotFound, Conflict, BodyTooLarge, UnsupportedMediaType, Unprocessable, TooManyRequests, Unavailable),
    ),
    modifiers(&Bearer),
)]
struct Frame;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, doc: &mut OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "Verified by API Gateway's JWT authorizer (issuer and audience from the template; locally by the runner with a development key: `target/debug/mint-token SUB [SCOPE ...]`). Scopes: `deletion:operator` (may do everything), `deletion:suppressions:read` (reads suppression lists).",
            ))
            .build();
        if let Some(components) = doc.components.as_mut() {
            components.add_security_scheme("bearerAuth", SecurityScheme::Http(scheme));
        }
    }
}

/// The document's frame, before the routes add their operations.
pub fn base() -> OpenApi {
    Frame::openapi()
}

/// What a request's `callback_url` hears (OpenAPI 3.1 `webhooks`).
fn webhooks() -> Value {
    let event = RequestBodyBuilder::new()
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("StatusChangedEvent")))
                .build(),
        )
        .required(Some(utoipa::openapi::Required::True))
        .build();
    let operation = OperationBuilder::new()
        .summary(Some("A request's status changed"))
        .description(Some(
            "Sent to the `callback_url` of a request for each entry of its status history, in order. `deletion-signature` is `t=<unix seconds>,v1=<hex HMAC-SHA-256 of \"<t>.<body>\" under the request's secret>`; `deletion-event-id` is the event's `id` (dedupe on it). Any 2xx within 10 seconds delivers the event; anything else is retried with backoff, and given up after 12 attempts.",
        ))
        .request_body(Some(event))
        .response("2XX", ResponseBuilder::new().description("Delivered.").build())
        .build();
    let item = PathItem::new(HttpMethod::Post, operation);
    serde_json::json!({ "statusChanged": item })
}

/// The whole document, as `api/openapi.json` holds it.
pub fn document() -> Value {
    let doc = crate::routes::document(base());
    let mut value = serde_json::to_value(&doc).unwrap_or(Value::Null);
    fix_links(&mut value);
    if let Some(obj) = value.as_object_mut() {
        obj.insert("webhooks".into(), webhooks());
    }
    value
}

/// utoipa 5 writes a link's `operationId` and `operationRef` in snake
/// case; OpenAPI spells them in camel case.
fn fix_links(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(links) = map.get_mut("links").and_then(Value::as_object_mut) {
                for link in links.values_mut().filter_map(Value::as_object_mut) {
                    for (from, to) in [("operation_id", "operationId"), ("operation_ref", "operationRef")] {
                        if let Some(v) = link.remove(from) {
                            link.insert(to.into(), v);
                        }
                    }
                }
            }
            map.values_mut().for_each(fix_links);
        }
        Value::Array(items) => items.iter_mut().for_each(fix_links),
        _ => {}
    }
}
