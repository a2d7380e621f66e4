//! tradebridge persist: the off-path Postgres persister (filled by a later issue).
//!
//! # Layout
//! - (empty until the persister lands)
//!
//! # Invariants
//! - Nothing here is ever called from the hot path.
