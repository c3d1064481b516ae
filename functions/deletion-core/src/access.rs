//! Who may do what. A deletion service is a loaded gun: every call names
//! its caller (the verified claims of the API's JWT authorizer), and every
//! action is checked against the membership directory before anything is
//! written.
//!
//! - A workspace's deletions, regulations and plans: its admins.
//! - An account's deletion: that account.
//! - Complete purges of long-deleted workspaces and the membership
//!   directory itself: operators (the `deletion:operator` scope).
//! - A workspace's suppression list: its admins, and services with the
//!   `deletion:suppressions:read` scope (an ingest path).
//!
//! Operators may do everything.
//!
//! This module is the pure rule (`Need::verdict`); `authorization::authorize`
//! reads the directory when the rule leaves it to a workspace's admins.

use crate::error::ServiceError;
use crate::ids::{AccountId, WorkspaceId};
use crate::model::Scope;

/// The scope that makes a caller an operator.
pub const OPERATOR_SCOPE: &str = "deletion:operator";
/// The scope that lets a service read suppression lists.
pub const SUPPRESSION_READ_SCOPE: &str = "deletion:suppressions:read";

/// A caller, as the verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`: an account id for people.
    pub subject: String,
    pub scopes: Vec<String>,
}

impl Caller {
    pub fn new(subject: impl Into<String>, scopes: Vec<String>) -> Caller {
        Caller {
            subject: subject.into(),
            scopes,
        }
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn is_operator(&self) -> bool {
        self.has_scope(OPERATOR_SCOPE)
    }

    /// The caller's account, if its subject is a valid account id.
    pub fn account(&self) -> Option<AccountId> {
        AccountId::parse(&self.subject).ok()
    }
}

/// What an action needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Any caller with a verified token.
    Anyone,
    Operator,
    /// An admin of the workspace.
    Admin(WorkspaceId),
    /// The account itself.
    Account(AccountId),
    /// An admin of the workspace, or a suppression reader.
    SuppressionRead(WorkspaceId),
}

impl Need {
    /// What acting on (or reading) a request of this scope needs.
    pub fn for_scope(scope: &Scope) -> Need {
        match scope {
            Scope::Workspace { workspace }
            | Scope::Space { workspace, .. }
            | Scope::SourceDays { workspace, .. }
            | Scope::Regulation { workspace, .. } => Need::Admin(workspace.clone()),
            Scope::Account { account } => Need::Account(account.clone()),
            Scope::WorkspacePurge { .. } => Need::Operator,
        }
    }

    fn describe(&self) -> String {
        match self {
            Need::Anyone => "a verified token".into(),
            Need::Operator => format!("an operator (scope {OPERATOR_SCOPE})"),
            Need::Admin(w) => format!("an admin of workspace {w}"),
            Need::Account(a) => format!("account {a} itself"),
            Need::SuppressionRead(w) => {
                format!("an admin of workspace {w} or a service with scope {SUPPRESSION_READ_SCOPE}")
            }
        }
    }
}

/// What a caller's token settles on its own, before any directory read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    Denied,
    /// Allowed if the directory says the account is an admin of the
    /// workspace.
    IfAdmin(WorkspaceId, AccountId),
}

impl Need {
    /// The pure half of the check: operators may do everything; scopes and
    /// the caller's own account settle the rest but a workspace admin.
    pub fn verdict(&self, caller: &Caller) -> Verdict {
        if caller.is_operator() {
            return Verdict::Allowed;
        }
        let settled = match self {
            Need::Anyone => true,
            Need::Operator => false,
            Need::Account(account) => caller.account().as_ref() == Some(account),
            Need::SuppressionRead(_) if caller.has_scope(SUPPRESSION_READ_SCOPE) => true,
            Need::Admin(workspace) | Need::SuppressionRead(workspace) => {
                return match caller.account() {
                    Some(account) => Verdict::IfAdmin(workspace.clone(), account),
                    None => Verdict::Denied,
                }
            }
        };
        if settled {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }

    /// The refusal of `caller`: `Forbidden`, naming what was needed.
    pub fn refusal(&self, caller: &Caller) -> ServiceError {
        ServiceError::Forbidden(format!(
            "{} may not do this: it takes {}",
            caller.subject,
            self.describe()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(w: &str) -> WorkspaceId {
        WorkspaceId::parse(w).unwrap()
    }

    #[test]
    fn tokens_settle_all_but_workspace_admins() {
        let ann = Caller::new("ann", vec![]);
        let ann_id = AccountId::parse("ann").unwrap();
        assert_eq!(Need::Anyone.verdict(&ann), Verdict::Allowed);
        assert_eq!(Need::Operator.verdict(&ann), Verdict::Denied);
        assert_eq!(Need::Account(ann_id.clone()).verdict(&ann), Verdict::Allowed);
        assert_eq!(
            Need::Account(AccountId::parse("bob").unwrap()).verdict(&ann),
            Verdict::Denied
        );
        assert_eq!(
            Need::Admin(ws("acme")).verdict(&ann),
            Verdict::IfAdmin(ws("acme"), ann_id)
        );
        let odd = Caller::new("not an account!", vec![]);
        assert_eq!(Need::Admin(ws("acme")).verdict(&odd), Verdict::Denied);
        let op = Caller::new("ops-1", vec![OPERATOR_SCOPE.into()]);
        assert_eq!(Need::Admin(ws("acme")).verdict(&op), Verdict::Allowed);
    }
}
