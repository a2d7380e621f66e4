// sim_terminal.cpp: the simulated trade servers behind the shim.
//
// # Layout
// - Start-up (login and book arriving late), symbols, quotes, and the
//   checks a server makes of prices and stops (tick size, stops and
//   freeze levels, market execution).
// - MT5: Mt5Send dispatches on the request action; a market order becomes
//   an active order, then one or more deals (at once, or later through
//   Pump when deal_delay_ms is set), then a history order; position
//   changes and the OnTradeTransaction stream.
// - MT4: OrderSend / OrderClose / OrderCloseBy (a partial close makes a new
//   ticket, commented "from #N" by a real server or otherwise by some
//   brokers, and leaves "to #M" on the closed part in history) /
//   OrderModify / OrderDelete, and an order pool that can shift while the
//   EA walks it (pool_shift).
//
// # Invariants
// - A forced retcode or error, or a refusal, consumes one request and
//   changes nothing.
// - Volumes, prices and stops are checked before anything changes.
// - Every deal of a market order belongs to that order; the order moves to
//   history with its last deal.
#define TB_SHIM_IMPLEMENTATION
#include "mql_shim.h"

#include <algorithm>
#include <chrono>
#include <cmath>

using namespace sim5;

SimTerminal *g_terminal = nullptr;

// Retcodes of the MT5 reference used by the simulated server.
static const uint kRetcodePlaced = 10008;
static const uint kRetcodeDone = 10009;
static const uint kRetcodeDonePartial = 10010;
static const uint kRetcodeInvalid = 10013;
static const uint kRetcodeInvalidVolume = 10014;
static const uint kRetcodeInvalidPrice = 10015;
static const uint kRetcodeInvalidStops = 10016;
static const uint kRetcodeMarketClosed = 10018;
static const uint kRetcodePriceOff = 10021;
static const uint kRetcodeInvalidExpiration = 10022;
static const uint kRetcodeClientDisablesAutoTrading = 10027;
static const uint kRetcodeFrozen = 10029;
static const uint kRetcodeInvalidFill = 10030;
static const uint kRetcodeConnection = 10031;
static const uint kRetcodeInvalidOrder = 10035;
static const uint kRetcodePositionClosed = 10036;

ulong SimTerminal::NowMicroseconds() const {
    if (!clock_real) return clock_us;
    auto now = std::chrono::system_clock::now().time_since_epoch();
    return (ulong)std::chrono::duration_cast<std::chrono::microseconds>(now).count();
}

void SimTerminal::StartLoggedOut(ulong login_delay_ms, ulong book_delay_ms) {
    login_at_us = NowMicroseconds() + login_delay_ms * 1000ul;
    book_at_us = login_at_us + book_delay_ms * 1000ul;
}

void SimTerminal::Pump() {
    ulong now = NowMicroseconds();
    // Bounded: each pass either runs a due fill's deal (finite deals) or stops.
    for (size_t guard = 0; guard < 10000; guard++) {
        size_t due = queued_fills.size();
        for (size_t i = 0; i < queued_fills.size(); i++)
            if (queued_fills[i].due_us <= now && (due == queued_fills.size() || queued_fills[i].due_us < queued_fills[due].due_us))
                due = i;
        if (due == queued_fills.size()) return;
        RunQueuedFill(queued_fills[due]);
        if (queued_fills[due].deals_left <= 0) queued_fills.erase(queued_fills.begin() + (long)due);
    }
}

std::vector<MqlTradeTransaction> SimTerminal::TakeTransactions() {
    std::vector<MqlTradeTransaction> taken;
    taken.swap(transactions);
    if (transactions_reversed) std::reverse(taken.begin(), taken.end());
    return taken;
}

//--------------------------------------------------------------------
// symbols, quotes, prices and stops
//--------------------------------------------------------------------
void SimTerminal::AddSymbol(const std::string &name, double bid, double ask, int digits) {
    SimSymbol symbol;
    symbol.name = name;
    symbol.bid = bid;
    symbol.ask = ask;
    symbol.digits = digits;
    symbol.point = std::pow(10.0, -digits);
    symbol.tick_size = symbol.point;
    symbols[name] = symbol;
}

SimSymbol *SimTerminal::FindSymbol(const std::string &name) {
    auto found = symbols.find(name);
    return found == symbols.end() ? nullptr : &found->second;
}

void SimTerminal::SetQuote(const std::string &name, double bid, double ask) {
    SimSymbol *symbol = FindSymbol(name);
    if (symbol == nullptr) return;
    symbol->bid = bid;
    symbol->ask = ask;
}

double SimTerminal::Bid(const SimSymbol &symbol) const {
    bool waiting = symbol.quote_delay_ms >= 0 && (!symbol.in_market_watch || NowMicroseconds() < symbol.quote_ready_at_us);
    return waiting ? 0 : symbol.bid;
}

double SimTerminal::Ask(const SimSymbol &symbol) const {
    bool waiting = symbol.quote_delay_ms >= 0 && (!symbol.in_market_watch || NowMicroseconds() < symbol.quote_ready_at_us);
    return waiting ? 0 : symbol.ask;
}

bool SimTerminal::SelectSymbol(const std::string &name, bool select) {
    SimSymbol *symbol = FindSymbol(name);
    if (symbol == nullptr) return false;
    if (select && !symbol->in_market_watch && symbol->quote_delay_ms >= 0)
        symbol->quote_ready_at_us = NowMicroseconds() + (ulong)symbol->quote_delay_ms * 1000ul;
    symbol->in_market_watch = select;
    return true;
}

bool SimTerminal::VolumeValid(const SimSymbol &symbol, double volume) const {
    if (volume < symbol.volume_min - 1e-9 || volume > symbol.volume_max + 1e-9) return false;
    double steps = volume / symbol.volume_step;
    return std::fabs(steps - std::round(steps)) < 1e-6;
}

