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
bool TbNeedULong(const TbJsonReader &reader, int object, const string &key, ulong &value, string &error)
  {
   if(reader.GetULong(object, key, value)) return true;
   error = "field `" + key + "`: " + (reader.Find(object, key) < 0 ? "missing" : "'" + reader.RawText(reader.Find(object, key)) + "' is not an unsigned 64-bit integer");
   return false;
  }
bool TbNeedDouble(const TbJsonReader &reader, int object, const string &key, double &value, string &error)
  {
   if(reader.GetDouble(object, key, value)) return true;
   error = "field `" + key + "`: " + (reader.Find(object, key) < 0 ? "missing" : "expected a number");
   return false;
  }
bool TbNeedString(const TbJsonReader &reader, int object, const string &key, string &value, string &error)
  {
   if(reader.GetString(object, key, value)) return true;
   error = "field `" + key + "`: " + (reader.Find(object, key) < 0 ? "missing" : "expected a string");
   return false;
  }
bool TbNeedWord(const TbJsonReader &reader, int object, const string &key, const string &allowed, string &value, string &error)
  {
   if(!TbNeedString(reader, object, key, value, error)) return false;
   if(TbOneOf(value, allowed)) return true;
   error = "field `" + key + "`: '" + value + "' is not one of " + allowed;
   return false;
  }
// Optional fields keep their default when absent; a wrong type is an error.
bool TbOptULong(const TbJsonReader &reader, int object, const string &key, ulong &value, string &error)
  {
   if(reader.Find(object, key) < 0) return true;
   return TbNeedULong(reader, object, key, value, error);
  }
bool TbOptDouble(const TbJsonReader &reader, int object, const string &key, double &value, string &error)
  {
   if(reader.Find(object, key) < 0) return true;
   return TbNeedDouble(reader, object, key, value, error);
  }
bool TbOptString(const TbJsonReader &reader, int object, const string &key, string &value, string &error)
  {
   if(reader.Find(object, key) < 0) return true;
   return TbNeedString(reader, object, key, value, error);
  }

// Type of the message in `object` ("" when `t` is missing).
string TbMessageType(const TbJsonReader &reader, int object)
  {
   string type = "";
   reader.GetString(object, "t", type);
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
void TbWriteHello(TbJsonWriter &writer, const TbHello &message)
  {
   writer.BeginObject();
   writer.FieldString("t", "hello");
   writer.FieldULong("v", message.version);
   writer.FieldString("key", message.key);
   writer.FieldULong("login", message.login);
   writer.FieldString("role", message.role);
   writer.FieldString("platform", message.platform);
   writer.FieldString("server", message.server);
   writer.FieldString("ea", message.ea);
   writer.FieldULong("last_seq", message.last_seq);
   writer.EndObject();
  }
bool TbReadHello(const TbJsonReader &reader, int object, TbHello &message, string &error)
  {
   ulong version = 0;
   message.last_seq = 0;
   message.platform = "";
   message.ea = "";
   if(!TbNeedULong(reader, object, "v", version, error)) return false;
   message.version = (uint)version;
   return TbNeedString(reader, object, "key", message.key, error) && TbNeedULong(reader, object, "login", message.login, error) &&
          TbNeedWord(reader, object, "role", TB_ROLES, message.role, error) && TbOptString(reader, object, "platform", message.platform, error) &&
          TbNeedString(reader, object, "server", message.server, error) && TbOptString(reader, object, "ea", message.ea, error) &&
          TbOptULong(reader, object, "last_seq", message.last_seq, error);
  }

//+------------------------------------------------------------------+
struct TbWelcome
  {
   uint              version;      // protocol version the bridge speaks
   string            session;      // bridge session id, for logs
   ulong             hb_ms;        // heartbeat period the EA must keep
   ulong             ack_seq;      // master: highest event seq held durably
   string            notice;       // for the user (the key expires soon); "" when none (not in PROTOCOL.md v1)
  };
void TbWriteWelcome(TbJsonWriter &writer, const TbWelcome &message)
  {
   writer.BeginObject();
   writer.FieldString("t", "welcome");
   writer.FieldULong("v", message.version);
   writer.FieldString("session", message.session);
   writer.FieldULong("hb_ms", message.hb_ms);
   writer.FieldULong("ack_seq", message.ack_seq);
   if(message.notice != "") writer.FieldString("notice", message.notice);
   writer.EndObject();
  }
bool TbReadWelcome(const TbJsonReader &reader, int object, TbWelcome &message, string &error)
  {
   ulong version = 0;
   message.ack_seq = 0;
   message.session = "";
   message.notice = "";
   if(!TbNeedULong(reader, object, "v", version, error)) return false;
   message.version = (uint)version;
   return TbOptString(reader, object, "session", message.session, error) && TbNeedULong(reader, object, "hb_ms", message.hb_ms, error) &&
          TbOptULong(reader, object, "ack_seq", message.ack_seq, error) && TbOptString(reader, object, "notice", message.notice, error);
  }

void TbWritePing(TbJsonWriter &writer) { writer.BeginObject(); writer.FieldString("t", "ping"); writer.EndObject(); }
void TbWritePong(TbJsonWriter &writer) { writer.BeginObject(); writer.FieldString("t", "pong"); writer.EndObject(); }

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
   void              CopyFrom(const TbEvent &other)
     {
      seq = other.seq; kind = other.kind; pos = other.pos; ticket = other.ticket; symbol = other.symbol; side = other.side;
      volume = other.volume; price = other.price; sl = other.sl; tp = other.tp; magic = other.magic; comment = other.comment;
      time_ms = other.time_ms; has_remaining = other.has_remaining; remaining = other.remaining;
     }
  };
