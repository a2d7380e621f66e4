#!/usr/bin/env bash
# Runs the core micro-benchmarks (codec parse/write, engine fan-out, ring
# hand-off, journal append) and records them as a new, never-edited run folder:
#   bench-results/<YYYY-MM-DD>_core-micro[_<tag>]/
# holding the command, commit, machine description, raw outputs and .hgrm files.
# Usage: bench-results/run-core-benches.sh [tag]
# BENCHES="ring journal" picks a subset of: codec engine ring journal (default all).
set -euo pipefail
cd "$(dirname "$0")/.."

tag="${1:-}"
day="$(date -u +%Y-%m-%d)"
dir="bench-results/${day}_core-micro${tag:+_$tag}"
if [ -e "$dir" ]; then
    # Never overwrite an earlier run: add a counter.
    n=2; while [ -e "${dir}-$n" ]; do n=$((n + 1)); done; dir="${dir}-$n"
fi
mkdir -p "$dir"

{
    echo "date_utc: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "commit: $(git rev-parse HEAD)$(git diff --quiet HEAD -- core || echo ' (core has uncommitted changes)')"
    echo "rustc: $(rustc --version)"
    echo "kernel: $(uname -r)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    echo "cores: $(nproc)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
    echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$dir/machine.txt"

run() {
    local name="$1"; shift
    echo "\$ $*" >> "$dir/commands.txt"
    "$@" 2>&1 | tee "$dir/$name.txt"
}

export RING_BENCH_HGRM="$PWD/$dir/ring_handoff.hgrm"
benches="${BENCHES:-codec engine ring journal}"
for bench in $benches; do
    case "$bench" in
        codec)   run codec   cargo bench -p tradebridge-core --bench codec ;;
        engine)  run engine  cargo bench -p tradebridge-core --bench engine ;;
        ring)    run ring    cargo bench -p tradebridge-core --bench ring_handoff ;;
        journal) run journal cargo bench -p tradebridge-core --bench journal ;;
        *) echo "unknown bench: $bench (expected codec, engine, ring or journal)" >&2; exit 2 ;;
    esac
done
echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$dir/machine.txt"
echo "wrote $dir"
