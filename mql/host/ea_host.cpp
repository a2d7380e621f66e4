// ea_host.cpp: runs one compiled EA on a simulated terminal against a
// bridge at a given URL, in real time, for end-to-end runs against the real
// bridge (net/tests/mql_e2e.rs drives it).
//
//   ea_host --ea monitor5|monitor4|executor5|executor4 --url ws://127.0.0.1:8080/ea
//           --key KEY [--login N] [--server NAME] [--netting] [--files DIR]
//           [--book FILE] [--suffix S] [--first-ticket N] [--comment-max N]
//           [--strict] [--login-delay-ms N] [--book-delay-ms N]
//           [--input NAME=VALUE]... [--stopped] [--seconds S]
//
// --book FILE keeps the simulated broker's side of the account (positions,
// orders, history, quotes) in FILE, rewritten whenever it changes and read
// at start: killing ea_host and starting it again on the same --files and
// --book is a terminal crash and restart. The book is written before each
// command's answer and after each service round, so kill a host whose EA
// is idle: a kill in the middle of a round may lose that round's trades at
// the broker while the EA's own files kept them. --suffix names every symbol with
// a broker suffix (EURUSD.m). --comment-max is how many characters of an
// order comment the server keeps (31, as MT4 and MT5, by default).
// --stopped starts the terminal without the EA (answer "stopped"): the
// market can move before `start` attaches it.
// --strict turns on what a real terminal and broker do that the plain
// simulator does not (see Strict below): MT5 market orders accepted with
// PLACED and filled 20 ms later in two deals, deals that reach the history
// 15 ms after their transaction, transactions in reverse order; MT4 rests
// of partial closes without "from #N"; market execution (opens refused with
// stops) and a 5-point stops level on every symbol.
// --login-delay-ms N: the terminal logs in N ms after start (the EA's
// OnInit runs before: login 0, no server), and --book-delay-ms M later
// still shows the account's positions and orders.
//
// Commands on stdin drive the account (a trader on a master, the market on
// a slave); every answer ends with a line "end":
//   open SYMBOL buy|sell VOLUME      -> "position <pos>" (MT5 position id, MT4 ticket)
//   close TICKET VOLUME              modify TICKET SL TP
//   pending SYMBOL SIDE VOLUME PRICE -> "order <ticket>"
//   move ORDER PRICE SL TP           a pending order's trigger and stops
//   cancel ORDER
//   quote SYMBOL BID ASK             -> "filled <ticket>" per pending order reached
//   dump                             -> "position|order|opened ..." lines (see Dump)
//   drop                             shuts the EA's sockets down: a dropped connection
//   disconnect | connect             the terminal loses | regains its trade server link
//   status                           -> "login <n>" (0 until logged in), "connected 0|1"
//   stop | start                     OnDeinit | OnInit: the EA restarts, the terminal runs on
//   sync                             answers once the EA has run one more service round
//                                    (it has seen every trade made before)
//   quit
// A trade the server refuses answers "failed <retcode or error>".
#include "mql_shim.h"
#include "ea_entry.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <poll.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

// The EA is serviced this often (its timer); also the stdin poll timeout.
static const int kServicePeriodMs = 10;
// File descriptors searched for the EA's sockets by `drop`.
static const int kFileDescriptorsMax = 1024;

static const char *const kSideNames[] = {"buy", "sell", "buy_limit", "sell_limit", "buy_stop", "sell_stop"};

static int SideNumber(const std::string &side) {
    for (int i = 0; i < 6; i++)
        if (side == kSideNames[i]) return i;
    return -1;
}

static std::string SideName(int type) { return type >= 0 && type < 6 ? kSideNames[type] : "unknown"; }

static std::string Number(double value) {
    char buffer[40];
    std::snprintf(buffer, sizeof buffer, "%.10g", value);
    return buffer;
}

static std::string Field(const std::string &text) { return text.empty() ? "-" : text; }

