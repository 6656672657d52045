//! Is the omap index behind the mail objects it lists? A cheap check for `rbox ls`: a
//! Dovecot with upstream's plugin (or anything else writing librmb objects) never updates
//! the index, so after its activity the index silently describes the past.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use futures::StreamExt;

use super::Mailspace;
use crate::backend::BackendError;
use crate::error::Result;
use crate::format::guid::Guid128;
use crate::index::format::shard_of;

/// Mails checked per mailbox: the ones with the highest UIDs (the newest).
pub const STALE_SAMPLE_PER_MAILBOX: usize = 16;

/// How much later than the index object an object may have changed before it counts
/// (our own writes touch the object and the index within one operation; OSD clocks of
/// two pools may differ a little).
pub const STALE_SLACK: Duration = Duration::from_secs(5);

/// What [`Mailspace::index_staleness`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Staleness {
    /// Mail objects checked.
    pub checked: usize,
    /// Objects that changed after their mailbox's index objects were last written (e.g.
    /// `M`/`U` rewritten by `doveadm force-resync`).
    pub changed: Vec<String>,
    /// Objects the index lists that no longer exist (expunged or moved by another writer).
    pub missing: Vec<String>,
    /// The newest object mtime seen, Unix seconds.
    pub newest_object: Option<i64>,
    /// The newest index object mtime seen, Unix seconds.
    pub indexed_at: Option<i64>,
}

impl Staleness {
    pub fn is_stale(&self) -> bool {
        !self.changed.is_empty() || !self.missing.is_empty()
    }
}

impl Mailspace {
    /// Compare the mail objects of `listed` (mailbox, UID, object id — what an index
    /// listing returned) with the index objects that hold their records: up to
    /// [`STALE_SAMPLE_PER_MAILBOX`] of the highest UIDs per mailbox are stat'ed, and so
    /// are their mailbox head and shard objects. Costs O(mailboxes) round trips, not
    /// O(mails), and never lists the pool — so it does not see mail the index does not
    /// list at all (`rbox ls --scan` and `fsck` do).
    pub async fn index_staleness(&self, listed: &[(Guid128, u32, String)]) -> Result<Staleness> {
        let mut by_box: BTreeMap<Guid128, Vec<(u32, &str)>> = BTreeMap::new();
        for (mb, uid, oid) in listed {
            by_box.entry(*mb).or_default().push((*uid, oid));
        }
        let mut out = Staleness::default();
        let mut sample: Vec<(SystemTime, String)> = Vec::new();
        for (mb, mut mails) in by_box {
            let Some(header) = self.index.header(&mb).await? else {
                continue;
            };
            mails.sort_unstable();
            let newest = &mails[mails.len().saturating_sub(STALE_SAMPLE_PER_MAILBOX)..];
            // The index objects that hold these records: the head (header, shard 0) and
            // the shards of the sampled UIDs.
            let mut shards: Vec<u32> = newest
                .iter()
                .map(|(u, _)| shard_of(*u, header.shard_span))
                .collect();
            shards.push(0);
            shards.sort_unstable();
            shards.dedup();
            let mut indexed = SystemTime::UNIX_EPOCH;
            for k in shards {
                match self.backend().stat(&self.index.shard_loc(&mb, k)).await {
                    Ok(s) => indexed = indexed.max(s.mtime),
                    Err(BackendError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            out.indexed_at = out.indexed_at.max(Some(super::unix_secs(indexed)));
            sample.extend(newest.iter().map(|(_, o)| (indexed, o.to_string())));
        }
        let concurrency = self.inner.config.scan_concurrency.max(1);
        let stats: Vec<_> = futures::stream::iter(sample)
            .map(|(indexed, oid)| async move {
                let r = self.backend().stat(&self.mail_loc(&oid)).await;
                (indexed, oid, r)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
        for (indexed, oid, r) in stats {
            out.checked += 1;
            match r {
                Ok(s) => {
                    out.newest_object = out.newest_object.max(Some(super::unix_secs(s.mtime)));
                    if s.mtime > indexed + STALE_SLACK {
                        out.changed.push(oid);
                    }
                }
                Err(BackendError::NotFound(_)) => out.missing.push(oid),
                Err(e) => return Err(e.into()),
            }
        }
        out.changed.sort();
        out.missing.sort();
        Ok(out)
    }
}
