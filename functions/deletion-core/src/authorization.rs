//! Authorisation of a call: the pure rule of `access`, and the membership
//! directory read when the rule leaves it to a workspace's admins. Runs
//! before anything is written.

use crate::access::{Caller, Need, Verdict};
use crate::error::ServiceError;
use crate::ports::{Directory, Role};

pub use crate::access::{OPERATOR_SCOPE, SUPPRESSION_READ_SCOPE};

/// Checks that `caller` may act as `need` says; `Forbidden` names what was
/// needed. Reads the directory only when the scopes do not settle it.
pub async fn authorize<D: Directory + ?Sized>(directory: &D, caller: &Caller, need: &Need) -> Result<(), ServiceError> {
    let allowed = match need.verdict(caller) {
        Verdict::Allowed => true,
        Verdict::Denied => false,
        Verdict::IfAdmin(workspace, account) => directory.role(&workspace, &account).await? == Some(Role::Admin),
    };
    if allowed {
        Ok(())
    } else {
        Err(need.refusal(caller))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::LedgerError;
    use crate::ids::{AccountId, WorkspaceId};
    use crate::ports::{Membership, Role};
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
