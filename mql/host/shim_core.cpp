// shim_core.cpp: strings, conversions, math, clock, log and files of the
// MQL shim.
//
// # Layout
// - UTF-8 <-> UTF-16 for MqlString; StringToCharArray / CharArrayToString
//   with CP_UTF8 (CP_ACP is treated as Latin-1, as a Western Windows does).
// - Clock functions read the current SimTerminal's clock.
// - Files live under the current terminal's files_dir, like MQL5/Files.
//
// # Invariants
// - No function here throws; errors go to GetLastError() as in MQL.
#define TB_SHIM_IMPLEMENTATION
#include "mql_shim.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <random>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

static int g_last_error = 0;
static std::mt19937 g_random(1);

void ShimSetLastError(int code) { g_last_error = code; }
int GetLastError() { return g_last_error; }
void ResetLastError() { g_last_error = 0; }
void SetUserError(ushort code) { g_last_error = 65536 + code; }
bool IsStopped() { return false; }

[[noreturn]] void ShimArrayOutOfRange(long index, long size) {
    std::fprintf(stderr, "array out of range: index %ld, size %ld\n", index, size);
    std::abort();
}

//--------------------------------------------------------------------
// strings
//--------------------------------------------------------------------
static std::u16string Utf8ToUtf16(const std::string &utf8) {
    std::u16string out;
    size_t i = 0;
    while (i < utf8.size()) {
        unsigned char lead = (unsigned char)utf8[i];
        uint32_t code = 0xFFFD;
        size_t length = lead < 0x80 ? 1 : (lead >> 5) == 6 ? 2 : (lead >> 4) == 14 ? 3 : (lead >> 3) == 30 ? 4 : 0;
        if (length == 0 || i + length > utf8.size()) {
            length = 1;
        } else if (length == 1) {
            code = lead;
        } else {
            code = lead & (0x7F >> length);
            for (size_t k = 1; k < length; k++) code = (code << 6) | ((unsigned char)utf8[i + k] & 0x3F);
        }
        i += length;
        if (code >= 0x10000) {
            code -= 0x10000;
            out.push_back((char16_t)(0xD800 + (code >> 10)));
            out.push_back((char16_t)(0xDC00 + (code & 0x3FF)));
        } else {
            out.push_back((char16_t)code);
        }
    }
    return out;
}

static std::string Utf16ToUtf8(const std::u16string &units) {
    std::string out;
    for (size_t i = 0; i < units.size(); i++) {
        uint32_t code = units[i];
        if (code >= 0xD800 && code < 0xDC00 && i + 1 < units.size() && units[i + 1] >= 0xDC00 &&
            units[i + 1] < 0xE000) {
            code = 0x10000 + ((code - 0xD800) << 10) + (units[i + 1] - 0xDC00);
            i++;
        }
        if (code < 0x80) {
            out.push_back((char)code);
        } else if (code < 0x800) {
            out.push_back((char)(0xC0 | (code >> 6)));
            out.push_back((char)(0x80 | (code & 0x3F)));
        } else if (code < 0x10000) {
            out.push_back((char)(0xE0 | (code >> 12)));
            out.push_back((char)(0x80 | ((code >> 6) & 0x3F)));
            out.push_back((char)(0x80 | (code & 0x3F)));
        } else {
            out.push_back((char)(0xF0 | (code >> 18)));
            out.push_back((char)(0x80 | ((code >> 12) & 0x3F)));
            out.push_back((char)(0x80 | ((code >> 6) & 0x3F)));
            out.push_back((char)(0x80 | (code & 0x3F)));
        }
    }
    return out;
}

MqlString::MqlString(const char *utf8) : units(Utf8ToUtf16(utf8 == nullptr ? "" : utf8)) {}
std::string MqlString::Utf8() const { return Utf16ToUtf8(units); }
MqlString operator+(const MqlString &a, const MqlString &b) {
    MqlString out = a;
    out += b;
    return out;
}

int StringLen(const string &text) { return (int)text.units.size(); }

string StringSubstr(const string &text, int start, int length) {
    string out;
    int size = (int)text.units.size();
    if (start < 0 || start >= size) return out;
    if (length < 0 || start + length > size) length = size - start;
    out.units = text.units.substr((size_t)start, (size_t)length);
    return out;
}

int StringFind(const string &text, const string &match, int start) {
    if (start < 0 || start > (int)text.units.size()) return -1;
    size_t found = text.units.find(match.units, (size_t)start);
    return found == std::u16string::npos ? -1 : (int)found;
}

ushort StringGetCharacter(const string &text, int position) {
    if (position < 0 || position >= (int)text.units.size()) return 0;
    return text.units[(size_t)position];
}

string ShortToString(ushort character) {
    string out;
    out.units.push_back((char16_t)character);
    return out;
}

string CharToString(uchar character) { return ShortToString(character); }

