//! Finding 18: the sealed transfers between regions (multi-region key
//! material, the IAM directory) authenticated no sender, took the
//! recipient's key from an answer nobody signed, and could be replayed.
//! Here a man in the middle sits between the regions, as a proxy a
//! region's `endpoint` points at, and tries each of those.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tern_crypto::Key256;
use tern_crypto::transport::{TransportKey, seal_to};

use crate::{EAST, WEST};

/// What the man in the middle does to traffic for the region behind it.
#[derive(Clone, Default)]
enum Tamper {
    #[default]
    Nothing,
    /// Answers every transport-key request with this key instead.
    SubstituteKey([u8; 32]),
    /// Answers every IAM snapshot request with this directory, sealed
    /// without the deployment's peer secret.
    ForgeSnapshot(Value),
    /// Answers every IAM snapshot request with this captured answer.
    ReplaySnapshot(Bytes),
}

#[derive(Default)]
struct Interceptor {
    target: Mutex<Option<String>>,
    tamper: Mutex<Tamper>,
    /// Every (path, request headers, request body, answer body) that passed.
    seen: Mutex<Vec<(String, http::HeaderMap, Bytes, Bytes)>>,
    /// Snapshot answers made up rather than passed on.
    forged: std::sync::atomic::AtomicUsize,
}

type Answer = http::Response<Full<Bytes>>;

fn answer(status: u16, body: Bytes) -> Answer {
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response
}

impl Interceptor {
    /// Starts the proxy; its address.
    async fn start() -> (Arc<Self>, SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let proxy = Arc::new(Self::default());
        let serving = Arc::clone(&proxy);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let proxy = Arc::clone(&serving);
                let service = hyper::service::service_fn(move |req| {
                    let proxy = Arc::clone(&proxy);
                    async move { Ok::<_, std::convert::Infallible>(proxy.pass(req).await) }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
                );
            }
        });
        (proxy, address)
    }

    async fn pass(&self, req: http::Request<Incoming>) -> Answer {
        let Some(target) = self.target.lock().unwrap().clone() else { return answer(502, Bytes::new()) };
        let (parts, body) = req.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        let path = parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default();
        let tamper = self.tamper.lock().unwrap().clone();
        if let Some(forged) = Self::forge(&tamper, &path, &body) {
            self.forged.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            return forged;
        }
        let response = reqwest::Client::new()
            .request(parts.method, format!("{target}{path}"))
            .headers(parts.headers.clone())
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let mut returned = response.bytes().await.unwrap();
        if let Tamper::SubstituteKey(key) = tamper
            && path == "/_tern/kms"
            && parts.headers.get("x-amz-target").is_some_and(|t| t == "TernInternal.GetTransportKey")
        {
            let mut value: Value = serde_json::from_slice(&returned).unwrap();
            value["PublicKey"] = json!(base64::engine::general_purpose::STANDARD.encode(key));
            returned = Bytes::from(value.to_string());
        }
        self.seen.lock().unwrap().push((path, parts.headers, body, returned.clone()));
        answer(status, returned)
    }

    /// An answer the man in the middle makes up instead of passing the request on.
    fn forge(tamper: &Tamper, path: &str, body: &Bytes) -> Option<Answer> {
        if path != "/_tern/iam/snapshot" {
            return None;
        }
        match tamper {
            Tamper::ForgeSnapshot(directory) => {
                let request: Value = serde_json::from_slice(body).unwrap();
                let recipient =
                    base64::engine::general_purpose::STANDARD.decode(request["Recipient"].as_str().unwrap()).unwrap();
                let guess = tern_crypto::transport::peer_secret("a guess at the root secret");
                let context = format!("tern iam snapshot v2|{EAST}|{WEST}|{}", request["Nonce"].as_str().unwrap());
                let sealed = seal_to(
                    &recipient.try_into().unwrap(),
                    &guess,
                    context.as_bytes(),
                    directory.to_string().as_bytes(),
                )
                .unwrap();
                Some(answer(200, Bytes::from(sealed)))
            }
            Tamper::ReplaySnapshot(captured) => Some(answer(200, captured.clone())),
            _ => None,
        }
    }

    fn set(&self, tamper: Tamper) {
        *self.tamper.lock().unwrap() = tamper;
    }

    /// Waits until the follower has been handed `more` made-up snapshots
    /// since now: it has seen the tampering, whatever it did with it.
    async fn forges(&self, more: usize) {
        let until = self.forged.load(std::sync::atomic::Ordering::SeqCst) + more;
        tern_testkit::eventually(std::time::Duration::from_secs(10), "the follower takes forged snapshots", || {
            std::future::ready((self.forged.load(std::sync::atomic::Ordering::SeqCst) >= until).then_some(()))
        })
        .await;
    }

    fn last(&self, path: &str) -> Option<(http::HeaderMap, Bytes, Bytes)> {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .rev()
            .find(|(p, ..)| p == path)
            .map(|(_, headers, body, answer)| (headers.clone(), body.clone(), answer.clone()))
    }
}

async fn kms(tern: &tern_testkit::Deployment, region: &str, operation: &str, body: &Value) -> Value {
    let answer = tern.kms_as(&tern.root(), region, operation, &body.to_string()).await.unwrap();
    serde_json::from_slice(&answer.body).unwrap()
}

