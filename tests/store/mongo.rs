//! MongoDB-only behaviour: connecting.

use std::time::{Duration, Instant};

use tete::store::{Store, StoreError};

#[tokio::test]
async fn an_unreachable_mongodb_fails_fast_at_connect_with_a_clear_error() {
    let started = Instant::now();
    let error = Store::connect(
        "mongodb://tete:secret@127.0.0.1:9/tete?serverSelectionTimeoutMS=500&connectTimeoutMS=500",
    )
    .await
    .expect_err("refused");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(error, StoreError::Connect { .. }), "{error:?}");
    let text = error.to_string();
    assert!(
        text.starts_with("cannot open the store at mongodb://***@127.0.0.1:9/tete"),
        "{text}"
    );
    assert!(!text.contains("secret"), "{text}");
}

#[tokio::test]
async fn a_mongodb_url_without_a_database_name_is_refused() {
    let error = Store::connect("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=100")
        .await
        .expect_err("refused");
    assert!(matches!(error, StoreError::InvalidUrl { .. }), "{error:?}");
}

#[tokio::test]
async fn connecting_uses_mongodb_when_a_server_is_configured() {
    let Some(test) = crate::helpers::mongo().await else {
        return;
    };
    assert!(matches!(test.store, Store::Mongo(_)));
    test.clean_up().await;
}
