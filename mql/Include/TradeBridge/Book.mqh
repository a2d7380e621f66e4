//+------------------------------------------------------------------+
//| Book.mqh: the Monitor's picture of open positions and pending    |
//| orders, and the helpers that turn changes into events.           |
//+------------------------------------------------------------------+
// # Layout
// - TbBookEntry: one position (keyed by its position id, or the MT4
//   ticket) or one pending order (keyed by its order ticket).
// - TbBook: a bounded list of entries with find/add/remove.
// - TbEventFrom: an event pre-filled from a book entry.
// # Invariants
// - A book holds at most TB_BOOK_ENTRIES_MAX entries; more are refused
//   and logged (the snapshot still lists them from the terminal).
#ifndef TRADEBRIDGE_BOOK_MQH
#define TRADEBRIDGE_BOOK_MQH

#include "Compat.mqh"
#include "Messages.mqh"

// Far above any real account's open positions and orders.
#define TB_BOOK_ENTRIES_MAX 5000

struct TbBookEntry
  {
   ulong             key;          // MT5 position id / order ticket; MT4 ticket
   ulong             pos;          // position id reported to the bridge
   string            symbol;
   int               type;         // 0..5 as in OP_* / ORDER_TYPE_*
   double            volume;
   double            price;        // open price, or pending trigger
   double            sl;
   double            tp;
   ulong             magic;
   string            comment;
   long              open_time;    // MT4: OrderOpenTime, kept by a partial close's rest; MT5: 0
   ulong             order;        // MT5: the order whose deals open the position (held opens)
   ulong             since_ms;     // MT5: when a held open was first seen (EA clock)
                     TbBookEntry(void) : key(0), pos(0), type(0), volume(0), price(0), sl(0), tp(0), magic(0), open_time(0), order(0), since_ms(0) {}
   void              CopyFrom(const TbBookEntry &other)
     {
      key = other.key; pos = other.pos; symbol = other.symbol; type = other.type; volume = other.volume; price = other.price; sl = other.sl;
      tp = other.tp; magic = other.magic; comment = other.comment; open_time = other.open_time; order = other.order; since_ms = other.since_ms;
     }
  };

class TbBook
  {
private:
   // Entries [0, m_count); order is insertion order.
   TB_ARRAY(TbBookEntry, m_entries);
   int               m_count;
public:
                     TbBook(void) : m_count(0) {}
   int               Count(void) const { return m_count; }
   void              CopyFrom(const TbBook &other)
     {
      m_count = other.m_count;
      ArrayResize(m_entries, m_count, 64);
      for(int i = 0; i < m_count; i++)
         m_entries[i].CopyFrom(other.m_entries[i]);
     }
   void              Clear(void) { m_count = 0; ArrayResize(m_entries, 0, 64); }
   void              Get(int index, TbBookEntry &entry) const { entry.CopyFrom(m_entries[index]); }
   ulong             KeyAt(int index) const { return m_entries[index].key; }
   int               Find(ulong key) const
     {
      for(int i = 0; i < m_count; i++)
         if(m_entries[i].key == key) return i;
      return -1;
     }
   // Adds or replaces the entry with the same key.
   bool              Put(const TbBookEntry &entry)
     {
      int index = Find(entry.key);
      if(index >= 0) { m_entries[index].CopyFrom(entry); return true; }
      if(m_count >= TB_BOOK_ENTRIES_MAX) { Print("TradeBridge: book full at ", IntegerToString(m_count), " entries"); return false; }
      ArrayResize(m_entries, m_count + 1, 64);
      m_entries[m_count].CopyFrom(entry);
      m_count++;
      return true;
     }
   void              Remove(ulong key)
     {
      int index = Find(key);
      if(index < 0) return;
      for(int i = index + 1; i < m_count; i++)
         m_entries[i - 1].CopyFrom(m_entries[i]);
      m_count--;
      ArrayResize(m_entries, m_count, 64);
     }
  };

// Server time in ms; the protocol marks time_ms informational only.
ulong TbServerTimeMs(void) { return (ulong)TimeCurrent() * 1000; }

// An event of `kind` describing `entry`; the caller adjusts volumes.
void TbEventFrom(const string &kind, const TbBookEntry &entry, ulong ticket, TbEvent &event)
  {
   event.Clear();
   event.kind = kind;
   event.pos = entry.pos;
   event.ticket = ticket;
   event.symbol = entry.symbol;
   event.side = TbSideOfType(entry.type);
   event.volume = entry.volume;
   event.price = entry.price;
   event.sl = entry.sl;
   event.tp = entry.tp;
   event.magic = entry.magic;
   event.comment = entry.comment;
   event.time_ms = TbServerTimeMs();
  }

// A snapshot item describing `entry` (a position, or a pending order
// whose price is its trigger).
void TbPositionFromEntry(const TbBookEntry &entry, TbPosition &position)
  {
   position.pos = entry.pos;
   position.symbol = entry.symbol;
   position.side = TbSideOfType(entry.type);
   position.volume = entry.volume;
   position.price = entry.price;
   position.sl = entry.sl;
   position.tp = entry.tp;
   position.magic = entry.magic;
   position.comment = entry.comment;
  }

// Lots rounded to 8 decimals, so repeated subtraction does not drift.
double TbLots(double value) { return NormalizeDouble(value, 8); }

#endif