// One line per open position, pending order and accepted opening order:
//   position <ticket> <pos> <symbol> <side> <volume> <price> <sl> <tp> <origin> <comment...>
//   order <ticket> <symbol> <side> <volume> <price> <sl> <tp> <origin> <comment...>
//   opened <ticket> <comment>
// <origin> is the comment the order was sent with (MT4 shows a partial
// close's rest as "from #N"); "-" stands for an empty text.
static void Dump(SimTerminal &terminal) {
    for (auto &p : terminal.positions)
        std::cout << "position " << p.ticket << " " << p.identifier << " " << p.symbol << " " << SideName(p.type) << " "
                  << Number(p.volume) << " " << Number(p.price_open) << " " << Number(p.sl) << " " << Number(p.tp) << " "
                  << Field(p.comment) << " " << Field(p.comment) << "\n";
    for (auto &o : terminal.orders)
        std::cout << "order " << o.ticket << " " << o.symbol << " " << SideName(o.type) << " " << Number(o.volume_current)
                  << " " << Number(o.price_open) << " " << Number(o.sl) << " " << Number(o.tp) << " " << Field(o.comment)
                  << " " << Field(o.comment) << "\n";
    for (auto &o : terminal.mt4_trades) {
        if (o.type <= 1) std::cout << "position " << o.ticket << " " << o.ticket;
        else std::cout << "order " << o.ticket;
        std::cout << " " << o.symbol << " " << SideName(o.type) << " " << Number(o.lots) << " " << Number(o.open_price)
                  << " " << Number(o.sl) << " " << Number(o.tp) << " " << Field(o.origin_comment) << " "
                  << Field(o.comment) << "\n";
    }
    for (auto &entry : terminal.opened) std::cout << "opened " << entry.ticket << " " << Field(entry.comment) << "\n";
}

static uint Mt5Request(SimTerminal &terminal, sim5::ENUM_TRADE_REQUEST_ACTIONS action, const std::string &symbol,
                       int type, double volume, ulong position, double price, double sl, double tp, ulong order,
                       sim5::MqlTradeResult &result) {
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
    // A trader's terminal sends pending orders with RETURN filling.
    if (action == sim5::TRADE_ACTION_PENDING) request.type_filling = sim5::ORDER_FILLING_RETURN;
    return terminal.Mt5Send(request, result);
}

static bool Mt5Succeeded(uint retcode) { return retcode == 10008 || retcode == 10009 || retcode == 10010; }

// Prints what a trade call did: `what` on success, else the server's code.
static void Report(bool ok, const std::string &what, long code) {
    if (ok) std::cout << what << "\n";
    else std::cout << "failed " << code << "\n";
}

