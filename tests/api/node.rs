//! Running the Node.js sides of the tests (`tests/js/`): installs their npm packages
//! once, then runs a script and reports its output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

static INSTALL: Mutex<bool> = Mutex::new(false);

pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// `npm ci` in tests/js unless its packages are already there.
pub fn ensure_node_modules() {
    let mut done = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    let dir = js_dir();
    let ready = dir
        .join("node_modules/socket.io-client/package.json")
        .exists()
        && dir
            .join("node_modules/playwright-core/package.json")
            .exists();
    if !ready {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm must be installed (Node.js 20 with npm)");
        assert!(status.success(), "npm ci in tests/js failed");
    }
    *done = true;
}

/// Runs `node tests/js/<script> args…` and returns its output (stdout and stderr).
pub fn run_node(script: &str, args: &[&str], envs: &[(&str, &str)]) -> Output {
    ensure_node_modules();
    Command::new("node")
        .arg(js_dir().join(script))
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(js_dir())
        .stdin(Stdio::null())
        .output()
        .expect("node must be installed (Node.js 20)")
}

/// A Node.js script running in the background, its stdout read line by line (for a
/// test that must act when the script reaches a point, e.g. restart the server).
pub struct NodeProcess {
    child: std::process::Child,
    lines: tokio::sync::mpsc::Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// What a finished script said.
pub struct NodeOutcome {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for NodeOutcome {
    fn from(out: Output) -> Self {
        NodeOutcome {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for NodeOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "success: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.success, self.stdout, self.stderr
        )
    }
}

impl NodeProcess {
    /// Starts `node tests/js/<script> args…`, its stdout and stderr piped.
    pub fn spawn(script: &str, args: &[&str]) -> NodeProcess {
        use std::io::{BufRead, BufReader, Read};
        ensure_node_modules();
        let mut child = Command::new("node")
            .arg(js_dir().join(script))
            .args(args)
            .current_dir(js_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node must be installed (Node.js 20)");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = tokio::sync::mpsc::channel(1024);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.blocking_send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        NodeProcess {
            child,
            lines,
            stdout: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Waits (at most `wait`) for a stdout line containing `needle`; false if the
    /// script ended or the time ran out first.
    pub async fn wait_for_line(&mut self, needle: &str, wait: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => {
                    let found = line.contains(needle);
                    self.stdout.push(line);
                    if found {
                        return true;
                    }
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Waits (at most `wait`) for the script to end, killing it if it does not.
    pub async fn finish(mut self, wait: std::time::Duration) -> NodeOutcome {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(line)) = tokio::time::timeout_at(deadline, self.lines.recv()).await {
            self.stdout.push(line);
        }
        let mut timed_out = false;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                _ => {
                    timed_out = true;
                    let _ = self.child.kill();
                    break self.child.wait().ok();
                }
            }
        };
        if timed_out {
            self.stdout
                .push(format!("(killed: still running after {wait:?})"));
        }
        NodeOutcome {
            success: !timed_out && status.is_some_and(|s| s.success()),
            stdout: self.stdout.join("\n"),
            stderr: self
                .stderr
                .take()
                .and_then(|h| h.join().ok())
                .unwrap_or_default(),
        }
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}
