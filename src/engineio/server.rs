//! The Engine.IO server on actix-web: request routing, handshake, HTTP long-polling,
//! WebSocket, the polling→websocket upgrade, heartbeat, CORS and origin checks.

use std::sync::{Arc, Mutex};

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use futures_util::StreamExt;
use tokio::time::Instant;

use super::config::EngineConfig;
use super::deadlines::Deadlines;
use super::error::EngineError;
use super::packet::{self, Packet};
use super::session::{
    CloseReason, EngineSocket, HandlerFuture, Handshake, Message, Session, TransportKind, Upgrade,
};
use super::sid::Sid;
use super::ws::{self, Direct, FrameReader, WsBody, WsLink};

/// The maps looked up per packet use a fast hasher, randomly seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What the layer above (Socket.IO) is told about its clients.
pub trait EngineHandler: Send + Sync + 'static {
    /// A session opened. Called before any message of the client is delivered.
    fn on_open(&self, socket: &EngineSocket);
    /// A message came. Runs now, in arrival order; a returned future runs after the
    /// futures of earlier messages have finished (reading goes on meanwhile, so acks
    /// and pongs are never stuck behind a slow handler).
    fn on_message(&self, socket: &EngineSocket, message: Message) -> Option<HandlerFuture>;
    /// The session ended; called exactly once.
    fn on_close(&self, socket: &EngineSocket, reason: CloseReason);
}

pub(crate) struct EngineInner {
    pub(crate) config: EngineConfig,
    pub(crate) handler: Arc<dyn EngineHandler>,
    // A std mutex: lookups and inserts only, never held across an await.
    sessions: Mutex<HashMap<Sid, Arc<Session>>>,
    /// The heartbeat of every session, on three timer tasks: the next ping (from the
    /// open or the last pong), the pong's deadline, and the removal of a closed session
    /// kept for its last packets.
    pub(crate) pings: Arc<Deadlines<Session>>,
    pub(crate) pongs: Arc<Deadlines<Session>>,
    pub(crate) reaps: Arc<Deadlines<Session>>,
}

impl EngineInner {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Sid, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn remove(&self, sid: &Sid) {
        self.sessions().remove(sid);
    }

    fn get(&self, sid: &Sid) -> Option<Arc<Session>> {
        self.sessions().get(sid).cloned()
    }
}

/// An Engine.IO server: cheap to clone, shared by every worker.
#[derive(Clone)]
pub struct Engine(Arc<EngineInner>);

/// The query parameters of an Engine.IO request.
struct Query<'a> {
    eio: Option<&'a str>,
    transport: Option<&'a str>,
    sid: Option<&'a str>,
}

impl<'a> Query<'a> {
    fn parse(qs: &'a str) -> Self {
        let mut q = Query {
            eio: None,
            transport: None,
            sid: None,
        };
        for pair in qs.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "EIO" => q.eio = Some(v),
                "transport" => q.transport = Some(v),
                "sid" => q.sid = Some(v),
                _ => {}
            }
        }
        q
    }
}

impl Engine {
    pub fn new(config: EngineConfig, handler: Arc<dyn EngineHandler>) -> Engine {
        Engine(Arc::new(EngineInner {
            pings: Deadlines::new(config.ping_interval, send_ping),
            pongs: Deadlines::new(config.ping_timeout, pong_overdue),
            reaps: Deadlines::new(config.ping_timeout, reap),
            config,
            handler,
            sessions: Mutex::new(HashMap::default()),
        }))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.0.config
    }

    /// Sessions currently open.
    pub fn session_count(&self) -> usize {
        self.0.sessions().len()
    }

    /// Closes every session (server shutdown).
    pub fn close_all(&self) {
        let all: Vec<Arc<Session>> = self.0.sessions().values().cloned().collect();
        for session in all {
            session.close(CloseReason::ServerShutdown);
        }
    }

    /// An actix resource serving this engine at `path` (e.g. `/socket.io/`).
    pub fn resource(&self, path: &str) -> actix_web::Resource {
        web::resource(path)
            .app_data(web::Data::new(self.clone()))
            .default_service(web::to(entry))
    }

