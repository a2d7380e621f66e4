// ea_host.cpp: runs one compiled EA on a simulated terminal against a
// bridge at a given URL, in real time, for end-to-end runs against the real
// bridge (which the unit binaries replace with a loopback fake).
//
//   ea_host --ea monitor5|monitor4|executor5|executor4 --url ws://127.0.0.1:8080/ea
//           --key KEY [--login N] [--netting] [--files DIR] [--seconds S]
//
// Commands on stdin drive the simulated account (a trader on the master):
//   open SYMBOL buy|sell VOLUME        close POS VOLUME
//   modify POS SL TP                   pending SYMBOL SIDE VOLUME PRICE
//   cancel ORDER                       quote SYMBOL BID ASK
//   dump                               quit
// `dump` prints the account's positions and orders, one per line, so a
// script can check the slave after the master traded.
#include "mql_shim.h"
#include "ea_entry.h"

#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <poll.h>
#include <sstream>
#include <thread>
#include <unistd.h>

static int SideNumber(const std::string &side) {
    const char *names[] = {"buy", "sell", "buy_limit", "sell_limit", "buy_stop", "sell_stop"};
    for (int i = 0; i < 6; i++)
        if (side == names[i]) return i;
    return -1;
}

static void Dump(SimTerminal &terminal) {
    for (auto &p : terminal.positions)
        std::cout << "position " << p.identifier << " " << p.symbol << " " << (p.type ? "sell" : "buy") << " " << p.volume
                  << " " << p.comment << "\n";
    for (auto &o : terminal.orders) std::cout << "order " << o.ticket << " " << o.symbol << " " << o.type << " " << o.volume_current << " " << o.comment << "\n";
    for (auto &o : terminal.mt4_trades)
        std::cout << (o.type <= 1 ? "position " : "order ") << o.ticket << " " << o.symbol << " " << o.type << " " << o.lots << " " << o.comment << "\n";
    std::cout << "end" << std::endl;
}

static void Mt5Request(SimTerminal &terminal, sim5::ENUM_TRADE_REQUEST_ACTIONS action, const std::string &symbol,
                       int type, double volume, ulong position, double price, double sl, double tp, ulong order) {
    sim5::MqlTradeRequest request;
    request.action = action;
    request.symbol = symbol;
    request.type = (sim5::ENUM_ORDER_TYPE)type;
    request.volume = volume;
    request.position = position;
    request.price = price;
    request.sl = sl;
    request.tp = tp;
    request.order = order;
    sim5::MqlTradeResult result;
    std::cout << "retcode " << terminal.Mt5Send(request, result) << std::endl;
}

// Applies one trader command; false on "quit".
static bool Command(SimTerminal &terminal, const std::string &line) {
    std::istringstream in(line);
    std::string verb, symbol, side;
    in >> verb;
    double volume = 0, price = 0, sl = 0, tp = 0;
    ulong ticket = 0;
    bool mt5 = terminal.platform == 5;
    if (verb == "quit") return false;
    if (verb == "dump") Dump(terminal);
    else if (verb == "quote" && in >> symbol >> price >> volume) terminal.SetQuote(symbol, price, volume);
    else if (verb == "open" && in >> symbol >> side >> volume) {
        if (mt5) Mt5Request(terminal, sim5::TRADE_ACTION_DEAL, symbol, SideNumber(side), volume, 0, 0, 0, 0, 0);
        else std::cout << "ticket " << terminal.Mt4OrderSend(symbol, SideNumber(side), volume, 0, 3, 0, 0, "", 0) << std::endl;
    } else if (verb == "close" && in >> ticket >> volume) {
        if (mt5) {
            SimPosition *p = terminal.FindPositionByTicket(ticket);
            if (p != nullptr) Mt5Request(terminal, sim5::TRADE_ACTION_DEAL, p->symbol, 1 - p->type, volume, ticket, 0, 0, 0, 0);
        } else {
            std::cout << "closed " << terminal.Mt4OrderClose((int)ticket, volume, 0, 3) << std::endl;
        }
    } else if (verb == "modify" && in >> ticket >> sl >> tp) {
        if (mt5) Mt5Request(terminal, sim5::TRADE_ACTION_SLTP, "", 0, 0, ticket, 0, sl, tp, 0);
        else terminal.Mt4OrderModify((int)ticket, 0, sl, tp);
    } else if (verb == "pending" && in >> symbol >> side >> volume >> price) {
        if (mt5) Mt5Request(terminal, sim5::TRADE_ACTION_PENDING, symbol, SideNumber(side), volume, 0, price, 0, 0, 0);
        else std::cout << "ticket " << terminal.Mt4OrderSend(symbol, SideNumber(side), volume, price, 0, 0, 0, "", 0) << std::endl;
    } else if (verb == "cancel" && in >> ticket) {
        if (mt5) Mt5Request(terminal, sim5::TRADE_ACTION_REMOVE, "", 0, 0, 0, 0, 0, 0, ticket);
        else terminal.Mt4OrderDelete((int)ticket);
    } else if (!verb.empty()) std::cout << "unknown command: " << line << std::endl;
    return true;
}

