// shim_mt4.h: the MQL4 trade/account/market API and the ws2_32 imports an
// MT4 EA declares with #import, served by the current SimTerminal.
// Included by mql_shim.h under __MQL4__ only.
//
// # Layout
// - OP_*, SELECT_BY_*, MODE_* and ERR_* with the MQL4 reference's values.
// - Account*, Order* (selection copies the record, as MQL4 does),
//   OrderSend / OrderClose / OrderModify / OrderDelete, MarketInfo.
// - Winsock functions with the signatures our #import block declares.
// # Invariants
// - Every function is `static inline`: the MT4 and MT5 versions of one
//   name (OrdersTotal, OrderSelect...) differ, and a binary that links EAs
//   of both platforms (ea_host) must keep each translation unit's own.
// - GetLastError() after a trade call returns the simulated server's error.
#ifndef TRADEBRIDGE_SHIM_MT4_H
#define TRADEBRIDGE_SHIM_MT4_H

#include "shim_net.h"

void ShimSetLastError(int code);

#define OP_BUY 0
#define OP_SELL 1
#define OP_BUYLIMIT 2
#define OP_SELLLIMIT 3
#define OP_BUYSTOP 4
#define OP_SELLSTOP 5
#define SELECT_BY_POS 0
#define SELECT_BY_TICKET 1
#define MODE_TRADES 0
#define MODE_HISTORY 1
#define MODE_BID 9
#define MODE_ASK 10
#define MODE_POINT 11
#define MODE_DIGITS 12
#define MODE_STOPLEVEL 14
#define MODE_LOTSIZE 15
#define MODE_TICKSIZE 17
#define MODE_MINLOT 23
#define MODE_LOTSTEP 24
#define MODE_MAXLOT 25
#define MODE_FREEZELEVEL 33
enum ENUM_SYMBOL_INFO_INTEGER { SYMBOL_TRADE_EXEMODE };
enum ENUM_SYMBOL_TRADE_EXECUTION { SYMBOL_TRADE_EXECUTION_REQUEST, SYMBOL_TRADE_EXECUTION_INSTANT, SYMBOL_TRADE_EXECUTION_MARKET, SYMBOL_TRADE_EXECUTION_EXCHANGE };

#define ERR_NO_ERROR 0
#define ERR_NO_RESULT 1
#define ERR_COMMON_ERROR 2
#define ERR_INVALID_TRADE_PARAMETERS 3
#define ERR_SERVER_BUSY 4
#define ERR_NO_CONNECTION 6
#define ERR_TOO_FREQUENT_REQUESTS 8
#define ERR_TRADE_TIMEOUT 128
#define ERR_INVALID_PRICE 129
#define ERR_INVALID_STOPS 130
#define ERR_INVALID_TRADE_VOLUME 131
#define ERR_MARKET_CLOSED 132
#define ERR_TRADE_DISABLED 133
#define ERR_NOT_ENOUGH_MONEY 134
#define ERR_PRICE_CHANGED 135
#define ERR_OFF_QUOTES 136
#define ERR_BROKER_BUSY 137
#define ERR_REQUOTE 138
#define ERR_ORDER_LOCKED 139
#define ERR_TOO_MANY_REQUESTS 141
#define ERR_TRADE_MODIFY_DENIED 145
#define ERR_TRADE_CONTEXT_BUSY 146
#define ERR_UNKNOWN_SYMBOL 4106
#define ERR_INVALID_TICKET 4108
#define ERR_TRADE_NOT_ALLOWED 4109
#define ERR_TRADE_EXPERT_DISABLED_BY_SERVER 4112

static inline Sim4Order &ShimMt4Selected() {
    static Sim4Order selected;
    return selected;
}

