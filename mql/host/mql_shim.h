// mql_shim.h: the MQL built-ins the TradeBridge EAs use, in C++17, so their
// logic compiles and runs on this machine.
//
// # Layout
// - Types: uchar, ushort, uint, ulong, datetime, color; `string` is
//   MqlString, UTF-16 like MQL's own string, so code that confuses
//   characters with UTF-8 bytes fails here as it would in the terminal.
// - MqlArray<T>: MQL's dynamic array (`T name[]`), bounds-checked: an index
//   out of range aborts with "array out of range", as MQL stops the EA.
// - String, conversion, math, time, file, log functions (shim_core.cpp).
// - Networking: MT5 Socket* on POSIX sockets; MT4's ws2_32 imports
//   (socket, connect, send, recv, ioctlsocket, select...) on POSIX
//   (shim_net.cpp). TLS is not available on the host: SocketTlsHandshake
//   fails with an error, so wss:// is verified only on a real terminal.
// - The trade API of the platform chosen by __MQL4__ / __MQL5__, served by
//   the current SimTerminal (sim_terminal.h).
//
// # Invariants
// - One translation unit compiles one EA for one platform: exactly one of
//   __MQL4__ / __MQL5__ is defined, with TB_HOST.
// - Time comes from the current SimTerminal's clock, which a test sets, so
//   tests are deterministic; a live harness lets it follow the real clock.
#ifndef TRADEBRIDGE_MQL_SHIM_H
#define TRADEBRIDGE_MQL_SHIM_H

#if !defined(TB_HOST)
#error "mql_shim.h is the host build's shim: compile with -DTB_HOST"
#endif
#if !defined(TB_SHIM_IMPLEMENTATION) && (defined(__MQL4__) == defined(__MQL5__))
#error "define exactly one of __MQL4__ and __MQL5__"
#endif

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>
#include <utility>

typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
typedef long datetime;
typedef uint color;

static_assert(sizeof(ulong) == 8, "MQL ulong is 64 bits");
static_assert(sizeof(long) == 8, "MQL long is 64 bits");

// MQL keywords and properties that carry no meaning for C++.
#define input
#define sinput
#define clrNONE 0xFFFFFFFFu
#define WHOLE_ARRAY -1
#define EMPTY_VALUE 2147483647
#define CP_ACP 0
#define CP_UTF8 65001
#define INIT_SUCCEEDED 0
#define INIT_FAILED 1
#define INIT_PARAMETERS_INCORRECT 2

//--------------------------------------------------------------------
// string
//--------------------------------------------------------------------
class MqlString {
  public:
    /// UTF-16 code units, as MQL stores them.
    std::u16string units;

    MqlString() {}
    MqlString(const char *utf8);
    MqlString(const std::string &utf8) : MqlString(utf8.c_str()) {}
    MqlString &operator+=(const MqlString &other) {
        units += other.units;
        return *this;
    }
    /// UTF-8 copy, for the host side (logs, files, tests).
    std::string Utf8() const;
};
MqlString operator+(const MqlString &a, const MqlString &b);
inline bool operator==(const MqlString &a, const MqlString &b) { return a.units == b.units; }
inline bool operator!=(const MqlString &a, const MqlString &b) { return a.units != b.units; }
inline bool operator<(const MqlString &a, const MqlString &b) { return a.units < b.units; }
inline bool operator>(const MqlString &a, const MqlString &b) { return a.units > b.units; }
typedef MqlString string;

//--------------------------------------------------------------------
// dynamic arrays
//--------------------------------------------------------------------
[[noreturn]] void ShimArrayOutOfRange(long index, long size);

template <typename T> class MqlArray {
  public:
    /// The elements; resized only through ArrayResize / ArrayCopy / ArrayFree.
    std::vector<T> items;

    template <typename I> T &operator[](I index) {
        if ((long)index < 0 || (long)index >= (long)items.size()) ShimArrayOutOfRange((long)index, (long)items.size());
        return items[(size_t)index];
    }
    template <typename I> const T &operator[](I index) const {
        if ((long)index < 0 || (long)index >= (long)items.size()) ShimArrayOutOfRange((long)index, (long)items.size());
        return items[(size_t)index];
    }
};

template <typename T> int ArrayResize(MqlArray<T> &array, int size, int reserve = 0) {
    if (size < 0) return -1;
    if (reserve > 0) array.items.reserve((size_t)size + (size_t)reserve);
    array.items.resize((size_t)size);
    return size;
}
template <typename T> int ArraySize(const MqlArray<T> &array) { return (int)array.items.size(); }
template <typename T, size_t N> int ArraySize(const T (&)[N]) { return (int)N; }
template <typename T> void ArrayFree(MqlArray<T> &array) { array.items.clear(); }
template <typename T>
int ArrayCopy(MqlArray<T> &destination, const MqlArray<T> &source, int destination_start = 0, int source_start = 0,
              int count = WHOLE_ARRAY) {
    int source_size = (int)source.items.size();
    if (source_start < 0 || source_start > source_size || destination_start < 0) return 0;
    int available = source_size - source_start;
    if (count < 0 || count > available) count = available;
    if ((int)destination.items.size() < destination_start + count) destination.items.resize((size_t)(destination_start + count));
    // Overlapping copies within one array behave like memmove, as in MQL.
    std::vector<T> block(source.items.begin() + source_start, source.items.begin() + source_start + count);
    for (int i = 0; i < count; i++) destination.items[(size_t)(destination_start + i)] = block[(size_t)i];
    return count;
}
template <typename T> void ArrayInitialize(MqlArray<T> &array, T value) {
    for (auto &item : array.items) item = value;
}
template <typename T, size_t N, typename V> void ArrayInitialize(T (&array)[N], V value) {
    for (size_t i = 0; i < N; i++) array[i] = (T)value;
}
template <typename T> void ZeroMemory(T &value) { value = T(); }

