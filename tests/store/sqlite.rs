//! SQLite-only behaviour: files, reopening, migrations, recovery from a failed batch.

use std::time::Duration;

use tempfile::TempDir;
use tete::store::{Cursor, Page, Store, StoreError, StoredMessage};

use crate::helpers::{joining, message, room_id, temp_dir, token};

const NOW: i64 = 1_700_000_000_000;

/// A page as (seq, text, name, avatar) rows.
fn shown(page: &Page) -> Vec<(i64, &str, &str, &str)> {
    page.messages
        .iter()
        .map(|m| (m.seq, &*m.msg, &*m.user, &*m.img))
        .collect()
}

/// Two stores on one file, as two tete processes, and a fresh room `ann` has joined.
async fn two_processes_with_ann() -> (TempDir, String, Store, Store) {
    let dir = temp_dir();
    let url = format!("sqlite:{}", dir.path().join("tete.db").display());
    let room = room_id();
    let one = Store::connect(&url).await.expect("opens");
    let two = Store::connect(&url).await.expect("opens twice");
    one.join(&room, joining("ann"), NOW).await.expect("joined");
    (dir, room, one, two)
}

/// A store on a fresh file, a room and the people who joined it.
async fn store_with(people: &[&str]) -> (TempDir, std::path::PathBuf, Store, String) {
    let dir = temp_dir();
    let path = dir.path().join("tete.db");
    let store = Store::connect(&format!("sqlite:{}", path.display()))
        .await
        .expect("opens");
    let room = room_id();
    for who in people {
        store.join(&room, joining(who), NOW).await.expect("joined");
    }
    (dir, path, store, room)
}

/// Another process on the file at `path`, which makes the text `boom` fail inside the
/// transaction that stores it.
fn refusing_boom(path: &std::path::Path) -> rusqlite::Connection {
    let other = rusqlite::Connection::open(path).expect("opens");
    other
        .execute_batch(
            "CREATE TRIGGER refuse_boom BEFORE INSERT ON messages WHEN NEW.text = 'boom'
             BEGIN SELECT RAISE(ABORT, 'boom refused'); END;",
        )
        .expect("trigger");
    other
}

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
    assert_eq!(version, 5);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .expect("reads");
    assert_eq!(mode, "wal");
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .expect("reads");
    assert_eq!(page_size, 8192, "a new file gets 8 KiB pages");
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
    let texts: Vec<_> = page.messages.iter().map(|m| &*m.msg).collect();
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
    let (_dir, path, store, room) = store_with(&["ann"]).await;
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

/// A batch that numbers a new author and then fails is rolled back, author row and all:
/// the writer must not remember that number (the next message would point at no one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_numbered_in_a_rolled_back_batch_is_forgotten() {
    let (_dir, path, store, room) = store_with(&["ann", "bob"]).await;
    let other = refusing_boom(&path);
    // While it holds the write lock, ann's message waits for the writer and bob's first
    // message and the refused one queue up behind it: they make the next batch.
    other.execute_batch("BEGIN IMMEDIATE").expect("locks");
    let send = |who: &'static str, text: &'static str| {
        let (store, room) = (store.clone(), room.clone());
        tokio::spawn(async move { store.append(message(&room, who, text, None), NOW).await })
    };
    let first = send("ann", "first");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let bob = send("bob", "bob's first");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let boom = send("ann", "boom");
    tokio::time::sleep(Duration::from_millis(200)).await;
    other.execute_batch("COMMIT").expect("unlocks");
    first.await.expect("ran").expect("stored");
    let boom = boom.await.expect("ran");
    assert!(matches!(boom, Err(StoreError::Unavailable(_))), "{boom:?}");
    // Bob's first message shared the failed batch (or, if the writer was quicker, was
    // stored before it); either way his next one must show him.
    let bob_first = bob.await.expect("ran");
    other
        .execute_batch("DROP TRIGGER refuse_boom")
        .expect("dropped");
    let again = store
        .append(message(&room, "bob", "bob again", None), NOW)
        .await
        .expect("stored");
    let page = store
        .page(&room, 1, Cursor::Latest, 50)
        .await
        .expect("read");
    let (ann, bob) = (joining("ann"), joining("bob"));
    let mut expected = vec![(1, "first", "ann", ann.avatar.as_str())];
    if bob_first.is_ok() {
        expected.push((2, "bob's first", "bob", bob.avatar.as_str()));
    }
    expected.push((again.seq, "bob again", "bob", bob.avatar.as_str()));
    assert_eq!(shown(&page), expected);
    assert!(
        bob_first.is_err(),
        "bob's first message was not in the failed batch"
    );
}

