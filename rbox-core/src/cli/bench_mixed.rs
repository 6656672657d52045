//! `rbox bench mixed`: sustained mixed load — save / read / expunge in a fixed ratio
//! (10 : 7 : 3 of every 20 operations) at `-t` in flight for `--seconds`, printing ops/s and
//! errors every `--report-every` seconds. Errors are counted, never fatal and never retried:
//! the run is meant to go on while the cluster misbehaves (an OSD restart). Reads check the
//! body byte for byte. With `--ledger FILE` every mail whose save returned success and that
//! was not expunged is written as `oid sha256 size` so a later check can prove none was lost.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::args::BenchArgs;
use super::bench::{Summary, bench_body};
use super::error::{CliError, CliResult};
use super::output::{millis, print};
use crate::StoreError;
use crate::store::{Mailspace, SaveRequest};

/// Of every 20 operations: 10 saves, 7 reads, 3 expunges.
pub const RATIO: (u64, u64, u64) = (10, 7, 3);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Save,
    Read,
    Expunge,
}

impl OpKind {
    /// The fixed mix: operation `n` is a save, a read or an expunge.
    pub fn of(n: u64) -> OpKind {
        let (s, r, e) = RATIO;
        match n % (s + r + e) {
            x if x < s => OpKind::Save,
            x if x < s + r => OpKind::Read,
            _ => OpKind::Expunge,
        }
    }
    fn name(self) -> &'static str {
        match self {
            OpKind::Save => "save",
            OpKind::Read => "read",
            OpKind::Expunge => "expunge",
        }
    }
}

/// Counts of one interval (or of the whole run).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub ok: BTreeMap<&'static str, u64>,
    pub errors: BTreeMap<&'static str, u64>,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        for (k, v) in &other.ok {
            *self.ok.entry(k).or_default() += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k).or_default() += v;
        }
    }
    pub fn ops(&self) -> u64 {
        self.ok.values().sum()
    }
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A mail saved by this run: its object id and operation number (the body is
/// `bench_body(size, n)`).
type Live = (String, u64);

#[derive(Default)]
struct State {
    live: Vec<Live>,
    /// Taken for expunge (reads of these may find them gone: not an error).
    taken: HashSet<String>,
    /// Expunges that failed: the mail may or may not still be there.
    uncertain: Vec<String>,
    interval: Counts,
    samples: BTreeMap<String, u64>,
}

struct Shared {
    sp: Mailspace,
    size: u64,
    mailbox: String,
    issued: AtomicU64,
    deadline: Instant,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, kind: &'static str, r: Result<(), String>) {
        let mut s = self.lock();
        match r {
            Ok(()) => *s.interval.ok.entry(kind).or_default() += 1,
            Err(msg) => {
                *s.interval.errors.entry(kind).or_default() += 1;
                // A few distinct messages are enough to say what went wrong.
                if s.samples.len() < 20 || s.samples.contains_key(&msg) {
                    *s.samples.entry(msg).or_default() += 1;
                }
            }
        }
    }

    /// One operation; returns its kind and latency when it succeeded.
    async fn one(&self, n: u64) -> (OpKind, Option<Duration>) {
        let mut kind = OpKind::of(n);
        let pick = {
            let mut s = self.lock();
            match kind {
                _ if s.live.is_empty() => {
                    kind = OpKind::Save;
                    None
                }
                OpKind::Save => None,
                OpKind::Read => {
                    let i = (n.wrapping_mul(2_654_435_761) as usize) % s.live.len();
                    Some(s.live[i].clone())
                }
                OpKind::Expunge => {
                    let i = (n.wrapping_mul(2_654_435_761) as usize) % s.live.len();
                    let l = s.live.swap_remove(i);
                    s.taken.insert(l.0.clone());
                    Some(l)
                }
            }
        };
        let t = Instant::now();
        let r: Result<(), String> = match (kind, pick) {
            (OpKind::Save, _) | (_, None) => {
                let mut req = SaveRequest::new(self.mailbox.clone(), bench_body(self.size, n));
                req.create_mailbox = true;
                match self.sp.save(req).await {
                    Ok(saved) => {
                        self.lock().live.push((saved.oid.to_hex(), n));
                        Ok(())
                    }
                    Err(e) => Err(format!("save: {e}")),
                }
            }
            (OpKind::Read, Some((oid, m))) => match self.sp.read(&oid).await {
                Ok(mail) if mail.data == bench_body(self.size, m) => Ok(()),
                Ok(mail) => Err(format!(
                    "read: mail {oid} came back different ({} bytes)",
                    mail.data.len()
                )),
                Err(StoreError::MailNotFound(_) | StoreError::ZeroByte(_))
                    if self.lock().taken.contains(&oid) =>
                {
                    // Expunged by another worker after this read picked it.
                    Ok(())
                }
                Err(e) => Err(format!("read: {e}")),
            },
            (OpKind::Expunge, Some((oid, _))) => match self.sp.expunge(&oid).await {
                Ok(()) => Ok(()),
                Err(e) => {
                    self.lock().uncertain.push(oid);
                    Err(format!("expunge: {e}"))
                }
            },
        };
        let lat = t.elapsed();
        let ok = r.is_ok();
        self.record(kind.name(), r);
        (kind, ok.then_some(lat))
    }
}

