// ea_entry.h: one compiled EA as the harness sees it. Each ea_*.cpp
// compiles one Experts/*.mq4|mq5 file in its own namespace (so four EAs
// with the same OnInit/OnTimer names live in one binary) and exports an
// EaEntry. Before calling into an EA, point g_terminal at its terminal.
#ifndef TRADEBRIDGE_EA_ENTRY_H
#define TRADEBRIDGE_EA_ENTRY_H

#include <string>

struct EaEntry {
    const char *name;
    /// 4 or 5.
    int platform;
    int (*on_init)();
    void (*on_deinit)(int reason);
    void (*on_timer)();
    void (*on_tick)();
    /// MT5 only (nullptr for MT4): delivers one queued transaction.
    void (*on_trade_transaction)(const sim5::MqlTradeTransaction &transaction);
    /// Sets an input by its name; false when the EA has no such input.
    bool (*set_input)(const std::string &name, const std::string &value);
};

EaEntry EaMonitor5();
EaEntry EaMonitor4();
EaEntry EaExecutor5();
EaEntry EaExecutor4();

/// Delivers and clears the terminal's queued MT5 transactions.
void EaDeliverTransactions(const EaEntry &ea, SimTerminal &terminal);

#endif
