//+------------------------------------------------------------------+
//| ExecutorCore.mqh: what both Executors share.                     |
//+------------------------------------------------------------------+
// # Layout
// - TbNormalizeVolume: lots rounded down to the symbol's step, within
//   [min, max]; 0 when below the minimum (the copy is then skipped: rounding
//   up would take more risk than the follow asked for).
// - TbFound / TbAttempt: what a lookup found; what one trade call did.
// - TbTagMap: tag -> slave ticket, persisted. The comment tag
//   tc:<master>:<pos> is how a copy is found, but brokers may cut comments
//   (31 characters is common) and MT4 renames a partially closed ticket
//   ("from #N"), so the map is consulted first and the comment scan second.
// - TbCounterFile: one persisted ulong (the Executor's last_seq).
// - TbCopyLedger: what happened to each recent copy id (started, order
//   accepted, finished with which result), appended before and after
//   every trade, so a copy that comes again is never carried out twice.
// - TbNormalizePrice: a price rounded to the symbol's tick size and digits.
// - TbOrderComment / TbTagOfComment: the comment an order carries for a
//   tag, and back. A tag longer than the TB_COMMENT_LENGTH_MAX characters
//   MT4 and MT5 keep would be cut, and a cut tag can equal another copy's
//   ("tc:1:123456789" cut to "tc:1:12345678"), so it is written compact:
//   "tc#<master>:<pos>" in base 36, at most 30 characters for any two
//   64-bit numbers.
// - TbExecutorCore (Executor.mqh) uses these with the platform's TbTradeOps.
// # Invariants
// - TbTagOfComment(TbOrderComment(tag)) == tag for every tag
//   "tc:<u64>:<u64>"; a comment that is neither form maps to itself.
// - Files are rewritten and read through Files.mqh, so a crash in the
//   middle of a rewrite leaves the old or the new content readable.
// - The tag map holds at most TB_TAG_MAP_ENTRIES_MAX entries, the ledger
//   at most TB_LEDGER_ENTRIES_MAX copy ids (the oldest are forgotten).
#ifndef TRADEBRIDGE_EXECUTOR_CORE_MQH
#define TRADEBRIDGE_EXECUTOR_CORE_MQH

#include "Compat.mqh"
#include "Messages.mqh"
#include "Files.mqh"

// Far above the copies one slave account holds open at once.
#define TB_TAG_MAP_ENTRIES_MAX 5000
// Characters of an order comment MT4 and MT5 store; the rest is cut.
#define TB_COMMENT_LENGTH_MAX 31
// Base of the compact tag: 2^64-1 is 13 digits in base 36.
#define TB_COMPACT_TAG_BASE 36
// Copy ids the ledger remembers: the bridge re-sends at most the copies
// it holds for a slave, far fewer in practice; 2,048 lines of ~200 bytes.
#define TB_LEDGER_ENTRIES_MAX 2048
// The ledger is rewritten once it holds this many lines per entry.
#define TB_LEDGER_COMPACT_FACTOR 3

// Ledger states of a copy id.
#define TB_COPY_STARTED  1
#define TB_COPY_ORDERED  2
#define TB_COPY_FINISHED 3

// A note built of "...; " parts, without the last separator.
string TbTrimNote(const string &note)
  {
   int length = StringLen(note);
   if(length >= 2 && StringSubstr(note, length - 2) == "; ") return StringSubstr(note, 0, length - 2);
   return note;
  }

// `price` on the symbol's grid: a multiple of `tick` (0: of 10^-digits),
// then rounded to `digits`; 0 stays 0 (no stop).
double TbNormalizePrice(double price, double tick, int digits)
  {
   if(price == 0) return 0;
   double point = MathPow(10, -digits);
   double grid = tick > 0 ? tick : point;
   return NormalizeDouble(MathRound(price / grid) * grid, digits);
  }