bool SimTerminal::PendingPriceValid(const SimSymbol &symbol, int type, double price) const {
    // A limit waits for a better price, a stop for a worse one; an order
    // the market has already reached is refused, as a real server does.
    switch (type) {
    case ORDER_TYPE_BUY_LIMIT: return price < Ask(symbol);
    case ORDER_TYPE_SELL_LIMIT: return price > Bid(symbol);
    case ORDER_TYPE_BUY_STOP: return price > Ask(symbol);
    case ORDER_TYPE_SELL_STOP: return price < Bid(symbol);
    }
    return false;
}

bool SimTerminal::PriceNormalized(const SimSymbol &symbol, double price) const {
    if (price == 0) return true;
    double tick = symbol.tick_size > 0 ? symbol.tick_size : symbol.point;
    double ticks = price / tick;
    double scaled = price * std::pow(10.0, symbol.digits);
    return std::fabs(ticks - std::round(ticks)) < 1e-6 && std::fabs(scaled - std::round(scaled)) < 1e-6;
}

bool SimTerminal::StopsValid(const SimSymbol &symbol, int type, double price, double sl, double tp) const {
    double level = symbol.stops_level * symbol.point - 1e-9;
    bool buy = type % 2 == 0;
    // A position's stops are measured from the price it would close at; a
    // pending order's from its trigger, and the trigger from the market.
    double reference = type <= 1 ? (buy ? Bid(symbol) : Ask(symbol)) : price;
    if (type > 1) {
        double market = buy ? Ask(symbol) : Bid(symbol);
        if (std::fabs(price - market) < level) return false;
    }
    if (sl != 0 && (buy ? reference - sl : sl - reference) < level) return false;
    if (tp != 0 && (buy ? tp - reference : reference - tp) < level) return false;
    return true;
}

bool SimTerminal::Frozen(const SimSymbol &symbol, int type, double price, double sl, double tp) const {
    if (symbol.freeze_level <= 0) return false;
    double level = symbol.freeze_level * symbol.point + 1e-9;
    bool buy = type % 2 == 0;
    double market = type <= 1 ? (buy ? Bid(symbol) : Ask(symbol)) : (buy ? Ask(symbol) : Bid(symbol));
    if (type > 1 && std::fabs(market - price) <= level) return true;
    if (sl != 0 && std::fabs(market - sl) <= level) return true;
    return tp != 0 && std::fabs(market - tp) <= level;
}

std::string SimTerminal::CutComment(const std::string &comment) const {
    if (comment_length_max == 0 || comment.size() <= comment_length_max) return comment;
    return comment.substr(0, comment_length_max);
}

std::vector<ulong> SimTerminal::TriggerCrossedPending(const std::string &symbol_name) {
    std::vector<ulong> crossed;
    SimSymbol *symbol = FindSymbol(symbol_name);
    if (symbol == nullptr) return crossed;
    // Limits fill at or better than their price, stops once it is reached.
    auto reached = [&](int type, double price) {
        switch (type) {
        case ORDER_TYPE_BUY_LIMIT: return symbol->ask <= price;
        case ORDER_TYPE_SELL_LIMIT: return symbol->bid >= price;
        case ORDER_TYPE_BUY_STOP: return symbol->ask >= price;
        case ORDER_TYPE_SELL_STOP: return symbol->bid <= price;
        }
        return false;
    };
    for (const auto &order : orders)
        if (order.symbol == symbol_name && order.type >= ORDER_TYPE_BUY_LIMIT && reached(order.type, order.price_open))
            crossed.push_back(order.ticket);
    for (const auto &order : mt4_trades)
        if (order.symbol == symbol_name && order.type > 1 && reached(order.type, order.open_price))
            crossed.push_back((ulong)order.ticket);
    for (ulong ticket : crossed)
        if (!Mt5TriggerPending(ticket)) Mt4TriggerPending((int)ticket);
    return crossed;
}

//--------------------------------------------------------------------
// MT5
//--------------------------------------------------------------------
SimPosition *SimTerminal::FindPositionByTicket(ulong ticket) {
    for (auto &position : positions)
        if (position.ticket == ticket) return &position;
    return nullptr;
}

SimPosition *SimTerminal::FindPositionBySymbol(const std::string &symbol) {
    for (auto &position : positions)
        if (position.symbol == symbol) return &position;
    return nullptr;
}

SimOrder *SimTerminal::FindOrder(ulong ticket) {
    for (auto &order : orders)
        if (order.ticket == ticket) return &order;
    return nullptr;
}

const SimDeal *SimTerminal::FindDeal(ulong ticket) const {
    ulong now = NowMicroseconds();
    for (auto &deal : deals)
        if (deal.ticket == ticket) return deal.visible_at_us <= now ? &deal : nullptr;
    return nullptr;
}

const SimOrder *SimTerminal::FindHistoryOrder(ulong ticket) const {
    for (auto &order : history_orders)
        if (order.ticket == ticket) return &order;
    return nullptr;
}

bool SimTerminal::ReopenPosition(ulong identifier) {
    for (auto &position : positions) {
        if (position.identifier != identifier) continue;
        position.ticket = next_ticket++;
        PushTransaction(TRADE_TRANSACTION_POSITION, 0, 0, position.symbol, position.price_open, position.sl,
                        position.tp, position.volume, position.ticket, position.type, 0, 0);
        return true;
    }
    return false;
}

