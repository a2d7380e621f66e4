// sim_terminal.cpp: the simulated trade servers behind the shim.
//
// # Layout
// - Symbols and volume checks.
// - MT5: Mt5Send dispatches on the request action; deals, position
//   changes and the OnTradeTransaction stream.
// - MT4: OrderSend / OrderClose (partial closes make a new ticket with
//   comment "from #N" and leave "to #M" on the closed part in history) /
//   OrderModify / OrderDelete.
//
// # Invariants
// - A forced retcode or error consumes one request and changes nothing.
// - Volumes are checked against min, max and step before anything changes.
#define TB_SHIM_IMPLEMENTATION
#include "mql_shim.h"

#include <chrono>
#include <cmath>

using namespace sim5;

SimTerminal *g_terminal = nullptr;

// Retcodes of the MT5 reference used by the simulated server.
static const uint kRetcodeDone = 10009;
static const uint kRetcodeDonePartial = 10010;
static const uint kRetcodeInvalid = 10013;
static const uint kRetcodeInvalidVolume = 10014;
static const uint kRetcodeInvalidFill = 10030;
static const uint kRetcodePlaced = 10008;
static const uint kRetcodePositionClosed = 10036;
static const uint kRetcodeInvalidOrder = 10035;
static const uint kRetcodeInvalidPrice = 10015;

ulong SimTerminal::NowMicroseconds() const {
    if (!clock_real) return clock_us;
    auto now = std::chrono::system_clock::now().time_since_epoch();
    return (ulong)std::chrono::duration_cast<std::chrono::microseconds>(now).count();
}

void SimTerminal::AddSymbol(const std::string &name, double bid, double ask, int digits) {
    SimSymbol symbol;
    symbol.name = name;
    symbol.bid = bid;
    symbol.ask = ask;
    symbol.digits = digits;
    symbol.point = std::pow(10.0, -digits);
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

bool SimTerminal::VolumeValid(const SimSymbol &symbol, double volume) const {
    if (volume < symbol.volume_min - 1e-9 || volume > symbol.volume_max + 1e-9) return false;
    double steps = volume / symbol.volume_step;
    return std::fabs(steps - std::round(steps)) < 1e-6;
}

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
    for (auto &deal : deals)
        if (deal.ticket == ticket) return &deal;
    return nullptr;
}

const SimOrder *SimTerminal::FindHistoryOrder(ulong ticket) const {
    for (auto &order : history_orders)
        if (order.ticket == ticket) return &order;
    return nullptr;
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
                           ulong position_id, ulong order, ulong magic, const std::string &comment) {
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
    deal.time_msc = (long)(NowMicroseconds() / 1000);
    deals.push_back(deal);
    PushTransaction(TRADE_TRANSACTION_DEAL_ADD, deal.ticket, order, symbol, price, 0, 0, volume, position_id, type,
                    ORDER_STATE_FILLED, type);
    PushTransaction(TRADE_TRANSACTION_ORDER_DELETE, 0, order, symbol, price, 0, 0, volume, position_id, type,
                    ORDER_STATE_FILLED, 0);
    PushTransaction(TRADE_TRANSACTION_HISTORY_ADD, 0, order, symbol, price, 0, 0, volume, position_id, type,
                    ORDER_STATE_FILLED, 0);
    return deal.ticket;
}

void SimTerminal::ReducePosition(size_t index, double volume) {
    positions[index].volume = std::round((positions[index].volume - volume) * 1e8) / 1e8;
    if (positions[index].volume <= 1e-9) positions.erase(positions.begin() + (long)index);
}

bool SimTerminal::PendingPriceValid(const SimSymbol &symbol, int type, double price) const {
    // A limit waits for a better price, a stop for a worse one; an order
    // the market has already reached is refused, as a real server does.
    switch (type) {
    case ORDER_TYPE_BUY_LIMIT: return price < symbol.ask;
    case ORDER_TYPE_SELL_LIMIT: return price > symbol.bid;
    case ORDER_TYPE_BUY_STOP: return price > symbol.ask;
    case ORDER_TYPE_SELL_STOP: return price < symbol.bid;
    }
    return false;
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
        if (order.symbol == symbol_name && reached(order.type, order.price_open)) crossed.push_back(order.ticket);
    for (const auto &order : mt4_trades)
        if (order.symbol == symbol_name && order.type > 1 && reached(order.type, order.open_price))
            crossed.push_back((ulong)order.ticket);
    for (ulong ticket : crossed)
        if (!Mt5TriggerPending(ticket)) Mt4TriggerPending((int)ticket);
    return crossed;
}

