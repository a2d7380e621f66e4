// test_ea4.cpp: the compiled MT4 EAs as a terminal runs them, against a
// FakeBridge (scenarios in ea_scenarios.h).
#include "mql_shim.h"
#include "check.h"
#include "ea_entry.h"
#include "fake_bridge.h"
#include "test_support.h"

#include <unistd.h>

#define PLATFORM 4
#define MONITOR EaMonitor4
#define EXECUTOR EaExecutor4
#define EA_TEST(name) TEST(ea4_##name)

static void AddPosition(SimTerminal &terminal, const std::string &comment) {
    Sim4Order order;
    order.ticket = (int)terminal.next_ticket++;
    order.symbol = "EURUSD";
    order.lots = 0.2;
    order.open_price = 1.0813;
    order.comment = order.origin_comment = comment;
    order.open_time = 1732407200;
    terminal.mt4_trades.push_back(order);
}

#include "ea_scenarios.h"
