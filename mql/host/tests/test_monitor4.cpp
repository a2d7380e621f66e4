// test_monitor4.cpp: the MT4 Monitor's order-list diff, and partial closes
// followed through the "from #N" lineage so `pos` stays the first ticket.
#include "mql_shim.h"
namespace dialect_monitor4 {
#include "../../Include/TradeBridge/Monitor4.mqh"
}
using namespace dialect_monitor4;
#include "check.h"
#include "test_support.h"

#include <cstdio>

namespace {

struct Master4 {
    SimFixture fixture;
    TbMonitor4 monitor;
    Master4() : fixture(4) { Init(monitor); }
    void Init(TbMonitor4 &target) {
        TbHello hello;
        hello.version = 1; hello.key = "k"; hello.login = 42; hello.role = "master"; hello.platform = "mt4";
        hello.server = "s"; hello.ea = "t"; hello.last_seq = 0;
        MqlString error;
        CHECK(target.Init("ws://127.0.0.1:1/ea", hello, "outbox.log", "lineage.txt", 100, 60000, 500, 30000, error));
    }
    std::vector<TbEvent> Events() {
        std::vector<TbEvent> events;
        for (int i = 0; i < monitor.PendingEvents(); i++) {
            TbEvent event;
            monitor.PendingEventAt(i, event);
            events.push_back(event);
        }
        return events;
    }
};

} // namespace

TEST(monitor4_open_and_partial_closes_keep_pos) {
    // Two partial closes and a final close all report pos = the first ticket, with closed and remaining lots.
    Master4 master;
    SimTerminal &terminal = master.fixture.terminal;
    int first = terminal.Mt4OrderSend("EURUSD", 0, 0.5, 0, 3, 1.07, 1.09, "", 7);
    master.monitor.Scan();
    CHECK(terminal.Mt4OrderClose(first, 0.2, 0, 3));
    master.monitor.Scan();
    int second = terminal.mt4_trades[0].ticket;
    CHECK(terminal.mt4_trades[0].comment == "from #" + std::to_string(first));
    CHECK_EQ(master.monitor.PosOfTicket((ulong)second), (ulong)first);
    CHECK(terminal.Mt4OrderClose(second, 0.1, 0, 3));
    master.monitor.Scan();
    int third = terminal.mt4_trades[0].ticket;
    CHECK_EQ(master.monitor.PosOfTicket((ulong)third), (ulong)first);
    CHECK(terminal.Mt4OrderClose(third, 0.2, 0, 3));
    master.monitor.Scan();
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)4);
    if (events.size() != 4) return;
    CHECK(events[0].kind == "open" && events[0].pos == (ulong)first && events[0].volume == 0.5 && events[0].magic == 7);
    CHECK(events[1].kind == "close" && events[1].pos == (ulong)first && events[1].ticket == (ulong)first);
    CHECK_EQ(events[1].volume, 0.2);
    CHECK_EQ(events[1].remaining, 0.3);
    CHECK_EQ(events[1].price, 1.0812);
    CHECK(events[2].kind == "close" && events[2].pos == (ulong)first && events[2].ticket == (ulong)second);
    CHECK_EQ(events[2].volume, 0.1);
    CHECK_EQ(events[2].remaining, 0.2);
    CHECK(events[3].kind == "close" && events[3].pos == (ulong)first && events[3].remaining == 0.0);
    CHECK_EQ(events[3].volume, 0.2);
}

TEST(monitor4_lineage_survives_restart) {
    // After a restart the remainder of a twice-partially-closed trade still maps to the first ticket.
    Master4 master;
    SimTerminal &terminal = master.fixture.terminal;
    int first = terminal.Mt4OrderSend("EURUSD", 1, 0.5, 0, 3, 0, 0, "", 0);
    master.monitor.Scan();
    terminal.Mt4OrderClose(first, 0.1, 0, 3);
    master.monitor.Scan();
    terminal.Mt4OrderClose(terminal.mt4_trades[0].ticket, 0.1, 0, 3);
    master.monitor.Scan();
    int remainder = terminal.mt4_trades[0].ticket;
    master.monitor.Shutdown();
    TbMonitor4 restarted;
    master.Init(restarted);
    CHECK_EQ(restarted.PosOfTicket((ulong)remainder), (ulong)first);
    TbSnapshot snapshot;
    restarted.BuildSnapshot(snapshot);
    CHECK(ArraySize(snapshot.positions) == 1 && snapshot.positions[0].pos == (ulong)first && snapshot.positions[0].side == "sell");
    // A pending order is in the snapshot too, at its trigger price.
    int pending = terminal.Mt4OrderSend("USDJPY", 3, 0.2, 152.0, 0, 0, 0, "", 0);
    restarted.Scan();
    restarted.BuildSnapshot(snapshot);
    CHECK(ArraySize(snapshot.positions) == 2 && snapshot.positions[1].pos == (ulong)pending && snapshot.positions[1].side == "sell_limit" &&
          snapshot.positions[1].price == 152.0);
    // Without the lineage file the chain is cut at the first closed part
    // (its history comment is "to #..."), which is why the file exists.
    restarted.Shutdown();
    std::remove((master.fixture.terminal.files_dir + "/lineage.txt").c_str());
    TbMonitor4 forgetful;
    master.Init(forgetful);
    CHECK(forgetful.PosOfTicket((ulong)remainder) != (ulong)first);
}

