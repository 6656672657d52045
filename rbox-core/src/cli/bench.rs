//! `rbox bench save|read|list|cleanup`: throughput and latency of rbox-core on a live
//! cluster, shaped like `rados bench` (size, ops in flight, duration) so the two can run
//! side by side (`rbox-core/bench/run.sh`). Save writes everything a real save writes:
//! body, every configured xattr, and the index record.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::args::{BenchArgs, BenchMode, SaveLayers};
use super::error::{CliError, CliResult};
use super::output::{Table, millis, print, print_json, spinner};
use crate::StoreError;
use crate::backend::{ObjectLocation, WriteOp};
use crate::format::guid::{Guid128, MailGuid};
use crate::format::metadata::MailMetadata;
use crate::store::{Mailspace, SaveRequest, Store};

/// Latency summary of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub ops: u64,
    pub elapsed: Duration,
    pub avg: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub min: Duration,
}

impl Summary {
    pub fn of(mut lat: Vec<Duration>, elapsed: Duration) -> Summary {
        lat.sort_unstable();
        let n = lat.len();
        let pick = |q: f64| -> Duration {
            if n == 0 {
                return Duration::ZERO;
            }
            // Nearest-rank percentile.
            let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
            lat[rank - 1]
        };
        let total: Duration = lat.iter().sum();
        Summary {
            ops: n as u64,
            elapsed,
            avg: if n == 0 {
                Duration::ZERO
            } else {
                total / n as u32
            },
            p50: pick(0.50),
            p90: pick(0.90),
            p99: pick(0.99),
            max: lat.last().copied().unwrap_or_default(),
            min: lat.first().copied().unwrap_or_default(),
        }
    }

    pub fn ops_per_sec(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 { self.ops as f64 / s } else { 0.0 }
    }
}

/// Largest `--size` accepted.
pub const MAX_BENCH_SIZE: u64 = 128 * 1024 * 1024;

/// A mail of exactly `size` bytes: a few headers, then 76-character lines.
pub fn bench_body(size: u64, n: u64) -> Vec<u8> {
    let mut b = format!(
        "From: bench@rbox.invalid\nTo: user@rbox.invalid\nSubject: rbox bench {n}\nMessage-ID: <bench-{n}@rbox.invalid>\n\n"
    )
    .into_bytes();
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\n";
    while (b.len() as u64) < size {
        b.extend_from_slice(line);
    }
    b.truncate(size as usize);
    b
}

struct Shared {
    issued: AtomicU64,
    stop: AtomicBool,
    deadline: Instant,
    limit: u64,
}

impl Shared {
    /// The next operation number, or `None` when the run is over.
    fn next(&self) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed) || Instant::now() >= self.deadline {
            return None;
        }
        let n = self.issued.fetch_add(1, Ordering::Relaxed);
        (n < self.limit).then_some(n)
    }
}

/// Run `op(n)` from `concurrency` workers until the deadline or `limit` operations.
async fn drive<F, Fut>(
    concurrency: usize,
    seconds: u64,
    limit: u64,
    quiet: bool,
    what: &str,
    op: F,
) -> CliResult<Summary>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), StoreError>> + Send,
{
    let shared = Arc::new(Shared {
        issued: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        deadline: Instant::now() + Duration::from_secs(seconds),
        limit,
    });
    let op = Arc::new(op);
    let pb = spinner(what, quiet);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (shared, op, pb) = (shared.clone(), op.clone(), pb.clone());
        workers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while let Some(n) = shared.next() {
                let t = Instant::now();
                if let Err(e) = op(n).await {
                    shared.stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
                lat.push(t.elapsed());
                pb.inc(1);
            }
            Ok(lat)
        }));
    }
    let mut all = Vec::new();
    let mut first_err = None;
    for w in workers {
        match w.await {
            Ok(Ok(l)) => all.extend(l),
            Ok(Err(e)) => {
                first_err.get_or_insert(CliError::from(e));
            }
            Err(j) => {
                first_err.get_or_insert(CliError::Other(format!("bench worker failed: {j}")));
            }
        }
    }
    let elapsed = started.elapsed();
    pb.finish_and_clear();
    match first_err {
        Some(e) => Err(e),
        None => Ok(Summary::of(all, elapsed)),
    }
}

