//! The chat in a real browser: `tests/js/browser.mjs` drives headless Chromium (Debian's
//! `chromium` package, through playwright-core) against the real server. Also: the
//! Socket.IO client that tete serves is exactly the pinned npm build.

use std::path::{Path, PathBuf};

use crate::helpers::spawn_app;
use crate::node::{ensure_node_modules, js_dir, run_node};

/// Where Debian puts Chromium; `TETE_CHROMIUM` points elsewhere.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";

/// The Chromium to drive, or the path where none was found.
fn chromium() -> Result<PathBuf, PathBuf> {
    let path = std::env::var_os("TETE_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CHROMIUM));
    if path.is_file() { Ok(path) } else { Err(path) }
}

fn browser_required() -> bool {
    std::env::var("TETE_REQUIRE_BROWSER").is_ok_and(|v| v == "1")
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn two_people_chat_in_a_real_browser_and_keep_their_conversation() {
    let chromium = match chromium() {
        Ok(path) => path,
        Err(missing) => {
            let missing = missing.display();
            assert!(
                !browser_required(),
                "TETE_REQUIRE_BROWSER=1 but there is no Chromium at {missing} \
                 (apt-get install -y chromium, or set TETE_CHROMIUM)"
            );
            eprintln!(
                "\n!!! BROWSER TEST SKIPPED: no Chromium at {missing}.\n\
                 !!! Install it (apt-get install -y chromium) or set TETE_CHROMIUM; \
                 CI sets TETE_REQUIRE_BROWSER=1 so that it cannot be skipped there.\n"
            );
            return;
        }
    };
    let app = spawn_app().await;
    let screenshots = repo().join("tests/browser/screenshots");
    let address = app.address.clone();
    // The browser talks to the server running on this runtime: wait off the runtime.
    let output = tokio::task::spawn_blocking(move || {
        run_node(
            "browser.mjs",
            &[
                "--base",
                &address,
                "--screenshots",
                &screenshots.to_string_lossy(),
                "--chromium",
                &chromium.to_string_lossy(),
            ],
            &[],
        )
    })
    .await
    .expect("the browser test ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(
        output.status.success(),
        "the browser test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
}

#[test]
fn the_vendored_socket_io_client_is_the_pinned_npm_build() {
    ensure_node_modules();
    let package: serde_json::Value = serde_json::from_slice(
        &std::fs::read(js_dir().join("package.json")).expect("tests/js/package.json"),
    )
    .expect("package.json is JSON");
    let pinned = &package["dependencies"]["socket.io-client"];
    let installed: serde_json::Value = serde_json::from_slice(
        &std::fs::read(js_dir().join("node_modules/socket.io-client/package.json"))
            .expect("socket.io-client is installed"),
    )
    .expect("its package.json is JSON");
    assert_eq!(
        &installed["version"], pinned,
        "npm installed the pinned version"
    );

    for file in ["socket.io.esm.min.js", "socket.io.esm.min.js.map"] {
        let vendored = std::fs::read(repo().join("public/vendor").join(file))
            .unwrap_or_else(|e| panic!("public/vendor/{file}: {e}"));
        let npm = std::fs::read(
            js_dir()
                .join("node_modules/socket.io-client/dist")
                .join(file),
        )
        .unwrap_or_else(|e| panic!("the npm build's {file}: {e}"));
        assert!(
            vendored == npm,
            "public/vendor/{file} differs from socket.io-client {pinned}: \
             refresh it as public/vendor/README.md says"
        );
    }
}

#[tokio::test]
async fn the_browser_client_is_served_by_tete_itself() {
    let app = spawn_app().await;
    for (path, needle) in [
        ("/public/vendor/socket.io.esm.min.js", "export{"),
        (
            "/public/js/chat.js",
            "from \"/public/vendor/socket.io.esm.min.js\"",
        ),
        ("/public/js/conversation.js", "textContent"),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        let kind = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.contains("javascript"), "{path} is served as {kind}");
        assert!(res.text().await.unwrap().contains(needle), "{path}");
    }
}
