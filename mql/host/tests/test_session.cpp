// test_session.cpp: the session state machine (backoff, heartbeat,
// deadlines) with injected time, and the persisted outbox across restarts.
#include "mql_shim.h"
namespace dialect_session {
#include "../../Include/TradeBridge/Session.mqh"
#include "../../Include/TradeBridge/Outbox.mqh"
#include "../../Include/TradeBridge/BridgeClient.mqh"
}
using namespace dialect_session;
#include "check.h"
#include "test_support.h"

#include <fstream>

static TbWelcome Welcome(ulong hb_ms, ulong ack_seq) {
    TbWelcome welcome;
    welcome.version = 1;
    welcome.session = "s";
    welcome.hb_ms = hb_ms;
    welcome.ack_seq = ack_seq;
    return welcome;
}

static TbEvent OpenEvent(ulong pos) {
    TbEvent event;
    event.Clear();
    event.kind = "open";
    event.pos = pos;
    event.ticket = pos;
    event.symbol = "EURUSD";
    event.side = "buy";
    event.volume = 0.1;
    event.price = 1.1;
    return event;
}

TEST(backoff_grows_is_jittered_and_bounded) {
    // Each failed attempt waits within [d/2, d], d doubling from 500 ms up to the 30 s cap.
    TbSession session;
    session.Configure(500, 30000, 7);
    ulong now = 1000;
    for (int attempt = 0; attempt < 12; attempt++) {
        CHECK(session.ShouldConnect(now));
        session.OnConnecting(now);
        session.OnClosed(now, 1006);
        ulong wait = session.NextAttemptMs() - now;
        ulong ceiling = std::min<ulong>(30000, 500ul << attempt);
        if (wait < ceiling / 2 || wait > ceiling) CheckFailed(__FILE__, __LINE__, "wait " + std::to_string(wait) + " outside [" + std::to_string(ceiling / 2) + ", " + std::to_string(ceiling) + "]");
        CHECK(!session.ShouldConnect(now + wait - 1));
        now += wait;
    }
}

TEST(backoff_jitter_differs_between_terminals) {
    // Two terminals with different seeds do not retry at the same instant.
    TbSession first, second;
    first.Configure(500, 30000, 1);
    second.Configure(500, 30000, 2);
    int same = 0;
    for (int attempt = 0; attempt < 8; attempt++) {
        first.OnConnecting(0);
        first.OnClosed(0, 1006);
        second.OnConnecting(0);
        second.OnClosed(0, 1006);
        if (first.NextAttemptMs() == second.NextAttemptMs()) same++;
    }
    CHECK(same < 8);
}

TEST(welcome_resets_backoff_and_auth_failures_wait_longest) {
    // A welcome resets the failure count; close 4001 and 4004 wait at least half the maximum.
    TbSession session;
    session.Configure(500, 30000, 3);
    for (int i = 0; i < 5; i++) {
        session.OnConnecting(0);
        session.OnClosed(0, 1006);
    }
    CHECK_EQ(session.Failures(), 5);
    session.OnConnecting(0);
    session.OnOpen(0);
    session.OnWelcome(0, Welcome(5000, 0));
    CHECK_EQ(session.Failures(), 0);
    CHECK(session.IsReady());
    session.OnClosed(100, 4001);
    CHECK(session.NextAttemptMs() - 100 >= 15000);
    session.OnConnecting(20000);
    session.OnClosed(20000, 4004);
    CHECK(session.NextAttemptMs() - 20000 >= 15000);
}

TEST(heartbeat_pings_and_silence_reconnects) {
    // In READY a ping goes out every hb_ms, and 3 x hb_ms without a byte asks for a reconnect.
    TbSession session;
    session.Configure(500, 30000, 4);
    session.OnConnecting(0);
    session.OnOpen(10);
    session.OnWelcome(20, Welcome(2000, 0));
    CHECK_EQ(session.Tick(1000), TB_TICK_NONE);
    CHECK_EQ(session.Tick(2020), TB_TICK_PING);
    CHECK_EQ(session.Tick(2500), TB_TICK_NONE);
    session.OnBytes(3000);
    CHECK_EQ(session.Tick(4020), TB_TICK_PING);
    CHECK_EQ(session.Tick(9000), TB_TICK_PING);
    CHECK_EQ(session.Tick(9001), TB_TICK_RECONNECT);
}

