//+------------------------------------------------------------------+
//| Executor4.mqh: MT4 trade operations for the Executor.            |
//+------------------------------------------------------------------+
// # Layout
// - TbTradeOps with the same methods as Executor5.mqh, on OrderSend /
//   OrderClose / OrderModify / OrderDelete. MT4 accounts are hedging:
//   every copy is its own ticket.
// - A partial close gives the rest a new ticket. A real server comments it
//   "from #N"; some brokers write something else or nothing, so the rest is
//   also recognised as the open order with the closed one's open time,
//   open price, symbol, type and magic (TbTradeOps.Successor). Close
//   reports that ticket in the attempt so the Executor moves the tag map
//   onto it, and a tag map entry left on a closed ticket is followed the
//   same way.
// - Errors sort as in Executor5.mqh: retryable at once (requote, price
//   changed, off quotes), transient (no connection 6, market closed 132,
//   trade not allowed 4109 / 4112, modification denied near the market 145,
//   busy 4 / 137 / 146, too frequent 8 / 141), timeout 128 (outcome
//   unknown), the rest rejected.
// # Invariants
// - Prices are refreshed (RefreshRates) before every attempt.
// - Every order carries the copy's tag as its comment (TbOrderComment:
//   compact when the tag would not fit MT4's 31 characters).
#ifndef TRADEBRIDGE_EXECUTOR4_MQH
#define TRADEBRIDGE_EXECUTOR4_MQH

#include "Compat.mqh"
#include "ExecutorCore.mqh"
#include "Terminal.mqh"

// Partial closes of one copy followed from a closed ticket to its rest.
#define TB_SUCCESSOR_DEPTH_MAX 8

