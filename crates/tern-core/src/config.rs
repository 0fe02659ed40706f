//! The deployment file: which regions exist, where they listen, where data lives.
//!
//! One TOML file describes a whole deployment. `tern up` runs every region of it
//! in one process; `tern server --region NAME` runs one region and treats the
//! others as peers reachable over HTTP.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::names::{is_valid_account_id, is_valid_region_name};

/// A whole deployment: the account that owns it and its regions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// The 12-digit AWS account id every ARN of this deployment carries.
    #[serde(default = "default_account_id")]
    pub account_id: String,
    /// Root of all on-disk state; each region gets `<data_dir>/<region>/`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// The regions, in order. The first one also keeps the global bucket-name
    /// registry (see ARCHITECTURE.md, "Global bucket names").
    #[serde(rename = "region")]
    pub regions: Vec<RegionConfig>,
    /// Whether S3 accepts legacy Signature Version 2 requests. On by default
    /// because stock clients still presign with it (boto3 in us-east-1);
    /// AWS is retiring it, and a deployment that needs none turns it off.
    #[serde(default = "default_true")]
    pub sigv2: bool,
    /// Bounds on what clients can make a region hold.
    #[serde(default)]
    pub limits: Limits,
    /// Each region's audit trail of KMS, IAM, STS and bucket-configuration calls.
    #[serde(default)]
    pub audit: AuditConfig,
    /// How replication workers share the outbox.
    #[serde(default)]
    pub replication: ReplicationConfig,
    /// How often buckets' lifecycle rules are applied.
    #[serde(default)]
    pub lifecycle: LifecycleConfig,
    /// Server access logs in AWS's format (off unless given).
    #[serde(default)]
    pub access_log: Option<AccessLogConfig>,
    /// Block Public Access for the whole account (on by default): no bucket
    /// can take a public policy, nor let anonymous callers in through one.
    #[serde(default = "default_true")]
    pub block_public_access: bool,
    /// How regions trust each other over TLS (needed once any region serves it).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// The deployment's trust between regions.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificates of the deployment's CA: a region verifies the
    /// regions it calls against it (and, with mutual TLS, their client
    /// certificates).
    pub ca: PathBuf,
    /// With `peer_key`: the client certificate regions present to each
    /// other. When set, internal routes refuse callers without a valid
    /// peer certificate, whatever their signature.
    #[serde(default)]
    pub peer_cert: Option<PathBuf>,
    #[serde(default)]
    pub peer_key: Option<PathBuf>,
}

impl TlsConfig {
    /// Whether regions authenticate each other with client certificates.
    #[must_use]
    pub fn mutual(&self) -> bool {
        self.peer_cert.is_some()
    }
}

/// Bounds on connections, per region.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Connections a region serves at once; further clients wait in the
    /// listen backlog until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A request's headers must arrive, and a body must make progress, and
    /// an idle connection is closed, within this many seconds (S3 closes
    /// silent sockets after about 20 s).
    #[serde(default = "default_request_timeout_seconds")]
    pub request_timeout_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_connections: default_max_connections(), request_timeout_seconds: default_request_timeout_seconds() }
    }
}

/// The audit trail, per region (`<data_dir>/<region>/audit/`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// On by default; off only to measure what it costs.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A file is closed with its digest, and the next begun, at this size.
    #[serde(default = "default_audit_file_bytes")]
    pub max_file_bytes: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self { enabled: true, max_file_bytes: default_audit_file_bytes() }
    }
}

/// Server access logs in AWS's format, a file per bucket and hour.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessLogConfig {
    /// Where: `<dir>/<bucket>/<YYYY-MM-DD-HH>-<region>.log`.
    pub dir: PathBuf,
}

