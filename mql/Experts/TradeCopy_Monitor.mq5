//+------------------------------------------------------------------+
//| TradeCopy_Monitor.mq5: tradebridge master EA for MetaTrader 5.   |
//| Reports every trade of this account to the bridge.               |
//+------------------------------------------------------------------+
// The logic lives in Include/TradeBridge (Monitor5.mqh); this file holds
// the inputs and the terminal's event handlers. It also compiles as C++
// through mql/host/mql_shim.h (TB_HOST), where #property is skipped.
#ifndef TB_HOST
#property copyright "tradebridge"
#property version   "1.10"
#property description "Sends this account's trades to a tradebridge bridge."
#property description "Add the bridge URL under Tools > Options > Expert Advisors > Allow WebRequest for listed URL."
#endif

#include <TradeBridge/Monitor5.mqh>

input string BridgeUrl = "ws://127.0.0.1:8080/ea";   // Bridge URL: ws://host:port/ea or wss://host/ea
input string ApiKey = "";                            // API key issued by the bridge for this account
input int    TimerMs = 20;                           // Service period in ms (socket, heartbeat, outbox)
input int    OutboxEventsMax = 10000;                // Events kept until the bridge acks them (full: snapshot reconciles)
input int    SnapshotSeconds = 60;                   // Seconds between full position snapshots (protocol: at most 60)
input int    BackoffBaseMs = 500;                    // First reconnect delay in ms (doubles per failure, jittered)
input int    BackoffMaxMs = 30000;                   // Longest reconnect delay in ms
input int    StartupSettleMs = 3000;                 // After login, ms the account's positions must stay unchanged before the EA trusts them

TbMonitor5 g_monitor;

ulong TbNowMs(void) { return GetMicrosecondCount() / 1000; }

int OnInit(void)
  {
   if(ApiKey == "") { Print("TradeBridge: set ApiKey"); return INIT_PARAMETERS_INCORRECT; }
   // The account is not read here: at terminal start OnInit runs before the
   // terminal has logged in. Service waits for the login and the account's
   // positions before it reads the book or says hello (TbStartGate).
   string error = "";
   if(!g_monitor.Configure(BridgeUrl, ApiKey, "TradeCopy_Monitor/1.1", OutboxEventsMax, (ulong)SnapshotSeconds * 1000, (ulong)BackoffBaseMs,
                           (ulong)BackoffMaxMs, (ulong)StartupSettleMs, error))
     {
      Print("TradeBridge: ", error);
      return INIT_PARAMETERS_INCORRECT;
     }
   EventSetMillisecondTimer(TimerMs);
   g_monitor.Service(TbNowMs());
   return INIT_SUCCEEDED;
  }

void OnDeinit(const int reason)
  {
   EventKillTimer();
   g_monitor.Shutdown();
  }

void OnTimer(void) { g_monitor.Service(TbNowMs()); }

void OnTick(void) { g_monitor.Service(TbNowMs()); }

void OnTradeTransaction(const MqlTradeTransaction &trans, const MqlTradeRequest &request, const MqlTradeResult &result)
  {
   g_monitor.OnTransaction(trans);
   // Send at once rather than on the next timer call.
   g_monitor.Service(TbNowMs());
  }
