//! Client-side encryption (`tern-cse`) against real regions: every format
//! and size round trip, tampering, policies, ranged reads, and multi-Region
//! keys read in the replica's region.

use aws_sdk_s3::primitives::ByteStream;
use tern_cse::{ClientConfig, CommitmentPolicy, CseError, EncryptionClient, KmsKeyring, ObjectRef, Suite};

use crate::{EAST, WEST, bucket, one_region, two_regions};

fn object(bucket: &str, key: &str) -> ObjectRef {
    ObjectRef { bucket: bucket.to_owned(), key: key.to_owned() }
}

fn context(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

async fn new_key(tern: &tern_testkit::Deployment, region: &str) -> String {
    let key = tern.kms(region).create_key().send().await.unwrap();
    key.key_metadata.unwrap().arn.unwrap()
}

fn client(tern: &tern_testkit::Deployment, region: &str, key: Option<&str>, config: ClientConfig) -> EncryptionClient {
    let kms = tern.kms(region);
    let keyring = match key {
        Some(key) => KmsKeyring::new(kms, key, region),
        None => KmsKeyring::discovery(kms, region),
    };
    EncryptionClient::new(tern.s3(region), keyring, config).unwrap()
}

/// Small parts, so that multipart uploads stay quick.
fn small_parts() -> ClientConfig {
    ClientConfig { multipart_threshold: 5 << 20, part_size: 5 << 20, ..ClientConfig::default() }
}

async fn put(c: &EncryptionClient, at: &ObjectRef, plaintext: &[u8], ctx: &[(String, String)]) {
    c.put(at, plaintext, Some(plaintext.len() as u64), ctx, &|_, _| {}).await.unwrap();
}

async fn stored(s3: &aws_sdk_s3::Client, at: &ObjectRef) -> Vec<u8> {
    crate::body_of(s3, &at.bucket, &at.key).await
}

#[tokio::test]
async fn objects_round_trip_in_every_format_size_and_layout() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "cse").await;
    let key = new_key(&tern, EAST).await;
    let ctx = context(&[("purpose", "test")]);
    let v2 = ClientConfig {
        suite: Suite::AesGcm,
        commitment_policy: CommitmentPolicy::ForbidEncryptAllowDecrypt,
        ..small_parts()
    };
    let mut with_file = small_parts();
    with_file.instruction_files.write = true;
    let large = crate::pattern(12 << 20, 5);
    for (name, config, plaintext, format) in [
        ("v3-small", small_parts(), b"tiny".to_vec(), "V3"),
        ("v3-empty", small_parts(), Vec::new(), "V3"),
        ("v3-multipart", small_parts(), large.clone(), "V3"),
        ("v2-multipart", v2, large.clone(), "V2"),
        ("v3-instruction-file", with_file, b"in a file".to_vec(), "V3"),
        ("v3-piped-small", small_parts(), b"from a pipe".to_vec(), "V3"),
        ("v3-piped-multipart", small_parts(), large.clone(), "V3"),
    ] {
        let at = object("cse", name);
        let writer = client(&tern, EAST, Some(&key), config.clone());
        if name.contains("piped") {
            // A source of unknown length, read to its end.
            let written = writer.put(&at, &plaintext[..], None, &ctx, &|_, _| {}).await.unwrap();
            assert_eq!((written.bytes, written.parts > 1), (plaintext.len() as u64, plaintext.len() > 5 << 20));
        } else {
            put(&writer, &at, &plaintext, &ctx).await;
        }
        let raw = stored(&s3, &at).await;
        assert_eq!(raw.len(), plaintext.len() + 16, "{name}: the server holds ciphertext and the tag");
        assert!(plaintext.len() < 64 || !raw.windows(64).any(|w| w == &plaintext[..64]), "{name}");
        let reader = client(&tern, EAST, Some(&key), ClientConfig { ..config });
        assert_eq!(reader.get_bytes(&at, &ctx).await.unwrap(), plaintext, "{name}");
        let seen = reader.inspect(&at).await.unwrap();
        assert_eq!((seen.format.as_str(), seen.plaintext_bytes), (format, Some(plaintext.len() as u64)), "{name}");
        assert_eq!(seen.instruction_file, name.ends_with("instruction-file"), "{name}");
    }
    let (writer, short) = (client(&tern, EAST, Some(&key), small_parts()), object("cse", "short"));
    let refused = writer.put(&short, &large[..], Some(13 << 20), &ctx, &|_, _| {}).await;
    assert!(matches!(refused, Err(CseError::Io(_))), "a source shorter than announced is refused");
    assert!(s3.head_object().bucket("cse").key("short").send().await.is_err(), "and nothing is left");
}

