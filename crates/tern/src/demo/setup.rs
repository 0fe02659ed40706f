//! Builds each model's keys, buckets, role, rule and object (finding what
//! a previous run made), and the reader who tries to decrypt them.

use std::collections::BTreeMap;

use anyhow::Context as _;
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, DeleteMarkerReplication,
    DeleteMarkerReplicationStatus, Destination, EncryptionConfiguration, ReplicationConfiguration, ReplicationRule,
    ReplicationRuleFilter, ReplicationRuleStatus, ServerSideEncryption, SourceSelectionCriteria,
    SseKmsEncryptedObjects, SseKmsEncryptedObjectsStatus, VersioningConfiguration,
};
use bytes::Bytes;
use serde_json::json;
use tern_cse::{ClientConfig, EncryptionClient, KmsKeyring, ObjectRef};

use super::model::{Model, ModelKeys, OBJECT_KEY, READER, Regions, policy};
use super::{Deployment, RegionClients, failed};

/// Everything `tern demo` made, or found made.
pub struct Built {
    pub keys: BTreeMap<Model, ModelKeys>,
    pub roles: BTreeMap<Model, String>,
    pub written: BTreeMap<Model, Written>,
    pub reader: Credentials,
}

/// One model's object as written in the source region.
pub struct Written {
    pub version_id: String,
    pub plaintext: Bytes,
    /// The client-side encryption context (client-side model only).
    pub context: Vec<(String, String)>,
}

