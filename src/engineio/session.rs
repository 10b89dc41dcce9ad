//! One Engine.IO session: its outbound queue (drained by whichever transport is active,
//! so nothing is lost or reordered across the polling→websocket upgrade), its inbound
//! runner (handlers run one at a time, in arrival order), heartbeat and close.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use super::packet::{Packet, Text};
use super::server::EngineInner;
use super::sid::Sid;
use super::ws::WsLink;

/// A future an inbound message's handler returns; run after the ones before it.
pub type HandlerFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Which transport carries a session's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    Polling,
    WebSocket,
}

impl TransportKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent a close packet.
    ClientClose,
    /// The server closed it (e.g. the application disconnected the client).
    ServerClose,
    /// The connection went away (WebSocket closed or failed).
    TransportClose,
    /// A transport-level failure: a second concurrent poll, a broken frame…
    TransportError,
    /// The client sent something that is not Engine.IO.
    ParseError,
    /// No pong within the ping timeout.
    PingTimeout,
    /// The client did not read its packets fast enough; its queue filled up.
    BufferFull,
    /// The server is shutting down.
    ServerShutdown,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClose => "transport close",
            CloseReason::ServerClose => "forced close",
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::ParseError => "parse error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::BufferFull => "transport error",
            CloseReason::ServerShutdown => "forced server close",
        }
    }
}

/// What the application sends to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Text: the application's string, or a view of what the client sent.
    Text(Text),
    Binary(Bytes),
}

/// Why a message could not be queued for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the session is closed")]
    Closed,
    #[error("the client is too slow: its queue is full, the session was closed")]
    QueueFull,
}

/// Where the polling→websocket upgrade stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Upgrade {
    None,
    /// A WebSocket for this session is open, the probe has not come yet.
    Connected,
    /// `2probe` answered: pending polls are ended with a noop, the switch is near.
    Probed,
}

pub(crate) struct State {
    pub transport: TransportKind,
    pub upgrade: Upgrade,
    pub outbox: VecDeque<Packet>,
    pub closed: Option<CloseReason>,
    pub poll_active: bool,
    pub post_active: bool,
    pub awaiting_pong: bool,
    /// When an unanswered ping becomes a timeout.
    pub pong_deadline: Option<tokio::time::Instant>,
    /// The WebSocket that carries the outbox, once the transport is WebSocket.
    pub ws: Option<Arc<WsLink>>,
}

struct Inbound {
    queue: VecDeque<HandlerFuture>,
    running: bool,
}

/// What the client's opening HTTP request said, kept for the application.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The query string of the opening request (without `?`).
    pub query: Box<str>,
    pub remote_addr: Option<SocketAddr>,
    pub issued_at: Instant,
}

