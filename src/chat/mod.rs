//! The chat: the seed's private two-person rooms over Socket.IO, with history.
//!
//! - `domain`: the values the chat accepts (room ids, names, e-mails, messages, tokens).
//! - `events`: the `/socket` namespace's event handlers (the wire contract of DESIGN.md).
//! - `seats`: who sits where, two per room, taken atomically.
//! - `flood`: the per-connection token bucket.
//! - `error`: the chat's error codes.

pub mod domain;
pub mod error;
pub mod events;
pub mod flood;
pub mod seats;

use std::sync::Arc;

use crate::socketio::{NamespaceBuilder, Socket};
use crate::store::Store;
use domain::RoomId;
use error::ChatError;
use seats::Seats;

/// The namespace the chat lives in.
pub const NAMESPACE: &str = "/socket";

/// Flood control settings.
#[derive(Debug, Clone, Copy)]
pub struct ChatLimits {
    pub messages_per_second: u32,
    pub burst: u32,
}

/// The chat service: history store, seats, limits. Shared by the socket handlers and
/// the REST API.
pub struct Chat {
    pub(crate) store: Store,
    pub(crate) seats: Seats,
    pub(crate) limits: ChatLimits,
}

impl Chat {
    pub fn new(store: Store, limits: ChatLimits) -> Arc<Chat> {
        Arc::new(Chat {
            store,
            seats: Seats::default(),
            limits,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Declares the chat's handlers on its namespace.
    pub fn register(self: &Arc<Self>, ns: NamespaceBuilder) -> NamespaceBuilder {
        events::register(self.clone(), ns)
    }

    /// How many people are seated in the room right now (0–2).
    pub fn online(&self, room: &RoomId) -> usize {
        self.seats.count(room.as_str())
    }

    /// Erases the room and its history; the sockets in it get `erased {room}` and leave.
    pub async fn erase(&self, room: &RoomId) -> Result<bool, ChatError> {
        let existed = self.store.erase_room(room.as_str()).await?;
        for seat in self.seats.clear(room.as_str()) {
            self.unseat(&seat.socket, room);
            let _ = seat.socket.emit(
                "erased",
                &events::RoomNamed {
                    room: room.as_str(),
                },
            );
            seat.socket.leave(room.as_str());
        }
        Ok(existed)
    }

    /// Forgets that this connection holds a seat in `room`.
    pub(crate) fn unseat(&self, socket: &Socket, room: &RoomId) {
        if let Some(conn) = socket.state::<events::Conn>() {
            conn.clear_seat(room);
        }
    }
}
