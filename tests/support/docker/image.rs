//! The image of the Docker partition tests: the `verisim` binary the tests were built with and the
//! shared libraries it loads (found by `ldd`) in a `FROM scratch` image tagged with their hash,
//! reused while the tag exists (built under a file lock so parallel test processes build it once);
//! and the small `docker` command runner the harness uses (every command has a deadline). No second
//! build of the workspace: a static build cost 16 min of CPU on a cold runner.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long `docker info` may take before we call the daemon absent.
pub(super) const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Ordinary docker commands (run, network connect, rm...).
pub const DOCKER_TIMEOUT: Duration = Duration::from_secs(60);
/// The image's repository name and the label every image, container and network carries.
const IMAGE_REPO: &str = "verisim-systest";
pub const LABEL: &str = "verisim.systest";

/// The standard output of a finished command, or why it did not finish well.
pub(super) fn run(cmd: &mut Command, timeout: Duration) -> Result<String, String> {
    run_full(cmd, timeout).map(|(out, _)| out)
}

/// Standard output and standard error of a finished command, or why it did not finish well.
pub fn run_full(cmd: &mut Command, timeout: Duration) -> Result<(String, String), String> {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{what}: {e}"))?;
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{what}: no answer within {timeout:?}"));
            }
            Err(e) => return Err(format!("{what}: {e}")),
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if status.success() {
        Ok((out, err))
    } else {
        Err(format!("{what}: {status}: {}{}", err.trim(), out.trim()))
    }
}

pub fn docker(args: &[&str]) -> Result<String, String> {
    run(Command::new("docker").args(args), DOCKER_TIMEOUT)
}

/// `Err(reason)` unless a Docker daemon answers within [`PROBE_TIMEOUT`].
pub fn daemon() -> Result<(), String> {
    if !cfg!(target_os = "linux") {
        return Err("the static image is built for Linux only".into());
    }
    run(
        Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]),
        PROBE_TIMEOUT,
    )
    .map(|_| ())
}

/// Whether the test may run; prints a loud SKIPPED line when it may not.
pub fn docker_or_skip(test: &str) -> bool {
    match daemon() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("\n!!!!! SKIPPED: no Docker daemon ({why}); {test} did not run !!!!!\n");
            false
        }
    }
}

/// The directory cargo builds into (the parent of the profile directory that holds the
/// `verisim` binary this test was built with).
fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_verisim"));
    let dir = bin
        .parent()
        .and_then(Path::parent)
        .expect("the verisim binary lives in <target>/[<triple>/]<profile>/");
    // Cargo keeps `.rustc_info.json` at the target directory's root only: `dir` is
    // `<target>/<triple>` when the outer build named a `--target`.
    match dir.parent() {
        Some(up)
            if !dir.join(".rustc_info.json").exists() && up.join(".rustc_info.json").exists() =>
        {
            up.to_path_buf()
        }
        _ => dir.to_path_buf(),
    }
}

/// The files of the image, as (file on the host, path in the image): the `verisim` binary this
/// test was built with (or `VERISIM_DOCKER_BIN`), and every shared library `ldd` says it loads, at
/// the paths the dynamic loader looks for them. A static binary has none.
fn image_files() -> Result<Vec<(PathBuf, String)>, String> {
    let bin = std::env::var_os("VERISIM_DOCKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_verisim")));
    let mut files = vec![(bin.clone(), "verisim".to_string())];
    // `ldd` fails on a static binary ("not a dynamic executable"): nothing more to copy.
    let Ok(listing) = run(Command::new("ldd").arg(&bin), DOCKER_TIMEOUT) else {
        return Ok(files);
    };
    for lib in shared_libraries(&listing) {
        let in_image = lib.trim_start_matches('/').to_string();
        files.push((PathBuf::from(lib), in_image));
    }
    Ok(files)
}

/// The absolute paths in `ldd`'s output: `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)`
/// and the loader's own `/lib64/ld-linux-x86-64.so.2 (0x...)`; the kernel's vDSO has no file.
pub fn shared_libraries(ldd: &str) -> Vec<&str> {
    ldd.lines()
        .filter_map(|line| {
            let path = match line.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then_some(path)
        })
        .collect()
}

/// The tag of an image holding the current binary and its libraries, building it if needed.
pub fn image() -> Result<String, String> {
    let target = target_dir();
    // One test process at a time builds; the others wait here and then find everything fresh.
    let lock = File::create(target.join("verisim-docker-image.lock"))
        .map_err(|e| format!("lock file in {}: {e}", target.display()))?;
    lock.lock().map_err(|e| format!("lock: {e}"))?;
    let files = image_files()?;
    let mut hasher = blake3::Hasher::new();
    for (host, in_image) in &files {
        let bytes = std::fs::read(host).map_err(|e| format!("{}: {e}", host.display()))?;
        hasher.update(in_image.as_bytes());
        hasher.update(&bytes);
    }
    let hash = hasher.finalize().to_hex();
    let tag = format!("{IMAGE_REPO}:{}", &hash[..16]);
    if docker(&["image", "inspect", "--format", "{{.Id}}", &tag]).is_ok() {
        eprintln!("reusing image {tag}");
        return Ok(tag);
    }
    let ctx = tempfile::Builder::new()
        .prefix("verisim-image-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    // The context is the image's root file system: `COPY root/ /` puts everything in place.
    for (host, in_image) in &files {
        let dest = ctx.path().join("root").join(in_image);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        // `copy` follows symbolic links: the image gets the library itself under the linked name.
        std::fs::copy(host, &dest).map_err(|e| format!("copy {}: {e}", host.display()))?;
    }
    let dockerfile =
        format!("FROM scratch\nLABEL {LABEL}=1\nCOPY root/ /\nENTRYPOINT [\"/verisim\"]\n");
    let mut cmd = Command::new("docker");
    cmd.args(["build", "--quiet", "--tag", &tag, "--file", "-"])
        .arg(ctx.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Without the buildx plugin the modern client refuses BuildKit builds; the legacy builder
    // handles a one-COPY image just as well.
    if docker(&["buildx", "version"]).is_err() {
        cmd.env("DOCKER_BUILDKIT", "0");
    }
    let mut child = cmd.spawn().map_err(|e| format!("docker build: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(dockerfile.as_bytes())
            .map_err(|e| format!("docker build stdin: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("docker build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "docker build: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    eprintln!("built image {tag}");
    // Older builds of the test image: removed once they are two hours old and no container uses
    // them. Not younger ones: a test run of another checkout on this machine (another binary, so
    // another tag) may have just built its image and not yet started a container from it, and
    // `docker rmi` would take it from under that run.
    let _ = docker(&[
        "image",
        "prune",
        "--all",
        "--force",
        "--filter",
        &format!("label={LABEL}"),
        "--filter",
        "until=2h",
    ]);
    Ok(tag)
}
