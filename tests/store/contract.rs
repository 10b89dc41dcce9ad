//! The store contract: every test here runs against every backend.

use std::collections::BTreeSet;

use tete::store::{Cursor, Page, Store, StoreError};

use crate::helpers::{joining, message, room_id, token};

/// Generates one `#[tokio::test]` per contract test and backend.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = crate::helpers::sqlite().await;
                    super::$name(&test.store).await;
                    test.clean_up().await;
                }
            )*
        }
        mod on_mongodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(test) = crate::helpers::mongo().await else { return };
                    super::$name(&test.store).await;
                    test.clean_up().await;
                }
            )*
        }
    };
}

contract!(
    seq_counts_1_2_3_in_each_room_independently,
    concurrent_appends_get_a_gap_free_seq_without_duplicates,
    a_retry_with_the_same_client_id_is_stored_once,
    concurrent_retries_with_the_same_client_id_are_stored_once,
    different_rooms_may_reuse_a_client_id,
    joining_twice_with_the_same_token_gives_back_the_same_participant,
    concurrent_first_joins_with_the_same_token_make_one_participant,
    a_participant_who_joined_after_five_messages_sees_from_seq_six,
    the_latest_page_holds_the_newest_messages,
    before_pages_walk_back_to_the_first_visible_message,
    after_pages_walk_forward_to_the_last_message,
    pages_of_an_empty_or_unknown_room_are_empty,
    a_room_exists_from_its_first_join,
    appending_to_a_room_nobody_joined_is_refused,
    rooms_of_lists_rooms_by_latest_activity_with_their_last_visible_message,
    erasing_a_room_removes_everything_and_only_once,
    a_token_is_known_while_it_takes_part_in_a_room,
    the_store_reports_healthy,
);

const NOW: i64 = 1_700_000_000_000;

async fn open_room(store: &Store) -> String {
    let room = room_id();
    store
        .join(&room, joining("ann"), NOW)
        .await
        .expect("ann joins");
    room
}

async fn send(store: &Store, room: &str, count: usize) {
    for i in 0..count {
        store
            .append(
                message(room, "ann", &format!("message {i}"), None),
                NOW + i as i64,
            )
            .await
            .expect("the message is stored");
    }
}

fn seqs(page: &Page) -> Vec<i64> {
    page.messages.iter().map(|m| m.seq).collect()
}

async fn seq_counts_1_2_3_in_each_room_independently(store: &Store) {
    let (first, second) = (open_room(store).await, open_room(store).await);
    for (room, expected) in [
        (&first, 1),
        (&first, 2),
        (&second, 1),
        (&first, 3),
        (&second, 2),
    ] {
        let stored = store
            .append(message(room, "ann", "hello", None), NOW)
            .await
            .expect("stored");
        assert_eq!(stored.seq, expected);
        assert_eq!(stored.id, format!("{room}:{expected}"));
        assert_eq!(stored.msg, "hello");
        assert_eq!(&*stored.user, "ann");
        assert_eq!(*stored.img, joining("ann").avatar);
        assert_eq!(stored.ts, NOW);
    }
    let info = store.room(&first).await.expect("read").expect("exists");
    assert_eq!(info.next_seq, 4);
    assert_eq!(info.message_count, 3);
    assert_eq!(info.last_message_at, Some(NOW));
}

