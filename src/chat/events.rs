//! The `/socket` namespace: every event of the wire contract (DESIGN.md), validated,
//! answered to the right people, and stored before it is acknowledged.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::Chat;
use super::domain::{ClientId, Email, MessageText, Nickname, RoomId, Token};
use super::error::ChatError;
use super::flood::TokenBucket;
use super::seats::{Seat, Take};
use crate::socketio::{
    AckSender, DisconnectReason, Event, HandlerFuture, NamespaceBuilder, RawArg, Socket, WriteJson,
    json, write_json_i64, write_json_str,
};
use crate::store::{AppendDone, Cursor, Joining, MessageId, NewMessage, Page, StoredMessage};

/// Messages of one connection that may be in the store's queue at once: enough to keep
/// the writer's batches large, bounded so that one client cannot fill the shared queue.
pub const MAX_PIPELINED: usize = 64;

/// Messages handed back on (re)join: the latest ones…
pub const JOIN_PAGE: u32 = 50;
/// …or, after a known seq, up to this many (then `more` says to page on).
pub const CATCH_UP_PAGE: u32 = 200;
/// The largest page any history request gets.
pub const MAX_PAGE: u32 = 200;

/// What one connection is doing in the chat.
pub(crate) struct Conn {
    // A std mutex: short updates, never held across an await.
    state: Mutex<ConnState>,
    pipeline: Pipeline,
}

/// The messages of a connection queued in the store and not yet answered. Their
/// answers (`receive`, ack) are sent by the store's completion, in order; everything
/// else this connection is answered waits until they are all out, so the client hears
/// back in the order it asked.
#[derive(Default)]
struct Pipeline {
    in_flight: AtomicUsize,
    /// Set while a handler waits for `in_flight` to drop.
    waiting: AtomicBool,
    changed: tokio::sync::Notify,
}

impl Pipeline {
    /// Whether fewer than `limit` messages are in flight.
    fn is_below(&self, limit: usize) -> bool {
        self.in_flight.load(Ordering::SeqCst) < limit
    }

    /// Waits until fewer than `limit` messages are in flight.
    async fn below(&self, limit: usize) {
        if self.is_below(limit) {
            return;
        }
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            // SeqCst pairs with `finish`: either this load sees its decrement, or it
            // sees `waiting` and wakes us.
            self.waiting.store(true, Ordering::SeqCst);
            if self.is_below(limit) {
                self.waiting.store(false, Ordering::SeqCst);
                return;
            }
            changed.await;
        }
    }

    fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    fn finish(&self) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.waiting.load(Ordering::SeqCst) {
            self.changed.notify_waiters();
        }
    }
}

struct ConnState {
    loaded: Option<RoomId>,
    seat: Option<SeatRef>,
    bucket: TokenBucket,
}

/// The seat this connection holds.
#[derive(Debug, Clone)]
pub(crate) struct SeatRef {
    pub room: RoomId,
    /// Shared with every message this seat sends (a reference count, not a copy each).
    pub token_hash: Arc<str>,
    pub name: Arc<str>,
    pub avatar: Arc<str>,
    pub first_seq: i64,
}

impl Conn {
    fn state(&self) -> std::sync::MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seat(&self) -> Option<SeatRef> {
        self.state().seat.clone()
    }

    fn seated_in(&self, room: &Arc<str>) -> bool {
        self.state().seat.as_ref().is_some_and(|s| {
            let seat_room = s.room.as_str();
            // The same shared string as a rule (the message took it from this seat).
            std::ptr::eq(seat_room, &**room) || seat_room == &**room
        })
    }

    pub(crate) fn clear_seat(&self, room: &RoomId) {
        let mut st = self.state();
        if st.seat.as_ref().is_some_and(|s| &s.room == room) {
            st.seat = None;
        }
    }
}

fn conn(chat: &Chat, socket: &Socket) -> Arc<Conn> {
    if let Some(c) = socket.state::<Conn>() {
        return c;
    }
    let c = Arc::new(Conn {
        state: Mutex::new(ConnState {
            loaded: None,
            seat: None,
            bucket: TokenBucket::new(chat.limits.messages_per_second, chat.limits.burst),
        }),
        pipeline: Pipeline::default(),
    });
    socket.set_state(c.clone());
    socket.state::<Conn>().unwrap_or(c)
}

