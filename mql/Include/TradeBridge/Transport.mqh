//+------------------------------------------------------------------+
//| Transport.mqh: one TCP (MT5: or TLS) connection, non-blocking.   |
//+------------------------------------------------------------------+
// # Layout
// - MT5 (__MQL5__): the terminal's Socket* functions; wss:// through
//   SocketTlsHandshake / SocketTlsSend / SocketTlsReadAvailable. The
//   bridge's host must be in Tools > Options > Expert Advisors > "Allow
//   WebRequest for listed URL" or SocketConnect fails (error 4014).
//   The reference says a read "increases the dynamic array by the number
//   of read bytes", which does not say whether the bytes land at its start
//   or its end; every read goes into an emptied scratch array, so both
//   readings give the same bytes. On port 443 the terminal performs the
//   TLS handshake itself ("There is no need to call the function when
//   connecting to the port 443"): a certificate already there is taken
//   as TLS being up, and a failed second handshake is forgiven when it is.
// - MT4 (__MQL4__): Winsock through #import "ws2_32.dll" (needs "Allow DLL
//   imports"). The socket is switched to non-blocking (FIONBIO), gets
//   TCP_NODELAY (setsockopt), and the connect completes in later
//   PollConnect calls through select(), so the terminal never freezes on a
//   dead host.
//   32/64-bit: MT4 terminals are 32-bit processes, where a SOCKET
//   (UINT_PTR) is 32 bits, so it is held in an int and fd_set is an int
//   array {fd_count, fd_array[64]}; u_long arguments are 32-bit uint on
//   Windows in both widths. A 64-bit host would need 64-bit SOCKETs: the
//   MT4 code is not for one. MT4 has no TLS: run the bridge on localhost
//   or the LAN, or put stunnel/nginx in front (README).
// # Invariants
// - Send and Read never block: Read returns 0 when nothing has arrived,
//   -1 once the connection is gone; Send returns the bytes taken (maybe
//   0), or -1 on a dead connection.
#ifndef TRADEBRIDGE_TRANSPORT_MQH
#define TRADEBRIDGE_TRANSPORT_MQH

#include "Compat.mqh"

#ifdef __MQL5__
// Reads per Read call: enough to drain a burst, bounded so one timer call
// cannot spin on a socket that keeps answering 1 speculative byte.
#define TB_SOCKET_READS_PER_CALL 64

//+------------------------------------------------------------------+
class TbTransport
  {
private:
   // Terminal socket handle, or INVALID_HANDLE when closed.
   int               m_socket;
   // Scratch for one SocketRead; its bytes are appended to the caller's.
   TB_ARRAY(uchar, m_chunk);
   // True when the connection runs TLS (wss://).
   bool              m_tls;
public:
                     TbTransport(void) : m_socket(INVALID_HANDLE), m_tls(false) {}
                    ~TbTransport(void) { Close(); }
   bool              IsOpen(void) const { return m_socket != INVALID_HANDLE; }

   // Connects (blocking for at most `timeout_ms`, as SocketConnect does).
   bool              Connect(const string &host, uint port, bool tls, uint timeout_ms, string &error)
     {
      Close();
      ResetLastError();
      m_socket = SocketCreate();
      if(m_socket == INVALID_HANDLE) { error = "SocketCreate failed, error " + IntegerToString(GetLastError()); return false; }
      if(!SocketConnect(m_socket, host, port, timeout_ms))
        {
         int code = GetLastError();
         error = "cannot connect to " + host + ":" + IntegerToString(port) + ", error " + IntegerToString(code) +
                 (code == 4014 ? " (add the bridge to Tools > Options > Expert Advisors > allowed URLs)" : "");
         Close();
         return false;
        }
      m_tls = tls;
      if(tls && !TlsUp(host, port))
        {
         error = "TLS handshake with " + host + " failed, error " + IntegerToString(GetLastError());
         Close();
         return false;
        }
      return true;
     }
   // 1 connected, 0 still connecting, -1 failed; MT5 connects in Connect.
   int               PollConnect(string &error) { return IsOpen() ? 1 : -1; }

   int               Send(TB_CONST_ARRAY_PARAM(uchar, data), int count)
     {
      if(!IsOpen()) return -1;
      if(count <= 0) return 0;
      int sent = m_tls ? SocketTlsSend(m_socket, data, (uint)count) : SocketSend(m_socket, data, (uint)count);
      if(sent < 0) return SocketIsConnected(m_socket) ? 0 : -1;
      return sent;
     }

   int               Read(TB_ARRAY_PARAM(uchar, data), int bytes_max)
     {
      if(!IsOpen()) return -1;
      if(bytes_max <= 0) return 0;
      if(m_tls)
        {
         ArrayResize(m_chunk, 0);
         int got = SocketTlsReadAvailable(m_socket, m_chunk, (uint)bytes_max);
         if(got < 0) return -1;
         if(got == 0 && !SocketIsConnected(m_socket)) return -1;
         ArrayResize(data, 0, bytes_max);
         if(got > 0) ArrayCopy(data, m_chunk, 0, 0, got);
         return got;
        }
      // SocketIsReadable may answer 1 for an empty buffer (it defers the
      // check to the read), so each read gets a 1 ms timeout, not a wait,
      // and the count is asked again after each read: a speculative 1 must
      // not limit us to one byte per timer call.
      ArrayResize(data, 0, bytes_max);
      int total = 0;
      for(int pass = 0; pass < TB_SOCKET_READS_PER_CALL && total < bytes_max; pass++)
        {
         uint available = SocketIsReadable(m_socket);
         if(available == 0) break;
         if(available > (uint)(bytes_max - total)) available = (uint)(bytes_max - total);
         ArrayResize(m_chunk, 0);
         int read = SocketRead(m_socket, m_chunk, available, 1);
         if(read <= 0) break;
         ArrayCopy(data, m_chunk, total, 0, read);
         total += read;
        }
      if(total == 0 && !SocketIsConnected(m_socket)) return -1;
      return total;
     }

   void              Close(void)
     {
      if(m_socket != INVALID_HANDLE) SocketClose(m_socket);
      m_socket = INVALID_HANDLE;
     }

private:
   bool              HasCertificate(void)
     {
      string subject = "", issuer = "", serial = "", thumbprint = "";
      datetime expiration = 0;
      return SocketTlsCertificate(m_socket, subject, issuer, serial, thumbprint, expiration);
     }

   // TLS on the connected socket: the terminal's own on 443, else a
   // handshake (forgiven when it fails on a socket that turns out to run
   // TLS already).
   bool              TlsUp(const string &host, uint port)
     {
      if(port == 443 && HasCertificate()) return true;
      if(SocketTlsHandshake(m_socket, host)) return true;
      return HasCertificate();
     }
  };

