//! `tern cse put|get|inspect`: client-side encryption from the command
//! line, in the formats of AWS's S3 Encryption Clients (`tern-cse`). The
//! endpoint, region and credentials come as the aws cli takes them: flags,
//! then `AWS_*` environment variables, then the shared config and
//! credentials files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tern_cse::{ClientConfig, CommitmentPolicy, EncryptionClient, KmsKeyring, ObjectRef, Suite};

/// Files at least this large get a progress bar.
const PROGRESS_FROM: u64 = 8 * 1024 * 1024;

#[derive(Args)]
pub struct Connection {
    /// Endpoint of S3 and KMS, e.g. `http://127.0.0.1:9100` [default: `AWS_ENDPOINT_URL`, then AWS].
    #[arg(long)]
    endpoint_url: Option<String>,
    /// The region of the bucket and of the KMS key used [default: `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, then the profile's].
    #[arg(long)]
    region: Option<String>,
    /// A profile of the shared AWS config and credentials files.
    #[arg(long)]
    profile: Option<String>,
}

#[derive(Args)]
pub struct Context {
    /// An encryption-context entry `key=value` (repeatable). Reading needs
    /// exactly the entries the object was written with.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = context_entry)]
    entries: Vec<(String, String)>,
}

fn context_entry(text: &str) -> Result<(String, String), String> {
    let (k, v) = text.split_once('=').ok_or_else(|| format!("{text}: expected KEY=VALUE"))?;
    Ok((k.to_owned(), v.to_owned()))
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    /// Key-committing AES-GCM (suite 115), what current AWS clients write.
    V3,
    /// AES-GCM without key commitment, for readers that predate V3.
    V2,
}

/// A commitment policy by its specification name, in either case and with
/// `-` or `_` (`require-encrypt-allow-decrypt`).
fn commitment_policy(text: &str) -> Result<CommitmentPolicy, String> {
    let wanted = text.to_ascii_uppercase().replace('-', "_");
    let all = [
        CommitmentPolicy::RequireEncryptRequireDecrypt,
        CommitmentPolicy::RequireEncryptAllowDecrypt,
        CommitmentPolicy::ForbidEncryptAllowDecrypt,
    ];
    all.into_iter().find(|p| p.name() == wanted).ok_or_else(|| {
        let names: Vec<String> = all.iter().map(|p| p.name().to_ascii_lowercase().replace('_', "-")).collect();
        format!("{text}: expected one of {}", names.join(", "))
    })
}

#[derive(Args)]
pub struct ReadPolicy {
    /// Which formats may be read: only key-committing ones by default.
    #[arg(long, value_parser = commitment_policy, default_value = "require-encrypt-require-decrypt")]
    commitment_policy: CommitmentPolicy,
    /// Also read legacy AES-CBC objects (V1), which nothing authenticates.
    #[arg(long)]
    legacy_unauthenticated_modes: bool,
    /// Also unwrap data keys of the legacy `kms` wrapping.
    #[arg(long)]
    legacy_wrapping_algorithms: bool,
    /// Never read `<key>.instruction`.
    #[arg(long)]
    no_instruction_file: bool,
}