    /// Handles one Engine.IO HTTP request (polling or WebSocket upgrade).
    pub async fn handle(&self, req: HttpRequest, body: web::Payload) -> HttpResponse {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut res = match self.route(&req, body, origin.as_deref()).await {
            Ok(res) => res,
            Err(e) => e.error_response(),
        };
        if let Some(origin) = origin.filter(|o| self.origin_allowed(&req, Some(o))) {
            let h = res.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&origin) {
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                    HeaderValue::from_static("true"),
                );
                h.insert(header::VARY, HeaderValue::from_static("Origin"));
            }
        }
        res
    }

    fn origin_allowed(&self, req: &HttpRequest, origin: Option<&str>) -> bool {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok());
        self.0.config.origins.allows(origin, host)
    }

    async fn route(
        &self,
        req: &HttpRequest,
        body: web::Payload,
        origin: Option<&str>,
    ) -> Result<HttpResponse, EngineError> {
        if !self.origin_allowed(req, origin) {
            return Err(EngineError::Forbidden);
        }
        if req.method() == Method::OPTIONS {
            return Ok(HttpResponse::NoContent()
                .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"))
                .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, "content-type"))
                .insert_header((header::ACCESS_CONTROL_MAX_AGE, "86400"))
                .finish());
        }
        let query = Query::parse(req.query_string());
        if query.eio != Some("4") {
            return Err(EngineError::UnsupportedProtocolVersion);
        }
        let transport = match query.transport {
            Some("polling") => TransportKind::Polling,
            Some("websocket") => TransportKind::WebSocket,
            _ => return Err(EngineError::UnknownTransport),
        };
        let existing = match query.sid {
            Some(sid) => Some(
                Sid::parse(sid)
                    .and_then(|sid| self.0.get(&sid))
                    .ok_or(EngineError::UnknownSid)?,
            ),
            None => None,
        };
        match (transport, existing) {
            (TransportKind::Polling, None) => {
                if req.method() != Method::GET {
                    return Err(EngineError::BadHandshakeMethod);
                }
                Ok(self.open_polling(req))
            }
            (TransportKind::Polling, Some(session)) if session.check_pong_deadline() => {
                Err(EngineError::UnknownSid)
            }
            (TransportKind::Polling, Some(session)) => match *req.method() {
                Method::GET => poll(session).await,
                Method::POST => self.post(session, body).await,
                _ => Err(EngineError::BadRequest),
            },
            (TransportKind::WebSocket, existing) => {
                if req.method() != Method::GET {
                    return Err(EngineError::BadRequest);
                }
                self.websocket(req, body, existing)
            }
        }
    }

    fn new_session(&self, req: &HttpRequest, transport: TransportKind) -> Arc<Session> {
        let handshake = Handshake {
            query: req.query_string().into(),
            remote_addr: req.peer_addr(),
            issued_at: std::time::Instant::now(),
        };
        let session = Session::new(self.0.clone(), transport, handshake);
        self.0.sessions().insert(session.sid, session.clone());
        self.0.pings.add(&session);
        session
    }

    fn open_packet(&self, session: &Session, upgrades: &[&str]) -> Packet {
        let c = &self.0.config;
        Packet::Open(
            serde_json::to_string(&OpenPayload {
                sid: session.sid.as_str(),
                upgrades,
                ping_interval: c.ping_interval.as_millis() as u64,
                ping_timeout: c.ping_timeout.as_millis() as u64,
                max_payload: c.max_payload,
            })
            // Strings and numbers only: serializing cannot fail.
            .unwrap_or_default(),
        )
    }

    fn open_polling(&self, req: &HttpRequest) -> HttpResponse {
        let session = self.new_session(req, TransportKind::Polling);
        let body = self.open_packet(&session, &["websocket"]).encode();
        self.0.handler.on_open(&EngineSocket(session));
        text(body)
    }

    async fn post(
        &self,
        session: Arc<Session>,
        mut body: web::Payload,
    ) -> Result<HttpResponse, EngineError> {
        {
            let mut st = session.state();
            if st.transport != TransportKind::Polling || st.closed.is_some() {
                return Err(EngineError::BadRequest);
            }
            if st.post_active {
                drop(st);
                session.close(CloseReason::TransportError);
                return Err(EngineError::BadRequest);
            }
            st.post_active = true;
        }
        let _post = PostGuard(&session);
        let max = self.0.config.max_payload;
        let mut buf = web::BytesMut::new();
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else {
                session.close(CloseReason::TransportError);
                return Err(EngineError::BadRequest);
            };
            if buf.len() + chunk.len() > max {
                session.close(CloseReason::TransportError);
                return Err(EngineError::PayloadTooLarge);
            }
            buf.extend_from_slice(&chunk);
        }
        let Ok(text_body) = bytestring::ByteString::try_from(buf) else {
            session.close(CloseReason::ParseError);
            return Err(EngineError::BadRequest);
        };
        let packets = match packet::decode_payload(&text_body) {
            Ok(packets) => packets,
            Err(_) => {
                session.close(CloseReason::ParseError);
                return Err(EngineError::BadRequest);
            }
        };
        for packet in packets {
            if session.inbound_full() {
                session.wait_inbound_space().await;
            }
            if session.is_closed() {
                break;
            }
            inbound(&session, packet);
        }
        Ok(text("ok".to_owned()))
    }

    fn websocket(
        &self,
        req: &HttpRequest,
        body: web::Payload,
        existing: Option<Arc<Session>>,
    ) -> Result<HttpResponse, EngineError> {
        let mut response =
            actix_http::ws::handshake(req.head()).map_err(|_| EngineError::BadRequest)?;
        let reader = FrameReader::new(body, self.0.config.max_payload);
        let link = WsLink::new();
        let session = match existing {
            None => {
                let session = self.new_session(req, TransportKind::WebSocket);
                // The open packet goes first: it is queued before the application
                // hears of the session.
                link.send(Direct::Text(self.open_packet(&session, &[]).encode()));
                session.state().ws = Some(link.clone());
                self.0.handler.on_open(&EngineSocket(session.clone()));
                actix_web::rt::spawn(ws::read_frames(session.clone(), link.clone(), reader));
                session
            }
            Some(session) => {
                let may_upgrade = {
                    let mut st = session.state();
                    let ok = st.transport == TransportKind::Polling
                        && st.upgrade == Upgrade::None
                        && st.closed.is_none();
                    if ok {
                        st.upgrade = Upgrade::Connected;
                    }
                    ok
                };
                if may_upgrade {
                    let (session, link) = (session.clone(), link.clone());
                    actix_web::rt::spawn(async move {
                        let mut reader = reader;
                        if ws::probe_upgrade(&session, &link, &mut reader).await {
                            ws::read_frames(session, link, reader).await;
                        }
                    });
                } else {
                    // Already upgraded (or upgrading): this second WebSocket is refused.
                    link.send(Direct::Close(None));
                }
                session
            }
        };
        let body = actix_web::body::BodyStream::new(WsBody::new(session, link));
        response
            .message_body(actix_web::body::MessageBody::boxed(body))
            .map(HttpResponse::from)
            .map_err(|_| EngineError::BadRequest)
    }
}

