//! Namespaces: the connect check, the event handlers, the sockets connected to it and
//! the adapter that keeps its rooms.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;

use super::adapter::{Adapter, BroadcastOptions, LocalSockets, MemoryAdapter, OutgoingPacket};
use super::socket::{Broadcast, DisconnectReason, Event, Socket};
use crate::engineio::{EngineSocket, HandlerFuture, Sid};

/// The maps looked up per packet use a fast hasher, randomly seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A namespace's refusal of a client: sent as CONNECT_ERROR `{message, data?}`.
#[derive(Debug, Clone)]
pub struct ConnectRefusal {
    pub message: String,
    pub data: Option<serde_json::Value>,
}

/// What a connect check sees: the handshake `auth` payload and the connection.
pub struct ConnectRequest {
    pub auth: Option<Box<RawValue>>,
    pub engine: EngineSocket,
}

pub type ConnectFuture =
    std::pin::Pin<Box<dyn Future<Output = Result<(), ConnectRefusal>> + Send + 'static>>;
type ConnectCheck = Arc<dyn Fn(&ConnectRequest) -> ConnectFuture + Send + Sync>;
type OnConnection = Arc<dyn Fn(Socket) -> HandlerFuture + Send + Sync>;
/// An event handler: it runs at once and returns what is left to wait for, if anything.
/// An immediate one ([`NamespaceBuilder::on_immediate`]) is called straight from the
/// packet's delivery when nothing its client sent earlier is still being handled; an
/// async one always returns its whole future.
#[derive(Clone)]
pub(crate) struct OnEvent {
    run: Arc<dyn Fn(Socket, Event) -> Option<HandlerFuture> + Send + Sync>,
    immediate: bool,
}

impl OnEvent {
    fn future<F, Fut>(f: F) -> OnEvent
    where
        F: Fn(Socket, Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        OnEvent {
            run: Arc::new(move |s, e| Some(Box::pin(f(s, e)))),
            immediate: false,
        }
    }

    /// Runs the handler for an event from `socket`'s client. An immediate handler runs
    /// now only if `idle` says nothing earlier from this client is still running (asked
    /// only of an immediate one): otherwise it becomes a future, queued behind the
    /// earlier ones as an async handler is.
    pub(crate) fn call(
        &self,
        socket: Socket,
        event: Event,
        idle: impl FnOnce() -> bool,
    ) -> Option<HandlerFuture> {
        if self.immediate && !idle() {
            let run = self.run.clone();
            return Some(Box::pin(async move {
                if let Some(rest) = run(socket, event) {
                    rest.await;
                }
            }));
        }
        (self.run)(socket, event)
    }
}
type OnDisconnect = Arc<dyn Fn(Socket, DisconnectReason) -> HandlerFuture + Send + Sync>;

/// One namespace; built with [`NamespaceBuilder`], immutable afterwards but for its
/// sockets and rooms.
pub struct Namespace {
    name: String,
    check: Option<ConnectCheck>,
    on_connection: Option<OnConnection>,
    events: HashMap<Arc<str>, OnEvent>,
    fallback: Option<OnEvent>,
    on_disconnect: Option<OnDisconnect>,
    adapter: Box<dyn Adapter>,
    ack_timeout: Duration,
    // A std mutex: inserts, removals and lookups only.
    sockets: Mutex<HashMap<Sid, Socket>>,
}

impl Namespace {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn adapter(&self) -> &dyn Adapter {
        &*self.adapter
    }

    pub fn ack_timeout(&self) -> Duration {
        self.ack_timeout
    }

    /// A broadcast to every socket of `room`.
    pub fn to(self: &Arc<Self>, room: impl Into<super::adapter::Room>) -> Broadcast {
        Broadcast {
            ns: self.clone(),
            opts: BroadcastOptions {
                rooms: smallvec::smallvec![room.into()],
                except: smallvec::SmallVec::new(),
            },
        }
    }

    /// A broadcast to every socket of the namespace.
    pub fn everyone(self: &Arc<Self>) -> Broadcast {
        Broadcast {
            ns: self.clone(),
            opts: BroadcastOptions::default(),
        }
    }

    pub fn socket(&self, sid: Sid) -> Option<Socket> {
        self.sockets().get(&sid).cloned()
    }

    pub fn socket_count(&self) -> usize {
        self.sockets().len()
    }

