// shim_mt5.h: the MQL5 trade, account, symbol and network API, served by
// the current SimTerminal (g_terminal). Included by mql_shim.h under
// __MQL5__ only, so an MT5 name used in MT4 code fails to compile.
//
// # Layout
// - Property enums (values are the shim's own; code uses only the names).
// - TRADE_RETCODE_* with the MQL5 reference's values.
// - Account / Symbol / Position / Order / History / OrderSend.
// # Invariants
// - Every function is `static inline`: the MT4 and MT5 versions of one
//   name (OrdersTotal, OrderSelect...) differ, and a binary that links EAs
//   of both platforms (ea_host) must keep each translation unit's own.
// - PositionGet* / OrderGet* read the entry last selected, as in MQL5; a
//   selection that failed reads zeros and empty strings.
#ifndef TRADEBRIDGE_SHIM_MT5_H
#define TRADEBRIDGE_SHIM_MT5_H

#include "shim_net.h"

using namespace sim5;

void ShimSetLastError(int code);

enum ENUM_ACCOUNT_INFO_INTEGER { ACCOUNT_LOGIN, ACCOUNT_MARGIN_MODE, ACCOUNT_TRADE_ALLOWED, ACCOUNT_TRADE_EXPERT };
enum ENUM_TERMINAL_INFO_INTEGER { TERMINAL_CONNECTED, TERMINAL_TRADE_ALLOWED };
enum ENUM_MQL_INFO_INTEGER { MQL_TRADE_ALLOWED };
enum ENUM_ACCOUNT_INFO_DOUBLE { ACCOUNT_BALANCE, ACCOUNT_EQUITY };
enum ENUM_ACCOUNT_INFO_STRING { ACCOUNT_SERVER, ACCOUNT_CURRENCY, ACCOUNT_NAME };
enum ENUM_ACCOUNT_MARGIN_MODE { ACCOUNT_MARGIN_MODE_RETAIL_NETTING = 0, ACCOUNT_MARGIN_MODE_EXCHANGE = 1, ACCOUNT_MARGIN_MODE_RETAIL_HEDGING = 2 };
enum ENUM_SYMBOL_INFO_DOUBLE { SYMBOL_BID, SYMBOL_ASK, SYMBOL_POINT, SYMBOL_VOLUME_MIN, SYMBOL_VOLUME_MAX, SYMBOL_VOLUME_STEP, SYMBOL_TRADE_CONTRACT_SIZE, SYMBOL_TRADE_TICK_SIZE };
enum ENUM_SYMBOL_INFO_INTEGER { SYMBOL_DIGITS, SYMBOL_FILLING_MODE, SYMBOL_SELECT, SYMBOL_TRADE_STOPS_LEVEL, SYMBOL_TRADE_FREEZE_LEVEL, SYMBOL_TRADE_EXEMODE, SYMBOL_EXPIRATION_MODE };
enum ENUM_SYMBOL_TRADE_EXECUTION { SYMBOL_TRADE_EXECUTION_REQUEST, SYMBOL_TRADE_EXECUTION_INSTANT, SYMBOL_TRADE_EXECUTION_MARKET, SYMBOL_TRADE_EXECUTION_EXCHANGE };
enum ENUM_POSITION_PROPERTY_INTEGER { POSITION_TICKET, POSITION_IDENTIFIER, POSITION_TYPE, POSITION_MAGIC, POSITION_TIME_MSC };
enum ENUM_POSITION_PROPERTY_DOUBLE { POSITION_VOLUME, POSITION_PRICE_OPEN, POSITION_SL, POSITION_TP, POSITION_PRICE_CURRENT };
enum ENUM_POSITION_PROPERTY_STRING { POSITION_SYMBOL, POSITION_COMMENT };
enum ENUM_ORDER_PROPERTY_INTEGER { ORDER_TICKET, ORDER_TYPE, ORDER_STATE, ORDER_MAGIC, ORDER_POSITION_ID, ORDER_TYPE_FILLING };
enum ENUM_ORDER_PROPERTY_DOUBLE { ORDER_VOLUME_INITIAL, ORDER_VOLUME_CURRENT, ORDER_PRICE_OPEN, ORDER_SL, ORDER_TP };
enum ENUM_ORDER_PROPERTY_STRING { ORDER_SYMBOL, ORDER_COMMENT };
enum ENUM_DEAL_PROPERTY_INTEGER { DEAL_TICKET, DEAL_ORDER, DEAL_TIME_MSC, DEAL_TYPE, DEAL_ENTRY, DEAL_MAGIC, DEAL_POSITION_ID };
enum ENUM_DEAL_PROPERTY_DOUBLE { DEAL_VOLUME, DEAL_PRICE };
enum ENUM_DEAL_PROPERTY_STRING { DEAL_SYMBOL, DEAL_COMMENT };

