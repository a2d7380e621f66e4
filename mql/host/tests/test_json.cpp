// test_json.cpp: the JSON reader/writer and every PROTOCOL.md message,
// round-tripped from fixture lines (host/fixtures/messages.jsonl, plus
// TB_EXTRA_FIXTURES, e.g. lines produced by the Rust codec).
#include "mql_shim.h"
// Each test file compiles the dialect in its own namespace, as each EA
// compiles it in its own translation unit.
namespace dialect_json {
#include "../../Include/TradeBridge/Messages.mqh"
}
using namespace dialect_json;
#include "check.h"

#include <cstdlib>
#include <fstream>

// Reads `line` as a message of its type and writes it back; "" + error on failure.
static std::string RoundTrip(const std::string &line, std::string &error) {
    TbJsonReader reader;
    if (!reader.ParseText(MqlString(line))) {
        error = reader.Error().Utf8();
        return "";
    }
    std::string type = TbMessageType(reader, 0).Utf8();
    TbJsonWriter writer;
    MqlString problem;
    bool ok = true;
    if (type == "hello") { TbHello m; ok = TbReadHello(reader, 0, m, problem); if (ok) TbWriteHello(writer, m); }
    else if (type == "welcome") { TbWelcome m; ok = TbReadWelcome(reader, 0, m, problem); if (ok) TbWriteWelcome(writer, m); }
    else if (type == "ping") TbWritePing(writer);
    else if (type == "pong") TbWritePong(writer);
    else if (type == "event") { TbEvent m; ok = TbReadEvent(reader, 0, m, problem); if (ok) TbWriteEvent(writer, m); }
    else if (type == "ack") { TbAck m; ok = TbReadAck(reader, 0, m, problem); if (ok) TbWriteAck(writer, m); }
    else if (type == "snapshot") { TbSnapshot m; ok = TbReadSnapshot(reader, 0, m, problem); if (ok) TbWriteSnapshot(writer, m); }
    else if (type == "copy") { TbCopy m; ok = TbReadCopy(reader, 0, m, problem); if (ok) TbWriteCopy(writer, m); }
    else if (type == "result") { TbResult m; ok = TbReadResult(reader, 0, m, problem); if (ok) TbWriteResult(writer, m); }
    else if (type == "state") { TbState m; ok = TbReadState(reader, 0, m, problem); if (ok) TbWriteState(writer, m); }
    else if (type == "symbols") { TbSymbols m; ok = TbReadSymbols(reader, 0, m, problem); if (ok) TbWriteSymbols(writer, m.symbols, 0, ArraySize(m.symbols)); }
    else if (type == "error") { TbError m; ok = TbReadError(reader, 0, m, problem); if (ok) TbWriteError(writer, m); }
    else { error = "unknown type '" + type + "'"; return ""; }
    if (!ok) {
        error = problem.Utf8();
        return "";
    }
    return writer.ToString().Utf8();
}

// True when every member of `a` (recursively) is in `b` with an equal
// value: numbers by value, except integers compared by their digits.
static bool JsonSubset(const TbJsonReader &a, int ta, const TbJsonReader &b, int tb, std::string &where) {
    int kind = a.Kind(ta);
    if (kind != b.Kind(tb)) { where = "kind differs at " + a.RawText(ta).Utf8(); return false; }
    if (kind == TB_JSON_OBJECT) {
        int index = ta + 1;
        for (int member = 0; member < a.Count(ta); member++) {
            MqlString key = a.TokenText(index);
            int other = b.Find(tb, key);
            if (other < 0) { where = "missing `" + key.Utf8() + "`"; return false; }
            if (!JsonSubset(a, index + 1, b, other, where)) { where = key.Utf8() + "." + where; return false; }
            index = a.Next(index + 1);
        }
        return true;
    }
    if (kind == TB_JSON_ARRAY) {
        if (a.Count(ta) != b.Count(tb)) { where = "array length differs"; return false; }
        for (int i = 0; i < a.Count(ta); i++)
            if (!JsonSubset(a, a.Element(ta, i), b, b.Element(tb, i), where)) return false;
        return true;
    }
    if (kind == TB_JSON_NUMBER) {
        std::string raw_a = a.RawText(ta).Utf8(), raw_b = b.RawText(tb).Utf8();
        bool integer_a = raw_a.find_first_of(".eE") == std::string::npos;
        bool integer_b = raw_b.find_first_of(".eE") == std::string::npos;
        if (integer_a && integer_b && raw_a != raw_b) { where = raw_a + " != " + raw_b; return false; }
        if (StringToDouble(MqlString(raw_a)) != StringToDouble(MqlString(raw_b))) { where = raw_a + " != " + raw_b; return false; }
        return true;
    }
    if (a.TokenText(ta) != b.TokenText(tb)) { where = a.RawText(ta).Utf8() + " != " + b.RawText(tb).Utf8(); return false; }
    return true;
}

