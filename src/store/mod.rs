//! History store: participants, rooms and messages, kept in SQLite or MongoDB.
//!
//! One interface, two real backends chosen by the database URL given to
//! [`Store::connect`]:
//!
//! - `sqlite:PATH` (the default, [`DEFAULT_URL`]): an embedded SQLite file in WAL mode,
//!   its parent directory created on first start, schema migrations applied at start.
//!   All writes go through one writer thread that batches them (group commit); reads use
//!   a small pool of read-only connections on blocking threads. See [`sqlite`].
//! - `mongodb://…/DBNAME`: the official MongoDB driver; collections `users`, `rooms`
//!   and `messages`, indexes created at start. See [`mongo`].
//!
//! The store is a pure history layer: it knows nothing of sockets or HTTP. It keeps the
//! e-mail hash and avatar URL of a participant, never the e-mail, and the SHA-256 hex of
//! a participant token, never the token: hashing is the caller's job.
//!
//! The whole interface is [`Store`]:
//!
//! | method | does |
//! |---|---|
//! | [`Store::connect`] | opens the store named by a URL, or says clearly why it cannot |
//! | [`Store::join`] | the (room, person) record; creates the room on its first join |
//! | [`Store::participant`] | looks a participant up by token hash |
//! | [`Store::append`] | stores a message with the next per-room `seq`; idempotent on `client_id` |
//! | [`Store::page`] | a page of messages, ascending by `seq`, plus whether there are `more` |
//! | [`Store::room`] | a room's bookkeeping |
//! | [`Store::rooms_of`] | the rooms a token takes part in, newest activity first |
//! | [`Store::token_known`] | whether a token takes part in any room |
//! | [`Store::erase_room`] | erases a room, its participants and its messages |
//! | [`Store::health`] | whether the store answers |
//!
//! A message id is `<room>:<seq>`: unique across rooms (a room id never contains `:`)
//! and the same on both backends. Times are milliseconds since the Unix epoch, given by
//! the caller (`now_ms`) so that tests control them.
//!
//! Errors: a store that cannot be reached at start is [`StoreError::Connect`]; one that
//! fails while running is [`StoreError::Unavailable`] and recovers by itself when the
//! database is back.

mod handoff;
pub mod mongo;
pub mod sqlite;

use std::sync::Arc;

use bytestring::ByteString;
use serde::Serialize;

pub use mongo::MongoStore;
pub use sqlite::SqliteStore;

/// The database URL used when none is configured.
pub const DEFAULT_URL: &str = "sqlite:data/tete.db";

/// What went wrong in the store.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// The URL names no backend we know, or is malformed.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// The store could not be opened or reached at start.
    #[error("cannot open the store at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The store failed while running (I/O error, database down); retrying later may work.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// A message was appended to a room nobody has joined (or that was erased).
    #[error("no such room: {0}")]
    RoomNotFound(String),
    /// A stored record does not have the shape this version of tete writes.
    #[error("unexpected stored data: {0}")]
    Corrupt(String),
}

/// A person taking a seat in a room, as the chat knows them after login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joining {
    /// SHA-256 hex of the participant token.
    pub token_hash: String,
    pub name: String,
    /// The Gravatar hash of the e-mail (md5 hex), never the e-mail itself.
    pub email_hash: String,
    /// The avatar URL shown next to this person's messages.
    pub avatar: String,
}

/// A (room, person) record: who they are and from which `seq` they may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participant {
    pub room: String,
    pub token_hash: String,
    pub name: String,
    pub email_hash: String,
    pub avatar: String,
    /// The first `seq` this participant may read: the room's next seq at their first join.
    pub first_seq: i64,
    pub joined_at: i64,
    pub last_seen_at: i64,
}