int StringToCharArray(const string &text, MqlArray<uchar> &array, int start, int count, uint codepage) {
    std::string bytes;
    if (codepage == CP_UTF8) {
        bytes = Utf16ToUtf8(text.units);
    } else {
        for (char16_t unit : text.units) bytes.push_back(unit < 256 ? (char)unit : '?');
    }
    // Like MQL, the whole-string form copies the terminating zero too.
    bytes.push_back('\0');
    if (count < 0 || count > (int)bytes.size()) count = (int)bytes.size();
    if ((int)array.items.size() < start + count) array.items.resize((size_t)(start + count));
    for (int i = 0; i < count; i++) array.items[(size_t)(start + i)] = (uchar)bytes[(size_t)i];
    return count;
}

string CharArrayToString(const MqlArray<uchar> &array, int start, int count, uint codepage) {
    std::string bytes;
    int size = (int)array.items.size();
    if (count < 0 || start + count > size) count = size - start;
    for (int i = 0; i < count; i++) {
        uchar byte = array.items[(size_t)(start + i)];
        if (byte == 0) break;
        bytes.push_back((char)byte);
    }
    string out;
    if (codepage == CP_UTF8) {
        out.units = Utf8ToUtf16(bytes);
    } else {
        for (char byte : bytes) out.units.push_back((char16_t)(unsigned char)byte);
    }
    return out;
}

string IntegerToString(long number, int length, ushort fill) {
    std::string digits = std::to_string(number);
    while ((int)digits.size() < length) digits.insert(digits.begin(), (char)fill);
    return string(digits);
}

string DoubleToString(double value, int digits) {
    if (digits < 0 || digits > 16) digits = 8;
    char buffer[512];
    std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
    return string(buffer);
}

double StringToDouble(const string &text) { return std::strtod(text.Utf8().c_str(), nullptr); }
long StringToInteger(const string &text) { return std::strtol(text.Utf8().c_str(), nullptr, 10); }

bool StringToLower(string &text) {
    for (auto &unit : text.units)
        if (unit >= 'A' && unit <= 'Z') unit = (char16_t)(unit + 32);
    return true;
}

bool StringToUpper(string &text) {
    for (auto &unit : text.units)
        if (unit >= 'a' && unit <= 'z') unit = (char16_t)(unit - 32);
    return true;
}

//--------------------------------------------------------------------
// math
//--------------------------------------------------------------------
double MathAbs(double value) { return std::fabs(value); }
double MathMax(double a, double b) { return a > b ? a : b; }
double MathMin(double a, double b) { return a < b ? a : b; }
double MathRound(double value) { return std::round(value); }
double MathFloor(double value) { return std::floor(value); }
double MathCeil(double value) { return std::ceil(value); }
double MathPow(double base, double exponent) { return std::pow(base, exponent); }
double NormalizeDouble(double value, int digits) {
    double scale = std::pow(10.0, digits);
    return std::round(value * scale) / scale;
}
int MathRand() { return (int)(g_random() % 32768u); }
void MathSrand(uint seed) { g_random.seed(seed); }

//--------------------------------------------------------------------
// clock, timer, log
//--------------------------------------------------------------------
static ulong ShimNowMicroseconds() {
    if (g_terminal != nullptr) return g_terminal->NowMicroseconds();
    auto now = std::chrono::system_clock::now().time_since_epoch();
    return (ulong)std::chrono::duration_cast<std::chrono::microseconds>(now).count();
}
uint GetTickCount() { return (uint)(ShimNowMicroseconds() / 1000); }
ulong GetMicrosecondCount() { return ShimNowMicroseconds(); }
datetime TimeGMT() { return (datetime)(ShimNowMicroseconds() / 1000000); }
datetime TimeCurrent() {
    long offset = g_terminal != nullptr ? g_terminal->server_offset_seconds : 0;
    return TimeGMT() + offset;
}
datetime TimeLocal() { return TimeGMT(); }
bool EventSetMillisecondTimer(int milliseconds) { return milliseconds > 0; }
bool EventSetTimer(int seconds) { return seconds > 0; }
void EventKillTimer() {}
void Sleep(int milliseconds) {
    if (g_terminal != nullptr && !g_terminal->clock_real) {
        g_terminal->AdvanceMilliseconds((ulong)milliseconds);
        return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(milliseconds));
}

static std::deque<std::string> g_log_lines;
void ShimPrintLine(const std::string &line) {
    if (std::getenv("TB_SHIM_VERBOSE") != nullptr) std::fprintf(stderr, "[ea] %s\n", line.c_str());
    g_log_lines.push_back(line);
    // The log is kept for tests to inspect; bounded so a chatty EA cannot grow it.
    if (g_log_lines.size() > 1000) g_log_lines.pop_front();
}
bool ShimLogContains(const std::string &fragment) {
    for (const auto &line : g_log_lines)
        if (line.find(fragment) != std::string::npos) return true;
    return false;
}
void ShimLogClear() { g_log_lines.clear(); }

