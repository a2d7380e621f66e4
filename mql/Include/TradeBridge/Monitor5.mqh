//+------------------------------------------------------------------+
//| Monitor5.mqh: MT5 master, driven by OnTradeTransaction.          |
//+------------------------------------------------------------------+
// # Layout
// - TbMonitor5.Configure(inputs) at OnInit; Service waits at the start-up
//   gate (Terminal.mqh) for the login and the account's positions, then
//   opens the outbox named after the login and loads the book (Init).
//   Transactions before that are not looked at: the book read at Init,
//   and the snapshot after welcome, hold what they did.
// - TbMonitor5.OnTransaction(trans) maps terminal transactions to events:
//     DEAL_ADD, entry IN      -> open (pos = DEAL_POSITION_ID), booked from
//                                the deal itself; an order filled in
//                                several deals is one open of their sum
//     DEAL_ADD, OUT / OUT_BY  -> close (volume = deal volume, remaining)
//     DEAL_ADD, INOUT         -> close of the old volume, then open of
//                                the rest the other way (netting reversal)
//     POSITION (SL/TP moved)  -> modify
//     ORDER_ADD of a pending  -> pending;  ORDER_UPDATE -> modify;
//     ORDER_DELETE canceled / expired / rejected -> cancel
//   Everything is keyed on the position identifier, which MT5 keeps for a
//   position's whole life on hedging and netting accounts (its ticket can
//   change: a broker's re-opening, a netting reversal); a pending order's
//   ticket becomes the id of the position it opens, so the bridge sees
//   pending and open under the same `pos`.
// - Service(now_ms) reads deals the history did not show yet, lets held
//   opens go, runs the link and sends the snapshot when due. The snapshot
//   lists open positions and pending orders (side buy_limit..., price =
//   trigger): the bridge treats a pending order it knows and the snapshot
//   omits as deleted, and cancels its copies.
// # Invariants
// - The book mirrors the terminal: loaded at Init, updated by every
//   deal; events are derived from the difference, so a repeated
//   transaction (MT5 may deliver DEAL_ADD and friends more than once)
//   changes nothing the second time.
// - A deal is marked seen only once it was read: one HistoryDealSelect
//   does not find yet is read again on each Service, for at most
//   TB_DEFERRED_DEAL_MS.
// - Deals of one position are handled in ticket order whatever order the
//   transactions came in: a deal first reads the position's earlier deals
//   it has not seen (HistorySelectByPosition).
// - An open is held while its order has filled less than its volume and is
//   still working, for at most TB_OPEN_HOLD_MS; then it goes out with what
//   filled, and later deals of it are a scale-in.
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
// Deals the history has not shown yet, read again on each Service.
#define TB_DEFERRED_DEALS_MAX 64
// A deal the history does not show for this long is given up (logged; the
// snapshot carries what it did).
#define TB_DEFERRED_DEAL_MS 10000
// A partly filled order's open waits at most this long for its other deals.
#define TB_OPEN_HOLD_MS 2000