async fn concurrent_appends_get_a_gap_free_seq_without_duplicates(store: &Store) {
    const TASKS: usize = 16;
    const EACH: usize = 25;
    let room = open_room(store).await;
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (store, room) = (store.clone(), room.clone());
            tokio::spawn(async move {
                let mut seqs = Vec::with_capacity(EACH);
                for i in 0..EACH {
                    let text = format!("task {task} message {i}");
                    let cid = format!("{task}-{i}");
                    let stored = store
                        .append(message(&room, "ann", &text, Some(&cid)), NOW)
                        .await
                        .expect("stored");
                    seqs.push(stored.seq);
                }
                seqs
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("the task ends"));
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    let total = (TASKS * EACH) as i64;
    assert_eq!(all.len(), distinct.len(), "no seq is given twice");
    assert_eq!(distinct, (1..=total).collect(), "seq has no gap");
    let page = store
        .page(&room, 1, Cursor::After(0), 1000)
        .await
        .expect("read");
    assert_eq!(seqs(&page), (1..=total).collect::<Vec<_>>());
    assert!(!page.more);
    let info = store.room(&room).await.expect("read").expect("exists");
    assert_eq!((info.next_seq, info.message_count), (total + 1, total));
}

async fn a_retry_with_the_same_client_id_is_stored_once(store: &Store) {
    let room = open_room(store).await;
    let first = store
        .append(message(&room, "ann", "hi", Some("c-1")), NOW)
        .await
        .expect("stored");
    let retry = store
        .append(message(&room, "ann", "hi", Some("c-1")), NOW + 500)
        .await
        .expect("answered");
    assert_eq!(
        retry, first,
        "the retry is answered with the stored message"
    );
    let next = store
        .append(message(&room, "ann", "next", Some("c-2")), NOW + 600)
        .await
        .expect("stored");
    assert_eq!(next.seq, 2);
    let page = store
        .page(&room, 1, Cursor::Latest, 50)
        .await
        .expect("read");
    assert_eq!(seqs(&page), vec![1, 2]);
    let info = store.room(&room).await.expect("read").expect("exists");
    assert_eq!(info.message_count, 2);
}

async fn concurrent_retries_with_the_same_client_id_are_stored_once(store: &Store) {
    let room = open_room(store).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (store, room) = (store.clone(), room.clone());
            tokio::spawn(async move {
                store
                    .append(message(&room, "ann", "once", Some("same")), NOW)
                    .await
                    .expect("answered")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("the task ends"));
    }
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    let page = store
        .page(&room, 1, Cursor::Latest, 50)
        .await
        .expect("read");
    assert_eq!(page.messages, vec![answers[0].clone()]);
}

async fn different_rooms_may_reuse_a_client_id(store: &Store) {
    let (first, second) = (open_room(store).await, open_room(store).await);
    let a = store
        .append(message(&first, "ann", "a", Some("c-1")), NOW)
        .await
        .expect("stored");
    let b = store
        .append(message(&second, "ann", "b", Some("c-1")), NOW)
        .await
        .expect("stored");
    assert_ne!(a.id, b.id);
    assert_eq!((&*a.msg, &*b.msg), ("a", "b"));
}

async fn joining_twice_with_the_same_token_gives_back_the_same_participant(store: &Store) {
    let room = room_id();
    let first = store
        .join(&room, joining("ann"), NOW)
        .await
        .expect("joined");
    assert_eq!(first.first_seq, 1);
    assert_eq!((first.joined_at, first.last_seen_at), (NOW, NOW));
    send(store, &room, 3).await;
    let mut renamed = joining("ann");
    renamed.name = "someone else".to_owned();
    renamed.avatar = "https://example.com/other.png".to_owned();
    let again = store
        .join(&room, renamed, NOW + 1000)
        .await
        .expect("joined");
    assert_eq!(again.name, "ann");
    assert_eq!(again.avatar, first.avatar);
    assert_eq!(again.first_seq, 1);
    assert_eq!(again.joined_at, NOW);
    assert_eq!(again.last_seen_at, NOW + 1000);
    let found = store.participant(&room, &token("ann")).await.expect("read");
    assert_eq!(found, Some(again));
}

async fn concurrent_first_joins_with_the_same_token_make_one_participant(store: &Store) {
    let room = room_id();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (store, room) = (store.clone(), room.clone());
            tokio::spawn(async move { store.join(&room, joining("ann"), NOW).await })
        })
        .collect();
    for task in tasks {
        let participant = task.await.expect("the task ends").expect("joined");
        assert_eq!(participant.first_seq, 1);
        assert_eq!(participant.name, "ann");
    }
    let rooms = store.rooms_of(&token("ann")).await.expect("read");
    assert_eq!(rooms.len(), 1);
}

async fn a_participant_who_joined_after_five_messages_sees_from_seq_six(store: &Store) {
    let room = open_room(store).await;
    send(store, &room, 5).await;
    let bob = store
        .join(&room, joining("bob"), NOW + 10)
        .await
        .expect("joined");
    assert_eq!(bob.first_seq, 6);
    send(store, &room, 2).await;
    let page = store
        .page(&room, bob.first_seq, Cursor::Latest, 50)
        .await
        .expect("read");
    assert_eq!(seqs(&page), vec![6, 7]);
    assert!(!page.more, "nothing visible before seq 6");
    let before = store
        .page(&room, bob.first_seq, Cursor::Before(7), 50)
        .await
        .expect("read");
    assert_eq!(seqs(&before), vec![6]);
    assert!(!before.more);
    let after = store
        .page(&room, bob.first_seq, Cursor::After(2), 50)
        .await
        .expect("read");
    assert_eq!(seqs(&after), vec![6, 7]);
    assert_eq!(
        store
            .participant(&room, &token("carol"))
            .await
            .expect("read"),
        None
    );
}

