//! Key lifetime on real sockets: a key within 7 days of its expiry is
//! welcomed with a `notice` naming the date, an expired one is refused
//! (4001) with a message that says so, and the metrics count both.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use support::{hello_text, http_get, metric, sha256_hex, temp_directory, Bridge, SERVER_NAME};
use tradebridge_core::config::rfc3339_of_ms;
use tradebridge_core::protocol::{ErrorCode, Message};

const DAY_MS: u64 = 86_400_000;

#[test]
fn a_key_near_its_expiry_is_welcomed_with_a_notice_and_an_expired_one_refused() {
    // Shows: with key_max_age_days = 30, a key made 25 days ago gets welcome with a notice naming its expiry; one whose key_expires passed yesterday, and one made 31 days ago, are refused with 4001 and "expired"; one with no dates gets no notice; tradebridge_keys_expiring and tradebridge_keys_expired count them.
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64;
    let now_s = now_ms - now_ms % 1_000;
    let directory = temp_directory("key-lifetime");
    let account = |login: u64, dates: &str| {
        let hash = sha256_hex(&format!("key-lifetime-key-{login}-0123456789"));
        format!("\n[[account]]\nlogin = {login}\nserver = \"{SERVER_NAME}\"\nrole = \"master\"\nkey_sha256 = \"{hash}\"\n{dates}\n")
    };
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\njournal_dir = \"{}\"\nmetrics_listen = \"127.0.0.1:0\"\nkey_max_age_days = 30\n{}{}{}",
        directory.join("journal").display(),
        account(600001, &format!("key_created = {}", rfc3339_of_ms(now_s - 25 * DAY_MS))),
        account(600002, &format!("key_expires = {}", rfc3339_of_ms(now_s - DAY_MS))),
        account(600003, ""),
    ) + &account(600004, &format!("key_created = {}", rfc3339_of_ms(now_s - 31 * DAY_MS)));
    let config_path = directory.join("tradebridge.toml");
    std::fs::write(&config_path, config).expect("write config");
    let mut bridge = Bridge::start_with_config_file(directory, config_path);
    let metrics_address = bridge.read_metrics_address();
    let key = |login: u64| format!("key-lifetime-key-{login}-0123456789");

    let (_near, welcome) = bridge.login_as(600001, &key(600001), "master", 0);
    let Message::Welcome(welcome) = welcome else { unreachable!() };
    let expiry = rfc3339_of_ms(now_s + 5 * DAY_MS);
    let notice = welcome.notice.expect("a notice in the last 7 days");
    assert!(notice.contains(&expiry) && notice.contains("key expires"), "{notice}");

    let mut expired = bridge.connect();
    expired.send(&hello_text(&key(600002), 600002, SERVER_NAME, "master", 0));
    let message = expired.expect_error(ErrorCode::Unauthorized);
    assert!(message.contains("expired"), "{message}");
    expired.expect_close(4001);

    let mut aged = bridge.connect();
    aged.send(&hello_text(&key(600004), 600004, SERVER_NAME, "master", 0));
    assert!(aged.expect_error(ErrorCode::Unauthorized).contains("expired"), "31 days after key_created, with key_max_age_days 30");
    aged.expect_close(4001);

    let (_fresh, welcome) = bridge.login_as(600003, &key(600003), "master", 0);
    assert!(matches!(welcome, Message::Welcome(ref welcome) if welcome.notice.is_none()), "{welcome:?}");

    let metrics = http_get(&metrics_address, "/metrics");
    assert_eq!((metric(&metrics, "tradebridge_keys_expiring"), metric(&metrics, "tradebridge_keys_expired")), (1.0, 2.0), "{metrics}");
    assert_eq!(metric(&metrics, "tradebridge_auth_failures_total{reason=\"key_expired\"}"), 2.0, "{metrics}");
}
