//! The `rbox` command-line tool (feature `cli`): the Rust counterpart of upstream's `rmb`.
//! One file per subcommand group; `docs/rbox-cli.md` documents every command, option and
//! exit code (a test keeps the two in step).

mod args;
mod bench;
mod bench_mixed;
mod cfg;
mod connect;
mod error;
mod fsck;
mod ls;
mod mail;
mod mailbox;
mod misc;
mod output;
mod user;

use std::process::ExitCode;

use clap::Parser;

pub use args::{Cli, Command};
pub use error::{CliError, EXIT_CODES_HELP, exit};

/// Parse the command line, run, and turn the outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors.
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rbox: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let code = match rt.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rbox: {e}");
            ExitCode::from(e.exit_code())
        }
    };
    // Tasks still holding a pool are dropped with the runtime; exit only once every
    // librados client is shut down (exiting under librados' threads can crash).
    drop(rt);
    let _ = crate::rados::wait_for_shutdowns(std::time::Duration::from_secs(30));
    code
}

/// Run one parsed command; `Ok` carries the exit code (fsck reports findings with 3).
pub async fn run(cli: Cli) -> Result<u8, CliError> {
    let (json, quiet) = (cli.json, cli.quiet);
    // Check what needs no cluster before connecting.
    if let Command::Ls(a) = &cli.command
        && a.query != "mb"
    {
        crate::format::query::Query::parse(&a.query).map_err(|e| CliError::Usage(e.to_string()))?;
    }
    connect::check_target(&cli.target)?;
    let backend = connect::backend(&cli.conn).await?;
    let mut config = connect::store_config(&cli.target);
    match &cli.command {
        Command::Lspools => {
            misc::lspools(backend.as_ref(), json).await?;
            return Ok(exit::OK);
        }
        Command::Cfg(c) => {
            cfg::run(backend, &cli.target, c, json).await?;
            return Ok(exit::OK);
        }
        Command::Bench(a) => {
            config.index_write_behind = a.write_behind;
            config.uid_prefetch = crate::StoreConfig::new("", "").uid_prefetch;
        }
        _ => {}
    }
    let store = connect::open(backend, config).await?;
    let target = connect::target(&cli.target);
    match &cli.command {
        Command::Canary => {
            let sp = match target {
                Some(_) => Some(connect::mailspace(&store, &cli.target).await?),
                None => None,
            };
            misc::canary(&store, sp, json).await?;
            return Ok(exit::OK);
        }
        Command::User(c) => {
            user::run(&store, c, json).await?;
            return Ok(exit::OK);
        }
        Command::Bench(a) => {
            let sp = match target {
                Some(_) => Some(connect::mailspace(&store, &cli.target).await?),
                None => None,
            };
            bench::run(&store, sp, a, json, quiet).await?;
            return Ok(exit::OK);
        }
        _ => {}
    }
    let sp = connect::mailspace(&store, &cli.target).await?;
    match &cli.command {
        Command::Ls(a) if a.query == "mb" => {
            mailbox::run(&sp, &args::MailboxCommand::Ls { usage: false }, json).await?
        }
        Command::Ls(a) => ls::ls(&sp, a, json, quiet).await?,
        Command::Get(a) => ls::get(&sp, a, json, quiet).await?,
        Command::Set(a) => mail::set(&sp, a, json).await?,
        Command::Delete(a) => mail::delete(&store, &sp, target.as_ref(), a, json).await?,
        Command::Save(a) => mail::save(&sp, a, json).await?,
        Command::Mailbox(c) => mailbox::run(&sp, c, json).await?,
        Command::Fsck(a) => return fsck::fsck(&sp, a, json, quiet).await,
        Command::Index => return fsck::index(&sp, json, quiet).await,
        Command::Lspools
        | Command::Cfg(_)
        | Command::Canary
        | Command::Bench(_)
        | Command::User(_) => {}
    }
    Ok(exit::OK)
}
