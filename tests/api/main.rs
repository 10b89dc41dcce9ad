//! Integration tests: each starts the real tete on a free port.

mod helpers;

mod binary;
mod browser;
mod health;
mod pages;
mod settings;
