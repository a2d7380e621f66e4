// sim_book.cpp: the simulated broker's side of an account saved as text and
// read back (SimTerminal::SaveBook / LoadBook), so ea_host can be killed
// and started again on the same positions, as a real terminal that crashed
// finds its account unchanged at the broker.
//
// # Layout
// One record per line, fields separated by tabs (no comment or symbol
// holds a tab); the first field names the record:
//
//     account        next_ticket balance equity
//     quote          symbol bid ask
//     position       ticket identifier type volume price sl tp magic symbol comment
//     order          ticket type state volume_initial volume_current price sl tp magic position_id symbol comment
//     history_order  (as order)
//     deal           ticket order position_id type entry volume price magic time_msc symbol comment
//     mt4_trade      ticket type lots open_price close_price sl tp magic open_time close_time symbol comment origin_comment
//     mt4_history    (as mt4_trade)
//     opened         ticket comment
//
// # Invariants
// - Doubles are written with 17 significant digits, so every value reads
//   back bit for bit.
// - LoadBook replaces the whole book or, on a bad line, leaves `error`
//   naming the line and returns false.
// - A market order active in the saved book (taken, not yet filled when
//   the terminal died) is filled on the next Pump: the server does not
//   wait for the terminal.
#define TB_SHIM_IMPLEMENTATION
#include "mql_shim.h"

#include <cstdlib>
#include <sstream>

namespace {

/// Fields of one record, written tab-separated.
class Record {
  public:
    explicit Record(const char *kind) { text_ = kind; }
    Record &Add(const std::string &value) {
        text_ += '\t';
        text_ += value;
        return *this;
    }
    Record &Add(double value) {
        char buffer[40];
        std::snprintf(buffer, sizeof buffer, "%.17g", value);
        return Add(std::string(buffer));
    }
    Record &Add(ulong value) { return Add(std::to_string(value)); }
    Record &Add(long value) { return Add(std::to_string(value)); }
    Record &Add(int value) { return Add(std::to_string(value)); }
    std::string Line() const { return text_ + "\n"; }

  private:
    std::string text_;
};

std::vector<std::string> SplitTabs(const std::string &line) {
    std::vector<std::string> fields;
    size_t start = 0;
    while (true) {
        size_t tab = line.find('\t', start);
        fields.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
        if (tab == std::string::npos) return fields;
        start = tab + 1;
    }
}

/// Reads fields in order; `ok` turns false at the first missing or bad one.
class Reader {
  public:
    explicit Reader(const std::vector<std::string> &fields) : fields_(fields) {}
    std::string Text() { return index_ < fields_.size() ? fields_[index_++] : Fail(); }
    double Double() {
        std::string field = Text();
        char *end = nullptr;
        double value = std::strtod(field.c_str(), &end);
        if (field.empty() || *end != '\0') ok = false;
        return value;
    }
    ulong Unsigned() {
        std::string field = Text();
        char *end = nullptr;
        ulong value = std::strtoul(field.c_str(), &end, 10);
        if (field.empty() || *end != '\0') ok = false;
        return value;
    }
    long Signed() {
        std::string field = Text();
        char *end = nullptr;
        long value = std::strtol(field.c_str(), &end, 10);
        if (field.empty() || *end != '\0') ok = false;
        return value;
    }
    bool ok = true;

  private:
    std::string Fail() {
        ok = false;
        return "";
    }
    const std::vector<std::string> &fields_;
    size_t index_ = 1;
};

std::string OrderLine(const char *kind, const SimOrder &order) {
    return Record(kind)
        .Add(order.ticket).Add(order.type).Add(order.state).Add(order.volume_initial).Add(order.volume_current)
        .Add(order.price_open).Add(order.sl).Add(order.tp).Add(order.magic).Add(order.position_id).Add(order.symbol)
        .Add(order.comment).Line();
}

SimOrder ReadOrder(Reader &in) {
    SimOrder order;
    order.ticket = in.Unsigned();
    order.type = (int)in.Signed();
    order.state = (int)in.Signed();
    order.volume_initial = in.Double();
    order.volume_current = in.Double();
    order.price_open = in.Double();
    order.sl = in.Double();
    order.tp = in.Double();
    order.magic = in.Unsigned();
    order.position_id = in.Unsigned();
    order.symbol = in.Text();
    order.comment = in.Text();
    return order;
}

std::string Mt4Line(const char *kind, const Sim4Order &order) {
    return Record(kind)
        .Add(order.ticket).Add(order.type).Add(order.lots).Add(order.open_price).Add(order.close_price).Add(order.sl)
        .Add(order.tp).Add(order.magic).Add(order.open_time).Add(order.close_time).Add(order.symbol).Add(order.comment)
        .Add(order.origin_comment).Line();
}

Sim4Order ReadMt4(Reader &in) {
    Sim4Order order;
    order.ticket = (int)in.Signed();
    order.type = (int)in.Signed();
    order.lots = in.Double();
    order.open_price = in.Double();
    order.close_price = in.Double();
    order.sl = in.Double();
    order.tp = in.Double();
    order.magic = (int)in.Signed();
    order.open_time = in.Signed();
    order.close_time = in.Signed();
    order.symbol = in.Text();
    order.comment = in.Text();
    order.origin_comment = in.Text();
    return order;
}

} // namespace

