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
    /// Filling modes (1 << ORDER_FILLING_*) the server refuses with 10030
    /// although `filling_flags` advertises them, as some brokers do.
    int fillings_refused = 0;
    /// Filling modes (1 << ORDER_FILLING_*) a pending order may carry;
    /// RETURN always works for a pending order. Exchange-style symbols
    /// accept nothing else.
    int pending_fillings = 1 << 2;
    bool in_market_watch = true;
    /// Smallest price change: every price sent must be a multiple of it.
    double tick_size = 0;
    /// SYMBOL_TRADE_STOPS_LEVEL / MODE_STOPLEVEL: the nearest, in points,
    /// that SL, TP and a pending trigger may be to the market.
    int stops_level = 0;
    /// SYMBOL_TRADE_FREEZE_LEVEL / MODE_FREEZELEVEL: within this many
    /// points of the market an order or a position's stops cannot change.
    int freeze_level = 0;
    /// Market execution (SYMBOL_TRADE_EXECUTION_MARKET, MT4 "ECN"): a
    /// market order that carries SL or TP is refused (10016 / 130).
    bool execution_market = false;
    /// SYMBOL_EXPIRATION_MODE flags: 1 GTC, 2 DAY, 4 SPECIFIED,
    /// 8 SPECIFIED_DAY; a pending order's type_time must be among them.
    int expiration_flags = 15;
    /// False while the symbol's trade session is closed (10018 / 132).
    bool session_open = true;
    /// The first quote arrives this long after SymbolSelect(true) of a
    /// symbol that was not in Market Watch; -1: quotes are always there.
    long quote_delay_ms = -1;
    /// Until then bid and ask read 0 (0: the quote is there).
    ulong quote_ready_at_us = 0;
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
    /// When HistoryDealSelect first finds the deal (the terminal's history
    /// cache lags its DEAL_ADD transaction); 0: at once.
    ulong visible_at_us = 0;
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

/// A market order the server accepted and fills later (deal_delay_ms).
struct SimQueuedFill {
    sim5::MqlTradeRequest request;
    /// The order ticket the request was answered with.
    ulong order = 0;
    /// Lots still to fill, and deals still to make of them.
    double volume_left = 0;
    int deals_left = 1;
    /// When the next deal happens.
    ulong due_us = 0;
};

/// An MT4 order closed by "someone else" (another EA, the trader) while the
/// EA walks the order pool: after `after_selects` more OrderSelect calls by
/// position, ticket `ticket` is closed, shifting the indices behind it.
struct SimPoolShift {
    int ticket = 0;
    int after_selects = 0;
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

    // Start-up and the link to the trade server, as a real terminal has
    // them: the login is known only once the terminal has logged in
    // (AccountInfoInteger(ACCOUNT_LOGIN), AccountNumber() and the server
    // name read 0 and "" before), and the account's positions, orders and
    // history arrive after that (the lists read empty before).
    /// The terminal logs in at this time (0: it was logged in at start).
    ulong login_at_us = 0;
    /// The book (positions, orders, deals, MT4 trades, and the balance and
    /// equity, which read 0 before) is visible from this time on; 0: with
    /// the login.
    ulong book_at_us = 0;
    /// The link to the trade server once logged in (TERMINAL_CONNECTED,
    /// IsConnected()); trade requests fail with 10031 / 6 without it.
    bool broker_connected = true;
    /// The terminal's AutoTrading button (TERMINAL_TRADE_ALLOWED,
    /// IsTradeAllowed()); requests fail with 10027 / 4109 when it is off.
    bool autotrading = true;
    /// Makes the terminal start now and log in `login_delay_ms` later, its
    /// book arriving `book_delay_ms` after the login.
    void StartLoggedOut(ulong login_delay_ms, ulong book_delay_ms);
    bool LoggedIn() const { return NowMicroseconds() >= login_at_us; }
    /// SocketConnect to this port sets up TLS by itself (the reference:
    /// "There is no need to call the function when connecting to the port
    /// 443"); a test points it at its own TLS server's port.
    uint tls_implicit_port = 443;
    bool Connected() const { return LoggedIn() && broker_connected; }
    bool BookVisible() const { return LoggedIn() && NowMicroseconds() >= book_at_us; }