// `volume` rounded down to `step`, clamped to `max`; 0 when below `min`.
double TbNormalizeVolume(double volume, double min, double max, double step)
  {
   if(step <= 0 || volume <= 0) return 0;
   // The epsilon keeps 0.3 / 0.1 = 2.9999999 from losing a step.
   double steps = MathFloor(volume / step + 1e-7);
   double normalized = steps * step;
   if(normalized > max) normalized = MathFloor(max / step + 1e-7) * step;
   if(normalized < min - 1e-9) return 0;
   // Digits of the step, so 0.1 steps print as 0.3 and not 0.30000000004.
   int digits = 0;
   double scaled = step;
   while(digits < 8 && MathAbs(scaled - MathRound(scaled)) > 1e-9) { scaled *= 10; digits++; }
   return NormalizeDouble(normalized, digits);
  }

// The tag the bridge puts in `comment`; rebuilt when a copy lacks it.
string TbCopyTag(const TbCopy &copy)
  {
   if(copy.comment != "") return copy.comment;
   return "tc:" + TbULongToString(copy.master) + ":" + TbULongToString(copy.pos);
  }

// `value` in base 36, lowercase ("0" for 0).
string TbULongToBase36(ulong value)
  {
   string digits = "0123456789abcdefghijklmnopqrstuvwxyz";
   string text = "";
   // At most 13 passes: 2^64-1 has 13 digits in base 36.
   do
     {
      text = StringSubstr(digits, (int)(value % TB_COMPACT_TAG_BASE), 1) + text;
      value /= TB_COMPACT_TAG_BASE;
     }
   while(value > 0);
   return text;
  }

// Parses lowercase base 36; false (value untouched) when empty, not a
// digit, or above 2^64-1.
bool TbBase36ToULong(const string &text, ulong &value)
  {
   int length = StringLen(text);
   if(length == 0 || length > 13) return false;
   ulong result = 0;
   for(int i = 0; i < length; i++)
     {
      int character = (int)StringGetCharacter(text, i);
      int digit = character >= '0' && character <= '9' ? character - '0' : character >= 'a' && character <= 'z' ? character - 'a' + 10 : -1;
      if(digit < 0) return false;
      if(result > (ULONG_MAX - (ulong)digit) / TB_COMPACT_TAG_BASE) return false;
      result = result * TB_COMPACT_TAG_BASE + (ulong)digit;
     }
   value = result;
   return true;
  }

// Splits "<prefix><a>:<b>" into a and b (as text); false without the prefix or colon.
bool TbSplitTag(const string &text, const string &prefix, string &first, string &second)
  {
   if(!TbStartsWith(text, prefix)) return false;
   int colon = StringFind(text, ":", StringLen(prefix));
   if(colon < 0) return false;
   first = StringSubstr(text, StringLen(prefix), colon - StringLen(prefix));
   second = StringSubstr(text, colon + 1);
   return true;
  }

// The comment an order carries for `tag` (see Layout).
string TbOrderComment(const string &tag)
  {
   if(StringLen(tag) <= TB_COMMENT_LENGTH_MAX) return tag;
   string master_text = "", pos_text = "";
   ulong master = 0, pos = 0;
   if(!TbSplitTag(tag, "tc:", master_text, pos_text) || !TbStringToULong(master_text, master) || !TbStringToULong(pos_text, pos))
      return tag;
   return "tc#" + TbULongToBase36(master) + ":" + TbULongToBase36(pos);
  }

// The tag an order's comment stands for: the compact form decoded, any
// other comment as it is.
string TbTagOfComment(const string &comment)
  {
   string master_text = "", pos_text = "";
   ulong master = 0, pos = 0;
   if(!TbSplitTag(comment, "tc#", master_text, pos_text) || !TbBase36ToULong(master_text, master) || !TbBase36ToULong(pos_text, pos))
      return comment;
   return "tc:" + TbULongToString(master) + ":" + TbULongToString(pos);
  }