fn report(
    mode: &str,
    ns: &str,
    a: &BenchArgs,
    s: &Summary,
    extra: serde_json::Value,
    json: bool,
) -> CliResult<()> {
    let mib = s.ops_per_sec() * a.size as f64 / (1024.0 * 1024.0);
    if json {
        return print_json(&json!({
            "mode": mode, "namespace": ns, "size": a.size, "concurrency": a.concurrency,
            "ops": s.ops, "seconds": s.elapsed.as_secs_f64(), "ops_per_sec": s.ops_per_sec(),
            "mib_per_sec": mib,
            "latency_ms": {"avg": millis(s.avg), "min": millis(s.min), "p50": millis(s.p50),
                "p90": millis(s.p90), "p99": millis(s.p99), "max": millis(s.max)},
            "extra": extra,
        }));
    }
    let mut t = Table::new(&[
        ">OPS", ">SECONDS", ">OPS/S", ">MIB/S", ">AVG MS", ">P50", ">P90", ">P99", ">MAX",
    ]);
    t.row(vec![
        s.ops.to_string(),
        format!("{:.2}", s.elapsed.as_secs_f64()),
        format!("{:.1}", s.ops_per_sec()),
        format!("{mib:.2}"),
        format!("{:.2}", millis(s.avg)),
        format!("{:.2}", millis(s.p50)),
        format!("{:.2}", millis(s.p90)),
        format!("{:.2}", millis(s.p99)),
        format!("{:.2}", millis(s.max)),
    ]);
    print(&format!(
        "bench {mode}: namespace {ns}, {} bytes, {} in flight\n{}",
        a.size,
        a.concurrency,
        t.render()
    ))
}

/// A cost-breakdown write: one op with the body, and with `xattrs` the eight xattrs a save
/// writes by default (same sizes), but no UID allocation and no index record.
async fn raw_write(
    sp: &Mailspace,
    pool: &str,
    body: Vec<u8>,
    xattrs: bool,
    n: u64,
) -> Result<(), StoreError> {
    let oid = Guid128::generate();
    let mut op = WriteOp::new().create(true);
    if xattrs {
        let m = MailMetadata {
            mailbox_guid: Some(oid),
            guid: Some(MailGuid::Compact(Guid128::generate())),
            received: Some(1_704_110_403),
            physical_size: Some(body.len() as u64),
            virtual_size: Some(body.len() as u64 + 10),
            orig_mailbox: Some("INBOX".into()),
            uid: u32::try_from(n + 1).ok(),
            version: Some("0.1".into()),
            ..Default::default()
        };
        for (k, v) in m.encode() {
            op = op.set_xattr(k, v);
        }
    }
    let op = op.write_full(body);
    let loc = ObjectLocation::new(pool, sp.namespace(), oid.to_hex());
    Ok(sp.backend().write_op(&loc, op).await?)
}

/// The mailboxes a run uses: `INBOX`, `INBOX.1`, `INBOX.2`, …
pub fn mailbox_names(base: &str, n: u32) -> Vec<String> {
    (0..n.max(1))
        .map(|i| {
            if i == 0 {
                base.to_string()
            } else {
                format!("{base}.{i}")
            }
        })
        .collect()
}

/// Every object id of the run's mailboxes, from the index.
async fn all_oids(sp: &Mailspace, names: &[String]) -> CliResult<Vec<String>> {
    let mut oids = Vec::new();
    for n in names {
        oids.extend(mailbox_oids(sp, n).await?);
    }
    Ok(oids)
}

/// Every object id of a mailbox, from the index.
async fn mailbox_oids(sp: &Mailspace, mailbox: &str) -> CliResult<Vec<String>> {
    let guid = sp.mailbox(mailbox).await?.guid;
    let mut oids = Vec::new();
    let mut after = 0;
    loop {
        let page = sp.index().list_records(&guid, after, 1000).await?;
        oids.extend(page.records.iter().map(|(_, r)| r.oid.to_hex()));
        match page.next_after {
            Some(a) => after = a,
            None => return Ok(oids),
        }
    }
}

