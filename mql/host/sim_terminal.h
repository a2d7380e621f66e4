// sim_terminal.h: a simulated MetaTrader terminal for the host harness.
//
// # Layout
// - namespace sim5: MQL5 trade enums and structures (MqlTradeRequest,
//   MqlTradeResult, MqlTradeTransaction) with the reference's values.
// - SimSymbol / SimPosition / SimOrder / SimDeal: the MT5 book.
// - Sim4Order: an MT4 trade or history record (ticket, "from #N" comments).
// - SimTerminal: account, symbols, clock, Files folder, both books, the
//   MT5 trade server (Mt5Send) and the MT4 one (Mt4OrderSend, Mt4OrderClose
//   ...), and fault injection: queued retcodes (requotes, busy, rejects) and
//   partial fills.
// - Book persistence (SaveBook / LoadBook): the broker's side of the
//   account as text, so a harness that kills the terminal process can
//   start it again on the same positions, like a terminal reconnecting to
//   its broker after a crash.
//
// # Invariants
// - A position's identifier never changes (MT5); on a hedging account each
//   fill opens its own position, on a netting account one position per
//   symbol collects every fill.
// - Every MT5 trade operation appends the transactions a real terminal
//   delivers to OnTradeTransaction, in order, to `transactions`.
// - The clock only moves when a test moves it (or in live mode with the
//   real clock), so a test is deterministic.
#ifndef TRADEBRIDGE_SIM_TERMINAL_H
#define TRADEBRIDGE_SIM_TERMINAL_H

#include <deque>
#include <map>
#include <string>
#include <vector>

namespace sim5 {
enum ENUM_ORDER_TYPE {
    ORDER_TYPE_BUY = 0, ORDER_TYPE_SELL = 1, ORDER_TYPE_BUY_LIMIT = 2, ORDER_TYPE_SELL_LIMIT = 3,
    ORDER_TYPE_BUY_STOP = 4, ORDER_TYPE_SELL_STOP = 5, ORDER_TYPE_BUY_STOP_LIMIT = 6,
    ORDER_TYPE_SELL_STOP_LIMIT = 7, ORDER_TYPE_CLOSE_BY = 8
};
enum ENUM_ORDER_STATE {
    ORDER_STATE_STARTED = 0, ORDER_STATE_PLACED = 1, ORDER_STATE_CANCELED = 2, ORDER_STATE_PARTIAL = 3,
    ORDER_STATE_FILLED = 4, ORDER_STATE_REJECTED = 5, ORDER_STATE_EXPIRED = 6
};
enum ENUM_ORDER_TYPE_FILLING { ORDER_FILLING_FOK = 0, ORDER_FILLING_IOC = 1, ORDER_FILLING_RETURN = 2 };
enum ENUM_ORDER_TYPE_TIME { ORDER_TIME_GTC = 0, ORDER_TIME_DAY = 1, ORDER_TIME_SPECIFIED = 2, ORDER_TIME_SPECIFIED_DAY = 3 };
enum ENUM_DEAL_TYPE { DEAL_TYPE_BUY = 0, DEAL_TYPE_SELL = 1, DEAL_TYPE_BALANCE = 2 };
enum ENUM_DEAL_ENTRY { DEAL_ENTRY_IN = 0, DEAL_ENTRY_OUT = 1, DEAL_ENTRY_INOUT = 2, DEAL_ENTRY_OUT_BY = 3 };
enum ENUM_POSITION_TYPE { POSITION_TYPE_BUY = 0, POSITION_TYPE_SELL = 1 };
enum ENUM_TRADE_REQUEST_ACTIONS {
    TRADE_ACTION_DEAL = 1, TRADE_ACTION_PENDING = 5, TRADE_ACTION_SLTP = 6, TRADE_ACTION_MODIFY = 7,
    TRADE_ACTION_REMOVE = 8, TRADE_ACTION_CLOSE_BY = 10
};
enum ENUM_TRADE_TRANSACTION_TYPE {
    TRADE_TRANSACTION_ORDER_ADD = 0, TRADE_TRANSACTION_ORDER_UPDATE = 1, TRADE_TRANSACTION_ORDER_DELETE = 2,
    TRADE_TRANSACTION_HISTORY_ADD = 3, TRADE_TRANSACTION_HISTORY_UPDATE = 4, TRADE_TRANSACTION_HISTORY_DELETE = 5,
    TRADE_TRANSACTION_DEAL_ADD = 6, TRADE_TRANSACTION_DEAL_UPDATE = 7, TRADE_TRANSACTION_DEAL_DELETE = 8,
    TRADE_TRANSACTION_POSITION = 9, TRADE_TRANSACTION_REQUEST = 10
};

struct MqlTradeRequest {
    ENUM_TRADE_REQUEST_ACTIONS action = TRADE_ACTION_DEAL;
    ulong magic = 0;
    ulong order = 0;
    MqlString symbol;
    double volume = 0, price = 0, stoplimit = 0, sl = 0, tp = 0;
    ulong deviation = 0;
    ENUM_ORDER_TYPE type = ORDER_TYPE_BUY;
    ENUM_ORDER_TYPE_FILLING type_filling = ORDER_FILLING_FOK;
    ENUM_ORDER_TYPE_TIME type_time = ORDER_TIME_GTC;
    datetime expiration = 0;
    MqlString comment;
    ulong position = 0;
    ulong position_by = 0;
};
struct MqlTradeResult {
    uint retcode = 0;
    ulong deal = 0, order = 0;
    double volume = 0, price = 0, bid = 0, ask = 0;
    MqlString comment;
    uint request_id = 0;
    int retcode_external = 0;
};
struct MqlTradeTransaction {
    ulong deal = 0, order = 0;
    MqlString symbol;
    ENUM_TRADE_TRANSACTION_TYPE type = TRADE_TRANSACTION_REQUEST;
    ENUM_ORDER_TYPE order_type = ORDER_TYPE_BUY;
    ENUM_ORDER_STATE order_state = ORDER_STATE_STARTED;
    ENUM_DEAL_TYPE deal_type = DEAL_TYPE_BUY;
    ENUM_ORDER_TYPE_TIME time_type = ORDER_TIME_GTC;
    datetime time_expiration = 0;
    double price = 0, price_trigger = 0, price_sl = 0, price_tp = 0, volume = 0;
    ulong position = 0, position_by = 0;
};
} // namespace sim5

