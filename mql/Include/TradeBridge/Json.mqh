//+------------------------------------------------------------------+
//| Json.mqh: a bounded JSON reader and a JSON writer over UTF-8.    |
//+------------------------------------------------------------------+
// # Layout
// - TbJsonReader: parses one document (RFC 8259) into a flat token list;
//   each token knows the index just past its subtree, so members are
//   found by skipping, without recursion at lookup time. Integers are
//   read from their digits (TbStringToULong), never through a double.
// - TbJsonWriter: appends UTF-8 with commas handled by a per-depth flag;
//   strings are escaped (quote, backslash, control characters).
// # Invariants
// - A document has at most TB_JSON_TOKENS_MAX tokens and nests at most
//   TB_JSON_DEPTH_MAX deep; a larger one is refused with an error that
//   says so, never parsed partially.
// - Lookups on a missing key or a token of the wrong kind return false;
//   unknown keys are simply never looked up (forward compatibility).
#ifndef TRADEBRIDGE_JSON_MQH
#define TRADEBRIDGE_JSON_MQH

#include "Compat.mqh"
#include "Text.mqh"

// A `state` with 200 positions is about 1,400 tokens; 8,192 covers a
// 64 KiB message of small values without letting one run away.
#define TB_JSON_TOKENS_MAX 8192
// Our messages nest three deep (object, array, object); 16 is generous.
#define TB_JSON_DEPTH_MAX 16

#define TB_JSON_OBJECT 1
#define TB_JSON_ARRAY  2
#define TB_JSON_STRING 3
#define TB_JSON_NUMBER 4
#define TB_JSON_TRUE   5
#define TB_JSON_FALSE  6
#define TB_JSON_NULL   7

struct TbJsonToken
  {
   // TB_JSON_* kind.
   int               kind;
   // Byte range in the text: strings exclude their quotes.
   int               start;
   int               end;
   // Index of the first token after this one's subtree.
   int               next;
   // Members (objects) or elements (arrays); 0 for scalars.
   int               count;
  };

