// test_support.h: a simulated terminal with its own temporary Files folder,
// made current for the duration of a test.
#ifndef TRADEBRIDGE_TEST_SUPPORT_H
#define TRADEBRIDGE_TEST_SUPPORT_H

#include <cstdlib>
#include <string>

bool ShimLogContains(const std::string &fragment);
void ShimLogClear();

struct SimFixture {
    SimTerminal terminal;
    SimTerminal *previous;
    explicit SimFixture(int platform) : previous(g_terminal) {
        char pattern[] = "/tmp/tradebridge-test-XXXXXX";
        terminal.files_dir = mkdtemp(pattern);
        terminal.platform = platform;
        terminal.AddSymbol("EURUSD", 1.08120, 1.08130, 5);
        terminal.AddSymbol("USDJPY", 151.230, 151.245, 3);
        terminal.AddSymbol("XAUUSD", 1990.10, 1990.40, 2);
        terminal.symbols["XAUUSD"].volume_min = 0.1;
        terminal.symbols["XAUUSD"].volume_step = 0.1;
        terminal.symbols["XAUUSD"].contract = 100;
        g_terminal = &terminal;
        ShimLogClear();
    }
    ~SimFixture() {
        g_terminal = previous;
        std::string command = "rm -rf '" + terminal.files_dir + "'";
        if (std::system(command.c_str()) != 0) std::abort();
    }
};

#endif
