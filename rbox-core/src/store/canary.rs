//! The canary: save → read → verify metadata and index entry → expunge, timed per step,
//! in a reserved namespace. The operator runs it to prove the storage path works.

use std::time::{Duration, Instant};

use super::save::SaveRequest;
use super::{Mailspace, Store};
use crate::error::{Result, StoreError};
use crate::format::flags::MailFlags;
use crate::format::metadata::MetadataKey;
use crate::index::mailboxes::now_secs;

/// Mailbox the canary writes into.
pub const CANARY_MAILBOX: &str = "INBOX";

/// One timed step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanaryStep {
    pub name: &'static str,
    pub latency: Duration,
}

/// What the canary measured. A failed step ends the run with an error instead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CanaryReport {
    pub namespace: String,
    pub oid: String,
    pub uid: u32,
    pub steps: Vec<CanaryStep>,
    pub total: Duration,
}

impl CanaryReport {
    pub fn step(&self, name: &str) -> Option<Duration> {
        self.steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.latency)
    }
}

fn fail(step: &str, why: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("canary {step} failed: {why}"))
}

impl Store {
    /// Run the canary in the reserved namespace.
    pub async fn canary(&self) -> Result<CanaryReport> {
        self.canary_space().run_canary().await
    }
}

impl Mailspace {
    /// Run the canary in this namespace (tests use their own).
    pub async fn run_canary(&self) -> Result<CanaryReport> {
        let started = Instant::now();
        let mut steps = Vec::new();
        let now = now_secs();
        let body = format!(
            "From: rbox-canary <canary@rbox.invalid>\nTo: canary@rbox.invalid\nSubject: rbox canary {now}\nMessage-ID: <canary-{now}-{}@rbox.invalid>\n\nThis mail proves the storage path works. It is expunged at once.\n",
            std::process::id()
        )
        .into_bytes();

        let t = Instant::now();
        let mut req = SaveRequest::new(CANARY_MAILBOX, body.clone());
        req.create_mailbox = true;
        req.received = Some(now);
        req.flags = MailFlags::SEEN;
        let saved = self.save(req).await?;
        steps.push(CanaryStep {
            name: "save",
            latency: t.elapsed(),
        });
        let oid = saved.oid.to_hex();

        let t = Instant::now();
        let mail = self.read(&oid).await;
        steps.push(CanaryStep {
            name: "read",
            latency: t.elapsed(),
        });
        let verify = async {
            let mail = mail?;
            if mail.data != body {
                return Err(fail("read", "body differs from what was saved"));
            }
            let m = &mail.info.metadata;
            let cfg = self.cfg();
            let checks = [
                (MetadataKey::MailUid, m.uid == Some(saved.uid)),
                (
                    MetadataKey::MailboxGuid,
                    m.mailbox_guid == Some(saved.mailbox),
                ),
                (MetadataKey::Guid, m.guid.as_ref() == Some(&saved.guid)),
                (
                    MetadataKey::PhysicalSize,
                    m.physical_size == Some(body.len() as u64),
                ),
                (MetadataKey::ReceivedTime, m.received == Some(now)),
            ];
            for (key, ok) in checks {
                if cfg.is_mail_attribute(key) && !ok {
                    return Err(fail("verify", format!("xattr {key} is wrong")));
                }
            }
            if !mail.info.errors.is_empty() {
                return Err(fail("verify", &mail.info.errors[0]));
            }
            let t = Instant::now();
            let (mailbox, uid, record) = self.indexed(&oid).await?;
            if uid != saved.uid || record.oid != saved.oid || mailbox.guid != saved.mailbox {
                return Err(fail("verify", "index entry does not match the saved mail"));
            }
            if record.flags != MailFlags::SEEN || record.physical_size != body.len() as u64 {
                return Err(fail("verify", "index record carries wrong flags or size"));
            }
            Ok(t.elapsed())
        }
        .await;
        let verify = match verify {
            Ok(d) => d,
            Err(e) => {
                // Do not leave the canary behind when verification fails.
                let _ = self.expunge(&oid).await;
                return Err(e);
            }
        };
        steps.push(CanaryStep {
            name: "verify_index",
            latency: verify,
        });

        let t = Instant::now();
        self.expunge(&oid).await?;
        steps.push(CanaryStep {
            name: "expunge",
            latency: t.elapsed(),
        });
        match self.mail_info(&oid).await {
            Err(StoreError::MailNotFound(_)) => {}
            Ok(_) => return Err(fail("expunge", "object still exists")),
            Err(e) => return Err(e),
        }
        Ok(CanaryReport {
            namespace: self.ns.clone(),
            oid,
            uid: saved.uid,
            steps,
            total: started.elapsed(),
        })
    }
}
