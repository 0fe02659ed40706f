//! One region: its stores, its services and its listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use s3s::service::{S3Service, S3ServiceBuilder};
use tern_core::DeploymentConfig;
use tern_iam::{Iam, RootIdentity};
use tern_kms::{Kms, KmsLinks};
use tern_replication::Replicator;
use tern_s3::{BucketRegistry, KEK_PURPOSE, Region, Sse, TernS3};
use tern_store::{DocStore, MetaStore};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::access_check::AccessCheck;
use crate::auth::{IamAccess, IamAuth, Sessions, TernNames};
use crate::credentials::RootCredentials;
use crate::iam_peer::HttpIamAuthority;
use crate::kms_peers::HttpKmsPeers;
use crate::listener::{Handler, Limits};
use crate::metrics::RegionMetrics;
use crate::other_services::OtherServices;
use crate::outer::OuterLayer;
use crate::peer::{PeerClient, Peers};
use crate::registry::{LocalRegistry, RegistryRoute, RemoteRegistry};
use crate::replicate_route::{AdminRoutes, ReplicateRoute};
use crate::replication_admin::ReplicationAdmin;
use crate::topology::Topology;

/// How long in-flight requests get to finish after a stop signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A region that is serving.
pub struct RunningRegion {
    pub name: String,
    pub local_addr: SocketAddr,
    pub endpoint: String,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningRegion {
    /// Waits until the region has drained and closed its stores.
    pub async fn join(self) -> anyhow::Result<()> {
        self.task.await.context("region task panicked")?
    }
}

/// The writer of AWS-format access logs, if the deployment asks for them;
/// it writes only for buckets this region's metadata holds.
fn server_access_log(
    deployment: &DeploymentConfig,
    name: &str,
    meta: &Arc<dyn tern_store::MetaStore>,
) -> Option<crate::server_access_log::ServerAccessLog> {
    let dir = deployment.access_log.as_ref()?.dir.clone();
    let (meta, runtime) = (Arc::clone(meta), tokio::runtime::Handle::current());
    let exists = Arc::new(move |bucket: &str| runtime.block_on(meta.get_bucket(bucket)).is_ok_and(|b| b.is_some()));
    Some(crate::server_access_log::ServerAccessLog::start(dir, name.to_owned(), exists))
}

/// The region's web console, from what `build` needs to know of it.
fn build_console(
    build: &crate::ConsoleFactory,
    deployment: &DeploymentConfig,
    (name, root): (&str, &RootCredentials),
    metrics: &Arc<RegionMetrics>,
) -> anyhow::Result<Arc<dyn crate::WebConsole>> {
    let endpoint = deployment.region(name).map(tern_core::RegionConfig::endpoint_url).unwrap_or_default();
    build(&crate::ConsoleContext {
        region: name.to_owned(),
        deployment: deployment.clone(),
        metrics: Arc::clone(metrics),
        secure: endpoint.starts_with("https://"),
        voucher: Arc::new(crate::Voucher::new(&tern_crypto::transport::peer_secret(&root.secret_access_key))),
    })
}

/// Opens the region's stores, sweeps crash leftovers and starts serving.
/// The region stops when `stop` changes.
pub async fn start_region(
    deployment: &DeploymentConfig,
    name: &str,
    root: &RootCredentials,
    stop: watch::Receiver<bool>,
    console: Option<&crate::ConsoleFactory>,
) -> anyhow::Result<RunningRegion> {
    let config = deployment.region(name).with_context(|| format!("region {name} is not in the deployment"))?;
    let dir = deployment.region_data_dir(name);
    tern_store::private::dir_all(&deployment.data_dir)
        .and_then(|()| tern_store::private::dir_all(&dir))
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let root_key = crate::root_key::load_or_create(&dir, name)?;
    let crate::stores::RegionStores { meta, docs, blobs } = crate::stores::open(config, &dir, &root_key).await?;

    // The registry region keeps the bucket-name registry; the others ask it over HTTP.
    let registry_region = deployment.registry_region();
    let local_registry = (registry_region.name == name).then(|| Arc::new(LocalRegistry { meta: Arc::clone(&meta) }));
    let peer_http = PeerClient::http(deployment.tls.as_ref())?;
    let registry: Arc<dyn BucketRegistry> = match &local_registry {
        Some(local) => Arc::clone(local) as Arc<dyn BucketRegistry>,
        None => Arc::new(RemoteRegistry {
            peer: PeerClient::new(&peer_http, &registry_region.endpoint_url(), &registry_region.name, root),
        }),
    };
    let replication_wake = Arc::new(tokio::sync::Notify::new());
    let iam = Arc::new(open_iam(deployment, (name, &peer_http), root, Arc::clone(&docs), &root_key).await?);
    iam.follow();
    let metrics = Arc::new(RegionMetrics::new(name));
    let audit = crate::audit::open(deployment, name, &dir, &root_key)?;
    let streaming_http = streaming_http(deployment, Duration::from_secs(deployment.limits.request_timeout_seconds))?;
    let peers = Arc::new(Peers::new(deployment, name, root, (&peer_http, &streaming_http)));
    let kms_audit = crate::audit::KmsAudit::new(name, &deployment.account_id, &audit);
    let observers: Vec<Arc<dyn tern_kms::KmsObserver>> = vec![Arc::clone(&metrics) as _, Arc::new(kms_audit)];
    let links = KmsLinks {
        iam: Arc::clone(&iam),
        peers: Arc::new(HttpKmsPeers { peers: Arc::clone(&peers) }),
        observer: Arc::new(crate::audit::KmsObservers(observers)),
        peer_secret: tern_crypto::transport::peer_secret(&root.secret_access_key),
    };
    let kms =
        Kms::open(name, docs, &root_key, links).await.map_err(|e| anyhow::anyhow!("opening the key store: {e}"))?;
    let kms = Arc::new(kms);
    let maintaining = kms.spawn_maintenance();
    let region = Arc::new(Region {
        name: name.to_owned(),
        account_id: deployment.account_id.clone(),
        meta: Arc::clone(&meta),
        blobs,
        registry,
        peers,
        iam: Arc::clone(&iam),
        replication_wake: Arc::clone(&replication_wake),
        sse: Arc::new(Sse::new(tern_crypto::wrap::derive(&root_key, KEK_PURPOSE), Arc::clone(&kms))),
        replica_tickets: tern_crypto::mac::Mac::derived(&root_key, REPLICA_TICKETS_PURPOSE),
        account_public_access_block: account_public_access_block(deployment),
        bucket_policies: tern_s3::BucketPolicies::default(),
        audit: Arc::clone(&audit),
        md5_lanes: Arc::default(),
    });

    let sessions = Arc::new(Sessions::default());
    let auth = Arc::new(IamAuth { iam: Arc::clone(&iam), sessions: Arc::clone(&sessions) });
    let s3 = s3_service(&region, &sessions, local_registry, root);
    let topology = Arc::new(Topology::new(Arc::clone(&region.registry), deployment));
    let observer = Arc::new(crate::audit::ReplicationObservers::new(&metrics, name, &deployment.account_id, &audit));
    let links = tern_replication::Links {
        meta: Arc::clone(&region.meta),
        blobs: Arc::clone(&region.blobs),
        iam: Arc::clone(&iam),
        topology,
        wake: replication_wake,
        observer,
        http: crate::tls::peer_http(deployment.tls.as_ref(), Replicator::http_builder())?,
        lease: Duration::from_secs(deployment.replication.lease_seconds),
    };
    let replicator = Replicator::new(name, links);
    let replicating = Arc::new(replicator).spawn();
    let expiring = crate::lifecycle::spawn(&region, &metrics, &deployment.lifecycle);
    let limits = Limits {
        max_connections: deployment.limits.max_connections,
        timeout: Duration::from_secs(deployment.limits.request_timeout_seconds),
    };
    let readiness = Arc::new(crate::readiness::Readiness::new(Arc::clone(&meta), Arc::clone(&region.blobs)));
    let console = console.map(|build| build_console(build, deployment, (name, root), &metrics)).transpose()?;
    let outer = Arc::new(OuterLayer {
        region: name.to_owned(),
        s3,
        metrics: Arc::clone(&metrics),
        // Metrics name buckets and rules: a public listener serves them only
        // when given a private address of their own (`metrics_listen`).
        serves_metrics: config.metrics_listen.is_none() && config.listen.ip().is_loopback(),
        others: OtherServices::new(iam, kms, Arc::clone(&audit)),
        auth,
        sessions,
        sigv2: deployment.sigv2,
        request_timeout: limits.timeout,
        peer_certificates: deployment.tls.as_ref().is_some_and(tern_core::TlsConfig::mutual),
        readiness: Arc::clone(&readiness),
        forwarder: forwarder(deployment, name, root, (streaming_http, limits.timeout)),
        console,
        server_access_log: server_access_log(deployment, name, &region.meta),
        account_id: deployment.account_id.clone(),
    });

    let stores = Stores { meta, audit, maintaining, expiring };
    let (local_addr, task) = listen(deployment, name, (outer, metrics), limits, (stop, stores, replicating)).await?;
    Ok(RunningRegion { name: name.to_owned(), local_addr, endpoint: config.endpoint_url(), task })
}

/// The client of calls to other regions whose bodies may be of any length
/// (relayed requests, copies' sources): no overall deadline, but none may
/// sit idle past `idle`.
fn streaming_http(deployment: &DeploymentConfig, idle: Duration) -> anyhow::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(idle)
        .pool_idle_timeout(idle)
        .pool_max_idle_per_host(32)
        .tcp_nodelay(true);
    crate::tls::peer_http(deployment.tls.as_ref(), builder)
}

