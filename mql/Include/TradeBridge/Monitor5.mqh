//+------------------------------------------------------------------+
//| Monitor5.mqh: MT5 master, driven by OnTradeTransaction.          |
//+------------------------------------------------------------------+
// # Layout
// - TbMonitor5.OnTransaction(trans) maps terminal transactions to events:
//     DEAL_ADD, entry IN      -> open (pos = DEAL_POSITION_ID)
//     DEAL_ADD, OUT / OUT_BY  -> close (volume = deal volume, remaining)
//     DEAL_ADD, INOUT         -> close of the old volume, then open of
//                                the rest the other way (netting reversal)
//     POSITION (SL/TP moved)  -> modify
//     ORDER_ADD of a pending  -> pending;  ORDER_UPDATE -> modify;
//     ORDER_DELETE canceled / expired / rejected -> cancel
//   Everything is keyed on the position identifier, which MT5 keeps for a
//   position's whole life on hedging and netting accounts; a pending
//   order's ticket becomes the id of the position it opens, so the bridge
//   sees pending and open under the same `pos`.
// - Service(now_ms) runs the link and sends the snapshot when due. The
//   snapshot lists open positions and pending orders (side buy_limit...,
//   price = trigger): the bridge treats a pending order it knows and the
//   snapshot omits as deleted, and cancels its copies.
// # Invariants
// - The book mirrors the terminal: loaded at Init, updated by every
//   transaction; events are derived from the difference, so a repeated
//   transaction (MT5 may deliver DEAL_ADD and friends more than once)
//   changes nothing the second time.
// - Transactions lost by the terminal (its queue is finite) are covered
//   by the snapshot after every welcome and every 60 s.
// - Netting scale-in (a second IN deal on an open position) has no
//   protocol event: it is logged and the snapshot shows the new volume.
#ifndef TRADEBRIDGE_MONITOR5_MQH
#define TRADEBRIDGE_MONITOR5_MQH

#include "Compat.mqh"
#include "Book.mqh"
#include "MonitorLink.mqh"

// A deal delivered twice arrives within a few transactions of the first;
// remembering the last 512 deals covers any burst a terminal queues.
#define TB_RECENT_DEALS_MAX 512

