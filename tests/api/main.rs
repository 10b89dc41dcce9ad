//! Integration tests: each starts the real tete on a free port.

mod helpers;
mod sio;

mod binary;
mod chat;
mod crash;
mod health;
mod pages;
mod rest;
mod settings;
