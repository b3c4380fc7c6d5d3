//! What a measured window cost in CPU time: the whole machine's busy time (`/proc/stat`: load
//! generator, servers, kernel and anything else running) and the servers' own time
//! (`/proc/<pid>/stat` of the node or etcd processes), each per 1,000 commits. The first says what
//! the machine paid for the throughput; the second, how much of it the system under test used.

use std::fs;

use serde::Serialize;

/// Clock ticks per second of `/proc`'s CPU counters (`USER_HZ`, which the kernel fixes at 100 on
/// every architecture Linux exports it on: `sysconf(_SC_CLK_TCK)` answers the same).
const TICKS_PER_S: f64 = 100.0;

/// CPU counters read at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuSample {
    /// The machine's busy ticks since boot, all cores summed.
    machine: u64,
    /// The servers' user + system ticks, summed over the processes that were readable.
    servers: u64,
}

/// CPU seconds a window cost per 1,000 commits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuCost {
    /// Whole machine: CPU seconds per 1,000 commits.
    pub machine_s_per_1k: f64,
    /// The servers' processes only: CPU seconds per 1,000 commits.
    pub servers_s_per_1k: f64,
    /// The machine's average busy cores over the window (at most `nproc`).
    pub busy_cores: f64,
}

impl CpuSample {
    /// Reads the machine's counters and those of `servers` (process ids). A server that has
    /// exited is left out, so a sample never fails for it.
    pub fn now(servers: &[u32]) -> Result<Self, String> {
        let stat = fs::read_to_string("/proc/stat").map_err(|e| format!("/proc/stat: {e}"))?;
        let machine = machine_busy_ticks(&stat)?;
        let servers = servers
            .iter()
            .filter_map(|pid| fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .filter_map(|s| process_ticks(&s))
            .sum();
        Ok(Self { machine, servers })
    }

    /// The cost of the window from `self` to `end`, which lasted `seconds` and committed
    /// `commits`; `None` when nothing committed.
    pub fn cost_until(&self, end: &Self, seconds: f64, commits: usize) -> Option<CpuCost> {
        if commits == 0 || seconds <= 0.0 {
            return None;
        }
        let secs = |ticks: u64| ticks as f64 / TICKS_PER_S;
        let machine = secs(end.machine.saturating_sub(self.machine));
        let servers = secs(end.servers.saturating_sub(self.servers));
        let per_1k = 1000.0 / commits as f64;
        Some(CpuCost {
            machine_s_per_1k: machine * per_1k,
            servers_s_per_1k: servers * per_1k,
            busy_cores: machine / seconds,
        })
    }
}

/// The two cost columns of a table row (machine, servers): seconds with three decimals, or `–`.
pub fn columns(cost: Option<&CpuCost>) -> (String, String) {
    match cost {
        Some(c) => (
            format!("{:.3}", c.machine_s_per_1k),
            format!("{:.3}", c.servers_s_per_1k),
        ),
        None => ("–".into(), "–".into()),
    }
}

/// Busy ticks of the aggregate `cpu` line of `/proc/stat`: user, nice, system, irq, softirq and
/// steal (guest time is already inside user and nice; idle and iowait are not busy).
fn machine_busy_ticks(stat: &str) -> Result<u64, String> {
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .ok_or("/proc/stat has no aggregate `cpu` line")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse::<u64>())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("/proc/stat `cpu` line {line:?}: {e}"))?;
    let field = |i: usize| fields.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal guest guest_nice
    Ok(field(0) + field(1) + field(2) + field(5) + field(6) + field(7))
}

/// User + system CPU time of process `pid` so far, in milliseconds.
pub fn process_cpu_ms(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let ticks = process_ticks(&stat).ok_or_else(|| format!("{path}: unexpected format"))?;
    Ok((ticks as f64 * 1000.0 / TICKS_PER_S) as u64)
}

/// User + system CPU time so far of the threads of process `pid` whose name (`comm`, cut at 15
/// bytes by the kernel) starts with `prefix`, in milliseconds.
pub fn threads_cpu_ms(pid: u32, prefix: &str) -> Result<u64, String> {
    let dir = format!("/proc/{pid}/task");
    let mut ticks = 0;
    for task in fs::read_dir(&dir)
        .map_err(|e| format!("{dir}: {e}"))?
        .flatten()
    {
        let path = task.path();
        // A thread that exits between the listing and these reads is skipped.
        let Ok(comm) = fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let Ok(stat) = fs::read_to_string(path.join("stat")) else {
            continue;
        };
        ticks +=
            process_ticks(&stat).ok_or_else(|| format!("{}: unexpected format", path.display()))?;
    }
    Ok((ticks as f64 * 1000.0 / TICKS_PER_S) as u64)
}

/// A process's minor page faults and system CPU time so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Faults {
    pub minor: u64,
    pub system_ms: u64,
}

/// [`Faults`] of process `pid` so far.
pub fn process_faults(pid: u32) -> Result<Faults, String> {
    let path = format!("/proc/{pid}/stat");
    let stat = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    faults_of(&stat).ok_or_else(|| format!("{path}: unexpected format"))
}

