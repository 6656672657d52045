#!/usr/bin/env bash
# Ceph admin benchmark: the same pool reconcile through librados mon_command (the operator's
# way, operator/examples/pool_reconcile_bench.rs) and through the `ceph` CLI (Rook's way: one
# process per command, JSON output, --connect-timeout), side by side on the local Ceph.
#
#   e2e/bench/pool-reconcile.sh [REPS]      (needs `e2e/env up`; prints a Markdown table)
#
# Per repetition, on a fresh pool: create (read pools, rules, user; create rule, pool, size,
# application and its owner, quota, pg_num_min, user), steady (read state; nothing to do), adjust (read
# state; change the quota). Pools are deleted afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPS=${1:-5}
source "$(e2e/env path)"
CONF=$RBOX_E2E_CEPH_CONF
C() { ceph -c "$CONF" --connect-timeout 15 "$@" 2>/dev/null; }
now() { date +%s.%N; }
out=$(mktemp -d)

# A debug build: the time is spent in the monitors and the network, not in our code.
cargo build -q -p rbox-operator --example pool_reconcile_bench
target/debug/examples/pool_reconcile_bench "$CONF" "$REPS" > "$out/librados.txt"

reads() { # what the reconcile reads: pools, rules, the user
  C osd pool ls detail -f json >/dev/null
  C osd crush rule dump -f json >/dev/null
  C auth get "$1" -f json >/dev/null || true
}
for rep in $(seq 0 $((REPS - 1))); do
  pool=bench-cli-$$-$rep; user=client.bench-cli-$$-$rep
  t=$(now)
  reads "$user"
  C osd crush rule create-replicated rbox-default-osd default osd >/dev/null
  C osd pool create "$pool" 8 8 replicated rbox-default-osd --size 1 >/dev/null
  C osd pool application enable "$pool" rbox --yes-i-really-mean-it >/dev/null
  C osd pool application set "$pool" rbox owner bench >/dev/null
  C osd pool set-quota "$pool" max_bytes $((1 << 30)) >/dev/null
  C osd pool set "$pool" pg_num_min 8 >/dev/null
  C auth get-or-create "$user" mon 'allow r' osd "allow rw pool=$pool" -f json >/dev/null
  echo "create $(echo "$(now) - $t" | bc) 8" >> "$out/cli.txt"
  t=$(now); reads "$user"
  echo "steady $(echo "$(now) - $t" | bc) 0" >> "$out/cli.txt"
  t=$(now); reads "$user"; C osd pool set-quota "$pool" max_bytes $((2 << 30)) >/dev/null
  echo "adjust $(echo "$(now) - $t" | bc) 1" >> "$out/cli.txt"
  C osd pool delete "$pool" "$pool" --yes-i-really-really-mean-it >/dev/null
  C auth del "$user" >/dev/null
done

median() { grep "^$1 " "$2" | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "| reconcile ($REPS runs, median) | librados mon_command | ceph CLI | CLI / librados |"
echo "| --- | --- | --- | --- |"
for step in create steady adjust; do
  l=$(median $step "$out/librados.txt"); c=$(median $step "$out/cli.txt")
  printf "| %s | %.3f s | %.3f s | %.1f× |\n" "$step" "$l" "$c" "$(echo "$c / $l" | bc -l)"
done
echo "(librados connect, once per cluster: $(awk '/^connect/ {print $2}' "$out/librados.txt") s)"
rm -rf "$out"
