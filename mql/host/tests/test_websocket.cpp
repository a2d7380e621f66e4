// test_websocket.cpp: SHA-1, base64 and the RFC 6455 client engine,
// driven byte by byte with no network.
#include "mql_shim.h"
// Each test file compiles the dialect in its own namespace, as each EA
// compiles it in its own translation unit.
namespace dialect_websocket {
#include "../../Include/TradeBridge/WebSocket.mqh"
}
using namespace dialect_websocket;
#include "check.h"
#include "ws_peer.h"
#include "test_support.h"

#include <algorithm>

static std::string Hex(const MqlArray<uchar> &bytes) {
    static const char *digits = "0123456789abcdef";
    std::string out;
    for (uchar byte : bytes.items) {
        out.push_back(digits[byte >> 4]);
        out.push_back(digits[byte & 15]);
    }
    return out;
}

static MqlArray<uchar> ToArray(const std::string &text) {
    MqlArray<uchar> out;
    out.items.assign(text.begin(), text.end());
    return out;
}

static MqlArray<uchar> ToArray(const Bytes &bytes) {
    MqlArray<uchar> out;
    out.items.assign(bytes.begin(), bytes.end());
    return out;
}

static Bytes TakeOutput(TbWebSocket &ws) {
    MqlArray<uchar> out;
    int count = ws.CopyOutput(out);
    ws.ConsumeOutput(count);
    return Bytes(out.items.begin(), out.items.end());
}

static void Feed(TbWebSocket &ws, const Bytes &bytes) {
    MqlArray<uchar> array = ToArray(bytes);
    ws.Feed(array, ArraySize(array));
}

// Opens a client against a scripted server response; returns the request text.
static std::string OpenClient(TbWebSocket &ws) {
    ws.Seed(42);
    ws.Start("bridge.local", 8080, "/ea");
    Bytes request = TakeOutput(ws);
    std::string text(request.begin(), request.end());
    std::string accept = TbWebSocketAccept(MqlString(HeaderValue(text, "Sec-WebSocket-Key"))).Utf8();
    std::string response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: " + accept + "\r\n\r\n";
    Feed(ws, Bytes(response.begin(), response.end()));
    MqlArray<uchar> message;
    ws.Poll(message);
    return text;
}

static std::vector<ClientFrame> DecodeAll(const Bytes &bytes) {
    std::vector<ClientFrame> frames;
    size_t offset = 0;
    ClientFrame frame;
    while (DecodeClientFrame(bytes, offset, frame)) frames.push_back(frame);
    return frames;
}

TEST(sha1_matches_fips_vectors) {
    // SHA-1 of "abc", "" and a two-block message match FIPS 180 examples.
    MqlArray<uchar> digest;
    MqlArray<uchar> abc = ToArray(std::string("abc"));
    TbSha1(abc, 3, digest);
    CHECK_EQ(Hex(digest), std::string("a9993e364706816aba3e25717850c26c9cd0d89d"));
    MqlArray<uchar> empty;
    TbSha1(empty, 0, digest);
    CHECK_EQ(Hex(digest), std::string("da39a3ee5e6b4b0d3255bfef95601890afd80709"));
    std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    MqlArray<uchar> two_array = ToArray(two);
    TbSha1(two_array, (int)two.size(), digest);
    CHECK_EQ(Hex(digest), std::string("84983e441c3bd26ebaae4aa1f95129e5e54670f1"));
}