TEST(connect_and_welcome_deadlines) {
    // A connect or a welcome that takes longer than its deadline asks for a reconnect.
    TbSession session;
    session.Configure(500, 30000, 5);
    session.OnConnecting(0);
    CHECK_EQ(session.Tick(TB_CONNECT_TIMEOUT_MS), TB_TICK_NONE);
    CHECK_EQ(session.Tick(TB_CONNECT_TIMEOUT_MS + 1), TB_TICK_RECONNECT);
    session.OnOpen(20000);
    CHECK_EQ(session.Tick(20000 + TB_WELCOME_TIMEOUT_MS + 1), TB_TICK_RECONNECT);
}

TEST(url_parsing) {
    // ws/wss URLs give host, port (default 80/443), path (default /ea); other forms are refused.
    string host, path, error;
    uint port = 0;
    bool tls = false;
    CHECK(TbParseUrl("ws://127.0.0.1:9000/ea", host, port, path, tls, error));
    CHECK(host == "127.0.0.1" && port == 9000 && path == "/ea" && !tls);
    CHECK(TbParseUrl("wss://bridge.example.com", host, port, path, tls, error));
    CHECK(host == "bridge.example.com" && port == 443 && path == "/ea" && tls);
    CHECK(!TbParseUrl("http://x", host, port, path, tls, error));
    CHECK(!TbParseUrl("ws://x:99999/ea", host, port, path, tls, error));
    CHECK(error.Utf8().find("99999") != std::string::npos);
}

TEST(outbox_numbers_persists_and_resends_after_restart) {
    // Events survive a restart; acked ones are dropped; numbering continues; resend starts above ack_seq.
    SimFixture fixture(5);
    {
        TbOutbox outbox;
        CHECK(outbox.Open("outbox.log", 100));
        outbox.OnWelcome(0);
        for (ulong pos = 1; pos <= 3; pos++) {
            TbEvent event = OpenEvent(pos);
            CHECK(outbox.Append(event));
            CHECK_EQ(event.seq, pos);
        }
        outbox.Acknowledge(1);
        CHECK_EQ(outbox.PendingCount(), 2);
    }
    TbOutbox restarted;
    CHECK(restarted.Open("outbox.log", 100));
    CHECK(restarted.SequenceKnown());
    CHECK_EQ(restarted.LastSeq(), 3ul);
    CHECK_EQ(restarted.PendingCount(), 2);
    TbEvent event = OpenEvent(4);
    CHECK(restarted.Append(event));
    CHECK_EQ(event.seq, 4ul);
    restarted.OnWelcome(2);
    std::vector<ulong> sent;
    TbEvent next;
    while (restarted.NextToSend(next)) sent.push_back(next.seq);
    CHECK((sent == std::vector<ulong>{3, 4}));
    CHECK(!restarted.NextToSend(next));
    CHECK_EQ(next.pos, 4ul);
}

TEST(outbox_fresh_install_numbers_from_bridge_ack) {
    // With no file, events wait unnumbered and take ack_seq+1.. at the first welcome; that survives a restart.
    SimFixture fixture(5);
    {
        TbOutbox outbox;
        CHECK(outbox.Open("fresh.log", 100));
        CHECK(!outbox.SequenceKnown());
        TbEvent first = OpenEvent(1), second = OpenEvent(2);
        CHECK(outbox.Append(first));
        CHECK(outbox.Append(second));
        CHECK_EQ(first.seq, 0ul);
        TbEvent next;
        CHECK(!outbox.NextToSend(next));
        outbox.OnWelcome(41);
        CHECK(outbox.NextToSend(next));
        CHECK_EQ(next.seq, 42ul);
        CHECK(outbox.NextToSend(next));
        CHECK_EQ(next.seq, 43ul);
    }
    TbOutbox restarted;
    CHECK(restarted.Open("fresh.log", 100));
    CHECK_EQ(restarted.LastSeq(), 43ul);
    CHECK_EQ(restarted.PendingCount(), 2);
}

