//! The scenarios of the README's "Scale simulation", by name: each a
//! bucket's layout and the workspaces purged in it. Every single-workspace
//! scenario holds a neighbour of the same shape (ws-0001) that must stay.

use std::time::Duration;

use clap::ValueEnum;

use crate::keyspace::{Grid, Level};
use crate::scenario::Scenario;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Which {
    /// One workspace, 10,000,000 objects: 10,000 sources × 10 days × 100.
    Sources,
    /// The same 10,000,000 under 1,000 sources × 10 days × 1,000.
    Sources1000,
    /// One flat prefix of 5,000,000 keys below the workspace.
    Flat,
    /// 1,000 workspaces of 10,000 objects, graces ending within one hour.
    Tenants,
    /// 1,000,000 keys × 3 versions + 200,000 delete markers.
    Versioned,
    /// Every scenario above, one after the other.
    All,
}

impl Which {
    /// Its name on the command line.
    pub fn name(self) -> String {
        self.to_possible_value()
            .map_or_else(|| format!("{self:?}"), |v| v.get_name().to_owned())
    }
}

fn scaled(n: u64, scale: f64) -> u64 {
    ((n as f64 * scale).round() as u64).max(1)
}

pub fn scenario(which: Which, scale: f64) -> Scenario {
    // The workspace purged, ws-0000, and its neighbour ws-0001 of the
    // same shape, which must stay whole.
    let one = |levels: Vec<Level>, versioned, versions, markers, name: &str| Scenario {
        name: name.into(),
        grid: Grid::new(levels, versioned, versions, markers),
        workspaces: vec!["ws-0000".into()],
        stagger: Duration::ZERO,
    };
    match which {
        Which::Sources | Which::All => one(
            vec![
                Level::new("ws-", 2, 4),
                Level::new("src-", 10_000, 5),
                Level::new("day-", 10, 2),
                Level::leaf("part-", scaled(100, scale), 4),
            ],
            false,
            1,
            0,
            "1: 10,000 sources × 10 days",
        ),
        Which::Sources1000 => one(
            vec![
                Level::new("ws-", 2, 4),
                Level::new("src-", 1_000, 4),
                Level::new("day-", 10, 2),
                Level::leaf("part-", scaled(1_000, scale), 5),
            ],
            false,
            1,
            0,
            "1b: 1,000 sources × 10 days",
        ),
        Which::Flat => one(
            vec![
                Level::new("ws-", 2, 4),
                Level::leaf("event-", scaled(5_000_000, scale), 7),
            ],
            false,
            1,
            0,
            "2: one flat prefix",
        ),
        Which::Versioned => one(
            vec![
                Level::new("ws-", 2, 4),
                Level::new("src-", 100, 3),
                Level::new("day-", 10, 2),
                Level::leaf("part-", scaled(1_000, scale), 5),
            ],
            true,
            3,
            5,
            "4: versioned, 3 versions + markers",
        ),
        Which::Tenants => Scenario {
            name: "3: 1,000 tenants, graces in one hour".into(),
            grid: Grid::new(
                vec![
                    Level::new("ws-", 1_000, 4),
                    Level::new("src-", 10, 2),
                    Level::new("day-", 10, 2),
                    Level::leaf("part-", scaled(100, scale), 4),
                ],
                false,
                1,
                0,
            ),
            workspaces: (0..1000).map(|w| format!("ws-{w:04}")).collect(),
            stagger: Duration::from_millis(3600),
        },
    }
}