#else
//+------------------------------------------------------------------+
#ifndef TB_HOST
#import "ws2_32.dll"
int  WSAStartup(int version_requested, uchar &data[]);
int  WSAGetLastError(void);
int  socket(int address_family, int type, int protocol);
int  connect(int s, uchar &name[], int name_length);
int  send(int s, uchar &buffer[], int length, int flags);
int  recv(int s, uchar &buffer[], int length, int flags);
int  closesocket(int s);
int  ioctlsocket(int s, int command, uint &argument);
int  setsockopt(int s, int level, int option, uchar &value[], int length);
int  select(int nfds, int &readfds[], int &writefds[], int &exceptfds[], int &timeout[]);
uint inet_addr(uchar &text[]);
#import
#endif

#define TB_WSA_VERSION_2_2   0x0202
#define TB_AF_INET           2
#define TB_SOCK_STREAM       1
#define TB_IPPROTO_TCP       6
#define TB_TCP_NODELAY       1
// FIONBIO is 0x8004667E; as a signed 32-bit int that is this value.
#define TB_FIONBIO           -2147195266
#define TB_INVALID_SOCKET    -1
#define TB_WSAEWOULDBLOCK    10035
#define TB_WSAEINPROGRESS    10036
#define TB_INADDR_NONE       0xFFFFFFFF
// WSADATA is about 400 bytes on 32-bit Windows; a larger buffer is harmless.
#define TB_WSADATA_BYTES     512

