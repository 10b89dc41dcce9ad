//! The `tete` binary as a user runs it: flags, bad settings, graceful stop.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn tete() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tete"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .env("TETE_ENVIRONMENT", "test");
    cmd
}

/// `tete` on any free port and a fresh SQLite file in `dir`, its log on a pipe.
fn tete_on(dir: &tempfile::TempDir) -> Command {
    let mut cmd = tete();
    cmd.env("PORT", "0")
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.path().join("t.db").display()),
        )
        .stderr(Stdio::piped());
    cmd
}

#[test]
fn help_and_version_work() {
    let out = tete().arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    let out = tete().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_bad_setting_stops_the_start_with_one_clear_line() {
    let out = tete().env("PORT", "99999").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("PORT"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = tete().env("TETE_ENVIRONMENT", "nowhere").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("TETE_ENVIRONMENT"), "{err}");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tete_on(&dir)
        .env("TETE_LOG__FORMAT", "json")
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut listening = false;
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(line)) if line.contains("tete is listening") => {
                assert!(line.starts_with('{'), "JSON log expected: {line}");
                listening = true;
                break;
            }
            Some(_) => continue,
            None => break,
        }
    }
    assert!(listening, "tete did not report listening");
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "tete did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_store_that_cannot_be_reached_at_start_stops_it_with_one_clear_line() {
    let out = tete()
        .env("PORT", "0")
        .env(
            "DATABASE_URL",
            "mongodb://127.0.0.1:9/tete?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim().lines().last().unwrap_or("");
    assert!(last.starts_with("tete: cannot open the store"), "{err}");
    assert!(last.contains("DATABASE_URL"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = tete()
        .env("PORT", "0")
        .env("DATABASE_URL", "sqlite:/proc/no-such-dir/tete.db")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.trim()
            .lines()
            .last()
            .unwrap_or("")
            .contains("cannot open the store"),
        "{err}"
    );
}

#[test]
fn the_access_log_keeps_transport_traffic_at_debug_and_has_no_colours_in_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tete_on(&dir).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    // Lines arrive on a thread, so that a silent server fails the test instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || rx.recv_timeout(Duration::from_secs(20));
    let port = loop {
        let line = next_line().expect("tete did not report listening");
        if let Some(rest) = line.split("port=").nth(1) {
            break rest.trim().parse::<u16>().expect("port");
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let statuses = runtime.block_on(async {
        let client = reqwest::Client::new();
        let mut statuses = Vec::new();
        for path in [
            "/socket.io/?EIO=4&transport=polling",
            "/socket.io/?EIO=3&transport=polling",
            "/healthz",
        ] {
            let res = client.get(format!("{base}{path}")).send().await.unwrap();
            statuses.push(res.status().as_u16());
        }
        statuses
    });
    assert_eq!(statuses, [200, 400, 200]);
    // Each line is written before its response is sent: everything is there by /healthz.
    let mut requests = Vec::new();
    loop {
        let line = next_line().expect("no access-log line for /healthz");
        assert!(!line.contains('\u{1b}'), "colour codes in a pipe: {line:?}");
        if line.contains("request") {
            requests.push(line.clone());
        }
        if line.contains("path=\"/healthz\"") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert!(
        requests[0].contains("path=\"/socket.io/\"") && requests[0].contains("status=400"),
        "the refused transport request is logged: {requests:#?}"
    );
}
