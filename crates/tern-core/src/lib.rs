//! Shared vocabulary of Tern: the deployment configuration, region and
//! account names, and the naming rules every layer agrees on.
//!
//! No I/O and no async here: this crate is depended on by everything.

pub mod config;
pub mod names;
pub mod pem;

pub use config::{
    AccessLogConfig, AuditConfig, BlobLocation, BlobS3Config, ConfigError, DeploymentConfig, LifecycleConfig,
    MetadataLocation, RegionConfig, ReplicationConfig, TlsConfig,
};
