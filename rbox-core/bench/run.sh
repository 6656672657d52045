#!/usr/bin/env bash
# rbox-core benchmarks, side by side with `rados bench` on the same cluster, in one run.
#
#   1. Throughput: `rados bench write`/`seq` vs `rbox bench save`/`read`, 4 KiB and 64 KiB,
#      16 in flight, fresh pools with identical settings for every run; plus rbox save with
#      the index written behind, and cost breakdowns (body alone, body + xattrs). Each set
#      is run ROUNDS times, alternating which tool goes first; the median ratio is reported.
#   2. Listing one user's 1,000 mails with 0 and then >= OTHERS other objects in the mail
#      pool: rbox-core's index listing vs a librmb-style namespace scan (list + stat/xattrs).
#
# Usage: rbox-core/bench/run.sh            (environment: see below)
#   SECONDS_PER_RUN=10 ROUNDS=3 OTHERS=200000 SIZES="4096 65536" OUT=/tmp/rbox-bench.md
#   CEPH_CONF / CEPH_KEYRING (default: RBOX_E2E_CEPH_CONF / RBOX_E2E_CEPH_KEYRING from
#   `source "$(e2e/env path)"`), RBOX (default: a release build, built if missing).
# Prints a Markdown report on stdout and writes it to $OUT. Pools are named rbox-bench-*
# and removed at the end (also on error).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
ROUNDS="${ROUNDS:-3}"
OTHERS="${OTHERS:-200000}"
SIZES="${SIZES:-4096 65536}"
THREADS="${THREADS:-16}"
LIST_MAILS="${LIST_MAILS:-1000}"
LIST_RUNS="${LIST_RUNS:-5}"
OUT="${OUT:-/tmp/rbox-bench-$(date -u +%Y%m%dT%H%M%SZ).md}"
export CEPH_CONF="${CEPH_CONF:-${RBOX_E2E_CEPH_CONF:-/etc/ceph/ceph.conf}}"
KEYRING="${CEPH_KEYRING:-${RBOX_E2E_CEPH_KEYRING:-}}"
keyring_args=()
[ -n "$KEYRING" ] && keyring_args=(--keyring "$KEYRING")

RBOX="${RBOX:-$repo/target/release/rbox}"
if [ ! -x "$RBOX" ]; then
  echo "building a release rbox ..." >&2
  (cd "$repo" && cargo build --release -p rbox-core --bin rbox >&2)
fi

