//! `verisim-bench register --preload-into stores` against real nodes: the preloaded entities are
//! registered for real (every one, or the run fails), the nodes go idle, then the measured level
//! runs on the same cluster.

use std::process::Command;

#[test]
fn a_preload_into_the_stores_registers_every_entity_then_measures() {
    let bench = env!("CARGO_BIN_EXE_verisim-bench");
    let verisim = std::path::Path::new(bench).with_file_name("verisim");
    assert!(
        verisim.exists(),
        "{} is missing: build the workspace (`cargo build --workspace`) so the node binary sits next to verisim-bench",
        verisim.display()
    );
    let out = Command::new(bench)
        .args([
            "--json",
            "register",
            "--clients",
            "2",
            "--duration",
            "2s",
            "--preload",
            "40",
            "--preload-into",
            "stores",
        ])
        .env("VERISIM_BIN", &verisim)
        .output()
        .expect("running verisim-bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "verisim-bench failed:\n{stderr}");
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("verisim-bench --json prints JSON");
    let run = &report["runs"][0];
    assert_eq!(run["preload"]["into"], "stores", "{report}");
    assert_eq!(run["preload"]["entities"], 40, "{report}");
    assert!(
        run["preload"]["after"]["idle"]["idle_s"].is_f64(),
        "{report}"
    );
    // The run succeeds only if each of the 40 was answered `201` (two replicas hold all four
    // items durably); the stores' own counters saw the writes.
    assert!(run["store_writes"].as_u64().unwrap_or(0) > 0, "{report}");
    let level = &run["levels"][0];
    assert!(level["commits"].as_u64().unwrap_or(0) > 0, "{report}");
    assert_eq!(level["errors"], 0, "{report}\n{stderr}");
}