/// Each region's lifecycle worker.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleConfig {
    /// Seconds between two passes over the region's buckets.
    #[serde(default = "default_lifecycle_interval")]
    pub interval_seconds: u64,
    /// How long a rule's "day" is: 86400, as on AWS; shorter only to see
    /// rules act in a test or a demonstration.
    #[serde(default = "default_day_seconds")]
    pub day_seconds: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self { interval_seconds: default_lifecycle_interval(), day_seconds: default_day_seconds() }
    }
}

fn default_lifecycle_interval() -> u64 {
    600
}

fn default_day_seconds() -> u64 {
    86_400
}

/// Replication's workers, per region.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicationConfig {
    /// How long a worker holds a task without renewing its lease (it renews
    /// while it works): the longest a front-end's death delays its tasks
    /// before another takes them over.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self { lease_seconds: default_lease_seconds() }
    }
}

fn default_lease_seconds() -> u64 {
    30
}

fn default_audit_file_bytes() -> u64 {
    64 << 20
}

fn default_true() -> bool {
    true
}

fn default_max_connections() -> usize {
    4096
}

fn default_request_timeout_seconds() -> u64 {
    20
}

/// One region of the deployment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// AWS-style region name, e.g. `us-east-1`.
    pub name: String,
    /// Address the region's single listener binds (all services share it).
    pub listen: SocketAddr,
    /// How peers and clients reach this region; defaults to `http://<listen>`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Where `/_tern/metrics` is served instead of `listen`. Metrics name
    /// buckets and replication rules; on a public listener, put them on a
    /// private address here.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// With `tls_key`: the PEM certificate chain `listen` serves HTTPS with
    /// (only HTTPS; reloaded on SIGHUP).
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// A plaintext listener besides the HTTPS one, for a region that asks
    /// for it explicitly (SSE-C is refused there unless it is loopback).
    #[serde(default)]
    pub plain_listen: Option<SocketAddr>,
    /// Where the region's metadata lives: absent for `SQLite` under
    /// `data_dir`, or `postgres://user@host:port/database` for a database
    /// several front-ends share (libpq's `PG*` variables, `PGPASSWORD`
    /// among them, supply what the URL leaves out).
    #[serde(default)]
    pub metadata: Option<String>,
    /// Where object bytes live: absent for files under `data_dir`,
    /// `file:///absolute/dir`, which may be a shared mount (NFS, `CephFS`)
    /// that every front-end of the region sees, or `s3://bucket/prefix` in
    /// an S3-compatible service described by `blob_s3`.
    #[serde(default)]
    pub blobs: Option<String>,
    /// The S3-compatible service of `blobs = "s3://…"`.
    #[serde(default)]
    pub blob_s3: Option<BlobS3Config>,
}

/// How a region reaches the S3-compatible service its blobs are in.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobS3Config {
    /// The service's URL; absent for AWS S3 itself.
    #[serde(default)]
    pub endpoint: Option<String>,
    pub region: String,
    /// With `secret_access_key`; absent, the AWS SDKs' usual places
    /// (`AWS_ACCESS_KEY_ID`…, profiles, instance roles) are asked.
    #[serde(default)]
    pub access_key_id: Option<String>,
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Parts of multipart uploads, in MiB (at least 5), and the size above
    /// which a blob is uploaded in parts.
    #[serde(default = "default_part_size_mib")]
    pub part_size_mib: usize,
}

/// Never shows the secret key.
impl std::fmt::Debug for BlobS3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobS3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "…"))
            .field("part_size_mib", &self.part_size_mib)
            .finish()
    }
}

fn default_part_size_mib() -> usize {
    16
}

/// Where a region keeps its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataLocation {
    /// `SQLite` in the region's data directory: one process.
    Embedded,
    /// A PostgreSQL database (its URL) that several front-ends share.
    Postgres(String),
}

/// Where a region keeps object bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobLocation {
    /// Files in the region's data directory.
    Embedded,
    /// Files in this directory, possibly a mount every front-end shares.
    Directory(PathBuf),
    /// Objects under `prefix` in `bucket` of an S3-compatible service.
    S3 { bucket: String, prefix: String, service: BlobS3Config },
}

