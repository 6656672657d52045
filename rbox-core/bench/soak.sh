#!/usr/bin/env bash
# rbox-core under sustained load (issue 8): `rbox bench mixed` (save/read/expunge 10:7:3,
# THREADS in flight) for DURATION seconds against a micro Ceph of its OWN, with the OSD
# stopped once in the middle and started again; then `rbox fsck` on the namespace it wrote
# (check, repair, check) and a byte-exact check of every mail whose save returned success
# and that was not expunged (the ledger `rbox bench mixed --ledger` writes: oid sha256 size).
#
# Usage: rbox-core/bench/soak.sh            (or `make soak`)
#   DURATION=600 THREADS=16 SIZE=4K EVERY=10 RESTART_AT=DURATION/2 OSD_DOWN=20
#   CEPH_DIR=/tmp/rbox-soak-ceph OUT=/tmp/rbox-soak-<time> RBOX=<path to rbox>
# Never touches the shared environment's Ceph: it starts (and at the end stops and removes)
# the one in CEPH_DIR. Exit 0 only if nothing was lost and the final fsck is clean.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
DURATION="${DURATION:-600}"
THREADS="${THREADS:-16}"
SIZE="${SIZE:-4K}"
EVERY="${EVERY:-10}"
RESTART_AT="${RESTART_AT:-$((DURATION / 2))}"
OSD_DOWN="${OSD_DOWN:-20}"
CEPH_DIR="${CEPH_DIR:-/tmp/rbox-soak-ceph}"
OUT="${OUT:-/tmp/rbox-soak-$(date -u +%Y%m%dT%H%M%SZ)}"
if [ -z "${RBOX:-}" ]; then
  if [ -x "$repo/target/release/rbox" ]; then RBOX="$repo/target/release/rbox"; else
    (cd "$repo" && cargo build -q -p rbox-core --bin rbox >&2)
    RBOX="$repo/target/debug/rbox"
  fi
fi
case "$CEPH_DIR" in /tmp/rbox-e2e*) echo "refusing to use the shared Ceph ($CEPH_DIR)" >&2; exit 2;; esac
mkdir -p "$OUT"
log() { echo "[soak $(date -u +%H:%M:%S)] $*" >&2; }

"$repo/e2e/ceph-micro" up "$CEPH_DIR" >"$OUT/ceph-up.log" 2>&1
cleanup() {
  "$repo/e2e/ceph-micro" start-daemon "$CEPH_DIR" osd >/dev/null 2>&1 || true
  if [ -z "${KEEP_CEPH:-}" ]; then
    "$repo/e2e/ceph-micro" down "$CEPH_DIR" >/dev/null 2>&1 || true
    rm -rf "$CEPH_DIR" "$OUT/mails"
  fi
}
trap cleanup EXIT
conf="$CEPH_DIR/ceph.conf"
keyring="$CEPH_DIR/ceph.client.admin.keyring"
mail_pool=rbox-soak-mail
index_pool=rbox-soak-index
for p in "$mail_pool" "$index_pool"; do
  ceph -c "$conf" -k "$keyring" --connect-timeout 15 osd pool create "$p" 8 >/dev/null 2>&1
  ceph -c "$conf" -k "$keyring" --connect-timeout 15 osd pool application enable "$p" rbox >/dev/null 2>&1
done
R() { "$RBOX" -c "$conf" -k "$keyring" -p "$mail_pool" --index-pool "$index_pool" \
  --connect-timeout 15 --op-timeout 30 "$@"; }
ns="soak-$(date +%s)-$$"

log "bench mixed: $DURATION s, $THREADS in flight, $SIZE, OSD restart at ${RESTART_AT}s for ${OSD_DOWN}s; output in $OUT"
start=$(date +%s)
R -q -N "$ns" bench mixed --duration "$DURATION" -t "$THREADS" -b "$SIZE" \
  --report-every "$EVERY" --json --ledger "$OUT/ledger.txt" >"$OUT/mixed.jsonl" 2>"$OUT/mixed.stderr" &
bench=$!
sleep "$RESTART_AT"
echo "osd stop $(( $(date +%s) - start ))" >"$OUT/events.txt"
log "stopping the OSD"
"$repo/e2e/ceph-micro" stop-daemon "$CEPH_DIR" osd >>"$OUT/events.log" 2>&1
sleep "$OSD_DOWN"
echo "osd start $(( $(date +%s) - start ))" >>"$OUT/events.txt"
log "starting the OSD"
"$repo/e2e/ceph-micro" start-daemon "$CEPH_DIR" osd >>"$OUT/events.log" 2>&1
echo "osd started $(( $(date +%s) - start ))" >>"$OUT/events.txt"
bench_rc=0
wait "$bench" || bench_rc=$?
log "bench exited $bench_rc"

