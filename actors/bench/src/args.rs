//! Argument parsers of `verisim-bench`: durations (`10s`, `500ms`, `2m`), comma-separated
//! concurrency levels and entity counts, and where etcd comes from.

use std::path::PathBuf;
use std::time::Duration;

/// `10s`, `500ms`, `2m` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (use ms, s or m)")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{s}` must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `1,16,64,256`: positive, at most 4096 each.
pub fn parse_levels(s: &str) -> Result<Vec<usize>, String> {
    let levels: Vec<usize> = s
        .split(',')
        .map(|p| {
            let p = p.trim();
            match p.parse::<usize>() {
                Ok(n) if (1..=4096).contains(&n) => Ok(n),
                _ => Err(format!("`{p}` is not a concurrency level in 1..=4096")),
            }
        })
        .collect::<Result<_, _>>()?;
    if levels.is_empty() {
        return Err("give at least one concurrency level".into());
    }
    Ok(levels)
}

/// The most entities a `--preload` level may ask for (the registry of 1M takes ≈ 1.3 GB per node).
pub const MAX_PRELOAD: u64 = 100_000_000;

/// `0,100k,1M` (or `0,100000,1000000`): entity counts, each at most [`MAX_PRELOAD`], a `k` or `M`
/// suffix multiplying by 1,000 or 1,000,000.
pub fn parse_counts(s: &str) -> Result<Vec<u64>, String> {
    s.split(',')
        .map(|p| {
            let p = p.trim();
            let (digits, scale) = match p.strip_suffix(['k', 'K']) {
                Some(d) => (d, 1_000),
                None => match p.strip_suffix('M') {
                    Some(d) => (d, 1_000_000),
                    None => (p, 1),
                },
            };
            digits
                .parse::<u64>()
                .ok()
                .and_then(|n| n.checked_mul(scale))
                .filter(|&n| n <= MAX_PRELOAD)
                .ok_or_else(|| {
                    format!("`{p}` is not an entity count like 0, 100000, 100k or 1M (at most {MAX_PRELOAD})")
                })
        })
        .collect()
}

/// Where the etcd comparison gets its binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtcdMode {
    /// `etcd` on the PATH if there is one; skipped (loudly) otherwise.
    Auto,
    Off,
    Path(PathBuf),
}

pub fn parse_etcd(s: &str) -> Result<EtcdMode, String> {
    Ok(match s {
        "auto" => EtcdMode::Auto,
        "off" => EtcdMode::Off,
        "" => return Err("give auto, off or a path to the etcd binary".into()),
        p => EtcdMode::Path(PathBuf::from(p)),
    })
}

impl EtcdMode {
    /// The binary to run, or why the comparison is skipped.
    pub fn binary(&self) -> Result<PathBuf, String> {
        match self {
            EtcdMode::Off => Err("--etcd off".into()),
            EtcdMode::Path(p) if p.is_file() => Ok(p.clone()),
            EtcdMode::Path(p) => Err(format!("{} is not a file", p.display())),
            EtcdMode::Auto => std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths)
                .map(|d| d.join("etcd"))
                .find(|p| p.is_file())
                .ok_or_else(|| {
                    "no `etcd` on the PATH (apt-get install etcd-server, or --etcd <path>)".into()
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_refuse_nonsense() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn levels_are_positive_and_bounded() {
        assert_eq!(parse_levels("1,16, 64,256"), Ok(vec![1, 16, 64, 256]));
        assert_eq!(parse_levels("8"), Ok(vec![8]));
        assert!(parse_levels("0").is_err());
        assert!(parse_levels("1,,2").is_err());
        assert!(parse_levels("5000").is_err());
        assert!(parse_levels("x").is_err());
    }

    #[test]
    fn counts_take_suffixes_zero_and_refuse_nonsense() {
        assert_eq!(
            parse_counts("0,100000,1000000"),
            Ok(vec![0, 100_000, 1_000_000])
        );
        assert_eq!(
            parse_counts("0, 100k,1M,2K"),
            Ok(vec![0, 100_000, 1_000_000, 2_000])
        );
        assert_eq!(parse_counts("100M"), Ok(vec![MAX_PRELOAD]));
        assert!(parse_counts("101M").is_err());
        assert!(
            parse_counts("1m").is_err(),
            "m is minutes elsewhere, not millions"
        );
        assert!(parse_counts("").is_err());
        assert!(parse_counts("1,,2").is_err());
        assert!(parse_counts("-1").is_err());
        assert!(parse_counts("k").is_err());
        assert!(parse_counts("99999999999999999999M").is_err());
    }

    #[test]
    fn etcd_modes() {
        assert_eq!(parse_etcd("auto"), Ok(EtcdMode::Auto));
        assert_eq!(parse_etcd("off"), Ok(EtcdMode::Off));
        assert_eq!(
            parse_etcd("/usr/bin/etcd"),
            Ok(EtcdMode::Path("/usr/bin/etcd".into()))
        );
        assert!(EtcdMode::Off.binary().is_err());
        assert!(EtcdMode::Path("/nonexistent/etcd".into()).binary().is_err());
    }
}