void TbWriteEvent(TbJsonWriter &writer, const TbEvent &message)
  {
   writer.BeginObject();
   writer.FieldString("t", "event");
   writer.FieldULong("seq", message.seq);
   writer.FieldString("kind", message.kind);
   writer.FieldULong("pos", message.pos);
   writer.FieldULong("ticket", message.ticket);
   if(message.symbol != "") writer.FieldString("symbol", message.symbol);
   if(message.side != "") writer.FieldString("side", message.side);
   writer.FieldDouble("volume", message.volume);
   writer.FieldDouble("price", message.price);
   writer.FieldDouble("sl", message.sl);
   writer.FieldDouble("tp", message.tp);
   writer.FieldULong("magic", message.magic);
   writer.FieldString("comment", message.comment);
   writer.FieldULong("time_ms", message.time_ms);
   if(message.has_remaining) writer.FieldDouble("remaining", message.remaining);
   writer.EndObject();
  }
bool TbReadEvent(const TbJsonReader &reader, int object, TbEvent &message, string &error)
  {
   message.Clear();
   if(!TbNeedULong(reader, object, "seq", message.seq, error) || !TbNeedWord(reader, object, "kind", TB_EVENT_KINDS, message.kind, error) ||
      !TbNeedULong(reader, object, "pos", message.pos, error) || !TbOptULong(reader, object, "ticket", message.ticket, error))
      return false;
   bool opens = (message.kind == "open" || message.kind == "pending");
   if(opens && (!TbNeedString(reader, object, "symbol", message.symbol, error) || !TbNeedWord(reader, object, "side", TB_SIDES_ALL, message.side, error)))
      return false;
   if(!opens && (!TbOptString(reader, object, "symbol", message.symbol, error) || !TbOptString(reader, object, "side", message.side, error)))
      return false;
   if(message.side != "" && !TbOneOf(message.side, TB_SIDES_ALL)) { error = "field `side`: '" + message.side + "' is not one of " + TB_SIDES_ALL; return false; }
   message.has_remaining = reader.Find(object, "remaining") >= 0;
   return TbOptDouble(reader, object, "volume", message.volume, error) && TbOptDouble(reader, object, "price", message.price, error) &&
          TbOptDouble(reader, object, "sl", message.sl, error) && TbOptDouble(reader, object, "tp", message.tp, error) &&
          TbOptULong(reader, object, "magic", message.magic, error) && TbOptString(reader, object, "comment", message.comment, error) &&
          TbOptULong(reader, object, "time_ms", message.time_ms, error) && TbOptDouble(reader, object, "remaining", message.remaining, error);
  }

//+------------------------------------------------------------------+
struct TbAck
  {
   ulong             seq;          // event seq now durable in the bridge
  };
void TbWriteAck(TbJsonWriter &writer, const TbAck &message)
  {
   writer.BeginObject();
   writer.FieldString("t", "ack");
   writer.FieldULong("seq", message.seq);
   writer.EndObject();
  }