struct TbFound
  {
   ulong             ticket;       // MT4 ticket / MT5 position identifier or order ticket
   string            symbol;
   int               type;         // 0..5
   double            volume;       // this copy's volume (netting: its share)
   double            price;        // open or trigger price
   double            sl;
   double            tp;
   ulong             magic;
   long              open_time;    // MT4: OrderOpenTime, kept by a partial close's rest
                     TbFound(void) : ticket(0), type(0), volume(0), price(0), sl(0), tp(0), magic(0), open_time(0) {}
  };

struct TbAttempt
  {
   uint              code;         // retcode (MT5) / GetLastError (MT4)
   ulong             ticket;       // what the call produced or changed
   ulong             order;        // MT5: the order the server took, 0 if none
   double            price;        // fill price
   double            volume;       // filled volume; 0 when the server has not said
                     TbAttempt(void) : code(0), ticket(0), order(0), price(0), volume(0) {}
  };

// What a symbol allows of prices and stops (SymbolInfo* / MarketInfo).
struct TbPriceRules
  {
   int               digits;
   double            point;
   double            tick;         // smallest price step; prices are multiples of it
   int               stops_level;  // points SL/TP and triggers keep from the market
   int               freeze_level; // points within which orders and stops cannot change
   bool              market_execution; // opens must not carry SL/TP
                     TbPriceRules(void) : digits(5), point(0.00001), tick(0.00001), stops_level(0), freeze_level(0), market_execution(false) {}
  };

// Outcomes of an order the server took without saying how it filled.
#define TB_ORDER_WORKING 0
#define TB_ORDER_DONE    1

// `sl` and `tp` of an order of `type` (0..5) whose stops are measured from
// `reference` (a position: the price it closes at; a pending order: its
// trigger), on the symbol's grid and at least the stops level away; a stop
// that had to move is named in `note`.
void TbFitStops(const TbPriceRules &rules, int type, double reference, double &sl, double &tp, string &note)
  {
   bool buy = type % 2 == 0;
   double distance = rules.stops_level * rules.point;
   double grid = rules.tick > 0 ? rules.tick : rules.point;
   sl = TbNormalizePrice(sl, rules.tick, rules.digits);
   tp = TbNormalizePrice(tp, rules.tick, rules.digits);
   if(distance <= 0 || reference <= 0) return;
   // A moved stop is rounded away from the market, so it stays outside.
   if(sl != 0 && (buy ? reference - sl : sl - reference) < distance - grid / 2)
     {
      double limit = buy ? MathFloor((reference - distance) / grid + 1e-9) * grid : MathCeil((reference + distance) / grid - 1e-9) * grid;
      note += "SL " + TbFormatDouble(sl) + " moved to " + TbFormatDouble(NormalizeDouble(limit, rules.digits)) + " (broker's stops level " +
              IntegerToString(rules.stops_level) + " points); ";
      sl = NormalizeDouble(limit, rules.digits);
     }
   if(tp != 0 && (buy ? tp - reference : reference - tp) < distance - grid / 2)
     {
      double limit = buy ? MathCeil((reference + distance) / grid - 1e-9) * grid : MathFloor((reference - distance) / grid + 1e-9) * grid;
      note += "TP " + TbFormatDouble(tp) + " moved to " + TbFormatDouble(NormalizeDouble(limit, rules.digits)) + " (broker's stops level " +
              IntegerToString(rules.stops_level) + " points); ";
      tp = NormalizeDouble(limit, rules.digits);
     }
  }

// Reads the ulong stored by TbWriteFileAtomically; 0 when absent.
ulong TbReadCounterFile(const string &name)
  {
   string text = "";
   if(!TbReadFileRecovering(name, text)) return 0;
   int end = 0;
   while(end < StringLen(text) && StringGetCharacter(text, end) >= '0' && StringGetCharacter(text, end) <= '9') end++;
   ulong value = 0;
   TbStringToULong(StringSubstr(text, 0, end), value);
   return value;
  }