/// The handshake's data (serialized straight from the struct: building a `json!`
/// value first was ~4 % of a login's instructions).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct OpenPayload<'a> {
    sid: &'a str,
    upgrades: &'a [&'a str],
    ping_interval: u64,
    ping_timeout: u64,
    max_payload: usize,
}

async fn entry(req: HttpRequest, body: web::Payload, engine: web::Data<Engine>) -> HttpResponse {
    engine.handle(req, body).await
}

fn text(body: String) -> HttpResponse {
    HttpResponse::build(StatusCode::OK)
        .content_type("text/plain; charset=UTF-8")
        .body(body)
}

/// Marks the poll over when it ends; a poll dropped before it answered means the
/// client went away mid-request (a closed tab), which ends the session, as in the
/// reference implementation ("poll connection closed prematurely").
struct PollGuard<'a> {
    session: &'a Arc<Session>,
    answered: bool,
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.session.state().poll_active = false;
        if !self.answered {
            self.session.close(CloseReason::TransportClose);
        }
    }
}

struct PostGuard<'a>(&'a Session);

impl Drop for PostGuard<'_> {
    fn drop(&mut self) {
        self.0.state().post_active = false;
    }
}

/// A long-polling GET: waits for packets, then answers them all as one payload.
async fn poll(session: Arc<Session>) -> Result<HttpResponse, EngineError> {
    {
        let mut st = session.state();
        if st.transport != TransportKind::Polling {
            return Err(EngineError::BadRequest);
        }
        if st.poll_active {
            // A second concurrent poll: the protocol says the session is over.
            st.outbox.push_back(Packet::Close);
            drop(st);
            session.close(CloseReason::TransportError);
            return Err(EngineError::BadRequest);
        }
        if st.closed.is_some() && st.outbox.is_empty() {
            drop(st);
            session.engine.remove(&session.sid);
            return Err(EngineError::UnknownSid);
        }
        st.poll_active = true;
    }
    let mut guard = PollGuard {
        session: &session,
        answered: false,
    };
    let mut probed_deadline: Option<Instant> = None;
    loop {
        let woken = session.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let overtaken;
        {
            let mut st = session.state();
            if !st.outbox.is_empty() {
                // The server's close packet travels alone, in the poll after the
                // packets before it: the official client handles a close at once but
                // the Socket.IO packets of the same payload a tick later, so a
                // DISCONNECT sent with it would be reported as "transport close" (and
                // the client would reconnect) instead of "io server disconnect".
                let close_waits = st.outbox.len() > 1 && st.outbox.back() == Some(&Packet::Close);
                let ready = st.outbox.len() - usize::from(close_waits);
                let body = packet::encode_payload(st.outbox.iter().take(ready));
                st.outbox.drain(..ready);
                let closed = st.closed.is_some() && !close_waits;
                drop(st);
                if closed {
                    session.engine.remove(&session.sid);
                }
                guard.answered = true;
                return Ok(text(body));
            }
            if st.closed.is_some() {
                drop(st);
                session.engine.remove(&session.sid);
                guard.answered = true;
                return Ok(text(Packet::Close.encode()));
            }
            overtaken = st.transport != TransportKind::Polling;
            if !overtaken && st.upgrade == Upgrade::Probed {
                // The client's `5` may already be on its way over the WebSocket; give it
                // a moment so that a poll racing with it is refused rather than answered.
                let deadline =
                    *probed_deadline.get_or_insert_with(|| Instant::now() + UPGRADE_RACE_GRACE);
                if Instant::now() >= deadline {
                    guard.answered = true;
                    return Ok(text(Packet::Noop.encode()));
                }
            }
        }
        if overtaken {
            // The upgrade completed while this poll waited: the session has moved on.
            // Refused a little after the WebSocket's own frames (`3probe`), which the
            // client expects first.
            guard.answered = true;
            tokio::time::sleep(UPGRADE_SETTLE).await;
            return Err(EngineError::BadRequest);
        }
        match probed_deadline {
            Some(deadline) => {
                let _ = tokio::time::timeout_at(deadline, woken).await;
            }
            None => woken.await,
        }
    }
}

