//! Octane's rules over its SQLite state, one concern per module: the schema and error
//! ([`db`]), SPs ([`sps`]), pair sessions ([`sessions`]), pairs ([`pairs`]), sign requests
//! ([`signs`]), app-request nonces ([`nonces`]), forgotten phones ([`phones`]) and push targets
//! ([`push_targets`]). Every operation that reads then writes
//! runs in one `BEGIN IMMEDIATE` transaction, so code attempts and approvals are atomic even
//! with a file database shared by several processes.

mod db;
mod nonces;
mod pairs;
mod phones;
mod push_targets;
mod sessions;
mod signs;
mod sps;

pub use db::{open, ApiError};
pub use nonces::fresh_nonce;
pub use pairs::{app_pairs, app_revoke, sp_revoke};
pub use phones::{check_not_forgotten, forget_phone};
pub use push_targets::{
    all_targets, drop_unregistered, push_target, register_push_target, remove_push_target, targets_for_pair,
    RoutedTarget,
};
pub use sessions::{app_session, approve, check_code, create_session, pair_result, reject_session};
#[cfg(test)]
pub(crate) use signs::sign_validity;
pub use signs::{answer_sign, pending_for, sign_result, submit_sign, AppAnswer};
pub use sps::{register_sp, sp_by_api_key, SpRecord};
