//! `tern demo`: the three encryption models of cross-region replication,
//! built on a running deployment in one command. Each gets its own keys,
//! buckets, replication rule and least-privilege role; one object per
//! model is written, replicated, and then looked at in both regions: how
//! it is encrypted there, under which key, whether replication
//! re-encrypted it, whether S3 ever held its plaintext, and whether a
//! reader there can decrypt it (tried, not assumed). Running it again
//! reuses what exists; `--cleanup` removes it all.

mod cleanup;
mod model;
mod observe;
mod setup;
mod table;

use anyhow::Context as _;
use clap::Args;

use model::Regions;

#[derive(Args)]
pub struct DemoArgs {
    /// The endpoint of the region objects are written in.
    #[arg(long, default_value = "http://127.0.0.1:9100")]
    endpoint_us: String,
    /// The endpoint of the region they replicate to.
    #[arg(long, default_value = "http://127.0.0.1:9101")]
    endpoint_eu: String,
    #[arg(long, default_value = "us-east-1")]
    region_us: String,
    #[arg(long, default_value = "eu-west-1")]
    region_eu: String,
    /// Remove everything the demo made (keys are scheduled for deletion
    /// after KMS's shortest window, seven days).
    #[arg(long)]
    cleanup: bool,
    /// The table as JSON lines, one per model and region.
    #[arg(long)]
    json: bool,
}

/// S3 and KMS of one region, as one identity.
#[derive(Clone)]
pub struct RegionClients {
    pub name: String,
    pub s3: aws_sdk_s3::Client,
    pub kms: aws_sdk_kms::Client,
}

/// Both regions, and IAM (global: any endpoint answers it).
pub struct Deployment {
    pub source: RegionClients,
    pub destination: RegionClients,
    pub iam: aws_sdk_iam::Client,
}

impl Deployment {
    pub fn regions(&self) -> Regions {
        Regions { source: self.source.name.clone(), destination: self.destination.name.clone() }
    }

    pub fn both(&self) -> [&RegionClients; 2] {
        [&self.source, &self.destination]
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let root = root_credentials()?;
    let source_config = client_config(&args.endpoint_us, &args.region_us, root.clone()).await?;
    let destination_config = client_config(&args.endpoint_eu, &args.region_eu, root).await?;
    let deployment = Deployment {
        source: region_clients(&source_config, &args.region_us),
        destination: region_clients(&destination_config, &args.region_eu),
        iam: aws_sdk_iam::Client::new(&source_config),
    };
    if args.cleanup {
        return cleanup::run(&deployment).await;
    }
    let started = std::time::Instant::now();
    let built = setup::build(&deployment).await?;
    let readers = [
        region_clients(
            &client_config(&args.endpoint_us, &args.region_us, built.reader.clone()).await?,
            &args.region_us,
        ),
        region_clients(
            &client_config(&args.endpoint_eu, &args.region_eu, built.reader.clone()).await?,
            &args.region_eu,
        ),
    ];
    let rows = observe::all(&deployment, &built, &readers).await?;
    if args.json {
        for row in &rows {
            println!("{}", serde_json::to_string(row)?);
        }
    } else {
        print!("{}", table::render(&rows));
        print!("{}", table::permissions(&deployment.regions(), &built));
        println!(
            "\nbuilt, replicated and read back in {:.1} s; `tern demo --cleanup` removes it all",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

/// The deployment's root credentials: from the environment, as the aws
/// cli takes them, else those `tern up` saved under `./tern-data`.
fn root_credentials() -> anyhow::Result<aws_sdk_s3::config::Credentials> {
    if let (Ok(id), Ok(secret)) = (std::env::var("AWS_ACCESS_KEY_ID"), std::env::var("AWS_SECRET_ACCESS_KEY")) {
        return Ok(aws_sdk_s3::config::Credentials::new(id, secret, None, None, "environment"));
    }
    let root = tern_server::RootCredentials::load_existing(std::path::Path::new("tern-data"))?
        .context("no AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, and no ./tern-data/root-credentials")?;
    Ok(aws_sdk_s3::config::Credentials::new(
        root.access_key_id,
        root.secret_access_key.as_str(),
        None,
        None,
        "tern-data/root-credentials",
    ))
}

async fn client_config(
    endpoint: &str,
    region: &str,
    credentials: aws_sdk_s3::config::Credentials,
) -> anyhow::Result<aws_config::SdkConfig> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials);
    if let Some(bundle) = std::env::var_os(tern_server::tls::CA_BUNDLE_ENV).filter(|b| !b.is_empty()) {
        loader = loader.http_client(crate::cse_cli::trusting(std::path::Path::new(&bundle))?);
    }
    Ok(loader.load().await)
}

fn region_clients(config: &aws_config::SdkConfig, region: &str) -> RegionClients {
    let s3 = aws_sdk_s3::config::Builder::from(config).force_path_style(true).build();
    RegionClients {
        name: region.to_owned(),
        s3: aws_sdk_s3::Client::from_conf(s3),
        kms: aws_sdk_kms::Client::new(config),
    }
}

/// An SDK error as one line: what failed, and AWS's code and message.
fn failed<E>(what: &str) -> impl FnOnce(E) -> anyhow::Error + '_
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |e| anyhow::anyhow!("{what}: {}", aws_sdk_s3::error::DisplayErrorContext(&e))
}
