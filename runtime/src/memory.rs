//! Memory budgets: how much this machine can give a job, and parsing of
//! sizes given on the command line (`4G`, `512M`, `75%`).

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
}
