//! A client's presence in one namespace: emit, acks both ways, rooms, disconnect,
//! and the typed view of an incoming event.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::sync::oneshot;

use super::adapter::{BroadcastOptions, OutgoingPacket, Room};
use super::json::{Args, RawArg};
use super::namespace::Namespace;
use super::packet::{self, WriteJson};
use crate::engineio::{EngineSocket, Sid};

/// The maps looked up per packet use a fast hasher, randomly seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Why a socket left its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client left the namespace (`socket.disconnect()` on its side).
    ClientNamespaceDisconnect,
    /// The server removed it (`Socket::disconnect`).
    ServerNamespaceDisconnect,
    /// The underlying connection ended; the Engine.IO reason says why.
    Transport(crate::engineio::CloseReason),
}

impl DisconnectReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::Transport(r) => r.as_str(),
        }
    }
}

/// Why an emit failed.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("the socket is disconnected")]
    Disconnected,
    #[error("the payload cannot be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("the client is too slow and was disconnected")]
    TooSlow,
}

/// Why an acknowledgement did not come.
#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error("no acknowledgement within {0:?}")]
    Timeout(Duration),
    #[error("the socket disconnected before acknowledging")]
    Disconnected,
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// An argument of an event that is missing or not of the expected shape.
#[derive(Debug, thiserror::Error)]
pub enum ArgError {
    #[error("argument {0} is missing")]
    Missing(usize),
    #[error("argument {index} is invalid: {source}")]
    Invalid {
        index: usize,
        source: serde_json::Error,
    },
}

/// The arguments of an acknowledgement, as raw JSON plus binary attachments.
#[derive(Debug)]
pub struct AckResponse {
    pub args: Args,
    pub binary: Vec<Bytes>,
}

impl AckResponse {
    /// The `index`-th argument, deserialized.
    pub fn arg<T: DeserializeOwned>(&self, index: usize) -> Result<T, ArgError> {
        parse_arg(&self.args, index)
    }
}

fn parse_arg<T: DeserializeOwned>(args: &[RawArg], index: usize) -> Result<T, ArgError> {
    let raw = args.get(index).ok_or(ArgError::Missing(index))?;
    serde_json::from_str(raw.get()).map_err(|source| ArgError::Invalid { index, source })
}

pub(crate) struct SocketInner {
    pub(crate) id: Sid,
    pub(crate) ns: Arc<Namespace>,
    pub(crate) engine: EngineSocket,
    pub(crate) auth: Option<Box<RawValue>>,
    connected: AtomicBool,
    next_ack: AtomicU64,
    // A std mutex: inserts and removals only.
    acks: Mutex<HashMap<u64, oneshot::Sender<AckResponse>>>,
    state: OnceLock<Arc<dyn Any + Send + Sync>>,
}

/// A connected client in one namespace; cheap to clone.
#[derive(Clone)]
pub struct Socket(pub(crate) Arc<SocketInner>);

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.0.id)
            .field("nsp", &self.0.ns.name())
            .finish()
    }
}

impl Socket {
    pub(crate) fn new(
        ns: Arc<Namespace>,
        engine: EngineSocket,
        auth: Option<Box<RawValue>>,
    ) -> Socket {
        Socket(Arc::new(SocketInner {
            id: Sid::random(),
            ns,
            engine,
            auth,
            connected: AtomicBool::new(true),
            next_ack: AtomicU64::new(0),
            acks: Mutex::new(HashMap::default()),
            state: OnceLock::new(),
        }))
    }

    pub fn id(&self) -> Sid {
        self.0.id
    }

    pub fn namespace(&self) -> &Arc<Namespace> {
        &self.0.ns
    }

    /// The `auth` object the client sent with its CONNECT.
    pub fn auth(&self) -> Option<&RawValue> {
        self.0.auth.as_deref()
    }

    /// The underlying Engine.IO connection.
    pub fn engine(&self) -> &EngineSocket {
        &self.0.engine
    }

    pub fn connected(&self) -> bool {
        self.0.connected.load(Ordering::Acquire) && self.0.engine.is_connected()
    }