impl RegionConfig {
    /// Whether `listen` serves HTTPS.
    #[must_use]
    pub fn serves_tls(&self) -> bool {
        self.tls_cert.is_some()
    }

    /// The URL peers use to reach this region.
    #[must_use]
    pub fn endpoint_url(&self) -> String {
        let scheme = if self.serves_tls() { "https" } else { "http" };
        self.endpoint.clone().unwrap_or_else(|| format!("{scheme}://{}", self.listen))
    }

    fn validate_tls(&self, deployment_tls: Option<&TlsConfig>) -> Result<(), ConfigError> {
        let invalid = |what: &str| Err(ConfigError::Invalid(format!("region {}: {what}", self.name)));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return invalid("tls_cert and tls_key go together");
        }
        if self.serves_tls() && deployment_tls.is_none() {
            return invalid("serving TLS needs [tls] ca, which peers are verified against");
        }
        if self.plain_listen.is_some() && !self.serves_tls() {
            return invalid("plain_listen is for a region whose listen serves TLS");
        }
        Ok(())
    }

    /// Where the region's metadata lives.
    ///
    /// # Errors
    /// A `metadata` that is not a PostgreSQL URL.
    pub fn metadata_location(&self) -> Result<MetadataLocation, ConfigError> {
        match self.metadata.as_deref() {
            None => Ok(MetadataLocation::Embedded),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Ok(MetadataLocation::Postgres(url.to_owned()))
            }
            Some(_) => Err(ConfigError::Invalid(format!(
                "region {}: metadata must be a postgres:// URL (or absent, for SQLite under data_dir)",
                self.name
            ))),
        }
    }

    /// Where the region's object bytes live.
    ///
    /// # Errors
    /// A `blobs` that is not a `file://` URL of an absolute directory.
    pub fn blob_location(&self) -> Result<BlobLocation, ConfigError> {
        let invalid = |what: &str| Err(ConfigError::Invalid(format!("region {}: {what}", self.name)));
        let Some(url) = self.blobs.as_deref() else { return Ok(BlobLocation::Embedded) };
        if let Some(path) = url.strip_prefix("file://") {
            if self.blob_s3.is_some() {
                return invalid("blob_s3 goes with blobs = \"s3://…\"");
            }
            return if path.starts_with('/') {
                Ok(BlobLocation::Directory(PathBuf::from(path)))
            } else {
                invalid("blobs = \"file://…\" names an absolute directory: file:///srv/…")
            };
        }
        let Some(location) = url.strip_prefix("s3://") else {
            return invalid(
                "blobs must be file:///absolute/directory or s3://bucket/prefix (or absent, for files under data_dir)",
            );
        };
        let (bucket, prefix) = location.split_once('/').unwrap_or((location, ""));
        let Some(service) = self.blob_s3.clone() else {
            return invalid("blobs = \"s3://…\" needs a [region.blob_s3] table (region, and endpoint unless AWS)");
        };
        if bucket.is_empty()
            || service.part_size_mib < 5
            || service.access_key_id.is_some() != service.secret_access_key.is_some()
        {
            return invalid(
                "s3 blobs need a bucket, parts of at least 5 MiB, and access_key_id with secret_access_key or neither",
            );
        }
        let prefix = if prefix.is_empty() || prefix.ends_with('/') { prefix.to_owned() } else { format!("{prefix}/") };
        Ok(BlobLocation::S3 { bucket: bucket.to_owned(), prefix, service })
    }

    /// Whether other processes (front-ends of this region) may share its
    /// stores, so nothing in them is this process's alone.
    #[must_use]
    pub fn shares_stores(&self) -> bool {
        self.metadata.is_some()
    }

    /// Every address this region binds.
    fn listeners(&self) -> impl Iterator<Item = SocketAddr> {
        std::iter::once(self.listen).chain(self.metrics_listen).chain(self.plain_listen)
    }
}

