// test_executor5.cpp: the Executor on a simulated MT5 terminal (shared
// scenarios, plus netting, filling mode and partial fills).
#include "mql_shim.h"
namespace dialect_executor5 {
#include "../../Include/TradeBridge/Executor.mqh"
}
using namespace dialect_executor5;
#include "check.h"
#include "test_support.h"

#define PLATFORM 5
#define SCENARIO(name) executor5_##name

static void ForceRetryable(SimTerminal &terminal, int count) {
    for (int i = 0; i < count; i++) terminal.forced_retcodes.push_back(i % 2 ? TRADE_RETCODE_PRICE_CHANGED : TRADE_RETCODE_REQUOTE);
}
static void ForceFatal(SimTerminal &terminal) { terminal.forced_retcodes.push_back(TRADE_RETCODE_NO_MONEY); }
static int CountOpenPositions(SimTerminal &terminal) { return (int)terminal.positions.size(); }
static double PositionStopLoss(SimTerminal &terminal) { return terminal.positions.empty() ? -1 : terminal.positions[0].sl; }
static double PositionTakeProfit(SimTerminal &terminal) { return terminal.positions.empty() ? -1 : terminal.positions[0].tp; }
static double PositionVolume(SimTerminal &terminal) { return terminal.positions.empty() ? -1 : terminal.positions[0].volume; }
static double PendingPrice(SimTerminal &terminal) { return terminal.orders.empty() ? -1 : terminal.orders[0].price_open; }
static int PendingCount(SimTerminal &terminal) { return (int)terminal.orders.size(); }

static void ForceTimeout(SimTerminal &terminal) { terminal.forced_retcodes.push_back(TRADE_RETCODE_TIMEOUT); }

#include "executor_scenarios.h"

TEST(executor5_a_partial_fill_is_reported_not_topped_up) {
    // With only IOC allowed the order goes out as IOC; a half fill is reported as filled 0.2 of 0.4 (partial), and no second order opens another position under the same tag.
    Slave slave;
    slave.fixture.terminal.symbols["EURUSD"].filling_flags = SYMBOL_FILLING_IOC;
    slave.fixture.terminal.next_fill_ratio = 0.5;
    TbResult result = slave.Run(MakeCopy(1, "open", 1, "buy", 0.4));
    CHECK(result.status == "filled");
    CHECK_EQ(result.volume, 0.2);
    CHECK(result.msg.Utf8().find("partial") != std::string::npos);
    CHECK_EQ(slave.fixture.terminal.positions.size(), (size_t)1);
    CHECK_EQ(slave.fixture.terminal.trade_requests_count, 1);
}

TEST(executor5_an_accepted_order_is_never_sent_again) {
    // The server accepts a market order (PLACED, or DONE with volume 0) and makes its deal 300 ms later: the Executor waits for that deal instead of sending the order again, then reports its volume.
    for (uint accepted : {(uint)TRADE_RETCODE_PLACED, (uint)TRADE_RETCODE_DONE}) {
        Slave slave;
        SimTerminal &terminal = slave.fixture.terminal;
        terminal.deal_delay_ms = 300;
        terminal.accepted_retcode = accepted;
        TbResult first = slave.Run(MakeCopy(1, "open", 1, "buy", 0.2));
        terminal.AdvanceMilliseconds(500);
        TbResult result = first.status == "" ? slave.Run(MakeCopy(1, "open", 1, "buy", 0.2)) : first;
        CHECK(result.status == "filled");
        CHECK_EQ(result.volume, 0.2);
        CHECK_EQ(terminal.trade_requests_count, 1);
        CHECK_EQ(terminal.positions.size(), (size_t)1);
        CHECK_EQ(slave.executor.LastSeq(), 1ul);
    }
}

TEST(executor5_a_close_accepted_without_its_deal_waits_for_it) {
    // A partial close the server accepts with volume 0 is not sent again: the position ends at 0.3 of 0.5, never below.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    CHECK(slave.Run(MakeCopy(1, "open", 1, "buy", 0.5)).status == "filled");
    terminal.deal_delay_ms = 200;
    TbResult first = slave.Run(MakeCopy(2, "close", 1, "buy", 0.2));
    terminal.AdvanceMilliseconds(300);
    TbResult result = first.status == "" ? slave.Run(MakeCopy(2, "close", 1, "buy", 0.2)) : first;
    CHECK(result.status == "filled");
    CHECK_EQ(result.volume, 0.2);
    CHECK_EQ(terminal.positions.size(), (size_t)1);
    if (terminal.positions.size() == 1) CHECK_EQ(terminal.positions[0].volume, 0.3);
}

TEST(executor5_pending_orders_use_return_filling_and_an_allowed_expiration) {
    // A symbol whose pending orders take only RETURN filling and DAY expiry: the copy is placed (not refused with 10030 or 10022).
    Slave slave;
    slave.fixture.terminal.symbols["EURUSD"].filling_flags = SYMBOL_FILLING_FOK | SYMBOL_FILLING_IOC;
    slave.fixture.terminal.symbols["EURUSD"].expiration_flags = SYMBOL_EXPIRATION_DAY;
    TbResult placed = slave.Run(MakeCopy(1, "pending", 2, "buy_limit", 0.2, 1.0750));
    CHECK(placed.status == "filled");
    CHECK_EQ(PendingCount(slave.fixture.terminal), 1);
}

