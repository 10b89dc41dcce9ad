//! tete: a realtime, persistent, two-person private chat server speaking Socket.IO.

pub mod store;