/// A message to store; `seq`, `id` and `ts` are assigned by the store.
///
/// The room and the author are shared strings: the chat holds them for as long as the
/// author is seated, and every message of theirs refers to the same ones (no copy per
/// message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub room: Arc<str>,
    /// The author's name, as shown.
    pub user: Arc<str>,
    /// The author's avatar URL.
    pub avatar: Arc<str>,
    /// The text, as the client sent it when it had no escapes (a view of its packet).
    pub text: ByteString,
    /// The client's own id for this message: a retry with the same id is stored once.
    pub client_id: Option<String>,
    /// SHA-256 hex of the author's token, kept with the message.
    pub token_hash: Arc<str>,
}

/// A stored message, in the wire shape `{id, seq, msg, user, img, ts}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredMessage {
    /// `<room>:<seq>`.
    pub id: MessageId,
    pub seq: i64,
    pub msg: ByteString,
    pub user: Arc<str>,
    pub img: Arc<str>,
    /// Server time in ms since the Unix epoch.
    pub ts: i64,
}

/// What [`Store::append_then`] calls with the outcome of an append.
pub type AppendDone = Box<dyn FnOnce(Result<StoredMessage, StoreError>) + Send + 'static>;

/// Where a page of history starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The latest messages.
    Latest,
    /// The messages just before this seq (exclusive); `more` means older ones exist.
    Before(i64),
    /// The messages just after this seq (exclusive); `more` means newer ones exist.
    After(i64),
}

/// A page of messages, ascending by `seq`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Page {
    pub messages: Vec<StoredMessage>,
    /// Whether further visible messages exist beyond this page, in its direction
    /// (older for `Latest` and `Before`, newer for `After`).
    pub more: bool,
}

/// A room's bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    pub id: String,
    pub created_at: i64,
    /// The time of the latest message, if any.
    pub last_message_at: Option<i64>,
    pub message_count: i64,
    /// The seq the next message will get.
    pub next_seq: i64,
}

impl RoomInfo {
    /// The time of the room's latest activity: its last message, or its creation.
    pub fn last_activity(&self) -> i64 {
        self.last_message_at.unwrap_or(self.created_at)
    }
}

/// One of a participant's rooms, with the last message they may see in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomSummary {
    pub room: RoomInfo,
    pub participant: Participant,
    pub last_message: Option<StoredMessage>,
}

/// The history store: a cheap-to-clone handle on one of the backends.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(SqliteStore),
    Mongo(MongoStore),
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            Store::Sqlite($store) => $call.await,
            Store::Mongo($store) => $call.await,
        }
    };
}

