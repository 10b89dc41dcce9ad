#!/usr/bin/env bash
# Memory soak: tete under a steady load (default: 370 msg/s per client × 100 clients ≈
# 37,000 msg/s, half of the steady-shape saturation measured here, ~74,000 msg/s) for 10 minutes, its RSS sampled every
# 10 s. Prints the samples and the growth between the first and the last minute, of the
# whole RSS and of its two parts: anonymous memory (the heap: what tete allocates) and
# file-backed pages (the executable's code as it is first run, SQLite's mapped -shm).
#
# Usage: bench/soak.sh [SECONDS=600] [RATE_PER_CLIENT=370]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-600}"
rate="${2:-370}"
# The load generator stops any run at 900 s: the measured part plus 120 s of slack.
if [ "$secs" -gt 780 ]; then
  echo "soak.sh: at most 780 seconds (the load generator stops any run at 900 s)" >&2
  exit 2
fi
tmp="$(mktemp -d)"
port=39123
loadgen="$root/bench/loadgen/target/release/loadgen"
[ -x "$loadgen" ] || cargo build --release --manifest-path "$root/bench/loadgen/Cargo.toml"
[ -x "$root/target/release/tete" ] || cargo build --release --manifest-path "$root/Cargo.toml"

PORT=$port DATABASE_URL="sqlite:$tmp/tete.db" RUST_LOG=warn \
  TETE_CHAT__MESSAGES_PER_SECOND=100000 TETE_CHAT__BURST=100000 \
  taskset -c 0 "$root/target/release/tete" > "$tmp/tete.log" 2>&1 &
tete=$!
trap 'kill $tete 2>/dev/null || true; cat "$tmp/loadgen.log" >&2; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done

taskset -c 1 "$loadgen" pairs --addr "127.0.0.1:$port" --rooms 50 --rate "$rate" --acks \
  --warmup 5 --duration "$secs" --drain 2 --max-seconds $((secs + 120)) > "$tmp/loadgen.json" 2> "$tmp/loadgen.log" &
sleep 0.5
gen=$!
echo "t_s rss_kib anon_kib file_kib"
t=0
while kill -0 $gen 2>/dev/null; do
  read -r rss anon file < <(awk '/^VmRSS/ {r=$2} /^RssAnon/ {a=$2} /^RssFile/ {f=$2} END {print r, a, f}' /proc/$tete/status)
  echo "$t $rss $anon $file" | tee -a "$tmp/rss.txt"
  sleep 10
  t=$((t + 10))
done
wait $gen || true
python3 - "$tmp/rss.txt" "$tmp/loadgen.json" <<'PY'
import json, sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
steady = [r for r in rows if r[0] >= 60]
if len(steady) >= 12:
    for col, name in ((1, "RSS"), (2, "anonymous (heap)"), (3, "file-backed")):
        first = sum(r[col] for r in steady[:6]) / 6
        last = sum(r[col] for r in steady[-6:]) / 6
        print(f"{name}: first minute (after warm-up) {first/1024:.1f} MiB, last minute {last/1024:.1f} MiB, growth {100*(last-first)/max(first, 1):+.1f} %")
text = open(sys.argv[2]).read()
try:
    traffic = json.loads(text)["traffic"]
except (ValueError, KeyError, TypeError):
    print("loadgen report:", text.strip()[-1500:] if text.strip() else "(none)")
else:
    latency = traffic["latency"]
    print(f"messages: {traffic['sent_total']:,} sent, {traffic['received_total']:,} received, "
          f"{traffic['lost']} lost, {traffic['duplicates_or_reordered']} duplicated or reordered, "
          f"{traffic['gaps']} gaps; acks {traffic['acks_ok']:,} ok, {traffic['acks_failed']} failed")
    print("latency ms: p50 {:.2f}, p99 {:.2f}, p99.9 {:.2f}, max {:.2f}".format(
        *(latency[k] / 1000 for k in ("p50_us", "p99_us", "p999_us", "max_us"))))
PY
