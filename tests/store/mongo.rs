//! MongoDB-only behaviour: connecting.

use std::time::{Duration, Instant};

use tete::store::{Store, StoreError};

#[tokio::test]
async fn an_unreachable_mongodb_fails_fast_at_connect_with_a_clear_error() {
    let started = Instant::now();
    let error = Store::connect(
        "mongodb://tete:secret@127.0.0.1:9/tete?serverSelectionTimeoutMS=500&connectTimeoutMS=500",
    )
    .await
    .expect_err("refused");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(error, StoreError::Connect { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with("cannot open the store at mongodb://***@127.0.0.1:9/tete"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
}

#[tokio::test]
async fn a_mongodb_url_without_a_database_name_is_refused() {
    let error = Store::connect("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100")
        .await
        .expect_err("refused");
    assert!(matches!(error, StoreError::InvalidUrl { .. }), "{error:?}");
}

#[tokio::test]
async fn connecting_uses_mongodb_when_a_server_is_configured() {
    let Some(test) = crate::helpers::mongo().await else {
        return;
    };
    assert!(matches!(test.store, Store::Mongo(_)));
    test.clean_up().await;
}

/// A briskdb server started by the test itself, so that it can be stopped and restarted.
struct Briskdb {
    child: std::process::Child,
}

impl Briskdb {
    fn start(dir: &std::path::Path, port: u16) -> Briskdb {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/briskdb_serve.py");
        let child = std::process::Command::new("python3")
            .arg(script)
            .arg(dir)
            .arg(port.to_string())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3 runs scripts/briskdb_serve.py");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "briskdb did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Briskdb { child }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Briskdb {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

/// Needs `pip install briskdb==0.1.0b3`; runs when `TETE_TEST_BRISKDB=1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mongodb_store_that_goes_away_refuses_writes_then_recovers_by_itself() {
    use tete::store::Cursor;

    use crate::helpers::{joining, message, room_id, temp_dir};

    if std::env::var("TETE_TEST_BRISKDB").as_deref() != Ok("1") {
        eprintln!("skipped: TETE_TEST_BRISKDB=1 is not set");
        return;
    }
    let dir = temp_dir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let server = Briskdb::start(dir.path(), port);
    let url = format!(
        "mongodb://127.0.0.1:{port}/tete_recovery?directConnection=true&maxPoolSize=4&serverSelectionTimeoutMS=1000"
    );
    let store = Store::connect(&url).await.expect("connects");
    let room = room_id();
    store.join(&room, joining("ann"), 1).await.expect("joined");
    store
        .append(message(&room, "ann", "before", None), 2)
        .await
        .expect("stored");

    server.stop();
    let refused = store
        .append(message(&room, "ann", "during", Some("c-during")), 3)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(store.health().await.is_err());

    let server = Briskdb::start(dir.path(), port);
    let started = Instant::now();
    let stored = loop {
        match store
            .append(message(&room, "ann", "during", Some("c-during")), 3)
            .await
        {
            Ok(stored) => break stored,
            Err(e) if started.elapsed() < Duration::from_secs(20) => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the store did not recover: {e}"),
        }
    };
    assert_eq!(stored.msg, "during");
    let page = store
        .page(&room, 1, Cursor::Latest, 50)
        .await
        .expect("read");
    let texts: Vec<_> = page.messages.iter().map(|m| &*m.msg).collect();
    assert_eq!(texts, vec!["before", "during"]);
    server.stop();
}
