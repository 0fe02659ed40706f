//! Test harness: real `tern` processes on free loopback ports, and AWS SDK
//! clients pointed at them. Nothing of Tern is mocked here.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::process::{Child, Command};

pub mod raw;
pub use raw::{Answer, Creds};

pub const ACCESS_KEY: &str = "AKIATESTKIT000000000";
pub const SECRET_KEY: &str = "testkit-secret-key-0000000000000000000000";

/// A deployment of regions in its own data dir: one `tern up` process, or
/// (with [`Deployment::start_split`]) one `tern server` process per region,
/// so a region can go down while the others serve, or (with
/// [`Deployment::start_shared`]) several per region.
///
/// Wherever a region's name is taken, `"<region>#<n>"` names its n-th
/// front-end (n ≥ 2) of a shared deployment: clients sign for the region
/// and send to that front-end.
pub struct Deployment {
    binary: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Per-region processes of a split deployment.
    split: std::collections::BTreeMap<String, Child>,
    regions: Vec<(String, SocketAddr)>,
    /// Started with `tern up --tls`: HTTPS, clients trusting its local CA.
    tls: bool,
}

/// A PostgreSQL cluster of a test's own (`scripts/pg-cluster`), which the
/// test may stop (as a crash would) and start again; removed when dropped.
pub struct PgCluster {
    script: PathBuf,
    /// Holds the cluster's directory, `cluster`.
    parent: tempfile::TempDir,
}

impl PgCluster {
    /// A new running cluster, or `None` outside `scripts/with-postgres`
    /// (which says where to find `scripts/pg-cluster`).
    pub fn start() -> anyhow::Result<Option<Self>> {
        let Some(script) = tern_store::contract::postgres_setting("TERN_TEST_PG_CLUSTER") else { return Ok(None) };
        let parent = tempfile::tempdir()?;
        // The cluster's own directory (0700, its owner's) lies within.
        std::fs::set_permissions(parent.path(), std::os::unix::fs::PermissionsExt::from_mode(0o711))?;
        let cluster = Self { script: PathBuf::from(script), parent };
        cluster.run("init")?;
        Ok(Some(cluster))
    }

    /// The URL of its `postgres` database, as user `tern`.
    pub fn admin_url(&self) -> anyhow::Result<String> {
        let out = std::process::Command::new(&self.script).arg("url").arg(self.dir()).output()?;
        Ok(String::from_utf8(out.stdout)?.trim().to_owned())
    }

    /// Stops the server at once (`-m immediate`: no checkpoint, as a crash).
    pub fn crash(&self) -> anyhow::Result<()> {
        self.run("stop")
    }

    /// Starts the server again, on the same data.
    pub fn restart(&self) -> anyhow::Result<()> {
        self.run("start")
    }

    fn dir(&self) -> PathBuf {
        self.parent.path().join("cluster")
    }

    fn run(&self, command: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new(&self.script).arg(command).arg(self.dir()).status()?;
        anyhow::ensure!(status.success(), "scripts/pg-cluster {command} failed");
        Ok(())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.dir().join("data/postmaster.pid").exists() {
            let _ = self.run("stop");
        }
    }
}

/// s3s-fs, an S3 server of another make than Tern, serving a temporary
/// directory on a free port until dropped; `None` where `scripts/test`
/// has not installed it (`TERN_TEST_S3S_FS`).
pub struct S3sFs {
    pub endpoint: String,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl S3sFs {
    pub const ACCESS_KEY: &'static str = "S3SFSTESTKEY";
    pub const SECRET_KEY: &'static str = "s3s-fs-test-secret";

    pub async fn start() -> anyhow::Result<Option<Self>> {
        let Some(binary) = std::env::var_os("TERN_TEST_S3S_FS") else {
            eprintln!("skipped: no s3s-fs here (scripts/test installs it)");
            return Ok(None);
        };
        let dir = tempfile::tempdir()?;
        let address = free_port()?;
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &address.port().to_string()])
            .args(["--access-key", Self::ACCESS_KEY, "--secret-key", Self::SECRET_KEY])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting s3s-fs")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(address).await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "s3s-fs never listened on {address}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Some(Self { endpoint: format!("http://{address}"), _child: child, _dir: dir }))
    }
}

