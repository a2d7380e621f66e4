// shim_net.cpp: the shim's sockets on POSIX.
//
// # Layout
// - MT5 Socket*: blocking connect with a timeout (as SocketConnect), then
//   non-blocking I/O; SocketIsReadable is FIONREAD, or a speculative 1 for
//   an empty buffer as in MQL5. Reads append to the caller's dynamic array
//   ("Dynamic array size is increased by the number of read bytes"), the
//   stricter of the reference's two readings. Sockets keep Nagle's
//   algorithm on: MQL5 has no way to turn it off.
// - TLS through OpenSSL: SocketTlsHandshake, SocketTlsSend / Read /
//   ReadAvailable, SocketTlsCertificate. A connect to the terminal's
//   tls_implicit_port (443) does the handshake itself, as MT5 does; a second
//   handshake on such a socket fails. The peer's certificate is not
//   verified (what MT5 verifies against is not documented).
// - Winsock emulation for MT4: handles are file descriptors, errno maps to
//   WSA codes (EAGAIN/EINPROGRESS -> WSAEWOULDBLOCK), fd_set is the int
//   array {count, fd...} a 32-bit MT4 passes, select() runs on poll();
//   setsockopt passes IPPROTO_TCP / TCP_NODELAY through.
// # Invariants
// - No call blocks longer than its timeout argument.
#define TB_SHIM_IMPLEMENTATION
#include "mql_shim.h"
#include "shim_net.h"

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <map>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

void ShimSetLastError(int code);

static bool SetNonBlocking(int fd, bool non_blocking) {
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0) return false;
    flags = non_blocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, flags) == 0;
}

// The TLS session of each socket that has one.
static std::map<int, SSL *> g_tls;
// Bound on a TLS handshake, as SocketConnect's own timeout bounds a connect.
static const int kTlsHandshakeTimeoutMs = 5000;

static SSL *TlsOf(int socket) {
    auto found = g_tls.find(socket);
    return found == g_tls.end() ? nullptr : found->second;
}

static SSL_CTX *TlsContext() {
    static SSL_CTX *context = nullptr;
    if (context == nullptr) {
        context = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
        SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nullptr);
        SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    }
    return context;
}

// Runs the client handshake on the non-blocking socket, waiting at most
// kTlsHandshakeTimeoutMs in total.
static bool TlsConnect(int socket, const std::string &host) {
    SSL *tls = SSL_new(TlsContext());
    SSL_set_fd(tls, socket);
    SSL_set_tlsext_host_name(tls, host.c_str());
    for (int waited_ms = 0; waited_ms <= kTlsHandshakeTimeoutMs; waited_ms += 10) {
        int status = SSL_connect(tls);
        if (status == 1) {
            g_tls[socket] = tls;
            return true;
        }
        int reason = SSL_get_error(tls, status);
        if (reason != SSL_ERROR_WANT_READ && reason != SSL_ERROR_WANT_WRITE) break;
        pollfd waiter{socket, (short)(reason == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), 0};
        ::poll(&waiter, 1, 10);
    }
    ERR_clear_error();
    SSL_free(tls);
    return false;
}

// Windows has no SIGPIPE: a write to a connection the peer closed fails
// with an error there, and OpenSSL's writes must not kill the host.
static void IgnoreBrokenPipes() {
    static bool ignored = false;
    if (!ignored) signal(SIGPIPE, SIG_IGN);
    ignored = true;
}

int SocketCreate(uint flags) {
    (void)flags;
    IgnoreBrokenPipes();
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        ShimSetLastError(ERR_NETSOCKET_TOO_MANY_OPENED);
        return INVALID_HANDLE;
    }
    return fd;
}

bool SocketClose(int socket) {
    SSL *tls = TlsOf(socket);
    if (tls != nullptr) {
        SSL_free(tls);
        g_tls.erase(socket);
    }
    return socket >= 0 && ::close(socket) == 0;
}

// Appends `count` bytes to a dynamic array, as MQL5's socket reads grow it.
static void AppendBytes(MqlArray<uchar> &buffer, const uint8_t *data, size_t count) {
    buffer.items.insert(buffer.items.end(), data, data + count);
}

