//! Tests of the codec as a whole: PROTOCOL.md's examples, the table of
//! required and optional fields, field-named errors, malformed JSON, limits,
//! and round trips of arbitrary messages.

use super::json::{KeyBuffer, Reader};
use super::*;

// PROTOCOL.md's example frames, verbatim (line breaks and indentation as in
// the document; they are JSON whitespace).
const HELLO: &str = r#"{"t":"hello","v":1,"key":"<api key>","login":1234567,"role":"master",
     "platform":"mt5","server":"Broker-Live","ea":"TradeCopy_Monitor/1.0",
     "last_seq":0}"#;
const WELCOME: &str = r#"{"t":"welcome","v":1,"session":"<id>","hb_ms":5000,"ack_seq":41}"#;
const PING: &str = r#"{"t":"ping"}"#;
const PONG: &str = r#"{"t":"pong"}"#;
const EVENT: &str = r#"{"t":"event","seq":42,"kind":"open","pos":9001,"ticket":9001,
     "symbol":"EURUSD","side":"buy","volume":0.10,"price":1.08123,
     "sl":1.07900,"tp":1.08600,"magic":0,"comment":"","time_ms":1732400000123}"#;
const ACK: &str = r#"{"t":"ack","seq":42}"#;
const SNAPSHOT: &str = r#"{"t":"snapshot","positions":[{"pos":9001,"symbol":"EURUSD","side":"buy",
     "volume":0.10,"price":1.08123,"sl":1.079,"tp":1.086,"magic":0}],
     "balance":10000.0,"equity":10012.5,"currency":"USD"}"#;
const COPY: &str = r#"{"t":"copy","seq":77,"id":"<copy id>","master":1234567,"pos":9001,
     "action":"open","symbol":"EURUSD.m","side":"buy","volume":0.20,
     "price":1.08123,"max_dev":0.0003,"sl":1.079,"tp":1.086,"magic":0,
     "comment":"tc:1234567:9001","expires_ms":1732400005123}"#;
const RESULT: &str = r#"{"t":"result","seq":77,"status":"filled","ticket":55501,"price":1.08125,
     "volume":0.20,"error":0,"msg":"","exec_ms":38}"#;
const STATE: &str = r#"{"t":"state","balance":5000.0,"equity":4990.0,"currency":"USD",
     "positions":[{"pos":55501,"symbol":"EURUSD.m","side":"buy","volume":0.2,
     "comment":"tc:1234567:9001"}],
     "symbols":[{"name":"EURUSD.m","min":0.01,"max":100.0,"step":0.01,
     "digits":5,"contract":100000.0}]}"#;
const ERROR: &str = r#"{"t":"error","code":"bad_message","msg":"missing field `seq`"}"#;

// Frames PROTOCOL.md describes without a full example.
const SYMBOLS: &str =
    r#"{"t":"symbols","symbols":[{"name":"EURUSD.m","min":0.01,"max":100.0,"step":0.01}]}"#;
const EVENT_CLOSE: &str = r#"{"t":"event","seq":43,"kind":"close","pos":9001,"ticket":9002,"volume":0.05,"remaining":0.05}"#;
const EVENT_PENDING: &str = r#"{"t":"event","seq":44,"kind":"pending","pos":9003,"symbol":"GBPUSD","side":"buy_limit","volume":1,"price":1.25}"#;
const EVENT_MODIFY: &str = r#"{"t":"event","seq":45,"kind":"modify","pos":9001,"sl":0,"tp":1.1}"#;
const EVENT_CANCEL: &str = r#"{"t":"event","seq":46,"kind":"cancel","pos":9003}"#;

const ALL_FRAMES: &[&str] = &[
    HELLO,
    WELCOME,
    PING,
    PONG,
    EVENT,
    ACK,
    SNAPSHOT,
    COPY,
    RESULT,
    STATE,
    ERROR,
    SYMBOLS,
    EVENT_CLOSE,
    EVENT_PENDING,
    EVENT_MODIFY,
    EVENT_CANCEL,
];

fn parse_text(frame: &str) -> Result<Message, ProtocolError> {
    parse(frame.as_bytes())
}

fn written(message: &Message) -> String {
    let mut out = Vec::new();
    write(message, &mut out);
    String::from_utf8(out).expect("write produces UTF-8")
}

/// The top-level members of a frame as (key, raw JSON value) pairs.
fn members(frame: &str) -> Vec<(String, String)> {
    let mut reader = Reader::new(frame);
    reader.begin_object().unwrap();
    let (mut first, mut scratch, mut found) = (true, KeyBuffer::new(), Vec::new());
    while let Some(key) = reader.next_key(&mut first, &mut scratch).unwrap() {
        let key = key.to_owned();
        let start = reader.offset();
        reader.skip_value().unwrap();
        found.push((key, frame[start..reader.offset()].to_owned()));
    }
    found
}

fn frame_of(members: &[(String, String)]) -> String {
    let body: Vec<String> = members
        .iter()
        .map(|(key, value)| format!("\"{key}\":{value}"))
        .collect();
    format!("{{{}}}", body.join(","))
}

/// `frame` without its top-level member `key`.
fn without(frame: &str, key: &str) -> String {
    let kept: Vec<_> = members(frame)
        .into_iter()
        .filter(|(name, _)| name != key)
        .collect();
    frame_of(&kept)
}

/// `frame` with the value of its top-level member `key` replaced (or added).
fn with_value(frame: &str, key: &str, value: &str) -> String {
    let mut all = members(frame);
    match all.iter_mut().find(|(name, _)| name == key) {
        Some(member) => member.1 = value.to_owned(),
        None => all.push((key.to_owned(), value.to_owned())),
    }
    frame_of(&all)
}

fn assert_missing(frame: &str, field: &str) {
    let error = parse_text(frame).expect_err(frame);
    assert_eq!(
        error.to_string(),
        format!("missing field `{field}`"),
        "{frame}"
    );
    assert_eq!(error.code(), ErrorCode::BadMessage);
}

fn assert_invalid(frame: &str, field: &str) -> ProtocolError {
    let error = parse_text(frame).expect_err(frame);
    assert!(
        matches!(error, ProtocolError::InvalidField { field: path, .. } if path.to_string() == format!("`{field}`")),
        "{frame}: {error}"
    );
    assert_eq!(error.code(), ErrorCode::BadMessage);
    error
}

