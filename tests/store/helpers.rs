//! Test fixtures: throw-away stores and sample participants and messages.

use tempfile::TempDir;
use tete::store::{Joining, NewMessage, Store};
use tokio::sync::{Mutex, MutexGuard};

/// A store that lives as long as this value (its temporary directory, if any, with it).
pub struct TestStore {
    pub store: Store,
    /// The MongoDB database to drop once the test passed.
    mongo: Option<(mongodb::Client, String)>,
    _dir: Option<TempDir>,
    _turn: Option<MutexGuard<'static, ()>>,
}

/// MongoDB tests take turns: briskdb answers concurrent index builds and database drops
/// (even of different databases) with "WriteConflict: database is busy".
static MONGODB_TURN: Mutex<()> = Mutex::const_new(());

impl TestStore {
    /// Drops the test's MongoDB database; SQLite files go with the temporary directory.
    pub async fn clean_up(self) {
        if let Some((client, name)) = self.mongo {
            let _ = client.database(&name).drop().await;
        }
    }
}

pub fn temp_dir() -> TempDir {
    tempfile::Builder::new()
        .prefix("tete-store-")
        .tempdir()
        .expect("a temporary directory")
}

pub async fn sqlite() -> TestStore {
    let dir = temp_dir();
    let url = format!("sqlite:{}", dir.path().join("tete.db").display());
    let store = Store::connect(&url).await.expect("the SQLite store opens");
    TestStore {
        store,
        mongo: None,
        _dir: Some(dir),
        _turn: None,
    }
}

/// The MongoDB URI to test against, or `None` (with a notice) when none is configured.
pub fn mongodb_uri() -> Option<String> {
    match std::env::var("TETE_TEST_MONGODB_URI") {
        Ok(uri) if !uri.is_empty() => Some(uri),
        _ => {
            eprintln!("skipped on MongoDB: TETE_TEST_MONGODB_URI is not set");
            None
        }
    }
}

/// `uri` with its database name replaced by `name`.
pub fn with_database(uri: &str, name: &str) -> String {
    let (base, query) = uri
        .split_once('?')
        .map_or((uri, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let hosts_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    let mut out = format!("{}/{name}", &base[..hosts_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

pub async fn mongo() -> Option<TestStore> {
    let uri = mongodb_uri()?;
    let turn = MONGODB_TURN.lock().await;
    let name = format!("tete_test_{:016x}", rand::random::<u64>());
    let url = with_database(&uri, &name);
    let store = Store::connect(&url)
        .await
        .expect("the MongoDB store connects");
    let client = mongodb::Client::with_uri_str(&url)
        .await
        .expect("a MongoDB client for clean-up");
    Some(TestStore {
        store,
        mongo: Some((client, name)),
        _dir: None,
        _turn: Some(turn),
    })
}

/// A fresh, valid room id (22+ characters of `[A-Za-z0-9_-]`).
pub fn room_id() -> String {
    format!("room_{:020x}", rand::random::<u64>())
}

pub fn token(name: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(format!("token of {name}")))
}

pub fn joining(name: &str) -> Joining {
    Joining {
        token_hash: token(name),
        name: name.to_owned(),
        email_hash: format!("{:x}", md5::compute(format!("{name}@example.com"))),
        avatar: format!("https://www.gravatar.com/avatar/{name}?s=140&r=x&d=mm"),
    }
}

pub fn message(room: &str, author: &str, text: &str, client_id: Option<&str>) -> NewMessage {
    let who = joining(author);
    NewMessage {
        room: room.into(),
        user: who.name.into(),
        avatar: who.avatar.into(),
        text: text.into(),
        client_id: client_id.map(str::to_owned),
        token_hash: who.token_hash.into(),
    }
}

#[test]
fn the_database_name_is_replaced_in_a_uri() {
    assert_eq!(
        with_database("mongodb://127.0.0.1:1/tete_test?directConnection=true", "x"),
        "mongodb://127.0.0.1:1/x?directConnection=true"
    );
    assert_eq!(with_database("mongodb://h:1", "x"), "mongodb://h:1/x");
    assert_eq!(
        with_database("mongodb://u:p@h:1/", "x"),
        "mongodb://u:p@h:1/x"
    );
}