std::string SimTerminal::SaveBook() const {
    std::string text = Record("account").Add(next_ticket).Add(balance).Add(equity).Line();
    for (const auto &entry : symbols) text += Record("quote").Add(entry.first).Add(entry.second.bid).Add(entry.second.ask).Line();
    for (const auto &p : positions)
        text += Record("position").Add(p.ticket).Add(p.identifier).Add(p.type).Add(p.volume).Add(p.price_open).Add(p.sl)
                    .Add(p.tp).Add(p.magic).Add(p.symbol).Add(p.comment).Line();
    for (const auto &order : orders) text += OrderLine("order", order);
    for (const auto &order : history_orders) text += OrderLine("history_order", order);
    for (const auto &d : deals)
        text += Record("deal").Add(d.ticket).Add(d.order).Add(d.position_id).Add(d.type).Add(d.entry).Add(d.volume)
                    .Add(d.price).Add(d.magic).Add(d.time_msc).Add(d.symbol).Add(d.comment).Line();
    for (const auto &order : mt4_trades) text += Mt4Line("mt4_trade", order);
    for (const auto &order : mt4_history) text += Mt4Line("mt4_history", order);
    for (const auto &entry : opened) text += Record("opened").Add(entry.ticket).Add(entry.comment).Line();
    return text;
}

bool SimTerminal::LoadBook(const std::string &text, std::string &error) {
    SimTerminal loaded;
    loaded.symbols = symbols;
    std::istringstream lines(text);
    std::string line;
    for (int number = 1; std::getline(lines, line); number++) {
        std::vector<std::string> fields = SplitTabs(line);
        Reader in(fields);
        const std::string &kind = fields[0];
        if (kind == "account") {
            loaded.next_ticket = in.Unsigned();
            loaded.balance = in.Double();
            loaded.equity = in.Double();
        } else if (kind == "quote") {
            std::string name = in.Text();
            double bid = in.Double(), ask = in.Double();
            loaded.SetQuote(name, bid, ask);
        } else if (kind == "position") {
            SimPosition p;
            p.ticket = in.Unsigned();
            p.identifier = in.Unsigned();
            p.type = (int)in.Signed();
            p.volume = in.Double();
            p.price_open = in.Double();
            p.sl = in.Double();
            p.tp = in.Double();
            p.magic = in.Unsigned();
            p.symbol = in.Text();
            p.comment = in.Text();
            loaded.positions.push_back(p);
        } else if (kind == "order") {
            loaded.orders.push_back(ReadOrder(in));
        } else if (kind == "history_order") {
            loaded.history_orders.push_back(ReadOrder(in));
        } else if (kind == "deal") {
            SimDeal d;
            d.ticket = in.Unsigned();
            d.order = in.Unsigned();
            d.position_id = in.Unsigned();
            d.type = (int)in.Signed();
            d.entry = (int)in.Signed();
            d.volume = in.Double();
            d.price = in.Double();
            d.magic = in.Unsigned();
            d.time_msc = in.Signed();
            d.symbol = in.Text();
            d.comment = in.Text();
            loaded.deals.push_back(d);
        } else if (kind == "mt4_trade") {
            loaded.mt4_trades.push_back(ReadMt4(in));
        } else if (kind == "mt4_history") {
            loaded.mt4_history.push_back(ReadMt4(in));
        } else if (kind == "opened") {
            SimOpened entry;
            entry.ticket = in.Unsigned();
            entry.comment = in.Text();
            loaded.opened.push_back(entry);
        } else {
            in.ok = false;
        }
        if (!in.ok) {
            error = "book line " + std::to_string(number) + " is not a valid record: '" + line + "'";
            return false;
        }
    }
    next_ticket = loaded.next_ticket;
    balance = loaded.balance;
    equity = loaded.equity;
    symbols = loaded.symbols;
    positions = loaded.positions;
    orders = loaded.orders;
    history_orders = loaded.history_orders;
    deals = loaded.deals;
    mt4_trades = loaded.mt4_trades;
    mt4_history = loaded.mt4_history;
    opened = loaded.opened;
    RequeueMarketOrders();
    return true;
}

// A market order still active in a saved book was taken by the server,
// which fills it whether or not the terminal was there: it is filled on the
// next Pump, at the quotes then.
void SimTerminal::RequeueMarketOrders() {
    queued_fills.clear();
    for (const auto &order : orders) {
        if (order.type > 1) continue;
        SimQueuedFill fill;
        fill.request.action = sim5::TRADE_ACTION_DEAL;
        fill.request.symbol = MqlString(order.symbol);
        fill.request.type = (sim5::ENUM_ORDER_TYPE)order.type;
        fill.request.volume = order.volume_current;
        fill.request.magic = order.magic;
        fill.request.comment = MqlString(order.comment);
        for (const auto &position : positions)
            if (order.position_id != 0 && position.identifier == order.position_id) fill.request.position = position.ticket;
        fill.order = order.ticket;
        fill.volume_left = order.volume_current;
        fill.deals_left = 1;
        fill.due_us = 0;
        queued_fills.push_back(fill);
    }
}
