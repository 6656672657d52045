#!/usr/bin/python3
"""IMAP with the rbox plugin vs Maildir, side by side (not a test: nothing asserted).

    dovecot-imap.py RBOX_PORT MAILDIR_PORT

1. Mixed load: CLIENTS parallel clients, each ROUNDS times: LOGIN, SELECT, FETCH of ten
   mails (FLAGS, sizes, a body), STORE, APPEND of a 4 KiB mail, STORE \\Deleted + EXPUNGE
   of one, LOGOUT. Reports commands/s and the median / p90 latency per command.
2. Big mailbox: BIG mails (4 KiB) put into one mailbox with MULTIAPPEND (LITERAL+, 100 per
   command), then a fresh session's SELECT and one FETCH 1:* BODY.PEEK[] of every body.
Prints Markdown tables.
"""
import os
import socket
import statistics
import sys
import threading
import time

CLIENTS = int(os.environ.get("CLIENTS", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "20"))
BIG = int(os.environ.get("BIG", "10000"))
SEED = 50  # mails per mixed-load user before the run
BODY = ("x" * 76 + "\r\n") * 52  # ~4 KiB


def mail(subject):
    return (
        f"From: bench <bench@example.test>\r\nTo: u@example.test\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject}@bench>\r\nDate: Mon, 01 Jan 2024 12:00:00 +0000\r\n\r\n{BODY}"
    ).encode()


class Conn:
    """A minimal raw IMAP client: tagged commands, literals read in full."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.f = self.s.makefile("rb")
        self.n = 0
        self.f.readline()  # greeting

    def read_response(self, tag):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise ConnectionError("server closed the connection")
            while line.endswith(b"}\r\n") and b"{" in line:
                size = int(line[line.rindex(b"{") + 1 : -3].rstrip(b"+"))
                line += self.f.read(size) + self.f.readline()
            lines.append(line)
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(line.decode(errors="replace").strip())
                return lines

    def cmd(self, text, literal=None):
        self.n += 1
        tag = b"B%d" % self.n
        if literal is None:
            self.s.sendall(tag + b" " + text.encode() + b"\r\n")
        else:
            self.s.sendall(tag + b" " + text.encode() + b" {%d+}\r\n" % len(literal) + literal + b"\r\n")
        return self.read_response(tag)

    def multiappend(self, box, mails):
        self.n += 1
        tag = b"B%d" % self.n
        parts = [tag + b" APPEND " + box.encode()]
        for m in mails:
            parts.append(b" {%d+}\r\n" % len(m) + m)
        self.s.sendall(b"".join(parts) + b"\r\n")
        return self.read_response(tag)

    def close(self):
        self.s.close()


def timed(lat, name, fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    lat.setdefault(name, []).append(time.perf_counter() - t)
    return out


def seed(port, user):
    c = Conn(port)
    c.cmd(f"LOGIN {user} pass")
    c.multiappend("INBOX", [mail(f"{user}-seed-{i}") for i in range(SEED)])
    c.cmd("LOGOUT")
    c.close()


def mixed_client(port, user, lat, errors):
    try:
        for r in range(ROUNDS):
            c = timed(lat, "connect", Conn, port)
            timed(lat, "LOGIN", c.cmd, f"LOGIN {user} pass")
            timed(lat, "SELECT", c.cmd, "SELECT INBOX")
            timed(lat, "FETCH", c.cmd, "FETCH 1:10 (FLAGS RFC822.SIZE INTERNALDATE)")
            timed(lat, "FETCH body", c.cmd, f"FETCH {r % 10 + 1} BODY.PEEK[]")
            timed(lat, "STORE", c.cmd, f"STORE {r % 10 + 1} +FLAGS (\\Seen)")
            timed(lat, "APPEND", c.cmd, "APPEND INBOX", mail(f"{user}-r{r}"))
            timed(lat, "STORE", c.cmd, "STORE 1 +FLAGS.SILENT (\\Deleted)")
            timed(lat, "EXPUNGE", c.cmd, "EXPUNGE")
            timed(lat, "LOGOUT", c.cmd, "LOGOUT")
            c.close()
    except Exception as e:  # reported, not hidden
        errors.append(f"{user}: {e!r}")


def mixed(port, tag):
    users = [f"mix-{tag}-{k}" for k in range(CLIENTS)]
    for u in users:
        seed(port, u)
    lat, errors = {}, []
    threads = [threading.Thread(target=mixed_client, args=(port, u, lat, errors)) for u in users]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    if errors:
        print(f"errors ({tag}): {errors[:3]}", file=sys.stderr)
    commands = sum(len(v) for k, v in lat.items() if k != "connect")
    return commands / dt, lat


def big(port, tag):
    user = f"big-{tag}"
    c = Conn(port)
    c.cmd(f"LOGIN {user} pass")
    t = time.perf_counter()
    for i in range(0, BIG, 100):
        c.multiappend("INBOX", [mail(f"big-{j}") for j in range(i, min(BIG, i + 100))])
    append_s = time.perf_counter() - t
    c.cmd("LOGOUT")
    c.close()
    c = Conn(port)
    c.cmd(f"LOGIN {user} pass")
    t = time.perf_counter()
    c.cmd("SELECT INBOX")
    select_s = time.perf_counter() - t
    t = time.perf_counter()
    lines = c.cmd("FETCH 1:* BODY.PEEK[]")
    fetch_s = time.perf_counter() - t
    got = sum(1 for line in lines if b" FETCH (" in line)
    c.cmd("LOGOUT")
    c.close()
    if got != BIG:
        print(f"big ({tag}): fetched {got} of {BIG}", file=sys.stderr)
    return append_s, select_s, fetch_s


def ms(v, q):
    v = sorted(v)
    return 1000 * v[min(len(v) - 1, int(q * len(v)))]


def main():
    rport, mport = int(sys.argv[1]), int(sys.argv[2])
    r_rate, r_lat = mixed(rport, "rbox")
    m_rate, m_lat = mixed(mport, "maildir")
    print(f"Mixed load, {CLIENTS} clients x {ROUNDS} rounds\n")
    print("| command | rbox median ms | rbox p90 ms | Maildir median ms | Maildir p90 ms | median ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ["connect", "LOGIN", "SELECT", "FETCH", "FETCH body", "STORE", "APPEND", "EXPUNGE", "LOGOUT"]:
        r, m = r_lat.get(name, [0]), m_lat.get(name, [0])
        rm, mm = statistics.median(r) * 1000, statistics.median(m) * 1000
        print(f"| {name} | {rm:.1f} | {ms(r, 0.9):.1f} | {mm:.1f} | {ms(m, 0.9):.1f} | {rm / mm if mm else 0:.2f} |")
    print(f"| **commands/s** | {r_rate:.0f} | | {m_rate:.0f} | | {m_rate / r_rate if r_rate else 0:.2f} (Maildir/rbox) |\n")
    ra, rs, rf = big(rport, "rbox")
    ma, msel, mf = big(mport, "maildir")
    print(f"One mailbox of {BIG} mails (4 KiB)\n")
    print("| step | rbox s | Maildir s | rbox / Maildir |")
    print("| --- | --- | --- | --- |")
    print(f"| MULTIAPPEND (100 per command) | {ra:.2f} | {ma:.2f} | {ra / ma:.2f} |")
    print(f"| SELECT | {rs:.3f} | {msel:.3f} | {rs / msel:.2f} |")
    print(f"| FETCH 1:* BODY.PEEK[] | {rf:.2f} | {mf:.2f} | {rf / mf:.2f} |")


if __name__ == "__main__":
    main()
