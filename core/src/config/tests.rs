//! Tests of parsing, defaults, range checks, error lines and keys, and
//! cross-references.

use super::*;

/// A made-up SHA-256 (not a demo key's: those are refused off loopback); any 64 hex digits would do.
const KEY: &str = "0b1e5b2a9d3c4f5e6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b";

/// The brief's minimal form, with a real-looking hash in place of the
/// placeholder, plus the slave account the follow needs.
fn minimal() -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:8080"
shards = 0                      # 0 = one per core
journal_dir = "./data/journal"

[[account]]
login = 100000
server = "Probe-Server"
role = "master"                 # or "slave"
key_sha256 = "{KEY}"

[[account]]
login = 150000
server = "Probe-Server"
role = "slave"
key_sha256 = "{KEY}"

[[follow]]
slave = 150000
master = 100000
lot = {{ mode = "multiplier", value = 2.0 }}
"#
    )
}

fn error_of(source: &str) -> ConfigError {
    Config::from_toml_str(source).expect_err("the config should be refused")
}

#[test]
fn minimal_form_parses_with_defaults() {
    // Shows that the brief's minimal form is accepted and every default applied.
    let config = Config::from_toml_str(&minimal()).unwrap();
    assert_eq!(
        config.server.listen,
        "127.0.0.1:8080".parse::<std::net::SocketAddr>().unwrap()
    );
    assert_eq!(config.server.shards, 0);
    assert_eq!(config.server.hb_ms, 5_000);
    assert_eq!(config.server.frame_bytes_max, 16_384);
    assert_eq!(config.server.journal_sync, JournalSync::Group);
    assert!(config.server.journal_spare_segment);
    assert_eq!(config.server.journal_flush, super::JournalFlush::Auto);
    assert_eq!(config.server.hot_thread_slice_us, 0);
    assert_eq!(
        config.server.idle,
        IdleStrategy::Park { backoff_us_max: 10_000 }
    );
    assert_eq!(config.server.metrics_listen, None);
    assert_eq!(config.server.routing, super::Routing::Auto);
    assert_eq!(config.server.histograms_dir, std::path::PathBuf::from("./data/histograms"));
    assert_eq!(config.accounts.len(), 2);
    assert_eq!(config.accounts[0].role, Role::Master);
    assert_eq!(config.accounts[0].key_sha256[0], 0x0b);
    let follow = &config.follows[0];
    assert_eq!((follow.slave, follow.master), (150_000, 100_000));
    assert_eq!(follow.lot, LotRule::Multiplier { factor: 2.0 });
    assert!(follow.copy_sl && follow.copy_tp && follow.copy_pending && !follow.reverse);
    assert_eq!(follow.ttl_ms, defaults::TTL_MS);
    assert_eq!(follow.max_dev_points, defaults::MAX_DEV_POINTS);
    assert_eq!(follow.hours, TradingHours::ALWAYS);
    assert_eq!(follow.below_min, BelowMin::Skip);
    assert_eq!(follow.mode, CopyMode::Normal);
}

/// The brief's minimal form exactly, except that the key hash is filled
/// in: only the master has an [[account]], while the follow names slave
/// 150000.
fn brief_text() -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:8080"
shards = 0                      # 0 = one per core
journal_dir = "./data/journal"

[[account]]
login = 100000
server = "Probe-Server"
role = "master"                 # or "slave"
key_sha256 = "{KEY}"

[[follow]]
slave = 150000
master = 100000
lot = {{ mode = "multiplier", value = 2.0 }}
"#
    )
}

#[test]
fn brief_text_with_only_a_master_parses_with_a_warning() {
    // Shows that the brief's minimal form (hash filled in) is accepted, its follow kept, and the missing slave account
    // reported as a warning naming the line and key, not as an error.
    let config = Config::from_toml_str(&brief_text()).unwrap();
    assert_eq!(config.accounts.len(), 1);
    assert_eq!(
        (config.follows[0].slave, config.follows[0].master),
        (150_000, 100_000)
    );
    assert_eq!(config.follows[0].lot, LotRule::Multiplier { factor: 2.0 });
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    let warning = &config.warnings[0];
    assert_eq!(
        (warning.line, warning.key.as_str()),
        (13, "follow[0].slave")
    );
    assert!(
        warning
            .message
            .contains("150000 is not a configured account"),
        "{warning}"
    );
    assert!(
        warning
            .to_string()
            .starts_with("line 13: key `follow[0].slave`: 150000"),
        "{warning}"
    );
    assert!(Config::from_toml_str(&minimal())
        .unwrap()
        .warnings
        .is_empty());
}

#[test]
fn brief_text_with_its_placeholder_key_is_still_refused() {
    // Shows that the brief's text with the literal placeholder hash stays an error: no key can ever match it.
    let source = brief_text().replace(KEY, "<hex SHA-256 of the API key>");
    let error = error_of(&source);
    assert_eq!(
        (error.line(), error.key()),
        (Some(10), "account[0].key_sha256")
    );
}

#[test]
fn missing_lot_defaults_to_multiplier_one() {
    // Shows the default lot rule when a follow has no `lot`.
    let source = minimal().replace("lot = { mode = \"multiplier\", value = 2.0 }\n", "");
    let config = Config::from_toml_str(&source).unwrap();
    assert_eq!(config.follows[0].lot, LotRule::Multiplier { factor: 1.0 });
}

#[test]
fn negative_lot_value_names_line_and_key() {
    // Shows that a validation error after deserialising still names its line and key.
    let source = minimal().replace("value = 2.0", "value = -1");
    let error = error_of(&source);
    assert_eq!(error.line(), Some(21));
    assert_eq!(error.key(), "follow[0].lot.value");
    assert!(
        error
            .to_string()
            .starts_with("line 21: key `follow[0].lot.value`: -1 is out of range"),
        "{error}"
    );
}

#[test]
fn placeholder_key_is_refused() {
    // Shows that the literal placeholder from the docs is not accepted as a key hash.
    let source = minimal().replacen(KEY, "<hex SHA-256 of the API key>", 1);
    let error = error_of(&source);
    assert_eq!(
        (error.line(), error.key()),
        (Some(10), "account[0].key_sha256")
    );
}

#[test]
fn short_or_non_hex_key_is_refused() {
    // Shows that a key hash must be exactly 64 hex digits.
    for bad in ["abc", &"g".repeat(64), &"a".repeat(63)] {
        let source = minimal().replacen(KEY, bad, 1);
        let error = error_of(&source);
        assert_eq!(error.key(), "account[0].key_sha256", "{bad}");
        assert!(error.to_string().contains("64 hex digits"), "{error}");
    }
    let upper = minimal().replacen(KEY, &KEY.to_uppercase(), 1);
    assert!(
        Config::from_toml_str(&upper).is_ok(),
        "upper-case hex is a valid hash"
    );
}