    // Clock: microseconds since the Unix epoch (GMT); the trade server runs
    // `server_offset_seconds` ahead, like a broker on GMT+2.
    ulong clock_us = 1732400000000000ul;
    bool clock_real = false;
    long server_offset_seconds = 7200;
    ulong NowMicroseconds() const;
    void AdvanceMilliseconds(ulong milliseconds) { clock_us += milliseconds * 1000ul; }
    /// The server's work that is due by now: queued fills (deal_delay_ms).
    /// Every shim call that reads the book or trades runs it first, as a
    /// real terminal applies what the server sent whenever it gets it.
    void Pump();

    // Fault injection: the next trade operations fail with these retcodes /
    // MT4 errors, one per attempt; the next fill only takes this fraction.
    std::deque<uint> forced_retcodes;
    std::deque<int> forced_mt4_errors;
    double next_fill_ratio = 1.0;
    /// Every OrderSend call counted, to check that retries are bounded.
    int trade_requests_count = 0;

    // How the MT5 server answers and reports a market order.
    /// -1: OrderSend returns the final fill (deal, volume). Otherwise the
    /// server accepts the order with `accepted_retcode` (PLACED, or DONE
    /// with deal and volume 0, as exchange and asynchronous execution do)
    /// and makes its deal(s) this many milliseconds later.
    long deal_delay_ms = -1;
    uint accepted_retcode = 10008;
    /// One order fills in this many deals (a fill across several prices),
    /// `deal_delay_ms` apart when it is set.
    int deals_per_fill = 1;
    /// HistoryDealSelect finds a deal this long after its DEAL_ADD
    /// transaction was queued (the history cache lags); 0: at once.
    long deal_history_delay_ms = 0;
    /// Trade transactions reach the EA in the reverse of the order they
    /// happened in (MT5 does not promise an order).
    bool transactions_reversed = false;
    /// Hands over the queued transactions, in delivery order.
    std::vector<sim5::MqlTradeTransaction> TakeTransactions();
    /// Fills queued by deal_delay_ms, oldest first.
    std::vector<SimQueuedFill> queued_fills;
    /// A broker service operation (swaps charged by re-opening): the
    /// position gets a new ticket, its identifier stays.
    bool ReopenPosition(ulong identifier);

    // How the MT4 server names things.
    /// Comment of a partial close's rest: "from #N" on a real MT4 server;
    /// some brokers write something else, or nothing. "%d" is the old ticket.
    std::string mt4_rest_comment = "from #%d";
    /// Comment of the rest of a partial OrderCloseBy.
    std::string mt4_close_by_rest_comment = "partial close";
    /// Armed by a test: closes an order in the middle of the EA's pass.
    SimPoolShift pool_shift;

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
    /// The quote as the terminal shows it: 0 until the first tick of a
    /// symbol just added to Market Watch.
    double Bid(const SimSymbol &symbol) const;
    double Ask(const SimSymbol &symbol) const;
    /// SymbolSelect: adds or removes the symbol from Market Watch.
    bool SelectSymbol(const std::string &name, bool select);
    bool VolumeValid(const SimSymbol &symbol, double volume) const;
    /// False when the market has already reached a pending order's price
    /// (a buy limit at or above the ask...): the server refuses it.
    bool PendingPriceValid(const SimSymbol &symbol, int type, double price) const;
    /// True when `price` is a multiple of the symbol's tick size and has no
    /// more decimals than its digits (0 always is).
    bool PriceNormalized(const SimSymbol &symbol, double price) const;
    /// True when SL and TP of an order of `type` (0..5) opening at `price`
    /// keep the stops level, and a pending trigger its distance to the market.
    bool StopsValid(const SimSymbol &symbol, int type, double price, double sl, double tp) const;
    /// True when a position or order of `type` at `price` with stops sl/tp
    /// is within the freeze level of the market and may not change.
    bool Frozen(const SimSymbol &symbol, int type, double price, double sl, double tp) const;
    /// `comment` as the server stores it (cut to comment_length_max).
    std::string CutComment(const std::string &comment) const;
    /// Fills every pending order (MT5 or MT4) on `symbol` whose trigger the
    /// current quote has reached; returns their tickets.
    std::vector<ulong> TriggerCrossedPending(const std::string &symbol);