/// A session shared by its transports, its heartbeat and the application.
pub struct Session {
    pub(crate) sid: Sid,
    pub(crate) engine: Arc<EngineInner>,
    pub(crate) handshake: Handshake,
    // A std mutex: every critical section is short and never awaits.
    state: Mutex<State>,
    inbound: Mutex<Inbound>,
    /// Wakes the active transport: packets queued, state changed.
    pub(crate) wake: Notify,
    /// Wakes the WebSocket reader when the session closes.
    pub(crate) closing: Notify,
    /// Wakes a reader paused because its inbound queue was full.
    pub(crate) inbound_space: Notify,
    /// The layer above's own per-connection data; dropped when the session closes.
    app: Mutex<Option<Arc<dyn Any + Send + Sync>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves the data consistent enough for
    // a chat session; keep serving rather than poisoning every later call.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Session {
    pub(crate) fn new(
        engine: Arc<EngineInner>,
        transport: TransportKind,
        handshake: Handshake,
    ) -> Arc<Session> {
        Arc::new(Session {
            sid: Sid::random(),
            engine,
            handshake,
            state: Mutex::new(State {
                transport,
                upgrade: Upgrade::None,
                outbox: VecDeque::new(),
                closed: None,
                poll_active: false,
                post_active: false,
                awaiting_pong: false,
                pong_deadline: None,
                ws: None,
            }),
            inbound: Mutex::new(Inbound {
                queue: VecDeque::new(),
                running: false,
            }),
            wake: Notify::new(),
            closing: Notify::new(),
            inbound_space: Notify::new(),
            app: Mutex::new(None),
        })
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Queues packets for the client, in order, all or none.
    pub(crate) fn push(
        self: &Arc<Self>,
        packets: impl IntoIterator<Item = Packet>,
    ) -> Result<(), SendError> {
        let (full, polling) = {
            let mut st = self.state();
            if st.closed.is_some() {
                return Err(SendError::Closed);
            }
            st.outbox.extend(packets);
            if let Some(ws) = &st.ws {
                ws.wake();
            }
            (
                st.outbox.len() > self.engine.config.max_buffered_packets,
                st.ws.is_none(),
            )
        };
        if full {
            self.close(CloseReason::BufferFull);
            return Err(SendError::QueueFull);
        }
        // `wake` is for a waiting poll (and an upgrade's probe, woken where its state
        // moves); once a WebSocket carries the packets, its own waker is enough, and
        // `notify_waiters` would take the `Notify`'s lock for nobody at every packet.
        if polling {
            self.wake.notify_waiters();
        }
        Ok(())
    }

    /// Ends the session once: the application hears of it, the transports stop.
    pub(crate) fn close(self: &Arc<Self>, reason: CloseReason) {
        let keep_for_delivery = {
            let mut st = self.state();
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(reason);
            let last = match reason {
                CloseReason::ClientClose => Some(Packet::Noop),
                CloseReason::ServerClose | CloseReason::ServerShutdown => Some(Packet::Close),
                _ => None,
            };
            let polling = st.transport == TransportKind::Polling;
            let has_last = last.is_some();
            let close_waits = last == Some(Packet::Close) && !st.outbox.is_empty();
            if let Some(last) = last {
                st.outbox.push_back(last);
            }
            if let Some(ws) = &st.ws {
                ws.wake();
            }
            // A polling client learns of the close from its next poll (a poll racing
            // with its own close packet gets the noop), so the session waits for that
            // poll, bounded by the heartbeat's clean-up. A close packet behind other
            // packets goes in a poll of its own (see `poll`), so the session also
            // waits when a poll is active.
            polling && has_last && (!st.poll_active || close_waits)
        };
        if keep_for_delivery {
            self.engine.reaps.add(self);
        } else {
            self.engine.remove(&self.sid);
        }
        self.wake.notify_waiters();
        self.closing.notify_waiters();
        self.inbound_space.notify_waiters();
        tracing::debug!(sid = %self.sid, reason = reason.as_str(), "engine.io session closed");
        self.engine
            .handler
            .on_close(&EngineSocket(self.clone()), reason);
        lock(&self.app).take();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    /// Closes the session if its pong is overdue (the timer may not have fired yet);
    /// returns whether it did.
    pub(crate) fn check_pong_deadline(self: &Arc<Self>) -> bool {
        let overdue = {
            let st = self.state();
            if st.closed.is_some() {
                return false;
            }
            st.pong_deadline
                .is_some_and(|d| tokio::time::Instant::now() >= d)
        };
        if overdue {
            self.close(CloseReason::PingTimeout);
        }
        overdue
    }

    pub(crate) fn pong_received(self: &Arc<Self>) {
        let next_ping = {
            let mut st = self.state();
            let awaited = std::mem::replace(&mut st.awaiting_pong, false);
            st.pong_deadline = None;
            awaited && st.closed.is_none()
        };
        // An unasked-for pong schedules nothing: one ping at a time.
        if next_ping {
            self.engine.pings.add(self);
        }
    }

    /// Runs an inbound message's handler after the ones before it.
    pub(crate) fn enqueue(self: &Arc<Self>, fut: HandlerFuture) {
        let start = {
            let mut inbound = lock(&self.inbound);
            inbound.queue.push_back(fut);
            !std::mem::replace(&mut inbound.running, true)
        };
        if start {
            tokio::spawn(run_inbound(self.clone()));
        }
    }

    /// Like [`Session::enqueue`], for the caller that reads the client (no lock held):
    /// when nothing is queued ahead, the handler is polled right here first. Most
    /// handlers finish in that first poll (a chat message is handed to the store's
    /// queue), and then no task is spawned for them. One that has to wait is moved to
    /// a task of its own, whose first poll registers the task's waker (the one this
    /// first poll was given wakes nobody), followed by whatever was queued meanwhile.
    fn run_or_enqueue(self: &Arc<Self>, mut fut: HandlerFuture) {
        {
            let mut inbound = lock(&self.inbound);
            if std::mem::replace(&mut inbound.running, true) {
                inbound.queue.push_back(fut);
                return;
            }
        }
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        if fut.as_mut().poll(&mut cx).is_ready() {
            let more = {
                let mut inbound = lock(&self.inbound);
                inbound.running = !inbound.queue.is_empty();
                inbound.running
            };
            if more {
                tokio::spawn(run_inbound(self.clone()));
            }
            return;
        }
        lock(&self.inbound).queue.push_front(fut);
        tokio::spawn(run_inbound(self.clone()));
    }

    /// Whether the client should wait before more of its messages are read.
    pub(crate) fn inbound_full(&self) -> bool {
        lock(&self.inbound).queue.len() >= self.engine.config.max_pending_inbound
    }

    /// Waits until the inbound queue has room (or the session closed).
    pub(crate) async fn wait_inbound_space(&self) {
        loop {
            let space = self.inbound_space.notified();
            tokio::pin!(space);
            space.as_mut().enable();
            if !self.inbound_full() || self.is_closed() {
                return;
            }
            space.await;
        }
    }

    /// Hands an inbound message to the application: its synchronous part runs now,
    /// its asynchronous part (if any) is queued behind the earlier ones.
    pub(crate) fn deliver(self: &Arc<Self>, message: Message) {
        let socket = EngineSocket(self.clone());
        if let Some(fut) = self.engine.handler.on_message(&socket, message) {
            self.run_or_enqueue(fut);
        }
    }
}

async fn run_inbound(session: Arc<Session>) {
    loop {
        let next = {
            let mut inbound = lock(&session.inbound);
            match inbound.queue.pop_front() {
                Some(fut) => fut,
                None => {
                    inbound.running = false;
                    return;
                }
            }
        };
        next.await;
        session.inbound_space.notify_waiters();
    }
}

/// The application's handle on one client connection: cheap to clone.
#[derive(Clone)]
pub struct EngineSocket(pub(crate) Arc<Session>);

impl EngineSocket {
    pub fn sid(&self) -> Sid {
        self.0.sid
    }

    pub fn handshake(&self) -> &Handshake {
        &self.0.handshake
    }

    pub fn transport(&self) -> TransportKind {
        self.0.state().transport
    }

    pub fn is_connected(&self) -> bool {
        !self.0.is_closed()
    }

    /// Whether nothing this client sent earlier is still being handled (no handler of
    /// its is running or queued): a handler may then do its work at once, in order.
    pub fn inbound_idle(&self) -> bool {
        !lock(&self.0.inbound).running
    }

    /// Queues one message for the client.
    pub fn send(&self, message: Message) -> Result<(), SendError> {
        self.0.push(std::iter::once(to_packet(message)))
    }

    /// Queues several messages that must arrive together and in order (a Socket.IO
    /// packet and its binary attachments).
    pub fn send_many(&self, messages: impl IntoIterator<Item = Message>) -> Result<(), SendError> {
        self.0.push(messages.into_iter().map(to_packet))
    }

    /// Closes the session from the server side; the client is told.
    pub fn close(&self) {
        self.0.close(CloseReason::ServerClose);
    }

    /// Closes the session for a reason of the layer above (e.g. `ParseError`).
    pub fn close_because(&self, reason: CloseReason) {
        self.0.close(reason);
    }

    /// Runs `fut` after every handler future already queued for this connection
    /// (e.g. clean-up that must follow the last event).
    pub fn run_after(&self, fut: HandlerFuture) {
        self.0.enqueue(fut);
    }

    /// Attaches the layer above's per-connection data (replacing any earlier one).
    pub fn set_data<T: Any + Send + Sync>(&self, data: Arc<T>) {
        if !self.0.is_closed() {
            *lock(&self.0.app) = Some(data);
        }
    }

    /// The layer above's per-connection data, if attached and of this type.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        lock(&self.0.app).clone()?.downcast::<T>().ok()
    }
}

impl std::fmt::Debug for EngineSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("EngineSocket").field(&self.0.sid).finish()
    }
}

fn to_packet(message: Message) -> Packet {
    match message {
        Message::Text(text) => Packet::Message(text),
        Message::Binary(bytes) => Packet::Binary(bytes),
    }
}