bool TbReadAck(const TbJsonReader &reader, int object, TbAck &message, string &error)
  {
   return TbNeedULong(reader, object, "seq", message.seq, error);
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
   void              CopyFrom(const TbPosition &other)
     {
      pos = other.pos; symbol = other.symbol; side = other.side; volume = other.volume; price = other.price; sl = other.sl; tp = other.tp;
      magic = other.magic; comment = other.comment;
     }
  };
struct TbSnapshot
  {
   TB_ARRAY(TbPosition, positions); // every open position of the master
   double            balance;
   double            equity;
   string            currency;
  };
void TbWriteSnapshot(TbJsonWriter &writer, const TbSnapshot &message)
  {
   writer.BeginObject();
   writer.FieldString("t", "snapshot");
   writer.Key("positions");
   writer.BeginArray();
   for(int i = 0; i < ArraySize(message.positions); i++)
     {
      writer.BeginObject();
      writer.FieldULong("pos", message.positions[i].pos);
      writer.FieldString("symbol", message.positions[i].symbol);
      writer.FieldString("side", message.positions[i].side);
      writer.FieldDouble("volume", message.positions[i].volume);
      writer.FieldDouble("price", message.positions[i].price);
      writer.FieldDouble("sl", message.positions[i].sl);
      writer.FieldDouble("tp", message.positions[i].tp);
      writer.FieldULong("magic", message.positions[i].magic);
      writer.FieldString("comment", message.positions[i].comment);
      writer.EndObject();
     }
   writer.EndArray();
   writer.FieldDouble("balance", message.balance);
   writer.FieldDouble("equity", message.equity);
   writer.FieldString("currency", message.currency);
   writer.EndObject();
  }
bool TbReadSnapshot(const TbJsonReader &reader, int object, TbSnapshot &message, string &error)
  {
   int array = reader.Find(object, "positions");
   if(array < 0 || reader.Kind(array) != TB_JSON_ARRAY) { error = "field `positions`: missing or not an array"; return false; }
   int count = reader.Count(array);
   ArrayResize(message.positions, count);
   for(int i = 0; i < count; i++)
     {
      int item = reader.Element(array, i);
      message.positions[i].magic = 0; message.positions[i].sl = 0; message.positions[i].tp = 0; message.positions[i].comment = "";
      if(!TbNeedULong(reader, item, "pos", message.positions[i].pos, error) || !TbNeedString(reader, item, "symbol", message.positions[i].symbol, error) ||
         !TbNeedWord(reader, item, "side", TB_SIDES_ALL, message.positions[i].side, error) ||
         !TbNeedDouble(reader, item, "volume", message.positions[i].volume, error) || !TbNeedDouble(reader, item, "price", message.positions[i].price, error) ||
         !TbOptDouble(reader, item, "sl", message.positions[i].sl, error) || !TbOptDouble(reader, item, "tp", message.positions[i].tp, error) ||
         !TbOptULong(reader, item, "magic", message.positions[i].magic, error) || !TbOptString(reader, item, "comment", message.positions[i].comment, error))
        {
         error = "positions[" + IntegerToString(i) + "]." + error;
         return false;
        }
     }
   message.currency = "";
   return TbNeedDouble(reader, object, "balance", message.balance, error) && TbNeedDouble(reader, object, "equity", message.equity, error) &&
          TbOptString(reader, object, "currency", message.currency, error);
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
   void              CopyFrom(const TbCopy &other)
     {
      seq = other.seq; id = other.id; master = other.master; pos = other.pos; action = other.action; symbol = other.symbol; side = other.side;
      volume = other.volume; price = other.price; max_dev = other.max_dev; sl = other.sl; tp = other.tp; magic = other.magic;
      comment = other.comment; expires_ms = other.expires_ms;
     }
  };
void TbWriteCopy(TbJsonWriter &writer, const TbCopy &message)
  {
   writer.BeginObject();
   writer.FieldString("t", "copy");
   writer.FieldULong("seq", message.seq);
   writer.FieldString("id", message.id);
   writer.FieldULong("master", message.master);
   writer.FieldULong("pos", message.pos);
   writer.FieldString("action", message.action);
   writer.FieldString("symbol", message.symbol);
   writer.FieldString("side", message.side);
   writer.FieldDouble("volume", message.volume);
   writer.FieldDouble("price", message.price);
   writer.FieldDouble("max_dev", message.max_dev);
   writer.FieldDouble("sl", message.sl);
   writer.FieldDouble("tp", message.tp);
   writer.FieldULong("magic", message.magic);
   writer.FieldString("comment", message.comment);
   writer.FieldULong("expires_ms", message.expires_ms);
   writer.EndObject();
  }