static int CheckFixtureFile(const std::string &path, bool require_canonical) {
    std::ifstream file(path);
    CHECK(file.good());
    int lines = 0;
    std::string line;
    while (std::getline(file, line)) {
        if (line.empty() || line[0] == '#') continue;
        lines++;
        std::string error;
        std::string written = RoundTrip(line, error);
        if (written.empty()) { CheckFailed(__FILE__, __LINE__, path + ": " + error + " in " + line); continue; }
        if (require_canonical && written != line) CheckFailed(__FILE__, __LINE__, "not canonical:\n  " + line + "\n  " + written);
        TbJsonReader original, ours;
        CHECK(original.ParseText(MqlString(line)));
        CHECK(ours.ParseText(MqlString(written)));
        std::string where;
        if (!JsonSubset(original, 0, ours, 0, where)) CheckFailed(__FILE__, __LINE__, "lost " + where + " in " + line);
        // Writing what we read back must be stable.
        std::string again = RoundTrip(written, error);
        if (again != written) CheckFailed(__FILE__, __LINE__, "unstable round trip: " + written);
    }
    return lines;
}

TEST(every_message_round_trips_from_fixtures) {
    // Each fixture line parses as its type and is written back byte for byte, with nothing lost.
    int lines = CheckFixtureFile("host/fixtures/messages.jsonl", true);
    CHECK(lines >= 21);
    const char *extra = std::getenv("TB_EXTRA_FIXTURES");
    if (extra != nullptr) CHECK(CheckFixtureFile(extra, false) > 0);
}