impl Store {
    /// Opens the store named by `url`: `sqlite:PATH` or `mongodb://…/DBNAME`.
    ///
    /// Fails with [`StoreError::InvalidUrl`] or [`StoreError::Connect`], whose message is
    /// meant to be printed as is (credentials in the URL are not shown).
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::InvalidUrl {
                    url: url.to_owned(),
                    reason: "the path is empty (e.g. sqlite:data/tete.db)".to_owned(),
                });
            }
            SqliteStore::open(path).await.map(Store::Sqlite)
        } else if url.starts_with("mongodb://") || url.starts_with("mongodb+srv://") {
            MongoStore::connect(url).await.map(Store::Mongo)
        } else {
            Err(StoreError::InvalidUrl {
                url: redact(url),
                reason: "expected sqlite:PATH or mongodb://HOST/DBNAME".to_owned(),
            })
        }
    }

    /// Records that a person takes a seat in `room`, creating the room on its first join.
    ///
    /// If a participant with this token hash already exists in the room, returns it
    /// unchanged (name, avatar and `first_seq` kept) with `last_seen_at` set to `now_ms`;
    /// otherwise records a new one whose `first_seq` is the room's next seq, so that they
    /// see the messages from their first join onward.
    pub async fn join(
        &self,
        room: &str,
        joining: Joining,
        now_ms: i64,
    ) -> Result<Participant, StoreError> {
        dispatch!(self, s => s.join(room, joining, now_ms))
    }

    /// Whether this token hash takes part in any existing room: the cheap form of
    /// "`rooms_of` is not empty", without loading the rooms and their last messages.
    pub async fn token_known(&self, token_hash: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.token_known(token_hash))
    }

    /// The participant of `room` with this token hash, if any.
    pub async fn participant(
        &self,
        room: &str,
        token_hash: &str,
    ) -> Result<Option<Participant>, StoreError> {
        dispatch!(self, s => s.participant(room, token_hash))
    }

    /// Stores a message with the room's next seq, or, if a message with the same
    /// `client_id` is already stored in that room, returns that one untouched.
    ///
    /// The room must exist ([`StoreError::RoomNotFound`] otherwise).
    pub async fn append(&self, msg: NewMessage, now_ms: i64) -> Result<StoredMessage, StoreError> {
        dispatch!(self, s => s.append(msg, now_ms))
    }

    /// Queues a message to be stored as [`Store::append`] does, and returns once it is
    /// queued (waiting only for room in the queue); `done` is called with the outcome
    /// once the message is stored (or has failed). Calls to `done` come in the order the
    /// messages were queued, so a caller may keep many messages in flight and still
    /// answer them in order. `done` runs on the thread that queued the message when that
    /// thread drives a current-thread runtime, as actix's workers do (SQLite hands a
    /// batch's completions back together), otherwise on the store's own thread: it must
    /// be short and must not block.
    pub async fn append_then(&self, msg: NewMessage, now_ms: i64, done: AppendDone) {
        match self {
            Store::Sqlite(s) => s.append_then(msg, now_ms, done).await,
            // One at a time: the outcome is known before the next message is queued.
            Store::Mongo(s) => done(s.append(msg, now_ms).await),
        }
    }

    /// [`append_then`](Self::append_then) if it needs no waiting: the message is queued
    /// now (`None`) when the store's queue has room (SQLite); otherwise (a full queue, or
    /// MongoDB, which stores one message at a time) the message, its time and its
    /// completion come back, for `append_then`.
    pub fn try_append_then(
        &self,
        msg: NewMessage,
        now_ms: i64,
        done: AppendDone,
    ) -> Option<(NewMessage, i64, AppendDone)> {
        match self {
            Store::Sqlite(s) => s.try_append_then(msg, now_ms, done),
            Store::Mongo(_) => Some((msg, now_ms, done)),
        }
    }

    /// A page of at most `limit` messages with `seq >= visible_from`, ascending by seq.
    pub async fn page(
        &self,
        room: &str,
        visible_from: i64,
        cursor: Cursor,
        limit: u32,
    ) -> Result<Page, StoreError> {
        dispatch!(self, s => s.page(room, visible_from, cursor, limit))
    }

    /// A room's bookkeeping, if the room exists.
    pub async fn room(&self, room: &str) -> Result<Option<RoomInfo>, StoreError> {
        dispatch!(self, s => s.room(room))
    }

    /// The rooms this token takes part in, newest activity first (see
    /// [`RoomInfo::last_activity`]; ties by room id), each with the last message its
    /// participant may see.
    pub async fn rooms_of(&self, token_hash: &str) -> Result<Vec<RoomSummary>, StoreError> {
        dispatch!(self, s => s.rooms_of(token_hash))
    }

    /// Erases the room, its participants and its messages; returns whether it existed.
    pub async fn erase_room(&self, room: &str) -> Result<bool, StoreError> {
        dispatch!(self, s => s.erase_room(room))
    }

    /// Whether the store answers.
    pub async fn health(&self) -> Result<(), StoreError> {
        dispatch!(self, s => s.health())
    }
}

/// The order of [`Store::rooms_of`], the same on every backend: newest activity first,
/// ties by room id.
fn newest_activity_first(summaries: &mut [RoomSummary]) {
    summaries.sort_by(|a, b| {
        b.room
            .last_activity()
            .cmp(&a.room.last_activity())
            .then_with(|| a.room.id.cmp(&b.room.id))
    });
}

/// A message's id, `<room>:<seq>`: its room (the string the chat shares) and its
/// number, written out only when it is sent or shown (no string per stored message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId {
    room: Arc<str>,
    seq: i64,
}

impl MessageId {
    pub fn new(room: Arc<str>, seq: i64) -> MessageId {
        MessageId { room, seq }
    }