/// The region a region or front-end name (`"<region>#<n>"`) signs for.
fn signing_region(name: &str) -> &str {
    name.split_once('#').map_or(name, |(region, _)| region)
}

fn free_port() -> anyhow::Result<SocketAddr> {
    Ok(free_ports(1, &[])?.remove(0))
}

/// `count` free loopback ports, none of them in `taken`. Every listener is
/// held until all are chosen: a port closed at once may be handed out
/// again by the next bind, and two regions would share it.
fn free_ports(count: usize, taken: &[SocketAddr]) -> anyhow::Result<Vec<SocketAddr>> {
    let (mut held, mut refused) = (Vec::with_capacity(count), Vec::new());
    while held.len() < count {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        // A taken port is held too, until the end, so that it is not offered again.
        let pile = if taken.contains(&listener.local_addr()?) { &mut refused } else { &mut held };
        pile.push(listener);
    }
    held.iter().map(|listener| Ok(listener.local_addr()?)).collect()
}

impl Deployment {
    /// Starts `binary up` with one region per name, each on a free port.
    pub async fn start(binary: &Path, region_names: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(binary, region_names, "").await
    }

    /// As [`Self::start`], with `settings` (TOML) at the top of the deployment file.
    pub async fn start_with(binary: &Path, region_names: &[&str], settings: &str) -> anyhow::Result<Self> {
        let mut deployment = Self::configure(binary, region_names, settings)?;
        deployment.spawn().await?;
        Ok(deployment)
    }

    /// Starts `binary up --tls`: every region serves HTTPS only, with the
    /// local CA and certificates `tern` makes; the clients here trust it.
    pub async fn start_tls(binary: &Path, region_names: &[&str]) -> anyhow::Result<Self> {
        Self::start_tls_with(binary, region_names, "").await
    }

    /// As [`Self::start_tls`], with `settings` (TOML) at the top of the deployment file.
    pub async fn start_tls_with(binary: &Path, region_names: &[&str], settings: &str) -> anyhow::Result<Self> {
        let mut deployment = Self::configure(binary, region_names, settings)?;
        deployment.tls = true;
        deployment.child = Some(deployment.command(&["up", "--tls"])?);
        for (name, _) in deployment.regions.clone() {
            deployment.wait_healthy(&name).await?;
        }
        Ok(deployment)
    }

    /// Starts one `binary server` process per region.
    pub async fn start_split(binary: &Path, region_names: &[&str]) -> anyhow::Result<Self> {
        Self::start_split_with(binary, region_names, &[]).await
    }

    /// As [`Self::start_split`], with extra settings (TOML lines) for some
    /// regions' `[[region]]` entries, such as an `endpoint` through a proxy.
    pub async fn start_split_with(
        binary: &Path,
        region_names: &[&str],
        region_settings: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::split(binary, region_names, region_settings, false).await
    }

    async fn split(
        binary: &Path,
        region_names: &[&str],
        region_settings: &[(&str, &str)],
        tls: bool,
    ) -> anyhow::Result<Self> {
        let mut deployment = Self::configure_regions(binary, region_names, "", region_settings)?;
        deployment.tls = tls;
        for name in region_names {
            deployment.start_region(name).await?;
        }
        Ok(deployment)
    }

    /// Regions served by several front-ends each (`("us-east-1", 2)`), on a
    /// fresh PostgreSQL database and a shared blob directory per region;
    /// `None` where no PostgreSQL is at hand (see
    /// [`tern_store::contract::fresh_postgres`]).
    pub async fn start_shared(binary: &Path, layout: &[(&str, usize)]) -> anyhow::Result<Option<Self>> {
        Self::start_shared_with(binary, layout, "").await
    }

    /// As [`Self::start_shared`], with `top` (TOML) at the top of the deployment file.
    pub async fn start_shared_with(binary: &Path, layout: &[(&str, usize)], top: &str) -> anyhow::Result<Option<Self>> {
        let Some(admin) = tern_store::contract::postgres_setting("TERN_TEST_POSTGRES_URL") else { return Ok(None) };
        Self::start_shared_on(binary, layout, top, &admin.to_string_lossy()).await.map(Some)
    }