//--- account and market; before the terminal has logged in the account
// reads as no account (number 0, no server).
static inline int AccountNumber() { return g_terminal->LoggedIn() ? (int)g_terminal->login : 0; }
static inline double AccountBalance() { return g_terminal->BookVisible() ? g_terminal->balance : 0; }
static inline double AccountEquity() { return g_terminal->BookVisible() ? g_terminal->equity : 0; }
static inline string AccountCurrency() { return string(g_terminal->currency); }
static inline string AccountServer() { return string(g_terminal->LoggedIn() ? g_terminal->server : ""); }
static inline bool RefreshRates() { return true; }
static inline bool IsDllsAllowed() { return true; }
static inline bool IsTradeContextBusy() { return false; }
static inline bool IsConnected() { return g_terminal->Connected(); }
static inline bool IsExpertEnabled() { return g_terminal->autotrading; }
static inline bool IsTradeAllowed() { return g_terminal->autotrading; }
static inline long SymbolInfoInteger(const string &name, ENUM_SYMBOL_INFO_INTEGER property) {
    SimSymbol *symbol = g_terminal->FindSymbol(name.Utf8());
    if (symbol == nullptr) return 0;
    return symbol->execution_market ? SYMBOL_TRADE_EXECUTION_MARKET : SYMBOL_TRADE_EXECUTION_INSTANT;
}
static inline double MarketInfo(const string &name, int type) {
    SimSymbol *symbol = g_terminal->FindSymbol(name.Utf8());
    if (symbol == nullptr) {
        ShimSetLastError(ERR_UNKNOWN_SYMBOL);
        return 0;
    }
    switch (type) {
    case MODE_BID: return g_terminal->Bid(*symbol);
    case MODE_ASK: return g_terminal->Ask(*symbol);
    case MODE_POINT: return symbol->point;
    case MODE_DIGITS: return symbol->digits;
    case MODE_STOPLEVEL: return symbol->stops_level;
    case MODE_FREEZELEVEL: return symbol->freeze_level;
    case MODE_TICKSIZE: return symbol->tick_size;
    case MODE_LOTSIZE: return symbol->contract;
    case MODE_MINLOT: return symbol->volume_min;
    case MODE_LOTSTEP: return symbol->volume_step;
    case MODE_MAXLOT: return symbol->volume_max;
    }
    return 0;
}

//--- orders: empty until the terminal has loaded the account's book. An
// order closed elsewhere while the EA walks the pool by position shifts
// every index behind it (SimTerminal::pool_shift).
static inline int OrdersTotal() { return g_terminal->BookVisible() ? (int)g_terminal->mt4_trades.size() : 0; }
static inline int OrdersHistoryTotal() { return g_terminal->BookVisible() ? (int)g_terminal->mt4_history.size() : 0; }
static inline bool OrderSelect(int index, int select, int pool = MODE_TRADES) {
    Sim4Order *found = nullptr;
    if (!g_terminal->BookVisible()) {
    } else if (select == SELECT_BY_TICKET) {
        // By ticket the pool is ignored: open and closed orders are found alike.
        found = g_terminal->Mt4FindTrade(index);
        if (found == nullptr) found = g_terminal->Mt4FindHistory(index);
    } else {
        auto &list = pool == MODE_HISTORY ? g_terminal->mt4_history : g_terminal->mt4_trades;
        if (index >= 0 && index < (int)list.size()) found = &list[(size_t)index];
    }
    ShimMt4Selected() = found != nullptr ? *found : Sim4Order();
    if (select == SELECT_BY_POS && pool == MODE_TRADES) g_terminal->Mt4OnSelectByPosition();
    return found != nullptr;
}
static inline int OrderTicket() { return ShimMt4Selected().ticket; }
static inline string OrderSymbol() { return string(ShimMt4Selected().symbol); }
static inline int OrderType() { return ShimMt4Selected().type; }
static inline double OrderLots() { return ShimMt4Selected().lots; }
static inline double OrderOpenPrice() { return ShimMt4Selected().open_price; }
static inline double OrderStopLoss() { return ShimMt4Selected().sl; }
static inline double OrderTakeProfit() { return ShimMt4Selected().tp; }
static inline int OrderMagicNumber() { return ShimMt4Selected().magic; }
static inline string OrderComment() { return string(ShimMt4Selected().comment); }
static inline datetime OrderOpenTime() { return ShimMt4Selected().open_time; }
static inline datetime OrderCloseTime() { return ShimMt4Selected().close_time; }
static inline double OrderClosePrice() {
    const Sim4Order &order = ShimMt4Selected();
    if (order.close_time != 0) return order.close_price;
    SimSymbol *symbol = g_terminal->FindSymbol(order.symbol);
    if (symbol == nullptr) return 0;
    return order.type == OP_BUY ? symbol->bid : symbol->ask;
}

