#!/usr/bin/env bash
# IMAP: 10 clients of mixed load, and SELECT + FETCH of a 10,000-mail mailbox, rbox (release
# plugin) vs Maildir on local disk, in one run on the same machine. Needs CEPH_CONF.
# CLIENTS=10 ROUNDS=20 BIG=10000 by default (docs/benchmarks.md).
source "$(dirname "${BASH_SOURCE[0]}")/../lib/common.sh"
cd "$REPO_ROOT"
source "$E2E_ROOT/bench/dovecot-pair.sh" imap
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/python3 "$E2E_ROOT/bench/dovecot-imap.py" "$(pair_port IMAP "$R")" "$(pair_port IMAP "$M")"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