// The Executor's record of the copies it started, by key (the copy id and
// what the copy asks for; the Executor's LedgerKey), appended to
// a file before and after each trade so that a copy the bridge sends again
// (its seq file lost, or a restart in the middle) is never carried out
// twice. One line per step, a tag and a JSON object:
//
//     S {"id":"2002-7","volume":0.5}      before the first trade request;
//                                         volume: the copy's position then
//     O {"id":"2002-7","order":9102}      MT5: the server took order 9102
//     F {"id":"2002-7","result":{...}}    finished, with the result sent
//
// Loading replays the lines (a torn last line is skipped); the file is
// rewritten whole (TbCompactLog) once it holds TB_LEDGER_COMPACT_FACTOR
// lines per remembered id, and a rewrite cut short is recovered at Open.
class TbCopyLedger
  {
private:
   string            m_file_name;
   // Handle of the log open for appends, or INVALID_HANDLE.
   int               m_handle;
   // Entries [0, m_count), oldest first, as parallel arrays.
   TB_ARRAY(string, m_ids);
   TB_ARRAY(int, m_states);         // TB_COPY_*
   TB_ARRAY(double, m_volumes);     // the copy's position volume when started
   TB_ARRAY(ulong, m_orders);       // the order the server took, or 0
   TB_ARRAY(string, m_results);     // the finished result, as JSON
   int               m_count;
   // Lines in the file, to decide when to rewrite it.
   int               m_lines;
public:
                     TbCopyLedger(void) : m_handle(INVALID_HANDLE), m_count(0), m_lines(0) {}
                    ~TbCopyLedger(void) { Close(); }
   int               Count(void) const { return m_count; }

   bool              Open(const string &file_name)
     {
      Close();
      m_file_name = file_name;
      m_count = 0;
      m_lines = 0;
      TB_ARRAY(uchar, bytes);
      int size = 0;
      TbRecoverLog(file_name);
      if(TbReadFileBytes(file_name, bytes, size))
        {
         int start = 0;
         for(int i = 0; i < size; i++)
           {
            if(bytes[i] != '\n') continue;
            LoadLine(CharArrayToString(bytes, start, i - start, CP_UTF8));
            start = i + 1;
           }
         // A torn last line would glue onto the next append: rewrite.
         if(start < size) Compact();
        }
      if(m_handle == INVALID_HANDLE) m_handle = FileOpen(m_file_name, FILE_READ | FILE_WRITE | FILE_BIN);
      if(m_handle == INVALID_HANDLE) return false;
      FileSeek(m_handle, 0, SEEK_END);
      return true;
     }

   void              Close(void)
     {
      if(m_handle != INVALID_HANDLE) FileClose(m_handle);
      m_handle = INVALID_HANDLE;
     }

   // TB_COPY_* of `id`, 0 when unknown.
   int               State(const string &id) const
     {
      int index = Find(id);
      return index < 0 ? 0 : m_states[index];
     }
   double            VolumeBefore(const string &id) const { int index = Find(id); return index < 0 ? 0 : m_volumes[index]; }
   ulong             Order(const string &id) const { int index = Find(id); return index < 0 ? 0 : m_orders[index]; }
   // The result a finished copy was answered with; false when not finished.
   bool              Result(const string &id, TbResult &result) const
     {
      int index = Find(id);
      if(index < 0 || m_states[index] != TB_COPY_FINISHED) return false;
      TbJsonReader reader;
      string error = "";
      return reader.ParseText(m_results[index]) && TbReadResult(reader, 0, result, error);
     }

   void              RecordStart(const string &id, double volume_before)
     {
      TbJsonWriter writer;
      writer.BeginObject();
      writer.FieldString("id", id);
      writer.FieldDouble("volume", volume_before);
      writer.EndObject();
      Apply("S", id, volume_before, 0, "");
      Append("S ", writer.ToString());
     }
   void              RecordOrder(const string &id, ulong order)
     {
      TbJsonWriter writer;
      writer.BeginObject();
      writer.FieldString("id", id);
      writer.FieldULong("order", order);
      writer.EndObject();
      Apply("O", id, 0, order, "");
      Append("O ", writer.ToString());
     }
   void              RecordFinish(const string &id, const TbResult &result)
     {
      TbJsonWriter item;
      TbWriteResult(item, result);
      TbJsonWriter writer;
      writer.BeginObject();
      writer.FieldString("id", id);
      writer.Key("result");
      TbWriteResult(writer, result);
      writer.EndObject();
      Apply("F", id, 0, 0, item.ToString());
      Append("F ", writer.ToString());
     }

private:
   int               Find(const string &id) const
     {
      for(int i = m_count - 1; i >= 0; i--)
         if(m_ids[i] == id) return i;
      return -1;
     }

   // Updates the in-memory entry of `id` for one line of `tag`.
   void              Apply(const string &tag, const string &id, double volume, ulong order, const string &result)
     {
      if(id == "") return;
      int index = Find(id);
      if(index < 0)
        {
         if(m_count >= TB_LEDGER_ENTRIES_MAX) Forget(0);
         index = m_count;
         m_count++;
         ArrayResize(m_ids, m_count, 64); ArrayResize(m_states, m_count, 64); ArrayResize(m_volumes, m_count, 64);
         ArrayResize(m_orders, m_count, 64); ArrayResize(m_results, m_count, 64);
         m_ids[index] = id; m_states[index] = 0; m_volumes[index] = 0; m_orders[index] = 0; m_results[index] = "";
        }
      if(tag == "S") { m_states[index] = TB_COPY_STARTED; m_volumes[index] = volume; }
      else if(tag == "O") { m_states[index] = TB_COPY_ORDERED; m_orders[index] = order; }
      else if(tag == "F") { m_states[index] = TB_COPY_FINISHED; m_results[index] = result; }
     }

   void              Forget(int index)
     {
      for(int i = index + 1; i < m_count; i++)
        {
         m_ids[i - 1] = m_ids[i]; m_states[i - 1] = m_states[i]; m_volumes[i - 1] = m_volumes[i];
         m_orders[i - 1] = m_orders[i]; m_results[i - 1] = m_results[i];
        }
      m_count--;
     }

   void              LoadLine(const string &line)
     {
      m_lines++;
      string tag = StringSubstr(line, 0, 1);
      TbJsonReader reader;
      string id = "";
      if(StringSubstr(line, 1, 1) != " " || !reader.ParseText(StringSubstr(line, 2)) || !reader.GetString(0, "id", id)) return;
      double volume = 0;
      ulong order = 0;
      reader.GetDouble(0, "volume", volume);
      reader.GetULong(0, "order", order);
      string result = "";
      int item = reader.Find(0, "result");
      if(item >= 0) result = reader.RawText(item);
      if(tag == "F" && result == "") return;
      Apply(tag, id, volume, order, result);
     }

   void              Append(const string &tag, const string &json)
     {
      if(m_handle == INVALID_HANDLE) return;
      TB_ARRAY(uchar, bytes);
      int count = StringToCharArray(tag + json + "\n", bytes, 0, -1, CP_UTF8) - 1;
      if((int)FileWriteArray(m_handle, bytes, 0, count) != count)
         Print("TradeBridge: cannot append to ", m_file_name, "; a copy sent again after a restart may not be recognised");
      FileFlush(m_handle);
      m_lines++;
      if(m_lines > TB_LEDGER_COMPACT_FACTOR * TB_LEDGER_ENTRIES_MAX) Compact();
     }

   // Rewrites the log as one line per step still remembered.
   void              Compact(void)
     {
      string text = "";
      for(int i = 0; i < m_count; i++)
        {
         TbJsonWriter writer;
         writer.BeginObject();
         writer.FieldString("id", m_ids[i]);
         writer.FieldDouble("volume", m_volumes[i]);
         writer.FieldULong("order", m_orders[i]);
         if(m_states[i] == TB_COPY_FINISHED) { writer.Key("result"); writer.Raw(m_results[i]); }
         writer.EndObject();
         string tag = m_states[i] == TB_COPY_FINISHED ? "F " : m_states[i] == TB_COPY_ORDERED ? "O " : "S ";
         text += tag + writer.ToString() + "\n";
        }
      Close();
      if(!TbCompactLog(m_file_name, text)) Print("TradeBridge: cannot rewrite ", m_file_name, "; it keeps growing until the next try");
      m_lines = m_count;
      m_handle = FileOpen(m_file_name, FILE_READ | FILE_WRITE | FILE_BIN);
      if(m_handle != INVALID_HANDLE) FileSeek(m_handle, 0, SEEK_END);
     }
  };

