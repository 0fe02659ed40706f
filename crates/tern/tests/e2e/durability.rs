//! `kill -9` in the middle of a stream of PUTs: every acknowledged object
//! must be readable byte-exact after restart, and nothing else left behind.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;

use crate::{EAST, body_of, bucket, one_region, pattern};

/// Sizes that exercise both inline metadata rows and blob files.
const SIZES: [usize; 4] = [100, 20_000, 300_000, 1_200_000];

#[tokio::test]
async fn acknowledged_puts_survive_kill_9() {
    let mut tern = one_region().await;
    let s3 = tern.s3(EAST);
    bucket(&s3, "durable").await;

    let acknowledged: Arc<Mutex<BTreeMap<String, (usize, u8)>>> = Arc::default();
    let mut writers = Vec::new();
    for writer in 0..8u8 {
        let (s3, acknowledged) = (s3.clone(), Arc::clone(&acknowledged));
        writers.push(tokio::spawn(async move {
            for i in 0..10_000usize {
                let key = format!("w{writer}/{i}");
                let size = SIZES[i % SIZES.len()];
                let seed = writer.wrapping_add(i.to_le_bytes()[0]);
                let put = s3
                    .put_object()
                    .bucket("durable")
                    .key(&key)
                    .body(ByteStream::from(pattern(size, seed)))
                    .send()
                    .await;
                if put.is_err() {
                    return; // the server is gone
                }
                acknowledged.lock().unwrap().insert(key, (size, seed));
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tern.kill9().await.unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 20, "the writers made progress before the kill: {}", acknowledged.len());

    tern.restart().await.unwrap();
    let s3 = tern.s3(EAST);
    for (key, (size, seed)) in &acknowledged {
        assert_eq!(body_of(&s3, "durable", key).await, pattern(*size, *seed), "{key}");
    }

    // Every blob file on disk belongs to a listed object: the sweeper removed the rest.
    let mut listed_blob_objects = 0;
    let mut pages = s3.list_objects_v2().bucket("durable").into_paginator().send();
    while let Some(page) = pages.next().await {
        listed_blob_objects += page.unwrap().contents().iter().filter(|o| o.size().unwrap_or(0) > 65_536).count();
    }
    let blob_files = std::fs::read_dir(tern.data_dir().join(EAST).join("blobs").join("blobs"))
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .count();
    assert_eq!(blob_files, listed_blob_objects);
    assert_eq!(std::fs::read_dir(tern.data_dir().join(EAST).join("blobs").join("tmp")).unwrap().count(), 0);
}

#[tokio::test]
async fn sigterm_stops_cleanly() {
    let mut tern = one_region().await;
    let status = tern.stop().await.unwrap();
    assert!(status.success(), "{status:?}\n{}", tern.log());
}