void SimTerminal::PushTransaction(ENUM_TRADE_TRANSACTION_TYPE type, ulong deal, ulong order, const std::string &symbol,
                                  double price, double sl, double tp, double volume, ulong position, int order_type,
                                  int order_state, int deal_type) {
    MqlTradeTransaction transaction;
    transaction.type = type;
    transaction.deal = deal;
    transaction.order = order;
    transaction.symbol = MqlString(symbol);
    transaction.price = price;
    transaction.price_sl = sl;
    transaction.price_tp = tp;
    transaction.volume = volume;
    transaction.position = position;
    transaction.order_type = (ENUM_ORDER_TYPE)order_type;
    transaction.order_state = (ENUM_ORDER_STATE)order_state;
    transaction.deal_type = (ENUM_DEAL_TYPE)deal_type;
    transactions.push_back(transaction);
}

ulong SimTerminal::AddFilledOrder(const std::string &symbol, int type, double volume, double price, ulong position_id,
                                  ulong magic, const std::string &comment) {
    SimOrder order;
    order.ticket = next_ticket++;
    order.symbol = symbol;
    order.type = type;
    order.state = ORDER_STATE_FILLED;
    order.volume_initial = volume;
    order.price_open = price;
    order.magic = magic;
    order.position_id = position_id == 0 ? order.ticket : position_id;
    order.comment = comment;
    history_orders.push_back(order);
    PushTransaction(TRADE_TRANSACTION_ORDER_ADD, 0, order.ticket, symbol, price, 0, 0, volume, 0, type,
                    ORDER_STATE_STARTED, 0);
    return order.ticket;
}

ulong SimTerminal::AddDeal(const std::string &symbol, int type, int entry, double volume, double price,
                           ulong position_id, ulong order, ulong magic, const std::string &comment, bool order_done) {
    SimDeal deal;
    deal.ticket = next_ticket++;
    deal.order = order;
    deal.position_id = position_id;
    deal.symbol = symbol;
    deal.type = type;
    deal.entry = entry;
    deal.volume = volume;
    deal.price = price;
    deal.magic = magic;
    deal.comment = comment;
    // Deal times are the trade server's clock, like TimeCurrent().
    deal.time_msc = (long)(NowMicroseconds() / 1000) + server_offset_seconds * 1000;
    deal.visible_at_us = NowMicroseconds() + (ulong)std::max(0l, deal_history_delay_ms) * 1000ul;
    deals.push_back(deal);
    PushTransaction(TRADE_TRANSACTION_DEAL_ADD, deal.ticket, order, symbol, price, 0, 0, volume, position_id, type,
                    ORDER_STATE_FILLED, type);
    if (order_done) {
        PushTransaction(TRADE_TRANSACTION_ORDER_DELETE, 0, order, symbol, price, 0, 0, volume, position_id, type,
                        ORDER_STATE_FILLED, 0);
        PushTransaction(TRADE_TRANSACTION_HISTORY_ADD, 0, order, symbol, price, 0, 0, volume, position_id, type,
                        ORDER_STATE_FILLED, 0);
    }
    return deal.ticket;
}

void SimTerminal::ReducePosition(size_t index, double volume) {
    positions[index].volume = std::round((positions[index].volume - volume) * 1e8) / 1e8;
    if (positions[index].volume <= 1e-9) positions.erase(positions.begin() + (long)index);
}

uint SimTerminal::Mt5Refusal() const {
    if (!Connected()) return kRetcodeConnection;
    if (!autotrading) return kRetcodeClientDisablesAutoTrading;
    return 0;
}

uint SimTerminal::Mt5Send(const MqlTradeRequest &original, MqlTradeResult &result) {
    Pump();
    trade_requests_count++;
    result = MqlTradeResult();
    if (!forced_retcodes.empty()) {
        result.retcode = forced_retcodes.front();
        forced_retcodes.pop_front();
        return result.retcode;
    }
    result.retcode = Mt5Refusal();
    if (result.retcode != 0) return result.retcode;
    MqlTradeRequest request = original;
    request.comment = MqlString(CutComment(original.comment.Utf8()));
    switch (request.action) {
    case TRADE_ACTION_DEAL: result.retcode = Mt5Deal(request, result); break;
    case TRADE_ACTION_PENDING: result.retcode = Mt5Pending(request, result); break;
    case TRADE_ACTION_SLTP:
    case TRADE_ACTION_MODIFY: result.retcode = Mt5StopsOrModify(request, result); break;
    case TRADE_ACTION_REMOVE: result.retcode = Mt5Remove(request, result); break;
    case TRADE_ACTION_CLOSE_BY: result.retcode = Mt5CloseBy(request, result); break;
    default: result.retcode = kRetcodeInvalid;
    }
    return result.retcode;
}

// An order the server takes from `request` at `price`, with a new ticket.
SimOrder SimTerminal::NewOrder(const MqlTradeRequest &request, double price) {
    SimOrder order;
    order.ticket = next_ticket++;
    order.symbol = request.symbol.Utf8();
    order.type = request.type;
    order.state = ORDER_STATE_PLACED;
    order.volume_initial = request.volume;
    order.volume_current = request.volume;
    order.price_open = price;
    order.magic = request.magic;
    order.comment = request.comment.Utf8();
    return order;
}