/// Relays requests signed for the other regions to them.
fn forwarder(
    deployment: &DeploymentConfig,
    name: &str,
    root: &RootCredentials,
    (http, idle): (reqwest::Client, Duration),
) -> crate::forward::Forwarder {
    let endpoints = deployment
        .regions
        .iter()
        .filter(|r| r.name != name)
        .map(|r| (r.name.clone(), r.endpoint_url().trim_end_matches('/').to_owned()))
        .collect();
    let secret = tern_crypto::transport::peer_secret(&root.secret_access_key);
    crate::forward::Forwarder::new(name, http, endpoints, &secret, idle)
}

/// The account's Block Public Access, as the deployment sets it.
fn account_public_access_block(deployment: &DeploymentConfig) -> tern_s3::PublicAccessBlock {
    if deployment.block_public_access { tern_s3::PublicAccessBlock::ALL } else { tern_s3::PublicAccessBlock::NONE }
}

/// Binds the region's listeners — the API (HTTPS when the region has a
/// certificate), an explicit plaintext one, metrics — and serves them.
async fn listen(
    deployment: &DeploymentConfig,
    name: &str,
    (outer, metrics): (Arc<OuterLayer>, Arc<RegionMetrics>),
    limits: Limits,
    (stop, stores, replicating): (watch::Receiver<bool>, Stores, tokio::task::JoinHandle<()>),
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<anyhow::Result<()>>)> {
    let config = deployment.region(name).with_context(|| format!("region {name} is not in the deployment"))?;
    let listener = bind(config.listen, "the API").await?;
    let local_addr = listener.local_addr()?;
    let tls = match &deployment.tls {
        Some(trust) if config.serves_tls() => {
            let tls = crate::tls::ServerTls::new(config, trust)?;
            tls.reload_on_sighup(name)?;
            Some(tls.acceptor)
        }
        _ => None,
    };
    if let Some(address) = config.plain_listen {
        let plain = bind(address, "plaintext").await?;
        let outer = Arc::clone(&outer);
        tokio::spawn(crate::listener::serve(plain, outer, limits, None, (stop.clone(), DRAIN_TIMEOUT)));
    }
    if let Some(address) = config.metrics_listen {
        let metrics_listener = bind(address, "metrics").await?;
        let handler = Arc::new(MetricsOnly { metrics, readiness: Arc::clone(&outer.readiness) });
        tokio::spawn(crate::listener::serve(metrics_listener, handler, limits, None, (stop.clone(), DRAIN_TIMEOUT)));
    }
    Ok((local_addr, tokio::spawn(serve((listener, tls), outer, limits, stop, (stores, replicating)))))
}

