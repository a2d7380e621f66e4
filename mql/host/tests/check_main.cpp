// check_main.cpp: runs every registered test; see check.h.
#define TB_SHIM_IMPLEMENTATION
#include "../mql_shim.h"
#include "check.h"

#include <cstring>

static int g_failures_in_test = 0;
static const char *g_current_test = "";

std::vector<TestCase> &TestRegistry() {
    static std::vector<TestCase> registry;
    return registry;
}

void CheckFailed(const char *file, int line, const std::string &what) {
    g_failures_in_test++;
    std::printf("FAIL %s (%s:%d): %s\n", g_current_test, file, line, what.c_str());
}

int RunAllTests(int argc, char **argv) {
    int passed = 0, failed = 0;
    for (const TestCase &test : TestRegistry()) {
        if (argc > 1 && std::strstr(test.name, argv[1]) == nullptr) continue;
        g_current_test = test.name;
        g_failures_in_test = 0;
        test.run();
        if (g_failures_in_test == 0) {
            passed++;
            std::printf("ok   %s\n", test.name);
        } else {
            failed++;
        }
    }
    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}

int main(int argc, char **argv) { return RunAllTests(argc, argv); }
