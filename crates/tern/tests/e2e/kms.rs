//! KMS through aws-sdk-kms: multi-region keys across two real regions,
//! rotation, key states, and keys surviving a crash.

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeySpec, MultiRegionKeyType};

use crate::{EAST, WEST, code, two_regions};

async fn mrk(kms: &Client) -> String {
    let created = kms.create_key().multi_region(true).send().await.expect("MRK created");
    created.key_metadata.expect("metadata").key_id
}

async fn encrypt(kms: &Client, key: &str, plaintext: &[u8], context: (&str, &str)) -> Blob {
    let out = kms
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(plaintext))
        .encryption_context(context.0, context.1)
        .send()
        .await
        .expect("encrypted");
    out.ciphertext_blob.expect("blob")
}

fn arn(region: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}:000000000000:key/{id}")
}

#[tokio::test]
async fn an_mrk_decrypts_only_where_it_was_replicated_and_names_the_local_key() {
    let tern = two_regions().await;
    let (east, west) = (tern.kms(EAST), tern.kms(WEST));
    let id = mrk(&east).await;
    assert!(id.starts_with("mrk-") && id.len() == 36, "{id}");
    let blob = encrypt(&east, &arn(EAST, &id), b"cross-region secret", ("purpose", "test")).await;

    let unknown = west.describe_key().key_id(&id).send().await.unwrap_err();
    assert_eq!(code(&unknown), "NotFoundException", "an MRK is unknown until replicated");
    let refused = west.decrypt().ciphertext_blob(blob.clone()).encryption_context("purpose", "test").send().await;
    assert_eq!(code(&refused.unwrap_err()), "AccessDeniedException");

    let replica = east.replicate_key().key_id(&id).replica_region(WEST).send().await.expect("replicated");
    let replica = replica.replica_key_metadata.expect("replica metadata");
    assert_eq!(replica.arn.as_deref(), Some(arn(WEST, &id).as_str()));

    let out = west.decrypt().ciphertext_blob(blob.clone()).encryption_context("purpose", "test").send().await.unwrap();
    assert_eq!(out.plaintext.unwrap().as_ref(), b"cross-region secret");
    assert_eq!(out.key_id.as_deref(), Some(arn(WEST, &id).as_str()), "Decrypt names the key in the called region");
    let named = west.decrypt().ciphertext_blob(blob.clone()).encryption_context("purpose", "test").key_id(&id);
    assert!(named.send().await.is_ok(), "the bare mrk id resolves in the replica region");
    let east_arn =
        west.decrypt().ciphertext_blob(blob.clone()).encryption_context("purpose", "test").key_id(arn(EAST, &id));
    let e = east_arn.send().await.unwrap_err();
    assert_eq!(code(&e), "NotFoundException");
    let wrong_context = west.decrypt().ciphertext_blob(blob).encryption_context("purpose", "other").send().await;
    assert_eq!(code(&wrong_context.unwrap_err()), "InvalidCiphertextException");

    for (kms, kind) in [(&east, MultiRegionKeyType::Primary), (&west, MultiRegionKeyType::Replica)] {
        let meta = kms.describe_key().key_id(&id).send().await.unwrap().key_metadata.unwrap();
        let config = meta.multi_region_configuration.expect("multi-region configuration");
        assert_eq!(config.multi_region_key_type, Some(kind));
        assert_eq!(config.primary_key.unwrap().region.as_deref(), Some(EAST));
        let replicas: Vec<_> = config.replica_keys.unwrap().into_iter().filter_map(|r| r.region).collect();
        assert_eq!(replicas, [WEST]);
    }
    let again = east.replicate_key().key_id(&id).replica_region(WEST).send().await.unwrap_err();
    assert_eq!(code(&again), "AlreadyExistsException");
}

#[tokio::test]
async fn regional_keys_never_leave_their_region() {
    let tern = two_regions().await;
    let (east, west) = (tern.kms(EAST), tern.kms(WEST));
    let key = east.create_key().send().await.unwrap().key_metadata.unwrap();
    assert!(!key.multi_region.unwrap());
    let blob = encrypt(&east, &key.key_id, b"stays here", ("k", "v")).await;
    let e = west.decrypt().ciphertext_blob(blob).encryption_context("k", "v").send().await.unwrap_err();
    assert_eq!(code(&e), "AccessDeniedException");
    let e = east.replicate_key().key_id(&key.key_id).replica_region(WEST).send().await.unwrap_err();
    assert_eq!(code(&e), "UnsupportedOperationException");
}

