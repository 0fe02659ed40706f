//! Client-side encryption in the exact formats of AWS's S3 Encryption
//! Clients: V3 (key-committing, the default) and V2 written and read, legacy
//! V1/CBC and the `kms` wrapping read behind explicit opt-ins, instruction
//! files read and written. Data keys come from KMS through a Multi-Region
//! key aware keyring. Objects of any size stream through one GCM message
//! with bounded memory, and plaintext is released only once authenticated.

pub mod cipher;
mod client;
pub mod content;
pub mod envelope;
mod error;
mod get;
mod keyring;
mod put;
pub mod suite;

pub use client::{ClientConfig, EncryptionClient, InstructionFiles, LegacyModes, ObjectRef};
pub use error::{CseError, CseResult};
pub use get::Inspection;
pub use keyring::KmsKeyring;
pub use put::Written;
pub use suite::{CommitmentPolicy, Suite};
