//+------------------------------------------------------------------+
//| Messages.mqh: every PROTOCOL.md v1 message, written and read.    |
//+------------------------------------------------------------------+
// # Layout
// - One struct per message (TbHello, TbWelcome, TbEvent, TbAck,
//   TbSnapshot, TbCopy, TbResult, TbState, TbSymbols, TbError) plus the
//   items they list (TbPosition, TbStatePosition, TbSymbolSpec).
// - TbWrite<Message>(writer, message): the whole object, "t" first.
// - TbRead<Message>(reader, object, message, error): false with an error
//   naming the field and what was expected; unknown fields are ignored.
// # Invariants
// - Tickets, position ids, logins, seqs, magics and times are ulong and
//   cross the wire as digits only (TbStringToULong / TbULongToString).
// - Enumerated strings (kind, side, action, status, role, code) are
//   checked against PROTOCOL.md's lists when read.
// - Ping and pong have no fields and no struct; TbWritePing writes one.
#ifndef TRADEBRIDGE_MESSAGES_MQH
#define TRADEBRIDGE_MESSAGES_MQH

#include "Compat.mqh"
#include "Json.mqh"

// True when `value` is one of the '|'-separated words in `allowed`.
bool TbOneOf(const string &value, const string &allowed)
  {
   if(value == "") return false;
   return StringFind("|" + allowed + "|", "|" + value + "|") >= 0;
  }

#define TB_SIDES_MARKET  "buy|sell"
#define TB_SIDES_ALL     "buy|sell|buy_limit|sell_limit|buy_stop|sell_stop"
#define TB_EVENT_KINDS   "open|modify|close|pending|cancel"
#define TB_COPY_ACTIONS  "open|modify|close|pending|cancel"
#define TB_RESULT_STATUS "filled|rejected|skipped"
#define TB_ROLES         "master|slave"
#define TB_ERROR_CODES   "bad_message|unknown_type|unauthorized|rate_limited|too_large|internal"

// MT4 OP_* and MT5 ORDER_TYPE_* share the numbers 0..5, so one table
// names the side for both.
// Side name of order/position type 0..5; "" for any other type.
string TbSideOfType(int type)
  {
   switch(type)
     {
      case 0: return "buy";
      case 1: return "sell";
      case 2: return "buy_limit";
      case 3: return "sell_limit";
      case 4: return "buy_stop";
      case 5: return "sell_stop";
     }
   return "";
  }

// Order/position type 0..5 of a side name; -1 for anything else.
int TbTypeOfSide(const string &side)
  {
   for(int type = 0; type <= 5; type++)
      if(TbSideOfType(type) == side) return type;
   return -1;
  }

//--- readers' small helpers: each sets `error` naming the field.
bool TbNeedULong(const TbJsonReader &r, int object, const string &key, ulong &value, string &error)
  {
   if(r.GetULong(object, key, value)) return true;
   error = "field `" + key + "`: " + (r.Find(object, key) < 0 ? "missing" : "'" + r.RawText(r.Find(object, key)) + "' is not an unsigned 64-bit integer");
   return false;
  }
bool TbNeedDouble(const TbJsonReader &r, int object, const string &key, double &value, string &error)
  {
   if(r.GetDouble(object, key, value)) return true;
   error = "field `" + key + "`: " + (r.Find(object, key) < 0 ? "missing" : "expected a number");
   return false;
  }
bool TbNeedString(const TbJsonReader &r, int object, const string &key, string &value, string &error)
  {
   if(r.GetString(object, key, value)) return true;
   error = "field `" + key + "`: " + (r.Find(object, key) < 0 ? "missing" : "expected a string");
   return false;
  }
bool TbNeedWord(const TbJsonReader &r, int object, const string &key, const string &allowed, string &value, string &error)
  {
   if(!TbNeedString(r, object, key, value, error)) return false;
   if(TbOneOf(value, allowed)) return true;
   error = "field `" + key + "`: '" + value + "' is not one of " + allowed;
   return false;
  }
