//+------------------------------------------------------------------+
//| Executor.mqh: the slave EA's logic, for MT4 and MT5.             |
//+------------------------------------------------------------------+
// # Layout
// - TbExecutor.Configure(inputs): OnInit; reads nothing of the account.
// - TbExecutor.Service(now_ms, gmt_ms): waits at the start-up gate until
//   the terminal has logged in and loaded the account (Terminal.mqh),
//   then Start()s: hello, files and the tag map are named after the login.
//   After that it polls the bridge, queues each `copy`, works the queue in
//   seq order, answers each finished copy with a `result`, and sends
//   `state` (after each welcome, and when positions or money change
//   materially) and the Market Watch in `symbols` frames.
// - Execute(copy, gmt_ms, result): one attempt at a copy; true when the
//   copy is finished (result filled in), false when it must wait: the
//   terminal cannot trade now (not connected, AutoTrading off, market
//   closed, no quote yet, order frozen) or an order the server took has
//   not reported its deal yet. A waiting copy keeps last_seq where it is
//   and is attempted again; what it waits for is logged once.
//     open    already there (tag) -> skipped; expired -> skipped; price
//             past max_dev -> skipped; volume normalised; stops on the
//             symbol's grid and outside its stops level; retried on
//             requotes; on market execution opened bare, stops set after;
//             a partial fill is reported as such, never topped up.
//     close   by position (hedging) or opposite deal (netting).
//     modify  SL/TP of the position, or price/SL/TP of the pending order;
//             within the freeze level: skipped with the reason.
//     pending expired -> skipped; already there (order, or the position
//             it filled into) -> filled with its ticket and volume, the
//             same answer as the first time; a trigger inside the stops
//             level -> skipped; placed.
//     cancel  the pending order, if still there.
// # Invariants
// - Idempotent: an open or pending finds an existing copy by its tag
//   before trading, so a re-sent copy (after a restart or reconnect) never
//   opens a second position.
// - Never twice: before its first trade request a copy's id (with what it
//   asks for) goes into the ledger (TbCopyLedger); a copy that finished is
//   answered with the result it had, a close that started before a restart is judged by the
//   volume it started from, and once the server took an order for a copy
//   no other order is sent for it: its deals are awaited (at most
//   m_fill_wait_ms) and reported.
// - `expires_ms` is the bridge's clock; it is compared with the terminal
//   PC's GMT (TimeGMT, not the broker's server time), with a tolerance for
//   clock skew, each time an open or pending copy is attempted. Close,
//   modify and cancel never expire.
// - last_seq (the highest copy seq finished) is written to a file before
//   the result is sent, so hello carries it after any restart.
// - Bounds: retries per attempt by m_retries_max; queued copies by
//   TB_COPIES_QUEUED_MAX (past it copies are not taken, and the link is
//   re-opened once the queue drains so the bridge sends them again);
//   results waiting for a connection by TB_RESULTS_QUEUED_MAX (the oldest
//   is dropped, counted and logged; the bridge still learns the outcome
//   from `state`); copies finished per Service by TB_COPIES_PER_SERVICE.
#ifndef TRADEBRIDGE_EXECUTOR_MQH
#define TRADEBRIDGE_EXECUTOR_MQH

#include "Compat.mqh"
#include "BridgeClient.mqh"
#include "ExecutorCore.mqh"
#include "Terminal.mqh"
#ifdef __MQL5__
#include "Executor5.mqh"
#else
#include "Executor4.mqh"
#endif

// Results produced while the link is down wait here, up to this many.
#define TB_RESULTS_QUEUED_MAX 1000
// Copies received and not finished; far above a burst from one master.
#define TB_COPIES_QUEUED_MAX 1000
// Copies finished per Service call, so one timer call stays short.
#define TB_COPIES_PER_SERVICE 16
// About 90 bytes per symbol: 100 symbols is ~9 KB, under the 16 KiB frame.
#define TB_SYMBOLS_PER_FRAME_DEFAULT 100
// How often the state is checked for a material change.
#define TB_STATE_CHECK_MS 1000
// Equity or balance moving by more than this fraction is material.
#define TB_STATE_MONEY_CHANGE_FRACTION 0.01
// Messages handled per Service call, so one call is bounded.
#define TB_EXECUTOR_MESSAGES_PER_SERVICE 64
// A copy the terminal cannot trade now is tried again this often.
#define TB_TRANSIENT_RETRY_MS 1000
// How long an order the server took may take to report its deal.
#define TB_FILL_WAIT_MS_DEFAULT 30000

// Outcomes of one attempt at a copy.
#define TB_STEP_DONE 0
#define TB_STEP_WAIT 1
// AwaitOrder only: a request that timed out did nothing; send it again.
#define TB_STEP_RESEND 2