TEST(monitor4_modify_pending_fill_and_cancel) {
    // SL/TP edits give modify; a pending gives pending, its fill open (same ticket), a deleted pending cancel.
    Master4 master;
    SimTerminal &terminal = master.fixture.terminal;
    int trade = terminal.Mt4OrderSend("EURUSD", 0, 0.1, 0, 3, 0, 0, "", 0);
    master.monitor.Scan();
    terminal.Mt4OrderModify(trade, 0, 1.07, 1.10);
    master.monitor.Scan();
    int limit = terminal.Mt4OrderSend("USDJPY", 3, 0.3, 152.5, 0, 0, 0, "", 0);
    master.monitor.Scan();
    terminal.Mt4OrderModify(limit, 152.7, 0, 0);
    master.monitor.Scan();
    terminal.Mt4TriggerPending(limit);
    master.monitor.Scan();
    int stop = terminal.Mt4OrderSend("XAUUSD", 4, 0.2, 2000.5, 0, 0, 0, "", 0);
    master.monitor.Scan();
    terminal.Mt4OrderDelete(stop);
    master.monitor.Scan();
    master.monitor.Scan();
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)7);
    if (events.size() != 7) return;
    CHECK(events[1].kind == "modify" && events[1].pos == (ulong)trade && events[1].sl == 1.07 && events[1].tp == 1.10 && events[1].price == 0);
    CHECK(events[2].kind == "pending" && events[2].side == "sell_limit" && events[2].price == 152.5);
    CHECK(events[3].kind == "modify" && events[3].pos == (ulong)limit && events[3].price == 152.7);
    CHECK(events[4].kind == "open" && events[4].pos == (ulong)limit && events[4].side == "sell");
    CHECK(events[5].kind == "pending" && events[5].side == "buy_stop");
    CHECK(events[6].kind == "cancel" && events[6].pos == (ulong)stop);
}

TEST(monitor4_scan_without_changes_is_silent) {
    // Repeated scans of an unchanged terminal emit nothing.
    Master4 master;
    master.fixture.terminal.Mt4OrderSend("EURUSD", 0, 0.1, 0, 3, 0, 0, "", 0);
    for (int i = 0; i < 5; i++) master.monitor.Scan();
    CHECK_EQ(master.monitor.PendingEvents(), 1);
}

TEST(from_ticket_comments_parse_exactly) {
    // "from #123" gives 123; other comments and "from #" without digits give 0.
    CHECK_EQ(TbFromTicket("from #123"), 123ul);
    CHECK_EQ(TbFromTicket("partial from #98765 x"), 98765ul);
    CHECK_EQ(TbFromTicket("to #5"), 0ul);
    CHECK_EQ(TbFromTicket("from #"), 0ul);
}

TEST(monitor4_two_partial_closes_between_scans) {
    // Two partial closes before one scan give one close of their sum, and the rest keeps the first ticket as pos.
    Master4 master;
    SimTerminal &terminal = master.fixture.terminal;
    int first = terminal.Mt4OrderSend("EURUSD", 0, 1.0, 0, 3, 0, 0, "", 0);
    master.monitor.Scan();
    terminal.Mt4OrderClose(first, 0.2, 0, 3);
    terminal.Mt4OrderClose(terminal.mt4_trades[0].ticket, 0.3, 0, 3);
    master.monitor.Scan();
    int rest = terminal.mt4_trades[0].ticket;
    CHECK_EQ(master.monitor.PosOfTicket((ulong)rest), (ulong)first);
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)2);
    if (events.size() == 2) {
        CHECK(events[1].kind == "close" && events[1].pos == (ulong)first);
        CHECK_EQ(events[1].volume, 0.5);
        CHECK_EQ(events[1].remaining, 0.5);
    }
    terminal.Mt4OrderClose(rest, 0.5, 0, 3);
    master.monitor.Scan();
    events = master.Events();
    CHECK(events.size() == 3 && events[2].pos == (ulong)first && events[2].remaining == 0.0);
}

TEST(monitor4_an_order_closed_mid_scan_makes_no_false_close) {
    // The trader closes the first order while the Monitor walks the pool, so the second moves into the slot already read and is missing from that pass: only the real close is reported, never a close and re-open of the live order.
    Master4 master;
    SimTerminal &terminal = master.fixture.terminal;
    int first = terminal.Mt4OrderSend("EURUSD", 0, 0.1, 0, 3, 0, 0, "", 0);
    int second = terminal.Mt4OrderSend("USDJPY", 1, 0.2, 0, 3, 0, 0, "", 0);
    int third = terminal.Mt4OrderSend("XAUUSD", 0, 0.3, 0, 3, 0, 0, "", 0);
    master.monitor.Scan();
    terminal.pool_shift.ticket = first;
    terminal.pool_shift.after_selects = 1;
    master.monitor.Scan();
    master.monitor.Scan();
    master.monitor.Scan();
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)4);
    for (size_t i = 3; i < events.size(); i++) CHECK(events[i].pos != (ulong)second && events[i].pos != (ulong)third);
    if (events.size() >= 4) CHECK(events[3].kind == "close" && events[3].pos == (ulong)first && events[3].remaining == 0.0);
}

