// check.h: the harness's tiny test runner (no third-party framework is
// needed for a few dozen deterministic tests).
//
// # Layout
// - TEST(name) registers a test; CHECK / CHECK_EQ record a failure and let
//   the test go on, so one run shows every broken expectation.
// - RunAllTests() prints one line per failure and the closing line
//   "N passed, N failed" that CI reads.
// # Invariants
// - Tests run in registration order, single-threaded, with no real clock.
#ifndef TRADEBRIDGE_CHECK_H
#define TRADEBRIDGE_CHECK_H

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

struct TestCase {
    const char *name;
    void (*run)();
};
std::vector<TestCase> &TestRegistry();
void CheckFailed(const char *file, int line, const std::string &what);
int RunAllTests(int argc, char **argv);

struct TestRegistrar {
    TestRegistrar(const char *name, void (*run)()) { TestRegistry().push_back({name, run}); }
};

#define TEST(name)                                                 \
    static void name();                                            \
    static TestRegistrar name##_registrar(#name, name);            \
    static void name()

#define CHECK(condition)                                                   \
    do {                                                                   \
        if (!(condition)) CheckFailed(__FILE__, __LINE__, #condition);     \
    } while (0)

#define CHECK_EQ(actual, expected)                                                              \
    do {                                                                                        \
        auto actual_value = (actual);                                                           \
        auto expected_value = (expected);                                                       \
        if (!(actual_value == expected_value)) {                                                \
            std::ostringstream message;                                                         \
            message << #actual << " == " << #expected << " (got " << CheckShow(actual_value)   \
                    << ", expected " << CheckShow(expected_value) << ")";                      \
            CheckFailed(__FILE__, __LINE__, message.str());                                     \
        }                                                                                       \
    } while (0)

template <typename T> T CheckShow(const T &value) { return value; }
inline std::string CheckShow(const MqlString &value) { return "'" + value.Utf8() + "'"; }
inline std::string CheckShow(const char *value) { return std::string("'") + value + "'"; }
inline std::string CheckShow(const std::string &value) { return "'" + value + "'"; }

#endif
