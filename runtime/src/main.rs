fn main() -> std::process::ExitCode {
    edge_seg_runtime::cli::main()
}