// What a server checks of a market order before it takes it; 0 when it
// passes, with `target` the position it closes or adds to (or nullptr).
uint SimTerminal::Mt5DealChecks(const MqlTradeRequest &request, SimSymbol &symbol, SimPosition *&target) {
    if (!VolumeValid(symbol, request.volume)) return kRetcodeInvalidVolume;
    if ((symbol.fillings_refused & (1 << request.type_filling)) != 0) return kRetcodeInvalidFill;
    if (request.type_filling == ORDER_FILLING_FOK && (symbol.filling_flags & 1) == 0) return kRetcodeInvalidFill;
    if (request.type_filling == ORDER_FILLING_IOC && (symbol.filling_flags & 2) == 0) return kRetcodeInvalidFill;
    if (request.type != ORDER_TYPE_BUY && request.type != ORDER_TYPE_SELL) return kRetcodeInvalid;
    if (!symbol.session_open) return kRetcodeMarketClosed;
    if (Bid(symbol) <= 0 || Ask(symbol) <= 0) return kRetcodePriceOff;
    target = nullptr;
    if (request.position != 0) {
        target = FindPositionByTicket(request.position);
        if (target == nullptr) return kRetcodePositionClosed;
        if (target->type == request.type) return kRetcodeInvalid;
    } else if (!hedging) {
        target = FindPositionBySymbol(request.symbol.Utf8());
    }
    if (target != nullptr && target->type != request.type && Frozen(symbol, target->type, 0, target->sl, target->tp))
        return kRetcodeFrozen;
    bool opens = target == nullptr;
    if (opens && (request.sl != 0 || request.tp != 0)) {
        if (symbol.execution_market) return kRetcodeInvalidStops;
        if (!PriceNormalized(symbol, request.sl) || !PriceNormalized(symbol, request.tp)) return kRetcodeInvalidStops;
        if (!StopsValid(symbol, request.type, 0, request.sl, request.tp)) return kRetcodeInvalidStops;
    }
    return 0;
}

uint SimTerminal::Mt5Deal(const MqlTradeRequest &request, MqlTradeResult &result) {
    SimSymbol *symbol = FindSymbol(request.symbol.Utf8());
    if (symbol == nullptr) return kRetcodeInvalid;
    SimPosition *target = nullptr;
    uint refused = Mt5DealChecks(request, *symbol, target);
    if (refused != 0) return refused;
    double volume = request.volume;
    bool partial = next_fill_ratio < 1.0 && request.type_filling != ORDER_FILLING_FOK;
    if (partial) volume = std::round(volume * next_fill_ratio / symbol->volume_step) * symbol->volume_step;
    next_fill_ratio = 1.0;
    // The server takes the order: it is active until its last deal.
    SimOrder order = NewOrder(request, request.type == ORDER_TYPE_BUY ? Ask(*symbol) : Bid(*symbol));
    order.position_id = target != nullptr ? target->identifier : 0;
    orders.push_back(order);
    PushTransaction(TRADE_TRANSACTION_ORDER_ADD, 0, order.ticket, order.symbol, order.price_open, 0, 0, request.volume,
                    0, request.type, ORDER_STATE_STARTED, 0);
    result.order = order.ticket;
    result.bid = Bid(*symbol);
    result.ask = Ask(*symbol);
    SimQueuedFill fill;
    fill.request = request;
    fill.order = order.ticket;
    fill.volume_left = volume;
    fill.deals_left = std::max(1, deals_per_fill);
    if (deal_delay_ms >= 0) {
        // Accepted now, filled later: deal and volume stay 0 in the answer.
        fill.due_us = NowMicroseconds() + (ulong)deal_delay_ms * 1000ul;
        queued_fills.push_back(fill);
        return accepted_retcode;
    }
    double filled = 0, notional = 0;
    while (fill.deals_left > 0) {
        double part = fill.volume_left;
        RunQueuedFill(fill);
        part -= fill.volume_left;
        filled += part;
        notional += part * (request.type == ORDER_TYPE_BUY ? Ask(*symbol) : Bid(*symbol));
        if (result.deal == 0) result.deal = deals.back().ticket;
    }
    result.volume = std::round(filled * 1e8) / 1e8;
    result.price = filled > 0 ? notional / filled : 0;
    return partial ? kRetcodeDonePartial : kRetcodeDone;
}

// One deal of a queued fill: its share of the volume at today's price,
// and the order to history with the last deal.
void SimTerminal::RunQueuedFill(SimQueuedFill &fill) {
    const MqlTradeRequest &request = fill.request;
    SimSymbol *symbol = FindSymbol(request.symbol.Utf8());
    SimOrder *active = FindOrder(fill.order);
    if (symbol == nullptr || active == nullptr) {
        fill.deals_left = 0;
        return;
    }
    double part = fill.deals_left <= 1 ? fill.volume_left
                                       : std::round(fill.volume_left / fill.deals_left / symbol->volume_step) * symbol->volume_step;
    if (part <= 1e-9) part = fill.volume_left;
    fill.volume_left = std::round((fill.volume_left - part) * 1e8) / 1e8;
    fill.deals_left--;
    bool last = fill.deals_left <= 0 || fill.volume_left <= 1e-9;
    if (last) fill.deals_left = 0;
    else fill.due_us = NowMicroseconds() + (ulong)std::max(0l, deal_delay_ms) * 1000ul;
    MqlTradeResult deal_result;
    Mt5Fill(request, part, fill.order, deal_result);
    active = FindOrder(fill.order);
    if (active == nullptr) return;
    active->volume_current = std::round((active->volume_current - part) * 1e8) / 1e8;
    active->state = last ? ORDER_STATE_FILLED : ORDER_STATE_PARTIAL;
    if (!last) return;
    SimOrder done = *active;
    if (done.volume_current > 1e-9) done.state = ORDER_STATE_CANCELED;
    orders.erase(orders.begin() + (active - &orders[0]));
    history_orders.push_back(done);
    PushTransaction(TRADE_TRANSACTION_ORDER_DELETE, 0, done.ticket, done.symbol, done.price_open, 0, 0,
                    done.volume_initial, done.position_id, done.type, done.state, 0);
    PushTransaction(TRADE_TRANSACTION_HISTORY_ADD, 0, done.ticket, done.symbol, done.price_open, 0, 0,
                    done.volume_initial, done.position_id, done.type, done.state, 0);
}

