//! The live chat over Socket.IO: every event and rule of the wire contract.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::sio::SioClient;

const QUIET: Duration = Duration::from_millis(300);

async fn login(c: &SioClient, room: &str, user: &str) -> Value {
    c.load_and_login(room, user).await
}

/// Two people seated in a fresh room.
async fn pair(app: &TestApp) -> (String, SioClient, SioClient) {
    let room = app.new_room().await;
    let mut a = app.client().await;
    let mut b = app.client().await;
    assert_eq!(login(&a, &room, "Ada").await["ok"], true);
    assert_eq!(login(&b, &room, "Bob").await["ok"], true);
    a.next("startChat").await;
    b.next("startChat").await;
    (room, a, b)
}

#[tokio::test]
async fn create_redirects_to_a_new_unguessable_room() {
    let app = spawn_app().await;
    let a = app.new_room().await;
    let b = app.new_room().await;
    assert_ne!(a, b);
    assert_eq!(a.len(), 22);
    assert!(
        a.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    );
}

#[tokio::test]
async fn load_tells_how_many_people_are_in_the_room() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let mut a = app.client().await;
    a.emit("load", json!(room));
    assert_eq!(a.next("peopleinchat").await, json!({"number": 0}));

    let ack = login(&a, &room, "Ada").await;
    assert_eq!(ack["ok"], true);
    let mut b = app.client().await;
    b.emit("load", json!(room));
    let people = b.next("peopleinchat").await;
    assert_eq!(people["number"], 1);
    assert_eq!(people["user"], "Ada");
    assert_eq!(people["id"], room.as_str());
    assert_eq!(
        people["avatar"],
        "https://www.gravatar.com/avatar/8c04a8ca1e5c3e4a03b8ab5c7f0e6f60?s=140&r=x&d=mm".replace(
            "8c04a8ca1e5c3e4a03b8ab5c7f0e6f60",
            &format!("{:x}", md5::compute("ada@example.com"))
        )
    );
}

#[tokio::test]
async fn login_answers_img_then_start_chat_to_both_when_two_are_in() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let mut a = app.client().await;
    let mut b = app.client().await;
    let ack = login(&a, &room, "Ada").await;
    assert_eq!(ack["ok"], true);
    assert_eq!(ack["user"], "Ada");
    assert_eq!(ack["messages"], json!([]));
    assert_eq!(ack["more"], false);
    assert_eq!(ack["token"].as_str().unwrap().len(), 43);
    let img = a.next("img").await;
    assert!(
        img.as_str()
            .unwrap()
            .starts_with("https://www.gravatar.com/avatar/")
    );
    assert!(a.none("startChat", QUIET).await);

    login(&b, &room, "Bob").await;
    for c in [&mut a, &mut b] {
        let start = c.next("startChat").await;
        assert_eq!(start["boolean"], true);
        assert_eq!(start["id"], room.as_str());
        assert_eq!(start["users"], json!(["Ada", "Bob"]));
        assert_eq!(start["avatars"].as_array().unwrap().len(), 2);
    }
}

#[tokio::test]
async fn a_third_person_gets_too_many_and_only_they_do() {
    let app = spawn_app().await;
    let (room, mut a, mut b) = pair(&app).await;
    let mut c = app.client().await;
    c.emit("load", json!(room));
    assert_eq!(c.next("tooMany").await, json!({"boolean": true}));
    let ack = c
        .emit_ack(
            "login",
            json!({"user": "Cy", "avatar": "cy@example.com", "id": room}),
        )
        .await;
    assert_eq!(ack["ok"], false);
    assert_eq!(ack["code"], "room_full");
    assert!(a.none("tooMany", QUIET).await);
    assert!(b.none("tooMany", Duration::from_millis(10)).await);
}