TEST(fixtures_cover_every_message_type) {
    // The fixture file has at least one line of each of the twelve message types.
    std::ifstream file("host/fixtures/messages.jsonl");
    std::string all((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    for (const char *type : {"hello", "welcome", "ping", "pong", "event", "ack", "snapshot", "copy", "result", "state",
                             "symbols", "error"})
        CHECK(all.find(std::string("{\"t\":\"") + type + "\"") != std::string::npos);
}

TEST(ulong_values_are_lossless) {
    // 2^64-1 and 2^53+1 survive reading and writing; 2^64 and negatives are refused.
    TbJsonReader reader;
    CHECK(reader.ParseText("{\"a\":18446744073709551615,\"b\":9007199254740993,\"c\":18446744073709551616,\"d\":-1,\"e\":1.5}"));
    ulong value = 0;
    CHECK(reader.GetULong(0, "a", value));
    CHECK_EQ(value, ULONG_MAX);
    CHECK(reader.GetULong(0, "b", value));
    CHECK_EQ(value, 9007199254740993ul);
    CHECK(!reader.GetULong(0, "c", value));
    CHECK(!reader.GetULong(0, "d", value));
    CHECK(!reader.GetULong(0, "e", value));
    CHECK_EQ(TbULongToString(ULONG_MAX).Utf8(), std::string("18446744073709551615"));
    CHECK_EQ(TbULongToString(0).Utf8(), std::string("0"));
}

TEST(unknown_fields_are_ignored) {
    // Extra members, including nested objects and arrays, do not disturb reading known ones.
    std::string error;
    std::string written = RoundTrip("{\"future\":{\"x\":[1,{\"y\":null}]},\"t\":\"ack\",\"seq\":5,\"flag\":true}", error);
    CHECK_EQ(written, std::string("{\"t\":\"ack\",\"seq\":5}"));
}

TEST(missing_and_bad_fields_name_the_field) {
    // A missing seq, a bad kind and a string seq each produce an error naming the field.
    std::string error;
    CHECK(RoundTrip("{\"t\":\"ack\"}", error).empty());
    CHECK_EQ(error, std::string("field `seq`: missing"));
    CHECK(RoundTrip("{\"t\":\"event\",\"seq\":1,\"kind\":\"explode\",\"pos\":1}", error).empty());
    CHECK(error.find("field `kind`: 'explode' is not one of") == 0);
    CHECK(RoundTrip("{\"t\":\"copy\",\"seq\":\"7\"}", error).empty());
    CHECK(error.find("field `seq`") == 0);
    CHECK(RoundTrip("{\"t\":\"event\",\"seq\":1,\"kind\":\"open\",\"pos\":1,\"side\":\"buy\"}", error).empty());
    CHECK_EQ(error, std::string("field `symbol`: missing"));
}

TEST(strings_escape_and_unescape) {
    // Quotes, backslashes, controls and non-ASCII survive; \u escapes and surrogate pairs decode.
    TbJsonWriter writer;
    writer.BeginObject();
    writer.FieldString("s", MqlString("a\"b\\c\n\x01 é"));
    writer.EndObject();
    CHECK_EQ(writer.ToString().Utf8(), std::string("{\"s\":\"a\\\"b\\\\c\\n\\u0001 é\"}"));
    TbJsonReader reader;
    CHECK(reader.ParseText(writer.ToString()));
    MqlString value;
    CHECK(reader.GetString(0, "s", value));
    CHECK_EQ(value.Utf8(), std::string("a\"b\\c\n\x01 é"));
    CHECK(reader.ParseText("{\"s\":\"\\u00e9\\ud83d\\ude00\\/\"}"));
    CHECK(reader.GetString(0, "s", value));
    CHECK_EQ(value.Utf8(), std::string("é😀/"));
}

TEST(malformed_documents_are_refused) {
    // Trailing text, bad literals, raw control characters, bad numbers and unterminated input all fail.
    const char *bad[] = {"{\"a\":1} x", "{\"a\":tru}", "{\"a\":\"x\ny\"}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":-}",
                         "{\"a\":[1,2}", "{\"a\" 1}", "{\"a\":\"\\q\"}", "{\"a\":\"abc", ""};
    for (const char *text : bad) {
        TbJsonReader reader;
        if (reader.ParseText(MqlString(text))) CheckFailed(__FILE__, __LINE__, std::string("accepted: ") + text);
        CHECK(reader.Error() != "");
    }
}

TEST(nesting_and_token_limits_hold) {
    // Nesting past TB_JSON_DEPTH_MAX and documents with too many tokens are refused with a reason.
    std::string deep;
    for (int i = 0; i < TB_JSON_DEPTH_MAX + 2; i++) deep += "[";
    for (int i = 0; i < TB_JSON_DEPTH_MAX + 2; i++) deep += "]";
    TbJsonReader reader;
    CHECK(!reader.ParseText(MqlString(deep)));
    CHECK(reader.Error().Utf8().find("nesting") != std::string::npos);
    std::string many = "[";
    for (int i = 0; i < TB_JSON_TOKENS_MAX + 1; i++) many += i ? ",0" : "0";
    many += "]";
    CHECK(!reader.ParseText(MqlString(many)));
    CHECK(reader.Error().Utf8().find("tokens") != std::string::npos);
}

TEST(doubles_use_shortest_exact_text) {
    // Prices and volumes print in their shortest exact decimal form.
    CHECK_EQ(TbFormatDouble(0.1).Utf8(), std::string("0.1"));
    CHECK_EQ(TbFormatDouble(1.08123).Utf8(), std::string("1.08123"));
    CHECK_EQ(TbFormatDouble(10000.0).Utf8(), std::string("10000"));
    CHECK_EQ(TbFormatDouble(-0.0003).Utf8(), std::string("-0.0003"));
    CHECK_EQ(StringToDouble(TbFormatDouble(1.0 / 3.0)), 1.0 / 3.0);
}
