// fake_bridge.cpp: see fake_bridge.h. Platform-neutral (it links into the
// MT4 and the MT5 test binaries), so it takes the shim without a trade API.
#define TB_SHIM_IMPLEMENTATION
#include "mql_shim.h"
namespace fake_bridge_dialect {
#include "../Include/TradeBridge/Messages.mqh"
#include "../Include/TradeBridge/Crypto.mqh"
}
#include "fake_bridge.h"
#include "tests/ws_peer.h"

#include <algorithm>
#include <arpa/inet.h>
#include <chrono>
#include <cstring>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace fake_bridge_dialect;

struct FakeBridge::Peer {
    int fd = -1;
    Bytes pending_bytes;
    bool upgraded = false;
    uint64_t login = 0;
    std::string role;
};

static uint64_t NowMs() {
    return (uint64_t)std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

FakeBridge::FakeBridge() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    if (::bind(listener_, (sockaddr *)&address, sizeof address) != 0 || ::listen(listener_, 16) != 0) std::abort();
    socklen_t length = sizeof address;
    getsockname(listener_, (sockaddr *)&address, &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Run(); });
}

FakeBridge::~FakeBridge() { Stop(); }

void FakeBridge::Stop() {
    if (stop_.exchange(true)) return;
    if (thread_.joinable()) thread_.join();
    for (Peer *peer : peers_) {
        ::close(peer->fd);
        delete peer;
    }
    peers_.clear();
    ::close(listener_);
}

void FakeBridge::DropAll() { drop_ = true; }

std::vector<FakeBridge::Record> FakeBridge::Received() {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
}

std::vector<std::string> FakeBridge::EventsOf(uint64_t master) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (auto &entry : events_[master]) out.push_back(entry.second);
    return out;
}

int FakeBridge::CountOf(const std::string &type) {
    std::lock_guard<std::mutex> lock(mutex_);
    int count = 0;
    for (auto &record : received_) count += record.type == type ? 1 : 0;
    return count;
}

void FakeBridge::Run() {
    while (!stop_) {
        if (drop_.exchange(false)) {
            for (Peer *peer : peers_) {
                ::close(peer->fd);
                delete peer;
            }
            peers_.clear();
            drops_done_++;
        }
        std::vector<pollfd> polls{{listener_, POLLIN, 0}};
        for (Peer *peer : peers_) polls.push_back({peer->fd, POLLIN, 0});
        if (::poll(polls.data(), polls.size(), 10) <= 0) continue;
        if (polls[0].revents & POLLIN) Accept();
        for (size_t i = 1; i < polls.size() && i - 1 < peers_.size(); i++)
            if (polls[i].revents & (POLLIN | POLLHUP | POLLERR)) Service(*peers_[i - 1]);
        for (size_t i = 0; i < peers_.size();) {
            if (peers_[i]->fd < 0) {
                delete peers_[i];
                peers_.erase(peers_.begin() + (long)i);
            } else {
                i++;
            }
        }
    }
}

void FakeBridge::Accept() {
    int fd = ::accept(listener_, nullptr, nullptr);
    if (fd < 0) return;
    Peer *peer = new Peer();
    peer->fd = fd;
    peers_.push_back(peer);
    connections_++;
}

