#!/usr/bin/python3
"""Differential IMAP test: the same scripted conversations against Dovecot with rbox and with
Maildir; the normalised transcripts must be identical.

Run by e2e/tests/imap-differential.sh, which starts three Dovecots (rbox, Maildir, sdbox) and
exports RBOX_DIFF_{RBOX,MAILDIR,SDBOX}_PORT and RBOX_POOL. sdbox shares rbox's mailbox list
layout: where Maildir++ answers differently because of its layout, rbox must answer as sdbox.
Every conversation logs in as a fresh user (the same name on all servers), so all start from
an empty account. What is normalised and why, and every known difference, is in
docs/dovecot-differential.md.

RBOX_DIFF_ONLY=name1,name2 runs only those conversations; RBOX_DIFF_SHOW=1 prints the rbox
transcripts. Last line: "imap-differential: N passed, M failed, K expected failures"
(conversations).
"""
import concurrent.futures
import datetime
import difflib
import hashlib
import os
import re
import select
import socket
import subprocess
import sys
import time
import traceback

PORTS = {
    "rbox": int(os.environ.get("RBOX_DIFF_RBOX_PORT", "0")),
    "maildir": int(os.environ.get("RBOX_DIFF_MAILDIR_PORT", "0")),
    # Dovecot's own sdbox: the same list layout ("fs") as rbox. Where Maildir answers
    # differently because of its Maildir++ layout, rbox must answer as sdbox does.
    "sdbox": int(os.environ.get("RBOX_DIFF_SDBOX_PORT", "0")),
}
RBOX_POOL = os.environ.get("RBOX_POOL", "")  # rbox's mail pool: objects are counted per user
RUN = os.environ.get("RBOX_RUN", f"{int(time.time())}-{os.getpid()}")
TIMEOUT = 30.0
BIG_LITERAL = 16384  # literals larger than this are shown as length + hash in transcripts

# --------------------------------------------------------------------------------------------
# Known differences: commands whose answer differs between Maildir and rbox for a reason that
# is not a bug of the plugin, (conversation, regex on the client's command line, reason).
# For a listed command that differs, rbox must answer exactly as sdbox (Dovecot's own storage
# with rbox's list layout) does, or, where a 4th element is given, match that regex; a listed command that answers alike on rbox and Maildir fails
# the run (the list must stay true). docs/dovecot-differential.md explains each entry.
NOSELECT = ("fs layout: a parent that exists only as a directory is \\Noselect; Maildir++ has no "
            "directories, so the same parent is \\NonExistent")
MARKED = ("fs layout: where LIST looks into the mailboxes (RETURN options, REMOTE) it also reports "
          "\\Marked (new mail) or \\UnMarked; Maildir++ reports neither")
LAZY_INBOX = ("fs layout: INBOX is created on first use, so before that CREATE INBOX succeeds and "
              "LIST (SUBSCRIBED) marks it \\NonExistent; Maildir++'s INBOX is the root Maildir")
TRAILING = ("fs layout: CREATE with a trailing separator makes only a directory (\\Noselect); "
            "Maildir++ makes a mailbox")
DIR_DELETE = ("fs layout: a \\Noselect parent is a directory: DELETE refuses it while it has "
              "children and removes it when empty; in Maildir++ it does not exist")
RENAME_INBOX = ("RENAME INBOX (RFC 3501 6.3.5: INBOX's mail moves, an empty INBOX stays) is supported "
                "by Dovecot for fs layout, refused for Maildir++ (NO [CANNOT]); later answers follow")
DOT = ("Maildir++ stores the hierarchy with '.', so a '.' in a mailbox name is refused "
       "(NO [CANNOT]); fs layout allows it")
RENAMED_BODY = ("a body fetched after another session renamed the selected mailbox: Maildir and "
                "sdbox find no file under the old path and answer without it (* 2 FETCH (UID 2)); "
                "rbox's objects do not depend on the mailbox name, so it still answers with the "
                "body; then all three say BYE (Mailbox was deleted under us)")
KNOWN_DIFFERENCES = [
    ("list_variants", r'LIST .*RETURN \((CHILDREN|SPECIAL-USE)\)', NOSELECT),
    ("list_variants", r'RETURN \(.*STATUS|LIST \(REMOTE\)', MARKED),
    ("create_delete_rename", r"CREATE INBOX", LAZY_INBOX),
    ("create_delete_rename", r'LIST "" "\*"', TRAILING),
    ("create_delete_rename", r"DELETE (Work/Sub|Archive/2024|Archive)$", DIR_DELETE),
    ("rename_inbox", r"RENAME INBOX|LIST|STATUS|SELECT|FETCH|APPEND", RENAME_INBOX),
    ("subscriptions", r"LIST \(SUBSCRIBED", LAZY_INBOX),
    ("utf7_names", r"RETURN \(STATUS", MARKED),
    ("users_in_one_process", r"RETURN \(CHILDREN\)", MARKED),
    # rbox differs from both references: the answer rbox must give is the 4th element.
    ("renamed_under_a_session", r"FETCH 2 \(BODY.PEEK\[TEXT\]<0.20>\)", RENAMED_BODY,
     r"\* 2 FETCH \(BODY\[TEXT\]<0> \{20\}\n.*\n.*\n.*\* BYE FETCH failed: Mailbox was deleted under us"),
    ("names_dots", r'"(a\.b|\.hidden|dots\.\.two)"|LIST "" "\*"', DOT),
]

# Plugin bugs not yet fixed: the conversation still asserts Maildir's behaviour; a failure is
# counted as expected (and printed), a pass fails the run until the entry is removed.
EXPECTED_FAILURES = {}


# --------------------------------------------------------------------------------------------
# Wire level: one connection, tagged commands, literals both ways, a recorded transcript.


class Lit:
    """A client literal: {N} (synchronising), {N+} (LITERAL+) or ~{N} (literal8, BINARY)."""

    def __init__(self, data, plus=False, binary=False):
        self.data = data
        self.plus = plus
        self.binary = binary

    def marker(self):
        return ("~" if self.binary else "") + "{%d%s}" % (len(self.data), "+" if self.plus else "")


LITERAL_AT_END = re.compile(rb"~?\{(\d+)\}\r\n$")


class Line:
    """One server response line; literals kept apart from the text around them."""

    def __init__(self, texts, literals):
        self.texts = texts  # len(literals) + 1 byte strings
        self.literals = literals

    @property
    def raw(self):
        out = bytearray(self.texts[0])
        for lit, text in zip(self.literals, self.texts[1:]):
            out += lit + text
        return bytes(out)

    @property
    def head(self):
        return self.texts[0].decode("utf-8", "backslashreplace")


class Resp:
    def __init__(self, lines, tagged):
        self.lines = lines
        self.tagged = tagged

    @property
    def status(self):
        return self.tagged.head.split(" ", 2)[1] if self.tagged else None

    def text(self):
        return b"\r\n".join(x.raw for x in self.lines + [self.tagged] if x).decode("utf-8", "replace")

    def find(self, pattern, group=1):
        m = re.search(pattern, self.text())
        assert m, f"no {pattern!r} in {self.text()!r}"
        return m.group(group)


def show_bytes(data):
    """Transcript lines of a literal: escaped control characters, bare LF marked."""
    if len(data) > BIG_LITERAL:
        return [f"<{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}>"]
    out = []
    for chunk in data.split(b"\n"):
        crlf = chunk.endswith(b"\r")
        text = (chunk[:-1] if crlf else chunk).decode("utf-8", "backslashreplace")
        text = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", lambda m: "\\x%02x" % ord(m.group()), text)
        out.append(text + ("" if crlf else "<LF>"))
    out[-1] = out[-1][: -len("<LF>")] if out[-1].endswith("<LF>") else out[-1]  # no newline at the end
    return out