/// Answers a failed request: in its ack when it asked for one, else as an `error` event.
fn fail(socket: &Socket, ack: Option<AckSender>, err: ChatError) {
    let sent = match ack {
        Some(ack) => ack.send(&err.ack()),
        None => socket.emit("error", &err.body()),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "could not tell a client of its error");
    }
}

fn reply<T: serde::Serialize>(ack: Option<AckSender>, body: &T) {
    if let Some(ack) = ack {
        acknowledged(ack.send(body));
    }
}

/// Logs an acknowledgement that could not be sent (the client has gone).
fn acknowledged(sent: Result<(), crate::socketio::EmitError>) {
    if let Err(e) = sent {
        tracing::debug!(error = %e, "could not acknowledge");
    }
}

/// Waits until this connection's stored messages have all been answered, so that what
/// comes next reaches the client after them.
async fn settled(socket: &Socket) {
    if let Some(conn) = socket.state::<Conn>() {
        conn.pipeline.below(1).await;
    }
}

/// The server's time in ms since the Unix epoch, read once per message: straight from
/// the system clock (chrono's `Utc::now` builds a calendar date first, which
/// `timestamp_millis` then takes apart again). A clock set before 1970 reads as 0.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Registers the chat's handlers on the namespace.
pub fn register(chat: Arc<Chat>, ns: NamespaceBuilder) -> NamespaceBuilder {
    let (c1, c2, c3, c4, c5, c6) = (
        chat.clone(),
        chat.clone(),
        chat.clone(),
        chat.clone(),
        chat.clone(),
        chat,
    );
    ns.on_connection(move |socket| {
        let chat = c1.clone();
        async move {
            conn(&chat, &socket);
        }
    })
    .on("load", move |socket, event| {
        let chat = c2.clone();
        async move {
            settled(&socket).await;
            on_load(chat, socket, event).await
        }
    })
    .on("login", move |socket, event| {
        let chat = c3.clone();
        async move {
            settled(&socket).await;
            on_login(chat, socket, event).await
        }
    })
    .on_immediate("msg", move |socket, event| {
        on_msg(c4.clone(), socket, event)
    })
    .on("history", move |socket, event| {
        let chat = c5.clone();
        async move {
            settled(&socket).await;
            on_history(chat, socket, event).await
        }
    })
    .on("typing", move |socket, event| async move {
        settled(&socket).await;
        on_typing(&socket, event);
    })
    .on("read", move |socket, event| async move {
        settled(&socket).await;
        on_read(&socket, event);
    })
    .on_other(|socket, event| async move {
        settled(&socket).await;
        let name = event.name.to_string();
        fail(&socket, event.ack, ChatError::UnknownEvent(name));
    })
    .on_disconnect(move |socket, reason| {
        let chat = c6.clone();
        async move {
            settled(&socket).await;
            on_disconnect(chat, socket, reason).await
        }
    })
}

async fn on_load(chat: Arc<Chat>, socket: Socket, event: Event) {
    let room = match event.data::<String>() {
        Ok(id) => RoomId::parse(&id),
        Err(_) => Err(ChatError::InvalidRoom),
    };
    let room = match room {
        Ok(room) => room,
        Err(e) => return fail(&socket, event.ack, e),
    };
    let conn = conn(&chat, &socket);
    conn.state().loaded = Some(room.clone());
    let occupants = chat.seats.occupants(room.as_str());
    let sent = match occupants.as_slice() {
        [] => socket.emit("peopleinchat", &PeopleInChat::default()),
        [one] => socket.emit(
            "peopleinchat",
            &PeopleInChat {
                number: 1,
                user: Some(one.name.as_str()),
                avatar: Some(one.avatar.as_str()),
                id: Some(room.as_str()),
            },
        ),
        _ => socket.emit("tooMany", &TooMany::default()),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "could not answer load");
    }
}

#[derive(Deserialize)]
struct LoginPayload {
    user: Option<String>,
    avatar: Option<String>,
    id: Option<String>,
    token: Option<String>,
    after: Option<i64>,
}

async fn on_login(chat: Arc<Chat>, socket: Socket, event: Event) {
    let ack = event.ack;
    let payload: LoginPayload = match event.args.first() {
        Some(raw) => match serde_json::from_str(raw.get()) {
            Ok(p) => p,
            Err(e) => {
                return fail(&socket, ack, ChatError::BadRequest(format!("login: {e}")));
            }
        },
        None => {
            return fail(
                &socket,
                ack,
                ChatError::BadRequest("login needs a payload".into()),
            );
        }
    };
    match login(&chat, &socket, payload).await {
        Ok(body) => reply(ack, &body),
        Err(ChatError::RoomFull) => {
            let _ = socket.emit("tooMany", &TooMany::default());
            fail(&socket, ack, ChatError::RoomFull);
        }
        Err(e) => fail(&socket, ack, e),
    }
}

