// executor_scenarios.h: Executor tests shared by MT4 and MT5; included by
// test_executor4.cpp and test_executor5.cpp after the dialect and after
// defining PLATFORM, ForceRetryable(terminal, n) and ForceFatal(terminal).
// Test names carry the platform through TEST_NAME.

namespace {

struct Slave {
    SimFixture fixture;
    TbExecutor executor;
    explicit Slave(bool hedging = true) : fixture(PLATFORM) {
        fixture.terminal.hedging = hedging;
        Init(executor);
    }
    void Init(TbExecutor &target) {
        TbHello hello;
        hello.version = 1; hello.key = "k"; hello.login = 77; hello.role = "slave"; hello.platform = "x";
        hello.server = "s"; hello.ea = "t"; hello.last_seq = 0;
        MqlString error;
        CHECK(target.Configure("ws://127.0.0.1:1/ea", "k", "t", 3, 10, 2000, 30, 100, 500, 30000, 0, 30000, error));
        CHECK(target.Start(hello, "seq.txt", "tags.txt", "copies.log", error));
        last_hello_seq = hello.last_seq;
    }
    /// Executes `copy` under the id the bridge gives its seq ("77-<seq>"),
    /// so a test that reuses a copy with another seq sends a new copy.
    TbResult Run(const TbCopy &copy, ulong gmt_ms = 1732400000000ul) {
        TbCopy sent;
        sent.CopyFrom(copy);
        sent.id = "77-" + std::to_string(copy.seq);
        TbResult result;
        executor.Execute(sent, gmt_ms, result);
        return result;
    }
    ulong last_hello_seq = 0;
};

TbCopy MakeCopy(ulong seq, const char *action, ulong pos, const char *side, double volume, double price = 1.0813) {
    TbCopy copy;
    copy.Clear();
    copy.seq = seq;
    // The bridge's ids are "<slave>-<seq>": one per copy.
    copy.id = "77-" + std::to_string(seq);
    copy.master = 1234567;
    copy.pos = pos;
    copy.action = action;
    copy.symbol = "EURUSD";
    copy.side = side;
    copy.volume = volume;
    copy.price = price;
    copy.comment = "tc:1234567:" + std::to_string(pos);
    return copy;
}

} // namespace

#define TEST_NAME(name) TEST(name)

TEST_NAME(SCENARIO(open_is_idempotent_by_tag)) {
    // An open fills once; the same position sent again (new seq, or after a restart) is skipped, not doubled.
    Slave slave;
    TbResult first = slave.Run(MakeCopy(1, "open", 9001, "buy", 0.2));
    CHECK(first.status == "filled");
    CHECK_EQ(first.volume, 0.2);
    CHECK(first.ticket != 0);
    TbResult again = slave.Run(MakeCopy(2, "open", 9001, "buy", 0.2));
    CHECK(again.status == "skipped");
    CHECK_EQ(again.ticket, first.ticket);
    TbExecutor restarted;
    slave.Init(restarted);
    CHECK_EQ(slave.last_hello_seq, 2ul);
    TbResult replay;
    restarted.Execute(MakeCopy(2, "open", 9001, "buy", 0.2), 1732400000000ul, replay);
    CHECK(replay.status == "skipped");
    TbResult other;
    restarted.Execute(MakeCopy(3, "open", 9001, "buy", 0.2), 1732400000000ul, other);
    CHECK(other.status == "skipped");
    CHECK_EQ(CountOpenPositions(slave.fixture.terminal), 1);
}

TEST_NAME(SCENARIO(price_past_max_dev_is_skipped)) {
    // A market 5 points away with max_dev 3 points is skipped; within max_dev it fills.
    Slave slave;
    TbCopy copy = MakeCopy(1, "open", 1, "buy", 0.1, 1.0808);
    copy.max_dev = 0.0003;
    TbResult result = slave.Run(copy);
    CHECK(result.status == "skipped");
    CHECK(result.msg.Utf8().find("max_dev") != std::string::npos);
    copy.seq = 2;
    copy.price = 1.0811;
    CHECK(slave.Run(copy).status == "filled");
}

TEST_NAME(SCENARIO(expired_open_is_skipped_but_close_is_not)) {
    // An open past expires_ms (beyond the skew tolerance) is skipped; a close with expires_ms 0 runs.
    Slave slave;
    TbCopy copy = MakeCopy(1, "open", 1, "buy", 0.1);
    copy.expires_ms = 1732400000000ul - 2001;
    TbResult late = slave.Run(copy);
    CHECK(late.status == "skipped");
    CHECK(late.msg.Utf8().find("expired") == 0);
    copy.seq = 2;
    copy.expires_ms = 1732400000000ul - 1000;
    CHECK(slave.Run(copy).status == "filled");
    CHECK(slave.Run(MakeCopy(3, "close", 1, "buy", 0.1)).status == "filled");
}