/// The writer keeps a room's counters between batches; a batch that moved them and then
/// failed is rolled back, and the next message must take the seq it would have taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_counters_moved_in_a_rolled_back_batch_are_forgotten() {
    let (_dir, path, store, room) = store_with(&["ann"]).await;
    let other = refusing_boom(&path);
    // After these batches the writer knows the room's counters, and nobody else writes
    // again: only the writer's own rollback can tell it they moved back. (The trigger
    // moved `data_version`: after the first batch the writer reads the index's tail
    // again in a step of its own; the second is answered once that step is done, so
    // the writer is idle when the lock below is taken.)
    for (seq, text) in [(1, "first"), (2, "second")] {
        let stored = store
            .append(message(&room, "ann", text, None), NOW)
            .await
            .expect("stored");
        assert_eq!(stored.seq, seq);
    }
    // A lock without a write holds the writer on a batch of its own ("held"), while
    // "third" and the refused one queue up behind it: they make the next batch.
    other.execute_batch("BEGIN IMMEDIATE").expect("locks");
    let send = |text: &'static str| {
        let (store, room) = (store.clone(), room.clone());
        tokio::spawn(async move { store.append(message(&room, "ann", text, None), NOW).await })
    };
    let held = send("held");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = send("third");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let boom = send("boom");
    tokio::time::sleep(Duration::from_millis(200)).await;
    other.execute_batch("COMMIT").expect("unlocks");
    assert_eq!(held.await.expect("ran").expect("stored").seq, 3);
    let third = third.await.expect("ran");
    assert!(
        matches!(third, Err(StoreError::Unavailable(_))),
        "{third:?}"
    );
    let boom = boom.await.expect("ran");
    assert!(matches!(boom, Err(StoreError::Unavailable(_))), "{boom:?}");
    let fourth = store
        .append(message(&room, "ann", "fourth", None), NOW)
        .await
        .expect("stored");
    assert_eq!(fourth.seq, 4, "no seq was lost to the rolled-back batch");
    let info = store.room(&room).await.expect("read").expect("exists");
    assert_eq!((info.next_seq, info.message_count), (5, 4));
}

