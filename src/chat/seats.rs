//! Who sits in which room, right now: at most two people per room, taken atomically
//! so that any number of simultaneous logins seat exactly two.

use std::sync::Mutex;

use crate::socketio::Socket;

/// The maps looked up per packet use a fast hasher, randomly seeded per process.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// One occupied seat.
#[derive(Debug, Clone)]
pub struct Seat {
    pub socket: Socket,
    pub token_hash: String,
    pub name: String,
    pub avatar: String,
}

/// The outcome of trying to sit down.
#[derive(Debug)]
pub enum Take {
    /// Seated; `replaced` is the older connection of the same person, which lost the seat.
    Seated {
        replaced: Option<Socket>,
    },
    NameTaken,
    Full,
}

/// The seats of every room with somebody in it.
#[derive(Default)]
pub struct Seats {
    // A std mutex: the whole take/release decision happens inside it, without awaiting.
    rooms: Mutex<HashMap<String, Vec<Seat>>>,
}

/// How many people a room seats.
pub const SEATS_PER_ROOM: usize = 2;

impl Seats {
    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Seat>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a seat: the same person (token) takes their own seat over; otherwise the
    /// name must be free in the room and a seat must be free.
    pub fn take(&self, room: &str, seat: Seat) -> Take {
        let mut rooms = self.rooms();
        let list = rooms.entry(room.to_owned()).or_default();
        if let Some(existing) = list.iter_mut().find(|s| s.token_hash == seat.token_hash) {
            let old = std::mem::replace(existing, seat);
            let replaced = (old.socket.id() != existing.socket.id()).then_some(old.socket);
            return Take::Seated { replaced };
        }
        let lower = seat.name.to_lowercase();
        let outcome = if list.iter().any(|s| s.name.to_lowercase() == lower) {
            Take::NameTaken
        } else if list.len() >= SEATS_PER_ROOM {
            Take::Full
        } else {
            list.push(seat);
            Take::Seated { replaced: None }
        };
        if list.is_empty() {
            rooms.remove(room);
        }
        outcome
    }

    /// Frees the seat this socket holds in `room`, if it still does; returns it.
    pub fn release(&self, room: &str, socket: &Socket) -> Option<Seat> {
        let mut rooms = self.rooms();
        let list = rooms.get_mut(room)?;
        let i = list.iter().position(|s| s.socket.id() == socket.id())?;
        let seat = list.remove(i);
        if list.is_empty() {
            rooms.remove(room);
        }
        Some(seat)
    }

    /// The people seated in `room`.
    pub fn occupants(&self, room: &str) -> Vec<Seat> {
        self.rooms().get(room).cloned().unwrap_or_default()
    }

    pub fn count(&self, room: &str) -> usize {
        self.rooms().get(room).map_or(0, Vec::len)
    }

    /// Empties the room (it was erased); returns who sat there.
    pub fn clear(&self, room: &str) -> Vec<Seat> {
        self.rooms().remove(room).unwrap_or_default()
    }
}