    /// As [`Self::start_shared_with`], on the cluster whose `postgres`
    /// database `admin` names (a [`PgCluster`] of the test's own).
    pub async fn start_shared_on(
        binary: &Path,
        layout: &[(&str, usize)],
        top: &str,
        admin: &str,
    ) -> anyhow::Result<Self> {
        let in_files = |region: &str| format!("blobs = \"file://{{dir}}/blobs-{region}\"");
        Self::start_shared_blobs(binary, layout, top, admin, &in_files).await
    }

    /// As [`Self::start_shared_on`], each region's blobs where `blobs`
    /// (its TOML lines, last in the region's table) says.
    pub async fn start_shared_blobs(
        binary: &Path,
        layout: &[(&str, usize)],
        top: &str,
        admin: &str,
        blobs: &dyn Fn(&str) -> String,
    ) -> anyhow::Result<Self> {
        let mut settings = Vec::new();
        for (region, _) in layout {
            let url = tern_store::contract::fresh_database(admin).await;
            settings.push((*region, format!("metadata = \"{url}\"\n{}", blobs(region))));
        }
        let settings: Vec<(&str, &str)> = settings.iter().map(|(r, s)| (*r, s.as_str())).collect();
        let names: Vec<&str> = layout.iter().map(|(region, _)| *region).collect();
        let mut deployment = Self::configure_regions(binary, &names, top, &settings)?;
        for (region, front_ends) in layout {
            deployment.start_region(region).await?;
            for n in 2..=*front_ends {
                let name = format!("{region}#{n}");
                let taken: Vec<SocketAddr> = deployment.regions.iter().map(|(_, address)| *address).collect();
                deployment.regions.push((name.clone(), free_ports(1, &taken)?.remove(0)));
                deployment.start_region(&name).await?;
            }
        }
        Ok(deployment)
    }

    /// Stops one region of a split deployment (SIGKILL); the others keep serving.
    pub async fn stop_region(&mut self, name: &str) -> anyhow::Result<()> {
        let mut child = self.split.remove(name).context("the region is not running on its own")?;
        child.start_kill()?;
        child.wait().await?;
        Ok(())
    }

    /// As [`Self::start_split_with`], every region serving HTTPS only
    /// (`tern server --tls`), the clients here trusting its local CA.
    pub async fn start_split_tls_with(
        binary: &Path,
        region_names: &[&str],
        region_settings: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::split(binary, region_names, region_settings, true).await
    }

    /// The address `region` listens on (its endpoint may name a proxy).
    #[must_use]
    pub fn listen_address(&self, region: &str) -> SocketAddr {
        self.regions.iter().find(|(n, _)| n == region).expect("region is part of the deployment").1
    }

    /// Starts one region (or front-end) of a split deployment (again).
    pub async fn start_region(&mut self, name: &str) -> anyhow::Result<()> {
        let tls: &[&str] = if self.tls { &["--tls"] } else { &[] };
        let listen = self.listen_address(name).to_string();
        let front_end: &[&str] = if name.contains('#') { &["--listen", &listen] } else { &[] };
        let child = self.command(&[&["server", "--region", signing_region(name)], front_end, tls].concat())?;
        self.split.insert(name.to_owned(), child);
        self.wait_healthy(name).await
    }

    fn configure(binary: &Path, region_names: &[&str], settings: &str) -> anyhow::Result<Self> {
        Self::configure_regions(binary, region_names, settings, &[])
    }

    fn configure_regions(
        binary: &Path,
        region_names: &[&str],
        settings: &str,
        region_settings: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let addresses = free_ports(region_names.len(), &[])?;
        let regions: Vec<(String, SocketAddr)> =
            region_names.iter().map(|name| (*name).to_owned()).zip(addresses).collect();
        let mut config = format!("data_dir = \"{}\"\n{settings}\n", dir.path().join("data").display());
        for (name, addr) in &regions {
            writeln!(config, "[[region]]\nname = \"{name}\"\nlisten = \"{addr}\"")?;
            for (_, extra) in region_settings.iter().filter(|(region, _)| region == name) {
                writeln!(config, "{}", extra.replace("{dir}", &dir.path().display().to_string()))?;
            }
        }
        std::fs::write(dir.path().join("tern.toml"), config)?;
        let split = std::collections::BTreeMap::new();
        Ok(Self { binary: binary.to_owned(), dir, child: None, split, regions, tls: false })
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        self.child = Some(self.command(&["up"])?);
        for (name, _) in self.regions.clone() {
            self.wait_healthy(&name).await?;
        }
        Ok(())
    }

