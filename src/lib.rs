//! tete: a realtime, persistent, two-person private chat server speaking Socket.IO.
//!
//! Layout (dependencies point one way: routes/chat → socketio → engineio; chat → store):
//! - `chat`: the private two-person chat (events, rules, seats).
//! - `engineio`: Engine.IO v4 (transports, sessions, heartbeat).
//! - `socketio`: Socket.IO v5 (namespaces, events, acks, rooms).
//! - `store`: history in SQLite (default) or MongoDB.
//! - `settings`: layered configuration.
//! - `telemetry`: logging.
//! - `memory`: hands the allocator's free memory back to the OS.
//! - `threads`: the acceptor thread yields to the worker.
//! - `startup`: the one place that builds the application.
//! - `routes`: pages, REST API, health, errors.

pub mod chat;
pub mod engineio;
pub mod memory;
pub mod routes;
pub mod settings;
pub mod socketio;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod threads;