#[tokio::test]
async fn fifty_simultaneous_logins_seat_exactly_two() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let mut clients = Vec::new();
    for _ in 0..50 {
        clients.push(app.client().await);
    }
    let logins = clients.iter().enumerate().map(|(i, c)| {
        let room = room.clone();
        async move {
            c.emit("load", json!(room));
            c.emit_ack(
                "login",
                json!({"user": format!("user{i}"), "avatar": format!("u{i}@example.com"), "id": room}),
            )
            .await
        }
    });
    let acks = futures_util::future::join_all(logins).await;
    let seated = acks.iter().filter(|a| a["ok"] == true).count();
    let full = acks.iter().filter(|a| a["code"] == "room_full").count();
    assert_eq!(seated, 2, "{acks:?}");
    assert_eq!(full, 48);
    let info: Value = app
        .get(&format!("/api/rooms/{room}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["online"], 2);
}

#[tokio::test]
async fn messages_reach_the_partner_with_the_senders_real_name_and_avatar() {
    let app = spawn_app().await;
    let (_room, a, mut b) = pair(&app).await;
    let ack = a
        .emit_ack("msg", json!({"msg": "hello <b>Bob</b>", "user": "Mallory", "img": "http://evil/x.png", "cid": "c1"}))
        .await;
    assert_eq!(ack["ok"], true);
    assert_eq!(ack["seq"], 1);
    let got = b.next("receive").await;
    assert_eq!(got["msg"], "hello <b>Bob</b>");
    assert_eq!(got["user"], "Ada");
    assert!(
        got["img"]
            .as_str()
            .unwrap()
            .starts_with("https://www.gravatar.com/avatar/")
    );
    assert_eq!(got["seq"], 1);
    assert_eq!(got["id"], ack["id"]);
    assert_eq!(got["ts"], ack["ts"]);
}

#[tokio::test]
async fn the_sender_does_not_receive_its_own_message() {
    let app = spawn_app().await;
    let (_room, mut a, mut b) = pair(&app).await;
    a.emit_ack("msg", json!({"msg": "hi"})).await;
    b.next("receive").await;
    assert!(a.none("receive", QUIET).await);
}

#[tokio::test]
async fn messages_sent_right_behind_a_login_are_handled_after_it_in_order() {
    // The login is still being stored when the messages arrive: each waits its turn
    // behind it (a `msg` handled at once would find nobody logged in).
    let app = spawn_app().await;
    let room = app.new_room().await;
    let a = app.client().await;
    a.emit("load", json!(room));
    let (login, one, two, three) = tokio::join!(
        a.emit_ack(
            "login",
            json!({"user": "Ada", "avatar": "ada@example.com", "id": room})
        ),
        a.emit_ack("msg", json!({"msg": "one"})),
        a.emit_ack("msg", json!({"msg": "two"})),
        a.emit_ack("msg", json!({"msg": "three"})),
    );
    assert_eq!(login["ok"], true, "{login}");
    for (ack, seq) in [(one, 1), (two, 2), (three, 3)] {
        assert_eq!(ack["ok"], true, "{ack}");
        assert_eq!(ack["seq"], seq, "{ack}");
    }
}

#[tokio::test]
async fn a_retried_message_is_stored_once() {
    let app = spawn_app().await;
    let (_room, a, _b) = pair(&app).await;
    let first = a
        .emit_ack("msg", json!({"msg": "once", "cid": "same"}))
        .await;
    let again = a
        .emit_ack("msg", json!({"msg": "once", "cid": "same"}))
        .await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(first["seq"], again["seq"]);
    let next = a
        .emit_ack("msg", json!({"msg": "twice", "cid": "other"}))
        .await;
    assert_eq!(next["seq"], 2);
}

#[tokio::test]
async fn disconnecting_tells_the_partner_and_frees_the_seat() {
    let app = spawn_app().await;
    let (room, mut a, b) = pair(&app).await;
    b.close();
    let left = a.next("leave").await;
    assert_eq!(left["boolean"], true);
    assert_eq!(left["room"], room.as_str());
    assert_eq!(left["user"], "Bob");
    let mut c = app.client().await;
    c.emit("load", json!(room));
    assert_eq!(c.next("peopleinchat").await["number"], 1);
    assert_eq!(login(&c, &room, "Cy").await["ok"], true);
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_connection_stays_usable() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let other = app.new_room().await;
    let mut a = app.client().await;

    a.emit("load", json!("short"));
    assert_eq!(a.next("error").await["code"], "invalid_room");
    a.emit("load", json!(42));
    assert_eq!(a.next("error").await["code"], "invalid_room");

    a.emit("load", json!(room));
    a.next("peopleinchat").await;
    let cases = [
        (
            json!({"user": "Ada", "avatar": "ada@example.com", "id": other}),
            "wrong_room",
        ),
        (
            json!({"user": "  ", "avatar": "ada@example.com", "id": room}),
            "invalid_nickname",
        ),
        (
            json!({"user": "x".repeat(33), "avatar": "ada@example.com", "id": room}),
            "invalid_nickname",
        ),
        (
            json!({"user": "a\u{1}b", "avatar": "ada@example.com", "id": room}),
            "invalid_nickname",
        ),
        (
            json!({"user": "Ada", "avatar": "not-an-email", "id": room}),
            "invalid_email",
        ),
        (
            json!({"user": "Ada", "avatar": "ada@example.com", "id": "bad/room"}),
            "invalid_room",
        ),
        (json!("just a string"), "bad_request"),
    ];
    for (payload, code) in cases {
        let ack = a.emit_ack("login", payload.clone()).await;
        assert_eq!(ack["ok"], false, "{payload}");
        assert_eq!(ack["code"], code, "{payload}");
        assert!(ack["message"].as_str().unwrap().len() > 3);
    }

    let ack = a.emit_ack("msg", json!({"msg": "before login"})).await;
    assert_eq!(ack["code"], "not_logged_in");
    a.emit("msg", json!({"msg": "no ack either"}));
    assert_eq!(a.next("error").await["code"], "not_logged_in");

    a.emit("nonsense", json!({}));
    assert_eq!(a.next("error").await["code"], "unknown_event");
    let ack = a.emit_ack("nonsense", json!({})).await;
    assert_eq!(ack["code"], "unknown_event");

    assert_eq!(login(&a, &room, "Ada").await["ok"], true);
    for (payload, code) in [
        (json!({"msg": ""}), "invalid_message"),
        (json!({"msg": "   \n "}), "invalid_message"),
        (json!({"msg": 12}), "invalid_message"),
        (json!({}), "invalid_message"),
        (json!("text"), "invalid_message"),
        (json!({"msg": "x".repeat(2001)}), "message_too_long"),
        (json!({"msg": "ok", "cid": {"a": 1}}), "invalid_message"),
    ] {
        let ack = a.emit_ack("msg", payload.clone()).await;
        assert_eq!(ack["code"], code, "{payload}");
    }
    let ack = a.emit_ack("msg", json!({"msg": "x".repeat(2000)})).await;
    assert_eq!(ack["ok"], true);
    assert_eq!(ack["seq"], 1);
}

#[tokio::test]
async fn a_nickname_is_unique_in_its_room_ignoring_case() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let a = app.client().await;
    let b = app.client().await;
    login(&a, &room, "Ada").await;
    let ack = login(&b, &room, "ADA").await;
    assert_eq!(ack["code"], "nickname_taken");
    assert_eq!(login(&b, &room, "Bob").await["ok"], true);
}

