// fake_bridge.h: a scripted bridge for EA-level scenarios: a non-blocking
// WebSocket server on loopback that a test polls between the EA's timer
// calls. It records every message the EA sends, answers `hello` with a
// `welcome` and JSON pings with pongs, and sends what the test tells it.
// Its code (fake_bridge.cpp) includes no shim header, so an MT4 test, whose
// translation unit declares Winsock's own socket functions, can use it.
//
// # Layout
// - FakeBridge::Poll(): accepts, completes the upgrade, decodes frames.
// - Send(json) / Drop(): a message to the EA / the connection cut.
// - Messages(type): what the EA sent, as JSON text.
// # Invariants
// - Single-threaded: nothing happens between Poll calls, so a test that
//   alternates EA timer calls and Poll is deterministic apart from the
//   loopback's own timing, which every loop bounds.
#ifndef TRADEBRIDGE_FAKE_BRIDGE_H
#define TRADEBRIDGE_FAKE_BRIDGE_H

#include "ws_peer.h"

#include <string>
#include <vector>

class FakeBridge {
  public:
    /// Texts of every message the EA sent, in order, across connections.
    std::vector<std::string> received;
    /// The `ack_seq` a welcome carries.
    unsigned long ack_seq = 0;
    /// Connections accepted so far.
    int connections = 0;

    FakeBridge();
    ~FakeBridge();
    std::string Url() const;
    bool Connected() const { return client_ >= 0 && upgraded_; }
    void Poll();
    void Send(const std::string &json);
    void Drop();
    /// The messages of type `type` ("hello", "result", "state"...).
    std::vector<std::string> Messages(const std::string &type) const;

  private:
    bool Upgrade();
    void Handle(const ClientFrame &frame);

    int listener_ = -1;
    int client_ = -1;
    unsigned short port_ = 0;
    bool upgraded_ = false;
    Bytes input_;
};

#endif