class TbJsonReader
  {
private:
   // The document's bytes, copied in Parse.
   TB_ARRAY(uchar, m_text);
   int               m_length;
   // Tokens in document order; token 0 is the root.
   TB_ARRAY(TbJsonToken, m_tokens);
   int               m_token_count;
   // Parse cursor (byte index) while parsing.
   int               m_position;
   // Why the last Parse failed; "" after a success.
   string            m_error;

public:
                     TbJsonReader(void) : m_length(0), m_token_count(0), m_position(0) {}
   string            Error(void) const { return m_error; }
   int               Kind(int token) const { return m_tokens[token].kind; }
   int               Count(int token) const { return m_tokens[token].count; }
   // First token after `token`'s subtree (its next sibling, if any).
   int               Next(int token) const { return m_tokens[token].next; }

   bool              Parse(TB_CONST_ARRAY_PARAM(uchar, bytes), int count)
     {
      ArrayResize(m_text, count);
      for(int i = 0; i < count; i++)
         m_text[i] = bytes[i];
      m_length = count;
      m_token_count = 0;
      m_position = 0;
      m_error = "";
      ArrayResize(m_tokens, 64, 256);
      if(!TbUtf8Valid(m_text, m_length)) return Failure("document is not valid UTF-8");
      SkipSpace();
      if(ParseValue(0) < 0) return false;
      SkipSpace();
      if(m_position != m_length) return Failure("unexpected text after the document at byte " + IntegerToString(m_position));
      return true;
     }

   bool              ParseText(const string &text)
     {
      TB_ARRAY(uchar, bytes);
      int count = StringToCharArray(text, bytes, 0, -1, CP_UTF8) - 1;
      return Parse(bytes, count);
     }

   // Value token of `key` in `object`, or -1.
   int               Find(int object, const string &key) const
     {
      if(object < 0 || object >= m_token_count || m_tokens[object].kind != TB_JSON_OBJECT) return -1;
      int index = object + 1;
      for(int member = 0; member < m_tokens[object].count; member++)
        {
         if(TokenText(index) == key) return index + 1;
         index = m_tokens[index + 1].next;
        }
      return -1;
     }

   // Token of element `position` in `array`, or -1.
   int               Element(int array, int position) const
     {
      if(array < 0 || array >= m_token_count || m_tokens[array].kind != TB_JSON_ARRAY) return -1;
      if(position < 0 || position >= m_tokens[array].count) return -1;
      int index = array + 1;
      for(int i = 0; i < position; i++)
         index = m_tokens[index].next;
      return index;
     }

   bool              GetString(int object, const string &key, string &value) const
     {
      int token = Find(object, key);
      if(token < 0 || m_tokens[token].kind != TB_JSON_STRING) return false;
      value = TokenText(token);
      return true;
     }
   bool              GetULong(int object, const string &key, ulong &value) const
     {
      int token = Find(object, key);
      if(token < 0 || m_tokens[token].kind != TB_JSON_NUMBER) return false;
      return TbStringToULong(RawText(token), value);
     }
   bool              GetDouble(int object, const string &key, double &value) const
     {
      int token = Find(object, key);
      if(token < 0 || m_tokens[token].kind != TB_JSON_NUMBER) return false;
      value = StringToDouble(RawText(token));
      return true;
     }
   bool              GetBool(int object, const string &key, bool &value) const
     {
      int token = Find(object, key);
      if(token < 0) return false;
      if(m_tokens[token].kind == TB_JSON_TRUE) { value = true; return true; }
      if(m_tokens[token].kind == TB_JSON_FALSE) { value = false; return true; }
      return false;
     }

   // The token's bytes as written (numbers, literals); strings undecoded.
   string            RawText(int token) const
     {
      return CharArrayToString(m_text, m_tokens[token].start, m_tokens[token].end - m_tokens[token].start, CP_UTF8);
     }

   // A string token decoded (escapes resolved); other kinds as written.
   string            TokenText(int token) const
     {
      if(m_tokens[token].kind != TB_JSON_STRING) return RawText(token);
      TB_ARRAY(uchar, decoded);
      int length = 0;
      DecodeString(m_tokens[token].start, m_tokens[token].end, decoded, length);
      return CharArrayToString(decoded, 0, length, CP_UTF8);
     }

private:
   bool              Failure(const string &why)
     {
      if(m_error == "") m_error = why;
      return false;
     }

   void              SkipSpace(void)
     {
      while(m_position < m_length)
        {
         uchar c = m_text[m_position];
         if(c != ' ' && c != '\t' && c != '\r' && c != '\n') return;
         m_position++;
        }
     }

   int               AddToken(int kind, int start)
     {
      if(m_token_count >= TB_JSON_TOKENS_MAX)
        {
         Failure("document has more than " + IntegerToString(TB_JSON_TOKENS_MAX) + " tokens");
         return -1;
        }
      if(m_token_count >= ArraySize(m_tokens)) ArrayResize(m_tokens, m_token_count * 2, 256);
      int index = m_token_count++;
      m_tokens[index].kind = kind;
      m_tokens[index].start = start;
      m_tokens[index].end = start;
      m_tokens[index].next = index + 1;
      m_tokens[index].count = 0;
      return index;
     }

   // Parses one value at m_position; returns its token or -1.
   int               ParseValue(int depth)
     {
      if(depth > TB_JSON_DEPTH_MAX) { Failure("nesting deeper than " + IntegerToString(TB_JSON_DEPTH_MAX)); return -1; }
      if(m_position >= m_length) { Failure("document ends where a value was expected"); return -1; }
      uchar c = m_text[m_position];
      if(c == '{') return ParseContainer(TB_JSON_OBJECT, depth);
      if(c == '[') return ParseContainer(TB_JSON_ARRAY, depth);
      if(c == '"') return ParseString();
      if(c == '-' || (c >= '0' && c <= '9')) return ParseNumber();
      if(Matches("true")) return ParseLiteral(TB_JSON_TRUE, 4);
      if(Matches("false")) return ParseLiteral(TB_JSON_FALSE, 5);
      if(Matches("null")) return ParseLiteral(TB_JSON_NULL, 4);
      Failure("unexpected character '" + ShortToString(c) + "' at byte " + IntegerToString(m_position));
      return -1;
     }

   bool              Matches(const string &word) const
     {
      int length = StringLen(word);
      if(m_position + length > m_length) return false;
      for(int i = 0; i < length; i++)
         if(m_text[m_position + i] != StringGetCharacter(word, i)) return false;
      return true;
     }

   int               ParseLiteral(int kind, int length)
     {
      int token = AddToken(kind, m_position);
      if(token < 0) return -1;
      m_position += length;
      m_tokens[token].end = m_position;
      return token;
     }

   int               ParseContainer(int kind, int depth)
     {
      int token = AddToken(kind, m_position);
      if(token < 0) return -1;
      uchar closer = (kind == TB_JSON_OBJECT) ? '}' : ']';
      m_position++;
      SkipSpace();
      if(m_position < m_length && m_text[m_position] == closer)
        {
         m_position++;
         m_tokens[token].end = m_position;
         m_tokens[token].next = m_token_count;
         return token;
        }
      // Bounded by the token limit: every pass adds at least one token.
      while(true)
        {
         if(kind == TB_JSON_OBJECT && !ParseMemberKey()) return -1;
         SkipSpace();
         if(ParseValue(depth + 1) < 0) return -1;
         m_tokens[token].count++;
         SkipSpace();
         if(m_position >= m_length) { Failure("document ends inside a container"); return -1; }
         uchar c = m_text[m_position++];
         if(c == closer) break;
         if(c != ',') { Failure("expected ',' or '" + ShortToString(closer) + "' at byte " + IntegerToString(m_position - 1)); return -1; }
         SkipSpace();
        }
      m_tokens[token].end = m_position;
      m_tokens[token].next = m_token_count;
      return token;
     }

   bool              ParseMemberKey(void)
     {
      if(m_position >= m_length || m_text[m_position] != '"')
         return Failure("expected a member name at byte " + IntegerToString(m_position));
      if(ParseString() < 0) return false;
      SkipSpace();
      if(m_position >= m_length || m_text[m_position] != ':')
         return Failure("expected ':' at byte " + IntegerToString(m_position));
      m_position++;
      return true;
     }

   int               ParseString(void)
     {
      int token = AddToken(TB_JSON_STRING, m_position + 1);
      if(token < 0) return -1;
      m_position++;
      while(m_position < m_length)
        {
         uchar c = m_text[m_position];
         if(c == '"')
           {
            m_tokens[token].end = m_position;
            m_position++;
            return token;
           }
         if(c < 0x20) { Failure("control character in a string at byte " + IntegerToString(m_position)); return -1; }
         if(c == '\\')
           {
            if(!CheckEscape()) return -1;
            continue;
           }
         m_position++;
        }
      Failure("unterminated string");
      return -1;
     }

   bool              CheckEscape(void)
     {
      if(m_position + 1 >= m_length) return Failure("unterminated escape");
      uchar escape = m_text[m_position + 1];
      if(escape == 'u')
        {
         if(m_position + 6 > m_length) return Failure("short \\u escape");
         for(int i = 2; i < 6; i++)
            if(HexValue(m_text[m_position + i]) < 0) return Failure("bad \\u escape at byte " + IntegerToString(m_position));
         m_position += 6;
         return true;
        }
      if(escape != '"' && escape != '\\' && escape != '/' && escape != 'b' && escape != 'f' && escape != 'n' && escape != 'r' && escape != 't')
         return Failure("bad escape at byte " + IntegerToString(m_position));
      m_position += 2;
      return true;
     }

   int               ParseNumber(void)
     {
      int start = m_position;
      if(m_text[m_position] == '-') m_position++;
      if(m_position >= m_length) { Failure("number without digits"); return -1; }
      if(m_text[m_position] == '0') m_position++;
      else if(!SkipDigits()) { Failure("number without digits at byte " + IntegerToString(start)); return -1; }
      if(m_position < m_length && m_text[m_position] == '.')
        {
         m_position++;
         if(!SkipDigits()) { Failure("no digits after '.' at byte " + IntegerToString(start)); return -1; }
        }
      if(m_position < m_length && (m_text[m_position] == 'e' || m_text[m_position] == 'E'))
        {
         m_position++;
         if(m_position < m_length && (m_text[m_position] == '+' || m_text[m_position] == '-')) m_position++;
         if(!SkipDigits()) { Failure("no digits in the exponent at byte " + IntegerToString(start)); return -1; }
        }
      int token = AddToken(TB_JSON_NUMBER, start);
      if(token < 0) return -1;
      m_tokens[token].end = m_position;
      return token;
     }

   bool              SkipDigits(void)
     {
      int start = m_position;
      while(m_position < m_length && m_text[m_position] >= '0' && m_text[m_position] <= '9') m_position++;
      return m_position > start;
     }

   int               HexValue(uint c) const
     {
      if(c >= '0' && c <= '9') return (int)(c - '0');
      if(c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
      if(c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
      return -1;
     }

   uint              Hex4(int at) const
     {
      uint value = 0;
      for(int i = 0; i < 4; i++)
         value = value * 16 + (uint)HexValue(m_text[at + i]);
      return value;
     }

   void              PutByte(TB_ARRAY_PARAM(uchar, out), int &length, uint value) const
     {
      if(length >= ArraySize(out)) ArrayResize(out, length * 2 + 16);
      out[length++] = (uchar)value;
     }

   void              PutCodePoint(TB_ARRAY_PARAM(uchar, out), int &length, uint code) const
     {
      if(code < 0x80) { PutByte(out, length, code); return; }
      if(code < 0x800)
        {
         PutByte(out, length, 0xC0 | (code >> 6));
         PutByte(out, length, 0x80 | (code & 0x3F));
         return;
        }
      if(code < 0x10000)
        {
         PutByte(out, length, 0xE0 | (code >> 12));
         PutByte(out, length, 0x80 | ((code >> 6) & 0x3F));
         PutByte(out, length, 0x80 | (code & 0x3F));
         return;
        }
      PutByte(out, length, 0xF0 | (code >> 18));
      PutByte(out, length, 0x80 | ((code >> 12) & 0x3F));
      PutByte(out, length, 0x80 | ((code >> 6) & 0x3F));
      PutByte(out, length, 0x80 | (code & 0x3F));
     }

   // Decodes the string bytes [start, end) (already validated) into UTF-8.
   void              DecodeString(int start, int end, TB_ARRAY_PARAM(uchar, out), int &length) const
     {
      ArrayResize(out, end - start + 16);
      int i = start;
      while(i < end)
        {
         uchar c = m_text[i];
         if(c != '\\') { PutByte(out, length, c); i++; continue; }
         uchar escape = m_text[i + 1];
         if(escape != 'u')
           {
            uint plain = escape;
            if(escape == 'b') plain = 8;
            else if(escape == 'f') plain = 12;
            else if(escape == 'n') plain = 10;
            else if(escape == 'r') plain = 13;
            else if(escape == 't') plain = 9;
            PutByte(out, length, plain);
            i += 2;
            continue;
           }
         uint code = Hex4(i + 2);
         i += 6;
         // A high surrogate followed by an escaped low one is one character.
         if(code >= 0xD800 && code < 0xDC00 && i + 6 <= end && m_text[i] == '\\' && m_text[i + 1] == 'u')
           {
            uint low = Hex4(i + 2);
            if(low >= 0xDC00 && low < 0xE000)
              {
               code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
               i += 6;
              }
           }
         // A lone surrogate cannot be UTF-8; it becomes U+FFFD.
         if(code >= 0xD800 && code < 0xE000) code = 0xFFFD;
         PutCodePoint(out, length, code);
        }
     }
  };

// Size of the writer's nesting stack; our messages nest three deep.
#define TB_JSON_WRITER_DEPTH_MAX 8

class TbJsonWriter
  {
private:
   // Output bytes; [0, m_length) are written.
   TB_ARRAY(uchar, m_bytes);
   int               m_length;
   // Per open container: true once it holds a member, so the next one
   // needs a comma.
   bool              m_has_member[TB_JSON_WRITER_DEPTH_MAX];
   int               m_depth;
   // True right after Key(): the value follows without a comma.
   bool              m_after_key;

public:
                     TbJsonWriter(void) : m_length(0), m_depth(0), m_after_key(false) {}
   void              Reset(void) { m_length = 0; m_depth = 0; m_after_key = false; }
   int               Length(void) const { return m_length; }
   int               Depth(void) const { return m_depth; }
   string            ToString(void) const { return CharArrayToString(m_bytes, 0, m_length, CP_UTF8); }
   // Copies the written bytes into `out`; returns their count.
   int               CopyBytes(TB_ARRAY_PARAM(uchar, out)) const
     {
      ArrayResize(out, m_length);
      for(int i = 0; i < m_length; i++)
         out[i] = m_bytes[i];
      return m_length;
     }

   void              BeginObject(void) { BeforeValue(); PutByte('{'); Push(); }
   void              EndObject(void) { Pop(); PutByte('}'); }
   void              BeginArray(void) { BeforeValue(); PutByte('['); Push(); }
   void              EndArray(void) { Pop(); PutByte(']'); }
   void              Key(const string &name)
     {
      BeforeValue();
      PutQuoted(name);
      PutByte(':');
      m_after_key = true;
     }
   void              String(const string &value) { BeforeValue(); PutQuoted(value); }
   void              ULong(ulong value) { BeforeValue(); PutAscii(TbULongToString(value)); }
   void              Double(double value) { BeforeValue(); PutAscii(TbFormatDouble(value)); }
   void              Bool(bool value) { BeforeValue(); PutAscii(value ? "true" : "false"); }
   // A value that is already JSON text (written by this writer before).
   void              Raw(const string &json)
     {
      BeforeValue();
      TB_ARRAY(uchar, utf8);
      int count = StringToCharArray(json, utf8, 0, -1, CP_UTF8) - 1;
      for(int i = 0; i < count; i++) PutByte(utf8[i]);
     }

   void              FieldString(const string &name, const string &value) { Key(name); String(value); }
   void              FieldULong(const string &name, ulong value) { Key(name); ULong(value); }
   void              FieldDouble(const string &name, double value) { Key(name); Double(value); }

private:
   void              Push(void)
     {
      // Depth beyond the stack is a programming error in a message writer;
      // the extra levels share the last slot rather than overrunning it.
      if(m_depth < TB_JSON_WRITER_DEPTH_MAX) m_has_member[m_depth] = false;
      m_depth++;
     }
   void              Pop(void) { if(m_depth > 0) m_depth--; m_after_key = false; }
   void              BeforeValue(void)
     {
      if(m_after_key) { m_after_key = false; return; }
      if(m_depth == 0) return;
      int slot = m_depth <= TB_JSON_WRITER_DEPTH_MAX ? m_depth - 1 : TB_JSON_WRITER_DEPTH_MAX - 1;
      if(m_has_member[slot]) PutByte(',');
      m_has_member[slot] = true;
     }
   void              PutByte(uint value)
     {
      if(m_length >= ArraySize(m_bytes)) ArrayResize(m_bytes, m_length * 2 + 256);
      m_bytes[m_length++] = (uchar)value;
     }
   void              PutAscii(const string &text)
     {
      int length = StringLen(text);
      for(int i = 0; i < length; i++)
         PutByte(StringGetCharacter(text, i));
     }
   void              PutQuoted(const string &text)
     {
      TB_ARRAY(uchar, utf8);
      int count = StringToCharArray(text, utf8, 0, -1, CP_UTF8) - 1;
      PutByte('"');
      for(int i = 0; i < count; i++)
        {
         uint c = utf8[i];
         if(c == '"' || c == '\\') { PutByte('\\'); PutByte(c); }
         else if(c == '\n') { PutByte('\\'); PutByte('n'); }
         else if(c == '\r') { PutByte('\\'); PutByte('r'); }
         else if(c == '\t') { PutByte('\\'); PutByte('t'); }
         else if(c < 0x20)
           {
            string hex = "0123456789abcdef";
            PutAscii("\\u00");
            PutByte(StringGetCharacter(hex, (int)(c >> 4)));
            PutByte(StringGetCharacter(hex, (int)(c & 15)));
           }
         else PutByte(c);
        }
      PutByte('"');
     }
  };

#endif