static inline int OrderSend(const string &symbol, int cmd, double volume, double price, int slippage, double stoploss,
                     double takeprofit, const string &comment = string(""), int magic = 0, datetime expiration = 0,
                     color arrow_color = clrNONE) {
    int ticket = g_terminal->Mt4OrderSend(symbol.Utf8(), cmd, volume, price, slippage, stoploss, takeprofit,
                                          comment.Utf8(), magic);
    ShimSetLastError(g_terminal->last_error);
    return ticket;
}
static inline bool OrderClose(int ticket, double lots, double price, int slippage, color arrow_color = clrNONE) {
    bool ok = g_terminal->Mt4OrderClose(ticket, lots, price, slippage);
    ShimSetLastError(g_terminal->last_error);
    return ok;
}
static inline bool OrderCloseBy(int ticket, int opposite, color arrow_color = clrNONE) {
    bool ok = g_terminal->Mt4OrderCloseBy(ticket, opposite);
    ShimSetLastError(g_terminal->last_error);
    return ok;
}
static inline bool OrderModify(int ticket, double price, double stoploss, double takeprofit, datetime expiration,
                        color arrow_color = clrNONE) {
    bool ok = g_terminal->Mt4OrderModify(ticket, price, stoploss, takeprofit);
    ShimSetLastError(g_terminal->last_error);
    return ok;
}
static inline bool OrderDelete(int ticket, color arrow_color = clrNONE) {
    bool ok = g_terminal->Mt4OrderDelete(ticket);
    ShimSetLastError(g_terminal->last_error);
    return ok;
}

//--- ws2_32 imports, with the signatures the EA's #import block declares
static inline int WSAStartup(int version_requested, MqlArray<uchar> &data) { return data.items.size() >= 400 && version_requested > 0 ? 0 : 10092; }
static inline int WSAGetLastError() { return ShimWsLastError(); }
static inline int socket(int address_family, int type, int protocol) { return ShimWsSocket(address_family, type, protocol); }
static inline int connect(int s, MqlArray<uchar> &name, int name_length) {
    if ((int)name.items.size() < name_length) return -1;
    return ShimWsConnect(s, name.items.data(), name_length);
}
static inline int send(int s, MqlArray<uchar> &buffer, int length, int flags) {
    if ((int)buffer.items.size() < length) return -1;
    return ShimWsSend(s, buffer.items.data(), length);
}
static inline int recv(int s, MqlArray<uchar> &buffer, int length, int flags) {
    if ((int)buffer.items.size() < length) buffer.items.resize((size_t)length);
    return ShimWsRecv(s, buffer.items.data(), length);
}
static inline int closesocket(int s) { return ShimWsClose(s); }
static inline int setsockopt(int s, int level, int option, MqlArray<uchar> &value, int length) {
    if ((int)value.items.size() < length) return -1;
    return ShimWsSetOption(s, level, option, value.items.data(), length);
}
// Only FIONBIO is emulated: it is the only command the EA sends.
static inline int ioctlsocket(int s, int command, uint &argument) {
    return command == (int)0x8004667E ? ShimWsSetNonBlocking(s, argument != 0) : -1;
}
static inline int select(int nfds, MqlArray<int> &read_set, MqlArray<int> &write_set, MqlArray<int> &except_set, MqlArray<int> &timeout) {
    return ShimWsSelect(read_set.items.data(), write_set.items.data(), except_set.items.data(), timeout.items.data());
}
static inline uint inet_addr(MqlArray<uchar> &text) {
    std::string plain;
    for (uchar byte : text.items) {
        if (byte == 0) break;
        plain.push_back((char)byte);
    }
    return ShimInetAddr(plain.c_str());
}

#endif
