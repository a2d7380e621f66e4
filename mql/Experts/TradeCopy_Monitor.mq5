//+------------------------------------------------------------------+
//| TradeCopy_Monitor.mq5: tradebridge master EA for MetaTrader 5.   |
//| Reports every trade of this account to the bridge.               |
//+------------------------------------------------------------------+
// The logic lives in Include/TradeBridge (Monitor5.mqh); this file holds
// the inputs and the terminal's event handlers. It also compiles as C++
// through mql/host/mql_shim.h (TB_HOST), where #property is skipped.
#ifndef TB_HOST
#property copyright "tradebridge"
#property version   "1.00"
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

TbMonitor5 g_monitor;

ulong TbNowMs(void) { return GetMicrosecondCount() / 1000; }

int OnInit(void)
  {
   if(ApiKey == "") { Print("TradeBridge: set ApiKey"); return INIT_PARAMETERS_INCORRECT; }
   TbHello hello;
   hello.version = TB_PROTOCOL_VERSION;
   hello.key = ApiKey;
   hello.login = (ulong)AccountInfoInteger(ACCOUNT_LOGIN);
   hello.role = "master";
   hello.platform = TB_PLATFORM;
   hello.server = AccountInfoString(ACCOUNT_SERVER);
   hello.ea = "TradeCopy_Monitor/1.0";
   hello.last_seq = 0;
   string outbox = "TradeBridge_outbox_" + TbULongToString(hello.login) + ".log";
   string error = "";
   if(!g_monitor.Init(BridgeUrl, hello, outbox, OutboxEventsMax, (ulong)SnapshotSeconds * 1000, (ulong)BackoffBaseMs,
                      (ulong)BackoffMaxMs, error))
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
