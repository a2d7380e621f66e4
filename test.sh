#!/usr/bin/env bash
# The one test command (README, "The two commands"): installs what the tests
# need when it is missing (g++, make, OpenSSL headers, PostgreSQL server and
# client, promtool from prometheus, cargo-nextest), then runs every test of the workspace. The tests
# that need Postgres start their own throwaway cluster from the installed
# binaries; nothing needs to be running. Extra arguments go to nextest.
set -euo pipefail
cd "$(dirname "$0")"

missing=()
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
[ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "test.sh: installing ${missing[*]}"
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}"
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
    echo "test.sh: installing cargo-nextest"
    cargo install cargo-nextest --locked
fi

exec cargo nextest run --workspace --no-fail-fast "$@"
