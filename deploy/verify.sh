#!/usr/bin/env bash
# Checks the deployment files against real tools, on loopback only, in a
# temporary directory; prints one PASS/FAIL/SKIP line per check.
#
#   bash deploy/verify.sh [path/to/tradebridge]
#
# Needs: a built tradebridge (default target/release/tradebridge), and for
# the optional checks systemd-analyze, nginx, openssl, python3-websocket
# (/usr/bin/python3), stunnel4, postgresql-15 and docker-compose. Run as root (the
# bridge check drops to `nobody` with setpriv; Postgres runs as `postgres`).
# Ports used: 127.0.0.1:18080, 18081, 18082, 18443, 19100, 15432.
set -u
deploy=$(cd "$(dirname "$0")" && pwd)
binary=$(realpath "${1:-$deploy/../target/release/tradebridge}")
work=$(mktemp -d /tmp/tradebridge-verify.XXXXXX)
chmod 755 "$work"
failures=0
pass() { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; failures=$((failures + 1)); }
skip() { echo "SKIP  $*"; }
cleanup() {
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
    [ -f "$work/stunnel.pid" ] && kill "$(cat "$work/stunnel.pid")" 2>/dev/null
    [ -d "$work/pg/data" ] && su postgres -s /bin/sh -c "/usr/lib/postgresql/15/bin/pg_ctl -D $work/pg/data -m fast stop" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

# The production template with its state, ports and first key moved to the
# temporary directory, so a check never touches /var/lib/tradebridge.
test_config() {
    sed -e "s#/var/lib/tradebridge#$work/state#" -e 's#127.0.0.1:8080#127.0.0.1:18080#' \
        -e 's#127.0.0.1:9100#127.0.0.1:19100#' \
        -e "0,/key_sha256 = \"0\{64\}\"/s//key_sha256 = \"$(printf %s verify-master-key | sha256sum | cut -d' ' -f1)\"/" \
        "$deploy/tradebridge.prod.toml"
}

# Starts the bridge as `nobody`, waits for its listening line (10 s at most).
start_bridge() {
    rm -rf "$work/state"; mkdir -p "$work/state"; chown nobody "$work/state"
    : > "$work/bridge.out"
    # [persist] of the template reads its URL from the environment; nothing
    # listens there, so the persister only retries (routing does not wait).
    TRADEBRIDGE_DATABASE_URL=postgres://tradebridge@127.0.0.1:1/tradebridge \
        setpriv --reuid=nobody --regid=nogroup --clear-groups "$binary" serve --config "$work/test.toml" \
        > "$work/bridge.out" 2> "$work/bridge.err" &
    bridge_pid=$!
    for _ in $(seq 100); do grep -q listening "$work/bridge.out" && return 0; sleep 0.1; done
    return 1
}

# One Monitor-EA session through URL: hello, ping, an event and its ack,
# then the SIGTERM drain's 1001 close and the bridge's exit 0.
session() {
    local label=$1 url=$2 replies code
    if ! start_bridge; then fail "$label: the bridge did not start"; return; fi
    replies=$(/usr/bin/python3 "$deploy/verify_wss.py" "$url" verify-master-key "$work/fullchain.pem" "$bridge_pid" 2>&1)
    # verify_wss.py sends the SIGTERM; when it failed before that, stop the
    # bridge here.
    kill -TERM "$bridge_pid" 2>/dev/null
    wait "$bridge_pid"; code=$?
    if [[ $replies == *'"t":"welcome"'*'"t":"pong"'*'"t":"ack","seq":1'*"close 1001"* ]] && [ "$code" = 0 ]; then
        pass "$label: welcome, pong, ack, then 1001 on SIGTERM (bridge exit 0)"
    else
        fail "$label (bridge exit $code): $replies"
    fi
}

# 1. systemd unit: verify in a scratch root holding the unit, the binary and
#    the distribution's units (systemd is not PID 1 in a container).
if command -v systemd-analyze >/dev/null; then
    root=$work/root
    mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/lib/systemd"
    cp -a /lib/systemd/system "$root/lib/systemd/"
    cp "$binary" "$root/usr/local/bin/tradebridge"
    cp "$deploy/tradebridge.service" "$root/etc/systemd/system/"
    if output=$(systemd-analyze verify --man=no --root="$root" /etc/systemd/system/tradebridge.service 2>&1) && [ -z "$output" ]; then
        pass "systemd-analyze verify tradebridge.service: no message"
    else
        fail "systemd-analyze verify: $output"
    fi
    echo "      $(systemd-analyze security --offline=true --root="$root" /etc/systemd/system/tradebridge.service 2>&1 | tail -1)"
else
    skip "systemd-analyze not installed"
fi

# 2. Configuration: the template starts, drains on SIGTERM with exit 0 and
#    writes its histograms; a misspelt key exits 2 naming line and key.
test_config > "$work/test.toml"
sed 's/^hb_ms = /hb_msec = /' "$work/test.toml" > "$work/bad.toml"
message=$("$binary" serve --config "$work/bad.toml" 2>&1); code=$?
if [ "$code" = 2 ] && [[ $message == *"key \`server.hb_msec\`"* ]]; then
    pass "misspelt key exits 2: ${message:0:90}"
else
    fail "misspelt key: exit $code, $message"
fi
if start_bridge; then
    kill -TERM "$bridge_pid"; wait "$bridge_pid"; code=$?
    histograms=$(ls "$work/state/histograms" 2>/dev/null | wc -l)
    if [ "$code" = 0 ] && [ "$histograms" -gt 0 ]; then
        pass "tradebridge.prod.toml starts as nobody, SIGTERM exit 0, $histograms .hgrm files"
    else
        fail "SIGTERM: exit $code, $histograms histogram files"
    fi
else
    fail "tradebridge.prod.toml did not start: $(tail -c 400 "$work/bridge.err")"
fi

# 3. nginx: syntax of the exact file (certificate paths swapped for a
#    throw-away certificate), then sessions through it to the bridge.
if command -v nginx >/dev/null && command -v openssl >/dev/null; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=bridge.example.com \
        -keyout "$work/privkey.pem" -out "$work/fullchain.pem" 2>/dev/null
    sed -e "s#/etc/letsencrypt/live/bridge.example.com#$work#" \
        -e 's#listen 443 ssl;#listen 127.0.0.1:18443 ssl;#' -e 's#listen 80;#listen 127.0.0.1:18081;#' \
        -e '/listen \[::\]/d' -e 's#server 127.0.0.1:8080;#server 127.0.0.1:18080;#' \
        "$deploy/nginx/tradebridge.conf" > "$work/site.conf"
    printf 'pid %s/nginx.pid;\nerror_log %s/nginx.log;\nevents {}\nhttp {\n    access_log off;\n    include %s/site.conf;\n}\n' \
        "$work" "$work" "$work" > "$work/nginx.conf"
    if output=$(nginx -t -c "$work/nginx.conf" 2>&1); then pass "nginx -t: ${output##*$'\n'}"; else fail "nginx -t: $output"; fi
    if ! { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import websocket' 2>/dev/null; }; then
        skip "sessions through nginx (need /usr/bin/python3 with python3-websocket)"
    elif ! nginx -c "$work/nginx.conf"; then
        fail "nginx did not start: $(tail -c 300 "$work/nginx.log")"
    else
        session "wss through nginx" wss://127.0.0.1:18443/ea
        status=$(curl -sk -o /dev/null -w '%{http_code}' --resolve bridge.example.com:18443:127.0.0.1 https://bridge.example.com:18443/metrics)
        [ "$status" = 404 ] && pass "/metrics through nginx: 404" || fail "/metrics through nginx: $status"
        redirect=$(curl -s -o /dev/null -w '%{http_code} %{redirect_url}' -H 'Host: bridge.example.com' http://127.0.0.1:18081/ea)
        [ "$redirect" = "301 https://bridge.example.com/ea" ] && pass "port 80: $redirect" || fail "port 80: $redirect"
        # MT4 has no TLS: a local stunnel client (mql/README.md) in front of
        # nginx, the EA speaking plain ws:// to it.
        if command -v stunnel >/dev/null; then
            printf 'pid = %s/stunnel.pid\nforeground = no\n[tradebridge]\nclient = yes\naccept = 127.0.0.1:18082\nconnect = 127.0.0.1:18443\nsni = bridge.example.com\nverifyChain = yes\nCAfile = %s/fullchain.pem\ncheckHost = bridge.example.com\n' \
                "$work" "$work" > "$work/stunnel.conf"
            if stunnel "$work/stunnel.conf" 2> "$work/stunnel.log"; then
                session "ws through stunnel then nginx (the MT4 route)" ws://127.0.0.1:18082/ea
                kill "$(cat "$work/stunnel.pid")"
            else
                fail "stunnel did not start: $(tail -c 300 "$work/stunnel.log")"
            fi
        else
            skip "stunnel not installed (the MT4 route)"
        fi
        kill "$(cat "$work/nginx.pid")"; rm -f "$work/nginx.pid"
    fi
else
    skip "nginx or openssl not installed"
fi

# 4. postgres/init.sql on a scratch PostgreSQL 15.
pg=/usr/lib/postgresql/15/bin
if [ -x "$pg/initdb" ]; then
    mkdir -p "$work/pg"; chown postgres "$work/pg"
    su postgres -s /bin/sh -c "$pg/initdb -D $work/pg/data -U postgres -A trust >/dev/null && \
        $pg/pg_ctl -D $work/pg/data -o '-p 15432 -k $work/pg -c listen_addresses=127.0.0.1' -l $work/pg/log -w start >/dev/null"
    psql_admin() { psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 15432 -U postgres "$@"; }
    if env -u TRADEBRIDGE_DB_PASSWORD psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p 15432 -U postgres \
        -f "$deploy/postgres/init.sql" >/dev/null 2>&1; then
        fail "postgres/init.sql ran without TRADEBRIDGE_DB_PASSWORD"
    elif TRADEBRIDGE_DB_PASSWORD=verify-pw psql_admin -f "$deploy/postgres/init.sql" >/dev/null &&
       [ "$(psql_admin -Atc "select rolcanlogin from pg_roles where rolname='tradebridge'")" = t ] &&
       [ "$(psql_admin -d tradebridge -Atc "select pg_get_userbyid(datdba) from pg_database where datname='tradebridge'")" = tradebridge ]; then
        pass "postgres/init.sql: refused without the password; role tradebridge + database tradebridge (owner) with it"
    else
        fail "postgres/init.sql"
    fi
else
    skip "postgresql-15 not installed"
fi

# 5. compose.yaml: the schema check of docker-compose v1 (no engine needed).
if command -v docker-compose >/dev/null; then
    if (cd "$deploy" && POSTGRES_PASSWORD=x TRADEBRIDGE_DB_PASSWORD=y docker-compose -f compose.yaml config -q); then
        pass "docker-compose config -q ($(docker-compose version --short))"
    else
        fail "docker-compose config"
    fi
else
    skip "docker-compose not installed"
fi

echo "$failures failed"
[ "$failures" = 0 ]
