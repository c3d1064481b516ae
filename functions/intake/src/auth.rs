//! The caller's verified claims on a request, in the shape API Gateway's
//! JWT authorizer gives them (string claims; a list claim as `[a b]`). The
//! local runner verifies tokens itself and attaches the claims with this,
//! so the handler reads callers the same way as in AWS.

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::RequestExt;
use serde_json::{json, Map, Value};

/// Attaches verified `claims` to `req` as an API Gateway v2 request
/// context.
pub fn with_verified_claims<B>(
    req: lambda_http::http::Request<B>,
    claims: &Map<String, Value>,
) -> lambda_http::http::Request<B> {
    let as_string = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| i.as_str().map(str::to_owned).unwrap_or_else(|| i.to_string()))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    };
    let claims: Map<String, Value> = claims
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(as_string(v))))
        .collect();
    let context = json!({
        "routeKey": "ANY /v1/{proxy+}",
        "accountId": "local",
        "apiId": "local",
        "stage": "$default",
        "requestId": uuid_like(),
        "timeEpoch": 0,
        "authorizer": {"jwt": {"claims": claims, "scopes": null}},
        "http": {
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1",
            "userAgent": "local"
        }
    });
    match serde_json::from_value::<ApiGatewayV2httpRequestContext>(context) {
        Ok(ctx) => req.with_request_context(RequestContext::ApiGatewayV2(ctx)),
        // Cannot happen for the shape above; the request then stays
        // unauthenticated (401), never the other way round.
        Err(_) => req,
    }
}

fn uuid_like() -> String {
    format!("local-{}", std::process::id())
}
