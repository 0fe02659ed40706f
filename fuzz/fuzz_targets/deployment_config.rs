#![no_main]
//! The deployment file (regions, TLS paths, limits) is read at start: any
//! bytes must parse into a valid deployment or be refused with a reason.

use std::path::Path;

use tern_core::DeploymentConfig;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match DeploymentConfig::parse(text, Path::new("fuzz.toml")) {
        Ok(config) => {
            config.validate().expect("a parsed deployment is valid");
            for region in &config.regions {
                let _ = region.endpoint_url();
            }
        }
        Err(e) => assert!(!e.to_string().is_empty(), "a refusal says why"),
    }
});