async fn login(
    chat: &Chat,
    socket: &Socket,
    payload: LoginPayload,
) -> Result<LoginReply, ChatError> {
    let room = RoomId::parse(payload.id.as_deref().unwrap_or(""))?;
    let conn = conn(chat, socket);
    {
        let mut st = conn.state();
        match &st.loaded {
            Some(loaded) if *loaded != room => return Err(ChatError::WrongRoom),
            Some(_) => {}
            None => st.loaded = Some(room.clone()),
        }
    }
    let after = match payload.after {
        Some(s) if s < 0 => return Err(ChatError::BadRequest("after must be ≥ 0".into())),
        other => other,
    };
    // Already seated here on this connection: answer as a fresh login would.
    if let Some(seat) = conn.seat() {
        if seat.room != room {
            return Err(ChatError::WrongRoom);
        }
        return Err(ChatError::BadRequest(format!(
            "already logged in to this room as {}",
            seat.name
        )));
    }

    // A token this server handed out keeps its person; any other is replaced.
    let presented = payload.token.as_deref().and_then(Token::parse);
    let mut returning = None;
    let mut token = None;
    if let Some(t) = presented {
        let hash = t.hash();
        if let Some(p) = chat.store.participant(room.as_str(), &hash).await? {
            returning = Some(p);
            token = Some(t);
        } else if chat.store.token_known(&hash).await? {
            token = Some(t);
        }
    }
    let token = token.unwrap_or_else(Token::generate);
    let token_hash = token.hash();

    let (name, email_hash, avatar) = match &returning {
        Some(p) => (p.name.clone(), p.email_hash.clone(), p.avatar.clone()),
        None => {
            let name = Nickname::parse(payload.user.as_deref().unwrap_or(""))?;
            let email = Email::parse(payload.avatar.as_deref().unwrap_or(""))?;
            let hash = email.gravatar_hash();
            let avatar = super::domain::avatar_url(&hash);
            (name.as_str().to_owned(), hash, avatar)
        }
    };

    let taken = chat.seats.take(
        room.as_str(),
        Seat {
            socket: socket.clone(),
            token_hash: token_hash.clone(),
            name: name.clone(),
            avatar: avatar.clone(),
        },
    );
    let replaced = match taken {
        Take::Seated { replaced } => replaced,
        Take::NameTaken => return Err(ChatError::NicknameTaken),
        Take::Full => return Err(ChatError::RoomFull),
    };
    // Someone new sees only what is stored after their join: nothing yet. Their socket
    // joins the room before the join is stored, so every message stored after it (every
    // message they may see) reaches them live, and no page needs reading. Someone
    // returning reads their page after joining the room (below).
    let fresh = returning.is_none();
    if fresh {
        socket.join(room.as_str());
    }
    let joined = chat
        .store
        .join(
            room.as_str(),
            Joining {
                token_hash: token_hash.clone(),
                name: name.clone(),
                email_hash,
                avatar: avatar.clone(),
            },
            now_ms(),
        )
        .await;
    let participant = match joined {
        Ok(p) => p,
        Err(e) => {
            if fresh {
                socket.leave(room.as_str());
            }
            chat.seats.release(room.as_str(), socket);
            return Err(e.into());
        }
    };
    if let Some(old) = replaced {
        chat.unseat(&old, &room);
        let _ = old.emit(
            "replaced",
            &RoomNamed {
                room: room.as_str(),
            },
        );
        old.leave(room.as_str());
    }
    conn.state().seat = Some(SeatRef {
        room: room.clone(),
        token_hash: token_hash.into(),
        name: name.as_str().into(),
        avatar: avatar.as_str().into(),
        first_seq: participant.first_seq,
    });
    if !fresh {
        socket.join(room.as_str());
    }
    let _ = socket.emit("img", &avatar);

    let occupants = chat.seats.occupants(room.as_str());
    if occupants.len() == crate::chat::seats::SEATS_PER_ROOM {
        let _ = socket.within(room.shared()).emit(
            "startChat",
            &StartChat {
                boolean: true,
                id: room.as_str(),
                users: occupants.iter().map(|s| s.name.as_str()).collect(),
                avatars: occupants.iter().map(|s| s.avatar.as_str()).collect(),
            },
        );
    }

    let page = if fresh {
        Page::default()
    } else {
        let (cursor, limit) = match after {
            Some(seq) => (Cursor::After(seq), CATCH_UP_PAGE),
            None => (Cursor::Latest, JOIN_PAGE),
        };
        chat.store
            .page(room.as_str(), participant.first_seq, cursor, limit)
            .await?
    };
    Ok(LoginReply {
        ok: true,
        token: token.as_str().to_owned(),
        user: name,
        img: avatar,
        messages: page.messages,
        more: page.more,
    })
}

