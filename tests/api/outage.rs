//! The store failing while tete runs: sends are refused with `store_unavailable`, the
//! live chat goes on, and tete recovers by itself when the store is back.

use std::time::Duration;

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_failing_store_refuses_sends_keeps_the_chat_alive_and_recovers() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let a = app.client().await;
    let mut b = app.client().await;
    for (c, name) in [(&a, "Ada"), (&b, "Bob")] {
        c.emit("load", json!(room));
        let ack = c
            .emit_ack(
                "login",
                json!({"user": name, "avatar": "x@example.com", "id": room}),
            )
            .await;
        assert_eq!(ack["ok"], true);
    }
    assert_eq!(a.emit_ack("msg", json!({"msg": "stored"})).await["seq"], 1);
    assert_eq!(b.next("receive").await["msg"], "stored");

    // Another process takes the database's write lock and keeps it past tete's busy
    // timeout: every write fails meanwhile.
    let db = app.data_dir.path().join("tete.db");
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        locked_tx.send(()).unwrap();
        std::thread::sleep(Duration::from_secs(7));
        conn.execute_batch("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();

    let ack = a
        .try_emit_ack(
            "msg",
            json!({"msg": "while down", "cid": "down-1"}),
            Duration::from_secs(15),
        )
        .await
        .expect("an answer, not silence");
    assert_eq!(ack["ok"], false);
    assert_eq!(ack["code"], "store_unavailable");
    assert!(
        b.none("receive", Duration::from_millis(100)).await,
        "nothing unstored is delivered"
    );

    a.emit("typing", json!({"typing": true}));
    assert_eq!(
        b.next("typing").await["typing"],
        true,
        "the live chat goes on"
    );

    holder.join().unwrap();
    let ack = a
        .try_emit_ack(
            "msg",
            json!({"msg": "while down", "cid": "down-1"}),
            Duration::from_secs(10),
        )
        .await
        .expect("ack");
    assert_eq!(ack["ok"], true, "tete recovered by itself: {ack}");
    assert_eq!(ack["seq"], 2);
    assert_eq!(b.next("receive").await["msg"], "while down");
}
