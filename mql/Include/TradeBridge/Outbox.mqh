//+------------------------------------------------------------------+
//| Outbox.mqh: the Monitor's numbered, persisted event outbox.      |
//+------------------------------------------------------------------+
// # Layout
// The outbox file (MQL4|5/Files/<name>) is an append-only log of lines:
//
//     S <last_seq>      highest seq ever assigned (written on compaction)
//     A <seq>           the bridge acked every event up to <seq>
//     E <event json>    one event, written before it is sent
//
// Loading replays the lines: pending events are the E lines above the
// highest A; the next seq follows the highest seq seen in any line. A torn
// last line (a crash mid-write) fails to parse and is skipped: its event
// was never sent, so its seq is free to reuse.
// Compaction rewrites S, A and the pending E lines through "<name>.tmp"
// (TbCompactLog, Files.mqh); Open first puts a whole temporary in place
// when a compaction was cut short (TbRecoverLog), so a crash leaves the old
// or the new log.
//
// # Invariants
// - seq strictly increases by 1 per event and never goes back, across EA
//   and terminal restarts (it is written before the event is sent).
// - At most m_events_max events wait for an ack. When full, Append refuses
//   the event and counts it in DroppedCount(); the Monitor then relies on
//   the snapshot it sends after every welcome (and every 60 s), from which
//   the bridge reconciles opens and closes. Nothing is dropped silently.
// - Before the first welcome on a fresh install the seq base is unknown:
//   events wait with seq 0 and are numbered from the bridge's ack_seq+1.
#ifndef TRADEBRIDGE_OUTBOX_MQH
#define TRADEBRIDGE_OUTBOX_MQH

#include "Compat.mqh"
#include "Messages.mqh"
#include "Files.mqh"

// About 200 bytes per event: 10,000 events is a 2 MB file and covers a
// day of very active trading while the bridge is unreachable.
#define TB_OUTBOX_EVENTS_MAX_DEFAULT 10000
// Compact once the log holds this many lines more than the pending events.
#define TB_OUTBOX_COMPACT_SLACK_LINES 256

