//! Store tests: one contract suite run against every backend, plus backend-specific tests.
//!
//! SQLite always runs, on temporary files. MongoDB runs when `TETE_TEST_MONGODB_URI` is
//! set (each test gets its own database, named after the URI's with a random suffix);
//! see docs/store.md for running it against the `briskdb` stand-in.

mod contract;
mod helpers;
mod mongo;
mod sqlite;
