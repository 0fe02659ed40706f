//! One replication: read the source version through this region's S3 API
//! and deliver it to the destination region, both as the rule's role.

use tern_iam::policy::{Request, RequestContext, S3_SERVICE};
use tern_replication_model::FailureReason;
use tern_replication_model::protocol::{
    self, MANIFEST_HEADER, REPLICATION_READ_HEADER, ReplicaManifest, Route, TagManifest, encode_manifest,
};
use tern_store::{SseAlgorithm, TaskKind, TaskRecord, VersionRecord};

use crate::Replicator;
use crate::reasons::{Trouble, destination_failure, permanent, source_failure};
use crate::signing::Payload;

/// The session S3 holds for a replication role.
#[derive(Clone)]
pub(crate) struct RoleSession {
    access_key_id: String,
    secret: zeroize::Zeroizing<String>,
    token: String,
    expires: i64,
    pub(crate) principal: tern_iam::policy::Principal,
}

impl RoleSession {
    /// The session's credentials, as a signer takes them.
    pub(crate) fn identity(&self) -> aws_smithy_runtime_api::client::identity::Identity {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            self.secret.as_str(),
            Some(self.token.clone()),
            None,
            "tern-replication",
        )
        .into()
    }
}

pub(crate) fn transient(e: impl std::fmt::Display) -> Trouble {
    Trouble::Transient(e.to_string())
}

impl Replicator {
    /// The role's session, minted as S3 assumes a replication role (the
    /// role's trust policy must let `s3.amazonaws.com` assume it).
    fn session(&self, role: &str) -> Result<RoleSession, Trouble> {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut sessions = self.sessions.lock().expect("session cache lock");
        if let Some(session) = sessions.get(role).filter(|s| s.expires - now > 300) {
            return Ok(session.clone());
        }
        let assumed = self.iam.service_session(role, S3_SERVICE, protocol::SESSION_NAME);
        self.observer.role_assumed(
            role,
            assumed.as_ref().map(|(s, _)| (s.access_key_id.as_str(), s.expires)).map_err(String::as_str),
        );
        let (session, token) = assumed.map_err(|why| {
            tracing::warn!(%role, %why, "replication role cannot be assumed");
            permanent(FailureReason::AssumeRoleNotPermitted)
        })?;
        let principal = session.principal();
        let session = RoleSession {
            access_key_id: session.access_key_id,
            secret: session.secret,
            token,
            expires: session.expires,
            principal,
        };
        sessions.insert(role.to_owned(), session.clone());
        Ok(session)
    }

    pub(crate) async fn transfer(&self, task: &TaskRecord) -> Result<(), Trouble> {
        let version = self
            .meta
            .get_version(&task.bucket, &task.key, Some(&task.version_id))
            .await
            .map_err(transient)?
            .ok_or_else(|| permanent(FailureReason::SrcVersionNotFound))?;
        let session = self.session(&task.role)?;
        let region = self
            .topology
            .region_of(&task.destination)
            .await
            .map_err(Trouble::Transient)?
            .ok_or_else(|| permanent(FailureReason::DstBucketNotFound))?;
        let endpoint = self.topology.endpoint(&region).ok_or_else(|| permanent(FailureReason::DstBucketNotFound))?;
        let destination = Destination { endpoint, region };
        match task.kind {
            TaskKind::Object => self.transfer_object(&version, task, &session, &destination).await,
            TaskKind::Tags => self.transfer_tags(&version, task, &session, &destination).await,
        }
    }

    async fn transfer_object(
        &self,
        version: &VersionRecord,
        task: &TaskRecord,
        session: &RoleSession,
        destination: &Destination,
    ) -> Result<(), Trouble> {
        let mut manifest = manifest(version, task);
        // As in S3: without the tagging read, objects replicate but tags do not.
        if !self.role_may(session, "s3:GetObjectVersionTagging", task) {
            manifest.tags.clear();
        }
        let body = if version.is_delete_marker {
            None
        } else if crate::sealed::travels_sealed(version, task) {
            self.check_source(version, task, session).await?;
            let (layout, inline) = self.stage_sealed(version, destination, task, session).await?;
            manifest.sealed = Some(layout);
            inline.map(Payload::bytes)
        } else {
            let source = self.read_source(task, session, None).await?;
            Some(Payload::streamed(manifest.size, source.bytes_stream()))
        };
        let denied = if version.is_delete_marker {
            FailureReason::DstDelObjNotPermitted
        } else {
            FailureReason::DstPutObjectNotPermitted
        };
        let delivery = Delivery { route: Route::Object, denied };
        self.deliver(destination, delivery, task, &manifest, body, session).await
    }

