//! Sending monitor commands: the [`MonClient`] trait and [`Admin`], which bounds, times and
//! counts every call.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rbox_core::backend::BackendError;
use rbox_core::rados::{Cluster, MonReply};
use serde_json::Value;

use super::command::MonCmd;
use super::error::CephError;
use crate::runtime::metrics::Metrics;

/// Something that can run a monitor command: a librados cluster, or a fake in unit tests.
pub trait MonClient: Send + Sync {
    fn mon_command(
        &self,
        cmd: &Value,
        input: Vec<u8>,
    ) -> impl Future<Output = Result<MonReply, BackendError>> + Send;
}

impl MonClient for Cluster {
    fn mon_command(
        &self,
        cmd: &Value,
        input: Vec<u8>,
    ) -> impl Future<Output = Result<MonReply, BackendError>> + Send {
        self.mon_command_with_input(cmd, input)
    }
}

/// Default deadline of one monitor command (librados' own op timeout normally ends it first).
pub const MON_TIMEOUT: Duration = Duration::from_secs(30);

/// The operator's handle for Ceph administration. Every call has a deadline, is timed into
/// `ceph_call_duration_seconds{call=<prefix>}`, and writes are counted (steady state: zero).
#[derive(Clone, Debug)]
pub struct Admin<M> {
    mon: M,
    metrics: Option<Metrics>,
    timeout: Duration,
    writes: Arc<AtomicU64>,
}

impl<M: MonClient> Admin<M> {
    pub fn new(mon: M, metrics: Option<Metrics>) -> Self {
        Self {
            mon,
            metrics,
            timeout: MON_TIMEOUT,
            writes: Arc::default(),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn mon(&self) -> &M {
        &self.mon
    }

    /// Writes issued through this handle (all clones share the count).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Run one command. A failure carries the monitor's status text.
    pub async fn run(&self, cmd: &MonCmd) -> Result<MonReply, CephError> {
        let prefix = cmd.prefix().to_string();
        let input = cmd
            .input
            .as_ref()
            .map(|k| k.as_bytes().to_vec())
            .unwrap_or_default();
        if cmd.write {
            self.writes.fetch_add(1, Ordering::Relaxed);
            if let Some(m) = &self.metrics {
                m.ceph_write(&prefix);
            }
            tracing::info!(command = %cmd.describe(), "ceph write");
        }
        let started = Instant::now();
        let result =
            tokio::time::timeout(self.timeout, self.mon.mon_command(&cmd.json, input)).await;
        if let Some(m) = &self.metrics {
            m.ceph_call(&prefix, started.elapsed());
        }
        match result {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(CephError::from_backend(&prefix, e)),
            Err(_) => Err(CephError::Unreachable(format!(
                "'{prefix}' took longer than {:?}",
                self.timeout
            ))),
        }
    }

    /// Run a command and parse its JSON reply.
    pub async fn json(&self, cmd: &MonCmd) -> Result<Value, CephError> {
        let reply = self.run(cmd).await?;
        serde_json::from_slice(&reply.out).map_err(|e| CephError::Parse {
            prefix: cmd.prefix().to_string(),
            message: format!("not JSON ({e})"),
        })
    }

    /// Run a plan's commands in order, stopping at the first failure. Consecutive commands
    /// that do not depend on each other (the settings after a pool exists) are sent together:
    /// the monitors commit them in one map update instead of one per command (each commit
    /// waits for the monitors' proposal interval, about a second).
    pub async fn apply(&self, plan: &[MonCmd]) -> Result<(), CephError> {
        let mut batch: Vec<&MonCmd> = Vec::new();
        for cmd in plan {
            if is_barrier(cmd) {
                self.run_batch(&batch).await?;
                batch.clear();
                self.run(cmd).await?;
            } else {
                batch.push(cmd);
            }
        }
        self.run_batch(&batch).await
    }

    async fn run_batch(&self, batch: &[&MonCmd]) -> Result<(), CephError> {
        futures::future::try_join_all(batch.iter().map(|c| self.run(c))).await?;
        Ok(())
    }
}

/// Commands later ones depend on: creating rules, profiles, pools and users, `size` (a
/// `min_size` above the old size is refused until the new size is in), and enabling the
/// application (its metadata can only be set once it is enabled).
fn is_barrier(cmd: &MonCmd) -> bool {
    let var = cmd.json.get("var").and_then(Value::as_str);
    !matches!(
        (cmd.prefix(), var),
        ("osd pool set", Some(v)) if v != "size"
    ) && !matches!(
        cmd.prefix(),
        "osd pool set-quota" | "osd pool application set" | "auth caps" | "auth get-or-create"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ceph::command;
    use crate::ceph::fake::FakeMon;

    #[test]
    fn only_independent_settings_are_batched() {
        assert!(is_barrier(&command::pool_create_replicated(
            "p", 8, "r", 3, None
        )));
        assert!(is_barrier(&command::pool_set("p", "size", "3", false)));
        assert!(!is_barrier(&command::pool_set("p", "min_size", "2", false)));
        assert!(!is_barrier(&command::pool_set_quota("p", "max_bytes", 1)));
        assert!(is_barrier(&command::pool_ls_detail()));
    }

    #[tokio::test]
    async fn a_plan_runs_in_order_and_counts_writes() {
        let fake = FakeMon::new();
        let admin = Admin::new(fake.clone(), None);
        let plan = vec![
            command::crush_rule_create_replicated("r", "default", "osd", None),
            command::pool_create_replicated("p", 8, "r", 3, None),
            command::pool_set("p", "size", "2", false),
            command::pool_set("p", "min_size", "2", false),
            command::pool_set_quota("p", "max_objects", 10),
        ];
        admin.apply(&plan).await.unwrap();
        assert_eq!(admin.writes(), 5);
        let pool = fake.pool("p").unwrap();
        assert_eq!(
            (pool["size"].as_u64(), pool["min_size"].as_u64()),
            (Some(2), Some(2))
        );
        assert_eq!(pool["quota_max_objects"], 10);
    }
}