uint SimTerminal::Mt5Send(const MqlTradeRequest &original, MqlTradeResult &result) {
    trade_requests_count++;
    result = MqlTradeResult();
    if (!forced_retcodes.empty()) {
        result.retcode = forced_retcodes.front();
        forced_retcodes.pop_front();
        return result.retcode;
    }
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

uint SimTerminal::Mt5Deal(const MqlTradeRequest &request, MqlTradeResult &result) {
    std::string symbol_name = request.symbol.Utf8();
    SimSymbol *symbol = FindSymbol(symbol_name);
    if (symbol == nullptr) return kRetcodeInvalid;
    if (!VolumeValid(*symbol, request.volume)) return kRetcodeInvalidVolume;
    if (request.type_filling == ORDER_FILLING_FOK && (symbol->filling_flags & 1) == 0) return kRetcodeInvalidFill;
    if (request.type_filling == ORDER_FILLING_IOC && (symbol->filling_flags & 2) == 0) return kRetcodeInvalidFill;
    if (request.type != ORDER_TYPE_BUY && request.type != ORDER_TYPE_SELL) return kRetcodeInvalid;
    double volume = request.volume;
    bool partial = next_fill_ratio < 1.0 && request.type_filling != ORDER_FILLING_FOK;
    if (partial) volume = std::round(volume * next_fill_ratio / symbol->volume_step) * symbol->volume_step;
    next_fill_ratio = 1.0;
    double price = request.type == ORDER_TYPE_BUY ? symbol->ask : symbol->bid;
    int deal_type = request.type == ORDER_TYPE_BUY ? DEAL_TYPE_BUY : DEAL_TYPE_SELL;
    SimPosition *target = nullptr;
    if (request.position != 0) {
        target = FindPositionByTicket(request.position);
        if (target == nullptr) return kRetcodePositionClosed;
        if (target->type == request.type) return kRetcodeInvalid;
    } else if (!hedging) {
        target = FindPositionBySymbol(symbol_name);
    }
    result.bid = symbol->bid;
    result.ask = symbol->ask;
    result.price = price;
    result.volume = volume;
    if (target == nullptr) {
        Mt5OpenPosition(request, volume, price, deal_type, result);
        return partial ? kRetcodeDonePartial : kRetcodeDone;
    }
    size_t index = (size_t)(target - &positions[0]);
    ulong identifier = target->identifier;
    ulong order = AddFilledOrder(symbol_name, request.type, volume, price, identifier, request.magic,
                                 request.comment.Utf8());
    result.order = order;
    if (target->type == request.type) {
        // Netting: a fill in the same direction adds to the position.
        result.deal = AddDeal(symbol_name, deal_type, DEAL_ENTRY_IN, volume, price, identifier, order, request.magic,
                              request.comment.Utf8());
        target->price_open = (target->price_open * target->volume + price * volume) / (target->volume + volume);
        target->volume += volume;
        opened.push_back(SimOpened{order, request.comment.Utf8()});
        return partial ? kRetcodeDonePartial : kRetcodeDone;
    }
    if (volume <= target->volume + 1e-9) {
        result.deal = AddDeal(symbol_name, deal_type, DEAL_ENTRY_OUT, volume, price, identifier, order, request.magic,
                              request.comment.Utf8());
        ReducePosition(index, volume);
        return partial ? kRetcodeDonePartial : kRetcodeDone;
    }
    // Netting reversal: one in/out deal closes the old direction and opens
    // the rest the other way; the position keeps its identifier.
    result.deal = AddDeal(symbol_name, deal_type, DEAL_ENTRY_INOUT, volume, price, identifier, order, request.magic,
                          request.comment.Utf8());
    target->volume = std::round((volume - target->volume) * 1e8) / 1e8;
    target->type = request.type;
    target->price_open = price;
    return partial ? kRetcodeDonePartial : kRetcodeDone;
}

void SimTerminal::Mt5OpenPosition(const MqlTradeRequest &request, double volume, double price, int deal_type,
                                  MqlTradeResult &result) {
    std::string symbol_name = request.symbol.Utf8();
    ulong order = AddFilledOrder(symbol_name, request.type, volume, price, 0, request.magic, request.comment.Utf8());
    result.order = order;
    result.deal = AddDeal(symbol_name, deal_type, DEAL_ENTRY_IN, volume, price, order, order, request.magic,
                          request.comment.Utf8());
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
    if (!PendingPriceValid(*symbol, request.type, request.price)) return kRetcodeInvalidPrice;
    SimOrder order;
    order.ticket = next_ticket++;
    order.symbol = symbol->name;
    order.type = request.type;
    order.state = ORDER_STATE_PLACED;
    order.volume_initial = request.volume;
    order.volume_current = request.volume;
    order.price_open = request.price;
    order.sl = request.sl;
    order.tp = request.tp;
    order.magic = request.magic;
    order.comment = request.comment.Utf8();
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
        if (order == nullptr) return kRetcodeInvalidOrder;
        SimSymbol *symbol = FindSymbol(order->symbol);
        if (request.price > 0 && symbol != nullptr && !PendingPriceValid(*symbol, order->type, request.price))
            return kRetcodeInvalidPrice;
        if (request.price > 0) order->price_open = request.price;
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
    position->sl = request.sl;
    position->tp = request.tp;
    PushTransaction(TRADE_TRANSACTION_POSITION, 0, 0, position->symbol, position->price_open, position->sl,
                    position->tp, position->volume, position->identifier, position->type, 0, 0);
    return kRetcodeDone;
}

uint SimTerminal::Mt5Remove(const MqlTradeRequest &request, MqlTradeResult &result) {
    for (size_t i = 0; i < orders.size(); i++) {
        if (orders[i].ticket != request.order) continue;
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
    result.deal = AddDeal(symbol, first_close_type, DEAL_ENTRY_OUT_BY, volume, price, first_id, order, 0, "");
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
        if (orders[i].ticket != order_ticket) continue;
        SimOrder order = orders[i];
        orders.erase(orders.begin() + (long)i);
        order.state = ORDER_STATE_FILLED;
        order.position_id = order.ticket;
        history_orders.push_back(order);
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
static const int kErrInvalidTradeVolume = 131;
static const int kErrInvalidTicket = 4108;
static const int kErrUnknownSymbol = 4106;
static const int kErrInvalidTradeParameters = 3;
static const int kErrInvalidStops = 130;

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
    // MT4 answers a pending price the market has already reached with 130.
    if (type > 1 && !PendingPriceValid(*symbol, type, price)) {
        last_error = kErrInvalidStops;
        return -1;
    }
    Sim4Order order;
    order.ticket = (int)next_ticket++;
    order.symbol = symbol_name;
    order.type = type;
    order.lots = lots;
    order.open_price = type == 0 ? symbol->ask : type == 1 ? symbol->bid : price;
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
    for (size_t i = 0; i < mt4_trades.size(); i++) {
        if (mt4_trades[i].ticket != ticket || mt4_trades[i].type > 1) continue;
        Sim4Order order = mt4_trades[i];
        SimSymbol *symbol = FindSymbol(order.symbol);
        if (lots > order.lots + 1e-9 || symbol == nullptr || !VolumeValid(*symbol, lots)) {
            last_error = kErrInvalidTradeVolume;
            return false;
        }
        mt4_trades.erase(mt4_trades.begin() + (long)i);
        Sim4Order closed = order;
        closed.lots = lots;
        closed.close_price = order.type == 0 ? symbol->bid : symbol->ask;
        closed.close_time = (long)(NowMicroseconds() / 1000000) + server_offset_seconds;
        double rest = std::round((order.lots - lots) * 1e8) / 1e8;
        if (rest > 1e-9) {
            // MT4 partial close: the rest lives on under a new ticket.
            Sim4Order remainder = order;
            remainder.ticket = (int)next_ticket++;
            remainder.lots = rest;
            remainder.comment = "from #" + std::to_string(order.ticket);
            mt4_trades.push_back(remainder);
            closed.comment = "to #" + std::to_string(remainder.ticket);
        }
        mt4_history.push_back(closed);
        return true;
    }
    last_error = kErrInvalidTicket;
    return false;
}

bool SimTerminal::Mt4OrderModify(int ticket, double price, double sl, double tp) {
    trade_requests_count++;
    last_error = 0;
    if (!forced_mt4_errors.empty()) {
        last_error = forced_mt4_errors.front();
        forced_mt4_errors.pop_front();
        return false;
    }
    Sim4Order *order = Mt4FindTrade(ticket);
    if (order == nullptr) {
        last_error = kErrInvalidTicket;
        return false;
    }
    SimSymbol *symbol = FindSymbol(order->symbol);
    if (order->type > 1 && price > 0 && symbol != nullptr && !PendingPriceValid(*symbol, order->type, price)) {
        last_error = kErrInvalidStops;
        return false;
    }
    if (order->type > 1 && price > 0) order->open_price = price;
    order->sl = sl;
    order->tp = tp;
    return true;
}

bool SimTerminal::Mt4OrderDelete(int ticket) {
    trade_requests_count++;
    last_error = 0;
    for (size_t i = 0; i < mt4_trades.size(); i++) {
        if (mt4_trades[i].ticket != ticket || mt4_trades[i].type <= 1) continue;
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