TEST_NAME(SCENARIO(volume_is_normalised_to_the_symbol)) {
    // 0.237 lots opens 0.23; below the minimum is skipped with the minimum named.
    Slave slave;
    TbResult result = slave.Run(MakeCopy(1, "open", 1, "buy", 0.237));
    CHECK_EQ(result.volume, 0.23);
    TbResult tiny = slave.Run(MakeCopy(2, "open", 2, "buy", 0.004));
    CHECK(tiny.status == "skipped");
    CHECK(tiny.msg.Utf8().find("minimum 0.01") != std::string::npos);
}

TEST_NAME(SCENARIO(retryable_errors_are_retried_a_bounded_number_of_times)) {
    // Two requotes then success fills on the third attempt; endless requotes give up after 1 + MaxRetries attempts.
    Slave slave;
    ForceRetryable(slave.fixture.terminal, 2);
    CHECK(slave.Run(MakeCopy(1, "open", 1, "buy", 0.1)).status == "filled");
    CHECK_EQ(slave.fixture.terminal.trade_requests_count, 3);
    slave.fixture.terminal.trade_requests_count = 0;
    ForceRetryable(slave.fixture.terminal, 50);
    TbResult result = slave.Run(MakeCopy(2, "open", 2, "buy", 0.1));
    CHECK(result.status == "rejected");
    CHECK(result.error != 0);
    CHECK_EQ(slave.fixture.terminal.trade_requests_count, 4);
}

TEST_NAME(SCENARIO(fatal_errors_are_not_retried)) {
    // A non-retryable error rejects at once with the terminal's code.
    Slave slave;
    ForceFatal(slave.fixture.terminal);
    TbResult result = slave.Run(MakeCopy(1, "open", 1, "buy", 0.1));
    CHECK(result.status == "rejected");
    CHECK_EQ(slave.fixture.terminal.trade_requests_count, 1);
}

TEST_NAME(SCENARIO(partial_then_full_close_follow_the_copy)) {
    // A partial close keeps the rest findable by tag (MT4: under its new ticket); the final close empties it.
    Slave slave;
    CHECK(slave.Run(MakeCopy(1, "open", 5, "sell", 0.5)).status == "filled");
    TbResult partial = slave.Run(MakeCopy(2, "close", 5, "sell", 0.2));
    CHECK(partial.status == "filled");
    CHECK_EQ(partial.volume, 0.2);
    TbState state;
    slave.executor.BuildState(state);
    CHECK_EQ(ArraySize(state.positions), 1);
    if (ArraySize(state.positions) == 1) {
        CHECK_EQ(state.positions[0].volume, 0.3);
        CHECK(state.positions[0].comment == "tc:1234567:5");
    }
    TbResult full = slave.Run(MakeCopy(3, "close", 5, "sell", 0.3));
    CHECK(full.status == "filled");
    CHECK_EQ(CountOpenPositions(slave.fixture.terminal), 0);
    CHECK(slave.Run(MakeCopy(4, "close", 5, "sell", 0.3)).status == "skipped");
}

TEST_NAME(SCENARIO(modify_pending_and_cancel)) {
    // SL/TP modify of a position; a pending order placed, re-sent (filled again with the same ticket and volume), moved, cancelled.
    Slave slave;
    slave.Run(MakeCopy(1, "open", 1, "buy", 0.1));
    TbCopy modify = MakeCopy(2, "modify", 1, "buy", 0);
    modify.sl = 1.07;
    modify.tp = 1.09;
    CHECK(slave.Run(modify).status == "filled");
    CHECK_EQ(PositionStopLoss(slave.fixture.terminal), 1.07);
    TbCopy pending = MakeCopy(3, "pending", 2, "buy_limit", 0.2, 1.0750);
    TbResult placed = slave.Run(pending);
    CHECK(placed.status == "filled");
    pending.seq = 4;
    TbResult again = slave.Run(pending);
    CHECK(again.status == "filled");
    CHECK_EQ(again.ticket, placed.ticket);
    CHECK_EQ(again.volume, 0.2);
    CHECK_EQ(again.price, 1.0750);
    CHECK_EQ(PendingCount(slave.fixture.terminal), 1);
    TbCopy move = MakeCopy(5, "modify", 2, "buy_limit", 0, 1.0740);
    CHECK(slave.Run(move).status == "filled");
    CHECK_EQ(PendingPrice(slave.fixture.terminal), 1.0740);
    CHECK(slave.Run(MakeCopy(6, "cancel", 2, "buy_limit", 0)).status == "filled");
    CHECK_EQ(PendingCount(slave.fixture.terminal), 0);
    CHECK(slave.Run(MakeCopy(7, "cancel", 2, "buy_limit", 0)).status == "skipped");
}

