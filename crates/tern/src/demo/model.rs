//! The three encryption models of cross-region replication, and what each
//! needs from IAM in each region: the names `tern demo` gives their parts
//! and the least-privilege statements it grants.

use serde_json::{Value, json};

/// One way of protecting an object that replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Model {
    /// The client encrypts under a multi-Region key; S3 stores and
    /// replicates ciphertext it cannot read.
    ClientSide,
    /// SSE-KMS under a key of each region: replication re-encrypts under
    /// the destination's key (`ReplicaKmsKeyID`).
    RegionalKeys,
    /// SSE-KMS under a multi-Region key: the sealed object is handed over,
    /// and the key's replica in the destination opens it.
    MultiRegionKey,
}

/// The two regions of the demonstration: objects are written in the
/// first and replicate to the second.
#[derive(Debug, Clone)]
pub struct Regions {
    pub source: String,
    pub destination: String,
}

/// The KMS keys protecting one model's object: in the source region, and
/// the one replicas are under in the destination's.
#[derive(Debug, Clone)]
pub struct ModelKeys {
    pub source: String,
    pub destination: String,
}

/// What the demo writes, and reads back in each region.
pub const OBJECT_KEY: &str = "demo.txt";
pub const READER: &str = "tern-demo-reader";

impl Model {
    pub const ALL: [Self; 3] = [Self::ClientSide, Self::RegionalKeys, Self::MultiRegionKey];

    pub const fn slug(self) -> &'static str {
        match self {
            Self::ClientSide => "cse-mrk",
            Self::RegionalKeys => "sse-kms-regional",
            Self::MultiRegionKey => "sse-kms-mrk",
        }
    }

    pub const fn title(self) -> &'static str {
        match self {
            Self::ClientSide => "1 client-side + MRK",
            Self::RegionalKeys => "2 SSE-KMS, regional keys",
            Self::MultiRegionKey => "3 SSE-KMS + MRK",
        }
    }

    /// Whether S3 encrypts (SSE-KMS), and so sees the plaintext.
    pub const fn server_side(self) -> bool {
        !matches!(self, Self::ClientSide)
    }

    /// Whether the model's key is one multi-Region key in both regions.
    pub const fn multi_region(self) -> bool {
        !matches!(self, Self::RegionalKeys)
    }

    pub fn bucket(self, region: &str) -> String {
        format!("tern-demo-{}-{region}", self.slug())
    }

    /// The rule's role, and the alias of the model's key in each region.
    pub fn name(self) -> String {
        format!("tern-demo-{}", self.slug())
    }

    pub fn alias(self) -> String {
        format!("alias/{}", self.name())
    }

    /// What the replication role may do, per region (source first): read
    /// for replication there, replicate here, and for SSE-KMS use each key
    /// only through S3 in its own region.
    pub fn role_statements(self, regions: &Regions, keys: &ModelKeys) -> [(String, Vec<Value>); 2] {
        let (from, to) = (&regions.source, &regions.destination);
        let mut source = vec![allow(&["s3:GetObjectVersionForReplication"], &objects(&self.bucket(from)))];
        let mut destination = vec![allow(&["s3:ReplicateObject"], &objects(&self.bucket(to)))];
        if self.server_side() {
            source.push(via_s3(allow(&["kms:Decrypt"], &keys.source), from));
            destination.push(via_s3(allow(&["kms:Encrypt", "kms:GenerateDataKey"], &keys.destination), to));
        }
        [(from.clone(), source), (to.clone(), destination)]
    }

    /// What a reader of the model's object needs in `region`: the object,
    /// and `kms:Decrypt` on the key there, directly (client-side) or
    /// through S3 (SSE-KMS).
    pub fn reader_statements(self, region: &str, key: &str) -> Vec<Value> {
        let decrypt = allow(&["kms:Decrypt"], key);
        let decrypt = if self.server_side() { via_s3(decrypt, region) } else { decrypt };
        vec![allow(&["s3:GetObject"], &objects(&self.bucket(region))), decrypt]
    }
}

/// An IAM policy document of `statements`.
pub fn policy(statements: impl IntoIterator<Item = Value>) -> String {
    json!({"Version": "2012-10-17", "Statement": statements.into_iter().collect::<Vec<_>>()}).to_string()
}

fn allow(actions: &[&str], resource: &str) -> Value {
    json!({"Effect": "Allow", "Action": actions, "Resource": resource})
}

fn objects(bucket: &str) -> String {
    format!("arn:aws:s3:::{bucket}/*")
}

/// Limits a KMS statement to calls S3 makes in `region` for the caller.
fn via_s3(mut statement: Value, region: &str) -> Value {
    statement["Condition"] = json!({"StringEquals": {"kms:ViaService": format!("s3.{region}.amazonaws.com")}});
    statement
}

/// One statement as a line: actions on resource (and its condition).
pub fn describe(statement: &Value) -> String {
    let actions: Vec<&str> = statement["Action"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let resource = statement["Resource"].as_str().unwrap_or_default();
    match statement["Condition"]["StringEquals"]["kms:ViaService"].as_str() {
        Some(via) => format!("{} on {resource} (only via {via})", actions.join(", ")),
        None => format!("{} on {resource}", actions.join(", ")),
    }
}