TEST(executor5_a_refused_filling_mode_falls_back_to_the_next) {
    // The symbol advertises FOK and IOC but the server refuses FOK (10030): the order goes out again as IOC and fills once.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    terminal.symbols["EURUSD"].filling_flags = SYMBOL_FILLING_FOK | SYMBOL_FILLING_IOC;
    terminal.symbols["EURUSD"].fillings_refused = 1 << ORDER_FILLING_FOK;
    TbResult result = slave.Run(MakeCopy(1, "open", 1, "buy", 0.1));
    CHECK(result.status == "filled");
    CHECK_EQ(terminal.positions.size(), (size_t)1);
    CHECK_EQ(terminal.trade_requests_count, 2);
}

TEST(executor5_copy_found_after_the_broker_reopens_its_position) {
    // A broker service operation gives the copy's position a new ticket (same identifier): a close still finds it and closes it.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    terminal.comment_length_max = 0;
    CHECK(slave.Run(MakeCopy(1, "open", 1, "buy", 0.2)).status == "filled");
    CHECK(terminal.ReopenPosition(terminal.positions[0].identifier));
    terminal.positions[0].comment = "swap";
    CHECK(slave.Run(MakeCopy(2, "close", 1, "buy", 0.2)).status == "filled");
    CHECK_EQ(terminal.positions.size(), (size_t)0);
}

TEST(executor5_netting_keeps_each_masters_share) {
    // On a netting account two copies share one position; closing one leaves the other's volume and tag share.
    Slave slave(false);
    CHECK(slave.Run(MakeCopy(1, "open", 1, "buy", 0.2)).status == "filled");
    TbCopy second = MakeCopy(2, "open", 2, "buy", 0.3);
    CHECK(slave.Run(second).status == "filled");
    CHECK_EQ(slave.fixture.terminal.positions.size(), (size_t)1);
    CHECK_EQ(slave.fixture.terminal.positions[0].volume, 0.5);
    TbResult close = slave.Run(MakeCopy(3, "close", 1, "buy", 0.2));
    CHECK(close.status == "filled");
    CHECK_EQ(close.volume, 0.2);
    CHECK_EQ(slave.fixture.terminal.positions[0].volume, 0.3);
    second.seq = 4;
    CHECK(slave.Run(second).status == "skipped");
    CHECK(slave.Run(MakeCopy(5, "close", 1, "buy", 0.2)).status == "skipped");
}

TEST(executor5_a_copy_that_waited_long_still_waits_for_its_deal) {
    // A copy held 40 s by a broker outage, then taken by the server without its deal: the fill wait counts from the order, not from the copy's first attempt, so it is reported filled.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    terminal.broker_connected = false;
    CHECK(slave.Run(MakeCopy(1, "open", 1, "buy", 0.2)).status == "");
    terminal.AdvanceMilliseconds(40000);
    terminal.broker_connected = true;
    terminal.deal_delay_ms = 300;
    CHECK(slave.Run(MakeCopy(1, "open", 1, "buy", 0.2)).status == "");
    terminal.AdvanceMilliseconds(500);
    TbResult result = slave.Run(MakeCopy(1, "open", 1, "buy", 0.2));
    CHECK(result.status == "filled");
    CHECK_EQ(result.volume, 0.2);
    CHECK_EQ(terminal.trade_requests_count, 1);
}

TEST(executor5_a_partly_filled_close_reports_what_it_closed) {
    // An IOC close of 0.4 that fills 0.2 reports 0.2 and "partial close", and the rest is still found under the tag; a close waiting for its deal reports against the volume it started from.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    terminal.symbols["EURUSD"].filling_flags = SYMBOL_FILLING_IOC;
    CHECK(slave.Run(MakeCopy(1, "open", 1, "buy", 0.4)).status == "filled");
    terminal.next_fill_ratio = 0.5;
    TbResult partial = slave.Run(MakeCopy(2, "close", 1, "buy", 0.4));
    CHECK(partial.status == "filled");
    CHECK_EQ(partial.volume, 0.2);
    CHECK(partial.msg.Utf8().find("partial close") != std::string::npos);
    CHECK(slave.Run(MakeCopy(3, "open", 2, "buy", 0.5)).status == "filled");
    terminal.deal_delay_ms = 200;
    CHECK(slave.Run(MakeCopy(4, "close", 2, "buy", 0.3)).status == "");
    terminal.AdvanceMilliseconds(300);
    TbResult waited = slave.Run(MakeCopy(4, "close", 2, "buy", 0.3));
    CHECK(waited.status == "filled");
    CHECK_EQ(waited.volume, 0.3);
    CHECK(waited.msg.Utf8().find("0.2 remains") != std::string::npos);
    terminal.deal_delay_ms = -1;
    CHECK(slave.Run(MakeCopy(5, "close", 1, "buy", 0.2)).status == "filled");
    CHECK(slave.Run(MakeCopy(6, "close", 2, "buy", 0.2)).status == "filled");
    CHECK_EQ(terminal.positions.size(), (size_t)0);
}