/// minflt (field 10) and stime (field 15) of a `/proc/<pid>/stat` line, fields counted after the
/// last `)` as in [`process_ticks`].
fn faults_of(stat: &str) -> Option<Faults> {
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let minor = fields.get(7)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Faults {
        minor,
        system_ms: (stime as f64 * 1000.0 / TICKS_PER_S) as u64,
    })
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2) is
/// in parentheses and may hold spaces or parentheses itself, so fields are counted after the last
/// `)`.
fn process_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 is the first after `)`
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_busy_ticks_sums_the_busy_columns_only() {
        let stat = "cpu  100 5 30 9000 40 2 3 1 7 0\ncpu0 50 2 15 4500 20 1 1 0 3 0\nintr 1 2\n";
        assert_eq!(machine_busy_ticks(stat), Ok(100 + 5 + 30 + 2 + 3 + 1));
        assert!(machine_busy_ticks("intr 1 2\n").is_err());
        assert!(machine_busy_ticks("cpu  1 x 3\n").is_err());
    }

    #[test]
    fn process_ticks_reads_utime_and_stime_past_a_command_with_spaces_and_parens() {
        let line = "4242 (tokio (x) rt) S 1 4242 4242 0 -1 4194560 900 0 0 0 37 11 0 0 20 0 9 0 \
                    123 4567 89 18446744073709551615";
        assert_eq!(process_ticks(line), Some(37 + 11));
        assert_eq!(process_ticks("garbage"), None);
        assert_eq!(
            faults_of(line),
            Some(Faults {
                minor: 900,
                system_ms: (11.0 * 1000.0 / TICKS_PER_S) as u64
            })
        );
        assert_eq!(faults_of("garbage"), None);
    }

    #[test]
    fn threads_are_picked_by_name() {
        // A named thread burns CPU until its own counter, read by name, shows 20 ms (or a
        // deadline passes), and returns the last reading: once it exits, /proc forgets it.
        let burner = std::thread::Builder::new()
            .name("bench-cpu-burner".into())
            .spawn(|| {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                loop {
                    let ms = threads_cpu_ms(std::process::id(), "bench-cpu-burn");
                    if ms.as_ref().is_ok_and(|&ms| ms >= 20)
                        || ms.is_err()
                        || std::time::Instant::now() > deadline
                    {
                        return ms;
                    }
                    std::hint::black_box((0..10_000u64).sum::<u64>());
                }
            })
            .expect("spawn a thread");
        let burned = burner.join().expect("the burner thread");
        assert!(burned.expect("read /proc") >= 20);
        assert_eq!(
            threads_cpu_ms(std::process::id(), "no thread has this name"),
            Ok(0)
        );
        assert!(threads_cpu_ms(u32::MAX, "x").is_err());
    }

    #[test]
    fn the_counters_of_a_busy_process_and_its_machine_move() {
        let me = std::process::id();
        let a = CpuSample::now(&[me]).expect("read /proc");
        // Burn CPU until this process's own counters and the machine's have moved by two ticks
        // (20 ms of CPU), with a deadline, so that the test does not depend on how the scheduler
        // treats it. The two are accounted apart (per task, per CPU), so one can lag the other
        // by a tick (seen on a VM, 2026-12-08).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut x = 0u64;
        let b = loop {
            for _ in 0..100_000 {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            }
            // An exited pid (u32::MAX never exists) is left out, not an error.
            let b = CpuSample::now(&[me, u32::MAX]).expect("read /proc");
            let moved = b.servers >= a.servers + 2 && b.machine >= a.machine + 2;
            if moved || std::time::Instant::now() > deadline {
                break b;
            }
        };
        std::hint::black_box(x);
        assert!(
            b.servers >= a.servers + 2,
            "own ticks {} -> {}",
            a.servers,
            b.servers
        );
        assert!(
            b.machine >= a.machine + 2,
            "machine ticks {} -> {}",
            a.machine,
            b.machine
        );
    }

    #[test]
    fn a_process_cpu_time_is_read_and_a_missing_process_is_an_error() {
        assert!(process_cpu_ms(std::process::id()).is_ok());
        // u32::MAX is above any pid_max.
        assert!(process_cpu_ms(u32::MAX).is_err());
    }

    #[test]
    fn cost_is_per_thousand_commits() {
        let a = CpuSample {
            machine: 1_000,
            servers: 200,
        };
        let b = CpuSample {
            machine: 1_300,
            servers: 260,
        };
        // 3 machine-seconds and 0.6 server-seconds over 2 s for 6,000 commits.
        let c = a.cost_until(&b, 2.0, 6_000).expect("commits");
        assert!((c.machine_s_per_1k - 0.5).abs() < 1e-9);
        assert!((c.servers_s_per_1k - 0.1).abs() < 1e-9);
        assert!((c.busy_cores - 1.5).abs() < 1e-9);
    }
}
