// ea_monitor4.cpp: TradeCopy_Monitor.mq4 compiled for the host (see ea_entry.h).
#include "mql_shim.h"
#include "ea_entry.h"
namespace ea_monitor4 {
#include "../Experts/TradeCopy_Monitor.mq4"
}

static bool SetInput(const std::string &name, const std::string &value) {
    using namespace ea_monitor4;
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

EaEntry EaMonitor4() {
    return EaEntry{"TradeCopy_Monitor.mq4", 4, ea_monitor4::OnInit, ea_monitor4::OnDeinit, ea_monitor4::OnTimer,
                   ea_monitor4::OnTick, nullptr, SetInput};
}
