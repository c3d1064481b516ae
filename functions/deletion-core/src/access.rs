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

use crate::error::ServiceError;
use crate::ids::{AccountId, WorkspaceId};
use crate::model::Scope;
use crate::ports::{Directory, Role};

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

/// Checks that `caller` may act as `need` says; `Forbidden` names what was
/// needed. Reads the directory only when the scopes do not settle it.
pub async fn authorize<D: Directory + ?Sized>(directory: &D, caller: &Caller, need: &Need) -> Result<(), ServiceError> {
    if caller.is_operator() {
        return Ok(());
    }
    let allowed = match need {
        Need::Anyone => true,
        Need::Operator => false,
        Need::Account(account) => caller.account().as_ref() == Some(account),
        Need::SuppressionRead(_) if caller.has_scope(SUPPRESSION_READ_SCOPE) => true,
        Need::Admin(workspace) | Need::SuppressionRead(workspace) => match caller.account() {
            Some(account) => directory.role(workspace, &account).await? == Some(Role::Admin),
            None => false,
        },
    };
    if allowed {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(format!(
            "{} may not do this: it takes {}",
            caller.subject,
            need.describe()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LedgerError;
    use crate::ports::Membership;
    use async_trait::async_trait;

    /// ann: admin of acme; bob: member of acme.
    struct Dir;

    #[async_trait]
    impl Directory for Dir {
        async fn put_member(&self, _: &WorkspaceId, _: &AccountId, _: Role) -> Result<(), LedgerError> {
            Ok(())
        }
        async fn remove_member(&self, _: &WorkspaceId, _: &AccountId) -> Result<bool, LedgerError> {
            Ok(false)
        }
        async fn memberships(&self, account: &AccountId) -> Result<Vec<Membership>, LedgerError> {
            let ws = WorkspaceId::parse("acme").unwrap();
            Ok(match account.as_str() {
                "ann" => vec![Membership {
                    workspace: ws,
                    role: Role::Admin,
                }],
                "bob" => vec![Membership {
                    workspace: ws,
                    role: Role::Member,
                }],
                _ => vec![],
            })
        }
    }

    fn ws(w: &str) -> WorkspaceId {
        WorkspaceId::parse(w).unwrap()
    }

    async fn allowed(caller: &Caller, need: Need) -> bool {
        match authorize(&Dir, caller, &need).await {
            Ok(()) => true,
            Err(ServiceError::Forbidden(msg)) => {
                assert!(msg.contains("may not"), "{msg}");
                false
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn admins_act_on_their_workspaces_only() {
        let ann = Caller::new("ann", vec![]);
        let bob = Caller::new("bob", vec![]);
        assert!(allowed(&ann, Need::Admin(ws("acme"))).await);
        assert!(!allowed(&ann, Need::Admin(ws("acme-corp"))).await);
        assert!(
            !allowed(&bob, Need::Admin(ws("acme"))).await,
            "a member is not an admin"
        );
        assert!(!allowed(&ann, Need::Operator).await);
        assert!(allowed(&ann, Need::Account(AccountId::parse("ann").unwrap())).await);
        assert!(!allowed(&ann, Need::Account(AccountId::parse("bob").unwrap())).await);
    }

    #[tokio::test]
    async fn operators_do_everything_and_readers_only_read_suppressions() {
        let op = Caller::new("ops-1", vec![OPERATOR_SCOPE.into()]);
        assert!(allowed(&op, Need::Operator).await);
        assert!(allowed(&op, Need::Admin(ws("anything"))).await);
        let ingest = Caller::new("ingest", vec![SUPPRESSION_READ_SCOPE.into()]);
        assert!(allowed(&ingest, Need::SuppressionRead(ws("acme"))).await);
        assert!(!allowed(&ingest, Need::Admin(ws("acme"))).await);
        // A subject that is no account id is nobody's admin.
        let odd = Caller::new("not an account!", vec![]);
        assert!(!allowed(&odd, Need::Admin(ws("acme"))).await);
    }
}
