// test_monitor5.cpp: the MT5 Monitor turning simulated terminal
// transactions into events (hedging and netting), idempotently.
#include "mql_shim.h"
namespace dialect_monitor5 {
#include "../../Include/TradeBridge/Monitor5.mqh"
}
using namespace dialect_monitor5;
#include "check.h"
#include "test_support.h"

namespace {

// A Monitor on the fixture's terminal; nothing listens on port 1.
struct Master5 {
    SimFixture fixture;
    TbMonitor5 monitor;
    explicit Master5(bool hedging) : fixture(5) {
        fixture.terminal.hedging = hedging;
        Init();
    }
    void Init() {
        TbHello hello;
        hello.version = 1;
        hello.key = "k";
        hello.login = fixture.terminal.login;
        hello.role = "master";
        hello.platform = "mt5";
        hello.server = "s";
        hello.ea = "test";
        hello.last_seq = 0;
        MqlString error;
        CHECK(monitor.Init("ws://127.0.0.1:1/ea", hello, "outbox.log", 100, 60000, 500, 30000, error));
    }
    uint Trade(ENUM_TRADE_REQUEST_ACTIONS action, const char *symbol, ENUM_ORDER_TYPE type, double volume, ulong position = 0,
               double price = 0, double sl = 0, double tp = 0, ulong order = 0) {
        MqlTradeRequest request;
        request.action = action;
        request.symbol = symbol;
        request.type = type;
        request.volume = volume;
        request.position = position;
        request.price = price;
        request.sl = sl;
        request.tp = tp;
        request.order = order;
        // A trader's terminal sends pending orders with RETURN filling.
        if (action == TRADE_ACTION_PENDING) request.type_filling = ORDER_FILLING_RETURN;
        MqlTradeResult result;
        uint code = fixture.terminal.Mt5Send(request, result);
        last_order = result.order;
        Deliver();
        return code;
    }
    void Deliver() {
        delivered = fixture.terminal.TakeTransactions();
        for (const auto &transaction : delivered) monitor.OnTransaction(transaction);
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
    ulong last_order = 0;
    std::vector<MqlTradeTransaction> delivered;
};

} // namespace

TEST(monitor5_hedging_open_modify_partial_close_close) {
    // Open, SL/TP change, partial close and close give open/modify/close/close on one pos with remaining volumes.
    Master5 master(true);
    CHECK_EQ(master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.3), 10009u);
    ulong pos = master.fixture.terminal.positions[0].identifier;
    master.Trade(TRADE_ACTION_SLTP, "EURUSD", ORDER_TYPE_BUY, 0, pos, 0, 1.07, 1.09);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_SELL, 0.1, pos);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_SELL, 0.2, pos);
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)4);
    if (events.size() != 4) return;
    CHECK(events[0].kind == "open" && events[0].pos == pos && events[0].ticket == pos && events[0].side == "buy");
    CHECK_EQ(events[0].volume, 0.3);
    CHECK_EQ(events[0].price, 1.0813);
    CHECK(events[1].kind == "modify" && events[1].pos == pos && events[1].sl == 1.07 && events[1].tp == 1.09);
    CHECK(events[2].kind == "close" && events[2].pos == pos && events[2].has_remaining);
    CHECK_EQ(events[2].volume, 0.1);
    CHECK_EQ(events[2].remaining, 0.2);
    CHECK_EQ(events[2].price, 1.0812);
    CHECK(events[3].kind == "close" && events[3].pos == pos);
    CHECK_EQ(events[3].remaining, 0.0);
    CHECK(events[2].ticket != pos);
}

TEST(monitor5_repeated_transactions_change_nothing) {
    // Delivering the same transactions a second time emits no new events.
    Master5 master(true);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.3);
    ulong pos = master.fixture.terminal.positions[0].identifier;
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_SELL, 0.1, pos);
    std::vector<MqlTradeTransaction> again = master.delivered;
    int before = master.monitor.PendingEvents();
    for (const auto &transaction : again) master.monitor.OnTransaction(transaction);
    CHECK_EQ(master.monitor.PendingEvents(), before);
    CHECK_EQ(before, 2);
}

TEST(monitor5_pending_place_modify_fill_and_cancel) {
    // A pending order gives pending, a price change modify, its fill an open with pos = order ticket; a delete cancel.
    Master5 master(true);
    master.Trade(TRADE_ACTION_PENDING, "EURUSD", ORDER_TYPE_BUY_LIMIT, 0.2, 0, 1.0750, 1.07, 1.09);
    ulong order = master.last_order;
    master.Trade(TRADE_ACTION_MODIFY, "EURUSD", ORDER_TYPE_BUY_LIMIT, 0, 0, 1.0760, 1.07, 1.09, order);
    master.fixture.terminal.Mt5TriggerPending(order);
    master.Deliver();
    master.Trade(TRADE_ACTION_PENDING, "XAUUSD", ORDER_TYPE_SELL_STOP, 0.5, 0, 1980.0);
    ulong second = master.last_order;
    master.Trade(TRADE_ACTION_REMOVE, "XAUUSD", ORDER_TYPE_SELL_STOP, 0, 0, 0, 0, 0, second);
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)5);
    if (events.size() != 5) return;
    CHECK(events[0].kind == "pending" && events[0].pos == order && events[0].side == "buy_limit" && events[0].price == 1.0750);
    CHECK(events[1].kind == "modify" && events[1].pos == order && events[1].price == 1.0760);
    CHECK(events[2].kind == "open" && events[2].pos == order && events[2].side == "buy" && events[2].volume == 0.2);
    CHECK(events[3].kind == "pending" && events[3].pos == second && events[3].side == "sell_stop");
    CHECK(events[4].kind == "cancel" && events[4].pos == second);
}