    /// Attaches the application's per-socket state (once).
    pub fn set_state<T: Any + Send + Sync>(&self, state: Arc<T>) -> bool {
        self.0.state.set(state).is_ok()
    }

    /// The application's per-socket state, if set and of this type.
    pub fn state<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.0.state.get().cloned()?.downcast::<T>().ok()
    }

    pub(crate) fn send_packet(&self, packet: OutgoingPacket) -> Result<(), EmitError> {
        if packet.attachments.is_empty() {
            self.send_text(packet.text)
        } else {
            self.send_messages(packet.into_messages())
        }
    }

    fn send_text(&self, text: String) -> Result<(), EmitError> {
        self.send_messages(std::iter::once(crate::engineio::Message::Text(text.into())))
    }

    /// Queues messages for this client while it is in its namespace.
    fn send_messages(
        &self,
        messages: impl IntoIterator<Item = crate::engineio::Message>,
    ) -> Result<(), EmitError> {
        if !self.0.connected.load(Ordering::Acquire) {
            return Err(EmitError::Disconnected);
        }
        self.0.engine.send_many(messages).map_err(|e| match e {
            crate::engineio::SendError::Closed => EmitError::Disconnected,
            crate::engineio::SendError::QueueFull => EmitError::TooSlow,
        })
    }

    /// Sends `event` with one JSON argument to this client.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        let text = encode_event(self.0.ns.name(), None, event, data)?;
        self.send_text(text)
    }

    /// Sends `event` with raw JSON arguments and binary attachments (whose
    /// placeholders the arguments already hold).
    pub fn emit_raw(
        &self,
        event: &str,
        args: &[RawArg],
        binary: Vec<Bytes>,
    ) -> Result<(), EmitError> {
        let text = packet::encode_event_with(self.0.ns.name(), None, binary.len(), |o| {
            packet::write_event_array(o, event, args)
        });
        self.send_packet(OutgoingPacket {
            text,
            attachments: binary,
        })
    }

    /// Sends `event` and waits for the client's acknowledgement.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
        wait: Option<Duration>,
    ) -> Result<AckResponse, AckError> {
        let wait = wait.unwrap_or(self.0.ns.ack_timeout());
        let id = self.0.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.acks().insert(id, tx);
        let sent = encode_event(self.0.ns.name(), Some(id), event, data)
            .and_then(|text| self.send_text(text));
        if let Err(e) = sent {
            self.acks().remove(&id);
            return Err(e.into());
        }
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => {
                self.acks().remove(&id);
                Err(AckError::Timeout(wait))
            }
        }
    }

    fn acks(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<AckResponse>>> {
        self.0.acks.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn resolve_ack(&self, id: u64, response: AckResponse) {
        if let Some(tx) = self.acks().remove(&id) {
            let _ = tx.send(response);
        }
    }

    pub fn join(&self, room: &str) {
        self.0.ns.adapter().join(self.0.id, room);
    }

    pub fn leave(&self, room: &str) {
        self.0.ns.adapter().leave(self.0.id, room);
    }

    pub fn rooms(&self) -> Vec<Room> {
        self.0.ns.adapter().rooms_of(self.0.id)
    }

    /// A broadcast to the sockets of `room`, this one excluded. A shared name
    /// (`Room`) is addressed without a copy.
    pub fn to(&self, room: impl Into<Room>) -> Broadcast {
        Broadcast {
            ns: self.0.ns.clone(),
            opts: BroadcastOptions {
                rooms: smallvec::smallvec![room.into()],
                except: smallvec::smallvec![self.0.id],
            },
        }
    }

    /// A broadcast to every socket of `room`, this one included.
    pub fn within(&self, room: impl Into<Room>) -> Broadcast {
        self.0.ns.to(room)
    }

    /// Removes this socket from its namespace; the client is told (`1/nsp,`).
    /// With `close`, the whole connection is closed too.
    pub fn disconnect(&self, close: bool) {
        let _ = self.send_text(packet::encode_disconnect(self.0.ns.name()));
        self.0
            .ns
            .remove_socket(self, DisconnectReason::ServerNamespaceDisconnect);
        if close {
            self.0.engine.close();
        }
    }

    /// Marks the socket gone; returns false if it already was.
    pub(crate) fn mark_disconnected(&self) -> bool {
        let was = self.0.connected.swap(false, Ordering::AcqRel);
        // Pending acks fail with `Disconnected` when their senders drop.
        self.acks().clear();
        was
    }
}

fn encode_event<T: Serialize + ?Sized>(
    nsp: &str,
    id: Option<u64>,
    event: &str,
    data: &T,
) -> Result<String, EmitError> {
    Ok(packet::encode_event_json(nsp, id, event, data)?)
}

/// A broadcast being addressed: `ns.to(room)`, `socket.to(room)`.
pub struct Broadcast {
    pub(crate) ns: Arc<Namespace>,
    pub(crate) opts: BroadcastOptions,
}

impl Broadcast {
    /// Also reaches the members of `room`.
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        self.opts.rooms.push(room.into());
        self
    }

    /// Leaves this socket out.
    pub fn except(mut self, sid: Sid) -> Self {
        self.opts.except.push(sid);
        self
    }

    /// Sends `event` with one JSON argument to every addressed socket.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.send_text(encode_event(self.ns.name(), None, event, data)?);
        Ok(())
    }

    /// Sends `event` with one argument that writes its own JSON to every addressed socket.
    pub fn emit_written(&self, event: &str, data: &dyn WriteJson) -> Result<(), EmitError> {
        self.send_text(packet::encode_event_written(
            self.ns.name(),
            None,
            event,
            data,
        )?);
        Ok(())
    }

    fn send_text(&self, text: String) {
        let packet = OutgoingPacket {
            text,
            attachments: Vec::new(),
        };
        self.ns.adapter().broadcast(packet, &self.opts, &*self.ns);
    }

    /// The local sockets addressed.
    pub fn sockets(&self) -> Vec<Socket> {
        let sids = if self.opts.rooms.is_empty() {
            self.ns.adapter().all_sockets()
        } else {
            self.ns.adapter().sockets_in(&self.opts.rooms)
        };
        sids.into_iter()
            .filter(|sid| !self.opts.except.contains(sid))
            .filter_map(|sid| self.ns.socket(sid))
            .collect()
    }
}