/// One tradable symbol.
struct SimSymbol {
    std::string name;
    double bid = 0, ask = 0;
    int digits = 5;
    double point = 0.00001;
    double volume_min = 0.01, volume_max = 100, volume_step = 0.01;
    double contract = 100000;
    /// SYMBOL_FILLING_MODE flags: 1 = FOK allowed, 2 = IOC allowed.
    int filling_flags = 1;
    bool in_market_watch = true;
};

/// An open MT5 position.
struct SimPosition {
    ulong ticket = 0, identifier = 0;
    std::string symbol;
    int type = 0;
    double volume = 0, price_open = 0, sl = 0, tp = 0;
    ulong magic = 0;
    std::string comment;
};

/// An MT5 order, pending (in `orders`) or historical (in `history_orders`).
struct SimOrder {
    ulong ticket = 0;
    std::string symbol;
    int type = 0, state = 0;
    double volume_initial = 0, volume_current = 0, price_open = 0, sl = 0, tp = 0;
    ulong magic = 0, position_id = 0;
    std::string comment;
};

/// An MT5 deal.
struct SimDeal {
    ulong ticket = 0, order = 0, position_id = 0;
    std::string symbol;
    int type = 0, entry = 0;
    double volume = 0, price = 0;
    ulong magic = 0;
    std::string comment;
    long time_msc = 0;
};

/// An MT4 order record: a market trade, a pending order or a history entry.
struct Sim4Order {
    int ticket = 0;
    std::string symbol;
    /// OP_BUY 0, OP_SELL 1, OP_BUYLIMIT 2, OP_SELLLIMIT 3, OP_BUYSTOP 4, OP_SELLSTOP 5.
    int type = 0;
    double lots = 0, open_price = 0, close_price = 0, sl = 0, tp = 0;
    int magic = 0;
    std::string comment;
    /// The comment the order was sent with. A real terminal shows a partial
    /// close's rest only as "from #N"; the rest keeps this field so a
    /// harness can tell which copy a renamed ticket belongs to.
    std::string origin_comment;
    long open_time = 0, close_time = 0;
};

/// One order the server accepted that opened exposure: a market open, a
/// netting scale-in or a pending order placed (a pending order that fills
/// later is not a second entry). A harness counts these per comment to prove
/// nothing was opened twice.
struct SimOpened {
    ulong ticket = 0;
    std::string comment;
};

class SimTerminal {
  public:
    // Account.
    int platform = 5;
    bool hedging = true;
    ulong login = 1234567;
    std::string server = "Broker-Live";
    std::string currency = "USD";
    double balance = 10000, equity = 10000;
    std::string files_dir = "/tmp/tradebridge-sim-files";
    std::map<std::string, SimSymbol> symbols;
    /// Characters of an order comment the server keeps: MT4 and MT5 both
    /// store at most 31 and cut the rest; 0 keeps everything.
    size_t comment_length_max = 31;
    /// Every order that opened exposure, oldest first (see SimOpened).
    std::vector<SimOpened> opened;

