// ea_scenarios.h: whole EAs (their OnInit / OnTimer / OnDeinit, as the
// terminal calls them) on a simulated terminal against a FakeBridge;
// included by test_ea5.cpp and test_ea4.cpp after defining PLATFORM,
// MONITOR(), EXECUTOR(), AddPosition(terminal, comment) and EA_TEST(name).

#include <dirent.h>

namespace {

/// One EA on a fresh terminal, pointed at its own FakeBridge.
struct EaRun {
    SimFixture fixture;
    EaEntry ea;
    FakeBridge bridge;
    bool running = false;
    EaRun(EaEntry entry) : fixture(PLATFORM), ea(entry) {
        ea.set_input("BridgeUrl", bridge.Url());
        ea.set_input("ApiKey", "test-key");
        ea.set_input("BackoffBaseMs", "100");
        ea.set_input("BackoffMaxMs", "400");
    }
    ~EaRun() {
        if (running) ea.on_deinit(0);
    }
    int Init() {
        int code = ea.on_init();
        running = code == INIT_SUCCEEDED;
        return code;
    }
    /// Timer rounds of 20 simulated ms (each given a real millisecond for
    /// loopback) until `done` holds; false when 600 rounds (12 s of the
    /// terminal's clock) pass first.
    template <typename Done> bool RunUntil(Done done) {
        for (int round = 0; round < 600; round++) {
            fixture.terminal.AdvanceMilliseconds(20);
            EaDeliverTransactions(ea, fixture.terminal);
            ea.on_timer();
            bridge.Poll();
            if (done()) return true;
            usleep(1000);
        }
        return false;
    }
    /// Files the EA made whose name has `fragment`.
    int FilesNamed(const std::string &fragment) {
        int count = 0;
        DIR *directory = opendir(fixture.terminal.files_dir.c_str());
        if (directory == nullptr) return 0;
        while (dirent *entry = readdir(directory))
            if (std::string(entry->d_name).find(fragment) != std::string::npos) count++;
        closedir(directory);
        return count;
    }
};

} // namespace

EA_TEST(executor_waits_for_the_login_and_the_book) {
    // The terminal logs in 300 ms after OnInit and shows its positions 200 ms later: the Executor's hello carries the real login and server (never 0), its files are named after it, and its first state lists the copy the account holds.
    EaRun run(EXECUTOR());
    run.fixture.terminal.login = 2002;
    AddPosition(run.fixture.terminal, "tc:1001:9001");
    run.fixture.terminal.StartLoggedOut(300, 200);
    CHECK_EQ(run.Init(), INIT_SUCCEEDED);
    CHECK(run.RunUntil([&] { return !run.bridge.Messages("state").empty(); }));
    std::vector<std::string> hellos = run.bridge.Messages("hello");
    CHECK(!hellos.empty());
    for (const auto &hello : hellos) CHECK(hello.find("\"login\":2002") != std::string::npos && hello.find("\"server\":\"Broker-Live\"") != std::string::npos);
    std::vector<std::string> states = run.bridge.Messages("state");
    CHECK(!states.empty() && states[0].find("tc:1001:9001") != std::string::npos);
    CHECK_EQ(run.FilesNamed("_0."), 0);
}

EA_TEST(monitor_waits_for_the_login_and_the_book) {
    // The terminal logs in 300 ms after OnInit and shows its open position 200 ms later: the Monitor's hello carries the real login, and no snapshot ever goes out without that position (an empty one would close every follower's copy).
    EaRun run(MONITOR());
    run.fixture.terminal.login = 1001;
    AddPosition(run.fixture.terminal, "");
    run.fixture.terminal.StartLoggedOut(300, 200);
    CHECK_EQ(run.Init(), INIT_SUCCEEDED);
    CHECK(run.RunUntil([&] { return !run.bridge.Messages("snapshot").empty(); }));
    for (const auto &hello : run.bridge.Messages("hello")) CHECK(hello.find("\"login\":1001") != std::string::npos);
    for (const auto &snapshot : run.bridge.Messages("snapshot")) CHECK(snapshot.find("\"positions\":[]") == std::string::npos);
    // The position was there before the EA: no event, the snapshot carries it.
    CHECK(run.bridge.Messages("event").empty());
    CHECK_EQ(run.FilesNamed("_0."), 0);
}

EA_TEST(monitor_waits_for_a_book_slower_than_the_settle_time) {
    // The account's positions (and money) show 5 s after the login, longer than the 3 s settle time: the first snapshot still lists the position.
    EaRun run(MONITOR());
    run.fixture.terminal.login = 1001;
    AddPosition(run.fixture.terminal, "");
    run.fixture.terminal.StartLoggedOut(100, 5000);
    CHECK_EQ(run.Init(), INIT_SUCCEEDED);
    CHECK(run.RunUntil([&] { return !run.bridge.Messages("snapshot").empty(); }));
    for (const auto &snapshot : run.bridge.Messages("snapshot")) CHECK(snapshot.find("\"positions\":[]") == std::string::npos);
}

EA_TEST(executor_holds_copies_while_the_broker_is_away) {
    // Copies that arrive while the trade server is unreachable are not answered or counted as finished; they run, in order, once it is back.
    EaRun run(EXECUTOR());
    SimTerminal &terminal = run.fixture.terminal;
    terminal.login = 2002;
    CHECK_EQ(run.Init(), INIT_SUCCEEDED);
    CHECK(run.RunUntil([&] { return !run.bridge.Messages("state").empty(); }));
    terminal.broker_connected = false;
    run.bridge.Send("{\"t\":\"copy\",\"seq\":1,\"id\":\"2002-1\",\"master\":1001,\"pos\":7,\"action\":\"open\",\"symbol\":\"EURUSD\",\"side\":\"buy\",\"volume\":0.1,\"price\":1.0813,\"max_dev\":0,\"sl\":0,\"tp\":0,\"magic\":0,\"comment\":\"tc:1001:7\",\"expires_ms\":0}");
    run.bridge.Send("{\"t\":\"copy\",\"seq\":2,\"id\":\"2002-2\",\"master\":1001,\"pos\":7,\"action\":\"close\",\"symbol\":\"EURUSD\",\"side\":\"buy\",\"volume\":0.05,\"price\":0,\"max_dev\":0,\"sl\":0,\"tp\":0,\"magic\":0,\"comment\":\"tc:1001:7\",\"expires_ms\":0}");
    CHECK(!run.RunUntil([&] { return !run.bridge.Messages("result").empty(); }));
    terminal.broker_connected = true;
    CHECK(run.RunUntil([&] { return run.bridge.Messages("result").size() >= 2; }));
    std::vector<std::string> results = run.bridge.Messages("result");
    CHECK(results.size() == 2 && results[0].find("\"seq\":1") != std::string::npos && results[0].find("\"filled\"") != std::string::npos);
    CHECK(results.size() == 2 && results[1].find("\"seq\":2") != std::string::npos && results[1].find("\"filled\"") != std::string::npos);
}
