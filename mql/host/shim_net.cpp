// shim_net.cpp: the shim's sockets on POSIX.
//
// # Layout
// - MT5 Socket*: blocking connect with a timeout (as SocketConnect), then
//   non-blocking I/O; SocketIsReadable is FIONREAD, or a speculative 1 for
//   an empty buffer as in MQL5. No TLS on the host:
//   SocketTlsHandshake fails with ERR_NETSOCKET_HANDSHAKE_FAILED.
// - Winsock emulation for MT4: handles are file descriptors, errno maps to
//   WSA codes (EAGAIN/EINPROGRESS -> WSAEWOULDBLOCK), fd_set is the int
//   array {count, fd...} a 32-bit MT4 passes, select() runs on poll().
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
#include <netinet/tcp.h>
#include <poll.h>
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

int SocketCreate(uint flags) {
    (void)flags;
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        ShimSetLastError(ERR_NETSOCKET_TOO_MANY_OPENED);
        return INVALID_HANDLE;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

bool SocketClose(int socket) { return socket >= 0 && ::close(socket) == 0; }

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
    buffer.items.resize(buffer_maxlen);
    ssize_t got = ::recv(socket, buffer.items.data(), buffer_maxlen, MSG_DONTWAIT);
    if (got <= 0) {
        buffer.items.clear();
        ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
        return -1;
    }
    buffer.items.resize((size_t)got);
    return (int)got;
}

bool SocketTlsHandshake(int socket, const MqlString &host) {
    (void)socket;
    (void)host;
    ShimSetLastError(ERR_NETSOCKET_HANDSHAKE_FAILED);
    return false;
}
int SocketTlsSend(int, const MqlArray<uchar> &, uint) {
    ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
    return -1;
}
int SocketTlsRead(int, MqlArray<uchar> &, uint) {
    ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
    return -1;
}
int SocketTlsReadAvailable(int, MqlArray<uchar> &, uint) {
    ShimSetLastError(ERR_NETSOCKET_IO_ERROR);
    return -1;
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
