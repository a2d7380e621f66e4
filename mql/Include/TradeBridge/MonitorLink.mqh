//+------------------------------------------------------------------+
//| MonitorLink.mqh: what both Monitors share: the outbox, the       |
//| bridge client, acks, re-send after welcome, the snapshot timer.  |
//+------------------------------------------------------------------+
// # Layout
// - TbMonitorLink.Configure(inputs): OnInit; AccountReady(now_ms) waits
//   at the start-up gate (Terminal.mqh) and fills the hello of the account
//   the terminal logged in to; the Monitor then opens the outbox (Init),
//   named after that login, and reads the book.
// - TbMonitorLink.Emit(event): numbers and persists an event (outbox),
//   then it goes out on the next Service.
// - TbMonitorLink.Service(now_ms): polls the bridge; on welcome rewinds
//   the outbox to ack_seq and asks for a snapshot; on ack drops events;
//   sends waiting events (at most TB_EVENTS_PER_SERVICE per call).
//   Returns true when a snapshot is due; the Monitor builds it from the
//   terminal and calls SendSnapshot.
// # Invariants
// - An event is in the outbox file before it is sent (Emit persists).
// - A snapshot goes out after every welcome and then at least every
//   m_snapshot_interval_ms (PROTOCOL.md: at least every 60 s).
// - A frame above TB_FRAME_BYTES_MAX is never sent: the bridge would
//   close the connection (1009) and we would loop; it is logged instead.
#ifndef TRADEBRIDGE_MONITOR_LINK_MQH
#define TRADEBRIDGE_MONITOR_LINK_MQH

#include "Compat.mqh"
#include "BridgeClient.mqh"
#include "Outbox.mqh"
#include "Terminal.mqh"

// The bridge's default frame limit (PROTOCOL.md: 16 KiB).
#define TB_FRAME_BYTES_MAX 16384
// Re-sending a long outbox is spread over several timer calls so the
// terminal stays responsive; 200 events is ~40 KB of frames per call.
#define TB_EVENTS_PER_SERVICE 200
// PROTOCOL.md: a snapshot at least every 60 s.
#define TB_SNAPSHOT_INTERVAL_MS_DEFAULT 60000
// Messages handled per Service call, so one call is bounded.
#define TB_MESSAGES_PER_SERVICE 256

