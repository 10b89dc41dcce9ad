//! The MongoDB backend, on the official driver (3.8 line).
//!
//! Documents (one collection each), with the indexes created at start:
//!
//! - `rooms` `{_id: room id, created_at, last_message_at?, message_count, next_seq}`;
//!   index `last_message_at`. A room is created by its first `join`: an upsert with
//!   `$min created_at` and `$max next_seq 1` (both keep an existing room's values, so no
//!   `$setOnInsert` is needed).
//! - `users` `{_id: "<room>:<token_hash>", room, token_hash, name, email_hash, avatar,
//!   first_seq, joined_at, last_seen_at}`; indexes `(room, name)`, `(room, token_hash)`
//!   and `token_hash` (for [`MongoStore::rooms_of`]). The `_id` makes a seat unique per
//!   (room, token), so two concurrent first joins cannot both insert.
//! - `messages` `{_id: "<room>:<seq>", room, seq, user, avatar, text, ts, client_id?,
//!   token_hash}`; indexes `(room, seq)` unique and `(room, client_id)` unique where
//!   `client_id` exists (partial index).
//!
//! A message's seq comes from one `find_one_and_update` `$inc next_seq` on its room,
//! returning the new value: atomic without a transaction. Then the message is inserted.
//! Two caveats, both harmless to readers (they page by cursor, never by seq arithmetic):
//! a seq is lost (a gap) if the insert fails after the increment, or if two copies of the
//! same `client_id` race; and for a few milliseconds a message may be visible before a
//! concurrent one with a smaller seq.
//!
//! A write refused with a write conflict (code 112: not applied) is tried again a few
//! times with a short pause; a first join that loses a race on a unique key (duplicate
//! key, code 11000) starts over, a bounded number of times.
//!
//! The driver reconnects by itself: while the server is down, operations fail with
//! [`StoreError::Unavailable`] after the server-selection timeout
//! ([`DEFAULT_SERVER_SELECTION_TIMEOUT`], or `serverSelectionTimeoutMS` in the URL).

use std::future::{Future, IntoFuture};
use std::time::Duration;

use bson::{Bson, Document, doc};
use futures_util::TryStreamExt;
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, Database, IndexModel};

use super::{
    Cursor, Joining, MessageId, NewMessage, Page, Participant, RoomInfo, RoomSummary, StoreError,
    StoredMessage, page_bounds, page_from_scan, redact,
};

/// How long an operation waits for a reachable server when the URL does not say.
pub const DEFAULT_SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(3);
/// How many times a write that lost a race on a unique key is tried again.
const RACE_RETRIES: usize = 5;
/// MongoDB's duplicate key error code.
const DUPLICATE_KEY: i32 = 11000;
/// MongoDB's write conflict error code: the write was not applied; it may be retried.
const WRITE_CONFLICT: i32 = 112;
/// How many times a write refused with a write conflict is tried again.
const CONFLICT_RETRIES: u32 = 8;
/// The pause before retrying a write conflict, times the attempt number.
const CONFLICT_PAUSE: Duration = Duration::from_millis(10);

/// The MongoDB store: a cheap-to-clone handle (the driver's client is an `Arc` inside).
#[derive(Debug, Clone)]
pub struct MongoStore {
    db: Database,
    rooms: Collection<Document>,
    users: Collection<Document>,
    messages: Collection<Document>,
}

impl MongoStore {
    /// Connects to the database named in `url`, checks that the server answers a `ping`
    /// and creates the indexes.
    pub async fn connect(url: &str) -> Result<MongoStore, StoreError> {
        let connect_error = |reason: String| StoreError::Connect {
            url: redact(url),
            reason,
        };
        let mut options = ClientOptions::parse(url)
            .await
            .map_err(|e| connect_error(e.kind.to_string()))?;
        let Some(name) = options.default_database.clone() else {
            return Err(StoreError::InvalidUrl {
                url: redact(url),
                reason: "the URL names no database (mongodb://HOST/DBNAME)".to_owned(),
            });
        };
        options
            .server_selection_timeout
            .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
        options
            .connect_timeout
            .get_or_insert(DEFAULT_SERVER_SELECTION_TIMEOUT);
        options.app_name.get_or_insert_with(|| "tete".to_owned());
        let client =
            Client::with_options(options).map_err(|e| connect_error(e.kind.to_string()))?;
        let db = client.database(&name);
        let store = MongoStore {
            rooms: db.collection("rooms"),
            users: db.collection("users"),
            messages: db.collection("messages"),
            db,
        };
        store
            .db
            .run_command(doc! {"ping": 1})
            .await
            .map_err(|e| connect_error(e.kind.to_string()))?;
        store
            .create_indexes()
            .await
            .map_err(|e| connect_error(format!("creating indexes: {}", e.kind)))?;
        Ok(store)
    }

