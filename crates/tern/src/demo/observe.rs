//! Looks at each model's object in both regions once it has replicated:
//! what S3 reports, which key the bytes are under, and whether the reader
//! can decrypt them there. Every cell comes from an answer of the
//! deployment, not from what the demo meant to build.

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use tern_cse::{ClientConfig, EncryptionClient, KmsKeyring, ObjectRef};

use super::model::{Model, OBJECT_KEY};
use super::setup::{Built, Written};
use super::{Deployment, RegionClients, failed};

/// One model in one region: a line of the table.
#[derive(Debug, Serialize)]
pub struct Row {
    pub model: &'static str,
    pub region: String,
    pub object: String,
    pub encryption: String,
    pub key: String,
    pub replication: String,
    pub s3_saw_plaintext: String,
    pub reader_decrypts: String,
}

/// What one region holds of one model's object.
struct Seen {
    region: String,
    object: String,
    encryption: String,
    key: String,
    /// The bytes S3 returns (ciphertext for the client-side model).
    served: Bytes,
    reader: String,
}

/// How long replication may take before the table shows what it has.
const PATIENCE: Duration = Duration::from_mins(1);

pub async fn all(d: &Deployment, built: &Built, readers: &[RegionClients; 2]) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for model in Model::ALL {
        let written = &built.written[&model];
        let status = replicated(&d.source, &model.bucket(&d.source.name), &written.version_id).await?;
        let source = look(model, &d.source, &readers[0], built, written).await?;
        let replica = look(model, &d.destination, &readers[1], built, written).await?;
        rows.extend(rows_of(model, &status, [source, replica], written));
    }
    Ok(rows)
}

/// The source version's replication status once it is no longer PENDING
/// (or still PENDING when patience runs out).
async fn replicated(source: &RegionClients, bucket: &str, version_id: &str) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let head = source.s3.head_object().bucket(bucket).key(OBJECT_KEY).version_id(version_id).send().await;
        let head = head.map_err(failed(&format!("HeadObject s3://{bucket}/{OBJECT_KEY}")))?;
        let status = head.replication_status().map_or("none", |s| s.as_str()).to_owned();
        if status != "PENDING" || tokio::time::Instant::now() >= deadline {
            return Ok(status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn look(
    model: Model,
    region: &RegionClients,
    reader: &RegionClients,
    built: &Built,
    written: &Written,
) -> anyhow::Result<Seen> {
    let bucket = model.bucket(&region.name);
    let object = format!("s3://{bucket}/{OBJECT_KEY}");
    // This run's version, in both regions (a replica keeps its version id).
    let got = region.s3.get_object().bucket(&bucket).key(OBJECT_KEY).version_id(&written.version_id).send().await;
    let got = got.map_err(failed(&format!("GetObject {object} in {}", region.name)))?;
    let sse = match got.server_side_encryption().map(aws_sdk_s3::types::ServerSideEncryption::as_str) {
        Some("AES256") => "SSE-S3",
        Some("aws:kms") => "SSE-KMS",
        Some(other) => other,
        None => "none",
    }
    .to_owned();
    let kms_key = got.ssekms_key_id().map(str::to_owned);
    let envelope = got.metadata().and_then(|m| m.get("x-amz-3").or_else(|| m.get("x-amz-key-v2"))).cloned();
    let served = got.body.collect().await.context("reading the object")?.into_bytes();
    let (encryption, key) = match envelope {
        Some(wrapped) => (format!("client-side V3, in {sse}"), envelope_key(region, &wrapped).await),
        None => (sse, kms_key.unwrap_or_else(|| "S3's own key".to_owned())),
    };
    let reader = decrypts(model, reader, &bucket, &built.keys[&model].source, written).await;
    Ok(Seen { region: region.name.clone(), object, encryption, key, served, reader })
}

/// The key a client-side envelope's data key is wrapped under, as this
/// region's KMS knows it: the KMS blob names its key id in the clear.
async fn envelope_key(region: &RegionClients, wrapped: &str) -> String {
    let blob = base64::engine::general_purpose::STANDARD.decode(wrapped).unwrap_or_default();
    let Ok(header) = tern_crypto::kms_blob::header(&blob) else { return "not a KMS-wrapped key".to_owned() };
    match region.kms.describe_key().key_id(&header.key_id).send().await {
        Ok(found) => found.key_metadata().and_then(|m| m.arn()).unwrap_or_default().to_owned(),
        Err(_) => format!("none: {} has no key here", header.key_id),
    }
}

/// Whether the reader, in `reader`'s region, gets the plaintext back: through
/// S3 for SSE-KMS, or by decrypting client-side with KMS there.
async fn decrypts(model: Model, reader: &RegionClients, bucket: &str, key: &str, written: &Written) -> String {
    let got = if model.server_side() {
        let got = reader.s3.get_object().bucket(bucket).key(OBJECT_KEY).send().await;
        match got.map_err(failed("GetObject")) {
            Ok(got) => got
                .body
                .collect()
                .await
                .map(aws_sdk_s3::primitives::AggregatedBytes::into_bytes)
                .map_err(anyhow::Error::from),
            Err(e) => Err(e),
        }
    } else {
        let keyring = KmsKeyring::new(reader.kms.clone(), key, &reader.name);
        let object = ObjectRef { bucket: bucket.to_owned(), key: OBJECT_KEY.to_owned() };
        match EncryptionClient::new(reader.s3.clone(), keyring, ClientConfig::default()) {
            Ok(client) => client.get_bytes(&object, &written.context).await.map_err(anyhow::Error::from),
            Err(e) => Err(e.into()),
        }
    };
    match got {
        Ok(plain) if plain == written.plaintext => "yes".to_owned(),
        Ok(_) => "no: other bytes came back".to_owned(),
        Err(e) => format!("no: {e:#}"),
    }
}

/// The model's two rows: the source, then the replica and what replication
/// did to it.
fn rows_of(model: Model, status: &str, [source, replica]: [Seen; 2], written: &Written) -> Vec<Row> {
    let saw_plaintext = if model.server_side() {
        "yes: SSE".to_owned()
    } else if source.served != written.plaintext && replica.served != written.plaintext {
        "no: only ciphertext".to_owned()
    } else {
        "yes: it served plaintext".to_owned()
    };
    let replication = if status != "COMPLETED" {
        format!("{status} (not replicated)")
    } else if !model.server_side() {
        if source.served == replica.served { "copied: the same ciphertext" } else { "copied: other ciphertext" }
            .to_owned()
    } else if key_id(&source.key) == key_id(&replica.key) {
        "handed over sealed: the same key".to_owned()
    } else {
        "re-encrypted under this region's key".to_owned()
    };
    [(source, format!("source: {status}")), (replica, replication)]
        .into_iter()
        .map(|(seen, replication)| Row {
            model: model.title(),
            region: seen.region,
            object: seen.object,
            encryption: seen.encryption,
            key: seen.key,
            replication,
            s3_saw_plaintext: saw_plaintext.clone(),
            reader_decrypts: seen.reader,
        })
        .collect()
}

/// The key id of a key ARN: a multi-Region key keeps it in every region.
fn key_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}
