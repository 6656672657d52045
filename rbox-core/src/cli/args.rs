//! The command line (clap derive). Every option is documented in `docs/rbox-cli.md`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::error::EXIT_CODES_HELP;
use crate::format::query::SortKey;

#[derive(Debug, Parser)]
#[command(
    name = "rbox",
    version,
    about = "Inspect and manage Dovecot rbox (librmb) mail on RADOS, with rbox-core's omap index",
    long_about = "Inspect and manage Dovecot rbox (librmb) mail on RADOS.\n\n\
        The Rust counterpart of upstream's `rmb`: same objects, xattrs, namespaces, user \
        mapping, rbox_cfg and query syntax, plus rbox-core's pure-RADOS omap index (fsck, \
        index, per-user listing without scanning the pool).",
    after_help = EXIT_CODES_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print machine-readable JSON on stdout instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// No progress bars (they are drawn on stderr, and only when it is a terminal).
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the cluster (like `rados`/`ceph`, and `rmb -c/-u`).
#[derive(Clone, Debug, Args)]
pub struct ConnArgs {
    /// ceph.conf to read [default: librados' search path].
    #[arg(
        short = 'c',
        long = "conf",
        env = "CEPH_CONF",
        global = true,
        value_name = "PATH"
    )]
    pub conf: Option<PathBuf>,
    /// Cluster name.
    #[arg(long, default_value = "ceph", global = true)]
    pub cluster: String,
    /// Client id without the `client.` prefix, like `ceph --id admin`.
    #[arg(long = "id", global = true, value_name = "ID")]
    pub id: Option<String>,
    /// Full client name, like `ceph --name client.admin` (rmb: -u/--rados_user).
    #[arg(
        long = "name",
        alias = "rados-user",
        global = true,
        value_name = "NAME"
    )]
    pub name: Option<String>,
    /// Keyring file.
    #[arg(
        short = 'k',
        long,
        env = "CEPH_KEYRING",
        global = true,
        value_name = "PATH"
    )]
    pub keyring: Option<PathBuf>,
    /// Monitor addresses, overriding ceph.conf (`mon_host`).
    #[arg(short = 'm', long = "mon-host", global = true, value_name = "ADDRS")]
    pub mon_host: Option<String>,
    /// Seconds to wait for the monitors when connecting.
    #[arg(long, default_value_t = 20, global = true, value_name = "SECS")]
    pub connect_timeout: u64,
    /// Seconds each RADOS operation may take.
    #[arg(long, default_value_t = 30, global = true, value_name = "SECS")]
    pub op_timeout: u64,
}

impl ConnArgs {
    /// The cephx entity: `--name`, else `client.<--id>`, else `client.admin`.
    pub fn entity(&self) -> Result<String, String> {
        match (&self.name, &self.id) {
            (Some(_), Some(_)) => Err("give --id or --name, not both".into()),
            (Some(n), None) if n.contains('.') => Ok(n.clone()),
            (Some(n), None) => Err(format!(
                "--name {n:?} must be a full entity name like client.admin (or use --id {n})"
            )),
            (None, Some(i)) if i.starts_with("client.") => Ok(i.clone()),
            (None, Some(i)) => Ok(format!("client.{i}")),
            (None, None) => Ok("client.admin".into()),
        }
    }
}

/// Which pools, config object and namespace a command works on.
#[derive(Clone, Debug, Args)]
pub struct TargetArgs {
    /// Mail pool (`rbox_pool_name`).
    #[arg(short = 'p', long, default_value = "mail_storage", global = true)]
    pub pool: String,
    /// Pool of the omap index (`rbox_index_pool_name`).
    #[arg(
        long,
        default_value = "object_recovery",
        global = true,
        value_name = "POOL"
    )]
    pub index_pool: String,
    /// Name of the config object in the mail pool (`rbox_cfg_object_name`).
    #[arg(
        short = 'o',
        long = "object",
        alias = "cfg-object",
        default_value = "rbox_cfg",
        global = true,
        value_name = "OID"
    )]
    pub cfg_object: String,
    /// RADOS namespace to work in, used as is.
    #[arg(short = 'N', long, global = true, conflicts_with = "user")]
    pub namespace: Option<String>,
    /// Dovecot user: `<user><user_suffix>`, through the user mapping when rbox_cfg enables it
    /// (what rmb's -N does).
    #[arg(short = 'u', long, global = true)]
    pub user: Option<String>,
}

