//+------------------------------------------------------------------+
//| WebSocket.mqh: an RFC 6455 client that owns no socket.           |
//+------------------------------------------------------------------+
// # Layout
// - TbByteQueue: a bounded byte FIFO (append at the end, consume from the
//   front, compacted lazily) for the input and output sides.
// - TbWebSocket: the protocol engine. The caller moves bytes: it Feeds what
//   the socket read, calls Poll() for complete text messages, and sends
//   what CopyOutput() holds, then ConsumeOutput(sent). Nothing here blocks
//   or reads a clock, so every behaviour is tested without a network.
// # Invariants
// - Input never holds more than InputBytesMax(): the caller reads at most
//   InputSpace() bytes from the socket, so a slow consumer back-pressures
//   TCP instead of growing memory.
// - A message (all its fragments) is at most m_message_bytes_max bytes;
//   a larger one fails the connection with 1009, as the bridge does.
// - Every frame this client sends is masked with a fresh 4-byte key.
// - After a failure or a close, State() is TB_WS_CLOSED and nothing more
//   is parsed; only the queued close frame is still flushed.
#ifndef TRADEBRIDGE_WEBSOCKET_MQH
#define TRADEBRIDGE_WEBSOCKET_MQH

#include "Compat.mqh"
#include "Crypto.mqh"
#include "Text.mqh"

// A 101 response is a few hundred bytes; a server sending more headers
// than this is not one we want to talk to.
#define TB_WS_HANDSHAKE_BYTES_MAX 8192
// The bridge refuses frames above 16 KiB by default; incoming messages
// (copy, welcome, error) are far smaller, so 64 KiB leaves headroom
// for a bridge configured with a larger limit.
#define TB_WS_MESSAGE_BYTES_MAX_DEFAULT 65536
// Unsent output (events, a state, symbols) above this means the socket is
// not draining; the send is refused and the caller reconnects.
#define TB_WS_OUTPUT_BYTES_MAX_DEFAULT 1048576
// Largest frame header: 2 bytes, 8 bytes of length, 4 bytes of mask.
#define TB_WS_FRAME_HEADER_BYTES_MAX 14

#define TB_WS_IDLE       0
#define TB_WS_HANDSHAKE  1
#define TB_WS_OPEN       2
#define TB_WS_CLOSING    3
#define TB_WS_CLOSED     4

#define TB_WS_OPCODE_CONTINUATION 0x0
#define TB_WS_OPCODE_TEXT         0x1
#define TB_WS_OPCODE_BINARY       0x2
#define TB_WS_OPCODE_CLOSE        0x8
#define TB_WS_OPCODE_PING         0x9
#define TB_WS_OPCODE_PONG         0xA

#define TB_WS_CLOSE_NORMAL           1000
#define TB_WS_CLOSE_PROTOCOL_ERROR   1002
#define TB_WS_CLOSE_UNSUPPORTED_DATA 1003
#define TB_WS_CLOSE_NO_STATUS        1005
#define TB_WS_CLOSE_INVALID_PAYLOAD  1007
#define TB_WS_CLOSE_TOO_BIG          1009

class TbByteQueue
  {
private:
   // Bytes; the live ones are [m_start, ArraySize). Grows on Append,
   // shrinks when Consume moves m_start past half of it.
   TB_ARRAY(uchar, m_bytes);
   // Index of the first unconsumed byte; advances on Consume.
   int               m_start;
public:
                     TbByteQueue(void) : m_start(0) {}
   int               Size(void) const { return ArraySize(m_bytes) - m_start; }
   uchar             At(int index) const { return m_bytes[m_start + index]; }
   void              Clear(void) { ArrayFree(m_bytes); m_start = 0; }
   void              Append(TB_CONST_ARRAY_PARAM(uchar, data), int offset, int count)
     {
      int size = ArraySize(m_bytes);
      ArrayResize(m_bytes, size + count, 4096);
      for(int i = 0; i < count; i++)
         m_bytes[size + i] = data[offset + i];
     }
   void              AppendByte(uchar value)
     {
      int size = ArraySize(m_bytes);
      ArrayResize(m_bytes, size + 1, 4096);
      m_bytes[size] = value;
     }
   void              Consume(int count)
     {
      if(count > Size()) count = Size();
      m_start += count;
      // Compact once the consumed prefix dominates, so consumption is
      // amortised O(1) per byte and memory stays near the live size.
      if(m_start > 0 && m_start * 2 >= ArraySize(m_bytes))
        {
         int live = Size();
         ArrayCopy(m_bytes, m_bytes, 0, m_start, live);
         ArrayResize(m_bytes, live);
         m_start = 0;
        }
     }
   // Copies `count` live bytes starting at `index` into `out` (resized).
   void              CopyTo(TB_ARRAY_PARAM(uchar, out), int index, int count) const
     {
      ArrayResize(out, count);
      for(int i = 0; i < count; i++)
         out[i] = m_bytes[m_start + index + i];
     }
  };

