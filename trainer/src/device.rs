//! Choosing the training device. Every backend runs the same model code
//! (burn dispatches on the [`Device`]); the name picks one:
//!
//! | `--device`          | backend                                  | cargo feature |
//! |---------------------|------------------------------------------|---------------|
//! | `cpu`               | burn's Flex (pure Rust, the default)     | —             |
//! | `torch`             | LibTorch on the CPU                      | `tch`         |
//! | `torch-cuda[:N]`    | LibTorch on CUDA GPU N                   | `tch`         |
//! | `wgpu[:N]`          | burn's wgpu (Vulkan/Metal/DX12) adapter N | `wgpu`        |
//! | `cuda[:N]`          | burn's CUDA backend                      | `cuda`        |
//! | `auto`              | the fastest of those built and present   | —             |
//!
//! `auto` prefers a CUDA GPU (burn's `cuda`, then LibTorch's), then
//! LibTorch on the CPU, then Flex. It never picks wgpu, whose adapter may
//! be a software rasteriser; name it to use it.

use anyhow::{bail, Result};
use burn::prelude::*;

/// A training device and the name it was chosen by (`auto` resolved).
#[derive(Clone, Debug)]
pub struct Chosen {
    pub device: Device,
    /// The resolved `--device` value, e.g. `torch` or `cuda:0`.
    pub name: String,
}

/// Parse a `--device` value into a device (for `auto`, the fastest one
/// built into this binary and present on this machine).
pub fn parse_device(s: &str) -> Result<Device> {
    Ok(choose_device(s)?.device)
}

/// Parse a `--device` value, keeping the resolved name.
pub fn choose_device(s: &str) -> Result<Chosen> {
    let s = s.trim().to_ascii_lowercase();
    if s == "auto" {
        let name = auto_name();
        let device = named_device(&name)?;
        eprintln!("--device auto: {name}");
        return Ok(Chosen { device, name });
    }
    let device = named_device(&s)?;
    Ok(Chosen { device, name: s })
}

/// The devices of a run from `--device` and `--devices`: with `--devices`
/// (data parallel) the first one named holds the model and the rest share
/// each batch; the name joins them (`cpu,torch`).
pub fn choose_devices(device: &str, devices: &[String]) -> Result<(Chosen, Vec<Device>)> {
    if devices.is_empty() {
        return Ok((choose_device(device)?, Vec::new()));
    }
    let chosen: Vec<Chosen> = devices.iter().map(|d| choose_device(d)).collect::<Result<_>>()?;
    for (i, a) in chosen.iter().enumerate() {
        if let Some(b) = chosen[..i].iter().find(|b| b.device == a.device) {
            bail!("--devices names one device twice ({} and {})", b.name, a.name);
        }
    }
    let name = chosen.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(",");
    let mut it = chosen.into_iter();
    let first = it.next().expect("at least one device");
    Ok((
        Chosen {
            device: first.device,
            name,
        },
        it.map(|c| c.device).collect(),
    ))
}

/// The devices `--device` accepts in this build, for messages.
pub fn built_devices() -> Vec<&'static str> {
    let mut v = vec!["cpu"];
    if cfg!(feature = "tch") {
        v.extend(["torch", "torch-cuda[:N]"]);
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu[:N]");
    }
    if cfg!(feature = "cuda") {
        v.push("cuda[:N]");
    }
    v.push("auto");
    v
}

fn auto_name() -> String {
    #[cfg(feature = "cuda")]
    {
        // burn's CUDA runtime panics when no driver is present: probe it
        // without letting the panic reach the user.
        let probe = std::panic::catch_unwind(|| {
            let d = Device::cuda(0);
            Tensor::<1>::zeros([1], &d).into_data();
        });
        if probe.is_ok() {
            return "cuda:0".into();
        }
    }
    #[cfg(feature = "tch")]
    {
        if tch::Cuda::is_available() {
            return "torch-cuda:0".into();
        }
        return "torch".into();
    }
    #[allow(unreachable_code)]
    "cpu".into()
}

fn index_of(s: &str, prefix: &str) -> Result<Option<usize>> {
    match s.strip_prefix(prefix) {
        None => Ok(None),
        Some(rest) => match rest.strip_prefix(':') {
            Some(n) => n
                .parse()
                .map(Some)
                .map_err(|_| anyhow::anyhow!("invalid device index in --device {s:?}")),
            None if rest.is_empty() => Ok(None),
            None => bail!("unknown --device {s:?}: use {}", built_devices().join(", ")),
        },
    }
}

fn is_family(s: &str, family: &str) -> bool {
    s == family || s.starts_with(&format!("{family}:"))
}