bool TbReadCopy(const TbJsonReader &reader, int object, TbCopy &message, string &error)
  {
   message.Clear();
   return TbNeedULong(reader, object, "seq", message.seq, error) && TbOptString(reader, object, "id", message.id, error) &&
          TbNeedULong(reader, object, "master", message.master, error) && TbNeedULong(reader, object, "pos", message.pos, error) &&
          TbNeedWord(reader, object, "action", TB_COPY_ACTIONS, message.action, error) && TbNeedString(reader, object, "symbol", message.symbol, error) &&
          TbNeedWord(reader, object, "side", TB_SIDES_ALL, message.side, error) && TbOptDouble(reader, object, "volume", message.volume, error) &&
          TbOptDouble(reader, object, "price", message.price, error) && TbOptDouble(reader, object, "max_dev", message.max_dev, error) &&
          TbOptDouble(reader, object, "sl", message.sl, error) && TbOptDouble(reader, object, "tp", message.tp, error) &&
          TbOptULong(reader, object, "magic", message.magic, error) && TbOptString(reader, object, "comment", message.comment, error) &&
          TbOptULong(reader, object, "expires_ms", message.expires_ms, error);
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
   void              CopyFrom(const TbResult &other)
     {
      seq = other.seq; status = other.status; ticket = other.ticket; price = other.price; volume = other.volume; error = other.error;
      msg = other.msg; exec_ms = other.exec_ms;
     }
  };
void TbWriteResult(TbJsonWriter &writer, const TbResult &message)
  {
   writer.BeginObject();
   writer.FieldString("t", "result");
   writer.FieldULong("seq", message.seq);
   writer.FieldString("status", message.status);
   writer.FieldULong("ticket", message.ticket);
   writer.FieldDouble("price", message.price);
   writer.FieldDouble("volume", message.volume);
   writer.FieldULong("error", message.error);
   writer.FieldString("msg", message.msg);
   writer.FieldULong("exec_ms", message.exec_ms);
   writer.EndObject();
  }