TEST(monitor5_netting_reversal_is_close_then_open) {
    // On a netting account, selling 0.5 against a 0.2 buy closes 0.2 and opens a 0.3 sell under the same pos.
    Master5 master(false);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.2);
    ulong pos = master.fixture.terminal.positions[0].identifier;
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_SELL, 0.5);
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)3);
    if (events.size() != 3) return;
    CHECK(events[1].kind == "close" && events[1].pos == pos && events[1].volume == 0.2 && events[1].remaining == 0.0);
    CHECK(events[2].kind == "open" && events[2].pos == pos && events[2].side == "sell");
    CHECK_EQ(events[2].volume, 0.3);
}

TEST(monitor5_netting_partial_close_and_scale_in) {
    // Netting: a smaller opposite deal is a partial close; a same-side deal (scale-in) emits nothing and is logged.
    Master5 master(false);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.5);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_SELL, 0.2);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.1);
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)2);
    if (events.size() == 2) CHECK(events[1].kind == "close" && events[1].volume == 0.2 && events[1].remaining == 0.3);
    CHECK(ShimLogContains("netting scale-in"));
}

TEST(monitor5_close_by_closes_both_positions) {
    // Closing a buy by an opposite sell reports a close for each position id.
    Master5 master(true);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.2);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_SELL, 0.1);
    ulong buy = master.fixture.terminal.positions[0].identifier, sell = master.fixture.terminal.positions[1].identifier;
    MqlTradeRequest request;
    request.action = TRADE_ACTION_CLOSE_BY;
    request.position = buy;
    request.position_by = sell;
    MqlTradeResult result;
    master.fixture.terminal.Mt5Send(request, result);
    master.Deliver();
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)4);
    if (events.size() != 4) return;
    CHECK(events[2].kind == "close" && events[2].pos == buy && events[2].volume == 0.1 && events[2].remaining == 0.1);
    CHECK(events[3].kind == "close" && events[3].pos == sell && events[3].remaining == 0.0);
}

TEST(monitor5_snapshot_lists_the_book) {
    // The snapshot carries every open position and pending order with its id, side, volume, price, stops, and the account's figures.
    Master5 master(true);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.3, 0, 0, 1.07, 1.09);
    master.Trade(TRADE_ACTION_DEAL, "USDJPY", ORDER_TYPE_SELL, 1.0);
    master.Trade(TRADE_ACTION_PENDING, "XAUUSD", ORDER_TYPE_BUY_LIMIT, 0.5, 0, 1980.0, 1970.0, 0);
    TbSnapshot snapshot;
    master.monitor.BuildSnapshot(snapshot);
    CHECK_EQ(ArraySize(snapshot.positions), 3);
    if (ArraySize(snapshot.positions) != 3) return;
    CHECK(snapshot.positions[0].symbol == "EURUSD" && snapshot.positions[0].side == "buy" && snapshot.positions[0].sl == 1.07);
    CHECK(snapshot.positions[1].side == "sell" && snapshot.positions[1].volume == 1.0);
    // Without it the bridge would take the order for deleted and cancel its copies.
    CHECK(snapshot.positions[2].side == "buy_limit" && snapshot.positions[2].price == 1980.0 && snapshot.positions[2].sl == 1970.0);
    CHECK_EQ(snapshot.positions[2].pos, master.fixture.terminal.orders[0].ticket);
    CHECK(snapshot.currency == "USD" && snapshot.balance == 10000);
}

TEST(monitor5_events_survive_a_restart) {
    // Events not yet acked are still in the outbox after the EA restarts, and the book is reloaded from the terminal.
    Master5 master(true);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.3);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.1);
    master.monitor.Shutdown();
    TbMonitor5 restarted;
    TbHello hello;
    hello.version = 1; hello.key = "k"; hello.login = 1; hello.role = "master"; hello.platform = "mt5"; hello.server = "s";
    hello.ea = "t"; hello.last_seq = 0;
    MqlString error;
    CHECK(restarted.Init("ws://127.0.0.1:1/ea", hello, "outbox.log", 100, 60000, 500, 30000, error));
    CHECK_EQ(restarted.PendingEvents(), 2);
    CHECK_EQ(restarted.TrackedPositions(), 2);
}

