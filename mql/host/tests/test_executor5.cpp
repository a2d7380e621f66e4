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
static double PendingPrice(SimTerminal &terminal) { return terminal.orders.empty() ? -1 : terminal.orders[0].price_open; }
static int PendingCount(SimTerminal &terminal) { return (int)terminal.orders.size(); }

#include "executor_scenarios.h"

TEST(executor5_filling_follows_symbol_and_partial_fills_complete) {
    // With only IOC allowed the order uses IOC; a half fill is completed by a second deal within the retry budget.
    Slave slave;
    slave.fixture.terminal.symbols["EURUSD"].filling_flags = SYMBOL_FILLING_IOC;
    slave.fixture.terminal.next_fill_ratio = 0.5;
    TbResult result = slave.Run(MakeCopy(1, "open", 1, "buy", 0.4));
    CHECK(result.status == "filled");
    CHECK_EQ(result.volume, 0.4);
    CHECK_EQ(slave.fixture.terminal.positions.size(), (size_t)2);
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