    async fn create_indexes(&self) -> mongodb::error::Result<()> {
        let index = |keys: Document, name: &str, unique: bool, partial: Option<Document>| {
            let options = IndexOptions::builder()
                .name(name.to_owned())
                .unique(unique)
                .partial_filter_expression(partial)
                .build();
            IndexModel::builder().keys(keys).options(options).build()
        };
        let indexes = [
            (
                &self.messages,
                index(doc! {"room": 1, "seq": 1}, "room_seq", true, None),
            ),
            (
                &self.messages,
                index(
                    doc! {"room": 1, "client_id": 1},
                    "room_client_id",
                    true,
                    Some(doc! {"client_id": {"$exists": true}}),
                ),
            ),
            (
                &self.users,
                index(doc! {"room": 1, "name": 1}, "room_name", false, None),
            ),
            (
                &self.users,
                index(
                    doc! {"room": 1, "token_hash": 1},
                    "room_token_hash",
                    false,
                    None,
                ),
            ),
            (
                &self.users,
                index(doc! {"token_hash": 1}, "token_hash", false, None),
            ),
            (
                &self.rooms,
                index(doc! {"last_message_at": 1}, "last_message_at", false, None),
            ),
        ];
        for (collection, model) in indexes {
            retrying_conflicts(|| collection.create_index(model.clone()).into_future()).await?;
        }
        Ok(())
    }