// A trader's market order is done once the server has made all its deals
// (--strict fills later, in two deals); the answer waits for that, at most
// 2 s, so a script that kills the terminal next finds the trade at the broker.
static void AwaitOrder(SimTerminal &terminal, ulong order) {
    for (int waited_ms = 0; waited_ms < 2000 && terminal.FindOrder(order) != nullptr; waited_ms++) {
        terminal.Pump();
        if (terminal.FindOrder(order) != nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

static void OpenOrPlace(SimTerminal &terminal, bool pending, const std::string &symbol, int type, double volume,
                        double price) {
    if (terminal.platform == 4) {
        int ticket = terminal.Mt4OrderSend(symbol, type, volume, price, 3, 0, 0, "", 0);
        Report(ticket > 0, (pending ? "order " : "position ") + std::to_string(ticket), terminal.last_error);
        return;
    }
    sim5::MqlTradeResult result;
    uint code = pending ? Mt5Request(terminal, sim5::TRADE_ACTION_PENDING, symbol, type, volume, 0, price, 0, 0, 0, result)
                        : Mt5Request(terminal, sim5::TRADE_ACTION_DEAL, symbol, type, volume, 0, 0, 0, 0, 0, result);
    if (!pending && Mt5Succeeded(code)) AwaitOrder(terminal, result.order);
    ulong id = pending ? result.order : 0;
    for (const auto &deal : terminal.deals)
        if (!pending && deal.order == result.order) id = deal.position_id;
    Report(Mt5Succeeded(code), (pending ? "order " : "position ") + std::to_string(id), code);
}

static void Close(SimTerminal &terminal, ulong ticket, double volume) {
    if (terminal.platform == 4) {
        // The call first: argument evaluation order would read last_error before it.
        bool ok = terminal.Mt4OrderClose((int)ticket, volume, 0, 3);
        Report(ok, "done", terminal.last_error);
        return;
    }
    SimPosition *p = terminal.FindPositionByTicket(ticket);
    if (p == nullptr) {
        Report(false, "", 10036);
        return;
    }
    sim5::MqlTradeResult result;
    uint code = Mt5Request(terminal, sim5::TRADE_ACTION_DEAL, p->symbol, 1 - p->type, volume, ticket, 0, 0, 0, 0, result);
    if (Mt5Succeeded(code)) AwaitOrder(terminal, result.order);
    Report(Mt5Succeeded(code), "done", code);
}

static void Modify(SimTerminal &terminal, bool order, ulong ticket, double price, double sl, double tp) {
    if (terminal.platform == 4) {
        bool ok = terminal.Mt4OrderModify((int)ticket, price, sl, tp);
        Report(ok, "done", terminal.last_error);
        return;
    }
    sim5::MqlTradeResult result;
    uint code = order ? Mt5Request(terminal, sim5::TRADE_ACTION_MODIFY, "", 0, 0, 0, price, sl, tp, ticket, result)
                      : Mt5Request(terminal, sim5::TRADE_ACTION_SLTP, "", 0, 0, ticket, 0, sl, tp, 0, result);
    Report(Mt5Succeeded(code), "done", code);
}

static void Cancel(SimTerminal &terminal, ulong ticket) {
    if (terminal.platform == 4) {
        bool ok = terminal.Mt4OrderDelete((int)ticket);
        Report(ok, "done", terminal.last_error);
        return;
    }
    sim5::MqlTradeResult result;
    uint code = Mt5Request(terminal, sim5::TRADE_ACTION_REMOVE, "", 0, 0, 0, 0, 0, 0, ticket, result);
    Report(Mt5Succeeded(code), "done", code);
}

// Shuts down every socket of this process (only the EA's): the EA sees its
// connection drop as if the network went away.
static int DropSockets() {
    int dropped = 0;
    for (int fd = 3; fd < kFileDescriptorsMax; fd++) {
        struct stat info;
        if (fstat(fd, &info) != 0 || !S_ISSOCK(info.st_mode)) continue;
        if (::shutdown(fd, SHUT_RDWR) == 0) dropped++;
    }
    return dropped;
}

/// The EA, its terminal and whether the EA is attached (between start and stop).
struct Host {
    SimTerminal terminal;
    EaEntry ea;
    bool ea_running = false;
    std::string book_path;
    std::string book_saved;
    /// A `sync` waits for the end of the next service round.
    bool sync_waiting = false;
};

static void Start(Host &host) {
    if (host.ea_running) return;
    // A terminal does not replay transactions to an EA that was not there.
    host.terminal.transactions.clear();
    int code = host.ea.on_init();
    host.ea_running = code == INIT_SUCCEEDED;
    std::cout << "init " << code << "\n";
}

static void Stop(Host &host) {
    if (host.ea_running) host.ea.on_deinit(0);
    host.ea_running = false;
}

// Applies one command; false on "quit".
static bool Command(Host &host, const std::string &line) {
    SimTerminal &terminal = host.terminal;
    std::istringstream in(line);
    std::string verb, symbol, side;
    in >> verb;
    double volume = 0, price = 0, sl = 0, tp = 0;
    ulong ticket = 0;
    if (verb == "quit") return false;
    if (verb == "dump") Dump(terminal);
    else if (verb == "quote" && in >> symbol >> price >> volume) {
        terminal.SetQuote(symbol, price, volume);
        for (ulong filled : terminal.TriggerCrossedPending(symbol)) std::cout << "filled " << filled << "\n";
    } else if (verb == "open" && in >> symbol >> side >> volume) OpenOrPlace(terminal, false, symbol, SideNumber(side), volume, 0);
    else if (verb == "pending" && in >> symbol >> side >> volume >> price) OpenOrPlace(terminal, true, symbol, SideNumber(side), volume, price);
    else if (verb == "close" && in >> ticket >> volume) Close(terminal, ticket, volume);
    else if (verb == "modify" && in >> ticket >> sl >> tp) Modify(terminal, false, ticket, 0, sl, tp);
    else if (verb == "move" && in >> ticket >> price >> sl >> tp) Modify(terminal, true, ticket, price, sl, tp);
    else if (verb == "cancel" && in >> ticket) Cancel(terminal, ticket);
    else if (verb == "drop") std::cout << "dropped " << DropSockets() << "\n";
    else if (verb == "status")
        std::cout << "login " << (terminal.LoggedIn() ? terminal.login : 0) << "\nconnected " << (terminal.Connected() ? 1 : 0) << "\n";
    else if (verb == "disconnect") terminal.broker_connected = false;
    else if (verb == "connect") terminal.broker_connected = true;
    else if (verb == "stop") Stop(host);
    else if (verb == "start") Start(host);
    else if (!verb.empty()) std::cout << "unknown command: " << line << "\n";
    return true;
}

// Rewrites the book file (through a temporary, so a kill leaves the old or
// the new book) when the broker's side changed since the last write.
static void SaveBook(Host &host) {
    if (host.book_path.empty()) return;
    std::string text = host.terminal.SaveBook();
    if (text == host.book_saved) return;
    std::string temporary = host.book_path + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << text;
    }
    if (std::rename(temporary.c_str(), host.book_path.c_str()) == 0) host.book_saved = text;
}

static bool LoadBook(Host &host) {
    std::ifstream in(host.book_path);
    if (!in) return true;
    std::stringstream text;
    text << in.rdbuf();
    std::string error;
    if (!host.terminal.LoadBook(text.str(), error)) {
        std::cerr << "ea_host: " << host.book_path << ": " << error << "\n";
        return false;
    }
    host.book_saved = text.str();
    return true;
}

static void Serve(Host &host, double seconds) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds((long)(seconds * 1000));
    std::string pending_line;
    bool running = true, input_open = true;
    while (running && std::chrono::steady_clock::now() < end) {
        pollfd input_poll{0, POLLIN, 0};
        if (!input_open) std::this_thread::sleep_for(std::chrono::milliseconds(kServicePeriodMs));
        else if (::poll(&input_poll, 1, kServicePeriodMs) > 0) {
            char buffer[4096];
            ssize_t got = ::read(0, buffer, sizeof buffer);
            if (got <= 0) input_open = false;
            else pending_line.append(buffer, (size_t)got);
            size_t newline;
            while (running && (newline = pending_line.find('\n')) != std::string::npos) {
                std::string line = pending_line.substr(0, newline);
                pending_line.erase(0, newline + 1);
                if (line == "sync") {
                    host.sync_waiting = true;
                    continue;
                }
                running = Command(host, line);
                // The answer follows the book's save: a script that kills
                // the host after it finds the trade at the broker.
                SaveBook(host);
                std::cout << "end" << std::endl;
            }
        }
        // The server's work that is due happens whether or not the EA asks.
        host.terminal.Pump();
        if (host.ea_running) {
            EaDeliverTransactions(host.ea, host.terminal);
            host.ea.on_timer();
        } else {
            host.terminal.transactions.clear();
        }
        SaveBook(host);
        if (host.sync_waiting) std::cout << "end" << std::endl;
        host.sync_waiting = false;
    }
    Stop(host);
}

// What a real terminal and broker do that the plain simulator does not
// (--strict); each is one of the behaviours issue 12's scenarios pin.
static void Strict(SimTerminal &terminal) {
    terminal.deal_delay_ms = 20;
    terminal.accepted_retcode = 10008;
    terminal.deals_per_fill = 2;
    terminal.deal_history_delay_ms = 15;
    terminal.transactions_reversed = true;
    terminal.mt4_rest_comment = "";
    for (auto &entry : terminal.symbols) {
        entry.second.execution_market = true;
        entry.second.stops_level = 5;
    }
}

static EaEntry EaByName(const std::string &name) {
    if (name == "monitor5") return EaMonitor5();
    if (name == "monitor4") return EaMonitor4();
    if (name == "executor5") return EaExecutor5();
    if (name == "executor4") return EaExecutor4();
    return EaEntry{};
}

static void AddSymbols(SimTerminal &terminal, const std::string &suffix) {
    terminal.AddSymbol("EURUSD" + suffix, 1.08120, 1.08130, 5);
    terminal.AddSymbol("USDJPY" + suffix, 151.230, 151.245, 3);
    terminal.AddSymbol("XAUUSD" + suffix, 1990.10, 1990.40, 2);
    terminal.AddSymbol("GBPUSD" + suffix, 1.26500, 1.26510, 5);
    terminal.AddSymbol("AUDUSD" + suffix, 0.65400, 0.65410, 5);
    terminal.AddSymbol("USDCHF" + suffix, 0.88200, 0.88215, 5);
    terminal.AddSymbol("NZDUSD" + suffix, 0.61000, 0.61010, 5);
    terminal.AddSymbol("USDCAD" + suffix, 1.35900, 1.35915, 5);
}

int main(int argc, char **argv) {
    std::map<std::string, std::string> options;
    std::vector<std::string> inputs;
    for (int i = 1; i < argc; i++) {
        std::string key = argv[i];
        if (key == "--netting" || key == "--stopped" || key == "--strict") options[key.substr(2)] = "1";
        else if (key == "--input" && i + 1 < argc) inputs.push_back(argv[++i]);
        else if (i + 1 < argc) options[key.substr(2)] = argv[++i];
    }
    Host host;
    host.ea = EaByName(options["ea"]);
    if (host.ea.name == nullptr || options["url"].empty() || options["key"].empty()) {
        std::cerr << "usage: ea_host --ea monitor5|monitor4|executor5|executor4 --url ws://host:port/ea --key KEY [--login N] "
                     "[--server NAME] [--netting] [--files DIR] [--book FILE] [--suffix S] [--first-ticket N] "
                     "[--comment-max N] [--strict] [--login-delay-ms N] [--book-delay-ms N] [--input NAME=VALUE]... "
                     "[--stopped] [--seconds S]\n";
        return 2;
    }
    SimTerminal &terminal = host.terminal;
    terminal.platform = host.ea.platform;
    terminal.clock_real = true;
    terminal.hedging = options.count("netting") == 0;
    if (!options["login"].empty()) terminal.login = std::stoul(options["login"]);
    if (!options["server"].empty()) terminal.server = options["server"];
    if (!options["first-ticket"].empty()) terminal.next_ticket = std::stoul(options["first-ticket"]);
    if (!options["comment-max"].empty()) terminal.comment_length_max = std::stoul(options["comment-max"]);
    terminal.files_dir = options["files"].empty() ? "/tmp/tradebridge-ea-host-" + std::to_string(terminal.login) : options["files"];
    AddSymbols(terminal, options["suffix"]);
    if (options.count("strict") != 0) Strict(terminal);
    host.book_path = options["book"];
    g_terminal = &terminal;
    if (!LoadBook(host)) return 1;
    if (!options["login-delay-ms"].empty() || !options["book-delay-ms"].empty())
        terminal.StartLoggedOut(options["login-delay-ms"].empty() ? 0 : std::stoul(options["login-delay-ms"]),
                                options["book-delay-ms"].empty() ? 0 : std::stoul(options["book-delay-ms"]));
    host.ea.set_input("BridgeUrl", options["url"]);
    host.ea.set_input("ApiKey", options["key"]);
    for (const std::string &setting : inputs) {
        size_t equals = setting.find('=');
        if (equals == std::string::npos || !host.ea.set_input(setting.substr(0, equals), setting.substr(equals + 1))) {
            std::cerr << "ea_host: --input " << setting << ": expected NAME=VALUE with an input of " << host.ea.name << "\n";
            return 2;
        }
    }
    if (options.count("stopped") != 0) std::cout << "stopped\n";
    else Start(host);
    std::cout << "end" << std::endl;
    if (!host.ea_running && options.count("stopped") == 0) return 1;
    Serve(host, options["seconds"].empty() ? 1e9 : std::stod(options["seconds"]));
    return 0;
}