async fn the_latest_page_holds_the_newest_messages(store: &Store) {
    let room = open_room(store).await;
    send(store, &room, 10).await;
    let page = store.page(&room, 1, Cursor::Latest, 3).await.expect("read");
    assert_eq!(seqs(&page), vec![8, 9, 10]);
    assert!(page.more);
    assert_eq!(page.messages[0].msg, "message 7");
    let exact = store
        .page(&room, 1, Cursor::Latest, 10)
        .await
        .expect("read");
    assert_eq!(seqs(&exact), (1..=10).collect::<Vec<_>>());
    assert!(!exact.more, "an exact-size page has no more");
    let larger = store
        .page(&room, 1, Cursor::Latest, 200)
        .await
        .expect("read");
    assert_eq!(larger, exact);
}

async fn before_pages_walk_back_to_the_first_visible_message(store: &Store) {
    let room = open_room(store).await;
    send(store, &room, 10).await;
    let page = store
        .page(&room, 1, Cursor::Before(8), 3)
        .await
        .expect("read");
    assert_eq!((seqs(&page), page.more), (vec![5, 6, 7], true));
    let page = store
        .page(&room, 1, Cursor::Before(5), 4)
        .await
        .expect("read");
    assert_eq!((seqs(&page), page.more), (vec![1, 2, 3, 4], false));
    let page = store
        .page(&room, 1, Cursor::Before(2), 4)
        .await
        .expect("read");
    assert_eq!((seqs(&page), page.more), (vec![1], false));
    let page = store
        .page(&room, 1, Cursor::Before(1), 4)
        .await
        .expect("read");
    assert_eq!((seqs(&page), page.more), (vec![], false));
    let page = store
        .page(&room, 1, Cursor::Before(1000), 2)
        .await
        .expect("read");
    assert_eq!((seqs(&page), page.more), (vec![9, 10], true));
}

async fn after_pages_walk_forward_to_the_last_message(store: &Store) {
    let room = open_room(store).await;
    send(store, &room, 10).await;
    let page = store
        .page(&room, 1, Cursor::After(0), 4)
        .await
        .expect("read");
    assert_eq!((seqs(&page), page.more), (vec![1, 2, 3, 4], true));
    let page = store
        .page(&room, 1, Cursor::After(4), 3)
        .await
        .expect("read");
    assert_eq!((seqs(&page), page.more), (vec![5, 6, 7], true));
    let page = store
        .page(&room, 1, Cursor::After(7), 3)
        .await
        .expect("read");
    assert_eq!((seqs(&page), page.more), (vec![8, 9, 10], false));
    let page = store
        .page(&room, 1, Cursor::After(10), 3)
        .await
        .expect("read");
    assert_eq!((seqs(&page), page.more), (vec![], false));
    let page = store
        .page(&room, 1, Cursor::After(i64::MAX), 3)
        .await
        .expect("read");
    assert_eq!((seqs(&page), page.more), (vec![], false));
}

async fn pages_of_an_empty_or_unknown_room_are_empty(store: &Store) {
    let empty = open_room(store).await;
    for room in [empty, room_id()] {
        for cursor in [Cursor::Latest, Cursor::Before(5), Cursor::After(0)] {
            let page = store.page(&room, 1, cursor, 50).await.expect("read");
            assert_eq!((seqs(&page), page.more), (vec![], false), "{cursor:?}");
        }
    }
}

async fn a_room_exists_from_its_first_join(store: &Store) {
    let room = room_id();
    assert_eq!(store.room(&room).await.expect("read"), None);
    store
        .join(&room, joining("ann"), NOW)
        .await
        .expect("joined");
    store
        .join(&room, joining("bob"), NOW + 5)
        .await
        .expect("joined");
    let info = store.room(&room).await.expect("read").expect("exists");
    assert_eq!(info.id, room);
    assert_eq!(info.created_at, NOW);
    assert_eq!(info.last_message_at, None);
    assert_eq!((info.message_count, info.next_seq), (0, 1));
}

async fn appending_to_a_room_nobody_joined_is_refused(store: &Store) {
    let room = room_id();
    let refused = store
        .append(message(&room, "ann", "hello?", None), NOW)
        .await;
    assert_eq!(refused, Err(StoreError::RoomNotFound(room.clone())));
    assert_eq!(store.room(&room).await.expect("read"), None);
}

