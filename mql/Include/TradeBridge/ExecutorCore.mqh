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
// - Files are rewritten through "<name>.tmp" + FileMove(FILE_REWRITE), so
//   a crash leaves the old or the new content, never a mix.
// - The tag map holds at most TB_TAG_MAP_ENTRIES_MAX entries.
#ifndef TRADEBRIDGE_EXECUTOR_CORE_MQH
#define TRADEBRIDGE_EXECUTOR_CORE_MQH

#include "Compat.mqh"
#include "Messages.mqh"

// Far above the copies one slave account holds open at once.
#define TB_TAG_MAP_ENTRIES_MAX 5000
// Characters of an order comment MT4 and MT5 store; the rest is cut.
#define TB_COMMENT_LENGTH_MAX 31
// Base of the compact tag: 2^64-1 is 13 digits in base 36.
#define TB_COMPACT_TAG_BASE 36

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
   ulong             ticket;       // MT4 ticket / MT5 position or order ticket
   string            symbol;
   int               type;         // 0..5
   double            volume;       // this copy's volume (netting: its share)
   double            price;        // open or trigger price
   double            sl;
   double            tp;
                     TbFound(void) : ticket(0), type(0), volume(0), price(0), sl(0), tp(0) {}
  };

struct TbAttempt
  {
   uint              code;         // retcode (MT5) / GetLastError (MT4)
   ulong             ticket;       // what the call produced or changed
   double            price;        // fill price
   double            volume;       // filled volume
                     TbAttempt(void) : code(0), ticket(0), price(0), volume(0) {}
  };

// Writes `text` to `<name>.tmp` and moves it over `name`.
bool TbWriteFileAtomically(const string &name, const string &text)
  {
   string temporary = name + ".tmp";
   int handle = FileOpen(temporary, FILE_WRITE | FILE_BIN);
   if(handle == INVALID_HANDLE) return false;
   TB_ARRAY(uchar, bytes);
   int count = StringToCharArray(text, bytes, 0, -1, CP_UTF8) - 1;
   uint written = FileWriteArray(handle, bytes, 0, count);
   FileClose(handle);
   if((int)written != count) return false;
   return FileMove(temporary, 0, name, FILE_REWRITE);
  }

// Reads the ulong stored by TbWriteFileAtomically; 0 when absent.
ulong TbReadCounterFile(const string &name)
  {
   if(!FileIsExist(name)) return 0;
   int handle = FileOpen(name, FILE_READ | FILE_BIN);
   if(handle == INVALID_HANDLE) return 0;
   TB_ARRAY(uchar, bytes);
   int size = (int)FileReadArray(handle, bytes, 0, WHOLE_ARRAY);
   FileClose(handle);
   int end = 0;
   while(end < size && bytes[end] >= '0' && bytes[end] <= '9') end++;
   ulong value = 0;
   TbStringToULong(CharArrayToString(bytes, 0, end, CP_UTF8), value);
   return value;
  }

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
      if(!FileIsExist(file_name)) return;
      int handle = FileOpen(file_name, FILE_READ | FILE_BIN);
      if(handle == INVALID_HANDLE) return;
      TB_ARRAY(uchar, bytes);
      int size = (int)FileReadArray(handle, bytes, 0, WHOLE_ARRAY);
      FileClose(handle);
      int start = 0;
      string file = m_file_name;
      m_file_name = "";
      for(int i = 0; i < size; i++)
        {
         if(bytes[i] != '\n') continue;
         string line = CharArrayToString(bytes, start, i - start, CP_UTF8);
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
