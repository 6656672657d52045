//! Dovecot: the generated `dovecot.conf` (rbox plugin) and its check with `doveconf`.