    /// Runs `tern <args> --config <this deployment's file>`, logging to its log.
    fn command(&self, args: &[&str]) -> anyhow::Result<Child> {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.path().join("tern.log"))?;
        Command::new(&self.binary)
            .arg("--exit-on-stdin-close")
            .args(args)
            .arg("--config")
            .arg(self.dir.path().join("tern.toml"))
            .env("TERN_ROOT_ACCESS_KEY_ID", ACCESS_KEY)
            .env("TERN_ROOT_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::piped())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", self.binary.display()))
    }

    async fn wait_healthy(&mut self, region: &str) -> anyhow::Result<()> {
        let url = format!("{}/_tern/health", self.endpoint(region));
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            // With TLS the CA exists once tern has started; until then, no client.
            let healthy = match self.http() {
                Ok(http) => http.get(&url).send().await.is_ok_and(|r| r.status().is_success()),
                Err(_) => false,
            };
            if healthy {
                return Ok(());
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                bail!("tern exited with {status}; log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("region {region} did not become healthy; log:\n{}", self.log())
    }

    /// The server's combined output so far.
    #[must_use]
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tern.log")).unwrap_or_default()
    }

    /// Adds `lines` (TOML) to `region`'s `[[region]]` table of the
    /// deployment file, for the processes started next.
    pub fn add_region_settings(&self, region: &str, lines: &str) -> anyhow::Result<()> {
        let path = self.config_path();
        let text = std::fs::read_to_string(&path)?;
        let table = format!("name = \"{region}\"\nlisten = \"{}\"", self.listen_address(region));
        anyhow::ensure!(text.contains(&table), "no [[region]] {region} in {}", path.display());
        std::fs::write(&path, text.replacen(&table, &format!("{table}\n{lines}"), 1))?;
        Ok(())
    }

    /// The deployment file the processes were started with.
    #[must_use]
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("tern.toml")
    }

    /// Root of all regions' state.
    #[must_use]
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    #[must_use]
    pub fn endpoint(&self, region: &str) -> String {
        let (_, addr) = self.regions.iter().find(|(n, _)| n == region).expect("region is part of the deployment");
        format!("{}://{addr}", if self.tls { "https" } else { "http" })
    }

    /// Sends SIGHUP to the `tern up` process (it reloads its TLS certificates).
    pub fn hang_up(&self) -> anyhow::Result<()> {
        let pid = self.child.as_ref().and_then(Child::id).context("no tern up process")?;
        let status = std::process::Command::new("kill").args(["-HUP", &pid.to_string()]).status()?;
        anyhow::ensure!(status.success(), "kill -HUP {pid} failed");
        Ok(())
    }

    /// The CA a `--tls` deployment's certificates chain to.
    #[must_use]
    pub fn ca(&self) -> PathBuf {
        self.data_dir().join("tls").join("ca.pem")
    }

    /// An HTTP client for this deployment (trusting only its CA, with TLS).
    pub fn http(&self) -> anyhow::Result<reqwest::Client> {
        let builder = reqwest::Client::builder();
        if !self.tls {
            return Ok(builder.build()?);
        }
        let ca = reqwest::Certificate::from_pem(&std::fs::read(self.ca())?)?;
        Ok(builder.tls_certs_only([ca]).build()?)
    }

    /// The SDKs' HTTP client for this deployment: with TLS, one that trusts
    /// only its CA, as `AWS_CA_BUNDLE` makes the aws cli do.
    fn sdk_http(&self) -> Option<aws_sdk_s3::config::SharedHttpClient> {
        use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
        let pem = std::fs::read(self.ca()).ok().filter(|_| self.tls)?;
        let context = TlsContext::builder().with_trust_store(TrustStore::empty().with_pem_certificate(pem)).build();
        Some(
            aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
                .tls_context(context.expect("a CA bundle tern wrote"))
                .build_https(),
        )
    }

    /// An aws-sdk-s3 client for `region`, configured as a user would.
    #[must_use]
    pub fn s3(&self, region: &str) -> aws_sdk_s3::Client {
        self.s3_as(&self.root(), region)
    }

    /// An aws-sdk-s3 client for `region` signing as `creds`.
    #[must_use]
    pub fn s3_as(&self, creds: &Creds, region: &str) -> aws_sdk_s3::Client {
        let client = s3_client(&self.endpoint(region), signing_region(region), &creds.access_key, &creds.secret);
        match self.sdk_http() {
            Some(http) => aws_sdk_s3::Client::from_conf(client.config().to_builder().http_client(http).build()),
            None => client,
        }
    }

    /// An aws-sdk-kms client for `region`.
    #[must_use]
    pub fn kms(&self, region: &str) -> aws_sdk_kms::Client {
        let credentials = aws_credential_types::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "tern-testkit");
        let mut config = aws_sdk_kms::Config::builder()
            .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
            .region(aws_sdk_kms::config::Region::new(signing_region(region).to_owned()))
            .endpoint_url(self.endpoint(region))
            .credentials_provider(credentials);
        config.set_http_client(self.sdk_http());
        let config = config.build();
        aws_sdk_kms::Client::from_conf(config)
    }

    /// Calls the IAM query API of `region` as the root (aws-sdk-iam would be
    /// one more large dependency for a handful of calls); returns the body.
    pub async fn iam_call(&self, region: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        self.signed(region, "iam", "POST", "/", &headers, form(params)).await
    }

    /// Creates `name`, a role the S3 service may assume; its ARN.
    pub async fn s3_service_role(&self, region: &str, name: &str) -> anyhow::Result<String> {
        let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
        let create = [
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", trust),
        ];
        self.iam_call(region, &create).await?;
        Ok(format!("arn:aws:iam::000000000000:role/{name}"))
    }

    /// Creates a role S3 may assume, allowed `actions` (a JSON list) on
    /// every resource; its ARN.
    pub async fn replication_role(&self, region: &str, name: &str, actions: &str) -> anyhow::Result<String> {
        let arn = self.s3_service_role(region, name).await?;
        self.allow_role(region, name, actions).await?;
        Ok(arn)
    }

    /// Sets the role's one inline policy: `actions` allowed on every resource.
    pub async fn allow_role(&self, region: &str, role: &str, actions: &str) -> anyhow::Result<()> {
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{actions},"Resource":"*"}}]}}"#
        );
        let put = [
            ("Action", "PutRolePolicy"),
            ("Version", "2010-05-08"),
            ("RoleName", role),
            ("PolicyName", "replication"),
            ("PolicyDocument", &policy),
        ];
        self.iam_call(region, &put).await?;
        Ok(())
    }

    /// Calls Tern's admin API (`/_tern/…`) of `region` as the root.
    pub async fn admin_call(&self, region: &str, method: &str, path: &str) -> anyhow::Result<String> {
        self.admin_call_with(region, method, path, &[]).await
    }

    /// Calls a `/_tern/…` route of `region` as the root, with `headers`.
    pub async fn admin_call_with(
        &self,
        region: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        self.signed(region, "s3", method, path, headers, String::new()).await
    }

    /// A root-signed request to `region`; the body of a 2xx answer.
    async fn signed(
        &self,
        region: &str,
        service: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: String,
    ) -> anyhow::Result<String> {
        let answer = self.call_as(&self.root(), region, service, (method, path), headers, body.into_bytes()).await?;
        anyhow::ensure!((200..300).contains(&answer.status), "{service} answered {}: {}", answer.status, answer.text());
        Ok(answer.text())
    }

    /// The deployment's root credentials.
    #[must_use]
    pub fn root(&self) -> Creds {
        Creds::new(ACCESS_KEY, SECRET_KEY)
    }

    /// A request to `path` of `region` signed for `service` as `creds`, which
    /// the caller may alter before sending it with [`raw::send`].
    pub fn request_as(
        &self,
        creds: &Creds,
        region: &str,
        service: &str,
        (method, path): (&str, &str),
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<http::Request<Vec<u8>>> {
        let url = format!("{}{path}", self.endpoint(region));
        let region = signing_region(region);
        raw::signed(creds, raw::Unsigned { region, service, method, url: &url, headers, body })
    }

    /// Sends what [`Self::request_as`] signs; any status.
    pub async fn call_as(
        &self,
        creds: &Creds,
        region: &str,
        service: &str,
        request: (&str, &str),
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> anyhow::Result<Answer> {
        raw::send_with(&self.http()?, self.request_as(creds, region, service, request, headers, body)?).await
    }

    /// An IAM query-API call as `creds`; any status.
    pub async fn iam_as(&self, creds: &Creds, region: &str, params: &[(&str, &str)]) -> anyhow::Result<Answer> {
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        self.call_as(creds, region, "iam", ("POST", "/"), &headers, form(params).into_bytes()).await
    }

    /// A KMS call (`TrentService.<operation>`) as `creds`; any status.
    pub async fn kms_as(&self, creds: &Creds, region: &str, operation: &str, body: &str) -> anyhow::Result<Answer> {
        let target = format!("TrentService.{operation}");
        let headers = [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", target.as_str())];
        self.call_as(creds, region, "kms", ("POST", "/"), &headers, body.as_bytes().to_vec()).await
    }

    /// Waits until `region` knows `creds` (a region following IAM learns of
    /// new keys within a moment): STS `GetCallerIdentity` needs no permission.
    pub async fn wait_until_known(&self, region: &str, creds: &Creds) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let headers = [("content-type", "application/x-www-form-urlencoded")];
        let body = b"Action=GetCallerIdentity&Version=2011-06-15".to_vec();
        while Instant::now() < deadline {
            if self.call_as(creds, region, "sts", ("POST", "/"), &headers, body.clone()).await?.status == 200 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{region} never learned of access key {}", creds.access_key)
    }

    /// Creates IAM user `name` with one inline policy (`policy`, a JSON
    /// document) and an access key; its credentials.
    pub async fn user(&self, name: &str, policy: &str) -> anyhow::Result<Creds> {
        let region = &self.regions[0].0;
        self.iam_call(region, &[("Action", "CreateUser"), ("Version", "2010-05-08"), ("UserName", name)]).await?;
        let put = [
            ("Action", "PutUserPolicy"),
            ("Version", "2010-05-08"),
            ("UserName", name),
            ("PolicyName", "access"),
            ("PolicyDocument", policy),
        ];
        self.iam_call(region, &put).await?;
        let key = self
            .iam_call(region, &[("Action", "CreateAccessKey"), ("Version", "2010-05-08"), ("UserName", name)])
            .await?;
        let field = |tag: &str| -> anyhow::Result<String> {
            let start = key.find(&format!("<{tag}>")).context("no access key in the answer")? + tag.len() + 2;
            let end = key[start..].find('<').context("unterminated field")? + start;
            Ok(key[start..end].to_owned())
        };
        Ok(Creds::new(&field("AccessKeyId")?, &field("SecretAccessKey")?))
    }

    /// The process id of a `tern up` deployment, for measuring it.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// SIGKILL: no chance to flush or clean up.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.start_kill()?;
            child.wait().await?;
        }
        Ok(())
    }

    /// Starts the same deployment again on the same ports and data.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9().await?;
        self.spawn().await
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn stop(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let mut child = self.child.take().context("not running")?;
        let pid = child.id().context("no pid")?;
        Command::new("kill").args(["-TERM", &pid.to_string()]).status().await?;
        Ok(tokio::time::timeout(Duration::from_secs(40), child.wait()).await??)
    }
}

/// Form-encodes query-protocol parameters.
fn form(params: &[(&str, &str)]) -> String {
    params
        .iter()
        .map(|(k, v)| format!("{}={}", urlencoding::encode(k), urlencoding::encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An S3 client with static credentials against any endpoint.
#[must_use]
pub fn s3_client(endpoint: &str, region: &str, access_key: &str, secret_key: &str) -> aws_sdk_s3::Client {
    let credentials = aws_credential_types::Credentials::new(access_key, secret_key, None, None, "tern-testkit");
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .region(aws_sdk_s3::config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// How often [`eventually`] looks.
const POLL: Duration = Duration::from_millis(25);

/// Waits for something that happens in the background (replication, IAM
/// following): asks `probe` every 25 ms until it answers `Some`, and
/// returns that. Panics naming `what` if `within` passes first, so a test
/// never goes on with a state it did not see.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(seen) = probe().await {
            return seen;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(POLL).await;
    }
}
