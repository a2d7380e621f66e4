// test_e2e5.cpp: TradeCopy_Monitor.mq5 and TradeCopy_Executor.mq5, compiled
// through the shim, copying trades through a WebSocket bridge on loopback.
#include "mql_shim.h"
#include "check.h"
#include "e2e_support.h"

static int TaggedVolumeCount(SimTerminal &terminal, const std::string &tag, double volume) {
    int count = 0;
    for (auto &position : terminal.positions)
        if (position.comment == tag && position.volume > volume - 1e-9 && position.volume < volume + 1e-9) count++;
    return count;
}

static bool StateMentions(FakeBridge &bridge, const std::string &fragment) {
    for (auto &record : bridge.Received())
        if (record.type == "state" && record.json.find(fragment) != std::string::npos) return true;
    return false;
}

static void Open(SimTerminal &terminal, const char *symbol, ENUM_ORDER_TYPE type, double volume, ulong position = 0) {
    MqlTradeRequest request;
    request.action = TRADE_ACTION_DEAL;
    request.symbol = symbol;
    request.type = type;
    request.volume = volume;
    request.position = position;
    MqlTradeResult result;
    terminal.Mt5Send(request, result);
}

TEST(e2e5_trades_copy_through_a_bridge_and_survive_a_drop) {
    // Open and partial close reach the slave; trades made while the bridge is down arrive once after reconnect.
    FakeBridge bridge;
    EaEntry executor = EaExecutor5();
    executor.set_input("SymbolsPerFrame", "2");
    Pair pair(5, EaMonitor5(), executor, bridge.Port());
    CHECK(pair.init_ok);
    // Three Market Watch symbols at two per frame make two `symbols` frames.
    CHECK(pair.PumpUntil([&] { return bridge.CountOf("snapshot") >= 1 && bridge.CountOf("state") >= 1 && bridge.CountOf("symbols") >= 2; }));
    CHECK(!StateMentions(bridge, "XAUUSD\",\"min"));
    Open(pair.master, "EURUSD", ORDER_TYPE_BUY, 0.3);
    ulong pos = pair.master.positions[0].identifier;
    std::string tag = "tc:1001:" + std::to_string(pos);
    CHECK(pair.PumpUntil([&] { return TaggedVolumeCount(pair.slave, tag, 0.3) == 1 && bridge.CountOf("result") >= 1; }));
    // The new position is a material change: a state naming its tag follows.
    CHECK(pair.PumpUntil([&] { return StateMentions(bridge, tag); }));
    Open(pair.master, "EURUSD", ORDER_TYPE_SELL, 0.1, pos);
    CHECK(pair.PumpUntil([&] { return TaggedVolumeCount(pair.slave, tag, 0.2) == 1; }));

    bridge.DropAll();
    CHECK(pair.PumpUntil([&] { return bridge.DropsDone() == 1; }));
    // The trade happens while the link is down: its event waits in the outbox.
    Open(pair.master, "USDJPY", ORDER_TYPE_SELL, 1.0);
    ulong second = pair.master.positions[1].identifier;
    std::string second_tag = "tc:1001:" + std::to_string(second);
    CHECK(pair.PumpUntil([&] { return TaggedVolumeCount(pair.slave, second_tag, 1.0) == 1; }));
    CHECK(pair.PumpUntil([&] { return bridge.CountOf("hello") >= 4; }));
    CHECK_EQ(bridge.EventsOf(1001).size(), (size_t)3);
    CHECK_EQ(pair.slave.positions.size(), (size_t)2);
    CHECK(bridge.Connections() >= 4);
}

TEST(e2e5_executor_restart_gets_missed_copies_once) {
    // Copies routed while the Executor is stopped arrive after its restart (above last_seq), and none twice.
    FakeBridge bridge;
    Pair pair(5, EaMonitor5(), EaExecutor5(), bridge.Port());
    CHECK(pair.init_ok);
    CHECK(pair.PumpUntil([&] { return bridge.CountOf("state") >= 1 && bridge.CountOf("snapshot") >= 1; }));
    Open(pair.master, "EURUSD", ORDER_TYPE_BUY, 0.1);
    CHECK(pair.PumpUntil([&] { return pair.slave.positions.size() == 1 && bridge.CountOf("result") >= 1; }));
    g_terminal = &pair.slave;
    pair.executor.on_deinit(0);
    Open(pair.master, "USDJPY", ORDER_TYPE_SELL, 0.5);
    ulong pos = pair.master.positions[1].identifier;
    g_terminal = &pair.master;
    EaDeliverTransactions(pair.monitor, pair.master);
    pair.monitor.on_timer();
    CHECK(pair.PumpUntil([&] { return bridge.EventsOf(1001).size() == 2; }));
    CHECK_EQ(pair.slave.positions.size(), (size_t)1);
    g_terminal = &pair.slave;
    CHECK_EQ(pair.executor.on_init(), 0);
    std::string tag = "tc:1001:" + std::to_string(pos);
    CHECK(pair.PumpUntil([&] { return TaggedVolumeCount(pair.slave, tag, 0.5) == 1; }));
    // Let a few more service rounds pass: nothing may be opened twice.
    pair.PumpUntil([] { return false; }, 200);
    CHECK_EQ(pair.slave.positions.size(), (size_t)2);
    CHECK_EQ(bridge.CountOf("result"), 2);
}
