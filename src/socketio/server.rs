//! The Socket.IO server: namespaces over one Engine.IO server, and the per-connection
//! client that routes packets to namespaces, gathers binary attachments and enforces
//! the connect timeout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::namespace::{ConnectRequest, Namespace, NamespaceBuilder};
use super::packet::{self, Packet};
use super::socket::{AckResponse, AckSender, DisconnectReason, Event, Socket};
use crate::engineio::deadlines::Deadlines;
use crate::engineio::{CloseReason, EngineHandler, EngineSocket, HandlerFuture, Message};

/// The maps looked up per packet use a fast hasher, randomly seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Socket.IO settings.
#[derive(Debug, Clone)]
pub struct SocketIoConfig {
    /// A client that joins no namespace within this time is disconnected.
    pub connect_timeout: Duration,
    /// The default wait for a client's acknowledgement.
    pub ack_timeout: Duration,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        SocketIoConfig {
            connect_timeout: Duration::from_secs(45),
            ack_timeout: Duration::from_secs(10),
        }
    }
}

/// Declares the namespaces of a server.
pub struct SocketIoBuilder {
    config: SocketIoConfig,
    namespaces: HashMap<String, Arc<Namespace>>,
}

impl SocketIoBuilder {
    /// Adds the namespace `name` (e.g. `/` or `/socket`) with the handlers `build` sets.
    pub fn namespace(
        mut self,
        name: &str,
        build: impl FnOnce(NamespaceBuilder) -> NamespaceBuilder,
    ) -> Self {
        let ns = build(NamespaceBuilder::new(name, self.config.ack_timeout)).build();
        self.namespaces.insert(name.to_owned(), Arc::new(ns));
        self
    }

    pub fn build(self) -> SocketIo {
        SocketIo(Arc::new(Server {
            connect_deadlines: Deadlines::new(self.config.connect_timeout, close_unjoined),
            namespaces: self.namespaces,
        }))
    }
}

struct Server {
    namespaces: HashMap<String, Arc<Namespace>>,
    /// Every connection's connect timeout, on one timer task (a sleeping task per
    /// connection cost ~0.5 KiB and a spawn per login).
    connect_deadlines: Arc<Deadlines<Client>>,
}

/// The connect timeout: a client that has joined no namespace by now is closed.
fn close_unjoined(client: Arc<Client>) {
    if !client.joined_once.load(Ordering::Acquire) {
        tracing::debug!(sid = %client.engine.sid(), "no namespace joined in time");
        client.engine.close();
    }
}

/// A Socket.IO server: cheap to clone; give [`SocketIo::engine_handler`] to an
/// Engine.IO [`Engine`](crate::engineio::Engine).
#[derive(Clone)]
pub struct SocketIo(Arc<Server>);

impl SocketIo {
    pub fn builder(config: SocketIoConfig) -> SocketIoBuilder {
        SocketIoBuilder {
            config,
            namespaces: HashMap::default(),
        }
    }

    /// The namespace `name`, if declared.
    pub fn of(&self, name: &str) -> Option<Arc<Namespace>> {
        self.0.namespaces.get(name).cloned()
    }

    pub fn engine_handler(&self) -> Arc<dyn EngineHandler> {
        self.0.clone()
    }
}

/// A binary packet waiting for its attachments.
struct Partial {
    packet: Packet<'static>,
    binary: Vec<Bytes>,
}

/// One Engine.IO connection as Socket.IO sees it.
pub(crate) struct Client {
    engine: EngineSocket,
    // Std mutexes: short lookups and updates, never held across an await.
    sockets: Mutex<Vec<(String, Socket)>>,
    partial: Mutex<Option<Partial>>,
    joined_once: AtomicBool,
}

impl Client {
    fn sockets(&self) -> std::sync::MutexGuard<'_, Vec<(String, Socket)>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn socket(&self, nsp: &str) -> Option<Socket> {
        self.sockets()
            .iter()
            .find(|(n, _)| n == nsp)
            .map(|(_, s)| s.clone())
    }

    pub(crate) fn forget(&self, nsp: &str) {
        self.sockets().retain(|(n, _)| n != nsp);
    }

    fn protocol_error(&self, why: &str) -> Option<HandlerFuture> {
        tracing::debug!(sid = %self.engine.sid(), why, "socket.io protocol error: closing");
        self.engine.close_because(CloseReason::ParseError);
        None
    }
}