// SYMBOL_FILLING_MODE and SYMBOL_EXPIRATION_MODE flags (MQL5 reference).
#define SYMBOL_FILLING_FOK 1
#define SYMBOL_FILLING_IOC 2
#define SYMBOL_EXPIRATION_GTC 1
#define SYMBOL_EXPIRATION_DAY 2
#define SYMBOL_EXPIRATION_SPECIFIED 4
#define SYMBOL_EXPIRATION_SPECIFIED_DAY 8

#define TRADE_RETCODE_REQUOTE 10004
#define TRADE_RETCODE_REJECT 10006
#define TRADE_RETCODE_CANCEL 10007
#define TRADE_RETCODE_PLACED 10008
#define TRADE_RETCODE_DONE 10009
#define TRADE_RETCODE_DONE_PARTIAL 10010
#define TRADE_RETCODE_ERROR 10011
#define TRADE_RETCODE_TIMEOUT 10012
#define TRADE_RETCODE_INVALID 10013
#define TRADE_RETCODE_INVALID_VOLUME 10014
#define TRADE_RETCODE_INVALID_PRICE 10015
#define TRADE_RETCODE_INVALID_STOPS 10016
#define TRADE_RETCODE_TRADE_DISABLED 10017
#define TRADE_RETCODE_MARKET_CLOSED 10018
#define TRADE_RETCODE_NO_MONEY 10019
#define TRADE_RETCODE_PRICE_CHANGED 10020
#define TRADE_RETCODE_PRICE_OFF 10021
#define TRADE_RETCODE_INVALID_EXPIRATION 10022
#define TRADE_RETCODE_ORDER_CHANGED 10023
#define TRADE_RETCODE_TOO_MANY_REQUESTS 10024
#define TRADE_RETCODE_NO_CHANGES 10025
#define TRADE_RETCODE_SERVER_DISABLES_AT 10026
#define TRADE_RETCODE_CLIENT_DISABLES_AT 10027
#define TRADE_RETCODE_LOCKED 10028
#define TRADE_RETCODE_FROZEN 10029
#define TRADE_RETCODE_INVALID_FILL 10030
#define TRADE_RETCODE_CONNECTION 10031
#define TRADE_RETCODE_INVALID_ORDER 10035
#define TRADE_RETCODE_POSITION_CLOSED 10036

struct ShimMt5Selection {
    SimPosition position;
    SimOrder order;
};
static inline ShimMt5Selection &ShimMt5Selected() {
    static ShimMt5Selection selected;
    return selected;
}