#[test]
fn unknown_key_names_line_and_key() {
    // Shows that an unknown key anywhere is an error naming it and its line.
    let source = minimal().replace("shards = 0 ", "shard = 0 ");
    let error = error_of(&source);
    assert_eq!((error.line(), error.key()), (Some(3), "server.shard"));
    let source = minimal().replace(
        "master = 100000\n",
        "master = 100000\ncopy_stoploss = true\n",
    );
    let error = error_of(&source);
    assert_eq!(
        (error.line(), error.key()),
        (Some(21), "follow[0].copy_stoploss")
    );
    let source = minimal().replace("value = 2.0 }", "value = 2.0, scale = 1 }");
    assert_eq!(error_of(&source).key(), "follow[0].lot.scale");
}

#[test]
fn wrong_type_names_line_and_key() {
    // Shows that a type error from toml itself is turned into line and key.
    let source = minimal().replace("shards = 0 ", "shards = \"four\" ");
    let error = error_of(&source);
    assert_eq!((error.line(), error.key()), (Some(3), "server.shards"));
    let source = minimal().replace("mode = \"multiplier\"", "mode = \"double\"");
    let error = error_of(&source);
    assert_eq!(
        (error.line(), error.key()),
        (Some(21), "follow[0].lot.mode")
    );
}

#[test]
fn missing_required_key_is_named() {
    // Shows that a missing required key is reported by name.
    let source = minimal().replace("journal_dir = \"./data/journal\"\n", "");
    let error = error_of(&source);
    assert_eq!(error.key(), "server.journal_dir");
}

#[test]
fn server_ranges_are_checked() {
    // Shows that each bounded [server] key refuses a value outside its range, naming it.
    let cases = [
        ("hb_ms = 10", "server.hb_ms"),
        ("hello_timeout_ms = 0", "server.hello_timeout_ms"),
        ("frame_bytes_max = 100", "server.frame_bytes_max"),
        (
            "bad_frames_max_per_minute = 0",
            "server.bad_frames_max_per_minute",
        ),
        ("rate_limit_per_second = 0", "server.rate_limit_per_second"),
        ("rate_limit_burst = 0", "server.rate_limit_burst"),
        ("connections_max = 0", "server.connections_max"),
        ("ring_bytes = 100000", "server.ring_bytes"),
        ("ring_bytes = 1024", "server.ring_bytes"),
        ("journal_group_records = 0", "server.journal_group_records"),
        ("journal_group_ms = 5000", "server.journal_group_ms"),
        ("journal_segment_bytes = 10", "server.journal_segment_bytes"),
        (
            "idle_park_backoff_us_max = 0",
            "server.idle_park_backoff_us_max",
        ),
        ("shards = 1000", "server.shards"),
        ("hot_thread_slice_us = 50", "server.hot_thread_slice_us"),
        ("hot_thread_slice_us = 100001", "server.hot_thread_slice_us"),
        ("metrics_listen = \"nowhere\"", "server.metrics_listen"),
    ];
    for (line, key) in cases {
        let source = minimal().replace("shards = 0                      # 0 = one per core", line);
        let error = error_of(&source);
        assert_eq!(
            (error.line(), error.key()),
            (Some(3), key),
            "{line}: {error}"
        );
    }
    let source = minimal().replace("listen = \"127.0.0.1:8080\"", "listen = \"localhost\"");
    let error = error_of(&source);
    assert_eq!((error.line(), error.key()), (Some(2), "server.listen"));
    let source = minimal().replace("shards = 0 ", "listen = \"127.0.0.1:1\"\nshards = 0 ");
    let error = error_of(&source);
    assert_eq!(
        (error.line(), error.key()),
        (Some(3), "server.listen"),
        "a duplicate key is named: {error}"
    );
}

#[test]
fn every_server_key_is_read() {
    // Shows that every optional [server] key is parsed into its field.
    let extra = r#"metrics_listen = "127.0.0.1:9100"
histograms_dir = "/var/lib/tb/h"
hb_ms = 2000
hello_timeout_ms = 3000
frame_bytes_max = 32768
bad_frames_max_per_minute = 5
rate_limit_per_second = 100
rate_limit_burst = 300
connections_max = 500
ring_bytes = 1048576
journal_sync = "every_record"
journal_group_records = 8
journal_group_ms = 1
journal_segment_bytes = 16777216
journal_bytes_max = 1073741824
idle = "spin"
routing = "thread"
log_json = true
journal_spare_segment = false
journal_flush = "router"
positions_per_master_max = 100
symbols_per_slave_max = 200
closed_positions_remembered_max = 300
"#;
    let source = minimal().replace(
        "journal_dir = \"./data/journal\"\n",
        &format!("journal_dir = \"./j\"\n{extra}"),
    );
    let server = Config::from_toml_str(&source).unwrap().server;
    assert_eq!(
        server.metrics_listen,
        Some("127.0.0.1:9100".parse().unwrap())
    );
    assert_eq!(
        (
            server.hb_ms,
            server.hello_timeout_ms,
            server.frame_bytes_max
        ),
        (2000, 3000, 32768)
    );
    assert_eq!(
        (
            server.bad_frames_max_per_minute,
            server.rate_limit_per_second,
            server.rate_limit_burst
        ),
        (5, 100, 300)
    );
    assert_eq!((server.connections_max, server.ring_bytes), (500, 1 << 20));
    assert_eq!(server.journal_sync, JournalSync::EveryRecord);
    assert_eq!(
        (
            server.journal_group_records,
            server.journal_group_ms,
            server.journal_segment_bytes
        ),
        (8, 1, 16 << 20)
    );
    assert_eq!(server.journal_bytes_max, 1 << 30);
    assert_eq!(server.idle, IdleStrategy::Spin);
    assert_eq!(server.routing, super::Routing::Thread);
    assert!(server.log_json);
    assert!(!server.journal_spare_segment);
    assert_eq!(server.journal_flush, super::JournalFlush::Router);
    assert_eq!(server.journal_dir, std::path::PathBuf::from("./j"));
    assert_eq!(server.histograms_dir, std::path::PathBuf::from("/var/lib/tb/h"));
    assert_eq!(
        (
            server.positions_per_master_max,
            server.symbols_per_slave_max,
            server.closed_positions_remembered_max
        ),
        (100, 200, 300)
    );
    let source = minimal().replace("shards = 0 ", "idle = \"yield\"\nshards = 0 ");
    assert_eq!(
        Config::from_toml_str(&source).unwrap().server.idle,
        IdleStrategy::Yield
    );
}