// Optional fields keep their default when absent; a wrong type is an error.
bool TbOptULong(const TbJsonReader &r, int object, const string &key, ulong &value, string &error)
  {
   if(r.Find(object, key) < 0) return true;
   return TbNeedULong(r, object, key, value, error);
  }
bool TbOptDouble(const TbJsonReader &r, int object, const string &key, double &value, string &error)
  {
   if(r.Find(object, key) < 0) return true;
   return TbNeedDouble(r, object, key, value, error);
  }
bool TbOptString(const TbJsonReader &r, int object, const string &key, string &value, string &error)
  {
   if(r.Find(object, key) < 0) return true;
   return TbNeedString(r, object, key, value, error);
  }

// Type of the message in `object` ("" when `t` is missing).
string TbMessageType(const TbJsonReader &r, int object)
  {
   string type = "";
   r.GetString(object, "t", type);
   return type;
  }

//+------------------------------------------------------------------+
struct TbHello
  {
   uint              version;      // protocol version, TB_PROTOCOL_VERSION
   string            key;          // API key in clear; never logged
   ulong             login;        // account number
   string            role;         // "master" or "slave"
   string            platform;     // "mt4" or "mt5"
   string            server;       // broker server name
   string            ea;           // EA name and version
   ulong             last_seq;     // slave: highest copy seq finished
  };
void TbWriteHello(TbJsonWriter &w, const TbHello &m)
  {
   w.BeginObject();
   w.FieldString("t", "hello");
   w.FieldULong("v", m.version);
   w.FieldString("key", m.key);
   w.FieldULong("login", m.login);
   w.FieldString("role", m.role);
   w.FieldString("platform", m.platform);
   w.FieldString("server", m.server);
   w.FieldString("ea", m.ea);
   w.FieldULong("last_seq", m.last_seq);
   w.EndObject();
  }
bool TbReadHello(const TbJsonReader &r, int o, TbHello &m, string &error)
  {
   ulong version = 0;
   m.last_seq = 0;
   m.platform = "";
   m.ea = "";
   if(!TbNeedULong(r, o, "v", version, error)) return false;
   m.version = (uint)version;
   return TbNeedString(r, o, "key", m.key, error) && TbNeedULong(r, o, "login", m.login, error) &&
          TbNeedWord(r, o, "role", TB_ROLES, m.role, error) && TbOptString(r, o, "platform", m.platform, error) &&
          TbNeedString(r, o, "server", m.server, error) && TbOptString(r, o, "ea", m.ea, error) &&
          TbOptULong(r, o, "last_seq", m.last_seq, error);
  }

//+------------------------------------------------------------------+
struct TbWelcome
  {
   uint              version;      // protocol version the bridge speaks
   string            session;      // bridge session id, for logs
   ulong             hb_ms;        // heartbeat period the EA must keep
   ulong             ack_seq;      // master: highest event seq held durably
  };
void TbWriteWelcome(TbJsonWriter &w, const TbWelcome &m)
  {
   w.BeginObject();
   w.FieldString("t", "welcome");
   w.FieldULong("v", m.version);
   w.FieldString("session", m.session);
   w.FieldULong("hb_ms", m.hb_ms);
   w.FieldULong("ack_seq", m.ack_seq);
   w.EndObject();
  }
bool TbReadWelcome(const TbJsonReader &r, int o, TbWelcome &m, string &error)
  {
   ulong version = 0;
   m.ack_seq = 0;
   m.session = "";
   if(!TbNeedULong(r, o, "v", version, error)) return false;
   m.version = (uint)version;
   return TbOptString(r, o, "session", m.session, error) && TbNeedULong(r, o, "hb_ms", m.hb_ms, error) &&
          TbOptULong(r, o, "ack_seq", m.ack_seq, error);
  }

void TbWritePing(TbJsonWriter &w) { w.BeginObject(); w.FieldString("t", "ping"); w.EndObject(); }
void TbWritePong(TbJsonWriter &w) { w.BeginObject(); w.FieldString("t", "pong"); w.EndObject(); }

