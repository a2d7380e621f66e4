//+------------------------------------------------------------------+
//| Terminal.mqh: what the terminal says of its account and of its   |
//| link to the trade server, and the start-up gate both EAs wait at. |
//+------------------------------------------------------------------+
// # Layout
// - TbAccountLogin / TbAccountServer: the account, 0 / "" until the
//   terminal has logged in (at terminal start OnInit runs before that).
// - TbTerminalConnected: the link to the trade server.
// - TbTradingBlocked(): "" when an EA may send trade requests now, else
//   why not (not connected, AutoTrading off, EA or account not allowed).
// - TbBookCount: open positions and orders the terminal shows.
// - TbStartGate.Ready(now_ms): true once the login and server are known,
//   the terminal is connected, the account's balance or equity is known
//   (not 0), and the book count has stayed the same for the settle time.
//   Nothing that names a file after the login, says hello, or reads the
//   book for the bridge may run before.
// # Invariants
// - The gate opens once per OnInit and never closes again: a broker
//   disconnect later does not empty the terminal's lists.
// - The reference does not say when the positions of a freshly logged-in
//   account become visible, so the gate assumes they may trail the login
//   (the safe reading): it waits for the account's money, which arrives
//   with its synchronisation, and then for the count to settle. An account
//   whose balance and equity are both 0 cannot trade and is waited for.
#ifndef TRADEBRIDGE_TERMINAL_MQH
#define TRADEBRIDGE_TERMINAL_MQH

#include "Compat.mqh"
#include "Text.mqh"

// How long the book must stay unchanged after the login before an EA
// trusts it; an EA input overrides it.
#define TB_STARTUP_SETTLE_MS_DEFAULT 3000

ulong TbAccountLogin(void)
  {
#ifdef __MQL5__
   return (ulong)AccountInfoInteger(ACCOUNT_LOGIN);
#else
   return (ulong)AccountNumber();
#endif
  }

string TbAccountServer(void)
  {
#ifdef __MQL5__
   return AccountInfoString(ACCOUNT_SERVER);
#else
   return AccountServer();
#endif
  }

bool TbTerminalConnected(void)
  {
#ifdef __MQL5__
   return TerminalInfoInteger(TERMINAL_CONNECTED) != 0;
#else
   return IsConnected();
#endif
  }

// "" when trade requests may go out now; otherwise the reason, for the log.
string TbTradingBlocked(void)
  {
   if(!TbTerminalConnected()) return "the terminal is not connected to the trade server";
#ifdef __MQL5__
   if(TerminalInfoInteger(TERMINAL_TRADE_ALLOWED) == 0) return "Algo Trading is off in the terminal";
   if(MQLInfoInteger(MQL_TRADE_ALLOWED) == 0) return "algo trading is not allowed for this EA (its Common tab)";
   if(AccountInfoInteger(ACCOUNT_TRADE_ALLOWED) == 0) return "the account may not trade (logged in with the investor password?)";
   if(AccountInfoInteger(ACCOUNT_TRADE_EXPERT) == 0) return "the broker does not let EAs trade on this account";
#else
   if(!IsExpertEnabled()) return "AutoTrading is off in the terminal";
   if(!IsTradeAllowed()) return "trading is not allowed for this EA, or the trade context is busy";
#endif
   return "";
  }

// The account's balance plus equity in magnitude: 0 until the terminal has
// the account's figures.
double TbAccountMoney(void)
  {
#ifdef __MQL5__
   return MathAbs(AccountInfoDouble(ACCOUNT_BALANCE)) + MathAbs(AccountInfoDouble(ACCOUNT_EQUITY));
#else
   return MathAbs(AccountBalance()) + MathAbs(AccountEquity());
#endif
  }

int TbBookCount(void)
  {
#ifdef __MQL5__
   return PositionsTotal() + OrdersTotal();
#else
   return OrdersTotal();
#endif
  }

class TbStartGate
  {
private:
   ulong             m_settle_ms;
   // Book count at the last look, -1 while not logged in and connected.
   int               m_last_count;
   // When the count last changed (or the login became known).
   ulong             m_stable_since_ms;
   bool              m_open;
   // What the last log line said we wait for, so it is said once.
   string            m_logged;
public:
                     TbStartGate(void) : m_settle_ms(TB_STARTUP_SETTLE_MS_DEFAULT), m_last_count(-1), m_stable_since_ms(0), m_open(false) {}

   // OnInit: start waiting again (MQL keeps globals across OnDeinit/OnInit).
   void              Reset(ulong settle_ms)
     {
      m_settle_ms = settle_ms;
      m_last_count = -1;
      m_stable_since_ms = 0;
      m_open = false;
      m_logged = "";
     }
   bool              IsOpen(void) const { return m_open; }

   bool              Ready(ulong now_ms)
     {
      if(m_open) return true;
      string waiting = "";
      if(TbAccountLogin() == 0 || TbAccountServer() == "") waiting = "the terminal to log in";
      else if(!TbTerminalConnected()) waiting = "the terminal to connect to the trade server";
      else if(TbAccountMoney() == 0) waiting = "the account's balance to load (it reads 0)";
      if(waiting != "")
        {
         m_last_count = -1;
         Log("waiting for " + waiting);
         return false;
        }
      int count = TbBookCount();
      if(count != m_last_count)
        {
         m_last_count = count;
         m_stable_since_ms = now_ms;
         Log("account " + TbULongToString(TbAccountLogin()) + " logged in; waiting for its positions to load");
        }
      if(now_ms - m_stable_since_ms < m_settle_ms) return false;
      m_open = true;
      Print("TradeBridge: account ", TbULongToString(TbAccountLogin()), " on ", TbAccountServer(), " ready with ",
            IntegerToString(count), " open positions and orders");
      return true;
     }

private:
   void              Log(const string &line)
     {
      if(line == m_logged) return;
      m_logged = line;
      Print("TradeBridge: ", line);
     }
  };

#endif