int main(int argc, char **argv) {
    std::map<std::string, std::string> options;
    for (int i = 1; i < argc; i++) {
        std::string key = argv[i];
        if (key == "--netting") options["netting"] = "1";
        else if (i + 1 < argc) options[key.substr(2)] = argv[++i];
    }
    std::string ea_name = options["ea"];
    EaEntry ea = ea_name == "monitor5" ? EaMonitor5() : ea_name == "monitor4" ? EaMonitor4()
               : ea_name == "executor5" ? EaExecutor5() : ea_name == "executor4" ? EaExecutor4() : EaEntry{};
    if (ea.name == nullptr || options["url"].empty() || options["key"].empty()) {
        std::cerr << "usage: ea_host --ea monitor5|monitor4|executor5|executor4 --url ws://host:port/ea --key KEY "
                     "[--login N] [--netting] [--files DIR] [--seconds S]\n";
        return 2;
    }
    SimTerminal terminal;
    terminal.platform = ea.platform;
    terminal.clock_real = true;
    terminal.hedging = options.count("netting") == 0;
    if (!options["login"].empty()) terminal.login = std::stoul(options["login"]);
    terminal.files_dir = options["files"].empty() ? "/tmp/tradebridge-ea-host-" + std::to_string(terminal.login) : options["files"];
    terminal.AddSymbol("EURUSD", 1.08120, 1.08130, 5);
    terminal.AddSymbol("USDJPY", 151.230, 151.245, 3);
    terminal.AddSymbol("XAUUSD", 1990.10, 1990.40, 2);
    g_terminal = &terminal;
    ea.set_input("BridgeUrl", options["url"]);
    ea.set_input("ApiKey", options["key"]);
    if (ea.on_init() != INIT_SUCCEEDED) return 1;
    double seconds = options["seconds"].empty() ? 1e9 : std::stod(options["seconds"]);
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds((long)(seconds * 1000));
    std::string pending_line;
    bool running = true;
    while (running && std::chrono::steady_clock::now() < end) {
        pollfd input_poll{0, POLLIN, 0};
        if (::poll(&input_poll, 1, 10) > 0) {
            char buffer[4096];
            ssize_t got = ::read(0, buffer, sizeof buffer);
            if (got <= 0) input_poll.fd = -1;
            else pending_line.append(buffer, (size_t)got);
            size_t newline;
            while (running && (newline = pending_line.find('\n')) != std::string::npos) {
                running = Command(terminal, pending_line.substr(0, newline));
                pending_line.erase(0, newline + 1);
            }
        }
        EaDeliverTransactions(ea, terminal);
        ea.on_timer();
    }
    ea.on_deinit(0);
    return 0;
}
