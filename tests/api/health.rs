//! `GET /healthz`.

use crate::helpers::spawn_app;

#[tokio::test]
async fn healthz_answers_ok_with_the_version() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
}
