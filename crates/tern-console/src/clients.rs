//! The console's clients of the deployment: S3 and KMS of every region
//! through the AWS SDK, and Tern's replication routes, all signing as the
//! signed-in user. Nothing is read from the server's environment or
//! profile: only the deployment file says where regions are.

use std::time::Duration;

use anyhow::Context as _;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider, SharedHttpClient};
use tern_server::RootCredentials;
use tern_server::peer::PeerClient;

/// How long one call of a page may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

struct RegionEndpoint {
    name: String,
    endpoint: String,
}

/// What every session's clients share: where the regions are, and the
/// HTTP clients that trust the deployment's CA.
pub struct ClientFactory {
    regions: Vec<RegionEndpoint>,
    this_region: String,
    sdk_http: Option<SharedHttpClient>,
    admin_http: reqwest::Client,
    /// For health, which needs no signature.
    pub plain_http: reqwest::Client,
    voucher: std::sync::Arc<tern_server::Voucher>,
}

/// One region, as the signed-in user.
pub struct RegionClients {
    pub name: String,
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
    /// Tern's own routes (`/_tern/replication/…`), signed as the user.
    pub admin: PeerClient,
}

/// Every region, as the signed-in user; this region first.
pub struct Clients {
    pub regions: Vec<RegionClients>,
}

impl Clients {
    pub fn region(&self, name: &str) -> Option<&RegionClients> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// This region's clients.
    pub fn here(&self) -> &RegionClients {
        &self.regions[0]
    }
}

impl ClientFactory {
    pub fn new(
        deployment: &tern_core::DeploymentConfig,
        this_region: &str,
        voucher: std::sync::Arc<tern_server::Voucher>,
    ) -> anyhow::Result<Self> {
        let mut regions: Vec<RegionEndpoint> = deployment
            .regions
            .iter()
            .map(|r| RegionEndpoint { name: r.name.clone(), endpoint: r.endpoint_url() })
            .collect();
        regions.sort_by_key(|r| r.name != this_region);
        let sdk_http = match &deployment.tls {
            Some(tls) => {
                Some(trusting(&std::fs::read(&tls.ca).with_context(|| format!("reading {}", tls.ca.display()))?)?)
            }
            None => None,
        };
        Ok(Self {
            regions,
            this_region: this_region.to_owned(),
            sdk_http,
            admin_http: PeerClient::http(deployment.tls.as_ref())?,
            plain_http: PeerClient::http(deployment.tls.as_ref())?,
            voucher,
        })
    }

    /// Every region's endpoint, this region first.
    pub fn endpoints(&self) -> impl Iterator<Item = (&str, &str)> {
        self.regions.iter().map(|r| (r.name.as_str(), r.endpoint.as_str()))
    }

    /// The ARN of whoever holds this key pair, as this region's STS says;
    /// the refusal's code and message if it does not know them.
    pub async fn identify(&self, access_key_id: &str, secret: &str) -> Result<String, String> {
        let here = &self.regions[0];
        let config = self.sdk_config(here, access_key_id, secret);
        let sts = aws_sdk_sts::config::Builder::from(&config).interceptor(self.vouching(here)).build();
        let sts = aws_sdk_sts::Client::from_conf(sts);
        match sts.get_caller_identity().send().await {
            Ok(me) => me.arn().map(str::to_owned).ok_or_else(|| "STS named no identity".to_owned()),
            Err(e) => Err(crate::pages::sdk_error(&e)),
        }
    }

    pub fn for_user(&self, access_key_id: &str, secret: &str) -> Clients {
        let user =
            RootCredentials { access_key_id: access_key_id.to_owned(), secret_access_key: secret.to_owned().into() };
        let regions = self
            .regions
            .iter()
            .map(|r| {
                let config = self.sdk_config(r, access_key_id, secret);
                let s3 =
                    aws_sdk_s3::config::Builder::from(&config).force_path_style(true).interceptor(self.vouching(r));
                let kms = aws_sdk_kms::config::Builder::from(&config).interceptor(self.vouching(r));
                let admin = PeerClient::new(&self.admin_http, &r.endpoint, &r.name, &user);
                RegionClients {
                    name: r.name.clone(),
                    s3: aws_sdk_s3::Client::from_conf(s3.build()),
                    kms: aws_sdk_kms::Client::from_conf(kms.build()),
                    admin: admin.after_signing(crate::origin::after_signing(std::sync::Arc::clone(&self.voucher))),
                }
            })
            .collect();
        debug_assert_eq!(self.regions[0].name, self.this_region);
        Clients { regions }
    }

    fn vouching(&self, region: &RegionEndpoint) -> crate::origin::Vouching {
        crate::origin::Vouching { voucher: std::sync::Arc::clone(&self.voucher), region: region.name.clone() }
    }

    fn sdk_config(&self, region: &RegionEndpoint, access_key_id: &str, secret: &str) -> aws_config::SdkConfig {
        let credentials = Credentials::new(access_key_id, secret, None, None, "tern-console");
        let timeouts = aws_config::timeout::TimeoutConfig::builder().operation_timeout(CALL_TIMEOUT).build();
        let mut config = aws_config::SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region.name.clone()))
            .endpoint_url(&region.endpoint)
            .credentials_provider(SharedCredentialsProvider::new(credentials))
            .timeout_config(timeouts);
        if let Some(http) = &self.sdk_http {
            config = config.http_client(http.clone());
        }
        config.build()
    }
}

/// An HTTP client for the AWS SDK that trusts only the CA certificates in
/// `pem`, as the aws cli does with `AWS_CA_BUNDLE` (the Rust SDK has no
/// such setting).
pub fn trusting(pem: &[u8]) -> anyhow::Result<SharedHttpClient> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
    let context = TlsContext::builder().with_trust_store(TrustStore::empty().with_pem_certificate(pem)).build()?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}
