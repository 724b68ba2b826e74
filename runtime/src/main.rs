//! `edge-seg`: the runtime's command line.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