tag="$(date +%s)-$$"
pools=()
cleanup() {
  for p in "${pools[@]}"; do
    ceph "${keyring_args[@]}" osd pool rm "$p" "$p" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

mkpool() {
  ceph "${keyring_args[@]}" osd pool create "$1" 8 8 >/dev/null 2>&1
  ceph "${keyring_args[@]}" osd pool application enable "$1" rbox >/dev/null 2>&1
  pools+=("$1")
}
rmpool() {
  ceph "${keyring_args[@]}" osd pool rm "$1" "$1" --yes-i-really-really-mean-it >/dev/null 2>&1 || true
}
load() { cut -d' ' -f1-3 /proc/loadavg; }
rbox() { "$RBOX" -c "$CEPH_CONF" "${keyring_args[@]}" -q "$@"; }
# Extract a number from JSON on stdin: jq filter.
num() { jq -r "$1"; }

report=""
say() { report+="$1"$'\n'; echo "$1" >&2; }

say "## rbox-core: measured $(date -u '+%Y-%m-%d %H:%M UTC')"
say ""
say "Machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB RAM; Ceph: $(ceph "${keyring_args[@]}" version 2>/dev/null | cut -d' ' -f1-3), $(ceph "${keyring_args[@]}" osd stat 2>/dev/null | cut -d, -f1); rbox: $("$RBOX" --version) (release build)."
say "Load average (1/5/15 min) at start: $(load)."
say ""
say "### Throughput: rbox bench vs rados bench (${SECONDS_PER_RUN} s per run, ${THREADS} in flight, ${ROUNDS} rounds)"
say ""
say "Every run gets fresh pools (8 PGs, size 1, like every pool here). rbox save = a real save"
say "(UID from the index, body + 8 xattrs in one op, index record);"
say "save (write-behind) = the same with the index record group-committed in the background (flushed before the clock stops);"
say "body = rbox-core writing the body alone (no xattrs, no index); body+xattrs = one op with body and the 8 xattrs, no index."
say ""
say "| size | round | rados write | rbox body | rbox body+xattrs | rbox save | **save/write** | rbox save (write-behind) | **wb/write** | rados seq | rbox read | **read/seq** | save p50/p99 ms | rados write avg ms | load before → after |"
say "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"

# One run on fresh pools; prints the JSON of the tool.
rados_pair() { # size round -> "write_ops seq_ops write_avg_ms"
  local p="rbox-bench-rados-$tag-$1-$2" w q
  mkpool "$p"
  w=$(rados "${keyring_args[@]}" -p "$p" bench "$SECONDS_PER_RUN" write -b "$1" -t "$THREADS" --no-cleanup --format json 2>/dev/null | tail -1)
  q=$(rados "${keyring_args[@]}" -p "$p" bench "$SECONDS_PER_RUN" seq -t "$THREADS" --format json 2>/dev/null | tail -1)
  rmpool "$p"
  echo "$(echo "$w" | num '(.total_writes_made|tonumber)/(.total_time_run|tonumber)') \
$(echo "$q" | num '(.total_reads_made|tonumber)/(.total_time_run|tonumber)') \
$(echo "$w" | num '(.average_latency|tonumber)*1000')"
}
rbox_save() { # size round variant [extra args] -> JSON of bench save (and bench read for "full")
  local size=$1 round=$2 variant=$3; shift 3
  local m="rbox-bench-mail-$tag-$size-$round-$variant" i="rbox-bench-index-$tag-$size-$round-$variant" s r
  mkpool "$m"; mkpool "$i"
  s=$(rbox -p "$m" --index-pool "$i" -N bench bench save -b "$size" -t "$THREADS" --seconds "$SECONDS_PER_RUN" --keep --json "$@")
  if [ "$variant" = full ]; then
    r=$(rbox -p "$m" --index-pool "$i" -N bench bench read -b "$size" -t "$THREADS" --seconds "$SECONDS_PER_RUN" --json)
    echo "$(echo "$s" | num .ops_per_sec) $(echo "$r" | num .ops_per_sec) $(echo "$s" | num .latency_ms.p50) $(echo "$s" | num .latency_ms.p99)"
  else
    echo "$s" | num .ops_per_sec
  fi
  rmpool "$m"; rmpool "$i"
}

declare -A ratios_s ratios_w ratios_r
for size in $SIZES; do
  ratios_s[$size]=""; ratios_w[$size]=""; ratios_r[$size]=""
  for round in $(seq 1 "$ROUNDS"); do
    l0=$(load)
    if [ $((round % 2)) -eq 1 ]; then
      read -r w q wl < <(rados_pair "$size" "$round")
      read -r s r p50 p99 < <(rbox_save "$size" "$round" full)
      wb=$(rbox_save "$size" "$round" wb --write-behind)
      xa=$(rbox_save "$size" "$round" xattrs --layers xattrs)
      bo=$(rbox_save "$size" "$round" body --layers body)
    else
      bo=$(rbox_save "$size" "$round" body --layers body)
      xa=$(rbox_save "$size" "$round" xattrs --layers xattrs)
      wb=$(rbox_save "$size" "$round" wb --write-behind)
      read -r s r p50 p99 < <(rbox_save "$size" "$round" full)
      read -r w q wl < <(rados_pair "$size" "$round")
    fi
    rs=$(echo "$s / $w" | bc -l); rw=$(echo "$wb / $w" | bc -l); rr=$(echo "$r / $q" | bc -l)
    ratios_s[$size]+="$rs "; ratios_w[$size]+="$rw "; ratios_r[$size]+="$rr "
    say "$(printf '| %s | %d | %.0f | %.0f | %.0f | %.0f | **%.2f×** | %.0f | **%.2f×** | %.0f | %.0f | **%.2f×** | %.1f / %.1f | %.1f | %s → %s |' \
      "$size" "$round" "$w" "$bo" "$xa" "$s" "$rs" "$wb" "$rw" "$q" "$r" "$rr" "$p50" "$p99" "$wl" "$l0" "$(load)")"
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
say ""
say "Median ratio over the rounds (ops/s of rbox-core ÷ ops/s of rados bench; target ≥ 0.90 for save and read):"
say ""
say "| size | save / rados write | save (write-behind) / rados write | read / rados seq |"
say "|---:|---:|---:|---:|"
for size in $SIZES; do
  say "$(printf '| %s | **%.2f×** | **%.2f×** | **%.2f×** |' "$size" \
    "$(echo "${ratios_s[$size]}" | median)" "$(echo "${ratios_w[$size]}" | median)" "$(echo "${ratios_r[$size]}" | median)")"
done

# --- Listing one user's mails while the pool fills up -------------------------------
m="rbox-bench-list-mail-$tag" i="rbox-bench-list-index-$tag"
mkpool "$m"; mkpool "$i"
rbox -p "$m" --index-pool "$i" -N listuser bench save -b 4K --count "$LIST_MAILS" --keep --json >/dev/null
measure() { # label -> table row
  local others=$1 ix sc
  ix=$(rbox -p "$m" --index-pool "$i" -N listuser bench list --count "$LIST_RUNS" --json)
  sc=$(rbox -p "$m" --index-pool "$i" -N listuser bench list --scan --count "$LIST_RUNS" --json)
  echo "$others $(echo "$ix" | num .mails) $(echo "$ix" | num .ms.p50) $(echo "$sc" | num .mails) $(echo "$sc" | num .ms.p50)"
}
objects() { rados "${keyring_args[@]}" df --format json 2>/dev/null | jq --arg p "$m" '.pools[] | select(.name == $p) | .num_objects'; }
say ""
say "### Listing one user's ${LIST_MAILS} mails (median of ${LIST_RUNS} runs)"
say ""
say "| other objects in the mail pool | index listing ms | namespace scan ms | load |"
say "|---:|---:|---:|---|"
read -r o0 n0 ix0 s0 sc0 < <(measure 0)
say "$(printf '| %s | %.1f (%s mails) | %.1f (%s mails) | %s |' "$o0" "$ix0" "$n0" "$sc0" "$s0" "$(load)")"
run=0
# Other users' objects: tiny objects written by `rados bench` in other namespaces.
while missing=$(( OTHERS - ($(objects) - LIST_MAILS) )); [ "$missing" -gt 0 ]; do
  run=$((run + 1))
  rados "${keyring_args[@]}" -p "$m" -N "filler-$run" bench 120 write -b 16 -t 64 \
    --max-objects "$missing" --no-cleanup --run-name "fill$run" --format json >/dev/null 2>&1
  sleep 2 # let the PG stats catch up before counting again
done
others=$(( $(objects) - LIST_MAILS ))
read -r o1 n1 ix1 s1 sc1 < <(measure "$others")
say "$(printf '| %s | %.1f (%s mails) | %.1f (%s mails) | %s |' "$o1" "$ix1" "$n1" "$sc1" "$s1" "$(load)")"
say ""
say "$(printf 'Index listing: %.2f× its empty-pool time (target < 2×); namespace scan: %.2f×.' \
  "$(echo "$ix1 / $ix0" | bc -l)" "$(echo "$sc1 / $sc0" | bc -l)")"
say "Load average at end: $(load)."

printf '%s' "$report" > "$OUT"
echo "report written to $OUT" >&2
printf '%s' "$report"