/// Confirmation for actions that delete data.
#[derive(Clone, Copy, Debug, Default, Args)]
pub struct Confirm {
    /// Confirm an action that deletes data (rmb's spelling is accepted too).
    #[arg(long = "yes-i-really-mean-it", alias = "yes-i-really-really-mean-it")]
    pub yes: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List mails matching a query (index-based; --scan for a librmb-style namespace scan).
    Ls(LsArgs),
    /// Print one mail's body, or write every mail matching a query to a directory.
    Get(GetArgs),
    /// Rewrite metadata xattrs of a mail (rmb set), or change its flags and keywords.
    Set(SetArgs),
    /// Delete mail objects, or every object of the namespace with `-`.
    Delete(DeleteArgs),
    /// Save a mail from a file or stdin (body, metadata and index entry).
    Save(SaveArgs),
    /// Show, create or update the rbox_cfg object.
    #[command(subcommand)]
    Cfg(CfgCommand),
    /// List the cluster's pools.
    Lspools,
    /// Mailboxes of a namespace (from the omap index).
    #[command(subcommand)]
    Mailbox(MailboxCommand),
    /// User mapping objects (rbox_cfg user_mapping=true): show, create, rename, delete.
    #[command(subcommand)]
    User(UserCommand),
    /// Check a namespace's mail objects against its omap index; --repair fixes them.
    Fsck(FsckArgs),
    /// Build the omap index of a namespace written by librmb alone (migration, once).
    Index,
    /// Save, read, verify and expunge one mail in the reserved canary namespace, timed.
    Canary,
    /// Measure save, read or list throughput and latency.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// rmb query: `K<op>V` predicates joined by `;` (e.g. `M=<guid>;U>10;R<2024-01-01`),
    /// `-` or `all` for every mail, `mb` for the mailbox list.
    #[arg(default_value = "-")]
    pub query: String,
    /// Order: uid, recv_date, save_date or phy_size.
    #[arg(long, default_value = "uid", value_parser = parse_sort)]
    pub sort: SortKey,
    /// librmb-style: list every object of the namespace and read its xattrs (cost grows with
    /// the pool), instead of reading the omap index (cost grows with the user).
    #[arg(long)]
    pub scan: bool,
    /// Only this mailbox (by name; index listing only).
    #[arg(long, conflicts_with = "scan")]
    pub mailbox: Option<String>,
    /// Print at most this many mails.
    #[arg(long)]
    pub limit: Option<usize>,
}

