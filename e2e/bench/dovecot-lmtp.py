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


def cpu_ticks(pred):
    """utime + stime of every process whose (pid, ppid, comm) satisfies `pred`."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1 : st.rindex(")")]
        fields = st[st.rindex(")") + 2 :].split()
        if pred(int(d), int(fields[1]), comm):
            total += int(fields[11]) + int(fields[12])
    return total


def children_of(pid_file):
    with open(pid_file) as f:
        master = int(f.read().split()[0])
    return lambda pid, ppid, comm: ppid == master


def measured(port, size, who):
    """Deliveries/s, and CPU ms per delivery of each process group in `who`."""
    before = {k: cpu_ticks(p) for k, p in who.items()}
    rate = deliver(port, size)
    hz = os.sysconf("SC_CLK_TCK")
    n = MAILS // SESSIONS * SESSIONS
    cpu = {k: (cpu_ticks(p) - before[k]) * 1000 / hz / n for k, p in who.items()}
    return rate, cpu


def main():
    rbox_port, maildir_port, pool = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    rbox_dovecot = children_of(sys.argv[4])
    maildir_dovecot = children_of(sys.argv[5])
    osd = lambda pid, ppid, comm: comm == "ceph-osd"  # noqa: E731
    rows = []
    print(f"| mail size | rbox mails/s | Maildir mails/s | rados bench ops/s | rbox / Maildir | rbox / rados |")
    print("| --- | --- | --- | --- | --- | --- |")
    for size in (4096, 65536):
        r, rcpu = measured(rbox_port, size, {"dovecot": rbox_dovecot, "osd": osd})
        m, mcpu = measured(maildir_port, size, {"dovecot": maildir_dovecot})
        b = rados_bench(pool, size)
        print(f"| {size // 1024} KiB | {r:.0f} | {m:.0f} | {b:.0f} | {r / m:.2f} | {r / b:.2f} |")
        rows.append((size, rcpu, mcpu))
    print("\nCPU per delivery (ms; all of Dovecot's processes of that instance, and the OSD)\n")
    print("| mail size | rbox: Dovecot | rbox: OSD | Maildir: Dovecot |")
    print("| --- | --- | --- | --- |")
    for size, rcpu, mcpu in rows:
        print(f"| {size // 1024} KiB | {rcpu['dovecot']:.2f} | {rcpu['osd']:.2f} | {mcpu['dovecot']:.2f} |")


if __name__ == "__main__":
    main()
