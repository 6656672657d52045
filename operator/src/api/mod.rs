//! The API: `mail.rbox.io/v1alpha1` MailCluster, MailPool and DovecotFleet.