    fn sockets(&self) -> std::sync::MutexGuard<'_, HashMap<Sid, Socket>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn connect_check(&self, req: &ConnectRequest) -> Option<ConnectFuture> {
        self.check.as_ref().map(|check| check(req))
    }

    pub(crate) fn add_socket(&self, socket: &Socket) {
        self.sockets().insert(socket.id(), socket.clone());
    }

    pub(crate) fn on_connection(&self, socket: Socket) -> Option<HandlerFuture> {
        self.on_connection.as_ref().map(|f| f(socket))
    }

    /// The handler of `event` and the event's name as the handler was registered
    /// (shared: no copy per event); the fallback's, with a copy of the name, otherwise.
    pub(crate) fn handler(&self, event: &str) -> Option<(Arc<str>, &OnEvent)> {
        match self.events.get_key_value(event) {
            Some((name, handler)) => Some((name.clone(), handler)),
            None => self
                .fallback
                .as_ref()
                .map(|handler| (Arc::from(event), handler)),
        }
    }

    /// Takes the socket out of the namespace and its rooms; its disconnect handler
    /// runs after the events it already sent.
    pub(crate) fn remove_socket(&self, socket: &Socket, reason: DisconnectReason) {
        if !socket.mark_disconnected() {
            return;
        }
        self.adapter.leave_all(socket.id());
        self.sockets().remove(&socket.id());
        if let Some(client) = socket.engine().data::<super::server::Client>() {
            client.forget(self.name());
        }
        if let Some(f) = &self.on_disconnect {
            socket.engine().run_after(f(socket.clone(), reason));
        }
    }
}

impl LocalSockets for Namespace {
    fn deliver(&self, sid: Sid, packet: OutgoingPacket) {
        if let Some(socket) = self.socket(sid) {
            // A recipient that is gone or too slow is its own problem, not the sender's.
            let _ = socket.send_packet(packet);
        }
    }
}

/// Declares a namespace's handlers.
pub struct NamespaceBuilder {
    ns: Namespace,
}

impl NamespaceBuilder {
    pub(crate) fn new(name: &str, ack_timeout: Duration) -> Self {
        NamespaceBuilder {
            ns: Namespace {
                name: name.to_owned(),
                check: None,
                on_connection: None,
                events: HashMap::default(),
                fallback: None,
                on_disconnect: None,
                adapter: Box::new(MemoryAdapter::default()),
                ack_timeout,
                sockets: Mutex::new(HashMap::default()),
            },
        }
    }

    /// Decides whether a client may join, seeing its `auth` payload.
    pub fn check_connect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(&ConnectRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), ConnectRefusal>> + Send + 'static,
    {
        self.ns.check = Some(Arc::new(move |req| Box::pin(f(req))));
        self
    }

    /// Runs when a client has joined (after it was told so).
    pub fn on_connection<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Socket) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.ns.on_connection = Some(Arc::new(move |s| Box::pin(f(s))));
        self
    }

    /// Handles the event `name`.
    pub fn on<F, Fut>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(Socket, Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.ns.events.insert(Arc::from(name), OnEvent::future(f));
        self
    }

    /// Handles the event `name` with a function that does its work at once and returns
    /// a future only for what has to wait (`None`: done). It runs straight from the
    /// packet's delivery, with no future allocated, unless something the client sent
    /// earlier is still being handled: then it waits its turn, as an async handler does.
    pub fn on_immediate<F>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(Socket, Event) -> Option<HandlerFuture> + Send + Sync + 'static,
    {
        self.ns.events.insert(
            Arc::from(name),
            OnEvent {
                run: Arc::new(f),
                immediate: true,
            },
        );
        self
    }

    /// Handles every event no `on` names.
    pub fn on_other<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Socket, Event) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.ns.fallback = Some(OnEvent::future(f));
        self
    }

    /// Runs when a socket leaves, whatever the reason.
    pub fn on_disconnect<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.ns.on_disconnect = Some(Arc::new(move |s, r| Box::pin(f(s, r))));
        self
    }

    /// Replaces the in-memory adapter (e.g. with one shared by several instances).
    pub fn adapter(mut self, adapter: impl Adapter) -> Self {
        self.ns.adapter = Box::new(adapter);
        self
    }

    pub(crate) fn build(self) -> Namespace {
        self.ns
    }
}