#[tokio::test]
async fn policies_and_contexts_refuse_what_they_should_by_name() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "cse-policy").await;
    let key = new_key(&tern, EAST).await;
    let ctx = context(&[("team", "a")]);
    let v2 = ClientConfig {
        suite: Suite::AesGcm,
        commitment_policy: CommitmentPolicy::ForbidEncryptAllowDecrypt,
        ..ClientConfig::default()
    };
    let at = object("cse-policy", "v2");
    put(&client(&tern, EAST, Some(&key), v2), &at, b"legacy format", &ctx).await;
    let strict = client(&tern, EAST, Some(&key), ClientConfig::default());
    let refused = strict.get_bytes(&at, &ctx).await.unwrap_err();
    assert!(matches!(&refused, CseError::NotAllowed(m) if m.contains("REQUIRE_ENCRYPT_REQUIRE_DECRYPT")), "{refused}");
    let lenient =
        ClientConfig { commitment_policy: CommitmentPolicy::RequireEncryptAllowDecrypt, ..Default::default() };
    let lenient = client(&tern, EAST, None, lenient);
    assert_eq!(lenient.get_bytes(&at, &ctx).await.unwrap(), &b"legacy format"[..]);
    assert!(matches!(lenient.get_bytes(&at, &context(&[("team", "b")])).await, Err(CseError::ContextMismatch)));
    let reserved = context(&[("team", "a"), ("aws:x-amz-cek-alg", "AES/GCM/NoPadding")]);
    assert!(matches!(lenient.get_bytes(&at, &reserved).await, Err(CseError::InvalidContext(_))));
    let (x, non_ascii) = (object("cse-policy", "x"), context(&[("k", "é")]));
    let refused = strict.put(&x, &b"x"[..], Some(1), &non_ascii, &|_, _| {}).await;
    assert!(matches!(refused, Err(CseError::InvalidContext(_))));
    s3.put_object().bucket("cse-policy").key("plain").body(ByteStream::from_static(b"p")).send().await.unwrap();
    let plain = strict.get_bytes(&object("cse-policy", "plain"), &[]).await.unwrap_err();
    assert!(matches!(&plain, CseError::NotEncrypted(o) if o == "s3://cse-policy/plain"), "{plain}");
}

/// Rewrites an object's stored bytes or metadata as an attacker with write
/// access to the bucket could.
async fn replace(
    s3: &aws_sdk_s3::Client,
    at: &ObjectRef,
    body: Vec<u8>,
    metadata: &std::collections::HashMap<String, String>,
) {
    let put = s3.put_object().bucket(&at.bucket).key(&at.key).set_metadata(Some(metadata.clone()));
    put.body(ByteStream::from(body)).send().await.unwrap();
}

#[tokio::test]
async fn tampering_fails_authentication_and_leaves_no_plaintext_behind() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "cse-tamper").await;
    let key = new_key(&tern, EAST).await;
    let ctx = context(&[("purpose", "tamper")]);
    let c = client(&tern, EAST, Some(&key), ClientConfig::default());
    let at = object("cse-tamper", "doc");
    let secret = crate::pattern(100_000, 9);
    put(&c, &at, &secret, &ctx).await;
    let head = s3.head_object().bucket("cse-tamper").key("doc").send().await.unwrap();
    let (meta, body) = (head.metadata.unwrap(), stored(&s3, &at).await);
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");

    let mut cases: Vec<(String, Vec<u8>, std::collections::HashMap<String, String>)> = Vec::new();
    for name in meta.keys() {
        let mut altered = meta.clone();
        let value = altered.get_mut(name).unwrap();
        let first = if value.starts_with('B') { 'C' } else { 'B' };
        *value = if name == "x-amz-t" {
            r#"{"purpose": "other", "aws:x-amz-cek-alg": "115"}"#.into()
        } else {
            format!("{first}{}", &value[1..])
        };
        cases.push((format!("metadata {name}"), body.clone(), altered));
    }
    let mut flipped = body.clone();
    flipped[50_000] ^= 1;
    cases.push(("a body byte".into(), flipped, meta.clone()));
    cases.push(("the tag truncated".into(), body[..body.len() - 1].to_vec(), meta.clone()));
    cases.push(("the tag removed".into(), body[..body.len() - 16].to_vec(), meta.clone()));
    for (what, body, metadata) in cases {
        replace(&s3, &at, body, &metadata).await;
        let result = c.get_to_file(&at, &dest, &ctx, &|_, _| {}).await;
        assert!(result.is_err(), "{what} was accepted");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{what}: no plaintext, not even a temporary file"
        );
    }

    // An instruction file that tries to downgrade a V3 object to V2.
    let mut stripped = meta.clone();
    let wrapped = stripped.remove("x-amz-3").unwrap();
    replace(&s3, &at, body.clone(), &stripped).await;
    let spoof = format!(
        r#"{{"x-amz-key-v2": "{wrapped}", "x-amz-wrap-alg": "kms+context", "x-amz-iv": "AAAAAAAAAAAAAAAA",
            "x-amz-cek-alg": "AES/GCM/NoPadding", "x-amz-matdesc": "{{}}"}}"#
    );
    let file = s3.put_object().bucket("cse-tamper").key("doc.instruction").body(ByteStream::from(spoof.into_bytes()));
    file.send().await.unwrap();
    let spoofed = c.get_to_file(&at, &dest, &ctx, &|_, _| {}).await.unwrap_err();
    assert!(matches!(spoofed, CseError::Tampered(_)), "{spoofed}");
    assert!(!dest.exists());

    replace(&s3, &at, body, &meta).await;
    c.get_to_file(&at, &dest, &ctx, &|_, _| {}).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), secret, "the untouched object still reads");
}

