//+------------------------------------------------------------------+
//| Executor5.mqh: MT5 trade operations for the Executor.            |
//+------------------------------------------------------------------+
// # Layout
// - TbTradeOps: find a copy by tag, open / close / modify positions and
//   place / modify / delete pending orders with OrderSend, one attempt per
//   call; list positions and Market Watch symbols for `state`.
// - Hedging accounts: a copy is its own position (found by comment tag or
//   the tag map), closed by position ticket.
// - Netting accounts: copies of several masters on one symbol share the
//   symbol's single position, so a copy's share is its ledger in the deal
//   history: the volume of deals carrying its tag (in minus out). It is
//   closed by an opposite deal that carries the tag too.
// # Invariants
// - Filling mode follows SYMBOL_FILLING_MODE: FOK when allowed, else IOC,
//   else RETURN.
// - Every request carries the copy's tag as its comment (TbOrderComment:
//   compact when the tag would not fit the broker's 31 characters).
#ifndef TRADEBRIDGE_EXECUTOR5_MQH
#define TRADEBRIDGE_EXECUTOR5_MQH

#include "Compat.mqh"
#include "ExecutorCore.mqh"

class TbTradeOps
  {
public:
   bool              IsHedging(void) const { return AccountInfoInteger(ACCOUNT_MARGIN_MODE) == ACCOUNT_MARGIN_MODE_RETAIL_HEDGING; }
   bool              IsSuccess(uint code) const { return code == TRADE_RETCODE_DONE || code == TRADE_RETCODE_DONE_PARTIAL || code == TRADE_RETCODE_PLACED || code == TRADE_RETCODE_NO_CHANGES; }
   // Worth another attempt after a short pause (prices moved, server busy).
   bool              IsRetryable(uint code) const
     {
      return code == TRADE_RETCODE_REQUOTE || code == TRADE_RETCODE_PRICE_CHANGED || code == TRADE_RETCODE_PRICE_OFF ||
             code == TRADE_RETCODE_TOO_MANY_REQUESTS || code == TRADE_RETCODE_TIMEOUT || code == TRADE_RETCODE_CONNECTION;
     }
   double            Balance(void) const { return AccountInfoDouble(ACCOUNT_BALANCE); }
   double            Equity(void) const { return AccountInfoDouble(ACCOUNT_EQUITY); }
   string            Currency(void) const { return AccountInfoString(ACCOUNT_CURRENCY); }
   ulong             Login(void) const { return (ulong)AccountInfoInteger(ACCOUNT_LOGIN); }
   string            Server(void) const { return AccountInfoString(ACCOUNT_SERVER); }

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
   // The price an order of `type` would fill at now (ask for buys).
   double            MarketPrice(const string &symbol, int type) const
     {
      return (type % 2 == 0) ? SymbolInfoDouble(symbol, SYMBOL_ASK) : SymbolInfoDouble(symbol, SYMBOL_BID);
     }

   bool              FindPosition(const string &tag, ulong hint, const string &symbol, TbFound &found)
     {
      if(!IsHedging()) return FindNettingShare(tag, symbol, found);
      if(hint != 0 && PositionSelectByTicket(hint)) { ReadPosition(found); return true; }
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
      if(hint != 0 && OrderSelect(hint)) { ReadOrder(hint, found); return true; }
      for(int i = OrdersTotal() - 1; i >= 0; i--)
        {
         ulong ticket = OrderGetTicket(i);
         if(ticket == 0 || TbTagOfComment(OrderGetString(ORDER_COMMENT)) != tag) continue;
         ReadOrder(ticket, found);
         return true;
        }
      return false;
     }

   uint              Open(const TbCopy &copy, int type, double volume, double deviation_points, const string &tag, TbAttempt &attempt)
     {
      MqlTradeRequest request;
      MqlTradeResult result;
      ZeroMemory(request);
      ZeroMemory(result);
      request.action = TRADE_ACTION_DEAL;
      request.symbol = copy.symbol;
      request.volume = volume;
      request.type = (ENUM_ORDER_TYPE)type;
      request.price = MarketPrice(copy.symbol, type);
      request.deviation = (ulong)deviation_points;
      request.sl = copy.sl;
      request.tp = copy.tp;
      request.magic = copy.magic;
      request.comment = TbOrderComment(tag);
      request.type_filling = Filling(copy.symbol);
      OrderSend(request, result);
      attempt.code = result.retcode;
      attempt.price = result.price;
      attempt.volume = result.volume;
      attempt.ticket = PositionOfDeal(result.deal, result.order);
      return result.retcode;
     }

   uint              Close(const TbFound &found, double volume, const string &tag, TbAttempt &attempt)
     {
      MqlTradeRequest request;
      MqlTradeResult result;
      ZeroMemory(request);
      ZeroMemory(result);
      int opposite = found.type == 0 ? ORDER_TYPE_SELL : ORDER_TYPE_BUY;
      request.action = TRADE_ACTION_DEAL;
      request.symbol = found.symbol;
      request.volume = volume;
      request.type = (ENUM_ORDER_TYPE)opposite;
      request.price = MarketPrice(found.symbol, opposite);
      request.deviation = 1000;
      request.comment = TbOrderComment(tag);
      request.type_filling = Filling(found.symbol);
      // Hedging closes the copy's own position; netting nets an opposite deal.
      if(IsHedging()) request.position = found.ticket;
      OrderSend(request, result);
      attempt.code = result.retcode;
      attempt.price = result.price;
      attempt.volume = result.volume;
      attempt.ticket = found.ticket;
      return result.retcode;
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
      if(IsHedging()) request.position = found.ticket;
      OrderSend(request, result);
      attempt.code = result.retcode;
      attempt.ticket = found.ticket;
      attempt.price = 0;
      attempt.volume = found.volume;
      return result.retcode;
     }

   uint              PlacePending(const TbCopy &copy, int type, double volume, const string &tag, TbAttempt &attempt)
     {
      MqlTradeRequest request;
      MqlTradeResult result;
      ZeroMemory(request);
      ZeroMemory(result);
      request.action = TRADE_ACTION_PENDING;
      request.symbol = copy.symbol;
      request.volume = volume;
      request.type = (ENUM_ORDER_TYPE)type;
      request.price = copy.price;
      request.sl = copy.sl;
      request.tp = copy.tp;
      request.magic = copy.magic;
      request.comment = TbOrderComment(tag);
      request.type_filling = Filling(copy.symbol);
      request.type_time = ORDER_TIME_GTC;
      OrderSend(request, result);
      attempt.code = result.retcode;
      attempt.ticket = result.order;
      attempt.price = copy.price;
      attempt.volume = volume;
      return result.retcode;
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
      request.type_time = ORDER_TIME_GTC;
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

   // Open positions for `state` (pos = position ticket).
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
         state.positions[count].pos = ticket;
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
   ENUM_ORDER_TYPE_FILLING Filling(const string &symbol)
     {
      long flags = SymbolInfoInteger(symbol, SYMBOL_FILLING_MODE);
      if((flags & SYMBOL_FILLING_FOK) != 0) return ORDER_FILLING_FOK;
      if((flags & SYMBOL_FILLING_IOC) != 0) return ORDER_FILLING_IOC;
      return ORDER_FILLING_RETURN;
     }

   // The position a deal belongs to (MT5 position id), or the order ticket.
   ulong             PositionOfDeal(ulong deal, ulong order)
     {
      if(deal != 0 && HistoryDealSelect(deal)) return (ulong)HistoryDealGetInteger(deal, DEAL_POSITION_ID);
      return order;
     }

   void              ReadPosition(TbFound &found)
     {
      found.ticket = (ulong)PositionGetInteger(POSITION_TICKET);
      found.symbol = PositionGetString(POSITION_SYMBOL);
      found.type = (int)PositionGetInteger(POSITION_TYPE);
      found.volume = PositionGetDouble(POSITION_VOLUME);
      found.price = PositionGetDouble(POSITION_PRICE_OPEN);
      found.sl = PositionGetDouble(POSITION_SL);
      found.tp = PositionGetDouble(POSITION_TP);
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
     }

   // Netting: this tag's share of the symbol's position, from the deals
   // that carry the tag (in adds, out subtracts).
   bool              FindNettingShare(const string &tag, const string &symbol, TbFound &found)
     {
      if(!PositionSelect(symbol)) return false;
      ReadPosition(found);
      ulong identifier = (ulong)PositionGetInteger(POSITION_IDENTIFIER);
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
