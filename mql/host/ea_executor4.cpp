// ea_executor4.cpp: TradeCopy_Executor.mq4 compiled for the host (see ea_entry.h).
#include "mql_shim.h"
#include "ea_entry.h"
namespace ea_executor4 {
#include "../Experts/TradeCopy_Executor.mq4"
}

static bool SetInput(const std::string &name, const std::string &value) {
    using namespace ea_executor4;
    if (name == "BridgeUrl") BridgeUrl = value;
    else if (name == "ApiKey") ApiKey = value;
    else if (name == "TimerMs") TimerMs = std::stoi(value);
    else if (name == "MaxRetries") MaxRetries = std::stoi(value);
    else if (name == "RetryDelayMs") RetryDelayMs = std::stoi(value);
    else if (name == "ClockSkewToleranceMs") ClockSkewToleranceMs = std::stoi(value);
    else if (name == "DefaultDeviationPoints") DefaultDeviationPoints = std::stoi(value);
    else if (name == "SymbolsPerFrame") SymbolsPerFrame = std::stoi(value);
    else if (name == "BackoffBaseMs") BackoffBaseMs = std::stoi(value);
    else if (name == "BackoffMaxMs") BackoffMaxMs = std::stoi(value);
    else if (name == "StartupSettleMs") StartupSettleMs = std::stoi(value);
    else if (name == "FillWaitMs") FillWaitMs = std::stoi(value);
    else return false;
    return true;
}

EaEntry EaExecutor4() {
    return EaEntry{"TradeCopy_Executor.mq4", 4, ea_executor4::OnInit, ea_executor4::OnDeinit, ea_executor4::OnTimer,
                   ea_executor4::OnTick, nullptr, SetInput};
}