class TbMonitor5
  {
private:
   TbMonitorLink     m_link;
   // Open positions, keyed (and reported) by position id.
   TbBook            m_positions;
   // Opens held until their order has filled (keyed by position id).
   TbBook            m_opening;
   // Pending orders, keyed (and reported) by order ticket.
   TbBook            m_orders;
   // Ring of the deal tickets handled last, so a deal delivered twice is
   // reported once; m_recent_next is the slot the next deal overwrites.
   ulong             m_recent_deals[TB_RECENT_DEALS_MAX];
   int               m_recent_next;
   // Deals HistoryDealSelect did not find yet, and since when.
   ulong             m_deferred[TB_DEFERRED_DEALS_MAX];
   ulong             m_deferred_since_ms[TB_DEFERRED_DEALS_MAX];
   int               m_deferred_count;
   // The newest deal in the history when the book was loaded: older deals
   // are in the book already and never read again.
   ulong             m_start_deal;
   // The EA clock of the last Service or transaction.
   ulong             m_now_ms;
   // True once Init ran (the account is known).
   bool              m_started;

public:
                     TbMonitor5(void) : m_recent_next(0), m_deferred_count(0), m_start_deal(0), m_now_ms(0), m_started(false)
     {
      ArrayInitialize(m_recent_deals, 0);
      ArrayInitialize(m_deferred, 0);
      ArrayInitialize(m_deferred_since_ms, 0);
     }

   // OnInit: the inputs; the account is read once the gate opens.
   bool              Configure(const string &url, const string &key, const string &ea_name, int events_max, ulong snapshot_interval_ms,
                               ulong backoff_base_ms, ulong backoff_max_ms, ulong settle_ms, string &error)
     {
      m_started = false;
      return m_link.Configure(url, key, ea_name, events_max, snapshot_interval_ms, backoff_base_ms, backoff_max_ms, settle_ms, error);
     }

   bool              Init(const string &url, const TbHello &hello, const string &outbox_file, int events_max,
                          ulong snapshot_interval_ms, ulong backoff_base_ms, ulong backoff_max_ms, string &error)
     {
      if(!m_link.Init(url, hello, outbox_file, events_max, snapshot_interval_ms, backoff_base_ms, backoff_max_ms, error)) return false;
      // MQL keeps an EA's globals across OnDeinit/OnInit (account or chart
      // change), so everything learnt before is forgotten here.
      ArrayInitialize(m_recent_deals, 0);
      m_recent_next = 0;
      m_deferred_count = 0;
      m_opening.Clear();
      LoadBook();
      m_started = true;
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
      m_now_ms = now_ms;
      if(!m_started && !StartWhenReady(now_ms)) return;
      RetryDeferredDeals();
      ReleaseHeldOpens(false);
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
      if(!m_started) return;
      if(trans.type == TRADE_TRANSACTION_DEAL_ADD) OnDeal(trans.deal);
      else if(trans.type == TRADE_TRANSACTION_POSITION) OnPositionChange(trans.position);
      else if(trans.type == TRADE_TRANSACTION_ORDER_ADD || trans.type == TRADE_TRANSACTION_ORDER_UPDATE) OnOrderPlacedOrChanged(trans.order);
      else if(trans.type == TRADE_TRANSACTION_ORDER_DELETE) OnOrderDeleted(trans.order, (int)trans.order_state);
      // An order that left the active list may have been waiting on an open.
      if(trans.type == TRADE_TRANSACTION_ORDER_DELETE || trans.type == TRADE_TRANSACTION_HISTORY_ADD) ReleaseHeldOpens(false);
     }

private:
   bool              StartWhenReady(ulong now_ms)
     {
      TbHello hello;
      if(!m_link.AccountReady(now_ms, hello)) return false;
      string error = "";
      if(Init(m_link.Url(), hello, "TradeBridge_outbox_" + TbULongToString(hello.login) + ".log", m_link.EventsMax(),
              m_link.SnapshotIntervalMs(), m_link.BackoffBaseMs(), m_link.BackoffMaxMs(), error))
         return true;
      Print("TradeBridge: ", error);
      return false;
     }

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
      m_start_deal = 0;
      if(!HistorySelect(0, TimeCurrent() + 86400)) return;
      int total = HistoryDealsTotal();
      for(int i = total - 1; i >= 0 && i >= total - TB_RECENT_DEALS_MAX; i--)
        {
         ulong deal = HistoryDealGetTicket(i);
         if(deal > m_start_deal) m_start_deal = deal;
        }
     }

   // Selects the open position whose identifier is `identifier` (its
   // ticket is the same unless the broker re-opened it or a reversal
   // renamed it).
   bool              SelectPositionById(ulong identifier)
     {
      if(PositionSelectByTicket(identifier) && (ulong)PositionGetInteger(POSITION_IDENTIFIER) == identifier) return true;
      for(int i = PositionsTotal() - 1; i >= 0; i--)
         if(PositionGetTicket(i) != 0 && (ulong)PositionGetInteger(POSITION_IDENTIFIER) == identifier) return true;
      return false;
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

   bool              Seen(ulong deal) const
     {
      for(int i = 0; i < TB_RECENT_DEALS_MAX; i++)
         if(m_recent_deals[i] == deal) return true;
      return false;
     }

   void              MarkSeen(ulong deal)
     {
      m_recent_deals[m_recent_next] = deal;
      m_recent_next = (m_recent_next + 1) % TB_RECENT_DEALS_MAX;
     }

   // Keeps `deal` to read again; `since_ms` is when it was first missed.
   void              Defer(ulong deal, ulong since_ms)
     {
      for(int i = 0; i < m_deferred_count; i++)
         if(m_deferred[i] == deal) return;
      if(m_deferred_count >= TB_DEFERRED_DEALS_MAX)
        {
         Print("TradeBridge: ", IntegerToString(m_deferred_count), " deals wait for the history already; deal ", TbULongToString(deal),
               " is left to the next snapshot");
         return;
        }
      m_deferred[m_deferred_count] = deal;
      m_deferred_since_ms[m_deferred_count] = since_ms;
      m_deferred_count++;
     }

   void              RetryDeferredDeals(void)
     {
      // Taken out first: reading one deal may defer another.
      int count = m_deferred_count;
      ulong deals[TB_DEFERRED_DEALS_MAX];
      ulong since[TB_DEFERRED_DEALS_MAX];
      for(int i = 0; i < count; i++) { deals[i] = m_deferred[i]; since[i] = m_deferred_since_ms[i]; }
      m_deferred_count = 0;
      for(int i = 0; i < count; i++)
        {
         if(HistoryDealSelect(deals[i])) { OnDeal(deals[i]); continue; }
         if(m_now_ms - since[i] >= TB_DEFERRED_DEAL_MS)
           {
            Print("TradeBridge: deal ", TbULongToString(deals[i]), " never showed in the history; the snapshot carries what it did");
            continue;
           }
         Defer(deals[i], since[i]);
        }
     }

   void              OnDeal(ulong deal)
     {
      // Deals up to m_start_deal are in the book loaded at Init already.
      if(deal == 0 || deal <= m_start_deal || Seen(deal)) return;
      if(!HistoryDealSelect(deal)) { Defer(deal, m_now_ms); return; }
      ulong position_id = (ulong)HistoryDealGetInteger(deal, DEAL_POSITION_ID);
      // Earlier deals of the same position first, whatever order their
      // transactions came in.
      CatchUp(position_id, deal);
      if(Seen(deal) || !HistoryDealSelect(deal)) return;
      MarkSeen(deal);
      int deal_type = (int)HistoryDealGetInteger(deal, DEAL_TYPE);
      // Balance, credit, commission... deals are not trades.
      if(deal_type != DEAL_TYPE_BUY && deal_type != DEAL_TYPE_SELL) return;
      int entry = (int)HistoryDealGetInteger(deal, DEAL_ENTRY);
      double volume = HistoryDealGetDouble(deal, DEAL_VOLUME);
      double price = HistoryDealGetDouble(deal, DEAL_PRICE);
      ulong time_ms = (ulong)HistoryDealGetInteger(deal, DEAL_TIME_MSC);
      if(entry == DEAL_ENTRY_IN) OnDealIn(deal, position_id, deal_type, volume, price, time_ms);
      else if(entry == DEAL_ENTRY_OUT || entry == DEAL_ENTRY_OUT_BY) OnDealOut(deal, position_id, volume, price, time_ms);
      else if(entry == DEAL_ENTRY_INOUT) OnDealReverse(deal, position_id, deal_type, volume, price, time_ms);
     }

   // Handles the deals of `position_id` older than `deal` that have not
   // been seen (their transactions are late, or were lost), in ticket order.
   void              CatchUp(ulong position_id, ulong deal)
     {
      if(position_id == 0 || !HistorySelectByPosition(position_id)) return;
      TB_ARRAY(ulong, earlier);
      int count = 0;
      int total = HistoryDealsTotal();
      for(int i = 0; i < total && count < TB_DEFERRED_DEALS_MAX; i++)
        {
         ulong other = HistoryDealGetTicket(i);
         if(other == 0 || other >= deal || other <= m_start_deal || Seen(other)) continue;
         ArrayResize(earlier, count + 1, 8);
         earlier[count++] = other;
        }
      // Ticket order (deal tickets grow); the history is in time order already
      // on a real terminal, this makes sure.
      for(int i = 1; i < count; i++)
         for(int j = i; j > 0 && earlier[j - 1] > earlier[j]; j--) { ulong swap = earlier[j]; earlier[j] = earlier[j - 1]; earlier[j - 1] = swap; }
      for(int i = 0; i < count; i++) OnDeal(earlier[i]);
     }

   // Lots the deals of `order` have filled of its volume: complete when
   // nothing of it is left working.
   bool              OrderComplete(ulong order, double filled)
     {
      if(OrderSelect(order)) return filled >= OrderGetDouble(ORDER_VOLUME_INITIAL) - 1e-9;
      if(!HistoryOrderSelect(order)) return true;
      double initial = HistoryOrderGetDouble(order, ORDER_VOLUME_INITIAL);
      double unfilled = HistoryOrderGetDouble(order, ORDER_VOLUME_CURRENT);
      return filled >= initial - unfilled - 1e-9;
     }

   void              OnDealIn(ulong deal, ulong position_id, int deal_type, double volume, double price, ulong time_ms)
     {
      ulong order = (ulong)HistoryDealGetInteger(deal, DEAL_ORDER);
      int held = m_opening.Find(position_id);
      if(held >= 0)
        {
         // A further deal of the order that opens the position.
         TbBookEntry entry;
         m_opening.Get(held, entry);
         entry.price = (entry.price * entry.volume + price * volume) / (entry.volume + volume);
         entry.volume = TbLots(entry.volume + volume);
         m_opening.Put(entry);
         if(OrderComplete(entry.order, entry.volume)) EmitOpen(entry, time_ms);
         return;
        }
      if(m_positions.Find(position_id) >= 0)
        {
         // A netting scale-in, or a deal of an open that already went out.
         TbBookEntry known;
         m_positions.Get(m_positions.Find(position_id), known);
         TbBookEntry current;
         current.CopyFrom(known);
         if(SelectPositionById(position_id)) ReadSelectedPosition(current);
         else current.volume = TbLots(known.volume + volume);
         if(current.volume > known.volume + 1e-9)
            Print("TradeBridge: netting scale-in (or a late deal of its order) on position ", TbULongToString(position_id), " (", TbFormatDouble(known.volume), " -> ",
                  TbFormatDouble(current.volume), " lots) has no protocol event; the snapshot carries it");
         m_positions.Put(current);
         return;
        }
      // A new position, booked from the deal: it may be closed already.
      TbBookEntry entry;
      entry.key = position_id; entry.pos = position_id; entry.symbol = HistoryDealGetString(deal, DEAL_SYMBOL);
      entry.type = deal_type; entry.volume = volume; entry.price = price; entry.sl = 0; entry.tp = 0;
      entry.magic = (ulong)HistoryDealGetInteger(deal, DEAL_MAGIC); entry.comment = HistoryDealGetString(deal, DEAL_COMMENT);
      if(SelectPositionById(position_id)) { entry.sl = PositionGetDouble(POSITION_SL); entry.tp = PositionGetDouble(POSITION_TP); }
      entry.order = order;
      entry.since_ms = m_now_ms;
      // A pending order that filled: its ticket is this position's id.
      m_orders.Remove(position_id);
      if(!OrderComplete(order, volume)) { m_opening.Put(entry); return; }
      EmitOpen(entry, time_ms);
     }

   void              EmitOpen(TbBookEntry &entry, ulong time_ms)
     {
      m_opening.Remove(entry.key);
      TbEvent event;
      TbEventFrom("open", entry, entry.key, event);
      if(time_ms > 0) event.time_ms = time_ms;
      m_link.Emit(event);
      m_positions.Put(entry);
     }

   // Held opens whose order is done, or that waited long enough (all of
   // them when `all`), go out with what filled.
   void              ReleaseHeldOpens(bool all)
     {
      for(int i = m_opening.Count() - 1; i >= 0; i--)
        {
         TbBookEntry entry;
         m_opening.Get(i, entry);
         bool done = all || m_now_ms - entry.since_ms >= TB_OPEN_HOLD_MS || OrderComplete(entry.order, entry.volume);
         if(done) EmitOpen(entry, 0);
        }
     }

   void              OnDealOut(ulong deal, ulong position_id, double volume, double price, ulong time_ms)
     {
      // An open held for its other deals goes out before its close.
      int held = m_opening.Find(position_id);
      if(held >= 0) { TbBookEntry entry; m_opening.Get(held, entry); EmitOpen(entry, 0); }
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
      if(SelectPositionById(position_id)) { ReadSelectedPosition(reversed); reversed.price = price; }
      TbEvent event;
      TbEventFrom("open", reversed, position_id, event);
      event.time_ms = time_ms;
      m_link.Emit(event);
      m_positions.Put(reversed);
     }

   void              OnPositionChange(ulong position_ticket)
     {
      // The transaction names the position's ticket; the book its identifier.
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