    // Clock: microseconds since the Unix epoch (GMT); the trade server runs
    // `server_offset_seconds` ahead, like a broker on GMT+2.
    ulong clock_us = 1732400000000000ul;
    bool clock_real = false;
    long server_offset_seconds = 7200;
    ulong NowMicroseconds() const;
    void AdvanceMilliseconds(ulong milliseconds) { clock_us += milliseconds * 1000ul; }

    // Fault injection: the next trade operations fail with these retcodes /
    // MT4 errors, one per attempt; the next fill only takes this fraction.
    std::deque<uint> forced_retcodes;
    std::deque<int> forced_mt4_errors;
    double next_fill_ratio = 1.0;
    /// Every OrderSend call counted, to check that retries are bounded.
    int trade_requests_count = 0;

    // MT5 book.
    std::vector<SimPosition> positions;
    std::vector<SimOrder> orders;
    std::vector<SimOrder> history_orders;
    std::vector<SimDeal> deals;
    std::vector<sim5::MqlTradeTransaction> transactions;
    ulong next_ticket = 9001;

    // MT4 book.
    std::vector<Sim4Order> mt4_trades;
    std::vector<Sim4Order> mt4_history;
    int last_error = 0;

    void AddSymbol(const std::string &name, double bid, double ask, int digits);
    SimSymbol *FindSymbol(const std::string &name);
    void SetQuote(const std::string &name, double bid, double ask);
    bool VolumeValid(const SimSymbol &symbol, double volume) const;
    /// False when the market has already reached a pending order's price
    /// (a buy limit at or above the ask...): the server refuses it.
    bool PendingPriceValid(const SimSymbol &symbol, int type, double price) const;
    /// `comment` as the server stores it (cut to comment_length_max).
    std::string CutComment(const std::string &comment) const;
    /// Fills every pending order (MT5 or MT4) on `symbol` whose trigger the
    /// current quote has reached; returns their tickets.
    std::vector<ulong> TriggerCrossedPending(const std::string &symbol);

    /// The broker's side of the account (book, history, quotes, tickets) as
    /// text; LoadBook reads it back, false with `error` set on a bad line.
    std::string SaveBook() const;
    bool LoadBook(const std::string &text, std::string &error);

    // MT5 trade server.
    uint Mt5Send(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    bool Mt5TriggerPending(ulong order_ticket);
    SimPosition *FindPositionByTicket(ulong ticket);
    SimPosition *FindPositionBySymbol(const std::string &symbol);
    SimOrder *FindOrder(ulong ticket);
    const SimDeal *FindDeal(ulong ticket) const;
    const SimOrder *FindHistoryOrder(ulong ticket) const;

    // MT4 trade server: each returns like the MQL4 function and sets last_error.
    int Mt4OrderSend(const std::string &symbol, int type, double lots, double price, int slippage, double sl,
                     double tp, const std::string &comment, int magic);
    bool Mt4OrderClose(int ticket, double lots, double price, int slippage);
    bool Mt4OrderModify(int ticket, double price, double sl, double tp);
    bool Mt4OrderDelete(int ticket);
    bool Mt4TriggerPending(int ticket);
    Sim4Order *Mt4FindTrade(int ticket);
    Sim4Order *Mt4FindHistory(int ticket);

  private:
    uint Mt5Deal(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    void Mt5OpenPosition(const sim5::MqlTradeRequest &request, double volume, double price, int deal_type,
                         sim5::MqlTradeResult &result);
    uint Mt5Pending(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    uint Mt5StopsOrModify(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    uint Mt5Remove(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    uint Mt5CloseBy(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    ulong AddDeal(const std::string &symbol, int type, int entry, double volume, double price, ulong position_id,
                  ulong order, ulong magic, const std::string &comment);
    ulong AddFilledOrder(const std::string &symbol, int type, double volume, double price, ulong position_id,
                         ulong magic, const std::string &comment);
    void ReducePosition(size_t index, double volume);
    void PushTransaction(sim5::ENUM_TRADE_TRANSACTION_TYPE type, ulong deal, ulong order, const std::string &symbol,
                         double price, double sl, double tp, double volume, ulong position, int order_type,
                         int order_state, int deal_type);
};

/// The terminal the shim's built-ins serve; a test points it at the
/// terminal of the EA it is about to call.
extern SimTerminal *g_terminal;

#endif