pub fn parse_sort(s: &str) -> Result<SortKey, String> {
    SortKey::parse(s).ok_or_else(|| {
        format!("unknown sort order {s:?}; use uid, recv_date, save_date or phy_size")
    })
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// A mail's object id (32 hex) — its body is written to stdout byte for byte — or an rmb
    /// query, whose mails are written to `<out>/<mailbox guid>/<uid>.<oid>`.
    pub target: String,
    /// Directory for query results (rmb -O) [default: $HOME/rmb].
    #[arg(short = 'O', long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Find query results by a namespace scan instead of the index.
    #[arg(long)]
    pub scan: bool,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// Object id of the mail.
    pub oid: String,
    /// Attribute pairs `K V [K V …]` (metadata letters; R and S accept `YYYY-MM-DD HH:MM:SS`).
    pub pairs: Vec<String>,
    /// Add a system flag (`\Seen`, `seen`, …) in the index and the object; repeatable.
    #[arg(long = "add-flag", value_name = "FLAG")]
    pub add_flags: Vec<String>,
    /// Remove a system flag; repeatable.
    #[arg(long = "remove-flag", value_name = "FLAG")]
    pub remove_flags: Vec<String>,
    /// Add a keyword; repeatable.
    #[arg(long = "add-keyword", value_name = "KEYWORD")]
    pub add_keywords: Vec<String>,
    /// Remove a keyword; repeatable.
    #[arg(long = "remove-keyword", value_name = "KEYWORD")]
    pub remove_keywords: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Object ids to delete (mails are expunged: index entry and object), or `-` for every
    /// object of the namespace, mail and index (and the user's mapping object).
    #[arg(required = true)]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub confirm: Confirm,
}

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Mailbox name.
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// File with the message [default: stdin].
    #[arg(long, short = 'f', value_name = "PATH")]
    pub file: Option<PathBuf>,
    /// Create the mailbox if it does not exist.
    #[arg(long)]
    pub create_mailbox: bool,
    /// System flags to set; repeatable.
    #[arg(long = "flag", value_name = "FLAG")]
    pub flags: Vec<String>,
    /// Keywords to set; repeatable.
    #[arg(long = "keyword", value_name = "KEYWORD")]
    pub keywords: Vec<String>,
    /// Received date (`YYYY-MM-DD HH:MM:SS` UTC or Unix seconds) [default: now].
    #[arg(long, value_name = "DATE")]
    pub received: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum CfgCommand {
    /// Print rbox_cfg (or the defaults in effect when it does not exist).
    Show {
        /// Print the object's bytes exactly as stored.
        #[arg(long)]
        raw: bool,
    },
    /// Create rbox_cfg with the defaults, changed by `key=value` settings.
    Create {
        /// Settings to change from the defaults.
        settings: Vec<String>,
        /// Overwrite an existing (e.g. malformed) object; needs --yes-i-really-mean-it.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        confirm: Confirm,
    },
    /// Change `key=value` settings of the existing rbox_cfg (all or nothing).
    Update {
        #[arg(required = true)]
        settings: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum MailboxCommand {
    /// List mailboxes with their counters (index).
    Ls {
        /// Also count each mailbox's mails and bytes (reads its records).
        #[arg(long)]
        usage: bool,
    },
    /// Create a mailbox.
    Create { name: String },
    /// Rename a mailbox.
    Rename { old: String, new: String },
    /// Delete a mailbox; --force expunges its mails first (needs --yes-i-really-mean-it).
    Delete {
        name: String,
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        confirm: Confirm,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Print the namespace a user maps to.
    Show { user: String },
    /// Create a user's mapping object (a fresh GUID namespace, or --namespace).
    Create {
        user: String,
        /// Map to this existing namespace instead of a fresh GUID.
        #[arg(long = "to", value_name = "NAMESPACE")]
        to: Option<String>,
    },
    /// Rename a user: the mapping moves to the new name, the mail stays (rmb rename).
    Rename { old: String, new: String },
    /// Remove a user's mapping object; the mail is not touched (needs --yes-i-really-mean-it).
    Delete {
        user: String,
        #[command(flatten)]
        confirm: Confirm,
    },
}

#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Fix what was found. Mail bodies are never deleted; removing zero-byte leftovers of
    /// interrupted saves needs --yes-i-really-mean-it as well.
    #[arg(long)]
    pub repair: bool,
    /// Leave objects younger than this alone [default: 3600].
    #[arg(long, value_name = "SECS")]
    pub grace: Option<u64>,
    /// Who wins when an object's valid M/U and its index record disagree: `objects` (a
    /// Dovecot with its own index, e.g. upstream's plugin, moved it: re-index) or `index`
    /// (stateless mode: rewrite M/U). Default: the namespace's setting; with --repair this
    /// becomes its setting.
    #[arg(long, value_enum, value_name = "WHO")]
    pub truth: Option<TruthArg>,
    #[command(flatten)]
    pub confirm: Confirm,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TruthArg {
    /// Valid object xattrs win; the index is brought in line with them.
    Objects,
    /// The index wins; object M/U are rewritten from it.
    Index,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchMode {
    /// Save mails: body, every xattr and the index entry.
    Save,
    /// Read every mail of the mailbox once (body + xattrs), like `rados bench seq`.
    Read,
    /// List the mailbox: through the index, or with --scan the librmb way.
    List,
    /// Remove the benchmark namespace given with -N/-u (needs --yes-i-really-mean-it).
    Cleanup,
    /// Sustained mixed load: save, read (byte-checked) and expunge, 10:7:3, errors counted
    /// and not fatal, ops/s and errors every --report-every seconds. Keeps its mails.
    Mixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SaveLayers {
    Full,
    Xattrs,
    Body,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    pub mode: BenchMode,
    /// Mail size in bytes (suffixes K, M: 4K, 64K).
    #[arg(short = 'b', long, default_value = "4K", value_parser = parse_size)]
    pub size: u64,
    /// Operations in flight (like `rados bench -t`).
    #[arg(short = 't', long, default_value_t = 16)]
    pub concurrency: usize,
    /// Run for this many seconds (save/read/mixed).
    #[arg(long, alias = "duration", default_value_t = 10, value_name = "SECS")]
    pub seconds: u64,
    /// mixed: print ops/s and errors every this many seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub report_every: u64,
    /// mixed: write `oid sha256 size` of every mail saved and not expunged to this file.
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<std::path::PathBuf>,
    /// Stop after this many operations (save/read) or listings (list) instead.
    #[arg(long)]
    pub count: Option<u64>,
    /// Mailbox to write to and read from.
    #[arg(long, default_value = "INBOX")]
    pub mailbox: String,
    /// Spread saves over this many mailboxes (`<mailbox>`, `<mailbox>.1`, …), like
    /// deliveries to several users; read and list cover all of them.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub mailboxes: u32,
    /// Keep the saved mails (for a later `bench read`/`list`); without -N/-u a fresh
    /// namespace is used and removed afterwards.
    #[arg(long)]
    pub keep: bool,
    /// list: scan the namespace (librmb) instead of reading the index.
    #[arg(long)]
    pub scan: bool,
    /// save: return once the body is written and index in the background (then flush).
    #[arg(long)]
    pub write_behind: bool,
    /// save: what each operation writes — `full` (a real save: body, xattrs, index), or for
    /// cost breakdowns `xattrs` (one op: body + the same xattrs, no index) or `body` (a plain
    /// object write, like `rados bench write`).
    #[arg(long, value_enum, default_value_t = SaveLayers::Full)]
    pub layers: SaveLayers,
    #[command(flatten)]
    pub confirm: Confirm,
}

/// `4096`, `4K`, `64k`, `1M` → bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1024),
        Some((i, 'm' | 'M')) => (&t[..i], 1024 * 1024),
        _ => (t, 1),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("size {s:?}: use bytes or a K/M suffix, like 4K"))?;
    n.checked_mul(mult)
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("size {s:?} must be between 1 byte and 2^64"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("rbox").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn connection_and_target_options_are_global() {
        let c = parse(&[
            "ls",
            "U>3;B=INBOX",
            "-p",
            "mp",
            "--index-pool",
            "ip",
            "-N",
            "alice_u",
            "--id",
            "rbox",
            "-c",
            "/x/ceph.conf",
            "--sort",
            "recv_date",
            "--json",
        ])
        .unwrap();
        assert_eq!(c.target.pool, "mp");
        assert_eq!(c.target.index_pool, "ip");
        assert_eq!(c.target.namespace.as_deref(), Some("alice_u"));
        assert_eq!(c.conn.entity().unwrap(), "client.rbox");
        assert!(c.json);
        let Command::Ls(ls) = c.command else {
            panic!("not ls")
        };
        assert_eq!(ls.query, "U>3;B=INBOX");
        assert_eq!(ls.sort, SortKey::RecvDate);
    }

    #[test]
    fn defaults_follow_upstream() {
        let c = parse(&["lspools"]).unwrap();
        assert_eq!(c.target.pool, "mail_storage");
        assert_eq!(c.target.index_pool, "object_recovery");
        assert_eq!(c.target.cfg_object, "rbox_cfg");
        assert_eq!(c.conn.cluster, "ceph");
        assert_eq!(c.conn.entity().unwrap(), "client.admin");
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        for args in [
            &["ls", "--sort", "size"][..],
            &["-N", "a", "-u", "b", "ls"],
            &["bench", "save", "-b", "4X"],
            &["bench", "fly"],
            &["delete"],
            &["cfg", "update"],
            &["frobnicate"],
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args:?}: {e}");
        }
    }

    #[test]
    fn entity_names() {
        let mut c = parse(&["lspools", "--name", "client.x"]).unwrap().conn;
        assert_eq!(c.entity().unwrap(), "client.x");
        c.name = Some("x".into());
        assert!(c.entity().unwrap_err().contains("--id x"));
        c.id = Some("y".into());
        assert!(c.entity().is_err());
    }

    #[test]
    fn confirmation_accepts_rmb_spelling() {
        let c = parse(&["delete", "-", "--yes-i-really-really-mean-it"]).unwrap();
        let Command::Delete(d) = c.command else {
            panic!("not delete")
        };
        assert!(d.confirm.yes);
    }

    use proptest::prelude::Strategy;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::with_cases(1024)
        })]

        /// Any command line parses or is a clean usage error (exit 2), never a panic.
        #[test]
        fn arbitrary_command_lines_never_panic_1024_cases(
            args in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        "ls", "get", "set", "delete", "save", "cfg", "show", "create", "update",
                        "lspools", "mailbox", "fsck", "index", "canary", "bench", "save", "read",
                        "list", "-", "-N", "-u", "-p", "--sort", "--repair", "--json", "-b", "-t",
                        "--yes-i-really-mean-it", "--layers", "--count", "--grace",
                    ]).prop_map(String::from),
                    ".{0,12}",
                ],
                0..8,
            )
        ) {
            let mut argv = vec!["rbox".to_string()];
            argv.extend(args);
            if let Err(e) = Cli::try_parse_from(&argv) {
                proptest::prop_assert!(matches!(e.exit_code(), 0 | 2), "{e}");
            }
        }

        /// Sizes parse to exactly n × unit, and anything else is refused without a panic.
        #[test]
        fn sizes_parse_exactly_1024_cases(n in 1u64..(1 << 40), unit in 0usize..3, junk in ".{0,10}") {
            let (suffix, mult) = [("", 1u64), ("K", 1024), ("m", 1 << 20)][unit];
            proptest::prop_assert_eq!(parse_size(&format!("{n}{suffix}")), Ok(n * mult));
            let _ = parse_size(&junk);
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_size("100"), Ok(100));
        assert!(parse_size("0").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999999999K").is_err());
    }
}
