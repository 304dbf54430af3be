#!/usr/bin/env bash
# One measuring session: the actix-web floor, then riskd, under the same
# paced load, one after the other on this machine.
#
#   benches/load_session.sh DATA_DIR [LOAD ARGS...]
#
# DATA_DIR is copied for riskd's run (a run appends ~600 k events; each
# session starts from the same state). LOAD ARGS default to a 60 s run at
# 10,000 requests/s after a 5 s warmup (`riskd load --help` for the rest;
# e.g. `--saturate --p99-max 5ms` for the saturation search). Prints each
# server's CPU (user + system over the run, from /proc/PID/stat) and RSS,
# then the generator's report.
set -euo pipefail
data_dir=${1:?usage: benches/load_session.sh DATA_DIR [LOAD ARGS...]}
shift
load_args=("$@")
[ ${#load_args[@]} -gt 0 ] || load_args=(--rate 10000 --duration 60s --warmup 5s)
bin=${RISKD_BIN:-target/release/riskd}
baseline=${BASELINE_BIN:-target/release/examples/baseline}
port=${PORT:-8080}
[ -x "$bin" ] && [ -x "$baseline" ] || cargo build --release --quiet --bin riskd --example baseline
run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT

ready() { # the floor has no /readyz: any answer will do
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/readyz" || true)
  [ "$code" = 200 ] || [ "$code" = 404 ]
}

# Jiffies the hypervisor gave to others, and all jiffies (cpu line of /proc/stat).
steal_total() { awk '/^cpu / {print $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }

measure() { # $1 name, rest: server command
  local name=$1 pid cpu0 cpu1 t0 t1 rss tck steal0 all0 steal1 all1
  shift
  "$@" >"$run_dir/$name.out" 2>"$run_dir/$name.err" &
  pid=$!
  until ready; do
    kill -0 "$pid" 2>/dev/null || { echo "$name exited; see $run_dir/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  cpu0=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  read -r steal0 all0 < <(steal_total)
  t0=$(date +%s%N)
  "$bin" load --target "http://127.0.0.1:$port" "${load_args[@]}" >"$run_dir/$name.load" 2>&1
  cpu1=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  read -r steal1 all1 < <(steal_total)
  t1=$(date +%s%N)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  # riskd's own account of the run (the floor has no /metrics): snapshots
  # written, and how requests reached their partition.
  curl -s "http://127.0.0.1:$port/metrics" | grep -E '^riskd_(snapshots_total|partition_path_total)' >"$run_dir/$name.metrics" || true
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  tck=$(getconf CLK_TCK)
  echo "== $name: server CPU $(( (cpu1 - cpu0) * 100000 / tck / ((t1 - t0) / 1000000) ))% of a core over $(( (t1 - t0) / 1000000 )) ms, RSS ${rss} KiB, steal $(( (steal1 - steal0) * 100 / (all1 - all0 + 1) ))% of the machine"
  cat "$run_dir/$name.load" "$run_dir/$name.metrics"
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {print $2}' /proc/meminfo) KiB; $(date -u +%FT%TZ)"
measure baseline "$baseline" --listen "127.0.0.1:$port"
cp -a "$data_dir" "$run_dir/data"
# The copy's dirty pages are written back before riskd's run, not during it.
sync
measure riskd "$bin" serve --listen "127.0.0.1:$port" --data-dir "$run_dir/data"