/// `peopleinchat`: who is already in the room (`user`, `avatar` and `id` only when one is).
#[derive(Serialize, Default)]
struct PeopleInChat<'a> {
    number: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    avatar: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

/// `tooMany`: the room is full.
#[derive(Serialize)]
struct TooMany {
    boolean: bool,
}

impl Default for TooMany {
    fn default() -> Self {
        TooMany { boolean: true }
    }
}

/// `replaced` and `erased`: which room the event is about.
#[derive(Serialize)]
pub(crate) struct RoomNamed<'a> {
    pub room: &'a str,
}

/// `startChat`: both seats are taken.
#[derive(Serialize)]
struct StartChat<'a> {
    boolean: bool,
    id: &'a str,
    users: Vec<&'a str>,
    avatars: Vec<&'a str>,
}

/// The acknowledgement of a successful `login`.
#[derive(Serialize)]
struct LoginReply {
    ok: bool,
    token: String,
    user: String,
    img: String,
    messages: Vec<StoredMessage>,
    more: bool,
}

/// The members of a `msg` payload the chat reads, as their JSON texts, found by a walk
/// of the payload (the seed's client also sends `user` and `img`, which are skipped).
#[derive(Default)]
struct MsgFields<'a> {
    msg: Option<&'a str>,
    cid: Option<&'a str>,
}

impl<'a> MsgFields<'a> {
    /// `None` unless `raw` is an object with each of them at most once.
    fn of(raw: &'a RawArg) -> Option<MsgFields<'a>> {
        let mut fields = MsgFields::default();
        for (key, value) in raw.members()? {
            // A key is decoded only when written with escapes (rarely): `json::str_value`
            // on every key cost ~260 more instructions per message (callgrind, flood).
            let key = match key.contains('\\') {
                false => Cow::Borrowed(key.strip_prefix('"')?.strip_suffix('"')?),
                true => json::str_value(key)?,
            };
            let slot = match key.as_ref() {
                "msg" => &mut fields.msg,
                "cid" => &mut fields.cid,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return None;
            }
        }
        Some(fields)
    }
}

/// `msg`: checked and handed to the store's queue at once, with what runs once it is
/// stored; a future comes back only for what has to wait (a full pipeline or queue, a
/// refusal that must follow earlier answers).
fn on_msg(chat: Arc<Chat>, socket: Socket, event: Event) -> Option<HandlerFuture> {
    let conn = conn(&chat, &socket);
    let mut ack = event.ack;
    let message = match checked_message(&conn, &event.args) {
        Ok(message) => message,
        // The refusal goes out after the answers to the messages before it.
        Err(e) if conn.pipeline.is_below(1) => {
            fail(&socket, ack.take(), e);
            return None;
        }
        Err(e) => {
            return Some(Box::pin(async move {
                conn.pipeline.below(1).await;
                fail(&socket, ack.take(), e)
            }));
        }
    };
    if !conn.pipeline.is_below(MAX_PIPELINED) {
        return Some(Box::pin(async move {
            conn.pipeline.below(MAX_PIPELINED).await;
            let done = stored_then(conn, socket, ack, &message);
            chat.store.append_then(message, now_ms(), done).await;
        }));
    }
    let done = stored_then(conn, socket, ack, &message);
    // With the store's queue full, this message waits for room, and the client's next
    // packets wait behind it.
    let (message, now, done) = chat.store.try_append_then(message, now_ms(), done)?;
    Some(Box::pin(async move {
        chat.store.append_then(message, now, done).await;
    }))
}

/// Counts `message` into the connection's pipeline and returns what runs once it is
/// stored: `receive` to the room, then the ack.
fn stored_then(
    conn: Arc<Conn>,
    socket: Socket,
    ack: Option<AckSender>,
    message: &NewMessage,
) -> AppendDone {
    conn.pipeline.start();
    let room = message.room.clone();
    Box::new(move |stored: Result<StoredMessage, _>| {
        match stored {
            Ok(stored) => {
                // Only a connection still seated in the room speaks to it (it may have
                // been replaced or the room erased while the message was being stored).
                if conn.seated_in(&room) {
                    let _ = socket
                        .to(room.clone())
                        .emit_written("receive", &Receive(&stored));
                }
                let ack_body = MsgAck {
                    ok: true,
                    id: &stored.id,
                    seq: stored.seq,
                    ts: stored.ts,
                };
                if let Some(ack) = ack {
                    acknowledged(ack.send_written(&ack_body));
                }
            }
            Err(e) => fail(&socket, ack, ChatError::from(e)),
        }
        conn.pipeline.finish();
    })
}

/// A stored message's ack, `{ok, id, seq, ts}`, written by hand: it goes with every
/// message (the same text serde would write; the test compares them).
#[cfg_attr(test, derive(serde::Serialize))]
struct MsgAck<'a> {
    ok: bool,
    id: &'a MessageId,
    seq: i64,
    ts: i64,
}

