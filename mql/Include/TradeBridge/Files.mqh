//+------------------------------------------------------------------+
//| Files.mqh: files that survive a crash in the middle of a rewrite. |
//+------------------------------------------------------------------+
// # Layout
// - TbWriteFileAtomically / TbReadFileRecovering: a small file rewritten
//   whole through "<name>.tmp", ending with the line TB_FILE_END_TEXT, and
//   read back from a whole temporary when the file is missing or cut short.
// - TbCompactLog / TbRecoverLog: an append-only log (the Monitor's outbox,
//   the Executor's copy ledger) rewritten by compaction through
//   "<name>.tmp"; at open, a temporary is put in place when the log is
//   missing or holds only its start (the move was cut short).
// - TbReadFileBytes: a file's bytes.
// # Invariants
// - The reference does not say FileMove over an existing file is atomic
//   (the MQL5 book describes it as a copy and a delete of the source), so
//   a crash can leave the destination missing, cut short, or whole with
//   the temporary still there: in each case the reader ends up with the
//   old or the new content, never a mix.
#ifndef TRADEBRIDGE_FILES_MQH
#define TRADEBRIDGE_FILES_MQH

#include "Compat.mqh"
#include "Text.mqh"

// Last line of every file TbWriteFileAtomically writes: a reader that sees
// it knows the file is whole.
#define TB_FILE_END_TEXT "#end\n"

// Writes `text` and the end line to `<name>.tmp` and moves it over `name`.
bool TbWriteFileAtomically(const string &name, const string &text)
  {
   string temporary = name + ".tmp";
   int handle = FileOpen(temporary, FILE_WRITE | FILE_BIN);
   if(handle == INVALID_HANDLE) return false;
   TB_ARRAY(uchar, bytes);
   string whole = text + TB_FILE_END_TEXT;
   int count = StringToCharArray(whole, bytes, 0, -1, CP_UTF8) - 1;
   uint written = FileWriteArray(handle, bytes, 0, count);
   FileClose(handle);
   if((int)written != count) return false;
   return FileMove(temporary, 0, name, FILE_REWRITE);
  }

// The bytes of a file; false when it does not exist or cannot be read.
bool TbReadFileBytes(const string &name, TB_ARRAY_PARAM(uchar, bytes), int &size)
  {
   size = 0;
   if(!FileIsExist(name)) return false;
   int handle = FileOpen(name, FILE_READ | FILE_BIN);
   if(handle == INVALID_HANDLE) return false;
   size = (int)FileReadArray(handle, bytes, 0, WHOLE_ARRAY);
   FileClose(handle);
   return true;
  }

// True when the text ends with the end line (a whole file).
bool TbFileWhole(const string &text)
  {
   string tail = TB_FILE_END_TEXT;
   int length = StringLen(text), tail_length = StringLen(tail);
   return length >= tail_length && StringSubstr(text, length - tail_length) == tail;
  }

// Reads a file TbWriteFileAtomically wrote, without its end line: the file
// when it is whole, else a whole "<name>.tmp" left by a rewrite cut short
// (put back in place), else what the file holds (one written before end
// lines existed). False when there is nothing.
bool TbReadFileRecovering(const string &name, string &text)
  {
   TB_ARRAY(uchar, bytes);
   int size = 0;
   bool main = TbReadFileBytes(name, bytes, size);
   string main_text = main ? CharArrayToString(bytes, 0, size, CP_UTF8) : "";
   string end = TB_FILE_END_TEXT;
   if(main && TbFileWhole(main_text)) { text = StringSubstr(main_text, 0, StringLen(main_text) - StringLen(end)); return true; }
   string temporary = name + ".tmp";
   if(TbReadFileBytes(temporary, bytes, size))
     {
      string temporary_text = CharArrayToString(bytes, 0, size, CP_UTF8);
      if(TbFileWhole(temporary_text))
        {
         Print("TradeBridge: ", name, main ? " is cut short" : " is missing", "; recovered it from ", temporary);
         FileMove(temporary, 0, name, FILE_REWRITE);
         text = StringSubstr(temporary_text, 0, StringLen(temporary_text) - StringLen(end));
         return true;
        }
     }
   text = main_text;
   return main;
  }

// Before a log is opened, or after a move failed: a compaction cut short
// left "<name>.tmp" while the log is missing or holds only the start of
// it (a copy stopped part-way): the temporary is put in place. Any other
// temporary is stale (written only in part, or the move went through) and
// goes.
void TbRecoverLog(const string &name)
  {
   string temporary = name + ".tmp";
   TB_ARRAY(uchar, compacted);
   int compacted_size = 0;
   if(!TbReadFileBytes(temporary, compacted, compacted_size)) return;
   TB_ARRAY(uchar, log);
   int log_size = 0;
   bool exists = TbReadFileBytes(name, log, log_size);
   bool prefix = exists && log_size < compacted_size;
   for(int i = 0; prefix && i < log_size; i++)
      if(log[i] != compacted[i]) prefix = false;
   if(!exists || prefix)
     {
      Print("TradeBridge: ", name, exists ? " is cut short" : " is missing", "; recovered it from ", temporary);
      FileMove(temporary, 0, name, FILE_REWRITE);
      return;
     }
   FileDelete(temporary);
  }

// Writes `text` to `<name>.tmp` and moves it over the log `name`; false
// when the temporary could not be written whole (the log is untouched)
// or the move failed (then tried once more through TbRecoverLog).
bool TbCompactLog(const string &name, const string &text)
  {
   string temporary = name + ".tmp";
   int handle = FileOpen(temporary, FILE_WRITE | FILE_BIN);
   if(handle == INVALID_HANDLE) return false;
   TB_ARRAY(uchar, bytes);
   int count = StringToCharArray(text, bytes, 0, -1, CP_UTF8) - 1;
   uint written = FileWriteArray(handle, bytes, 0, count);
   FileClose(handle);
   if((int)written != count) { FileDelete(temporary); return false; }
   if(FileMove(temporary, 0, name, FILE_REWRITE)) return true;
   TbRecoverLog(name);
   return false;
  }

#endif