#[tokio::test]
async fn nothing_is_broadcast_for_a_refused_message() {
    let app = spawn_app().await;
    let (_room, a, mut b) = pair(&app).await;
    a.emit_ack("msg", json!({"msg": ""})).await;
    assert!(b.none("receive", QUIET).await);
}

#[tokio::test]
async fn flooding_is_refused_with_rate_limited_never_dropped_silently() {
    let app = spawn_app_with(&[
        ("TETE_CHAT__MESSAGES_PER_SECOND", "1"),
        ("TETE_CHAT__BURST", "3"),
    ])
    .await;
    let (_room, a, _b) = pair(&app).await;
    let mut codes = Vec::new();
    for i in 0..5 {
        let ack = a.emit_ack("msg", json!({"msg": format!("m{i}")})).await;
        codes.push(if ack["ok"] == true {
            "ok".to_string()
        } else {
            ack["code"].as_str().unwrap().to_string()
        });
    }
    assert_eq!(codes, ["ok", "ok", "ok", "rate_limited", "rate_limited"]);
}

#[tokio::test]
async fn typing_and_read_go_to_the_partner() {
    let app = spawn_app().await;
    let (_room, a, mut b) = pair(&app).await;
    a.emit("typing", json!({"typing": true}));
    assert_eq!(
        b.next("typing").await,
        json!({"user": "Ada", "typing": true})
    );
    let sent = a.emit_ack("msg", json!({"msg": "hi"})).await;
    b.next("receive").await;
    let mut a = a;
    b.emit("read", json!({"seq": sent["seq"]}));
    assert_eq!(a.next("read").await, json!({"user": "Bob", "seq": 1}));
    b.emit("typing", json!({"typing": "yes"}));
    assert_eq!(b.next("error").await["code"], "bad_request");
}

