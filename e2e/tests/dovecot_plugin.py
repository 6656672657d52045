#!/usr/bin/python3
"""Real Dovecot + our rbox plugin + the micro Ceph, through real client libraries.

Run by e2e/tests/dovecot-plugin.sh (which starts Dovecot). Each check is a function; the
last line is "dovecot-plugin: N passed, M failed" for make test's summary.
"""
import email.utils
import imaplib
import os
import poplib
import re
import smtplib
import subprocess
import sys
import time
import traceback

IMAP = int(os.environ["RBOX_DC_IMAP_PORT"])
POP3 = int(os.environ["RBOX_DC_POP3_PORT"])
LMTP = int(os.environ["RBOX_DC_LMTP_PORT"])
DC_DIR = os.environ["RBOX_DC_DIR"]
POOL = os.environ["RBOX_POOL"]
INDEX_POOL = os.environ["RBOX_INDEX_POOL"]
RUN = os.environ.get("RBOX_RUN", str(os.getpid()))

# rbox-observed §2.2: alice UID 3, 256 bytes stored (LF), 265 with CRLF.
OBSERVED_LF = (
    b"From: sender3 <sender3@peer.test>\nTo: alice\nSubject: rbox ground truth 3 (imap append)\n"
    b"Message-ID: <peer-msg-3@peer.test>\nDate: Mon, 01 Jan 2024 12:00:03 +0000\n"
    b"MIME-Version: 1.0\nContent-Type: text/plain; charset=us-ascii\n\n"
    b"Message three, appended via IMAP.\n"
)
OBSERVED_R = 1704110403


def user(name):
    return f"{name}-{RUN}"


def imap(u):
    m = imaplib.IMAP4("127.0.0.1", IMAP)
    m.login(u, "pass")
    return m


def ok(resp, what):
    typ, data = resp
    assert typ == "OK", f"{what}: {typ} {data}"
    return data


def rados(*args, binary=False):
    out = subprocess.run(["rados", "-p", POOL, *args], check=True, capture_output=True, timeout=60)
    return out.stdout if binary else out.stdout.decode()


def doveadm(*args):
    out = subprocess.run(
        ["doveadm", "-c", f"{DC_DIR}/dovecot.conf", *args], capture_output=True, timeout=60, text=True
    )
    assert out.returncode == 0, f"doveadm {args}: {out.stderr}"
    return out.stdout


def mailbox_guid(u, box):
    out = doveadm("mailbox", "status", "-u", u, "guid", box)
    return out.strip().split("=")[-1]


def xattrs(ns, oid):
    names = rados("-N", ns, "listxattr", oid).split()
    return {n: rados("-N", ns, "getxattr", oid, n, binary=True) for n in names}


def oid_of(u, box, uid):
    """The object id of a UID (the plugin's ext record, via doveadm's storage id)."""
    out = doveadm("fetch", "-u", u, "storageid", "mailbox", box, "uid", str(uid))
    return out.split(":", 1)[1].strip()