bool SocketConnect(int socket, const MqlString &server, uint port, uint timeout_receive_ms) {
    addrinfo hints{}, *found = nullptr;
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(server.Utf8().c_str(), std::to_string(port).c_str(), &hints, &found) != 0 || found == nullptr) {
        ShimSetLastError(ERR_NETSOCKET_CANNOT_CONNECT);
        return false;
    }
    SetNonBlocking(socket, true);
    int status = ::connect(socket, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    if (status != 0 && errno != EINPROGRESS) {
        ShimSetLastError(ERR_NETSOCKET_CANNOT_CONNECT);
        return false;
    }
    pollfd waiter{socket, POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof error;
    if (::poll(&waiter, 1, (int)timeout_receive_ms) != 1 || getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length) != 0 ||
        error != 0) {
        ShimSetLastError(ERR_NETSOCKET_CANNOT_CONNECT);
        return false;
    }
    if (g_terminal != nullptr && port == g_terminal->tls_implicit_port && !TlsConnect(socket, server.Utf8())) {
        ShimSetLastError(ERR_NETSOCKET_HANDSHAKE_FAILED);
        return false;
    }
    return true;
}

bool SocketIsConnected(int socket) {
    if (socket < 0) return false;
    char byte;
    ssize_t peeked = ::recv(socket, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (peeked == 0) return false;
    if (peeked < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    return true;
}

uint SocketIsReadable(int socket) {
    int available = 0;
    if (socket < 0 || ioctl(socket, FIONREAD, &available) != 0) {
        ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
        return 0;
    }
    // MQL5 answers a speculative 1 for an empty buffer and leaves the real
    // check to the next read; the shim does the same so the EA's code is
    // tested against it.
    return available == 0 ? 1u : (uint)available;
}

int SocketSend(int socket, const MqlArray<uchar> &buffer, uint buffer_length) {
    if (buffer_length > buffer.items.size()) buffer_length = (uint)buffer.items.size();
    ssize_t sent = ::send(socket, buffer.items.data(), buffer_length, MSG_NOSIGNAL);
    if (sent < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
        return -1;
    }
    return (int)sent;
}

int SocketRead(int socket, MqlArray<uchar> &buffer, uint buffer_maxlen, uint timeout_ms) {
    pollfd waiter{socket, POLLIN, 0};
    if (::poll(&waiter, 1, (int)timeout_ms) != 1) return -1;
    std::vector<uint8_t> bytes(buffer_maxlen);
    ssize_t got = ::recv(socket, bytes.data(), buffer_maxlen, MSG_DONTWAIT);
    if (got <= 0) {
        ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
        return -1;
    }
    AppendBytes(buffer, bytes.data(), (size_t)got);
    return (int)got;
}

bool SocketTlsHandshake(int socket, const MqlString &host) {
    // A socket that already runs TLS (the implicit handshake on 443)
    // cannot start another one.
    if (socket < 0 || TlsOf(socket) != nullptr || !TlsConnect(socket, host.Utf8())) {
        ShimSetLastError(ERR_NETSOCKET_HANDSHAKE_FAILED);
        return false;
    }
    return true;
}

bool SocketTlsCertificate(int socket, MqlString &subject, MqlString &issuer, MqlString &serial, MqlString &thumbprint,
                          datetime &expiration) {
    SSL *tls = TlsOf(socket);
    X509 *certificate = tls == nullptr ? nullptr : SSL_get1_peer_certificate(tls);
    if (certificate == nullptr) {
        ShimSetLastError(ERR_NETSOCKET_NO_CERTIFICATE);
        return false;
    }
    char text[512];
    X509_NAME_oneline(X509_get_subject_name(certificate), text, sizeof text);
    subject = MqlString(text);
    X509_NAME_oneline(X509_get_issuer_name(certificate), text, sizeof text);
    issuer = MqlString(text);
    serial = MqlString(std::to_string(ASN1_INTEGER_get(X509_get_serialNumber(certificate))));
    thumbprint = MqlString("");
    expiration = 0;
    X509_free(certificate);
    return true;
}

int SocketTlsSend(int socket, const MqlArray<uchar> &buffer, uint buffer_length) {
    SSL *tls = TlsOf(socket);
    if (tls == nullptr) {
        ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
        return -1;
    }
    if (buffer_length > buffer.items.size()) buffer_length = (uint)buffer.items.size();
    if (buffer_length == 0) return 0;
    int sent = SSL_write(tls, buffer.items.data(), (int)buffer_length);
    if (sent > 0) return sent;
    int reason = SSL_get_error(tls, sent);
    if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) return 0;
    ERR_clear_error();
    ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
    return -1;
}

// Reads what the TLS session has without waiting: -1 once the connection
// is gone, else the bytes appended (maybe 0).
static int TlsReadNow(SSL *tls, MqlArray<uchar> &buffer, uint buffer_maxlen) {
    std::vector<uint8_t> bytes(buffer_maxlen);
    size_t total = 0;
    while (total < buffer_maxlen) {
        int got = SSL_read(tls, bytes.data() + total, (int)(buffer_maxlen - total));
        if (got > 0) {
            total += (size_t)got;
            continue;
        }
        int reason = SSL_get_error(tls, got);
        if (reason == SSL_ERROR_WANT_READ || reason == SSL_ERROR_WANT_WRITE) break;
        ERR_clear_error();
        if (total > 0) break;
        ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
        return -1;
    }
    AppendBytes(buffer, bytes.data(), total);
    return (int)total;
}

int SocketTlsReadAvailable(int socket, MqlArray<uchar> &buffer, uint buffer_maxlen) {
    SSL *tls = TlsOf(socket);
    if (tls == nullptr) {
        ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
        return -1;
    }
    return TlsReadNow(tls, buffer, buffer_maxlen);
}

int SocketTlsRead(int socket, MqlArray<uchar> &buffer, uint buffer_maxlen) {
    SSL *tls = TlsOf(socket);
    if (tls == nullptr) {
        ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
        return -1;
    }
    // Blocks like the terminal's (for up to its default receive timeout).
    pollfd waiter{socket, POLLIN, 0};
    if (SSL_pending(tls) == 0 && ::poll(&waiter, 1, 1000) != 1) return 0;
    return TlsReadNow(tls, buffer, buffer_maxlen);
}

//--------------------------------------------------------------------
// Winsock emulation
//--------------------------------------------------------------------
static int g_wsa_error = 0;
static const int kWsaWouldBlock = 10035;
static const int kWsaConnectionRefused = 10061;
static const int kWsaConnectionReset = 10054;

static int WsaFromErrno(int error) {
    if (error == EAGAIN || error == EWOULDBLOCK || error == EINPROGRESS) return kWsaWouldBlock;
    if (error == ECONNREFUSED) return kWsaConnectionRefused;
    return kWsaConnectionReset;
}

int ShimWsLastError() { return g_wsa_error; }

int ShimWsSocket(int address_family, int type, int protocol) {
    IgnoreBrokenPipes();
    int fd = ::socket(address_family, type, protocol);
    if (fd < 0) g_wsa_error = WsaFromErrno(errno);
    return fd < 0 ? -1 : fd;
}

int ShimWsConnect(int socket, const uint8_t *address, int length) {
    sockaddr_in target{};
    if (length < 8) return -1;
    target.sin_family = (sa_family_t)(address[0] | (address[1] << 8));
    std::memcpy(&target.sin_port, address + 2, 2);
    std::memcpy(&target.sin_addr, address + 4, 4);
    if (::connect(socket, (sockaddr *)&target, sizeof target) == 0) return 0;
    g_wsa_error = WsaFromErrno(errno);
    return -1;
}

int ShimWsSend(int socket, const uint8_t *data, int length) {
    ssize_t sent = ::send(socket, data, (size_t)length, MSG_NOSIGNAL);
    if (sent < 0) g_wsa_error = WsaFromErrno(errno);
    return sent < 0 ? -1 : (int)sent;
}

int ShimWsRecv(int socket, uint8_t *data, int length) {
    ssize_t got = ::recv(socket, data, (size_t)length, 0);
    if (got < 0) g_wsa_error = WsaFromErrno(errno);
    return got < 0 ? -1 : (int)got;
}

int ShimWsClose(int socket) { return ::close(socket) == 0 ? 0 : -1; }

int ShimWsSetNonBlocking(int socket, bool non_blocking) { return SetNonBlocking(socket, non_blocking) ? 0 : -1; }

// Winsock's IPPROTO_TCP (6) and TCP_NODELAY (1) are POSIX's numbers too;
// the option value is a 4-byte BOOL.
int ShimWsSetOption(int socket, int level, int option, const uint8_t *value, int length) {
    if (level != IPPROTO_TCP || option != TCP_NODELAY || length != 4) {
        g_wsa_error = 10042; // WSAENOPROTOOPT
        return -1;
    }
    int flag = 0;
    std::memcpy(&flag, value, 4);
    if (::setsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &flag, sizeof flag) == 0) return 0;
    g_wsa_error = WsaFromErrno(errno);
    return -1;
}

