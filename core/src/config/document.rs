//! The part of a configuration a running bridge changes live, as a
//! document: the accounts and follows (JSON), with where the change came
//! from. The journal records each configuration the engine runs under as
//! one, so a replay rebuilds it without the file that gave it.
//!
//! # Invariants
//! - `config.with_document(&config.document(source))` has `config`'s
//!   accounts and follows, field for field and in order.
//! - A document read back is trusted as the bridge wrote it (validated
//!   when its configuration was loaded); it is not validated again.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{AccountConfig, Config, FollowConfig};

/// Accounts and follows, and who changed them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigDocument {
    /// Where the change came from: `start`, `reload`, an admin's name.
    pub source: String,
    pub accounts: Vec<AccountConfig>,
    pub follows: Vec<FollowConfig>,
}

/// [`ConfigDocument`] as checkpoints of version 2 hold it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigDocumentV2 {
    pub source: String,
    pub accounts: Vec<super::AccountConfigV2>,
    pub follows: Vec<FollowConfig>,
}

impl From<ConfigDocumentV2> for ConfigDocument {
    fn from(old: ConfigDocumentV2) -> ConfigDocument {
        ConfigDocument { source: old.source, accounts: old.accounts.into_iter().map(AccountConfig::from).collect(), follows: old.follows }
    }
}

impl Config {
    /// This configuration's accounts and follows as a document.
    pub fn document(&self, source: &str) -> ConfigDocument {
        ConfigDocument { source: source.to_owned(), accounts: self.accounts.clone(), follows: self.follows.to_vec() }
    }

    /// This configuration with the document's accounts and follows; the
    /// `[server]` and `[persist]` tables stay this one's, and the warnings
    /// are left empty (they were given when the document's file was loaded).
    pub fn with_document(&self, document: ConfigDocument) -> Config {
        Config {
            server: self.server.clone(),
            persist: self.persist.clone(),
            admin: self.admin.clone(),
            accounts: document.accounts,
            follows: Arc::from(document.follows),
            warnings: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_round_trips_through_json_into_the_same_configuration() {
        // Shows: the example deployment's configuration, as a document written to JSON and read back, gives a configuration with the same accounts and follows and an empty diff.
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy/tradebridge.example.toml")).expect("example config");
        let config = Config::from_toml_str(&text).expect("valid example");
        let json = serde_json::to_vec(&config.document("test")).expect("serializes");
        let document: ConfigDocument = serde_json::from_slice(&json).expect("reads back");
        assert_eq!(document.source, "test");
        let again = config.with_document(document);
        assert_eq!(again.accounts, config.accounts);
        assert_eq!(&*again.follows, &*config.follows);
        assert!(config.diff(&again).is_empty());
    }
}
