//! The CloudWatch dashboard of `template.yaml` draws what the functions
//! emit: every `DeletionService` metric it (or an alarm) names is one a
//! function's EMF line declares, with the dimensions the line gives it;
//! the statuses it plots are the requests' statuses; the ledger's
//! throttling is the table's own.

use std::collections::{BTreeMap, BTreeSet};

use deletion_core::ids::RequestId;
use deletion_core::model::Status;
use serde_json::Value;
use serde_norway::Value as Yaml;

/// Every metric the functions' EMF lines declare, with its dimension names.
fn emitted() -> BTreeMap<String, Vec<String>> {
    let id = RequestId::new();
    let lines: Vec<String> = [
        grace_timer::handler::metrics_line(&Default::default()),
        grace_timer::retention::metrics_line(&Default::default()),
        purge::handler::invocation_metric_line(1, 1, &id),
        purge::handler::retention_metric_line(1, &id),
        notifier::handler::metric_line(std::iter::empty()),
    ]
    .into_iter()
    .chain(grace_timer::handler::status_metric_lines(&BTreeMap::from([(
        "PURGING".to_owned(),
        1,
    )])))
    .collect();
    let mut names = BTreeMap::new();
    for line in lines {
        let v: Value = serde_json::from_str(&line).expect("an EMF line is JSON");
        let declared = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "DeletionService");
        let dims: Vec<String> = declared["Dimensions"][0]
            .as_array()
            .expect("dimensions")
            .iter()
            .map(|d| d.as_str().expect("a name").to_owned())
            .collect();
        for m in declared["Metrics"].as_array().expect("metrics") {
            names.insert(m["Name"].as_str().expect("a name").to_owned(), dims.clone());
        }
    }
    names
}

fn template() -> Yaml {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).expect("template.yaml")).expect("YAML")
}

/// The dashboard's body, its `${...}` filled as CloudFormation would.
fn dashboard(template: &Yaml) -> Value {
    let body = &template["Resources"]["Dashboard"]["Properties"]["DashboardBody"];
    let Yaml::Tagged(sub) = body else {
        panic!("DashboardBody is a !Sub: {body:?}")
    };
    let text = sub.value.as_str().expect("a !Sub string");
    let filled = text
        .replace("${AWS::Region}", "eu-west-1")
        .replace("${LedgerTable}", "deletion-ledger");
    assert!(!filled.contains("${"), "only the region and the table are substituted");
    serde_json::from_str(&filled).expect("the dashboard body is JSON")
}

#[test]
fn the_dashboard_and_alarms_draw_only_metrics_the_functions_emit() {
    let emitted = emitted();
    let template = template();
    let body = dashboard(&template);
    let widgets = body["widgets"].as_array().expect("widgets");
    let mut drawn = BTreeSet::new();
    let mut statuses = BTreeSet::new();
    let mut throttles = BTreeSet::new();
    for widget in widgets {
        for metric in widget["properties"]["metrics"].as_array().expect("metrics") {
            let parts: Vec<&str> = metric.as_array().unwrap().iter().filter_map(Value::as_str).collect();
            match parts.as_slice() {
                [] => {} // an expression
                ["DeletionService", name, rest @ ..] => {
                    let dims = emitted
                        .get(*name)
                        .unwrap_or_else(|| panic!("{name} is drawn but no function emits it"));
                    let named: Vec<&str> = rest.iter().step_by(2).copied().collect();
                    assert_eq!(
                        named,
                        dims.iter().map(String::as_str).collect::<Vec<_>>(),
                        "{name}'s dimensions"
                    );
                    if let ["Status", status] = rest {
                        assert!(Status::parse(status).is_some(), "{status} is a request status");
                        statuses.insert(*status);
                    }
                    drawn.insert(name.to_string());
                }
                ["AWS/DynamoDB", name, "TableName", table] => {
                    assert_eq!(*table, "deletion-ledger");
                    throttles.insert(*name);
                }
                other => panic!("an unexpected metric {other:?}"),
            }
        }
    }
    assert_eq!(statuses.len(), 7, "every status: {statuses:?}");
    assert_eq!(throttles, BTreeSet::from(["ReadThrottleEvents", "WriteThrottleEvents"]));
    for wanted in [
        "ObjectsDeleted",
        "S3SlowDowns",
        "CallbacksWaiting",
        "DeadlinesAtRisk",
        "SweepRuns",
        "RetentionRuns",
    ] {
        assert!(drawn.contains(wanted), "the dashboard shows {wanted}");
    }
    // The alarms watch emitted metrics too.
    let Yaml::Mapping(resources) = &template["Resources"] else {
        panic!("Resources")
    };
    let mut alarms = 0;
    for (_, resource) in resources {
        if resource["Type"].as_str() == Some("AWS::CloudWatch::Alarm") {
            let name = resource["Properties"]["MetricName"].as_str().expect("MetricName");
            assert!(
                emitted.contains_key(name),
                "an alarm watches {name}, which no function emits"
            );
            alarms += 1;
        }
    }
    assert!(alarms >= 6, "{alarms} alarms");
}
