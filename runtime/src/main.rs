//! `edge-seg`: the runtime's command line.

mod cli;

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    cli::main()
}

/// Keep freed memory in the process for reuse (glibc on Linux). By default
/// glibc maps every block above 32 MiB on its own and unmaps it when freed,
/// so each tile's activations (hundreds of MB for the paper network) are
/// mapped afresh and the kernel faults in and zeroes every page again: 10 %
/// of a 132³ tile's time. With large blocks taken from the heap, and the
/// heap not trimmed, a tile reuses the pages the previous one freed, as
/// onnxruntime's arena does. The peak stays within the tile estimate of
/// `edge_seg_runtime::memory::tile_memory` (BENCHMARKS.md).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before
    // any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