async fn bind(address: SocketAddr, what: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address} for {what}"))
}

/// The S3 API with Tern's authentication, authorization, names, limits and
/// internal routes.
fn s3_service(
    region: &Arc<Region>,
    sessions: &Arc<Sessions>,
    local_registry: Option<Arc<LocalRegistry>>,
    root: &RootCredentials,
) -> S3Service {
    let iam = &region.iam;
    let mut builder = S3ServiceBuilder::new(TernS3::new(Arc::clone(region)));
    builder.set_auth(IamAuth { iam: Arc::clone(iam), sessions: Arc::clone(sessions) });
    builder.set_access(IamAccess { iam: Arc::clone(iam), region: Arc::clone(region) });
    builder.set_validation(TernNames);
    builder.set_config(Arc::new(s3s::config::StaticConfigProvider::new(Arc::new(s3_limits()))));
    let registry_route =
        local_registry.map(|registry| RegistryRoute { registry, root_access_key: root.access_key_id.clone() });
    let replicate = ReplicateRoute { region: Arc::clone(region), iam: Arc::clone(iam) };
    let replication = ReplicationAdmin { region: Arc::clone(region), root_access_key: root.access_key_id.clone() };
    let access_check = AccessCheck { region: Arc::clone(region), root_access_key: root.access_key_id.clone() };
    let copy_source = crate::copy_source_route::CopySourceRoute {
        region: Arc::clone(region),
        root_access_key: root.access_key_id.clone(),
    };
    builder.set_route(AdminRoutes { registry: registry_route, replicate, replication, access_check, copy_source });
    builder.build()
}