//+------------------------------------------------------------------+
struct TbEvent
  {
   ulong             seq;          // per-master sequence, +1 per event
   string            kind;         // open | modify | close | pending | cancel
   ulong             pos;          // position id, stable across partial closes
   ulong             ticket;       // deal/order ticket behind the event
   string            symbol;       // "" when left out (modify, close, cancel)
   string            side;         // "" when left out
   double            volume;       // opened / closed / order volume
   double            price;        // fill or trigger price; 0 when unchanged
   double            sl;           // stop loss, 0 = none
   double            tp;           // take profit, 0 = none
   ulong             magic;        // EA magic number of the master trade
   string            comment;      // master comment
   ulong             time_ms;      // master clock, informational
   bool              has_remaining;// close: whether `remaining` is sent
   double            remaining;    // close: volume left open
   void              Clear(void)
     {
      seq = 0; kind = ""; pos = 0; ticket = 0; symbol = ""; side = ""; volume = 0; price = 0; sl = 0; tp = 0;
      magic = 0; comment = ""; time_ms = 0; has_remaining = false; remaining = 0;
     }
   void              CopyFrom(const TbEvent &o)
     {
      seq = o.seq; kind = o.kind; pos = o.pos; ticket = o.ticket; symbol = o.symbol; side = o.side;
      volume = o.volume; price = o.price; sl = o.sl; tp = o.tp; magic = o.magic; comment = o.comment;
      time_ms = o.time_ms; has_remaining = o.has_remaining; remaining = o.remaining;
     }
  };
void TbWriteEvent(TbJsonWriter &w, const TbEvent &m)
  {
   w.BeginObject();
   w.FieldString("t", "event");
   w.FieldULong("seq", m.seq);
   w.FieldString("kind", m.kind);
   w.FieldULong("pos", m.pos);
   w.FieldULong("ticket", m.ticket);
   if(m.symbol != "") w.FieldString("symbol", m.symbol);
   if(m.side != "") w.FieldString("side", m.side);
   w.FieldDouble("volume", m.volume);
   w.FieldDouble("price", m.price);
   w.FieldDouble("sl", m.sl);
   w.FieldDouble("tp", m.tp);
   w.FieldULong("magic", m.magic);
   w.FieldString("comment", m.comment);
   w.FieldULong("time_ms", m.time_ms);
   if(m.has_remaining) w.FieldDouble("remaining", m.remaining);
   w.EndObject();
  }
bool TbReadEvent(const TbJsonReader &r, int o, TbEvent &m, string &error)
  {
   m.Clear();
   if(!TbNeedULong(r, o, "seq", m.seq, error) || !TbNeedWord(r, o, "kind", TB_EVENT_KINDS, m.kind, error) ||
      !TbNeedULong(r, o, "pos", m.pos, error) || !TbOptULong(r, o, "ticket", m.ticket, error))
      return false;
   bool opens = (m.kind == "open" || m.kind == "pending");
   if(opens && (!TbNeedString(r, o, "symbol", m.symbol, error) || !TbNeedWord(r, o, "side", TB_SIDES_ALL, m.side, error)))
      return false;
   if(!opens && (!TbOptString(r, o, "symbol", m.symbol, error) || !TbOptString(r, o, "side", m.side, error)))
      return false;
   if(m.side != "" && !TbOneOf(m.side, TB_SIDES_ALL)) { error = "field `side`: '" + m.side + "' is not one of " + TB_SIDES_ALL; return false; }
   m.has_remaining = r.Find(o, "remaining") >= 0;
   return TbOptDouble(r, o, "volume", m.volume, error) && TbOptDouble(r, o, "price", m.price, error) &&
          TbOptDouble(r, o, "sl", m.sl, error) && TbOptDouble(r, o, "tp", m.tp, error) &&
          TbOptULong(r, o, "magic", m.magic, error) && TbOptString(r, o, "comment", m.comment, error) &&
          TbOptULong(r, o, "time_ms", m.time_ms, error) && TbOptDouble(r, o, "remaining", m.remaining, error);
  }

