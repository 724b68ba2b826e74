fn main() -> std::process::ExitCode {
    edge_seg_trainer::cli::main()
}