#[tokio::test]
async fn coming_back_with_the_token_gives_the_same_seat_name_and_history() {
    let app = spawn_app().await;
    let (room, a, b) = pair(&app).await;
    let token = {
        // Ada's token from a fresh login of a third room is not needed: ask again.
        a.emit_ack("msg", json!({"msg": "one"})).await;
        b.emit_ack("msg", json!({"msg": "two"})).await;
        a.close();
        tokio::time::sleep(QUIET).await;
        let c = app.client().await;
        let ack = login(&c, &room, "Zed").await;
        assert_eq!(ack["ok"], true, "a free seat after Ada left");
        c.close();
        tokio::time::sleep(QUIET).await;
        ack["token"].as_str().unwrap().to_string()
    };
    let back = app.client().await;
    back.emit("load", json!(room));
    let ack = back
        .emit_ack(
            "login",
            json!({"user": "Other", "avatar": "other@example.com", "id": room, "token": token}),
        )
        .await;
    assert_eq!(ack["ok"], true);
    assert_eq!(ack["user"], "Zed", "the stored name comes back");
    assert_eq!(ack["token"], token.as_str());
}

#[tokio::test]
async fn a_newer_connection_with_the_same_token_takes_the_seat_over() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let mut first = app.client().await;
    let ack = login(&first, &room, "Ada").await;
    let token = ack["token"].as_str().unwrap().to_string();
    let second = app.client().await;
    second.emit("load", json!(room));
    let ack = second
        .emit_ack(
            "login",
            json!({"user": "Ada", "avatar": "ada@example.com", "id": room, "token": token}),
        )
        .await;
    assert_eq!(ack["ok"], true);
    assert_eq!(first.next("replaced").await, json!({"room": room}));
    let ack = first.emit_ack("msg", json!({"msg": "still here?"})).await;
    assert_eq!(ack["code"], "not_logged_in");
    let info: Value = app
        .get(&format!("/api/rooms/{room}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["online"], 1);
}

#[tokio::test]
async fn reconnecting_with_after_catches_up_without_gap_or_duplicate() {
    let app = spawn_app().await;
    let (room, a, mut b) = pair(&app).await;
    let a_token = {
        let c = app.client().await;
        drop(c);
        String::new()
    };
    let _ = a_token;
    for i in 1..=3 {
        a.emit_ack("msg", json!({"msg": format!("m{i}")})).await;
        b.next("receive").await;
    }
    let b_seen = 3;
    let b_token = {
        // Bob reconnects: he needs his token, which only his login ack had; log in
        // again on a new connection after leaving.
        b.close();
        tokio::time::sleep(QUIET).await;
        let fresh = app.client().await;
        let ack = login(&fresh, &room, "Bob").await;
        let t = ack["token"].as_str().unwrap().to_string();
        fresh.close();
        tokio::time::sleep(QUIET).await;
        t
    };
    for i in 4..=6 {
        a.emit_ack("msg", json!({"msg": format!("m{i}")})).await;
    }
    let back = app.client().await;
    back.emit("load", json!(room));
    let ack = back
        .emit_ack("login", json!({"user": "Bob", "avatar": "bob@example.com", "id": room, "token": b_token, "after": b_seen}))
        .await;
    let seqs: Vec<i64> = ack["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![4, 5, 6]);
    assert_eq!(ack["more"], false);
}

#[tokio::test]
async fn history_pages_back_over_what_the_participant_may_see() {
    let app = spawn_app_with(&[
        ("TETE_CHAT__BURST", "500"),
        ("TETE_CHAT__MESSAGES_PER_SECOND", "500"),
    ])
    .await;
    let (_room, a, _b) = pair(&app).await;
    for i in 1..=120 {
        a.emit_ack("msg", json!({"msg": format!("m{i}")})).await;
    }
    let latest = a.emit_ack("history", json!({})).await;
    let msgs = latest["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 50);
    assert_eq!(msgs[0]["seq"], 71);
    assert_eq!(msgs[49]["seq"], 120);
    assert_eq!(latest["more"], true);
    let older = a
        .emit_ack("history", json!({"before": 71, "limit": 50}))
        .await;
    let msgs = older["messages"].as_array().unwrap();
    assert_eq!(
        (msgs[0]["seq"].as_i64(), msgs[49]["seq"].as_i64()),
        (Some(21), Some(70))
    );
    assert_eq!(older["more"], true);
    let oldest = a
        .emit_ack("history", json!({"before": 21, "limit": 50}))
        .await;
    assert_eq!(oldest["messages"].as_array().unwrap().len(), 20);
    assert_eq!(oldest["more"], false);
    let bad = a
        .emit_ack("history", json!({"before": 5, "after": 1}))
        .await;
    assert_eq!(bad["code"], "bad_request");
    let bad = a.emit_ack("history", json!({"limit": 201})).await;
    assert_eq!(bad["code"], "bad_request");
}

#[tokio::test]
async fn a_newcomer_logging_in_while_the_partner_sends_gets_every_message_they_may_see() {
    let app = spawn_app_with(&[
        ("TETE_CHAT__BURST", "100000"),
        ("TETE_CHAT__MESSAGES_PER_SECOND", "100000"),
    ])
    .await;
    // Several rooms at once: the more joins land inside a stream, the likelier one
    // lands in the gap between its commit and the newcomer entering the room.
    let rooms = (0..6).map(|_| newcomer_during_a_stream(&app));
    for missed in futures_util::future::join_all(rooms).await {
        assert!(
            missed.is_empty(),
            "stored after Bob's join but never sent to him: {missed:?}"
        );
    }
}

/// Ada streams messages while Bob logs in; the seqs Bob may see but never received.
async fn newcomer_during_a_stream(app: &TestApp) -> Vec<i64> {
    const SENT: i64 = 2000;
    let room = app.new_room().await;
    let a = app.client().await;
    login(&a, &room, "Ada").await;
    let mut b = app.client().await;
    let sending = async {
        for i in 1..=SENT {
            a.emit("msg", json!({ "msg": format!("m{i}") }));
        }
        a.emit_ack("msg", json!({"msg": "last"})).await
    };
    let joining = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        login(&b, &room, "Bob").await
    };
    let (last, joined) = tokio::join!(sending, joining);
    assert_eq!(joined["ok"], true);
    let last_seq = last["seq"].as_i64().unwrap();
    assert_eq!(last_seq, SENT + 1);
    let mut live = std::collections::BTreeSet::new();
    while !live.contains(&last_seq) {
        let got = b.next("receive").await;
        live.insert(got["seq"].as_i64().unwrap());
    }
    // Everything Bob may see (from his first join on) should have reached him live.
    let mut visible = Vec::new();
    let mut after = 0;
    loop {
        let page = b
            .emit_ack("history", json!({"after": after, "limit": 200}))
            .await;
        let msgs = page["messages"].as_array().unwrap();
        visible.extend(msgs.iter().map(|m| m["seq"].as_i64().unwrap()));
        match msgs.last() {
            Some(m) if page["more"] == true => after = m["seq"].as_i64().unwrap(),
            _ => break,
        }
    }
    assert!(visible.contains(&last_seq));
    visible.retain(|s| !live.contains(s));
    visible
}

#[tokio::test]
async fn a_newcomer_sees_only_messages_from_their_first_join() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let a = app.client().await;
    login(&a, &room, "Ada").await;
    a.emit_ack("msg", json!({"msg": "before Bob"})).await;
    let b = app.client().await;
    let ack = login(&b, &room, "Bob").await;
    assert_eq!(ack["messages"], json!([]));
    a.emit_ack("msg", json!({"msg": "after Bob"})).await;
    let page = b.emit_ack("history", json!({})).await;
    let texts: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["msg"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["after Bob"]);
}