//+------------------------------------------------------------------+
struct TbAck
  {
   ulong             seq;          // event seq now durable in the bridge
  };
void TbWriteAck(TbJsonWriter &w, const TbAck &m)
  {
   w.BeginObject();
   w.FieldString("t", "ack");
   w.FieldULong("seq", m.seq);
   w.EndObject();
  }
bool TbReadAck(const TbJsonReader &r, int o, TbAck &m, string &error)
  {
   return TbNeedULong(r, o, "seq", m.seq, error);
  }

//+------------------------------------------------------------------+
struct TbPosition
  {
   ulong             pos;          // position id (MT5) / original ticket (MT4)
   string            symbol;
   string            side;         // buy | sell
   double            volume;
   double            price;        // open price
   double            sl;
   double            tp;
   ulong             magic;
   string            comment;
   void              CopyFrom(const TbPosition &o)
     {
      pos = o.pos; symbol = o.symbol; side = o.side; volume = o.volume; price = o.price; sl = o.sl; tp = o.tp;
      magic = o.magic; comment = o.comment;
     }
  };
struct TbSnapshot
  {
   TB_ARRAY(TbPosition, positions); // every open position of the master
   double            balance;
   double            equity;
   string            currency;
  };
void TbWriteSnapshot(TbJsonWriter &w, const TbSnapshot &m)
  {
   w.BeginObject();
   w.FieldString("t", "snapshot");
   w.Key("positions");
   w.BeginArray();
   for(int i = 0; i < ArraySize(m.positions); i++)
     {
      w.BeginObject();
      w.FieldULong("pos", m.positions[i].pos);
      w.FieldString("symbol", m.positions[i].symbol);
      w.FieldString("side", m.positions[i].side);
      w.FieldDouble("volume", m.positions[i].volume);
      w.FieldDouble("price", m.positions[i].price);
      w.FieldDouble("sl", m.positions[i].sl);
      w.FieldDouble("tp", m.positions[i].tp);
      w.FieldULong("magic", m.positions[i].magic);
      w.FieldString("comment", m.positions[i].comment);
      w.EndObject();
     }
   w.EndArray();
   w.FieldDouble("balance", m.balance);
   w.FieldDouble("equity", m.equity);
   w.FieldString("currency", m.currency);
   w.EndObject();
  }
bool TbReadSnapshot(const TbJsonReader &r, int o, TbSnapshot &m, string &error)
  {
   int array = r.Find(o, "positions");
   if(array < 0 || r.Kind(array) != TB_JSON_ARRAY) { error = "field `positions`: missing or not an array"; return false; }
   int count = r.Count(array);
   ArrayResize(m.positions, count);
   for(int i = 0; i < count; i++)
     {
      int item = r.Element(array, i);
      m.positions[i].magic = 0; m.positions[i].sl = 0; m.positions[i].tp = 0; m.positions[i].comment = "";
      if(!TbNeedULong(r, item, "pos", m.positions[i].pos, error) || !TbNeedString(r, item, "symbol", m.positions[i].symbol, error) ||
         !TbNeedWord(r, item, "side", TB_SIDES_ALL, m.positions[i].side, error) ||
         !TbNeedDouble(r, item, "volume", m.positions[i].volume, error) || !TbNeedDouble(r, item, "price", m.positions[i].price, error) ||
         !TbOptDouble(r, item, "sl", m.positions[i].sl, error) || !TbOptDouble(r, item, "tp", m.positions[i].tp, error) ||
         !TbOptULong(r, item, "magic", m.positions[i].magic, error) || !TbOptString(r, item, "comment", m.positions[i].comment, error))
        {
         error = "positions[" + IntegerToString(i) + "]." + error;
         return false;
        }
     }
   m.currency = "";
   return TbNeedDouble(r, o, "balance", m.balance, error) && TbNeedDouble(r, o, "equity", m.equity, error) &&
          TbOptString(r, o, "currency", m.currency, error);
  }

