//+------------------------------------------------------------------+
//| Monitor4.mqh: MT4 master, by diffing the order list.             |
//+------------------------------------------------------------------+
// # Layout
// - TbLineage: ticket -> original ticket (`pos`), persisted in a file, so
//   a partial close's remainder keeps the `pos` of the first ticket across
//   EA restarts. MT4 gives the remainder a new ticket with the comment
//   "from #<old>" and leaves "to #<new>" on the closed part in history.
// - TbMonitor4.Configure(inputs) at OnInit; Service waits at the start-up
//   gate (Terminal.mqh) for the login and the account's orders, then
//   opens the outbox and lineage files named after the login and reads the
//   book (Init).
// - TbMonitor4.Scan(): reads every open order and compares with the book:
//     new ticket "from #N", or one with the open time, open price, symbol,
//     type and magic of a ticket gone in the same pass
//                              -> the rest of a partial close (no event)
//     new market ticket        -> open;  new pending ticket -> pending
//     ticket gone, closed      -> close (the book's lots minus those of the
//                                 rest; close price from history)
//     ticket gone, pending     -> cancel (or open + close when it filled
//                                 and closed between two scans)
//     pending -> market type   -> open (MT4 keeps the ticket on a fill)
//     SL/TP or trigger moved   -> modify
//   It runs from OnTimer and OnTick, so a change is seen within one timer
//   period even on a quiet symbol.
// - A ticket missing from a pass is closed only when OrderSelect by ticket
//   shows OrderCloseTime() > 0. One it shows open was skipped by the pass
//   (an order closed elsewhere while we walked the pool shifted the
//   indices); one it cannot find at all is confirmed missing on the next
//   pass first. Either is kept in the book meanwhile.
// # Invariants
// - `pos` of a position is the ticket it was opened with, whatever
//   partial closes happened since, even across EA restarts.
// - The lineage file holds only tickets still open (pruned on save), at
//   most TB_LINEAGE_ENTRIES_MAX; it is rewritten and read through Files.mqh
//   (a rewrite cut short is recovered from its .tmp).
#ifndef TRADEBRIDGE_MONITOR4_MQH
#define TRADEBRIDGE_MONITOR4_MQH

#include "Compat.mqh"
#include "Book.mqh"
#include "MonitorLink.mqh"
#include "Files.mqh"

// Far above the open tickets of any real account.
#define TB_LINEAGE_ENTRIES_MAX 5000
// Partial closes of one position followed through history at most this deep.
#define TB_LINEAGE_DEPTH_MAX 64

class TbLineage
  {
private:
   // Parallel arrays: ticket i descends from original ticket m_positions[i].
   TB_ARRAY(ulong, m_tickets);
   TB_ARRAY(ulong, m_positions);
   int               m_count;
   string            m_file_name;
public:
                     TbLineage(void) : m_count(0) {}
   int               Count(void) const { return m_count; }
   ulong             Get(ulong ticket) const
     {
      for(int i = 0; i < m_count; i++)
         if(m_tickets[i] == ticket) return m_positions[i];
      return 0;
     }
   void              Set(ulong ticket, ulong pos)
     {
      for(int i = 0; i < m_count; i++)
         if(m_tickets[i] == ticket) { m_positions[i] = pos; return; }
      if(m_count >= TB_LINEAGE_ENTRIES_MAX) return;
      ArrayResize(m_tickets, m_count + 1, 64);
      ArrayResize(m_positions, m_count + 1, 64);
      m_tickets[m_count] = ticket;
      m_positions[m_count] = pos;
      m_count++;
     }
   void              Load(const string &file_name)
     {
      m_file_name = file_name;
      m_count = 0;
      string text = "";
      if(!TbReadFileRecovering(file_name, text)) return;
      int start = 0;
      for(int i = 0; i < StringLen(text); i++)
        {
         if(StringGetCharacter(text, i) != '\n') continue;
         string line = StringSubstr(text, start, i - start);
         start = i + 1;
         int space = StringFind(line, " ");
         ulong ticket = 0, pos = 0;
         if(space > 0 && TbStringToULong(StringSubstr(line, 0, space), ticket) && TbStringToULong(StringSubstr(line, space + 1), pos))
            Set(ticket, pos);
        }
     }
   // Keeps only tickets in `book` and rewrites the file (Files.mqh).
   void              Save(const TbBook &book)
     {
      string text = "";
      for(int i = 0; i < m_count; i++)
         if(book.Find(m_tickets[i]) >= 0) text += TbULongToString(m_tickets[i]) + " " + TbULongToString(m_positions[i]) + "\n";
      TbWriteFileAtomically(m_file_name, text);
      Load(m_file_name);
     }
  };

