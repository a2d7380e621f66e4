//+------------------------------------------------------------------+
//| Session.mqh: when to connect, hello/welcome, heartbeat, backoff. |
//+------------------------------------------------------------------+
// # Layout
// - TbSession: a state machine with time passed in (`now_ms`), no socket:
//
//     DOWN --ShouldConnect--> CONNECTING --OnOpen--> HELLO --welcome--> READY
//       ^                         |                    |                  |
//       +------ OnClosed (backoff with jitter) -------+------------------+
//
//   Tick(now_ms) says when to send a heartbeat ping and when the link is
//   dead (3 x hb_ms without a byte from the bridge, or a connect or
//   welcome that takes too long).
// # Invariants
// - The wait before reconnect attempt n (n failures in a row) is drawn in
//   [d/2, d] with d = min(backoff_max, backoff_base * 2^n): bounded, and
//   jittered so a bridge restart is not hit by every terminal at once.
// - The failure count resets only on welcome, so a bridge that accepts
//   TCP but refuses the hello still gets backed off.
// - Close codes 4001 (bad key/login/server/role) and 4004 (the same login
//   connected elsewhere) wait the full backoff_max: retrying sooner would
//   fail again, or kick the other terminal off in a loop.
#ifndef TRADEBRIDGE_SESSION_MQH
#define TRADEBRIDGE_SESSION_MQH

#include "Compat.mqh"
#include "Crypto.mqh"
#include "Messages.mqh"

#define TB_SESSION_DOWN        0
#define TB_SESSION_CONNECTING  1
#define TB_SESSION_HELLO       2
#define TB_SESSION_READY       3

#define TB_TICK_NONE      0
#define TB_TICK_PING      1
#define TB_TICK_RECONNECT 2

// PROTOCOL.md's example heartbeat; used until a welcome gives the real one.
#define TB_HEARTBEAT_MS_DEFAULT 5000
// The bridge drops a peer silent for 3 heartbeats; we do the same.
#define TB_SILENT_HEARTBEATS_MAX 3
// TCP + TLS + WebSocket upgrade on a sane network take well under this.
#define TB_CONNECT_TIMEOUT_MS 10000
// The bridge answers hello at once; a missing welcome means a stuck peer.
#define TB_WELCOME_TIMEOUT_MS 10000
#define TB_BACKOFF_BASE_MS_DEFAULT 500
#define TB_BACKOFF_MAX_MS_DEFAULT 30000
// 2^16 x 500 ms is far above any sane maximum; capping the exponent keeps
// the shift from overflowing.
#define TB_BACKOFF_EXPONENT_MAX 16