// One deal of `volume` for order `order`: opens, adds to, reduces or
// reverses a position. The order's own bookkeeping is the caller's.
uint SimTerminal::Mt5Fill(const MqlTradeRequest &request, double volume, ulong order, MqlTradeResult &result) {
    std::string symbol_name = request.symbol.Utf8();
    SimSymbol *symbol = FindSymbol(symbol_name);
    double price = request.type == ORDER_TYPE_BUY ? Ask(*symbol) : Bid(*symbol);
    int deal_type = request.type == ORDER_TYPE_BUY ? DEAL_TYPE_BUY : DEAL_TYPE_SELL;
    SimPosition *target = nullptr;
    if (request.position != 0) target = FindPositionByTicket(request.position);
    else if (!hedging) target = FindPositionBySymbol(symbol_name);
    // A hedging fill of an opening order adds to the position its first deal opened.
    if (target == nullptr && hedging && request.position == 0) {
        for (auto &position : positions)
            if (position.identifier == order) target = &position;
    }
    SimOrder *active = FindOrder(order);
    if (target == nullptr) {
        if (active != nullptr) active->position_id = order;
        Mt5OpenPosition(request, volume, price, deal_type, order, result);
        return kRetcodeDone;
    }
    size_t index = (size_t)(target - &positions[0]);
    ulong identifier = target->identifier;
    if (active != nullptr) active->position_id = identifier;
    std::string comment = request.comment.Utf8();
    if (target->type == request.type) {
        // Netting (or a further deal of one hedging order): adds to the position.
        result.deal = AddDeal(symbol_name, deal_type, DEAL_ENTRY_IN, volume, price, identifier, order, request.magic,
                              comment, false);
        target->price_open = (target->price_open * target->volume + price * volume) / (target->volume + volume);
        target->volume = std::round((target->volume + volume) * 1e8) / 1e8;
        if (identifier != order) opened.push_back(SimOpened{order, comment});
        return kRetcodeDone;
    }
    if (volume <= target->volume + 1e-9) {
        result.deal = AddDeal(symbol_name, deal_type, DEAL_ENTRY_OUT, volume, price, identifier, order, request.magic,
                              comment, false);
        ReducePosition(index, volume);
        return kRetcodeDone;
    }
    // Netting reversal: one in/out deal closes the old direction and opens
    // the rest the other way; the position keeps its identifier and takes
    // the reversing order's ticket.
    result.deal = AddDeal(symbol_name, deal_type, DEAL_ENTRY_INOUT, volume, price, identifier, order, request.magic,
                          comment, false);
    target->volume = std::round((volume - target->volume) * 1e8) / 1e8;
    target->type = request.type;
    target->price_open = price;
    target->ticket = order;
    return kRetcodeDone;
}

void SimTerminal::Mt5OpenPosition(const MqlTradeRequest &request, double volume, double price, int deal_type,
                                  ulong order, MqlTradeResult &result) {
    std::string symbol_name = request.symbol.Utf8();
    result.deal = AddDeal(symbol_name, deal_type, DEAL_ENTRY_IN, volume, price, order, order, request.magic,
                          request.comment.Utf8(), false);
    SimPosition position;
    position.ticket = order;
    position.identifier = order;
    position.symbol = symbol_name;
    position.type = request.type;
    position.volume = volume;
    position.price_open = price;
    position.sl = request.sl;
    position.tp = request.tp;
    position.magic = request.magic;
    position.comment = request.comment.Utf8();
    positions.push_back(position);
    opened.push_back(SimOpened{order, position.comment});
}

uint SimTerminal::Mt5Pending(const MqlTradeRequest &request, MqlTradeResult &result) {
    SimSymbol *symbol = FindSymbol(request.symbol.Utf8());
    if (symbol == nullptr) return kRetcodeInvalid;
    if (!VolumeValid(*symbol, request.volume)) return kRetcodeInvalidVolume;
    if (request.type < ORDER_TYPE_BUY_LIMIT || request.type > ORDER_TYPE_SELL_STOP) return kRetcodeInvalid;
    if ((symbol->pending_fillings & (1 << request.type_filling)) == 0) return kRetcodeInvalidFill;
    if ((symbol->expiration_flags & (1 << request.type_time)) == 0) return kRetcodeInvalidExpiration;
    // SPECIFIED and SPECIFIED_DAY need the time they expire at.
    if ((request.type_time == ORDER_TIME_SPECIFIED || request.type_time == ORDER_TIME_SPECIFIED_DAY) && request.expiration == 0)
        return kRetcodeInvalidExpiration;
    if (!symbol->session_open) return kRetcodeMarketClosed;
    if (Bid(*symbol) <= 0 || Ask(*symbol) <= 0) return kRetcodePriceOff;
    if (!PriceNormalized(*symbol, request.price)) return kRetcodeInvalidPrice;
    if (!PriceNormalized(*symbol, request.sl) || !PriceNormalized(*symbol, request.tp)) return kRetcodeInvalidStops;
    if (!PendingPriceValid(*symbol, request.type, request.price)) return kRetcodeInvalidPrice;
    if (!StopsValid(*symbol, request.type, request.price, request.sl, request.tp)) return kRetcodeInvalidStops;
    SimOrder order = NewOrder(request, request.price);
    order.sl = request.sl;
    order.tp = request.tp;
    orders.push_back(order);
    opened.push_back(SimOpened{order.ticket, order.comment});
    PushTransaction(TRADE_TRANSACTION_ORDER_ADD, 0, order.ticket, order.symbol, order.price_open, order.sl, order.tp,
                    order.volume_current, 0, order.type, ORDER_STATE_PLACED, 0);
    result.order = order.ticket;
    result.volume = request.volume;
    result.price = request.price;
    return kRetcodePlaced;
}

