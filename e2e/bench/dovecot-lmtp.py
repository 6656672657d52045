#!/usr/bin/python3
"""LMTP deliveries per second into rbox vs Maildir vs `rados bench write`, side by side.

    source <(e2e/ceph-micro env DIR) ; e2e/bench/dovecot-lmtp.sh
Prints one Markdown table row per mail size. Not a test: no assertion on speed.
"""
import os
import smtplib
import subprocess
import sys
import threading
import time

SESSIONS = int(os.environ.get("SESSIONS", "16"))
MAILS = int(os.environ.get("MAILS", "800"))


def deliver(port, size, users=16):
    body = ("x" * 76 + "\r\n") * max(1, size // 78)
    per = MAILS // SESSIONS
    errors = []

    def worker(k):
        try:
            with smtplib.LMTP("127.0.0.1", port) as s:
                for i in range(per):
                    u = f"bench{(k + i) % users}"
                    s.sendmail("b@x", [u], f"From: b@x\r\nTo: {u}\r\nSubject: {k}.{i}\r\n\r\n{body}")
        except Exception as e:  # reported, not hidden
            errors.append(repr(e))

    t0 = time.time()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(SESSIONS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.time() - t0
    if errors:
        print(f"errors: {errors[:3]}", file=sys.stderr)
    return per * SESSIONS / dt


def rados_bench(pool, size):
    out = subprocess.run(
        ["rados", "bench", "-p", pool, "10", "write", "-t", str(SESSIONS), "-b", str(size), "--no-cleanup"],
        capture_output=True, text=True, timeout=120,
    ).stdout
    subprocess.run(["rados", "-p", pool, "cleanup"], capture_output=True, timeout=120)
    for line in out.splitlines():
        if line.startswith("Average IOPS:"):
            return float(line.split()[-1])
    return float("nan")


def main():
    rbox_port, maildir_port, pool = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    print(f"| mail size | rbox mails/s | Maildir mails/s | rados bench ops/s | rbox / Maildir | rbox / rados |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in (4096, 65536):
        r = deliver(rbox_port, size)
        m = deliver(maildir_port, size)
        b = rados_bench(pool, size)
        print(f"| {size // 1024} KiB | {r:.0f} | {m:.0f} | {b:.0f} | {r / m:.2f} | {r / b:.2f} |")


if __name__ == "__main__":
    main()
