//! The omap mirror of an external index, off the client's critical path.
//!
//! In the plugin's index-on-disk mode Dovecot's own index is authoritative and the omap
//! index is a mirror (see `external.rs`). A commit therefore waits only for what makes mail
//! durable (the body objects, or their removal); the mirror writes are queued here and
//! applied in the background, in order per namespace, with consecutive saves into one
//! mailbox merged into one header update and one insert. Namespaces are mirrored
//! concurrently. A bounded backlog gives back-pressure instead of unbounded memory, and
//! [`ExternalMirror::flush`] waits for everything queued so far (before a scan that reads
//! the omap index, and at process exit). Work lost to a crash is what `rbox fsck --repair`
//! re-creates from the objects' xattrs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use super::Mailspace;
use super::external::{ExternalFlags, ExternalMailbox};
use crate::format::guid::Guid128;
use crate::index::MailRecord;

/// One change of the external index to mirror.
#[derive(Clone, Debug)]
pub enum MirrorOp {
    /// Mails written by [`Mailspace::write_external`] (records from `external_records`).
    Saves {
        mailbox: ExternalMailbox,
        records: Vec<(u32, MailRecord)>,
    },
    /// Mails whose objects [`Mailspace::remove_external_objects`] removed.
    Expunges {
        mailbox: ExternalMailbox,
        mails: Vec<(u32, Guid128)>,
    },
    /// Final flags and keywords after a change.
    Flags {
        mailbox: ExternalMailbox,
        changes: Vec<ExternalFlags>,
    },
    /// The mailbox exists under this GUID and name (create, rename).
    Mailbox(ExternalMailbox),
    /// The mailbox was deleted.
    DeleteMailbox(ExternalMailbox),
}

struct Job {
    op: MirrorOp,
    _permit: OwnedSemaphorePermit,
}

struct Lane {
    space: Mailspace,
    jobs: VecDeque<Job>,
}

struct Shared {
    /// Namespaces with queued work; a lane exists exactly while its drainer runs.
    lanes: Mutex<HashMap<String, Lane>>,
    /// Ops queued and not yet applied.
    pending: watch::Sender<usize>,
    backlog: Arc<Semaphore>,
}

/// The queue of mirror writes of one process (cheap to clone; clones share it).
#[derive(Clone)]
pub struct ExternalMirror {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ExternalMirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExternalMirror")
            .field("pending", &*self.shared.pending.borrow())
            .finish()
    }
}

impl ExternalMirror {
    /// A mirror that holds at most `backlog` unapplied ops; [`Self::push`] waits beyond.
    pub fn new(backlog: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                lanes: Mutex::new(HashMap::new()),
                pending: watch::Sender::new(0),
                backlog: Arc::new(Semaphore::new(backlog.max(1))),
            }),
        }
    }

    /// Queue `op` for `space`'s namespace. Returns once queued (must run inside a tokio
    /// runtime: the namespace's drainer is a spawned task).
    pub async fn push(&self, space: &Mailspace, op: MirrorOp) {
        let permit = match self.shared.backlog.clone().acquire_owned().await {
            Ok(p) => p,
            Err(_) => return, // never closed
        };
        self.shared.pending.send_modify(|n| *n += 1);
        let job = Job {
            op,
            _permit: permit,
        };
        let start = {
            let mut lanes = self.shared.lanes.lock().unwrap_or_else(|p| p.into_inner());
            match lanes.get_mut(&space.ns) {
                Some(lane) => {
                    lane.jobs.push_back(job);
                    false
                }
                None => {
                    lanes.insert(
                        space.ns.clone(),
                        Lane {
                            space: space.clone(),
                            jobs: VecDeque::from([job]),
                        },
                    );
                    true
                }
            }
        };
        if start {
            tokio::spawn(drain(self.shared.clone(), space.ns.clone()));
        }
    }

    /// Wait until every op queued before this call has been applied.
    pub async fn flush(&self) {
        let mut rx = self.shared.pending.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Ops queued and not yet applied.
    pub fn pending(&self) -> usize {
        *self.shared.pending.borrow()
    }
}

/// Apply one namespace's queue in order until it is empty, then retire the lane.
async fn drain(shared: Arc<Shared>, ns: String) {
    loop {
        let (space, batch) = {
            let mut lanes = shared.lanes.lock().unwrap_or_else(|p| p.into_inner());
            let Some(lane) = lanes.get_mut(&ns) else {
                return;
            };
            if lane.jobs.is_empty() {
                lanes.remove(&ns);
                return;
            }
            (lane.space.clone(), next_batch(&mut lane.jobs))
        };
        let n = batch.len();
        apply(&space, batch.into_iter().map(|j| j.op).collect()).await;
        shared.pending.send_modify(|p| *p = p.saturating_sub(n));
    }
}

/// The front job, plus the saves into the same mailbox queued right behind it.
fn next_batch(jobs: &mut VecDeque<Job>) -> Vec<Job> {
    let Some(first) = jobs.pop_front() else {
        return Vec::new();
    };
    let MirrorOp::Saves { mailbox, .. } = &first.op else {
        return vec![first];
    };
    let guid = mailbox.guid;
    let mut batch = vec![first];
    while let Some(Job {
        op: MirrorOp::Saves { mailbox, .. },
        ..
    }) = jobs.front()
    {
        if mailbox.guid != guid {
            break;
        }
        batch.extend(jobs.pop_front());
    }
    batch
}

/// A batch from [`next_batch`]: saves into one mailbox (merged into one insert), or one op.
async fn apply(space: &Mailspace, ops: Vec<MirrorOp>) {
    let mut merged: Option<(ExternalMailbox, Vec<(u32, MailRecord)>)> = None;
    for op in ops {
        match (op, &mut merged) {
            (MirrorOp::Saves { records, .. }, Some((_, all))) => all.extend(records),
            (MirrorOp::Saves { mailbox, records }, None) => merged = Some((mailbox, records)),
            (other, _) => apply_one(space, other).await,
        }
    }
    if let Some((mailbox, records)) = merged {
        // Errors are logged where they happen; fsck repairs what a failure left.
        let _ = space.index_external_saves(&mailbox, &records).await;
    }
}

async fn apply_one(space: &Mailspace, op: MirrorOp) {
    let (what, mailbox, r) = match op {
        MirrorOp::Saves { mailbox, records } => {
            let _ = space.index_external_saves(&mailbox, &records).await;
            return;
        }
        // Logged by unindex_external itself.
        MirrorOp::Expunges { mailbox, mails } => {
            let _ = space.unindex_external(&mailbox, &mails).await;
            return;
        }
        MirrorOp::Flags { mailbox, changes } => {
            let r = space
                .set_flags_external(&mailbox, &changes)
                .await
                .map(|_| ());
            ("flags", mailbox, r)
        }
        MirrorOp::Mailbox(mailbox) => {
            let r = space.ensure_external_mailbox(&mailbox).await.map(|_| ());
            ("mailbox", mailbox, r)
        }
        MirrorOp::DeleteMailbox(mailbox) => {
            let r = space.delete_external_mailbox(&mailbox).await;
            ("mailbox deletion", mailbox, r)
        }
    };
    if let Err(e) = r {
        tracing::warn!(namespace = %space.ns, mailbox = %mailbox.name, error = %e,
            "omap index: {what} not mirrored; rbox fsck --repair re-creates it");
    }
}