bool TbReadResult(const TbJsonReader &reader, int object, TbResult &message, string &error)
  {
   message.Clear();
   ulong code = 0;
   bool ok = TbNeedULong(reader, object, "seq", message.seq, error) && TbNeedWord(reader, object, "status", TB_RESULT_STATUS, message.status, error) &&
             TbOptULong(reader, object, "ticket", message.ticket, error) && TbOptDouble(reader, object, "price", message.price, error) &&
             TbOptDouble(reader, object, "volume", message.volume, error) && TbOptULong(reader, object, "error", code, error) &&
             TbOptString(reader, object, "msg", message.msg, error) && TbOptULong(reader, object, "exec_ms", message.exec_ms, error);
   if(ok && code > 0xFFFFFFFF) { error = "field `error`: " + TbULongToString(code) + " does not fit 32 bits"; return false; }
   message.error = (uint)code;
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
   void              CopyFrom(const TbStatePosition &other) { pos = other.pos; symbol = other.symbol; side = other.side; volume = other.volume; comment = other.comment; }
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

void TbWriteSymbolList(TbJsonWriter &writer, TB_CONST_ARRAY_PARAM(TbSymbolSpec, symbols), int start, int count)
  {
   writer.Key("symbols");
   writer.BeginArray();
   for(int i = start; i < start + count; i++)
     {
      writer.BeginObject();
      writer.FieldString("name", symbols[i].name);
      writer.FieldDouble("min", symbols[i].min);
      writer.FieldDouble("max", symbols[i].max);
      writer.FieldDouble("step", symbols[i].step);
      writer.FieldULong("digits", symbols[i].digits);
      writer.FieldDouble("contract", symbols[i].contract);
      writer.EndObject();
     }
   writer.EndArray();
  }
bool TbReadSymbolList(const TbJsonReader &reader, int object, TB_ARRAY_PARAM(TbSymbolSpec, symbols), string &error)
  {
   int array = reader.Find(object, "symbols");
   if(array < 0 || reader.Kind(array) != TB_JSON_ARRAY) { error = "field `symbols`: missing or not an array"; return false; }
   int count = reader.Count(array);
   ArrayResize(symbols, count);
   for(int i = 0; i < count; i++)
     {
      int item = reader.Element(array, i);
      ulong digits = 0;
      if(!TbNeedString(reader, item, "name", symbols[i].name, error) || !TbNeedDouble(reader, item, "min", symbols[i].min, error) ||
         !TbNeedDouble(reader, item, "max", symbols[i].max, error) || !TbNeedDouble(reader, item, "step", symbols[i].step, error) ||
         !TbNeedULong(reader, item, "digits", digits, error) || !TbNeedDouble(reader, item, "contract", symbols[i].contract, error))
        {
         error = "symbols[" + IntegerToString(i) + "]." + error;
         return false;
        }
      symbols[i].digits = (uint)digits;
     }
   return true;
  }

void TbWriteState(TbJsonWriter &writer, const TbState &message)
  {
   writer.BeginObject();
   writer.FieldString("t", "state");
   writer.FieldDouble("balance", message.balance);
   writer.FieldDouble("equity", message.equity);
   writer.FieldString("currency", message.currency);
   writer.Key("positions");
   writer.BeginArray();
   for(int i = 0; i < ArraySize(message.positions); i++)
     {
      writer.BeginObject();
      writer.FieldULong("pos", message.positions[i].pos);
      writer.FieldString("symbol", message.positions[i].symbol);
      writer.FieldString("side", message.positions[i].side);
      writer.FieldDouble("volume", message.positions[i].volume);
      writer.FieldString("comment", message.positions[i].comment);
      writer.EndObject();
     }
   writer.EndArray();
   if(message.has_symbols) TbWriteSymbolList(writer, message.symbols, 0, ArraySize(message.symbols));
   writer.EndObject();
  }
bool TbReadState(const TbJsonReader &reader, int object, TbState &message, string &error)
  {
   message.currency = "";
   if(!TbNeedDouble(reader, object, "balance", message.balance, error) || !TbNeedDouble(reader, object, "equity", message.equity, error) ||
      !TbOptString(reader, object, "currency", message.currency, error))
      return false;
   int array = reader.Find(object, "positions");
   if(array < 0 || reader.Kind(array) != TB_JSON_ARRAY) { error = "field `positions`: missing or not an array"; return false; }
   int count = reader.Count(array);
   ArrayResize(message.positions, count);
   for(int i = 0; i < count; i++)
     {
      int item = reader.Element(array, i);
      message.positions[i].comment = "";
      if(!TbNeedULong(reader, item, "pos", message.positions[i].pos, error) || !TbNeedString(reader, item, "symbol", message.positions[i].symbol, error) ||
         !TbNeedWord(reader, item, "side", TB_SIDES_ALL, message.positions[i].side, error) ||
         !TbNeedDouble(reader, item, "volume", message.positions[i].volume, error) || !TbOptString(reader, item, "comment", message.positions[i].comment, error))
        {
         error = "positions[" + IntegerToString(i) + "]." + error;
         return false;
        }
     }
   message.has_symbols = reader.Find(object, "symbols") >= 0;
   if(!message.has_symbols) { ArrayResize(message.symbols, 0); return true; }
   return TbReadSymbolList(reader, object, message.symbols, error);
  }

void TbWriteSymbols(TbJsonWriter &writer, TB_CONST_ARRAY_PARAM(TbSymbolSpec, symbols), int start, int count)
  {
   writer.BeginObject();
   writer.FieldString("t", "symbols");
   TbWriteSymbolList(writer, symbols, start, count);
   writer.EndObject();
  }
bool TbReadSymbols(const TbJsonReader &reader, int object, TbSymbols &message, string &error)
  {
   return TbReadSymbolList(reader, object, message.symbols, error);
  }

//+------------------------------------------------------------------+
struct TbError
  {
   string            code;         // bad_message | unknown_type | ...
   string            msg;
  };
void TbWriteError(TbJsonWriter &writer, const TbError &message)
  {
   writer.BeginObject();
   writer.FieldString("t", "error");
   writer.FieldString("code", message.code);
   writer.FieldString("msg", message.msg);
   writer.EndObject();
  }
bool TbReadError(const TbJsonReader &reader, int object, TbError &message, string &error)
  {
   message.msg = "";
   return TbNeedWord(reader, object, "code", TB_ERROR_CODES, message.code, error) && TbOptString(reader, object, "msg", message.msg, error);
  }

#endif