//--- account
// Before the terminal has logged in, the account reads as no account.
static inline long AccountInfoInteger(ENUM_ACCOUNT_INFO_INTEGER property) {
    if (property == ACCOUNT_LOGIN) return g_terminal->LoggedIn() ? (long)g_terminal->login : 0;
    if (property == ACCOUNT_MARGIN_MODE)
        return g_terminal->hedging ? ACCOUNT_MARGIN_MODE_RETAIL_HEDGING : ACCOUNT_MARGIN_MODE_RETAIL_NETTING;
    return 1;
}
// Balance and equity arrive with the account's book (0 before).
static inline double AccountInfoDouble(ENUM_ACCOUNT_INFO_DOUBLE property) {
    if (!g_terminal->BookVisible()) return 0;
    return property == ACCOUNT_BALANCE ? g_terminal->balance : g_terminal->equity;
}
static inline string AccountInfoString(ENUM_ACCOUNT_INFO_STRING property) {
    if (property == ACCOUNT_SERVER) return string(g_terminal->LoggedIn() ? g_terminal->server : "");
    if (property == ACCOUNT_CURRENCY) return string(g_terminal->currency);
    return string("Simulated");
}

//--- terminal and program
static inline long TerminalInfoInteger(ENUM_TERMINAL_INFO_INTEGER property) {
    if (property == TERMINAL_CONNECTED) return g_terminal->Connected() ? 1 : 0;
    return g_terminal->autotrading ? 1 : 0;
}
static inline long MQLInfoInteger(ENUM_MQL_INFO_INTEGER property) { return 1; }

//--- symbols
static inline double SymbolInfoDouble(const string &name, ENUM_SYMBOL_INFO_DOUBLE property) {
    SimSymbol *symbol = g_terminal->FindSymbol(name.Utf8());
    if (symbol == nullptr) {
        ShimSetLastError(4301);
        return 0;
    }
    switch (property) {
    case SYMBOL_BID: return g_terminal->Bid(*symbol);
    case SYMBOL_ASK: return g_terminal->Ask(*symbol);
    case SYMBOL_TRADE_TICK_SIZE: return symbol->tick_size;
    case SYMBOL_POINT: return symbol->point;
    case SYMBOL_VOLUME_MIN: return symbol->volume_min;
    case SYMBOL_VOLUME_MAX: return symbol->volume_max;
    case SYMBOL_VOLUME_STEP: return symbol->volume_step;
    case SYMBOL_TRADE_CONTRACT_SIZE: return symbol->contract;
    }
    return 0;
}
static inline long SymbolInfoInteger(const string &name, ENUM_SYMBOL_INFO_INTEGER property) {
    SimSymbol *symbol = g_terminal->FindSymbol(name.Utf8());
    if (symbol == nullptr) {
        ShimSetLastError(4301);
        return 0;
    }
    switch (property) {
    case SYMBOL_DIGITS: return symbol->digits;
    case SYMBOL_FILLING_MODE: return symbol->filling_flags;
    case SYMBOL_SELECT: return symbol->in_market_watch ? 1 : 0;
    case SYMBOL_TRADE_STOPS_LEVEL: return symbol->stops_level;
    case SYMBOL_TRADE_FREEZE_LEVEL: return symbol->freeze_level;
    case SYMBOL_TRADE_EXEMODE: return symbol->execution_market ? SYMBOL_TRADE_EXECUTION_MARKET : SYMBOL_TRADE_EXECUTION_INSTANT;
    case SYMBOL_EXPIRATION_MODE: return symbol->expiration_flags;
    }
    return 0;
}

