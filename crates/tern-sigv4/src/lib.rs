//! Request authentication that must be exact and must never panic: the
//! credential scope of a request, its query string, `aws-chunked` framing,
//! `SigV4` verification for the services s3s does not cover, and `SigV2`
//! checks s3s does not make. Pure functions over bytes (no async, no HTTP
//! types), each parser with a fuzz target in `fuzz/`.

pub mod chunked;
pub mod query;
pub mod scope;
pub mod v2;
pub mod verify;