    /// The broker's side of the account (book, history, quotes, tickets) as
    /// text; LoadBook reads it back, false with `error` set on a bad line.
    std::string SaveBook() const;
    bool LoadBook(const std::string &text, std::string &error);
    /// After LoadBook: the market orders the book holds as active are
    /// queued to fill (the server took them; it fills them regardless).
    void RequeueMarketOrders();

    // MT5 trade server.
    uint Mt5Send(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    bool Mt5TriggerPending(ulong order_ticket);
    SimPosition *FindPositionByTicket(ulong ticket);
    SimPosition *FindPositionBySymbol(const std::string &symbol);
    SimOrder *FindOrder(ulong ticket);
    /// A deal, as HistoryDealSelect sees it (nullptr before it is visible).
    const SimDeal *FindDeal(ulong ticket) const;
    const SimOrder *FindHistoryOrder(ulong ticket) const;

    // MT4 trade server: each returns like the MQL4 function and sets last_error.
    int Mt4OrderSend(const std::string &symbol, int type, double lots, double price, int slippage, double sl,
                     double tp, const std::string &comment, int magic);
    bool Mt4OrderClose(int ticket, double lots, double price, int slippage);
    bool Mt4OrderCloseBy(int ticket, int opposite);
    bool Mt4OrderModify(int ticket, double price, double sl, double tp);
    bool Mt4OrderDelete(int ticket);
    bool Mt4TriggerPending(int ticket);
    Sim4Order *Mt4FindTrade(int ticket);
    Sim4Order *Mt4FindHistory(int ticket);
    /// Counts one OrderSelect by position and runs an armed pool_shift.
    void Mt4OnSelectByPosition();

  private:
    /// The retcode / MT4 error every request gets while the terminal
    /// cannot trade (not connected, AutoTrading off), or 0.
    uint Mt5Refusal() const;
    int Mt4Refusal() const;
    SimOrder NewOrder(const sim5::MqlTradeRequest &request, double price);
    uint Mt5Deal(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    uint Mt5DealChecks(const sim5::MqlTradeRequest &request, SimSymbol &symbol, SimPosition *&target);
    uint Mt5Fill(const sim5::MqlTradeRequest &request, double volume, ulong order, sim5::MqlTradeResult &result);
    void Mt5OpenPosition(const sim5::MqlTradeRequest &request, double volume, double price, int deal_type,
                         ulong order, sim5::MqlTradeResult &result);
    uint Mt5Pending(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    uint Mt5StopsOrModify(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    uint Mt5Remove(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    uint Mt5CloseBy(const sim5::MqlTradeRequest &request, sim5::MqlTradeResult &result);
    void RunQueuedFill(SimQueuedFill &fill);
    ulong AddDeal(const std::string &symbol, int type, int entry, double volume, double price, ulong position_id,
                  ulong order, ulong magic, const std::string &comment, bool order_done = true);
    ulong AddFilledOrder(const std::string &symbol, int type, double volume, double price, ulong position_id,
                         ulong magic, const std::string &comment);
    void ReducePosition(size_t index, double volume);
    void PushTransaction(sim5::ENUM_TRADE_TRANSACTION_TYPE type, ulong deal, ulong order, const std::string &symbol,
                         double price, double sl, double tp, double volume, ulong position, int order_type,
                         int order_state, int deal_type);
    /// Closes an MT4 market order entirely at the market (pool_shift).
    void Mt4CloseWhole(int ticket);
    /// MT4: the rest of `order` after `lots` of it closed, under a new
    /// ticket with `comment`; leaves "to #<new>" on the closed part.
    void Mt4SplitRest(const Sim4Order &order, double lots, const std::string &comment, Sim4Order &closed);
};

/// The terminal the shim's built-ins serve; a test points it at the
/// terminal of the EA it is about to call.
extern SimTerminal *g_terminal;

#endif
