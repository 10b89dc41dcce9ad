//! The `tete` binary.
fn main() {}