impl WriteJson for MsgAck<'_> {
    fn write_json(&self, out: &mut String) {
        out.push_str(if self.ok {
            "{\"ok\":true,\"id\":"
        } else {
            "{\"ok\":false,\"id\":"
        });
        write_message_id(out, self.id);
        out.push_str(",\"seq\":");
        write_json_i64(out, self.seq);
        out.push_str(",\"ts\":");
        write_json_i64(out, self.ts);
        out.push('}');
    }

    fn len_hint(&self) -> usize {
        // Keys, quotes and punctuation (33), the id, two numbers of up to 20 characters.
        33 + self.id.len_hint() + 40
    }
}

/// A `receive` payload: the stored message as serde writes it, `{id, seq, msg, user,
/// img, ts}`, written by hand (once per message; tested against serde).
struct Receive<'a>(&'a StoredMessage);

impl WriteJson for Receive<'_> {
    fn write_json(&self, out: &mut String) {
        let m = self.0;
        out.push_str("{\"id\":");
        write_message_id(out, &m.id);
        out.push_str(",\"seq\":");
        write_json_i64(out, m.seq);
        out.push_str(",\"msg\":");
        write_json_str(out, &m.msg);
        out.push_str(",\"user\":");
        write_json_str(out, &m.user);
        out.push_str(",\"img\":");
        write_json_str(out, &m.img);
        out.push_str(",\"ts\":");
        write_json_i64(out, m.ts);
        out.push('}');
    }

    fn len_hint(&self) -> usize {
        let m = self.0;
        // Keys, quotes and punctuation (50), the strings unescaped, two numbers of up to
        // 20 characters.
        50 + m.id.len_hint() + m.msg.len() + m.user.len() + m.img.len() + 40
    }
}

/// Appends a message id as the JSON string `"<room>:<seq>"`: the room as serde escapes
/// it, then the number (neither `:` nor digits are ever escaped).
fn write_message_id(out: &mut String, id: &MessageId) {
    write_json_str(out, id.room());
    out.pop();
    out.push(':');
    out.push_str(itoa::Buffer::new().format(id.seq()));
    out.push('"');
}

