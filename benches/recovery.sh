#!/usr/bin/env bash
# Time to ready after a restart, and resident memory, for a data directory.
#
#   benches/recovery.sh DATA_DIR [snapshot|rebuild]
#
# Starts the release binary on DATA_DIR, polls /readyz every 10 ms, prints
# the time from process start to ready, the users loaded, the process's RSS
# once ready, and RSS per user (RSS minus an empty server's RSS, measured
# first). `rebuild` deletes the snapshots first (a full replay of the log);
# `snapshot` (default) keeps them (snapshot + tail). Stops the server with
# SIGTERM at the end (which writes fresh snapshots).
set -euo pipefail
data_dir=${1:?usage: benches/recovery.sh DATA_DIR [snapshot|rebuild]}
mode=${2:-snapshot}
bin=${RISKD_BIN:-target/release/riskd}
port=${PORT:-18777}
[ -x "$bin" ] || cargo build --release --quiet

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

start_and_wait() { # $1 data dir; echoes "pid ms"
  local start end pid
  start=$(date +%s%N)
  "$bin" serve --listen "127.0.0.1:$port" --data-dir "$1" >/dev/null 2>"$1.stderr.log" &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "riskd exited; see $1.stderr.log" >&2; exit 1; }
    sleep 0.01
  done
  end=$(date +%s%N)
  echo "$pid $(( (end - start) / 1000000 ))"
}

# The server is not this shell's child (it runs in a process
# substitution), so poll until it has exited: its shutdown writes snapshots.
stop() {
  kill -TERM "$1"
  while kill -0 "$1" 2>/dev/null; do sleep 0.1; done
}

empty=$(mktemp -d)
read -r pid _ < <(start_and_wait "$empty")
empty_rss=$(rss_kib "$pid")
stop "$pid"
rm -rf "$empty" "$empty.stderr.log"

if [ "$mode" = rebuild ]; then
  rm -f "$data_dir"/snapshots/*.snap
fi
read -r pid ms < <(start_and_wait "$data_dir")
rss=$(rss_kib "$pid")
users=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^riskd_users\{/ {s += $2} END {print s + 0}')
replayed=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^riskd_replayed_records_total/ {print $2}')
stop "$pid"
per_user=$(( users > 0 ? (rss - empty_rss) * 1024 / users : 0 ))
echo "mode=$mode ready_ms=$ms users=$users replayed_records=$replayed rss_kib=$rss empty_rss_kib=$empty_rss rss_bytes_per_user=$per_user"
