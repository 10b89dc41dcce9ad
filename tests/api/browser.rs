//! The browser client (public/js, public/vendor) is served by tete itself: nothing
//! comes from a CDN.

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_browser_client_is_served_by_tete_itself() {
    let app = spawn_app().await;
    for (path, needle) in [
        ("/public/vendor/socket.io.esm.min.js", "export{"),
        (
            "/public/js/chat.js",
            "from \"/public/vendor/socket.io.esm.min.js\"",
        ),
        ("/public/js/conversation.js", "textContent"),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        let kind = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(kind.contains("javascript"), "{path} is served as {kind}");
        assert!(res.text().await.unwrap().contains(needle), "{path}");
    }
}
