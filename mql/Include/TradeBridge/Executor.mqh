//+------------------------------------------------------------------+
//| Executor.mqh: the slave EA's logic, for MT4 and MT5.             |
//+------------------------------------------------------------------+
// # Layout
// - TbExecutor.Service(now_ms, gmt_ms): polls the bridge; after welcome
//   sends `state` and the Market Watch in `symbols` frames; executes each
//   `copy` and answers with a `result`; re-sends `state` when it changes
//   materially (positions, balance, or equity moving more than 1%).
// - Execute(copy, gmt_ms, result): one copy, by action:
//     open    expired -> skipped; already there (tag) -> skipped; price past
//             max_dev -> skipped; volume normalised; retried on requotes.
//     close   by position ticket (hedging) or opposite deal (netting).
//     modify  SL/TP of the position, or price/SL/TP of the pending order.
//     pending expired -> skipped; already there (order, or the position
//             it filled into) -> filled with its ticket and volume, the
//             same answer as the first time; placed.
//     cancel  the pending order, if still there.
// # Invariants
// - Idempotent: an open or pending finds an existing copy by its tag
//   before trading, so a re-sent copy (after a restart or reconnect) never
//   opens a second position.
// - `expires_ms` is the bridge's clock; it is compared with the terminal
//   PC's GMT (TimeGMT, not the broker's server time), with a tolerance for
//   clock skew. Close, modify and cancel never expire.
// - last_seq (the highest copy seq finished) is written to a file before
//   the result is sent, so hello carries it after any restart.
// - Retries per copy are bounded by m_retries_max; results waiting for a
//   connection by TB_RESULTS_QUEUED_MAX (the oldest is dropped, counted and
//   logged; the bridge still learns the outcome from `state`).
#ifndef TRADEBRIDGE_EXECUTOR_MQH
#define TRADEBRIDGE_EXECUTOR_MQH

#include "Compat.mqh"
#include "BridgeClient.mqh"
#include "ExecutorCore.mqh"
#ifdef __MQL5__
#include "Executor5.mqh"
#else
#include "Executor4.mqh"
#endif

// Results produced while the link is down wait here, up to this many.
#define TB_RESULTS_QUEUED_MAX 1000
// About 90 bytes per symbol: 100 symbols is ~9 KB, under the 16 KiB frame.
#define TB_SYMBOLS_PER_FRAME_DEFAULT 100
// How often the state is checked for a material change.
#define TB_STATE_CHECK_MS 1000
// Equity or balance moving by more than this fraction is material.
#define TB_STATE_MONEY_CHANGE_FRACTION 0.01
// Messages handled per Service call, so one call is bounded.
#define TB_EXECUTOR_MESSAGES_PER_SERVICE 64