/// A `msg`'s payload, checked: the message to store, or why it is refused.
fn checked_message(conn: &Conn, args: &[RawArg]) -> Result<NewMessage, ChatError> {
    // One lock for the whole check: the state is this connection's own, and nothing
    // below waits or locks it again.
    let mut st = conn.state();
    if !st.bucket.take() {
        return Err(ChatError::RateLimited);
    }
    let seat = st.seat.as_ref().ok_or(ChatError::NotLoggedIn)?;
    let needs_text = || ChatError::InvalidMessage("msg needs {msg: text}".into());
    let raw = args.first().ok_or_else(needs_text)?;
    let fields = MsgFields::of(raw).ok_or_else(needs_text)?;
    let text = fields
        .msg
        .and_then(json::str_value)
        .ok_or_else(|| ChatError::InvalidMessage("msg needs a text".into()))?;
    // Text without escapes is a part of the packet as it came: kept as a view of it.
    let text = MessageText::check(match text {
        Cow::Borrowed(plain) => raw.share(plain).unwrap_or_else(|| plain.into()),
        Cow::Owned(unescaped) => unescaped.into(),
    })?;
    let client_id = match fields.cid.map(serde_json::from_str) {
        None | Some(Ok(serde_json::Value::Null)) => None,
        Some(Ok(serde_json::Value::String(s))) => Some(ClientId::parse(&s)?.into_string()),
        Some(Ok(serde_json::Value::Number(n))) => Some(n.to_string()),
        Some(_) => {
            return Err(ChatError::InvalidMessage("cid must be a string".into()));
        }
    };
    Ok(NewMessage {
        room: seat.room.shared(),
        user: Arc::clone(&seat.name),
        avatar: Arc::clone(&seat.avatar),
        text: text.into_text(),
        client_id,
        token_hash: Arc::clone(&seat.token_hash),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryPayload {
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<i64>,
}

async fn on_history(chat: Arc<Chat>, socket: Socket, event: Event) {
    let conn = conn(&chat, &socket);
    let Some(seat) = conn.seat() else {
        return fail(&socket, event.ack, ChatError::NotLoggedIn);
    };
    let payload: HistoryPayload = match event.args.first() {
        None => HistoryPayload {
            before: None,
            after: None,
            limit: None,
        },
        Some(raw) => match serde_json::from_str(raw.get()) {
            Ok(p) => p,
            Err(e) => {
                return fail(
                    &socket,
                    event.ack,
                    ChatError::BadRequest(format!("history: {e}")),
                );
            }
        },
    };
    let page = match page_request(payload.before, payload.after, payload.limit) {
        Ok(p) => p,
        Err(e) => return fail(&socket, event.ack, e),
    };
    match chat
        .store
        .page(seat.room.as_str(), seat.first_seq, page.0, page.1)
        .await
    {
        Ok(page) => reply(
            event.ack,
            &json!({ "ok": true, "messages": page.messages, "more": page.more }),
        ),
        Err(e) => fail(&socket, event.ack, e.into()),
    }
}

/// The cursor and limit of a history request, as REST and the socket share them.
pub fn page_request(
    before: Option<i64>,
    after: Option<i64>,
    limit: Option<i64>,
) -> Result<(Cursor, u32), ChatError> {
    let limit = match limit {
        None => JOIN_PAGE,
        Some(n) if (1..=i64::from(MAX_PAGE)).contains(&n) => n as u32,
        Some(_) => {
            return Err(ChatError::BadRequest(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
    };
    let cursor = match (before, after) {
        (Some(_), Some(_)) => {
            return Err(ChatError::BadRequest(
                "give before or after, not both".into(),
            ));
        }
        (Some(b), None) if b >= 1 => Cursor::Before(b),
        (None, Some(a)) if a >= 0 => Cursor::After(a),
        (Some(_), None) => return Err(ChatError::BadRequest("before must be ≥ 1".into())),
        (None, Some(_)) => return Err(ChatError::BadRequest("after must be ≥ 0".into())),
        (None, None) => Cursor::Latest,
    };
    Ok((cursor, limit))
}

fn seated(socket: &Socket) -> Option<SeatRef> {
    socket.state::<Conn>()?.seat()
}

fn on_typing(socket: &Socket, event: Event) {
    let Some(seat) = seated(socket) else {
        return fail(socket, event.ack, ChatError::NotLoggedIn);
    };
    #[derive(Deserialize)]
    struct Typing {
        typing: bool,
    }
    match event.data::<Typing>() {
        Ok(t) => {
            let _ = socket
                .to(seat.room.shared())
                .emit("typing", &json!({ "user": seat.name, "typing": t.typing }));
            reply(event.ack, &json!({ "ok": true }));
        }
        Err(_) => fail(
            socket,
            event.ack,
            ChatError::BadRequest("typing needs {typing: true|false}".into()),
        ),
    }
}

fn on_read(socket: &Socket, event: Event) {
    let Some(seat) = seated(socket) else {
        return fail(socket, event.ack, ChatError::NotLoggedIn);
    };
    #[derive(Deserialize)]
    struct Read {
        seq: i64,
    }
    match event.data::<Read>() {
        Ok(r) if r.seq >= 0 => {
            let _ = socket
                .to(seat.room.shared())
                .emit("read", &json!({ "user": seat.name, "seq": r.seq }));
            reply(event.ack, &json!({ "ok": true }));
        }
        _ => fail(
            socket,
            event.ack,
            ChatError::BadRequest("read needs {seq: n ≥ 0}".into()),
        ),
    }
}

async fn on_disconnect(chat: Arc<Chat>, socket: Socket, _reason: DisconnectReason) {
    let Some(seat) = seated(&socket) else {
        return;
    };
    if chat.seats.release(seat.room.as_str(), &socket).is_some() {
        let left = json!({
            "boolean": true,
            "room": seat.room.as_str(),
            "user": seat.name,
            "avatar": seat.avatar,
        });
        for partner in chat.seats.occupants(seat.room.as_str()) {
            let _ = partner.socket.emit("leave", &left);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(data: &dyn WriteJson) -> String {
        let mut out = String::new();
        data.write_json(&mut out);
        // The hint is a size to start from: it may be short only for escaped text.
        let hint = data.len_hint();
        assert!(
            out.len() <= hint || out.contains('\\'),
            "{} > {hint}: {out}",
            out.len()
        );
        out
    }

    /// The `msg` field as `checked_message` reads it: `Some(text)`, `Some(None)` for a
    /// value that is not text, `None` for a payload that is not an object.
    fn msg_field(json: &str) -> Option<Option<String>> {
        let raw = RawArg::parse(json)?;
        let fields = MsgFields::of(&raw)?;
        Some(fields.msg.and_then(json::str_value).map(Cow::into_owned))
    }

    #[test]
    fn a_msg_payload_is_read_in_one_pass() {
        let plain = RawArg::parse(r#"{"msg":"hi there","user":"u","img":"i"}"#).unwrap();
        let fields = MsgFields::of(&plain).unwrap();
        assert!(matches!(
            fields.msg.and_then(json::str_value),
            Some(Cow::Borrowed("hi there"))
        ));
        for (payload, text) in [
            (r#"{"msg":"a\nb \u00e9\"q\""}"#, "a\nb é\"q\""),
            (r#"{"m\u0073g":"escaped key"}"#, "escaped key"),
            (
                r#"{"user":{"a":"}","b":["]",{}]},"msg":"after nesting"}"#,
                "after nesting",
            ),
            (r#"{"img":"x\"}\\","msg":"after escapes"}"#, "after escapes"),
            (
                r#"{"n":-1.5e3,"t":true,"z":null,"msg":"after scalars"}"#,
                "after scalars",
            ),
            ("{ \"x\" : [ 1 , 2 ] ,\n\t\"msg\" : \"spaced\" }", "spaced"),
            (r#"{"msg":"with cid","cid":"c1"}"#, "with cid"),
        ] {
            assert_eq!(msg_field(payload), Some(Some(text.to_owned())), "{payload}");
        }
        for not_text in [
            r#"{"msg":12}"#,
            r#"{"msg":-1.5e3}"#,
            r#"{"msg":true}"#,
            r#"{"msg":null}"#,
            r#"{"msg":{"a":[1,{"b":"c"}]},"cid":"x"}"#,
            r#"{"msg":["t"]}"#,
            r#"{"cid":"x"}"#,
            r#"{}"#,
        ] {
            assert_eq!(msg_field(not_text), Some(None), "{not_text}");
        }
        for not_a_payload in [
            r#""text""#,
            "[1]",
            r#"{"msg":"a","msg":"b"}"#,
            r#"{"msg":"a","m\u0073g":"b"}"#,
            r#"{"cid":"a","cid":"b","msg":"c"}"#,
            r#"{"msg":"a""#,
        ] {
            assert_eq!(msg_field(not_a_payload), None, "{not_a_payload}");
        }
    }

    proptest! {
        #[test]
        fn receive_and_ack_are_written_as_serde_writes_them(
            msg in "\\PC*|[\\x00-\\x7f]*",
            room in "\\PC{0,8}|[\\x00-\\x7f]{0,8}",
            user in "\\PC{0,8}",
            img in "\\PC{0,8}",
            seq: i64,
            ts: i64,
            ok: bool,
        ) {
            let stored = StoredMessage {
                id: MessageId::new(room.as_str().into(), seq),
                seq,
                msg: msg.into(),
                user: user.into(),
                img: img.into(),
                ts,
            };
            prop_assert_eq!(written(&Receive(&stored)), serde_json::to_string(&stored).unwrap());
            let ack = MsgAck { ok, id: &stored.id, seq, ts };
            prop_assert_eq!(written(&ack), serde_json::to_string(&ack).unwrap());
        }
    }
}