/// One printed interval.
fn interval_json(t0: f64, t1: f64, c: &Counts) -> serde_json::Value {
    let secs = (t1 - t0).max(1e-9);
    json!({
        "from_s": (t0 * 10.0).round() / 10.0, "to_s": (t1 * 10.0).round() / 10.0,
        "ops": c.ops(), "ops_per_sec": (c.ops() as f64 / secs * 10.0).round() / 10.0,
        "ok": c.ok, "errors": c.errors,
    })
}

fn interval_line(t0: f64, t1: f64, c: &Counts) -> String {
    let secs = (t1 - t0).max(1e-9);
    let get = |m: &BTreeMap<&str, u64>, k: &str| m.get(k).copied().unwrap_or(0);
    format!(
        "{t0:>6.0}-{t1:<6.0} {:>8.1} ops/s  save {:>6} read {:>6} expunge {:>6}  errors {:>4} (save {} read {} expunge {})\n",
        c.ops() as f64 / secs,
        get(&c.ok, "save"),
        get(&c.ok, "read"),
        get(&c.ok, "expunge"),
        c.error_count(),
        get(&c.errors, "save"),
        get(&c.errors, "read"),
        get(&c.errors, "expunge"),
    )
}

fn emit(json: bool, v: &serde_json::Value, text: &str) -> CliResult<()> {
    if json {
        let s =
            serde_json::to_string(v).map_err(|e| CliError::Other(format!("encoding JSON: {e}")))?;
        print(&format!("{s}\n"))
    } else {
        print(text)
    }
}