class TbExecutor
  {
private:
   TbBridgeClient    m_client;
   TbJsonReader      m_reader;
   TbTradeOps        m_ops;
   TbTagMap          m_tags;
   // File holding last_seq; the value only grows.
   string            m_seq_file;
   ulong             m_last_seq;
   // Results not yet sent, oldest first.
   TB_ARRAY(TbResult, m_results);
   int               m_result_count;
   int               m_results_dropped;
   // Settings from the EA's inputs.
   int               m_retries_max;
   int               m_retry_delay_ms;
   ulong             m_clock_skew_ms;
   double            m_deviation_points_default;
   int               m_symbols_per_frame;
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
                     TbExecutor(void) : m_last_seq(0), m_result_count(0), m_results_dropped(0), m_retries_max(3),
                     m_retry_delay_ms(200), m_clock_skew_ms(2000), m_deviation_points_default(30),
                     m_symbols_per_frame(TB_SYMBOLS_PER_FRAME_DEFAULT), m_state_balance(0), m_state_equity(0),
                     m_last_state_check_ms(0), m_state_due(false), m_symbols_due(false), m_copies_handled(0),
                     m_states_sent(0), m_symbol_frames_sent(0) {}

   bool              Init(const string &url, TbHello &hello, const string &seq_file, const string &tags_file, int retries_max,
                          int retry_delay_ms, ulong clock_skew_ms, double deviation_points_default, int symbols_per_frame,
                          ulong backoff_base_ms, ulong backoff_max_ms, string &error)
     {
      m_seq_file = seq_file;
      m_last_seq = TbReadCounterFile(seq_file);
      m_tags.Load(tags_file);
      m_retries_max = retries_max >= 0 ? retries_max : 0;
      m_retry_delay_ms = retry_delay_ms >= 0 ? retry_delay_ms : 0;
      m_clock_skew_ms = clock_skew_ms;
      m_deviation_points_default = deviation_points_default;
      m_symbols_per_frame = symbols_per_frame > 0 ? symbols_per_frame : TB_SYMBOLS_PER_FRAME_DEFAULT;
      // MQL keeps an EA's globals across OnDeinit/OnInit: start clean.
      m_result_count = 0;
      ArrayResize(m_results, 0, 64);
      m_state_signature = "";
      m_state_balance = 0;
      m_state_equity = 0;
      m_last_state_check_ms = 0;
      m_state_due = false;
      m_symbols_due = false;
      hello.last_seq = m_last_seq;
      return m_client.Configure(url, hello, backoff_base_ms, backoff_max_ms, error);
     }

   ulong             LastSeq(void) const { return m_last_seq; }
   bool              IsReady(void) const { return m_client.IsReady(); }
   int               QueuedResults(void) const { return m_result_count; }
   void              QueuedResultAt(int index, TbResult &result) const { result.CopyFrom(m_results[index]); }
   int               StatesSent(void) const { return m_states_sent; }
   int               SymbolFramesSent(void) const { return m_symbol_frames_sent; }
   void              Shutdown(void) { m_client.Shutdown(); }

   void              Service(ulong now_ms, ulong gmt_ms)
     {
      string type = "";
      for(int handled = 0; handled < TB_EXECUTOR_MESSAGES_PER_SERVICE && m_client.Poll(now_ms, m_reader, type); handled++)
        {
         if(type == "welcome") { m_state_due = true; m_symbols_due = true; continue; }
         if(type != "copy") continue;
         TbCopy copy;
         string error = "";
         if(!TbReadCopy(m_reader, 0, copy, error)) { Print("TradeBridge: unreadable copy: ", error); continue; }
         TbResult result;
         Execute(copy, gmt_ms, result);
         QueueResult(result);
        }
      if(!m_client.IsReady()) return;
      FlushResults();
      if(m_symbols_due) SendSymbols();
      if(m_state_due || (now_ms - m_last_state_check_ms >= TB_STATE_CHECK_MS && StateChanged()))
        {
         m_last_state_check_ms = now_ms;
         SendState();
        }
     }

   // Carries out one copy and fills `result`; persists last_seq.
   void              Execute(const TbCopy &copy, ulong gmt_ms, TbResult &result)
     {
      ulong started_us = GetMicrosecondCount();
      result.Clear();
      result.seq = copy.seq;
      if(copy.seq != 0 && copy.seq <= m_last_seq)
         Finish(result, "skipped", 0, "copy " + TbULongToString(copy.seq) + " already finished (last_seq " + TbULongToString(m_last_seq) + ")");
      else if(copy.action == "open") ExecuteOpen(copy, gmt_ms, result);
      else if(copy.action == "close") ExecuteClose(copy, result);
      else if(copy.action == "modify") ExecuteModify(copy, result);
      else if(copy.action == "pending") ExecutePending(copy, gmt_ms, result);
      else if(copy.action == "cancel") ExecuteCancel(copy, result);
      else Finish(result, "rejected", 0, "unknown action '" + copy.action + "'");
      result.exec_ms = (GetMicrosecondCount() - started_us) / 1000;
      m_copies_handled++;
      if(copy.seq > m_last_seq)
        {
         m_last_seq = copy.seq;
         if(!TbWriteFileAtomically(m_seq_file, TbULongToString(m_last_seq) + "\n"))
            Print("TradeBridge: cannot write ", m_seq_file, "; a restart may see copy ", TbULongToString(copy.seq), " again (the tag keeps it idempotent)");
         m_client.SetLastSeq(m_last_seq);
        }
      Print("TradeBridge: copy ", TbULongToString(copy.seq), " ", copy.action, " ", copy.symbol, " -> ", result.status,
            result.msg == "" ? "" : ": " + result.msg);
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
   void              Finish(TbResult &result, const string &status, uint error, const string &msg)
     {
      result.status = status;
      result.error = error;
      result.msg = msg;
     }

   bool              Expired(const TbCopy &copy, ulong gmt_ms, TbResult &result)
     {
      if(copy.expires_ms == 0 || gmt_ms <= copy.expires_ms + m_clock_skew_ms) return false;
      Finish(result, "skipped", 0, "expired: arrived " + TbULongToString(gmt_ms - copy.expires_ms) + " ms after expires_ms");
      return true;
     }

   void              ExecuteOpen(const TbCopy &copy, ulong gmt_ms, TbResult &result)
     {
      if(Expired(copy, gmt_ms, result)) return;
      string tag = TbCopyTag(copy);
      TbFound found;
      if(m_ops.FindPosition(tag, m_tags.Get(tag), copy.symbol, found))
        {
         result.ticket = found.ticket;
         result.volume = found.volume;
         result.price = found.price;
         Finish(result, "skipped", 0, "already open as " + TbULongToString(found.ticket));
         return;
        }
      // The master's pending order filled: ours gives way to a market copy.
      TbAttempt attempt;
      if(m_ops.FindPending(tag, m_tags.Get(tag), found)) m_ops.DeletePending(found, attempt);
      int type = TbTypeOfSide(copy.side);
      TbSymbolSpec spec;
      if(type < 0 || type > 1) { Finish(result, "rejected", 0, "side '" + copy.side + "' cannot open a position"); return; }
      if(!m_ops.SymbolSpec(copy.symbol, spec)) { Finish(result, "rejected", 0, "symbol '" + copy.symbol + "' is not available on this account"); return; }
      double volume = TbNormalizeVolume(copy.volume, spec.min, spec.max, spec.step);
      if(volume <= 0)
        {
         Finish(result, "skipped", 0, "volume " + TbFormatDouble(copy.volume) + " is below the minimum " + TbFormatDouble(spec.min));
         return;
        }
      OpenWithRetries(copy, type, volume, spec, tag, result);
     }

   void              OpenWithRetries(const TbCopy &copy, int type, double volume, const TbSymbolSpec &spec, const string &tag, TbResult &result)
     {
      double point = MathPow(10, -(int)spec.digits);
      double deviation_points = copy.max_dev > 0 ? MathRound(copy.max_dev / point) : m_deviation_points_default;
      double filled = 0, notional = 0;
      uint code = 0;
      for(int attempt_index = 0; attempt_index <= m_retries_max; attempt_index++)
        {
         double market = m_ops.MarketPrice(copy.symbol, type);
         if(copy.max_dev > 0 && copy.price > 0 && MathAbs(market - copy.price) > copy.max_dev + point / 2)
           {
            if(filled > 0) break;
            Finish(result, "skipped", code, "price moved: market " + TbFormatDouble(market) + " vs master " + TbFormatDouble(copy.price) +
                   " exceeds max_dev " + TbFormatDouble(copy.max_dev));
            return;
           }
         TbAttempt attempt;
         code = m_ops.Open(copy, type, NormalizeDouble(volume - filled, 8), deviation_points, tag, attempt);
         if(m_ops.IsSuccess(code))
           {
            filled = NormalizeDouble(filled + attempt.volume, 8);
            notional += attempt.volume * attempt.price;
            result.ticket = attempt.ticket;
            m_tags.Set(tag, attempt.ticket);
            // A partial fill: the rest is tried with the remaining attempts.
            if(filled >= volume - spec.step / 2) break;
            continue;
           }
         if(!m_ops.IsRetryable(code)) break;
         Sleep(m_retry_delay_ms);
         // A timeout may have filled after all: the tag tells.
         TbFound found;
         if(filled == 0 && m_ops.FindPosition(tag, 0, copy.symbol, found))
           {
            filled = found.volume; notional = found.volume * found.price; result.ticket = found.ticket;
            m_tags.Set(tag, found.ticket);
            break;
           }
        }
      if(filled <= 0) { Finish(result, "rejected", code, "open failed after " + IntegerToString(m_retries_max + 1) + " attempt(s), code " + IntegerToString((int)code)); return; }
      result.volume = filled;
      result.price = notional / filled;
      Finish(result, "filled", 0, filled < volume - spec.step / 2 ? "partial fill: " + TbFormatDouble(filled) + " of " + TbFormatDouble(volume) : "");
     }

   void              ExecuteClose(const TbCopy &copy, TbResult &result)
     {
      string tag = TbCopyTag(copy);
      TbFound found;
      if(!m_ops.FindPosition(tag, m_tags.Get(tag), copy.symbol, found)) { Finish(result, "skipped", 0, "no open copy tagged " + tag); return; }
      TbSymbolSpec spec;
      if(!m_ops.SymbolSpec(found.symbol, spec)) { Finish(result, "rejected", 0, "symbol '" + found.symbol + "' is not available"); return; }
      // volume 0 or at least the position's volume closes it entirely.
      double volume = found.volume;
      if(copy.volume > 0 && copy.volume < found.volume - spec.step / 2)
        {
         volume = TbNormalizeVolume(copy.volume, spec.step, spec.max, spec.step);
         if(volume <= 0) { Finish(result, "skipped", 0, "close volume " + TbFormatDouble(copy.volume) + " is below the step " + TbFormatDouble(spec.step)); return; }
         // What would remain must itself be tradable.
         if(found.volume - volume < spec.min - 1e-9) volume = found.volume;
        }
      TbAttempt attempt;
      uint code = 0;
      for(int attempt_index = 0; attempt_index <= m_retries_max; attempt_index++)
        {
         code = m_ops.Close(found, volume, tag, attempt);
         if(m_ops.IsSuccess(code) || !m_ops.IsRetryable(code)) break;
         Sleep(m_retry_delay_ms);
        }
      if(!m_ops.IsSuccess(code)) { Finish(result, "rejected", code, "close failed, code " + IntegerToString((int)code)); return; }
      bool full = volume >= found.volume - 1e-9;
      if(full) m_tags.Remove(tag);
      else if(attempt.ticket != 0) m_tags.Set(tag, attempt.ticket);
      result.ticket = found.ticket;
      result.price = attempt.price;
      result.volume = volume;
      Finish(result, "filled", 0, full ? "" : "partial close; " + TbFormatDouble(NormalizeDouble(found.volume - volume, 8)) + " remains");
     }

   void              ExecuteModify(const TbCopy &copy, TbResult &result)
     {
      string tag = TbCopyTag(copy);
      TbFound found;
      TbAttempt attempt;
      uint code = 0;
      bool position = m_ops.FindPosition(tag, m_tags.Get(tag), copy.symbol, found);
      if(!position && !m_ops.FindPending(tag, m_tags.Get(tag), found)) { Finish(result, "skipped", 0, "nothing tagged " + tag + " to modify"); return; }
      for(int attempt_index = 0; attempt_index <= m_retries_max; attempt_index++)
        {
         code = position ? m_ops.ModifyPosition(found, copy.sl, copy.tp, attempt) : m_ops.ModifyPending(found, copy.price, copy.sl, copy.tp, attempt);
         if(m_ops.IsSuccess(code) || !m_ops.IsRetryable(code)) break;
         Sleep(m_retry_delay_ms);
        }
      if(!m_ops.IsSuccess(code)) { Finish(result, "rejected", code, "modify failed, code " + IntegerToString((int)code)); return; }
      result.ticket = found.ticket;
      result.price = attempt.price;
      result.volume = found.volume;
      Finish(result, "filled", 0, "");
     }

   void              ExecutePending(const TbCopy &copy, ulong gmt_ms, TbResult &result)
     {
      if(Expired(copy, gmt_ms, result)) return;
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
         return;
        }
      int type = TbTypeOfSide(copy.side);
      TbSymbolSpec spec;
      if(type < 2) { Finish(result, "rejected", 0, "side '" + copy.side + "' is not a pending order type"); return; }
      if(!m_ops.SymbolSpec(copy.symbol, spec)) { Finish(result, "rejected", 0, "symbol '" + copy.symbol + "' is not available on this account"); return; }
      double volume = TbNormalizeVolume(copy.volume, spec.min, spec.max, spec.step);
      if(volume <= 0) { Finish(result, "skipped", 0, "volume " + TbFormatDouble(copy.volume) + " is below the minimum " + TbFormatDouble(spec.min)); return; }
      TbAttempt attempt;
      uint code = 0;
      for(int attempt_index = 0; attempt_index <= m_retries_max; attempt_index++)
        {
         code = m_ops.PlacePending(copy, type, volume, tag, attempt);
         if(m_ops.IsSuccess(code) || !m_ops.IsRetryable(code)) break;
         Sleep(m_retry_delay_ms);
        }
      if(!m_ops.IsSuccess(code)) { Finish(result, "rejected", code, "pending order failed, code " + IntegerToString((int)code)); return; }
      m_tags.Set(tag, attempt.ticket);
      result.ticket = attempt.ticket;
      result.price = copy.price;
      result.volume = volume;
      Finish(result, "filled", 0, "");
     }

   void              ExecuteCancel(const TbCopy &copy, TbResult &result)
     {
      string tag = TbCopyTag(copy);
      TbFound found;
      if(!m_ops.FindPending(tag, m_tags.Get(tag), found)) { Finish(result, "skipped", 0, "no pending order tagged " + tag); return; }
      TbAttempt attempt;
      uint code = 0;
      for(int attempt_index = 0; attempt_index <= m_retries_max; attempt_index++)
        {
         code = m_ops.DeletePending(found, attempt);
         if(m_ops.IsSuccess(code) || !m_ops.IsRetryable(code)) break;
         Sleep(m_retry_delay_ms);
        }
      if(!m_ops.IsSuccess(code)) { Finish(result, "rejected", code, "cancel failed, code " + IntegerToString((int)code)); return; }
      m_tags.Remove(tag);
      result.ticket = found.ticket;
      result.volume = found.volume;
      Finish(result, "filled", 0, "");
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