    /// Carries the version's current tag set (newer changes included) to a
    /// destination that holds the version.
    async fn transfer_tags(
        &self,
        version: &VersionRecord,
        task: &TaskRecord,
        session: &RoleSession,
        destination: &Destination,
    ) -> Result<(), Trouble> {
        self.check_tag_read(task, session).await?;
        let manifest = TagManifest {
            version_id: version.version_id.clone(),
            tags: version.tags.clone(),
            tags_stamp: version.tags_stamp,
            origin: task.bucket.clone(),
        };
        let delivery = Delivery { route: Route::Tags, denied: FailureReason::DstPutTaggingNotPermitted };
        self.deliver(destination, delivery, task, &manifest, None, session).await
    }

    /// Whether the role's policies allow `action` on the source object.
    pub(crate) fn role_may(&self, session: &RoleSession, action: &str, task: &TaskRecord) -> bool {
        let resource = format!("arn:aws:s3:::{}/{}", task.bucket, task.key);
        let context = RequestContext::of(&session.principal);
        let request = Request { principal: &session.principal, action, resource: &resource, context: &context };
        self.iam.authorize(&request).is_ok()
    }

    /// Streams the source version's plaintext, read as the role.
    pub(crate) async fn read_source(
        &self,
        task: &TaskRecord,
        session: &RoleSession,
        range: Option<&str>,
    ) -> Result<reqwest::Response, Trouble> {
        let endpoint = self.topology.endpoint(&self.region).ok_or_else(|| transient("no endpoint for this region"))?;
        let url = format!(
            "{endpoint}/{}?versionId={}",
            protocol::object_path(&task.bucket, &task.key),
            urlencoding::encode(&task.version_id)
        );
        let mut headers = vec![(REPLICATION_READ_HEADER, "true".to_owned())];
        if let Some(range) = range {
            headers.push(("range", range.to_owned()));
        }
        let response = self
            .signed(&http::Method::GET, &url, &self.region, session, &headers, None)?
            .send()
            .await
            .map_err(transient)?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Err(source_failure(status, &body))
    }

    /// The role's tag read at the source, checked as a real read through
    /// the source's S3 API (`s3:GetObjectVersionTagging`, identity and
    /// bucket policies alike).
    async fn check_tag_read(&self, task: &TaskRecord, session: &RoleSession) -> Result<(), Trouble> {
        let endpoint = self.topology.endpoint(&self.region).ok_or_else(|| transient("no endpoint for this region"))?;
        let url = format!(
            "{endpoint}/{}?tagging&versionId={}",
            protocol::object_path(&task.bucket, &task.key),
            urlencoding::encode(&task.version_id)
        );
        let response = self.signed(&http::Method::GET, &url, &self.region, session, &[], None)?.send().await;
        match response.map_err(transient)?.status().as_u16() {
            200..=299 => Ok(()),
            403 => Err(permanent(FailureReason::SrcGetTaggingNotPermitted)),
            404 => Err(permanent(FailureReason::SrcVersionNotFound)),
            status => Err(transient(format!("source answered {status}"))),
        }
    }

    async fn deliver(
        &self,
        destination: &Destination,
        delivery: Delivery,
        task: &TaskRecord,
        manifest: &impl serde::Serialize,
        body: Option<Payload>,
        session: &RoleSession,
    ) -> Result<(), Trouble> {
        let url = delivery.route.url(&destination.endpoint, &task.destination, &task.key);
        let headers = [(MANIFEST_HEADER, encode_manifest(manifest))];
        let request = self.signed(&http::Method::PUT, &url, &destination.region, session, &headers, body)?;
        let response = request.send().await.map_err(transient)?;
        if response.status().is_success() {
            return Ok(());
        }
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Err(destination_failure(status, &text, delivery.denied))
    }
}

/// Where a task's destination bucket is served.
pub(crate) struct Destination {
    pub(crate) endpoint: String,
    pub(crate) region: String,
}

/// What a delivery writes at the destination: its route, and the failure
/// reason of a refusal.
struct Delivery {
    route: Route,
    denied: FailureReason,
}

fn manifest(version: &VersionRecord, task: &TaskRecord) -> ReplicaManifest {
    let mut attrs = version.attrs.clone();
    // The rule may store replicas in a class of its own (STANDARD is no class).
    if let Some(class) = &task.storage_class {
        attrs.storage_class = (class != "STANDARD").then(|| class.clone());
    }
    ReplicaManifest {
        version_id: version.version_id.clone(),
        modified_ms: version.modified_ms,
        etag: version.etag.clone(),
        is_delete_marker: version.is_delete_marker,
        size: if version.is_delete_marker { 0 } else { version.size },
        attrs,
        tags: version.tags.clone(),
        tags_stamp: version.tags_stamp,
        // Only SSE-KMS sources are re-encrypted under the rule's key; the
        // others stay SSE-S3 at the destination, as on AWS.
        replica_kms_key_id: task
            .replica_kms_key_id
            .clone()
            .filter(|_| version.attrs.encryption == Some(SseAlgorithm::AwsKms)),
        sealed: None,
    }
}