TEST_NAME(SCENARIO(state_lists_positions_with_tags)) {
    // The state carries balance, currency and each copy with its tag.
    Slave slave;
    slave.Run(MakeCopy(1, "open", 11, "buy", 0.1));
    slave.Run(MakeCopy(2, "open", 12, "sell", 0.2));
    TbState state;
    slave.executor.BuildState(state);
    CHECK_EQ(ArraySize(state.positions), 2);
    CHECK(state.currency == "USD" && state.balance == 10000);
    CHECK(state.positions[0].comment == "tc:1234567:11" && state.positions[1].side == "sell");
}

TEST_NAME(SCENARIO(long_tags_are_written_compact_and_found_by_comment)) {
    // A tag longer than the 31 characters a broker keeps is written compact: the copy is found by its comment alone (tag map gone) and reported under its full tag.
    const char *tag = "tc:9000000000000000001:5000000001";
    Slave slave;
    TbCopy copy = MakeCopy(1, "open", 5000000001ul, "buy", 0.1);
    copy.master = 9000000000000000001ul;
    copy.comment = tag;
    CHECK(slave.Run(copy).status == "filled");
    CHECK(StringLen(TbOrderComment(copy.comment)) <= TB_COMMENT_LENGTH_MAX);
    // A cut tag would read "tc:9000000000000000001:50000000": another position's tag.
    CHECK(TbOrderComment(copy.comment) != "tc:9000000000000000001:50000000");
    slave.executor.Shutdown();
    std::remove((slave.fixture.terminal.files_dir + "/tags.txt").c_str());
    TbExecutor restarted;
    slave.Init(restarted);
    copy.seq = 2;
    copy.id = "77-2";
    TbResult again;
    restarted.Execute(copy, 1732400000000ul, again);
    CHECK(again.status == "skipped" && again.volume == 0.1);
    TbCopy other = MakeCopy(3, "open", 50000000ul, "buy", 0.1);
    other.master = 9000000000000000001ul;
    other.comment = "tc:9000000000000000001:50000000";
    TbResult second;
    restarted.Execute(other, 1732400000000ul, second);
    CHECK(second.status == "filled");
    CHECK_EQ(CountOpenPositions(slave.fixture.terminal), 2);
    TbState state;
    restarted.BuildState(state);
    CHECK(ArraySize(state.positions) == 2 && state.positions[0].comment == tag);
    CHECK(TbTagOfComment(TbOrderComment("tc:18446744073709551615:18446744073709551615")) == "tc:18446744073709551615:18446744073709551615");
    CHECK(TbTagOfComment("from #9001") == "from #9001");
}

// --- What a real terminal does that the first simulator did not (issue 12).

TEST_NAME(SCENARIO(copies_wait_while_the_terminal_cannot_trade)) {
    // With the trade server unreachable, AutoTrading off or the market closed, a copy is left unfinished (no result, last_seq unchanged), so it still runs once the terminal can trade.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    terminal.broker_connected = false;
    CHECK(slave.Run(MakeCopy(1, "open", 1, "buy", 0.1)).status == "");
    CHECK_EQ(slave.executor.LastSeq(), 0ul);
    terminal.broker_connected = true;
    CHECK(slave.Run(MakeCopy(1, "open", 1, "buy", 0.1)).status == "filled");
    CHECK_EQ(slave.executor.LastSeq(), 1ul);
    terminal.autotrading = false;
    CHECK(slave.Run(MakeCopy(2, "close", 1, "buy", 0.1)).status == "");
    terminal.autotrading = true;
    terminal.symbols["EURUSD"].session_open = false;
    CHECK(slave.Run(MakeCopy(2, "close", 1, "buy", 0.1)).status == "");
    CHECK_EQ(slave.executor.LastSeq(), 1ul);
    CHECK_EQ(CountOpenPositions(terminal), 1);
    terminal.symbols["EURUSD"].session_open = true;
    CHECK(slave.Run(MakeCopy(2, "close", 1, "buy", 0.1)).status == "filled");
    CHECK_EQ(slave.executor.LastSeq(), 2ul);
    CHECK_EQ(CountOpenPositions(terminal), 0);
}

