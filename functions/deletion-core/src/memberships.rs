//! The membership directory as a service: who belongs to which workspace
//! and in which role. The API reaches the directory only through here.
//!
//! Invariant: nothing here decides access (that is `access`); a change is
//! one write of the directory, and removing an absent membership changes
//! nothing and says so.

use crate::ids::{AccountId, WorkspaceId};
use crate::ports::{Directory, Membership, Role};
use crate::ServiceError;

/// The directory, borrowed from whatever holds it.
pub struct Memberships<'a, D: ?Sized> {
    directory: &'a D,
}

impl<'a, D: Directory + ?Sized> Memberships<'a, D> {
    pub fn new(directory: &'a D) -> Self {
        Memberships { directory }
    }

    /// Gives `account` `role` in `workspace` (replacing any role it had).
    pub async fn set(&self, workspace: &WorkspaceId, account: &AccountId, role: Role) -> Result<(), ServiceError> {
        Ok(self.directory.put_member(workspace, account, role).await?)
    }

    /// Removes the membership; whether there was one.
    pub async fn remove(&self, workspace: &WorkspaceId, account: &AccountId) -> Result<bool, ServiceError> {
        Ok(self.directory.remove_member(workspace, account).await?)
    }

    /// Every workspace the account belongs to.
    pub async fn of_account(&self, account: &AccountId) -> Result<Vec<Membership>, ServiceError> {
        Ok(self.directory.memberships(account).await?)
    }
}