class TbExecutor
  {
private:
   TbBridgeClient    m_client;
   TbJsonReader      m_reader;
   TbTradeOps        m_ops;
   TbTagMap          m_tags;
   TbCopyLedger      m_ledger;
   TbStartGate       m_gate;
   // Settings from the EA's inputs (Configure).
   string            m_url;
   string            m_key;
   string            m_ea_name;
   int               m_retries_max;
   int               m_retry_delay_ms;
   ulong             m_clock_skew_ms;
   double            m_deviation_points_default;
   int               m_symbols_per_frame;
   ulong             m_backoff_base_ms;
   ulong             m_backoff_max_ms;
   ulong             m_fill_wait_ms;
   // True once Start ran: the account is known and its files are open.
   bool              m_started;
   // File holding last_seq; the value only grows.
   string            m_seq_file;
   ulong             m_last_seq;
   // Copies received and not finished, in seq order; [0, m_queue_count).
   TB_ARRAY(TbCopy, m_queue);
   int               m_queue_count;
   // Copies not taken because the queue was full (the bridge re-sends them
   // after a reconnect, which happens once the queue drains).
   int               m_copies_refused;
   bool              m_reconnect_when_drained;
   // The head copy is attempted again no sooner than this.
   ulong             m_retry_at_ms;
   // The copy the current attempts are for, when they began (for exec_ms
   // and the fill wait), and what it waits for (logged once).
   string            m_current_key;
   ulong             m_current_started_us;
   // The copy whose order (or timed-out request) is watched, and since when
   // (the order's acceptance, or the first look after a restart).
   string            m_order_key;
   ulong             m_order_since_us;
   string            m_wait_logged;
   // Results not yet sent, oldest first.
   TB_ARRAY(TbResult, m_results);
   int               m_result_count;
   int               m_results_dropped;
   // What the last `state` said, to detect a material change.
   string            m_state_signature;
   double            m_state_balance;
   double            m_state_equity;
   ulong             m_last_state_check_ms;
   // Set by welcome: send state / symbols on the next ready Service.
   bool              m_state_due;
   bool              m_symbols_due;
   // Counters for logs and tests; only increase.
   int               m_copies_handled;
   int               m_states_sent;
   int               m_symbol_frames_sent;

public:
                     TbExecutor(void) : m_retries_max(3), m_retry_delay_ms(200), m_clock_skew_ms(2000), m_deviation_points_default(30),
                     m_symbols_per_frame(TB_SYMBOLS_PER_FRAME_DEFAULT), m_backoff_base_ms(500), m_backoff_max_ms(30000),
                     m_fill_wait_ms(TB_FILL_WAIT_MS_DEFAULT), m_started(false), m_last_seq(0), m_queue_count(0), m_copies_refused(0),
                     m_reconnect_when_drained(false), m_retry_at_ms(0), m_current_started_us(0), m_order_since_us(0), m_result_count(0), m_results_dropped(0),
                     m_state_balance(0), m_state_equity(0), m_last_state_check_ms(0), m_state_due(false), m_symbols_due(false),
                     m_copies_handled(0), m_states_sent(0), m_symbol_frames_sent(0) {}

   // OnInit: the inputs, checked; the account is read later (Service).
   bool              Configure(const string &url, const string &key, const string &ea_name, int retries_max, int retry_delay_ms,
                               ulong clock_skew_ms, double deviation_points_default, int symbols_per_frame, ulong backoff_base_ms,
                               ulong backoff_max_ms, ulong settle_ms, ulong fill_wait_ms, string &error)
     {
      string host = "", path = "";
      uint port = 0;
      bool tls = false;
      if(!TbParseUrl(url, host, port, path, tls, error)) return false;
      m_url = url;
      m_key = key;
      m_ea_name = ea_name;
      m_retries_max = retries_max >= 0 ? retries_max : 0;
      m_retry_delay_ms = retry_delay_ms >= 0 ? retry_delay_ms : 0;
      m_clock_skew_ms = clock_skew_ms;
      m_deviation_points_default = deviation_points_default;
      m_symbols_per_frame = symbols_per_frame > 0 ? symbols_per_frame : TB_SYMBOLS_PER_FRAME_DEFAULT;
      m_backoff_base_ms = backoff_base_ms;
      m_backoff_max_ms = backoff_max_ms;
      m_fill_wait_ms = fill_wait_ms > 0 ? fill_wait_ms : TB_FILL_WAIT_MS_DEFAULT;
      // MQL keeps an EA's globals across OnDeinit/OnInit: start clean.
      m_gate.Reset(settle_ms);
      m_started = false;
      m_last_seq = 0;
      m_queue_count = 0;
      ArrayResize(m_queue, 0, 64);
      m_reconnect_when_drained = false;
      m_retry_at_ms = 0;
      m_current_key = "";
      m_order_key = "";
      m_wait_logged = "";
      m_result_count = 0;
      ArrayResize(m_results, 0, 64);
      m_state_signature = "";
      m_state_balance = 0;
      m_state_equity = 0;
      m_last_state_check_ms = 0;
      m_state_due = false;
      m_symbols_due = false;
      return true;
     }

   // Opens the account's files and the link; `hello` gets last_seq. The
   // EA calls it through Service once the gate is open; tests directly.
   bool              Start(TbHello &hello, const string &seq_file, const string &tags_file, const string &ledger_file, string &error)
     {
      m_seq_file = seq_file;
      m_last_seq = TbReadCounterFile(seq_file);
      m_tags.Load(tags_file);
      if(!m_ledger.Open(ledger_file)) { error = "cannot open " + ledger_file + ", error " + IntegerToString(GetLastError()); return false; }
      hello.last_seq = m_last_seq;
      if(!m_client.Configure(m_url, hello, m_backoff_base_ms, m_backoff_max_ms, error)) return false;
      m_started = true;
      return true;
     }

   ulong             LastSeq(void) const { return m_last_seq; }
   bool              IsReady(void) const { return m_client.IsReady(); }
   bool              IsStarted(void) const { return m_started; }
   int               QueuedCopies(void) const { return m_queue_count; }
   int               QueuedResults(void) const { return m_result_count; }
   void              QueuedResultAt(int index, TbResult &result) const { result.CopyFrom(m_results[index]); }
   int               StatesSent(void) const { return m_states_sent; }
   int               SymbolFramesSent(void) const { return m_symbol_frames_sent; }
   void              Shutdown(void) { m_client.Shutdown(); m_ledger.Close(); }

   void              Service(ulong now_ms, ulong gmt_ms)
     {
      if(!m_started && !StartWhenReady(now_ms)) return;
      string type = "";
      for(int handled = 0; handled < TB_EXECUTOR_MESSAGES_PER_SERVICE && m_client.Poll(now_ms, m_reader, type); handled++)
        {
         if(type == "welcome") { m_state_due = true; m_symbols_due = true; continue; }
         if(type != "copy") continue;
         TbCopy copy;
         string error = "";
         if(!TbReadCopy(m_reader, 0, copy, error)) { Print("TradeBridge: unreadable copy: ", error); continue; }
         Receive(copy);
        }
      WorkQueue(now_ms, gmt_ms);
      if(!m_client.IsReady()) return;
      FlushResults();
      if(m_symbols_due) SendSymbols();
      if(m_state_due || (now_ms - m_last_state_check_ms >= TB_STATE_CHECK_MS && StateChanged()))
        {
         m_last_state_check_ms = now_ms;
         SendState();
        }
      m_client.FlushOutput();
     }

   // One attempt at a copy; true with `result` when the copy is finished
   // (last_seq persisted), false when it has to wait (see Layout).
   bool              Execute(const TbCopy &copy, ulong gmt_ms, TbResult &result)
     {
      string key = LedgerKey(copy);
      result.Clear();
      result.seq = copy.seq;
      if(copy.seq != 0 && copy.seq <= m_last_seq)
        {
         Finish(result, "skipped", 0, "copy " + TbULongToString(copy.seq) + " already finished (last_seq " + TbULongToString(m_last_seq) + ")");
         return true;
        }
      if(key != m_current_key) { m_current_key = key; m_current_started_us = GetMicrosecondCount(); m_wait_logged = ""; }
      if(m_ledger.Result(key, result))
        {
         result.seq = copy.seq;
         Complete(copy, result, "answered again: copy " + copy.id + " was carried out before");
         return true;
        }
      // Watching an order the server took needs no trading, only reading.
      string blocked = m_ledger.State(key) == TB_COPY_ORDERED ? "" : TbTradingBlocked();
      int step = TB_STEP_WAIT;
      if(blocked != "") result.msg = blocked;
      else step = Dispatch(copy, gmt_ms, result);
      if(step == TB_STEP_WAIT)
        {
         LogWait(copy, result.msg);
         result.Clear();
         result.seq = copy.seq;
         return false;
        }
      Complete(copy, result, "");
      return true;
     }

   void              BuildState(TbState &state)
     {
      state.balance = m_ops.Balance();
      state.equity = m_ops.Equity();
      state.currency = m_ops.Currency();
      state.has_symbols = false;
      ArrayResize(state.symbols, 0);
      m_ops.ListPositions(state);
      // A copy whose comment the broker cut or replaced, or an MT4
      // remainder renamed "from #N", is still reported under its tag (the
      // bridge closes a copy the state shows under a tag it does not hold,
      // and takes one it no longer sees for closed); a compact comment is
      // reported as the tag it stands for.
      for(int i = 0; i < ArraySize(state.positions); i++)
        {
         string tag = m_tags.TagOf(state.positions[i].pos);
         state.positions[i].comment = tag != "" ? tag : TbTagOfComment(state.positions[i].comment);
        }
     }

private:
   bool              StartWhenReady(ulong now_ms)
     {
      if(!m_gate.Ready(now_ms)) return false;
      TbHello hello;
      hello.version = TB_PROTOCOL_VERSION;
      hello.key = m_key;
      hello.login = TbAccountLogin();
      hello.role = "slave";
      hello.platform = TB_PLATFORM;
      hello.server = TbAccountServer();
      hello.ea = m_ea_name;
      hello.last_seq = 0;
      string login = TbULongToString(hello.login);
      string error = "";
      if(Start(hello, "TradeBridge_exec_" + login + ".txt", "TradeBridge_tags_" + login + ".txt", "TradeBridge_copies_" + login + ".log", error))
         return true;
      Print("TradeBridge: ", error);
      return false;
     }

   // Takes a copy from the bridge into the queue (once per seq and id).
   void              Receive(const TbCopy &copy)
     {
      if(copy.seq != 0 && copy.seq <= m_last_seq)
        {
         TbResult result;
         Execute(copy, 0, result);
         QueueResult(result);
         return;
        }
      for(int i = 0; i < m_queue_count; i++)
         if(m_queue[i].seq == copy.seq || (copy.id != "" && m_queue[i].id == copy.id)) return;
      if(m_queue_count >= TB_COPIES_QUEUED_MAX)
        {
         m_copies_refused++;
         m_reconnect_when_drained = true;
         Print("TradeBridge: ", IntegerToString(m_queue_count), " copies wait already; copy ", TbULongToString(copy.seq),
               " not taken (the bridge sends it again after a reconnect; ", IntegerToString(m_copies_refused), " so far)");
         return;
        }
      ArrayResize(m_queue, m_queue_count + 1, 64);
      m_queue[m_queue_count].CopyFrom(copy);
      m_queue_count++;
     }

   void              WorkQueue(ulong now_ms, ulong gmt_ms)
     {
      for(int finished = 0; finished < TB_COPIES_PER_SERVICE && m_queue_count > 0; finished++)
        {
         if(now_ms < m_retry_at_ms) return;
         TbResult result;
         if(!Execute(m_queue[0], gmt_ms, result))
           {
            bool in_flight = m_ledger.State(LedgerKey(m_queue[0])) == TB_COPY_ORDERED;
            m_retry_at_ms = now_ms + (in_flight ? (ulong)MathMax(m_retry_delay_ms, 10) : TB_TRANSIENT_RETRY_MS);
            return;
           }
         QueueResult(result);
         for(int i = 1; i < m_queue_count; i++) m_queue[i - 1].CopyFrom(m_queue[i]);
         m_queue_count--;
         ArrayResize(m_queue, m_queue_count, 64);
        }
      if(m_queue_count == 0 && m_reconnect_when_drained)
        {
         m_reconnect_when_drained = false;
         m_client.Reconnect(now_ms, "copies were refused while the queue was full; reconnecting so the bridge sends them again");
        }
     }

   void              LogWait(const TbCopy &copy, const string &why)
     {
      string line = "copy " + TbULongToString(copy.seq) + " " + copy.action + " " + copy.symbol + " waits: " + why;
      if(line == m_wait_logged) return;
      m_wait_logged = line;
      Print("TradeBridge: ", line);
     }

   int               Dispatch(const TbCopy &copy, ulong gmt_ms, TbResult &result)
     {
      if(copy.action == "open") return ExecuteOpen(copy, gmt_ms, result);
      if(copy.action == "close") return ExecuteClose(copy, result);
      if(copy.action == "modify") return ExecuteModify(copy, result);
      if(copy.action == "pending") return ExecutePending(copy, gmt_ms, result);
      if(copy.action == "cancel") return ExecuteCancel(copy, result);
      Finish(result, "rejected", 0, "unknown action '" + copy.action + "'");
      return TB_STEP_DONE;
     }

   // A finished copy: its result recorded, last_seq persisted, logged.
   void              Complete(const TbCopy &copy, TbResult &result, const string &note)
     {
      result.exec_ms = (GetMicrosecondCount() - m_current_started_us) / 1000;
      if(note == "") m_ledger.RecordFinish(LedgerKey(copy), result);
      m_copies_handled++;
      m_current_key = "";
      if(copy.seq > m_last_seq)
        {
         m_last_seq = copy.seq;
         if(!TbWriteFileAtomically(m_seq_file, TbULongToString(m_last_seq) + "\n"))
            Print("TradeBridge: cannot write ", m_seq_file, "; a restart may see copy ", TbULongToString(copy.seq), " again (its id in the ledger keeps it from running twice)");
         m_client.SetLastSeq(m_last_seq);
        }
      Print("TradeBridge: copy ", TbULongToString(copy.seq), " ", copy.action, " ", copy.symbol, " -> ", result.status,
            result.msg == "" ? "" : ": " + result.msg, note == "" ? "" : " (" + note + ")");
     }

   void              Finish(TbResult &result, const string &status, uint error, const string &msg)
     {
      result.status = status;
      result.error = error;
      result.msg = msg;
     }

   // Waits: `why` is logged and the copy attempted again later.
   int               Wait(TbResult &result, const string &why)
     {
      result.msg = why;
      return TB_STEP_WAIT;
     }

   // A copy's key in the ledger: its id and what it asks for, so a copy that
   // reuses an old id (a new journal on the bridge, with the seq file lost
   // here) is never taken for the copy that had it.
   string            LedgerKey(const TbCopy &copy)
     {
      string id = copy.id != "" ? copy.id : "seq-" + TbULongToString(copy.seq);
      return id + " " + copy.action + " " + TbCopyTag(copy) + " " + TbFormatDouble(copy.volume) + " " + TbFormatDouble(copy.price);
     }

   // The ledger line written before the first trade request of a copy.
   void              BeginTrade(const TbCopy &copy, double volume_before)
     {
      if(m_ledger.State(LedgerKey(copy)) == 0) m_ledger.RecordStart(LedgerKey(copy), volume_before);
     }

   bool              Expired(const TbCopy &copy, ulong gmt_ms, TbResult &result)
     {
      if(copy.expires_ms == 0 || gmt_ms <= copy.expires_ms + m_clock_skew_ms) return false;
      Finish(result, "skipped", 0, "expired: arrived " + TbULongToString(gmt_ms - copy.expires_ms) + " ms after expires_ms");
      return true;
     }

   // False (with the wait set) while the symbol has no quote yet.
   bool              Quoted(const string &symbol, TbResult &result)
     {
      if(m_ops.MarketPrice(symbol, 0) > 0 && m_ops.MarketPrice(symbol, 1) > 0) return true;
      result.msg = "no quote for " + symbol + " yet (just added to Market Watch?)";
      return false;
     }

   // The ledger and the watch clock: the server took `order` for `copy`
   // (0: the request timed out and may or may not have been carried out).
   void              Ordered(const TbCopy &copy, ulong order)
     {
      m_ledger.RecordOrder(LedgerKey(copy), order);
      m_order_key = LedgerKey(copy);
      m_order_since_us = GetMicrosecondCount();
     }

   // What the copy's position shows of a request for it: an open's
   // position, or a close's volume below the one it started from; true
   // with `attempt` filled in when it shows something.
   bool              SeenOnPosition(const TbCopy &copy, const string &tag, TbAttempt &attempt)
     {
      TbFound found;
      bool open = m_ops.FindPosition(tag, 0, copy.symbol, found);
      if(copy.action == "open")
        {
         if(!open) return false;
         attempt.ticket = found.ticket;
         attempt.volume = found.volume;
         attempt.price = found.price;
         return true;
        }
      double before = m_ledger.VolumeBefore(LedgerKey(copy));
      double now = open ? found.volume : 0;
      if(now >= before - 1e-9) return false;
      attempt.ticket = open ? found.ticket : 0;
      attempt.volume = NormalizeDouble(before - now, 8);
      return true;
     }

   // Waits for what the order the server took for `copy` did (its deals,
   // else the copy's position); DONE with `attempt.volume` > 0, DONE with
   // the result set when it did nothing, WAIT, or RESEND when a request
   // that timed out shows no effect after m_fill_wait_ms (it failed).
   int               AwaitOrder(const TbCopy &copy, const string &tag, TbAttempt &attempt, TbResult &result)
     {
      string key = LedgerKey(copy);
      if(m_order_key != key) { m_order_key = key; m_order_since_us = GetMicrosecondCount(); }
      ulong order = m_ledger.Order(key);
      int outcome = order != 0 ? m_ops.OrderOutcome(order, attempt) : TB_ORDER_WORKING;
      if(outcome == TB_ORDER_DONE && attempt.volume > 0) return TB_STEP_DONE;
      // The position tells only once no deal of a known order can follow.
      bool settled = order == 0 || outcome == TB_ORDER_DONE;
      if(settled && SeenOnPosition(copy, tag, attempt)) return TB_STEP_DONE;
      if(outcome == TB_ORDER_DONE)
        {
         Finish(result, "rejected", 0, "order " + TbULongToString(order) + " was taken by the server and ended without a deal; not sent again");
         return TB_STEP_DONE;
        }
      ulong waited_ms = (GetMicrosecondCount() - m_order_since_us) / 1000;
      if(waited_ms < m_fill_wait_ms)
         return Wait(result, order != 0 ? "waiting for the deal of order " + TbULongToString(order) : "the server timed out; waiting to see whether the request was carried out");
      if(order == 0)
        {
         // Nothing came of it in m_fill_wait_ms: it failed, and may go again.
         m_ledger.RecordStart(key, m_ledger.VolumeBefore(key));
         return TB_STEP_RESEND;
        }
      // A RETURN order may still be working on the rest: report what filled
      // (or, when the history never showed its deals, what the position shows).
      if(attempt.volume > 0 || SeenOnPosition(copy, tag, attempt)) return TB_STEP_DONE;
      Finish(result, "rejected", 0, "order " + TbULongToString(order) + " reported no deal within " + TbULongToString(m_fill_wait_ms) +
             " ms; not sent again");
      return TB_STEP_DONE;
     }

   int               ExecuteOpen(const TbCopy &copy, ulong gmt_ms, TbResult &result)
     {
      string tag = TbCopyTag(copy);
      TbSymbolSpec spec;
      int type = TbTypeOfSide(copy.side);
      TbAttempt attempt;
      TbFound found;
      if(m_ledger.State(LedgerKey(copy)) == TB_COPY_ORDERED)
        {
         int step = AwaitOrder(copy, tag, attempt, result);
         if(step == TB_STEP_WAIT) return TB_STEP_WAIT;
         if(step == TB_STEP_DONE)
           {
            if(attempt.volume <= 0) return TB_STEP_DONE;
            m_ops.SymbolSpec(copy.symbol, spec);
            return FinishOpen(copy, type, TbNormalizeVolume(copy.volume, spec.min, spec.max, spec.step), spec.step, tag, attempt, result);
           }
         // A timed-out open that did nothing: it goes again, checked anew.
        }
      if(m_ops.FindPosition(tag, m_tags.Get(tag), copy.symbol, found))
        {
         result.ticket = found.ticket;
         result.volume = found.volume;
         result.price = found.price;
         Finish(result, "skipped", 0, "already open as " + TbULongToString(found.ticket));
         return TB_STEP_DONE;
        }
      if(Expired(copy, gmt_ms, result)) return TB_STEP_DONE;
      if(type < 0 || type > 1) { Finish(result, "rejected", 0, "side '" + copy.side + "' cannot open a position"); return TB_STEP_DONE; }
      if(!m_ops.SymbolSpec(copy.symbol, spec)) { Finish(result, "rejected", 0, "symbol '" + copy.symbol + "' is not available on this account"); return TB_STEP_DONE; }
      double volume = TbNormalizeVolume(copy.volume, spec.min, spec.max, spec.step);
      if(volume <= 0)
        {
         Finish(result, "skipped", 0, "volume " + TbFormatDouble(copy.volume) + " is below the minimum " + TbFormatDouble(spec.min));
         return TB_STEP_DONE;
        }
      if(!Quoted(copy.symbol, result)) return TB_STEP_WAIT;
      // The master's pending order filled: ours gives way to a market copy,
      // and must be gone first, or it could fill into a second position.
      if(m_ops.FindPending(tag, m_tags.Get(tag), found))
        {
         uint code = m_ops.DeletePending(found, attempt);
         if(m_ops.IsTransient(code)) return Wait(result, "the pending copy " + TbULongToString(found.ticket) + " cannot be deleted now (code " + IntegerToString((int)code) + ")");
         if(!m_ops.IsSuccess(code))
           {
            Finish(result, "rejected", code, "the pending copy " + TbULongToString(found.ticket) + " could not be deleted (code " + IntegerToString((int)code) + "); not opened at market beside it");
            return TB_STEP_DONE;
           }
         m_tags.Remove(tag);
        }
      return OpenWithRetries(copy, type, volume, spec, tag, result);
     }

   int               OpenWithRetries(const TbCopy &copy, int type, double volume, const TbSymbolSpec &spec, const string &tag, TbResult &result)
     {
      TbPriceRules rules;
      m_ops.PriceRules(copy.symbol, rules);
      double deviation_points = copy.max_dev > 0 ? MathRound(copy.max_dev / rules.point) : m_deviation_points_default;
      // A market-execution server takes no stops with the open: they follow.
      bool stops_after = rules.market_execution;
      uint code = 0;
      for(int attempt_index = 0; attempt_index <= m_retries_max; attempt_index++)
        {
         double market = m_ops.MarketPrice(copy.symbol, type);
         if(copy.max_dev > 0 && copy.price > 0 && MathAbs(market - copy.price) > copy.max_dev + rules.point / 2)
           {
            Finish(result, "skipped", code, "price moved: market " + TbFormatDouble(market) + " vs master " + TbFormatDouble(copy.price) +
                   " exceeds max_dev " + TbFormatDouble(copy.max_dev));
            return TB_STEP_DONE;
           }
         double sl = copy.sl, tp = copy.tp;
         string note = "";
         TbFitStops(rules, type, m_ops.MarketPrice(copy.symbol, 1 - type), sl, tp, note);
         TbAttempt attempt;
         BeginTrade(copy, 0);
         code = stops_after ? m_ops.Open(copy, type, volume, deviation_points, tag, 0, 0, attempt)
                            : m_ops.Open(copy, type, volume, deviation_points, tag, sl, tp, attempt);
         if(m_ops.IsSuccess(code))
           {
            if(attempt.volume <= 0)
              {
               // Taken, fill not known yet: wait for its deal, never resend.
               Ordered(copy, attempt.order);
               if(AwaitOrder(copy, tag, attempt, result) != TB_STEP_DONE) return TB_STEP_WAIT;
               if(attempt.volume <= 0) return TB_STEP_DONE;
              }
            return FinishOpen(copy, type, volume, spec.step, tag, attempt, result);
           }
         if(m_ops.IsUnknownOutcome(code))
           {
            // A timeout may have filled after all: the tag tells, later.
            Ordered(copy, 0);
            return Wait(result, "the server timed out (code " + IntegerToString((int)code) + "); looking for the position before anything is sent again");
           }
         if(m_ops.IsInvalidStops(code) && !stops_after && (sl != 0 || tp != 0))
           {
            // Some servers refuse stops on any open: open bare, set them
            // after (this attempt does not count against MaxRetries).
            stops_after = true;
            attempt_index--;
            continue;
           }
         if(m_ops.IsTransient(code)) return Wait(result, "the server answered " + IntegerToString((int)code) + "; trying again later");
         if(!m_ops.IsRetryable(code)) break;
         Sleep(m_retry_delay_ms);
        }
      Finish(result, "rejected", code, "open failed after " + IntegerToString(m_retries_max + 1) + " attempt(s), code " + IntegerToString((int)code));
      return TB_STEP_DONE;
     }

   // An open that filled `attempt.volume`: tag map, stops set when the
   // position has none of the copy's (a bare open on market execution),
   // and the result (a partial fill says so; it is never topped up).
   int               FinishOpen(const TbCopy &copy, int type, double volume, double step, const string &tag, const TbAttempt &attempt,
                                TbResult &result)
     {
      m_tags.Set(tag, attempt.ticket);
      result.ticket = attempt.ticket;
      result.volume = attempt.volume;
      result.price = attempt.price;
      string msg = attempt.volume < volume - step / 2 ? "partial fill: " + TbFormatDouble(attempt.volume) + " of " + TbFormatDouble(volume) + "; " : "";
      TbFound found;
      if((copy.sl != 0 || copy.tp != 0) && m_ops.FindPosition(tag, attempt.ticket, copy.symbol, found))
        {
         TbPriceRules rules;
         m_ops.PriceRules(copy.symbol, rules);
         double sl = copy.sl, tp = copy.tp;
         TbFitStops(rules, type, m_ops.MarketPrice(copy.symbol, 1 - type), sl, tp, msg);
         if(found.sl == 0 && found.tp == 0)
           {
            TbAttempt stops;
            uint code = m_ops.ModifyPosition(found, sl, tp, stops);
            if(!m_ops.IsSuccess(code)) msg += "setting SL/TP after the open failed, code " + IntegerToString((int)code) + "; ";
           }
        }
      Finish(result, "filled", 0, TbTrimNote(msg));
      return TB_STEP_DONE;
     }

   int               ExecuteClose(const TbCopy &copy, TbResult &result)
     {
      string tag = TbCopyTag(copy);
      TbFound found;
      TbAttempt attempt;
      int state = m_ledger.State(LedgerKey(copy));
      bool open = m_ops.FindPosition(tag, m_tags.Get(tag), copy.symbol, found);
      double before = m_ledger.VolumeBefore(LedgerKey(copy));
      if(state == TB_COPY_ORDERED)
        {
         int step = AwaitOrder(copy, tag, attempt, result);
         if(step == TB_STEP_WAIT) return TB_STEP_WAIT;
         if(step == TB_STEP_DONE) return attempt.volume > 0 ? FinishClose(tag, before, attempt.volume, found.ticket, attempt, result) : TB_STEP_DONE;
         // A timed-out close that did nothing: it goes again.
         state = TB_COPY_STARTED;
        }
      if(state == TB_COPY_STARTED && (!open || found.volume < before - 1e-9))
        {
         // It went through before a restart (or a timeout): not again.
         double closed = NormalizeDouble(before - (open ? found.volume : 0), 8);
         result.ticket = found.ticket;
         result.volume = closed;
         Finish(result, "filled", 0, "closed " + TbFormatDouble(closed) + " before the EA restarted; not sent again");
         return TB_STEP_DONE;
        }
      if(!open) { Finish(result, "skipped", 0, "no open copy tagged " + tag); return TB_STEP_DONE; }
      TbSymbolSpec spec;
      if(!m_ops.SymbolSpec(found.symbol, spec)) { Finish(result, "rejected", 0, "symbol '" + found.symbol + "' is not available"); return TB_STEP_DONE; }
      if(!Quoted(found.symbol, result)) return TB_STEP_WAIT;
      // volume 0 or at least the position's volume closes it entirely.
      double volume = found.volume;
      if(copy.volume > 0 && copy.volume < found.volume - spec.step / 2)
        {
         volume = TbNormalizeVolume(copy.volume, spec.step, spec.max, spec.step);
         if(volume <= 0) { Finish(result, "skipped", 0, "close volume " + TbFormatDouble(copy.volume) + " is below the step " + TbFormatDouble(spec.step)); return TB_STEP_DONE; }
         // What would remain must itself be tradable.
         if(found.volume - volume < spec.min - 1e-9) volume = found.volume;
        }
      uint code = 0;
      BeginTrade(copy, found.volume);
      for(int attempt_index = 0; attempt_index <= m_retries_max; attempt_index++)
        {
         code = m_ops.Close(found, volume, tag, attempt);
         if(m_ops.IsSuccess(code) || !m_ops.IsRetryable(code)) break;
         Sleep(m_retry_delay_ms);
        }
      if(m_ops.IsSuccess(code) && attempt.volume <= 0)
        {
         Ordered(copy, attempt.order);
         TbAttempt deal;
         if(AwaitOrder(copy, tag, deal, result) != TB_STEP_DONE) return TB_STEP_WAIT;
         if(deal.volume <= 0) return TB_STEP_DONE;
         return FinishClose(tag, found.volume, deal.volume, found.ticket, deal, result);
        }
      // What the server filled (an IOC close may fill less than asked).
      if(m_ops.IsSuccess(code)) return FinishClose(tag, found.volume, attempt.volume, found.ticket, attempt, result);
      if(m_ops.IsUnknownOutcome(code))
        {
         Ordered(copy, 0);
         return Wait(result, "the server timed out (code " + IntegerToString((int)code) + "); watching the position before anything is sent again");
        }
      if(m_ops.IsFrozen(code)) return Wait(result, "the position's stops are within the broker's freeze level of the market (code " + IntegerToString((int)code) + "); closing once the market moves away");
      if(m_ops.IsTransient(code)) return Wait(result, "the server answered " + IntegerToString((int)code) + "; trying again later");
      Finish(result, "rejected", code, "close failed, code " + IntegerToString((int)code));
      return TB_STEP_DONE;
     }

   int               FinishClose(const string &tag, double volume_before, double closed, ulong ticket, const TbAttempt &attempt, TbResult &result)
     {
      bool full = closed >= volume_before - 1e-9;
      if(full) m_tags.Remove(tag);
      else if(attempt.ticket != 0) m_tags.Set(tag, attempt.ticket);
      result.ticket = ticket;
      result.price = attempt.price;
      result.volume = closed;
      Finish(result, "filled", 0, full ? "" : "partial close; " + TbFormatDouble(NormalizeDouble(volume_before - closed, 8)) + " remains");
      return TB_STEP_DONE;
     }

   int               ExecuteModify(const TbCopy &copy, TbResult &result)
     {
      string tag = TbCopyTag(copy);
      TbFound found;
      TbAttempt attempt;
      uint code = 0;
      bool position = m_ops.FindPosition(tag, m_tags.Get(tag), copy.symbol, found);
      if(!position && !m_ops.FindPending(tag, m_tags.Get(tag), found)) { Finish(result, "skipped", 0, "nothing tagged " + tag + " to modify"); return TB_STEP_DONE; }
      if(!Quoted(found.symbol, result)) return TB_STEP_WAIT;
      TbPriceRules rules;
      m_ops.PriceRules(found.symbol, rules);
      double sl = copy.sl, tp = copy.tp;
      double price = TbNormalizePrice(copy.price > 0 ? copy.price : found.price, rules.tick, rules.digits);
      string note = "";
      if(!position && TriggerTooClose(found.symbol, found.type, price, rules, result)) return TB_STEP_DONE;
      TbFitStops(rules, found.type, position ? m_ops.MarketPrice(found.symbol, 1 - found.type) : price, sl, tp, note);
      BeginTrade(copy, found.volume);
      for(int attempt_index = 0; attempt_index <= m_retries_max; attempt_index++)
        {
         code = position ? m_ops.ModifyPosition(found, sl, tp, attempt) : m_ops.ModifyPending(found, price, sl, tp, attempt);
         if(m_ops.IsSuccess(code) || !m_ops.IsRetryable(code)) break;
         Sleep(m_retry_delay_ms);
        }
      if(m_ops.IsFrozen(code))
        {
         Finish(result, "skipped", code, "within the broker's freeze level of the market (" + IntegerToString(rules.freeze_level) +
                " points): the " + (position ? "stops" : "order") + " cannot change now");
         return TB_STEP_DONE;
        }
      if(m_ops.IsTransient(code)) return Wait(result, "the server answered " + IntegerToString((int)code) + "; trying again later");
      if(!m_ops.IsSuccess(code)) { Finish(result, "rejected", code, "modify failed, code " + IntegerToString((int)code)); return TB_STEP_DONE; }
      result.ticket = found.ticket;
      result.price = attempt.price;
      result.volume = found.volume;
      Finish(result, "filled", 0, note);
      return TB_STEP_DONE;
     }

   // True (result set: skipped) when a pending trigger is inside the
   // symbol's stops level of the market, where the server refuses it.
   bool              TriggerTooClose(const string &symbol, int type, double price, const TbPriceRules &rules, TbResult &result)
     {
      double market = m_ops.MarketPrice(symbol, type % 2 == 0 ? 0 : 1);
      double distance = rules.stops_level * rules.point;
      if(distance <= 0 || MathAbs(price - market) >= distance - rules.point / 2) return false;
      Finish(result, "skipped", 0, "trigger " + TbFormatDouble(price) + " is within the broker's stops level (" + IntegerToString(rules.stops_level) +
             " points) of the market " + TbFormatDouble(market));
      return true;
     }

   int               ExecutePending(const TbCopy &copy, ulong gmt_ms, TbResult &result)
     {
      string tag = TbCopyTag(copy);
      TbFound found;
      if(m_ops.FindPending(tag, m_tags.Get(tag), found) || m_ops.FindPosition(tag, m_tags.Get(tag), copy.symbol, found))
        {
         // Idempotent success: a `skipped` without a volume would make the
         // bridge record the copy as refused and stop following the order.
         result.ticket = found.ticket;
         result.volume = found.volume;
         result.price = found.price;
         Finish(result, "filled", 0, "already present as " + TbULongToString(found.ticket));
         return TB_STEP_DONE;
        }
      if(Expired(copy, gmt_ms, result)) return TB_STEP_DONE;
      int type = TbTypeOfSide(copy.side);
      TbSymbolSpec spec;
      if(type < 2) { Finish(result, "rejected", 0, "side '" + copy.side + "' is not a pending order type"); return TB_STEP_DONE; }
      if(!m_ops.SymbolSpec(copy.symbol, spec)) { Finish(result, "rejected", 0, "symbol '" + copy.symbol + "' is not available on this account"); return TB_STEP_DONE; }
      double volume = TbNormalizeVolume(copy.volume, spec.min, spec.max, spec.step);
      if(volume <= 0) { Finish(result, "skipped", 0, "volume " + TbFormatDouble(copy.volume) + " is below the minimum " + TbFormatDouble(spec.min)); return TB_STEP_DONE; }
      if(!Quoted(copy.symbol, result)) return TB_STEP_WAIT;
      TbPriceRules rules;
      m_ops.PriceRules(copy.symbol, rules);
      double price = TbNormalizePrice(copy.price, rules.tick, rules.digits);
      if(TriggerTooClose(copy.symbol, type, price, rules, result)) return TB_STEP_DONE;
      double sl = copy.sl, tp = copy.tp;
      string note = "";
      TbFitStops(rules, type, price, sl, tp, note);
      TbAttempt attempt;
      uint code = 0;
      BeginTrade(copy, 0);
      for(int attempt_index = 0; attempt_index <= m_retries_max; attempt_index++)
        {
         code = m_ops.PlacePending(copy, type, volume, tag, price, sl, tp, attempt);
         if(m_ops.IsSuccess(code) || !m_ops.IsRetryable(code)) break;
         Sleep(m_retry_delay_ms);
        }
      if(m_ops.IsTransient(code)) return Wait(result, "the server answered " + IntegerToString((int)code) + "; trying again later");
      if(!m_ops.IsSuccess(code)) { Finish(result, "rejected", code, "pending order failed, code " + IntegerToString((int)code)); return TB_STEP_DONE; }
      m_tags.Set(tag, attempt.ticket);
      result.ticket = attempt.ticket;
      result.price = price;
      result.volume = volume;
      Finish(result, "filled", 0, note);
      return TB_STEP_DONE;
     }

   int               ExecuteCancel(const TbCopy &copy, TbResult &result)
     {
      string tag = TbCopyTag(copy);
      TbFound found;
      if(!m_ops.FindPending(tag, m_tags.Get(tag), found)) { Finish(result, "skipped", 0, "no pending order tagged " + tag); return TB_STEP_DONE; }
      TbAttempt attempt;
      uint code = 0;
      BeginTrade(copy, found.volume);
      for(int attempt_index = 0; attempt_index <= m_retries_max; attempt_index++)
        {
         code = m_ops.DeletePending(found, attempt);
         if(m_ops.IsSuccess(code) || !m_ops.IsRetryable(code)) break;
         Sleep(m_retry_delay_ms);
        }
      if(m_ops.IsFrozen(code)) return Wait(result, "the order is within the broker's freeze level of the market (code " + IntegerToString((int)code) + "); cancelling once the market moves away");
      if(m_ops.IsTransient(code)) return Wait(result, "the server answered " + IntegerToString((int)code) + "; trying again later");
      if(!m_ops.IsSuccess(code)) { Finish(result, "rejected", code, "cancel failed, code " + IntegerToString((int)code)); return TB_STEP_DONE; }
      m_tags.Remove(tag);
      result.ticket = found.ticket;
      result.volume = found.volume;
      Finish(result, "filled", 0, "");
      return TB_STEP_DONE;
     }

   void              QueueResult(const TbResult &result)
     {
      if(m_result_count >= TB_RESULTS_QUEUED_MAX)
        {
         for(int i = 1; i < m_result_count; i++) m_results[i - 1].CopyFrom(m_results[i]);
         m_result_count--;
         m_results_dropped++;
         Print("TradeBridge: result queue full; oldest result dropped (", IntegerToString(m_results_dropped), " so far)");
        }
      ArrayResize(m_results, m_result_count + 1, 64);
      m_results[m_result_count].CopyFrom(result);
      m_result_count++;
     }

   void              FlushResults(void)
     {
      int sent = 0;
      while(sent < m_result_count)
        {
         TbJsonWriter writer;
         TbWriteResult(writer, m_results[sent]);
         if(!m_client.Send(writer)) break;
         sent++;
        }
      if(sent == 0) return;
      for(int i = sent; i < m_result_count; i++) m_results[i - sent].CopyFrom(m_results[i]);
      m_result_count -= sent;
      ArrayResize(m_results, m_result_count, 64);
     }

   // Positions (ticket, volume) as text: equal text = no material change.
   string            PositionSignature(const TbState &state)
     {
      string signature = "";
      for(int i = 0; i < ArraySize(state.positions); i++)
         signature += TbULongToString(state.positions[i].pos) + ":" + TbFormatDouble(state.positions[i].volume) + ";";
      return signature;
     }

   bool              StateChanged(void)
     {
      TbState state;
      BuildState(state);
      if(PositionSignature(state) != m_state_signature) return true;
      double reference = MathMax(MathAbs(m_state_equity), 1.0);
      if(MathAbs(state.equity - m_state_equity) > TB_STATE_MONEY_CHANGE_FRACTION * reference) return true;
      return MathAbs(state.balance - m_state_balance) > TB_STATE_MONEY_CHANGE_FRACTION * MathMax(MathAbs(m_state_balance), 1.0);
     }

   void              SendState(void)
     {
      TbState state;
      BuildState(state);
      TbJsonWriter writer;
      TbWriteState(writer, state);
      if(!m_client.Send(writer)) return;
      m_state_due = false;
      m_states_sent++;
      m_state_signature = PositionSignature(state);
      m_state_balance = state.balance;
      m_state_equity = state.equity;
     }

   // The Market Watch, in frames of m_symbols_per_frame symbols.
   void              SendSymbols(void)
     {
      int total = m_ops.MarketWatchCount();
      TB_ARRAY(TbSymbolSpec, specs);
      ArrayResize(specs, 0, total);
      int count = 0;
      for(int i = 0; i < total; i++)
        {
         ArrayResize(specs, count + 1, total);
         if(m_ops.SymbolSpec(m_ops.MarketWatchName(i), specs[count])) count++;
        }
      for(int start = 0; start < count; start += m_symbols_per_frame)
        {
         int frame_count = MathMin(m_symbols_per_frame, count - start);
         TbJsonWriter writer;
         TbWriteSymbols(writer, specs, start, frame_count);
         if(!m_client.Send(writer)) return;
         m_symbol_frames_sent++;
        }
      m_symbols_due = false;
     }
  };

#endif
