//! Where the last sweep stopped: `SWEEP` / `MARK`, with the `active`
//! cursor to resume at and a `version` every write is conditional on.

use async_trait::async_trait;
use deletion_core::ports::{SweepMark, SweepMarks};
use deletion_core::LedgerError;
use serde::{Deserialize, Serialize};

use super::items::{from_item, to_item};
use super::keys::{SWEEP_PK, SWEEP_SK};
use super::DynamoLedger;

#[derive(Serialize, Deserialize)]
struct MarkItem {
    pk: String,
    sk: String,
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cursor: Option<String>,
}

fn name() -> String {
    format!("{SWEEP_PK}/{SWEEP_SK}")
}

#[async_trait]
impl SweepMarks for DynamoLedger {
    async fn sweep_mark(&self) -> Result<SweepMark, LedgerError> {
        let Some(item) = self.get_item(SWEEP_PK.into(), SWEEP_SK).await? else {
            return Ok(SweepMark::default());
        };
        let mark: MarkItem = from_item(item, name)?;
        Ok(SweepMark {
            cursor: mark.cursor,
            version: mark.version,
        })
    }

    async fn put_sweep_mark(&self, next: &SweepMark) -> Result<(), LedgerError> {
        let item = MarkItem {
            pk: SWEEP_PK.into(),
            sk: SWEEP_SK.into(),
            version: next.version,
            cursor: next.cursor.clone(),
        };
        let prev = next.version.checked_sub(1).filter(|v| *v > 0);
        self.put_if(to_item(&item, name)?, prev).await
    }
}
