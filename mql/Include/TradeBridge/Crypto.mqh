//+------------------------------------------------------------------+
//| Crypto.mqh: SHA-1, base64 and a small random source, for the     |
//| WebSocket handshake (RFC 6455 section 4) and frame masking.      |
//+------------------------------------------------------------------+
// # Layout
// - TbSha1(bytes, count, digest[20]): FIPS 180-4 SHA-1.
// - TbBase64Encode(bytes, count): RFC 4648 base64 with padding.
// - TbRandom: xorshift64* seeded from the microsecond clock and MathRand;
//   used for Sec-WebSocket-Key, frame mask keys and backoff jitter.
// # Invariants
// - All arithmetic is on uint (32-bit, wrapping), as SHA-1 is defined.
// - TbRandom's state is never zero (xorshift would stay at zero).
// Note: masking only has to be unpredictable to a script in a browser
// (RFC 6455 section 10.3); an EA has no such adversary, so a seeded
// xorshift is enough and no crypto library is needed.
#ifndef TRADEBRIDGE_CRYPTO_MQH
#define TRADEBRIDGE_CRYPTO_MQH

#include "Compat.mqh"

uint TbRotateLeft(uint value, int bits)
  {
   return (value << bits) | (value >> (32 - bits));
  }

// One 64-byte block of SHA-1; `words` is scratch space of 80 entries.
void TbSha1Block(TB_CONST_ARRAY_PARAM(uchar, message), int offset, TB_ARRAY_PARAM(uint, state), TB_ARRAY_PARAM(uint, words))
  {
   for(int i = 0; i < 16; i++)
     {
      int at = offset + i * 4;
      words[i] = ((uint)message[at] << 24) | ((uint)message[at + 1] << 16) | ((uint)message[at + 2] << 8) | (uint)message[at + 3];
     }
   for(int i = 16; i < 80; i++)
      words[i] = TbRotateLeft(words[i - 3] ^ words[i - 8] ^ words[i - 14] ^ words[i - 16], 1);
   // a..e, f and k are FIPS 180-4's own names for the working variables.
   uint a = state[0], b = state[1], c = state[2], d = state[3], e = state[4];
   for(int i = 0; i < 80; i++)
     {
      uint f, k;
      if(i < 20)      { f = (b & c) | ((~b) & d);           k = 0x5A827999; }
      else if(i < 40) { f = b ^ c ^ d;                      k = 0x6ED9EBA1; }
      else if(i < 60) { f = (b & c) | (b & d) | (c & d);    k = 0x8F1BBCDC; }
      else            { f = b ^ c ^ d;                      k = 0xCA62C1D6; }
      uint next = TbRotateLeft(a, 5) + f + e + k + words[i];
      e = d;
      d = c;
      c = TbRotateLeft(b, 30);
      b = a;
      a = next;
     }
   state[0] += a; state[1] += b; state[2] += c; state[3] += d; state[4] += e;
  }

// SHA-1 of the first `count` bytes of `input`; `digest` gets 20 bytes.
void TbSha1(TB_CONST_ARRAY_PARAM(uchar, data), int count, TB_ARRAY_PARAM(uchar, digest))
  {
   // Padding: 0x80, zeros, then the bit length as 64-bit big-endian.
   int padded = ((count + 8) / 64 + 1) * 64;
   TB_ARRAY(uchar, message);
   ArrayResize(message, padded);
   for(int i = 0; i < padded; i++)
      message[i] = (i < count) ? data[i] : 0;
   message[count] = 0x80;
   ulong bits = (ulong)count * 8;
   for(int i = 0; i < 8; i++)
      message[padded - 1 - i] = (uchar)((bits >> (8 * i)) & 0xFF);
   TB_ARRAY(uint, state);
   ArrayResize(state, 5);
   state[0] = 0x67452301; state[1] = 0xEFCDAB89; state[2] = 0x98BADCFE; state[3] = 0x10325476; state[4] = 0xC3D2E1F0;
   TB_ARRAY(uint, words);
   ArrayResize(words, 80);
   for(int offset = 0; offset < padded; offset += 64)
      TbSha1Block(message, offset, state, words);
   ArrayResize(digest, 20);
   for(int i = 0; i < 5; i++)
      for(int j = 0; j < 4; j++)
         digest[i * 4 + j] = (uchar)((state[i] >> (24 - 8 * j)) & 0xFF);
  }

string TbBase64Alphabet()
  {
   return "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  }

// Base64 (RFC 4648, with '=' padding) of the first `count` bytes.
string TbBase64Encode(TB_CONST_ARRAY_PARAM(uchar, data), int count)
  {
   string alphabet = TbBase64Alphabet();
   string out = "";
   for(int i = 0; i < count; i += 3)
     {
      uint chunk = (uint)data[i] << 16;
      if(i + 1 < count) chunk |= (uint)data[i + 1] << 8;
      if(i + 2 < count) chunk |= (uint)data[i + 2];
      out += ShortToString(StringGetCharacter(alphabet, (int)((chunk >> 18) & 63)));
      out += ShortToString(StringGetCharacter(alphabet, (int)((chunk >> 12) & 63)));
      out += (i + 1 < count) ? ShortToString(StringGetCharacter(alphabet, (int)((chunk >> 6) & 63))) : "=";
      out += (i + 2 < count) ? ShortToString(StringGetCharacter(alphabet, (int)(chunk & 63))) : "=";
     }
   return out;
  }

// The Sec-WebSocket-Accept value a server must send for `key`:
// base64(SHA-1(key + the RFC 6455 GUID)).
string TbWebSocketAccept(const string &key)
  {
   string joined = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
   TB_ARRAY(uchar, bytes);
   int count = StringToCharArray(joined, bytes, 0, -1, CP_UTF8) - 1;
   TB_ARRAY(uchar, digest);
   TbSha1(bytes, count, digest);
   return TbBase64Encode(digest, 20);
  }

// 2^64 / golden ratio, written as two halves because MQL may not accept a
// literal above LONG_MAX; any odd constant would do, this one is customary.
#define TB_RANDOM_GOLDEN (((ulong)0x9E3779B9 << 32) | (ulong)0x7F4A7C15)
// The xorshift64* output multiplier (Vigna, 2014).
#define TB_RANDOM_MULTIPLIER (((ulong)0x2545F491 << 32) | (ulong)0x4F6CDD1D)

class TbRandom
  {
private:
   // Generator state; changes on every draw; never zero.
   ulong             m_state;
public:
                     TbRandom(void) : m_state(TB_RANDOM_GOLDEN) {}
   // Seeds from the caller's entropy (clock, MathRand); a zero seed is
   // replaced because xorshift cannot leave zero.
   void              Seed(ulong seed)
     {
      m_state = seed ^ TB_RANDOM_GOLDEN;
      if(m_state == 0) m_state = TB_RANDOM_MULTIPLIER;
     }
   ulong             Next(void)
     {
      m_state ^= m_state >> 12;
      m_state ^= m_state << 25;
      m_state ^= m_state >> 27;
      return m_state * TB_RANDOM_MULTIPLIER;
     }
   uchar             NextByte(void) { return (uchar)(Next() >> 56); }
   // A value in [0, bound); bound 0 gives 0.
   ulong             Below(ulong bound) { return bound == 0 ? 0 : Next() % bound; }
  };

#endif