    pub async fn join(
        &self,
        room: &str,
        joining: Joining,
        now_ms: i64,
    ) -> Result<Participant, StoreError> {
        let seat = format!("{room}:{}", joining.token_hash);
        for _ in 0..RACE_RETRIES {
            let seen = self
                .users
                .find_one_and_update(doc! {"_id": &seat}, doc! {"$set": {"last_seen_at": now_ms}})
                .return_document(ReturnDocument::After)
                .await
                .map_err(unavailable)?;
            if let Some(seen) = seen {
                return participant_from_doc(&seen);
            }
            let room_doc = match self.create_room(room, now_ms).await {
                Ok(room_doc) => room_doc,
                Err(e) if is_duplicate_key(&e) => continue,
                Err(e) => return Err(unavailable(e)),
            };
            let participant = Participant {
                room: room.to_owned(),
                token_hash: joining.token_hash.clone(),
                name: joining.name.clone(),
                email_hash: joining.email_hash.clone(),
                avatar: joining.avatar.clone(),
                first_seq: get_i64(&room_doc, "next_seq")?,
                joined_at: now_ms,
                last_seen_at: now_ms,
            };
            let seat_doc = doc! {
                "_id": &seat,
                "room": &participant.room,
                "token_hash": &participant.token_hash,
                "name": &participant.name,
                "email_hash": &participant.email_hash,
                "avatar": &participant.avatar,
                "first_seq": participant.first_seq,
                "joined_at": participant.joined_at,
                "last_seen_at": participant.last_seen_at,
            };
            let inserted =
                retrying_conflicts(|| self.users.insert_one(seat_doc.clone()).into_future()).await;
            match inserted {
                Ok(_) => return Ok(participant),
                Err(e) if is_duplicate_key(&e) => continue,
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "joining room {room} kept racing with concurrent joins"
        )))
    }

    /// Creates the room if it does not exist; returns its document either way.
    async fn create_room(&self, room: &str, now_ms: i64) -> mongodb::error::Result<Document> {
        let room_doc = retrying_conflicts(|| {
            self.rooms
                .find_one_and_update(
                    doc! {"_id": room},
                    doc! {
                        "$min": {"created_at": now_ms},
                        "$max": {"next_seq": 1_i64, "message_count": 0_i64},
                    },
                )
                .upsert(true)
                .return_document(ReturnDocument::After)
                .into_future()
        })
        .await?;
        room_doc.ok_or_else(|| {
            mongodb::error::Error::custom(format!("the upsert of room {room} returned nothing"))
        })
    }

    pub async fn participant(
        &self,
        room: &str,
        token_hash: &str,
    ) -> Result<Option<Participant>, StoreError> {
        self.users
            .find_one(doc! {"room": room, "token_hash": token_hash})
            .await
            .map_err(unavailable)?
            .map(|found| participant_from_doc(&found))
            .transpose()
    }

    pub async fn append(&self, msg: NewMessage, now_ms: i64) -> Result<StoredMessage, StoreError> {
        if let Some(stored) = self.find_by_client_id(&msg).await? {
            return Ok(stored);
        }
        let room = retrying_conflicts(|| {
            self.rooms
                .find_one_and_update(
                    doc! {"_id": &*msg.room},
                    doc! {
                        "$inc": {"next_seq": 1_i64, "message_count": 1_i64},
                        "$max": {"last_message_at": now_ms},
                    },
                )
                .return_document(ReturnDocument::After)
                .into_future()
        })
        .await
        .map_err(unavailable)?
        .ok_or_else(|| StoreError::RoomNotFound(msg.room.to_string()))?;
        let seq = get_i64(&room, "next_seq")? - 1;
        let id = MessageId::new(msg.room.clone(), seq);
        let mut message = doc! {
            "_id": id.to_string(),
            "room": &*msg.room,
            "seq": seq,
            "user": &*msg.user,
            "avatar": &*msg.avatar,
            "text": &*msg.text,
            "ts": now_ms,
            "token_hash": &*msg.token_hash,
        };
        if let Some(client_id) = &msg.client_id {
            message.insert("client_id", client_id);
        }
        match retrying_conflicts(|| self.messages.insert_one(message.clone()).into_future()).await {
            Ok(_) => Ok(StoredMessage {
                id,
                seq,
                msg: msg.text,
                user: msg.user,
                img: msg.avatar,
                ts: now_ms,
            }),
            // A concurrent retry of the same client id won: answer with its message.
            Err(e) if is_duplicate_key(&e) && msg.client_id.is_some() => self
                .find_by_client_id(&msg)
                .await?
                .ok_or_else(|| unavailable(e)),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn find_by_client_id(
        &self,
        msg: &NewMessage,
    ) -> Result<Option<StoredMessage>, StoreError> {
        let Some(client_id) = &msg.client_id else {
            return Ok(None);
        };
        self.messages
            .find_one(doc! {"room": &*msg.room, "client_id": client_id})
            .await
            .map_err(unavailable)?
            .map(|found| message_from_doc(&found))
            .transpose()
    }

    pub async fn page(
        &self,
        room: &str,
        visible_from: i64,
        cursor: Cursor,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let (low, high) = page_bounds(visible_from, cursor);
        if low >= high {
            return Ok(Page {
                messages: Vec::new(),
                more: false,
            });
        }
        let order = if matches!(cursor, Cursor::After(_)) {
            1
        } else {
            -1
        };
        let rows: Vec<Document> = self
            .messages
            .find(doc! {"room": room, "seq": {"$gte": low, "$lt": high}})
            .sort(doc! {"seq": order})
            .limit(i64::from(limit) + 1)
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        let rows = rows
            .iter()
            .map(message_from_doc)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page_from_scan(rows, cursor, limit))
    }

    pub async fn room(&self, room: &str) -> Result<Option<RoomInfo>, StoreError> {
        self.rooms
            .find_one(doc! {"_id": room})
            .await
            .map_err(unavailable)?
            .map(|found| room_from_doc(&found))
            .transpose()
    }

    pub async fn token_known(&self, token_hash: &str) -> Result<bool, StoreError> {
        let mut seats = self
            .users
            .find(doc! {"token_hash": token_hash})
            .projection(doc! {"room": 1})
            .await
            .map_err(unavailable)?;
        while let Some(seat) = seats.try_next().await.map_err(unavailable)? {
            let room = get_string(&seat, "room")?;
            if self.room(&room).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub async fn rooms_of(&self, token_hash: &str) -> Result<Vec<RoomSummary>, StoreError> {
        let seats: Vec<Document> = self
            .users
            .find(doc! {"token_hash": token_hash})
            .await
            .map_err(unavailable)?
            .try_collect()
            .await
            .map_err(unavailable)?;
        let mut summaries = Vec::with_capacity(seats.len());
        for seat in &seats {
            let participant = participant_from_doc(seat)?;
            let Some(room) = self.room(&participant.room).await? else {
                continue;
            };
            let last_message = self
                .messages
                .find_one(doc! {"room": &participant.room, "seq": {"$gte": participant.first_seq}})
                .sort(doc! {"seq": -1})
                .await
                .map_err(unavailable)?
                .map(|found| message_from_doc(&found))
                .transpose()?;
            summaries.push(RoomSummary {
                room,
                participant,
                last_message,
            });
        }
        super::newest_activity_first(&mut summaries);
        Ok(summaries)
    }

    pub async fn erase_room(&self, room: &str) -> Result<bool, StoreError> {
        // The room goes first: from then on an append is refused (RoomNotFound).
        let erased = retrying_conflicts(|| self.rooms.delete_one(doc! {"_id": room}).into_future())
            .await
            .map_err(unavailable)?;
        for collection in [&self.users, &self.messages] {
            retrying_conflicts(|| collection.delete_many(doc! {"room": room}).into_future())
                .await
                .map_err(unavailable)?;
        }
        Ok(erased.deleted_count > 0)
    }

    pub async fn health(&self) -> Result<(), StoreError> {
        self.db
            .run_command(doc! {"ping": 1})
            .await
            .map(drop)
            .map_err(unavailable)
    }
}

/// Runs `op` again (a bounded number of times, with a short pause) while the server
/// answers with a write conflict: the operation was not applied and may simply be retried.
async fn retrying_conflicts<T, F, Fut>(mut op: F) -> mongodb::error::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = mongodb::error::Result<T>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Err(e) if is_write_conflict(&e) && attempt < CONFLICT_RETRIES => {
                attempt += 1;
                tokio::time::sleep(CONFLICT_PAUSE * attempt).await;
            }
            done => return done,
        }
    }
}

