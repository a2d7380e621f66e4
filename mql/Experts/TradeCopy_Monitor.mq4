//+------------------------------------------------------------------+
//| TradeCopy_Monitor.mq4: tradebridge master EA for MetaTrader 4.   |
//| Reports every trade of this account to the bridge.               |
//+------------------------------------------------------------------+
// The logic lives in Include/TradeBridge (Monitor4.mqh); this file holds
// the inputs and the terminal's event handlers. It needs "Allow DLL
// imports" (Winsock, ws2_32.dll) and speaks plain ws:// only: MT4 has no
// TLS (see mql/README.md). It also compiles as C++ through the host shim.
#ifndef TB_HOST
#property copyright "tradebridge"
#property version   "1.10"
#property strict
#property description "Sends this account's trades to a tradebridge bridge (ws:// only; allow DLL imports)."
#endif

#include <TradeBridge/Monitor4.mqh>

input string BridgeUrl = "ws://127.0.0.1:8080/ea";   // Bridge URL: ws://IPv4-or-localhost:port/ea (no TLS in MT4)
input string ApiKey = "";                            // API key issued by the bridge for this account
input int    TimerMs = 20;                           // Scan and service period in ms
input int    OutboxEventsMax = 10000;                // Events kept until the bridge acks them (full: snapshot reconciles)
input int    SnapshotSeconds = 60;                   // Seconds between full position snapshots (protocol: at most 60)
input int    BackoffBaseMs = 500;                    // First reconnect delay in ms (doubles per failure, jittered)
input int    BackoffMaxMs = 30000;                   // Longest reconnect delay in ms
input int    StartupSettleMs = 3000;                 // After login, ms the account's positions must stay unchanged before the EA trusts them

TbMonitor4 g_monitor;

ulong TbNowMs(void) { return GetMicrosecondCount() / 1000; }

int OnInit(void)
  {
   if(ApiKey == "") { Print("TradeBridge: set ApiKey"); return INIT_PARAMETERS_INCORRECT; }
   if(!IsDllsAllowed()) { Print("TradeBridge: enable 'Allow DLL imports' (Winsock) for this EA"); return INIT_FAILED; }
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
