//! The `tradebridge` command line: `--help`, `--version`, usage errors, and
//! `migrate` against a real Postgres (a throwaway cluster the test starts).

use std::process::Command;

use tradebridge_persist::testing::TestCluster;

fn tradebridge(arguments: &[&str], database_url: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tradebridge"));
    command.args(arguments).env_remove("TRADEBRIDGE_DATABASE_URL");
    if let Some(url) = database_url {
        command.env("TRADEBRIDGE_DATABASE_URL", url);
    }
    command.output().expect("run tradebridge")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A minimal configuration with `persist` as its [persist] table body
/// (`None`: no table).
fn config_file(directory: &std::path::Path, name: &str, persist: Option<&str>) -> String {
    let mut text = format!("[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"{}\"\n", directory.join("journal").display());
    if let Some(body) = persist {
        text.push_str(&format!("\n[persist]\n{body}\n"));
    }
    let path = directory.join(name);
    std::fs::write(&path, text).expect("write the configuration");
    path.display().to_string()
}

#[test]
fn help_and_version_exit_zero_and_usage_errors_exit_two() {
    // Shows that --help (also of each subcommand) and --version print and exit 0, and an unknown subcommand or a missing --config exits 2 with the usage.
    for arguments in [&["--help"][..], &["serve", "--help"], &["migrate", "--help"], &["config", "--help"], &["config", "check", "--help"], &["reload", "--help"], &["account", "--help"], &["account", "add", "--help"], &["account", "list", "--help"], &["account", "show", "--help"], &["account", "disable", "--help"], &["account", "enable", "--help"], &["account", "remove", "--help"], &["follow", "--help"], &["follow", "add", "--help"], &["follow", "set", "--help"], &["follow", "remove", "--help"], &["follow", "list", "--help"], &["key", "rotate", "--help"], &["admin", "--help"], &["admin", "token", "--help"], &["admin", "token", "add", "--help"], &["admin", "token", "remove", "--help"], &["admin", "token", "list", "--help"], &["journal", "--help"], &["journal", "check", "--help"], &["journal", "quarantine", "--help"], &["--version"]] {
        let output = tradebridge(arguments, None);
        assert!(output.status.success(), "{arguments:?}: {output:?}");
        assert!(!output.stdout.is_empty(), "{arguments:?} printed nothing");
    }
    assert!(text(&tradebridge(&["--help"], None).stdout).contains("migrate"));
    assert!(text(&tradebridge(&["--help"], None).stdout).contains("journal"));
    for arguments in [&["bogus"][..], &["serve"], &["migrate", "--config"]] {
        let output = tradebridge(arguments, None);
        assert_eq!(output.status.code(), Some(2), "{arguments:?}: {output:?}");
        assert!(text(&output.stderr).contains("error:"), "{arguments:?}: {}", text(&output.stderr));
    }
}

#[test]
fn migrate_applies_then_reports_nothing_to_do() {
    // Shows that `tradebridge migrate --config FILE` applies the schema to the database [persist] names (from the environment here), that a second run is a no-op, and that a file without [persist] is refused by name.
    let directory = tempdir("cli-migrate");
    let cluster = TestCluster::start(false).expect("a test cluster");
    cluster.create_database("bridge").unwrap();
    let config = config_file(&directory, "with-persist.toml", Some("migrate_on_start = false"));
    let first = tradebridge(&["migrate", "--config", &config], Some(&cluster.url("bridge")));
    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(text(&first.stdout).contains("applied 0001_initial"), "{}", text(&first.stdout));
    let second = tradebridge(&["migrate", "--config", &config], Some(&cluster.url("bridge")));
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(text(&second.stdout).contains("up to date"), "{}", text(&second.stdout));
    let without = config_file(&directory, "without-persist.toml", None);
    let refused = tradebridge(&["migrate", "--config", &without], Some(&cluster.url("bridge")));
    assert_eq!(refused.status.code(), Some(1));
    assert!(text(&refused.stderr).contains("no [persist] table"), "{}", text(&refused.stderr));
    let unset = tradebridge(&["migrate", "--config", &config], None);
    assert_eq!(unset.status.code(), Some(1));
    assert!(text(&unset.stderr).contains("TRADEBRIDGE_DATABASE_URL"), "{}", text(&unset.stderr));
    let _ = std::fs::remove_dir_all(directory);
}

#[test]
fn config_check_validates_without_starting_anything() {
    // Shows that `config check` exits 0 with a summary (and the warning of a follow naming an unknown login) for a valid file, and 2 naming the line and the key for an invalid one, and that it neither listens nor creates the journal.
    let directory = tempdir("cli-config-check");
    let journal = directory.join("journal");
    let valid = directory.join("valid.toml");
    let accounts = "[[account]]\nlogin = 1\nserver = \"S\"\nrole = \"master\"\nkey_sha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n";
    std::fs::write(&valid, format!("[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"{}\"\n\n{accounts}\n[[follow]]\nslave = 2\nmaster = 1\n", journal.display())).unwrap();
    let output = tradebridge(&["config", "check", "--config", valid.to_str().unwrap()], None);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("is valid: 1 accounts (1 masters, 0 slaves), 1 follows, 1 warnings"), "{}", text(&output.stdout));
    assert!(text(&output.stderr).contains("warning:") && text(&output.stderr).contains('2'), "{}", text(&output.stderr));
    assert!(!journal.exists(), "config check created the journal directory");
    let invalid = directory.join("invalid.toml");
    std::fs::write(&invalid, format!("[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"{}\"\nhb_ms = -5\n", journal.display())).unwrap();
    let output = tradebridge(&["config", "check", "--config", invalid.to_str().unwrap()], None);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let error = text(&output.stderr);
    assert!(error.contains("line 4") && error.contains("hb_ms"), "{error}");
    let _ = std::fs::remove_dir_all(directory);
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let directory = std::env::temp_dir().join(format!("tradebridge-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&directory);
    std::fs::create_dir_all(&directory).expect("create a temporary folder");
    directory
}