class TbMonitor4
  {
private:
   TbMonitorLink     m_link;
   // Open orders (market and pending) as of the last scan, keyed by ticket.
   TbBook            m_book;
   TbLineage         m_lineage;
   // Tickets the last pass missed and OrderSelect could not find at all:
   // closed only if the next pass misses them too.
   TbBook            m_unconfirmed;
   // True once Init ran (the account is known).
   bool              m_started;

public:
                     TbMonitor4(void) : m_started(false) {}

   // OnInit: the inputs; the account is read once the gate opens.
   bool              Configure(const string &url, const string &key, const string &ea_name, int events_max, ulong snapshot_interval_ms,
                               ulong backoff_base_ms, ulong backoff_max_ms, ulong settle_ms, string &error)
     {
      m_started = false;
      return m_link.Configure(url, key, ea_name, events_max, snapshot_interval_ms, backoff_base_ms, backoff_max_ms, settle_ms, error);
     }

   bool              Init(const string &url, const TbHello &hello, const string &outbox_file, const string &lineage_file,
                          int events_max, ulong snapshot_interval_ms, ulong backoff_base_ms, ulong backoff_max_ms, string &error)
     {
      if(!m_link.Init(url, hello, outbox_file, events_max, snapshot_interval_ms, backoff_base_ms, backoff_max_ms, error)) return false;
      m_started = true;
      m_unconfirmed.Clear();
      m_lineage.Load(lineage_file);
      // The book starts as the terminal is: what happened while we were
      // away reaches the bridge through the snapshot after welcome.
      TbBook current;
      ReadOrders(current);
      m_book.CopyFrom(current);
      m_lineage.Save(m_book);
      return true;
     }
   int               PendingEvents(void) const { return m_link.PendingEvents(); }
   void              PendingEventAt(int index, TbEvent &event) const { m_link.PendingEventAt(index, event); }
   bool              IsReady(void) const { return m_link.IsReady(); }
   ulong             LastSeq(void) const { return m_link.LastSeq(); }
   ulong             PosOfTicket(ulong ticket) const
     {
      int index = m_book.Find(ticket);
      if(index < 0) return 0;
      TbBookEntry entry;
      m_book.Get(index, entry);
      return entry.pos;
     }
   void              Shutdown(void) { m_link.Shutdown(); }

   void              Service(ulong now_ms)
     {
      if(!m_started && !StartWhenReady(now_ms)) return;
      Scan();
      if(!m_link.Service(now_ms)) return;
      TbSnapshot snapshot;
      BuildSnapshot(snapshot);
      m_link.SendSnapshot(snapshot, now_ms);
     }

   void              BuildSnapshot(TbSnapshot &snapshot)
     {
      int count = 0;
      ArrayResize(snapshot.positions, 0, m_book.Count());
      for(int i = 0; i < m_book.Count(); i++)
        {
         TbBookEntry entry;
         m_book.Get(i, entry);
         // Pending orders too: the bridge cancels the copies of a pending
         // order it knows and the snapshot omits.
         ArrayResize(snapshot.positions, count + 1, m_book.Count());
         TbPositionFromEntry(entry, snapshot.positions[count]);
         count++;
        }
      snapshot.balance = AccountBalance();
      snapshot.equity = AccountEquity();
      snapshot.currency = AccountCurrency();
     }

   // Compares the terminal's orders with the book and emits the difference.
   void              Scan(void)
     {
      TbBook current;
      ReadOrders(current);
      bool lineage_changed = false;
      EmitGone(current);
      for(int i = 0; i < current.Count(); i++)
        {
         TbBookEntry entry;
         current.Get(i, entry);
         if(m_book.Find(entry.key) >= 0) { EmitChanges(entry); continue; }
         // The rest of a partial close continues its position.
         if(entry.pos != entry.key) { lineage_changed = true; continue; }
         TbEvent event;
         TbEventFrom(entry.type <= 1 ? "open" : "pending", entry, entry.key, event);
         m_link.Emit(event);
        }
      m_book.CopyFrom(current);
      if(lineage_changed) m_lineage.Save(m_book);
     }

private:
   bool              StartWhenReady(ulong now_ms)
     {
      TbHello hello;
      if(!m_link.AccountReady(now_ms, hello)) return false;
      string login = TbULongToString(hello.login);
      string error = "";
      if(Init(m_link.Url(), hello, "TradeBridge_outbox_" + login + ".log", "TradeBridge_lineage_" + login + ".txt", m_link.EventsMax(),
              m_link.SnapshotIntervalMs(), m_link.BackoffBaseMs(), m_link.BackoffMaxMs(), error))
         return true;
      Print("TradeBridge: ", error);
      return false;
     }

   void              ReadOrders(TbBook &book)
     {
      book.Clear();
      int total = OrdersTotal();
      for(int i = 0; i < total; i++)
        {
         if(!OrderSelect(i, SELECT_BY_POS, MODE_TRADES)) continue;
         TbBookEntry entry;
         entry.key = (ulong)OrderTicket();
         entry.pos = 0;
         entry.symbol = OrderSymbol();
         entry.type = OrderType();
         entry.volume = OrderLots();
         entry.price = OrderOpenPrice();
         entry.sl = OrderStopLoss();
         entry.tp = OrderTakeProfit();
         entry.magic = (ulong)OrderMagicNumber();
         entry.comment = OrderComment();
         entry.open_time = (long)OrderOpenTime();
         book.Put(entry);
        }
      // Positions are resolved after reading: PosOf selects history orders.
      for(int i = 0; i < book.Count(); i++)
        {
         TbBookEntry entry;
         book.Get(i, entry);
         entry.pos = PosOf(entry.key, entry.comment, 0);
         // A rest whose "from #N" the broker did not write, or whose origin
         // we never saw (two partial closes between passes).
         if(entry.pos == 0 && entry.type <= 1) entry.pos = VanishedTwin(book, entry);
         // A ticket with no known ancestor is its own position.
         if(entry.pos == 0) entry.pos = entry.key;
         if(entry.pos != entry.key) m_lineage.Set(entry.key, entry.pos);
         book.Put(entry);
        }
     }

   // The rest of a partial close keeps the open time, price, symbol, type
   // and magic of the original, and has fewer lots: the book entry with
   // those that this pass no longer shows is its origin. This finds the
   // rest when the broker wrote no "from #N", and when two partial closes
   // between passes leave a rest ("from #M") whose origin M we never saw.
   ulong             VanishedTwin(const TbBook &current, const TbBookEntry &rest)
     {
      if(rest.open_time == 0) return 0;
      for(int i = 0; i < m_book.Count(); i++)
        {
         TbBookEntry known;
         m_book.Get(i, known);
         if(current.Find(known.key) >= 0 || known.type > 1) continue;
         if(known.symbol != rest.symbol || known.type != rest.type || known.open_time != rest.open_time ||
            known.price != rest.price || known.magic != rest.magic || rest.volume >= known.volume - 1e-9)
            continue;
         // Only an order really closed has a rest: one the pass merely
         // skipped (the pool shifted) is still open, and `rest` is new.
         if(OrderSelect((int)known.key, SELECT_BY_TICKET) && OrderCloseTime() > 0) return known.pos;
        }
      return 0;
     }

   // The original ticket of `ticket` through the book, the lineage file
   // and "from #" comments in history (see TbLineage); 0 when the chain
   // reaches no ticket we know.
   ulong             PosOf(ulong ticket, const string &comment, int depth)
     {
      int known = m_book.Find(ticket);
      if(known >= 0) { TbBookEntry entry; m_book.Get(known, entry); if(entry.pos != 0) return entry.pos; }
      ulong recorded = m_lineage.Get(ticket);
      if(recorded != 0) return recorded;
      ulong origin = TbFromTicket(comment);
      if(origin == 0 || depth >= TB_LINEAGE_DEPTH_MAX) return 0;
      string origin_comment = "";
      if(OrderSelect((int)origin, SELECT_BY_TICKET)) origin_comment = OrderComment();
      // The closed part's history comment is "to #...", so the chain only
      // continues through the book or the lineage file, which hold it.
      return PosOf(origin, origin_comment, depth + 1);
     }

   // Lots still open of `known`'s position after it left the pool: those
   // of the other tickets of the same pos (the rest of a partial close).
   double            ContinuationLots(const TbBook &current, const TbBookEntry &known)
     {
      double lots = 0;
      for(int i = 0; i < current.Count(); i++)
        {
         TbBookEntry entry;
         current.Get(i, entry);
         if(entry.key != known.key && entry.pos == known.pos && entry.type <= 1) lots += entry.volume;
        }
      return TbLots(lots);
     }

   // Book entries this pass did not show: closed, cancelled, or (when
   // OrderSelect does not confirm it) kept in `current` for another look.
   void              EmitGone(TbBook &current)
     {
      TbBook unconfirmed;
      for(int i = 0; i < m_book.Count(); i++)
        {
         TbBookEntry known;
         m_book.Get(i, known);
         if(current.Find(known.key) >= 0) continue;
         bool in_history = OrderSelect((int)known.key, SELECT_BY_TICKET);
         // Still open: the pass skipped it (the pool shifted under us).
         if(in_history && OrderCloseTime() == 0) { current.Put(known); continue; }
         // Nowhere to be found: closed only if the next pass misses it too.
         if(!in_history && m_unconfirmed.Find(known.key) < 0)
           {
            unconfirmed.Put(known);
            current.Put(known);
            continue;
           }
         if(known.type > 1 && !(in_history && OrderType() <= 1))
           {
            TbEvent cancel;
            TbEventFrom("cancel", known, known.key, cancel);
            m_link.Emit(cancel);
            continue;
           }
         if(known.type > 1)
           {
            // Filled and closed between two scans: report both steps.
            TbEvent open;
            known.type = OrderType();
            known.price = OrderOpenPrice();
            TbEventFrom("open", known, known.key, open);
            m_link.Emit(open);
           }
         EmitClose(current, known, in_history);
        }
      m_unconfirmed.CopyFrom(unconfirmed);
     }

   void              EmitClose(const TbBook &current, const TbBookEntry &known, bool in_history)
     {
      double remaining = ContinuationLots(current, known);
      double closed = TbLots(known.volume - remaining);
      TbEvent event;
      TbEventFrom("close", known, known.key, event);
      event.volume = closed;
      event.price = 0;
      // The closed volume is the book's lots minus the rest's: that also
      // covers several partial closes between two scans, where the history
      // record of this ticket holds only the first.
      if(in_history)
        {
         event.price = OrderClosePrice();
         event.time_ms = (ulong)OrderCloseTime() * 1000;
        }
      event.has_remaining = true;
      event.remaining = remaining;
      m_link.Emit(event);
     }

   void              EmitChanges(const TbBookEntry &entry)
     {
      TbBookEntry known;
      m_book.Get(m_book.Find(entry.key), known);
      TbBookEntry now;
      now.CopyFrom(entry);
      now.pos = known.pos;
      if(known.type > 1 && entry.type <= 1)
        {
         TbEvent open;
         TbEventFrom("open", now, entry.key, open);
         m_link.Emit(open);
         return;
        }
      bool moved = known.sl != entry.sl || known.tp != entry.tp || (entry.type > 1 && known.price != entry.price);
      if(!moved) return;
      TbEvent modify;
      TbEventFrom("modify", now, entry.key, modify);
      if(entry.type <= 1) modify.price = 0;
      m_link.Emit(modify);
     }
  };

#endif