//--------------------------------------------------------------------
// strings and conversions (shim_core.cpp)
//--------------------------------------------------------------------
int StringLen(const string &text);
string StringSubstr(const string &text, int start, int length = -1);
int StringFind(const string &text, const string &match, int start = 0);
ushort StringGetCharacter(const string &text, int position);
string ShortToString(ushort character);
string CharToString(uchar character);
int StringToCharArray(const string &text, MqlArray<uchar> &array, int start = 0, int count = -1, uint codepage = CP_ACP);
string CharArrayToString(const MqlArray<uchar> &array, int start = 0, int count = -1, uint codepage = CP_ACP);
string IntegerToString(long number, int length = 0, ushort fill = ' ');
string DoubleToString(double value, int digits = 8);
double StringToDouble(const string &text);
long StringToInteger(const string &text);
bool StringToLower(string &text);
bool StringToUpper(string &text);

//--------------------------------------------------------------------
// math
//--------------------------------------------------------------------
double MathAbs(double value);
double MathMax(double a, double b);
double MathMin(double a, double b);
double MathRound(double value);
double MathFloor(double value);
double MathCeil(double value);
double MathPow(double base, double exponent);
double NormalizeDouble(double value, int digits);
int MathRand();
void MathSrand(uint seed);

//--------------------------------------------------------------------
// time, events, errors, log
//--------------------------------------------------------------------
uint GetTickCount();
ulong GetMicrosecondCount();
datetime TimeCurrent();
datetime TimeGMT();
datetime TimeLocal();
bool EventSetMillisecondTimer(int milliseconds);
bool EventSetTimer(int seconds);
void EventKillTimer();
void Sleep(int milliseconds);
int GetLastError();
void ResetLastError();
void SetUserError(ushort code);
bool IsStopped();

void ShimPrintLine(const std::string &line);
inline void ShimAppend(std::string &out, const MqlString &v) { out += v.Utf8(); }
inline void ShimAppend(std::string &out, const char *v) { out += v; }
inline void ShimAppend(std::string &out, bool v) { out += v ? "true" : "false"; }
inline void ShimAppend(std::string &out, double v) { out += DoubleToString(v, 8).Utf8(); }
template <typename T> void ShimAppend(std::string &out, T v) { out += std::to_string(v); }
template <typename... A> void Print(const A &...parts) {
    std::string line;
    (ShimAppend(line, parts), ...);
    ShimPrintLine(line);
}

//--------------------------------------------------------------------
// files, under the current terminal's Files folder (shim_core.cpp)
//--------------------------------------------------------------------
#define INVALID_HANDLE -1
#define FILE_READ 1
#define FILE_WRITE 2
#define FILE_BIN 4
#define FILE_CSV 8
#define FILE_TXT 16
#define FILE_ANSI 32
#define FILE_UNICODE 64
#define FILE_SHARE_READ 128
#define FILE_SHARE_WRITE 256
#define FILE_REWRITE 512
#define FILE_COMMON 4096
int FileOpen(const string &name, int flags, short delimiter = '\t', uint codepage = CP_ACP);
void FileClose(int handle);
void FileFlush(int handle);
uint FileWriteArray(int handle, const MqlArray<uchar> &array, int start = 0, int count = WHOLE_ARRAY);
uint FileReadArray(int handle, MqlArray<uchar> &array, int start = 0, int count = WHOLE_ARRAY);
ulong FileSize(int handle);
bool FileSeek(int handle, long offset, int origin);
bool FileIsExist(const string &name, int common_flag = 0);
bool FileDelete(const string &name, int common_flag = 0);
bool FileMove(const string &source, int common_flag, const string &destination, int mode_flags);
// The reference does not say FileMove over an existing file is atomic; the
// shim's is not either: it copies over the destination, then deletes the
// source. A test makes the next such move stop part-way, as a crash would:
// 1 = the destination is gone, 2 = half of it is written; the source stays.
void ShimInterruptNextFileMove(int how);

// Error codes the shim raises (values from the MQL5 reference).
#define ERR_CANNOT_OPEN_FILE 5004
#define ERR_FILE_NOT_EXIST 5019
#define ERR_NETSOCKET_INVALIDHANDLE 5270
#define ERR_NETSOCKET_TOO_MANY_OPENED 5271
#define ERR_NETSOCKET_CANNOT_CONNECT 5272
#define ERR_NETSOCKET_IO_ERROR 5273
#define ERR_NETSOCKET_HANDSHAKE_FAILED 5274
#define ERR_NETSOCKET_NO_CERTIFICATE 5275

#include "sim_terminal.h"

// Market Watch functions that MQL4 and MQL5 share, name for name, served by
// the current SimTerminal. `static inline` like the platform headers' own.
static inline bool SymbolSelect(const string &name, bool select) { return g_terminal->SelectSymbol(name.Utf8(), select); }
static inline int SymbolsTotal(bool selected) {
    int count = 0;
    for (auto &entry : g_terminal->symbols)
        if (!selected || entry.second.in_market_watch) count++;
    return count;
}
static inline string SymbolName(int position, bool selected) {
    int index = 0;
    for (auto &entry : g_terminal->symbols) {
        if (selected && !entry.second.in_market_watch) continue;
        if (index++ == position) return string(entry.first);
    }
    return string("");
}

#if defined(__MQL5__)
#include "shim_mt5.h"
#elif defined(__MQL4__)
#include "shim_mt4.h"
#endif

#endif
