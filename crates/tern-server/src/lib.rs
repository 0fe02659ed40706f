//! The region process: everything between a TCP socket and the service crates.
//!
//! Each region owns its stores and listener and reaches other regions only
//! through [`peer::PeerClient`] (HTTP), even when several regions share one
//! process under `tern up`. Nothing here is process-global.

mod access_check;
mod access_log;
mod audit;
mod auth;
mod body;
mod copy_source_route;
pub mod credentials;
mod forward;
mod iam_peer;
mod internal_routes;
mod kms_peers;
mod lifecycle;
mod listener;
pub mod local_ca;
mod metrics;
mod other_services;
mod outer;
pub mod peer;
mod private_file;
mod readiness;
mod region;
mod registry;
mod replicate_route;
mod replication_admin;
pub mod root_key;
mod server_access_log;
mod stores;
pub mod tls;
mod topology;
mod unverified;
mod web_console;

pub use credentials::{Origin, RootCredentials};
pub use forward::{ClientOrigin, Signed, Voucher};
pub use metrics::RegionMetrics;
pub use region::{RunningRegion, start_region};
pub use web_console::{ConsoleContext, ConsoleFactory, WebConsole};