TEST_NAME(SCENARIO(prices_are_normalised_to_the_tick_size)) {
    // A symbol that moves in 0.25 steps refuses the master's 4500.13; the Executor sends the nearest ticks for trigger and stops.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    terminal.AddSymbol("US500", 4510.00, 4510.50, 2);
    terminal.symbols["US500"].tick_size = 0.25;
    TbCopy pending = MakeCopy(1, "pending", 3, "buy_limit", 1.0, 4500.13);
    pending.symbol = "US500";
    pending.sl = 4480.06;
    pending.tp = 4530.99;
    TbResult placed = slave.Run(pending);
    CHECK(placed.status == "filled");
    CHECK_EQ(PendingPrice(terminal), 4500.25);
}

TEST_NAME(SCENARIO(market_execution_opens_without_stops_then_sets_them)) {
    // A market-execution (ECN) server refuses an open that carries SL/TP: the Executor opens without them and sets them right after.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    terminal.symbols["EURUSD"].execution_market = true;
    TbCopy copy = MakeCopy(1, "open", 1, "buy", 0.1);
    copy.sl = 1.07;
    copy.tp = 1.09;
    TbResult result = slave.Run(copy);
    CHECK(result.status == "filled");
    CHECK_EQ(CountOpenPositions(terminal), 1);
    CHECK_EQ(PositionStopLoss(terminal), 1.07);
    CHECK_EQ(PositionTakeProfit(terminal), 1.09);
}

TEST_NAME(SCENARIO(stops_inside_the_stops_level_are_moved_out_and_triggers_skipped)) {
    // With a 50-point stops level an SL 20 points from the market is placed 50 points away (the result says so); a pending trigger 30 points from the market is skipped with the reason.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    terminal.symbols["EURUSD"].stops_level = 50;
    TbCopy copy = MakeCopy(1, "open", 1, "buy", 0.1);
    copy.sl = 1.0810;
    copy.tp = 1.0900;
    TbResult result = slave.Run(copy);
    CHECK(result.status == "filled");
    CHECK_EQ(PositionStopLoss(terminal), 1.0807);
    CHECK(result.msg.Utf8().find("stops level") != std::string::npos);
    TbResult trigger = slave.Run(MakeCopy(2, "pending", 2, "buy_limit", 0.1, 1.0810));
    CHECK(trigger.status == "skipped");
    CHECK(trigger.msg.Utf8().find("stops level") != std::string::npos);
}

TEST_NAME(SCENARIO(frozen_close_waits_and_frozen_modify_is_skipped)) {
    // Within the freeze level of a position's stop, a modify is skipped with the reason and a close stays unfinished until the market moves away, then runs.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    TbCopy open = MakeCopy(1, "open", 1, "buy", 0.1);
    // 10 points below the bid of 1.08120.
    open.sl = 1.0811;
    CHECK(slave.Run(open).status == "filled");
    terminal.symbols["EURUSD"].freeze_level = 20;
    TbCopy modify = MakeCopy(2, "modify", 1, "buy", 0);
    modify.sl = 1.0790;
    TbResult skipped = slave.Run(modify);
    CHECK(skipped.status == "skipped");
    CHECK(skipped.msg.Utf8().find("freeze level") != std::string::npos);
    CHECK(slave.Run(MakeCopy(3, "close", 1, "buy", 0.1)).status == "");
    CHECK_EQ(slave.executor.LastSeq(), 2ul);
    terminal.SetQuote("EURUSD", 1.0850, 1.0851);
    CHECK(slave.Run(MakeCopy(3, "close", 1, "buy", 0.1)).status == "filled");
    CHECK_EQ(CountOpenPositions(terminal), 0);
}

TEST_NAME(SCENARIO(a_zero_quote_after_symbol_select_is_waited_for)) {
    // A symbol just added to Market Watch reads bid and ask 0 until its first tick: the open waits for the quote instead of being skipped as "price moved".
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    terminal.AddSymbol("GBPUSD", 1.26500, 1.26510, 5);
    terminal.symbols["GBPUSD"].in_market_watch = false;
    terminal.symbols["GBPUSD"].quote_delay_ms = 100;
    TbCopy copy = MakeCopy(1, "open", 1, "buy", 0.1, 1.2651);
    copy.symbol = "GBPUSD";
    copy.max_dev = 0.0005;
    CHECK(slave.Run(copy).status == "");
    CHECK_EQ(slave.executor.LastSeq(), 0ul);
    terminal.AdvanceMilliseconds(150);
    CHECK(slave.Run(copy).status == "filled");
}

