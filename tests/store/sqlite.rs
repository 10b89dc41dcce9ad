//! SQLite-only behaviour: files, reopening, migrations, recovery from a failed batch.

use std::time::Duration;

use tete::store::{Cursor, Store, StoreError};

use crate::helpers::{joining, message, room_id, temp_dir, token};

const NOW: i64 = 1_700_000_000_000;

#[tokio::test]
async fn the_database_file_and_its_directory_are_created_on_first_start() {
    let dir = temp_dir();
    let path = dir.path().join("nested/data/tete.db");
    let store = Store::connect(&format!("sqlite:{}", path.display()))
        .await
        .expect("opens");
    assert!(path.exists());
    assert!(matches!(store, Store::Sqlite(_)));
    let conn = rusqlite::Connection::open(&path).expect("opens");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("reads");
    assert_eq!(version, 1);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("reads");
    assert_eq!(mode, "wal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_and_seq_continues() {
    let dir = temp_dir();
    let url = format!("sqlite:{}", dir.path().join("tete.db").display());
    let room = room_id();
    {
        let store = Store::connect(&url).await.expect("opens");
        store
            .join(&room, joining("ann"), NOW)
            .await
            .expect("joined");
        for i in 0..3 {
            store
                .append(
                    message(&room, "ann", &format!("m{i}"), Some(&format!("c{i}"))),
                    NOW,
                )
                .await
                .expect("stored");
        }
    }
    let store = Store::connect(&url).await.expect("opens again");
    let page = store
        .page(&room, 1, Cursor::Latest, 50)
        .await
        .expect("read");
    let texts: Vec<_> = page.messages.iter().map(|m| m.msg.as_str()).collect();
    assert_eq!(texts, vec!["m0", "m1", "m2"]);
    let participant = store
        .participant(&room, &token("ann"))
        .await
        .expect("read")
        .expect("still there");
    assert_eq!(participant.name, "ann");
    let retry = store
        .append(message(&room, "ann", "m2", Some("c2")), NOW)
        .await
        .expect("answered");
    assert_eq!(retry.seq, 3, "a retry after a restart is still recognised");
    let next = store
        .append(message(&room, "ann", "m3", None), NOW)
        .await
        .expect("stored");
    assert_eq!(next.seq, 4);
}

#[tokio::test]
async fn a_path_that_cannot_be_created_fails_at_connect_with_a_clear_error() {
    let dir = temp_dir();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").expect("written");
    let url = format!("sqlite:{}", blocker.join("tete.db").display());
    let error = Store::connect(&url).await.expect_err("refused");
    assert!(matches!(error, StoreError::Connect { .. }), "{error:?}");
    assert!(error.to_string().contains("a-file"), "{error}");
}

#[tokio::test]
async fn a_database_from_a_newer_tete_is_refused() {
    let dir = temp_dir();
    let path = dir.path().join("tete.db");
    let conn = rusqlite::Connection::open(&path).expect("opens");
    conn.pragma_update(None, "user_version", 99)
        .expect("written");
    drop(conn);
    let error = Store::connect(&format!("sqlite:{}", path.display()))
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("99"), "{error}");
}

/// Another process holding the write lock longer than the busy timeout makes a batch
/// fail; the writer survives it and the next write goes through with the next seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_fails_its_callers_and_the_writer_recovers() {
    let dir = temp_dir();
    let path = dir.path().join("tete.db");
    let store = Store::connect(&format!("sqlite:{}", path.display()))
        .await
        .expect("opens");
    let room = room_id();
    store
        .join(&room, joining("ann"), NOW)
        .await
        .expect("joined");
    store
        .append(message(&room, "ann", "before", None), NOW)
        .await
        .expect("stored");

    let (locked, unlock) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).expect("opens");
        conn.execute_batch("BEGIN EXCLUSIVE").expect("locks");
        locked.send(()).expect("told");
        released.recv_timeout(Duration::from_secs(30)).ok();
        conn.execute_batch("ROLLBACK").expect("unlocks");
    });
    unlock.recv().expect("locked");
    let refused = store
        .append(message(&room, "ann", "during", Some("c-during")), NOW)
        .await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    release.send(()).expect("told");
    holder.join().expect("the lock holder ends");

    assert_eq!(store.health().await, Ok(()));
    let retried = store
        .append(message(&room, "ann", "during", Some("c-during")), NOW)
        .await
        .expect("stored once the lock is gone");
    assert_eq!(retried.seq, 2, "the failed batch left no trace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_file_keep_seq_gap_free() {
    // The writer keeps room counters between batches; another writer on the same file
    // (another tete process) must not make it hand out a seq twice.
    let dir = temp_dir();
    let url = format!("sqlite:{}", dir.path().join("tete.db").display());
    let room = room_id();
    let one = Store::connect(&url).await.expect("opens");
    let two = Store::connect(&url).await.expect("opens twice");
    one.join(&room, joining("ann"), NOW).await.expect("joined");
    let mut seqs = Vec::new();
    for i in 0..6 {
        let store = if i % 2 == 0 { &one } else { &two };
        let stored = store
            .append(message(&room, "ann", &format!("m{i}"), None), NOW + i)
            .await
            .expect("stored");
        seqs.push(stored.seq);
    }
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
    let info = one.room(&room).await.expect("read").expect("exists");
    assert_eq!(info.message_count, 6);
}