TEST(monitor4_partial_close_without_a_from_comment_keeps_pos) {
    // A broker that writes no "from #N" on the rest of a partial close: the rest (same open time, price, symbol, type, magic) is the same position, not a new open.
    Master4 master;
    SimTerminal &terminal = master.fixture.terminal;
    terminal.mt4_rest_comment = "";
    int first = terminal.Mt4OrderSend("EURUSD", 0, 0.5, 0, 3, 0, 0, "", 7);
    master.monitor.Scan();
    CHECK(terminal.Mt4OrderClose(first, 0.2, 0, 3));
    master.monitor.Scan();
    master.monitor.Scan();
    int rest = terminal.mt4_trades[0].ticket;
    CHECK_EQ(master.monitor.PosOfTicket((ulong)rest), (ulong)first);
    CHECK(terminal.Mt4OrderClose(rest, 0.3, 0, 3));
    master.monitor.Scan();
    master.monitor.Scan();
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)3);
    if (events.size() != 3) return;
    CHECK(events[1].kind == "close" && events[1].pos == (ulong)first && events[1].volume == 0.2 && events[1].remaining == 0.3);
    CHECK(events[2].kind == "close" && events[2].pos == (ulong)first && events[2].remaining == 0.0);
}

TEST(monitor4_partial_close_by_keeps_the_larger_position) {
    // Closing a 0.5 buy by a 0.2 sell leaves a 0.3 rest commented "partial close": the buy is partially closed (same pos), the sell closed.
    Master4 master;
    SimTerminal &terminal = master.fixture.terminal;
    int buy = terminal.Mt4OrderSend("EURUSD", 0, 0.5, 0, 3, 0, 0, "", 0);
    int sell = terminal.Mt4OrderSend("EURUSD", 1, 0.2, 0, 3, 0, 0, "", 0);
    master.monitor.Scan();
    CHECK(terminal.Mt4OrderCloseBy(buy, sell));
    master.monitor.Scan();
    master.monitor.Scan();
    std::vector<TbEvent> events = master.Events();
    int opens = 0, buy_closes = 0, sell_closes = 0;
    for (auto &event : events) {
        opens += event.kind == "open";
        if (event.kind == "close" && event.pos == (ulong)buy) {
            buy_closes++;
            CHECK_EQ(event.volume, 0.2);
            CHECK_EQ(event.remaining, 0.3);
        }
        if (event.kind == "close" && event.pos == (ulong)sell) sell_closes++;
    }
    CHECK_EQ(opens, 2);
    CHECK_EQ(buy_closes, 1);
    CHECK_EQ(sell_closes, 1);
}

TEST(monitor4_a_new_order_beside_a_skipped_one_is_an_open) {
    // An order skipped by a pass that the pool shift hid is still open: a new order with its open time, price, symbol, type and magic and fewer lots is a new open, not its rest.
    Master4 master;
    SimTerminal &terminal = master.fixture.terminal;
    int other = terminal.Mt4OrderSend("USDJPY", 1, 0.1, 0, 3, 0, 0, "", 0);
    int first = terminal.Mt4OrderSend("EURUSD", 0, 0.5, 0, 3, 0, 0, "", 7);
    master.monitor.Scan();
    int second = terminal.Mt4OrderSend("EURUSD", 0, 0.2, 0, 3, 0, 0, "", 7);
    terminal.pool_shift.ticket = other;
    terminal.pool_shift.after_selects = 1;
    master.monitor.Scan();
    master.monitor.Scan();
    int opens_of_second = 0, closes_of_first = 0;
    for (auto &event : master.Events()) {
        if (event.kind == "open" && event.pos == (ulong)second) opens_of_second++;
        if (event.kind == "close" && event.pos == (ulong)first) closes_of_first++;
    }
    CHECK_EQ(opens_of_second, 1);
    CHECK_EQ(closes_of_first, 0);
}

TEST(monitor4_lineage_rewrite_cut_short_is_recovered) {
    // The lineage file's rewrite is cut short (the file deleted) right after a partial close: a restart still maps the rest to the first ticket, from the .tmp.
    Master4 master;
    SimTerminal &terminal = master.fixture.terminal;
    int first = terminal.Mt4OrderSend("EURUSD", 0, 0.5, 0, 3, 0, 0, "", 0);
    master.monitor.Scan();
    terminal.Mt4OrderClose(first, 0.1, 0, 3);
    ShimInterruptNextFileMove(1);
    master.monitor.Scan();
    int rest = terminal.mt4_trades[0].ticket;
    master.monitor.Shutdown();
    // "to #" in history ends the chain, so only the lineage file knows.
    terminal.mt4_trades[0].comment = "";
    TbMonitor4 restarted;
    master.Init(restarted);
    CHECK_EQ(restarted.PosOfTicket((ulong)rest), (ulong)first);
}