TEST(outbox_renumbers_when_bridge_is_ahead) {
    // If the bridge acked beyond our last seq, waiting events move above it instead of being taken as duplicates.
    SimFixture fixture(5);
    TbOutbox outbox;
    CHECK(outbox.Open("ahead.log", 100));
    outbox.OnWelcome(0);
    TbEvent event = OpenEvent(1);
    CHECK(outbox.Append(event));
    outbox.OnWelcome(10);
    TbEvent next;
    CHECK(outbox.NextToSend(next));
    CHECK_EQ(next.seq, 11ul);
}

TEST(outbox_full_refuses_and_counts) {
    // At events_max the next event is refused and counted, never queued silently.
    SimFixture fixture(5);
    TbOutbox outbox;
    CHECK(outbox.Open("full.log", 2));
    outbox.OnWelcome(0);
    TbEvent a = OpenEvent(1), b = OpenEvent(2), c = OpenEvent(3);
    CHECK(outbox.Append(a));
    CHECK(outbox.Append(b));
    CHECK(!outbox.Append(c));
    CHECK_EQ(outbox.DroppedCount(), 1);
    CHECK_EQ(outbox.PendingCount(), 2);
    outbox.Acknowledge(2);
    CHECK(outbox.Append(c));
    CHECK_EQ(c.seq, 3ul);
}

TEST(outbox_ignores_torn_last_line_and_compacts) {
    // A half-written last line is skipped on load; many acks compact the log to a few lines.
    SimFixture fixture(5);
    {
        TbOutbox outbox;
        CHECK(outbox.Open("torn.log", 1000));
        outbox.OnWelcome(0);
        for (ulong pos = 1; pos <= 600; pos++) {
            TbEvent event = OpenEvent(pos);
            CHECK(outbox.Append(event));
            outbox.Acknowledge(event.seq - (pos % 2));
        }
        TbEvent waiting = OpenEvent(601);
        CHECK(outbox.Append(waiting));
    }
    std::string path = fixture.terminal.files_dir + "/torn.log";
    std::ifstream log(path);
    int lines = 0;
    for (std::string line; std::getline(log, line);) lines++;
    CHECK(lines < 600);
    std::ofstream(path, std::ios::app) << "E {\"t\":\"event\",\"seq\":602,\"ki";
    TbOutbox restarted;
    CHECK(restarted.Open("torn.log", 1000));
    CHECK_EQ(restarted.LastSeq(), 601ul);
    CHECK_EQ(restarted.PendingCount(), 1);
    CHECK_EQ(restarted.PendingSeq(0), 601ul);
    TbEvent event = OpenEvent(602);
    CHECK(restarted.Append(event));
    CHECK_EQ(event.seq, 602ul);
    TbOutbox again;
    CHECK(again.Open("torn.log", 1000));
    CHECK_EQ(again.PendingCount(), 2);
    CHECK_EQ(again.LastSeq(), 602ul);
}

TEST(outbox_compaction_cut_short_is_recovered) {
    // A compaction whose move over the log is cut short (the log deleted, or copied only in part) leaves "<name>.tmp": the next Open puts it in place, with every pending event and its numbers.
    for (int how : {1, 2}) {
        SimFixture fixture(5);
        TbOutbox outbox;
        CHECK(outbox.Open("outbox.log", 100));
        for (ulong pos = 1; pos <= 3; pos++) {
            TbEvent event = OpenEvent(pos);
            CHECK(outbox.Append(event));
        }
        ShimInterruptNextFileMove(how);
        outbox.OnWelcome(10);
        outbox.Close();
        TbOutbox reopened;
        CHECK(reopened.Open("outbox.log", 100));
        CHECK_EQ(reopened.PendingCount(), 3);
        CHECK_EQ(reopened.LastSeq(), 13ul);
    }
}