set +e
R -q -N "$ns" fsck --grace 0 --json >"$OUT/fsck-check.json"; check_rc=$?
R -q -N "$ns" fsck --grace 0 --repair --yes-i-really-mean-it --json >"$OUT/fsck-repair.json"; repair_rc=$?
R -q -N "$ns" fsck --grace 0 --json >"$OUT/fsck-after.json"; after_rc=$?
R -q -N "$ns" get 'U>0' --out "$OUT/mails" --json >"$OUT/get.json"; get_rc=$?
set -e
log "fsck check=$check_rc repair=$repair_rc after=$after_rc; get=$get_rc"

python3 - "$OUT" "$bench_rc" "$check_rc" "$repair_rc" "$after_rc" "$get_rc" <<'EOF'
import hashlib, json, os, sys
out, bench_rc, check_rc, repair_rc, after_rc, get_rc = sys.argv[1], *map(int, sys.argv[2:])
lines = [json.loads(l) for l in open(f"{out}/mixed.jsonl") if l.strip()]
intervals, summary = [l for l in lines if "from_s" in l], lines[-1]
events = dict((" ".join(l.split()[:2]), int(l.split()[2])) for l in open(f"{out}/events.txt"))
def kinds(path):
    r = json.load(open(path))
    k = {}
    for f in r["findings"]:
        k[f["kind"]] = k.get(f["kind"], 0) + 1
    return r, k
check, check_k = kinds(f"{out}/fsck-check.json")
repair, _ = kinds(f"{out}/fsck-repair.json")
after, after_k = kinds(f"{out}/fsck-after.json")
got = {}
for root, _, files in os.walk(f"{out}/mails"):
    for f in files:
        got[f.rsplit(".", 1)[-1]] = hashlib.sha256(open(os.path.join(root, f), "rb").read()).hexdigest()
ledger = [l.split() for l in open(f"{out}/ledger.txt") if l.strip()]
missing = [oid for oid, sha, _ in ledger if oid not in got]
differ = [oid for oid, sha, _ in ledger if oid in got and got[oid] != sha]
uncertain = set(summary.get("expunge_uncertain", []))
in_ledger = {l[0] for l in ledger}
extra = [o for o in got if o not in in_ledger and o not in uncertain]
md = []
md.append(f"- run: {summary['seconds']:.0f} s, {summary['concurrency']} in flight, {summary['size']} bytes, "
          f"save:read:expunge = 10:7:3; OSD stopped at {events.get('osd stop')} s, started at "
          f"{events.get('osd start')} s (up again by {events.get('osd started')} s)")
md.append(f"- total: {summary['ops']} ops ({summary['ops_per_sec']:.1f} ops/s), ok {summary['ok']}, "
          f"errors {summary['errors'] or 0}")
for msg, n in sorted(summary.get("error_samples", {}).items()):
    md.append(f"  - {n} × `{msg[:160]}`")
md.append(f"- latency: " + ", ".join(f"{k} p50 {v['p50_ms']:.1f} ms / p99 {v['p99_ms']:.1f} ms / max {v['max_ms']:.0f} ms"
                                     for k, v in summary["latency"].items()))
md.append(f"- fsck after the run (grace 0): exit {check_rc}, findings {check_k or 'none'}; "
          f"repair exit {repair_rc} ({repair['repaired']} repaired); second check exit {after_rc}, "
          f"findings {after_k or 'none'}")
md.append(f"- ledger: {len(ledger)} mails saved with success and not expunged; {len(got)} read back by "
          f"`rbox get` (exit {get_rc}); missing {len(missing)}, differing {len(differ)}, "
          f"expunges with an error (state unknown) {len(uncertain)}, other mails found {len(extra)}")
md.append("")
md.append("| interval (s) | ops/s | save | read | expunge | errors (save/read/expunge) |")
md.append("|---|---:|---:|---:|---:|---|")
for i in intervals:
    e = i["errors"]
    md.append(f"| {i['from_s']:.0f}–{i['to_s']:.0f} | {i['ops_per_sec']:.1f} | {i['ok'].get('save', 0)} | "
              f"{i['ok'].get('read', 0)} | {i['ok'].get('expunge', 0)} | "
              f"{sum(e.values())} ({e.get('save', 0)}/{e.get('read', 0)}/{e.get('expunge', 0)}) |")
open(f"{out}/summary.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
ok = not missing and not differ and after_rc == 0 and get_rc == 0
print(f"soak: {'1 passed, 0 failed' if ok else '0 passed, 1 failed'}")
sys.exit(0 if ok else 1)
EOF
