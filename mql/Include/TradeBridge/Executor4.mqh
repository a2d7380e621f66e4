//+------------------------------------------------------------------+
//| Executor4.mqh: MT4 trade operations for the Executor.            |
//+------------------------------------------------------------------+
// # Layout
// - TbTradeOps with the same methods as Executor5.mqh, on OrderSend /
//   OrderClose / OrderModify / OrderDelete. MT4 accounts are hedging:
//   every copy is its own ticket.
// - A partial close gives the rest a new ticket ("from #N"); Close reports
//   that ticket in the attempt so the Executor moves the tag map onto it.
// # Invariants
// - Prices are refreshed (RefreshRates) before every attempt.
// - Every order carries the copy's tag as its comment (TbOrderComment:
//   compact when the tag would not fit MT4's 31 characters).
#ifndef TRADEBRIDGE_EXECUTOR4_MQH
#define TRADEBRIDGE_EXECUTOR4_MQH

#include "Compat.mqh"
#include "ExecutorCore.mqh"

class TbTradeOps
  {
public:
   bool              IsHedging(void) const { return true; }
   bool              IsSuccess(uint code) const { return code == ERR_NO_ERROR || code == ERR_NO_RESULT; }
   bool              IsRetryable(uint code) const
     {
      return code == ERR_REQUOTE || code == ERR_PRICE_CHANGED || code == ERR_OFF_QUOTES || code == ERR_TRADE_CONTEXT_BUSY ||
             code == ERR_BROKER_BUSY || code == ERR_SERVER_BUSY || code == ERR_TRADE_TIMEOUT || code == ERR_NO_CONNECTION ||
             code == ERR_TOO_FREQUENT_REQUESTS;
     }
   double            Balance(void) const { return AccountBalance(); }
   double            Equity(void) const { return AccountEquity(); }
   string            Currency(void) const { return AccountCurrency(); }
   ulong             Login(void) const { return (ulong)AccountNumber(); }
   string            Server(void) const { return AccountServer(); }

   bool              SymbolSpec(const string &symbol, TbSymbolSpec &spec)
     {
      if(!SymbolSelect(symbol, true)) return false;
      RefreshRates();
      spec.name = symbol;
      spec.min = MarketInfo(symbol, MODE_MINLOT);
      spec.max = MarketInfo(symbol, MODE_MAXLOT);
      spec.step = MarketInfo(symbol, MODE_LOTSTEP);
      spec.digits = (uint)MarketInfo(symbol, MODE_DIGITS);
      spec.contract = MarketInfo(symbol, MODE_LOTSIZE);
      return spec.step > 0;
     }
   double            MarketPrice(const string &symbol, int type) const
     {
      return (type % 2 == 0) ? MarketInfo(symbol, MODE_ASK) : MarketInfo(symbol, MODE_BID);
     }

   bool              FindPosition(const string &tag, ulong hint, const string &symbol, TbFound &found)
     {
      if(hint != 0 && OrderSelect((int)hint, SELECT_BY_TICKET) && OrderCloseTime() == 0 && OrderType() <= OP_SELL) { ReadOrder(found); return true; }
      return Scan(tag, true, found);
     }
   bool              FindPending(const string &tag, ulong hint, TbFound &found)
     {
      if(hint != 0 && OrderSelect((int)hint, SELECT_BY_TICKET) && OrderCloseTime() == 0 && OrderType() > OP_SELL) { ReadOrder(found); return true; }
      return Scan(tag, false, found);
     }

   uint              Open(const TbCopy &copy, int type, double volume, double deviation_points, const string &tag, TbAttempt &attempt)
     {
      RefreshRates();
      int ticket = OrderSend(copy.symbol, type, volume, MarketPrice(copy.symbol, type), (int)deviation_points, copy.sl, copy.tp,
                             TbOrderComment(tag), (int)copy.magic, 0, clrNONE);
      attempt.code = ticket < 0 ? (uint)GetLastError() : ERR_NO_ERROR;
      attempt.ticket = ticket < 0 ? 0 : (ulong)ticket;
      attempt.price = 0;
      attempt.volume = 0;
      if(ticket >= 0 && OrderSelect(ticket, SELECT_BY_TICKET)) { attempt.price = OrderOpenPrice(); attempt.volume = OrderLots(); }
      return attempt.code;
     }

   uint              Close(const TbFound &found, double volume, const string &tag, TbAttempt &attempt)
     {
      RefreshRates();
      int opposite = found.type == OP_BUY ? OP_SELL : OP_BUY;
      bool ok = OrderClose((int)found.ticket, volume, MarketPrice(found.symbol, opposite), 1000, clrNONE);
      attempt.code = ok ? ERR_NO_ERROR : (uint)GetLastError();
      attempt.ticket = found.ticket;
      attempt.volume = ok ? volume : 0;
      attempt.price = 0;
      if(!ok) return attempt.code;
      if(OrderSelect((int)found.ticket, SELECT_BY_TICKET)) attempt.price = OrderClosePrice();
      // The rest of a partial close lives on under a new ticket.
      if(volume < found.volume - 1e-9) attempt.ticket = Continuation(found.ticket);
      return attempt.code;
     }

   uint              ModifyPosition(const TbFound &found, double sl, double tp, TbAttempt &attempt)
     {
      bool ok = OrderModify((int)found.ticket, found.price, sl, tp, 0, clrNONE);
      attempt.code = ok ? ERR_NO_ERROR : (uint)GetLastError();
      attempt.ticket = found.ticket;
      attempt.price = 0;
      attempt.volume = found.volume;
      return attempt.code;
     }

   uint              PlacePending(const TbCopy &copy, int type, double volume, const string &tag, TbAttempt &attempt)
     {
      int ticket = OrderSend(copy.symbol, type, volume, copy.price, 0, copy.sl, copy.tp, TbOrderComment(tag), (int)copy.magic, 0, clrNONE);
      attempt.code = ticket < 0 ? (uint)GetLastError() : ERR_NO_ERROR;
      attempt.ticket = ticket < 0 ? 0 : (ulong)ticket;
      attempt.price = copy.price;
      attempt.volume = volume;
      return attempt.code;
     }

   uint              ModifyPending(const TbFound &found, double price, double sl, double tp, TbAttempt &attempt)
     {
      double target = price > 0 ? price : found.price;
      bool ok = OrderModify((int)found.ticket, target, sl, tp, 0, clrNONE);
      attempt.code = ok ? ERR_NO_ERROR : (uint)GetLastError();
      attempt.ticket = found.ticket;
      attempt.price = target;
      attempt.volume = found.volume;
      return attempt.code;
     }

   uint              DeletePending(const TbFound &found, TbAttempt &attempt)
     {
      bool ok = OrderDelete((int)found.ticket, clrNONE);
      attempt.code = ok ? ERR_NO_ERROR : (uint)GetLastError();
      attempt.ticket = found.ticket;
      attempt.price = found.price;
      attempt.volume = found.volume;
      return attempt.code;
     }

   void              ListPositions(TbState &state)
     {
      int total = OrdersTotal();
      int count = 0;
      ArrayResize(state.positions, 0, total);
      for(int i = 0; i < total; i++)
        {
         if(!OrderSelect(i, SELECT_BY_POS, MODE_TRADES) || OrderType() > OP_SELL) continue;
         ArrayResize(state.positions, count + 1, total);
         state.positions[count].pos = (ulong)OrderTicket();
         state.positions[count].symbol = OrderSymbol();
         state.positions[count].side = TbSideOfType(OrderType());
         state.positions[count].volume = OrderLots();
         state.positions[count].comment = OrderComment();
         count++;
        }
     }

   int               MarketWatchCount(void) const { return SymbolsTotal(true); }
   string            MarketWatchName(int index) const { return SymbolName(index, true); }

private:
   void              ReadOrder(TbFound &found)
     {
      found.ticket = (ulong)OrderTicket();
      found.symbol = OrderSymbol();
      found.type = OrderType();
      found.volume = OrderLots();
      found.price = OrderOpenPrice();
      found.sl = OrderStopLoss();
      found.tp = OrderTakeProfit();
     }

   bool              Scan(const string &tag, bool market, TbFound &found)
     {
      for(int i = OrdersTotal() - 1; i >= 0; i--)
        {
         if(!OrderSelect(i, SELECT_BY_POS, MODE_TRADES)) continue;
         if((OrderType() <= OP_SELL) != market || TbTagOfComment(OrderComment()) != tag) continue;
         ReadOrder(found);
         return true;
        }
      return false;
     }

   // The open ticket whose comment is "from #<ticket>", or 0.
   ulong             Continuation(ulong ticket)
     {
      for(int i = OrdersTotal() - 1; i >= 0; i--)
         if(OrderSelect(i, SELECT_BY_POS, MODE_TRADES) && TbFromTicket(OrderComment()) == ticket) return (ulong)OrderTicket();
      return 0;
     }
  };

#endif