#[test]
fn follow_must_name_a_master_and_a_slave() {
    // Shows the role cross-references: an account of the wrong role is an error, an unconfigured login a warning,
    // and a follow whose slave is its master an error.
    let swapped = minimal().replace(
        "slave = 150000\nmaster = 100000",
        "slave = 100000\nmaster = 150000",
    );
    let error = error_of(&swapped);
    assert_eq!((error.line(), error.key()), (Some(19), "follow[0].slave"));
    assert!(error.to_string().contains("is not a slave"), "{error}");
    let unknown = minimal().replace("master = 100000\nlot", "master = 999\nlot");
    let config = Config::from_toml_str(&unknown).unwrap();
    let warning = &config.warnings[0];
    assert_eq!(
        (warning.line, warning.key.as_str()),
        (20, "follow[0].master"),
        "an unknown login is only a warning"
    );
    let same = minimal().replace(
        "slave = 150000\nmaster = 100000",
        "slave = 777\nmaster = 777",
    );
    let error = error_of(&same);
    assert_eq!(
        (error.line(), error.key()),
        (Some(19), "follow[0].slave"),
        "{error}"
    );
    let zero = minimal().replace("slave = 150000\nmaster", "slave = 0\nmaster");
    assert_eq!(error_of(&zero).key(), "follow[0].slave");
}

#[test]
fn duplicate_logins_and_follows_are_refused() {
    // Shows that a login used twice and a (slave, master) pair used twice are errors.
    let duplicate_login = minimal().replace("login = 150000", "login = 100000");
    let error = error_of(&duplicate_login);
    assert_eq!((error.line(), error.key()), (Some(13), "account[1].login"));
    let follow = "\n[[follow]]\nslave = 150000\nmaster = 100000\n";
    let duplicate_follow = format!("{}{follow}", minimal());
    let error = error_of(&duplicate_follow);
    assert_eq!((error.line(), error.key()), (Some(24), "follow[1].slave"));
}

#[test]
fn slave_may_follow_many_masters_and_master_many_slaves() {
    // Shows that one slave following two masters and one master with two slaves are accepted.
    let extra = format!(
        "\n[[account]]\nlogin = 200000\nserver = \"B\"\nrole = \"master\"\nkey_sha256 = \"{KEY}\"\n\
         \n[[account]]\nlogin = 250000\nserver = \"B\"\nrole = \"slave\"\nkey_sha256 = \"{KEY}\"\n\
         \n[[follow]]\nslave = 150000\nmaster = 200000\n\
         \n[[follow]]\nslave = 250000\nmaster = 100000\n"
    );
    let config = Config::from_toml_str(&format!("{}{extra}", minimal())).unwrap();
    assert_eq!(config.follows.len(), 3);
    assert_eq!(config.account(250_000).unwrap().role, Role::Slave);
}

#[test]
fn lot_modes_parse_with_their_options() {
    // Shows every lot mode and the risk_percent options; basis is refused on other modes.
    let cases = [
        (
            "{ mode = \"fixed\", value = 0.5 }",
            LotRule::Fixed { lots: 0.5 },
        ),
        (
            "{ mode = \"balance_ratio\", value = 1.5 }",
            LotRule::BalanceRatio { factor: 1.5 },
        ),
        (
            "{ mode = \"equity_ratio\", value = 1.0 }",
            LotRule::EquityRatio { factor: 1.0 },
        ),
        (
            "{ mode = \"risk_percent\", value = 2.0, basis = \"equity\", quote_to_account = 0.5 }",
            LotRule::RiskPercent {
                percent: 2.0,
                basis: MoneyBasis::Equity,
                quote_to_account: 0.5,
            },
        ),
        (
            "{ mode = \"risk_percent\", value = 1.0 }",
            LotRule::RiskPercent {
                percent: 1.0,
                basis: MoneyBasis::Balance,
                quote_to_account: 1.0,
            },
        ),
    ];
    for (table, expected) in cases {
        let source = minimal().replace("{ mode = \"multiplier\", value = 2.0 }", table);
        assert_eq!(
            Config::from_toml_str(&source).unwrap().follows[0].lot,
            expected,
            "{table}"
        );
    }
    let source = minimal().replace("value = 2.0 }", "value = 2.0, basis = \"equity\" }");
    assert_eq!(error_of(&source).key(), "follow[0].lot.basis");
    let source = minimal().replace(
        "{ mode = \"multiplier\", value = 2.0 }",
        "{ mode = \"risk_percent\", value = 150.0 }",
    );
    assert_eq!(error_of(&source).key(), "follow[0].lot.value");
}

#[test]
fn risk_percent_without_copied_stop_loss_is_refused() {
    // Shows that risk_percent with copy_sl = false (a risk measured at a stop the slave's trade never gets) is an
    // error naming copy_sl's line, while copy_sl = false with other modes, or risk_percent alone, is accepted.
    let risk = minimal().replace(
        "{ mode = \"multiplier\", value = 2.0 }",
        "{ mode = \"risk_percent\", value = 1.0 }",
    );
    let error = error_of(&format!("{risk}copy_sl = false\n"));
    assert_eq!(
        (error.line(), error.key()),
        (Some(22), "follow[0].copy_sl"),
        "{error}"
    );
    assert!(error.to_string().contains("risk_percent"), "{error}");
    assert!(Config::from_toml_str(&format!("{risk}copy_sl = true\n")).is_ok());
    assert!(Config::from_toml_str(&format!("{}copy_sl = false\n", minimal())).is_ok());
}

