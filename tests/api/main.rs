//! Integration tests: each starts the real tete on a free port.

mod helpers;
mod node;
mod sio;

mod binary;
mod browser;
mod chat;
mod health;
mod pages;
mod rest;
mod settings;
