//+------------------------------------------------------------------+
//| Executor5.mqh: MT5 trade operations for the Executor.            |
//+------------------------------------------------------------------+
// # Layout
// - TbTradeOps: find a copy by tag, open / close / modify positions and
//   place / modify / delete pending orders with OrderSend, one request per
//   call (a refused filling mode is tried again with the next one);
//   follow an order the server took without saying how it filled
//   (OrderOutcome); list positions and Market Watch symbols for `state`.
// - Hedging accounts: a copy is its own position, found by its identifier
//   (the tag map), by comment tag, and closed by position ticket.
// - Netting accounts: copies of several masters on one symbol share the
//   symbol's single position, so a copy's share is its ledger in the deal
//   history: the volume of deals carrying its tag (in minus out). It is
//   closed by an opposite deal that carries the tag too.
// - Retcodes sort into: accepted (DONE, DONE_PARTIAL, PLACED, NO_CHANGES),
//   retryable at once (requote, price changed or off), transient (no
//   connection, AutoTrading off, market closed, frozen, locked, too many
//   requests: the copy waits and is tried again later, unfinished), timeout
//   (the outcome is unknown: never sent again, looked up), and the rest
//   (rejected).
// # Invariants
// - A position is identified by POSITION_IDENTIFIER, which survives a
//   broker's re-opening and a netting reversal; POSITION_TICKET may change.
// - Market orders try the filling modes SYMBOL_FILLING_MODE allows (FOK,
//   IOC), then RETURN; pending orders use RETURN (always allowed for them)
//   then the others, each only after a 10030 refusal of the one before.
// - A pending order's type_time is one SYMBOL_EXPIRATION_MODE allows: GTC,
//   else SPECIFIED a year ahead, else DAY, else SPECIFIED_DAY.
// - Every request carries the copy's tag as its comment (TbOrderComment:
//   compact when the tag would not fit the broker's 31 characters).
#ifndef TRADEBRIDGE_EXECUTOR5_MQH
#define TRADEBRIDGE_EXECUTOR5_MQH

#include "Compat.mqh"
#include "ExecutorCore.mqh"
#include "Terminal.mqh"

// A pending order with SPECIFIED expiry lives this long (a year).
#define TB_PENDING_EXPIRY_SECONDS 31536000
// Deals of the history scanned, newest first, to find an order's deals.
#define TB_ORDER_DEALS_SCAN_MAX 2000

