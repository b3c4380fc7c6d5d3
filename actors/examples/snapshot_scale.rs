//! How long a registry of N entities takes to snapshot, how large the file is, and how long a node
//! takes to load it back (the work a joining node does after downloading it), in the snapshot
//! format written now (2, compact) and, as the anchor in the same run, the one written before
//! (1, the state as CBOR, read whole into memory then decoded, as nodes did until 2026-12-07).
//!
//! `cargo run --release --example snapshot_scale -- 1000000 [both|compact|cbor]`
//!
//! Peak RSS is reported per phase: the high-water mark is reset (`/proc/self/clear_refs`) before
//! the phase and read after it, less the RSS before it.

use std::time::Instant;

use verisim::registry::{RegistryState, fixture};
use verisim::snapshot::{SnapshotDir, read_registry, read_snapshot, write_snapshot_as};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(1_000_000), |a| a.parse())?;
    let mode = std::env::args().nth(2).unwrap_or_else(|| "both".into());
    let formats: &[u32] = match mode.as_str() {
        "both" => &[1, 2],
        "cbor" => &[1],
        "compact" => &[2],
        other => return Err(format!("unknown mode {other:?}: both, compact or cbor").into()),
    };
    let started = Instant::now();
    let state = fixture::registry(n)?;
    let apply = started.elapsed();

    println!("entities            {n}");
    println!(
        "apply               {:.2} s ({:.0} entries/s)",
        apply.as_secs_f64(),
        n as f64 / apply.as_secs_f64()
    );
    println!("rss after apply     {:.0} MiB", mib(rss_kib("VmRSS")));
    let dir = tempfile::tempdir()?;
    let (snapshots, _) = SnapshotDir::open(dir.path(), 1)?;
    for &format in formats {
        let name = if format == 1 {
            "CBOR (1)"
        } else {
            "compact (2)"
        };
        let started = Instant::now();
        if format == 1 {
            let mut sink = std::io::sink();
            ciborium::into_writer(&state, &mut sink).map_err(std::io::Error::other)?;
        } else {
            state.write_snapshot_body(&mut std::io::sink())?;
        }
        let encode = started.elapsed();

        let before = reset_peak();
        let started = Instant::now();
        let path = snapshots.path_for(n + 2, u64::from(format));
        if format == 1 {
            write_snapshot_as(1, &path, n + 2, 1, Vec::new(), 0, |w| {
                ciborium::into_writer(&state, w).map_err(std::io::Error::other)
            })?;
        } else {
            snapshots.write(n + 2, 2, Vec::new(), 0, |w| state.write_snapshot_body(w))?;
        }
        let write = started.elapsed();
        let write_peak = rss_kib("VmHWM").saturating_sub(before);
        let size = std::fs::metadata(&path)?.len();

        let before = reset_peak();
        let started = Instant::now();
        let loaded = if format == 1 {
            let (_, body) = read_snapshot(&path)?;
            RegistryState::from_cbor(&body)?
        } else {
            read_registry(&path)?.1
        };
        let load = started.elapsed();
        let load_peak = rss_kib("VmHWM").saturating_sub(before);
        assert_eq!(loaded.entity_count() as u64, n);
        assert!(
            loaded == state,
            "the loaded state differs from the written one"
        );
        drop(loaded);
        std::fs::remove_file(&path)?;

        println!("-- format {name}");
        println!(
            "encode only         {:.2} s (to a sink: no hash, no disk)",
            encode.as_secs_f64()
        );
        println!(
            "snapshot write      {:.2} s (encode + BLAKE3 + write + fsync + rename + dir fsync), peak RSS +{:.0} MiB",
            write.as_secs_f64(),
            mib(write_peak)
        );
        println!(
            "snapshot size       {:.1} MiB ({:.0} bytes/entity)",
            size as f64 / 1048576.0,
            size as f64 / n as f64
        );
        println!(
            "snapshot load       {:.2} s (read + checksum + decode), peak RSS +{:.0} MiB",
            load.as_secs_f64(),
            mib(load_peak)
        );
    }
    Ok(())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A line of /proc/self/status in KiB (0 where unavailable).
fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Resets the peak RSS to the current RSS (Linux: "5" to clear_refs); returns the current RSS.
fn reset_peak() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    rss_kib("VmRSS")
}