#[tokio::test]
async fn ranged_reads_decrypt_any_span_without_authentication() {
    let tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "cse-range").await;
    let key = new_key(&tern, EAST).await;
    let strict = client(&tern, EAST, Some(&key), ClientConfig::default());
    let mut config = ClientConfig::default();
    config.legacy.unauthenticated_ranges = true;
    let c = client(&tern, EAST, Some(&key), config);
    let at = object("cse-range", "r");
    let plaintext = crate::pattern(10_000, 4);
    put(&c, &at, &plaintext, &[]).await;
    let bounded = c.get_bytes_at_most(&at, &[], 9_999).await.unwrap_err();
    assert!(matches!(bounded, CseError::TooLarge { bytes: 10_000, .. }), "{bounded}");
    assert_eq!(c.get_bytes_at_most(&at, &[], 10_000).await.unwrap(), plaintext);
    let gated = strict.get_range_unauthenticated(&at, 0..=15, &[]).await.unwrap_err();
    assert!(matches!(gated, CseError::NotAllowed(_)), "ranges need the opt-in: {gated}");
    for (start, end) in [(0, 0), (0, 15), (15, 16), (100, 4000), (9_990, 9_999), (9_000, 20_000)] {
        let got = c.get_range_unauthenticated(&at, start..=end, &[]).await.unwrap();
        let end = usize::try_from(end).unwrap().min(9_999);
        assert_eq!(got, &plaintext[usize::try_from(start).unwrap()..=end], "{start}-{end}");
    }
    // Finding 20: a range past the plaintext (into the tag, or past the block
    // holding the tag) is refused, not decrypted from the tag's bytes.
    for start in [10_000, 10_004, 10_008, 10_015] {
        let past = c.get_range_unauthenticated(&at, start..=start + 3, &[]).await.unwrap_err();
        assert!(matches!(past, CseError::NotAllowed(_)), "{start}: {past}");
    }
}

#[tokio::test]
async fn multi_region_keys_decrypt_through_the_other_regions_replica() {
    let tern = two_regions().await;
    let (east, west) = (tern.s3(EAST), tern.s3(WEST));
    bucket(&east, "cse-east").await;
    let location = aws_sdk_s3::types::BucketLocationConstraint::from(WEST);
    let config = aws_sdk_s3::types::CreateBucketConfiguration::builder().location_constraint(location).build();
    west.create_bucket().bucket("cse-west").create_bucket_configuration(config).send().await.unwrap();
    let mrk = tern.kms(EAST).create_key().multi_region(true).send().await.unwrap().key_metadata.unwrap();
    let (mrk_arn, mrk_id) = (mrk.arn.unwrap(), mrk.key_id);
    tern.kms(EAST).replicate_key().key_id(&mrk_id).replica_region(WEST).send().await.unwrap();
    let regional = new_key(&tern, EAST).await;

    let ctx = context(&[("app", "mrk")]);
    for (name, key) in [("mrk", mrk_arn.as_str()), ("regional", regional.as_str())] {
        let at = object("cse-east", name);
        put(&client(&tern, EAST, Some(key), ClientConfig::default()), &at, name.as_bytes(), &ctx).await;
        // Ciphertext and envelope carried over as they are, as replication does.
        let got = east.get_object().bucket("cse-east").key(name).send().await.unwrap();
        let metadata = got.metadata.clone().unwrap();
        replace(&west, &object("cse-west", name), got.body.collect().await.unwrap().to_vec(), &metadata).await;
    }
    let there = object("cse-west", "mrk");
    let by_east_arn = client(&tern, WEST, Some(&mrk_arn), ClientConfig::default());
    assert_eq!(by_east_arn.keyring().key_id(), Some(mrk_arn.replace(EAST, WEST).as_str()));
    assert_eq!(by_east_arn.get_bytes(&there, &ctx).await.unwrap(), &b"mrk"[..], "the east ARN, used through west");
    let discovery = client(&tern, WEST, None, ClientConfig::default());
    assert_eq!(discovery.get_bytes(&there, &ctx).await.unwrap(), &b"mrk"[..], "discovery finds the replica");
    let local_only = discovery.get_bytes(&object("cse-west", "regional"), &ctx).await.unwrap_err();
    assert!(matches!(local_only, CseError::Kms(_)), "a regional key does not exist in the other region: {local_only}");
}

