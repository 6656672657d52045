//! The other files a fleet's ConfigMap carries next to `dovecot.conf`: the health-check script
//! (probes), the preStop drain script, and `passwd`/`group` files that give the pod's uid a
//! name (Dovecot looks its internal users up by name; images rarely have the fleet's uid).

use super::config::{FleetConfig, Layout, POD_USER};

/// Key of each file in the ConfigMap.
pub const DOVECOT_CONF: &str = "dovecot.conf";
pub const HEALTH_CHECK: &str = "health-check.sh";
pub const DRAIN: &str = "drain.sh";
pub const PASSWD: &str = "passwd";
pub const GROUP: &str = "group";

/// Run by Dovecot's `script -p` service on the health-check listener, with the connection on
/// stdin/stdout. Answers Dovecot's own `PING` → `PONG`, and `GET /ping` with an HTTP 200 so a
/// Kubernetes `httpGet` probe exercises the master process, its listener and a fork+exec of a
/// service process. The headers are read before answering: closing a socket with unread data
/// sends a reset, which an HTTP client may report instead of the answer.
pub const HEALTH_CHECK_SCRIPT: &str = r#"#!/bin/sh
# Health check for rbox-operator's probes (generated; see docs/dovecot.md).
# Dovecot's script service connects the client socket to stdin/stdout.
# Give up on a silent client after 10 s. The timer must not hold the connection open: its
# stdio goes to /dev/null, and it is stopped when the answer is out.
trap "exit 0" QUIT
( sleep 10; kill -3 $$ 2>/dev/null ) </dev/null >/dev/null 2>&1 &
timer=$!
read -r first || exit 0
first=$(printf '%s' "$first" | tr -d '\r')
case "$first" in
  PING)
    echo PONG ;;
  "GET /ping "*|"GET /ping")
    while read -r line; do
      [ ${#line} -le 1 ] && break
    done
    printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nPONG\n' ;;
  GET*)
    while read -r line; do
      [ ${#line} -le 1 ] && break
    done
    printf 'HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' ;;
esac
kill "$timer" 2>/dev/null
exit 0
"#;

/// The preStop hook: `drain.sh DELAY BUDGET`. Kubernetes removes the pod from the Services'
/// endpoints while this runs, so: wait DELAY seconds for that to reach every proxy, ask
/// connected IMAP/POP3 clients to reconnect (they land on another replica), then wait up to
/// BUDGET seconds until no session is left. SIGTERM to the master follows.
pub fn drain_script(layout: &Layout) -> String {
    format!(
        r#"#!/bin/sh
# preStop drain for rbox-operator's Dovecot pods (generated; see docs/dovecot.md).
conf={conf}
delay=${{1:-5}}
budget=${{2:-20}}
sleep "$delay"
doveadm -c "$conf" kick '*' >/dev/null 2>&1 || true
end=$(( $(date +%s) + budget ))
while [ "$(date +%s)" -lt "$end" ]; do
  sessions=$(doveadm -c "$conf" who -1 2>/dev/null | tail -n +2 | wc -l)
  [ "$sessions" -eq 0 ] && break
  sleep 1
done
exit 0
"#,
        conf = layout.conf_file()
    )
}

/// `/etc/passwd` of the pod: root (owner of the image's files) and the fleet's mail user.
pub fn passwd(cfg: &FleetConfig, layout: &Layout) -> String {
    format!(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n\
         {POD_USER}:x:{uid}:{gid}:Dovecot (rbox-operator):{home}:/usr/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        uid = cfg.mail_uid,
        gid = cfg.mail_gid,
        home = layout.index_dir,
    )
}

/// `/etc/group` of the pod.
pub fn group(cfg: &FleetConfig) -> String {
    format!(
        "root:x:0:\n{POD_USER}:x:{gid}:\nnogroup:x:65534:\n",
        gid = cfg.mail_gid
    )
}

/// Every file of the ConfigMap, in key order, for the pod layout.
pub fn all(cfg: &FleetConfig) -> Vec<(&'static str, String)> {
    let layout = Layout::pod();
    vec![
        (DOVECOT_CONF, super::config::render(cfg, &layout)),
        (DRAIN, drain_script(&layout)),
        (GROUP, group(cfg)),
        (HEALTH_CHECK, HEALTH_CHECK_SCRIPT.to_string()),
        (PASSWD, passwd(cfg, &layout)),
    ]
}
