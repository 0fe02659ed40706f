//! Client-side encryption against plain objects on one Tern: `tern-cse`
//! PUT/GET of 64 MiB objects (encrypted and decrypted in this process,
//! multipart with one GCM stream) against plain PUT/GET of the same bytes
//! by the same SDK, rounds interleaved. The plain GET streams the object
//! and discards it; `cse` reads it into a reused, warm buffer and decrypts
//! it in place (one aws-lc-rs GCM call), `cse-streamed` decrypts and
//! verifies it piece by piece and discards it.

use serde_json::json;
use tern_cse::{ClientConfig, EncryptionClient, KmsKeyring, ObjectRef};

use crate::Args;
use crate::measure::{Measure, WORKLOADS, measure, report, s3_client};
use crate::objects::{Encryption, put_get};

/// CSE PUT, GET into memory, and streamed GET.
async fn cse_put_get(
    client: &EncryptionClient,
    bucket: &str,
    body: &bytes::Bytes,
    requests: usize,
    concurrency: usize,
) -> anyhow::Result<(Measure, Measure, Measure)> {
    let size = body.len();
    let at = |i: usize| ObjectRef { bucket: bucket.to_owned(), key: format!("o{i}") };
    let put = measure(requests, concurrency, size, |i| async move {
        client.put(&at(i), &body[..], Some(size as u64), &[], &|_, _| {}).await?;
        Ok(())
    })
    .await?;
    // Into memory, each of the `concurrency` readers reusing a warm buffer,
    // as a long-lived reader would (the plain GET allocates nothing either).
    let warm = || {
        // Non-zero: a zeroed allocation is mapped lazily and would not be warm.
        let mut buffer = vec![1u8; size + 16];
        buffer.clear();
        buffer
    };
    let buffers = std::sync::Mutex::new((0..concurrency).map(|_| warm()).collect::<Vec<_>>());
    let buffers = &buffers;
    let get = measure(requests, concurrency, size, |i| async move {
        let mut buffer = buffers.lock().expect("buffer pool").pop().unwrap_or_default();
        client.get_into_vec(&at(i), &[], &mut buffer).await?;
        anyhow::ensure!(buffer.len() == size, "short read");
        buffers.lock().expect("buffer pool").push(buffer);
        Ok(())
    })
    .await?;
    // Streamed and discarded, as the plain GET is: decrypted and verified
    // piece by piece, without holding the object.
    let streamed = measure(requests, concurrency, size, |i| async move {
        let read = client.get_with_delayed_authentication(&at(i), &mut tokio::io::sink(), &[], &|_, _| {}).await?;
        anyhow::ensure!(read == size as u64, "short read");
        Ok(())
    })
    .await?;
    Ok((put, get, streamed))
}

pub async fn run(args: &Args, tern: &tern_testkit::Deployment) -> anyhow::Result<()> {
    let endpoint = tern.endpoint("us-east-1");
    let s3 = s3_client(&endpoint, tern_testkit::ACCESS_KEY, tern_testkit::SECRET_KEY);
    let kms = tern.kms("us-east-1");
    let key = kms.create_key().send().await?.key_metadata.and_then(|m| m.arn).unwrap_or_default();
    let client = EncryptionClient::new(s3.clone(), KmsKeyring::new(kms, &key, "us-east-1"), ClientConfig::default())?;
    let w = WORKLOADS.iter().find(|w| w.name == "64m").expect("the 64m workload");
    let (requests, body) = (w.requests(args.scale), w.body());
    let mut puts = vec![("plain".to_owned(), vec![]), ("cse".to_owned(), vec![])];
    let mut gets = vec![("plain".to_owned(), vec![]), ("cse".to_owned(), vec![]), ("cse-streamed".to_owned(), vec![])];
    for round in 0..args.rounds {
        for which in (0..2).map(|i| (i + round) % 2) {
            let bucket = format!("{}-{round}", puts[which].0);
            s3.create_bucket().bucket(&bucket).send().await?;
            if which == 0 {
                let (put, get) = put_get(&s3, &bucket, w, requests, &Encryption::Default).await?;
                puts[0].1.push(put);
                gets[0].1.push(get);
            } else {
                let (put, get, streamed) = cse_put_get(&client, &bucket, &body, requests, w.concurrency).await?;
                puts[1].1.push(put);
                gets[1].1.push(get);
                gets[2].1.push(streamed);
            }
        }
    }
    for (op, series) in [("PUT", &puts), ("GET", &gets)] {
        let fields =
            json!({"workload": w.name, "op": op, "size": w.size, "concurrency": w.concurrency, "requests": requests});
        report(&fields, series, |m| m.mb_per_sec);
    }
    Ok(())
}
