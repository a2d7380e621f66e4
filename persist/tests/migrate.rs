//! Migrations against a real Postgres: a throwaway cluster started from the
//! installed binaries by each test (persist::testing), removed after.

use tradebridge_persist::db::{Target, UrlSource};
use tradebridge_persist::migrate::{checksum, migrate, Migration, MIGRATIONS};
use tradebridge_persist::testing::TestCluster;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

async fn connect(url: &str) -> tokio_postgres::Client {
    Target::parse(url, UrlSource::File, 5_000).expect("a valid url").connect().await.expect("connect to the test cluster")
}

/// A second migration, as a later release would add one.
const ADDED: Migration = Migration { version: 3, name: "added_by_a_test", sql: "CREATE TABLE added_by_a_test (id integer PRIMARY KEY);" };

#[test]
fn migrate_applies_then_does_nothing_then_applies_only_the_new_one() {
    // Shows that migrate on an empty database applies 0001 and 0002 and records them, a second run changes nothing, and a run with a new migration applies only that one.
    let cluster = TestCluster::start(false).expect("a test cluster");
    cluster.create_database("bridge").unwrap();
    runtime().block_on(async {
        let mut client = connect(&cluster.url("bridge")).await;
        let first = migrate(&mut client, MIGRATIONS).await.expect("first migration");
        assert_eq!(first.applied, vec![(1, "initial".to_string()), (2, "config_source".to_string())]);
        assert!(first.already_applied.is_empty());
        let again = migrate(&mut client, MIGRATIONS).await.expect("second run");
        assert!(again.applied.is_empty());
        assert_eq!(again.already_applied, vec![1, 2]);
        let with_new: Vec<Migration> = MIGRATIONS.iter().copied().chain([ADDED]).collect();
        let third = migrate(&mut client, &with_new).await.expect("third run");
        assert_eq!(third.applied, vec![(3, "added_by_a_test".to_string())]);
        assert_eq!(third.already_applied, vec![1, 2]);
    });
    let recorded = cluster.psql("bridge", "SELECT version || ':' || name || ':' || checksum FROM schema_migrations ORDER BY version").unwrap();
    let expected = format!("1:initial:{}\n2:config_source:{}\n3:added_by_a_test:{}\n", checksum(MIGRATIONS[0].sql), checksum(MIGRATIONS[1].sql), checksum(ADDED.sql));
    assert_eq!(recorded, expected);
    // Every table SCHEMA.md documents exists, and persist_progress starts at 0.
    let tables = cluster
        .psql("bridge", "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'public'")
        .unwrap();
    for table in ["audit_log", "config_accounts", "config_follows", "config_source_state", "copies", "copy_outcomes", "copy_results", "dead_letters", "master_events", "persist_gaps", "persist_progress", "sessions", "skips", "slave_symbols"] {
        assert!(tables.split([',', '\n']).any(|name| name == table), "{table} missing from {tables}");
    }
    assert_eq!(cluster.psql("bridge", "SELECT journal_seq FROM persist_progress").unwrap(), "0\n");
}

#[test]
fn edited_or_unknown_migrations_are_refused_by_version() {
    // Shows that a database whose applied migration differs from the binary's, or that holds a version the binary does not know, is refused with the version named, and nothing is applied.
    let cluster = TestCluster::start(false).expect("a test cluster");
    cluster.create_database("bridge").unwrap();
    runtime().block_on(async {
        let mut client = connect(&cluster.url("bridge")).await;
        migrate(&mut client, MIGRATIONS).await.expect("first migration");
        let edited = [Migration { sql: "CREATE TABLE something_else (id integer);", ..MIGRATIONS[0] }];
        let error = migrate(&mut client, &edited).await.expect_err("an edited migration").to_string();
        assert!(error.contains("0001_initial") && error.contains("changed after it was applied"), "{error}");
        let with_new: Vec<Migration> = MIGRATIONS.iter().copied().chain([ADDED]).collect();
        migrate(&mut client, &with_new).await.expect("the added migration");
        let error = migrate(&mut client, MIGRATIONS).await.expect_err("an older binary").to_string();
        assert!(error.contains("0003_added_by_a_test") && error.contains("newer tradebridge"), "{error}");
    });
    assert_eq!(cluster.psql("bridge", "SELECT count(*) FROM information_schema.tables WHERE table_name = 'something_else'").unwrap(), "0\n");
}

#[test]
fn audit_log_is_append_only() {
    // Shows that rows can be added to audit_log but never changed or deleted.
    let cluster = TestCluster::start(false).expect("a test cluster");
    cluster.create_database("bridge").unwrap();
    runtime().block_on(async {
        let mut client = connect(&cluster.url("bridge")).await;
        migrate(&mut client, MIGRATIONS).await.expect("migration");
    });
    cluster.psql("bridge", "INSERT INTO audit_log (actor, action, subject) VALUES ('ops', 'account.disable', '2002')").unwrap();
    for statement in ["UPDATE audit_log SET actor = 'someone'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
        let error = cluster.psql("bridge", statement).expect_err(statement).to_string();
        assert!(error.contains("append-only"), "{statement}: {error}");
    }
    assert_eq!(cluster.psql("bridge", "SELECT actor FROM audit_log").unwrap(), "ops\n");
}

#[test]
fn connection_errors_never_repeat_the_password() {
    // Shows that a malformed connection string and a refused connection are reported by their source, without the password.
    let password = "s3cret-pass-77";
    let error = Target::parse(&format!("postgres://bridge:{password}@127.0.0.1:notaport/db"), UrlSource::File, 1_000).expect_err("a bad port").to_string();
    assert!(error.contains("persist.database_url") && !error.contains(password), "{error}");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let target = Target::parse(&format!("postgres://bridge:{password}@127.0.0.1:{port}/db"), UrlSource::Environment, 1_000).unwrap();
    assert!(!format!("{target:?}").contains(password));
    let error = runtime().block_on(target.connect()).expect_err("nothing listens").to_string();
    assert!(error.contains("TRADEBRIDGE_DATABASE_URL") && !error.contains(password), "{error}");
}
