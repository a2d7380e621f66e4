//! The configuration tables (`config_accounts`, `config_follows`) against a
//! real Postgres: a file's rows fill them once, never again once emptied;
//! an edit commits with its audit row and notifies; a load reads one
//! snapshot.

use std::time::Duration;

use tradebridge_persist::config_source::{edit_rows, import, load, watch, AccountRow, Actor, ConfigRows, EditFailure, FollowRow};
use tradebridge_persist::db::{Target, UrlSource};
use tradebridge_persist::migrate::{migrate, MIGRATIONS};
use tradebridge_persist::testing::TestCluster;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

fn rows() -> ConfigRows {
    let account = |login: u64, role: &str| AccountRow { login, role: role.into(), server: "S".into(), platform: Some("mt5".into()), key_sha256: "ab".repeat(32), enabled: true, previous_keys: String::new(), settings: String::new() };
    ConfigRows { accounts: vec![account(1, "master"), account(2, "slave")], follows: vec![FollowRow { slave: 2, master: 1, rules: "mode = \"frozen\"".into() }] }
}

fn actor(action: &str) -> Actor {
    Actor { name: "test".into(), action: action.into(), subject: "tables".into() }
}

#[test]
fn the_file_fills_the_tables_once_and_never_again_once_emptied() {
    // Shows: import into new empty tables writes the rows with an audit row; a second import writes nothing; after an edit removes every row, import still writes nothing (empty now means no accounts) and load reads the empty tables; a refused edit writes nothing.
    let cluster = TestCluster::start(false).expect("a test cluster");
    cluster.create_database("bridge").unwrap();
    let target = Target::parse(&cluster.url("bridge"), UrlSource::File, 5_000).unwrap();
    runtime().block_on(async {
        let mut client = target.connect().await.unwrap();
        migrate(&mut client, MIGRATIONS).await.unwrap();
        assert!(import(&mut client, &rows(), &actor("config import")).await.unwrap());
        assert_eq!(load(&mut client).await.unwrap(), rows());
        assert!(!import(&mut client, &rows(), &actor("config import")).await.unwrap());
        let emptied = edit_rows(&mut client, &actor("remove all"), |_| Ok::<_, ()>(ConfigRows::default())).await.unwrap();
        assert!(emptied.is_empty());
        assert!(!import(&mut client, &rows(), &actor("config import")).await.unwrap(), "emptied tables are not filled from the file again");
        assert!(load(&mut client).await.unwrap().is_empty());
        let refused = edit_rows(&mut client, &actor("refused"), |_| Err::<ConfigRows, _>("no")).await;
        assert!(matches!(refused, Err(EditFailure::Refused("no"))));
    });
    let audit = cluster.psql("bridge", "SELECT action FROM audit_log ORDER BY id").unwrap();
    assert_eq!(audit, "config import\nremove all\n");
    assert!(!cluster.psql("bridge", "SELECT coalesce(before::text, '') || after::text FROM audit_log").unwrap().contains(&"ab".repeat(32)), "no key hash in audit_log");
}

#[test]
fn tables_created_empty_after_the_watcher_started_are_filled_before_they_are_read() {
    // Shows: a watcher started before the migration (Postgres without the tables) reports nothing while they are missing, then, once migrated, imports the file's rows first and hands over those rows, never an empty set; a committed change reaches it through the notification long before the 60 s re-read.
    let cluster = TestCluster::start(false).expect("a test cluster");
    cluster.create_database("bridge").unwrap();
    let target = Target::parse(&cluster.url("bridge"), UrlSource::File, 5_000).unwrap();
    let (sender, received) = std::sync::mpsc::channel();
    let _watcher = watch(target.clone(), Duration::from_secs(60), Duration::from_millis(100), rows(), move |rows| {
        let _ = sender.send(rows);
        true
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(received.try_recv().is_err(), "nothing while the tables are missing");
    runtime().block_on(async {
        let mut client = target.connect().await.unwrap();
        migrate(&mut client, MIGRATIONS).await.unwrap();
    });
    let first = received.recv_timeout(Duration::from_secs(10)).expect("the watcher reads the tables once they exist");
    assert_eq!(first, rows(), "the file's rows, imported first");
    let started = std::time::Instant::now();
    cluster.psql("bridge", "UPDATE config_accounts SET enabled = false WHERE login = 2").unwrap();
    let changed = received.recv_timeout(Duration::from_secs(10)).expect("the change arrives");
    assert!(!changed.accounts[1].enabled);
    assert!(started.elapsed() < Duration::from_secs(10));
}
