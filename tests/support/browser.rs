//! A headless Chromium driven over the DevTools protocol (CDP), for the web console's test.
//!
//! Chromium is started with `--remote-debugging-pipe`: CDP messages are JSON, each ended by a NUL
//! byte, written to the browser's fd 3 and read from its fd 4 (Puppeteer's pipe transport). A
//! shell `exec` wires the child's stdin and stdout pipes to those descriptors, so the test needs
//! neither a websocket client nor unsafe code. One page target is attached with a flattened
//! session; commands wait for their answer with a deadline, and events that arrive meanwhile are
//! kept for [`Browser::wait_event`]. JavaScript dialogs are answered as soon as they open, with
//! [`Browser::answer_dialogs`]' choice (a `window.confirm` blocks the page, and the command that
//! triggered it, until it is answered). The browser runs in its own process group, killed with
//! its temporary profile when the [`Browser`] is dropped.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one CDP command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary: `$VERISIM_CHROMIUM`, or the first of the usual names on the `PATH`.
pub fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("VERISIM_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A running headless browser with one attached page.
pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Value>,
    /// Events not yet taken by [`Browser::wait_event`].
    events: VecDeque<Value>,
    next_id: u64,
    session: String,
    dialog_answer: bool,
    /// The messages of the dialogs answered so far.
    pub dialogs: Vec<String>,
    // Last, so it is removed after the process is gone.
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts `chromium` headless with a fresh profile and a `width` x `height` page.
    pub fn start(chromium: &Path, width: u32, height: u32) -> Result<Self, String> {
        let profile = tempfile::Builder::new()
            .prefix("verisim-chromium-")
            .tempdir()
            .map_err(|e| format!("profile dir: {e}"))?;
        let log = std::fs::File::create(profile.path().join("chromium.log"))
            .map_err(|e| format!("chromium log: {e}"))?;
        let flags = [
            "--headless=new",
            "--no-sandbox",
            "--remote-debugging-pipe",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--mute-audio",
        ];
        let mut child = Command::new("sh")
            .arg("-c")
            // fd 3: commands (our stdin pipe); fd 4: answers and events (our stdout pipe).
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>&2"#)
            .arg(chromium)
            .args(flags)
            .arg(format!("--window-size={width},{height}"))
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            // Its own process group: dropping the browser kills the renderers and helpers too.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", chromium.display()))?;
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, incoming) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match r.read_until(0, &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if buf.last() == Some(&0) {
                            buf.pop();
                        }
                        if let Ok(v) = serde_json::from_slice::<Value>(&buf)
                            && tx.send(v).is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Self {
            child,
            stdin,
            incoming,
            events: VecDeque::new(),
            next_id: 0,
            session: String::new(),
            dialog_answer: true,
            dialogs: Vec::new(),
            profile,
        };
        let target = b.browser_call("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"].as_str().ok_or("no targetId")?.to_owned();
        let attached = b.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        b.session = attached["sessionId"]
            .as_str()
            .ok_or("no sessionId")?
            .to_owned();
        for domain in ["Page.enable", "Runtime.enable", "Log.enable"] {
            b.call(domain, json!({}))?;
        }
        b.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )?;
        Ok(b)
    }

    /// Whether the next dialogs are accepted (`true`, the default) or dismissed.
    pub fn answer_dialogs(&mut self, accept: bool) {
        self.dialog_answer = accept;
    }

    /// The browser's own log (its stderr), for a failing test's output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default()
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Result<u64, String> {
        self.next_id += 1;
        let mut msg = json!({"id": self.next_id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.stdin
            .write_all(&bytes)
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("writing to the browser: {e}"))?;
        Ok(self.next_id)
    }

    /// One incoming message, answering a dialog that opened at once; `None` at the deadline.
    fn receive(&mut self, deadline: Instant) -> Result<Option<Value>, String> {
        let left = deadline.saturating_duration_since(Instant::now());
        match self.incoming.recv_timeout(left) {
            Ok(v) => {
                if v["method"] == "Page.javascriptDialogOpening" {
                    let message = v["params"]["message"].as_str().unwrap_or("").to_owned();
                    self.dialogs.push(message);
                    let session = v["sessionId"].as_str().map(str::to_owned);
                    let accept = self.dialog_answer;
                    self.send(
                        "Page.handleJavaScriptDialog",
                        json!({"accept": accept}),
                        session.as_deref(),
                    )?;
                }
                Ok(Some(v))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(format!(
                "the browser closed its pipe; its log:\n{}",
                self.log()
            )),
        }
    }

    fn wait_answer(&mut self, id: u64, method: &str) -> Result<Value, String> {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let Some(v) = self.receive(deadline)? else {
                return Err(format!("{method}: no answer within {COMMAND_TIMEOUT:?}"));
            };
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    return Err(format!("{method}: {e}"));
                }
                return Ok(v["result"].clone());
            }
            if v.get("method").is_some() {
                self.events.push_back(v);
            }
        }
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let id = self.send(method, params, None)?;
        self.wait_answer(id, method)
    }

    /// A command to the page's session, answered with its `result`.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        let session = self.session.clone();
        let id = self.send(method, params, Some(&session))?;
        self.wait_answer(id, method)
    }

    /// The next event named `method` (one that already arrived, or the next to arrive).
    pub fn wait_event(&mut self, method: &str, timeout: Duration) -> Result<Value, String> {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return Ok(self.events.remove(i).unwrap_or_default());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let Some(v) = self.receive(deadline)? else {
                return Err(format!("no {method} event within {timeout:?}"));
            };
            if v["method"] == method {
                return Ok(v);
            }
            if v.get("method").is_some() {
                self.events.push_back(v);
            }
        }
    }

    /// Every event named `method` that has arrived so far (taken).
    pub fn take_events(&mut self, method: &str) -> Vec<Value> {
        // Whatever is queued in the pipe first.
        while let Ok(v) = self.incoming.try_recv() {
            if v.get("method").is_some() {
                self.events.push_back(v);
            }
        }
        let (taken, kept): (VecDeque<Value>, VecDeque<Value>) =
            self.events.drain(..).partition(|e| e["method"] == method);
        self.events = kept;
        taken.into()
    }

    /// Evaluates `expression` in the page (awaiting a promise), answering its value.
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            return Err(format!("{expression}: {e}"));
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expression` until it is truthy, answering its value; an error after `timeout`.
    pub fn wait_until(
        &mut self,
        what: &str,
        expression: &str,
        timeout: Duration,
    ) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.eval(expression)?;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return Ok(v);
            }
            if Instant::now() >= deadline {
                return Err(format!("timed out after {timeout:?} waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Opens `url` and waits until the document has loaded.
    pub fn navigate(&mut self, url: &str) -> Result<(), String> {
        let r = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(e) = r.get("errorText") {
            return Err(format!("navigating to {url}: {e}"));
        }
        self.wait_until(
            "the document to load",
            "document.readyState === 'complete'",
            COMMAND_TIMEOUT,
        )?;
        Ok(())
    }

    /// Types `text` into the element matching `selector`, as keyboard input would.
    pub fn type_into(&mut self, selector: &str, text: &str) -> Result<(), String> {
        let sel = serde_json::to_string(selector).map_err(|e| e.to_string())?;
        self.eval(&format!("document.querySelector({sel}).focus()"))?;
        self.call("Input.insertText", json!({"text": text}))?;
        Ok(())
    }

    /// Clicks the middle of the element matching `selector` with real mouse events.
    pub fn click(&mut self, selector: &str) -> Result<(), String> {
        let sel = serde_json::to_string(selector).map_err(|e| e.to_string())?;
        let at = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             return [r.x + r.width / 2, r.y + r.height / 2]; }})()"
        ))?;
        let (Some(x), Some(y)) = (at[0].as_f64(), at[1].as_f64()) else {
            return Err(format!("nothing matches {selector}"));
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )?;
        }
        Ok(())
    }

    /// A PNG of the page as it is shown.
    pub fn screenshot(&mut self) -> Result<Vec<u8>, String> {
        use base64::Engine;
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = r["data"].as_str().ok_or("no screenshot data")?;
        base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| format!("screenshot: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Politely first (the profile is flushed), then the whole process group.
        let _ = self.send("Browser.close", json!({}), None);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(pgid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