class TbTransport
  {
private:
   // Winsock SOCKET (32-bit in the 32-bit MT4 terminal), or TB_INVALID_SOCKET.
   int               m_socket;
   // True while a non-blocking connect is in flight.
   bool              m_connecting;
   // WSAStartup succeeded once in this EA instance.
   bool              m_started;
public:
                     TbTransport(void) : m_socket(TB_INVALID_SOCKET), m_connecting(false), m_started(false) {}
                    ~TbTransport(void) { Close(); }
   bool              IsOpen(void) const { return m_socket != TB_INVALID_SOCKET; }

   // Starts a non-blocking connect; PollConnect finishes it.
   bool              Connect(const string &host, uint port, bool tls, uint timeout_ms, string &error)
     {
      Close();
      if(tls) { error = "MT4 has no TLS: use ws:// to a bridge on localhost/LAN or a local stunnel/nginx"; return false; }
      if(!m_started)
        {
         TB_ARRAY(uchar, wsadata);
         ArrayResize(wsadata, TB_WSADATA_BYTES);
         if(WSAStartup(TB_WSA_VERSION_2_2, wsadata) != 0) { error = "WSAStartup failed (is 'Allow DLL imports' on?)"; return false; }
         m_started = true;
        }
      uint address = ResolveIpv4(host);
      if(address == TB_INADDR_NONE) { error = "MT4 needs an IPv4 address or 'localhost' in the URL, got '" + host + "'"; return false; }
      m_socket = socket(TB_AF_INET, TB_SOCK_STREAM, TB_IPPROTO_TCP);
      if(m_socket == TB_INVALID_SOCKET) { error = "socket() failed, WSA error " + IntegerToString(WSAGetLastError()); return false; }
      uint non_blocking = 1;
      if(ioctlsocket(m_socket, TB_FIONBIO, non_blocking) != 0) { error = "ioctlsocket(FIONBIO) failed, WSA error " + IntegerToString(WSAGetLastError()); Close(); return false; }
      // Winsock leaves Nagle's algorithm on: a small frame written right
      // after another would wait for the bridge's ACK of the first.
      TB_ARRAY(uchar, no_delay);
      ArrayResize(no_delay, 4);
      no_delay[0] = 1; no_delay[1] = 0; no_delay[2] = 0; no_delay[3] = 0;
      if(setsockopt(m_socket, TB_IPPROTO_TCP, TB_TCP_NODELAY, no_delay, 4) != 0)
         Print("TradeBridge: setsockopt(TCP_NODELAY) failed, WSA error ", IntegerToString(WSAGetLastError()), "; small frames may be delayed");
      TB_ARRAY(uchar, socket_address);
      BuildSocketAddress(socket_address, address, port);
      if(connect(m_socket, socket_address, 16) != 0)
        {
         int code = WSAGetLastError();
         if(code != TB_WSAEWOULDBLOCK && code != TB_WSAEINPROGRESS) { error = "connect() failed, WSA error " + IntegerToString(code); Close(); return false; }
        }
      m_connecting = true;
      return true;
     }

   // 1 connected, 0 still connecting, -1 failed (with `error`).
   int               PollConnect(string &error)
     {
      if(!IsOpen()) return -1;
      if(!m_connecting) return 1;
      TB_ARRAY(int, read_set);
      TB_ARRAY(int, write_set);
      TB_ARRAY(int, except_set);
      TB_ARRAY(int, timeout);
      ArrayResize(read_set, 65); ArrayResize(write_set, 65); ArrayResize(except_set, 65); ArrayResize(timeout, 2);
      read_set[0] = 0;
      write_set[0] = 1; write_set[1] = m_socket;
      except_set[0] = 1; except_set[1] = m_socket;
      timeout[0] = 0; timeout[1] = 0;
      int ready = select(0, read_set, write_set, except_set, timeout);
      if(ready < 0) { error = "select() failed, WSA error " + IntegerToString(WSAGetLastError()); Close(); return -1; }
      if(except_set[0] > 0) { error = "connection refused or unreachable"; Close(); return -1; }
      if(write_set[0] > 0) { m_connecting = false; return 1; }
      return 0;
     }

   int               Send(TB_ARRAY_PARAM(uchar, data), int count)
     {
      if(!IsOpen() || m_connecting) return IsOpen() ? 0 : -1;
      if(count <= 0) return 0;
      int sent = send(m_socket, data, count, 0);
      if(sent >= 0) return sent;
      return WSAGetLastError() == TB_WSAEWOULDBLOCK ? 0 : -1;
     }

   int               Read(TB_ARRAY_PARAM(uchar, data), int bytes_max)
     {
      if(!IsOpen()) return -1;
      if(m_connecting || bytes_max <= 0) return 0;
      ArrayResize(data, bytes_max);
      int got = recv(m_socket, data, bytes_max, 0);
      if(got > 0) { ArrayResize(data, got); return got; }
      ArrayResize(data, 0);
      // 0 is an orderly shutdown by the peer; WOULDBLOCK means no data yet.
      if(got == 0) return -1;
      return WSAGetLastError() == TB_WSAEWOULDBLOCK ? 0 : -1;
     }

   void              Close(void)
     {
      if(m_socket != TB_INVALID_SOCKET) closesocket(m_socket);
      m_socket = TB_INVALID_SOCKET;
      m_connecting = false;
     }

private:
   uint              ResolveIpv4(const string &host)
     {
      if(host == "localhost") return ResolveIpv4("127.0.0.1");
      TB_ARRAY(uchar, text);
      StringToCharArray(host, text, 0, -1, CP_ACP);
      return inet_addr(text);
     }

   // sockaddr_in: family (little-endian u16), port (big-endian), address
   // (already in network order from inet_addr), 8 zero bytes.
   void              BuildSocketAddress(TB_ARRAY_PARAM(uchar, out), uint address, uint port)
     {
      ArrayResize(out, 16);
      for(int i = 0; i < 16; i++) out[i] = 0;
      out[0] = (uchar)TB_AF_INET;
      out[2] = (uchar)((port >> 8) & 0xFF);
      out[3] = (uchar)(port & 0xFF);
      for(int i = 0; i < 4; i++) out[4 + i] = (uchar)((address >> (8 * i)) & 0xFF);
     }
  };
#endif

#endif