/// Queues `(room, author, text, client id)` messages with `append_then` while another
/// connection holds the write lock, so that they make one batch once it is released;
/// returns their outcomes in queue order.
async fn one_batch(
    store: &Store,
    path: &std::path::Path,
    room: &str,
    messages: Vec<(String, &'static str, String, String)>,
) -> Vec<Result<StoredMessage, StoreError>> {
    let other = rusqlite::Connection::open(path).expect("opens");
    other.execute_batch("BEGIN IMMEDIATE").expect("locks");
    // The writer takes this one alone and waits for the lock; the rest queue behind it.
    let held = {
        let (store, room) = (store.clone(), room.to_owned());
        tokio::spawn(async move { store.append(message(&room, "ann", "held", None), NOW).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (answers, answered) = std::sync::mpsc::channel();
    let count = messages.len();
    for (i, (room, who, text, client_id)) in messages.into_iter().enumerate() {
        let answers = answers.clone();
        store
            .append_then(
                message(&room, who, &text, Some(&client_id)),
                NOW + i as i64,
                Box::new(move |outcome| drop(answers.send((i, outcome)))),
            )
            .await;
    }
    other.execute_batch("COMMIT").expect("unlocks");
    held.await.expect("ran").expect("stored");
    let mut outcomes: Vec<_> = (0..count)
        .map(|_| {
            answered
                .recv_timeout(Duration::from_secs(10))
                .expect("answered")
        })
        .collect();
    assert!(
        outcomes.windows(2).all(|w| w[0].0 < w[1].0),
        "answered in queue order"
    );
    outcomes.drain(..).map(|(_, outcome)| outcome).collect()
}

/// A batch's messages go in many rows per statement. A retried client id among them (of
/// a message stored in an earlier batch, or earlier in the same batch) makes a statement
/// leave its row out: the retry must be answered with the stored message, and every
/// other message still gets the next seq of its room, in queue order, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_inside_a_large_batch_are_stored_once_and_seqs_stay_gap_free() {
    let (_dir, path, store, room) = store_with(&["ann"]).await;
    let second = room_id();
    store
        .join(&second, joining("bob"), NOW)
        .await
        .expect("joined");
    let earlier = store
        .append(message(&room, "ann", "earlier", Some("c-earlier")), NOW)
        .await
        .expect("stored");
    // 150 messages: chunks of 64, 64, 16, 4 and 2 rows. Every third goes to the second
    // room; the 71st retries a message of an earlier batch (in the second chunk) and the
    // 101st the 11th of this one.
    let batch: Vec<_> = (0..150)
        .map(|i| {
            let (target, who) = if i % 3 == 0 && i != 0 {
                (second.clone(), "bob")
            } else {
                (room.clone(), "ann")
            };
            let client_id = match i {
                70 => "c-earlier".to_owned(),
                100 => "c-10".to_owned(),
                _ => format!("c-{i}"),
            };
            let target = if i == 70 || i == 100 {
                room.clone()
            } else {
                target
            };
            (target, who, format!("m{i}"), client_id)
        })
        .collect();
    let outcomes = one_batch(&store, &path, &room, batch.clone()).await;
    // "earlier" is seq 1 and "held" seq 2.
    let mut next = std::collections::HashMap::from([(room.clone(), 3), (second.clone(), 1)]);
    let mut expected: std::collections::HashMap<String, Vec<(i64, String)>> =
        std::collections::HashMap::new();
    for (i, ((target, _, text, _), outcome)) in batch.iter().zip(&outcomes).enumerate() {
        let stored = outcome.as_ref().expect("stored");
        match i {
            70 => assert_eq!(stored, &earlier, "a retry of an earlier batch"),
            100 => assert_eq!(
                Ok(stored),
                outcomes[10].as_ref(),
                "a retry within the batch"
            ),
            _ => {
                let seq = next.get_mut(target).expect("a room");
                assert_eq!(
                    (stored.seq, &*stored.msg),
                    (*seq, text.as_str()),
                    "message {i}"
                );
                expected
                    .entry(target.clone())
                    .or_default()
                    .push((*seq, text.clone()));
                *seq += 1;
            }
        }
    }
    for (target, first) in [(&room, 3), (&second, 1)] {
        let page = store
            .page(target, first, Cursor::After(0), 1000)
            .await
            .expect("read");
        let rows: Vec<_> = page
            .messages
            .iter()
            .map(|m| (m.seq, m.msg.to_string()))
            .collect();
        assert_eq!(&rows, &expected[target]);
        let info = store.room(target).await.expect("read").expect("exists");
        assert_eq!(
            (info.next_seq, info.message_count),
            (next[target], next[target] - 1)
        );
    }
    assert_eq!(next[&room] - 3 + next[&second] - 1, 148, "148 new messages");

    // A statement none of whose rows goes in: two retries and a new message.
    let retries = vec![
        (room.clone(), "ann", "again".to_owned(), "c-1".to_owned()),
        (room.clone(), "ann", "again".to_owned(), "c-2".to_owned()),
        (room.clone(), "ann", "new".to_owned(), "c-new".to_owned()),
    ];
    let answers = one_batch(&store, &path, &room, retries).await;
    assert_eq!(answers[0], outcomes[1]);
    assert_eq!(answers[1], outcomes[2]);
    // "held" took one more seq before them.
    let new = answers[2].as_ref().expect("stored");
    assert_eq!(new.seq, next[&room] + 1);
    let info = store.room(&room).await.expect("read").expect("exists");
    assert_eq!((info.next_seq, info.message_count), (new.seq + 1, new.seq));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_file_keep_seq_gap_free() {
    // The writer keeps room counters between batches; another writer on the same file
    // (another tete process) must not make it hand out a seq twice.
    let (_dir, room, one, two) = two_processes_with_ann().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_erased_by_another_process_and_joined_again_keeps_its_authors_right() {
    // The writer remembers author numbers across batches; an erase by another process
    // removes them, and the room (joined again) must not be written with stale ones.
    let (_dir, room, one, two) = two_processes_with_ann().await;
    one.append(message(&room, "ann", "first life", None), NOW)
        .await
        .expect("stored");
    assert!(two.erase_room(&room).await.expect("erased"));
    two.join(&room, joining("ann"), NOW)
        .await
        .expect("joined again");
    let stored = one
        .append(message(&room, "ann", "second life", None), NOW)
        .await
        .expect("stored");
    assert_eq!(stored.seq, 1);
    let page = two.page(&room, 1, Cursor::Latest, 50).await.expect("read");
    assert_eq!(
        shown(&page),
        vec![(1, "second life", "ann", joining("ann").avatar.as_str())]
    );
}

/// The first schema, as a tete of schema version 1 left its files.
const SCHEMA_V1: &str = "
    CREATE TABLE rooms (
        room_no INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        last_message_at INTEGER,
        message_count INTEGER NOT NULL DEFAULT 0,
        next_seq INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX rooms_by_activity ON rooms (last_message_at);
    CREATE TABLE users (
        room TEXT NOT NULL,
        token_hash TEXT NOT NULL,
        name TEXT NOT NULL,
        email_hash TEXT NOT NULL,
        avatar TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        joined_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        PRIMARY KEY (room, token_hash)
    ) WITHOUT ROWID;
    CREATE INDEX users_by_name ON users (room, name);
    CREATE INDEX users_by_token ON users (token_hash);
    CREATE TABLE messages (
        room_no INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        user TEXT NOT NULL,
        avatar TEXT NOT NULL,
        text TEXT NOT NULL,
        ts INTEGER NOT NULL,
        client_id TEXT,
        token_hash TEXT NOT NULL
    );
    CREATE UNIQUE INDEX messages_by_seq ON messages (room_no, seq);
    CREATE UNIQUE INDEX messages_by_client_id ON messages (room_no, client_id)
        WHERE client_id IS NOT NULL;
    PRAGMA user_version = 1;";

/// A version-1 message row: seq, text, user, avatar, ts, client id.
type V1Message = (i64, String, String, String, i64, Option<String>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_file_is_migrated_without_losing_a_message() {
    let dir = temp_dir();
    let path = dir.path().join("tete.db");
    let rooms = [room_id(), room_id()];
    // A participant whose room has no row (no tete wrote such a file; version 4 keys
    // participants by room number and must not drop them).
    let orphan_room = room_id();
    // Two rooms, their messages interleaved in arrival order; in the second room one
    // author's name and avatar changed between messages (any stored pair is kept).
    let mut expected: [Vec<V1Message>; 2] = [Vec::new(), Vec::new()];
    {
        let conn = rusqlite::Connection::open(&path).expect("opens");
        conn.execute_batch(SCHEMA_V1).expect("v1 schema");
        for room in &rooms {
            conn.execute(
                "INSERT INTO rooms (id, created_at, last_message_at, message_count, next_seq)
                 VALUES (?1, ?2, ?3, 10, 11)",
                rusqlite::params![room, NOW, NOW + 9],
            )
            .expect("room");
            for who in ["ann", "bob"] {
                let j = joining(who);
                conn.execute(
                    "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)",
                    rusqlite::params![room, j.token_hash, j.name, j.email_hash, j.avatar, NOW],
                )
                .expect("user");
            }
        }
        let carl = joining("carl");
        conn.execute(
            "INSERT INTO users VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)",
            rusqlite::params![
                orphan_room,
                carl.token_hash,
                carl.name,
                carl.email_hash,
                carl.avatar,
                NOW + 5
            ],
        )
        .expect("orphan user");
        for seq in 1..=10_i64 {
            for (no, expected) in expected.iter_mut().enumerate() {
                let who = joining(if seq % 3 == 0 { "bob" } else { "ann" });
                let (name, avatar) = if no == 1 && seq > 5 && who.name == "ann" {
                    (
                        "ann renamed".to_owned(),
                        "https://example.com/ann.png".to_owned(),
                    )
                } else {
                    (who.name.clone(), who.avatar.clone())
                };
                let text = format!("{no}:{seq} \u{e9}t\u{e9} \"quoted\"");
                let client_id = (seq % 2 == 0).then(|| format!("c{seq}"));
                conn.execute(
                    "INSERT INTO messages VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    rusqlite::params![
                        no as i64 + 1,
                        seq,
                        name,
                        avatar,
                        text,
                        NOW + seq,
                        client_id,
                        who.token_hash
                    ],
                )
                .expect("message");
                expected.push((seq, text, name, avatar, NOW + seq, client_id));
            }
        }
    }
    let store = Store::connect(&format!("sqlite:{}", path.display()))
        .await
        .expect("migrates");
    for (no, room) in rooms.iter().enumerate() {
        let page = store.page(room, 1, Cursor::Latest, 50).await.expect("read");
        let shown: Vec<_> = page
            .messages
            .iter()
            .map(|m| {
                (
                    m.seq,
                    m.msg.to_string(),
                    m.user.to_string(),
                    m.img.to_string(),
                    m.ts,
                )
            })
            .collect();
        let want: Vec<_> = expected[no]
            .iter()
            .map(|(seq, text, name, avatar, ts, _)| {
                (*seq, text.clone(), name.clone(), avatar.clone(), *ts)
            })
            .collect();
        assert_eq!(shown, want, "room {no} after the migration");
        // A retried client id still finds its message; the next one continues the seq.
        let (seq, text, name, avatar, ts, client_id) = expected[no][3].clone();
        let again = store
            .append(
                message(room, "ann", "retry", client_id.as_deref()),
                NOW + 100,
            )
            .await
            .expect("answered");
        assert_eq!(
            (
                again.seq,
                again.msg.to_string(),
                again.user.to_string(),
                again.img.to_string(),
                again.ts
            ),
            (seq, text, name, avatar, ts)
        );
        let next = store
            .append(message(room, "bob", "after the migration", None), NOW + 100)
            .await
            .expect("stored");
        assert_eq!(next.seq, 11);
        // The participants are still found, with everything they joined with (version 3
        // dropped the name index, version 4 keys them by room number).
        for who in ["ann", "bob"] {
            let j = joining(who);
            let found = store
                .participant(room, &j.token_hash)
                .await
                .expect("read")
                .expect("still there");
            assert_eq!(
                (
                    found.room.as_str(),
                    found.name.as_str(),
                    found.email_hash.as_str(),
                    found.avatar.as_str(),
                    found.first_seq,
                    found.joined_at
                ),
                (
                    room.as_str(),
                    who,
                    j.email_hash.as_str(),
                    j.avatar.as_str(),
                    1,
                    NOW
                )
            );
            assert!(store.token_known(&j.token_hash).await.expect("read"));
        }
    }
    // The participant without a room row kept their seat, and the room is back.
    let carl = joining("carl");
    let found = store
        .participant(&orphan_room, &carl.token_hash)
        .await
        .expect("read")
        .expect("kept");
    assert_eq!((found.name.as_str(), found.joined_at), ("carl", NOW + 5));
    let room = store.room(&orphan_room).await.expect("read").expect("room");
    assert_eq!(room.created_at, NOW + 5);
    let next = store
        .append(message(&orphan_room, "carl", "back", None), NOW + 100)
        .await
        .expect("stored");
    assert_eq!(next.seq, 1);
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("opens");
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("reads");
    assert_eq!(version, 5);
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .expect("reads");
    assert_eq!(page_size, 4096, "a file made earlier keeps its pages");
    let indexes = names(&conn, "SELECT name FROM sqlite_master WHERE type = 'index'");
    assert!(
        indexes.contains(&"users_by_token".to_owned())
            && !indexes.contains(&"users_by_name".to_owned())
            && !indexes.contains(&"rooms_by_activity".to_owned())
            && !indexes.contains(&"messages_by_seq".to_owned())
            && indexes.contains(&"messages_by_client_id".to_owned()),
        "{indexes:?}"
    );
    // Version 5 finds messages through `message_index`, every migrated one entered.
    let entered: i64 = conn
        .query_row(
            "SELECT count(*) FROM message_index WHERE msg_no <= 2 * 10",
            [],
            |row| row.get(0),
        )
        .expect("reads");
    assert_eq!(entered, 2 * 10);
    let columns = names(&conn, "SELECT name FROM pragma_table_info('users')");
    assert_eq!(
        columns,
        [
            "room_no",
            "token_hash",
            "name",
            "email_hash",
            "avatar",
            "first_seq",
            "joined_at",
            "last_seen_at"
        ]
    );
    let columns = names(&conn, "SELECT name FROM pragma_table_info('messages')");
    assert_eq!(
        columns,
        [
            "msg_no",
            "room_no",
            "seq",
            "author_no",
            "text",
            "ts",
            "client_id"
        ]
    );
}

/// The first column of every row `sql` returns.
fn names(conn: &rusqlite::Connection, sql: &str) -> Vec<String> {
    conn.prepare(sql)
        .expect("prepares")
        .query_map([], |row| row.get(0))
        .expect("reads")
        .collect::<Result<_, _>>()
        .expect("reads")
}

/// Under writes that never pause, the WAL must still start over (a checkpoint only lets
/// it once it has copied every frame back, which the checkpointer's own passes never
/// manage while batches keep committing). The checkpointer has the writer close it at
/// 8,192 frames of 4 KiB; without that, only the writer's own automatic checkpoint would,
/// at 65,536 frames. Four times 8,192 frames are written here, and the WAL's header
/// counts its starts (the checkpoint sequence number, bytes 12–16).
///
/// (Until the eleventh session this test bounded the WAL's largest size instead: how far
/// it grows past 8,192 frames depends on how long the disk takes to `fsync` the
/// checkpointed pages meanwhile, 17,900–20,700 frames on one day's machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_starts_over_while_writes_keep_coming() {
    let (_dir, path, store, room) = store_with(&["ann"]).await;
    let wal = path.with_file_name("tete.db-wal");
    let starts = || -> u32 {
        let mut header = [0_u8; 16];
        std::fs::File::open(&wal)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
            .map_or(0, |()| {
                u32::from_be_bytes([header[12], header[13], header[14], header[15]])
            })
    };
    // Two messages of 2,000 characters fill a page: a wave of 64 writes ~33 frames.
    let text = "w".repeat(2000);
    const FRAME: u64 = 4096 + 24;
    const CLOSED_AT: u64 = 8192;
    let first = starts();
    let mut written = 0;
    while written < 4 * CLOSED_AT * FRAME {
        let (answers, answered) = std::sync::mpsc::channel();
        for i in 0..64 {
            let answers = answers.clone();
            store
                .append_then(
                    message(&room, "ann", &text, None),
                    NOW + i,
                    Box::new(move |outcome| drop(answers.send(outcome))),
                )
                .await;
        }
        for _ in 0..64 {
            answered
                .recv_timeout(Duration::from_secs(10))
                .expect("answered")
                .expect("stored");
        }
        written += 64 * 2100;
    }
    let restarts = starts().wrapping_sub(first);
    assert!(
        restarts >= 1,
        "the WAL never started over while {written} bytes of messages were written"
    );
}

/// Stores `items` (room, author, text), `wave` of them queued at once so that a batch
/// holds several rooms' messages interleaved; waits for every answer.
async fn in_waves(store: &Store, items: &[(String, &'static str, String)], wave: usize) {
    for chunk in items.chunks(wave) {
        let (answers, answered) = std::sync::mpsc::channel();
        for (i, (room, who, text)) in chunk.iter().enumerate() {
            let answers = answers.clone();
            store
                .append_then(
                    message(room, who, text, None),
                    NOW + i as i64,
                    Box::new(move |outcome| drop(answers.send(outcome))),
                )
                .await;
        }
        for _ in chunk {
            answered
                .recv_timeout(Duration::from_secs(10))
                .expect("answered")
                .expect("stored");
        }
    }
}

/// Reads every message of `room` from seq `from` on, backwards (the latest page, then
/// before cursors) and forwards (after cursors), with pages of `limit`; both must be
/// `want` (seq, text) exactly.
async fn assert_history(store: &Store, room: &str, from: i64, limit: u32, want: &[(i64, String)]) {
    let as_rows = |page: &Page| -> Vec<(i64, String)> {
        page.messages
            .iter()
            .map(|m| (m.seq, m.msg.to_string()))
            .collect()
    };
    let mut backwards = Vec::new();
    let mut cursor = Cursor::Latest;
    loop {
        let page = store.page(room, from, cursor, limit).await.expect("read");
        let rows = as_rows(&page);
        if let Some(first) = rows.first() {
            cursor = Cursor::Before(first.0);
        }
        assert!(rows.len() <= limit as usize);
        backwards.splice(0..0, rows);
        if !page.more {
            break;
        }
    }
    assert_eq!(backwards.len(), want.len(), "backwards, room {room}");
    assert!(backwards == want, "backwards, room {room}");
    let mut forwards = Vec::new();
    let mut cursor = Cursor::After(from - 1);
    loop {
        let page = store.page(room, from, cursor, limit).await.expect("read");
        let rows = as_rows(&page);
        if let Some(last) = rows.last() {
            cursor = Cursor::After(last.0);
        }
        forwards.extend(rows);
        if !page.more {
            break;
        }
    }
    assert!(forwards == want, "forwards, room {room}");
}

/// The writer enters a room's messages in `message_index` 8,192 at a time, one entry
/// per run (a room's messages of one batch); the newest are found by reading the table's
/// tail. History must read the same whichever way a message is found: three rooms
/// written in irregular interleavings (runs of one to five), more than twice that many
/// messages, read by pages of several sizes that cross runs and the tail; then after an
/// erase that frees the table's last numbers, from a second process that writes too, and
/// after reopening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_reads_the_same_through_the_index_and_the_tail() {
    let (_dir, path, store, a) = store_with(&["ann", "bob"]).await;
    let (b, c) = (room_id(), room_id());
    for room in [&b, &c] {
        store.join(room, joining("ann"), NOW).await.expect("joined");
    }
    let rooms = [a.clone(), b.clone(), c.clone()];
    let mut want: Vec<Vec<(i64, String)>> = vec![Vec::new(); 3];
    let mut items = Vec::new();
    let mut add = |no: usize, items: &mut Vec<(String, &'static str, String)>| {
        let seq = want[no].len() as i64 + 1;
        let text = format!("{no}:{seq}");
        want[no].push((seq, text.clone()));
        items.push((rooms[no].clone(), "ann", text));
    };
    let mut k = 0_usize;
    while items.len() < 18_000 {
        for _ in 0..1 + k % 5 {
            add((k * k + k / 7) % 3, &mut items);
        }
        k += 1;
    }
    in_waves(&store, &items, 500).await;
    // Then rooms a and b, a message each per batch: runs of one, more than the writer
    // enters per batch (it enters them a step at a time).
    let mut single = Vec::new();
    for i in 0..9_000 {
        let no = i % 2;
        let seq = want[no].len() as i64 + 1;
        want[no].push((seq, format!("{no}:{seq}")));
        single.push((rooms[no].clone(), "ann", format!("{no}:{seq}")));
    }
    in_waves(&store, &single, 2).await;
    for (no, room) in rooms.iter().enumerate() {
        assert_history(&store, room, 1, 97, &want[no]).await;
    }
    assert_history(&store, &a, 1, 1000, &want[0]).await;
    // Visible from a seq in the middle (a participant who joined late).
    assert_history(&store, &b, 4321, 61, &want[1][4320..]).await;
    let db = rusqlite::Connection::open(&path).expect("opens");
    let count = |sql: &str| -> i64 { db.query_row(sql, [], |row| row.get(0)).expect("reads") };
    // At most 8,191 of the 27,000 wait: the first 18,000 are entered, by runs.
    let indexed = count(
        "SELECT count(*) FROM messages WHERE msg_no <= (SELECT indexed_upto FROM message_index_state)",
    );
    assert!(indexed >= 18_000, "{indexed} messages entered");
    let entered = count("SELECT count(*) FROM message_index WHERE msg_no <= 18000");
    assert!(
        entered * 10 < 18_000,
        "{entered} entries for 18,000 messages: runs kept"
    );
    // The last message each room shows in `rooms_of`.
    let summaries = store.rooms_of(&token("ann")).await.expect("read");
    for (no, room) in rooms.iter().enumerate() {
        let summary = summaries
            .iter()
            .find(|s| s.room.id == *room)
            .expect("listed");
        let last = summary.last_message.as_ref().expect("has one");
        assert_eq!(
            (last.seq, last.msg.to_string()),
            want[no].last().cloned().expect("some")
        );
    }
    // Rooms a and c alternate in small batches, c last: erased, c leaves gaps between
    // a's runs (which must not be taken for one) and frees the table's last numbers
    // (which are given again).
    let mut more = Vec::new();
    for i in 0..60 {
        let no = if i % 3 == 0 { 0 } else { 2 };
        let seq = want[no].len() as i64 + 1;
        want[no].push((seq, format!("{no}:{seq}")));
        more.push((rooms[no].clone(), "ann", format!("{no}:{seq}")));
    }
    in_waves(&store, &more, 3).await;
    // Reopened, the writer enters the whole tail before its first write: c's last
    // message is then the last entered (and "c last" follows it in the tail).
    let url = format!("sqlite:{}", path.display());
    drop(store);
    let store = Store::connect(&url).await.expect("reopens");
    in_waves(&store, &[(c.clone(), "ann", "c last".to_owned())], 1).await;
    assert!(store.erase_room(&c).await.expect("erased"));
    let page = store.page(&c, 1, Cursor::Latest, 50).await.expect("read");
    assert!(page.messages.is_empty());
    // b's next message takes the first freed number: it continues no run of b's.
    let seq = want[1].len() as i64 + 1;
    want[1].push((seq, format!("1:{seq}")));
    in_waves(&store, &[(b.clone(), "ann", format!("1:{seq}"))], 1).await;
    let mut after_erase = Vec::new();
    for i in 0..30 {
        let seq = want[0].len() as i64 + 1;
        want[0].push((seq, format!("0:{seq}")));
        after_erase.push((a.clone(), "bob", format!("0:{seq}")));
        if i % 3 == 0 {
            let seq = want[1].len() as i64 + 1;
            want[1].push((seq, format!("1:{seq}")));
            after_erase.push((b.clone(), "ann", format!("1:{seq}")));
        }
    }
    in_waves(&store, &after_erase, 7).await;
    assert_history(&store, &a, 1, 97, &want[0]).await;
    assert_history(&store, &b, 1, 97, &want[1]).await;
    assert_eq!(
        count("SELECT count(*) FROM message_index WHERE room_no = 3"),
        0,
        "c's entries gone"
    );
    // A second process writes to the same rooms; each reads all of it.
    let two = Store::connect(&url).await.expect("opens twice");
    for round in 0..6 {
        let writer = if round % 2 == 0 { &store } else { &two };
        let mut batch = Vec::new();
        for _ in 0..3_000 {
            let no = batch.len() % 2;
            let seq = want[no].len() as i64 + 1;
            want[no].push((seq, format!("{no}:{seq}")));
            batch.push((rooms[no].clone(), "ann", format!("{no}:{seq}")));
        }
        in_waves(writer, &batch, 300).await;
    }
    for reader in [&store, &two] {
        assert_history(reader, &a, 1, 250, &want[0]).await;
        assert_history(reader, &b, 1, 250, &want[1]).await;
    }
    // Reopened, the writer reads the tail again before it writes.
    drop((store, two));
    let store = Store::connect(&url).await.expect("reopens");
    in_waves(&store, &[(a.clone(), "ann", "last".to_owned())], 1).await;
    let seq = want[0].len() as i64 + 1;
    want[0].push((seq, "last".to_owned()));
    assert_history(&store, &a, 1, 500, &want[0]).await;
    assert_history(&store, &b, 1, 500, &want[1]).await;
}

/// Entering runs in `message_index` is a step of its own, after a batch has committed
/// and its callers are answered: a step that fails (here another process makes every
/// entry fail) fails no write and hides no message (a read finds them in the table's
/// tail), and once entries go in again the next step enters the whole tail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_index_step_fails_no_write_and_the_tail_is_entered_later() {
    let (_dir, path, store, room) = store_with(&["ann"]).await;
    let other = rusqlite::Connection::open(&path).expect("opens");
    other
        .execute_batch(
            "CREATE TRIGGER refuse_entries BEFORE INSERT ON message_index
             BEGIN SELECT RAISE(ABORT, 'entries refused'); END;",
        )
        .expect("trigger");
    let count = |sql: &str| -> i64 { other.query_row(sql, [], |row| row.get(0)).expect("reads") };
    // Another process changed the file: the writer reads the tail again and tries to
    // enter it after every batch, and fails.
    let mut want = Vec::new();
    let mut items = Vec::new();
    for seq in 1..=300 {
        want.push((seq, format!("m{seq}")));
        items.push((room.clone(), "ann", format!("m{seq}")));
    }
    in_waves(&store, &items, 7).await;
    assert_history(&store, &room, 1, 50, &want).await;
    assert_eq!(count("SELECT count(*) FROM message_index"), 0);
    other
        .execute_batch("DROP TRIGGER refuse_entries")
        .expect("dropped");
    want.push((301, "m301".to_owned()));
    in_waves(&store, &[(room.clone(), "ann", "m301".to_owned())], 1).await;
    // The step comes after the batch's answer.
    let last = count("SELECT max(msg_no) FROM messages");
    let started = std::time::Instant::now();
    while count("SELECT indexed_upto FROM message_index_state") < last {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the tail is entered"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // One room's messages one after another: one run.
    assert_eq!(count("SELECT count(*) FROM message_index"), 1);
    assert_history(&store, &room, 1, 50, &want).await;
}

/// How many messages wait before the writer takes a step (the store's `INDEX_LAG`).
const INDEX_LAG: usize = 8 * 1024;

/// A store on a fresh file with forty rooms and `INDEX_LAG - 1` messages among them,
/// two per room and wave (so a room's runs are short and many), none entered in
/// `message_index` yet; and another connection on the file. The next batch starts a
/// step.
async fn rooms_a_message_short_of_a_step() -> (
    TempDir,
    Store,
    rusqlite::Connection,
    Vec<String>,
    Vec<Vec<(i64, String)>>,
) {
    let (dir, path, store, first) = store_with(&["ann"]).await;
    let mut rooms = vec![first];
    for _ in 1..40 {
        let room = room_id();
        store
            .join(&room, joining("ann"), NOW)
            .await
            .expect("joined");
        rooms.push(room);
    }
    let mut want: Vec<Vec<(i64, String)>> = vec![Vec::new(); rooms.len()];
    let mut items = Vec::new();
    for i in 0..INDEX_LAG - 1 {
        let no = (i / 2) % rooms.len();
        let seq = want[no].len() as i64 + 1;
        want[no].push((seq, format!("{no}:{seq}")));
        items.push((rooms[no].clone(), "ann", format!("{no}:{seq}")));
    }
    in_waves(&store, &items, 2 * rooms.len()).await;
    let other = rusqlite::Connection::open(&path).expect("opens");
    assert_eq!(
        read(&other, "SELECT count(*) FROM message_index"),
        0,
        "nothing entered below INDEX_LAG"
    );
    (dir, store, other, rooms, want)
}

/// Stores one more message in room `no`, alone in its batch.
async fn one_more(store: &Store, rooms: &[String], want: &mut [Vec<(i64, String)>], no: usize) {
    let seq = want[no].len() as i64 + 1;
    want[no].push((seq, format!("{no}:{seq}")));
    in_waves(
        store,
        &[(rooms[no].clone(), "ann", format!("{no}:{seq}"))],
        1,
    )
    .await;
}

/// The one integer `sql` reads on `other`.
fn read(other: &rusqlite::Connection, sql: &str) -> i64 {
    other.query_row(sql, [], |row| row.get(0)).expect("reads")
}

/// Waits until `sql` (one integer) reads `until`, or fails after 10 seconds.
async fn read_until(other: &rusqlite::Connection, sql: &str, until: impl Fn(i64) -> bool) -> i64 {
    let started = std::time::Instant::now();
    loop {
        let value = read(other, sql);
        if until(value) {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{sql}: {value}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

const ROOMS_ENTERED: &str = "SELECT count(DISTINCT room_no) FROM message_index";
const INDEXED_UPTO: &str = "SELECT indexed_upto FROM message_index_state";

/// A step is entered a part at a time, an eighth of its rooms after each batch, and
/// `indexed_upto` moves with its last part: between parts readers meet entries above
/// `indexed_upto` (whose messages they still read from the table's tail) and every
/// room's history reads whole, both ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_is_entered_in_eight_parts_one_after_each_batch_and_history_reads_whole_meanwhile() {
    let (_dir, store, other, rooms, mut want) = rooms_a_message_short_of_a_step().await;
    // The step takes the oldest 1,024 runs, which hold every room (~25 runs each): eight
    // parts of five rooms.
    for part in 1..=7_i64 {
        one_more(&store, &rooms, &mut want, part as usize).await;
        let entered = read_until(&other, ROOMS_ENTERED, |rooms| rooms > 5 * (part - 1)).await;
        assert_eq!(entered, 5 * part, "rooms entered after part {part}");
        assert_eq!(read(&other, INDEXED_UPTO), 0);
        if part == 1 || part == 6 {
            for (no, room) in rooms.iter().enumerate() {
                assert_history(&store, room, 1, 50, &want[no]).await;
            }
        }
    }
    one_more(&store, &rooms, &mut want, 0).await;
    let upto = read_until(&other, INDEXED_UPTO, |upto| upto > 0).await;
    assert_eq!(read(&other, ROOMS_ENTERED), 40);
    let above: i64 = other
        .query_row(
            "SELECT count(*) FROM message_index WHERE msg_no > ?1",
            [upto],
            |row| row.get(0),
        )
        .expect("reads");
    assert_eq!(above, 0, "no entry above indexed_upto once the step is in");
    assert!(upto < INDEX_LAG as i64, "one step of 1,024 runs: {upto}");
    for (no, room) in rooms.iter().enumerate() {
        assert_history(&store, room, 1, 50, &want[no]).await;
    }
}

/// When another process writes while a step is under way, the writer drops the step
/// and enters the whole tail again: the entries its first part made are entered once,
/// and `message_index` holds exactly one entry per run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_under_way_when_another_process_writes_is_entered_again_whole() {
    let (_dir, store, other, rooms, mut want) = rooms_a_message_short_of_a_step().await;
    one_more(&store, &rooms, &mut want, 3).await;
    assert_eq!(
        read_until(&other, ROOMS_ENTERED, |rooms| rooms > 0).await,
        5
    );
    // Another connection commits (a table made and dropped: the writer's own entering
    // is what is tested; another tete process would enter the whole tail as it opens).
    other
        .execute_batch("CREATE TABLE poke (x); DROP TABLE poke;")
        .expect("writes");
    one_more(&store, &rooms, &mut want, 7).await;
    let last = read(&other, "SELECT max(msg_no) FROM messages");
    read_until(&other, INDEXED_UPTO, |upto| upto == last).await;
    // A run: messages of one room with consecutive numbers and seqs.
    let mut runs = Vec::new();
    let mut previous: Option<(i64, i64, i64)> = None;
    let mut scan = other
        .prepare("SELECT msg_no, room_no, seq FROM messages ORDER BY msg_no")
        .expect("prepares");
    let rows = scan
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("reads");
    for row in rows {
        let (msg_no, room_no, seq): (i64, i64, i64) = row.expect("row");
        let continues =
            previous.is_some_and(|(m, r, s)| r == room_no && s + 1 == seq && m + 1 == msg_no);
        if !continues {
            runs.push((room_no, seq, msg_no));
        }
        previous = Some((msg_no, room_no, seq));
    }
    let mut entries = other
        .prepare("SELECT room_no, seq, msg_no FROM message_index ORDER BY msg_no")
        .expect("prepares");
    let entries: Vec<(i64, i64, i64)> = entries
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("reads")
        .collect::<Result<_, _>>()
        .expect("rows");
    assert!(runs.len() > 4_000, "{} runs", runs.len());
    assert!(entries == runs, "one entry per run");
    for (no, room) in rooms.iter().enumerate() {
        assert_history(&store, room, 1, 50, &want[no]).await;
    }
}
