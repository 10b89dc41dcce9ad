//! The REST API: rooms, history paging, privacy, erasure, OpenAPI.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app, spawn_app_with};
use crate::sio::SioClient;

async fn login(c: &SioClient, room: &str, user: &str) -> String {
    let ack = c.load_and_login(room, user).await;
    assert_eq!(ack["ok"], true, "{ack}");
    ack["token"].as_str().unwrap().to_string()
}

async fn get_auth(app: &TestApp, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}{}", app.address, path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn post_rooms_makes_a_room_id_and_its_url() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/api/rooms", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let body: Value = res.json().await.unwrap();
    let id = body["id"].as_str().unwrap();
    assert_eq!(id.len(), 22);
    assert_eq!(body["url"], format!("/chat/{id}"));
}

#[tokio::test]
async fn a_room_exists_from_its_first_login_until_it_is_erased() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    assert_eq!(app.get(&format!("/api/rooms/{room}")).await.status(), 404);
    assert_eq!(app.get("/api/rooms/not-a-room").await.status(), 404);
    let mut a = app.client().await;
    let token = login(&a, &room, "Ada").await;
    let info: Value = app
        .get(&format!("/api/rooms/{room}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["id"], room.as_str());
    assert_eq!(info["online"], 1);
    assert!(info["created_at"].as_i64().unwrap() > 1_600_000_000_000);

    let res = app
        .client
        .delete(format!("{}/api/rooms/{room}", app.address))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(a.next("erased").await, json!({"room": room}));
    assert_eq!(app.get(&format!("/api/rooms/{room}")).await.status(), 404);
    let ack = a.emit_ack("msg", json!({"msg": "into the void"})).await;
    assert_eq!(ack["code"], "not_logged_in");
}

#[tokio::test]
async fn history_checks_token_then_room_then_access_then_parameters() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let other_room = app.new_room().await;
    let a = app.client().await;
    let token = login(&a, &room, "Ada").await;
    let c = app.client().await;
    let outsider = login(&c, &other_room, "Cy").await;

    let path = format!("/api/rooms/{room}/messages");
    assert_eq!(app.get(&path).await.status(), 401);
    let res = get_auth(&app, &path, "made-up-token").await;
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "unauthorized");

    let missing = get_auth(
        &app,
        &format!("/api/rooms/{}/messages", "x".repeat(22)),
        &token,
    )
    .await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["code"], "not_found");

    let res = get_auth(&app, &path, &outsider).await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "forbidden");

    for bad in [
        "?before=1&after=1",
        "?limit=0",
        "?limit=201",
        "?before=abc",
        "?after=-1",
        "?before=0",
    ] {
        let res = get_auth(&app, &format!("{path}{bad}"), &token).await;
        assert_eq!(res.status(), 400, "{bad}");
        assert_eq!(
            res.json::<Value>().await.unwrap()["code"],
            "bad_request",
            "{bad}"
        );
    }
    let res = get_auth(&app, &path, &token).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"messages": [], "more": false})
    );
}

#[tokio::test]
async fn history_pages_have_exact_boundaries() {
    let app = spawn_app_with(&[
        ("TETE_CHAT__BURST", "500"),
        ("TETE_CHAT__MESSAGES_PER_SECOND", "500"),
    ])
    .await;
    let room = app.new_room().await;
    let a = app.client().await;
    let token = login(&a, &room, "Ada").await;
    for i in 1..=10 {
        a.emit_ack("msg", json!({"msg": format!("m{i}")})).await;
    }
    let seqs = |v: &Value| -> Vec<i64> {
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_i64().unwrap())
            .collect()
    };
    let base = format!("/api/rooms/{room}/messages");
    let page: Value = get_auth(&app, &format!("{base}?limit=4"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (seqs(&page), page["more"].clone()),
        (vec![7, 8, 9, 10], json!(true))
    );
    let page: Value = get_auth(&app, &format!("{base}?before=7&limit=4"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (seqs(&page), page["more"].clone()),
        (vec![3, 4, 5, 6], json!(true))
    );
    let page: Value = get_auth(&app, &format!("{base}?before=3&limit=4"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (seqs(&page), page["more"].clone()),
        (vec![1, 2], json!(false))
    );
    let page: Value = get_auth(&app, &format!("{base}?after=6&limit=4"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (seqs(&page), page["more"].clone()),
        (vec![7, 8, 9, 10], json!(false))
    );
    let page: Value = get_auth(&app, &format!("{base}?after=2&limit=4"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (seqs(&page), page["more"].clone()),
        (vec![3, 4, 5, 6], json!(true))
    );
    let page: Value = get_auth(&app, &format!("{base}?after=10"), &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((seqs(&page), page["more"].clone()), (vec![], json!(false)));
    let first = &page["messages"];
    assert!(first.is_array());
    let page: Value = get_auth(&app, &format!("{base}?limit=1"), &token)
        .await
        .json()
        .await
        .unwrap();
    let m = &page["messages"][0];
    assert_eq!(m["msg"], "m10");
    assert_eq!(m["user"], "Ada");
    assert!(m["id"].is_string() && m["img"].is_string() && m["ts"].is_i64());
}

#[tokio::test]
async fn my_rooms_lists_the_bearers_rooms_newest_activity_first() {
    let app = spawn_app().await;
    let r1 = app.new_room().await;
    let r2 = app.new_room().await;
    let a1 = app.client().await;
    let token = login(&a1, &r1, "Ada").await;
    a1.emit_ack("msg", json!({"msg": "in r1"})).await;
    let a2 = app.client().await;
    a2.emit("load", json!(r2));
    let ack = a2
        .emit_ack(
            "login",
            json!({"user": "Ada", "avatar": "ada@example.com", "id": r2, "token": token}),
        )
        .await;
    assert_eq!(
        ack["token"],
        token.as_str(),
        "a known token is kept across rooms"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    a2.emit_ack("msg", json!({"msg": "in r2"})).await;

    assert_eq!(app.get("/api/rooms").await.status(), 401);
    let body: Value = get_auth(&app, "/api/rooms", &token)
        .await
        .json()
        .await
        .unwrap();
    let rooms = body["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 2);
    assert_eq!(rooms[0]["id"], r2.as_str());
    assert_eq!(rooms[0]["last_message"]["msg"], "in r2");
    assert_eq!(rooms[1]["id"], r1.as_str());
    assert_eq!(rooms[1]["last_message"]["msg"], "in r1");
    assert_eq!(rooms[1]["url"], format!("/chat/{r1}"));
}

#[tokio::test]
async fn only_a_participant_may_erase_a_room() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let other = app.new_room().await;
    let a = app.client().await;
    login(&a, &room, "Ada").await;
    let c = app.client().await;
    let outsider = login(&c, &other, "Cy").await;
    let delete = |token: Option<String>| {
        let mut req = app
            .client
            .delete(format!("{}/api/rooms/{room}", app.address));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(delete(None).await.unwrap().status(), 401);
    assert_eq!(delete(Some(outsider)).await.unwrap().status(), 403);
    assert_eq!(app.get(&format!("/api/rooms/{room}")).await.status(), 200);
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let app = spawn_app().await;
    let doc: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/rooms", "post"),
        ("/api/rooms", "get"),
        ("/api/rooms/{id}", "get"),
        ("/api/rooms/{id}", "delete"),
        ("/api/rooms/{id}/messages", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} missing"
        );
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