TEST_NAME(SCENARIO(seq_file_is_recovered_from_its_temporary)) {
    // A rewrite of the seq file cut short (destination deleted, or half copied) leaves "<name>.tmp": a restart reads last_seq from it instead of 0 or a torn number.
    Slave slave;
    CHECK(slave.Run(MakeCopy(1234, "open", 1, "buy", 0.1)).status == "filled");
    ShimInterruptNextFileMove(1);
    slave.Run(MakeCopy(1235, "modify", 999, "buy", 0));
    slave.executor.Shutdown();
    TbExecutor restarted;
    slave.Init(restarted);
    CHECK_EQ(slave.last_hello_seq, 1235ul);
    ShimInterruptNextFileMove(2);
    TbResult result;
    restarted.Execute(MakeCopy(5678, "modify", 999, "buy", 0), 1732400000000ul, result);
    restarted.Shutdown();
    TbExecutor again;
    slave.Init(again);
    CHECK_EQ(slave.last_hello_seq, 5678ul);
}

TEST_NAME(SCENARIO(a_copy_is_not_carried_out_twice_when_the_seq_file_is_lost)) {
    // With its seq file lost the Executor says last_seq 0 and the bridge sends the same copies again: it knows their ids and does not repeat the partial close.
    Slave slave;
    CHECK(slave.Run(MakeCopy(1, "open", 5, "sell", 0.5)).status == "filled");
    CHECK(slave.Run(MakeCopy(2, "close", 5, "sell", 0.2)).status == "filled");
    slave.executor.Shutdown();
    std::remove((slave.fixture.terminal.files_dir + "/seq.txt").c_str());
    TbExecutor restarted;
    slave.Init(restarted);
    CHECK_EQ(slave.last_hello_seq, 0ul);
    TbResult open, close;
    restarted.Execute(MakeCopy(1, "open", 5, "sell", 0.5), 1732400000000ul, open);
    restarted.Execute(MakeCopy(2, "close", 5, "sell", 0.2), 1732400000000ul, close);
    CHECK(close.status != "");
    CHECK_EQ(PositionVolume(slave.fixture.terminal), 0.3);
    CHECK_EQ(restarted.LastSeq(), 2ul);
}

TEST_NAME(SCENARIO(an_old_id_on_a_different_copy_is_carried_out)) {
    // A bridge with a new journal, and a lost seq file here, can send a new copy under an id the ledger knows: it differs in what it asks for, so it is carried out, not answered with the old result.
    Slave slave;
    CHECK(slave.Run(MakeCopy(1, "open", 5, "buy", 0.1)).status == "filled");
    slave.executor.Shutdown();
    std::remove((slave.fixture.terminal.files_dir + "/seq.txt").c_str());
    TbExecutor restarted;
    slave.Init(restarted);
    TbResult result;
    restarted.Execute(MakeCopy(1, "open", 6, "buy", 0.2), 1732400000000ul, result);
    CHECK(result.status == "filled" && result.volume == 0.2);
    CHECK_EQ(CountOpenPositions(slave.fixture.terminal), 2);
}

TEST_NAME(SCENARIO(a_timed_out_close_is_not_sent_again_until_it_proves_void)) {
    // The server times out on a close (it may or may not have run it): nothing is sent again while the position may still show it, only after the fill wait (30 s) with the position unchanged.
    Slave slave;
    SimTerminal &terminal = slave.fixture.terminal;
    CHECK(slave.Run(MakeCopy(1, "open", 1, "buy", 0.3)).status == "filled");
    int before = terminal.trade_requests_count;
    ForceTimeout(terminal);
    CHECK(slave.Run(MakeCopy(2, "close", 1, "buy", 0.1)).status == "");
    terminal.AdvanceMilliseconds(1000);
    CHECK(slave.Run(MakeCopy(2, "close", 1, "buy", 0.1)).status == "");
    CHECK_EQ(terminal.trade_requests_count, before + 1);
    terminal.AdvanceMilliseconds(30000);
    TbResult result = slave.Run(MakeCopy(2, "close", 1, "buy", 0.1));
    CHECK(result.status == "filled");
    CHECK_EQ(terminal.trade_requests_count, before + 2);
    CHECK_EQ(PositionVolume(terminal), 0.2);
}
