// fake_bridge.h: a small stand-in for the tradebridge bridge, for the
// harness's end-to-end test until the real one exists. It speaks the
// PROTOCOL.md wire format over real sockets on 127.0.0.1, on its own
// thread.
//
// # Layout
// - Accepts WebSocket upgrades on /ea (plain ws), answers hello with
//   welcome (ack_seq = highest event seq it holds for that master),
//   acks events (duplicates by seq are acked again, not routed twice),
//   turns each new master event into a `copy` for every slave (same
//   symbol and volume, tag tc:<master>:<pos>) and re-sends a slave every
//   copy above the last_seq of its hello, answers ping with pong,
//   and records snapshots, results and states for the test to inspect.
// - DropAll() closes every connection abruptly (a bridge crash, as far as
//   the EAs can tell); the store survives, as a durable bridge's would.
// # Invariants
// - Only loopback: the listening socket binds 127.0.0.1.
// - Every loop is bounded by Stop(): the thread exits within one poll
//   period (10 ms) of it.
#ifndef TRADEBRIDGE_FAKE_BRIDGE_H
#define TRADEBRIDGE_FAKE_BRIDGE_H

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

class FakeBridge {
  public:
    /// Starts listening on an ephemeral loopback port.
    FakeBridge();
    ~FakeBridge();
    int Port() const { return port_; }
    void DropAll();
    void Stop();

    // What the bridge saw; read under the lock via the accessors.
    struct Record {
        std::string type;
        uint64_t login = 0;
        std::string json;
    };
    std::vector<Record> Received();
    /// Events held for `master` (deduplicated by seq), in seq order.
    std::vector<std::string> EventsOf(uint64_t master);
    int CountOf(const std::string &type);
    int Connections() const { return connections_.load(); }
    /// How many DropAll requests the bridge thread has carried out.
    int DropsDone() const { return drops_done_.load(); }

  private:
    struct Peer;
    void Run();
    void Accept();
    void Service(Peer &peer);
    void HandleText(Peer &peer, const std::string &text);
    void SendText(Peer &peer, const std::string &text);
    void RouteEvent(uint64_t master, const std::string &text);

    int listener_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<bool> drop_{false};
    std::atomic<int> connections_{0};
    std::atomic<int> drops_done_{0};
    std::thread thread_;
    std::mutex mutex_;
    std::vector<Peer *> peers_;
    std::vector<Record> received_;
    std::map<uint64_t, std::map<uint64_t, std::string>> events_;
    std::map<uint64_t, uint64_t> copy_seq_;
    /// Copies per slave login, by seq: re-sent above a hello's last_seq.
    std::map<uint64_t, std::map<uint64_t, std::string>> copies_;
};

#endif
