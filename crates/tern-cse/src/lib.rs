//! Client-side encryption in the exact formats of AWS's S3 Encryption
//! Clients: V3 (key-committing, the default) and V2 written and read, legacy
//! V1/CBC and the `kms` wrapping read behind explicit opt-ins, instruction
//! files read and written. Data keys come from KMS through a Multi-Region
//! key aware keyring. Objects of any size stream through one GCM message
//! with bounded memory, and plaintext is released only once authenticated.

pub mod cipher;
pub mod content;
pub mod envelope;
mod error;
pub mod suite;

#[cfg(feature = "sdk")]
mod client;
#[cfg(feature = "sdk")]
mod get;
#[cfg(feature = "sdk")]
mod keyring;
#[cfg(feature = "sdk")]
mod put;

#[cfg(feature = "sdk")]
pub use client::{ClientConfig, EncryptionClient, InstructionFiles, LegacyModes, ObjectRef};
pub use error::{CseError, CseResult};
#[cfg(feature = "sdk")]
pub use get::Inspection;
#[cfg(feature = "sdk")]
pub use keyring::KmsKeyring;
#[cfg(feature = "sdk")]
pub use put::Written;
pub use suite::{CommitmentPolicy, Suite};
