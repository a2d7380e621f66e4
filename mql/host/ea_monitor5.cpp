// ea_monitor5.cpp: TradeCopy_Monitor.mq5 compiled for the host (see ea_entry.h).
#include "mql_shim.h"
#include "ea_entry.h"
namespace ea_monitor5 {
#include "../Experts/TradeCopy_Monitor.mq5"
}

static bool SetInput(const std::string &name, const std::string &value) {
    using namespace ea_monitor5;
    if (name == "BridgeUrl") BridgeUrl = value;
    else if (name == "ApiKey") ApiKey = value;
    else if (name == "TimerMs") TimerMs = std::stoi(value);
    else if (name == "OutboxEventsMax") OutboxEventsMax = std::stoi(value);
    else if (name == "SnapshotSeconds") SnapshotSeconds = std::stoi(value);
    else if (name == "BackoffBaseMs") BackoffBaseMs = std::stoi(value);
    else if (name == "BackoffMaxMs") BackoffMaxMs = std::stoi(value);
    else if (name == "StartupSettleMs") StartupSettleMs = std::stoi(value);
    else return false;
    return true;
}

static void Transaction(const sim5::MqlTradeTransaction &transaction) {
    sim5::MqlTradeRequest request;
    sim5::MqlTradeResult result;
    ea_monitor5::OnTradeTransaction(transaction, request, result);
}

EaEntry EaMonitor5() {
    return EaEntry{"TradeCopy_Monitor.mq5", 5, ea_monitor5::OnInit, ea_monitor5::OnDeinit, ea_monitor5::OnTimer,
                   ea_monitor5::OnTick, Transaction, SetInput};
}
