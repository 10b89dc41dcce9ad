//! Pages: home, chat, static files, 404s.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_home_page_offers_to_create_a_private_room() {
    let app = spawn_app().await;
    let res = app.get("/").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = res.text().await.unwrap();
    assert!(html.contains("Create a private room"), "{html}");
    assert!(html.contains("/public/css/tete.css"));
}

#[tokio::test]
async fn static_files_are_served_with_cache_headers() {
    let app = spawn_app().await;
    let res = app.get("/public/css/tete.css").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    assert!(res.text().await.unwrap().contains("--accent"));
}

#[tokio::test]
async fn an_unknown_page_is_a_friendly_html_404() {
    let app = spawn_app().await;
    let res = app.get("/no/such/page").await;
    assert_eq!(res.status(), 404);
    let html = res.text().await.unwrap();
    assert!(html.contains("Not found"));
    assert!(!html.to_lowercase().contains("panic"));
}

#[tokio::test]
async fn an_unknown_api_path_is_a_json_404() {
    let app = spawn_app().await;
    let res = app.get("/api/nothing-here").await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "not_found");
}

#[tokio::test]
async fn a_missing_static_file_is_a_404() {
    let app = spawn_app().await;
    let res = app.get("/public/nothing.css").await;
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_chat_page_is_served_for_a_well_formed_room_id() {
    let app = spawn_app().await;
    let room = app.new_room().await;
    let res = app.get(&format!("/chat/{room}")).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(&room), "the page knows its room");
}

#[tokio::test]
async fn a_malformed_chat_link_gets_a_friendly_404() {
    let app = spawn_app().await;
    for bad in [
        "/chat/short",
        "/chat/has%20space%20in%20it%20xxxxxxxxxxx",
        &format!("/chat/{}", "a".repeat(65)),
    ] {
        let res = app.get(bad).await;
        assert_eq!(res.status(), 404, "{bad}");
        let html = res.text().await.unwrap();
        assert!(
            html.contains("This chat link is not valid"),
            "{bad}: {html}"
        );
    }
}
