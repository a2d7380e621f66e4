// shim_net.h: POSIX sockets behind the shim's MT5 Socket* functions and
// its MT4 ws2_32 imports (shim_net.cpp). Declared apart so the MT4 EA's
// translation unit, which declares Winsock's own `socket`, `connect`,
// `send`... never sees <sys/socket.h>.
#ifndef TRADEBRIDGE_SHIM_NET_H
#define TRADEBRIDGE_SHIM_NET_H

#include <cstdint>

// MT5 natives (see the MQL5 reference, Network functions).
int SocketCreate(uint flags = 0);
bool SocketClose(int socket);
bool SocketConnect(int socket, const MqlString &server, uint port, uint timeout_receive_ms);
bool SocketIsConnected(int socket);
uint SocketIsReadable(int socket);
int SocketSend(int socket, const MqlArray<uchar> &buffer, uint buffer_length);
int SocketRead(int socket, MqlArray<uchar> &buffer, uint buffer_maxlen, uint timeout_ms);
bool SocketTlsHandshake(int socket, const MqlString &host);
int SocketTlsSend(int socket, const MqlArray<uchar> &buffer, uint buffer_length);
int SocketTlsRead(int socket, MqlArray<uchar> &buffer, uint buffer_maxlen);
int SocketTlsReadAvailable(int socket, MqlArray<uchar> &buffer, uint buffer_maxlen);
bool SocketTlsCertificate(int socket, MqlString &subject, MqlString &issuer, MqlString &serial, MqlString &thumbprint,
                          datetime &expiration);

// Winsock emulation for the MT4 imports; error codes are WSA values.
int ShimWsSocket(int address_family, int type, int protocol);
int ShimWsConnect(int socket, const uint8_t *address, int length);
int ShimWsSend(int socket, const uint8_t *data, int length);
int ShimWsRecv(int socket, uint8_t *data, int length);
int ShimWsClose(int socket);
int ShimWsSetNonBlocking(int socket, bool non_blocking);
int ShimWsSetOption(int socket, int level, int option, const uint8_t *value, int length);
int ShimWsSelect(int *read_set, int *write_set, int *except_set, const int *timeout);
int ShimWsLastError();
uint32_t ShimInetAddr(const char *text);

// For tests, which cannot include <sys/socket.h> beside the Winsock names:
// whether Nagle's algorithm is off (TCP_NODELAY) on a socket; a loopback
// listener on a free port; this process's socket connected to `port`.
bool ShimSocketNoDelay(int socket);
int ShimTestListen(uint16_t &port);
int ShimTestSocketConnectedTo(uint16_t port);
void ShimTestClose(int socket);

#endif