TEST(base64_matches_rfc4648_vectors) {
    // Base64 of the RFC 4648 test strings, padding included.
    const char *inputs[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *outputs[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        MqlArray<uchar> bytes = ToArray(std::string(inputs[i]));
        CHECK_EQ(TbBase64Encode(bytes, ArraySize(bytes)).Utf8(), std::string(outputs[i]));
    }
}

TEST(accept_key_matches_rfc6455_example) {
    // The RFC 6455 section 1.3 example key gives the documented accept value.
    CHECK_EQ(TbWebSocketAccept("dGhlIHNhbXBsZSBub25jZQ==").Utf8(), std::string("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

TEST(handshake_request_has_random_16_byte_key) {
    // The upgrade request carries the RFC headers and a 16-byte base64 key that changes per seed.
    TbWebSocket ws;
    std::string request = OpenClient(ws);
    CHECK(request.rfind("GET /ea HTTP/1.1\r\n", 0) == 0);
    CHECK(request.find("Host: bridge.local:8080\r\n") != std::string::npos);
    CHECK(request.find("Upgrade: websocket\r\n") != std::string::npos);
    CHECK(request.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
    std::string key = HeaderValue(request, "Sec-WebSocket-Key");
    CHECK_EQ(key.size(), (size_t)24);
    CHECK(key.substr(22) == "==");
    CHECK_EQ(ws.State(), TB_WS_OPEN);
    TbWebSocket other;
    other.Seed(43);
    other.Start("bridge.local", 8080, "/ea");
    CHECK(other.Key().Utf8() != key);
}

TEST(handshake_with_wrong_accept_fails) {
    // A 101 whose Sec-WebSocket-Accept does not match our key closes the client.
    TbWebSocket ws;
    ws.Seed(1);
    ws.Start("h", 1, "/ea");
    TakeOutput(ws);
    std::string response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    Feed(ws, Bytes(response.begin(), response.end()));
    MqlArray<uchar> message;
    CHECK(!ws.Poll(message));
    CHECK_EQ(ws.State(), TB_WS_CLOSED);
    CHECK(ws.Failure().Utf8().find("Sec-WebSocket-Accept") != std::string::npos);
}

TEST(handshake_rejects_non_101_status) {
    // A plain HTTP error (e.g. 404 from a proxy) fails the handshake with the status in the reason.
    TbWebSocket ws;
    ws.Seed(1);
    ws.Start("h", 1, "/ea");
    std::string response = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
    Feed(ws, Bytes(response.begin(), response.end()));
    MqlArray<uchar> message;
    ws.Poll(message);
    CHECK_EQ(ws.State(), TB_WS_CLOSED);
    CHECK(ws.Failure().Utf8().find("404") != std::string::npos);
}

TEST(frames_are_masked_with_fresh_keys) {
    // Each client frame is masked, unmasks to the payload, and two frames use different mask keys.
    TbWebSocket ws;
    OpenClient(ws);
    CHECK(ws.SendText("{\"t\":\"ping\"}"));
    CHECK(ws.SendText("{\"t\":\"ping\"}"));
    std::vector<ClientFrame> frames = DecodeAll(TakeOutput(ws));
    CHECK_EQ(frames.size(), (size_t)2);
    if (frames.size() != 2) return;
    for (auto &frame : frames) {
        CHECK(frame.masked);
        CHECK(frame.final_frame);
        CHECK_EQ(frame.opcode, 1);
        CHECK_EQ(frame.payload, std::string("{\"t\":\"ping\"}"));
    }
    CHECK(!std::equal(frames[0].mask, frames[0].mask + 4, frames[1].mask));
}

TEST(long_payloads_use_extended_lengths) {
    // Payloads of 126..65535 bytes use the 16-bit length and larger ones the 64-bit length.
    TbWebSocket ws;
    ws.Configure(200000, 1000000);
    OpenClient(ws);
    std::string medium(300, 'a'), large(70000, 'b');
    CHECK(ws.SendText(MqlString(medium)));
    CHECK(ws.SendText(MqlString(large)));
    Bytes out = TakeOutput(ws);
    CHECK_EQ((int)out[1], 0x80 | 126);
    std::vector<ClientFrame> frames = DecodeAll(out);
    CHECK_EQ(frames.size(), (size_t)2);
    if (frames.size() == 2) {
        CHECK_EQ(frames[0].payload, medium);
        CHECK_EQ(frames[1].payload, large);
    }
}

TEST(partial_reads_byte_by_byte) {
    // A message fed one byte at a time is delivered once, complete, and only at its last byte.
    TbWebSocket ws;
    OpenClient(ws);
    Bytes frame = ServerFrame(1, "{\"t\":\"pong\"}");
    MqlArray<uchar> message;
    int delivered = 0;
    for (size_t i = 0; i < frame.size(); i++) {
        Feed(ws, Bytes(1, frame[i]));
        if (ws.Poll(message)) {
            delivered++;
            CHECK_EQ(i, frame.size() - 1);
        }
    }
    CHECK_EQ(delivered, 1);
    CHECK_EQ(CharArrayToString(message, 0, -1, CP_UTF8).Utf8(), std::string("{\"t\":\"pong\"}"));
}

TEST(fragmented_message_is_reassembled_around_a_ping) {
    // Text + continuation frames with a ping between them give one message and one pong.
    TbWebSocket ws;
    OpenClient(ws);
    Bytes stream = ServerFrame(1, "{\"t\":", false);
    Bytes ping = ServerFrame(9, "hb");
    Bytes middle = ServerFrame(0, "\"ack\",", false);
    Bytes last = ServerFrame(0, "\"seq\":7}", true);
    stream.insert(stream.end(), ping.begin(), ping.end());
    stream.insert(stream.end(), middle.begin(), middle.end());
    stream.insert(stream.end(), last.begin(), last.end());
    Feed(ws, stream);
    MqlArray<uchar> message;
    CHECK(ws.Poll(message));
    CHECK_EQ(CharArrayToString(message, 0, -1, CP_UTF8).Utf8(), std::string("{\"t\":\"ack\",\"seq\":7}"));
    CHECK(!ws.Poll(message));
    std::vector<ClientFrame> frames = DecodeAll(TakeOutput(ws));
    CHECK_EQ(frames.size(), (size_t)1);
    if (!frames.empty()) {
        CHECK_EQ(frames[0].opcode, 0xA);
        CHECK_EQ(frames[0].payload, std::string("hb"));
    }
    CHECK_EQ(ws.PingsAnswered(), 1);
}

TEST(two_messages_in_one_read) {
    // Two frames arriving in one read are delivered by two Polls, in order.
    TbWebSocket ws;
    OpenClient(ws);
    Bytes stream = ServerFrame(1, "{\"n\":1}");
    Bytes second = ServerFrame(1, "{\"n\":2}");
    stream.insert(stream.end(), second.begin(), second.end());
    Feed(ws, stream);
    MqlArray<uchar> message;
    CHECK(ws.Poll(message));
    CHECK_EQ(CharArrayToString(message, 0, -1, CP_UTF8).Utf8(), std::string("{\"n\":1}"));
    CHECK(ws.Poll(message));
    CHECK_EQ(CharArrayToString(message, 0, -1, CP_UTF8).Utf8(), std::string("{\"n\":2}"));
    CHECK(!ws.Poll(message));
}

TEST(oversized_message_closes_with_1009) {
    // A fragmented message growing past the limit fails with close code 1009 and a close frame is sent.
    TbWebSocket ws;
    ws.Configure(100, 100000);
    OpenClient(ws);
    Feed(ws, ServerFrame(1, std::string(60, 'x'), false));
    Feed(ws, ServerFrame(0, std::string(60, 'y'), true));
    MqlArray<uchar> message;
    CHECK(!ws.Poll(message));
    CHECK_EQ(ws.State(), TB_WS_CLOSED);
    CHECK_EQ(ws.CloseCode(), 1009);
    std::vector<ClientFrame> frames = DecodeAll(TakeOutput(ws));
    CHECK(!frames.empty() && frames[0].opcode == 8 && (uint8_t)frames[0].payload[0] == 0x03 &&
          (uint8_t)frames[0].payload[1] == 0xF1);
}

TEST(binary_and_masked_frames_are_refused) {
    // A binary frame closes with 1003; a masked server frame with 1002.
    TbWebSocket binary;
    OpenClient(binary);
    Feed(binary, ServerFrame(2, "abc"));
    MqlArray<uchar> message;
    binary.Poll(message);
    CHECK_EQ(binary.CloseCode(), 1003);
    TbWebSocket masked;
    OpenClient(masked);
    Bytes frame = {0x81, 0x81, 1, 2, 3, 4, 'a' ^ 1};
    Feed(masked, frame);
    masked.Poll(message);
    CHECK_EQ(masked.CloseCode(), 1002);
}

TEST(invalid_utf8_text_closes_with_1007) {
    // A text message that is not UTF-8 is refused with 1007.
    TbWebSocket ws;
    OpenClient(ws);
    Feed(ws, ServerFrame(1, std::string("\xC3\x28")));
    MqlArray<uchar> message;
    CHECK(!ws.Poll(message));
    CHECK_EQ(ws.CloseCode(), 1007);
}

TEST(close_handshake_both_directions) {
    // Peer-initiated close is echoed with its code; our close waits for the peer's close frame.
    TbWebSocket ws;
    OpenClient(ws);
    Feed(ws, ServerFrame(8, std::string("\x0F\xA8", 2) + "same login"));
    MqlArray<uchar> message;
    ws.Poll(message);
    CHECK_EQ(ws.State(), TB_WS_CLOSED);
    CHECK_EQ(ws.CloseCode(), 4008);
    std::vector<ClientFrame> frames = DecodeAll(TakeOutput(ws));
    CHECK(frames.size() == 1 && frames[0].opcode == 8 && frames[0].payload.substr(0, 2) == std::string("\x0F\xA8", 2));

    TbWebSocket ours;
    OpenClient(ours);
    ours.Close(1000, "bye");
    CHECK_EQ(ours.State(), TB_WS_CLOSING);
    frames = DecodeAll(TakeOutput(ours));
    CHECK(frames.size() == 1 && frames[0].opcode == 8 && frames[0].payload == std::string("\x03\xE8", 2) + "bye");
    CHECK(!ours.SendText("late"));
    Feed(ours, ServerFrame(8, std::string("\x03\xE8", 2)));
    ours.Poll(message);
    CHECK_EQ(ours.State(), TB_WS_CLOSED);
    CHECK_EQ(TakeOutput(ours).size(), (size_t)0);
}

TEST(input_is_bounded) {
    // Feeding more than InputSpace() is refused instead of growing the buffer.
    TbWebSocket ws;
    ws.Configure(100, 1000);
    OpenClient(ws);
    int space = ws.InputSpace();
    CHECK_EQ(space, 100 + TB_WS_HANDSHAKE_BYTES_MAX);
    MqlArray<uchar> big;
    ArrayResize(big, space + 1);
    CHECK(!ws.Feed(big, space + 1));
    CHECK_EQ(ws.State(), TB_WS_CLOSED);
}

// A one-connection WebSocket echo server on loopback, written with plain
// POSIX calls and ws_peer.h (independent of the client under test).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

namespace dialect_websocket {
#include "../../Include/TradeBridge/Transport.mqh"
}

#include <csignal>
#include <functional>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

// The server side of an echo over one accepted connection, through
// `receive` / `transmit` (plain TCP or TLS).
static void EchoSession(const std::function<long(uint8_t *, size_t)> &receive,
                        const std::function<void(const Bytes &)> &transmit) {
    Bytes arrived;
    bool upgraded = false;
    uint8_t buffer[65536];
    while (true) {
        long got = receive(buffer, sizeof buffer);
        if (got <= 0) break;
        arrived.insert(arrived.end(), buffer, buffer + got);
        if (!upgraded) {
            std::string text(arrived.begin(), arrived.end());
            size_t end = text.find("\r\n\r\n");
            if (end == std::string::npos) continue;
            std::string accept = TbWebSocketAccept(MqlString(HeaderValue(text, "Sec-WebSocket-Key"))).Utf8();
            std::string response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: " + accept + "\r\n\r\n";
            transmit(Bytes(response.begin(), response.end()));
            arrived.erase(arrived.begin(), arrived.begin() + (long)(end + 4));
            upgraded = true;
        }
        size_t offset = 0;
        ClientFrame frame;
        bool closed = false;
        while (DecodeClientFrame(arrived, offset, frame)) {
            // Text is echoed in two fragments to exercise reassembly over TCP.
            Bytes reply;
            if (frame.opcode == 1) {
                size_t half = frame.payload.size() / 2;
                Bytes first = ServerFrame(1, frame.payload.substr(0, half), false);
                Bytes second = ServerFrame(0, frame.payload.substr(half), true);
                reply = first;
                reply.insert(reply.end(), second.begin(), second.end());
            } else if (frame.opcode == 8) {
                reply = ServerFrame(8, frame.payload.substr(0, 2));
                closed = true;
            }
            if (!reply.empty()) transmit(reply);
        }
        arrived.erase(arrived.begin(), arrived.begin() + (long)offset);
        if (closed) break;
    }
}

static void EchoServer(int listener) {
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    EchoSession([fd](uint8_t *data, size_t size) { return (long)::recv(fd, data, size, 0); },
                [fd](const Bytes &bytes) { ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL); });
    ::close(fd);
}

// A TLS server context with a fresh self-signed P-256 certificate for
// "localhost", made in memory for the test.
static SSL_CTX *TlsServerContext() {
    signal(SIGPIPE, SIG_IGN);
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *certificate = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(certificate), 12);
    X509_gmtime_adj(X509_getm_notBefore(certificate), -60);
    X509_gmtime_adj(X509_getm_notAfter(certificate), 3600);
    X509_set_pubkey(certificate, key);
    X509_NAME *name = X509_get_subject_name(certificate);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_set_issuer_name(certificate, name);
    X509_sign(certificate, key, EVP_sha256());
    SSL_CTX *context = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(context, certificate);
    SSL_CTX_use_PrivateKey(context, key);
    X509_free(certificate);
    EVP_PKEY_free(key);
    return context;
}

static void TlsEchoServer(int listener, SSL_CTX *context) {
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    SSL *tls = SSL_new(context);
    SSL_set_fd(tls, fd);
    if (SSL_accept(tls) == 1)
        EchoSession([tls](uint8_t *data, size_t size) { return (long)SSL_read(tls, data, (int)size); },
                    [tls](const Bytes &bytes) { SSL_write(tls, bytes.data(), (int)bytes.size()); });
    SSL_free(tls);
    ::close(fd);
}

static int Listen(uint16_t &port) {
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener, (sockaddr *)&address, sizeof address) != 0 || ::listen(listener, 1) != 0) return -1;
    socklen_t length = sizeof address;
    getsockname(listener, (sockaddr *)&address, &length);
    port = ntohs(address.sin_port);
    return listener;
}

// Runs three messages (one of 20 KB, one with emoji) through the MT5
// transport and a client WebSocket, then a clean close; the caller's
// server echoes them in fragments.
static void CheckEcho(TbTransport &transport, uint16_t port) {
    TbWebSocket ws;
    ws.Seed(9);
    ws.Start("127.0.0.1", port, "/ea");
    std::vector<std::string> sent = {"{\"t\":\"ping\"}", std::string(20000, 'z'), "{\"s\":\"é😀\"}"};
    std::vector<std::string> received;
    bool sent_all = false;
    MqlArray<uchar> buffer, message, output;
    // Bounded: at most 5,000 passes of at most 1 ms each.
    for (int pass = 0; pass < 5000 && ws.State() != TB_WS_CLOSED; pass++) {
        int pending = ws.CopyOutput(output);
        if (pending > 0) ws.ConsumeOutput(transport.Send(output, pending));
        int got = transport.Read(buffer, ws.InputSpace());
        if (got < 0) break;
        if (got > 0) ws.Feed(buffer, got);
        while (ws.Poll(message)) received.push_back(CharArrayToString(message, 0, -1, CP_UTF8).Utf8());
        if (ws.State() == TB_WS_OPEN && !sent_all) {
            for (auto &text : sent) CHECK(ws.SendText(MqlString(text)));
            sent_all = true;
        }
        if (received.size() == 3 && ws.State() == TB_WS_OPEN) ws.Close(1000, "done");
        if (got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    // Closing first ends the server's read, also when the exchange failed.
    transport.Close();
    CHECK_EQ(received.size(), (size_t)3);
    if (received.size() == 3) {
        CHECK_EQ(received[0], std::string("{\"t\":\"ping\"}"));
        CHECK_EQ(received[1], std::string(20000, 'z'));
        CHECK_EQ(received[2], std::string("{\"s\":\"é😀\"}"));
    }
    CHECK_EQ(ws.State(), TB_WS_CLOSED);
    CHECK_EQ(ws.CloseCode(), 1000);
}

TEST(echo_over_a_real_socket) {
    // Through the MT5 transport on loopback, whose reads grow the array they are given (as the reference says), three messages (one of 20 KB) come back intact, then a clean close.
    SimFixture fixture(5);
    uint16_t port = 0;
    int listener = Listen(port);
    CHECK(listener >= 0);
    std::thread server(EchoServer, listener);
    TbTransport transport;
    MqlString error;
    CHECK(transport.Connect("127.0.0.1", port, false, 1000, error));
    CheckEcho(transport, port);
    server.join();
    ::close(listener);
}

TEST(echo_over_tls_with_an_explicit_and_an_implicit_handshake) {
    // wss:// through the terminal's TLS: on an ordinary port the transport runs the handshake itself; on the port where the terminal already did it (443 on a real one), it does not fail on a second handshake; both echo intact.
    SimFixture fixture(5);
    SSL_CTX *context = TlsServerContext();
    for (bool implicit : {false, true}) {
        uint16_t port = 0;
        int listener = Listen(port);
        CHECK(listener >= 0);
        fixture.terminal.tls_implicit_port = implicit ? port : 443;
        std::thread server(TlsEchoServer, listener, context);
        TbTransport transport;
        MqlString error;
        bool connected = transport.Connect("127.0.0.1", port, true, 1000, error);
        CHECK(connected);
        if (!connected) std::printf("  %s\n", error.Utf8().c_str());
        CheckEcho(transport, port);
        server.join();
        ::close(listener);
    }
    SSL_CTX_free(context);
}

