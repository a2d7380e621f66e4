// test_executor4.cpp: the Executor on a simulated MT4 terminal (shared
// scenarios; MT4 renames a partially closed ticket, the tag map follows).
#include "mql_shim.h"
namespace dialect_executor4 {
#include "../../Include/TradeBridge/Executor.mqh"
}
using namespace dialect_executor4;
#include "check.h"
#include "test_support.h"

#include <unistd.h>

#define PLATFORM 4
#define SCENARIO(name) executor4_##name

static void ForceRetryable(SimTerminal &terminal, int count) {
    for (int i = 0; i < count; i++) terminal.forced_mt4_errors.push_back(i % 2 ? ERR_PRICE_CHANGED : ERR_REQUOTE);
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
static double PositionTakeProfit(SimTerminal &terminal) {
    for (auto &order : terminal.mt4_trades)
        if (order.type <= 1) return order.tp;
    return -1;
}
static double PositionVolume(SimTerminal &terminal) {
    for (auto &order : terminal.mt4_trades)
        if (order.type <= 1) return order.lots;
    return -1;
}
static double PendingPrice(SimTerminal &terminal) {
    for (auto &order : terminal.mt4_trades)
        if (order.type > 1) return order.open_price;
    return -1;
}
static int PendingCount(SimTerminal &terminal) { return (int)terminal.mt4_trades.size() - CountOpenPositions(terminal); }

static void ForceTimeout(SimTerminal &terminal) { terminal.forced_mt4_errors.push_back(ERR_TRADE_TIMEOUT); }

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

TEST(executor4_partial_close_rest_found_without_a_from_comment) {
    // A broker that writes no "from #N" on a partial close's rest: the Executor finds the rest by open time, price, symbol, type and magic, reports it under the tag, and closes it.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    terminal.mt4_rest_comment = "";
    CHECK(slave.Run(MakeCopy(1, "open", 5, "buy", 0.5)).status == "filled");
    CHECK(slave.Run(MakeCopy(2, "close", 5, "buy", 0.2)).status == "filled");
    TbState state;
    slave.executor.BuildState(state);
    CHECK(ArraySize(state.positions) == 1 && state.positions[0].comment == "tc:1234567:5");
    CHECK(slave.Run(MakeCopy(3, "close", 5, "buy", 0.3)).status == "filled");
    CHECK_EQ(CountOpenPositions(terminal), 0);
}

TEST(executor4_sets_tcp_nodelay_on_its_socket) {
    // Winsock leaves Nagle's algorithm on; the MT4 transport turns it off with setsockopt(TCP_NODELAY) so small frames are not held back.
    SimFixture fixture(4);
    uint16_t port = 0;
    int listener = ShimTestListen(port);
    CHECK(listener >= 0);
    TbTransport transport;
    MqlString error;
    CHECK(transport.Connect("127.0.0.1", port, false, 1000, error));
    int status = 0;
    for (int pass = 0; pass < 1000 && status == 0; pass++) {
        status = transport.PollConnect(error);
        if (status == 0) usleep(1000);
    }
    CHECK_EQ(status, 1);
    // The EA's socket is the one connected to our listener.
    int client = ShimTestSocketConnectedTo(port);
    CHECK(client >= 0);
    CHECK(client >= 0 && ShimSocketNoDelay(client));
    transport.Close();
    ShimTestClose(listener);
}
