//! Engine.IO requests as the protocol numbers their errors, origins and CORS, on the
//! real application.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with};

async fn error_of(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn bad_engine_io_requests_get_the_protocols_error_codes() {
    let app = spawn_app().await;
    let base = format!("{}/socket.io/", app.address);
    let get = |q: &str| app.client.get(format!("{base}?{q}")).send();

    let (status, body) = error_of(get("EIO=4&transport=carrier-pigeon").await.unwrap()).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(0)));
    assert_eq!(body["message"], "Transport unknown");

    let (status, body) = error_of(
        get("EIO=4&transport=polling&sid=AAAAAAAAAAAAAAAAAAAAAA")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(1)));

    let res = app
        .client
        .put(format!("{base}?EIO=4&transport=polling"))
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(res).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(2)));

    let (status, body) = error_of(get("EIO=3&transport=polling").await.unwrap()).await;
    assert_eq!((status, body["code"].as_i64()), (400, Some(5)));
}

#[tokio::test]
async fn a_foreign_origin_is_refused_and_the_own_one_gets_cors_headers() {
    let app = spawn_app().await;
    let url = format!("{}/socket.io/?EIO=4&transport=polling", app.address);
    let res = app
        .client
        .get(&url)
        .header("Origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    let (status, body) = error_of(res).await;
    assert_eq!((status, body["code"].as_i64()), (403, Some(4)));

    let own = format!("http://127.0.0.1:{}", app.port);
    let res = app
        .client
        .get(&url)
        .header("Origin", &own)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], own.as_str());
    assert!(res.text().await.unwrap().starts_with("0{"));

    let res = app
        .client
        .get(format!(
            "{}/socket.io/?EIO=4&transport=websocket",
            app.address
        ))
        .header("Origin", "http://evil.example")
        .header("Connection", "Upgrade")
        .header("Upgrade", "websocket")
        .header("Sec-WebSocket-Version", "13")
        .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        403,
        "cross-site WebSocket hijacking is refused"
    );
}

#[tokio::test]
async fn listed_origins_are_allowed() {
    let app =
        spawn_app_with(&[("TETE_ENGINEIO__ALLOWED_ORIGINS", "[https://friend.example]")]).await;
    let url = format!("{}/socket.io/?EIO=4&transport=polling", app.address);
    let res = app
        .client
        .get(&url)
        .header("Origin", "https://friend.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://friend.example")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert!(
        res.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
}

#[tokio::test]
async fn a_polling_payload_over_max_payload_is_a_413() {
    let app = spawn_app_with(&[("TETE_ENGINEIO__MAX_PAYLOAD", "1000")]).await;
    let sid = open_polling(&app).await;
    let res = app
        .client
        .post(format!(
            "{}/socket.io/?EIO=4&transport=polling&sid={sid}",
            app.address
        ))
        .body(format!("4{}", "x".repeat(2000)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
}

/// Opens a polling session; returns its sid.
async fn open_polling(app: &crate::helpers::TestApp) -> String {
    let open = app
        .get("/socket.io/?EIO=4&transport=polling")
        .await
        .text()
        .await
        .unwrap();
    serde_json::from_str::<Value>(&open[1..]).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_client_that_joins_no_namespace_in_time_is_closed_one_that_joins_is_kept() {
    let app = spawn_app_with(&[("TETE_SOCKETIO__CONNECT_TIMEOUT_MS", "300")]).await;
    let path = |sid: &str| format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let post = |sid: String, body: &'static str| {
        let request = app
            .client
            .post(format!("{}{}", app.address, path(&sid)))
            .body(body);
        async move { request.send().await.unwrap().status() }
    };
    let idle = open_polling(&app).await;
    let joined = open_polling(&app).await;
    assert_eq!(post(joined.clone(), "40/socket,").await, 200);
    let connected = app.get(&path(&joined)).await.text().await.unwrap();
    assert!(connected.starts_with("40/socket,{\"sid\""), "{connected}");

    tokio::time::sleep(Duration::from_millis(700)).await;
    // The idle one was closed: its pending close packet, then it is gone.
    assert_eq!(app.get(&path(&idle)).await.text().await.unwrap(), "1");
    assert_eq!(app.get(&path(&idle)).await.status(), 400);
    // The one that joined still answers a ping.
    assert_eq!(post(joined.clone(), "2").await, 200);
    assert_eq!(app.get(&path(&joined)).await.text().await.unwrap(), "3");
}
