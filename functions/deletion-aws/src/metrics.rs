//! CloudWatch metrics in the embedded metric format (EMF): one JSON line
//! on stdout, which Lambda's log pipeline turns into metrics of the
//! namespace `DeletionService` (the template's alarms watch them). Every
//! function prints its metrics through `line`, so their shape is one.

use serde_json::{json, Map, Value};

pub const NAMESPACE: &str = "DeletionService";

/// An EMF line: each of `counts` a `Count` metric under `dimensions`
/// (names and values), with `fields` beside them for whoever reads the log.
pub fn line(dimensions: &[(&str, &str)], counts: &[(&str, u64)], fields: &[(&str, Value)]) -> String {
    let names: Vec<&str> = dimensions.iter().map(|(n, _)| *n).collect();
    let metrics: Vec<Value> = counts
        .iter()
        .map(|(n, _)| json!({"Name": n, "Unit": "Count"}))
        .collect();
    let mut line = Map::new();
    line.insert(
        "_aws".into(),
        json!({
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": [names], "Metrics": metrics}],
        }),
    );
    for (name, value) in dimensions {
        line.insert((*name).into(), (*value).into());
    }
    for (name, value) in counts {
        line.insert((*name).into(), (*value).into());
    }
    for (name, value) in fields {
        line.insert((*name).into(), value.clone());
    }
    Value::Object(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_declares_each_count_under_its_dimensions_and_carries_the_fields() {
        let text = line(
            &[("Kind", "workspace")],
            &[("A", 1), ("B", 0)],
            &[("request_id", "r1".into())],
        );
        let v: Value = serde_json::from_str(&text).unwrap();
        let declared = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], NAMESPACE);
        assert_eq!(declared["Dimensions"], json!([["Kind"]]));
        assert_eq!(declared["Metrics"][1], json!({"Name": "B", "Unit": "Count"}));
        assert_eq!(
            (v["A"].clone(), v["Kind"].clone(), v["request_id"].clone()),
            (json!(1), json!("workspace"), json!("r1"))
        );
        let plain: Value = serde_json::from_str(&line(&[], &[("A", 2)], &[])).unwrap();
        assert_eq!(plain["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([[]]));
    }
}
