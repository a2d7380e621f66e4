//+------------------------------------------------------------------+
//| Text.mqh: lossless number text and small string helpers.         |
//+------------------------------------------------------------------+
// # Layout
// - TbULongToString / TbStringToULong: 64-bit unsigned integers in
//   decimal, never through long or double (IntegerToString and
//   StringToInteger are signed and would corrupt values above 2^63-1).
// - TbFormatDouble: the shortest fixed-point text that reads back as the
//   same double, for prices and volumes ("0.1", "1.08123").
// - TbUtf8Valid: RFC 3629 validation (WebSocket text, JSON input).
// - TbTrimSpaces, TbStartsWith, TbFromTicket (MT4 "from #N" comments).
// # Invariants
// - TbStringToULong accepts only 1..20 ASCII digits whose value fits in
//   64 bits; anything else is reported, never wrapped.
#ifndef TRADEBRIDGE_TEXT_MQH
#define TRADEBRIDGE_TEXT_MQH

#include "Compat.mqh"

string TbULongToString(ulong value)
  {
   if(value == 0) return "0";
   string digits = "";
   // At most 20 passes: 2^64-1 has 20 decimal digits.
   while(value > 0)
     {
      digits = ShortToString((ushort)('0' + (int)(value % 10))) + digits;
      value /= 10;
     }
   return digits;
  }

// Parses `text` as an unsigned decimal; false (value untouched) when it is
// empty, has a non-digit, or overflows 64 bits.
bool TbStringToULong(const string &text, ulong &value)
  {
   int length = StringLen(text);
   if(length == 0 || length > 20) return false;
   ulong result = 0;
   for(int i = 0; i < length; i++)
     {
      int digit = (int)StringGetCharacter(text, i) - '0';
      if(digit < 0 || digit > 9) return false;
      // result * 10 + digit must stay within ULONG_MAX.
      if(result > (ULONG_MAX - (ulong)digit) / 10) return false;
      result = result * 10 + (ulong)digit;
     }
   value = result;
   return true;
  }

// Shortest fixed-point form (0 to 15 decimals) that reads back equal;
// prices and volumes stop at their symbol's digits. Non-finite values
// (which JSON cannot carry) become 0.
string TbFormatDouble(double value)
  {
   if(value != value || value > 1e300 || value < -1e300) return "0";
   for(int digits = 0; digits <= 15; digits++)
     {
      string text = DoubleToString(value, digits);
      if(StringToDouble(text) == value) return text;
     }
   return DoubleToString(value, 16);
  }

string TbTrimSpaces(const string &text)
  {
   int start = 0, end = StringLen(text);
   while(start < end && (StringGetCharacter(text, start) == ' ' || StringGetCharacter(text, start) == '\t')) start++;
   while(end > start && (StringGetCharacter(text, end - 1) == ' ' || StringGetCharacter(text, end - 1) == '\t')) end--;
   return StringSubstr(text, start, end - start);
  }

// True when the bytes are well-formed UTF-8 (RFC 3629: no overlongs, no
// surrogates, nothing above U+10FFFF); RFC 6455 requires it of text.
bool TbUtf8Valid(TB_CONST_ARRAY_PARAM(uchar, bytes), int count)
  {
   int i = 0;
   while(i < count)
     {
      uint lead = bytes[i];
      int length = 0;
      uint minimum = 0;
      if(lead < 0x80)               { i++; continue; }
      else if((lead >> 5) == 0x6)   { length = 2; minimum = 0x80; lead &= 0x1F; }
      else if((lead >> 4) == 0xE)   { length = 3; minimum = 0x800; lead &= 0x0F; }
      else if((lead >> 3) == 0x1E)  { length = 4; minimum = 0x10000; lead &= 0x07; }
      else return false;
      if(i + length > count) return false;
      uint code = lead;
      for(int k = 1; k < length; k++)
        {
         uint next = bytes[i + k];
         if((next & 0xC0) != 0x80) return false;
         code = (code << 6) | (next & 0x3F);
        }
      if(code < minimum || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return false;
      i += length;
     }
   return true;
  }

bool TbStartsWith(const string &text, const string &prefix)
  {
   return StringFind(text, prefix) == 0;
  }

// N from a "from #N" comment; 0 when the comment is something else.
ulong TbFromTicket(const string &comment)
  {
   int at = StringFind(comment, "from #");
   if(at < 0) return 0;
   int start = at + 6, end = start;
   while(end < StringLen(comment) && StringGetCharacter(comment, end) >= '0' && StringGetCharacter(comment, end) <= '9') end++;
   ulong ticket = 0;
   if(!TbStringToULong(StringSubstr(comment, start, end - start), ticket)) return 0;
   return ticket;
  }

#endif
