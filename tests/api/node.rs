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
