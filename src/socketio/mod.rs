//! Socket.IO v5 on top of Engine.IO: namespaces, events, acks both ways, binary
//! attachments, rooms through the [`Adapter`] seam.
//!
//! - [`packet`]: the pure packet codec.
//! - [`json`]: arguments as raw JSON, split from a packet's array in one checked pass.
//! - [`server`]: the server and its per-connection client.
//! - [`namespace`]: connect checks, handlers, sockets of a namespace.
//! - [`socket`]: one client in one namespace; emit, ack, rooms.
//! - [`adapter`]: room membership and broadcast.
//!
//! It imports nothing from the chat, the store or the routes.

pub mod adapter;
pub mod json;
pub mod namespace;
pub mod packet;
pub mod server;
pub mod socket;

pub use crate::engineio::HandlerFuture;
pub use adapter::{Adapter, BroadcastOptions, MemoryAdapter, OutgoingPacket};
pub use json::{Args, RawArg};
pub use namespace::{ConnectRefusal, ConnectRequest, Namespace, NamespaceBuilder};
pub use packet::{WriteJson, write_json_i64, write_json_str};
pub use server::{SocketIo, SocketIoBuilder, SocketIoConfig};
pub use socket::{
    AckError, AckResponse, AckSender, ArgError, Broadcast, DisconnectReason, EmitError, Event,
    Socket,
};
