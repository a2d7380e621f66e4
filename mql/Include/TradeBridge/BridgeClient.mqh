//+------------------------------------------------------------------+
//| BridgeClient.mqh: transport + WebSocket + session, serviced by   |
//| polling from OnTimer and OnTick.                                 |
//+------------------------------------------------------------------+
// # Layout
// - TbParseUrl: ws://host[:port][/path] and wss://...
// - TbBridgeClient: Poll(now_ms, reader, type) connects when the session
//   says so, moves bytes both ways, sends hello after the upgrade, keeps
//   the heartbeat, and hands each application message (welcome, ack,
//   copy, ...) to the EA one at a time. Pong and error are handled here.
// # Invariants
// - Poll never blocks longer than the platform's connect (MT5's
//   SocketConnect waits up to TB_TCP_CONNECT_TIMEOUT_MS; MT4 never waits).
// - At most TB_READ_BYTES_MAX bytes are read per Poll, and never more
//   than the WebSocket's free input space (back-pressure).
// - Application messages reach the EA only in state READY or as the
//   welcome that makes it READY.
// - Send only queues a frame; the EA calls FlushOutput once at the end of
//   its service round, so the frames of one round leave in as few writes
//   as the socket takes. MT5 gives an EA no way to turn Nagle's algorithm
//   off, and with it on a second small write waits for the peer's ACK of
//   the first (up to its delayed-ACK time, 40 ms on Linux).
#ifndef TRADEBRIDGE_BRIDGE_CLIENT_MQH
#define TRADEBRIDGE_BRIDGE_CLIENT_MQH

#include "Compat.mqh"
#include "WebSocket.mqh"
#include "Session.mqh"
#include "Transport.mqh"

// MT5's SocketConnect blocks the EA thread for up to this long on a dead
// host; 3 s keeps a frozen chart short while allowing a slow WAN.
#define TB_TCP_CONNECT_TIMEOUT_MS 3000
// One Poll reads at most this much; bigger bursts wait for the next Poll.
#define TB_READ_BYTES_MAX 65536

// Splits a ws:// or wss:// URL. False, with `error`, for anything else.
bool TbParseUrl(const string &url, string &host, uint &port, string &path, bool &tls, string &error)
  {
   string rest;
   if(TbStartsWith(url, "wss://")) { tls = true; port = 443; rest = StringSubstr(url, 6); }
   else if(TbStartsWith(url, "ws://")) { tls = false; port = 80; rest = StringSubstr(url, 5); }
   else { error = "bridge URL '" + url + "' must start with ws:// or wss://"; return false; }
   int slash = StringFind(rest, "/");
   string authority = slash < 0 ? rest : StringSubstr(rest, 0, slash);
   path = slash < 0 ? "/ea" : StringSubstr(rest, slash);
   int colon = StringFind(authority, ":");
   host = colon < 0 ? authority : StringSubstr(authority, 0, colon);
   if(colon >= 0)
     {
      ulong parsed = 0;
      if(!TbStringToULong(StringSubstr(authority, colon + 1), parsed) || parsed == 0 || parsed > 65535)
        { error = "bridge URL '" + url + "' has port '" + StringSubstr(authority, colon + 1) + "', expected 1..65535"; return false; }
      port = (uint)parsed;
     }
   if(host == "") { error = "bridge URL '" + url + "' has no host"; return false; }
   return true;
  }

