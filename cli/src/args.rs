//! The command line (clap).

use clap::{Args, Parser, Subcommand};

/// The deletion service from the command line.
#[derive(Debug, Parser)]
#[command(name = "deletionctl", version, about)]
pub struct Cli {
    /// The API's base URL (e.g. https://abc.execute-api.eu-west-1.amazonaws.com).
    #[arg(long, env = "DELETION_API", global = true)]
    pub api: Option<String>,
    /// A bearer token for the API.
    #[arg(long, env = "DELETION_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print the API's JSON answer instead of text (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ask for a deletion (5-day grace unless told otherwise).
    #[command(subcommand)]
    Create(Create),
    /// Revoke a deletion while it is in grace.
    Revoke { id: String },
    /// A deletion's status, progress and receipt.
    Show { id: String },
    /// A workspace's or an account's deletions, newest first.
    List(List),
    /// What a deletion covers now: prefixes, objects and bytes per store.
    Plan { id: String },
    /// Follow a deletion to its end with a progress bar per store.
    Watch {
        id: String,
        /// Seconds between polls.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
    },
    /// Place a legal hold on a workspace: no deletion proceeds.
    Hold {
        workspace: String,
        #[arg(long)]
        reason: String,
    },
    /// Release a workspace's hold.
    Release { workspace: String },
    /// Delete (and/or suppress) end users' data: a regulation.
    Regulate(Regulate),
    /// The suppression list, or whether the given users are suppressed.
    Suppressed {
        workspace: String,
        /// Users to check (none: list the suppressed).
        user_ids: Vec<String>,
        /// Check against this source's list too.
        #[arg(long)]
        source: Option<String>,
    },
    /// Check a receipt's signature offline, with the published keys.
    VerifyReceipt {
        /// The receipt, or a whole `show --json` answer; `-` reads stdin.
        file: String,
        /// A key set file to check against instead of the API's
        /// `/.well-known/jwks.json`.
        #[arg(long)]
        jwks: Option<String>,
    },
}

/// What a creation names, and how.
#[derive(Debug, Subcommand)]
pub enum Create {
    /// A whole workspace.
    Workspace {
        workspace: String,
        #[command(flatten)]
        common: CreateArgs,
    },
    /// A space (profiles, traits, audiences, journeys).
    Space {
        workspace: String,
        space: String,
        #[command(flatten)]
        common: CreateArgs,
    },
    /// A source's archive for whole days (inclusive, YYYY-MM-DD).
    SourceDays {
        workspace: String,
        source: String,
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        #[command(flatten)]
        common: CreateArgs,
    },
    /// Every workspace an account administers.
    Account {
        account: String,
        #[command(flatten)]
        common: CreateArgs,
    },
    /// A workspace deleted long ago, by its id or slug (operators).
    Purge {
        workspace: String,
        #[command(flatten)]
        common: CreateArgs,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub reason: Option<String>,
    /// POST each status change here (https).
    #[arg(long)]
    pub callback_url: Option<String>,
    /// Show what would be deleted; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "owner")]
pub struct ListOwner {
    #[arg(long)]
    pub workspace: Option<String>,
    #[arg(long)]
    pub account: Option<String>,
}

#[derive(Debug, Args)]
pub struct List {
    #[command(flatten)]
    pub owner: ListOwner,
    /// Any of these statuses (comma-separated).
    #[arg(long)]
    pub status: Option<String>,
    /// Any of these kinds (comma-separated: workspace, space, source_days, account, purge).
    #[arg(long)]
    pub kind: Option<String>,
    #[arg(long)]
    pub created_after: Option<String>,
    #[arg(long)]
    pub created_before: Option<String>,
    /// Items per page (1-100).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Follow every page, not only the first.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct Regulate {
    pub workspace: String,
    /// The users' ids.
    #[arg(required = true)]
    pub subject_ids: Vec<String>,
    /// SUPPRESS_WITH_DELETE, DELETE_ONLY, SUPPRESS_ONLY, UNSUPPRESS or DELETE_ARCHIVE_ONLY.
    #[arg(long = "type", default_value = "SUPPRESS_WITH_DELETE")]
    pub kind: String,
    /// USER_ID, ANONYMOUS_ID or an identifier the data map declares.
    #[arg(long, default_value = "USER_ID")]
    pub subject_type: String,
    /// Only this source's data and suppression list.
    #[arg(long)]
    pub source: Option<String>,
    /// POST each status change here (https).
    #[arg(long)]
    pub callback_url: Option<String>,
}
