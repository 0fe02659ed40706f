#![no_main]
//! Policy documents come from users (key policies, bucket policies, trust
//! and identity policies): any bytes must parse or be refused with a reason, and a parsed
//! policy must evaluate without panicking.

use tern_iam::policy::{Policy, Principal, Request, RequestContext};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let principal = Principal::root("111122223333");
    let mut context = RequestContext::default();
    context.set("kms:ViaService", "s3.us-east-1.amazonaws.com");
    context.set_all("kms:EncryptionContextKeys", vec!["aws:s3:arn".into()]);
    context.set("aws:SourceIp", "192.0.2.7");
    context.set("s3:max-keys", "50");
    let request = Request {
        principal: &principal,
        action: "kms:Decrypt",
        resource: "arn:aws:kms:us-east-1:111122223333:key/k",
        context: &context,
    };
    for parse in [Policy::identity, Policy::resource, Policy::trust] {
        match parse(text) {
            Ok(policy) => {
                let _ = policy.evaluate(&request);
                let _ = policy.named_principals();
                let _ = policy.named_resources();
                let _ = policy.is_public();
            }
            Err(e) => assert!(!e.0.is_empty(), "a refusal says why"),
        }
    }
});
