//! The `verisim` command line.

fn main() {
    eprintln!("verisim {}: no subcommands yet (see README.md)", env!("CARGO_PKG_VERSION"));
    std::process::exit(2);
}
