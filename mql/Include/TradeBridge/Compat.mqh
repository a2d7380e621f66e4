//+------------------------------------------------------------------+
//| Compat.mqh: the few macros that let one source compile as MQL4,  |
//| MQL5 and (through mql/host/mql_shim.h) as C++17.                 |
//+------------------------------------------------------------------+
// # Layout
// - TB_ARRAY / TB_ARRAY_PARAM / TB_CONST_ARRAY_PARAM: dynamic arrays, which
//   MQL spells `T name[]` and C++ cannot; the host build maps them onto the
//   shim's MqlArray<T>.
// - TB_PLATFORM: "mt4" or "mt5", the `platform` field of `hello`.
// # Invariants
// - Every file under Include/TradeBridge includes this file first.
// - The dialect avoids what only one side accepts: no pointers, no local
//   references, no struct assignment (CopyFrom methods instead), no
//   templates, no string literals added to each other, no implicit
//   number-to-string conversion.
#ifndef TRADEBRIDGE_COMPAT_MQH
#define TRADEBRIDGE_COMPAT_MQH

#ifdef TB_HOST
   // The host build has included mql_shim.h before any EA source.
   #define TB_ARRAY(type, name)             MqlArray<type> name
   #define TB_ARRAY_PARAM(type, name)       MqlArray<type> &name
   #define TB_CONST_ARRAY_PARAM(type, name) const MqlArray<type> &name
#else
   #define TB_ARRAY(type, name)             type name[]
   #define TB_ARRAY_PARAM(type, name)       type &name[]
   #define TB_CONST_ARRAY_PARAM(type, name) const type &name[]
#endif

#ifdef __MQL5__
   #define TB_PLATFORM "mt5"
#else
   #define TB_PLATFORM "mt4"
#endif

// Protocol version spoken by every EA (PROTOCOL.md, "version 1").
#define TB_PROTOCOL_VERSION 1

// Sentinel for "no error" in the terminal's error and retcode fields.
#define TB_ERROR_NONE 0

#endif