/// Why a deployment file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {0}")]
    Invalid(String),
}

fn default_account_id() -> String {
    "000000000000".to_owned()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("./tern-data")
}

impl Default for DeploymentConfig {
    /// The embedded default: two regions on loopback.
    fn default() -> Self {
        let region = |name: &str, port: u16| RegionConfig {
            name: name.to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], port)),
            endpoint: None,
            metrics_listen: None,
            tls_cert: None,
            tls_key: None,
            plain_listen: None,
            metadata: None,
            blobs: None,
            blob_s3: None,
        };
        Self {
            account_id: default_account_id(),
            data_dir: default_data_dir(),
            regions: vec![region("us-east-1", 9100), region("eu-west-1", 9101)],
            sigv2: true,
            limits: Limits::default(),
            audit: AuditConfig::default(),
            replication: ReplicationConfig::default(),
            lifecycle: LifecycleConfig::default(),
            access_log: None,
            block_public_access: true,
            tls: None,
        }
    }
}

impl DeploymentConfig {
    /// Parses and validates a deployment file's text. `path` is only used in messages.
    pub fn parse(text: &str, path: &std::path::Path) -> Result<Self, ConfigError> {
        let config: Self =
            toml::from_str(text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a deployment file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !is_valid_account_id(&self.account_id) {
            return Err(ConfigError::Invalid(format!("account_id {:?} must be 12 digits", self.account_id)));
        }
        if self.limits.max_connections == 0 || self.limits.request_timeout_seconds == 0 {
            return Err(ConfigError::Invalid("limits must be greater than zero".into()));
        }
        if !(2..=3600).contains(&self.replication.lease_seconds) {
            return Err(ConfigError::Invalid("[replication] lease_seconds must be 2 to 3600".into()));
        }
        if self.lifecycle.interval_seconds == 0 || self.lifecycle.day_seconds == 0 {
            return Err(ConfigError::Invalid("[lifecycle] interval_seconds and day_seconds must be positive".into()));
        }
        if let Some(tls) = &self.tls
            && tls.peer_cert.is_some() != tls.peer_key.is_some()
        {
            return Err(ConfigError::Invalid("[tls] peer_cert and peer_key go together".into()));
        }
        if self.regions.is_empty() {
            return Err(ConfigError::Invalid("at least one [[region]] is required".into()));
        }
        let mut names = HashSet::new();
        let mut listens = HashSet::new();
        for region in &self.regions {
            if !is_valid_region_name(&region.name) {
                return Err(ConfigError::Invalid(format!(
                    "region name {:?} is not an AWS-style region name (like us-east-1)",
                    region.name
                )));
            }
            if !names.insert(&region.name) {
                return Err(ConfigError::Invalid(format!("region {:?} is listed twice", region.name)));
            }
            region.validate_tls(self.tls.as_ref())?;
            let (metadata, blobs) = (region.metadata_location()?, region.blob_location()?);
            if metadata != MetadataLocation::Embedded && blobs == BlobLocation::Embedded {
                return Err(ConfigError::Invalid(format!(
                    "region {}: its front-ends share metadata, so they must share object bytes too: \
                     set blobs = \"file:///a/directory/every/front-end/mounts\"",
                    region.name
                )));
            }
            for address in region.listeners() {
                if !listens.insert(address) {
                    return Err(ConfigError::Invalid(format!("two listeners are configured on {address}")));
                }
            }
        }
        Ok(())
    }

    /// The region with this name, if the deployment has it.
    #[must_use]
    pub fn region(&self, name: &str) -> Option<&RegionConfig> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// Moves `region`'s listener to `address` (a front-end of a region with
    /// several, on a host they share); peers still reach the region at its
    /// `endpoint`, or at the file's `listen` without one.
    ///
    /// # Errors
    /// An unknown region, or an address another listener of the file has.
    pub fn listen_at(&mut self, region: &str, address: SocketAddr) -> Result<(), ConfigError> {
        let Some(index) = self.regions.iter().position(|r| r.name == region) else {
            return Err(ConfigError::Invalid(format!("region {region} is not in the deployment")));
        };
        let config = &mut self.regions[index];
        if config.endpoint.is_none() {
            config.endpoint = Some(config.endpoint_url());
        }
        config.listen = address;
        self.validate()
    }

    /// The region that keeps the global bucket-name registry.
    #[must_use]
    pub fn registry_region(&self) -> &RegionConfig {
        &self.regions[0]
    }

    /// Where one region keeps its state.
    #[must_use]
    pub fn region_data_dir(&self, region: &str) -> PathBuf {
        self.data_dir.join(region)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn parses_the_documented_example() {
        let text = r#"
            account_id = "000000000000"
            data_dir = "/var/lib/tern"
            [[region]]
            name = "us-east-1"
            listen = "127.0.0.1:9100"
            [[region]]
            name = "eu-west-1"
            listen = "127.0.0.1:9101"
        "#;
        let config = DeploymentConfig::parse(text, Path::new("t.toml")).unwrap();
        assert_eq!(config.regions.len(), 2);
        assert_eq!(config.registry_region().name, "us-east-1");
        assert_eq!(config.region("eu-west-1").unwrap().endpoint_url(), "http://127.0.0.1:9101");
        assert!(config.sigv2, "SigV2 stays on unless a deployment turns it off");
        assert_eq!(config.limits, Limits::default());
    }

    #[test]
    fn shared_stores_parse_and_are_checked() {
        let region = |extra: &str| format!("[[region]]\nname = \"us-east-1\"\nlisten = \"127.0.0.1:1\"\n{extra}");
        let config = DeploymentConfig::parse(
            &region(
                "metadata = \"postgres://tern@db1:5432/tern_us_east_1\"\nblobs = \"file:///srv/shared/us-east-1\"\n",
            ),
            Path::new("t"),
        )
        .unwrap();
        let us = &config.regions[0];
        assert_eq!(
            us.metadata_location().unwrap(),
            MetadataLocation::Postgres("postgres://tern@db1:5432/tern_us_east_1".into())
        );
        assert_eq!(us.blob_location().unwrap(), BlobLocation::Directory("/srv/shared/us-east-1".into()));
        assert!(us.shares_stores());
        let embedded = DeploymentConfig::parse(&region(""), Path::new("t")).unwrap();
        assert_eq!(embedded.regions[0].metadata_location().unwrap(), MetadataLocation::Embedded);
        assert!(!embedded.regions[0].shares_stores());
        let bad = [
            "metadata = \"mysql://x/y\"",
            "blobs = \"file://relative\"",
            "blobs = \"/srv/x\"",
            "metadata = \"postgres://h/d\"",
        ];
        for bad in bad {
            let refused = DeploymentConfig::parse(&region(bad), Path::new("t")).unwrap_err().to_string();
            assert!(refused.contains("region us-east-1"), "{refused}");
        }
    }

    #[test]
    fn security_settings_parse_and_are_checked() {
        let text = "sigv2 = false
[limits]
max_connections = 64
request_timeout_seconds = 3
                    [[region]]
name = \"us-east-1\"
listen = \"127.0.0.1:1\"
metrics_listen = \"127.0.0.1:2\"
";
        let config = DeploymentConfig::parse(text, Path::new("t")).unwrap();
        assert!(!config.sigv2);
        assert_eq!(config.limits, Limits { max_connections: 64, request_timeout_seconds: 3 });
        assert_eq!(config.regions[0].metrics_listen, Some(SocketAddr::from(([127, 0, 0, 1], 2))));
        let clash = "[[region]]\nname = \"us-east-1\"\nlisten = \"127.0.0.1:1\"\nmetrics_listen = \"127.0.0.1:1\"\n";
        assert!(DeploymentConfig::parse(clash, Path::new("t")).is_err());
        let zero = "[limits]\nmax_connections = 0\n[[region]]\nname = \"us-east-1\"\nlisten = \"127.0.0.1:1\"\n";
        assert!(DeploymentConfig::parse(zero, Path::new("t")).is_err());
    }

    #[test]
    fn tls_settings_parse_and_are_checked() {
        let region = "[[region]]\nname = \"us-east-1\"\nlisten = \"127.0.0.1:1\"\n";
        let tls = "tls_cert = \"r.pem\"\ntls_key = \"r.key\"\n";
        let trust = "[tls]\nca = \"ca.pem\"\npeer_cert = \"p.pem\"\npeer_key = \"p.key\"\n";
        let config = DeploymentConfig::parse(&format!("{trust}{region}{tls}"), Path::new("t")).unwrap();
        assert_eq!(config.regions[0].endpoint_url(), "https://127.0.0.1:1");
        assert!(config.tls.as_ref().is_some_and(TlsConfig::mutual));
        let refused = [
            format!("{region}{tls}"),
            format!("[tls]\nca = \"c\"\n{region}tls_cert = \"r.pem\"\n"),
            format!("[tls]\nca = \"c\"\npeer_cert = \"p\"\n{region}"),
            format!("{region}plain_listen = \"127.0.0.1:2\"\n"),
            format!("{trust}{region}{tls}plain_listen = \"127.0.0.1:1\"\n"),
        ];
        for text in refused {
            assert!(DeploymentConfig::parse(&text, Path::new("t")).is_err(), "{text}");
        }
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let text = "data_dri = \"x\"\n[[region]]\nname = \"us-east-1\"\nlisten = \"127.0.0.1:1\"\n";
        let err = DeploymentConfig::parse(text, Path::new("t.toml")).unwrap_err().to_string();
        assert!(err.contains("data_dri"), "{err}");
    }

    #[test]
    fn duplicate_regions_and_bad_names_are_refused() {
        let dup = "[[region]]\nname = \"us-east-1\"\nlisten = \"127.0.0.1:1\"\n[[region]]\nname = \"us-east-1\"\nlisten = \"127.0.0.1:2\"\n";
        assert!(DeploymentConfig::parse(dup, Path::new("t")).is_err());
        let bad = "[[region]]\nname = \"Mars\"\nlisten = \"127.0.0.1:1\"\n";
        assert!(DeploymentConfig::parse(bad, Path::new("t")).is_err());
        let none = "regions = []\n";
        assert!(DeploymentConfig::parse(none, Path::new("t")).is_err());
    }

    #[test]
    fn default_is_two_loopback_regions() {
        let config = DeploymentConfig::default();
        config.validate().unwrap();
        assert_eq!(config.regions[0].listen.to_string(), "127.0.0.1:9100");
        assert_eq!(config.regions[1].name, "eu-west-1");
    }

    #[test]
    fn a_front_end_listens_elsewhere_and_peers_still_find_its_region() {
        let mut config = DeploymentConfig::default();
        config.listen_at("us-east-1", SocketAddr::from(([127, 0, 0, 1], 9200))).unwrap();
        let us = config.region("us-east-1").unwrap();
        assert_eq!(us.listen.to_string(), "127.0.0.1:9200");
        assert_eq!(us.endpoint_url(), "http://127.0.0.1:9100", "peers reach the region where the file says");
        assert!(config.listen_at("ap-south-1", SocketAddr::from(([127, 0, 0, 1], 9300))).is_err());
        let clash = config.listen_at("us-east-1", SocketAddr::from(([127, 0, 0, 1], 9101)));
        assert!(clash.unwrap_err().to_string().contains("127.0.0.1:9101"));
    }
}
