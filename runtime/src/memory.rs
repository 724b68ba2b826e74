//! Memory budgets: how much this machine can give a job, what a job needs
//! (a tile's forward pass, the volume's copies) and the tile that fits, and
//! parsing of sizes given on the command line (`4G`, `512M`, `75%`).

use edge_seg_models::card::ModelCard;
use edge_seg_models::spec::Padding;

/// Bytes of memory available now (Linux `MemAvailable`), if known.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Fallback when the available memory cannot be read.
const FALLBACK_AVAILABLE: u64 = 4 << 30;

/// The default budget for one job: 75 % of the memory available now.
pub fn default_budget() -> u64 {
    available_bytes().unwrap_or(FALLBACK_AVAILABLE) / 4 * 3
}

/// The default limit for reading one volume (its f32 voxels and raw bytes):
/// the memory available now.
pub fn default_volume_limit() -> u64 {
    available_bytes().unwrap_or(FALLBACK_AVAILABLE)
}

/// Parse a size: plain bytes, a `K`/`M`/`G`/`T` suffix (powers of 1024,
/// optional trailing `B` or `iB`), or a percentage of the available memory.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if let Some(p) = t.strip_suffix('%') {
        let pct: f64 = p.trim().parse().map_err(|_| format!("invalid percentage {text:?}"))?;
        if !(pct > 0.0 && pct <= 100.0) {
            return Err(format!("percentage {text:?} must be in (0, 100]"));
        }
        let avail = available_bytes().unwrap_or(FALLBACK_AVAILABLE) as f64;
        return Ok((avail * pct / 100.0) as u64);
    }
    let upper = t.to_ascii_uppercase();
    let body = upper.trim_end_matches("IB").trim_end_matches('B');
    let (num, mult) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 1u64 << 10),
        Some('M') => (&body[..body.len() - 1], 1 << 20),
        Some('G') => (&body[..body.len() - 1], 1 << 30),
        Some('T') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid size {text:?} (examples: 800M, 4G, 50%)"))?;
    if !(v.is_finite() && v > 0.0) {
        return Err(format!("size {text:?} must be positive"));
    }
    Ok((v * mult as f64) as u64)
}

