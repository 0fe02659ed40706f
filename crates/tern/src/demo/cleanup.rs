//! `tern demo --cleanup`: removes what the demo made. Buckets go with
//! every version in them; keys lose their aliases and are scheduled for
//! deletion after KMS's shortest window, as KMS allows no sooner.

use aws_sdk_s3::types::{Delete, ObjectIdentifier};

use super::model::{Model, READER};
use super::{Deployment, RegionClients, failed};

/// KMS's shortest deletion window.
const KEY_WINDOW_DAYS: i32 = 7;

pub async fn run(d: &Deployment) -> anyhow::Result<()> {
    let mut removed = Vec::new();
    for model in Model::ALL {
        let source = model.bucket(&d.source.name);
        // The rule first, so nothing replicates into a bucket being emptied.
        let _ = d.source.s3.delete_bucket_replication().bucket(&source).send().await;
        for region in d.both() {
            let bucket = model.bucket(&region.name);
            if remove_bucket(region, &bucket).await? {
                removed.push(format!("removed bucket {bucket} in {}", region.name));
            }
        }
        if remove_role(d, &model.name()).await? {
            removed.push(format!("removed role {}", model.name()));
        }
        for key in retire_keys(d, model).await? {
            removed.push(format!("scheduled key {key} for deletion in {KEY_WINDOW_DAYS} days"));
        }
    }
    if remove_reader(d).await? {
        removed.push(format!("removed user {READER}"));
    }
    if removed.is_empty() {
        removed.push("nothing of the demo is left to remove".to_owned());
    }
    println!("{}", removed.join("\n"));
    Ok(())
}

/// Empties and deletes `bucket`; false if it was not there.
async fn remove_bucket(region: &RegionClients, bucket: &str) -> anyhow::Result<bool> {
    loop {
        let listed = match region.s3.list_object_versions().bucket(bucket).send().await {
            Err(e) if e.as_service_error().is_some_and(|e| e.meta().code() == Some("NoSuchBucket")) => {
                return Ok(false);
            }
            listed => listed.map_err(failed(&format!("ListObjectVersions {bucket}")))?,
        };
        let versions = listed.versions().iter().map(|v| (v.key(), v.version_id()));
        let markers = listed.delete_markers().iter().map(|m| (m.key(), m.version_id()));
        let objects: Vec<ObjectIdentifier> = versions
            .chain(markers)
            .filter_map(|(key, version)| {
                ObjectIdentifier::builder()
                    .set_key(key.map(str::to_owned))
                    .set_version_id(version.map(str::to_owned))
                    .build()
                    .ok()
            })
            .collect();
        if objects.is_empty() {
            break;
        }
        let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build()?;
        let done =
            region.s3.delete_objects().bucket(bucket).delete(delete).send().await.map_err(failed("DeleteObjects"))?;
        if let Some(refused) = done.errors().first() {
            anyhow::bail!(
                "DeleteObjects in {bucket}: {} {}",
                refused.code().unwrap_or_default(),
                refused.message().unwrap_or_default()
            );
        }
    }
    region.s3.delete_bucket().bucket(bucket).send().await.map_err(failed(&format!("DeleteBucket {bucket}")))?;
    Ok(true)
}

/// Deletes the role and its policy; false if it was not there.
async fn remove_role(d: &Deployment, name: &str) -> anyhow::Result<bool> {
    match d.iam.delete_role_policy().role_name(name).policy_name("replication").send().await {
        Err(e)
            if e.as_service_error().is_some_and(
                aws_sdk_iam::operation::delete_role_policy::DeleteRolePolicyError::is_no_such_entity_exception,
            ) => {}
        done => {
            done.map_err(failed(&format!("DeleteRolePolicy {name}")))?;
        }
    }
    match d.iam.delete_role().role_name(name).send().await {
        Err(e)
            if e.as_service_error()
                .is_some_and(aws_sdk_iam::operation::delete_role::DeleteRoleError::is_no_such_entity_exception) =>
        {
            Ok(false)
        }
        done => done.map(|_| true).map_err(failed(&format!("DeleteRole {name}"))),
    }
}

/// Removes the model's aliases and schedules its keys for deletion: the
/// destination's first, since a multi-Region primary waits for its
/// replicas. Returns the keys scheduled.
async fn retire_keys(d: &Deployment, model: Model) -> anyhow::Result<Vec<String>> {
    let alias = model.alias();
    let Ok(found) = d.source.kms.describe_key().key_id(&alias).send().await else { return Ok(Vec::new()) };
    let Some(primary) = found.key_metadata().map(|m| m.key_id().to_owned()) else { return Ok(Vec::new()) };
    // The destination's key: under the same alias, or the primary's replica.
    let other = match d.destination.kms.describe_key().key_id(&alias).send().await {
        Ok(found) => found.key_metadata().map(|m| m.key_id().to_owned()),
        Err(_) if model.multi_region() => Some(primary.clone()),
        Err(_) => None,
    };
    let mut scheduled = Vec::new();
    for (region, key) in [(&d.destination, other), (&d.source, Some(primary))] {
        let Some(key) = key else { continue };
        let _ = region.kms.delete_alias().alias_name(&alias).send().await;
        let done = region.kms.schedule_key_deletion().key_id(&key).pending_window_in_days(KEY_WINDOW_DAYS).send().await;
        if let Ok(done) = done {
            scheduled.push(done.key_id().unwrap_or(&key).to_owned());
        }
    }
    Ok(scheduled)
}

/// Deletes the reader's access keys; false if there is no reader.
pub async fn remove_reader_keys(d: &Deployment) -> anyhow::Result<bool> {
    let Ok(keys) = d.iam.list_access_keys().user_name(READER).send().await else { return Ok(false) };
    for id in keys.access_key_metadata().iter().filter_map(|k| k.access_key_id()) {
        d.iam
            .delete_access_key()
            .user_name(READER)
            .access_key_id(id)
            .send()
            .await
            .map_err(failed("DeleteAccessKey"))?;
    }
    Ok(true)
}

/// Deletes the reader, its access keys and its policy; false if it was not there.
async fn remove_reader(d: &Deployment) -> anyhow::Result<bool> {
    if !remove_reader_keys(d).await? {
        return Ok(false);
    }
    let _ = d.iam.delete_user_policy().user_name(READER).policy_name("read").send().await;
    d.iam.delete_user().user_name(READER).send().await.map_err(failed("DeleteUser"))?;
    Ok(true)
}
