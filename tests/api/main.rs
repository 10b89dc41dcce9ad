//! Integration tests: each starts the real tete on a free port.

mod helpers;
mod node;
mod outage;
mod sio;

mod binary;
mod browser;
mod chat;
mod crash;
mod engineio;
mod health;
mod interop;
mod listener;
mod pages;
mod rest;
mod settings;