bool ShimSocketNoDelay(int socket) {
    int flag = 0;
    socklen_t length = sizeof flag;
    return ::getsockopt(socket, IPPROTO_TCP, TCP_NODELAY, &flag, &length) == 0 && flag != 0;
}

// fd sets are {count, fd...}; select() rewrites each to the ready ones.
int ShimWsSelect(int *read_set, int *write_set, int *except_set, const int *timeout) {
    std::vector<pollfd> polls;
    std::vector<int> roles;
    int *sets[3] = {read_set, write_set, except_set};
    for (int role = 0; role < 3; role++)
        for (int i = 0; i < sets[role][0]; i++) {
            short events = role == 0 ? POLLIN : role == 1 ? POLLOUT : 0;
            polls.push_back(pollfd{sets[role][1 + i], events, 0});
            roles.push_back(role);
        }
    int wait_ms = timeout[0] * 1000 + timeout[1] / 1000;
    if (::poll(polls.data(), polls.size(), wait_ms) < 0) {
        g_wsa_error = WsaFromErrno(errno);
        return -1;
    }
    for (int role = 0; role < 3; role++) sets[role][0] = 0;
    int ready = 0;
    for (size_t i = 0; i < polls.size(); i++) {
        int fd = polls[i].fd, role = roles[i];
        int error = 0;
        socklen_t length = sizeof error;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
        bool failed = (polls[i].revents & (POLLERR | POLLHUP)) != 0 && error != 0;
        // Winsock reports a failed non-blocking connect in the except set
        // and a finished one in the write set.
        bool hit = role == 2 ? failed : role == 1 ? ((polls[i].revents & POLLOUT) != 0 && !failed)
                                                  : (polls[i].revents & (POLLIN | POLLHUP)) != 0;
        if (hit) {
            sets[role][1 + sets[role][0]++] = fd;
            ready++;
        }
    }
    return ready;
}

uint32_t ShimInetAddr(const char *text) {
    in_addr address{};
    if (inet_pton(AF_INET, text, &address) != 1) return 0xFFFFFFFFu;
    return address.s_addr;
}

int ShimTestListen(uint16_t &port) {
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener, (sockaddr *)&address, sizeof address) != 0 || ::listen(listener, 4) != 0 ||
        ::getsockname(listener, (sockaddr *)&address, &length) != 0) {
        ::close(listener);
        return -1;
    }
    port = ntohs(address.sin_port);
    return listener;
}

int ShimTestSocketConnectedTo(uint16_t port) {
    for (int fd = 3; fd < 1024; fd++) {
        sockaddr_in peer{};
        socklen_t length = sizeof peer;
        if (::getpeername(fd, (sockaddr *)&peer, &length) == 0 && peer.sin_family == AF_INET && ntohs(peer.sin_port) == port)
            return fd;
    }
    return -1;
}

void ShimTestClose(int socket) { ::close(socket); }