#[test]
fn follow_rules_parse() {
    // Shows that every optional follow rule is read into its field.
    let rules = r#"below_min = "min"
max_lot = 3.0
copy_sl = false
copy_tp = false
copy_pending = false
symbol_map = { XAUUSD = "GOLD" }
symbol_prefix = "m."
symbol_suffix = ".pro"
strip_prefix = "x"
strip_suffix = "-ecn"
symbols_allow = ["EURUSD", "XAUUSD"]
symbols_deny = ["BTCUSD"]
magic_allow = [1, 2]
magic_deny = [3]
comment_contains = "copy"
direction = "buy_only"
reverse = true
mode = "close_only"
hours_utc = "22:00-06:00"
days_utc = ["mon", "fri"]
ttl_ms = 2000
max_dev_points = 0
reconcile_open_max_age_ms = 0
"#;
    let source = format!("{}{rules}", minimal());
    let follow = Config::from_toml_str(&source).unwrap().follows[0].clone();
    assert_eq!(follow.below_min, BelowMin::Min);
    assert_eq!(follow.max_lot, Some(3.0));
    assert!(!follow.copy_sl && !follow.copy_tp && !follow.copy_pending && follow.reverse);
    assert_eq!(
        follow.symbols.map.get("XAUUSD").map(String::as_str),
        Some("GOLD")
    );
    assert_eq!(
        (
            follow.symbols.prefix.as_str(),
            follow.symbols.suffix.as_str()
        ),
        ("m.", ".pro")
    );
    assert_eq!(
        (
            follow.symbols.strip_prefix.as_str(),
            follow.symbols.strip_suffix.as_str()
        ),
        ("x", "-ecn")
    );
    assert_eq!(follow.symbols.allow.len(), 2);
    assert!(follow.symbols.deny.contains("BTCUSD"));
    assert_eq!(
        follow.magic_allow.iter().copied().collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(follow.magic_deny.contains(&3));
    assert_eq!(follow.comment_contains.as_deref(), Some("copy"));
    assert_eq!(
        (follow.direction, follow.mode),
        (Direction::BuyOnly, CopyMode::CloseOnly)
    );
    assert_eq!(
        (
            follow.hours.start_minute,
            follow.hours.end_minute,
            follow.hours.weekdays
        ),
        (1320, 360, 0b1_0001)
    );
    assert_eq!(
        (
            follow.ttl_ms,
            follow.max_dev_points,
            follow.reconcile_open_max_age_ms
        ),
        (2000, 0, 0)
    );
}

#[test]
fn bad_follow_rules_name_their_key() {
    // Shows range and format errors of follow rules, each naming line and key.
    let cases = [
        ("hours_utc = \"8-20\"", "follow[0].hours_utc"),
        ("days_utc = [\"mon\", \"mon\"]", "follow[0].days_utc"),
        ("days_utc = []", "follow[0].days_utc"),
        ("ttl_ms = 0", "follow[0].ttl_ms"),
        ("max_lot = 0.0", "follow[0].max_lot"),
        ("symbols_allow = [\"\"]", "follow[0].symbols_allow"),
        (
            "symbol_map = { EURUSD = \"EUR USD\" }",
            "follow[0].symbol_map",
        ),
    ];
    for (line, key) in cases {
        let source = format!("{}{line}\n", minimal());
        let error = error_of(&source);
        assert_eq!(
            (error.line(), error.key()),
            (Some(22), key),
            "{line}: {error}"
        );
    }
}

/// The minimal form plus a second master, whose follows come after the
/// first: the third [[follow]] (follow[2]) starts at line 33, and its
/// extra rules at line 36.
fn three_follows(third_rules: &str) -> String {
    format!(
        "{}\n[[account]]\nlogin = 200000\nserver = \"B\"\nrole = \"master\"\nkey_sha256 = \"{KEY}\"\n\
         \n[[follow]]\nslave = 150000\nmaster = 200000\n\
         \n[[follow]]\nslave = 150001\nmaster = 100000\n{third_rules}\n",
        minimal()
    )
}

#[test]
fn every_error_names_the_full_dotted_key() {
    // Shows that validation errors and toml's own errors name keys the same way: table path with its index from 0
    // in file order, then inline table, then key (`follow[2].lot.value`, `account[2].login`, `server.hb_ms`).
    let cases = [
        (
            "lot = { mode = \"fixed\", value = -1 }",
            36,
            "follow[2].lot.value",
        ),
        (
            "lot = { mode = \"fixed\", value = 1, scale = 2 }",
            36,
            "follow[2].lot.scale",
        ),
        ("lot = { mode = \"fixed\" }", 36, "follow[2].lot.value"),
        ("revers = true", 36, "follow[2].revers"),
        ("below_min = \"maybe\"", 36, "follow[2].below_min"),
        ("magic_allow = [-1]", 36, "follow[2].magic_allow"),
        ("symbol_suffix = \" m\"", 36, "follow[2].symbol_suffix"),
        ("hours_utc = \"+8:00-20:00\"", 36, "follow[2].hours_utc"),
        (
            "symbol_map = { EURUSD = \"EURUSD.m\", GBPUSD = \"\" }",
            36,
            "follow[2].symbol_map",
        ),
        (
            "symbol_map = {\n EURUSD = \"EURUSD.m\" }",
            36,
            "follow[2].symbol_map",
        ),
        (
            "[follow.lot]\nmode = \"fixed\"\nvalue = 0.0",
            38,
            "follow[2].lot.value",
        ),
    ];
    for (rules, line, key) in cases {
        let error = error_of(&three_follows(rules));
        assert_eq!(
            (error.line(), error.key()),
            (Some(line), key),
            "{rules}: {error}"
        );
        assert!(
            error
                .to_string()
                .starts_with(&format!("line {line}: key `{key}`: ")),
            "{error}"
        );
    }
    let login = three_follows("").replace("login = 200000", "login = 150000");
    let error = error_of(&login);
    assert_eq!(
        (error.line(), error.key()),
        (Some(24), "account[2].login"),
        "{error}"
    );
    let missing = three_follows("").replace("login = 200000\n", "");
    assert_eq!(error_of(&missing).key(), "account[2].login");
    let config = Config::from_toml_str(&three_follows("")).unwrap();
    assert_eq!(
        config.warnings[0].key, "follow[2].slave",
        "warnings name keys the same way"
    );
}

#[test]
fn affixes_with_whitespace_are_refused() {
    // Shows that every affix key refuses a space or tab (symbol names have none) and accepts an empty string.
    for key in [
        "symbol_prefix",
        "symbol_suffix",
        "strip_prefix",
        "strip_suffix",
    ] {
        for bad in [" m", ".m ", "a\tb"] {
            let source = format!("{}{key} = \"{bad}\"\n", minimal());
            let error = error_of(&source);
            assert_eq!(
                (error.line(), error.key()),
                (Some(22), format!("follow[0].{key}").as_str()),
                "{error}"
            );
            assert!(error.to_string().contains("whitespace"), "{error}");
        }
        assert!(Config::from_toml_str(&format!("{}{key} = \"\"\n", minimal())).is_ok());
    }
}

#[test]
fn slave_risk_keys_parse_and_are_refused_on_masters() {
    // Shows the slave-wide risk keys, and that a master refuses them and a slave refuses `contracts`.
    let risk = "max_positions = 5\nmax_positions_per_symbol = 2\ndaily_loss_money = 500.0\ndaily_loss_percent = 5.0\n\
                daily_loss_basis = \"equity\"\nequity_floor = 1000.0\non_limit = \"close_all\"\nmode = \"frozen\"\n";
    let source = minimal().replace("role = \"slave\"\n", &format!("role = \"slave\"\n{risk}"));
    let config = Config::from_toml_str(&source).unwrap();
    let slave = config.account(150_000).unwrap();
    assert_eq!(slave.risk.max_positions, Some(5));
    assert_eq!(slave.risk.max_positions_per_symbol, Some(2));
    assert_eq!(
        (slave.risk.daily_loss_money, slave.risk.daily_loss_percent),
        (Some(500.0), Some(5.0))
    );
    assert_eq!(slave.risk.daily_loss_basis, MoneyBasis::Equity);
    assert_eq!(
        (
            slave.risk.equity_floor,
            slave.risk.on_limit,
            slave.risk.mode
        ),
        (Some(1000.0), OnLimit::CloseAll, CopyMode::Frozen)
    );
    let on_master = minimal().replace(
        "role = \"master\"                 # or \"slave\"\n",
        "role = \"master\"\nmax_positions = 5\n",
    );
    let error = error_of(&on_master);
    assert_eq!(
        (error.line(), error.key()),
        (Some(10), "account[0].max_positions")
    );
    let contracts_on_slave = minimal().replace(
        "role = \"slave\"\n",
        "role = \"slave\"\ncontracts = { XAUUSD = 100.0 }\n",
    );
    assert_eq!(error_of(&contracts_on_slave).key(), "account[1].contracts");
    let bad_percent = minimal().replace(
        "role = \"slave\"\n",
        "role = \"slave\"\ndaily_loss_percent = 0.0\n",
    );
    assert_eq!(
        error_of(&bad_percent).key(),
        "account[1].daily_loss_percent"
    );
}

#[test]
fn master_contracts_parse_and_must_be_positive() {
    // Shows the master's contract table and its validation.
    let source = minimal().replace(
        "role = \"master\" ",
        "contracts = { XAUUSD = 100.0 }\nrole = \"master\" ",
    );
    let config = Config::from_toml_str(&source).unwrap();
    assert_eq!(
        config.account(100_000).unwrap().contracts.get("XAUUSD"),
        Some(&100.0)
    );
    let source = minimal().replace(
        "role = \"master\" ",
        "contracts = { XAUUSD = 0.0 }\nrole = \"master\" ",
    );
    let error = error_of(&source);
    assert_eq!(
        (error.line(), error.key()),
        (Some(9), "account[0].contracts")
    );
}

#[test]
fn contracts_need_symbol_names_and_bounded_sizes() {
    // Shows that contract sizes outside 1e-6..=1e12 and keys that are no symbol names are refused on their line.
    let with = |table: &str| {
        minimal().replace(
            "role = \"master\" ",
            &format!("contracts = {table}\nrole = \"master\" "),
        )
    };
    for table in [
        "{ XAUUSD = 1e-7 }",
        "{ XAUUSD = 1e13 }",
        "{ XAUUSD = nan }",
        "{ XAUUSD = inf }",
        "{ XAUUSD = -100.0 }",
        "{ \"\" = 1.0 }",
        "{ \"EUR USD\" = 1.0 }",
    ] {
        let error = error_of(&with(table));
        assert_eq!(
            (error.line(), error.key()),
            (Some(9), "account[0].contracts"),
            "{table}: {error}"
        );
    }
    let config = Config::from_toml_str(&with("{ BTCUSD = 1e-6, USDJPY = 1e12 }")).unwrap();
    assert_eq!(
        config.account(100_000).unwrap().contracts.len(),
        2,
        "the bounds themselves are accepted"
    );
}

#[test]
fn syntax_error_names_a_line() {
    // Shows that broken TOML syntax is reported with a line.
    let source = minimal().replace("shards = 0 ", "shards = = 0 ");
    let error = error_of(&source);
    assert_eq!(error.line(), Some(3));
}

#[test]
fn load_reports_a_missing_file() {
    // Shows that a file that cannot be read is a Read error naming the path.
    let error = Config::load("/nonexistent/tradebridge.toml").unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error.to_string().contains("/nonexistent/tradebridge.toml"));
}

