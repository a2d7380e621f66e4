//+------------------------------------------------------------------+
//| TradeCopy_Executor.mq5: tradebridge slave EA for MetaTrader 5.   |
//| Executes the bridge's copies on this account.                    |
//+------------------------------------------------------------------+
// The logic lives in Include/TradeBridge (Executor.mqh, Executor5.mqh);
// this file holds the inputs and the terminal's event handlers. It also
// compiles as C++ through mql/host/mql_shim.h (TB_HOST).
#ifndef TB_HOST
#property copyright "tradebridge"
#property version   "1.10"
#property description "Copies trades from a tradebridge bridge onto this account."
#property description "Add the bridge URL under Tools > Options > Expert Advisors > Allow WebRequest for listed URL, and allow algo trading."
#endif

#include <TradeBridge/Executor.mqh>

input string BridgeUrl = "ws://127.0.0.1:8080/ea";   // Bridge URL: ws://host:port/ea or wss://host/ea
input string ApiKey = "";                            // API key issued by the bridge for this account
input int    TimerMs = 20;                           // Service period in ms (socket, heartbeat, results)
input int    MaxRetries = 3;                         // Extra attempts after a requote / price change / busy server
input int    RetryDelayMs = 200;                     // Pause between attempts in ms
input int    ClockSkewToleranceMs = 2000;            // Grace after expires_ms for PC-clock vs bridge-clock skew
input int    DefaultDeviationPoints = 30;            // Slippage in points when a copy has no max_dev
input int    SymbolsPerFrame = 100;                  // Market Watch symbols per `symbols` frame (keeps frames < 16 KiB)
input int    BackoffBaseMs = 500;                    // First reconnect delay in ms (doubles per failure, jittered)
input int    BackoffMaxMs = 30000;                   // Longest reconnect delay in ms
input int    StartupSettleMs = 3000;                 // After login, ms the account's positions must stay unchanged before the EA trusts them
input int    FillWaitMs = 30000;                     // Longest wait in ms for the deal of an order the server took, before giving up on it

TbExecutor g_executor;

ulong TbNowMs(void) { return GetMicrosecondCount() / 1000; }
// The PC's GMT (not the broker's server time) in ms: expires_ms comes from
// the bridge's clock, so both sides should run NTP.
ulong TbGmtMs(void) { return (ulong)TimeGMT() * 1000; }

int OnInit(void)
  {
   if(ApiKey == "") { Print("TradeBridge: set ApiKey"); return INIT_PARAMETERS_INCORRECT; }
   // The account is not read here: at terminal start OnInit runs before the
   // terminal has logged in. Service waits for the login and the account's
   // positions before it says hello (Terminal.mqh, TbStartGate).
   string error = "";
   if(!g_executor.Configure(BridgeUrl, ApiKey, "TradeCopy_Executor/1.1", MaxRetries, RetryDelayMs, (ulong)ClockSkewToleranceMs,
                            DefaultDeviationPoints, SymbolsPerFrame, (ulong)BackoffBaseMs, (ulong)BackoffMaxMs, (ulong)StartupSettleMs,
                            (ulong)FillWaitMs, error))
     {
      Print("TradeBridge: ", error);
      return INIT_PARAMETERS_INCORRECT;
     }
   EventSetMillisecondTimer(TimerMs);
   g_executor.Service(TbNowMs(), TbGmtMs());
   return INIT_SUCCEEDED;
  }

void OnDeinit(const int reason)
  {
   EventKillTimer();
   g_executor.Shutdown();
  }

void OnTimer(void) { g_executor.Service(TbNowMs(), TbGmtMs()); }

void OnTick(void) { g_executor.Service(TbNowMs(), TbGmtMs()); }