/// An incoming event: its arguments (raw JSON, binary placeholders kept as sent), its
/// binary attachments, and the acknowledgement the client asked for, if any.
pub struct Event {
    /// Shared with the namespace's registration of the event.
    pub name: Arc<str>,
    pub args: Args,
    pub binary: Vec<Bytes>,
    pub ack: Option<AckSender>,
}

impl Event {
    /// The `index`-th argument, deserialized into `T`.
    pub fn arg<T: DeserializeOwned>(&self, index: usize) -> Result<T, ArgError> {
        parse_arg(&self.args, index)
    }

    /// The first argument, deserialized into `T`.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, ArgError> {
        self.arg(0)
    }
}

/// Answers a client's request for acknowledgement, once.
pub struct AckSender {
    pub(crate) socket: Socket,
    pub(crate) id: u64,
}

impl AckSender {
    /// Acknowledges with one JSON argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        let text = packet::encode_ack_json(self.socket.0.ns.name(), self.id, data)?;
        self.socket.send_text(text)
    }

    /// Acknowledges with one argument that writes its own JSON.
    pub fn send_written(self, data: &dyn WriteJson) -> Result<(), EmitError> {
        let text = packet::encode_ack_written(self.socket.0.ns.name(), self.id, data)?;
        self.socket.send_text(text)
    }

    /// Acknowledges with raw JSON arguments and binary attachments.
    pub fn send_raw(self, args: &[RawArg], binary: Vec<Bytes>) -> Result<(), EmitError> {
        let text = packet::encode_ack_with(self.socket.0.ns.name(), self.id, binary.len(), |o| {
            packet::write_args_array(o, args)
        });
        self.socket.send_packet(OutgoingPacket {
            text,
            attachments: binary,
        })
    }
}
