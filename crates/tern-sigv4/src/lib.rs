//! `SigV4` request parsing that must be exact and must never panic: the
//! credential scope of a request, and `aws-chunked` framing. Pure functions
//! over bytes (no async, no HTTP types), each with a fuzz target in `fuzz/`.

pub mod chunked;
pub mod scope;
pub mod verify;