fn is_write_conflict(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == WRITE_CONFLICT,
        ErrorKind::Command(e) => e.code == WRITE_CONFLICT,
        _ => false,
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(e)) => e.code == DUPLICATE_KEY,
        ErrorKind::Command(e) => e.code == DUPLICATE_KEY,
        _ => false,
    }
}

fn unavailable(error: mongodb::error::Error) -> StoreError {
    StoreError::Unavailable(format!("MongoDB: {}", error.kind))
}

/// An integer field, whichever BSON integer type the server chose to keep it in.
fn get_i64(found: &Document, key: &str) -> Result<i64, StoreError> {
    match found.get(key) {
        Some(Bson::Int64(n)) => Ok(*n),
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        Some(Bson::Double(n)) if n.fract() == 0.0 => Ok(*n as i64),
        other => Err(StoreError::Corrupt(format!(
            "field {key} should be an integer, found {other:?}"
        ))),
    }
}

fn get_optional_i64(found: &Document, key: &str) -> Result<Option<i64>, StoreError> {
    match found.get(key) {
        None | Some(Bson::Null) => Ok(None),
        Some(_) => get_i64(found, key).map(Some),
    }
}

fn get_string(found: &Document, key: &str) -> Result<String, StoreError> {
    match found.get(key) {
        Some(Bson::String(s)) => Ok(s.clone()),
        other => Err(StoreError::Corrupt(format!(
            "field {key} should be a string, found {other:?}"
        ))),
    }
}

fn message_from_doc(found: &Document) -> Result<StoredMessage, StoreError> {
    let room = get_string(found, "room")?;
    let seq = get_i64(found, "seq")?;
    Ok(StoredMessage {
        id: MessageId::new(room.into(), seq),
        seq,
        msg: get_string(found, "text")?.into(),
        user: get_string(found, "user")?.into(),
        img: get_string(found, "avatar")?.into(),
        ts: get_i64(found, "ts")?,
    })
}

fn participant_from_doc(found: &Document) -> Result<Participant, StoreError> {
    Ok(Participant {
        room: get_string(found, "room")?,
        token_hash: get_string(found, "token_hash")?,
        name: get_string(found, "name")?,
        email_hash: get_string(found, "email_hash")?,
        avatar: get_string(found, "avatar")?,
        first_seq: get_i64(found, "first_seq")?,
        joined_at: get_i64(found, "joined_at")?,
        last_seen_at: get_i64(found, "last_seen_at")?,
    })
}

fn room_from_doc(found: &Document) -> Result<RoomInfo, StoreError> {
    Ok(RoomInfo {
        id: get_string(found, "_id")?,
        created_at: get_i64(found, "created_at")?,
        last_message_at: get_optional_i64(found, "last_message_at")?,
        message_count: get_i64(found, "message_count")?,
        next_seq: get_i64(found, "next_seq")?,
    })
}