class TbSession
  {
private:
   // TB_SESSION_*; see the diagram above.
   int               m_state;
   // Earliest time of the next connect attempt (state DOWN).
   ulong             m_next_attempt_ms;
   // Failed attempts since the last welcome; drives the backoff.
   int               m_failures;
   ulong             m_backoff_base_ms;
   ulong             m_backoff_max_ms;
   // Heartbeat period: TB_HEARTBEAT_MS_DEFAULT until a welcome sets it.
   ulong             m_heartbeat_ms;
   // When the current state began (connect and welcome deadlines).
   ulong             m_state_since_ms;
   // Last byte received from the bridge; any frame proves it alive.
   ulong             m_last_received_ms;
   // Last heartbeat ping we sent.
   ulong             m_last_ping_ms;
   // Close code of the last connection, for the next backoff.
   int               m_last_close_code;
   // The welcome of the current connection.
   TbWelcome         m_welcome;
   // Jitter source.
   TbRandom          m_random;

public:
                     TbSession(void) : m_state(TB_SESSION_DOWN), m_next_attempt_ms(0), m_failures(0),
                     m_backoff_base_ms(TB_BACKOFF_BASE_MS_DEFAULT), m_backoff_max_ms(TB_BACKOFF_MAX_MS_DEFAULT),
                     m_heartbeat_ms(TB_HEARTBEAT_MS_DEFAULT), m_state_since_ms(0), m_last_received_ms(0),
                     m_last_ping_ms(0), m_last_close_code(0) { m_welcome.hb_ms = 0; m_welcome.ack_seq = 0; m_welcome.version = 0; }

   void              Configure(ulong backoff_base_ms, ulong backoff_max_ms, ulong seed)
     {
      // A re-initialised EA (OnDeinit + OnInit) starts from scratch.
      m_state = TB_SESSION_DOWN;
      m_next_attempt_ms = 0;
      m_failures = 0;
      m_heartbeat_ms = TB_HEARTBEAT_MS_DEFAULT;
      m_backoff_base_ms = backoff_base_ms > 0 ? backoff_base_ms : TB_BACKOFF_BASE_MS_DEFAULT;
      m_backoff_max_ms = backoff_max_ms >= m_backoff_base_ms ? backoff_max_ms : m_backoff_base_ms;
      m_random.Seed(seed);
     }
   int               State(void) const { return m_state; }
   bool              IsReady(void) const { return m_state == TB_SESSION_READY; }
   ulong             HeartbeatMs(void) const { return m_heartbeat_ms; }
   ulong             NextAttemptMs(void) const { return m_next_attempt_ms; }
   int               Failures(void) const { return m_failures; }
   ulong             AckSeq(void) const { return m_welcome.ack_seq; }
   string            SessionId(void) const { return m_welcome.session; }

   bool              ShouldConnect(ulong now_ms) const { return m_state == TB_SESSION_DOWN && now_ms >= m_next_attempt_ms; }
   void              OnConnecting(ulong now_ms) { Enter(TB_SESSION_CONNECTING, now_ms); m_last_received_ms = now_ms; }
   // The WebSocket handshake is done: the caller sends hello now.
   void              OnOpen(ulong now_ms) { Enter(TB_SESSION_HELLO, now_ms); m_last_received_ms = now_ms; }
   void              OnBytes(ulong now_ms) { m_last_received_ms = now_ms; }

   void              OnWelcome(ulong now_ms, const TbWelcome &welcome)
     {
      m_welcome.version = welcome.version;
      m_welcome.session = welcome.session;
      m_welcome.hb_ms = welcome.hb_ms;
      m_welcome.ack_seq = welcome.ack_seq;
      // A zero or absurd heartbeat would make us ping in a busy loop.
      m_heartbeat_ms = welcome.hb_ms >= 100 ? welcome.hb_ms : TB_HEARTBEAT_MS_DEFAULT;
      m_failures = 0;
      m_last_ping_ms = now_ms;
      Enter(TB_SESSION_READY, now_ms);
     }

   // The connection ended (or never came up); schedules the next attempt.
   void              OnClosed(ulong now_ms, int close_code)
     {
      if(m_state == TB_SESSION_DOWN) return;
      m_last_close_code = close_code;
      ulong delay = BackoffMs(close_code);
      if(m_failures < TB_BACKOFF_EXPONENT_MAX) m_failures++;
      m_next_attempt_ms = now_ms + delay;
      m_heartbeat_ms = TB_HEARTBEAT_MS_DEFAULT;
      Enter(TB_SESSION_DOWN, now_ms);
     }

   // What the caller should do now: TB_TICK_PING, TB_TICK_RECONNECT or nothing.
   int               Tick(ulong now_ms)
     {
      if(m_state == TB_SESSION_DOWN) return TB_TICK_NONE;
      if(m_state == TB_SESSION_CONNECTING && now_ms - m_state_since_ms > TB_CONNECT_TIMEOUT_MS) return TB_TICK_RECONNECT;
      if(m_state == TB_SESSION_HELLO && now_ms - m_state_since_ms > TB_WELCOME_TIMEOUT_MS) return TB_TICK_RECONNECT;
      if(m_state != TB_SESSION_READY) return TB_TICK_NONE;
      if(now_ms - m_last_received_ms > TB_SILENT_HEARTBEATS_MAX * m_heartbeat_ms) return TB_TICK_RECONNECT;
      if(now_ms - m_last_ping_ms >= m_heartbeat_ms)
        {
         m_last_ping_ms = now_ms;
         return TB_TICK_PING;
        }
      return TB_TICK_NONE;
     }

   // The wait before the next attempt after a close with `close_code`.
   ulong             BackoffMs(int close_code)
     {
      ulong ceiling = m_backoff_max_ms;
      if(close_code != 4001 && close_code != 4004)
        {
         ulong grown = m_backoff_base_ms << m_failures;
         if(grown < ceiling) ceiling = grown;
        }
      return ceiling / 2 + m_random.Below(ceiling / 2 + 1);
     }

private:
   void              Enter(int state, ulong now_ms)
     {
      m_state = state;
      m_state_since_ms = now_ms;
     }
  };

#endif