//--------------------------------------------------------------------
// files
//--------------------------------------------------------------------
static std::map<int, FILE *> g_files;
static int g_next_file_handle = 1;

static std::string ShimFilePath(const string &name) {
    std::string directory = g_terminal != nullptr ? g_terminal->files_dir : std::string("/tmp/tradebridge-sim-files");
    mkdir(directory.c_str(), 0755);
    return directory + "/" + name.Utf8();
}

int FileOpen(const string &name, int flags, short delimiter, uint codepage) {
    (void)delimiter;
    (void)codepage;
    std::string path = ShimFilePath(name);
    bool exists = access(path.c_str(), F_OK) == 0;
    const char *mode = nullptr;
    if ((flags & FILE_READ) && (flags & FILE_WRITE)) mode = exists ? "r+b" : "w+b";
    else if (flags & FILE_WRITE) mode = "wb";
    else mode = "rb";
    FILE *file = std::fopen(path.c_str(), mode);
    if (file == nullptr) {
        g_last_error = exists ? ERR_CANNOT_OPEN_FILE : ERR_FILE_NOT_EXIST;
        return INVALID_HANDLE;
    }
    int handle = g_next_file_handle++;
    g_files[handle] = file;
    return handle;
}

static FILE *ShimFile(int handle) {
    auto found = g_files.find(handle);
    return found == g_files.end() ? nullptr : found->second;
}

void FileClose(int handle) {
    FILE *file = ShimFile(handle);
    if (file == nullptr) return;
    std::fclose(file);
    g_files.erase(handle);
}

void FileFlush(int handle) {
    FILE *file = ShimFile(handle);
    if (file != nullptr) std::fflush(file);
}

uint FileWriteArray(int handle, const MqlArray<uchar> &array, int start, int count) {
    FILE *file = ShimFile(handle);
    int size = (int)array.items.size();
    if (file == nullptr || start < 0 || start > size) return 0;
    if (count < 0 || start + count > size) count = size - start;
    if (count == 0) return 0;
    return (uint)std::fwrite(array.items.data() + start, 1, (size_t)count, file);
}

uint FileReadArray(int handle, MqlArray<uchar> &array, int start, int count) {
    FILE *file = ShimFile(handle);
    if (file == nullptr || start < 0) return 0;
    if (count < 0) {
        long position = std::ftell(file);
        std::fseek(file, 0, SEEK_END);
        count = (int)(std::ftell(file) - position);
        std::fseek(file, position, SEEK_SET);
    }
    if ((int)array.items.size() < start + count) array.items.resize((size_t)(start + count));
    size_t read = std::fread(array.items.data() + start, 1, (size_t)count, file);
    array.items.resize((size_t)start + read);
    return (uint)read;
}

ulong FileSize(int handle) {
    FILE *file = ShimFile(handle);
    if (file == nullptr) return 0;
    long position = std::ftell(file);
    std::fseek(file, 0, SEEK_END);
    long size = std::ftell(file);
    std::fseek(file, position, SEEK_SET);
    return (ulong)size;
}

bool FileSeek(int handle, long offset, int origin) {
    FILE *file = ShimFile(handle);
    return file != nullptr && std::fseek(file, offset, origin) == 0;
}

bool FileIsExist(const string &name, int common_flag) {
    (void)common_flag;
    return access(ShimFilePath(name).c_str(), F_OK) == 0;
}

bool FileDelete(const string &name, int common_flag) {
    (void)common_flag;
    return std::remove(ShimFilePath(name).c_str()) == 0;
}

static int g_file_move_interrupt = 0;
void ShimInterruptNextFileMove(int how) { g_file_move_interrupt = how; }

bool FileMove(const string &source, int common_flag, const string &destination, int mode_flags) {
    (void)common_flag;
    std::string from = ShimFilePath(source), to = ShimFilePath(destination);
    if (access(from.c_str(), F_OK) != 0) {
        g_last_error = ERR_FILE_NOT_EXIST;
        return false;
    }
    if (!(mode_flags & FILE_REWRITE) && access(to.c_str(), F_OK) == 0) return false;
    // Not atomic (see mql_shim.h): the content is copied over the
    // destination, then the source is deleted.
    FILE *in = std::fopen(from.c_str(), "rb");
    if (in == nullptr) return false;
    std::string content;
    char buffer[4096];
    size_t got;
    while ((got = std::fread(buffer, 1, sizeof buffer, in)) > 0) content.append(buffer, got);
    std::fclose(in);
    int interrupt = g_file_move_interrupt;
    g_file_move_interrupt = 0;
    std::remove(to.c_str());
    if (interrupt == 1) return false;
    FILE *out = std::fopen(to.c_str(), "wb");
    if (out == nullptr) return false;
    size_t keep = interrupt == 2 ? content.size() / 2 : content.size();
    size_t written = std::fwrite(content.data(), 1, keep, out);
    std::fclose(out);
    if (interrupt == 2 || written != keep) return false;
    return std::remove(from.c_str()) == 0;
}