fn named_device(s: &str) -> Result<Device> {
    if s == "cpu" || s == "flex" {
        return Ok(Device::flex());
    }
    if s == "torch" {
        #[cfg(feature = "tch")]
        #[allow(deprecated)] // burn-tch is one backend among several here
        return Ok(Device::libtorch());
        #[cfg(not(feature = "tch"))]
        bail!("--device torch needs a trainer built with the `tch` feature (see README: LibTorch backend)");
    }
    if is_family(s, "torch-cuda") {
        let index = index_of(s, "torch-cuda")?.unwrap_or(0);
        #[cfg(feature = "tch")]
        {
            let count = tch::Cuda::device_count() as usize;
            if index >= count {
                bail!("--device {s}: LibTorch sees {count} CUDA device(s)");
            }
            #[allow(deprecated)]
            return Ok(Device::libtorch_cuda(index));
        }
        #[cfg(not(feature = "tch"))]
        {
            let _ = index;
            bail!("--device {s} needs a trainer built with the `tch` feature (see README: LibTorch backend)");
        }
    }
    if is_family(s, "wgpu") {
        let index = index_of(s, "wgpu")?;
        #[cfg(feature = "wgpu")]
        {
            use burn::tensor::DeviceKind;
            return Ok(match index {
                None => Device::wgpu(DeviceKind::DefaultDevice),
                Some(i) => Device::wgpu(DeviceKind::DiscreteGpu(i)),
            });
        }
        #[cfg(not(feature = "wgpu"))]
        {
            let _ = index;
            bail!("--device {s} needs a trainer built with the `wgpu` feature (cargo build --release -p edge-seg-trainer --features wgpu)");
        }
    }
    if is_family(s, "cuda") {
        let index = index_of(s, "cuda")?.unwrap_or(0);
        #[cfg(feature = "cuda")]
        {
            return Ok(Device::cuda(index));
        }
        #[cfg(not(feature = "cuda"))]
        {
            let _ = index;
            bail!("--device {s} needs a trainer built with the `cuda` feature (cargo build --release -p edge-seg-trainer --features cuda; its build downloads LLVM)");
        }
    }
    bail!("unknown --device {s:?}: use {}", built_devices().join(", "))
}

/// Keep freed memory for reuse instead of returning large blocks to the
/// system: burn's CPU backend allocates a fresh buffer per tensor op, and
/// with glibc's defaults every large buffer is a new mmap whose pages fault
/// in one by one. Measured on a 2-core machine: a ReLU forward+backward
/// over 45 M values took 0.93 s before and 0.19 s after; a training step
/// of the default network 19.3 s before and 15.2 s after.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called at start-up
    // before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Let writes beyond a file-size limit (RLIMIT_FSIZE, e.g. a disk quota)
/// fail with an error instead of killing the process with SIGXFSZ, so a
/// failed checkpoint write is reported and the previous checkpoint kept.
pub fn report_file_size_limits() {
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to "ignore" at start-up.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Use `n` threads for CPU work (must run before any tensor work): rayon's
/// pool (Flex, data loading) and, when built, LibTorch's intra-op pool.
pub fn set_threads(n: usize) -> Result<()> {
    if n == 0 {
        bail!("--threads must be at least 1");
    }
    #[cfg(feature = "tch")]
    tch::set_num_threads(n as i32);
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build_global()
        .map_err(|e| anyhow::anyhow!("cannot set {n} threads: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse() {
        assert!(parse_device("cpu").is_ok());
        assert!(parse_device("auto").is_ok());
        let e = parse_device("tpu").unwrap_err().to_string();
        assert!(e.contains("unknown --device") && e.contains("cpu"), "{e}");
        let e = parse_device("cuda:x").unwrap_err().to_string();
        assert!(e.contains("invalid device index"), "{e}");
        #[cfg(not(feature = "cuda"))]
        assert!(parse_device("cuda:1")
            .unwrap_err()
            .to_string()
            .contains("`cuda` feature"));
        #[cfg(not(feature = "tch"))]
        assert!(parse_device("torch").unwrap_err().to_string().contains("`tch` feature"));
        #[cfg(feature = "tch")]
        assert_eq!(choose_device("torch").unwrap().name, "torch");
    }

    #[test]
    fn auto_prefers_what_is_built() {
        let chosen = choose_device("auto").unwrap();
        if cfg!(feature = "tch") {
            assert!(chosen.name.starts_with("torch"), "{}", chosen.name);
        } else if !cfg!(feature = "cuda") {
            assert_eq!(chosen.name, "cpu");
        }
    }
}