class TbMonitorLink
  {
private:
   TbBridgeClient    m_client;
   TbOutbox          m_outbox;
   TbJsonReader      m_reader;
   TbStartGate       m_gate;
   // Settings from the EA's inputs (Configure).
   string            m_url;
   string            m_key;
   string            m_ea_name;
   int               m_events_max;
   ulong             m_backoff_base_ms;
   ulong             m_backoff_max_ms;
   // When the last snapshot went out; 0 = never on this connection.
   ulong             m_last_snapshot_ms;
   // Set by a welcome: the next Service asks for a snapshot at once.
   bool              m_snapshot_now;
   ulong             m_snapshot_interval_ms;
   // Counts for logs and tests; only increase.
   int               m_events_sent;
   int               m_snapshots_sent;
   int               m_oversized_frames;

public:
                     TbMonitorLink(void) : m_events_max(0), m_backoff_base_ms(500), m_backoff_max_ms(30000), m_last_snapshot_ms(0), m_snapshot_now(false),
                     m_snapshot_interval_ms(TB_SNAPSHOT_INTERVAL_MS_DEFAULT), m_events_sent(0), m_snapshots_sent(0),
                     m_oversized_frames(0) {}

   // OnInit: the inputs, checked; nothing of the account is read yet.
   bool              Configure(const string &url, const string &key, const string &ea_name, int events_max, ulong snapshot_interval_ms,
                               ulong backoff_base_ms, ulong backoff_max_ms, ulong settle_ms, string &error)
     {
      string host = "", path = "";
      uint port = 0;
      bool tls = false;
      if(!TbParseUrl(url, host, port, path, tls, error)) return false;
      m_url = url;
      m_key = key;
      m_ea_name = ea_name;
      m_events_max = events_max;
      m_snapshot_interval_ms = snapshot_interval_ms > 0 ? snapshot_interval_ms : TB_SNAPSHOT_INTERVAL_MS_DEFAULT;
      m_backoff_base_ms = backoff_base_ms;
      m_backoff_max_ms = backoff_max_ms;
      m_gate.Reset(settle_ms);
      return true;
     }

   // True once the terminal has logged in and loaded the account; `hello`
   // is then that account's, for Init.
   bool              AccountReady(ulong now_ms, TbHello &hello)
     {
      if(!m_gate.Ready(now_ms)) return false;
      hello.version = TB_PROTOCOL_VERSION;
      hello.key = m_key;
      hello.login = TbAccountLogin();
      hello.role = "master";
      hello.platform = TB_PLATFORM;
      hello.server = TbAccountServer();
      hello.ea = m_ea_name;
      hello.last_seq = 0;
      return true;
     }
   string            Url(void) const { return m_url; }
   int               EventsMax(void) const { return m_events_max; }
   ulong             SnapshotIntervalMs(void) const { return m_snapshot_interval_ms; }
   ulong             BackoffBaseMs(void) const { return m_backoff_base_ms; }
   ulong             BackoffMaxMs(void) const { return m_backoff_max_ms; }

   bool              Init(const string &url, const TbHello &hello, const string &outbox_file, int events_max,
                          ulong snapshot_interval_ms, ulong backoff_base_ms, ulong backoff_max_ms, string &error)
     {
      if(!m_client.Configure(url, hello, backoff_base_ms, backoff_max_ms, error)) return false;
      if(!m_outbox.Open(outbox_file, events_max)) { error = m_outbox.Error(); return false; }
      m_snapshot_interval_ms = snapshot_interval_ms > 0 ? snapshot_interval_ms : TB_SNAPSHOT_INTERVAL_MS_DEFAULT;
      m_last_snapshot_ms = 0;
      m_snapshot_now = false;
      return true;
     }

   int               PendingEvents(void) const { return m_outbox.PendingCount(); }
   void              PendingEventAt(int index, TbEvent &event) const { m_outbox.PendingEventAt(index, event); }
   ulong             LastSeq(void) const { return m_outbox.LastSeq(); }
   int               EventsSent(void) const { return m_events_sent; }
   int               SnapshotsSent(void) const { return m_snapshots_sent; }
   int               DroppedEvents(void) const { return m_outbox.DroppedCount(); }
   bool              IsReady(void) const { return m_client.IsReady(); }

   // Persists and queues an event; logs loudly when the outbox is full.
   void              Emit(TbEvent &event)
     {
      if(m_outbox.Append(event)) return;
      if(m_outbox.Error() != "") Print("TradeBridge: cannot persist event: ", m_outbox.Error());
      else Print("TradeBridge: outbox full (", IntegerToString(m_outbox.PendingCount()), " events): ", event.kind, " of position ",
                 TbULongToString(event.pos), " not queued; the next snapshot carries the book (", IntegerToString(m_outbox.DroppedCount()), " dropped)");
      m_snapshot_now = true;
     }

   // Services the bridge; true when the Monitor should send a snapshot.
   bool              Service(ulong now_ms)
     {
      string type = "";
      for(int handled = 0; handled < TB_MESSAGES_PER_SERVICE && m_client.Poll(now_ms, m_reader, type); handled++)
         HandleMessage(type);
      if(!m_client.IsReady()) return false;
      SendEvents();
      m_client.FlushOutput();
      return m_snapshot_now || now_ms - m_last_snapshot_ms >= m_snapshot_interval_ms;
     }

   void              SendSnapshot(const TbSnapshot &snapshot, ulong now_ms)
     {
      TbJsonWriter writer;
      TbWriteSnapshot(writer, snapshot);
      m_last_snapshot_ms = now_ms;
      m_snapshot_now = false;
      if(writer.Length() > TB_FRAME_BYTES_MAX)
        {
         m_oversized_frames++;
         Print("TradeBridge: snapshot of ", IntegerToString(ArraySize(snapshot.positions)), " positions is ",
               IntegerToString(writer.Length()), " bytes, above the ", IntegerToString(TB_FRAME_BYTES_MAX), "-byte frame limit; not sent");
         return;
        }
      if(m_client.Send(writer)) m_snapshots_sent++;
      m_client.FlushOutput();
     }

   void              Shutdown(void) { m_client.Shutdown(); m_outbox.Close(); }

private:
   void              HandleMessage(const string &type)
     {
      if(type == "welcome")
        {
         ulong ack_seq = 0;
         m_reader.GetULong(0, "ack_seq", ack_seq);
         m_outbox.OnWelcome(ack_seq);
         m_snapshot_now = true;
         return;
        }
      if(type == "ack")
        {
         TbAck ack;
         string error = "";
         if(TbReadAck(m_reader, 0, ack, error)) m_outbox.Acknowledge(ack.seq);
         else Print("TradeBridge: bad ack: ", error);
         return;
        }
      // A Monitor expects nothing else; unknown types are ignored.
     }

   void              SendEvents(void)
     {
      TbEvent event;
      for(int sent = 0; sent < TB_EVENTS_PER_SERVICE && m_outbox.NextToSend(event); sent++)
        {
         TbJsonWriter writer;
         TbWriteEvent(writer, event);
         if(!m_client.Send(writer))
           {
            m_outbox.Unsend(event.seq);
            return;
           }
         m_events_sent++;
        }
     }
  };

#endif