class TbTagMap
  {
private:
   // Parallel arrays: copy with tag m_tags[i] lives on ticket m_tickets[i].
   TB_ARRAY(string, m_tags);
   TB_ARRAY(ulong, m_tickets);
   int               m_count;
   string            m_file_name;
public:
                     TbTagMap(void) : m_count(0) {}
   int               Count(void) const { return m_count; }
   ulong             Get(const string &tag) const
     {
      for(int i = 0; i < m_count; i++)
         if(m_tags[i] == tag) return m_tickets[i];
      return 0;
     }
   // The tag of `ticket`, or "".
   string            TagOf(ulong ticket) const
     {
      for(int i = 0; i < m_count; i++)
         if(m_tickets[i] == ticket) return m_tags[i];
      return "";
     }
   void              Set(const string &tag, ulong ticket)
     {
      for(int i = 0; i < m_count; i++)
         if(m_tags[i] == tag) { if(m_tickets[i] != ticket) { m_tickets[i] = ticket; Save(); } return; }
      if(m_count >= TB_TAG_MAP_ENTRIES_MAX) { Print("TradeBridge: tag map full; ", tag, " found by comment only"); return; }
      ArrayResize(m_tags, m_count + 1, 64);
      ArrayResize(m_tickets, m_count + 1, 64);
      m_tags[m_count] = tag;
      m_tickets[m_count] = ticket;
      m_count++;
      Save();
     }
   void              Remove(const string &tag)
     {
      for(int i = 0; i < m_count; i++)
        {
         if(m_tags[i] != tag) continue;
         for(int j = i + 1; j < m_count; j++) { m_tags[j - 1] = m_tags[j]; m_tickets[j - 1] = m_tickets[j]; }
         m_count--;
         ArrayResize(m_tags, m_count, 64);
         ArrayResize(m_tickets, m_count, 64);
         Save();
         return;
        }
     }
   void              Load(const string &file_name)
     {
      m_file_name = file_name;
      m_count = 0;
      string text = "";
      if(!TbReadFileRecovering(file_name, text)) return;
      string file = m_file_name;
      // No saving while loading: Set would rewrite the file per line.
      m_file_name = "";
      int start = 0;
      for(int i = 0; i < StringLen(text); i++)
        {
         if(StringGetCharacter(text, i) != '\n') continue;
         string line = StringSubstr(text, start, i - start);
         start = i + 1;
         int space = StringFind(line, " ");
         ulong ticket = 0;
         if(space > 0 && TbStringToULong(StringSubstr(line, space + 1), ticket)) Set(StringSubstr(line, 0, space), ticket);
        }
      m_file_name = file;
     }
private:
   void              Save(void)
     {
      if(m_file_name == "") return;
      string text = "";
      for(int i = 0; i < m_count; i++)
         text += m_tags[i] + " " + TbULongToString(m_tickets[i]) + "\n";
      TbWriteFileAtomically(m_file_name, text);
     }
  };

#endif