pub async fn build(d: &Deployment) -> anyhow::Result<Built> {
    let regions = d.regions();
    let (mut keys, mut roles, mut written) = (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    for model in Model::ALL {
        let model_keys = model_keys(d, model).await?;
        for region in d.both() {
            bucket(region, &model.bucket(&region.name)).await?;
        }
        let role = role(d, model, &regions, &model_keys).await?;
        rule(d, model, &role, &model_keys).await?;
        keys.insert(model, model_keys);
        roles.insert(model, role);
    }
    let reader = reader(d, &keys).await?;
    for model in Model::ALL {
        written.insert(model, write(&d.source, model, &keys[&model]).await?);
    }
    Ok(Built { keys, roles, written, reader })
}

async fn model_keys(d: &Deployment, model: Model) -> anyhow::Result<ModelKeys> {
    let source = key(&d.source, &model.alias(), model.multi_region()).await?;
    let destination = if model.multi_region() {
        replica(d, &source).await?
    } else {
        key(&d.destination, &model.alias(), false).await?
    };
    Ok(ModelKeys { source, destination })
}

/// The ARN of the key `alias` names in `region`; a new key (and the alias)
/// if it names none.
async fn key(region: &RegionClients, alias: &str, multi_region: bool) -> anyhow::Result<String> {
    if let Ok(found) = region.kms.describe_key().key_id(alias).send().await
        && let Some(arn) = found.key_metadata().and_then(|m| m.arn())
    {
        return Ok(arn.to_owned());
    }
    let made = region
        .kms
        .create_key()
        .multi_region(multi_region)
        .description("tern demo")
        .send()
        .await
        .map_err(failed(&format!("CreateKey in {}", region.name)))?;
    let meta = made.key_metadata().context("CreateKey answered no metadata")?;
    region
        .kms
        .create_alias()
        .alias_name(alias)
        .target_key_id(meta.key_id())
        .send()
        .await
        .map_err(failed(&format!("CreateAlias {alias} in {}", region.name)))?;
    meta.arn().map(str::to_owned).context("CreateKey answered no ARN")
}

/// The ARN of the multi-Region key `arn`'s replica in the destination,
/// replicated there if it is not yet.
async fn replica(d: &Deployment, arn: &str) -> anyhow::Result<String> {
    let key_id = arn.rsplit('/').next().unwrap_or(arn);
    if let Ok(found) = d.destination.kms.describe_key().key_id(key_id).send().await
        && let Some(arn) = found.key_metadata().and_then(|m| m.arn())
    {
        return Ok(arn.to_owned());
    }
    let made = d
        .source
        .kms
        .replicate_key()
        .key_id(arn)
        .replica_region(&d.destination.name)
        .send()
        .await
        .map_err(failed(&format!("ReplicateKey {key_id} to {}", d.destination.name)))?;
    made.replica_key_metadata().and_then(|m| m.arn()).map(str::to_owned).context("ReplicateKey answered no ARN")
}

/// A versioned bucket `name` in `region` (kept if it is there).
async fn bucket(region: &RegionClients, name: &str) -> anyhow::Result<()> {
    let mut create = region.s3.create_bucket().bucket(name);
    if region.name != "us-east-1" {
        let constraint = BucketLocationConstraint::from(region.name.as_str());
        create = create
            .create_bucket_configuration(CreateBucketConfiguration::builder().location_constraint(constraint).build());
    }
    match create.send().await {
        Err(e)
            if !e.as_service_error().is_some_and(
                aws_sdk_s3::operation::create_bucket::CreateBucketError::is_bucket_already_owned_by_you,
            ) =>
        {
            return Err(failed(&format!("CreateBucket {name} in {}", region.name))(e));
        }
        _ => {}
    }
    let enabled = VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build();
    region
        .s3
        .put_bucket_versioning()
        .bucket(name)
        .versioning_configuration(enabled)
        .send()
        .await
        .map_err(failed(&format!("PutBucketVersioning {name}")))?;
    Ok(())
}

/// The model's replication role, trusted by S3, with its least-privilege
/// policy (replaced on every run); returns its ARN.
async fn role(d: &Deployment, model: Model, regions: &Regions, keys: &ModelKeys) -> anyhow::Result<String> {
    let name = model.name();
    let trust = json!({"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"});
    let made = d.iam.create_role().role_name(&name).assume_role_policy_document(policy([trust])).send().await;
    let arn = match made {
        Ok(made) => made.role().map(|r| r.arn().to_owned()),
        Err(e)
            if e.as_service_error().is_some_and(
                aws_sdk_iam::operation::create_role::CreateRoleError::is_entity_already_exists_exception,
            ) =>
        {
            let found = d.iam.get_role().role_name(&name).send().await.map_err(failed(&format!("GetRole {name}")))?;
            found.role().map(|r| r.arn().to_owned())
        }
        Err(e) => return Err(failed(&format!("CreateRole {name}"))(e)),
    };
    let statements = model.role_statements(regions, keys).into_iter().flat_map(|(_, statements)| statements);
    d.iam
        .put_role_policy()
        .role_name(&name)
        .policy_name("replication")
        .policy_document(policy(statements))
        .send()
        .await
        .map_err(failed(&format!("PutRolePolicy {name}")))?;
    arn.context("the role has no ARN")
}

/// The source bucket's rule: everything to the destination bucket, as
/// `role_arn`; SSE-KMS objects selected, and their replicas under the
/// destination's key, for the server-side models.
async fn rule(d: &Deployment, model: Model, role_arn: &str, keys: &ModelKeys) -> anyhow::Result<()> {
    let mut destination = Destination::builder().bucket(format!("arn:aws:s3:::{}", model.bucket(&d.destination.name)));
    let no_markers = DeleteMarkerReplication::builder().status(DeleteMarkerReplicationStatus::Disabled).build();
    let mut rule = ReplicationRule::builder()
        .id(model.slug())
        .priority(1)
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .delete_marker_replication(no_markers);
    if model.server_side() {
        let selected = SseKmsEncryptedObjects::builder().status(SseKmsEncryptedObjectsStatus::Enabled).build()?;
        rule = rule
            .source_selection_criteria(SourceSelectionCriteria::builder().sse_kms_encrypted_objects(selected).build());
        destination = destination
            .encryption_configuration(EncryptionConfiguration::builder().replica_kms_key_id(&keys.destination).build());
    }
    let config =
        ReplicationConfiguration::builder().role(role_arn).rules(rule.destination(destination.build()?).build()?);
    let bucket = model.bucket(&d.source.name);
    d.source
        .s3
        .put_bucket_replication()
        .bucket(&bucket)
        .replication_configuration(config.build()?)
        .send()
        .await
        .map_err(failed(&format!("PutBucketReplication {bucket}")))?;
    Ok(())
}

/// The reader: may get the demo's objects and decrypt with their keys in
/// each region, nothing else. A secret is shown only when made, so each
/// run replaces the reader's access key.
async fn reader(d: &Deployment, keys: &BTreeMap<Model, ModelKeys>) -> anyhow::Result<Credentials> {
    match d.iam.create_user().user_name(READER).send().await {
        Err(e)
            if !e.as_service_error().is_some_and(
                aws_sdk_iam::operation::create_user::CreateUserError::is_entity_already_exists_exception,
            ) =>
        {
            return Err(failed(&format!("CreateUser {READER}"))(e));
        }
        _ => {}
    }
    let regions = d.regions();
    let statements = keys.iter().flat_map(|(model, keys)| {
        let mut statements = model.reader_statements(&regions.source, &keys.source);
        statements.extend(model.reader_statements(&regions.destination, &keys.destination));
        statements
    });
    d.iam
        .put_user_policy()
        .user_name(READER)
        .policy_name("read")
        .policy_document(policy(statements))
        .send()
        .await
        .map_err(failed("PutUserPolicy"))?;
    super::cleanup::remove_reader_keys(d).await?;
    let made = d.iam.create_access_key().user_name(READER).send().await.map_err(failed("CreateAccessKey"))?;
    let key = made.access_key().context("CreateAccessKey answered no key")?;
    Ok(Credentials::new(key.access_key_id(), key.secret_access_key(), None, None, READER))
}

/// Writes the model's object in the source region: encrypted by the client
/// under the key, or by S3 with SSE-KMS.
async fn write(source: &RegionClients, model: Model, keys: &ModelKeys) -> anyhow::Result<Written> {
    let bucket = model.bucket(&source.name);
    let now = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    let plaintext = Bytes::from(format!("Tern demo, model {}, written {now}\n", model.title()));
    let context = vec![("demo".to_owned(), model.slug().to_owned())];
    let version_id = if model.server_side() {
        let put = source
            .s3
            .put_object()
            .bucket(&bucket)
            .key(OBJECT_KEY)
            .body(plaintext.clone().into())
            .server_side_encryption(ServerSideEncryption::AwsKms)
            .ssekms_key_id(&keys.source)
            .send()
            .await
            .map_err(failed(&format!("PutObject s3://{bucket}/{OBJECT_KEY}")))?;
        put.version_id().map(str::to_owned)
    } else {
        let keyring = KmsKeyring::new(source.kms.clone(), &keys.source, &source.name);
        let client = EncryptionClient::new(source.s3.clone(), keyring, ClientConfig::default())?;
        let object = ObjectRef { bucket: bucket.clone(), key: OBJECT_KEY.to_owned() };
        let len = plaintext.len() as u64;
        client.put(&object, &plaintext[..], Some(len), &context, &|_, _| {}).await?.version_id
    };
    let version_id = version_id.with_context(|| format!("s3://{bucket} answered no version id"))?;
    Ok(Written { version_id, plaintext, context })
}