/// Run the mixed load on `sp`. With `--json` every interval is one JSON line, the summary
/// the last one.
pub async fn run(sp: &Mailspace, a: &BenchArgs, every: u64, json: bool) -> CliResult<()> {
    let shared = Arc::new(Shared {
        sp: sp.clone(),
        size: a.size,
        mailbox: a.mailbox.clone(),
        issued: AtomicU64::new(0),
        deadline: Instant::now() + Duration::from_secs(a.seconds),
        state: Mutex::new(State::default()),
    });
    let limit = a.count.unwrap_or(u64::MAX);
    let started = Instant::now();
    if !json {
        print(&format!(
            "bench mixed: namespace {}, {} bytes, {} in flight, {} s, save:read:expunge = {}:{}:{}\n",
            sp.namespace(),
            a.size,
            a.concurrency,
            a.seconds,
            RATIO.0,
            RATIO.1,
            RATIO.2
        ))?;
    }
    let mut workers = Vec::new();
    for _ in 0..a.concurrency.max(1) {
        let shared = shared.clone();
        workers.push(tokio::spawn(async move {
            let mut lat: BTreeMap<OpKind, Vec<Duration>> = BTreeMap::new();
            while Instant::now() < shared.deadline {
                let n = shared.issued.fetch_add(1, Ordering::Relaxed);
                if n >= limit {
                    break;
                }
                if let (k, Some(l)) = shared.one(n).await {
                    lat.entry(k).or_default().push(l);
                }
            }
            lat
        }));
    }
    // Report every `every` seconds until all workers are done.
    let mut total = Counts::default();
    let mut intervals = Vec::new();
    let mut last = 0.0f64;
    let every = Duration::from_secs(every.max(1));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        let done = workers.iter().all(|w| w.is_finished());
        if !done {
            tick.tick().await;
        }
        let now = started.elapsed().as_secs_f64();
        let c = std::mem::take(&mut shared.lock().interval);
        if c.ops() + c.error_count() > 0 || !done {
            emit(
                json,
                &interval_json(last, now, &c),
                &interval_line(last, now, &c),
            )?;
            intervals.push(interval_json(last, now, &c));
        }
        total.add(&c);
        last = now;
        if done || workers.iter().all(|w| w.is_finished()) {
            // Collect what finished during the last interval too.
            let c = std::mem::take(&mut shared.lock().interval);
            if c.ops() + c.error_count() > 0 {
                let now = started.elapsed().as_secs_f64();
                emit(
                    json,
                    &interval_json(last, now, &c),
                    &interval_line(last, now, &c),
                )?;
                total.add(&c);
            }
            break;
        }
    }
    let elapsed = started.elapsed();
    let mut lat: BTreeMap<OpKind, Vec<Duration>> = BTreeMap::new();
    for w in workers {
        let l = w
            .await
            .map_err(|e| CliError::Other(format!("bench worker failed: {e}")))?;
        for (k, v) in l {
            lat.entry(k).or_default().extend(v);
        }
    }
    let state = std::mem::take(&mut *shared.lock());
    if let Some(path) = &a.ledger {
        let mut out = String::new();
        for (oid, n) in &state.live {
            let body = bench_body(a.size, *n);
            let sha = Sha256::digest(&body);
            let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
            let _ = writeln!(out, "{oid} {hex} {}", body.len());
        }
        std::fs::write(path, out)
            .map_err(|e| CliError::io(format!("writing ledger {}", path.display()), e))?;
    }
    let latency: serde_json::Map<String, serde_json::Value> = lat
        .into_iter()
        .map(|(k, v)| {
            let s = Summary::of(v, elapsed);
            (
                k.name().to_string(),
                json!({"ops": s.ops, "p50_ms": millis(s.p50), "p99_ms": millis(s.p99), "max_ms": millis(s.max)}),
            )
        })
        .collect();
    let secs = elapsed.as_secs_f64();
    let summary = json!({
        "mode": "mixed", "namespace": sp.namespace(), "size": a.size,
        "concurrency": a.concurrency, "seconds": secs,
        "ops": total.ops(), "ops_per_sec": total.ops() as f64 / secs.max(1e-9),
        "ok": total.ok, "errors": total.errors, "error_samples": state.samples,
        "live_mails": state.live.len(), "expunge_uncertain": state.uncertain,
        "latency": latency, "intervals": intervals.len(),
    });
    let mut text = format!(
        "total: {} ops in {secs:.1} s ({:.1} ops/s), {} errors; {} mails live, {} expunges uncertain\n",
        total.ops(),
        total.ops() as f64 / secs.max(1e-9),
        total.error_count(),
        state.live.len(),
        state.uncertain.len()
    );
    for (msg, n) in &state.samples {
        let _ = writeln!(text, "  {n} × {msg}");
    }
    emit(json, &summary, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mix_is_fixed() {
        let mut c: BTreeMap<OpKind, u64> = BTreeMap::new();
        for n in 0..2000 {
            *c.entry(OpKind::of(n)).or_default() += 1;
        }
        assert_eq!(c[&OpKind::Save], 1000);
        assert_eq!(c[&OpKind::Read], 700);
        assert_eq!(c[&OpKind::Expunge], 300);
    }

    #[test]
    fn interval_lines_count_ops_and_errors() {
        let mut c = Counts::default();
        c.ok.insert("save", 50);
        c.ok.insert("read", 30);
        c.errors.insert("save", 2);
        let v = interval_json(10.0, 20.0, &c);
        assert_eq!(v["ops"], 80);
        assert_eq!(v["ops_per_sec"], 8.0);
        assert_eq!(v["errors"]["save"], 2);
        let line = interval_line(10.0, 20.0, &c);
        assert!(
            line.contains("8.0 ops/s") && line.contains("errors    2"),
            "{line}"
        );
    }
}