#[derive(Subcommand)]
pub enum CseCommand {
    /// Encrypt FILE and upload it (V3 by default; multipart above 16 MiB, one GCM stream across parts).
    Put {
        /// The plaintext file, or `-` for standard input.
        file: PathBuf,
        /// Where to put it: `s3://BUCKET/KEY`.
        object: ObjectRef,
        /// The KMS key that wraps the data key: id, alias, or ARN (a
        /// multi-Region key's ARN from any region is used through its
        /// replica in this region).
        #[arg(long)]
        kms_key_id: String,
        #[command(flatten)]
        context: Context,
        #[arg(long, value_enum, default_value = "v3")]
        format: Format,
        /// Put the data-key entries in `<key>.instruction` instead of object metadata.
        #[arg(long)]
        instruction_file: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Download and decrypt into FILE. The plaintext appears only once it
    /// authenticates; a tampered object leaves nothing behind.
    Get {
        /// The object: `s3://BUCKET/KEY`.
        object: ObjectRef,
        /// Where the plaintext goes (replaced only once it authenticates), or
        /// `-` for standard output (objects up to 256 MiB, written once
        /// authenticated; larger ones need --delayed-authentication).
        file: PathBuf,
        #[command(flatten)]
        context: Context,
        /// Decrypt only with this key (id, alias or ARN; multi-Region aware).
        /// Without it, KMS finds the object's key in this region.
        #[arg(long)]
        kms_key_id: Option<String>,
        #[command(flatten)]
        policy: ReadPolicy,
        /// Decrypt only plaintext bytes START-END (inclusive) through AES-CTR.
        /// Ranged reads cannot be authenticated; needs --unauthenticated.
        #[arg(long, value_name = "START-END", value_parser = byte_range, requires = "unauthenticated")]
        range: Option<(u64, u64)>,
        /// Accept that a ranged read is not authenticated.
        #[arg(long)]
        unauthenticated: bool,
        /// With FILE `-`, stream the plaintext as it decrypts. It is
        /// authenticated only if the command succeeds: on a non-zero exit,
        /// discard what was written.
        #[arg(long)]
        delayed_authentication: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Show how an object is encrypted (format, algorithm, context,
    /// commitment) without decrypting it or calling KMS.
    Inspect {
        /// The object: `s3://BUCKET/KEY`.
        object: ObjectRef,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

fn byte_range(text: &str) -> Result<(u64, u64), String> {
    let parsed = text.split_once('-').and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    parsed.filter(|(a, b)| a <= b).ok_or_else(|| format!("{text}: expected START-END with START <= END"))
}

/// An HTTP client for the SDK that trusts only the CA certificates in the
/// file `bundle`, as the aws cli does with `AWS_CA_BUNDLE`.
pub(crate) fn trusting(bundle: &std::path::Path) -> anyhow::Result<aws_sdk_s3::config::SharedHttpClient> {
    let pem = std::fs::read(bundle).with_context(|| format!("cannot read the CA bundle {}", bundle.display()))?;
    tern_console::trusting(&pem)
}

/// S3 and KMS clients and the region, as the aws cli would configure them.
async fn connect(connection: &Connection) -> anyhow::Result<(aws_sdk_s3::Client, aws_sdk_kms::Client, String)> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(profile) = &connection.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &connection.region {
        loader = loader.region(aws_config::Region::new(region.clone()));
    }
    if let Some(endpoint) = &connection.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    if let Some(bundle) = std::env::var_os(tern_server::tls::CA_BUNDLE_ENV).filter(|b| !b.is_empty()) {
        loader = loader.http_client(trusting(&std::path::PathBuf::from(bundle))?);
    }
    let config = loader.load().await;
    let region = config.region().map(ToString::to_string).context("no region: pass --region or set AWS_REGION")?;
    // A custom endpoint (Tern on loopback) is addressed by path, as the aws cli does for IPs.
    let path_style = config.endpoint_url().is_some();
    let s3 =
        aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(path_style).build());
    Ok((s3, aws_sdk_kms::Client::new(&config), region))
}

/// A progress bar for one transfer, drawn once its total is known, and only
/// for large ones.
struct Progress {
    verb: &'static str,
    bar: std::sync::OnceLock<Option<ProgressBar>>,
}

impl Progress {
    fn new(verb: &'static str) -> Self {
        Self { verb, bar: std::sync::OnceLock::new() }
    }

    fn update(&self, done: u64, total: u64) {
        let bar = self.bar.get_or_init(|| {
            (total >= PROGRESS_FROM).then(|| {
                let template =
                    format!("{} {{bar:40}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}} eta {{eta}}", self.verb);
                let bar = ProgressBar::new(total);
                bar.set_style(ProgressStyle::with_template(&template).expect("the template is valid"));
                bar
            })
        });
        if let Some(bar) = bar {
            bar.set_position(done);
        }
    }

    fn finish(&self) {
        if let Some(Some(bar)) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

pub async fn run(command: CseCommand) -> anyhow::Result<()> {
    match command {
        CseCommand::Put { file, object, kms_key_id, context, format, instruction_file, connection } => {
            let (s3, kms, region) = connect(&connection).await?;
            let mut config = ClientConfig::default();
            if matches!(format, Format::V2) {
                config.suite = Suite::AesGcm;
                config.commitment_policy = CommitmentPolicy::ForbidEncryptAllowDecrypt;
            }
            config.instruction_files.write = instruction_file;
            let client = EncryptionClient::new(s3, KmsKeyring::new(kms, &kms_key_id, &region), config)?;
            put(&client, &file, &object, &context.entries).await
        }
        CseCommand::Get {
            object,
            file,
            context,
            kms_key_id,
            policy,
            range,
            delayed_authentication,
            connection,
            ..
        } => {
            let (s3, kms, region) = connect(&connection).await?;
            let keyring = match kms_key_id {
                Some(id) => KmsKeyring::new(kms, &id, &region),
                None => KmsKeyring::discovery(kms, &region),
            };
            let mut config = read_config(&policy);
            // `--range` requires `--unauthenticated`: the user said so.
            config.legacy.unauthenticated_ranges = range.is_some();
            let client = EncryptionClient::new(s3, keyring, config)?;
            let to_stdout = file.as_os_str() == "-";
            match range {
                Some((start, end)) => {
                    let bytes = client.get_range_unauthenticated(&object, start..=end, &context.entries).await?;
                    write_out(&file, &bytes).await?;
                    eprintln!("{object} bytes {start}-{end} → {} (unauthenticated)", file.display());
                    Ok(())
                }
                None if to_stdout => get_to_stdout(&client, &object, &context.entries, delayed_authentication).await,
                None => get(&client, &object, &file, &context.entries).await,
            }
        }
        CseCommand::Inspect { object, json, connection } => {
            let (s3, kms, region) = connect(&connection).await?;
            let client = EncryptionClient::new(s3, KmsKeyring::discovery(kms, &region), ClientConfig::default())?;
            let seen = client.inspect(&object).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&seen)?);
            } else {
                print_inspection(&seen);
            }
            Ok(())
        }
    }
}

fn read_config(policy: &ReadPolicy) -> ClientConfig {
    let mut config = ClientConfig { commitment_policy: policy.commitment_policy, ..ClientConfig::default() };
    if !config.commitment_policy.allows_writing(config.suite) {
        config.suite = Suite::AesGcm;
    }
    config.legacy.unauthenticated_modes = policy.legacy_unauthenticated_modes;
    config.legacy.wrapping_algorithms = policy.legacy_wrapping_algorithms;
    config.instruction_files.read = !policy.no_instruction_file;
    config
}

async fn put(
    client: &EncryptionClient,
    file: &Path,
    object: &ObjectRef,
    context: &[(String, String)],
) -> anyhow::Result<()> {
    let progress = Progress::new("encrypting");
    let report = |d, t| progress.update(d, t);
    let written = if file.as_os_str() == "-" {
        client.put(object, tokio::io::stdin(), None, context, &report).await
    } else {
        let source = tokio::fs::File::open(file).await.with_context(|| format!("opening {}", file.display()))?;
        let len = source.metadata().await?.len();
        client.put(object, tokio::io::BufReader::new(source), Some(len), context, &report).await
    };
    progress.finish();
    let written = written?;
    let version = written.version_id.map(|v| format!(" (version {v})")).unwrap_or_default();
    eprintln!("{} → {object}{version}, {} bytes encrypted client-side", file.display(), written.bytes);
    Ok(())
}

async fn get(
    client: &EncryptionClient,
    object: &ObjectRef,
    file: &Path,
    context: &[(String, String)],
) -> anyhow::Result<()> {
    let progress = Progress::new("decrypting");
    let len = client.get_to_file(object, file, context, &|d, t| progress.update(d, t)).await;
    progress.finish();
    let len = len?;
    eprintln!("{object} → {}, {len} bytes authenticated and decrypted", file.display());
    Ok(())
}

/// Writes `bytes` to `file`, or to standard output for `-`.
async fn write_out(file: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt as _;
    if file.as_os_str() == "-" {
        let mut stdout = tokio::io::stdout();
        stdout.write_all(bytes).await?;
        return Ok(stdout.flush().await?);
    }
    tokio::fs::write(file, bytes).await.with_context(|| format!("writing {}", file.display()))
}

/// Objects up to this size go to standard output whole, once authenticated.
const STDOUT_WHOLE_MAX: u64 = 256 << 20;

async fn get_to_stdout(
    client: &EncryptionClient,
    object: &ObjectRef,
    context: &[(String, String)],
    delayed_authentication: bool,
) -> anyhow::Result<()> {
    if delayed_authentication {
        let mut stdout = tokio::io::stdout();
        let streamed = client.get_with_delayed_authentication(object, &mut stdout, context, &|_, _| {}).await;
        return streamed.map(drop).context("what was written is unauthenticated: discard it");
    }
    let whole = client.get_bytes_at_most(object, context, STDOUT_WHOLE_MAX).await.map_err(|e| match e {
        too_large @ tern_cse::CseError::TooLarge { .. } => anyhow::anyhow!(
            "{too_large}: decrypt it to a file, or pass --delayed-authentication to stream it to standard output"
        ),
        other => other.into(),
    })?;
    write_out(Path::new("-"), &whole).await
}

fn print_inspection(seen: &tern_cse::Inspection) {
    println!("object:          {}", seen.object);
    println!("format:          {}", seen.format);
    println!("algorithm:       {}", seen.algorithm);
    println!("key wrapping:    {}", seen.key_wrap);
    println!("key commitment:  {}", if seen.key_commitment { "yes" } else { "no" });
    println!("instruction file: {}", if seen.instruction_file { "yes" } else { "no" });
    let context: Vec<String> = seen.encryption_context.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("context:         {}", context.join(", "));
    match seen.plaintext_bytes {
        Some(n) => println!("size:            {n} bytes of plaintext ({} stored)", seen.stored_bytes),
        None => println!("size:            {} bytes stored", seen.stored_bytes),
    }
}