async fn rooms_of_lists_rooms_by_latest_activity_with_their_last_visible_message(store: &Store) {
    let quiet = room_id();
    store
        .join(&quiet, joining("ann"), NOW + 50)
        .await
        .expect("joined");
    let busy = open_room(store).await;
    store
        .append(message(&busy, "ann", "old", None), NOW + 10)
        .await
        .expect("stored");
    store
        .append(message(&busy, "ann", "newest", None), NOW + 100)
        .await
        .expect("stored");
    let seen_before_bob = room_id();
    store
        .join(&seen_before_bob, joining("ann"), NOW)
        .await
        .expect("joined");
    store
        .append(
            message(&seen_before_bob, "ann", "before bob", None),
            NOW + 20,
        )
        .await
        .expect("stored");
    store
        .join(&seen_before_bob, joining("bob"), NOW + 30)
        .await
        .expect("joined");

    let rooms = store.rooms_of(&token("ann")).await.expect("read");
    let order: Vec<_> = rooms.iter().map(|r| r.room.id.as_str()).collect();
    assert_eq!(
        order,
        vec![busy.as_str(), quiet.as_str(), seen_before_bob.as_str()]
    );
    assert_eq!(
        rooms[0].last_message.as_ref().map(|m| &*m.msg),
        Some("newest")
    );
    assert_eq!(rooms[1].last_message, None);
    assert_eq!(rooms[0].participant.name, "ann");

    let bobs = store.rooms_of(&token("bob")).await.expect("read");
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].last_message, None, "bob joined after that message");
    assert!(
        store
            .rooms_of(&token("nobody"))
            .await
            .expect("read")
            .is_empty()
    );
}

async fn erasing_a_room_removes_everything_and_only_once(store: &Store) {
    let room = open_room(store).await;
    store
        .join(&room, joining("bob"), NOW)
        .await
        .expect("joined");
    store
        .append(message(&room, "ann", "bye", Some("c-1")), NOW)
        .await
        .expect("stored");
    let other = open_room(store).await;
    send(store, &other, 2).await;

    assert_eq!(store.erase_room(&room).await, Ok(true));
    assert_eq!(store.room(&room).await.expect("read"), None);
    assert_eq!(
        store.participant(&room, &token("ann")).await.expect("read"),
        None
    );
    let page = store
        .page(&room, 1, Cursor::Latest, 50)
        .await
        .expect("read");
    assert!(page.messages.is_empty());
    assert_eq!(
        store.append(message(&room, "ann", "late", None), NOW).await,
        Err(StoreError::RoomNotFound(room.clone()))
    );
    let anns: Vec<_> = store
        .rooms_of(&token("ann"))
        .await
        .expect("read")
        .into_iter()
        .map(|r| r.room.id)
        .collect();
    assert_eq!(anns, vec![other.clone()]);
    assert_eq!(store.erase_room(&room).await, Ok(false));

    let page = store
        .page(&other, 1, Cursor::Latest, 50)
        .await
        .expect("read");
    assert_eq!(seqs(&page), vec![1, 2], "other rooms are untouched");

    let again = store
        .join(&room, joining("ann"), NOW + 1)
        .await
        .expect("joined");
    assert_eq!(
        again.first_seq, 1,
        "a room used again after erasure starts afresh"
    );
    let stored = store
        .append(message(&room, "ann", "again", Some("c-1")), NOW + 2)
        .await
        .expect("stored");
    assert_eq!((stored.seq, &*stored.msg), (1, "again"));
}

async fn a_token_is_known_while_it_takes_part_in_a_room(store: &Store) {
    let carl = token("carl");
    assert_eq!(store.token_known(&carl).await, Ok(false));
    let first = room_id();
    let second = room_id();
    store
        .join(&first, joining("carl"), NOW)
        .await
        .expect("joined");
    store
        .join(&second, joining("carl"), NOW)
        .await
        .expect("joined");
    assert_eq!(store.token_known(&carl).await, Ok(true));
    assert_eq!(store.token_known(&token("dora")).await, Ok(false));
    assert_eq!(store.erase_room(&first).await, Ok(true));
    assert_eq!(
        store.token_known(&carl).await,
        Ok(true),
        "still in the second room"
    );
    assert_eq!(store.erase_room(&second).await, Ok(true));
    assert_eq!(store.token_known(&carl).await, Ok(false));
}

async fn the_store_reports_healthy(store: &Store) {
    assert_eq!(store.health().await, Ok(()));
}