#[test]
fn deploy_example_parses() {
    // Shows that deploy/tradebridge.example.toml loads, with its two masters, three slaves and their rules.
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/tradebridge.example.toml");
    let config = Config::load(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let masters = config
        .accounts
        .iter()
        .filter(|account| account.role == Role::Master)
        .count();
    let slaves = config
        .accounts
        .iter()
        .filter(|account| account.role == Role::Slave)
        .count();
    assert_eq!((masters, slaves), (2, 3));
    assert_eq!(config.follows.len(), 4);
    assert_eq!(
        config.account(200_002).unwrap().risk.on_limit,
        OnLimit::CloseAll
    );
    assert_eq!(
        config.follows[2].lot,
        LotRule::RiskPercent {
            percent: 1.0,
            basis: MoneyBasis::Equity,
            quote_to_account: 1.0
        }
    );
    assert!(config.follows[3].reverse);
    // The clear demo keys named in the file's comment hash to the stored values.
    assert_eq!(
        config.account(100_001).unwrap().key_sha256[..4],
        [0x02, 0x7a, 0xb5, 0x6e]
    );
}

#[test]
fn ring_too_small_for_the_largest_frame_is_refused() {
    // Shows: ring_bytes must carry the records of a frame of frame_bytes_max whole (2 x 64 KiB + 4 KiB per record; a ring record is at most half the ring).
    let source = minimal().replace(
        "journal_dir = \"./data/journal\"\n",
        "journal_dir = \"./data/journal\"\nframe_bytes_max = 65536\nring_bytes = 131072\n",
    );
    let error = Config::from_toml_str(&source).unwrap_err();
    assert_eq!(error.key(), "server.ring_bytes");
    assert!(error.to_string().contains("expected at least 524288"), "{error}");
    let fits = source.replace("ring_bytes = 131072", "ring_bytes = 524288");
    assert!(Config::from_toml_str(&fits).is_ok());
}

#[test]
fn segment_too_small_for_the_largest_record_is_refused() {
    // Shows: a journal segment must hold the largest record a frame can cause (1 MiB frames need 2 MiB + 4 KiB records).
    let source = minimal().replace(
        "journal_dir = \"./data/journal\"\n",
        "journal_dir = \"./data/journal\"\nframe_bytes_max = 1048576\nring_bytes = 8388608\njournal_segment_bytes = 2097152\n",
    );
    let error = Config::from_toml_str(&source).unwrap_err();
    assert_eq!(error.key(), "server.journal_segment_bytes");
    assert!(error.to_string().contains("expected at least 4202496"), "{error}");
}

#[test]
fn follows_with_equal_symbol_rules_share_one_copy() {
    // Shows that equal symbol rules are one shared value and different rules stay apart, each with its own keys.
    let extra = format!(
        "\n[[account]]\nlogin = 200000\nserver = \"B\"\nrole = \"master\"\nkey_sha256 = \"{KEY}\"\n\
         \n[[account]]\nlogin = 250000\nserver = \"B\"\nrole = \"slave\"\nkey_sha256 = \"{KEY}\"\n\
         \n[[follow]]\nslave = 150000\nmaster = 200000\nsymbol_suffix = \".m\"\n\
         \n[[follow]]\nslave = 250000\nmaster = 100000\n\
         \n[[follow]]\nslave = 250000\nmaster = 200000\nsymbol_suffix = \".m\"\n"
    );
    let config = Config::from_toml_str(&format!("{}{extra}", minimal())).unwrap();
    let rules: Vec<&Arc<SymbolRules>> = config.follows.iter().map(|follow| &follow.symbols).collect();
    assert_eq!(rules.len(), 4);
    assert!(Arc::ptr_eq(rules[0], rules[2]), "both follows with default rules share them");
    assert!(Arc::ptr_eq(rules[1], rules[3]), "both follows with suffix .m share them");
    assert!(!Arc::ptr_eq(rules[0], rules[1]));
    assert_eq!(*rules[0], Arc::new(SymbolRules::default()));
    assert_eq!(rules[1].suffix, ".m");
    assert_eq!(rules[3].suffix, ".m");
    assert!(rules[3].map.is_empty() && rules[3].prefix.is_empty());
}

#[test]
fn checkpoint_journal_bytes_leaves_room_for_one_more_segment() {
    // Shows the checkpoint threshold's default, its lowering to journal_bytes_max - journal_segment_bytes when unset, and the refusals naming the key.
    let with = |lines: &str| minimal().replace("journal_dir = \"./data/journal\"\n", &format!("journal_dir = \"./data/journal\"\n{lines}\n"));
    let config = Config::from_toml_str(&minimal()).unwrap();
    assert_eq!(config.server.checkpoint_journal_bytes, 1 << 30);
    let small = with("journal_segment_bytes = 1048576\njournal_bytes_max = 2097152");
    assert_eq!(Config::from_toml_str(&small).unwrap().server.checkpoint_journal_bytes, 1 << 20);
    let too_large = with("journal_segment_bytes = 1048576\njournal_bytes_max = 2097152\ncheckpoint_journal_bytes = 2097152");
    let error = Config::from_toml_str(&too_large).unwrap_err();
    assert_eq!(error.key(), "server.checkpoint_journal_bytes");
    assert!(error.to_string().contains("expected at most journal_bytes_max - journal_segment_bytes = 1048576"), "{error}");
    let one_segment = with("journal_segment_bytes = 1048576\njournal_bytes_max = 1048576");
    let error = Config::from_toml_str(&one_segment).unwrap_err();
    assert_eq!(error.key(), "server.journal_bytes_max");
    assert!(error.to_string().contains("expected at least 2097152"), "{error}");
}

/// `minimal()` with a `[persist]` table holding `body`, after `[server]`.
fn with_persist(body: &str) -> String {
    minimal().replacen("\n[[account]]", &format!("\n[persist]\n{body}\n\n[[account]]"), 1)
}

#[test]
fn no_persist_table_means_no_persister() {
    // Shows that a file without [persist] runs on the journal alone, as before.
    assert_eq!(Config::from_toml_str(&minimal()).unwrap().persist, None);
}

#[test]
fn persist_table_parses_with_defaults() {
    // Shows that [persist] with only a URL gets every documented default.
    let config = Config::from_toml_str(&with_persist(r#"database_url = "postgres://bridge@127.0.0.1/tradebridge""#)).unwrap();
    let persist = config.persist.expect("a persist config");
    assert_eq!(persist.database_url.as_deref(), Some("postgres://bridge@127.0.0.1/tradebridge"));
    assert!(!persist.migrate_on_start);
    assert_eq!(persist.batch_rows_max, 5_000);
    assert_eq!(persist.batch_interval_ms, 100);
    assert_eq!(persist.retry_backoff_ms_min, 200);
    assert_eq!(persist.retry_backoff_ms_max, 5_000);
    assert_eq!(persist.connect_timeout_ms, 5_000);
    // An empty table takes the URL from the environment at start.
    let from_environment = Config::from_toml_str(&with_persist("migrate_on_start = true")).unwrap().persist.unwrap();
    assert_eq!(from_environment.database_url, None);
    assert!(from_environment.migrate_on_start);
}

#[test]
fn persist_errors_name_the_key_and_never_echo_the_url() {
    // Shows that a malformed URL, an out-of-range batch, a backoff whose maximum is below its minimum and an unknown key are refused by key and line, and that neither an error nor Debug shows a password.
    let secret = "hunter2-secret";
    let error = error_of(&with_persist(&format!(r#"database_url = "mysql://bridge:{secret}@db/x""#))).to_string();
    assert!(error.contains("persist.database_url"), "{error}");
    assert!(!error.contains(secret), "{error}");
    let error = error_of(&with_persist("batch_rows_max = 0")).to_string();
    assert!(error.contains("persist.batch_rows_max") && error.contains("1 to 100000"), "{error}");
    let error = error_of(&with_persist("retry_backoff_ms_min = 5000\nretry_backoff_ms_max = 1000")).to_string();
    assert!(error.contains("persist.retry_backoff_ms_max"), "{error}");
    let error = error_of(&with_persist("batch_size = 10")).to_string();
    assert!(error.contains("batch_size"), "{error}");
    let config = Config::from_toml_str(&with_persist(&format!(r#"database_url = "postgres://bridge:{secret}@db/x""#))).unwrap();
    let shown = format!("{:?}", config.persist.unwrap());
    assert!(!shown.contains(secret) && shown.contains("<set>"), "{shown}");
}

#[test]
fn previous_keys_parse_with_their_expiry_and_bad_ones_are_named() {
    // Shows: a previous key with an offset date-time gets its expiry in ms since the epoch (2026-12-08T04:00:00Z and the same instant written +02:00), the time prints back as it was written; a date-time without an offset or a bad hash is refused naming account[1].previous_keys[0] and its key; enabled and platform parse, and a platform other than mt4 or mt5 is refused.
    let with = |line: &str| minimal().replace("role = \"slave\"\n", &format!("role = \"slave\"\n{line}\n"));
    let config = Config::from_toml_str(&with(&format!("previous_keys = [{{ key_sha256 = \"{KEY}\", expires = 2026-12-08T04:00:00Z }}, {{ key_sha256 = \"{KEY}\", expires = 2026-12-08T06:00:00+02:00 }}]\nenabled = false\nplatform = \"mt4\""))).expect("valid");
    let account = config.account(150000).unwrap();
    assert_eq!(account.previous_keys.iter().map(|key| key.expires_ms).collect::<Vec<_>>(), vec![1_796_702_400_000, 1_796_702_400_000]);
    assert_eq!(rfc3339_of_ms(1_796_702_400_000), "2026-12-08T04:00:00Z");
    assert_eq!(rfc3339_of_ms(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339_of_ms(951_782_400_000), "2000-02-29T00:00:00Z");
    assert!(!account.enabled && account.platform.as_deref() == Some("mt4"));
    let local = error_of(&with(&format!("previous_keys = [{{ key_sha256 = \"{KEY}\", expires = 2026-12-08T04:00:00 }}]"))).to_string();
    assert!(local.contains("account[1].previous_keys[0].expires") && local.contains("offset"), "{local}");
    let hash = error_of(&with("previous_keys = [{ key_sha256 = \"abc\", expires = 2026-12-08T04:00:00Z }]")).to_string();
    assert!(hash.contains("account[1].previous_keys[0].key_sha256"), "{hash}");
    let platform = error_of(&with("platform = \"mt6\"")).to_string();
    assert!(platform.contains("account[1].platform") && platform.contains("\"mt4\" or \"mt5\""), "{platform}");
}

/// `minimal()` with an `[admin]` table holding `body`, after `[server]`.
fn with_admin(body: &str) -> String {
    minimal().replacen("\n[[account]]", &format!("\n[admin]\n{body}\n\n[[account]]"), 1)
}

const TOKEN_HASH: &str = "1111111111111111111111111111111111111111111111111111111111111111";

#[test]
fn admin_table_parses_with_a_loopback_default_and_its_bounds() {
    // Shows: no [admin] keeps the API off; [admin] with one token listens on loopback 127.0.0.1:9108 with the documented bounds; `Debug` shows a token's name, never its hash.
    assert_eq!(Config::from_toml_str(&minimal()).unwrap().admin, None);
    let config = Config::from_toml_str(&with_admin(&format!("[[admin.token]]\nname = \"ops\"\ntoken_sha256 = \"{TOKEN_HASH}\""))).unwrap();
    let admin = config.admin.expect("an admin config");
    assert_eq!(admin.listen.to_string(), "127.0.0.1:9108");
    assert_eq!((admin.recent_skips_max, admin.request_bytes_max), (1_000, 65_536));
    assert_eq!((admin.tokens[0].name.as_str(), admin.tokens[0].token_sha256), ("ops", [0x11; 32]));
    let shown = format!("{:?}", admin.tokens[0]);
    assert!(shown.contains("ops") && !shown.contains("17"), "{shown}");
}

#[test]
fn admin_table_errors_name_the_key() {
    // Shows: [admin] without a token, a token with a bad name, the same name twice, a hash that is not 64 hex digits, and a bound out of range are each refused naming the key.
    let token = |name: &str, hash: &str| format!("[[admin.token]]\nname = \"{name}\"\ntoken_sha256 = \"{hash}\"\n");
    let cases = [
        (with_admin("listen = \"127.0.0.1:9200\""), "admin.token"),
        (with_admin(&token("has space", TOKEN_HASH)), "admin.token[0].name"),
        (with_admin(&format!("{}{}", token("ops", TOKEN_HASH), token("ops", TOKEN_HASH))), "admin.token[1].name"),
        (with_admin(&token("ops", "abc")), "admin.token[0].token_sha256"),
        (with_admin(&format!("recent_skips_max = 1000000\n{}", token("ops", TOKEN_HASH))), "admin.recent_skips_max"),
    ];
    for (source, key) in cases {
        let error = error_of(&source).to_string();
        assert!(error.contains(key), "{key}: {error}");
    }
}

#[test]
fn admin_tokens_change_at_a_reload_and_the_rest_of_admin_at_the_next_start() {
    // Shows: a new token is no restart key; a new listen address is.
    let one = Config::from_toml_str(&with_admin(&format!("[[admin.token]]\nname = \"ops\"\ntoken_sha256 = \"{TOKEN_HASH}\""))).unwrap();
    let two = Config::from_toml_str(&with_admin(&format!("[[admin.token]]\nname = \"ops\"\ntoken_sha256 = \"{TOKEN_HASH}\"\n[[admin.token]]\nname = \"ci\"\ntoken_sha256 = \"{TOKEN_HASH}\""))).unwrap();
    assert!(one.restart_keys(&two).is_empty());
    let moved = Config::from_toml_str(&with_admin(&format!("listen = \"127.0.0.1:9300\"\n[[admin.token]]\nname = \"ops\"\ntoken_sha256 = \"{TOKEN_HASH}\""))).unwrap();
    assert_eq!(one.restart_keys(&moved), vec!["[admin]"]);
}

#[test]
fn routing_auto_runs_inline_on_small_machines_and_a_bad_value_is_named() {
    // Shows that `routing = "auto"` means inline on up to four cores and a thread of its own above, that an explicit choice stays as given, and that an unknown value is refused naming the key.
    use super::Routing;
    assert_eq!(Routing::Auto.resolve(1), Routing::Inline);
    assert_eq!(Routing::Auto.resolve(4), Routing::Inline);
    assert_eq!(Routing::Auto.resolve(5), Routing::Thread);
    assert_eq!(Routing::Inline.resolve(64), Routing::Inline);
    assert_eq!(Routing::Thread.resolve(2), Routing::Thread);
    let source = minimal().replace("journal_dir = \"./data/journal\"\n", "journal_dir = \"./j\"\nrouting = \"sideways\"\n");
    let error = error_of(&source);
    assert_eq!(error.key(), "server.routing");
    assert!(error.to_string().contains("inline"), "{error}");
}

#[test]
fn hot_thread_slice_is_off_at_zero_or_taken_from_100_us_and_says_why_a_shorter_one_is_refused() {
    for (line, expected) in [("hot_thread_slice_us = 0", 0), ("hot_thread_slice_us = 100", 100), ("hot_thread_slice_us = 100000", 100_000)] {
        let source = minimal().replace("shards = 0 ", &format!("{line}\nshards = 0 "));
        let config = Config::from_toml_str(&source).unwrap_or_else(|error| panic!("{line}: {error}"));
        assert_eq!(config.server.hot_thread_slice_us, expected, "{line}");
    }
    let source = minimal().replace("shards = 0 ", "hot_thread_slice_us = 99\nshards = 0 ");
    let message = error_of(&source).to_string();
    assert!(message.contains("99 is below the kernel's shortest slice") && message.contains("0 (the kernel's default) or 100 to 100000"), "{message}");
}

#[test]
fn the_public_demo_keys_are_refused_on_a_listener_that_is_not_loopback() {
    // Shows: deploy/tradebridge.example.toml (all five demo keys) loads on 127.0.0.1 and [::1], and is refused on 0.0.0.0 and a public address, naming the first account with a demo key, its key_sha256 line and the listener; an own key on 0.0.0.0 loads.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/tradebridge.example.toml");
    let example = std::fs::read_to_string(path).expect("the example config");
    let listen_line = "listen = \"127.0.0.1:8080\"";
    assert!(example.contains(listen_line));
    for loopback in ["127.0.0.1:8080", "[::1]:8080"] {
        let source = example.replace(listen_line, &format!("listen = \"{loopback}\""));
        Config::from_toml_str(&source).unwrap_or_else(|error| panic!("{loopback}: {error}"));
    }
    for public in ["0.0.0.0:8080", "203.0.113.7:443"] {
        let source = example.replace(listen_line, &format!("listen = \"{public}\""));
        let error = error_of(&source);
        assert_eq!(error.key(), "account[0].key_sha256", "{public}: {error}");
        let message = error.to_string();
        assert!(message.contains("account 100001 has a public demo key") && message.contains(public), "{message}");
    }
    let own = minimal().replace("listen = \"127.0.0.1:8080\"", "listen = \"0.0.0.0:8080\"");
    Config::from_toml_str(&own).expect("a key of its own loads on any listener");
}

#[test]
fn front_door_limits_parse_default_within_their_bounds_and_refuse_what_is_above() {
    // Shows the pre-welcome budget, per-address limits, hello frame bound and trusted proxies: defaults; unset ones lowered to connections_max / frame_bytes_max; set ones above them refused naming the key; a bad proxy range named by its position.
    let server = Config::from_toml_str(&minimal()).unwrap().server;
    assert_eq!(
        (server.pending_connections_max, server.connections_per_address_max, server.new_connections_per_address_per_second, server.hello_frame_bytes_max),
        (1024, 256, 64, 4096)
    );
    assert!(server.trusted_proxies.is_empty());
    let with = |extra: &str| minimal().replace("journal_dir = \"./data/journal\"\n", &format!("journal_dir = \"./j\"\n{extra}\n"));
    let small = Config::from_toml_str(&with("connections_max = 100\nframe_bytes_max = 2048")).unwrap().server;
    assert_eq!((small.pending_connections_max, small.connections_per_address_max, small.hello_frame_bytes_max), (100, 100, 2048));
    assert_eq!(server.pending_connections_per_address_max, 32);
    let tiny = Config::from_toml_str(&with("pending_connections_max = 8")).unwrap().server;
    assert_eq!(tiny.pending_connections_per_address_max, 8, "lowered to pending_connections_max");
    let error = error_of(&with("pending_connections_max = 8\npending_connections_per_address_max = 9"));
    assert_eq!(error.key(), "server.pending_connections_per_address_max", "{error}");
    let set = Config::from_toml_str(&with(
        "pending_connections_max = 10\nconnections_per_address_max = 3\nnew_connections_per_address_per_second = 2\nhello_frame_bytes_max = 1024\ntrusted_proxies = [\"127.0.0.1\", \"::1\", \"10.0.0.0/8\"]",
    ))
    .unwrap()
    .server;
    assert_eq!((set.pending_connections_max, set.connections_per_address_max, set.new_connections_per_address_per_second, set.hello_frame_bytes_max), (10, 3, 2, 1024));
    let proxies: Vec<String> = set.trusted_proxies.iter().map(ToString::to_string).collect();
    assert_eq!(proxies, ["127.0.0.1/32", "::1/128", "10.0.0.0/8"]);
    for (extra, key, says) in [
        ("connections_max = 100\npending_connections_max = 101", "server.pending_connections_max", "above connections_max = 100"),
        ("connections_max = 100\nconnections_per_address_max = 200", "server.connections_per_address_max", "above connections_max = 100"),
        ("frame_bytes_max = 2048\nhello_frame_bytes_max = 4096", "server.hello_frame_bytes_max", "above frame_bytes_max = 2048"),
        ("hello_frame_bytes_max = 100", "server.hello_frame_bytes_max", "100"),
        ("new_connections_per_address_per_second = 0", "server.new_connections_per_address_per_second", "0"),
        ("trusted_proxies = [\"127.0.0.1\", \"10.0.0.1/8\"]", "server.trusted_proxies[1]", "host bits set"),
    ] {
        let error = error_of(&with(extra));
        assert_eq!(error.key(), key, "{extra}: {error}");
        assert!(error.to_string().contains(says), "{extra}: {error}");
    }
}

#[test]
fn allow_from_parses_ranges_and_names_a_bad_one_by_account_and_position() {
    // Shows an account's allow_from takes IPv4 and IPv6 addresses and ranges (empty when absent), and a bad entry is refused naming account[N].allow_from[i] and the expected form.
    let source = minimal().replace("role = \"slave\"\n", "role = \"slave\"\nallow_from = [\"203.0.113.0/24\", \"2001:db8::1\"]\n");
    let config = Config::from_toml_str(&source).unwrap();
    let ranges: Vec<String> = config.accounts[1].allow_from.iter().map(ToString::to_string).collect();
    assert_eq!(ranges, ["203.0.113.0/24", "2001:db8::1/128"]);
    assert!(config.accounts[0].allow_from.is_empty());
    let bad = minimal().replace("role = \"slave\"\n", "role = \"slave\"\nallow_from = [\"203.0.113.0/24\", \"office\"]\n");
    let error = error_of(&bad);
    assert_eq!(error.key(), "account[1].allow_from[1]", "{error}");
    assert!(error.to_string().contains("\"office\" is not an address"), "{error}");
}

#[test]
fn key_dates_parse_and_the_key_expires_at_the_earlier_of_its_age_and_its_date() {
    // Shows key_created / key_expires parse as UTC instants, key_max_age_days defaults to 30 (0 = no age limit), the expiry is the earlier of created + age and key_expires (either alone when only one applies), and a date without an offset is refused naming account[N].key_created.
    let dated = |lines: &str, server: &str| {
        let source = minimal()
            .replace("role = \"slave\"\n", &format!("role = \"slave\"\n{lines}\n"))
            .replace("journal_dir = \"./data/journal\"\n", &format!("journal_dir = \"./j\"\n{server}\n"));
        Config::from_toml_str(&source)
    };
    let day = super::DAY_MS;
    let created = 1_796_702_400_000; // 2026-12-08T04:00:00Z
    let config = dated("key_created = 2026-12-08T04:00:00Z", "").unwrap();
    assert_eq!(config.server.key_max_age_days, 30);
    let account = &config.accounts[1];
    assert_eq!((account.key_created_ms, account.key_expires_ms), (Some(created), None));
    assert_eq!(account.key_expiry_ms(30), Some(created + 30 * day));
    assert_eq!(account.key_expiry_ms(0), None, "0: no age limit");
    let both = dated("key_created = 2026-12-08T04:00:00Z\nkey_expires = 2026-12-10T04:00:00Z", "").unwrap();
    assert_eq!(both.accounts[1].key_expiry_ms(30), Some(created + 2 * day), "the earlier of the two");
    assert_eq!(both.accounts[1].key_expiry_ms(1), Some(created + day));
    assert_eq!(both.accounts[1].key_expiry_ms(0), Some(created + 2 * day));
    assert_eq!(config.accounts[0].key_expiry_ms(30), None, "no dates: never");
    assert_eq!(dated("", "key_max_age_days = 0").unwrap().server.key_max_age_days, 0);
    let error = dated("key_created = 2026-12-08T04:00:00", "").unwrap_err();
    assert_eq!(error.key(), "account[1].key_created", "{error}");
    assert!(error.to_string().contains("expected a date-time with an offset"), "{error}");
    assert_eq!(dated("", "key_max_age_days = 3651").unwrap_err().key(), "server.key_max_age_days");
}