uint SimTerminal::Mt5StopsOrModify(const MqlTradeRequest &request, MqlTradeResult &result) {
    if (request.action == TRADE_ACTION_MODIFY) {
        SimOrder *order = FindOrder(request.order);
        if (order == nullptr || order->type < ORDER_TYPE_BUY_LIMIT) return kRetcodeInvalidOrder;
        SimSymbol *symbol = FindSymbol(order->symbol);
        if (symbol == nullptr) return kRetcodeInvalid;
        if ((symbol->expiration_flags & (1 << request.type_time)) == 0) return kRetcodeInvalidExpiration;
        if (Frozen(*symbol, order->type, order->price_open, 0, 0)) return kRetcodeFrozen;
        double price = request.price > 0 ? request.price : order->price_open;
        if (!PriceNormalized(*symbol, price)) return kRetcodeInvalidPrice;
        if (!PriceNormalized(*symbol, request.sl) || !PriceNormalized(*symbol, request.tp)) return kRetcodeInvalidStops;
        if (!PendingPriceValid(*symbol, order->type, price)) return kRetcodeInvalidPrice;
        if (!StopsValid(*symbol, order->type, price, request.sl, request.tp)) return kRetcodeInvalidStops;
        order->price_open = price;
        order->sl = request.sl;
        order->tp = request.tp;
        PushTransaction(TRADE_TRANSACTION_ORDER_UPDATE, 0, order->ticket, order->symbol, order->price_open, order->sl,
                        order->tp, order->volume_current, 0, order->type, ORDER_STATE_PLACED, 0);
        result.order = order->ticket;
        return kRetcodeDone;
    }
    SimPosition *position = request.position != 0 ? FindPositionByTicket(request.position)
                                                  : FindPositionBySymbol(request.symbol.Utf8());
    if (position == nullptr) return kRetcodePositionClosed;
    SimSymbol *symbol = FindSymbol(position->symbol);
    if (symbol == nullptr) return kRetcodeInvalid;
    if (Frozen(*symbol, position->type, 0, position->sl, position->tp)) return kRetcodeFrozen;
    if (!PriceNormalized(*symbol, request.sl) || !PriceNormalized(*symbol, request.tp)) return kRetcodeInvalidStops;
    if (!StopsValid(*symbol, position->type, 0, request.sl, request.tp)) return kRetcodeInvalidStops;
    position->sl = request.sl;
    position->tp = request.tp;
    PushTransaction(TRADE_TRANSACTION_POSITION, 0, 0, position->symbol, position->price_open, position->sl,
                    position->tp, position->volume, position->ticket, position->type, 0, 0);
    return kRetcodeDone;
}

uint SimTerminal::Mt5Remove(const MqlTradeRequest &request, MqlTradeResult &result) {
    for (size_t i = 0; i < orders.size(); i++) {
        if (orders[i].ticket != request.order || orders[i].type < ORDER_TYPE_BUY_LIMIT) continue;
        SimSymbol *symbol = FindSymbol(orders[i].symbol);
        if (symbol != nullptr && Frozen(*symbol, orders[i].type, orders[i].price_open, 0, 0)) return kRetcodeFrozen;
        SimOrder order = orders[i];
        orders.erase(orders.begin() + (long)i);
        order.state = ORDER_STATE_CANCELED;
        history_orders.push_back(order);
        PushTransaction(TRADE_TRANSACTION_ORDER_DELETE, 0, order.ticket, order.symbol, order.price_open, order.sl,
                        order.tp, order.volume_current, 0, order.type, ORDER_STATE_CANCELED, 0);
        result.order = order.ticket;
        return kRetcodeDone;
    }
    return kRetcodeInvalidOrder;
}

uint SimTerminal::Mt5CloseBy(const MqlTradeRequest &request, MqlTradeResult &result) {
    SimPosition *first = FindPositionByTicket(request.position);
    SimPosition *second = FindPositionByTicket(request.position_by);
    if (first == nullptr || second == nullptr || first->type == second->type) return kRetcodeInvalid;
    double volume = std::min(first->volume, second->volume);
    ulong first_id = first->identifier, second_id = second->identifier;
    std::string symbol = first->symbol;
    ulong order = AddFilledOrder(symbol, ORDER_TYPE_CLOSE_BY, volume, first->price_open, first_id, 0, "");
    int first_close_type = first->type == 0 ? DEAL_TYPE_SELL : DEAL_TYPE_BUY;
    int second_close_type = second->type == 0 ? DEAL_TYPE_SELL : DEAL_TYPE_BUY;
    double price = second->price_open;
    result.deal = AddDeal(symbol, first_close_type, DEAL_ENTRY_OUT_BY, volume, price, first_id, order, 0, "", false);
    AddDeal(symbol, second_close_type, DEAL_ENTRY_OUT_BY, volume, price, second_id, order, 0, "");
    for (ulong id : {first_id, second_id})
        for (size_t i = 0; i < positions.size(); i++)
            if (positions[i].identifier == id) {
                ReducePosition(i, volume);
                break;
            }
    result.order = order;
    return kRetcodeDone;
}

bool SimTerminal::Mt5TriggerPending(ulong order_ticket) {
    for (size_t i = 0; i < orders.size(); i++) {
        if (orders[i].ticket != order_ticket || orders[i].type < ORDER_TYPE_BUY_LIMIT) continue;
        SimOrder order = orders[i];
        orders.erase(orders.begin() + (long)i);
        order.state = ORDER_STATE_FILLED;
        order.position_id = order.ticket;
        double volume = order.volume_current;
        order.volume_current = 0;
        history_orders.push_back(order);
        order.volume_current = volume;
        int side = (order.type == ORDER_TYPE_BUY_LIMIT || order.type == ORDER_TYPE_BUY_STOP) ? 0 : 1;
        AddDeal(order.symbol, side, DEAL_ENTRY_IN, order.volume_current, order.price_open, order.ticket, order.ticket,
                order.magic, order.comment);
        SimPosition position;
        position.ticket = order.ticket;
        position.identifier = order.ticket;
        position.symbol = order.symbol;
        position.type = side;
        position.volume = order.volume_current;
        position.price_open = order.price_open;
        position.sl = order.sl;
        position.tp = order.tp;
        position.magic = order.magic;
        position.comment = order.comment;
        positions.push_back(position);
        return true;
    }
    return false;
}