/// A man in the middle substitutes its own transport key for the
/// receiving region's: the key material it receives stays sealed to it,
/// and a captured push cannot be replayed.
#[tokio::test]
async fn key_material_reaches_only_a_region_of_the_deployment_once() {
    let (proxy, address) = Interceptor::start().await;
    let endpoint = format!("endpoint = \"http://{address}\"");
    let tern = tern_testkit::Deployment::start_split_with(
        env!("CARGO_BIN_EXE_tern").as_ref(),
        &[EAST, WEST],
        &[(WEST, &endpoint)],
    )
    .await
    .unwrap();
    *proxy.target.lock().unwrap() = Some(tern.endpoint(WEST));
    let attacker = TransportKey::from_seed(&Key256::random().unwrap());
    proxy.set(Tamper::SubstituteKey(attacker.public()));
    let key = kms(&tern, EAST, "CreateKey", &json!({"MultiRegion": true})).await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = kms(&tern, EAST, "ReplicateKey", &json!({"KeyId": key, "ReplicaRegion": WEST})).await;
    assert!(
        refused["__type"].as_str().is_some(),
        "the real region could not open what was sealed to the attacker: {refused}"
    );
    let (_, push, _) = proxy.last("/_tern/kms").expect("the push passed the proxy");
    let push: Value = serde_json::from_slice(&push).unwrap();
    let sealed =
        base64::engine::general_purpose::STANDARD.decode(push["Materials"][0]["Sealed"].as_str().unwrap()).unwrap();
    let context = format!("kms material v2|{key}|1|{EAST}|{WEST}|{}", push["Challenge"].as_str().unwrap());
    for guess in ["", "a guess at the root secret", tern_testkit::ACCESS_KEY] {
        let psk = tern_crypto::transport::peer_secret(guess);
        assert!(attacker.open(&psk, context.as_bytes(), &sealed).is_err(), "opened with {guess:?}");
    }

    proxy.set(Tamper::Nothing);
    let replica = kms(&tern, EAST, "ReplicateKey", &json!({"KeyId": key, "ReplicaRegion": WEST})).await;
    assert_eq!(replica["ReplicaKeyMetadata"]["KeyState"], "Enabled", "{replica}");
    let (headers, body, _) = proxy.last("/_tern/kms").unwrap();
    let replayed = reqwest::Client::new()
        .post(format!("{}/_tern/kms", tern.endpoint(WEST)))
        .headers(headers)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 400);
    assert!(replayed.text().await.unwrap().contains("challenge"), "a push answers one challenge, once");
}

/// A man in the middle answers a follower's snapshot request with a
/// directory of its own, or with an old answer after the follower
/// restarts: the follower takes neither.
#[tokio::test]
async fn a_follower_takes_only_fresh_directories_from_its_authority() {
    let (proxy, address) = Interceptor::start().await;
    let endpoint = format!("endpoint = \"http://{address}\"");
    let mut tern = tern_testkit::Deployment::start_split_with(
        env!("CARGO_BIN_EXE_tern").as_ref(),
        &[EAST, WEST],
        &[(EAST, &endpoint)],
    )
    .await
    .unwrap();
    *proxy.target.lock().unwrap() = Some(tern.endpoint(EAST));
    let anyone = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    let user = tern.user("departing", anyone).await.unwrap();
    let west = tern.endpoint(WEST);
    let west_as = |creds: &tern_testkit::Creds| tern_testkit::s3_client(&west, WEST, &creds.access_key, &creds.secret);
    tern.wait_until_known(WEST, &user).await.unwrap();
    west_as(&user).list_buckets().send().await.expect("the follower knows the user");
    let (_, _, captured) = proxy.last("/_tern/iam/snapshot").expect("snapshots passed the proxy");
    assert!(!captured.is_empty());

    let intruder = json!({"epoch": "forged", "generation": 1_000_000, "users": {"intruder": {
        "name": "intruder", "id": "AIDAINTRUDER", "created": 0, "policies": {"all": anyone},
        "access_keys": [{"id": "AKIAINTRUDER00000000", "secret": "intruder-secret", "active": true, "created": 0}]}}, "roles": {}});
    proxy.set(Tamper::ForgeSnapshot(intruder));
    proxy.forges(2).await;
    let forged =
        west_as(&tern_testkit::Creds::new("AKIAINTRUDER00000000", "intruder-secret")).list_buckets().send().await;
    assert_eq!(crate::code(&forged.unwrap_err()), "InvalidAccessKeyId", "a forged directory is not taken");

    proxy.set(Tamper::Nothing);
    tern.iam_call(
        EAST,
        &[
            ("Action", "DeleteAccessKey"),
            ("Version", "2010-05-08"),
            ("UserName", "departing"),
            ("AccessKeyId", &user.access_key),
        ],
    )
    .await
    .unwrap();
    proxy.set(Tamper::ReplaySnapshot(captured));
    tern.stop_region(WEST).await.unwrap();
    tern.start_region(WEST).await.unwrap();
    proxy.forges(2).await;
    let replayed = west_as(&user).list_buckets().send().await;
    assert_eq!(crate::code(&replayed.unwrap_err()), "InvalidAccessKeyId", "an old directory replayed is not taken");
    proxy.set(Tamper::Nothing);
}