//+------------------------------------------------------------------+
struct TbCopy
  {
   ulong             seq;          // per-slave sequence
   string            id;           // copy id, for the bridge's records
   ulong             master;       // master login
   ulong             pos;          // master position id
   string            action;       // open | modify | close | pending | cancel
   string            symbol;       // slave symbol (mapped by the bridge)
   string            side;
   double            volume;       // open: lots to open; close: lots to close
   double            price;        // master price / pending trigger
   double            max_dev;      // largest accepted |market - price|; 0 = no limit
   double            sl;
   double            tp;
   ulong             magic;
   string            comment;      // tc:<master>:<pos>
   ulong             expires_ms;   // bridge clock; 0 = never expires
   void              Clear(void)
     {
      seq = 0; id = ""; master = 0; pos = 0; action = ""; symbol = ""; side = ""; volume = 0; price = 0;
      max_dev = 0; sl = 0; tp = 0; magic = 0; comment = ""; expires_ms = 0;
     }
   void              CopyFrom(const TbCopy &o)
     {
      seq = o.seq; id = o.id; master = o.master; pos = o.pos; action = o.action; symbol = o.symbol; side = o.side;
      volume = o.volume; price = o.price; max_dev = o.max_dev; sl = o.sl; tp = o.tp; magic = o.magic;
      comment = o.comment; expires_ms = o.expires_ms;
     }
  };
void TbWriteCopy(TbJsonWriter &w, const TbCopy &m)
  {
   w.BeginObject();
   w.FieldString("t", "copy");
   w.FieldULong("seq", m.seq);
   w.FieldString("id", m.id);
   w.FieldULong("master", m.master);
   w.FieldULong("pos", m.pos);
   w.FieldString("action", m.action);
   w.FieldString("symbol", m.symbol);
   w.FieldString("side", m.side);
   w.FieldDouble("volume", m.volume);
   w.FieldDouble("price", m.price);
   w.FieldDouble("max_dev", m.max_dev);
   w.FieldDouble("sl", m.sl);
   w.FieldDouble("tp", m.tp);
   w.FieldULong("magic", m.magic);
   w.FieldString("comment", m.comment);
   w.FieldULong("expires_ms", m.expires_ms);
   w.EndObject();
  }
bool TbReadCopy(const TbJsonReader &r, int o, TbCopy &m, string &error)
  {
   m.Clear();
   return TbNeedULong(r, o, "seq", m.seq, error) && TbOptString(r, o, "id", m.id, error) &&
          TbNeedULong(r, o, "master", m.master, error) && TbNeedULong(r, o, "pos", m.pos, error) &&
          TbNeedWord(r, o, "action", TB_COPY_ACTIONS, m.action, error) && TbNeedString(r, o, "symbol", m.symbol, error) &&
          TbNeedWord(r, o, "side", TB_SIDES_ALL, m.side, error) && TbOptDouble(r, o, "volume", m.volume, error) &&
          TbOptDouble(r, o, "price", m.price, error) && TbOptDouble(r, o, "max_dev", m.max_dev, error) &&
          TbOptDouble(r, o, "sl", m.sl, error) && TbOptDouble(r, o, "tp", m.tp, error) &&
          TbOptULong(r, o, "magic", m.magic, error) && TbOptString(r, o, "comment", m.comment, error) &&
          TbOptULong(r, o, "expires_ms", m.expires_ms, error);
  }

//+------------------------------------------------------------------+
struct TbResult
  {
   ulong             seq;          // the copy's seq
   string            status;       // filled | rejected | skipped
   ulong             ticket;       // slave ticket / position id; 0 if none
   double            price;
   double            volume;
   uint              error;        // terminal error or retcode; 0 on success
   string            msg;          // human-readable reason
   ulong             exec_ms;      // time the Executor spent
   void              Clear(void) { seq = 0; status = ""; ticket = 0; price = 0; volume = 0; error = 0; msg = ""; exec_ms = 0; }
   void              CopyFrom(const TbResult &o)
     {
      seq = o.seq; status = o.status; ticket = o.ticket; price = o.price; volume = o.volume; error = o.error;
      msg = o.msg; exec_ms = o.exec_ms;
     }
  };