    pub fn room(&self) -> &str {
        &self.room
    }

    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// The length of its text, at most: the room, `:`, and up to 20 characters of seq.
    pub fn len_hint(&self) -> usize {
        self.room.len() + 21
    }
}

impl std::fmt::Display for MessageId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.room)?;
        f.write_str(":")?;
        f.write_str(itoa::Buffer::new().format(self.seq))
    }
}

impl Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl PartialEq<str> for MessageId {
    fn eq(&self, other: &str) -> bool {
        other
            .strip_prefix(&*self.room)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|seq| seq == itoa::Buffer::new().format(self.seq))
    }
}

impl PartialEq<&str> for MessageId {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl PartialEq<String> for MessageId {
    fn eq(&self, other: &String) -> bool {
        *self == **other
    }
}

/// Builds a page from rows fetched with one extra row beyond `limit`, in the cursor's
/// scan order (descending for `Latest`/`Before`, ascending for `After`).
fn page_from_scan(mut rows: Vec<StoredMessage>, cursor: Cursor, limit: u32) -> Page {
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    if !matches!(cursor, Cursor::After(_)) {
        rows.reverse();
    }
    Page {
        messages: rows,
        more,
    }
}

/// The seq range `[low, high)` a page scans, within what is visible.
fn page_bounds(visible_from: i64, cursor: Cursor) -> (i64, i64) {
    match cursor {
        Cursor::Latest => (visible_from, i64::MAX),
        Cursor::Before(seq) => (visible_from, seq),
        Cursor::After(seq) => (visible_from.max(seq.saturating_add(1)), i64::MAX),
    }
}

/// `url` with any `user:password@` part hidden, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_id_is_its_room_and_seq() {
        let id = |room: &str, seq| MessageId::new(room.into(), seq);
        assert_eq!(id("r00m-id_x", 1).to_string(), "r00m-id_x:1");
        assert_eq!(
            id("r", 9_007_199_254_740_993).to_string(),
            "r:9007199254740993"
        );
        assert_eq!(id("r", i64::MIN).to_string(), format!("r:{}", i64::MIN));
        assert_eq!(
            serde_json::to_string(&id("a\"b", 7)).unwrap(),
            r#""a\"b:7""#
        );
        assert!(id("r", i64::MAX).to_string().len() <= id("r", i64::MAX).len_hint());
        assert!(id("r", i64::MIN).to_string().len() <= id("r", i64::MIN).len_hint());
        // Compared with text as that text.
        assert_eq!(id("r", 12), "r:12");
        assert_ne!(id("r", 12), "r:1");
        assert_ne!(id("r", 1), "r:12");
        assert_ne!(id("r", 1), "rr:1");
        assert_ne!(id("r", 1), "r1");
        assert_ne!(id("r", -1), "r:1");
    }

    #[test]
    fn credentials_are_hidden_from_error_messages() {
        assert_eq!(
            redact("mongodb://tete:s3cret@db:27017/tete"),
            "mongodb://***@db:27017/tete"
        );
        assert_eq!(redact("sqlite:data/tete.db"), "sqlite:data/tete.db");
    }

    #[test]
    fn page_bounds_stay_within_what_is_visible() {
        assert_eq!(page_bounds(6, Cursor::Latest), (6, i64::MAX));
        assert_eq!(page_bounds(6, Cursor::Before(10)), (6, 10));
        assert_eq!(page_bounds(6, Cursor::After(2)), (6, i64::MAX));
        assert_eq!(page_bounds(1, Cursor::After(7)), (8, i64::MAX));
        assert_eq!(
            page_bounds(1, Cursor::After(i64::MAX)),
            (i64::MAX, i64::MAX)
        );
    }

    #[tokio::test]
    async fn an_unknown_url_scheme_is_refused() {
        let error = Store::connect("postgres://u:p@x/db").await.unwrap_err();
        assert!(matches!(error, StoreError::InvalidUrl { .. }));
        assert!(!error.to_string().contains("u:p"));
    }
}
