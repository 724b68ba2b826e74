//! Adapters and devices: the adapters wgpu finds (Vulkan, Metal or DirectX
//! 12; `WGPU_BACKEND` narrows the set), picking one by index or by name,
//! and opening a device with the adapter's own limits (not wgpu's
//! defaults), so large GPUs get their full binding and buffer sizes.

use std::future::Future;

/// An open device and what it allows.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub limits: wgpu::Limits,
}

fn backends() -> wgpu::Backends {
    wgpu::Backends::from_env().unwrap_or(wgpu::Backends::PRIMARY)
}

/// Every adapter wgpu finds, in its order.
pub fn adapters() -> Vec<wgpu::Adapter> {
    without_wayland_noise(|| {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: backends(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        block_on(instance.enumerate_adapters(backends()))
    })
}

/// Runs `f` (a Vulkan probe) with the process's standard error sent to
/// /dev/null when `XDG_RUNTIME_DIR` is unset or not a folder: Mesa's Vulkan
/// drivers then load libwayland, which prints `error: XDG_RUNTIME_DIR is
/// invalid or not set in the environment.` for every probe although
/// nothing is wrong (we draw nothing on screen). Errors of the probe itself
/// come back as values, not as text on standard error.
#[cfg(unix)]
fn without_wayland_noise<T>(f: impl FnOnce() -> T) -> T {
    let runtime_dir_ok = std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    if runtime_dir_ok {
        return f();
    }
    /// Puts the saved standard error back, also when `f` panics.
    struct Restore(libc::c_int);
    impl Drop for Restore {
        fn drop(&mut self) {
            // SAFETY: `self.0` is a descriptor this process duplicated from 2
            // and still owns; dup2 onto 2 and close are plain syscalls.
            unsafe {
                libc::dup2(self.0, 2);
                libc::close(self.0);
            }
        }
    }
    // SAFETY: plain descriptor syscalls on descriptors this function opens;
    // every failure leaves standard error as it was.
    let restore = unsafe {
        let saved = libc::dup(2);
        if saved < 0 {
            return f();
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if null < 0 {
            libc::close(saved);
            return f();
        }
        libc::dup2(null, 2);
        libc::close(null);
        Restore(saved)
    };
    let out = f();
    drop(restore);
    out
}

#[cfg(not(unix))]
fn without_wayland_noise<T>(f: impl FnOnce() -> T) -> T {
    f()
}

/// The adapters' descriptions, one per adapter, in `--gpu` index order.
pub fn adapter_infos() -> Vec<wgpu::AdapterInfo> {
    adapters().iter().map(wgpu::Adapter::get_info).collect()
}

/// One line for an adapter: `0: llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, CPU)`.
pub fn describe(index: usize, info: &wgpu::AdapterInfo) -> String {
    let kind = match info.device_type {
        wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        wgpu::DeviceType::VirtualGpu => "virtual GPU",
        wgpu::DeviceType::Cpu => "CPU",
        wgpu::DeviceType::Other => "other",
    };
    format!("{index}: {} ({:?}, {kind})", info.name, info.backend)
}

/// The list of adapters for messages.
pub fn list(infos: &[wgpu::AdapterInfo]) -> String {
    if infos.is_empty() {
        return "none".into();
    }
    infos
        .iter()
        .enumerate()
        .map(|(i, a)| describe(i, a))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Preference without a selector: discrete, integrated, virtual GPUs, then
/// software adapters.
fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

/// Pick an adapter: `selector` is an index into `infos` or a
/// case-insensitive part of an adapter's name (the first match wins);
/// without one, the most capable kind.
pub fn pick(infos: &[wgpu::AdapterInfo], selector: Option<&str>) -> Result<usize, String> {
    if infos.is_empty() {
        return Err("wgpu found no GPU adapter (no Vulkan, Metal or DirectX 12 driver)".into());
    }
    let Some(sel) = selector.map(str::trim) else {
        return Ok((0..infos.len())
            .min_by_key(|&i| rank(infos[i].device_type))
            .expect("not empty"));
    };
    let found = match sel.parse::<usize>() {
        Ok(i) => (i < infos.len()).then_some(i),
        Err(_) => {
            let want = sel.to_lowercase();
            infos.iter().position(|a| a.name.to_lowercase().contains(&want))
        }
    };
    found.ok_or_else(|| {
        format!(
            "no GPU adapter matches --gpu {sel:?}; available adapters: {}",
            list(infos)
        )
    })
}

/// Open the picked adapter's device with the adapter's limits.
pub fn open(selector: Option<&str>) -> Result<Gpu, String> {
    let adapters = adapters();
    let infos: Vec<wgpu::AdapterInfo> = adapters.iter().map(wgpu::Adapter::get_info).collect();
    let adapter = &adapters[pick(&infos, selector)?];
    let info = adapter.get_info();
    let limits = adapter.limits();
    let (device, queue) = block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("edge-seg"),
        required_limits: limits.clone(),
        ..Default::default()
    }))
    .map_err(|e| format!("cannot open {}: {e}", info.name))?;
    // Errors are collected by error scopes around each operation; anything
    // outside them is reported rather than aborting the process.
    device.on_uncaptured_error(std::sync::Arc::new(|e: wgpu::Error| {
        eprintln!("edge-seg: wgpu error: {e}");
    }));
    Ok(Gpu {
        device,
        queue,
        info,
        limits,
    })
}

/// Wait for a wgpu future.
pub fn block_on<F: Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(name: &str, device_type: wgpu::DeviceType) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo {
            name: name.into(),
            ..wgpu::AdapterInfo::new(device_type, wgpu::Backend::Vulkan)
        }
    }

    #[test]
    fn picks_by_kind_index_and_name() {
        let infos = [
            info("llvmpipe (LLVM 15.0.6, 256 bits)", wgpu::DeviceType::Cpu),
            info("NVIDIA H100 80GB HBM3", wgpu::DeviceType::DiscreteGpu),
        ];
        assert_eq!(pick(&infos, None), Ok(1));
        assert_eq!(pick(&infos, Some("0")), Ok(0));
        assert_eq!(pick(&infos, Some("h100")), Ok(1));
        assert_eq!(pick(&infos, Some("LLVMPIPE")), Ok(0));
        let e = pick(&infos, Some("nosuchgpu")).unwrap_err();
        assert!(
            e.contains("nosuchgpu") && e.contains("0: llvmpipe") && e.contains("1: NVIDIA H100"),
            "{e}"
        );
        assert!(pick(&infos, Some("2")).unwrap_err().contains("available adapters"));
        assert!(pick(&[], None).unwrap_err().contains("no GPU adapter"));
    }
}
