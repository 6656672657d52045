//! rbox-operator: reconciles MailCluster, MailPool and DovecotFleet resources.

use clap::{Parser, Subcommand};

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
    /// Print the version and exit.
    Version,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Version => println!("rbox-operator {}", env!("CARGO_PKG_VERSION")),
    }
    Ok(())
}