class TbMonitor5
  {
private:
   TbMonitorLink     m_link;
   // Open positions, keyed (and reported) by position id.
   TbBook            m_positions;
   // Pending orders, keyed (and reported) by order ticket.
   TbBook            m_orders;
   // Ring of the deal tickets handled last, so a deal delivered twice is
   // reported once; m_recent_next is the slot the next deal overwrites.
   ulong             m_recent_deals[TB_RECENT_DEALS_MAX];
   int               m_recent_next;

public:
                     TbMonitor5(void) : m_recent_next(0) { ArrayInitialize(m_recent_deals, 0); }

   bool              Init(const string &url, const TbHello &hello, const string &outbox_file, int events_max,
                          ulong snapshot_interval_ms, ulong backoff_base_ms, ulong backoff_max_ms, string &error)
     {
      if(!m_link.Init(url, hello, outbox_file, events_max, snapshot_interval_ms, backoff_base_ms, backoff_max_ms, error)) return false;
      // MQL keeps an EA's globals across OnDeinit/OnInit (account or chart
      // change), so everything learnt before is forgotten here.
      ArrayInitialize(m_recent_deals, 0);
      m_recent_next = 0;
      LoadBook();
      return true;
     }
   int               PendingEvents(void) const { return m_link.PendingEvents(); }
   void              PendingEventAt(int index, TbEvent &event) const { m_link.PendingEventAt(index, event); }
   int               TrackedPositions(void) const { return m_positions.Count(); }
   bool              IsReady(void) const { return m_link.IsReady(); }
   ulong             LastSeq(void) const { return m_link.LastSeq(); }
   void              Shutdown(void) { m_link.Shutdown(); }

   void              Service(ulong now_ms)
     {
      if(!m_link.Service(now_ms)) return;
      TbSnapshot snapshot;
      BuildSnapshot(snapshot);
      m_link.SendSnapshot(snapshot, now_ms);
     }

   // The terminal's positions as the bridge wants them.
   void              BuildSnapshot(TbSnapshot &snapshot)
     {
      int total = PositionsTotal();
      ArrayResize(snapshot.positions, 0, total);
      int count = 0;
      for(int i = 0; i < total; i++)
        {
         if(PositionGetTicket(i) == 0) continue;
         ArrayResize(snapshot.positions, count + 1, total);
         snapshot.positions[count].pos = (ulong)PositionGetInteger(POSITION_IDENTIFIER);
         snapshot.positions[count].symbol = PositionGetString(POSITION_SYMBOL);
         snapshot.positions[count].side = TbSideOfType((int)PositionGetInteger(POSITION_TYPE));
         snapshot.positions[count].volume = PositionGetDouble(POSITION_VOLUME);
         snapshot.positions[count].price = PositionGetDouble(POSITION_PRICE_OPEN);
         snapshot.positions[count].sl = PositionGetDouble(POSITION_SL);
         snapshot.positions[count].tp = PositionGetDouble(POSITION_TP);
         snapshot.positions[count].magic = (ulong)PositionGetInteger(POSITION_MAGIC);
         snapshot.positions[count].comment = PositionGetString(POSITION_COMMENT);
         count++;
        }
      for(int i = 0; i < OrdersTotal(); i++)
        {
         ulong ticket = OrderGetTicket(i);
         TbBookEntry order;
         if(ticket == 0 || !ReadSelectedOrder(ticket, order)) continue;
         ArrayResize(snapshot.positions, count + 1, total);
         TbPositionFromEntry(order, snapshot.positions[count]);
         count++;
        }
      snapshot.balance = AccountInfoDouble(ACCOUNT_BALANCE);
      snapshot.equity = AccountInfoDouble(ACCOUNT_EQUITY);
      snapshot.currency = AccountInfoString(ACCOUNT_CURRENCY);
     }

   void              OnTransaction(const MqlTradeTransaction &trans)
     {
      if(trans.type == TRADE_TRANSACTION_DEAL_ADD) OnDeal(trans.deal);
      else if(trans.type == TRADE_TRANSACTION_POSITION) OnPositionChange(trans.position);
      else if(trans.type == TRADE_TRANSACTION_ORDER_ADD || trans.type == TRADE_TRANSACTION_ORDER_UPDATE) OnOrderPlacedOrChanged(trans.order);
      else if(trans.type == TRADE_TRANSACTION_ORDER_DELETE) OnOrderDeleted(trans.order, (int)trans.order_state);
     }

private:
   void              LoadBook(void)
     {
      m_positions.Clear();
      m_orders.Clear();
      for(int i = 0; i < PositionsTotal(); i++)
        {
         if(PositionGetTicket(i) == 0) continue;
         TbBookEntry entry;
         ReadSelectedPosition(entry);
         m_positions.Put(entry);
        }
      for(int i = 0; i < OrdersTotal(); i++)
        {
         ulong ticket = OrderGetTicket(i);
         if(ticket == 0) continue;
         TbBookEntry entry;
         if(ReadSelectedOrder(ticket, entry)) m_orders.Put(entry);
        }
     }

   void              ReadSelectedPosition(TbBookEntry &entry)
     {
      entry.key = (ulong)PositionGetInteger(POSITION_IDENTIFIER);
      entry.pos = entry.key;
      entry.symbol = PositionGetString(POSITION_SYMBOL);
      entry.type = (int)PositionGetInteger(POSITION_TYPE);
      entry.volume = PositionGetDouble(POSITION_VOLUME);
      entry.price = PositionGetDouble(POSITION_PRICE_OPEN);
      entry.sl = PositionGetDouble(POSITION_SL);
      entry.tp = PositionGetDouble(POSITION_TP);
      entry.magic = (ulong)PositionGetInteger(POSITION_MAGIC);
      entry.comment = PositionGetString(POSITION_COMMENT);
     }

   // Reads the selected pending order; false for market or stop-limit types.
   bool              ReadSelectedOrder(ulong ticket, TbBookEntry &entry)
     {
      int type = (int)OrderGetInteger(ORDER_TYPE);
      if(type < 2 || type > 5) return false;
      entry.key = ticket;
      entry.pos = ticket;
      entry.symbol = OrderGetString(ORDER_SYMBOL);
      entry.type = type;
      entry.volume = OrderGetDouble(ORDER_VOLUME_CURRENT);
      entry.price = OrderGetDouble(ORDER_PRICE_OPEN);
      entry.sl = OrderGetDouble(ORDER_SL);
      entry.tp = OrderGetDouble(ORDER_TP);
      entry.magic = (ulong)OrderGetInteger(ORDER_MAGIC);
      entry.comment = OrderGetString(ORDER_COMMENT);
      return true;
     }

   // True the first time `deal` is seen; remembers it.
   bool              FirstSight(ulong deal)
     {
      for(int i = 0; i < TB_RECENT_DEALS_MAX; i++)
         if(m_recent_deals[i] == deal) return false;
      m_recent_deals[m_recent_next] = deal;
      m_recent_next = (m_recent_next + 1) % TB_RECENT_DEALS_MAX;
      return true;
     }

   void              OnDeal(ulong deal)
     {
      if(deal == 0 || !FirstSight(deal) || !HistoryDealSelect(deal)) return;
      int deal_type = (int)HistoryDealGetInteger(deal, DEAL_TYPE);
      // Balance, credit, commission... deals are not trades.
      if(deal_type != DEAL_TYPE_BUY && deal_type != DEAL_TYPE_SELL) return;
      int entry = (int)HistoryDealGetInteger(deal, DEAL_ENTRY);
      ulong position_id = (ulong)HistoryDealGetInteger(deal, DEAL_POSITION_ID);
      double volume = HistoryDealGetDouble(deal, DEAL_VOLUME);
      double price = HistoryDealGetDouble(deal, DEAL_PRICE);
      ulong time_ms = (ulong)HistoryDealGetInteger(deal, DEAL_TIME_MSC);
      if(entry == DEAL_ENTRY_IN) OnDealIn(deal, position_id, deal_type, volume, price, time_ms);
      else if(entry == DEAL_ENTRY_OUT || entry == DEAL_ENTRY_OUT_BY) OnDealOut(deal, position_id, volume, price, time_ms);
      else if(entry == DEAL_ENTRY_INOUT) OnDealReverse(deal, position_id, deal_type, volume, price, time_ms);
     }

   void              OnDealIn(ulong deal, ulong position_id, int deal_type, double volume, double price, ulong time_ms)
     {
      if(m_positions.Find(position_id) >= 0)
        {
         // A repeated transaction, or a netting scale-in (see Invariants).
         if(PositionSelectByTicket(position_id))
           {
            TbBookEntry current;
            ReadSelectedPosition(current);
            TbBookEntry known;
            m_positions.Get(m_positions.Find(position_id), known);
            if(current.volume > known.volume + 1e-9)
               Print("TradeBridge: netting scale-in on position ", TbULongToString(position_id), " (", TbFormatDouble(known.volume), " -> ",
                     TbFormatDouble(current.volume), " lots) has no protocol event; the snapshot carries it");
            m_positions.Put(current);
           }
         return;
        }
      TbBookEntry entry;
      if(PositionSelectByTicket(position_id)) ReadSelectedPosition(entry);
      else
        {
         // Opened and closed before we looked: still report the open.
         entry.key = position_id; entry.pos = position_id; entry.symbol = HistoryDealGetString(deal, DEAL_SYMBOL);
         entry.type = deal_type; entry.volume = volume; entry.price = price; entry.sl = 0; entry.tp = 0;
         entry.magic = (ulong)HistoryDealGetInteger(deal, DEAL_MAGIC); entry.comment = HistoryDealGetString(deal, DEAL_COMMENT);
        }
      entry.volume = volume;
      entry.price = price;
      // A pending order that filled: its ticket is this position's id.
      m_orders.Remove(position_id);
      TbEvent event;
      TbEventFrom("open", entry, position_id, event);
      event.time_ms = time_ms;
      m_link.Emit(event);
      if(PositionSelectByTicket(position_id)) m_positions.Put(entry);
     }

   void              OnDealOut(ulong deal, ulong position_id, double volume, double price, ulong time_ms)
     {
      int index = m_positions.Find(position_id);
      // Unknown position: this deal was already reported, or it predates us.
      if(index < 0) return;
      TbBookEntry entry;
      m_positions.Get(index, entry);
      double remaining = TbLots(entry.volume - volume);
      if(remaining < 0) remaining = 0;
      TbEvent event;
      TbEventFrom("close", entry, deal, event);
      event.volume = volume;
      event.price = price;
      event.has_remaining = true;
      event.remaining = remaining;
      event.time_ms = time_ms;
      m_link.Emit(event);
      if(remaining <= 1e-9) { m_positions.Remove(position_id); return; }
      entry.volume = remaining;
      m_positions.Put(entry);
     }

   void              OnDealReverse(ulong deal, ulong position_id, int deal_type, double volume, double price, ulong time_ms)
     {
      int index = m_positions.Find(position_id);
      if(index < 0) return;
      TbBookEntry entry;
      m_positions.Get(index, entry);
      double old_volume = entry.volume;
      OnDealOut(deal, position_id, old_volume, price, time_ms);
      TbBookEntry reversed;
      reversed.CopyFrom(entry);
      reversed.type = deal_type;
      reversed.volume = TbLots(volume - old_volume);
      reversed.price = price;
      if(PositionSelectByTicket(position_id)) { ReadSelectedPosition(reversed); reversed.price = price; }
      TbEvent event;
      TbEventFrom("open", reversed, position_id, event);
      event.time_ms = time_ms;
      m_link.Emit(event);
      m_positions.Put(reversed);
     }

   void              OnPositionChange(ulong position_ticket)
     {
      if(!PositionSelectByTicket(position_ticket)) return;
      TbBookEntry current;
      ReadSelectedPosition(current);
      int index = m_positions.Find(current.key);
      if(index < 0) return;
      TbBookEntry known;
      m_positions.Get(index, known);
      if(known.sl == current.sl && known.tp == current.tp) return;
      TbEvent event;
      TbEventFrom("modify", current, current.key, event);
      event.price = 0;
      m_link.Emit(event);
      known.sl = current.sl;
      known.tp = current.tp;
      m_positions.Put(known);
     }

   void              OnOrderPlacedOrChanged(ulong ticket)
     {
      if(!OrderSelect(ticket)) return;
      TbBookEntry current;
      if(!ReadSelectedOrder(ticket, current)) return;
      int index = m_orders.Find(ticket);
      if(index < 0)
        {
         TbEvent event;
         TbEventFrom("pending", current, ticket, event);
         m_link.Emit(event);
         m_orders.Put(current);
         return;
        }
      TbBookEntry known;
      m_orders.Get(index, known);
      if(known.price == current.price && known.sl == current.sl && known.tp == current.tp) return;
      TbEvent event;
      TbEventFrom("modify", current, ticket, event);
      m_link.Emit(event);
      m_orders.Put(current);
     }

   void              OnOrderDeleted(ulong ticket, int state)
     {
      int index = m_orders.Find(ticket);
      if(index < 0) return;
      // A filled order is reported by its deal (open), not as a cancel.
      if(state == ORDER_STATE_FILLED || state == ORDER_STATE_PARTIAL) return;
      TbBookEntry known;
      m_orders.Get(index, known);
      TbEvent event;
      TbEventFrom("cancel", known, ticket, event);
      m_link.Emit(event);
      m_orders.Remove(ticket);
     }
  };

#endif