void FakeBridge::Service(Peer &peer) {
    uint8_t buffer[65536];
    ssize_t got = ::recv(peer.fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (got <= 0) {
        ::close(peer.fd);
        peer.fd = -1;
        return;
    }
    peer.pending_bytes.insert(peer.pending_bytes.end(), buffer, buffer + got);
    if (!peer.upgraded) {
        std::string text(peer.pending_bytes.begin(), peer.pending_bytes.end());
        size_t end = text.find("\r\n\r\n");
        if (end == std::string::npos) return;
        std::string accept = TbWebSocketAccept(MqlString(HeaderValue(text, "Sec-WebSocket-Key"))).Utf8();
        std::string response = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                               "Sec-WebSocket-Accept: " + accept + "\r\n\r\n";
        ::send(peer.fd, response.data(), response.size(), MSG_NOSIGNAL);
        peer.pending_bytes.erase(peer.pending_bytes.begin(), peer.pending_bytes.begin() + (long)(end + 4));
        peer.upgraded = true;
    }
    size_t offset = 0;
    ClientFrame frame;
    while (peer.fd >= 0 && DecodeClientFrame(peer.pending_bytes, offset, frame)) {
        if (frame.opcode == 1) HandleText(peer, frame.payload);
        else if (frame.opcode == 9) {
            Bytes pong = ServerFrame(0xA, frame.payload);
            ::send(peer.fd, pong.data(), pong.size(), MSG_NOSIGNAL);
        } else if (frame.opcode == 8) {
            Bytes close = ServerFrame(8, frame.payload.substr(0, 2));
            ::send(peer.fd, close.data(), close.size(), MSG_NOSIGNAL);
            ::close(peer.fd);
            peer.fd = -1;
        }
    }
    if (peer.fd >= 0) peer.pending_bytes.erase(peer.pending_bytes.begin(), peer.pending_bytes.begin() + (long)offset);
}

void FakeBridge::SendText(Peer &peer, const std::string &text) {
    Bytes frame = ServerFrame(1, text);
    ::send(peer.fd, frame.data(), frame.size(), MSG_NOSIGNAL);
}

void FakeBridge::HandleText(Peer &peer, const std::string &text) {
    TbJsonReader reader;
    if (!reader.ParseText(MqlString(text))) return;
    std::string type = TbMessageType(reader, 0).Utf8();
    ulong hello_login = 0;
    if (type == "hello" && reader.GetULong(0, "login", hello_login)) peer.login = hello_login;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        received_.push_back(Record{type, peer.login, text});
    }
    ulong value = 0;
    if (type == "hello") {
        reader.GetULong(0, "login", value);
        peer.login = value;
        MqlString role;
        reader.GetString(0, "role", role);
        peer.role = role.Utf8();
        uint64_t ack = 0;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!events_[peer.login].empty()) ack = events_[peer.login].rbegin()->first;
        }
        SendText(peer, "{\"t\":\"welcome\",\"v\":1,\"session\":\"fake\",\"hb_ms\":1000,\"ack_seq\":" + std::to_string(ack) + "}");
        if (peer.role == "slave") {
            ulong last_seq = 0;
            reader.GetULong(0, "last_seq", last_seq);
            std::vector<std::string> resend;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                for (auto &entry : copies_[peer.login])
                    if (entry.first > last_seq) resend.push_back(entry.second);
            }
            for (auto &copy : resend) SendText(peer, copy);
        }
    } else if (type == "ping") {
        SendText(peer, "{\"t\":\"pong\"}");
    } else if (type == "event" && reader.GetULong(0, "seq", value)) {
        bool fresh = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            fresh = events_[peer.login].emplace(value, text).second;
        }
        SendText(peer, "{\"t\":\"ack\",\"seq\":" + std::to_string(value) + "}");
        if (fresh) RouteEvent(peer.login, text);
    }
}

// One copy per slave, 1:1 volume, tagged; opens expire after 60 s.
void FakeBridge::RouteEvent(uint64_t master, const std::string &text) {
    TbJsonReader reader;
    TbEvent event;
    MqlString error;
    if (!reader.ParseText(MqlString(text)) || !TbReadEvent(reader, 0, event, error)) return;
    std::vector<uint64_t> slaves;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto &record : received_)
            if (record.type == "hello" && record.json.find("\"role\":\"slave\"") != std::string::npos &&
                std::find(slaves.begin(), slaves.end(), record.login) == slaves.end())
                slaves.push_back(record.login);
    }
    for (uint64_t slave : slaves) {
        TbCopy copy;
        copy.Clear();
        copy.seq = ++copy_seq_[slave];
        copy.id = MqlString("c-" + std::to_string(copy.seq));
        copy.master = master;
        copy.pos = event.pos;
        copy.action = event.kind;
        copy.symbol = event.symbol;
        copy.side = event.side == "" ? MqlString("buy") : event.side;
        copy.volume = event.volume;
        copy.price = event.price;
        copy.sl = event.sl;
        copy.tp = event.tp;
        copy.magic = event.magic;
        copy.comment = MqlString("tc:" + std::to_string(master) + ":" + std::to_string(event.pos));
        copy.expires_ms = (event.kind == "open" || event.kind == "pending") ? NowMs() + 60000 : 0;
        TbJsonWriter writer;
        TbWriteCopy(writer, copy);
        std::string text_copy = writer.ToString().Utf8();
        {
            std::lock_guard<std::mutex> lock(mutex_);
            copies_[slave][copy.seq] = text_copy;
        }
        for (Peer *peer : peers_)
            if (peer->fd >= 0 && peer->role == "slave" && peer->login == slave) SendText(*peer, text_copy);
    }
}