pub async fn run(
    store: &Store,
    given: Option<Mailspace>,
    a: &BenchArgs,
    json: bool,
    quiet: bool,
) -> CliResult<()> {
    // Bodies are built in memory; nothing larger than a RADOS object can be saved anyway.
    if a.size > MAX_BENCH_SIZE {
        return Err(CliError::Usage(format!(
            "--size {} is larger than {MAX_BENCH_SIZE} bytes (Ceph's default osd_max_object_size)",
            a.size
        )));
    }
    let generated = given.is_none();
    let sp = match given {
        Some(sp) => sp,
        None if matches!(a.mode, BenchMode::Save | BenchMode::Mixed) => {
            store.namespace(&format!("rbox-bench-{}", Guid128::generate().to_hex()))?
        }
        None => {
            return Err(CliError::Usage(
                "bench read/list/cleanup need the namespace of an earlier `bench save --keep`: -N <namespace>".into(),
            ));
        }
    };
    let ns = sp.namespace().to_string();
    let limit = a.count.unwrap_or(u64::MAX);
    match a.mode {
        BenchMode::Mixed => super::bench_mixed::run(&sp, a, a.report_every, json).await,
        BenchMode::Save => {
            let names = Arc::new(mailbox_names(&a.mailbox, a.mailboxes));
            for name in names.iter() {
                match sp.create_mailbox(name).await {
                    Ok(_) | Err(StoreError::MailboxExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let (size, sp2) = (a.size, sp.clone());
            let (layers, pool) = (a.layers, store.config().mail_pool.clone());
            let s = drive(a.concurrency, a.seconds, limit, quiet, "saved", move |n| {
                let sp = sp2.clone();
                let body = bench_body(size, n);
                let pool = pool.clone();
                let mailbox = names[(n % names.len() as u64) as usize].clone();
                let req = SaveRequest::new(mailbox, body.clone());
                async move {
                    match layers {
                        SaveLayers::Full => sp.save(req).await.map(|_| ()),
                        SaveLayers::Xattrs | SaveLayers::Body => {
                            raw_write(&sp, &pool, body, layers == SaveLayers::Xattrs, n).await
                        }
                    }
                }
            })
            .await;
            // Write-behind: the run is over when every index record is in.
            let flushed = store.flush().await;
            let s = s?;
            flushed?;
            let cleanup = generated && !a.keep;
            if cleanup {
                sp.purge().await?;
            }
            report(
                "save",
                &ns,
                a,
                &s,
                json!({"kept": !cleanup, "write_behind": a.write_behind}),
                json,
            )
        }
        BenchMode::Read => {
            let oids = Arc::new(all_oids(&sp, &mailbox_names(&a.mailbox, a.mailboxes)).await?);
            if oids.is_empty() {
                return Err(CliError::NotFound(format!(
                    "mailbox {} of namespace {ns} is empty: run `rbox bench save --keep -N {ns}` first",
                    a.mailbox
                )));
            }
            let (sp2, o2) = (sp.clone(), oids.clone());
            let s = drive(
                a.concurrency,
                a.seconds,
                limit.min(oids.len() as u64),
                quiet,
                "read",
                move |n| {
                    let sp = sp2.clone();
                    let oid = o2[n as usize].clone();
                    async move {
                        let m = sp.read(&oid).await?;
                        match m.info.metadata.physical_size {
                            Some(z) if z == m.data.len() as u64 => Ok(()),
                            z => Err(StoreError::Invalid(format!(
                                "mail {oid}: read {} bytes, Z says {z:?}",
                                m.data.len()
                            ))),
                        }
                    }
                },
            )
            .await?;
            report(
                "read",
                &ns,
                a,
                &s,
                json!({"mails_available": oids.len()}),
                json,
            )
        }
        BenchMode::List => {
            let runs = a.count.unwrap_or(5).max(1);
            let mut times = Vec::new();
            let mut listed = 0usize;
            for _ in 0..runs {
                let t = Instant::now();
                listed = if a.scan {
                    sp.scan().await?.len()
                } else {
                    all_oids(&sp, &mailbox_names(&a.mailbox, a.mailboxes))
                        .await?
                        .len()
                };
                times.push(t.elapsed());
            }
            let total: Duration = times.iter().sum();
            let s = Summary::of(times, total);
            let how = if a.scan { "scan" } else { "index" };
            if json {
                print_json(&json!({
                    "mode": "list", "method": how, "namespace": ns, "runs": runs,
                    "mails": listed, "ms": {"min": millis(s.min), "p50": millis(s.p50),
                    "avg": millis(s.avg), "max": millis(s.max)},
                }))
            } else {
                print(&format!(
                    "bench list ({how}): namespace {ns}, {listed} mails, {runs} runs: min {:.1} ms, median {:.1} ms, max {:.1} ms\n",
                    millis(s.min),
                    millis(s.p50),
                    millis(s.max)
                ))
            }
        }
        BenchMode::Cleanup => {
            if !a.confirm.yes {
                return Err(CliError::NotConfirmed(format!(
                    "refusing to remove namespace {ns} without --yes-i-really-mean-it"
                )));
            }
            let n = sp.purge().await?;
            if json {
                print_json(&json!({"namespace": ns, "objects_removed": n}))
            } else {
                print(&format!("removed {n} objects of namespace {ns}\n"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_exact_size() {
        for size in [1, 10, 4096, 65536, 100_000] {
            assert_eq!(bench_body(size, 7).len() as u64, size);
        }
        assert!(bench_body(4096, 3).starts_with(b"From: bench@"));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let lat: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let s = Summary::of(lat, Duration::from_secs(2));
        assert_eq!(s.ops, 100);
        assert_eq!(s.p50, Duration::from_millis(50));
        assert_eq!(s.p90, Duration::from_millis(90));
        assert_eq!(s.p99, Duration::from_millis(99));
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(s.min, Duration::from_millis(1));
        assert!((s.ops_per_sec() - 50.0).abs() < 1e-9);
        let empty = Summary::of(Vec::new(), Duration::ZERO);
        assert_eq!((empty.ops, empty.p99), (0, Duration::ZERO));
        assert_eq!(empty.ops_per_sec(), 0.0);
    }
}
