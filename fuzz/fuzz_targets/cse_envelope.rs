#![no_main]
//! S3EC envelopes come from object metadata and instruction files anyone
//! with write access to a bucket controls: any bytes must be refused
//! cleanly or parse into an envelope that writes back without panicking.

use tern_cse::envelope::{self, Metadata};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The input is object metadata (a JSON object of strings), then an
    // optional instruction file after a 0xFF byte.
    let (object, file) = match data.iter().position(|&b| b == 0xff) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let instruction = file.and_then(|f| envelope::parse_instruction_file(f).ok());
    let Ok(object) = serde_json::from_slice::<Metadata>(object) else { return };
    let _ = envelope::needs_instruction_file(&object);
    if let Ok(parsed) = envelope::parse(&object, instruction.as_ref()) {
        let _ = envelope::check_context(&parsed, &[("k".to_owned(), "v".to_owned())]);
        let _ = parsed.entries();
        let _ = parsed.with_instruction_file();
    }
});
