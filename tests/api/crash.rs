//! tete killed with SIGKILL while messages flow: after a restart on the same database,
//! every acknowledged message is in the history, in order.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::sio::SioClient;

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing test must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real binary on a free port and reads the port from its JSON log.
fn start(db_url: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tete"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("TETE_ENVIRONMENT", "test")
        .env("PORT", "0")
        .env("DATABASE_URL", db_url)
        .env("TETE_LOG__FORMAT", "json")
        .env("TETE_CHAT__MESSAGES_PER_SECOND", "100000")
        .env("TETE_CHAT__BURST", "100000")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tete starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines.next().expect("tete logs its port").expect("log line");
        if line.contains("tete is listening") {
            let v: Value = serde_json::from_str(&line).expect("JSON log");
            break v["port"].as_u64().expect("port field") as u16;
        }
    };
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, port }
}

#[tokio::test]
async fn every_acknowledged_message_survives_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("crash.db").display());
    let mut server = start(&db);
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .get(format!("http://127.0.0.1:{}/create", server.port))
        .send()
        .await
        .unwrap();
    let room = res.headers()["location"]
        .to_str()
        .unwrap()
        .trim_start_matches("/chat/")
        .to_string();

    let ada = SioClient::connect(server.port).await;
    ada.emit("load", json!(room));
    let ack = ada
        .emit_ack(
            "login",
            json!({"user": "Ada", "avatar": "ada@example.com", "id": room}),
        )
        .await;
    let token = ack["token"].as_str().unwrap().to_string();
    let bob = SioClient::connect(server.port).await;
    bob.emit("load", json!(room));
    bob.emit_ack(
        "login",
        json!({"user": "Bob", "avatar": "bob@example.com", "id": room}),
    )
    .await;

    // Several senders in flight at once, each recording what was acknowledged.
    let acked: Arc<Mutex<Vec<(i64, String)>>> = Arc::default();
    let mut senders = Vec::new();
    for (who, client) in [("a", ada), ("b", bob)] {
        let acked = acked.clone();
        senders.push(tokio::spawn(async move {
            for i in 0.. {
                let text = format!("{who}{i}");
                match client
                    .try_emit_ack(
                        "msg",
                        json!({"msg": text, "cid": text}),
                        Duration::from_secs(2),
                    )
                    .await
                {
                    Some(ack) if ack["ok"] == true => {
                        acked
                            .lock()
                            .unwrap()
                            .push((ack["seq"].as_i64().unwrap(), text));
                    }
                    _ => break,
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    for s in senders {
        s.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let server = start(&db);
    let mut stored: Vec<Value> = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = http
            .get(format!(
                "http://127.0.0.1:{}/api/rooms/{room}/messages?after={after}&limit=200",
                server.port
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let msgs = page["messages"].as_array().unwrap().clone();
        if let Some(last) = msgs.last() {
            after = last["seq"].as_i64().unwrap();
        }
        stored.extend(msgs);
        if page["more"] != true {
            break;
        }
    }
    let seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    let expected: Vec<i64> = (1..=seqs.len() as i64).collect();
    assert_eq!(seqs, expected, "seq runs 1, 2, 3… without a gap");
    for (seq, text) in &acked {
        let m = &stored[(*seq - 1) as usize];
        assert_eq!(m["msg"], text.as_str(), "acked message {seq} kept as sent");
    }
    assert!(acked.len() >= 300);
    drop(server);
}
