//! The adapters' unit tests against canned answers (aws-smithy-mocks): a
//! client of any of the SDK's crates whose calls are answered by rules, in
//! order (a call no rule expects fails the test), and never retried (the
//! SDK's own retries are not under test).

use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode};

/// The interceptor that answers with `rules`, in order.
pub(crate) fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    rules.iter().fold(
        MockResponseInterceptor::new().rule_mode(RuleMode::Sequential),
        |i, rule| i.with_rule(rule),
    )
}

/// `mocked_config!(aws_sdk_s3, rules)`: that crate's `Config`, answered by
/// `rules` through `interceptor`.
macro_rules! mocked_config {
    ($sdk:ident, $rules:expr) => {
        $sdk::Config::builder()
            .behavior_version($sdk::config::BehaviorVersion::latest())
            .region($sdk::config::Region::new("us-east-1"))
            .credentials_provider($sdk::config::Credentials::new("test", "test", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor($crate::mocked::interceptor($rules))
            .retry_config($sdk::config::retry::RetryConfig::disabled())
            .build()
    };
}
