// ws_peer.h: the server side of RFC 6455, written plainly in C++ for the
// tests (and the harness's fake bridge), so the EA's client is checked
// against an independent peer rather than against itself.
//
// # Layout
// - ServerFrame: an unmasked frame as a server sends it.
// - DecodeClientFrame: parses one client frame, checking it is masked.
// - ServerHandshake: the 101 response for a client's upgrade request.
// # Invariants
// - Nothing here touches the EA's classes except TbWebSocketAccept, whose
//   output the RFC vector test pins independently.
#ifndef TRADEBRIDGE_WS_PEER_H
#define TRADEBRIDGE_WS_PEER_H

#include <cstdint>
#include <string>
#include <vector>

typedef std::vector<uint8_t> Bytes;

inline Bytes ServerFrame(int opcode, const std::string &payload, bool final_frame = true) {
    Bytes out;
    out.push_back((uint8_t)((final_frame ? 0x80 : 0) | opcode));
    size_t length = payload.size();
    if (length <= 125) {
        out.push_back((uint8_t)length);
    } else if (length <= 65535) {
        out.push_back(126);
        out.push_back((uint8_t)(length >> 8));
        out.push_back((uint8_t)length);
    } else {
        out.push_back(127);
        for (int i = 7; i >= 0; i--) out.push_back((uint8_t)((uint64_t)length >> (8 * i)));
    }
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

struct ClientFrame {
    int opcode = 0;
    bool final_frame = false;
    bool masked = false;
    uint8_t mask[4] = {0, 0, 0, 0};
    std::string payload;
};

// Parses one frame at `offset`; false (offset unchanged) if incomplete.
inline bool DecodeClientFrame(const Bytes &bytes, size_t &offset, ClientFrame &frame) {
    size_t at = offset;
    if (bytes.size() < at + 2) return false;
    frame.final_frame = (bytes[at] & 0x80) != 0;
    frame.opcode = bytes[at] & 0x0F;
    frame.masked = (bytes[at + 1] & 0x80) != 0;
    uint64_t length = bytes[at + 1] & 0x7F;
    at += 2;
    if (length == 126) {
        if (bytes.size() < at + 2) return false;
        length = ((uint64_t)bytes[at] << 8) | bytes[at + 1];
        at += 2;
    } else if (length == 127) {
        if (bytes.size() < at + 8) return false;
        length = 0;
        for (int i = 0; i < 8; i++) length = (length << 8) | bytes[at + (size_t)i];
        at += 8;
    }
    if (frame.masked) {
        if (bytes.size() < at + 4) return false;
        for (int i = 0; i < 4; i++) frame.mask[i] = bytes[at + (size_t)i];
        at += 4;
    }
    if (bytes.size() < at + length) return false;
    frame.payload.assign(bytes.begin() + (long)at, bytes.begin() + (long)(at + length));
    if (frame.masked)
        for (size_t i = 0; i < frame.payload.size(); i++) frame.payload[i] = (char)(frame.payload[i] ^ frame.mask[i % 4]);
    offset = at + length;
    return true;
}

inline std::string HeaderValue(const std::string &request, const std::string &name) {
    size_t at = request.find(name + ": ");
    if (at == std::string::npos) return "";
    at += name.size() + 2;
    return request.substr(at, request.find("\r\n", at) - at);
}

#endif
