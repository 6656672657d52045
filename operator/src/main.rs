//! rbox-operator: reconciles MailCluster, MailPool and DovecotFleet resources.

// Modules live in lib.rs (so they are testable and shared with integration tests).
use clap::{Parser, Subcommand};
use rbox_operator::run;

#[derive(Debug, Parser)]
#[command(
    name = "rbox-operator",
    version,
    about = "Kubernetes operator for Dovecot mail on Ceph"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the operator (watches MailCluster, MailPool and DovecotFleet resources).
    Run(run::RunArgs),
    /// Print the CRDs generated from the API types (or write them with --out / --doc).
    Crd(rbox_operator::api::crd::CrdArgs),
    /// Print the version and exit.
    Version,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run(args) => run::run(args).await?,
        Command::Crd(args) => rbox_operator::api::crd::run(&args)?,
        Command::Version => println!("rbox-operator {}", env!("CARGO_PKG_VERSION")),
    }
    Ok(())
}