class TbOutbox
  {
private:
   // File name under the terminal's Files folder.
   string            m_file_name;
   // Pending (unacked) events in seq order; [0, m_count) are live.
   TB_ARRAY(TbEvent, m_events);
   int               m_count;
   // Bound on m_count, from the EA's input.
   int               m_events_max;
   // Highest seq assigned; only grows.
   ulong             m_last_seq;
   // Highest seq the bridge acked; only grows.
   ulong             m_acked_seq;
   // Highest seq sent on the current connection; reset on every welcome.
   ulong             m_sent_seq;
   // False until the first welcome on a fresh install (see Invariants).
   bool              m_sequence_known;
   // Events refused because the outbox was full; only grows.
   int               m_dropped_count;
   // Lines in the log since the last compaction, to decide the next one.
   int               m_file_lines;
   // Handle of the open log, or INVALID_HANDLE.
   int               m_handle;
   // Why the last file operation failed; "" when none did.
   string            m_error;

public:
                     TbOutbox(void) : m_count(0), m_events_max(TB_OUTBOX_EVENTS_MAX_DEFAULT), m_last_seq(0), m_acked_seq(0),
                     m_sent_seq(0), m_sequence_known(false), m_dropped_count(0), m_file_lines(0), m_handle(INVALID_HANDLE) {}
                    ~TbOutbox(void) { Close(); }

   int               PendingCount(void) const { return m_count; }
   ulong             LastSeq(void) const { return m_last_seq; }
   ulong             AckedSeq(void) const { return m_acked_seq; }
   int               DroppedCount(void) const { return m_dropped_count; }
   bool              SequenceKnown(void) const { return m_sequence_known; }
   string            Error(void) const { return m_error; }
   ulong             PendingSeq(int index) const { return m_events[index].seq; }
   void              PendingEventAt(int index, TbEvent &event) const { event.CopyFrom(m_events[index]); }

   // Loads the log (if any) and keeps it open for appends.
   bool              Open(const string &file_name, int events_max)
     {
      Close();
      m_file_name = file_name;
      m_events_max = events_max > 0 ? events_max : TB_OUTBOX_EVENTS_MAX_DEFAULT;
      m_count = 0; m_last_seq = 0; m_acked_seq = 0; m_sent_seq = 0; m_sequence_known = false; m_file_lines = 0;
      ArrayResize(m_events, 0, 64);
      bool torn = false;
      TbRecoverLog(m_file_name);
      if(FileIsExist(m_file_name) && !Load(torn)) return false;
      // Appending after a torn line would glue the next event onto it, so
      // a torn log is rewritten whole first.
      if(torn) Compact();
      if(m_handle == INVALID_HANDLE) m_handle = FileOpen(m_file_name, FILE_READ | FILE_WRITE | FILE_BIN);
      if(m_handle == INVALID_HANDLE) { m_error = "cannot open outbox file '" + m_file_name + "', error " + IntegerToString(GetLastError()); return false; }
      FileSeek(m_handle, 0, SEEK_END);
      return true;
     }

   void              Close(void)
     {
      if(m_handle != INVALID_HANDLE) FileClose(m_handle);
      m_handle = INVALID_HANDLE;
     }

   // Numbers `event`, writes it to the log and queues it. False when full
   // (counted) or when the log cannot be written (then nothing is queued:
   // an event that is not durable must not be sent).
   bool              Append(TbEvent &event)
     {
      if(m_count >= m_events_max) { m_dropped_count++; return false; }
      event.seq = m_sequence_known ? m_last_seq + 1 : 0;
      if(!WriteLine("E ", EventJson(event))) return false;
      if(m_sequence_known) m_last_seq = event.seq;
      ArrayResize(m_events, m_count + 1, 64);
      m_events[m_count].CopyFrom(event);
      m_count++;
      return true;
     }

   // After welcome: numbers waiting events if the base was unknown (or the
   // bridge is ahead of us), drops what it holds, and rewinds sending.
   void              OnWelcome(ulong ack_seq)
     {
      if(!m_sequence_known || ack_seq > m_last_seq)
        {
         if(m_sequence_known)
            Print("TradeBridge: bridge ack_seq ", TbULongToString(ack_seq), " is above our last seq ", TbULongToString(m_last_seq),
                  "; numbering waiting events after it");
         // Nothing we hold can have reached the bridge under these numbers.
         m_last_seq = ack_seq;
         for(int i = 0; i < m_count; i++)
            m_events[i].seq = ++m_last_seq;
         m_sequence_known = true;
         m_acked_seq = ack_seq;
         Compact();
        }
      else if(ack_seq < m_acked_seq)
         Print("TradeBridge: bridge ack_seq ", TbULongToString(ack_seq), " is below the ", TbULongToString(m_acked_seq),
               " it acked before; the snapshot will reconcile what it lost");
      Acknowledge(ack_seq);
      m_sent_seq = ack_seq;
     }

   // The bridge holds every event up to `seq`.
   void              Acknowledge(ulong seq)
     {
      if(seq <= m_acked_seq && !(m_count > 0 && m_events[0].seq <= seq)) return;
      if(seq > m_last_seq) seq = m_last_seq;
      int drop = 0;
      while(drop < m_count && m_events[drop].seq <= seq) drop++;
      if(drop > 0)
        {
         for(int i = drop; i < m_count; i++)
            m_events[i - drop].CopyFrom(m_events[i]);
         m_count -= drop;
         ArrayResize(m_events, m_count, 64);
        }
      if(seq > m_acked_seq)
        {
         m_acked_seq = seq;
         WriteLine("A ", TbULongToString(seq));
        }
      if(m_file_lines > m_count + TB_OUTBOX_COMPACT_SLACK_LINES) Compact();
     }

   // The next event to send on this connection, oldest first; false when
   // every pending event has been sent (or the seq base is unknown).
   bool              NextToSend(TbEvent &event)
     {
      if(!m_sequence_known) return false;
      for(int i = 0; i < m_count; i++)
        {
         if(m_events[i].seq <= m_sent_seq) continue;
         event.CopyFrom(m_events[i]);
         m_sent_seq = event.seq;
         return true;
        }
      return false;
     }

   // Sending failed at the socket: send again from after `seq - 1`.
   void              Unsend(ulong seq) { if(seq > 0 && seq - 1 < m_sent_seq) m_sent_seq = seq - 1; }

private:
   string            EventJson(const TbEvent &event)
     {
      TbJsonWriter writer;
      TbWriteEvent(writer, event);
      return writer.ToString();
     }

   bool              WriteLine(const string &tag, const string &text)
     {
      if(m_handle == INVALID_HANDLE) { m_error = "outbox file is not open"; return false; }
      TB_ARRAY(uchar, bytes);
      int count = StringToCharArray(tag + text + "\n", bytes, 0, -1, CP_UTF8) - 1;
      uint written = FileWriteArray(m_handle, bytes, 0, count);
      FileFlush(m_handle);
      if((int)written != count) { m_error = "outbox write of " + IntegerToString(count) + " bytes wrote " + IntegerToString((int)written); return false; }
      m_file_lines++;
      return true;
     }

   bool              Load(bool &torn)
     {
      int handle = FileOpen(m_file_name, FILE_READ | FILE_BIN);
      if(handle == INVALID_HANDLE) { m_error = "cannot read outbox file '" + m_file_name + "', error " + IntegerToString(GetLastError()); return false; }
      TB_ARRAY(uchar, bytes);
      int size = (int)FileReadArray(handle, bytes, 0, WHOLE_ARRAY);
      FileClose(handle);
      int start = 0;
      for(int i = 0; i < size; i++)
        {
         if(bytes[i] != '\n') continue;
         LoadLine(CharArrayToString(bytes, start, i - start, CP_UTF8));
         start = i + 1;
        }
      // Bytes after the last newline are a torn write; skipping them is safe.
      torn = start < size;
      int keep = 0;
      for(int i = 0; i < m_count; i++)
        {
         if(m_events[i].seq != 0 && m_events[i].seq <= m_acked_seq) continue;
         if(keep != i) m_events[keep].CopyFrom(m_events[i]);
         keep++;
        }
      m_count = keep;
      ArrayResize(m_events, m_count, 64);
      return true;
     }

   void              LoadLine(const string &line)
     {
      m_file_lines++;
      string tag = StringSubstr(line, 0, 2);
      string rest = StringSubstr(line, 2);
      ulong value = 0;
      if(tag == "S " && TbStringToULong(rest, value))
        {
         if(value > m_last_seq) m_last_seq = value;
         m_sequence_known = true;
        }
      else if(tag == "A " && TbStringToULong(rest, value))
        {
         if(value > m_acked_seq) m_acked_seq = value;
         m_sequence_known = true;
        }
      else if(tag == "E ")
        {
         TbJsonReader reader;
         TbEvent event;
         string error = "";
         if(!reader.ParseText(rest) || !TbReadEvent(reader, 0, event, error)) { Print("TradeBridge: skipping unreadable outbox line"); return; }
         if(event.seq > m_last_seq) m_last_seq = event.seq;
         if(event.seq > 0) m_sequence_known = true;
         ArrayResize(m_events, m_count + 1, 64);
         m_events[m_count].CopyFrom(event);
         m_count++;
        }
     }

   // Rewrites the log as S, A and the pending events (see Layout).
   void              Compact(void)
     {
      string text = "S " + TbULongToString(m_last_seq) + "\nA " + TbULongToString(m_acked_seq) + "\n";
      for(int i = 0; i < m_count; i++)
         text += "E " + EventJson(m_events[i]) + "\n";
      Close();
      if(!TbCompactLog(m_file_name, text)) m_error = "cannot rewrite the outbox file '" + m_file_name + "', error " + IntegerToString(GetLastError());
      m_handle = FileOpen(m_file_name, FILE_READ | FILE_WRITE | FILE_BIN);
      if(m_handle != INVALID_HANDLE) FileSeek(m_handle, 0, SEEK_END);
      m_file_lines = 2 + m_count;
     }
  };

#endif