//--- positions: read through ShimBook(), which runs the server's due work
// and hides the book until the terminal has loaded it.
static inline bool ShimBook() {
    g_terminal->Pump();
    return g_terminal->BookVisible();
}
static inline int PositionsTotal() { return ShimBook() ? (int)g_terminal->positions.size() : 0; }
static inline bool PositionSelectByTicket(ulong ticket) {
    SimPosition *position = ShimBook() ? g_terminal->FindPositionByTicket(ticket) : nullptr;
    ShimMt5Selected().position = position != nullptr ? *position : SimPosition();
    return position != nullptr;
}
static inline bool PositionSelect(const string &symbol) {
    SimPosition *position = ShimBook() ? g_terminal->FindPositionBySymbol(symbol.Utf8()) : nullptr;
    ShimMt5Selected().position = position != nullptr ? *position : SimPosition();
    return position != nullptr;
}
static inline ulong PositionGetTicket(int index) {
    if (index < 0 || index >= PositionsTotal()) return 0;
    ShimMt5Selected().position = g_terminal->positions[(size_t)index];
    return ShimMt5Selected().position.ticket;
}
static inline long PositionGetInteger(ENUM_POSITION_PROPERTY_INTEGER property) {
    const SimPosition &p = ShimMt5Selected().position;
    switch (property) {
    case POSITION_TICKET: return (long)p.ticket;
    case POSITION_IDENTIFIER: return (long)p.identifier;
    case POSITION_TYPE: return p.type;
    case POSITION_MAGIC: return (long)p.magic;
    case POSITION_TIME_MSC: return 0;
    }
    return 0;
}
static inline double PositionGetDouble(ENUM_POSITION_PROPERTY_DOUBLE property) {
    const SimPosition &p = ShimMt5Selected().position;
    switch (property) {
    case POSITION_VOLUME: return p.volume;
    case POSITION_PRICE_OPEN: return p.price_open;
    case POSITION_SL: return p.sl;
    case POSITION_TP: return p.tp;
    case POSITION_PRICE_CURRENT: return 0;
    }
    return 0;
}
static inline string PositionGetString(ENUM_POSITION_PROPERTY_STRING property) {
    const SimPosition &p = ShimMt5Selected().position;
    return string(property == POSITION_SYMBOL ? p.symbol : p.comment);
}

//--- orders (pending)
static inline int OrdersTotal() { return ShimBook() ? (int)g_terminal->orders.size() : 0; }
static inline bool OrderSelect(ulong ticket) {
    SimOrder *order = ShimBook() ? g_terminal->FindOrder(ticket) : nullptr;
    ShimMt5Selected().order = order != nullptr ? *order : SimOrder();
    return order != nullptr;
}
static inline ulong OrderGetTicket(int index) {
    if (index < 0 || index >= OrdersTotal()) return 0;
    ShimMt5Selected().order = g_terminal->orders[(size_t)index];
    return ShimMt5Selected().order.ticket;
}
static inline long OrderGetInteger(ENUM_ORDER_PROPERTY_INTEGER property) {
    const SimOrder &o = ShimMt5Selected().order;
    switch (property) {
    case ORDER_TICKET: return (long)o.ticket;
    case ORDER_TYPE: return o.type;
    case ORDER_STATE: return o.state;
    case ORDER_MAGIC: return (long)o.magic;
    case ORDER_POSITION_ID: return (long)o.position_id;
    case ORDER_TYPE_FILLING: return 0;
    }
    return 0;
}
static inline double OrderGetDouble(ENUM_ORDER_PROPERTY_DOUBLE property) {
    const SimOrder &o = ShimMt5Selected().order;
    switch (property) {
    case ORDER_VOLUME_INITIAL: return o.volume_initial;
    case ORDER_VOLUME_CURRENT: return o.volume_current;
    case ORDER_PRICE_OPEN: return o.price_open;
    case ORDER_SL: return o.sl;
    case ORDER_TP: return o.tp;
    }
    return 0;
}
static inline string OrderGetString(ENUM_ORDER_PROPERTY_STRING property) {
    const SimOrder &o = ShimMt5Selected().order;
    return string(property == ORDER_SYMBOL ? o.symbol : o.comment);
}

