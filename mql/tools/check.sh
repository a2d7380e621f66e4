#!/usr/bin/env bash
# check.sh: the syntax and consistency pass over every .mq4/.mq5/.mqh that
# can run without MetaTrader. It does NOT replace MetaEditor: it catches
# what g++ and a few greps can (see mql/README.md, "What is verified").
#
#   1. every EA compiles through the shim as its platform (__MQL4__/__MQL5__);
#   2. every include compiles on its own for each platform it serves
#      (*4.mqh MT4 only, *5.mqh MT5 only, the rest both);
#   3. every #include resolves to a file in mql/Include or next to the file;
#   4. every `input` has a trailing // description (MetaTrader shows it);
#   5. #property and #import sit inside #ifndef TB_HOST;
#   6. no C++-only construct MQL rejects (->, nullptr, std::, templates,
#      casts<>, new/delete, lambdas, using, auto, long long, unsigned).
#
# Usage: mql/tools/check.sh   (exit status 0 when every check passes)
set -uo pipefail
cd "$(dirname "$0")/.."
MQL_ROOT="$(pwd)"
CXX="${CXX:-g++}"
FLAGS=(-std=c++17 -fsyntax-only -Wall -Wextra -Werror -Wno-unused-parameter -DTB_HOST -I"$MQL_ROOT/host" -I"$MQL_ROOT/Include")
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

compile_in_namespace() { # file platform-define label
    local file="$1" define="$2" label="$3"
    local unit="$WORK/unit_$RANDOM.cpp"
    printf '#include "mql_shim.h"\nnamespace checked {\n#include "%s"\n}\n' "$file" > "$unit"
    if "$CXX" "${FLAGS[@]}" -D"$define" "$unit" 2> "$WORK/errors.txt"; then
        pass
    else
        fail "$label does not compile as $define:"
        head -20 "$WORK/errors.txt"
    fi
}

# 1. EAs, each as its own platform.
for ea in Experts/*.mq4; do compile_in_namespace "$MQL_ROOT/$ea" __MQL4__ "$ea"; done
for ea in Experts/*.mq5; do compile_in_namespace "$MQL_ROOT/$ea" __MQL5__ "$ea"; done

# 2. Includes on their own (each must include what it uses).
for header in Include/TradeBridge/*.mqh; do
    case "$header" in
        *4.mqh) compile_in_namespace "$MQL_ROOT/$header" __MQL4__ "$header" ;;
        *5.mqh) compile_in_namespace "$MQL_ROOT/$header" __MQL5__ "$header" ;;
        *) compile_in_namespace "$MQL_ROOT/$header" __MQL4__ "$header"
           compile_in_namespace "$MQL_ROOT/$header" __MQL5__ "$header" ;;
    esac
done

SOURCES=(Experts/*.mq4 Experts/*.mq5 Include/TradeBridge/*.mqh)

# 3. Includes resolve the way MetaEditor resolves them.
for source in "${SOURCES[@]}"; do
    while IFS= read -r line; do
        target="$(sed -E 's/^#include[[:space:]]*[<"]([^>"]+)[>"].*/\1/' <<< "$line")"
        if [[ "$line" == *"<"* ]]; then path="Include/$target"; else path="$(dirname "$source")/$target"; fi
        if [[ -f "$path" ]]; then pass; else fail "$source: '$line' does not resolve ($path)"; fi
    done < <(grep -E '^[[:space:]]*#include' "$source")
done

# 4. Inputs carry a description.
for ea in Experts/*.mq4 Experts/*.mq5; do
    while IFS= read -r line; do
        if [[ "$line" =~ //[[:space:]]*[A-Za-z] ]]; then pass; else fail "$ea: input without a // description: $line"; fi
    done < <(grep -E '^[[:space:]]*(input|sinput)[[:space:]]' "$ea")
    count="$(grep -cE '^[[:space:]]*input[[:space:]]' "$ea")"
    if [[ "$count" -ge 2 ]]; then pass; else fail "$ea declares $count inputs"; fi
done

# 5. MQL-only directives are hidden from the host build.
for source in "${SOURCES[@]}"; do
    bad="$(awk '
        /^[[:space:]]*#ifndef[[:space:]]+TB_HOST/ { hidden++; depth[++level] = 1; next }
        /^[[:space:]]*#if/                      { depth[++level] = 0; next }
        /^[[:space:]]*#endif/                   { if (depth[level] == 1) hidden--; level--; next }
        /^[[:space:]]*#(property|import)/       { if (hidden == 0) print FILENAME ":" FNR ": " $0 }
    ' "$source")"
    if [[ -z "$bad" ]]; then pass; else fail "outside #ifndef TB_HOST: $bad"; fi
done

# 6. C++-only constructs (string literals and comments stripped first).
PATTERN='->|nullptr|std::|template[[:space:]]*<|_cast<|\bnew[[:space:]]+[A-Z]|\bdelete[[:space:]]|\[\]\(|\busing[[:space:]]|\bauto[[:space:]]|long[[:space:]]+long|\bunsigned\b|\bstatic_assert\b|\bconstexpr\b'
for source in "${SOURCES[@]}"; do
    hits="$(sed -E -e 's/"([^"\\]|\\.)*"/""/g' -e 's://.*$::' "$source" | grep -nE -e "$PATTERN" || true)"
    if [[ -z "$hits" ]]; then pass; else fail "$source uses C++-only syntax:"; echo "$hits" | head -5; fi
done

echo "$passed passed, $failed failed"
[[ "$failed" -eq 0 ]]