class Conn:
    def __init__(self, session, name):
        self.s = session
        self.name = name
        self.n = 0
        self.buf = b""
        self.sock = socket.create_connection(("127.0.0.1", session.port), timeout=TIMEOUT)
        self.record_line(self.read_line())  # greeting

    # ---- reading
    def fill(self, timeout):
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return False
        data = self.sock.recv(65536)
        if not data:
            raise EOFError(f"{self.name}: connection closed by the server")
        self.buf += data
        return True

    def read_raw_line(self, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0 or not self.fill(left):
                return None
        i = self.buf.index(b"\r\n") + 2
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self.fill(TIMEOUT):
                raise TimeoutError(f"{self.name}: literal of {n} bytes not received")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_line(self, timeout=TIMEOUT):
        texts, literals = [], []
        while True:
            line = self.read_raw_line(timeout if not texts else TIMEOUT)
            if line is None:
                if texts:
                    raise TimeoutError(f"{self.name}: response line cut short")
                return None
            m = LITERAL_AT_END.search(line)
            if not m:
                texts.append(line[:-2])
                return Line(texts, literals)
            texts.append(line[:-2])
            literals.append(self.read_exact(int(m.group(1))))

    # ---- recording
    def record_line(self, line):
        if line is None:
            raise TimeoutError(f"{self.name}: no answer within {TIMEOUT} s")
        rec = self.s.record
        rec(f"{self.name}< {line.head}")
        for lit, text in zip(line.literals, line.texts[1:]):
            for piece in show_bytes(lit):
                rec(f"{self.name}<   | {piece}")
            rec(f"{self.name}<   {text.decode('utf-8', 'backslashreplace')}")
        return line

    # ---- writing
    def send(self, data):
        self.sock.sendall(data)

    def next_tag(self):
        self.n += 1
        return f"{self.name}{self.n}"

    def __call__(self, *parts):
        """Send one tagged command (str parts and Lit literals); answer until the tagged line."""
        tag = self.next_tag()
        text = tag + " "
        shown = text
        lines = []
        for part in parts:
            if isinstance(part, Lit):
                text += part.marker()
                shown += part.marker()
                self.send(text.encode() + b"\r\n")
                text = ""
                self.s.record(f"{self.name}> {shown}")
                for piece in show_bytes(part.data):
                    self.s.record(f"{self.name}>   | {piece}")
                shown = ""
                if not part.plus:
                    cont = self.wait_continuation(tag, lines)
                    if cont is not None:  # refused before the literal
                        return Resp(lines, cont)
                self.send(part.data)
            else:
                text += part
                shown += part
        self.send(text.encode() + b"\r\n")
        self.s.record(f"{self.name}> {shown}")
        return self.read_until_tagged(tag, lines)

    def wait_continuation(self, tag, lines):
        while True:
            line = self.record_line(self.read_line())
            if line.head.startswith("+"):
                return None
            if line.head.startswith(tag + " "):
                return line
            lines.append(line)

    def read_until_tagged(self, tag, lines=None):
        lines = [] if lines is None else lines
        while True:
            line = self.record_line(self.read_line())
            if line.head.startswith(tag + " "):
                return Resp(lines, line)
            lines.append(line)

    def pipeline(self, *commands):
        """Send several commands (text, LITERAL+ literals only) in one write; all the answers."""
        tags, data = [], b""
        for parts in commands:
            parts = (parts,) if isinstance(parts, str) else parts
            tag = self.next_tag()
            tags.append(tag)
            line = tag + " "
            for part in parts:
                if isinstance(part, Lit):
                    assert part.plus, "pipelined literals must be LITERAL+"
                    self.s.record(f"{self.name}> {line}{part.marker()}")
                    for piece in show_bytes(part.data):
                        self.s.record(f"{self.name}>   | {piece}")
                    data += (line + part.marker()).encode() + b"\r\n" + part.data
                    line = ""
                else:
                    line += part
            self.s.record(f"{self.name}> {line}")
            data += line.encode() + b"\r\n"
        self.send(data)
        pending = set(tags)
        while pending:  # tagged answers may come in any order
            line = self.record_line(self.read_line())
            pending.discard(line.head.split(" ", 1)[0])

    # ---- IDLE
    def idle(self):
        self.idle_tag = self.next_tag()
        self.send(f"{self.idle_tag} IDLE\r\n".encode())
        self.s.record(f"{self.name}> {self.idle_tag} IDLE")
        self.wait_continuation(self.idle_tag, [])

    def wait_for(self, pattern, timeout=10.0):
        """Untagged lines until one matches; then whatever else arrives within a settle time."""
        deadline = time.time() + timeout
        while True:
            line = self.read_line(max(0.0, deadline - time.time()))
            if line is None:
                self.s.record(f"{self.name}! nothing matching {pattern!r} within {timeout} s")
                return
            self.record_line(line)
            if re.search(pattern, line.head):
                break
        while True:
            line = self.read_line(0.5)
            if line is None:
                return
            self.record_line(line)

    def done(self):
        self.send(b"DONE\r\n")
        self.s.record(f"{self.name}> DONE")
        return self.read_until_tagged(self.idle_tag)

    def close(self):
        self.sock.close()


class Session:
    """One conversation against one server: its transcript and its connections."""

    def __init__(self, kind, user):
        self.kind = kind
        self.port = PORTS[kind]
        self.user = user
        self.users = {user}
        self.transcript = []
        self.conns = []

    def record(self, line):
        self.transcript.append(line)

    def connect(self, name="a"):
        c = Conn(self, name)
        self.conns.append(c)
        return c

    def login(self, name="a", user=None):
        """A logged-in connection, as the conversation's user or as another one."""
        user = user or self.user
        self.users.add(user)
        c = self.connect(name)
        r = c(f"LOGIN {user} pass")
        assert r.status == "OK", r.text()
        return c

    def close(self):
        for c in self.conns:
            c.close()


# --------------------------------------------------------------------------------------------
# Normalisation: only what differs between two runs of one server as well.

KEEPALIVE = re.compile(r"^\w+< \* OK Still here$")  # IDLE keepalive: when it comes is timing
TIMING = re.compile(r" \(\d+\.\d+ \+ \d+\.\d+(?: \+ \d+\.\d+)? secs\)")
IMAP_DATE = re.compile(r'"(\s?\d{1,2}-[A-Z][a-z]{2}-\d{4} \d\d:\d\d:\d\d [+-]\d{4})"')
UIDVALIDITY_SOURCES = re.compile(r"(?:UIDVALIDITY[ =]|APPENDUID |COPYUID )(\d+)")
GUID_SOURCES = re.compile(r"X-GUID ([^\s)]+)")
HEX_GUID = re.compile(r"\b[0-9a-f]{32}\b")


class Ordinals:
    """Map each distinct value to <kind#n>, n in order of first appearance: equal stays equal."""

    def __init__(self, kind):
        self.kind = kind
        self.seen = {}

    def __call__(self, value):
        if value not in self.seen:
            self.seen[value] = f"<{self.kind}#{len(self.seen) + 1}>"
        return self.seen[value]


def near_now(imap_date):
    try:
        t = datetime.datetime.strptime(imap_date.strip(), "%d-%b-%Y %H:%M:%S %z")
    except ValueError:  # an invalid date the test sends on purpose
        return False
    return abs(time.time() - t.timestamp()) < 2 * 86400


def normalise_uidvalidity(text):
    """UIDVALIDITY values, numbered per user (two users may well share one value)."""
    uidv = Ordinals("UIDVALIDITY")
    users, lines = {}, []
    for line in text.split("\n"):
        conn = line.split(" ", 1)[0][:-1]
        login = re.match(r"^\w+> \w+\d+ LOGIN (\S+) pass$", line)
        if login:
            users[conn] = login.group(1)
        user = users.get(conn, "")
        values = set(UIDVALIDITY_SOURCES.findall(line)) | set(re.findall(r"QRESYNC \((\d+) ", line))
        for value in sorted(values, key=len, reverse=True):
            line = re.sub(rf"\b{value}\b", uidv((user, value)), line)
        lines.append(line)
    return "\n".join(lines)


def normalise(transcript):
    text = "\n".join(line for line in transcript if not KEEPALIVE.match(line))
    text = TIMING.sub(" (<time>)", text)
    # Dates the server chose (INTERNALDATE of an APPEND without a date, SAVEDATE): "now".
    text = IMAP_DATE.sub(lambda m: '"<now>"' if near_now(m.group(1)) else m.group(0), text)
    text = normalise_uidvalidity(text)
    guid = Ordinals("GUID")
    lines = []
    for line in text.split("\n"):
        if re.match(r"^\w+< ", line):  # the server's GUIDs; a command's "X-GUID" is the item name
            line = GUID_SOURCES.sub(lambda m: "X-GUID " + guid(m.group(1)), line)
            line = HEX_GUID.sub(lambda m: guid(m.group()), line)
        lines.append(line)
    return lines


# --------------------------------------------------------------------------------------------
# Mail corpus. Built with CRLF unless said otherwise; every date explicit.


def mail(subject, body="Hello.\r\n", frm="Alice <alice@example.org>", to="Bob <bob@example.org>",
         date="Mon, 01 Jan 2024 12:00:00 +0000", extra="", msgid=None, lf=False):
    msgid = msgid or f"<{re.sub(r'[^A-Za-z0-9]', '', subject)[:24] or 'x'}@example.org>"
    m = (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\n"
         f"Message-ID: {msgid}\r\n{extra}MIME-Version: 1.0\r\n"
         f"Content-Type: text/plain; charset=us-ascii\r\n\r\n{body}")
    data = m.encode()
    return data.replace(b"\r\n", b"\n") if lf else data


PLAIN = mail("plain text", "Line one.\r\nLine two is a little longer.\r\n\r\nThird paragraph.\r\n",
             extra="Cc: Carol <carol@example.org>\r\nX-Priority: 3\r\n")

MULTIPART = (
    b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n"
    b"Subject: multipart mixed\r\nDate: Tue, 02 Jan 2024 08:30:00 +0100\r\n"
    b"Message-ID: <multi@example.org>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n"
    b"This is a multi-part message in MIME format.\r\n"
    b"--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n"
    b"--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln, plain.\r\n"
    b"--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b"<p>Greetings, <b>html</b>.</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\nContent-Type: application/octet-stream; name=\"blob.bin\"\r\n"
    b"Content-Disposition: attachment; filename=\"blob.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4v\r\n"
    b"--outer\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n"
    b"Content-Description: latin-1 part\r\n\r\n"
    b"Caf\xe9 cr\xe8me.\r\n"
    b"--outer--\r\n"
)

NESTED = (
    b"From: Carol <carol@example.org>\r\nTo: Bob <bob@example.org>\r\n"
    b"Subject: Fwd: nested message\r\nDate: Wed, 03 Jan 2024 10:00:00 -0500\r\n"
    b"Message-ID: <nested@example.org>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
    b"--b1\r\nContent-Type: text/plain\r\n\r\nSee the attached message.\r\n"
    b"--b1\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: Dave <dave@example.org>\r\nTo: Carol <carol@example.org>\r\nSubject: inner\r\n"
    b"Date: Sun, 31 Dec 2023 23:59:59 +0000\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n"
    b"--b2\r\nContent-Type: text/plain\r\n\r\ninner plain\r\n"
    b"--b2\r\nContent-Type: text/enriched\r\n\r\n<bold>inner enriched</bold>\r\n"
    b"--b2--\r\n"
    b"--b1--\r\n"
)

UTF8 = (
    "From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.org>\r\nTo: bob@example.org\r\n"
    "Subject: =?UTF-8?Q?=C3=9Cber_gr=C3=B6=C3=9Fe_Stra=C3=9Fen?=\r\n"
    "Date: Thu, 04 Jan 2024 09:15:00 +0000\r\nMessage-ID: <utf8@example.org>\r\nMIME-Version: 1.0\r\n"
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    "Grüße aus Köln – die Straßenbahn fährt.\r\nΚαλημέρα. 日本語のテキスト。\r\n"
).encode()

BASE64_TEXT = (
    b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: base64 body\r\n"
    b"Date: Fri, 05 Jan 2024 07:00:00 +0000\r\nMessage-ID: <b64@example.org>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"VGhpcyBib2R5IGlzIGJhc2U2NCBlbmNvZGVkLgpTZWNvbmQgbGluZSB3aXRoIMOcbWxhdXRzLgo=\r\n"
)

BINARY_MAIL = (
    b"From: alice@example.org\r\nTo: bob@example.org\r\nSubject: binary part\r\n"
    b"Date: Fri, 05 Jan 2024 07:30:00 +0000\r\nMessage-ID: <bin@example.org>\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"bb\"\r\n\r\n"
    b"--bb\r\nContent-Type: text/plain\r\n\r\ntext first\r\n"
    b"--bb\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n"
    b"\x00\x01\x02 binary \xff\xfe\x00 data\r\n"
    b"--bb--\r\n"
)


def large_mail():
    lines = [f"{i:06d} the quick brown fox jumps over the lazy dog, line of a large mail" for i in range(16000)]
    lines[15990] = "015990 needle-in-the-haystack"
    return mail("large mail", "\r\n".join(lines) + "\r\n", date="Sat, 06 Jan 2024 06:00:00 +0000")


THREAD = [
    mail("project kickoff", msgid="<t1@example.org>", date="Mon, 08 Jan 2024 09:00:00 +0000",
         frm="Zoe <zoe@example.org>"),
    mail("Re: project kickoff", msgid="<t2@example.org>", date="Mon, 08 Jan 2024 10:00:00 +0000",
         extra="In-Reply-To: <t1@example.org>\r\nReferences: <t1@example.org>\r\n", frm="Bob <bob@example.org>"),
    mail("unrelated", msgid="<u1@example.org>", date="Mon, 08 Jan 2024 10:30:00 +0000",
         frm="Mallory <mallory@example.org>"),
    mail("Re: Re: project kickoff", msgid="<t3@example.org>", date="Mon, 08 Jan 2024 11:00:00 +0000",
         extra="In-Reply-To: <t2@example.org>\r\nReferences: <t1@example.org> <t2@example.org>\r\n"),
    mail("RE: project kickoff", msgid="<t4@example.org>", date="Mon, 08 Jan 2024 09:30:00 +0000",
         extra="References: <t1@example.org>\r\n", frm="Carol <carol@example.org>"),
    mail("Fwd: unrelated", msgid="<u2@example.org>", date="Tue, 09 Jan 2024 08:00:00 +0000",
         frm="alice@example.org"),
    mail("zebra", msgid="<z1@example.org>", date="Sun, 07 Jan 2024 23:00:00 +0000",
         frm="Aaron <aaron@example.org>", body="short\r\n"),
]


def append(c, box, data, flags="", date=None, **lit):
    opts = (f"({flags}) " if flags is not None else "") + (f'"{date}" ' if date else "")
    return c(f"APPEND {box} {opts}", Lit(data, **lit))


def fill(c, box="INBOX"):
    """A mailbox with the whole corpus at UIDs 1-6, each with its own flags and date."""
    append(c, box, PLAIN, r"\Seen", "01-Jan-2024 12:00:00 +0000")
    append(c, box, MULTIPART, r"\Flagged $Label1", "02-Jan-2024 08:30:00 +0100")
    append(c, box, NESTED, "", "03-Jan-2024 10:00:00 -0500")
    append(c, box, UTF8, r"\Answered \Seen", "04-Jan-2024 09:15:00 +0000")
    append(c, box, BASE64_TEXT, r"\Draft", "05-Jan-2024 07:00:00 +0000")
    append(c, box, mail("bare LF", "one\ntwo\n", lf=True), "$Forwarded", "05-Jan-2024 08:00:00 +0000")


# --------------------------------------------------------------------------------------------
# Conversations. Each takes a Session; everything it sends is the same on both servers.


def conv_capability_login(s):
    a = s.connect()
    a("CAPABILITY")
    a("NOOP")
    a(r'ID ("name" "imap-differential" "version" "1")')
    a(f"LOGIN {s.user} wrong")  # static passdb: wrong password fails
    a(f"LOGIN {s.user} pass")
    a("CAPABILITY")
    a("NAMESPACE")
    a("ID NIL")
    a("ENABLE CONDSTORE")
    a("NOOP")
    a("CHECK")
    a("LOGOUT")


def conv_list_variants(s):
    a = s.login()
    for box in ["Work", "Work/Projects", "Work/Projects/2024", "Archive", "Sent", "Trash",
                "Drafts", "Zeta/Deep/Deeper", "&AMQ-rger"]:
        a(f'CREATE "{box}"')
    a('LIST "" ""')
    a('LIST "" "*"')
    a('LIST "" "%"')
    a('LIST "" "Work/%"')
    a('LIST "Work/" "%"')
    a('LIST "" "*j*"')
    a('LIST "" "INBOX"')
    a('LIST "" "inbox"')
    a('LIST "" ("INBOX" "Work" "Nope")')
    a('LIST "" "*" RETURN (CHILDREN)')
    a('LIST "" "%" RETURN (CHILDREN)')
    a('LIST (SPECIAL-USE) "" "*"')
    a('LIST "" "*" RETURN (SPECIAL-USE)')
    a('SUBSCRIBE "Work/Projects"')
    a('SUBSCRIBE "Archive"')
    a('LSUB "" "*"')
    a('LSUB "" "%"')
    a('LIST (SUBSCRIBED) "" "*"')
    a('LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"')
    a('LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)')
    append(a, "Work", PLAIN, r"\Seen", "01-Jan-2024 12:00:00 +0000")
    append(a, "Work", NESTED, "", "03-Jan-2024 10:00:00 -0500")
    a('LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT UNSEEN SIZE))')
    a('LIST "" "W%" RETURN (SUBSCRIBED CHILDREN STATUS (MESSAGES RECENT))')
    a('LIST (REMOTE) "" "*"')
    a("LIST")  # BAD


def conv_create_delete_rename(s):
    a = s.login()
    a("CREATE Work")
    a("CREATE Work")  # exists
    a("CREATE INBOX")
    a("CREATE Parent/")  # trailing separator: parent of future children
    a('LIST "" "*"')
    a("CREATE Work/Sub/Leaf")
    a('LIST "" "*"')
    a("DELETE Nope")
    a("DELETE Work/Sub")  # has children
    a("DELETE INBOX")
    append(a, "Work/Sub/Leaf", PLAIN, r"\Seen", "01-Jan-2024 12:00:00 +0000")
    a("RENAME Work Job")
    a('LIST "" "*"')
    a("STATUS Job/Sub/Leaf (MESSAGES UIDNEXT)")
    a("EXAMINE Job/Sub/Leaf")
    a("FETCH 1 (UID FLAGS BODY.PEEK[TEXT] X-MAILBOX)")
    a("UNSELECT")
    a("RENAME Job/Sub/Leaf Archive/2024/Leaf")
    a('LIST "" "*"')
    a("RENAME Nope Other")
    a("CREATE Other")
    a("RENAME Other Job")  # target exists
    a("RENAME Other Other")
    a("RENAME Other Other/Child")  # into itself
    a("DELETE Job/Sub")
    a("DELETE Job")
    a('LIST "" "*"')
    a("DELETE Archive/2024/Leaf")
    a("DELETE Archive/2024")
    a("DELETE Archive")
    a('LIST "" "*"')


def conv_rename_inbox(s):
    a = s.login()
    fill(a)
    a("SELECT INBOX")
    a("UID STORE 2 +FLAGS (Custom)")
    a("UNSELECT")
    a("RENAME INBOX Old")
    a('LIST "" "*"')
    a("STATUS INBOX (MESSAGES UIDNEXT)")
    a("STATUS Old (MESSAGES UIDNEXT UNSEEN)")
    a("SELECT Old")
    a("FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)")
    a("SELECT INBOX")
    append(a, "INBOX", PLAIN, r"\Seen", "01-Jan-2024 12:00:00 +0000")
    a("NOOP")
    a("FETCH 1:* (UID FLAGS)")


def conv_subscriptions(s):
    a = s.login()
    a("CREATE A")
    a("CREATE A/B")
    a("SUBSCRIBE A/B")
    a("SUBSCRIBE Ghost")  # need not exist
    a("SUBSCRIBE INBOX")
    a('LSUB "" "*"')
    a('LSUB "" "%"')
    a('LIST (SUBSCRIBED) "" "*"')
    a("DELETE A/B")
    a('LSUB "" "*"')
    a('LIST (SUBSCRIBED) "" "*"')
    a("UNSUBSCRIBE Ghost")
    a("UNSUBSCRIBE Ghost")
    a("UNSUBSCRIBE A/B")
    a('LSUB "" "*"')
    a("RENAME A Renamed")
    a("SUBSCRIBE Renamed")
    a('LSUB "" "*"')
    a('LIST (SUBSCRIBED) "" "*" RETURN (CHILDREN)')


STATUS_ALL = "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)"


def conv_status(s):
    a = s.login()
    a(f"STATUS INBOX {STATUS_ALL}")
    fill(a)
    a(f"STATUS INBOX {STATUS_ALL}")
    a("STATUS INBOX (MESSAGES)")
    a("STATUS INBOX (UNSEEN SIZE)")
    a("STATUS INBOX (X-SIZE)")
    a("STATUS Nope (MESSAGES)")
    a("STATUS INBOX (BOGUS)")
    a("STATUS INBOX ()")
    a("CREATE Empty")
    a(f"STATUS Empty {STATUS_ALL}")
    a("SELECT INBOX")
    a("STORE 1:2 +FLAGS (\\Deleted)")
    a(f"STATUS INBOX {STATUS_ALL}")  # on the selected mailbox
    a("EXPUNGE")
    a(f"STATUS INBOX {STATUS_ALL}")
    b = s.login("b")
    b(f"STATUS INBOX {STATUS_ALL}")


def conv_select_examine(s):
    a = s.login()
    a("SELECT INBOX")
    fill(a)
    a("NOOP")
    a("SELECT INBOX")
    a("EXAMINE INBOX")
    a("STORE 1 +FLAGS (\\Seen)")  # read-only
    a("FETCH 3 (FLAGS)")
    a("FETCH 3 BODY[TEXT]")  # no \Seen on EXAMINE
    a("FETCH 3 (FLAGS)")
    a("SELECT INBOX (CONDSTORE)")
    a("EXAMINE INBOX (CONDSTORE)")
    a("SELECT Nope")  # fails and deselects
    a("FETCH 1 FLAGS")
    a("SELECT INBOX")
    a("UNSELECT")
    a("UNSELECT")
    a("SELECT inbox")
    a("CLOSE")
    a("CLOSE")
    b = s.login("b")
    b("SELECT INBOX")  # \Recent went to the first session
    b("SELECT INBOX (BOGUS)")


def conv_append_variants(s):
    a = s.login()
    append(a, "INBOX", PLAIN, None)  # no flags, no date: INTERNALDATE is now
    append(a, "INBOX", PLAIN, r"\Seen \Flagged \Answered \Draft \Deleted")
    append(a, "INBOX", PLAIN, "$Forwarded $MDNSent Custom_1 custom2", "24-Dec-2023 23:59:59 -0800")
    append(a, "INBOX", PLAIN, "", " 1-Feb-2024 00:00:00 +1400")
    append(a, "INBOX", PLAIN, "", "29-Feb-2024 12:34:56 +0530", plus=True)
    append(a, "INBOX", UTF8, r"\Seen", "04-Jan-2024 09:15:00 +0000")
    append(a, "INBOX", PLAIN, r"\Recent")  # not allowed
    append(a, "INBOX", PLAIN, "", "31-Feb-2024 12:00:00 +0000")  # bad date
    append(a, "INBOX", PLAIN, r"\Bogus")
    append(a, "Nope", PLAIN, r"\Seen")  # TRYCREATE
    append(a, "INBOX", b"")  # empty
    append(a, "INBOX", b"Subject: headers only\r\n")
    append(a, "INBOX", b"no header at all, just text\r\n")
    append(a, "INBOX", b"Subject: no final newline\r\n\r\nbody without CRLF")
    a("SELECT INBOX")
    a("FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)")
    a("FETCH 8:* (BODY[])")
    a("STATUS INBOX (MESSAGES UIDNEXT SIZE)")
    append(a, "INBOX", PLAIN, r"\Seen")  # into the selected mailbox
    a("NOOP")
    a("FETCH * (UID FLAGS)")


def conv_multiappend(s):
    a = s.login()
    a("APPEND INBOX (\\Seen) \"01-Jan-2024 12:00:00 +0000\" ", Lit(THREAD[0]),
      " (\\Flagged) ", Lit(THREAD[1]), " ", Lit(THREAD[2], plus=True),
      " (Kw1 Kw2) \"09-Jan-2024 08:00:00 +0000\" ", Lit(THREAD[3]))
    a("STATUS INBOX (MESSAGES UIDNEXT)")
    # The third mail has a bad date: nothing of the command is saved.
    a("APPEND INBOX ", Lit(THREAD[4]), " ", Lit(THREAD[5]), ' () "32-Jan-2024 00:00:00 +0000" ', Lit(THREAD[6]))
    a("STATUS INBOX (MESSAGES UIDNEXT)")
    a("CREATE Box")
    a("APPEND Box ", Lit(THREAD[4], plus=True), " ", Lit(THREAD[5], plus=True))
    a("SELECT INBOX")
    a("FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE)")
    a("SELECT Box")
    a("FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")


def conv_catenate(s):
    a = s.login()
    fill(a)
    uidv = a("STATUS INBOX (UIDVALIDITY)").find(r"UIDVALIDITY (\d+)")
    a("CREATE Drafts")
    a("APPEND Drafts (\\Draft) CATENATE (TEXT ", Lit(b"Subject: catenated\r\nFrom: x@example.org\r\n\r\n"),
      f' URL "/INBOX;UIDVALIDITY={uidv}/;UID=1/;SECTION=TEXT")')
    a("APPEND Drafts CATENATE (URL \"/INBOX/;UID=2/;SECTION=HEADER\" TEXT ",
      Lit(b"Forwarded part follows.\r\n"), ' URL "/INBOX/;UID=2/;SECTION=1.1" TEXT ', Lit(b"\r\n-- end\r\n"), ")")
    a('APPEND Drafts CATENATE (URL "/INBOX/;UID=1" URL "/INBOX/;UID=3/;SECTION=2")')  # a whole message + a message part
    a('APPEND Drafts CATENATE (URL "/INBOX/;UID=1/;SECTION=HEADER" URL "/INBOX/;UID=1/;SECTION=TEXT/;PARTIAL=5.9")')
    a('APPEND Drafts CATENATE (URL "/INBOX/;UID=99/;SECTION=TEXT")')  # BADURL
    a('APPEND Drafts CATENATE (URL "/INBOX;UIDVALIDITY=1/;UID=1")')  # wrong UIDVALIDITY
    a('APPEND Drafts CATENATE (URL "/Nope/;UID=1")')
    a("APPEND Drafts CATENATE (TEXT ", Lit(b"Subject: a\r\n\r\n"), ") CATENATE (TEXT ", Lit(b"Subject: b\r\n\r\nb\r\n"), ")")
    a("SELECT Drafts")
    a("FETCH 1:* (UID FLAGS RFC822.SIZE BODY[])")
    a("FETCH 2 (BODYSTRUCTURE)")


def conv_fetch_simple(s):
    a = s.login()
    fill(a)
    a("SELECT INBOX")
    for items in [
        "FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY", "UID",
        "FAST", "ALL", "FULL", "(FLAGS UID RFC822.SIZE)", "RFC822.HEADER", "BODY.PEEK[HEADER]",
        "BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)]", "BODY.PEEK[HEADER.FIELDS (X-PRIORITY CC Nope)]",
        "BODY.PEEK[HEADER.FIELDS.NOT (FROM SUBJECT DATE MESSAGE-ID)]", "BODY.PEEK[TEXT]",
        "BODY.PEEK[]<0.20>", "BODY.PEEK[]<10.1>", "BODY.PEEK[TEXT]<5.10>", "BODY.PEEK[]<100000.10>",
        "BODY.PEEK[HEADER.FIELDS (SUBJECT)]<3.5>", "BODY.PEEK[1]", "BODY.PEEK[1.MIME]", "PREVIEW",
        "X-MAILBOX", "SAVEDATE", "(BINARY.PEEK[] BINARY.SIZE[])",
    ]:
        a(f"FETCH 1 {items}")
    a("FETCH 1 (FLAGS)")
    a("FETCH 1 RFC822.TEXT")  # sets \Seen... already
    a("FETCH 4 (FLAGS BODY[TEXT])")  # sets \Seen on an unseen one: FLAGS in the answer
    a("FETCH 3 RFC822")
    a("FETCH 3 (FLAGS)")
    a("FETCH 1:* (UID RFC822.SIZE FLAGS)")
    a("FETCH 2,4:5 (UID INTERNALDATE)")
    a("FETCH *:4 UID")
    a("UID FETCH 2:4 (FLAGS)")
    a("UID FETCH 100:* (FLAGS)")  # the last one
    a("UID FETCH 100:200 (FLAGS)")
    a("FETCH 1 (BODY[HEADER.FIELDS ()])")  # BAD
    a("FETCH 1 (NOSUCHITEM)")
    a("FETCH 99 FLAGS")
    a("FETCH 0 FLAGS")
    a("FETCH 1:x FLAGS")


def conv_fetch_multipart(s):
    a = s.login()
    fill(a)
    a("SELECT INBOX")
    for items in ["BODYSTRUCTURE", "BODY", "ENVELOPE"]:
        a(f"FETCH 2:3 {items}")
    for section in ["1", "1.MIME", "1.1", "1.1.MIME", "1.2", "2", "2.MIME", "3", "3.MIME", "4", "1.3",
                    "HEADER", "TEXT", "1.HEADER", "2.HEADER"]:
        a(f"FETCH 2 BODY.PEEK[{section}]")
    for section in ["1", "2", "2.HEADER", "2.TEXT", "2.1", "2.2", "2.1.MIME", "2.2.MIME", "2.MIME"]:
        a(f"FETCH 3 BODY.PEEK[{section}]")
    a("FETCH 2 (BINARY.PEEK[1.1] BINARY.SIZE[1.1])")  # quoted-printable decoded
    a("FETCH 2 (BINARY.PEEK[2] BINARY.SIZE[2])")  # base64 decoded: NULs, literal8
    a("FETCH 2 (BINARY.PEEK[2]<4.8>)")
    a("FETCH 2 (BINARY.PEEK[3] BINARY.SIZE[3])")
    a("FETCH 5 (BINARY.PEEK[1] BINARY.SIZE[1] BINARY.PEEK[] BINARY.SIZE[])")  # base64 body
    a("FETCH 4 (BINARY.PEEK[1] BINARY.SIZE[1] BODY.PEEK[1])")  # 8bit UTF-8
    a("FETCH 2 (BINARY.PEEK[1])")  # a multipart: no BINARY
    a("FETCH 2:5 (BODY.PEEK[1]<0.10> BODY.PEEK[TEXT]<2.3>)")
    a("FETCH 2 (BODY[1.1])")  # sets \Seen
    a("FETCH 2 FLAGS")


def conv_fetch_crlf_lf(s):
    a = s.login()
    body = "first line\r\nsecond line\r\n\r\nafter blank\r\n"
    append(a, "INBOX", mail("crlf", body), "", "10-Jan-2024 10:00:00 +0000")
    append(a, "INBOX", mail("crlf", body, lf=True), "", "10-Jan-2024 10:00:00 +0000")
    append(a, "INBOX", b"Subject: mixed\r\nX-A: 1\n\r\nbody crlf\r\nbody lf\nend", "", "10-Jan-2024 10:00:00 +0000")
    append(a, "INBOX", b"Subject: lone CR\r\n\r\na\rb\r\n", "", "10-Jan-2024 10:00:00 +0000")
    a("SELECT INBOX")
    for items in ["RFC822.SIZE", "BODY.PEEK[]", "BODY.PEEK[HEADER]", "BODY.PEEK[TEXT]", "BODY.PEEK[TEXT]<5.15>",
                  "(BINARY.SIZE[] BINARY.SIZE[1])", "BODYSTRUCTURE", "BODY.PEEK[]<30.40>"]:
        a(f"FETCH 1:* {items}")
    a("SEARCH BODY \"second line\"")
    a("SEARCH LARGER 100 SMALLER 200")
    a("SORT (SIZE) US-ASCII ALL")
    a("STATUS INBOX (MESSAGES SIZE)")


def conv_fetch_large(s):
    a = s.login()
    big = large_mail()
    append(a, "INBOX", mail("small"), "", "01-Jan-2024 12:00:00 +0000")
    append(a, "INBOX", big, r"\Seen", "06-Jan-2024 06:00:00 +0000", plus=True)
    append(a, "INBOX", big.replace(b"\r\n", b"\n"), "", "06-Jan-2024 06:00:00 +0000")
    a("SELECT INBOX")
    a("FETCH 2:3 (RFC822.SIZE BINARY.SIZE[1] BODYSTRUCTURE)")
    a("FETCH 2:3 BODY.PEEK[]")
    a("FETCH 2 BODY.PEEK[]<0.120>")
    a("FETCH 3 BODY.PEEK[]<600000.200>")
    a("FETCH 2 BODY.PEEK[TEXT]<1100000.10>")
    a("FETCH 2 BODY.PEEK[TEXT]<1119900.200>")
    a("FETCH 3 BODY.PEEK[1]<1119900.200>")
    a("FETCH 2 BODY.PEEK[HEADER]")
    a("SEARCH BODY needle-in-the-haystack")
    a("SEARCH LARGER 1000000")
    a("SEARCH SMALLER 1000")
    a("STATUS INBOX (MESSAGES SIZE)")
    a("GETQUOTAROOT INBOX")


def load_search_corpus(a):
    fill(a)
    for i, m in enumerate(THREAD):
        flags = ["", r"\Seen", r"\Answered", r"\Flagged \Seen", "Urgent", r"\Deleted", r"\Seen Urgent"][i]
        append(a, "INBOX", m, flags, f"{8 + i // 3:02d}-Jan-2024 {9 + i}:00:00 +0000")


SEARCH_KEYS = [
    "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN", "UNSEEN", "UNANSWERED",
    "UNDELETED", "UNDRAFT", "UNFLAGGED", "KEYWORD Urgent", "KEYWORD $Label1", "UNKEYWORD Urgent",
    "KEYWORD nosuch", "FROM alice", "FROM \"Carol\"", "TO bob@example.org", "CC carol", "BCC nobody",
    "SUBJECT kickoff", "SUBJECT \"re: project\"", "HEADER Message-ID <t2@example.org>",
    "HEADER X-Priority 3", "HEADER References \"\"", "BODY paragraph", "BODY Greetings", "TEXT Dave",
    "TEXT example", "BODY \"attached message\"", "SINCE 05-Jan-2024", "BEFORE 04-Jan-2024", "ON 08-Jan-2024",
    "ON 2-Jan-2024", "SENTSINCE 08-Jan-2024", "SENTBEFORE 02-Jan-2024", "SENTON 03-Jan-2024", "LARGER 500",
    "SMALLER 300", "UID 2:4", "UID 5:*", "UID 1,3,100", "2:4", "*", "1:3 UNSEEN", "OR SEEN FLAGGED",
    "OR OR DRAFT DELETED ANSWERED", "NOT SEEN", "NOT OR SEEN DELETED", "(SEEN FLAGGED) OR DRAFT ANSWERED",
    "NOT (SINCE 08-Jan-2024 SMALLER 600)", "MODSEQ 1", "MODSEQ 8", "YOUNGER 3600", "OLDER 3600",
    "SUBJECT über", "FROM Jürgen", "BODY Straßenbahn", "TEXT 日本語",
]


def conv_search(s):
    a = s.login()
    load_search_corpus(a)
    a("SELECT INBOX")
    for key in SEARCH_KEYS:
        if any(ord(ch) > 127 for ch in key):
            head, word = key.split(" ", 1)
            a(f"SEARCH CHARSET UTF-8 {head} ", Lit(word.encode()))
        else:
            a(f"SEARCH {key}")
    a("UID SEARCH OR KEYWORD Urgent FLAGGED")
    a("SEARCH CHARSET US-ASCII SUBJECT plain")
    a("SEARCH CHARSET X-NOSUCH SUBJECT plain")  # BADCHARSET
    a("SEARCH NOSUCHKEY")
    a("SEARCH SINCE 2024-01-01")
    a("SEARCH (")


def conv_esearch(s):
    a = s.login()
    load_search_corpus(a)
    a("SELECT INBOX")
    a("SEARCH RETURN (MIN MAX COUNT) ALL")
    a("SEARCH RETURN (ALL) SEEN")
    a("SEARCH RETURN () UNSEEN")
    a("UID SEARCH RETURN (MIN MAX COUNT ALL) OR FLAGGED DRAFT")
    a("SEARCH RETURN (COUNT) KEYWORD nosuch")
    a("SEARCH RETURN (MIN) KEYWORD nosuch")
    a("SEARCH RETURN (SAVE) SUBJECT kickoff")
    a("FETCH $ (UID)")
    a("SEARCH $ SEEN")
    a("UID SEARCH RETURN (SAVE MIN) FROM alice")
    a("UID FETCH $ (FLAGS)")
    a("SEARCH RETURN (PARTIAL 1:2) ALL")
    a("SEARCH RETURN (BOGUS) ALL")
    a("SEARCH RETURN (MODSEQ) ALL")
    a("STORE 1 +FLAGS (\\Seen)")
    a("SEARCH RETURN (ALL) MODSEQ 1")


def conv_sort_thread(s):
    a = s.login()
    load_search_corpus(a)
    a("SELECT INBOX")
    for crit in ["ARRIVAL", "REVERSE ARRIVAL", "DATE", "REVERSE DATE", "SIZE", "REVERSE SIZE", "SUBJECT",
                 "REVERSE SUBJECT", "FROM", "TO", "CC", "DISPLAYFROM", "DISPLAYTO", "SUBJECT DATE",
                 "FROM REVERSE SIZE", "REVERSE FROM ARRIVAL"]:
        a(f"SORT ({crit}) UTF-8 ALL")
    a("SORT (DATE) UTF-8 SEEN")
    a("UID SORT (SUBJECT) UTF-8 UNDELETED")
    a("SORT RETURN (MIN MAX COUNT) (SIZE) UTF-8 ALL")
    a("SORT RETURN (ALL) (REVERSE DATE) UTF-8 SINCE 05-Jan-2024")
    a("SORT (NOSUCH) UTF-8 ALL")
    a("SORT (DATE) X-NOSUCH ALL")
    for algo in ["REFERENCES", "ORDEREDSUBJECT", "REFS"]:
        a(f"THREAD {algo} UTF-8 ALL")
        a(f"UID THREAD {algo} UTF-8 UNDELETED")
    a("THREAD NOSUCH UTF-8 ALL")


def conv_store(s):
    a = s.login()
    fill(a)
    a("SELECT INBOX (CONDSTORE)")
    a("STORE 1 +FLAGS (\\Flagged)")
    a("STORE 1:3 -FLAGS (\\Seen)")
    a("STORE 2 FLAGS (\\Answered Custom)")
    a("STORE 3:4 +FLAGS.SILENT (\\Deleted)")
    a("STORE 4 -FLAGS.SILENT (\\Deleted)")
    a("STORE 5 FLAGS ()")
    a("STORE 1:* +FLAGS ($Important NewKw)")
    a("SELECT INBOX")  # PERMANENTFLAGS now lists the new keywords
    a("UID STORE 1:3 -FLAGS (NewKw)")
    a("UID STORE 100 +FLAGS (\\Seen)")
    a("STORE 1 +FLAGS (\\Recent)")
    a("STORE 1 +FLAGS (\\Bogus)")
    a("STORE 1 FLAGS.NOPE (\\Seen)")
    a("FETCH 1:* (FLAGS MODSEQ)")
    a("STORE 1 +FLAGS (\\Seen)")
    a("STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Draft)")  # MODIFIED
    a("FETCH 1 (MODSEQ)")
    modseq = a("FETCH 2 (MODSEQ)").find(r"MODSEQ \((\d+)\)")
    a(f"STORE 2 (UNCHANGEDSINCE {modseq}) +FLAGS (\\Draft)")
    a(f"UID STORE 1:3 (UNCHANGEDSINCE {modseq}) -FLAGS (\\Draft)")
    a("FETCH 1:* (FLAGS MODSEQ)")
    a("STORE 1:* FLAGS.SILENT ()")
    a("FETCH 1:* FLAGS")
    a("UID STORE 1:* FLAGS (a b c d e f g h i j)")
    a("FETCH 1 FLAGS")
    a("UNSELECT")
    a("SELECT INBOX")


def conv_copy_move(s):
    a = s.login()
    fill(a)
    a("CREATE Dest")
    a("SELECT INBOX")
    a("STORE 1 +FLAGS (Kw1)")
    a("COPY 1:2 Dest")
    a("UID COPY 3,5 Dest")
    a("COPY 1 Nope")  # TRYCREATE
    a("COPY 99 Dest")
    a("UID COPY 99 Dest")
    a("COPY 6 INBOX")  # into itself
    a("NOOP")
    a("MOVE 1 Dest")
    a("UID MOVE 4:5 Dest")
    a("UID MOVE 99 Dest")
    a("MOVE 1 Nope")
    a("FETCH 1:* (UID FLAGS)")
    a(f"STATUS Dest {STATUS_ALL}")
    a("SELECT Dest")
    a("FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    a("MOVE 1:* INBOX")
    a("SELECT INBOX")
    a("FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE)")
    a("FETCH 1:* (BODY.PEEK[TEXT]<0.16>)")
    a("UID SEARCH ALL")


def conv_expunge_close(s):
    a = s.login()
    fill(a)
    a("SELECT INBOX")
    a("STORE 1,3 +FLAGS (\\Deleted)")
    a("EXPUNGE")
    a("FETCH 1:* (UID FLAGS)")
    a("STORE 1:* +FLAGS (\\Deleted)")
    a("UID EXPUNGE 5:6")
    a("UID EXPUNGE 100")
    a("FETCH 1:* (UID FLAGS)")
    a("UNSELECT")  # no expunge
    a("STATUS INBOX (MESSAGES)")
    a("EXAMINE INBOX")
    a("CLOSE")  # read-only: no expunge
    a("STATUS INBOX (MESSAGES)")
    a("SELECT INBOX")
    a("CLOSE")  # expunges silently
    a("STATUS INBOX (MESSAGES UIDNEXT)")
    a("EXPUNGE")  # not selected
    append(a, "INBOX", PLAIN, r"\Deleted")
    a("SELECT INBOX")
    a("EXPUNGE")
    a("EXPUNGE")
    a(f"STATUS INBOX {STATUS_ALL}")


def conv_two_sessions(s):
    a = s.login()
    b = s.login("b")
    a("SELECT INBOX")
    append(b, "INBOX", PLAIN, r"\Seen", "01-Jan-2024 12:00:00 +0000")
    append(b, "INBOX", MULTIPART, "", "02-Jan-2024 08:30:00 +0100")
    a("NOOP")
    b("SELECT INBOX")
    b("STORE 1 +FLAGS (\\Flagged Kw)")
    a("NOOP")
    b("STORE 2 +FLAGS (\\Deleted)")
    b("EXPUNGE")
    a("FETCH 1:* (UID FLAGS)")  # FETCH does not report the expunge
    a("NOOP")
    a("ENABLE CONDSTORE")
    b("STORE 1 -FLAGS (Kw)")
    a("NOOP")
    append(b, "INBOX", NESTED, "", "03-Jan-2024 10:00:00 -0500")
    b("NOOP")
    a("CHECK")
    b("COPY 1:2 INBOX")
    a("UID SEARCH ALL")  # SEARCH does not report new mail
    a("NOOP")
    b("UNSELECT")
    b("SELECT INBOX (QRESYNC)")  # BAD: QRESYNC not enabled on b
    b("ENABLE QRESYNC")
    b("SELECT INBOX")
    b("STORE 2:3 +FLAGS.SILENT (\\Deleted)")
    b("EXPUNGE")
    a("STORE 1 +FLAGS (\\Answered)")
    b("NOOP")
    b("FETCH 1:* (UID FLAGS)")
    a("LOGOUT")
    b("LOGOUT")


def conv_idle(s):
    a = s.login()
    b = s.login("b")
    append(b, "INBOX", PLAIN, r"\Seen", "01-Jan-2024 12:00:00 +0000")
    a("SELECT INBOX")
    a.idle()
    append(b, "INBOX", MULTIPART, "", "02-Jan-2024 08:30:00 +0100")
    a.wait_for(r"^\* 2 EXISTS")
    b("SELECT INBOX")
    b("STORE 1 +FLAGS (\\Flagged)")
    a.wait_for(r"^\* 1 FETCH")
    b("STORE 2 +FLAGS.SILENT (\\Deleted)")
    a.wait_for(r"^\* 2 FETCH")  # before the EXPUNGE: otherwise timing decides whether it comes
    b("EXPUNGE")
    a.wait_for(r"^\* 2 EXPUNGE")
    a.done()
    a("ENABLE QRESYNC")
    a("NOOP")
    a.idle()
    append(b, "INBOX", NESTED, "", "03-Jan-2024 10:00:00 -0500")
    a.wait_for(r"^\* 2 EXISTS")
    b("UID STORE 3 +FLAGS (\\Seen)")
    a.wait_for(r"FETCH")
    b("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a.wait_for(r"^\* 1 FETCH")
    b("EXPUNGE")
    a.wait_for(r"^\* VANISHED")
    a.done()
    a("FETCH 1:* (UID FLAGS MODSEQ)")


def conv_condstore(s):
    a = s.login()
    fill(a)
    a("STATUS INBOX (HIGHESTMODSEQ)")
    a("SELECT INBOX (CONDSTORE)")
    a("FETCH 1:* (MODSEQ)")
    a("STORE 2 +FLAGS (\\Seen)")
    a("STORE 4 -FLAGS (\\Seen)")
    hms = a("STATUS INBOX (HIGHESTMODSEQ)").find(r"HIGHESTMODSEQ (\d+)")
    a("STORE 5 +FLAGS (Kw)")
    a(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})")
    a("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1)")
    a(f"SEARCH MODSEQ {hms}")
    a(f'SEARCH MODSEQ "/flags/\\\\seen" all {hms}')
    a("SEARCH RETURN (ALL MODSEQ) MODSEQ 1")
    a("FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")  # BAD without QRESYNC
    a("STORE 1:3 +FLAGS (\\Deleted)")
    a("EXPUNGE")
    a("SELECT INBOX (CONDSTORE)")
    a("STATUS INBOX (HIGHESTMODSEQ MESSAGES)")


def conv_qresync(s):
    a = s.login()
    fill(a)
    a("ENABLE QRESYNC")
    r = a("SELECT INBOX")
    uidv = r.find(r"UIDVALIDITY (\d+)")
    hms = r.find(r"HIGHESTMODSEQ (\d+)")
    a("STORE 2 +FLAGS (\\Seen)")
    a("STORE 4 +FLAGS.SILENT (\\Deleted)")
    a("EXPUNGE")
    a("STORE 5 +FLAGS (Kw)")
    a("UNSELECT")
    a(f"SELECT INBOX (QRESYNC ({uidv} {hms}))")
    a("UNSELECT")
    a(f"SELECT INBOX (QRESYNC ({uidv} {hms} 1:6))")
    a("UNSELECT")
    a(f"SELECT INBOX (QRESYNC ({uidv} {hms} 1:10 (1,3,5 1,3,5)))")
    a("UNSELECT")
    a(f"EXAMINE INBOX (QRESYNC ({uidv} 1))")
    a(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    a("CLOSE")
    a(f"SELECT INBOX (QRESYNC (1 {hms}))")  # wrong UIDVALIDITY: a plain SELECT
    a("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a("EXPUNGE")  # VANISHED instead of EXPUNGE
    a("UID EXPUNGE 6")
    a("UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)")
    a("SELECT INBOX (QRESYNC (bogus))")


def conv_quota(s):
    a = s.login()
    a("GETQUOTAROOT INBOX")
    a('GETQUOTA "User quota"')
    fill(a)
    a("GETQUOTAROOT INBOX")
    a("CREATE Other")
    append(a, "Other", NESTED, "", "03-Jan-2024 10:00:00 -0500")
    a("GETQUOTAROOT Other")
    a('GETQUOTA "User quota"')
    a("SELECT INBOX")
    a("STORE 1:3 +FLAGS (\\Deleted)")
    a("EXPUNGE")
    a('GETQUOTA "User quota"')
    a('GETQUOTA "nosuch"')
    a("GETQUOTAROOT Nope")
    a('SETQUOTA "User quota" (STORAGE 10)')


def conv_namespace_id(s):
    a = s.login()
    a("NAMESPACE")
    a('ID ("name" "differential" "os" "linux")')
    a('LIST "" ""')
    a('LIST "" "/"')
    a('LIST "/" "*"')
    a('LIST "" "~*"')


def conv_errors(s):
    a = s.login()
    a("FETCH 1 FLAGS")  # not selected
    a("STORE 1 +FLAGS (\\Seen)")
    a("SEARCH ALL")
    a("NOSUCHCOMMAND")
    a("SELECT")
    a('SELECT "unterminated')
    a("SELECT Nope")
    a("EXAMINE Nope")
    a("STATUS Nope (MESSAGES)")
    a("DELETE Nope")
    append(a, "Nope", PLAIN)
    a('CREATE ""')
    a("CREATE a//b")
    a("CREATE " + "x" * 300)
    a(f'CREATE "{"/".join(["d"] * 20)}"')
    fill(a)
    a("SELECT INBOX")
    a("FETCH 7 FLAGS")
    a("FETCH 1:7 FLAGS")
    a("FETCH 0:1 FLAGS")
    a("FETCH * FLAGS")
    a("FETCH 4294967296 FLAGS")
    a("UID FETCH 0 FLAGS")
    a("COPY 1 ")
    a("STORE 1 +FLAGS")
    a("STORE 1 BOGUS (\\Seen)")
    a("SEARCH UID 1:x")
    a("SELECT INBOX")
    b = s.login("b")
    b("SELECT INBOX")
    b("STORE 2 +FLAGS.SILENT (\\Deleted)")
    b("EXPUNGE")
    a("FETCH 2 (BODY.PEEK[TEXT])")  # expunged by the other session, not yet seen here
    a("FETCH 2 (FLAGS)")
    a("STORE 2 +FLAGS (\\Seen)")
    a("NOOP")
    a("FETCH 2 (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    a("LOGOUT")
    c = s.connect("c")
    c("SELECT INBOX")  # not logged in
    c("LOGIN")
    c(f"LOGIN {s.user} pass")
    c("CREATE Victim")
    c("SELECT Victim")
    c("DELETE Victim")  # the selected mailbox
    c("NOOP")  # BYE


def conv_utf7_names(s):
    a = s.login()
    names = ["&AMQ-rger", "Caf&AOk-", "&ZeVnLIqe-", "Stra&AN8-e/Unter&APw-rdnung", "&2D3eAA-", "Tab&AAk-"]
    for n in names:
        a(f'CREATE "{n}"')
    a('CREATE "&Jjo"')  # invalid modified UTF-7
    a('CREATE "Äpfel"')  # 8-bit name without UTF8=ACCEPT
    a('LIST "" "*"')
    a('LIST "" "&AMQ-*"')
    a('LIST "" "Stra&AN8-e/%"')
    append(a, '"Caf&AOk-"', UTF8, r"\Seen", "04-Jan-2024 09:15:00 +0000")
    a('STATUS "Caf&AOk-" (MESSAGES UIDNEXT)')
    a('SELECT "Caf&AOk-"')
    a("FETCH 1 (FLAGS X-MAILBOX)")
    a('COPY 1 "&ZeVnLIqe-"')
    a('RENAME "Caf&AOk-" "Caf&AOk- cr&AOg-me"')
    a('LIST "" "Caf*"')
    a('SUBSCRIBE "&ZeVnLIqe-"')
    a('LSUB "" "*"')
    a('DELETE "&AMQ-rger"')
    a('LIST "" "*" RETURN (STATUS (MESSAGES))')


def conv_names_dots(s):
    """Names with '.' and other characters that file systems and layouts treat specially."""
    a = s.login()
    for n in ["with space", "per%cent", "star*", "tilde~", "new", "cur", "tmp", "a.b", ".hidden", "dots..two"]:
        a(f'CREATE "{n}"')
    a('LIST "" "*"')
    for n in ["with space", "new", "a.b"]:
        append(a, f'"{n}"', PLAIN, r"\Seen", "01-Jan-2024 12:00:00 +0000")
        a(f'STATUS "{n}" (MESSAGES)')


def conv_guids_savedate(s):
    """Mail GUIDs, mailbox GUIDs and save dates through copy, move, rename and re-create."""
    a = s.login()
    fill(a)
    a("CREATE Dest")
    a("STATUS INBOX (X-GUID)")
    a("STATUS Dest (X-GUID)")
    a("SELECT INBOX")
    a("FETCH 1:* (UID X-GUID SAVEDATE X-MAILBOX X-REAL-UID)")
    a("COPY 1:2 Dest")
    a("MOVE 3 Dest")
    a("SELECT Dest")
    a("FETCH 1:* (UID X-GUID SAVEDATE X-MAILBOX INTERNALDATE)")
    a("UNSELECT")
    a("RENAME Dest Renamed")
    a("STATUS Renamed (X-GUID MESSAGES UIDVALIDITY)")
    a("SELECT Renamed")
    a("FETCH 1:* (UID X-GUID X-MAILBOX BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    a("UNSELECT")
    a("DELETE Renamed")
    a("CREATE Renamed")
    a("STATUS Renamed (X-GUID MESSAGES UIDNEXT UIDVALIDITY)")
    a("SELECT INBOX")
    a("SEARCH SAVEDBEFORE 1-Jan-2000")
    a("SEARCH SAVEDSINCE 1-Jan-2000")
    a("FETCH 1 (SAVEDATE)")


def conv_binary_append(s):
    """APPEND with literal8 (BINARY): NUL bytes in a binary part; a NUL in a plain literal."""
    a = s.login()
    a('APPEND INBOX () "05-Jan-2024 07:30:00 +0000" ', Lit(BINARY_MAIL, binary=True))
    a('APPEND INBOX () "05-Jan-2024 07:30:00 +0000" ', Lit(BINARY_MAIL))  # NUL in a plain literal
    a('APPEND INBOX () ', Lit(mail("binary literal, 7bit mail"), binary=True))
    a("SELECT INBOX")
    a("FETCH 1:* (UID RFC822.SIZE BODYSTRUCTURE)")
    a("FETCH 1:* (BINARY.SIZE[1] BINARY.SIZE[2] BINARY.PEEK[2])")
    a("FETCH 1 (BODY.PEEK[2] BODY.PEEK[2.MIME])")
    a("FETCH 1 (BODY.PEEK[] BINARY.PEEK[])")
    a("SEARCH BODY binary")
    a("STATUS INBOX (MESSAGES SIZE)")


def conv_many_mails(s):
    """150 mails in one MULTIAPPEND (one transaction), then bulk copy, move, search, expunge."""
    a = s.login()
    parts = ["APPEND INBOX"]
    for i in range(150):
        flags = ["", "\\Seen", "\\Flagged", "Kw%d" % (i % 7)][i % 4]
        parts += [f' ({flags}) "{1 + i % 28:02d}-Feb-2024 {i % 24:02d}:00:00 +0000" ',
                  Lit(mail(f"bulk {i:03d}", f"bulk body {i} " + "x" * (i * 13) + "\r\n",
                           msgid=f"<bulk{i}@example.org>", date="Thu, 01 Feb 2024 00:00:00 +0000"), plus=True)]
    parts[1] = parts[1].lstrip()
    a(parts[0] + " ", *parts[1:])
    a(f"STATUS INBOX {STATUS_ALL}")
    a("CREATE Copy")
    a("SELECT INBOX")
    a("FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE)")
    a("FETCH 140:* (BODY.PEEK[TEXT])")
    a("UID COPY 1:* Copy")
    a("UID MOVE 100:* Copy")
    a("SEARCH KEYWORD Kw3")
    a("SEARCH BODY \"bulk body 42 \"")
    a("SORT (REVERSE SIZE) UTF-8 SINCE 20-Feb-2024")
    a("STORE 1:50 +FLAGS.SILENT (\\Deleted)")
    a("EXPUNGE")
    a(f"STATUS Copy {STATUS_ALL}")
    a("SELECT Copy")
    a("FETCH 245:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    a("SEARCH TEXT \"bulk 149\"")
    a("GETQUOTAROOT INBOX")


def conv_pipelining(s):
    """Many commands in one write. Dovecot runs some commands alongside the ones after them
    (APPEND, EXPUNGE, COPY with anything; FETCH with SEARCH), so their answers interleave by
    timing: only sequences Dovecot runs one after the other are pipelined here."""
    a = s.login()
    a("SELECT INBOX")
    a.pipeline(
        ("APPEND INBOX (\\Seen) ", Lit(PLAIN, plus=True)),
        ("APPEND INBOX () ", Lit(MULTIPART, plus=True)),
        ("APPEND INBOX (\\Deleted) ", Lit(NESTED, plus=True)),
        ("APPEND INBOX () ", Lit(UTF8, plus=True)),
    )
    a.pipeline(
        "FETCH 1:* (UID FLAGS RFC822.SIZE)",
        "STORE 2 +FLAGS (\\Answered)",
        "FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])",
        "STORE 3 -FLAGS (\\Deleted)",
        "NOOP",
    )
    # EXPUNGE, COPY and STATUS run alongside the commands after them: one at a time.
    a("EXPUNGE")
    a("CREATE P")
    a.pipeline("COPY 1:* P", "LOGOUT")


def conv_delete_recreate(s):
    """A mailbox deleted with its mail and created again is new: empty, a new UIDVALIDITY."""
    a = s.login()
    a("CREATE Box")
    fill(a, "Box")
    a(f"STATUS Box {STATUS_ALL}")
    a("SELECT Box")
    a("FETCH 1:* (UID FLAGS)")
    a("UNSELECT")
    a("DELETE Box")
    a("STATUS Box (MESSAGES)")
    a("CREATE Box")
    a(f"STATUS Box {STATUS_ALL}")
    a("SELECT Box")
    a("FETCH 1:* (UID FLAGS)")
    append(a, "Box", PLAIN, "", "01-Jan-2024 12:00:00 +0000")
    a("FETCH 1:* (UID FLAGS BODY.PEEK[TEXT])")
    a("SELECT INBOX")
    fill(a)
    a("CREATE Away")
    a("MOVE 1:3 Away")
    a("RENAME Away Back")
    a("CREATE Away")
    a("STATUS Away (MESSAGES)")
    a("SELECT Back")
    a("FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[TEXT]<0.20>)")
    a("SEARCH TEXT Dave")
    a("GETQUOTAROOT INBOX")


def conv_huge_mail(s):
    """A 6 MB mail with bare LF: sizes, partial fetches, the whole body, search."""
    a = s.login()
    body = "".join(f"{i:07d} {'abcdefghij' * 7}\n" for i in range(80000))
    data = (f"From: a@example.org\nSubject: huge\nDate: Sun, 07 Jan 2024 07:00:00 +0000\n"
            f"Message-ID: <huge@example.org>\n\n{body}last line\n").encode()
    append(a, "INBOX", data, r"\Seen", "07-Jan-2024 07:00:00 +0000", plus=True)
    a("SELECT INBOX")
    a("FETCH 1 (RFC822.SIZE BINARY.SIZE[] BODYSTRUCTURE)")
    a("FETCH 1 BODY.PEEK[]")
    a("FETCH 1 BODY.PEEK[TEXT]<6000000.200>")
    a("FETCH 1 BODY.PEEK[]<3000000.100>")
    a("SEARCH BODY \"0079999 abc\"")
    a("STATUS INBOX (MESSAGES SIZE)")
    a("CREATE C")
    a("COPY 1 C")
    a("STATUS C (MESSAGES SIZE)")
    a("GETQUOTAROOT INBOX")


def conv_copy_then_expunge(s):
    """A copy outlives its original; an expunged original's copy still reads."""
    a = s.login()
    fill(a)
    a("CREATE C")
    a("SELECT INBOX")
    a("COPY 1:3 C")
    a("STORE 1:* +FLAGS.SILENT (\\Deleted)")
    a("EXPUNGE")
    a("SELECT C")
    a("FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[])")
    a("COPY 1 C")
    a("STORE 1 +FLAGS.SILENT (\\Deleted)")
    a("EXPUNGE")
    a("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)] BINARY.SIZE[])")
    a("STATUS INBOX (MESSAGES SIZE)")


def conv_keywords_persist(s):
    """Many keywords, then a new session: PERMANENTFLAGS and FLAGS come back from the index."""
    a = s.login()
    fill(a)
    a("SELECT INBOX")
    kws = " ".join(f"kw{i:02d}" for i in range(40))
    a(f"STORE 1 +FLAGS ({kws})")
    a("STORE 2 +FLAGS (kw05 kw39 $Junk $NotJunk)")
    a("STORE 1 -FLAGS (kw00 kw20)")
    a("LOGOUT")
    b = s.login("b")
    b("SELECT INBOX")
    b("FETCH 1:* (UID FLAGS)")
    b("SEARCH KEYWORD kw39")
    b("SEARCH NOT KEYWORD kw05")
    b("UID STORE 1:* FLAGS ()")
    b("FETCH 1:* FLAGS")


def conv_users_in_one_process(s):
    """Users one after another in the same reused mail process (service_count = 0), one
    with "@" and "." in its name: each sees only its own mail."""
    other = f"first.last-{RUN}@example.org"
    a = s.login()
    append(a, "INBOX", PLAIN, r"\Seen", "01-Jan-2024 12:00:00 +0000")
    a("LOGOUT")
    b = s.login("b", other)
    b(f"STATUS INBOX {STATUS_ALL}")
    append(b, "INBOX", MULTIPART, "", "02-Jan-2024 08:30:00 +0100")
    b("CREATE Sub")
    append(b, "Sub", NESTED, "", "03-Jan-2024 10:00:00 -0500")
    b("SELECT INBOX")
    b("FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    b("LOGOUT")
    c = s.login("c")
    c("SELECT INBOX")
    c("FETCH 1:* (UID RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    c('LIST "" "*"')
    d = s.login("d", other)
    c("COPY 1 INBOX")
    d("SELECT INBOX")
    d("FETCH 1:* (UID BODY.PEEK[TEXT]<0.30>)")
    d('LIST "" "*" RETURN (CHILDREN)')
    d("STATUS Sub (MESSAGES)")


def conv_renamed_under_a_session(s):
    """Another session renames the mailbox this one has selected."""
    a = s.login()
    b = s.login("b")
    a("CREATE Box")
    fill(a, "Box")
    a("SELECT Box")
    a("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    b("RENAME Box Box2")
    b("STATUS Box2 (MESSAGES UIDNEXT)")
    a("FETCH 2 (BODY.PEEK[TEXT]<0.20>)")
    a("NOOP")
    a("FETCH 1:* (UID FLAGS)")
    a("STORE 1 +FLAGS (\\Flagged)")


def conv_deleted_under_a_session(s):
    """Another session deletes the mailbox this one has selected."""
    a = s.login()
    b = s.login("b")
    a("CREATE Box")
    fill(a, "Box")
    a("SELECT Box")
    a("FETCH 3 (BODY.PEEK[TEXT]<0.20>)")
    b("DELETE Box")
    a("FETCH 4 (BODY.PEEK[TEXT]<0.20>)")
    a("NOOP")
    a("FETCH 1 FLAGS")
    b('LIST "" "*"')


def conv_move_seen_by_another_session(s):
    """MOVE out of a mailbox another session (QRESYNC) has selected, and into one it watches."""
    a = s.login()
    b = s.login("b")
    fill(b)
    b("CREATE Dest")
    a("ENABLE QRESYNC")
    a("SELECT INBOX")
    b("SELECT INBOX")
    b("UID MOVE 2:3 Dest")
    a("NOOP")
    a("FETCH 1:* (UID FLAGS)")
    a("SELECT Dest")
    b("MOVE 1 Dest")
    a("NOOP")
    a("FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] BINARY.SIZE[])")
    b("UNSELECT")
    b(f"STATUS INBOX {STATUS_ALL}")
    b(f"STATUS Dest {STATUS_ALL}")


CONVERSATIONS = [v for k, v in list(globals().items()) if k.startswith("conv_")]


# --------------------------------------------------------------------------------------------
# Running and comparing.


def mailbox_counts(kind, user):
    """{mailbox: MESSAGES} over a fresh connection, outside the transcript."""
    s = Session(kind, user)
    try:
        a = s.login()
        names = re.findall(r'^\* LIST \(([^)]*)\) "/" (.+?)\r?$', a('LIST "" "*"').text(), re.M)
        counts = {}
        for flags, name in names:
            if "\\Noselect" not in flags and "\\NonExistent" not in flags:
                counts[name] = int(a(f"STATUS {name} (MESSAGES)").find(r"MESSAGES (\d+)"))
        return counts
    finally:
        s.close()


def rados_objects(user):
    """The mail objects of a user in the rbox pool (librmb: namespace <user>_u)."""
    out = subprocess.run(["rados", "-p", RBOX_POOL, "-N", f"{user}_u", "ls"], capture_output=True,
                         text=True, timeout=60, check=True)
    return len(out.stdout.split())


def storage_check(users):
    """rbox only: one RADOS object per mail in any mailbox, none left over, none missing."""
    problems = []
    for user in sorted(users):
        counts = mailbox_counts("rbox", user)
        objects = rados_objects(user)
        if objects != sum(counts.values()):
            problems.append(f"rbox storage of {user}: {objects} RADOS objects for "
                            f"{sum(counts.values())} mails {counts}")
    return problems


def run_side(conv, kind):
    s = Session(kind, f"{conv.__name__[5:].replace('_', '-')}-{RUN}")
    try:
        conv(s)
    except (EOFError, ConnectionError):  # the transcript shows the BYE, if any
        s.record("!! connection closed by the server")
    except Exception as e:  # the transcript says where it stopped; all sides must stop alike
        s.record(f"!! {type(e).__name__}: {e}")
        if os.environ.get("RBOX_DIFF_TRACE"):
            traceback.print_exc()
    finally:
        s.close()
    return normalise(s.transcript), s.users


def commands(transcript):
    """Split a transcript into blocks, one per client command (the greeting first)."""
    blocks, current = [], ["<greeting>"]
    for line in transcript:
        if re.match(r"^\w+> (\w+\d+ |DONE$)", line):
            blocks.append(current)
            current = [line]
        else:
            current.append(line)
    blocks.append(current)
    return blocks


def known_entry(name, command):
    command = re.sub(r"^\w+> \w+\d+ ", "", command)
    for entry in KNOWN_DIFFERENCES:
        if entry[0] == name and re.search(entry[1], command):
            return entry
    return None


def check_known(entry, r, d):
    """Problems if rbox's answer to a known-different command is not the one documented."""
    if len(entry) > 3:  # rbox differs from both references: its answer is spelled out
        if re.search(entry[3], "\n".join(r)):
            return []
        return [f"known difference at {r[0]!r}, but rbox's answer does not match {entry[3]!r}:"] + r
    if r != d:
        return ([f"known difference at {r[0]!r}, but rbox does not answer as sdbox does:"]
                + list(difflib.unified_diff(d, r, "sdbox", "rbox", n=2, lineterm="")))
    return []


def compare(name, sides):
    """Problems (empty: the conversation passes) and notes about known differences."""
    rb, md, sd = (commands(sides[k]) for k in ("rbox", "maildir", "sdbox"))
    if not len(rb) == len(md) == len(sd):
        return ["the transcripts have different numbers of commands"], []
    problems, notes, rbox, maildir, used = [], [], [], [], set()
    for r, m, d in zip(rb, md, sd):
        entry = known_entry(name, r[0]) if r != m else None
        if entry:
            wrong = check_known(entry, r, d)
            problems += wrong
            if not wrong:
                how = "as documented" if len(entry) > 3 else "as sdbox"
                notes.append(f"known difference at {r[0]!r} (rbox answers {how}): {entry[2]}")
                r = m = [r[0], f"   <known difference: {entry[2]}>"]
                used.add(KNOWN_DIFFERENCES.index(entry))
        rbox += r
        maildir += m
    for i, entry in enumerate(KNOWN_DIFFERENCES):
        if entry[0] == name and i not in used:
            problems.append(f"stale KNOWN_DIFFERENCES entry ({entry[1]!r}): no such command differs")
    if rbox != maildir:
        problems += difflib.unified_diff(maildir, rbox, "maildir", "rbox", n=3, lineterm="")
    return problems, notes


def run_conversation(conv):
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(len(PORTS)) as pool:
        futures = {kind: pool.submit(run_side, conv, kind) for kind in PORTS}
        results = {kind: f.result() for kind, f in futures.items()}
    sides = {kind: transcript for kind, (transcript, _) in results.items()}
    problems, notes = compare(conv.__name__[5:], sides)
    problems += storage_check(results["rbox"][1])
    ncmd = sum(1 for line in sides["maildir"] if re.match(r"^\w+> \w+\d+ ", line))
    return problems, notes, ncmd, time.time() - t0, sides["rbox"]


def main():
    assert all(PORTS.values()), f"set RBOX_DIFF_{{RBOX,MAILDIR,SDBOX}}_PORT: {PORTS}"
    assert RBOX_POOL, "set RBOX_POOL (rbox's mail pool)"
    only = [x for x in os.environ.get("RBOX_DIFF_ONLY", "").split(",") if x]
    convs = [c for c in CONVERSATIONS if not only or c.__name__[5:] in only]
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(int(os.environ.get("RBOX_DIFF_JOBS", "3"))) as pool:
        results = list(pool.map(run_conversation, convs))
    passed = failed = xfailed = total_cmds = 0
    for conv, (problems, notes, ncmd, secs, transcript) in zip(convs, results):
        name = conv.__name__[5:]
        total_cmds += ncmd
        if name in EXPECTED_FAILURES and problems:
            xfailed += 1
            label = "xfail"
            problems.insert(0, f"expected failure (plugin bug): {EXPECTED_FAILURES[name]}")
        elif name in EXPECTED_FAILURES:
            failed += 1
            label = "XPASS"
            problems = [f"passes now: remove it from EXPECTED_FAILURES ({EXPECTED_FAILURES[name]})"]
        elif problems:
            failed += 1
            label = "FAIL "
        else:
            passed += 1
            label = "ok   "
        print(f"{label} {name} ({ncmd} commands, {secs:.1f} s)")
        for line in notes + problems:
            print("    " + line)
        if os.environ.get("RBOX_DIFF_SHOW"):
            print("\n".join("      " + x for x in transcript))
    print(f"{len(convs)} conversations, {total_cmds} commands on each server, {time.time() - t0:.1f} s; "
          f"{len(KNOWN_DIFFERENCES)} known differences listed")
    print(f"imap-differential: {passed} passed, {failed} failed, {xfailed} expected failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
