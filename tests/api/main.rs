//! Integration tests: each starts the real tete on a free port.

mod helpers;
mod node;

mod binary;
mod health;
mod interop;
mod pages;
mod settings;