class TbTradeOps
  {
public:
   bool              IsHedging(void) const { return AccountInfoInteger(ACCOUNT_MARGIN_MODE) == ACCOUNT_MARGIN_MODE_RETAIL_HEDGING; }
   // The server took the request (it may still report the fill later).
   bool              IsSuccess(uint code) const { return code == TRADE_RETCODE_DONE || code == TRADE_RETCODE_DONE_PARTIAL || code == TRADE_RETCODE_PLACED || code == TRADE_RETCODE_NO_CHANGES; }
   // Worth another attempt after a short pause (prices moved, server busy).
   bool              IsRetryable(uint code) const
     {
      return code == TRADE_RETCODE_REQUOTE || code == TRADE_RETCODE_PRICE_CHANGED || code == TRADE_RETCODE_PRICE_OFF;
     }
   // The terminal cannot trade this now; the copy waits, unfinished.
   bool              IsTransient(uint code) const
     {
      return code == TRADE_RETCODE_CONNECTION || code == TRADE_RETCODE_CLIENT_DISABLES_AT || code == TRADE_RETCODE_SERVER_DISABLES_AT ||
             code == TRADE_RETCODE_MARKET_CLOSED || code == TRADE_RETCODE_FROZEN || code == TRADE_RETCODE_LOCKED ||
             code == TRADE_RETCODE_TOO_MANY_REQUESTS;
     }
   bool              IsFrozen(uint code) const { return code == TRADE_RETCODE_FROZEN; }
   bool              IsInvalidStops(uint code) const { return code == TRADE_RETCODE_INVALID_STOPS; }
   // The request may or may not have been carried out.
   bool              IsUnknownOutcome(uint code) const { return code == TRADE_RETCODE_TIMEOUT; }
   double            Balance(void) const { return AccountInfoDouble(ACCOUNT_BALANCE); }
   double            Equity(void) const { return AccountInfoDouble(ACCOUNT_EQUITY); }
   string            Currency(void) const { return AccountInfoString(ACCOUNT_CURRENCY); }

   bool              SymbolSpec(const string &symbol, TbSymbolSpec &spec)
     {
      if(!SymbolSelect(symbol, true)) return false;
      spec.name = symbol;
      spec.min = SymbolInfoDouble(symbol, SYMBOL_VOLUME_MIN);
      spec.max = SymbolInfoDouble(symbol, SYMBOL_VOLUME_MAX);
      spec.step = SymbolInfoDouble(symbol, SYMBOL_VOLUME_STEP);
      spec.digits = (uint)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
      spec.contract = SymbolInfoDouble(symbol, SYMBOL_TRADE_CONTRACT_SIZE);
      return spec.step > 0;
     }
   void              PriceRules(const string &symbol, TbPriceRules &rules)
     {
      rules.digits = (int)SymbolInfoInteger(symbol, SYMBOL_DIGITS);
      rules.point = SymbolInfoDouble(symbol, SYMBOL_POINT);
      rules.tick = SymbolInfoDouble(symbol, SYMBOL_TRADE_TICK_SIZE);
      rules.stops_level = (int)SymbolInfoInteger(symbol, SYMBOL_TRADE_STOPS_LEVEL);
      rules.freeze_level = (int)SymbolInfoInteger(symbol, SYMBOL_TRADE_FREEZE_LEVEL);
      long mode = SymbolInfoInteger(symbol, SYMBOL_TRADE_EXEMODE);
      rules.market_execution = mode == SYMBOL_TRADE_EXECUTION_MARKET || mode == SYMBOL_TRADE_EXECUTION_EXCHANGE;
     }
   // The price an order of `type` would fill at now (ask for buys); 0
   // while the terminal has no quote (a symbol just added to Market Watch).
   double            MarketPrice(const string &symbol, int type) const
     {
      return (type % 2 == 0) ? SymbolInfoDouble(symbol, SYMBOL_ASK) : SymbolInfoDouble(symbol, SYMBOL_BID);
     }

   bool              FindPosition(const string &tag, ulong hint, const string &symbol, TbFound &found)
     {
      if(!IsHedging()) return FindNettingShare(tag, symbol, found);
      if(hint != 0 && SelectPositionById(hint)) { ReadPosition(found); return true; }
      for(int i = PositionsTotal() - 1; i >= 0; i--)
        {
         if(PositionGetTicket(i) == 0) continue;
         if(TbTagOfComment(PositionGetString(POSITION_COMMENT)) != tag) continue;
         ReadPosition(found);
         return true;
        }
      return false;
     }

   bool              FindPending(const string &tag, ulong hint, TbFound &found)
     {
      if(hint != 0 && OrderSelect(hint) && (int)OrderGetInteger(ORDER_TYPE) >= ORDER_TYPE_BUY_LIMIT) { ReadOrder(hint, found); return true; }
      for(int i = OrdersTotal() - 1; i >= 0; i--)
        {
         ulong ticket = OrderGetTicket(i);
         if(ticket == 0 || (int)OrderGetInteger(ORDER_TYPE) < ORDER_TYPE_BUY_LIMIT) continue;
         if(TbTagOfComment(OrderGetString(ORDER_COMMENT)) != tag) continue;
         ReadOrder(ticket, found);
         return true;
        }
      return false;
     }

   uint              Open(const TbCopy &copy, int type, double volume, double deviation_points, const string &tag, double sl, double tp,
                          TbAttempt &attempt)
     {
      MqlTradeRequest request;
      ZeroMemory(request);
      request.action = TRADE_ACTION_DEAL;
      request.symbol = copy.symbol;
      request.volume = volume;
      request.type = (ENUM_ORDER_TYPE)type;
      request.price = MarketPrice(copy.symbol, type);
      request.sl = sl;
      request.tp = tp;
      request.deviation = (ulong)deviation_points;
      request.magic = copy.magic;
      request.comment = TbOrderComment(tag);
      return SendMarket(request, attempt);
     }

   uint              Close(const TbFound &found, double volume, const string &tag, TbAttempt &attempt)
     {
      MqlTradeRequest request;
      ZeroMemory(request);
      int opposite = found.type == 0 ? ORDER_TYPE_SELL : ORDER_TYPE_BUY;
      request.action = TRADE_ACTION_DEAL;
      request.symbol = found.symbol;
      request.volume = volume;
      request.type = (ENUM_ORDER_TYPE)opposite;
      request.price = MarketPrice(found.symbol, opposite);
      request.deviation = 1000;
      request.comment = TbOrderComment(tag);
      // Hedging closes the copy's own position; netting nets an opposite deal.
      if(IsHedging() && SelectPositionById(found.ticket)) request.position = (ulong)PositionGetInteger(POSITION_TICKET);
      uint code = SendMarket(request, attempt);
      attempt.ticket = found.ticket;
      return code;
     }

   uint              ModifyPosition(const TbFound &found, double sl, double tp, TbAttempt &attempt)
     {
      MqlTradeRequest request;
      MqlTradeResult result;
      ZeroMemory(request);
      ZeroMemory(result);
      request.action = TRADE_ACTION_SLTP;
      request.symbol = found.symbol;
      request.sl = sl;
      request.tp = tp;
      if(IsHedging() && SelectPositionById(found.ticket)) request.position = (ulong)PositionGetInteger(POSITION_TICKET);
      OrderSend(request, result);
      attempt.code = result.retcode;
      attempt.ticket = found.ticket;
      attempt.price = 0;
      attempt.volume = found.volume;
      return result.retcode;
     }

   uint              PlacePending(const TbCopy &copy, int type, double volume, const string &tag, double price, double sl, double tp,
                                  TbAttempt &attempt)
     {
      MqlTradeRequest request;
      ZeroMemory(request);
      request.action = TRADE_ACTION_PENDING;
      request.symbol = copy.symbol;
      request.volume = volume;
      request.type = (ENUM_ORDER_TYPE)type;
      request.price = price;
      request.sl = sl;
      request.tp = tp;
      request.magic = copy.magic;
      request.comment = TbOrderComment(tag);
      SetExpiry(request);
      uint code = SendWithFillings(request, attempt, true);
      attempt.ticket = attempt.order;
      attempt.price = price;
      attempt.volume = volume;
      return code;
     }

   uint              ModifyPending(const TbFound &found, double price, double sl, double tp, TbAttempt &attempt)
     {
      MqlTradeRequest request;
      MqlTradeResult result;
      ZeroMemory(request);
      ZeroMemory(result);
      request.action = TRADE_ACTION_MODIFY;
      request.order = found.ticket;
      request.symbol = found.symbol;
      request.price = price > 0 ? price : found.price;
      request.sl = sl;
      request.tp = tp;
      SetExpiry(request);
      OrderSend(request, result);
      attempt.code = result.retcode;
      attempt.ticket = found.ticket;
      attempt.price = request.price;
      attempt.volume = found.volume;
      return result.retcode;
     }

   uint              DeletePending(const TbFound &found, TbAttempt &attempt)
     {
      MqlTradeRequest request;
      MqlTradeResult result;
      ZeroMemory(request);
      ZeroMemory(result);
      request.action = TRADE_ACTION_REMOVE;
      request.order = found.ticket;
      OrderSend(request, result);
      attempt.code = result.retcode;
      attempt.ticket = found.ticket;
      attempt.price = found.price;
      attempt.volume = found.volume;
      return result.retcode;
     }

   // How an order the server took has filled: TB_ORDER_WORKING while it is
   // still active (deals may follow), TB_ORDER_DONE once it is not, with
   // the volume of its deals (0 when it ended without one), their average
   // price and the position they went to.
   int               OrderOutcome(ulong order, TbAttempt &attempt)
     {
      attempt.volume = 0;
      attempt.price = 0;
      attempt.ticket = 0;
      attempt.order = order;
      bool active = OrderSelect(order);
      if(!HistorySelect(0, TimeCurrent() + 86400)) return TB_ORDER_WORKING;
      double notional = 0;
      int total = HistoryDealsTotal();
      for(int i = total - 1; i >= 0 && i >= total - TB_ORDER_DEALS_SCAN_MAX; i--)
        {
         ulong deal = HistoryDealGetTicket(i);
         if(deal == 0 || (ulong)HistoryDealGetInteger(deal, DEAL_ORDER) != order) continue;
         double volume = HistoryDealGetDouble(deal, DEAL_VOLUME);
         attempt.volume = NormalizeDouble(attempt.volume + volume, 8);
         notional += volume * HistoryDealGetDouble(deal, DEAL_PRICE);
         attempt.ticket = (ulong)HistoryDealGetInteger(deal, DEAL_POSITION_ID);
        }
      if(attempt.volume > 0) attempt.price = notional / attempt.volume;
      // The history order's volume left tells a finished order from one
      // whose deals the history cache has not shown yet.
      if(active) return TB_ORDER_WORKING;
      if(!HistoryOrderSelect(order)) return TB_ORDER_WORKING;
      double initial = HistoryOrderGetDouble(order, ORDER_VOLUME_INITIAL);
      double unfilled = HistoryOrderGetDouble(order, ORDER_VOLUME_CURRENT);
      if(attempt.volume < initial - unfilled - 1e-9) return TB_ORDER_WORKING;
      return TB_ORDER_DONE;
     }

   // Open positions for `state` (pos = position identifier).
   void              ListPositions(TbState &state)
     {
      int total = PositionsTotal();
      int count = 0;
      ArrayResize(state.positions, 0, total);
      for(int i = 0; i < total; i++)
        {
         ulong ticket = PositionGetTicket(i);
         if(ticket == 0) continue;
         ArrayResize(state.positions, count + 1, total);
         state.positions[count].pos = (ulong)PositionGetInteger(POSITION_IDENTIFIER);
         state.positions[count].symbol = PositionGetString(POSITION_SYMBOL);
         state.positions[count].side = TbSideOfType((int)PositionGetInteger(POSITION_TYPE));
         state.positions[count].volume = PositionGetDouble(POSITION_VOLUME);
         state.positions[count].comment = PositionGetString(POSITION_COMMENT);
         count++;
        }
     }

   int               MarketWatchCount(void) const { return SymbolsTotal(true); }
   string            MarketWatchName(int index) const { return SymbolName(index, true); }

private:
   // Selects the position whose identifier is `identifier` (its ticket is
   // the same unless the broker re-opened it or a reversal renamed it).
   bool              SelectPositionById(ulong identifier)
     {
      if(PositionSelectByTicket(identifier) && (ulong)PositionGetInteger(POSITION_IDENTIFIER) == identifier) return true;
      for(int i = PositionsTotal() - 1; i >= 0; i--)
         if(PositionGetTicket(i) != 0 && (ulong)PositionGetInteger(POSITION_IDENTIFIER) == identifier) return true;
      return false;
     }

   uint              SendMarket(MqlTradeRequest &request, TbAttempt &attempt) { return SendWithFillings(request, attempt, false); }

   // Sends `request` with the filling modes to try in turn, moving on only
   // when the server refuses one with 10030.
   uint              SendWithFillings(MqlTradeRequest &request, TbAttempt &attempt, bool pending)
     {
      long flags = SymbolInfoInteger(request.symbol, SYMBOL_FILLING_MODE);
      int modes[3];
      int count = 0;
      if(pending) modes[count++] = ORDER_FILLING_RETURN;
      if((flags & SYMBOL_FILLING_FOK) != 0) modes[count++] = ORDER_FILLING_FOK;
      if((flags & SYMBOL_FILLING_IOC) != 0) modes[count++] = ORDER_FILLING_IOC;
      if(!pending) modes[count++] = ORDER_FILLING_RETURN;
      MqlTradeResult result;
      for(int i = 0; i < count; i++)
        {
         ZeroMemory(result);
         request.type_filling = (ENUM_ORDER_TYPE_FILLING)modes[i];
         OrderSend(request, result);
         if(result.retcode != TRADE_RETCODE_INVALID_FILL) break;
        }
      attempt.code = result.retcode;
      attempt.order = result.order;
      attempt.price = result.price;
      // Deal and volume are filled only when the server already knows them.
      attempt.volume = result.deal != 0 ? result.volume : 0;
      // The position the deal went to (its identifier).
      attempt.ticket = PositionOfDeal(result.deal, result.order);
      return result.retcode;
     }

   void              SetExpiry(MqlTradeRequest &request)
     {
      long allowed = SymbolInfoInteger(request.symbol, SYMBOL_EXPIRATION_MODE);
      request.expiration = 0;
      if((allowed & SYMBOL_EXPIRATION_GTC) != 0 || allowed == 0) request.type_time = ORDER_TIME_GTC;
      else if((allowed & SYMBOL_EXPIRATION_SPECIFIED) != 0)
        {
         request.type_time = ORDER_TIME_SPECIFIED;
         request.expiration = TimeCurrent() + TB_PENDING_EXPIRY_SECONDS;
        }
      else if((allowed & SYMBOL_EXPIRATION_DAY) != 0) request.type_time = ORDER_TIME_DAY;
      else
        {
         // Valid to the end of the day `expiration` falls on: today.
         request.type_time = ORDER_TIME_SPECIFIED_DAY;
         request.expiration = TimeCurrent();
        }
     }

   // The position a deal belongs to (its identifier), or the order ticket.
   ulong             PositionOfDeal(ulong deal, ulong order)
     {
      if(deal != 0 && HistoryDealSelect(deal)) return (ulong)HistoryDealGetInteger(deal, DEAL_POSITION_ID);
      return order;
     }

   void              ReadPosition(TbFound &found)
     {
      found.ticket = (ulong)PositionGetInteger(POSITION_IDENTIFIER);
      found.symbol = PositionGetString(POSITION_SYMBOL);
      found.type = (int)PositionGetInteger(POSITION_TYPE);
      found.volume = PositionGetDouble(POSITION_VOLUME);
      found.price = PositionGetDouble(POSITION_PRICE_OPEN);
      found.sl = PositionGetDouble(POSITION_SL);
      found.tp = PositionGetDouble(POSITION_TP);
      found.magic = (ulong)PositionGetInteger(POSITION_MAGIC);
     }

   void              ReadOrder(ulong ticket, TbFound &found)
     {
      found.ticket = ticket;
      found.symbol = OrderGetString(ORDER_SYMBOL);
      found.type = (int)OrderGetInteger(ORDER_TYPE);
      found.volume = OrderGetDouble(ORDER_VOLUME_CURRENT);
      found.price = OrderGetDouble(ORDER_PRICE_OPEN);
      found.sl = OrderGetDouble(ORDER_SL);
      found.tp = OrderGetDouble(ORDER_TP);
      found.magic = (ulong)OrderGetInteger(ORDER_MAGIC);
     }

   // Netting: this tag's share of the symbol's position, from the deals
   // that carry the tag (in adds, out subtracts).
   bool              FindNettingShare(const string &tag, const string &symbol, TbFound &found)
     {
      if(!PositionSelect(symbol)) return false;
      ReadPosition(found);
      ulong identifier = found.ticket;
      if(!HistorySelect(0, TimeCurrent() + 86400)) return false;
      double share = 0;
      int type = -1;
      for(int i = 0; i < HistoryDealsTotal(); i++)
        {
         ulong deal = HistoryDealGetTicket(i);
         if(deal == 0 || (ulong)HistoryDealGetInteger(deal, DEAL_POSITION_ID) != identifier) continue;
         if(TbTagOfComment(HistoryDealGetString(deal, DEAL_COMMENT)) != tag) continue;
         int entry = (int)HistoryDealGetInteger(deal, DEAL_ENTRY);
         double volume = HistoryDealGetDouble(deal, DEAL_VOLUME);
         if(entry == DEAL_ENTRY_IN) { share += volume; type = (int)HistoryDealGetInteger(deal, DEAL_TYPE); }
         else share -= volume;
        }
      share = NormalizeDouble(share, 8);
      if(share <= 1e-9 || type != found.type) return false;
      if(share < found.volume) found.volume = share;
      return true;
     }
  };

#endif