//--------------------------------------------------------------------
// MT4
//--------------------------------------------------------------------
// MQL4 error codes used by the simulated server.
static const int kErrInvalidTradeParameters = 3;
static const int kErrNoConnection = 6;
static const int kErrInvalidPrice = 129;
static const int kErrInvalidStops = 130;
static const int kErrInvalidTradeVolume = 131;
static const int kErrMarketClosed = 132;
static const int kErrOffQuotes = 136;
static const int kErrTradeModifyDenied = 145;
static const int kErrUnknownSymbol = 4106;
static const int kErrInvalidTicket = 4108;
static const int kErrTradeNotAllowed = 4109;

int SimTerminal::Mt4Refusal() const {
    if (!Connected()) return kErrNoConnection;
    if (!autotrading) return kErrTradeNotAllowed;
    return 0;
}

Sim4Order *SimTerminal::Mt4FindTrade(int ticket) {
    for (auto &order : mt4_trades)
        if (order.ticket == ticket) return &order;
    return nullptr;
}

Sim4Order *SimTerminal::Mt4FindHistory(int ticket) {
    for (auto &order : mt4_history)
        if (order.ticket == ticket) return &order;
    return nullptr;
}

void SimTerminal::Mt4OnSelectByPosition() {
    if (pool_shift.ticket == 0) return;
    if (--pool_shift.after_selects > 0) return;
    int ticket = pool_shift.ticket;
    pool_shift = SimPoolShift();
    Mt4CloseWhole(ticket);
}

void SimTerminal::Mt4CloseWhole(int ticket) {
    for (size_t i = 0; i < mt4_trades.size(); i++) {
        if (mt4_trades[i].ticket != ticket) continue;
        Sim4Order closed = mt4_trades[i];
        mt4_trades.erase(mt4_trades.begin() + (long)i);
        SimSymbol *symbol = FindSymbol(closed.symbol);
        closed.close_price = symbol == nullptr ? closed.open_price : closed.type == 0 ? symbol->bid : symbol->ask;
        closed.close_time = (long)(NowMicroseconds() / 1000000) + server_offset_seconds;
        mt4_history.push_back(closed);
        return;
    }
}

int SimTerminal::Mt4OrderSend(const std::string &symbol_name, int type, double lots, double price, int slippage,
                              double sl, double tp, const std::string &comment, int magic) {
    (void)slippage;
    trade_requests_count++;
    last_error = 0;
    if (!forced_mt4_errors.empty()) {
        last_error = forced_mt4_errors.front();
        forced_mt4_errors.pop_front();
        return -1;
    }
    last_error = Mt4Refusal();
    if (last_error != 0) return -1;
    SimSymbol *symbol = FindSymbol(symbol_name);
    if (symbol == nullptr) {
        last_error = kErrUnknownSymbol;
        return -1;
    }
    if (!VolumeValid(*symbol, lots)) {
        last_error = kErrInvalidTradeVolume;
        return -1;
    }
    if (type < 0 || type > 5) {
        last_error = kErrInvalidTradeParameters;
        return -1;
    }
    if (!symbol->session_open) {
        last_error = kErrMarketClosed;
        return -1;
    }
    if (Bid(*symbol) <= 0 || Ask(*symbol) <= 0) {
        last_error = kErrOffQuotes;
        return -1;
    }
    if (!PriceNormalized(*symbol, type > 1 ? price : 0)) {
        last_error = kErrInvalidPrice;
        return -1;
    }
    // MT4 answers stops a server will not take (and a pending price the
    // market has already reached) with 130; an ECN (market execution)
    // server takes no stops on a market order at all.
    bool stops_refused = !PriceNormalized(*symbol, sl) || !PriceNormalized(*symbol, tp) ||
                         (type <= 1 && symbol->execution_market && (sl != 0 || tp != 0)) ||
                         (type > 1 && !PendingPriceValid(*symbol, type, price)) || !StopsValid(*symbol, type, price, sl, tp);
    if (stops_refused) {
        last_error = kErrInvalidStops;
        return -1;
    }
    Sim4Order order;
    order.ticket = (int)next_ticket++;
    order.symbol = symbol_name;
    order.type = type;
    order.lots = lots;
    order.open_price = type == 0 ? Ask(*symbol) : type == 1 ? Bid(*symbol) : price;
    order.sl = sl;
    order.tp = tp;
    order.magic = magic;
    order.comment = CutComment(comment);
    order.origin_comment = order.comment;
    order.open_time = (long)(NowMicroseconds() / 1000000) + server_offset_seconds;
    mt4_trades.push_back(order);
    opened.push_back(SimOpened{(ulong)order.ticket, order.comment});
    return order.ticket;
}

void SimTerminal::Mt4SplitRest(const Sim4Order &order, double lots, const std::string &comment, Sim4Order &closed) {
    double rest = std::round((order.lots - lots) * 1e8) / 1e8;
    if (rest <= 1e-9) return;
    Sim4Order remainder = order;
    remainder.ticket = (int)next_ticket++;
    remainder.lots = rest;
    std::string text = comment;
    size_t marker = text.find("%d");
    if (marker != std::string::npos) text.replace(marker, 2, std::to_string(order.ticket));
    remainder.comment = text;
    mt4_trades.push_back(remainder);
    closed.comment = "to #" + std::to_string(remainder.ticket);
}

