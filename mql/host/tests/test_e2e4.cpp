// test_e2e4.cpp: TradeCopy_Monitor.mq4 and TradeCopy_Executor.mq4 through
// the shim's Winsock emulation (non-blocking connect, select, recv).
#include "mql_shim.h"
#include "check.h"
#include "e2e_support.h"

static int TaggedLots(SimTerminal &terminal, const std::string &tag, double lots) {
    int count = 0;
    for (auto &order : terminal.mt4_trades)
        if (order.comment == tag && order.lots > lots - 1e-9 && order.lots < lots + 1e-9) count++;
    return count;
}

TEST(e2e4_trades_and_partial_closes_copy_through_a_bridge) {
    // An MT4 open and partial close reach the slave; the slave's rest (renamed "from #") is still closed by tag.
    FakeBridge bridge;
    Pair pair(4, EaMonitor4(), EaExecutor4(), bridge.Port());
    CHECK(pair.init_ok);
    CHECK(pair.PumpUntil([&] { return bridge.CountOf("snapshot") >= 1 && bridge.CountOf("state") >= 1; }));
    int ticket = pair.master.Mt4OrderSend("EURUSD", 0, 0.5, 0, 3, 0, 0, "", 0);
    std::string tag = "tc:1001:" + std::to_string(ticket);
    CHECK(pair.PumpUntil([&] { return TaggedLots(pair.slave, tag, 0.5) == 1; }));
    pair.master.Mt4OrderClose(ticket, 0.2, 0, 3);
    CHECK(pair.PumpUntil([&] { return pair.slave.mt4_trades.size() == 1 && pair.slave.mt4_trades[0].lots > 0.299 && pair.slave.mt4_trades[0].lots < 0.301; }));
    pair.master.Mt4OrderClose(pair.master.mt4_trades[0].ticket, 0.3, 0, 3);
    CHECK(pair.PumpUntil([&] { return pair.slave.mt4_trades.empty() && bridge.CountOf("result") >= 3; }));
    std::vector<std::string> events = bridge.EventsOf(1001);
    CHECK_EQ(events.size(), (size_t)3);
    if (events.size() == 3) CHECK(events[2].find("\"pos\":" + std::to_string(ticket)) != std::string::npos);
}