class TbBridgeClient
  {
private:
   TbTransport       m_transport;
   TbWebSocket       m_ws;
   TbSession         m_session;
   // Where the bridge is; set by Configure.
   string            m_host;
   uint              m_port;
   string            m_path;
   bool              m_tls;
   // The hello we send on every connection; last_seq updated by the EA.
   TbHello           m_hello;
   // Scratch buffers, kept to avoid reallocating on every Poll.
   TB_ARRAY(uchar, m_read_buffer);
   TB_ARRAY(uchar, m_write_buffer);
   TB_ARRAY(uchar, m_message);
   // True while the TCP connect is in flight (MT4) or the upgrade runs.
   bool              m_transport_up;
   // Last error text we logged, to avoid repeating it every attempt.
   string            m_last_logged;
   // Counters for the log and tests; only increase.
   int               m_connects;
   int               m_frames_sent;

public:
                     TbBridgeClient(void) : m_port(0), m_tls(false), m_transport_up(false), m_connects(0), m_frames_sent(0) {}

   bool              Configure(const string &url, const TbHello &hello, ulong backoff_base_ms, ulong backoff_max_ms, string &error)
     {
      if(!TbParseUrl(url, m_host, m_port, m_path, m_tls, error)) return false;
      m_transport.Close();
      m_ws.Abort("reconfigured");
      m_transport_up = false;
      m_last_logged = "";
#ifndef __MQL5__
      if(m_tls) { error = "MT4 cannot open wss:// (no TLS in MT4): use ws:// to a local stunnel/nginx or a LAN bridge"; return false; }
#endif
      m_hello.version = hello.version; m_hello.key = hello.key; m_hello.login = hello.login; m_hello.role = hello.role;
      m_hello.platform = hello.platform; m_hello.server = hello.server; m_hello.ea = hello.ea; m_hello.last_seq = hello.last_seq;
      ulong seed = GetMicrosecondCount() ^ ((ulong)MathRand() << 32) ^ hello.login;
      m_ws.Seed(seed);
      m_session.Configure(backoff_base_ms, backoff_max_ms, seed * 31 + 7);
      return true;
     }
   void              SetLastSeq(ulong last_seq) { m_hello.last_seq = last_seq; }
   bool              IsReady(void) const { return m_session.IsReady(); }
   int               SessionState(void) const { return m_session.State(); }
   int               Connects(void) const { return m_connects; }
   int               FramesSent(void) const { return m_frames_sent; }
   ulong             NextAttemptMs(void) const { return m_session.NextAttemptMs(); }

   // Services the connection; true with one message in `reader`/`type`.
   bool              Poll(ulong now_ms, TbJsonReader &reader, string &type)
     {
      if(m_session.ShouldConnect(now_ms)) StartConnect(now_ms);
      if(m_session.State() == TB_SESSION_DOWN) return false;
      if(!m_transport_up && !FinishConnect(now_ms)) return CheckTimers(now_ms);
      ReadInput(now_ms);
      if(m_ws.State() == TB_WS_OPEN && m_session.State() == TB_SESSION_CONNECTING)
        {
         m_session.OnOpen(now_ms);
         SendHello();
        }
      // Bounded: the input holds at most one read's worth of frames.
      while(m_ws.Poll(m_message))
        {
         if(!reader.Parse(m_message, ArraySize(m_message)))
           {
            Print("TradeBridge: unreadable message from the bridge: ", reader.Error());
            continue;
           }
         type = TbMessageType(reader, 0);
         if(type == "pong") continue;
         if(type == "error") { LogBridgeError(reader); continue; }
         if(type == "welcome" && !AcceptWelcome(now_ms, reader)) continue;
         if(!m_session.IsReady()) continue;
         Flush();
         return true;
        }
      if(m_ws.State() == TB_WS_CLOSED)
        {
         Disconnect(now_ms, m_ws.CloseCode(), m_ws.Failure());
         return false;
        }
      return CheckTimers(now_ms);
     }

   // Queues the message in `writer` as one text frame (see FlushOutput).
   // False when not ready or the output is full (the caller keeps it).
   bool              Send(const TbJsonWriter &writer)
     {
      if(!m_session.IsReady()) return false;
      int count = writer.CopyBytes(m_write_buffer);
      if(!m_ws.SendTextBytes(m_write_buffer, count)) return false;
      m_frames_sent++;
      return true;
     }

   // Writes what Send queued to the socket.
   void              FlushOutput(void) { Flush(); }

   // Drops the connection (close 1000) and connects again after the usual
   // backoff; `why` goes to the log.
   void              Reconnect(ulong now_ms, const string &why)
     {
      if(m_session.State() == TB_SESSION_DOWN) return;
      m_ws.Close(TB_WS_CLOSE_NORMAL, "reconnecting");
      Flush();
      Disconnect(now_ms, TB_WS_CLOSE_NORMAL, why);
     }

   // OnDeinit: says goodbye (1000) and lets the close frame go out.
   void              Shutdown(void)
     {
      m_ws.Close(TB_WS_CLOSE_NORMAL, "EA stopped");
      Flush();
      m_transport.Close();
     }

private:
   void              StartConnect(ulong now_ms)
     {
      m_connects++;
      m_session.OnConnecting(now_ms);
      string error = "";
      if(!m_transport.Connect(m_host, m_port, m_tls, TB_TCP_CONNECT_TIMEOUT_MS, error))
        {
         Disconnect(now_ms, 0, error);
         return;
        }
      m_transport_up = false;
     }

   // Finishes a pending TCP connect and starts the upgrade; false while
   // still connecting or after a failure.
   bool              FinishConnect(ulong now_ms)
     {
      string error = "";
      int status = m_transport.PollConnect(error);
      if(status < 0) { Disconnect(now_ms, 0, error); return false; }
      if(status == 0) return false;
      m_transport_up = true;
      m_ws.Start(m_host, m_port, m_path);
      Flush();
      return true;
     }

   void              ReadInput(ulong now_ms)
     {
      int space = m_ws.InputSpace();
      if(space > TB_READ_BYTES_MAX) space = TB_READ_BYTES_MAX;
      if(space <= 0) return;
      int got = m_transport.Read(m_read_buffer, space);
      if(got < 0) { m_ws.Abort("connection lost"); return; }
      if(got == 0) return;
      m_session.OnBytes(now_ms);
      m_ws.Feed(m_read_buffer, got);
     }

   void              Flush(void)
     {
      int pending = m_ws.CopyOutput(m_write_buffer);
      if(pending == 0 || !m_transport.IsOpen()) return;
      int sent = m_transport.Send(m_write_buffer, pending);
      if(sent < 0) { m_ws.Abort("send failed: connection lost"); return; }
      m_ws.ConsumeOutput(sent);
     }

   void              SendHello(void)
     {
      TbJsonWriter writer;
      TbWriteHello(writer, m_hello);
      int count = writer.CopyBytes(m_write_buffer);
      m_ws.SendTextBytes(m_write_buffer, count);
      Flush();
     }

   bool              AcceptWelcome(ulong now_ms, const TbJsonReader &reader)
     {
      TbWelcome welcome;
      string error = "";
      if(!TbReadWelcome(reader, 0, welcome, error)) { Print("TradeBridge: bad welcome: ", error); return false; }
      m_session.OnWelcome(now_ms, welcome);
      m_last_logged = "";
      Print("TradeBridge: connected to ", m_host, ":", IntegerToString(m_port), " session ", welcome.session,
            " heartbeat ", TbULongToString(welcome.hb_ms), " ms, ack_seq ", TbULongToString(welcome.ack_seq));
      // The bridge's notice (this account's key expires soon): in the
      // Experts log at every login, so the user sees it before copying stops.
      if(welcome.notice != "") Print("TradeBridge: NOTICE from the bridge: ", welcome.notice);
      return true;
     }

   void              LogBridgeError(const TbJsonReader &reader)
     {
      TbError message;
      string error = "";
      if(TbReadError(reader, 0, message, error)) Print("TradeBridge: bridge error ", message.code, ": ", message.msg);
      else Print("TradeBridge: bridge sent an unreadable error: ", error);
     }

   bool              CheckTimers(ulong now_ms)
     {
      int action = m_session.Tick(now_ms);
      if(action == TB_TICK_PING)
        {
         TbJsonWriter writer;
         TbWritePing(writer);
         Send(writer);
        }
      else if(action == TB_TICK_RECONNECT)
        {
         // 4008 is the protocol's heartbeat-timeout code; we apply it too.
         m_ws.Close(4008, "no frame from the bridge in time");
         Flush();
         Disconnect(now_ms, 4008, "the bridge went silent or did not answer in time");
        }
      Flush();
      return false;
     }

   void              Disconnect(ulong now_ms, int close_code, const string &why)
     {
      m_transport.Close();
      m_ws.Abort(why);
      m_transport_up = false;
      m_session.OnClosed(now_ms, close_code);
      string line = "disconnected (code " + IntegerToString(close_code) + "): " + why;
      if(line != m_last_logged)
         Print("TradeBridge: ", line, "; next attempt in ", TbULongToString(m_session.NextAttemptMs() - now_ms), " ms");
      m_last_logged = line;
     }
  };

#endif