// Each PROTOCOL.md example frame parses, verbatim, to the struct it describes.
#[test]
fn protocol_examples_parse_to_expected_structs() {
    let hello = Hello {
        version: 1,
        key: "<api key>".into(),
        login: 1_234_567,
        role: Role::Master,
        platform: "mt5".into(),
        server: "Broker-Live".into(),
        ea: "TradeCopy_Monitor/1.0".into(),
        last_seq: 0,
    };
    assert_eq!(parse_text(HELLO), Ok(Message::Hello(hello)));
    let welcome = Welcome {
        version: 1,
        session: "<id>".into(),
        hb_ms: 5000,
        ack_seq: 41,
        notice: None,
    };
    assert_eq!(parse_text(WELCOME), Ok(Message::Welcome(welcome.clone())));
    // The bridge's optional `notice` (not in PROTOCOL.md v1) round-trips,
    // and is absent from the text when there is none.
    let noticed = Welcome { notice: Some("the key expires 2026-12-14T00:00:00Z".into()), ..welcome.clone() };
    let written = |message: &Message| {
        let mut out = Vec::new();
        write(message, &mut out);
        String::from_utf8(out).unwrap()
    };
    let text = written(&Message::Welcome(noticed.clone()));
    assert!(text.contains(r#""notice":"the key expires 2026-12-14T00:00:00Z""#), "{text}");
    assert_eq!(parse_text(&text), Ok(Message::Welcome(noticed)));
    assert!(!written(&Message::Welcome(welcome)).contains("notice"));
    assert_eq!(parse_text(PING), Ok(Message::Ping));
    assert_eq!(parse_text(PONG), Ok(Message::Pong));
    assert_eq!(parse_text(EVENT), Ok(Message::Event(example_event())));
    assert_eq!(parse_text(ACK), Ok(Message::Ack(Ack { seq: 42 })));
    let error = ErrorMessage {
        code: ErrorCode::BadMessage,
        msg: "missing field `seq`".into(),
    };
    assert_eq!(parse_text(ERROR), Ok(Message::Error(error)));
}

fn example_event() -> Event {
    Event {
        seq: 42,
        kind: EventKind::Open,
        pos: 9001,
        ticket: 9001,
        symbol: "EURUSD".into(),
        side: Some(Side::Buy),
        volume: 0.10,
        price: 1.08123,
        sl: 1.079,
        tp: 1.086,
        magic: 0,
        comment: String::new(),
        time_ms: 1_732_400_000_123,
        remaining: None,
    }
}

fn example_copy() -> Copy {
    Copy {
        seq: 77,
        id: "<copy id>".into(),
        master: 1_234_567,
        pos: 9001,
        action: CopyAction::Open,
        symbol: "EURUSD.m".into(),
        side: Side::Buy,
        volume: 0.20,
        price: 1.08123,
        max_dev: 0.0003,
        sl: 1.079,
        tp: 1.086,
        magic: 0,
        comment: "tc:1234567:9001".into(),
        expires_ms: 1_732_400_005_123,
    }
}

// The snapshot, copy, result and state examples parse to the structs they describe.
#[test]
fn protocol_examples_with_arrays_parse_to_expected_structs() {
    let snapshot = Snapshot {
        positions: vec![SnapshotPosition {
            pos: 9001,
            symbol: "EURUSD".into(),
            side: Side::Buy,
            volume: 0.10,
            price: 1.08123,
            sl: 1.079,
            tp: 1.086,
            magic: 0,
            comment: String::new(),
        }],
        balance: 10000.0,
        equity: 10012.5,
        currency: "USD".into(),
    };
    assert_eq!(parse_text(SNAPSHOT), Ok(Message::Snapshot(snapshot)));
    assert_eq!(parse_text(COPY), Ok(Message::Copy(example_copy())));
    let result = TradeResult {
        seq: 77,
        status: ResultStatus::Filled,
        ticket: 55501,
        price: 1.08125,
        volume: 0.20,
        error: 0,
        msg: String::new(),
        exec_ms: 38,
    };
    assert_eq!(parse_text(RESULT), Ok(Message::Result(result)));
    let spec = SymbolSpec {
        name: "EURUSD.m".into(),
        min: 0.01,
        max: 100.0,
        step: 0.01,
        digits: 5,
        contract: 100000.0,
    };
    let state = State {
        balance: 5000.0,
        equity: 4990.0,
        currency: "USD".into(),
        positions: vec![StatePosition {
            pos: 55501,
            symbol: "EURUSD.m".into(),
            side: Side::Buy,
            volume: 0.2,
            comment: "tc:1234567:9001".into(),
        }],
        symbols: Some(vec![spec.clone()]),
    };
    assert_eq!(parse_text(STATE), Ok(Message::State(state)));
    assert_eq!(
        parse_text(SYMBOLS),
        Ok(Message::Symbols(Symbols {
            symbols: vec![spec]
        }))
    );
}

// Every example of every message type survives write then parse unchanged, and re-encodes to the same bytes.
#[test]
fn every_message_type_round_trips() {
    let mut types_seen = std::collections::BTreeSet::new();
    for frame in ALL_FRAMES {
        let message = parse_text(frame).unwrap();
        types_seen.insert(message.type_name());
        let text = written(&message);
        assert_eq!(parse_text(&text).as_ref(), Ok(&message), "{text}");
        assert_eq!(written(&parse_text(&text).unwrap()), text);
    }
    assert_eq!(types_seen.len(), 12, "{types_seen:?}");
}

// The writer's output for the copy example is compact, `t` first, in PROTOCOL.md's field order.
#[test]
fn writes_copy_example_compactly() {
    assert_eq!(
        written(&Message::Copy(example_copy())),
        "{\"t\":\"copy\",\"seq\":77,\"id\":\"<copy id>\",\"master\":1234567,\"pos\":9001,\
         \"action\":\"open\",\"symbol\":\"EURUSD.m\",\"side\":\"buy\",\"volume\":0.2,\
         \"price\":1.08123,\"max_dev\":0.0003,\"sl\":1.079,\"tp\":1.086,\"magic\":0,\
         \"comment\":\"tc:1234567:9001\",\"expires_ms\":1732400005123}"
    );
}

// Tickets and positions of u64::MAX and 2^53+1 (not representable as a double) survive exactly.
#[test]
fn large_u64_values_survive_exactly() {
    let frame = with_value(
        &with_value(EVENT, "ticket", "9007199254740993"),
        "pos",
        "18446744073709551615",
    );
    let Ok(Message::Event(event)) = parse_text(&frame) else {
        panic!("{frame}")
    };
    assert_eq!(event.ticket, 9_007_199_254_740_993);
    assert_eq!(event.pos, u64::MAX);
    let again = written(&Message::Event(event.clone()));
    assert!(again.contains("\"ticket\":9007199254740993"), "{again}");
    assert!(again.contains("\"pos\":18446744073709551615"), "{again}");
    assert_eq!(parse_text(&again), Ok(Message::Event(event)));
}

// Every required top-level field, when missing, gives `missing field `<name>``.
#[test]
fn every_missing_required_field_is_named() {
    let table: &[(&str, &[&str])] = &[
        (HELLO, &["t", "v", "key", "login", "role", "server"]),
        (WELCOME, &["v", "session", "hb_ms", "ack_seq"]),
        (
            EVENT,
            &["seq", "kind", "pos", "symbol", "side", "volume", "price"],
        ),
        (
            EVENT_PENDING,
            &["seq", "kind", "pos", "symbol", "side", "volume", "price"],
        ),
        (EVENT_CLOSE, &["seq", "kind", "pos", "volume"]),
        (EVENT_MODIFY, &["seq", "kind", "pos", "sl", "tp"]),
        (EVENT_CANCEL, &["seq", "kind", "pos"]),
        (ACK, &["seq"]),
        (SNAPSHOT, &["positions", "balance", "equity"]),
        (
            COPY,
            &[
                "seq", "id", "master", "pos", "action", "symbol", "side", "volume",
            ],
        ),
        (RESULT, &["seq", "status"]),
        (STATE, &["balance", "equity", "positions"]),
        (SYMBOLS, &["symbols"]),
        (ERROR, &["code", "msg"]),
    ];
    for (frame, required) in table {
        for field in *required {
            assert_missing(&without(frame, field), field);
        }
    }
}

// Required fields inside array elements, when missing, are named with their element.
#[test]
fn missing_fields_in_elements_are_named() {
    let snapshot = r#"{"t":"snapshot","balance":1,"equity":1,"positions":[{"pos":1,"symbol":"A","side":"buy","volume":1},ELEMENT]}"#;
    for field in ["pos", "symbol", "side", "volume"] {
        let element = without(r#"{"pos":1,"symbol":"A","side":"buy","volume":1}"#, field);
        let frame = snapshot.replace("ELEMENT", &element);
        assert_missing(&frame, &format!("positions[1].{field}"));
        let state = frame.replace("snapshot", "state");
        assert_missing(&state, &format!("positions[1].{field}"));
    }
    for field in ["name", "min", "max", "step"] {
        let element = without(r#"{"name":"A","min":0.01,"max":1,"step":0.01}"#, field);
        let frame = format!(r#"{{"t":"symbols","symbols":[{element}]}}"#);
        assert_missing(&frame, &format!("symbols[0].{field}"));
    }
}

// Optional fields of hello and event may be left out and take the defaults of PROTOCOL-NOTES.md.
#[test]
fn optional_fields_take_their_defaults() {
    let Ok(Message::Hello(hello)) = parse_text(&without(
        &without(&without(HELLO, "platform"), "ea"),
        "last_seq",
    )) else {
        panic!()
    };
    assert_eq!(
        (hello.platform.as_str(), hello.ea.as_str(), hello.last_seq),
        ("", "", 0)
    );
    let Ok(Message::Event(event)) = parse_text(EVENT_CANCEL) else {
        panic!()
    };
    assert_eq!(event.ticket, event.pos, "ticket defaults to pos");
    assert_eq!(
        (event.symbol.as_str(), event.side, event.volume, event.price),
        ("", None, 0.0, 0.0)
    );
    assert_eq!(
        (
            event.sl,
            event.tp,
            event.magic,
            event.comment.as_str(),
            event.time_ms
        ),
        (0.0, 0.0, 0, "", 0)
    );
    assert_eq!(event.remaining, None);
    let Ok(Message::Event(close)) = parse_text(EVENT_CLOSE) else {
        panic!()
    };
    assert_eq!(close.remaining, Some(0.05));
}

// Optional fields of copy, result, state and symbols may be left out and take their defaults.
#[test]
fn optional_fields_take_their_defaults_bridge_side() {
    let minimal_copy = r#"{"t":"copy","seq":1,"id":"c","master":2,"pos":3,"action":"close","symbol":"S","side":"sell","volume":1}"#;
    let Ok(Message::Copy(copy)) = parse_text(minimal_copy) else {
        panic!()
    };
    assert_eq!(
        (
            copy.price,
            copy.max_dev,
            copy.sl,
            copy.tp,
            copy.magic,
            copy.expires_ms
        ),
        (0.0, 0.0, 0.0, 0.0, 0, 0)
    );
    assert_eq!(copy.comment, "");
    let Ok(Message::Result(result)) = parse_text(r#"{"t":"result","seq":1,"status":"skipped"}"#)
    else {
        panic!()
    };
    assert_eq!(
        (
            result.ticket,
            result.price,
            result.volume,
            result.error,
            result.exec_ms
        ),
        (0, 0.0, 0.0, 0, 0)
    );
    let Ok(Message::State(state)) =
        parse_text(r#"{"t":"state","balance":1,"equity":2,"positions":[]}"#)
    else {
        panic!()
    };
    assert_eq!((state.currency.as_str(), state.symbols), ("", None));
    let Ok(Message::Symbols(symbols)) = parse_text(SYMBOLS) else {
        panic!()
    };
    assert_eq!(symbols.symbols[0].digits, SYMBOL_DIGITS_DEFAULT);
    assert_eq!(symbols.symbols[0].contract, SYMBOL_CONTRACT_DEFAULT);
}

// Every unsigned-integer field refuses strings, negatives, fractions, exponents, overflow and other types, naming itself.
#[test]
fn ill_typed_integer_fields_are_named() {
    let table: &[(&str, &[&str])] = &[
        (HELLO, &["v", "login", "last_seq"]),
        (WELCOME, &["v", "hb_ms", "ack_seq"]),
        (EVENT, &["seq", "pos", "ticket", "magic", "time_ms"]),
        (COPY, &["seq", "master", "pos", "magic", "expires_ms"]),
        (RESULT, &["seq", "ticket", "error", "exec_ms"]),
    ];
    let bad_values = [
        "\"abc\"",
        "\"42\"",
        "-1",
        "-0",
        "1.5",
        "1.0",
        "1e3",
        "18446744073709551616",
        "null",
        "true",
        "{}",
        "[1]",
    ];
    for (frame, fields) in table {
        for field in *fields {
            for value in bad_values {
                let error = assert_invalid(&with_value(frame, field, value), field);
                assert!(error.to_string().contains(value), "{error}");
            }
        }
    }
    let error = parse_text(&with_value(ACK, "seq", "\"abc\"")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "field `seq`: expected unsigned integer, got \"abc\""
    );
    for (frame, field) in [(HELLO, "v"), (RESULT, "error")] {
        let error = assert_invalid(&with_value(frame, field, "4294967296"), field);
        assert!(error.to_string().contains("up to 4294967295"), "{error}");
    }
    let digits = r#"{"t":"symbols","symbols":[{"name":"A","min":1,"max":1,"step":1,"digits":-5}]}"#;
    assert_invalid(digits, "symbols[0].digits");
}

// Number, string and enum fields refuse values of the wrong type or outside their domain, naming themselves.
#[test]
fn ill_typed_other_fields_are_named() {
    for (frame, field) in [
        (EVENT, "volume"),
        (EVENT, "price"),
        (EVENT, "sl"),
        (SNAPSHOT, "balance"),
        (COPY, "max_dev"),
    ] {
        for value in ["\"1.0\"", "null", "1e400", "-1e400", "[]", "true"] {
            assert_invalid(&with_value(frame, field, value), field);
        }
    }
    for (frame, field) in [
        (HELLO, "key"),
        (HELLO, "server"),
        (EVENT, "symbol"),
        (EVENT, "comment"),
        (COPY, "id"),
        (ERROR, "msg"),
    ] {
        for value in ["1", "null", "[\"a\"]", "{}"] {
            assert_invalid(&with_value(frame, field, value), field);
        }
    }
    let enums = [
        (HELLO, "role"),
        (EVENT, "kind"),
        (EVENT, "side"),
        (COPY, "action"),
        (RESULT, "status"),
        (ERROR, "code"),
    ];
    for (frame, field) in enums {
        for value in [
            "\"BUY\"",
            "\"\"",
            "\"unknown\"",
            "\"a_value_longer_than_any_key\"",
            "1",
            "null",
        ] {
            let error = assert_invalid(&with_value(frame, field, value), field);
            assert!(
                error.to_string().contains("one of") || error.to_string().contains("or"),
                "{error}"
            );
        }
    }
    for value in ["-0.01", "-1"] {
        assert_invalid(&with_value(EVENT, "price", value), "price");
        assert_invalid(&with_value(COPY, "tp", value), "tp");
        assert_invalid(&with_value(RESULT, "volume", value), "volume");
    }
}

// Values that are well-typed but wrong for the message (side for the kind, zero volumes, bad lot limits) are refused by name.
#[test]
fn semantic_checks_name_the_field() {
    for side in ["\"buy_limit\"", "\"sell_stop\""] {
        let error = assert_invalid(&with_value(EVENT, "side", side), "side");
        assert!(error.to_string().contains("\"buy\" or \"sell\""), "{error}");
        assert_invalid(&with_value(COPY, "side", side), "side");
    }
    for side in ["\"buy\"", "\"sell\""] {
        assert_invalid(&with_value(EVENT_PENDING, "side", side), "side");
    }
    for volume in ["0", "-0.0", "-0.1"] {
        for frame in [EVENT, EVENT_PENDING, EVENT_CLOSE, COPY] {
            let error = assert_invalid(&with_value(frame, "volume", volume), "volume");
            assert!(error.to_string().contains("> 0"), "{error}");
        }
    }
    let error = parse_text(&with_value(EVENT, "volume", "0")).unwrap_err();
    assert_eq!(
        error.to_string(),
        "field `volume`: expected finite number > 0, got 0.0"
    );
    assert!(parse_text(&with_value(EVENT_MODIFY, "volume", "0")).is_ok());
    assert_invalid(&with_value(EVENT_MODIFY, "volume", "-1"), "volume");
    assert!(parse_text(&with_value(
        &with_value(COPY, "action", "\"modify\""),
        "volume",
        "0"
    ))
    .is_ok());
    let spec = |min: &str, max: &str, step: &str| {
        format!(
            r#"{{"t":"symbols","symbols":[{{"name":"A","min":{min},"max":{max},"step":{step}}}]}}"#
        )
    };
    assert_invalid(&spec("0", "1", "0.01"), "symbols[0].min");
    assert_invalid(&spec("-1", "1", "0.01"), "symbols[0].min");
    assert_invalid(&spec("0.01", "1", "0"), "symbols[0].step");
    assert_invalid(&spec("1", "0.5", "0.01"), "symbols[0].max");
    assert!(parse_text(&spec("1", "1", "1")).is_ok());
    let zero_position = SNAPSHOT.replace("\"volume\":0.10", "\"volume\":0");
    assert_invalid(&zero_position, "positions[0].volume");
}

// Unknown fields, including nested objects and arrays and fields of other message types, are ignored.
#[test]
fn unknown_fields_are_ignored() {
    let noise =
        r#"{"a":[1,{"b":[[],{}],"c":"\u00e9\"}"}],"d":{"e":{"f":null}},"g":-1.5e-300,"h":true}"#;
    for frame in ALL_FRAMES {
        let expected = parse_text(frame).unwrap();
        let noisy = with_value(frame, "zz_future", noise);
        assert_eq!(parse_text(&noisy).as_ref(), Ok(&expected), "{noisy}");
        let other_type = with_value(frame, "session", "[1,2]");
        if !frame.contains("\"welcome\"") {
            assert_eq!(
                parse_text(&other_type).as_ref(),
                Ok(&expected),
                "{other_type}"
            );
        }
    }
    let nested = SNAPSHOT.replace(
        "\"magic\":0}",
        "\"magic\":0,\"t\":\"x\",\"extra\":{\"k\":[1]}}",
    );
    assert_eq!(parse_text(&nested), parse_text(SNAPSHOT));
}

// `t` may come anywhere in the object; keys may use escapes; the result is the same.
#[test]
fn type_anywhere_and_escaped_keys() {
    for frame in ALL_FRAMES {
        let mut all = members(frame);
        let type_member = all.remove(0);
        all.push(type_member);
        assert_eq!(parse_text(&frame_of(&all)), parse_text(frame));
    }
    assert_eq!(
        parse_text(r#"{"\u0074":"ack","s\u0065q":5}"#),
        Ok(Message::Ack(Ack { seq: 5 }))
    );
    assert_eq!(
        parse_text(" \r\n\t{ \"seq\" : 5 , \"t\" : \"ack\" } \n"),
        Ok(Message::Ack(Ack { seq: 5 }))
    );
}

// A missing, ill-typed or unknown `t` gives the right code and names `t`.
#[test]
fn type_errors() {
    for frame in ["{}", r#"{"seq":1}"#, r#"{"T":"ack","seq":1}"#] {
        assert_missing(frame, "t");
    }
    for frame in [r#"{"t":1}"#, r#"{"t":null}"#, r#"{"seq":1,"t":["ack"]}"#] {
        assert_invalid(frame, "t");
    }
    for frame in [
        r#"{"t":"fill"}"#,
        r#"{"t":"Ping"}"#,
        r#"{"t":""}"#,
        r#"{"seq":1,"t":"a_type_longer_than_any_we_know"}"#,
    ] {
        let error = parse_text(frame).unwrap_err();
        assert_eq!(error.code(), ErrorCode::UnknownType, "{frame}");
        assert!(
            error
                .to_string()
                .starts_with("field `t`: unknown message type"),
            "{error}"
        );
    }
}

// A field met twice is an error (including `t`); duplicates of keys the type does not use are ignored.
#[test]
fn duplicate_keys() {
    let cases = [
        (r#"{"t":"ack","seq":1,"seq":2}"#, "seq"),
        (r#"{"t":"ack","t":"ack","seq":1}"#, "t"),
        (r#"{"seq":1,"t":"ack","t":"ack"}"#, "t"),
        (r#"{"t":"ack","seq":1,"s\u0065q":1}"#, "seq"),
        (
            r#"{"t":"snapshot","balance":1,"equity":1,"positions":[{"pos":1,"pos":1,"symbol":"A","side":"buy","volume":1}]}"#,
            "positions[0].pos",
        ),
    ];
    for (frame, field) in cases {
        let error = parse_text(frame).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("duplicate field `{field}`"),
            "{frame}"
        );
    }
    assert_eq!(
        parse_text(r#"{"t":"ack","x":1,"x":2,"price":1,"price":2,"seq":3}"#),
        Ok(Message::Ack(Ack { seq: 3 }))
    );
}

// Malformed JSON of every kind is an error with code bad_message, never a panic.
#[test]
fn malformed_json_is_refused() {
    let cases = [
        "",
        " ",
        "[]",
        "\"ack\"",
        "null",
        "{",
        r#"{"t":"ack","seq":1"#,
        r#"{"t":"ack","seq":1,}"#,
        r#"{"t":"ack","seq":1} x"#,
        r#"{"t":"ack","seq":1}{}"#,
        r#"{"t":"ack","seq":1},"#,
        r#"{"t":"ack" "seq":1}"#,
        r#"{"t":"ack","seq"1}"#,
        r#"{"t":"ack",seq:1}"#,
        r#"{'t':'ack'}"#,
        r#"{"t":"ack","seq":042}"#,
        r#"{"t":"ack","seq":+1}"#,
        r#"{"t":"ack","seq":0x1}"#,
        r#"{"t":"event","seq":1,"kind":"close","pos":1,"volume":.5}"#,
        r#"{"t":"event","seq":1,"kind":"close","pos":1,"volume":5.}"#,
        r#"{"t":"event","seq":1,"kind":"close","pos":1,"volume":NaN}"#,
        r#"{"t":"event","seq":1,"kind":"close","pos":1,"volume":Infinity}"#,
        r#"{"t":"event","seq":1,"kind":"close","pos":1,"volume":-Infinity}"#,
        r#"{"t":"event","seq":1,"kind":"close","pos":1,"volume":1e}"#,
        r#"{"t":"error","code":"internal","msg":"\x"}"#,
        r#"{"t":"error","code":"internal","msg":"\u12"}"#,
        r#"{"t":"error","code":"internal","msg":"\ud800"}"#,
        r#"{"t":"error","code":"internal","msg":"\udc00\ud800"}"#,
        "{\"t\":\"error\",\"code\":\"internal\",\"msg\":\"tab\there\"}",
        r#"{"t":"ping","x":tru}"#,
        r#"{"t":"ping","x":[1,]}"#,
        r#"{"t":"ping","x":[1 2]}"#,
        "\u{feff}{\"t\":\"ping\"}",
    ];
    for frame in cases {
        let error = parse_text(frame).expect_err(frame);
        assert_eq!(error.code(), ErrorCode::BadMessage, "{frame}");
        assert!(!error.to_string().is_empty());
    }
    let error = parse_text(r#"{"t":"ack","seq":1} x"#).unwrap_err();
    assert_eq!(
        error.to_string(),
        "malformed JSON at byte 20: expected end of frame after the object, got 'x'"
    );
}

// Every proper prefix of every example (a truncated frame) is refused.
#[test]
fn truncated_frames_are_refused() {
    for frame in ALL_FRAMES {
        for end in 0..frame.len() {
            if let Some(prefix) = frame.get(..end) {
                assert!(parse_text(prefix).is_err(), "{prefix}");
            }
        }
    }
}

// Frames that are not UTF-8 are refused with the offset of the first bad byte.
#[test]
fn invalid_utf8_is_refused() {
    let cases: &[&[u8]] = &[
        b"{\"t\":\"ping\",\"x\":\"\xff\"}",
        b"{\"t\":\"ping\",\"x\":\"\xc0\xaf\"}",
        b"{\"t\":\"ping\",\"x\":\"\xed\xa0\x80\"}",
        b"{\"t\":\"ping\",\"x\":\"\xe2\x82\"}",
    ];
    for frame in cases {
        assert_eq!(parse(frame), Err(ProtocolError::InvalidUtf8 { offset: 17 }));
    }
}

// Nesting is bounded by DEPTH_MAX; within it, deep unknown fields are skipped.
#[test]
fn nesting_depth_is_bounded() {
    let depth = DEPTH_MAX as usize - 1;
    let within = format!(
        r#"{{"t":"ping","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(parse_text(&within), Ok(Message::Ping));
    let beyond = format!(
        r#"{{"t":"ping","x":{}{}}}"#,
        "[".repeat(depth + 1),
        "]".repeat(depth + 1)
    );
    assert!(matches!(
        parse_text(&beyond),
        Err(ProtocolError::TooDeep {
            depth_max: DEPTH_MAX,
            ..
        })
    ));
    let hostile = format!(r#"{{"t":"ping","x":{}"#, "{\"a\":[".repeat(50_000));
    assert!(matches!(
        parse_text(&hostile),
        Err(ProtocolError::TooDeep { .. })
    ));
}

// Arrays of positions and symbols are bounded; the bound itself is accepted.
#[test]
fn array_lengths_are_bounded() {
    let position = r#"{"pos":1,"symbol":"A","side":"buy","volume":1}"#;
    let frame = |count: u32| {
        let elements = vec![position; count as usize].join(",");
        format!(r#"{{"t":"snapshot","balance":1,"equity":1,"positions":[{elements}]}}"#)
    };
    let Ok(Message::Snapshot(snapshot)) = parse_text(&frame(POSITIONS_MAX)) else {
        panic!()
    };
    assert_eq!(snapshot.positions.len(), POSITIONS_MAX as usize);
    let error = parse_text(&frame(POSITIONS_MAX + 1)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("field `positions`: expected at most {POSITIONS_MAX} elements")
    );
    let symbol = r#"{"name":"A","min":1,"max":1,"step":1}"#;
    let symbols = vec![symbol; SYMBOLS_MAX as usize + 1].join(",");
    let error = parse_text(&format!(r#"{{"t":"symbols","symbols":[{symbols}]}}"#)).unwrap_err();
    assert!(matches!(
        error,
        ProtocolError::TooManyElements {
            elements_max: SYMBOLS_MAX,
            ..
        }
    ));
    assert_invalid(r#"{"t":"symbols","symbols":[1]}"#, "symbols[0]");
    assert_invalid(r#"{"t":"symbols","symbols":{}}"#, "symbols");
}

// A frame above FRAME_BYTES_MAX is refused as too large before it is read.
#[test]
fn oversized_frames_are_refused() {
    let mut frame = b"{\"t\":\"ping\"}".to_vec();
    frame.resize(FRAME_BYTES_MAX as usize + 1, b' ');
    let error = parse(&frame).unwrap_err();
    assert_eq!(error.code(), ErrorCode::TooLarge);
    frame.truncate(FRAME_BYTES_MAX as usize);
    assert_eq!(parse(&frame), Ok(Message::Ping));
}

// Error excerpts of hostile values stay bounded.
#[test]
fn error_excerpts_are_bounded() {
    let long = format!("\"{}\"", "x".repeat(10_000));
    let error = parse_text(&with_value(ACK, "seq", &long)).unwrap_err();
    assert!(error.to_string().len() < 100, "{error}");
    assert!(error.to_string().ends_with('…'));
}

mod properties {
    //! Round trips of arbitrary valid messages, and agreement with serde_json.

    use super::super::*;
    use proptest::prelude::*;
    use proptest::strategy::Union;

    /// Strings with arbitrary unicode, and more often the characters that need escaping.
    fn text() -> impl Strategy<Value = String> {
        let special = prop::sample::select(vec![
            '"', '\\', '/', '\u{0}', '\n', '\u{1f}', '\u{7f}', '\u{2028}', '\u{ffff}', '😀', 'é',
        ]);
        let control = (0u32..0x20).prop_map(|code| char::from_u32(code).unwrap());
        let character = prop_oneof![4 => any::<char>(), 2 => special, 1 => control, 3 => prop::char::range('a', 'z')];
        prop::collection::vec(character, 0..12)
            .prop_map(|characters| characters.into_iter().collect())
    }

    fn wire_u64() -> impl Strategy<Value = u64> {
        prop_oneof![4 => any::<u64>(), 1 => Just(u64::MAX), 1 => Just((1 << 53) + 1), 1 => Just(0), 2 => 0u64..100_000]
    }

    fn finite() -> impl Strategy<Value = f64> {
        use prop::num::f64::*;
        prop_oneof![
            POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO,
            (0u64..10_000_000_000).prop_map(|n| n as f64 / 100_000.0)
        ]
    }

    fn non_negative() -> impl Strategy<Value = f64> {
        use prop::num::f64::*;
        prop_oneof![
            POSITIVE | NORMAL | SUBNORMAL | ZERO,
            (0u64..10_000_000_000).prop_map(|n| n as f64 / 100_000.0)
        ]
    }

    fn positive() -> impl Strategy<Value = f64> {
        use prop::num::f64::*;
        prop_oneof![
            POSITIVE | NORMAL | SUBNORMAL,
            (1u64..10_000_000).prop_map(|n| n as f64 / 100.0)
        ]
    }

    fn side() -> impl Strategy<Value = Side> {
        prop::sample::select(vec![
            Side::Buy,
            Side::Sell,
            Side::BuyLimit,
            Side::SellLimit,
            Side::BuyStop,
            Side::SellStop,
        ])
    }

    fn market_side() -> impl Strategy<Value = Side> {
        prop::sample::select(vec![Side::Buy, Side::Sell])
    }

    fn pending_side() -> impl Strategy<Value = Side> {
        prop::sample::select(vec![
            Side::BuyLimit,
            Side::SellLimit,
            Side::BuyStop,
            Side::SellStop,
        ])
    }

    /// The side a message of this kind may carry: market for opens, pending types for pending orders, any otherwise.
    fn side_for(kind: EventKind) -> BoxedStrategy<Side> {
        match kind {
            EventKind::Open => market_side().boxed(),
            EventKind::Pending => pending_side().boxed(),
            _ => side().boxed(),
        }
    }

    fn event() -> impl Strategy<Value = Event> {
        let kind = prop::sample::select(vec![
            EventKind::Open,
            EventKind::Modify,
            EventKind::Close,
            EventKind::Pending,
            EventKind::Cancel,
        ]);
        kind.prop_flat_map(|kind| {
            let opens_or_closes = matches!(
                kind,
                EventKind::Open | EventKind::Pending | EventKind::Close
            );
            let volume = if opens_or_closes {
                positive().boxed()
            } else {
                non_negative().boxed()
            };
            let side = if matches!(kind, EventKind::Open | EventKind::Pending) {
                side_for(kind).prop_map(Some).boxed()
            } else {
                prop::option::of(side()).boxed()
            };
            let numbers = (wire_u64(), wire_u64(), wire_u64(), wire_u64(), wire_u64());
            let prices = (
                volume,
                non_negative(),
                non_negative(),
                non_negative(),
                prop::option::of(non_negative()),
            );
            (Just(kind), numbers, prices, text(), text(), side)
        })
        .prop_map(
            |(
                kind,
                (seq, pos, ticket, magic, time_ms),
                (volume, price, sl, tp, remaining),
                symbol,
                comment,
                side,
            )| Event {
                seq,
                kind,
                pos,
                ticket,
                symbol,
                side,
                volume,
                price,
                sl,
                tp,
                magic,
                comment,
                time_ms,
                remaining,
            },
        )
    }

    fn copy() -> impl Strategy<Value = Copy> {
        let action = prop::sample::select(vec![
            CopyAction::Open,
            CopyAction::Modify,
            CopyAction::Close,
            CopyAction::Pending,
            CopyAction::Cancel,
        ]);
        action
            .prop_flat_map(|action| {
                let kind = match action {
                    CopyAction::Open => EventKind::Open,
                    CopyAction::Pending => EventKind::Pending,
                    _ => EventKind::Modify,
                };
                let volume = if matches!(action, CopyAction::Modify | CopyAction::Cancel) {
                    non_negative().boxed()
                } else {
                    positive().boxed()
                };
                let numbers = (wire_u64(), wire_u64(), wire_u64(), wire_u64(), wire_u64());
                let prices = (
                    volume,
                    non_negative(),
                    non_negative(),
                    non_negative(),
                    non_negative(),
                );
                (
                    Just(action),
                    numbers,
                    prices,
                    (text(), text(), text()),
                    side_for(kind),
                )
            })
            .prop_map(
                |(
                    action,
                    (seq, master, pos, magic, expires_ms),
                    (volume, price, max_dev, sl, tp),
                    (id, symbol, comment),
                    side,
                )| Copy {
                    seq,
                    id,
                    master,
                    pos,
                    action,
                    symbol,
                    side,
                    volume,
                    price,
                    max_dev,
                    sl,
                    tp,
                    magic,
                    comment,
                    expires_ms,
                },
            )
    }

    fn snapshot() -> impl Strategy<Value = Snapshot> {
        let position = (
            wire_u64(),
            text(),
            side(),
            positive(),
            (non_negative(), non_negative(), non_negative()),
            wire_u64(),
            text(),
        )
            .prop_map(
                |(pos, symbol, side, volume, (price, sl, tp), magic, comment)| SnapshotPosition {
                    pos,
                    symbol,
                    side,
                    volume,
                    price,
                    sl,
                    tp,
                    magic,
                    comment,
                },
            );
        (
            prop::collection::vec(position, 0..4),
            finite(),
            finite(),
            text(),
        )
            .prop_map(|(positions, balance, equity, currency)| Snapshot {
                positions,
                balance,
                equity,
                currency,
            })
    }

    fn symbol_spec() -> impl Strategy<Value = SymbolSpec> {
        (
            text(),
            positive(),
            positive(),
            positive(),
            any::<u32>(),
            finite(),
        )
            .prop_map(|(name, a, b, step, digits, contract)| SymbolSpec {
                name,
                min: a.min(b),
                max: a.max(b),
                step,
                digits,
                contract,
            })
    }

    fn state() -> impl Strategy<Value = State> {
        let position = (wire_u64(), text(), side(), positive(), text()).prop_map(
            |(pos, symbol, side, volume, comment)| StatePosition {
                pos,
                symbol,
                side,
                volume,
                comment,
            },
        );
        let symbols = prop::option::of(prop::collection::vec(symbol_spec(), 0..4));
        (
            finite(),
            finite(),
            text(),
            prop::collection::vec(position, 0..4),
            symbols,
        )
            .prop_map(|(balance, equity, currency, positions, symbols)| State {
                balance,
                equity,
                currency,
                positions,
                symbols,
            })
    }

    fn hello() -> impl Strategy<Value = Message> {
        let role = prop::sample::select(vec![Role::Master, Role::Slave]);
        (
            any::<u32>(),
            text(),
            wire_u64(),
            role,
            (text(), text(), text()),
            wire_u64(),
        )
            .prop_map(
                |(version, key, login, role, (platform, server, ea), last_seq)| {
                    Message::Hello(Hello {
                        version,
                        key,
                        login,
                        role,
                        platform,
                        server,
                        ea,
                        last_seq,
                    })
                },
            )
    }

    fn trade_result() -> impl Strategy<Value = Message> {
        let status = prop::sample::select(vec![
            ResultStatus::Filled,
            ResultStatus::Rejected,
            ResultStatus::Skipped,
        ]);
        (
            wire_u64(),
            status,
            wire_u64(),
            non_negative(),
            non_negative(),
            any::<u32>(),
            text(),
            wire_u64(),
        )
            .prop_map(
                |(seq, status, ticket, price, volume, error, msg, exec_ms)| {
                    Message::Result(TradeResult {
                        seq,
                        status,
                        ticket,
                        price,
                        volume,
                        error,
                        msg,
                        exec_ms,
                    })
                },
            )
    }

    fn small_messages() -> Union<BoxedStrategy<Message>> {
        let welcome = (any::<u32>(), text(), wire_u64(), wire_u64(), prop::option::of(text())).prop_map(
            |(version, session, hb_ms, ack_seq, notice)| {
                Message::Welcome(Welcome {
                    version,
                    session,
                    hb_ms,
                    ack_seq,
                    notice,
                })
            },
        );
        let code = prop::sample::select(vec![
            ErrorCode::BadMessage,
            ErrorCode::UnknownType,
            ErrorCode::Unauthorized,
            ErrorCode::RateLimited,
            ErrorCode::TooLarge,
            ErrorCode::Internal,
        ]);
        let error =
            (code, text()).prop_map(|(code, msg)| Message::Error(ErrorMessage { code, msg }));
        Union::new(vec![
            hello().boxed(),
            welcome.boxed(),
            Just(Message::Ping).boxed(),
            Just(Message::Pong).boxed(),
            wire_u64().prop_map(|seq| Message::Ack(Ack { seq })).boxed(),
            trade_result().boxed(),
            error.boxed(),
        ])
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            2 => small_messages(),
            2 => event().prop_map(Message::Event),
            1 => snapshot().prop_map(Message::Snapshot),
            2 => copy().prop_map(Message::Copy),
            1 => state().prop_map(Message::State),
            1 => prop::collection::vec(symbol_spec(), 0..4).prop_map(|symbols| Message::Symbols(Symbols { symbols })),
        ]
    }

    fn written(message: &Message) -> Vec<u8> {
        let mut out = Vec::new();
        write(message, &mut out);
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        // Any valid message survives write then parse unchanged, and re-encodes to the same bytes.
        #[test]
        fn arbitrary_messages_round_trip(message in message()) {
            let out = written(&message);
            let parsed = parse(&out);
            prop_assert_eq!(parsed.as_ref(), Ok(&message), "{}", String::from_utf8_lossy(&out));
            prop_assert_eq!(written(&parsed.unwrap()), out);
        }

        // Any finite f64, negative zero and subnormals included, survives bit for bit.
        #[test]
        fn floats_round_trip_bit_exact(value in prop::num::f64::ANY.prop_filter("finite", |value| value.is_finite())) {
            let state = State { balance: value, equity: -value, currency: String::new(), positions: vec![], symbols: None };
            let Ok(Message::State(parsed)) = parse(&written(&Message::State(state))) else {
                return Err(TestCaseError::fail("state did not parse"));
            };
            prop_assert_eq!(parsed.balance.to_bits(), value.to_bits());
            prop_assert_eq!(parsed.equity.to_bits(), (-value).to_bits());
        }

        // An independent JSON parser reads the writer's output, strings and numbers alike, as we meant it.
        #[test]
        fn serde_json_agrees_with_writer(hello in small_messages().prop_filter("hello", |m| matches!(m, Message::Hello(_)))) {
            let Message::Hello(hello) = &hello else { unreachable!() };
            let value: serde_json::Value = serde_json::from_slice(&written(&Message::Hello(hello.clone()))).unwrap();
            prop_assert_eq!(value["key"].as_str(), Some(hello.key.as_str()));
            prop_assert_eq!(value["server"].as_str(), Some(hello.server.as_str()));
            prop_assert_eq!(value["login"].as_u64(), Some(hello.login));
        }

        // The parser decodes whatever escapes serde_json writes (short forms and \u00XX) to the same text.
        #[test]
        fn parser_agrees_with_serde_json(msg in text(), ascii in any::<bool>()) {
            let mut escaped = serde_json::to_string(&msg).unwrap();
            if ascii {
                // Force \uXXXX escapes (with surrogate pairs) for every non-ASCII character.
                escaped = escaped.chars().map(|character| {
                    if character.is_ascii() { return character.to_string(); }
                    character.encode_utf16(&mut [0; 2]).iter().map(|unit| format!("\\u{unit:04X}")).collect()
                }).collect();
            }
            let frame = format!(r#"{{"t":"error","code":"internal","msg":{escaped}}}"#);
            let expected = Message::Error(ErrorMessage { code: ErrorCode::Internal, msg });
            prop_assert_eq!(parse(frame.as_bytes()), Ok(expected));
        }

        // Arbitrary bytes, and examples with arbitrary bytes spliced in, give a result or an error, never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            example in prop::sample::select(super::ALL_FRAMES.to_vec()),
            at in any::<prop::sample::Index>(),
        ) {
            let _ = parse(&bytes);
            let mut spliced = example.as_bytes().to_vec();
            let position = at.index(spliced.len() + 1);
            spliced.splice(position..position, bytes.iter().copied());
            let _ = parse(&spliced);
        }
    }
}

#[test]
fn a_hellos_debug_output_and_its_parse_errors_never_show_the_key() {
    // Shows: `{:?}` of a Hello (and of the Message holding it) names the key's length, not the key; a hello refused for any field, the key's own included, says nothing of the key's value.
    let secret = "s3cret-key-0123456789abcdef";
    let frame = format!(r#"{{"t":"hello","v":1,"key":"{secret}","login":1,"role":"master","platform":"mt5","server":"B","ea":"x"}}"#);
    let message = parse_text(&frame).expect("a valid hello");
    let debug = format!("{message:?}");
    assert!(!debug.contains(secret) && debug.contains(&format!("<redacted, {} bytes>", secret.len())), "{debug}");
    for bad in [
        frame.replace(r#""role":"master""#, r#""role":"king""#),
        frame.replace(r#""login":1"#, r#""login":"one""#),
        frame.replace(&format!(r#""key":"{secret}""#), &format!(r#""key":["{secret}"]"#)),
        frame.replace(&format!(r#""key":"{secret}""#), &format!(r#""key":"{secret}\x""#)),
    ] {
        let error = parse_text(&bad).expect_err(&bad).to_string();
        assert!(!error.contains(secret) && !error.contains("s3cret"), "{bad}: {error}");
    }
}
