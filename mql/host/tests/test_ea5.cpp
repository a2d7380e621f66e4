// test_ea5.cpp: the compiled MT5 EAs as a terminal runs them, against a
// FakeBridge (scenarios in ea_scenarios.h).
#include "mql_shim.h"
#include "check.h"
#include "ea_entry.h"
#include "fake_bridge.h"
#include "test_support.h"

#include <unistd.h>

#define PLATFORM 5
#define MONITOR EaMonitor5
#define EXECUTOR EaExecutor5
#define EA_TEST(name) TEST(ea5_##name)

static void AddPosition(SimTerminal &terminal, const std::string &comment) {
    SimPosition position;
    position.ticket = position.identifier = terminal.next_ticket++;
    position.symbol = "EURUSD";
    position.volume = 0.2;
    position.price_open = 1.0813;
    position.comment = comment;
    terminal.positions.push_back(position);
}

#include "ea_scenarios.h"
