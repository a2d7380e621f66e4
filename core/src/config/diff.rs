//! The difference between two configurations, as the changes a running
//! bridge applies: accounts and follows added, changed or removed. A diff
//! is what the journal records for a change, so a replay rebuilds each
//! configuration the engine ran under from the one before it.
//!
//! # Invariants
//! - `old.apply(&old.diff(&new))` has the accounts (by login) and the
//!   follows (by slave and master) of `new`, equal field for field.
//! - Operations are in a fixed order (account removals, account upserts,
//!   follow removals, follow upserts; each by key ascending), so equal
//!   configurations give equal diffs and an empty diff means no change.
//! - Only `[[account]]` and `[[follow]]` are diffed; `[server]` and
//!   `[persist]` take effect at the next start (see [`Config::restart_keys`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{AccountConfig, Config, FollowConfig};

/// One change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum ConfigOp {
    /// The account with this login is gone.
    RemoveAccount { login: u64 },
    /// This account is new, or replaces the one with its login.
    UpsertAccount { account: AccountConfig },
    /// The follow of `master` by `slave` is gone.
    RemoveFollow { slave: u64, master: u64 },
    /// This follow is new, or replaces the one of its slave and master.
    UpsertFollow { follow: FollowConfig },
}

/// The changes from one configuration to another.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigDiff {
    pub ops: Vec<ConfigOp>,
}

impl ConfigDiff {
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Counts by kind, for logs: (accounts removed, accounts added or
    /// changed, follows removed, follows added or changed).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let mut counts = (0, 0, 0, 0);
        for op in &self.ops {
            match op {
                ConfigOp::RemoveAccount { .. } => counts.0 += 1,
                ConfigOp::UpsertAccount { .. } => counts.1 += 1,
                ConfigOp::RemoveFollow { .. } => counts.2 += 1,
                ConfigOp::UpsertFollow { .. } => counts.3 += 1,
            }
        }
        counts
    }
}

fn accounts_by_login(accounts: &[AccountConfig]) -> BTreeMap<u64, &AccountConfig> {
    accounts.iter().map(|account| (account.login, account)).collect()
}

fn follows_by_pair(follows: &[FollowConfig]) -> BTreeMap<(u64, u64), &FollowConfig> {
    follows.iter().map(|follow| ((follow.slave, follow.master), follow)).collect()
}

/// The operations from one set of accounts and follows to another.
fn diff_of(accounts: (&[AccountConfig], &[AccountConfig]), follows: (&[FollowConfig], &[FollowConfig])) -> ConfigDiff {
    let (old_accounts, new_accounts) = (accounts_by_login(accounts.0), accounts_by_login(accounts.1));
    let (old_follows, new_follows) = (follows_by_pair(follows.0), follows_by_pair(follows.1));
    let mut ops = Vec::new();
    ops.extend(old_accounts.keys().filter(|login| !new_accounts.contains_key(login)).map(|&login| ConfigOp::RemoveAccount { login }));
    ops.extend(
        new_accounts
            .iter()
            .filter(|(login, account)| old_accounts.get(login) != Some(account))
            .map(|(_, account)| ConfigOp::UpsertAccount { account: (*account).clone() }),
    );
    ops.extend(old_follows.keys().filter(|pair| !new_follows.contains_key(pair)).map(|&(slave, master)| ConfigOp::RemoveFollow { slave, master }));
    ops.extend(
        new_follows
            .iter()
            .filter(|(pair, follow)| old_follows.get(pair) != Some(follow))
            .map(|(_, follow)| ConfigOp::UpsertFollow { follow: (*follow).clone() }),
    );
    ConfigDiff { ops }
}

impl super::ConfigDocument {
    /// The changes that turn this document's accounts and follows into
    /// `next`'s (as [`Config::diff`]).
    pub fn diff(&self, next: &super::ConfigDocument) -> ConfigDiff {
        diff_of((&self.accounts, &next.accounts), (&self.follows, &next.follows))
    }
}

impl Config {
    /// The changes that turn this configuration's accounts and follows
    /// into `next`'s.
    pub fn diff(&self, next: &Config) -> ConfigDiff {
        diff_of((&self.accounts, &next.accounts), (&self.follows, &next.follows))
    }

    /// This configuration with `diff` applied: accounts and follows kept
    /// in their order, replaced in place, new ones appended in the diff's
    /// order. `[server]`, `[persist]` and the warnings stay this one's.
    pub fn apply(&self, diff: &ConfigDiff) -> Config {
        let mut accounts = self.accounts.clone();
        let mut follows: Vec<FollowConfig> = self.follows.to_vec();
        for op in &diff.ops {
            match op {
                ConfigOp::RemoveAccount { login } => accounts.retain(|account| account.login != *login),
                ConfigOp::UpsertAccount { account } => match accounts.iter_mut().find(|existing| existing.login == account.login) {
                    Some(existing) => *existing = account.clone(),
                    None => accounts.push(account.clone()),
                },
                ConfigOp::RemoveFollow { slave, master } => follows.retain(|follow| (follow.slave, follow.master) != (*slave, *master)),
                ConfigOp::UpsertFollow { follow } => {
                    match follows.iter_mut().find(|existing| (existing.slave, existing.master) == (follow.slave, follow.master)) {
                        Some(existing) => *existing = follow.clone(),
                        None => follows.push(follow.clone()),
                    }
                }
            }
        }
        Config { server: self.server.clone(), persist: self.persist.clone(), admin: self.admin.clone(), accounts, follows: Arc::from(follows), warnings: Vec::new() }
    }

