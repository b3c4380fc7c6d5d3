//! This process's resources, read from Linux's `/proc/self` on each scrape (the `process_*`
//! metrics every Prometheus client library exports).

use std::path::Path;

/// What `/proc/self` says of this process now.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessStats {
    pub resident_bytes: u64,
    pub virtual_bytes: u64,
    pub open_fds: u64,
    pub max_fds: u64,
    pub threads: u64,
    /// User + system CPU time.
    pub cpu_seconds: f64,
    /// Since the Unix epoch.
    pub start_time_s: u64,
}

/// Clock ticks per second of `/proc/*/stat` times (`sysconf(_SC_CLK_TCK)`, 100 on every Linux
/// architecture this runs on).
const CLK_TCK: f64 = 100.0;
/// Page size for `statm` (4 KiB on x86_64 and most aarch64 kernels).
const PAGE: u64 = 4096;

impl ProcessStats {
    /// Reads this process's stats; `None` where `/proc` is missing or unreadable (not Linux).
    pub fn read() -> Option<Self> {
        Self::read_from(Path::new("/proc"), "self")
    }

    fn read_from(proc: &Path, pid: &str) -> Option<Self> {
        let dir = proc.join(pid);
        let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
        let fields = stat_fields(&stat)?;
        // Fields after the command, from field 3 (state) on: utime is field 14, stime 15,
        // num_threads 20, starttime 22, vsize 23, rss 24 (man 5 proc).
        let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
        let (utime, stime) = (field(14)?, field(15)?);
        let boot_s = std::fs::read_to_string(proc.join("stat"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("btime ").and_then(|v| v.trim().parse().ok()))
            })
            .unwrap_or(0u64);
        let open_fds = std::fs::read_dir(dir.join("fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
        let max_fds = std::fs::read_to_string(dir.join("limits"))
            .ok()
            .and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
            })
            .unwrap_or(0);
        Some(Self {
            resident_bytes: field(24)?.saturating_mul(PAGE),
            virtual_bytes: field(23)?,
            open_fds,
            max_fds,
            threads: field(20)?,
            cpu_seconds: (utime + stime) as f64 / CLK_TCK,
            start_time_s: boot_s + (field(22)? as f64 / CLK_TCK) as u64,
        })
    }
}

/// The fields of a `/proc/<pid>/stat` line after the command name, which is in parentheses and
/// may itself hold spaces and parentheses (so the last `)` ends it).
fn stat_fields(line: &str) -> Option<Vec<&str>> {
    let (_, rest) = line.rsplit_once(')')?;
    Some(rest.split_whitespace().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_read_with_plausible_values() {
        let p = ProcessStats::read().expect("/proc is readable on Linux");
        assert!(p.resident_bytes > 1 << 20, "{p:?}");
        assert!(p.virtual_bytes >= p.resident_bytes, "{p:?}");
        assert!(p.open_fds >= 3 && p.open_fds <= p.max_fds, "{p:?}");
        assert!(p.threads >= 1, "{p:?}");
        assert!(p.cpu_seconds >= 0.0, "{p:?}");
        assert!(p.start_time_s > 1_600_000_000, "{p:?}");
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let line = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 \
                    8192000 300 18446744073709551615";
        let f = stat_fields(line).expect("fields");
        assert_eq!(f[0], "S");
        // utime (14) and stime (15), threads (20), vsize (23), rss (24).
        assert_eq!(f[14 - 3], "250");
        assert_eq!(f[15 - 3], "50");
        assert_eq!(f[20 - 3], "7");
        assert_eq!(f[23 - 3], "8192000");
        assert_eq!(f[24 - 3], "300");
    }
}
