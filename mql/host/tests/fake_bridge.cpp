// fake_bridge.cpp: see fake_bridge.h. The accept key is computed with
// OpenSSL's SHA-1 and base64, independently of the EA's own Crypto.mqh.
#include "fake_bridge.h"

#include <arpa/inet.h>
#include <cstdlib>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <unistd.h>

static std::string AcceptKey(const std::string &key) {
    std::string text = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)text.data(), text.size(), digest);
    unsigned char encoded[64];
    int length = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
    return std::string((const char *)encoded, (size_t)length);
}

FakeBridge::FakeBridge() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener_, (sockaddr *)&address, sizeof address) != 0 || ::listen(listener_, 4) != 0) std::abort();
    socklen_t length = sizeof address;
    ::getsockname(listener_, (sockaddr *)&address, &length);
    port_ = ntohs(address.sin_port);
    ::fcntl(listener_, F_SETFL, O_NONBLOCK);
}

FakeBridge::~FakeBridge() {
    Drop();
    ::close(listener_);
}

std::string FakeBridge::Url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/ea"; }

void FakeBridge::Poll() {
    if (client_ < 0) {
        client_ = ::accept(listener_, nullptr, nullptr);
        if (client_ < 0) return;
        ::fcntl(client_, F_SETFL, O_NONBLOCK);
        connections++;
        input_.clear();
        upgraded_ = false;
    }
    uint8_t buffer[65536];
    while (true) {
        ssize_t got = ::recv(client_, buffer, sizeof buffer, 0);
        if (got == 0) {
            Drop();
            return;
        }
        if (got < 0) break;
        input_.insert(input_.end(), buffer, buffer + got);
    }
    if (!upgraded_ && !Upgrade()) return;
    size_t offset = 0;
    ClientFrame frame;
    while (client_ >= 0 && DecodeClientFrame(input_, offset, frame)) Handle(frame);
    if (client_ >= 0) input_.erase(input_.begin(), input_.begin() + (long)offset);
}

void FakeBridge::Send(const std::string &json) {
    if (client_ < 0) return;
    Bytes frame = ServerFrame(1, json);
    ::send(client_, frame.data(), frame.size(), MSG_NOSIGNAL);
}

void FakeBridge::Drop() {
    if (client_ >= 0) ::close(client_);
    client_ = -1;
    upgraded_ = false;
    input_.clear();
}

std::vector<std::string> FakeBridge::Messages(const std::string &type) const {
    std::vector<std::string> found;
    for (const auto &text : received)
        if (text.find("\"t\":\"" + type + "\"") != std::string::npos) found.push_back(text);
    return found;
}

bool FakeBridge::Upgrade() {
    std::string text(input_.begin(), input_.end());
    size_t end = text.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: " + AcceptKey(HeaderValue(text, "Sec-WebSocket-Key")) + "\r\n\r\n";
    ::send(client_, response.data(), response.size(), MSG_NOSIGNAL);
    input_.erase(input_.begin(), input_.begin() + (long)(end + 4));
    upgraded_ = true;
    return true;
}

void FakeBridge::Handle(const ClientFrame &frame) {
    if (frame.opcode == 8) {
        Drop();
        return;
    }
    if (frame.opcode != 1) return;
    received.push_back(frame.payload);
    if (frame.payload.find("\"t\":\"hello\"") != std::string::npos)
        Send("{\"t\":\"welcome\",\"v\":1,\"session\":\"fake\",\"hb_ms\":5000,\"ack_seq\":" + std::to_string(ack_seq) + "}");
    else if (frame.payload.find("\"t\":\"ping\"") != std::string::npos)
        Send("{\"t\":\"pong\"}");
}