    /// The `[server]` and `[persist]` keys that differ in `next`: they only
    /// take effect when the bridge restarts.
    pub fn restart_keys(&self, next: &Config) -> Vec<&'static str> {
        let mut keys = Vec::new();
        if self.server != next.server {
            keys.push("[server]");
        }
        if self.persist != next.persist {
            keys.push("[persist]");
        }
        // The tokens apply at a reload; the rest of [admin] at the next start.
        let admin_fixed = |config: &Config| config.admin.as_ref().map(|admin| (admin.listen, admin.recent_skips_max, admin.request_bytes_max));
        if admin_fixed(self) != admin_fixed(next) {
            keys.push("[admin]");
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn config(accounts: &[(u64, &str, &str)], follows: &str, listen: &str) -> Config {
        let mut source = format!("[server]\nlisten = \"{listen}\"\njournal_dir = \"./j\"\n");
        for (login, role, extra) in accounts {
            source.push_str(&format!("[[account]]\nlogin = {login}\nserver = \"S\"\nrole = \"{role}\"\nkey_sha256 = \"{KEY}\"\n{extra}\n"));
        }
        source.push_str(follows);
        Config::from_toml_str(&source).unwrap_or_else(|error| panic!("{error}\n{source}"))
    }

    fn same_accounts_and_follows(left: &Config, right: &Config) -> bool {
        accounts_by_login(&left.accounts) == accounts_by_login(&right.accounts) && follows_by_pair(&left.follows) == follows_by_pair(&right.follows)
    }

    #[test]
    fn equal_configurations_differ_in_nothing() {
        // Shows: a configuration diffed with itself (or an equal one parsed again) gives no operation.
        let one = config(&[(1, "master", ""), (2, "slave", "")], "[[follow]]\nslave = 2\nmaster = 1\n", "127.0.0.1:1");
        assert!(one.diff(&one.clone()).is_empty());
        assert!(one.restart_keys(&one).is_empty());
    }

    #[test]
    fn a_diff_applied_gives_the_new_accounts_and_follows_and_survives_json() {
        // Shows: an account removed, one added, one with a new key and limit, a follow removed, one added and one with a new rule give six operations in the fixed order; applied to the old configuration they give the new one's accounts and follows field for field, and the diff reads back from JSON equal.
        let old = config(
            &[(1, "master", ""), (2, "slave", ""), (3, "slave", ""), (4, "slave", "")],
            "[[follow]]\nslave = 2\nmaster = 1\n[[follow]]\nslave = 3\nmaster = 1\n[[follow]]\nslave = 4\nmaster = 1\n",
            "127.0.0.1:1",
        );
        let new = config(
            &[(1, "master", ""), (2, "slave", "max_positions = 3"), (4, "slave", ""), (5, "slave", "")],
            "[[follow]]\nslave = 5\nmaster = 1\n[[follow]]\nslave = 2\nmaster = 1\nlot = { mode = \"multiplier\", value = 2.0 }\non_remove = \"close\"\n[[follow]]\nslave = 4\nmaster = 1\n",
            "127.0.0.1:1",
        );
        let diff = old.diff(&new);
        let kinds: Vec<String> = diff
            .ops
            .iter()
            .map(|op| match op {
                ConfigOp::RemoveAccount { login } => format!("-account {login}"),
                ConfigOp::UpsertAccount { account } => format!("+account {}", account.login),
                ConfigOp::RemoveFollow { slave, master } => format!("-follow {slave}<{master}"),
                ConfigOp::UpsertFollow { follow } => format!("+follow {}<{}", follow.slave, follow.master),
            })
            .collect();
        assert_eq!(kinds, ["-account 3", "+account 2", "+account 5", "-follow 3<1", "+follow 2<1", "+follow 5<1"]);
        assert_eq!(diff.counts(), (1, 2, 1, 2));
        let applied = old.apply(&diff);
        assert!(same_accounts_and_follows(&applied, &new), "{applied:#?}\n{new:#?}");
        assert!(applied.diff(&new).is_empty());
        let text = serde_json::to_string(&diff).expect("serializes");
        let back: ConfigDiff = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, diff);
        assert!(text.contains("\"op\":\"upsert_follow\"") && text.contains("\"on_remove\":\"close\""), "{text}");
    }

    #[test]
    fn server_and_persist_changes_are_named_as_needing_a_restart() {
        // Shows: a changed [server] key is not part of the diff but is reported as taking effect at the next start.
        let old = config(&[(1, "master", "")], "", "127.0.0.1:1");
        let new = config(&[(1, "master", "")], "", "127.0.0.1:2");
        assert!(old.diff(&new).is_empty());
        assert_eq!(old.restart_keys(&new), vec!["[server]"]);
    }
}
