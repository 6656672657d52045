//! `rbox`: the Rust counterpart of upstream's `rmb` (see `docs/rbox-cli.md`).

fn main() -> std::process::ExitCode {
    rbox_core::cli::main()
}
