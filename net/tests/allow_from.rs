//! An account's `allow_from` on real sockets: a `hello` with the right key
//! from an address outside the list is refused with 4001 and audited; from
//! an address in it, welcomed.

mod support;

use std::time::{Duration, Instant};

use support::{hello_text, sha256_hex, temp_directory, Bridge};
use tradebridge_core::protocol::{ErrorCode, Message};

const KEY: &str = "allow-from-test-key-0123456789abcdef";

#[test]
fn a_hello_from_outside_allow_from_is_refused_with_4001_and_audited() {
    // Shows: the master's list holds 127.0.0.2 only: from 127.0.0.1 its right key is refused (error unauthorized, close 4001) and an audit line names the reason and the address; from 127.0.0.2 it is welcomed.
    let directory = temp_directory("allow-from");
    let hash = sha256_hex(KEY);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"{}\"\n\n[[account]]\nlogin = 500001\nserver = \"S\"\nrole = \"master\"\nkey_sha256 = \"{hash}\"\nallow_from = [\"127.0.0.2\", \"2001:db8::/32\"]\n",
        directory.join("journal").display()
    );
    let config_path = directory.join("tradebridge.toml");
    std::fs::write(&config_path, config).expect("write config");
    let bridge = Bridge::start_with_config_file(directory, config_path);

    let mut outside = bridge.connect();
    outside.send(&hello_text(KEY, 500001, "S", "master", 0));
    outside.expect_error(ErrorCode::Unauthorized);
    outside.expect_close(4001);

    let mut inside = bridge.connect_from([127, 0, 0, 2]);
    inside.send(&hello_text(KEY, 500001, "S", "master", 0));
    assert!(matches!(inside.recv(), Message::Welcome(_)), "welcomed from an address in allow_from");

    let audit = bridge.journal_directory().join("audit.jsonl");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&audit).unwrap_or_default();
        if text.contains("allow_from") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = text.lines().find(|line| line.contains("allow_from")).unwrap_or_else(|| panic!("no audit line for the refusal: {text:?}"));
    assert!(line.contains("authentication failed") && line.contains("127.0.0.1") && line.contains("500001"), "{line}");
    assert!(!line.contains(KEY), "the key is never in the audit: {line}");
}
