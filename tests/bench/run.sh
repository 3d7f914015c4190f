#!/usr/bin/env bash
# tests/bench/run.sh - build the benchmarks in a Release tree under /tmp, start
# what they need (nginx as a fixed-answer sink on a loopback port; the local
# stack's Kafka and PostgreSQL), run each benchmark BENCH_RUNS times with the
# peer tool and fpdrill interleaved (peer, fpdrill, fpdrill, peer, ...), and
# print markdown tables (median, min-max, ratio per pair). Raw output lines
# go to $WORK/results.txt. See docs/performance.md.
#
# Usage: tests/bench/run.sh [http] [kafka] [rss] [lateness] [invariants]
#        (default: all). Environment:
#   BENCH_RUNS=3              runs per benchmark (pairs for http and kafka)
#   BENCH_SENDERS=0           bench_http sender threads (0 = the generator's choice)
#   BENCH_SECONDS=10          duration of one http / kafka run
#   BENCH_NGINX_PORT=27180    loopback port of the nginx sink
#   BENCH_RSS_CHECKPOINTS=1000000,10000000
#   BENCH_INV_ROWS=10000000   rows of the synthetic ledger and decision log
#   FPDRILL_BENCH_SRC         source tree (default: this repository)
#   FPDRILL_BENCH_BUILD       build tree (default /tmp/fpdrill-bench-build)
#   FPDRILL_BENCH_WORK        scratch dir (default /tmp/fpdrill-bench)
#   FPDRILL_STATE, FPD_PORT_* the stack to use (envs/local/stack); if it is not
#                             up, it is started and stopped again at the end.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SRC=${FPDRILL_BENCH_SRC:-$REPO}
BUILD=${FPDRILL_BENCH_BUILD:-/tmp/fpdrill-bench-build}
WORK=${FPDRILL_BENCH_WORK:-/tmp/fpdrill-bench}
RUNS=${BENCH_RUNS:-3}
SECS=${BENCH_SECONDS:-10}
NGINX_PORT=${BENCH_NGINX_PORT:-27180}
export BENCH_SENDERS=${BENCH_SENDERS:-0}
RSS_CPS=${BENCH_RSS_CHECKPOINTS:-1000000,10000000}
INV_ROWS=${BENCH_INV_ROWS:-10000000}
STACK=$REPO/envs/local/stack
BIN=$BUILD/tests/bench
URL=http://127.0.0.1:$NGINX_PORT/v1/events
WHAT=${*:-http kafka rss lateness invariants}
RESULTS=$WORK/results.txt
NGINX_DIR=$WORK/nginx
STARTED_STACK=0

say() { printf 'bench: %s\n' "$*" >&2; }
want() { [[ " $WHAT " == *" $1 "* ]]; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# field NAME LINE -> value of NAME=... in a key=value line
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $2"; }
# stats v1 v2 ... -> "median min max"
stats() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {
  m = NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2; printf "%g %g %g", m, v[1], v[NR]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

cleanup() {
  if [[ -f $NGINX_DIR/nginx.pid ]]; then
    local pid; pid=$(cat "$NGINX_DIR/nginx.pid")
    # Only our nginx: its master's command line names our prefix.
    if grep -qa -- "$NGINX_DIR" "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid" && say "nginx (pid $pid) stopped"
    fi
    rm -f "$NGINX_DIR/nginx.pid"
  fi
  if (( STARTED_STACK )); then say "stopping the stack"; "$STACK" down >&2 || true; fi
}
trap cleanup EXIT

build() {
  say "configuring $BUILD (Release, FP_BUILD_BENCH=ON) from $SRC"
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DFP_BUILD_TESTS=ON \
    -DFP_BUILD_BENCH=ON >"$WORK/cmake.log" 2>&1 || { tail -20 "$WORK/cmake.log" >&2; exit 1; }
  cmake --build "$BUILD" --target bench -j2 >"$WORK/build.log" 2>&1 \
    || { grep -E 'error|Error' -A3 "$WORK/build.log" | head -40 >&2; exit 1; }
  grep -q 'FP_BENCH_HAVE_KAFKA_CHANNEL - Success' "$WORK/cmake.log" \
    || say "note: harness/load has no Kafka channel fields yet; bench_kafka will SKIP"
}

start_nginx() {
  mkdir -p "$NGINX_DIR/logs" "$NGINX_DIR/tmp"
  # One worker, no access log, keep-alive without a request cap: the sink
  # answers every POST /v1/events with a fixed 202 admission receipt.
  cat >"$NGINX_DIR/nginx.conf" <<CONF
worker_processes 1;
daemon on;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $NGINX_DIR/tmp/body;
  proxy_temp_path $NGINX_DIR/tmp/proxy;
  fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
  uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
  scgi_temp_path $NGINX_DIR/tmp/scgi;
  keepalive_requests 100000000;
  keepalive_timeout 120s;
  client_body_buffer_size 16k;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location = /v1/events {
      default_type application/json;
      return 202 '{"status":"accepted","receipt_id":"r-0000000000000001","platform_run_id":"bench-run","event_class":"fraud.v1","event_id":"e-00000000000000000001","payload_hash":"0000000000000000000000000000000000000000000000000000000000000000","topic":"fp.bus.traffic.fraud.v1","partition":3,"offset":1234,"admitted_at":"2026-11-23T18:22:01.130Z"}';
    }
  }
}
CONF
  nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -e "$NGINX_DIR/logs/error.log"
  for _ in $(seq 50); do
    curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "$URL" 2>/dev/null | grep -q 202 && break
    sleep 0.1
  done
  say "nginx up on 127.0.0.1:$NGINX_PORT (pid $(cat "$NGINX_DIR/nginx.pid"))"
}

