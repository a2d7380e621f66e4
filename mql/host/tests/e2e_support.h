// e2e_support.h: runs a compiled Monitor on a simulated master terminal and
// a compiled Executor on a simulated slave terminal, both against one
// bridge at 127.0.0.1:<port> (the fake bridge here; the real bridge later:
// only the URL changes). Real sockets and the real clock, so waits are
// event-driven with generous bounds, never timing assertions.
#ifndef TRADEBRIDGE_E2E_SUPPORT_H
#define TRADEBRIDGE_E2E_SUPPORT_H

#include "ea_entry.h"
#include "fake_bridge.h"

#include <chrono>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>

struct Pair {
    SimTerminal master, slave;
    EaEntry monitor, executor;
    int platform;
    Pair(int platform_number, EaEntry monitor_entry, EaEntry executor_entry, int port)
        : monitor(monitor_entry), executor(executor_entry), platform(platform_number) {
        Setup(master, 1001);
        Setup(slave, 2002);
        std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/ea";
        for (EaEntry *ea : {&monitor, &executor}) {
            ea->set_input("BridgeUrl", url);
            ea->set_input("ApiKey", "test-key");
            ea->set_input("BackoffBaseMs", "20");
            ea->set_input("BackoffMaxMs", "100");
        }
        g_terminal = &slave;
        init_ok = executor.on_init() == 0;
        g_terminal = &master;
        init_ok = init_ok && monitor.on_init() == 0;
    }
    ~Pair() {
        g_terminal = &master;
        monitor.on_deinit(0);
        g_terminal = &slave;
        executor.on_deinit(0);
        g_terminal = nullptr;
        for (SimTerminal *terminal : {&master, &slave}) {
            std::string command = "rm -rf '" + terminal->files_dir + "'";
            if (std::system(command.c_str()) != 0) std::abort();
        }
    }
    void Setup(SimTerminal &terminal, ulong login) {
        char pattern[] = "/tmp/tradebridge-e2e-XXXXXX";
        terminal.files_dir = mkdtemp(pattern);
        terminal.platform = platform;
        terminal.login = login;
        terminal.clock_real = true;
        terminal.AddSymbol("EURUSD", 1.08120, 1.08130, 5);
        terminal.AddSymbol("USDJPY", 151.230, 151.245, 3);
        terminal.AddSymbol("XAUUSD", 1990.10, 1990.40, 2);
    }
    // Runs both EAs' timers until `done` holds; false after `limit_ms`.
    bool PumpUntil(const std::function<bool()> &done, int limit_ms = 5000) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(limit_ms);
        while (std::chrono::steady_clock::now() < deadline) {
            g_terminal = &master;
            if (monitor.on_trade_transaction != nullptr) EaDeliverTransactions(monitor, master);
            monitor.on_timer();
            g_terminal = &slave;
            executor.on_timer();
            g_terminal = &master;
            if (done()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return false;
    }
    bool init_ok = false;
};

#endif
