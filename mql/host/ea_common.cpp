// ea_common.cpp: harness helpers shared by every compiled EA (ea_entry.h).
#define TB_SHIM_IMPLEMENTATION
#include "mql_shim.h"
#include "ea_entry.h"

void EaDeliverTransactions(const EaEntry &ea, SimTerminal &terminal) {
    std::vector<sim5::MqlTradeTransaction> queued = terminal.TakeTransactions();
    if (ea.on_trade_transaction == nullptr) return;
    for (const auto &transaction : queued) ea.on_trade_transaction(transaction);
}