/// A V1 object as the first-generation clients wrote it: AES-256-CBC, the
/// data key under the legacy `kms` wrapping (context `kms_cmk_id`).
async fn legacy_v1_object(tern: &tern_testkit::Deployment, at: &ObjectRef, key: &str, plaintext: &[u8]) {
    use aws_lc_rs::cipher::{AES_256, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
    use base64::Engine as _;
    let data_key = tern
        .kms(EAST)
        .generate_data_key()
        .key_id(key)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .encryption_context("kms_cmk_id", key)
        .send()
        .await
        .unwrap();
    let iv = [9u8; 16];
    let cbc = UnboundCipherKey::new(&AES_256, data_key.plaintext.as_ref().unwrap().as_ref()).unwrap();
    let mut body = plaintext.to_vec();
    let cipher = PaddedBlockEncryptingKey::cbc_pkcs7(cbc).unwrap();
    cipher.less_safe_encrypt(&mut body, EncryptionContext::Iv128(iv.into())).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let metadata: std::collections::HashMap<String, String> = [
        ("x-amz-key", b64.encode(data_key.ciphertext_blob.unwrap().as_ref())),
        ("x-amz-iv", b64.encode(iv)),
        ("x-amz-matdesc", format!(r#"{{"kms_cmk_id":"{key}"}}"#)),
        ("x-amz-wrap-alg", "kms".to_owned()),
        ("x-amz-unencrypted-content-length", plaintext.len().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    replace(&tern.s3(EAST), at, body, &metadata).await;
}

#[tokio::test]
async fn legacy_v1_objects_read_only_with_both_legacy_opt_ins() {
    let tern = one_region().await;
    bucket(&tern.s3(EAST), "cse-v1").await;
    let key = new_key(&tern, EAST).await;
    let at = object("cse-v1", "old");
    let plaintext = crate::pattern(5000, 2);
    legacy_v1_object(&tern, &at, &key, &plaintext).await;
    let read = |unauthenticated: bool, wrapping: bool| {
        let mut config =
            ClientConfig { commitment_policy: CommitmentPolicy::RequireEncryptAllowDecrypt, ..ClientConfig::default() };
        config.legacy.unauthenticated_modes = unauthenticated;
        config.legacy.wrapping_algorithms = wrapping;
        client(&tern, EAST, Some(&key), config)
    };
    let refused = read(false, true).get_bytes(&at, &[]).await.unwrap_err();
    assert!(matches!(&refused, CseError::NotAllowed(m) if m.contains("ALG_AES_256_CBC_IV16_NO_KDF")), "{refused}");
    let refused = read(true, false).get_bytes(&at, &[]).await.unwrap_err();
    assert!(matches!(&refused, CseError::NotAllowed(m) if m.contains("legacy kms wrapping")), "{refused}");
    assert_eq!(read(true, true).get_bytes(&at, &[]).await.unwrap(), plaintext);
    let with_context = read(true, true).get_bytes(&at, &context(&[("a", "b")])).await.unwrap_err();
    assert!(matches!(with_context, CseError::NotAllowed(_)), "the kms wrapping carries no caller context");
    let dir = tempfile::tempdir().unwrap();
    read(true, true).get_to_file(&at, &dir.path().join("v1"), &[], &|_, _| {}).await.unwrap();
    assert_eq!(std::fs::read(dir.path().join("v1")).unwrap(), plaintext);
}