class TbWebSocket
  {
private:
   // TB_WS_*; moves IDLE -> HANDSHAKE -> OPEN -> (CLOSING) -> CLOSED.
   int               m_state;
   // Bytes read from the socket and not yet parsed.
   TbByteQueue       m_input;
   // Bytes to send (handshake, frames) not yet accepted by the socket.
   TbByteQueue       m_output;
   // Reassembly of a fragmented text message; reset when it completes.
   TB_ARRAY(uchar, m_message);
   // True between a non-final text frame and its final continuation.
   bool              m_fragmented;
   // Limits, set by Configure before Start.
   int               m_message_bytes_max;
   int               m_output_bytes_max;
   // Sec-WebSocket-Key sent in this handshake, and the accept it implies.
   string            m_key;
   string            m_expected_accept;
   // Close code received from the peer or raised by a failure; 0 while open.
   int               m_close_code;
   // Why the connection failed, for the log; "" when it did not.
   string            m_failure;
   // Counts for the log and tests; only increase.
   int               m_pings_answered;
   int               m_pongs_received;
   // Source of keys and masks.
   TbRandom          m_random;

public:
                     TbWebSocket(void) : m_state(TB_WS_IDLE), m_fragmented(false),
                     m_message_bytes_max(TB_WS_MESSAGE_BYTES_MAX_DEFAULT),
                     m_output_bytes_max(TB_WS_OUTPUT_BYTES_MAX_DEFAULT),
                     m_close_code(0), m_pings_answered(0), m_pongs_received(0) {}

   void              Configure(int message_bytes_max, int output_bytes_max)
     {
      m_message_bytes_max = message_bytes_max;
      m_output_bytes_max = output_bytes_max;
     }
   void              Seed(ulong seed) { m_random.Seed(seed); }
   int               State(void) const { return m_state; }
   int               CloseCode(void) const { return m_close_code; }
   string            Failure(void) const { return m_failure; }
   string            Key(void) const { return m_key; }
   int               PingsAnswered(void) const { return m_pings_answered; }
   int               PongsReceived(void) const { return m_pongs_received; }
   int               InputBytesMax(void) const { return m_message_bytes_max + TB_WS_HANDSHAKE_BYTES_MAX; }
   int               InputSpace(void) const { return InputBytesMax() - m_input.Size(); }
   int               OutputSize(void) const { return m_output.Size(); }

   // Begins the opening handshake: queues the HTTP upgrade request.
   void              Start(const string &host, uint port, const string &path)
     {
      m_input.Clear();
      m_output.Clear();
      ArrayFree(m_message);
      m_fragmented = false;
      m_close_code = 0;
      m_failure = "";
      TB_ARRAY(uchar, nonce);
      ArrayResize(nonce, 16);
      for(int i = 0; i < 16; i++)
         nonce[i] = m_random.NextByte();
      m_key = TbBase64Encode(nonce, 16);
      m_expected_accept = TbWebSocketAccept(m_key);
      string request = "GET " + path + " HTTP/1.1\r\n" +
                       "Host: " + host + ":" + IntegerToString(port) + "\r\n" +
                       "Upgrade: websocket\r\n" +
                       "Connection: Upgrade\r\n" +
                       "Sec-WebSocket-Key: " + m_key + "\r\n" +
                       "Sec-WebSocket-Version: 13\r\n\r\n";
      AppendAscii(m_output, request);
      m_state = TB_WS_HANDSHAKE;
     }

   // Adds bytes read from the socket. More than InputSpace() is a caller
   // bug; it fails the connection rather than growing without bound.
   bool              Feed(TB_CONST_ARRAY_PARAM(uchar, data), int count)
     {
      if(m_state == TB_WS_CLOSED || m_state == TB_WS_IDLE) return false;
      if(count > InputSpace())
        {
         Fail(TB_WS_CLOSE_TOO_BIG, "input of " + IntegerToString(count) + " bytes exceeds the free space of " +
              IntegerToString(InputSpace()));
         return false;
        }
      m_input.Append(data, 0, count);
      return true;
     }

   // Parses what has arrived. Returns true with one complete text message
   // in `message`; false when more bytes are needed or the state changed.
   bool              Poll(TB_ARRAY_PARAM(uchar, message))
     {
      if(m_state == TB_WS_HANDSHAKE && !ParseHandshake()) return false;
      // Bounded: each pass consumes one whole frame or returns.
      while(m_state == TB_WS_OPEN || m_state == TB_WS_CLOSING)
        {
         int result = ParseFrame(message);
         if(result == 1) return true;
         if(result == 0) return false;
        }
      return false;
     }

   bool              SendText(const string &text)
     {
      TB_ARRAY(uchar, bytes);
      int count = StringToCharArray(text, bytes, 0, -1, CP_UTF8) - 1;
      return SendFrame(TB_WS_OPCODE_TEXT, bytes, count);
     }
   bool              SendTextBytes(TB_CONST_ARRAY_PARAM(uchar, bytes), int count)
     {
      return SendFrame(TB_WS_OPCODE_TEXT, bytes, count);
     }
   bool              SendPing(void)
     {
      TB_ARRAY(uchar, empty);
      return SendFrame(TB_WS_OPCODE_PING, empty, 0);
     }

   // Starts the closing handshake (we speak first); the peer's close
   // frame then moves the state to CLOSED.
   void              Close(int code, const string &reason)
     {
      if(m_state == TB_WS_HANDSHAKE || m_state == TB_WS_IDLE)
        {
         m_state = TB_WS_CLOSED;
         m_close_code = code;
         return;
        }
      if(m_state != TB_WS_OPEN) return;
      QueueClose(code, reason);
      m_state = TB_WS_CLOSING;
     }

   // The socket died under us: no close frame can be sent any more.
   void              Abort(const string &why)
     {
      if(m_state != TB_WS_CLOSED && m_failure == "") m_failure = why;
      m_state = TB_WS_CLOSED;
      m_output.Clear();
     }

   // Copies every pending output byte; the caller sends what it can and
   // reports it with ConsumeOutput.
   int               CopyOutput(TB_ARRAY_PARAM(uchar, out)) const
     {
      int count = m_output.Size();
      m_output.CopyTo(out, 0, count);
      return count;
     }
   void              ConsumeOutput(int count) { m_output.Consume(count); }

private:
   void              AppendAscii(TbByteQueue &queue, const string &text)
     {
      TB_ARRAY(uchar, bytes);
      int count = StringToCharArray(text, bytes, 0, -1, CP_UTF8) - 1;
      queue.Append(bytes, 0, count);
     }

   void              Fail(int code, const string &why)
     {
      if(m_state == TB_WS_CLOSED) return;
      m_failure = why;
      m_close_code = code;
      if(m_state == TB_WS_OPEN) QueueClose(code, "");
      m_state = TB_WS_CLOSED;
     }

   void              QueueClose(int code, const string &reason)
     {
      TB_ARRAY(uchar, payload);
      int count = StringToCharArray(reason, payload, 2, -1, CP_UTF8) + 1;
      // A close reason must fit a control frame (125 bytes with the code).
      if(count > 125) count = 125;
      ArrayResize(payload, count);
      payload[0] = (uchar)((code >> 8) & 0xFF);
      payload[1] = (uchar)(code & 0xFF);
      WriteFrame(TB_WS_OPCODE_CLOSE, payload, count);
     }

   bool              SendFrame(int opcode, TB_CONST_ARRAY_PARAM(uchar, payload), int count)
     {
      if(m_state != TB_WS_OPEN) return false;
      if(count > m_message_bytes_max) return false;
      if(m_output.Size() + count + TB_WS_FRAME_HEADER_BYTES_MAX > m_output_bytes_max) return false;
      WriteFrame(opcode, payload, count);
      return true;
     }

   // Writes one final, masked frame (RFC 6455 section 5.2) to the output.
   void              WriteFrame(int opcode, TB_CONST_ARRAY_PARAM(uchar, payload), int count)
     {
      m_output.AppendByte((uchar)(0x80 | opcode));
      if(count <= 125)
         m_output.AppendByte((uchar)(0x80 | count));
      else if(count <= 65535)
        {
         m_output.AppendByte((uchar)(0x80 | 126));
         m_output.AppendByte((uchar)((count >> 8) & 0xFF));
         m_output.AppendByte((uchar)(count & 0xFF));
        }
      else
        {
         m_output.AppendByte((uchar)(0x80 | 127));
         for(int i = 7; i >= 0; i--)
            m_output.AppendByte((uchar)((((ulong)count) >> (8 * i)) & 0xFF));
        }
      TB_ARRAY(uchar, masked);
      ArrayResize(masked, count + 4);
      for(int i = 0; i < 4; i++)
         masked[i] = m_random.NextByte();
      for(int i = 0; i < count; i++)
         masked[4 + i] = (uchar)(payload[i] ^ masked[i % 4]);
      m_output.Append(masked, 0, count + 4);
     }

   // Index just past the "\r\n\r\n" that ends the response headers, or -1.
   int               FindHeaderEnd(void) const
     {
      int size = m_input.Size();
      for(int i = 3; i < size; i++)
         if(m_input.At(i) == '\n' && m_input.At(i - 1) == '\r' && m_input.At(i - 2) == '\n' && m_input.At(i - 3) == '\r')
            return i + 1;
      return -1;
     }

   bool              ParseHandshake(void)
     {
      int end = FindHeaderEnd();
      if(end < 0)
        {
         if(m_input.Size() > TB_WS_HANDSHAKE_BYTES_MAX)
            Fail(TB_WS_CLOSE_PROTOCOL_ERROR, "handshake response longer than " + IntegerToString(TB_WS_HANDSHAKE_BYTES_MAX) + " bytes");
         return false;
        }
      TB_ARRAY(uchar, head);
      m_input.CopyTo(head, 0, end);
      m_input.Consume(end);
      string text = CharArrayToString(head, 0, end, CP_UTF8);
      string problem = CheckHandshake(text);
      if(problem != "")
        {
         Fail(TB_WS_CLOSE_PROTOCOL_ERROR, problem);
         return false;
        }
      m_state = TB_WS_OPEN;
      return true;
     }

   // "" when the response accepts our upgrade; else what is wrong.
   string            CheckHandshake(const string &text)
     {
      int line_end = StringFind(text, "\r\n");
      string status = StringSubstr(text, 0, line_end);
      if(StringFind(status, "HTTP/1.1 101") != 0)
         return "handshake status line is '" + status + "', expected 'HTTP/1.1 101'";
      string upgrade = "", connection = "", accept = "", extensions = "";
      int position = line_end + 2;
      // Bounded by the header size limit: each pass consumes one line.
      while(position < StringLen(text))
        {
         int next = StringFind(text, "\r\n", position);
         if(next < 0 || next == position) break;
         string line = StringSubstr(text, position, next - position);
         position = next + 2;
         int colon = StringFind(line, ":");
         if(colon <= 0) continue;
         string name = StringSubstr(line, 0, colon);
         StringToLower(name);
         string value = TbTrimSpaces(StringSubstr(line, colon + 1));
         if(name == "upgrade") upgrade = value;
         else if(name == "connection") connection = value;
         else if(name == "sec-websocket-accept") accept = value;
         else if(name == "sec-websocket-extensions") extensions = value;
        }
      StringToLower(upgrade);
      StringToLower(connection);
      if(upgrade != "websocket") return "Upgrade header is '" + upgrade + "', expected 'websocket'";
      if(StringFind(connection, "upgrade") < 0) return "Connection header is '" + connection + "', expected 'Upgrade'";
      if(accept != m_expected_accept)
         return "Sec-WebSocket-Accept is '" + accept + "', expected '" + m_expected_accept + "'";
      if(extensions != "") return "server chose extensions '" + extensions + "' that we did not offer";
      return "";
     }

   // 1: a message is in `message`; 0: need more bytes; -1: a frame was
   // handled (control frame or fragment) and parsing may go on.
   int               ParseFrame(TB_ARRAY_PARAM(uchar, message))
     {
      int available = m_input.Size();
      if(available < 2) return 0;
      int first = m_input.At(0), second = m_input.At(1);
      bool is_final = (first & 0x80) != 0;
      int opcode = first & 0x0F;
      int header = 2;
      int length7 = second & 0x7F;
      if(length7 == 126) header += 2;
      if(length7 == 127) header += 8;
      if((first & 0x70) != 0) { Fail(TB_WS_CLOSE_PROTOCOL_ERROR, "frame has reserved bits set without an extension"); return 0; }
      if((second & 0x80) != 0) { Fail(TB_WS_CLOSE_PROTOCOL_ERROR, "server frame is masked; RFC 6455 forbids it"); return 0; }
      if(available < header) return 0;
      ulong length = (ulong)length7;
      if(length7 == 126) length = ((ulong)m_input.At(2) << 8) | (ulong)m_input.At(3);
      if(length7 == 127)
        {
         length = 0;
         for(int i = 0; i < 8; i++)
            length = (length << 8) | (ulong)m_input.At(2 + i);
        }
      if(length > (ulong)m_message_bytes_max)
        {
         Fail(TB_WS_CLOSE_TOO_BIG, "frame payload of " + TbULongToString(length) + " bytes exceeds the limit of " +
              IntegerToString(m_message_bytes_max));
         return 0;
        }
      if(available < header + (int)length) return 0;
      TB_ARRAY(uchar, payload);
      m_input.CopyTo(payload, header, (int)length);
      m_input.Consume(header + (int)length);
      return HandleFrame(is_final, opcode, payload, (int)length, message);
     }

   int               HandleFrame(bool is_final, int opcode, TB_ARRAY_PARAM(uchar, payload), int length, TB_ARRAY_PARAM(uchar, message))
     {
      if(opcode >= 0x8)
         return HandleControl(is_final, opcode, payload, length);
      if(opcode == TB_WS_OPCODE_BINARY)
        {
         Fail(TB_WS_CLOSE_UNSUPPORTED_DATA, "binary frame received; the protocol speaks text only");
         return 0;
        }
      if(opcode == TB_WS_OPCODE_TEXT && m_fragmented) { Fail(TB_WS_CLOSE_PROTOCOL_ERROR, "text frame inside a fragmented message"); return 0; }
      if(opcode == TB_WS_OPCODE_CONTINUATION && !m_fragmented) { Fail(TB_WS_CLOSE_PROTOCOL_ERROR, "continuation frame without a message"); return 0; }
      if(opcode != TB_WS_OPCODE_TEXT && opcode != TB_WS_OPCODE_CONTINUATION)
        {
         Fail(TB_WS_CLOSE_PROTOCOL_ERROR, "unknown opcode " + IntegerToString(opcode));
         return 0;
        }
      if(opcode == TB_WS_OPCODE_TEXT) ArrayFree(m_message);
      int size = ArraySize(m_message);
      if(size + length > m_message_bytes_max)
        {
         Fail(TB_WS_CLOSE_TOO_BIG, "fragmented message of " + IntegerToString(size + length) + " bytes exceeds the limit of " +
              IntegerToString(m_message_bytes_max));
         return 0;
        }
      ArrayCopy(m_message, payload, size, 0, length);
      m_fragmented = !is_final;
      if(!is_final) return -1;
      int total = ArraySize(m_message);
      if(!TbUtf8Valid(m_message, total)) { Fail(TB_WS_CLOSE_INVALID_PAYLOAD, "text message is not valid UTF-8"); return 0; }
      ArrayFree(message);
      ArrayCopy(message, m_message, 0, 0, total);
      ArrayFree(m_message);
      // A close received earlier finishes the state once data is drained.
      return 1;
     }

   int               HandleControl(bool is_final, int opcode, TB_ARRAY_PARAM(uchar, payload), int length)
     {
      if(!is_final || length > 125) { Fail(TB_WS_CLOSE_PROTOCOL_ERROR, "control frame fragmented or longer than 125 bytes"); return 0; }
      if(opcode == TB_WS_OPCODE_PING)
        {
         if(m_state == TB_WS_OPEN) WriteFrame(TB_WS_OPCODE_PONG, payload, length);
         m_pings_answered++;
         return -1;
        }
      if(opcode == TB_WS_OPCODE_PONG) { m_pongs_received++; return -1; }
      if(opcode != TB_WS_OPCODE_CLOSE) { Fail(TB_WS_CLOSE_PROTOCOL_ERROR, "unknown control opcode " + IntegerToString(opcode)); return 0; }
      int code = TB_WS_CLOSE_NO_STATUS;
      if(length >= 2) code = ((int)payload[0] << 8) | (int)payload[1];
      if(length == 1) { Fail(TB_WS_CLOSE_PROTOCOL_ERROR, "close frame with a 1-byte payload"); return 0; }
      // Echo the code (RFC 6455 section 5.5.1) unless we spoke first.
      if(m_state == TB_WS_OPEN) QueueClose(code == TB_WS_CLOSE_NO_STATUS ? TB_WS_CLOSE_NORMAL : code, "");
      m_close_code = code;
      if(length > 2) m_failure = "peer closed: " + CharArrayToString(payload, 2, length - 2, CP_UTF8);
      m_state = TB_WS_CLOSED;
      return 0;
     }
  };

#endif