void TbWriteResult(TbJsonWriter &w, const TbResult &m)
  {
   w.BeginObject();
   w.FieldString("t", "result");
   w.FieldULong("seq", m.seq);
   w.FieldString("status", m.status);
   w.FieldULong("ticket", m.ticket);
   w.FieldDouble("price", m.price);
   w.FieldDouble("volume", m.volume);
   w.FieldULong("error", m.error);
   w.FieldString("msg", m.msg);
   w.FieldULong("exec_ms", m.exec_ms);
   w.EndObject();
  }
bool TbReadResult(const TbJsonReader &r, int o, TbResult &m, string &error)
  {
   m.Clear();
   ulong code = 0;
   bool ok = TbNeedULong(r, o, "seq", m.seq, error) && TbNeedWord(r, o, "status", TB_RESULT_STATUS, m.status, error) &&
             TbOptULong(r, o, "ticket", m.ticket, error) && TbOptDouble(r, o, "price", m.price, error) &&
             TbOptDouble(r, o, "volume", m.volume, error) && TbOptULong(r, o, "error", code, error) &&
             TbOptString(r, o, "msg", m.msg, error) && TbOptULong(r, o, "exec_ms", m.exec_ms, error);
   if(ok && code > 0xFFFFFFFF) { error = "field `error`: " + TbULongToString(code) + " does not fit 32 bits"; return false; }
   m.error = (uint)code;
   return ok;
  }

//+------------------------------------------------------------------+
struct TbStatePosition
  {
   ulong             pos;          // slave ticket (MT4) / position id (MT5)
   string            symbol;
   string            side;
   double            volume;
   string            comment;      // carries the tc:<master>:<pos> tag
   void              CopyFrom(const TbStatePosition &o) { pos = o.pos; symbol = o.symbol; side = o.side; volume = o.volume; comment = o.comment; }
  };
struct TbSymbolSpec
  {
   string            name;
   double            min;          // smallest volume, lots
   double            max;          // largest volume, lots
   double            step;         // volume step, lots
   uint              digits;       // price digits
   double            contract;     // units per lot
  };
struct TbState
  {
   double            balance;
   double            equity;
   string            currency;
   TB_ARRAY(TbStatePosition, positions);
   // False when the symbols go in separate `symbols` frames.
   bool              has_symbols;
   TB_ARRAY(TbSymbolSpec, symbols);
  };
struct TbSymbols
  {
   TB_ARRAY(TbSymbolSpec, symbols);
  };

void TbWriteSymbolList(TbJsonWriter &w, TB_CONST_ARRAY_PARAM(TbSymbolSpec, symbols), int start, int count)
  {
   w.Key("symbols");
   w.BeginArray();
   for(int i = start; i < start + count; i++)
     {
      w.BeginObject();
      w.FieldString("name", symbols[i].name);
      w.FieldDouble("min", symbols[i].min);
      w.FieldDouble("max", symbols[i].max);
      w.FieldDouble("step", symbols[i].step);
      w.FieldULong("digits", symbols[i].digits);
      w.FieldDouble("contract", symbols[i].contract);
      w.EndObject();
     }
   w.EndArray();
  }
bool TbReadSymbolList(const TbJsonReader &r, int o, TB_ARRAY_PARAM(TbSymbolSpec, symbols), string &error)
  {
   int array = r.Find(o, "symbols");
   if(array < 0 || r.Kind(array) != TB_JSON_ARRAY) { error = "field `symbols`: missing or not an array"; return false; }
   int count = r.Count(array);
   ArrayResize(symbols, count);
   for(int i = 0; i < count; i++)
     {
      int item = r.Element(array, i);
      ulong digits = 0;
      if(!TbNeedString(r, item, "name", symbols[i].name, error) || !TbNeedDouble(r, item, "min", symbols[i].min, error) ||
         !TbNeedDouble(r, item, "max", symbols[i].max, error) || !TbNeedDouble(r, item, "step", symbols[i].step, error) ||
         !TbNeedULong(r, item, "digits", digits, error) || !TbNeedDouble(r, item, "contract", symbols[i].contract, error))
        {
         error = "symbols[" + IntegerToString(i) + "]." + error;
         return false;
        }
      symbols[i].digits = (uint)digits;
     }
   return true;
  }