ensure_stack() {
  if "$STACK" status >/dev/null 2>&1 \
     || { "$STACK" status 2>/dev/null | grep -qE '^kafka .* up' \
          && "$STACK" status 2>/dev/null | grep -qE '^postgres .* up'; }; then
    return
  fi
  say "starting the local stack (FPDRILL_STATE=${FPDRILL_STATE:-default})"
  "$STACK" up >&2
  STARTED_STACK=1
}

endpoint() { sed -n "s/^$1=//p" "$("$STACK" env)"; }

# ---------------------------------------------------------------- benchmarks
bench_http_pairs() {
  local body=$WORK/body.json lua=$WORK/post.lua
  "$BIN/bench_http" --print-body >"$body"
  cat >"$lua" <<LUA
-- POST the generator's own event body (same size) to the sink.
local f = assert(io.open("$body", "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
LUA
  local size; size=$(wc -c <"$body")
  local -a W F R; local i wline fline w f la wcpu wn
  echo "| pair | load avg (1/5/15 min) | wrk req/s | fpdrill req/s | ratio | wrk CPU us/req | fpdrill CPU us/req |" >"$WORK/http.md"
  echo "|---|---|---|---|---|---|---|" >>"$WORK/http.md"
  for i in $(seq "$RUNS"); do
    la=$(loadavg)
    # wrk's CPU (user + system seconds) comes from GNU time on stderr.
    run_wrk() { wline=$(/usr/bin/time -f 'wrk_cpu_s=%U %S' wrk -t2 -c64 -d"${SECS}s" \
                  -s "$lua" "$URL" 2>&1); }
    run_fp() { fline=$("$BIN/bench_http" --url "$URL" --rate 150000 --concurrency 64 \
                 --senders "${BENCH_SENDERS:-0}" --seconds "$SECS" \
                 --ledger "$WORK/http-ledger.tsv"); }
    if (( i % 2 )); then run_wrk; sleep 1; run_fp; else run_fp; sleep 1; run_wrk; fi
    w=$(awk '/Requests\/sec/ {print $2}' <<<"$wline")
    wn=$(awk '/requests in/ {print $1}' <<<"$wline")
    wcpu=$(awk -v n="$wn" '/wrk_cpu_s=/ {split($1, a, "="); printf "%.2f", (a[2] + $2) * 1e6 / n}' <<<"$wline")
    f=$(field rps "$fline")
    echo "http pair=$i wrk_rps=$w wrk_requests=$wn wrk_cpu_us_per_req=$wcpu body_bytes=$size loadavg=\"$la\"" >>"$RESULTS"
    echo "$fline" >>"$RESULTS"
    W+=("$w"); F+=("$f"); R+=("$(ratio "$f" "$w")")
    echo "| $i | $la | $w | $f | ${R[-1]} | $wcpu | $(field cpu_us_per_req "$fline") |" >>"$WORK/http.md"
    sleep 1
  done
  read -r wm wlo whi <<<"$(stats "${W[@]}")"
  read -r fm flo fhi <<<"$(stats "${F[@]}")"
  read -r rm rlo rhi <<<"$(stats "${R[@]}")"
  echo "| **median (min-max)** | | $wm ($wlo-$whi) | $fm ($flo-$fhi) | $rm ($rlo-$rhi) | | |" >>"$WORK/http.md"
  echo "$fm" >"$WORK/http-fp-median"
  printf '\n### 1. HTTP: fpdrill (open model, ledgered) vs wrk -t2 -c64 (closed loop), body %s B\n\n' "$size"
  cat "$WORK/http.md"
}

# The Kafka benchmark writes millions of records. They go to a topic of their own, capped at
# 256 MiB per partition (the stack checks retention every 30 s), never to the platform's traffic
# topic: a full traffic topic left the decider behind and filled the disk (46 GB in one session).
bench_topic() {
  local bootstrap=$1 topic=$2 libs
  libs=$(ls -d "${FPDRILL_CACHE:-$HOME/.cache/fpdrill}"/kafka-*/libs 2>/dev/null | tail -n1)
  [[ -n $libs ]] || { say "no Kafka tools under ${FPDRILL_CACHE:-$HOME/.cache/fpdrill}"; exit 1; }
  kcat -b "$bootstrap" -L -t "$topic" -m 10 >/dev/null 2>&1 || true   # auto-created, 6 partitions
  java -Xmx256m -Djava.awt.headless=true -cp "$libs/*" kafka.admin.ConfigCommand \
    --bootstrap-server "$bootstrap" --alter --entity-type topics --entity-name "$topic" \
    --add-config retention.bytes=268435456,segment.bytes=67108864 >/dev/null 2>"$WORK/topic.log" \
    || { tail -5 "$WORK/topic.log" >&2; say "could not cap topic $topic"; exit 1; }
}

bench_kafka_pairs() {
  local bootstrap topic=fpdrill.bench.kafka size
  bootstrap=$(endpoint FPD_KAFKA_BOOTSTRAP)
  bench_topic "$bootstrap" "$topic"
  size=$(wc -c <"$WORK/body.json" 2>/dev/null || "$BIN/bench_http" --print-body | wc -c)
  local -a P F R N; local i pline nline fline p f n la skip=0
  # The peer puts the contract's nine record headers on every record, as
  # fpdrill does (same bytes on the wire); the headerless peer (the method
  # before 2026-11-23 22:00) runs too, for comparison with older numbers.
  echo "| pair | load avg (1/5/15 min) | librdkafka msgs/s (same headers) | fpdrill msgs/s | ratio | librdkafka msgs/s, no headers | ratio to it | peer CPU us/msg | fpdrill CPU us/msg |" >"$WORK/kafka.md"
  echo "|---|---|---|---|---|---|---|---|---|" >>"$WORK/kafka.md"
  for i in $(seq "$RUNS"); do
    la=$(loadavg)
    run_peer() { pline=$("$BIN/bench_kafka_peer" --bootstrap "$bootstrap" --topic "$topic" \
                   --size "$size" --seconds "$SECS"); }
    run_nohdr() { nline=$("$BIN/bench_kafka_peer" --bootstrap "$bootstrap" --topic "$topic" \
                   --size "$size" --seconds "$SECS" --no-headers); }
    run_fp() { fline=$("$BIN/bench_kafka" --bootstrap "$bootstrap" --topic "$topic" \
                 --seconds "$SECS" --ledger "$WORK/kafka-ledger.tsv") || true; }
    if (( i % 2 )); then run_peer; sleep 1; run_fp; sleep 1; run_nohdr
    else run_nohdr; sleep 1; run_fp; sleep 1; run_peer; fi
    echo "kafka pair=$i loadavg=\"$la\" $pline" >>"$RESULTS"
    echo "kafka pair=$i loadavg=\"$la\" $nline" >>"$RESULTS"
    echo "$fline" >>"$RESULTS"
    p=$(field mps "$pline"); n=$(field mps "$nline")
    if [[ $fline == *SKIP* ]]; then
      skip=1; f="SKIP"; P+=("$p")
      echo "| $i | $la | $p | skipped | - | $n | - | | |" >>"$WORK/kafka.md"
    else
      f=$(field mps "$fline"); P+=("$p"); F+=("$f"); R+=("$(ratio "$f" "$p")"); N+=("$(ratio "$f" "$n")")
      echo "| $i | $la | $p | $f | ${R[-1]} | $n | ${N[-1]} | $(field cpu_us_per_msg "$pline") | $(field cpu_us_per_msg "$fline") |" >>"$WORK/kafka.md"
    fi
    sleep 1
  done
  read -r pm plo phi <<<"$(stats "${P[@]}")"
  if (( skip )); then
    echo "| **median (min-max)** | | $pm ($plo-$phi) | not run | - | | | | |" >>"$WORK/kafka.md"
    echo "bench_kafka: $fline" >&2
  else
    read -r fm flo fhi <<<"$(stats "${F[@]}")"
    read -r rm rlo rhi <<<"$(stats "${R[@]}")"
    read -r nm nlo nhi <<<"$(stats "${N[@]}")"
    echo "| **median (min-max)** | | $pm ($plo-$phi) | $fm ($flo-$fhi) | $rm ($rlo-$rhi) | | $nm ($nlo-$nhi) | | |" >>"$WORK/kafka.md"
  fi
  printf '\n### 2. Kafka: fpdrill channel kafka (ledgered) vs plain librdkafka producer, %s B records\n\n' "$size"
  cat "$WORK/kafka.md"
}

bench_lateness_runs() {
  local i line
  printf '\n### 4. Scheduler lateness at 10k events/s for 30 s (sent_ns - intended_ns)\n\n'
  echo "| run | load avg at start | samples | p50 us | p99 us | p99.9 us | max us | late > 10 ms | dropped | CPU us/event |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
  for i in $(seq "$RUNS"); do
    line=$("$BIN/bench_lateness" --url "$URL" --rate 10000 --seconds 30 \
             --ledger "$WORK/lateness-ledger.tsv")
    echo "$line" >>"$RESULTS"
    echo "| $i | $(field loadavg_start "$line") | $(field samples "$line") |" \
         "$(field late_p50_us "$line") | $(field late_p99_us "$line") |" \
         "$(field late_p999_us "$line") | $(field late_max_us "$line") |" \
         "$(field late_gt10ms "$line") | $(field dropped "$line") | $(field cpu_us_per_event "$line") |"
  done
}

bench_rss_run() {
  local rate=20000 m line
  [[ -f $WORK/http-fp-median ]] && m=$(cat "$WORK/http-fp-median") \
    && rate=$(awk -v m="$m" 'BEGIN { printf "%d", m * 0.9 }')
  printf '\n### 3. Generator peak RSS (VmHWM), planned %s events/s to nginx\n\n' "$rate"
  echo "| events sent (checkpoint) | sent | dropped | VmHWM MiB | VmRSS MiB | elapsed s |"
  echo "|---|---|---|---|---|---|"
  "$BIN/bench_rss" --url "$URL" --rate "$rate" --checkpoints "$RSS_CPS" \
      --ledger "$WORK/rss-ledger.tsv" | while read -r line; do
    echo "$line" >>"$RESULTS"
    awk -v cp="$(field checkpoint "$line")" -v s="$(field sent "$line")" \
        -v d="$(field dropped "$line")" -v h="$(field vmhwm_kb "$line")" \
        -v r="$(field vmrss_kb "$line")" -v e="$(field elapsed_s "$line")" \
        'BEGIN { printf "| %s | %s | %s | %.1f | %.1f | %s |\n", cp, s, d ? d : 0, h/1024, r/1024, e ? e : 0 }'
  done
}

bench_invariants_run() {
  local host port db user pw out
  host=$(endpoint FPD_PG_HOST); port=$(endpoint FPD_PG_PORT)
  db=$(endpoint FPD_PG_DB); user=$(endpoint FPD_PG_USER)
  pw=$(endpoint FPD_PG_PASSWORD_FILE)
  out=$("$BIN/bench_invariants" --rows "$INV_ROWS" --repeat "$RUNS" --dir "$WORK" \
          --conninfo "host=$host port=$port dbname=$db user=$user" \
          --password-file "$pw" --cleanup)
  echo "$out" >>"$RESULTS"
  printf '\n### 5. Invariant checking at %s rows (seconds)\n\n' "$INV_ROWS"
  echo "| round | load avg (start/end) | load ledger | no_lost_events | no_duplicate_decisions | no_duplicate_cases | origin_offsets_reconcile | total | decided_offsets_gapless | invalid_never_decided | quarantine_matches_invalid |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
  grep '^fpdrill_invariants round=' <<<"$out" | while read -r line; do
    echo "| $(field round "$line") | $(field loadavg_start "$line") / $(field loadavg "$line") |" \
         "$(field load_s "$line") | $(field lost_s "$line") | $(field dupdec_s "$line") |" \
         "$(field dupcase_s "$line") | $(field offsets_s "$line") | $(field total_s "$line") |" \
         "$(field gapless_s "$line") | $(field invalid_s "$line") | $(field quarantine_s "$line") |"
  done
  echo
  grep -E '^setup|planted_found|^round=1 ' <<<"$out" | sed 's/^/    /'
}

mkdir -p "$WORK"
: >"$RESULTS"
say "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(loadavg)"
build
if want http || want rss || want lateness; then start_nginx; fi
if want kafka || want invariants; then ensure_stack; fi
echo "## fpdrill benchmarks $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load at start $(loadavg)"
want http && bench_http_pairs
want kafka && bench_kafka_pairs
want lateness && bench_lateness_runs
want invariants && bench_invariants_run
want rss && bench_rss_run
say "raw lines: $RESULTS"
