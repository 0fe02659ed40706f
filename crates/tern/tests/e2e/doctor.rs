//! `tern doctor` against a real deployment: all well, then each kind of
//! trouble it names (loose permissions, a port taken by something else, a
//! failed replication, a file that does not parse), with its exit code.

use std::os::unix::fs::PermissionsExt as _;
use std::process::Output;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ReplicationStatus;

use crate::replication::{replicate, rule, settled, versioned};
use crate::{EAST, WEST, two_regions};

fn doctor(tern: &tern_testkit::Deployment, config: &std::path::Path) -> (bool, String) {
    let out: Output = std::process::Command::new(env!("CARGO_BIN_EXE_tern"))
        .args(["doctor", "--config"])
        .arg(config)
        .env("AWS_ACCESS_KEY_ID", tern_testkit::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", tern_testkit::SECRET_KEY)
        .env("TERN_ROOT_ACCESS_KEY_ID", tern_testkit::ACCESS_KEY)
        .env("TERN_ROOT_SECRET_ACCESS_KEY", tern_testkit::SECRET_KEY)
        .current_dir(tern.data_dir().parent().unwrap())
        .output()
        .expect("tern runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn doctor_says_what_is_well_and_what_is_wrong() {
    let tern = two_regions().await;
    let config = tern.config_path();
    let (healthy, said) = doctor(&tern, &config);
    assert!(healthy, "{said}");
    for line in ["ok    us-east-1    serving at http://", "ok    eu-west-1    clock within", "ok    data "] {
        assert!(said.contains(line), "{line} in {said}");
    }
    assert!(said.contains("ok    us-east-1    replication: 0 PENDING, none FAILED"), "{said}");

    // A replication that fails is named with its bucket; still exit 0: a warning.
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    versioned(&east, "doc-src", EAST).await;
    versioned(&west, "doc-dst", WEST).await;
    let role = tern.replication_role(EAST, "doc", r#"["s3:GetObjectVersionForReplication"]"#).await.unwrap();
    replicate(&east, "doc-src", &role, vec![rule("all", 1, "", "doc-dst")]).await;
    east.put_object().bucket("doc-src").key("k").body(ByteStream::from_static(b"x")).send().await.unwrap();
    assert_eq!(settled(&east, "doc-src", "k").await, Some(ReplicationStatus::Failed));
    let (healthy, said) = doctor(&tern, &config);
    assert!(healthy, "{said}");
    assert!(said.contains("warn  us-east-1    replication: 0 PENDING, 1 FAILED in doc-src"), "{said}");

    // Secrets others may read fail it.
    let data = tern.data_dir();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (healthy, said) = doctor(&tern, &config);
    assert!(!healthy && said.contains("FAIL  data         others may read"), "{said}");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();

    // A region whose port something else holds, and a file that does not parse.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap();
    let text = std::fs::read_to_string(&config).unwrap();
    let elsewhere = tern.data_dir().parent().unwrap().join("taken.toml");
    let east_listen = tern.listen_address(EAST);
    std::fs::write(&elsewhere, text.replace(&east_listen.to_string(), &taken.to_string())).unwrap();
    let (healthy, said) = doctor(&tern, &elsewhere);
    assert!(!healthy && said.contains(&format!("FAIL  us-east-1    {taken} is taken")), "{said}");
    std::fs::write(&elsewhere, "data_dir = 7").unwrap();
    let (healthy, said) = doctor(&tern, &elsewhere);
    assert!(!healthy && said.starts_with("FAIL  config"), "{said}");
}
