fn main() -> std::process::ExitCode {
    edge_seg_trainer::device::tune_allocator();
    edge_seg_trainer::device::report_file_size_limits();
    edge_seg_trainer::cli::main()
}
