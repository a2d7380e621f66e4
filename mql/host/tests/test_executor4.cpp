// test_executor4.cpp: the Executor on a simulated MT4 terminal (shared
// scenarios; MT4 renames a partially closed ticket, the tag map follows).
#include "mql_shim.h"
namespace dialect_executor4 {
#include "../../Include/TradeBridge/Executor.mqh"
}
using namespace dialect_executor4;
#include "check.h"
#include "test_support.h"

#define PLATFORM 4
#define SCENARIO(name) executor4_##name

static void ForceRetryable(SimTerminal &terminal, int count) {
    for (int i = 0; i < count; i++) terminal.forced_mt4_errors.push_back(i % 2 ? ERR_TRADE_CONTEXT_BUSY : ERR_REQUOTE);
}
static void ForceFatal(SimTerminal &terminal) { terminal.forced_mt4_errors.push_back(ERR_NOT_ENOUGH_MONEY); }
static int CountOpenPositions(SimTerminal &terminal) {
    int count = 0;
    for (auto &order : terminal.mt4_trades) count += order.type <= 1 ? 1 : 0;
    return count;
}
static double PositionStopLoss(SimTerminal &terminal) {
    for (auto &order : terminal.mt4_trades)
        if (order.type <= 1) return order.sl;
    return -1;
}
static double PendingPrice(SimTerminal &terminal) {
    for (auto &order : terminal.mt4_trades)
        if (order.type > 1) return order.open_price;
    return -1;
}
static int PendingCount(SimTerminal &terminal) { return (int)terminal.mt4_trades.size() - CountOpenPositions(terminal); }

#include "executor_scenarios.h"

TEST(executor4_volume_step_rounding) {
    // Normalisation rounds down to the step, clamps to the maximum and refuses below the minimum.
    CHECK_EQ(TbNormalizeVolume(0.3, 0.01, 100, 0.1), 0.3);
    CHECK_EQ(TbNormalizeVolume(0.29, 0.1, 100, 0.1), 0.2);
    CHECK_EQ(TbNormalizeVolume(250, 0.01, 100, 0.01), 100.0);
    CHECK_EQ(TbNormalizeVolume(0.05, 0.1, 100, 0.1), 0.0);
    CHECK_EQ(TbNormalizeVolume(1.2345, 0.01, 100, 0.01), 1.23);
    CHECK_EQ(TbNormalizeVolume(7, 1, 50, 1), 7.0);
}