class TbTradeOps
  {
public:
   bool              IsHedging(void) const { return true; }
   bool              IsSuccess(uint code) const { return code == ERR_NO_ERROR || code == ERR_NO_RESULT; }
   bool              IsRetryable(uint code) const
     {
      return code == ERR_REQUOTE || code == ERR_PRICE_CHANGED || code == ERR_OFF_QUOTES;
     }
   bool              IsTransient(uint code) const
     {
      return code == ERR_NO_CONNECTION || code == ERR_MARKET_CLOSED || code == ERR_TRADE_NOT_ALLOWED || code == ERR_TRADE_MODIFY_DENIED ||
             code == ERR_TRADE_CONTEXT_BUSY || code == ERR_BROKER_BUSY || code == ERR_SERVER_BUSY || code == ERR_TOO_FREQUENT_REQUESTS ||
             code == ERR_TOO_MANY_REQUESTS || code == ERR_TRADE_EXPERT_DISABLED_BY_SERVER;
     }
   bool              IsFrozen(uint code) const { return code == ERR_TRADE_MODIFY_DENIED; }
   bool              IsInvalidStops(uint code) const { return code == ERR_INVALID_STOPS; }
   bool              IsUnknownOutcome(uint code) const { return code == ERR_TRADE_TIMEOUT; }
   double            Balance(void) const { return AccountBalance(); }
   double            Equity(void) const { return AccountEquity(); }
   string            Currency(void) const { return AccountCurrency(); }

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
   void              PriceRules(const string &symbol, TbPriceRules &rules)
     {
      rules.digits = (int)MarketInfo(symbol, MODE_DIGITS);
      rules.point = MarketInfo(symbol, MODE_POINT);
      rules.tick = MarketInfo(symbol, MODE_TICKSIZE);
      rules.stops_level = (int)MarketInfo(symbol, MODE_STOPLEVEL);
      rules.freeze_level = (int)MarketInfo(symbol, MODE_FREEZELEVEL);
      rules.market_execution = SymbolInfoInteger(symbol, SYMBOL_TRADE_EXEMODE) == SYMBOL_TRADE_EXECUTION_MARKET;
     }
   double            MarketPrice(const string &symbol, int type) const
     {
      RefreshRates();
      return (type % 2 == 0) ? MarketInfo(symbol, MODE_ASK) : MarketInfo(symbol, MODE_BID);
     }

   bool              FindPosition(const string &tag, ulong hint, const string &symbol, TbFound &found)
     {
      ulong ticket = OpenTicketOf(hint, true);
      if(ticket != 0 && OrderSelect((int)ticket, SELECT_BY_TICKET)) { ReadOrder(found); return true; }
      return Scan(tag, true, found);
     }
   bool              FindPending(const string &tag, ulong hint, TbFound &found)
     {
      if(hint != 0 && OrderSelect((int)hint, SELECT_BY_TICKET) && OrderCloseTime() == 0 && OrderType() > OP_SELL) { ReadOrder(found); return true; }
      return Scan(tag, false, found);
     }

   uint              Open(const TbCopy &copy, int type, double volume, double deviation_points, const string &tag, double sl, double tp,
                          TbAttempt &attempt)
     {
      int ticket = OrderSend(copy.symbol, type, volume, MarketPrice(copy.symbol, type), (int)deviation_points, sl, tp,
                             TbOrderComment(tag), (int)copy.magic, 0, clrNONE);
      attempt.code = ticket < 0 ? (uint)GetLastError() : ERR_NO_ERROR;
      attempt.ticket = ticket < 0 ? 0 : (ulong)ticket;
      attempt.order = 0;
      attempt.price = 0;
      attempt.volume = 0;
      if(ticket >= 0 && OrderSelect(ticket, SELECT_BY_TICKET)) { attempt.price = OrderOpenPrice(); attempt.volume = OrderLots(); }
      return attempt.code;
     }

   uint              Close(const TbFound &found, double volume, const string &tag, TbAttempt &attempt)
     {
      int opposite = found.type == OP_BUY ? OP_SELL : OP_BUY;
      bool ok = OrderClose((int)found.ticket, volume, MarketPrice(found.symbol, opposite), 1000, clrNONE);
      attempt.code = ok ? ERR_NO_ERROR : (uint)GetLastError();
      attempt.ticket = found.ticket;
      attempt.volume = ok ? volume : 0;
      attempt.price = 0;
      if(!ok) return attempt.code;
      if(OrderSelect((int)found.ticket, SELECT_BY_TICKET)) attempt.price = OrderClosePrice();
      // The rest of a partial close lives on under a new ticket.
      if(volume < found.volume - 1e-9) attempt.ticket = Successor(found.ticket);
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

   uint              PlacePending(const TbCopy &copy, int type, double volume, const string &tag, double price, double sl, double tp,
                                  TbAttempt &attempt)
     {
      int ticket = OrderSend(copy.symbol, type, volume, price, 0, sl, tp, TbOrderComment(tag), (int)copy.magic, 0, clrNONE);
      attempt.code = ticket < 0 ? (uint)GetLastError() : ERR_NO_ERROR;
      attempt.ticket = ticket < 0 ? 0 : (ulong)ticket;
      attempt.order = 0;
      attempt.price = price;
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

   // MT4 answers every request with its outcome: nothing is ever in flight.
   int               OrderOutcome(ulong order, TbAttempt &attempt)
     {
      attempt.volume = 0;
      return TB_ORDER_DONE;
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
      found.magic = (ulong)OrderMagicNumber();
      found.open_time = (long)OrderOpenTime();
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

   // The open market ticket that holds what `ticket` held: itself while
   // open, else the rest of its partial close, followed at most
   // TB_SUCCESSOR_DEPTH_MAX closes deep; 0 when there is none.
   ulong             OpenTicketOf(ulong ticket, bool market)
     {
      for(int depth = 0; ticket != 0 && depth < TB_SUCCESSOR_DEPTH_MAX; depth++)
        {
         if(!OrderSelect((int)ticket, SELECT_BY_TICKET)) return 0;
         if((OrderType() <= OP_SELL) != market) return 0;
         if(OrderCloseTime() == 0) return ticket;
         ticket = Successor(ticket);
        }
      return 0;
     }

   // The open ticket that continues `ticket` after a partial close: the
   // one commented "from #<ticket>", else the one with its open time,
   // open price, symbol, type and magic (a broker that rewrote or dropped
   // the comment); 0 when there is none.
   ulong             Successor(ulong ticket)
     {
      if(!OrderSelect((int)ticket, SELECT_BY_TICKET)) return 0;
      long open_time = (long)OrderOpenTime();
      double open_price = OrderOpenPrice();
      string symbol = OrderSymbol();
      int type = OrderType();
      int magic = OrderMagicNumber();
      ulong twin = 0;
      for(int i = OrdersTotal() - 1; i >= 0; i--)
        {
         if(!OrderSelect(i, SELECT_BY_POS, MODE_TRADES) || (ulong)OrderTicket() == ticket) continue;
         if(TbFromTicket(OrderComment()) == ticket) return (ulong)OrderTicket();
         // Another copy's order keeps its own tag; the rest lost ours.
         if(TbStartsWith(OrderComment(), "tc:") || TbStartsWith(OrderComment(), "tc#")) continue;
         if(twin == 0 && (long)OrderOpenTime() == open_time && OrderOpenPrice() == open_price && OrderSymbol() == symbol &&
            OrderType() == type && OrderMagicNumber() == magic)
            twin = (ulong)OrderTicket();
        }
      return twin;
     }
  };

#endif