TEST(monitor5_open_and_close_delivered_together) {
    // The position opens and closes before the Monitor sees either transaction: it reports the open (from the deal) and then the close.
    Master5 master(true);
    MqlTradeRequest request;
    request.action = TRADE_ACTION_DEAL;
    request.symbol = "EURUSD";
    request.type = ORDER_TYPE_BUY;
    request.volume = 0.3;
    MqlTradeResult result;
    master.fixture.terminal.Mt5Send(request, result);
    ulong pos = master.fixture.terminal.positions[0].identifier;
    request.type = ORDER_TYPE_SELL;
    request.position = pos;
    master.fixture.terminal.Mt5Send(request, result);
    master.Deliver();
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)2);
    if (events.size() != 2) return;
    CHECK(events[0].kind == "open" && events[0].pos == pos && events[0].volume == 0.3);
    CHECK(events[1].kind == "close" && events[1].pos == pos && events[1].remaining == 0.0);
}

TEST(monitor5_a_deal_not_yet_in_history_is_not_lost) {
    // DEAL_ADD arrives before the history cache holds the deal (HistoryDealSelect fails): the deal is read again later and reported, not marked seen and dropped.
    Master5 master(true);
    master.fixture.terminal.deal_history_delay_ms = 50;
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.3);
    CHECK_EQ(master.monitor.PendingEvents(), 0);
    master.fixture.terminal.AdvanceMilliseconds(100);
    master.monitor.Service(GetMicrosecondCount() / 1000);
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)1);
    if (events.size() == 1) CHECK(events[0].kind == "open" && events[0].volume == 0.3);
}

TEST(monitor5_an_order_filled_in_two_deals_is_one_open) {
    // One market order filled in two deals (0.15 + 0.15): the bridge hears one open of 0.3, not an open of 0.15 and a logged scale-in.
    Master5 master(true);
    master.fixture.terminal.deals_per_fill = 2;
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.3);
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)1);
    if (events.size() == 1) CHECK(events[0].kind == "open" && events[0].volume == 0.3);
}

TEST(monitor5_a_reopened_netting_position_is_found_by_its_identifier) {
    // The broker re-opens a netting position under a new ticket (same identifier); a scale-in and a close that follow still read the position, so the close reports what really remains.
    Master5 master(false);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.5);
    ulong pos = master.fixture.terminal.positions[0].identifier;
    CHECK(master.fixture.terminal.ReopenPosition(pos));
    master.Deliver();
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_BUY, 0.3);
    master.Trade(TRADE_ACTION_DEAL, "EURUSD", ORDER_TYPE_SELL, 0.5);
    std::vector<TbEvent> events = master.Events();
    CHECK_EQ(events.size(), (size_t)2);
    if (events.size() == 2) {
        CHECK(events[1].kind == "close" && events[1].pos == pos);
        CHECK_EQ(events[1].volume, 0.5);
        CHECK_EQ(events[1].remaining, 0.3);
    }
}

TEST(monitor5_reordered_transactions_give_the_same_events) {
    // Transactions delivered in reverse (open, stops, partial close and close of one position in one batch, then a pending order placed, moved and deleted) give the events of the in-order delivery.
    for (bool reversed : {false, true}) {
        Master5 master(true);
        SimTerminal &terminal = master.fixture.terminal;
        terminal.transactions_reversed = reversed;
        MqlTradeRequest request;
        MqlTradeResult result;
        request.action = TRADE_ACTION_DEAL;
        request.symbol = "EURUSD";
        request.type = ORDER_TYPE_BUY;
        request.volume = 0.3;
        terminal.Mt5Send(request, result);
        ulong pos = terminal.positions[0].identifier;
        MqlTradeRequest stops;
        stops.action = TRADE_ACTION_SLTP;
        stops.position = pos;
        stops.sl = 1.07;
        terminal.Mt5Send(stops, result);
        request.type = ORDER_TYPE_SELL;
        request.position = pos;
        request.volume = 0.1;
        terminal.Mt5Send(request, result);
        request.volume = 0.2;
        terminal.Mt5Send(request, result);
        master.Deliver();
        master.Trade(TRADE_ACTION_PENDING, "EURUSD", ORDER_TYPE_BUY_LIMIT, 0.2, 0, 1.0750);
        ulong order = master.last_order;
        master.Trade(TRADE_ACTION_MODIFY, "EURUSD", ORDER_TYPE_BUY_LIMIT, 0, 0, 1.0760, 0, 0, order);
        master.Trade(TRADE_ACTION_REMOVE, "EURUSD", ORDER_TYPE_BUY_LIMIT, 0, 0, 0, 0, 0, order);
        std::vector<TbEvent> events = master.Events();
        std::string kinds;
        for (auto &event : events) kinds += event.kind.Utf8() + " ";
        CHECK_EQ(kinds, std::string("open close close pending modify cancel "));
        if (events.size() == 6) {
            CHECK(events[0].pos == pos && events[0].volume == 0.3);
            CHECK(events[2].pos == pos && events[2].remaining == 0.0);
        }
    }
}