impl Server {
    fn handle(
        &self,
        client: &Arc<Client>,
        packet: Packet,
        binary: Vec<Bytes>,
    ) -> Option<HandlerFuture> {
        match packet {
            Packet::Connect { nsp, auth } => self.connect(client, nsp.into_owned(), auth),
            Packet::Disconnect { nsp } => {
                if let Some(socket) = client.socket(&nsp) {
                    socket
                        .namespace()
                        .clone()
                        .remove_socket(&socket, DisconnectReason::ClientNamespaceDisconnect);
                }
                None
            }
            Packet::Event {
                nsp,
                id,
                event,
                args,
                ..
            } => {
                let socket = client.socket(&nsp)?;
                let (name, handler) = socket.namespace().handler(&event)?;
                let handler = handler.clone();
                let ack = id.map(|id| AckSender {
                    socket: socket.clone(),
                    id,
                });
                handler.call(
                    socket,
                    Event {
                        name,
                        args,
                        binary,
                        ack,
                    },
                    || client.engine.inbound_idle(),
                )
            }
            Packet::Ack { nsp, id, args, .. } => {
                if let Some(socket) = client.socket(&nsp) {
                    socket.resolve_ack(id, AckResponse { args, binary });
                }
                None
            }
            Packet::ConnectError { .. } => client.protocol_error("CONNECT_ERROR from a client"),
        }
    }

    fn connect(
        &self,
        client: &Arc<Client>,
        nsp: String,
        auth: Option<Box<serde_json::value::RawValue>>,
    ) -> Option<HandlerFuture> {
        let engine = client.engine.clone();
        let Some(ns) = self.namespaces.get(&nsp).cloned() else {
            let _ = engine.send(Message::Text(
                packet::encode_connect_error(&nsp, "Invalid namespace", None).into(),
            ));
            return None;
        };
        if client.socket(&nsp).is_some() {
            return None;
        }
        let client = client.clone();
        Some(Box::pin(async move {
            let request = ConnectRequest {
                auth,
                engine: engine.clone(),
            };
            if let Some(check) = ns.connect_check(&request)
                && let Err(refusal) = check.await
            {
                let data = refusal
                    .data
                    .and_then(|d| serde_json::value::to_raw_value(&d).ok());
                let _ = engine.send(Message::Text(
                    packet::encode_connect_error(&nsp, &refusal.message, data.as_deref()).into(),
                ));
                return;
            }
            if !engine.is_connected() || client.socket(&nsp).is_some() {
                return;
            }
            let socket = Socket::new(ns.clone(), engine.clone(), request.auth);
            ns.add_socket(&socket);
            client.sockets().push((nsp.clone(), socket.clone()));
            client.joined_once.store(true, Ordering::Release);
            if engine
                .send(Message::Text(
                    packet::encode_connect(&nsp, socket.id().as_str()).into(),
                ))
                .is_err()
            {
                return;
            }
            if let Some(fut) = ns.on_connection(socket) {
                fut.await;
            }
        }))
    }
}

impl EngineHandler for Server {
    fn on_open(&self, engine: &EngineSocket) {
        let client = Arc::new(Client {
            engine: engine.clone(),
            sockets: Mutex::new(Vec::new()),
            partial: Mutex::new(None),
            joined_once: AtomicBool::new(false),
        });
        engine.set_data(client.clone());
        self.connect_deadlines.add(&client);
    }

    fn on_message(&self, engine: &EngineSocket, message: Message) -> Option<HandlerFuture> {
        let client = engine.data::<Client>()?;
        match message {
            Message::Text(text) => {
                if client
                    .partial
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_some()
                {
                    return client.protocol_error("text packet while attachments were expected");
                }
                let text = text.into_shared();
                let packet = match Packet::decode_shared(&text) {
                    Ok(p) => p,
                    Err(e) => return client.protocol_error(&e.to_string()),
                };
                let attachments = match &packet {
                    Packet::Event { attachments, .. } | Packet::Ack { attachments, .. } => {
                        *attachments
                    }
                    _ => 0,
                };
                if attachments > 0 {
                    *client.partial.lock().unwrap_or_else(|e| e.into_inner()) = Some(Partial {
                        packet: packet.into_owned(),
                        binary: Vec::with_capacity(attachments),
                    });
                    return None;
                }
                self.handle(&client, packet, Vec::new())
            }
            Message::Binary(bytes) => {
                let complete = {
                    let mut partial = client.partial.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(p) = partial.as_mut() else {
                        drop(partial);
                        return client.protocol_error("unexpected binary attachment");
                    };
                    p.binary.push(bytes);
                    let expected = match &p.packet {
                        Packet::Event { attachments, .. } | Packet::Ack { attachments, .. } => {
                            *attachments
                        }
                        _ => 0,
                    };
                    if p.binary.len() >= expected {
                        partial.take()
                    } else {
                        None
                    }
                };
                let p = complete?;
                self.handle(&client, p.packet, p.binary)
            }
        }
    }

    fn on_close(&self, engine: &EngineSocket, reason: CloseReason) {
        let Some(client) = engine.data::<Client>() else {
            return;
        };
        let sockets: Vec<Socket> = client.sockets().drain(..).map(|(_, s)| s).collect();
        for socket in sockets {
            socket
                .namespace()
                .clone()
                .remove_socket(&socket, DisconnectReason::Transport(reason));
        }
    }
}