def test_append_fetch_format():
    u = user("alice")
    m = imap(u)
    ok(m.select("INBOX"), "select")
    crlf = OBSERVED_LF.replace(b"\n", b"\r\n")
    data = ok(m.append("INBOX", None, imaplib.Time2Internaldate(OBSERVED_R), crlf), "append")
    uid = int(re.search(rb"APPENDUID \d+ (\d+)", data[0]).group(1))
    ok(m.select("INBOX"), "select")
    typ, d = m.uid("FETCH", str(uid), "(RFC822.SIZE INTERNALDATE BODY[] BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY[TEXT]<0.7>)")
    assert typ == "OK", d
    blob = b"".join(x[0] + x[1] if isinstance(x, tuple) else x for x in d)
    assert b"RFC822.SIZE 265" in blob, blob
    assert crlf in blob, "BODY[] is the message as sent (CRLF)"
    assert b"Subject: rbox ground truth 3" in blob
    assert b"BODY[TEXT]<0> {7}Message" in blob, blob
    m.logout()
    # Bytes in RADOS: LF data, B G I M R U V Z with NUL-terminated decimal values.
    ns = f"{u}_u"
    oid = oid_of(u, "INBOX", uid)
    assert re.fullmatch(r"[0-9a-f]{32}", oid), oid
    assert rados("-N", ns, "get", oid, "-", binary=True) == OBSERVED_LF
    x = xattrs(ns, oid)
    assert sorted(x) == list("BGIMRUVZ"), sorted(x)
    assert x["B"] == b"INBOX\0" and x["I"] == b"0.1\0"
    assert x["U"] == f"{uid}\0".encode() and x["R"] == f"{OBSERVED_R}\0".encode()
    assert x["V"] == b"265\0" and x["Z"] == b"256\0"
    assert x["M"] == (mailbox_guid(u, "INBOX") + "\0").encode(), x["M"]
    assert re.fullmatch(rb"[0-9a-f]{32}\0", x["G"])
    # rbox_cfg: librmb's 282 bytes, created on first connect.
    cfg = rados("get", "rbox_cfg", "-", binary=True)
    assert len(cfg) == 282 and cfg.startswith(b'{"user_mapping": "false"'), cfg
    # The omap index mirrors the mail under its UID.
    keys = subprocess.run(
        ["rados", "-p", INDEX_POOL, "-N", ns, "listomapkeys", f"rbox.mbox.{mailbox_guid(u, 'INBOX')}"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.split()
    assert f"u.{uid:010d}" in keys, keys


def test_folders_flags_copy_move_expunge():
    u = user("bob")
    m = imap(u)
    ok(m.create("Work"), "create")
    ok(m.create("Work/Old"), "create child")
    ok(m.subscribe("Work"), "subscribe")
    typ, lst = m.list('""', "*")
    names = b" ".join(lst)
    assert b'"Work/Old"' in names or b"Work/Old" in names, names
    typ, lsub = m.lsub('""', "*")
    assert b"Work" in b" ".join(lsub)
    for i in range(3):
        ok(m.append("INBOX", "(\\Seen)" if i == 0 else None, None, f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode()), "append")
    ok(m.select("INBOX"), "select")
    ok(m.store("1:2", "+FLAGS", "(\\Flagged $Label1)"), "store")
    typ, d = m.search(None, "KEYWORD", "$Label1")
    assert d[0].split() == [b"1", b"2"], d
    typ, d = m.search(None, "SUBJECT", "m2")
    assert d[0].split() == [b"3"], d
    data = ok(m.copy("1", "Work"), "copy")
    assert b"COPYUID" in data[0]
    typ, d = m._simple_command("MOVE", "2", "Work/Old")
    assert typ == "OK", d
    ok(m.select("INBOX"), "select")
    ok(m.store("1", "+FLAGS", "(\\Deleted)"), "store deleted")
    ok(m.expunge(), "expunge")
    st = ok(m.status("INBOX", "(MESSAGES)"), "status")
    assert b"MESSAGES 1" in st[0], st
    st = ok(m.status("Work", "(MESSAGES)"), "status")
    assert b"MESSAGES 1" in st[0], st
    ok(m.select("Work"), "select Work")
    typ, d = m.fetch("1", "(FLAGS BODY[])")
    assert b"\\Flagged" in d[0][0] and b"$Label1" in d[0][0], d
    ok(m.rename("Work/Old", "Archive"), "rename")
    ok(m.select("Archive"), "select renamed")
    typ, d = m.fetch("1", "(BODY[])")
    assert b"body 1" in d[0][1], d
    ok(m.close(), "close")
    ok(m.delete("Archive"), "delete")
    m.logout()
    # Objects: INBOX 1 left, Work 1 (the copy); moved+deleted+expunged ones removed.
    objs = rados("-N", f"{u}_u", "ls").split()
    assert len(objs) == 2, objs


def test_lmtp_and_pop3():
    u = user("carol")
    with smtplib.LMTP("127.0.0.1", LMTP) as s:
        for i in range(3):
            msg = f"From: s@x\r\nTo: {u}\r\nSubject: lmtp {i}\r\nMessage-ID: <{i}.{RUN}@x>\r\n\r\nhello {i}\r\n"
            s.sendmail("s@x", [u], msg)
    p = poplib.POP3("127.0.0.1", POP3)
    p.user(u)
    p.pass_("pass")
    count, _ = p.stat()
    assert count == 3, count
    uidl1 = p.uidl()[1]
    body = b"\n".join(p.retr(2)[1])
    assert b"Subject: lmtp 1" in body and b"hello 1" in body, body
    p.quit()
    p = poplib.POP3("127.0.0.1", POP3)
    p.user(u)
    p.pass_("pass")
    assert p.uidl()[1] == uidl1, "UIDLs are stable across sessions"
    p.quit()
    ns = f"{u}_u"
    objs = rados("-N", ns, "ls").split()
    assert len(objs) == 3, objs
    for o in objs:
        x = xattrs(ns, o)
        assert "U" in x and x["U"] != b"\0", (o, x)
        data = rados("-N", ns, "get", o, "-", binary=True)
        assert b"\r\n" not in data and data.startswith(b"Return-Path:"), data[:80]


def test_deleted_object_gives_no_not_bye():
    u = user("dave")
    m = imap(u)
    ok(m.append("INBOX", None, None, b"Subject: gone\r\n\r\nsoon gone\r\n"), "append")
    ok(m.append("INBOX", None, None, b"Subject: stays\r\n\r\nstays\r\n"), "append")
    oid = oid_of(u, "INBOX", 1)
    rados("-N", f"{u}_u", "rm", oid)
    ok(m.select("INBOX"), "select")
    # Dovecot's answer for a mail whose file vanished (as with Maildir): no body, no
    # crash; the log names the object.
    typ, d = m.fetch("1", "(BODY[])")
    assert typ in ("NO", "OK") and b"soon gone" not in repr(d).encode(), (typ, d)
    typ, d = m.fetch("2", "(BODY[])")
    assert typ == "OK" and b"stays" in d[0][1], "the session survives"
    m.logout()


def test_doveadm_and_force_resync():
    u = user("erin")
    m = imap(u)
    ok(m.append("INBOX", None, None, b"Subject: one\r\n\r\none\r\n"), "append")
    m.logout()
    # doveadm search prints "<mailbox guid> <uid>" per match
    out = doveadm("search", "-u", u, "mailbox", "INBOX", "subject", "one").split()
    assert out == [mailbox_guid(u, "INBOX"), "1"], out
    out = doveadm("fetch", "-u", u, "hdr.subject", "mailbox", "INBOX", "all")
    assert "one" in out, out
    # An object written by another writer in upstream's layout, U=7, M = this mailbox.
    guid = mailbox_guid(u, "INBOX")
    ns = f"{u}_u"
    oid = "0123456789abcdef0123456789abcdef"
    body = b"Subject: adopted\nTo: erin\n\nfrom upstream\n"
    import rados as librados  # python3-rados: xattr values with librmb's trailing NUL

    with librados.Rados(conffile=os.environ["CEPH_CONF"]) as cluster:
        with cluster.open_ioctx(POOL) as io:
            io.set_namespace(ns)
            io.write_full(oid, body)
            for k, v in {"B": "INBOX", "G": "1123456789abcdef0123456789abcdef", "I": "0.1",
                         "M": guid, "R": str(OBSERVED_R), "U": "7",
                         "V": str(len(body) + body.count(b"\n")), "Z": str(len(body))}.items():
                io.set_xattr(oid, k, v.encode() + b"\0")
    doveadm("force-resync", "-u", u, "INBOX")
    m = imap(u)
    ok(m.select("INBOX"), "select")
    typ, d = m.uid("FETCH", "7", "(BODY[])")
    assert typ == "OK" and d and d[0] and b"from upstream" in d[0][1], d
    m.logout()
    doveadm("expunge", "-u", u, "mailbox", "INBOX", "uid", "7")
    assert oid not in rados("-N", ns, "ls").split()


def test_mbsync_two_way():
    """isync's mbsync syncs a local Maildir folder tree up, then server changes down."""
    import tempfile

    u = user("gina")
    top = tempfile.mkdtemp(prefix="mbsync-")
    local = os.path.join(top, "mail")
    for box, n in (("INBOX", 2), ("Projects/Alpha", 3)):
        path = os.path.join(local, box)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        for i in range(n):
            with open(os.path.join(path, "cur", f"{time.time_ns()}.{i}.local:2,S"), "wb") as f:
                f.write(f"From: x@y\nSubject: {box} {i}\n\n{box} body {i}\n".encode())
    rc = os.path.join(top, "mbsyncrc")
    with open(rc, "w") as f:
        f.write(f"""IMAPAccount acc
Host 127.0.0.1
Port {IMAP}
User {u}
Pass pass
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account acc

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel ch
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
""")

    def mbsync():
        r = subprocess.run(["mbsync", "-c", rc, "-a"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr

    mbsync()
    m = imap(u)
    st = ok(m.status('"Projects/Alpha"', "(MESSAGES)"), "status")
    assert b"MESSAGES 3" in st[0], st
    ok(m.select("INBOX"), "select")
    typ, d = m.search(None, "SEEN")
    assert len(d[0].split()) == 2, d
    ok(m.append("Projects/Alpha", "(\\Flagged)", None, b"Subject: from server\r\n\r\nnew\r\n"), "append")
    ok(m.store("1", "+FLAGS", "(\\Deleted)"), "store")
    ok(m.expunge(), "expunge")
    m.logout()
    mbsync()
    alpha = os.listdir(os.path.join(local, "Projects/Alpha", "cur")) + os.listdir(
        os.path.join(local, "Projects/Alpha", "new"))
    assert len(alpha) == 4, alpha
    assert any(name.endswith(":2,F") for name in alpha), alpha
    inbox = os.listdir(os.path.join(local, "INBOX", "cur")) + os.listdir(os.path.join(local, "INBOX", "new"))
    assert len(inbox) == 1, inbox


# ---- dsync (doveadm backup / sync) between a Maildir Dovecot and rbox ----

MD_IMAP = int(os.environ.get("RBOX_DC_MD_IMAP_PORT", "0"))
MD_DIR = os.environ.get("RBOX_DC_MD_DIR", "")


def imap_at(port, u):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(u, "pass")
    return m


def snapshot(port, u):
    """Everything a client sees: folders, UIDVALIDITY/UIDNEXT, per UID flags, date, bytes."""
    m = imap_at(port, u)
    boxes = {}
    for line in ok(m.list('""', "*"), "list"):
        attrs, name = re.match(rb'\((.*?)\) "/" (.*)$', line).groups()
        name = name.decode().strip('"')
        if b"\\Noselect" in attrs or b"\\NonExistent" in attrs:
            boxes[name] = None  # a parent that exists only through its children
            continue
        st = ok(m.status(f'"{name}"', "(MESSAGES UIDVALIDITY UIDNEXT)"), "status")[0]
        nums = dict(re.findall(rb"(MESSAGES|UIDVALIDITY|UIDNEXT) (\d+)", st))
        ok(m.select(f'"{name}"', readonly=True), "select")
        mails = {}
        if int(nums[b"MESSAGES"]):
            typ, d = m.uid("FETCH", "1:*", "(UID FLAGS INTERNALDATE BODY.PEEK[])")
            assert typ == "OK", d
            for x in d:
                if not isinstance(x, tuple):
                    continue
                uid = int(re.search(rb"UID (\d+)", x[0]).group(1))
                flags = set(re.search(rb"FLAGS \(([^)]*)\)", x[0]).group(1).split()) - {b"\\Recent"}
                date = re.search(rb'INTERNALDATE "([^"]+)"', x[0]).group(1)
                mails[uid] = (sorted(flags), date, x[1])
        assert len(mails) == int(nums[b"MESSAGES"]), (name, len(mails), nums)
        boxes[name] = (int(nums[b"UIDVALIDITY"]), int(nums[b"UIDNEXT"]), mails)
    m.logout()
    return boxes


def same(a, b, what, parents_become_empty=False):
    """a and b show the same. parents_become_empty: a \\Noselect parent on the rbox side is
    an empty mailbox on the Maildir side. dsync from an fs-layout storage (rbox, like sdbox: the parent is a real
    directory) into Maildir++ (no directories without a maildir) creates it; sdbox ->
    Maildir does the same, Maildir -> Maildir does not."""
    assert sorted(a) == sorted(b), f"{what}: folders {sorted(a)} vs {sorted(b)}"
    for name in a:
        va, vb = a[name], b[name]
        if parents_become_empty and (va is None) != (vb is None):
            assert (va or vb)[2] == {}, f"{what}: {name} has mail"
            continue
        if va is None or vb is None:
            assert va == vb, f"{what}: {name} selectable on one side only"
            continue
        assert va[0] == vb[0], f"{what}: {name} UIDVALIDITY {va[0]} vs {vb[0]}"
        assert sorted(va[2]) == sorted(vb[2]), f"{what}: {name} UIDs {sorted(va[2])} vs {sorted(vb[2])}"
        for uid in va[2]:
            assert va[2][uid] == vb[2][uid], f"{what}: {name} UID {uid}: {va[2][uid][:2]} vs {vb[2][uid][:2]}"


def dsync(kind, *args):
    out = subprocess.run(["doveadm", "-c", f"{DC_DIR}/dovecot.conf", kind, *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"doveadm {kind} {args}: rc {out.returncode} {out.stderr}"


def test_dsync_maildir_rbox_roundtrip():
    u, back = user("dsync"), user("dsync-back")
    folders = ["INBOX", "Archive", "Archive/2023", "Archive/2024", "Archive/2024/Q1", "Lists",
               "Lists/dev", "Lists/dev/rust", "Sent", "Trash", "Projects/Alpha"]
    m = imap_at(MD_IMAP, u)
    for f in folders[1:]:
        ok(m.create(f'"{f}"'), f"create {f}")
    flagsets = [None, "(\\Seen)", "(\\Seen \\Flagged)", "(\\Answered $Label1)", "(\\Draft keyword2)",
                "(\\Seen $Label1 keyword2 \\Deleted)"]
    n = 0
    for i, f in enumerate(folders):
        for j in range(9 if i else 10):
            n += 1
            body = (f"From: s{n}@peer.test\r\nTo: {u}\r\nSubject: dsync {f} {j}\r\n"
                    f"Message-ID: <dsync-{n}.{RUN}@peer.test>\r\nDate: Mon, 01 Jan 2024 12:00:00 +0000\r\n\r\n"
                    + f"line {j} of {f}\r\n" * (1 + n % 7)).encode()
            ok(m.append(f'"{f}"', flagsets[n % len(flagsets)], imaplib.Time2Internaldate(OBSERVED_R + n * 3607), body), "append")
    m.logout()
    assert n == 100
    md = f"{MD_DIR}/mail/{u}/Maildir"
    src = snapshot(MD_IMAP, u)
    mails = [v for box in src.values() if box for v in box[2].values()]
    assert len(mails) == 100 and sum(b"keyword2" in v[0] for v in mails) == 33, len(mails)
    # Maildir -> rbox (-R: the location given is the source), then rbox -> a fresh Maildir.
    dsync("backup", "-R", "-u", u, f"maildir:{md}")
    into_rbox = snapshot(IMAP, u)
    same(src, into_rbox, "maildir -> rbox")
    dsync("backup", "-u", u, f"maildir:{MD_DIR}/mail/{back}/Maildir")
    same(into_rbox, snapshot(MD_IMAP, back), "rbox -> fresh maildir", parents_become_empty=True)
    # Two-way: one change on each side, then doveadm sync merges both.
    m = imap_at(MD_IMAP, u)
    ok(m.append('"Lists/dev"', "(\\Flagged)", None, b"Subject: new on maildir\r\n\r\nmd\r\n"), "append")
    ok(m.select('"Archive"'), "select")
    ok(m.uid("STORE", "1", "+FLAGS", "(\\Answered)"), "store")
    m.logout()
    m = imap(u)
    ok(m.select('"Lists"'), "select")
    ok(m.uid("STORE", "2", "+FLAGS", "(rboxside)"), "store")
    ok(m.uid("STORE", "3", "+FLAGS", "(\\Deleted)"), "store")
    ok(m.expunge(), "expunge")
    m.logout()
    dsync("sync", "-u", u, f"maildir:{md}")
    a, b = snapshot(MD_IMAP, u), snapshot(IMAP, u)
    same(a, b, "after two-way sync", parents_become_empty=True)
    assert any(v[2] == b"Subject: new on maildir\r\n\r\nmd\r\n" for v in b["Lists/dev"][2].values())
    assert b"\\Answered" in b["Archive"][2][1][0] and b"rboxside" in a["Lists"][2][2][0]
    assert 3 not in a["Lists"][2]


def test_offlineimap_two_way():
    """offlineimap syncs a local Maildir folder tree up, then changes on both sides."""
    import tempfile

    u = user("hank")
    top = tempfile.mkdtemp(prefix="offlineimap-")
    local = os.path.join(top, "mail")
    # Every parent is a maildir too: offlineimap CREATEs the parents on the server and then
    # wants a local folder for each.
    for box, n in (("INBOX", 2), ("Projects", 0), ("Projects/Beta", 3), ("Projects/Beta/Old", 1)):
        path = os.path.join(local, box)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        for i in range(n):
            with open(os.path.join(path, "cur", f"{time.time_ns()}.{i}.local:2,S"), "wb") as f:
                f.write(f"From: x@y\nSubject: {box} {i}\nMessage-ID: <{box}.{i}.{RUN}@y>\n\n{box} body {i}\n".encode())
    rc = os.path.join(top, "offlineimaprc")
    with open(rc, "w") as f:
        f.write(f"""[general]
accounts = acc
metadata = {top}/meta
ui = basic

[Account acc]
localrepository = local
remoterepository = remote

[Repository local]
type = Maildir
localfolders = {local}
sep = /

[Repository remote]
type = IMAP
remotehost = 127.0.0.1
remoteport = {IMAP}
remoteuser = {u}
remotepass = pass
ssl = no
starttls = no
""")

    def offlineimap():
        r = subprocess.run(["offlineimap", "-c", rc, "-o", "-u", "basic"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "ERROR" not in r.stdout + r.stderr, r.stdout + r.stderr

    def local_files(box):
        return os.listdir(os.path.join(local, box, "cur")) + os.listdir(os.path.join(local, box, "new"))

    offlineimap()
    m = imap(u)
    for box, n in (("INBOX", 2), ("Projects/Beta", 3), ("Projects/Beta/Old", 1)):
        st = ok(m.status(f'"{box}"', "(MESSAGES UNSEEN)"), "status")
        assert f"MESSAGES {n} UNSEEN 0".encode() in st[0], (box, st)
    ok(m.select('"Projects/Beta"'), "select")
    typ, d = m.fetch("1:*", "(BODY.PEEK[])")
    assert sorted(x[1] for x in d if isinstance(x, tuple)) == [
        f"From: x@y\r\nSubject: Projects/Beta {i}\r\nMessage-ID: <Projects/Beta.{i}.{RUN}@y>\r\n\r\nProjects/Beta body {i}\r\n".encode()
        for i in range(3)], d
    # Server side: a new mail, a flag, an expunge. Local side: a new mail, a new folder.
    ok(m.append('"Projects/Beta"', "(\\Flagged)", None, b"Subject: from server\r\n\r\nnew\r\n"), "append")
    ok(m.store("1", "+FLAGS", "(\\Answered)"), "store")
    ok(m.store("2", "+FLAGS", "(\\Deleted)"), "store")
    ok(m.expunge(), "expunge")
    m.logout()
    for box in ("INBOX", "Lists"):
        path = os.path.join(local, box)
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        with open(os.path.join(path, "new", f"{time.time_ns()}.local"), "wb") as f:
            f.write(f"Subject: local {box}\n\nlocal\n".encode())
    offlineimap()
    beta = local_files("Projects/Beta")
    assert len(beta) == 3, beta
    assert sum(n.split(":2,")[1] == "F" for n in beta if ":2," in n) == 1, beta
    assert sum("R" in n.split(":2,")[1] for n in beta if ":2," in n) == 1, beta
    m = imap(u)
    for box, n in (("INBOX", 3), ("Lists", 1), ("Projects/Beta", 3)):
        st = ok(m.status(f'"{box}"', "(MESSAGES)"), "status")
        assert f"MESSAGES {n}".encode() in st[0], (box, st)
    ok(m.select("Lists"), "select")
    typ, d = m.fetch("1", "(BODY.PEEK[])")
    assert d[0][1] == b"Subject: local Lists\r\n\r\nlocal\r\n", d
    m.logout()


def fault_ceph_unavailable():
    """Run against a Dovecot whose Ceph is unreachable (or whose pool is missing)."""
    u = user("frank")
    m = imap(u)  # login does not need Ceph
    t0 = time.time()
    typ, d = m.append("INBOX", None, None, b"Subject: x\r\n\r\nx\r\n")
    assert typ == "NO" and b"[UNAVAILABLE]" in d[0], (typ, d)
    assert time.time() - t0 < 30, "bounded by the configured timeouts"
    ok(m.noop(), "the session survives")
    st = ok(m.status("INBOX", "(MESSAGES)"), "status")
    assert b"MESSAGES 0" in st[0], "nothing half-written became visible"
    m.logout()


def main():
    prefix = os.environ.get("RBOX_DC_TESTS", "test_")
    tests = [v for k, v in sorted(globals().items()) if k.startswith(prefix)]
    passed = failed = 0
    for t in tests:
        t0 = time.time()
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__} ({time.time() - t0:.1f} s)")
        except Exception:
            failed += 1
            print(f"FAIL {t.__name__}")
            traceback.print_exc()
    print(f"dovecot-plugin: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