/// Human-readable bytes (`1.5 GiB`).
pub fn format_bytes(bytes: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

/// Estimated peak bytes of one tile's forward pass: every activation of
/// the network, with a factor for temporary buffers.
pub fn tile_memory(card: &ModelCard, tile: [usize; 3]) -> u64 {
    let spec = &card.network;
    let traces: Vec<_> = tile.iter().map(|&t| spec.trace_axis(t)).collect();
    if traces.iter().any(|t| t.is_none()) {
        return u64::MAX;
    }
    let t: Vec<_> = traces.into_iter().map(|t| t.unwrap()).collect();
    let mut floats = 0u64;
    let mut conv = 0;
    for layer in spec.layers() {
        if let edge_seg_models::spec::LayerKind::Conv3 { cout, .. } = layer.kind {
            let vox = (t[0].conv_out[conv] * t[1].conv_out[conv] * t[2].conv_out[conv]) as u64;
            floats += vox * cout as u64;
            conv += 1;
        }
    }
    let input = tile.iter().map(|&v| v as u64).product::<u64>();
    floats += input + (t[0].output * t[1].output * t[2].output) as u64 * spec.classes as u64 * 2;
    floats * 4 * 3 / 2
}

/// Estimated bytes for the volume side of a job: the scan, its canonical
/// copy, the model-grid image, label maps at both resolutions,
/// `score_channels` floats per model voxel when scores are resampled (0
/// when labels are), and with `postprocess` the connected-component map
/// and mask at the scan's resolution.
pub fn volume_memory(scan_voxels: u64, model_voxels: u64, score_channels: usize, postprocess: bool) -> u64 {
    let per_scan_voxel = 4 + 4 + 2 + 2 + if postprocess { 4 + 1 } else { 0 };
    scan_voxels * per_scan_voxel + model_voxels * (4 + 4 + 2 + 4 * score_channels as u64)
}

/// Model-grid shape for a scan of `shape` (i, j, k) and `spacing` (i, j, k).
pub fn model_grid_estimate(shape: [usize; 3], spacing: [f64; 3], card: &ModelCard) -> [usize; 3] {
    // Reorientation permutes axes; the product is what matters for memory,
    // and each axis is bounded by the largest extent.
    let extents: Vec<f64> = (0..3).map(|d| shape[d] as f64 * spacing[d]).collect();
    let mut sorted = extents.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let s = card.spacing_mm;
    let min_sp = s.iter().cloned().fold(f64::INFINITY, f64::min);
    [0, 1, 2].map(|d| ((sorted[d] / min_sp).ceil() as usize).max(1))
}

/// The tile for a model grid: the largest legal edge whose forward pass fits
/// `budget`, capped per axis at the smallest legal size that covers the
/// axis in one tile.
pub fn choose_tile(
    card: &ModelCard,
    grid: [usize; 3],
    budget: u64,
    forced: Option<usize>,
) -> Result<[usize; 3], String> {
    let spec = &card.network;
    let margin = match spec.padding {
        Padding::Valid => spec.margin(),
        Padding::Same => 0,
    };
    let cap = grid.map(|n| {
        let want = n + margin;
        (want..want + 64 * spec.pool_factor() + 512)
            .find(|&s| spec.is_legal_input(s))
            .unwrap_or(want)
    });
    let max_edge = forced.unwrap_or(*cap.iter().max().unwrap());
    let candidates = spec.legal_input_sizes(max_edge.max(spec.smallest_input()));
    let mut chosen = None;
    for &edge in candidates.iter().rev() {
        let tile = cap.map(|c| c.min(edge));
        // A capped axis may need a legal size below `edge`.
        let tile = tile.map(|t| {
            if spec.is_legal_input(t) {
                t
            } else {
                *spec.legal_input_sizes(t).last().unwrap_or(&edge)
            }
        });
        if tile_memory(card, tile) <= budget {
            chosen = Some(tile);
            break;
        }
    }
    chosen.ok_or_else(|| {
        let smallest = [spec.smallest_input(); 3];
        format!(
            "even the smallest tile {:?} needs {} for its forward pass, more than the memory budget of {}",
            smallest,
            format_bytes(tile_memory(card, smallest)),
            format_bytes(budget)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert!(parse_size("50%").unwrap() > 0);
        assert!(parse_size("abc").is_err());
        assert!(parse_size("-3G").is_err());
        assert!(parse_size("0").is_err());
        assert!(parse_size("150%").is_err());
    }

    #[test]
    fn bytes_format() {
        assert_eq!(format_bytes(12), "12 B");
        assert_eq!(format_bytes(3 << 30), "3.0 GiB");
    }

    use edge_seg_models::card::{Intensity, Modality};
    use edge_seg_models::NetworkSpec;

    fn card(filters: usize) -> ModelCard {
        let spec = NetworkSpec {
            base_filters: filters,
            ..NetworkSpec::paper(14)
        };
        ModelCard::new(
            "t",
            Modality::CT,
            &edge_seg_models::labels::BASE_LABELS,
            spec,
            [3.0; 3],
            Intensity::ct_default(),
            [132; 3],
        )
        .unwrap()
    }

    #[test]
    fn paper_tile_memory_is_about_a_gigabyte() {
        let m = tile_memory(&card(32), [132; 3]);
        assert!(m > 1 << 30 && m < 3 << 30, "{}", format_bytes(m));
    }

    #[test]
    fn tiles_grow_with_the_budget_and_stop_at_the_volume() {
        let c = card(8);
        let small = choose_tile(&c, [300, 300, 300], 200 << 20, None).unwrap();
        let large = choose_tile(&c, [300, 300, 300], 8 << 30, None).unwrap();
        assert!(large[0] > small[0], "{small:?} vs {large:?}");
        // A small volume needs no tile larger than itself plus the margin.
        let t = choose_tile(&c, [10, 20, 30], 8 << 30, None).unwrap();
        assert_eq!(t, [100, 108, 124]);
        assert!(choose_tile(&c, [300; 3], 1 << 20, None).unwrap_err().contains("budget"));
        // A forced edge is respected.
        assert_eq!(choose_tile(&c, [300; 3], 8 << 30, Some(140)).unwrap(), [140; 3]);
    }
}
