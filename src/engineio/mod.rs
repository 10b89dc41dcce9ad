//! Engine.IO v4: the transport layer under Socket.IO.
//!
//! - [`packet`]: the pure packet and payload codec.
//! - [`session`]: one client's session, its queues and close.
//! - [`server`]: the actix-web side: polling, WebSocket, upgrade, heartbeat.
//! - `ws`: the WebSocket transport on actix-http's frame codec.
//!
//! This module knows nothing of Socket.IO or of the chat: the layer above talks to it
//! through [`EngineHandler`] and [`EngineSocket`].

pub mod config;
pub mod deadlines;
pub mod error;
pub mod packet;
pub mod server;
pub mod session;
pub mod sid;
mod ws;

pub use config::{AllowedOrigins, EngineConfig};
pub use error::EngineError;
pub use packet::Text;
pub use server::{Engine, EngineHandler};
pub use session::{
    CloseReason, EngineSocket, HandlerFuture, Handshake, Message, SendError, TransportKind,
};
pub use sid::Sid;
