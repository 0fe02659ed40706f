//! HTTPS against plain HTTP on the same build: PUT/GET throughput per
//! workload of a `tern up --tls` next to a plain `tern up`, ratio to HTTP.
//! Both clients reuse their connections, as SDKs do.

use aws_sdk_s3::Client;

use crate::Args;

/// The testkit's client for `tern`, tuned as every bench client is.
fn client(tern: &tern_testkit::Deployment) -> Client {
    let config = tern.s3("us-east-1").config().to_builder();
    Client::from_conf(crate::measure::without_flexible_checksums(config).build())
}

pub async fn run(args: &Args, plain: &tern_testkit::Deployment) -> anyhow::Result<()> {
    let tls = tern_testkit::Deployment::start_tls(&args.tern_bin, &["us-east-1"]).await?;
    let targets = [
        crate::peers::Target::new("http", client(plain), plain.pid()),
        crate::peers::Target::new("https", client(&tls), tls.pid()),
    ];
    crate::peers::compare(args, &targets).await
}