bool SimTerminal::Mt4OrderClose(int ticket, double lots, double price, int slippage) {
    (void)price;
    (void)slippage;
    trade_requests_count++;
    last_error = 0;
    if (!forced_mt4_errors.empty()) {
        last_error = forced_mt4_errors.front();
        forced_mt4_errors.pop_front();
        return false;
    }
    last_error = Mt4Refusal();
    if (last_error != 0) return false;
    for (size_t i = 0; i < mt4_trades.size(); i++) {
        if (mt4_trades[i].ticket != ticket || mt4_trades[i].type > 1) continue;
        Sim4Order order = mt4_trades[i];
        SimSymbol *symbol = FindSymbol(order.symbol);
        if (lots > order.lots + 1e-9 || symbol == nullptr || !VolumeValid(*symbol, lots)) {
            last_error = kErrInvalidTradeVolume;
            return false;
        }
        if (!symbol->session_open) {
            last_error = kErrMarketClosed;
            return false;
        }
        if (Frozen(*symbol, order.type, 0, order.sl, order.tp)) {
            last_error = kErrTradeModifyDenied;
            return false;
        }
        mt4_trades.erase(mt4_trades.begin() + (long)i);
        Sim4Order closed = order;
        closed.lots = lots;
        closed.close_price = order.type == 0 ? symbol->bid : symbol->ask;
        closed.close_time = (long)(NowMicroseconds() / 1000000) + server_offset_seconds;
        // MT4 partial close: the rest lives on under a new ticket.
        Mt4SplitRest(order, lots, mt4_rest_comment, closed);
        mt4_history.push_back(closed);
        return true;
    }
    last_error = kErrInvalidTicket;
    return false;
}

bool SimTerminal::Mt4OrderCloseBy(int ticket, int opposite) {
    trade_requests_count++;
    last_error = Mt4Refusal();
    if (last_error != 0) return false;
    Sim4Order *first = Mt4FindTrade(ticket);
    Sim4Order *second = Mt4FindTrade(opposite);
    if (first == nullptr || second == nullptr || first->type > 1 || second->type > 1 || first->type == second->type ||
        first->symbol != second->symbol) {
        last_error = kErrInvalidTicket;
        return false;
    }
    Sim4Order a = *first, b = *second;
    double lots = std::min(a.lots, b.lots);
    long now = (long)(NowMicroseconds() / 1000000) + server_offset_seconds;
    for (int closing : {ticket, opposite})
        for (size_t i = 0; i < mt4_trades.size(); i++)
            if (mt4_trades[i].ticket == closing) {
                mt4_trades.erase(mt4_trades.begin() + (long)i);
                break;
            }
    for (Sim4Order *order : {&a, &b}) {
        Sim4Order closed = *order;
        closed.lots = lots;
        closed.close_price = b.open_price;
        closed.close_time = now;
        // The rest of the larger order: MT4 leaves "partial close" on it.
        Mt4SplitRest(*order, lots, mt4_close_by_rest_comment, closed);
        mt4_history.push_back(closed);
    }
    return true;
}

bool SimTerminal::Mt4OrderModify(int ticket, double price, double sl, double tp) {
    trade_requests_count++;
    last_error = 0;
    if (!forced_mt4_errors.empty()) {
        last_error = forced_mt4_errors.front();
        forced_mt4_errors.pop_front();
        return false;
    }
    last_error = Mt4Refusal();
    if (last_error != 0) return false;
    Sim4Order *order = Mt4FindTrade(ticket);
    if (order == nullptr) {
        last_error = kErrInvalidTicket;
        return false;
    }
    SimSymbol *symbol = FindSymbol(order->symbol);
    if (symbol == nullptr) {
        last_error = kErrUnknownSymbol;
        return false;
    }
    if (Frozen(*symbol, order->type, order->open_price, order->type > 1 ? 0 : order->sl, order->type > 1 ? 0 : order->tp)) {
        last_error = kErrTradeModifyDenied;
        return false;
    }
    double target = order->type > 1 && price > 0 ? price : order->open_price;
    if (!PriceNormalized(*symbol, order->type > 1 ? target : 0)) {
        last_error = kErrInvalidPrice;
        return false;
    }
    bool stops_refused = !PriceNormalized(*symbol, sl) || !PriceNormalized(*symbol, tp) ||
                         (order->type > 1 && !PendingPriceValid(*symbol, order->type, target)) ||
                         !StopsValid(*symbol, order->type, target, sl, tp);
    if (stops_refused) {
        last_error = kErrInvalidStops;
        return false;
    }
    order->open_price = target;
    order->sl = sl;
    order->tp = tp;
    return true;
}

bool SimTerminal::Mt4OrderDelete(int ticket) {
    trade_requests_count++;
    last_error = Mt4Refusal();
    if (last_error != 0) return false;
    for (size_t i = 0; i < mt4_trades.size(); i++) {
        if (mt4_trades[i].ticket != ticket || mt4_trades[i].type <= 1) continue;
        SimSymbol *symbol = FindSymbol(mt4_trades[i].symbol);
        if (symbol != nullptr && Frozen(*symbol, mt4_trades[i].type, mt4_trades[i].open_price, 0, 0)) {
            last_error = kErrTradeModifyDenied;
            return false;
        }
        Sim4Order order = mt4_trades[i];
        mt4_trades.erase(mt4_trades.begin() + (long)i);
        order.close_time = (long)(NowMicroseconds() / 1000000) + server_offset_seconds;
        order.comment = "cancelled";
        mt4_history.push_back(order);
        return true;
    }
    last_error = kErrInvalidTicket;
    return false;
}

bool SimTerminal::Mt4TriggerPending(int ticket) {
    Sim4Order *order = Mt4FindTrade(ticket);
    if (order == nullptr || order->type <= 1) return false;
    // MT4 keeps the ticket when a pending order fills; only its type changes.
    order->type = (order->type == 2 || order->type == 4) ? 0 : 1;
    return true;
}