/// What s3s may buffer. The largest XML body S3 takes is a `DeleteObjects`
/// of 1,000 keys or a `CompleteMultipartUpload` of 10,000 parts, under 4 MiB;
/// browser-form POSTs are refused before s3s sees them, and would find
/// nothing to buffer here either.
fn s3_limits() -> s3s::config::S3Config {
    let mut config = s3s::config::S3Config::default();
    config.xml_max_body_size = 4 << 20;
    config.post_object_max_file_size = 0;
    config.form_max_field_size = 0;
    config.form_max_fields_size = 0;
    config.form_max_parts = 0;
    config
}

/// The purpose from which the key signing staged replica blobs' tickets is derived.
const REPLICA_TICKETS_PURPOSE: &[u8] = b"tern/replica-tickets/v1";

/// A listener of its own for `/_tern/metrics` (and health), so metrics can
/// stay on a private address while the API listens publicly.
struct MetricsOnly {
    metrics: Arc<RegionMetrics>,
    readiness: Arc<crate::readiness::Readiness>,
}

impl Handler for MetricsOnly {
    async fn handle(&self, req: http::Request<hyper::body::Incoming>) -> http::Response<s3s::Body> {
        match req.uri().path() {
            "/_tern/metrics" => crate::outer::metrics_response(&self.metrics),
            "/_tern/health" => self.readiness.response().await,
            _ => {
                let mut response = http::Response::new(s3s::Body::empty());
                *response.status_mut() = http::StatusCode::NOT_FOUND;
                response
            }
        }
    }
}

/// The region's IAM: the authority (the registry region) keeps the
/// directory; every other region follows it over HTTP.
async fn open_iam(
    deployment: &DeploymentConfig,
    (name, peer_http): (&str, &reqwest::Client),
    root: &RootCredentials,
    docs: Arc<dyn DocStore>,
    root_key: &tern_crypto::Key256,
) -> anyhow::Result<Iam> {
    let identity =
        RootIdentity { access_key_id: root.access_key_id.clone(), secret_access_key: root.secret_access_key.clone() };
    let authority = deployment.registry_region();
    if authority.name == name {
        return Iam::authority(&deployment.account_id, name, identity, docs, root_key)
            .await
            .map_err(|e| anyhow::anyhow!("opening IAM: {e}"));
    }
    let peer = PeerClient::new(peer_http, &authority.endpoint_url(), &authority.name, root);
    let authority = Arc::new(HttpIamAuthority { peer, region: name.to_owned() });
    Ok(Iam::follower(&deployment.account_id, name, identity, authority, root_key))
}

/// What a region closes once it has drained.
struct Stores {
    meta: Arc<dyn MetaStore>,
    audit: Arc<tern_audit::AuditLog>,
    /// KMS's deletions and rotations, stopped before the trail closes.
    maintaining: tokio::task::JoinHandle<()>,
    /// The lifecycle worker, stopped before the store closes.
    expiring: tokio::task::JoinHandle<()>,
}

/// Serves until `stop` changes, then drains, stops replication (releasing
/// its leases for whoever runs next), closes the audit file
/// with its digest and closes the store.
async fn serve(
    (listener, tls): (TcpListener, Option<tokio_rustls::TlsAcceptor>),
    outer: Arc<OuterLayer>,
    limits: Limits,
    stop: watch::Receiver<bool>,
    (stores, replicating): (Stores, tokio::task::JoinHandle<()>),
) -> anyhow::Result<()> {
    crate::listener::serve(listener, outer, limits, tls, (stop, DRAIN_TIMEOUT)).await;
    replicating.abort();
    let _ = replicating.await;
    // Other front-ends of the region take this one's unfinished tasks at once.
    if let Err(e) = stores.meta.release_leases().await {
        tracing::warn!(error = %e, "cannot release replication leases; they will run out");
    }
    stores.maintaining.abort();
    stores.expiring.abort();
    stores.audit.close().await;
    stores.meta.close().await;
    Ok(())
}