//--- history: the whole history is always "selected"; HistorySelectByPosition
// narrows the deal list to one position until the next HistorySelect.
static inline ulong &ShimHistoryPosition() {
    static ulong position = 0;
    return position;
}
static inline bool HistorySelect(datetime from_date, datetime to_date) {
    ShimHistoryPosition() = 0;
    return ShimBook() && from_date <= to_date;
}
static inline bool HistorySelectByPosition(ulong position_id) {
    ShimHistoryPosition() = position_id;
    return ShimBook();
}
// The deals in the selection that the history cache already shows.
static inline std::vector<const SimDeal *> ShimSelectedDeals() {
    std::vector<const SimDeal *> selected;
    if (!ShimBook()) return selected;
    for (auto &deal : g_terminal->deals) {
        const SimDeal *visible = g_terminal->FindDeal(deal.ticket);
        if (visible == nullptr) continue;
        if (ShimHistoryPosition() != 0 && deal.position_id != ShimHistoryPosition()) continue;
        selected.push_back(visible);
    }
    return selected;
}
static inline int HistoryDealsTotal() { return (int)ShimSelectedDeals().size(); }
static inline ulong HistoryDealGetTicket(int index) {
    std::vector<const SimDeal *> selected = ShimSelectedDeals();
    if (index < 0 || index >= (int)selected.size()) return 0;
    return selected[(size_t)index]->ticket;
}
static inline bool HistoryDealSelect(ulong ticket) { return ShimBook() && g_terminal->FindDeal(ticket) != nullptr; }
static inline bool HistoryOrderSelect(ulong ticket) { return ShimBook() && g_terminal->FindHistoryOrder(ticket) != nullptr; }
static inline long HistoryOrderGetInteger(ulong ticket, ENUM_ORDER_PROPERTY_INTEGER property) {
    const SimOrder *order = g_terminal->FindHistoryOrder(ticket);
    if (order == nullptr) return 0;
    switch (property) {
    case ORDER_TICKET: return (long)order->ticket;
    case ORDER_TYPE: return order->type;
    case ORDER_STATE: return order->state;
    case ORDER_MAGIC: return (long)order->magic;
    case ORDER_POSITION_ID: return (long)order->position_id;
    case ORDER_TYPE_FILLING: return 0;
    }
    return 0;
}
static inline double HistoryOrderGetDouble(ulong ticket, ENUM_ORDER_PROPERTY_DOUBLE property) {
    const SimOrder *order = g_terminal->FindHistoryOrder(ticket);
    if (order == nullptr) return 0;
    switch (property) {
    case ORDER_VOLUME_INITIAL: return order->volume_initial;
    case ORDER_VOLUME_CURRENT: return order->volume_current;
    case ORDER_PRICE_OPEN: return order->price_open;
    case ORDER_SL: return order->sl;
    case ORDER_TP: return order->tp;
    }
    return 0;
}
static inline long HistoryDealGetInteger(ulong ticket, ENUM_DEAL_PROPERTY_INTEGER property) {
    const SimDeal *deal = g_terminal->FindDeal(ticket);
    if (deal == nullptr) return 0;
    switch (property) {
    case DEAL_TICKET: return (long)deal->ticket;
    case DEAL_ORDER: return (long)deal->order;
    case DEAL_TIME_MSC: return deal->time_msc;
    case DEAL_TYPE: return deal->type;
    case DEAL_ENTRY: return deal->entry;
    case DEAL_MAGIC: return (long)deal->magic;
    case DEAL_POSITION_ID: return (long)deal->position_id;
    }
    return 0;
}
static inline double HistoryDealGetDouble(ulong ticket, ENUM_DEAL_PROPERTY_DOUBLE property) {
    const SimDeal *deal = g_terminal->FindDeal(ticket);
    if (deal == nullptr) return 0;
    return property == DEAL_VOLUME ? deal->volume : deal->price;
}
static inline string HistoryDealGetString(ulong ticket, ENUM_DEAL_PROPERTY_STRING property) {
    const SimDeal *deal = g_terminal->FindDeal(ticket);
    if (deal == nullptr) return string("");
    return string(property == DEAL_SYMBOL ? deal->symbol : deal->comment);
}

//--- trading
static inline bool OrderSend(const MqlTradeRequest &request, MqlTradeResult &result) {
    uint retcode = g_terminal->Mt5Send(request, result);
    return retcode == TRADE_RETCODE_DONE || retcode == TRADE_RETCODE_PLACED || retcode == TRADE_RETCODE_DONE_PARTIAL;
}

#endif