#[tokio::test]
async fn rotation_keeps_old_ciphertexts_and_reaches_replicas() {
    let tern = two_regions().await;
    let (east, west) = (tern.kms(EAST), tern.kms(WEST));
    let id = mrk(&east).await;
    east.replicate_key().key_id(&id).replica_region(WEST).send().await.unwrap();
    let before = encrypt(&east, &id, b"old", ("v", "1")).await;
    east.rotate_key_on_demand().key_id(&id).send().await.expect("rotated");
    let e = west.rotate_key_on_demand().key_id(&id).send().await.unwrap_err();
    assert_eq!(code(&e), "UnsupportedOperationException", "only the primary rotates");
    let after = encrypt(&east, &id, b"new", ("v", "2")).await;
    assert_ne!(before.as_ref()[37..41], after.as_ref()[37..41], "a new material version is current");
    for kms in [&east, &west] {
        let old = kms.decrypt().ciphertext_blob(before.clone()).encryption_context("v", "1").send().await.unwrap();
        let new = kms.decrypt().ciphertext_blob(after.clone()).encryption_context("v", "2").send().await.unwrap();
        assert_eq!((old.plaintext.unwrap().as_ref(), new.plaintext.unwrap().as_ref()), (&b"old"[..], &b"new"[..]));
    }
}

#[tokio::test]
async fn key_states_refuse_cryptography_as_aws_does() {
    let tern = two_regions().await;
    let east = tern.kms(EAST);
    let id = east.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    east.disable_key().key_id(&id).send().await.unwrap();
    let e = east.generate_data_key().key_id(&id).key_spec(DataKeySpec::Aes256).send().await.unwrap_err();
    assert_eq!(code(&e), "DisabledException");
    east.enable_key().key_id(&id).send().await.unwrap();
    let deletion = east.schedule_key_deletion().key_id(&id).pending_window_in_days(7).send().await.unwrap();
    assert_eq!(deletion.key_state.unwrap().as_str(), "PendingDeletion");
    let e = east.encrypt().key_id(&id).plaintext(Blob::new("x")).send().await.unwrap_err();
    assert_eq!(code(&e), "KMSInvalidStateException");
    let e = east.schedule_key_deletion().key_id(&id).pending_window_in_days(3).send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");
    east.cancel_key_deletion().key_id(&id).send().await.unwrap();
    let meta = east.describe_key().key_id(&id).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(meta.key_state.unwrap().as_str(), "Disabled", "a cancelled deletion leaves the key disabled");
    let e = east.encrypt().key_id(&id).plaintext(Blob::new(vec![0u8; 4097])).send().await.unwrap_err();
    assert_eq!(code(&e), "ValidationException");
}

#[tokio::test]
async fn keys_and_aliases_survive_a_crash() {
    let mut tern = two_regions().await;
    let east = tern.kms(EAST);
    let id = mrk(&east).await;
    east.replicate_key().key_id(&id).replica_region(WEST).send().await.unwrap();
    east.create_alias().alias_name("alias/durable").target_key_id(&id).send().await.unwrap();
    let out = east.generate_data_key().key_id("alias/durable").number_of_bytes(32).send().await.unwrap();
    tern.restart().await.expect("restarted after kill -9");
    for region in [EAST, WEST] {
        let kms = tern.kms(region);
        let blob = out.ciphertext_blob.clone().unwrap();
        let plain = kms.decrypt().ciphertext_blob(blob).send().await.expect("decrypts after restart");
        assert_eq!(plain.plaintext, out.plaintext);
    }
    let aliases = tern.kms(EAST).list_aliases().send().await.unwrap().aliases.unwrap();
    assert!(aliases.iter().any(|a| a.alias_name.as_deref() == Some("alias/durable")));
}

#[tokio::test]
async fn an_encryption_context_too_large_to_bind_is_a_validation_error() {
    let tern = crate::one_region().await;
    let kms = tern.kms(EAST);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let huge = "v".repeat(70_000);
    let refused = kms.encrypt().key_id(&key).plaintext(Blob::new(*b"x")).encryption_context("k", huge).send().await;
    assert_eq!(code(&refused.unwrap_err()), "ValidationException");
}
