#![no_main]
//! `tern audit verify` reads files anyone with write access may have
//! crafted: every malformation is a finding, never a panic, and nothing
//! forged under an unknown key verifies.

use tern_audit::ChainKey;
use tern_audit::chain::GENESIS;
use tern_audit::verify::check_file;
use tern_crypto::Key256;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let key = ChainKey::derived(&Key256::from_bytes([7; 32]));
    for previous in [None, Some(&GENESIS)] {
        // Every line, the header too, must carry a tag only the key makes.
        assert!(check_file(data, &key, previous, 1).is_err(), "a forged file verified");
    }
    let _ = tern_audit::files::Line::classify(data);
    let _ = tern_audit::chain::claimed_tag(data);
});
