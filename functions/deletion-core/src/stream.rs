//! Changes to the ledger's requests, as the adapter reads them from the
//! ledger's stream (it decodes the records; nothing here knows their form).
//!
//! A change only *names* a request: handlers read the request from the
//! ledger, so replayed, duplicated or out-of-order changes converge.

use std::collections::BTreeMap;

use crate::ids::RequestId;

/// One stream record about a request item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestChanged {
    pub request_id: RequestId,
    /// The record's identifier in its batch (its sequence number), to
    /// report it failed.
    pub record: String,
}

/// The requests the changes name, each with its records (to report them
/// failed together).
pub fn by_request(changes: impl IntoIterator<Item = RequestChanged>) -> BTreeMap<RequestId, Vec<String>> {
    let mut by_request: BTreeMap<RequestId, Vec<String>> = BTreeMap::new();
    for change in changes {
        by_request.entry(change.request_id).or_default().push(change.record);
    }
    by_request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_records_of_one_request_are_grouped_in_order() {
        let (a, b) = (RequestId::new(), RequestId::new());
        let change = |id: &RequestId, record: &str| RequestChanged {
            request_id: id.clone(),
            record: record.into(),
        };
        let grouped = by_request([change(&a, "1"), change(&b, "2"), change(&a, "3")]);
        assert_eq!(grouped[&a], ["1", "3"]);
        assert_eq!(grouped[&b], ["2"]);
    }
}