void TbWriteState(TbJsonWriter &w, const TbState &m)
  {
   w.BeginObject();
   w.FieldString("t", "state");
   w.FieldDouble("balance", m.balance);
   w.FieldDouble("equity", m.equity);
   w.FieldString("currency", m.currency);
   w.Key("positions");
   w.BeginArray();
   for(int i = 0; i < ArraySize(m.positions); i++)
     {
      w.BeginObject();
      w.FieldULong("pos", m.positions[i].pos);
      w.FieldString("symbol", m.positions[i].symbol);
      w.FieldString("side", m.positions[i].side);
      w.FieldDouble("volume", m.positions[i].volume);
      w.FieldString("comment", m.positions[i].comment);
      w.EndObject();
     }
   w.EndArray();
   if(m.has_symbols) TbWriteSymbolList(w, m.symbols, 0, ArraySize(m.symbols));
   w.EndObject();
  }
bool TbReadState(const TbJsonReader &r, int o, TbState &m, string &error)
  {
   m.currency = "";
   if(!TbNeedDouble(r, o, "balance", m.balance, error) || !TbNeedDouble(r, o, "equity", m.equity, error) ||
      !TbOptString(r, o, "currency", m.currency, error))
      return false;
   int array = r.Find(o, "positions");
   if(array < 0 || r.Kind(array) != TB_JSON_ARRAY) { error = "field `positions`: missing or not an array"; return false; }
   int count = r.Count(array);
   ArrayResize(m.positions, count);
   for(int i = 0; i < count; i++)
     {
      int item = r.Element(array, i);
      m.positions[i].comment = "";
      if(!TbNeedULong(r, item, "pos", m.positions[i].pos, error) || !TbNeedString(r, item, "symbol", m.positions[i].symbol, error) ||
         !TbNeedWord(r, item, "side", TB_SIDES_ALL, m.positions[i].side, error) ||
         !TbNeedDouble(r, item, "volume", m.positions[i].volume, error) || !TbOptString(r, item, "comment", m.positions[i].comment, error))
        {
         error = "positions[" + IntegerToString(i) + "]." + error;
         return false;
        }
     }
   m.has_symbols = r.Find(o, "symbols") >= 0;
   if(!m.has_symbols) { ArrayResize(m.symbols, 0); return true; }
   return TbReadSymbolList(r, o, m.symbols, error);
  }

void TbWriteSymbols(TbJsonWriter &w, TB_CONST_ARRAY_PARAM(TbSymbolSpec, symbols), int start, int count)
  {
   w.BeginObject();
   w.FieldString("t", "symbols");
   TbWriteSymbolList(w, symbols, start, count);
   w.EndObject();
  }
bool TbReadSymbols(const TbJsonReader &r, int o, TbSymbols &m, string &error)
  {
   return TbReadSymbolList(r, o, m.symbols, error);
  }

//+------------------------------------------------------------------+
struct TbError
  {
   string            code;         // bad_message | unknown_type | ...
   string            msg;
  };
void TbWriteError(TbJsonWriter &w, const TbError &m)
  {
   w.BeginObject();
   w.FieldString("t", "error");
   w.FieldString("code", m.code);
   w.FieldString("msg", m.msg);
   w.EndObject();
  }
bool TbReadError(const TbJsonReader &r, int o, TbError &m, string &error)
  {
   m.msg = "";
   return TbNeedWord(r, o, "code", TB_ERROR_CODES, m.code, error) && TbOptString(r, o, "msg", m.msg, error);
  }

#endif