/// How long a poll that meets a probed upgrade waits for the upgrade to complete
/// before it is ended with a noop.
const UPGRADE_RACE_GRACE: std::time::Duration = std::time::Duration::from_millis(30);

/// How long a poll overtaken by the upgrade waits before it is refused.
const UPGRADE_SETTLE: std::time::Duration = std::time::Duration::from_millis(10);

/// One packet from the client, whichever transport brought it.
pub(crate) fn inbound(session: &Arc<Session>, packet: Packet) {
    match packet {
        Packet::Message(text) => session.deliver(Message::Text(text)),
        Packet::Binary(bytes) => session.deliver(Message::Binary(bytes)),
        Packet::Pong => session.pong_received(),
        Packet::Close => session.close(CloseReason::ClientClose),
        Packet::Ping => {
            let _ = session.push([Packet::Pong]);
        }
        Packet::Open(_)
        | Packet::PingProbe
        | Packet::PongProbe
        | Packet::Upgrade
        | Packet::Noop => {}
    }
}

/// The heartbeat: the server pings `ping_interval` after the open and after each pong;
/// no pong within `ping_timeout` of a ping ends the session.
fn send_ping(session: Arc<Session>) {
    {
        let mut st = session.state();
        if st.closed.is_some() {
            return;
        }
        st.awaiting_pong = true;
        st.pong_deadline = Some(Instant::now() + session.engine.config.ping_timeout);
    }
    tracing::debug!(sid = %session.sid, elapsed_ms = session.handshake.issued_at.elapsed().as_millis() as u64, "ping");
    if session.push([Packet::Ping]).is_ok() {
        session.engine.pongs.add(&session);
    }
}

/// A ping's deadline has come: the session ends unless its pong came (a later ping's
/// deadline is its own, later entry).
fn pong_overdue(session: Arc<Session>) {
    session.check_pong_deadline();
}

/// A closed session kept for its last packets is not kept forever.
fn reap(session: Arc<Session>) {
    session.engine.remove(&session.sid);
}
