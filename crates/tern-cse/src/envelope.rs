//! The encryption metadata of S3EC objects (the "content metadata"): its
//! three formats and how they are told apart, instruction files and their
//! tamper rules, and the metadata written for new objects. Everything here
//! parses untrusted bytes; `fuzz/fuzz_targets/cse_envelope.rs` drives
//! [`parse`] and [`parse_instruction_file`].

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::{CseError, CseResult};
use crate::suite::{COMMITMENT_LEN, COMMITTING_IV, MESSAGE_ID_LEN, Suite};

/// An object's user metadata (names without `x-amz-meta-`), or an
/// instruction file's entries.
pub type Metadata = BTreeMap<String, String>;

/// The metadata names ("mapkeys") of the three formats.
pub mod keys {
    pub const KEY_V1: &str = "x-amz-key";
    pub const KEY_V2: &str = "x-amz-key-v2";
    pub const WRAP_ALG: &str = "x-amz-wrap-alg";
    pub const MATDESC: &str = "x-amz-matdesc";
    pub const IV: &str = "x-amz-iv";
    pub const CEK_ALG: &str = "x-amz-cek-alg";
    pub const TAG_LEN: &str = "x-amz-tag-len";
    pub const INSTRUCTION_FILE: &str = "x-amz-crypto-instr-file";
    pub const CONTENT_ALG_V3: &str = "x-amz-c";
    pub const KEY_V3: &str = "x-amz-3";
    pub const MATDESC_V3: &str = "x-amz-m";
    pub const CONTEXT_V3: &str = "x-amz-t";
    pub const WRAP_ALG_V3: &str = "x-amz-w";
    pub const COMMITMENT_V3: &str = "x-amz-d";
    pub const MESSAGE_ID_V3: &str = "x-amz-i";

    /// Every S3EC mapkey; an instruction file may hold nothing else.
    pub const ALL: [&str; 15] = [
        KEY_V1,
        KEY_V2,
        WRAP_ALG,
        MATDESC,
        IV,
        CEK_ALG,
        TAG_LEN,
        INSTRUCTION_FILE,
        CONTENT_ALG_V3,
        KEY_V3,
        MATDESC_V3,
        CONTEXT_V3,
        WRAP_ALG_V3,
        COMMITMENT_V3,
        MESSAGE_ID_V3,
    ];
    /// V3 mapkeys that must stay in the object's own metadata.
    pub const OBJECT_ONLY_V3: [&str; 3] = [CONTENT_ALG_V3, COMMITMENT_V3, MESSAGE_ID_V3];
}

/// The encryption-context entry that binds the content algorithm.
pub const RESERVED_CONTEXT_KEY: &str = "aws:x-amz-cek-alg";
/// The context entry of the legacy `kms` wrapping (the key id).
const KMS_V1_CONTEXT_KEY: &str = "kms_cmk_id";
/// Larger instruction files are refused unread: real ones hold a few
/// hundred bytes.
pub const MAX_INSTRUCTION_FILE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    V1,
    V2,
    V3,
}

/// How the data key is wrapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyWrap {
    /// `kms+context` (V3 code `12`): KMS with the encryption context.
    KmsContext,
    /// The legacy `kms` wrapping, without a caller's context.
    Kms,
    /// A wrapping no KMS keyring can open (raw AES or RSA keys).
    Unsupported(String),
}

impl KeyWrap {
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::KmsContext => "kms+context",
            Self::Kms => "kms",
            Self::Unsupported(name) => name,
        }
    }
}

/// Everything the metadata says about how an object is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub format: Format,
    pub suite: Suite,
    pub wrap: KeyWrap,
    /// The wrapped data key: for KMS, the `CiphertextBlob`.
    pub encrypted_key: Vec<u8>,
    /// The content IV (V3's is fixed).
    pub iv: Vec<u8>,
    /// The stored encryption context (or material description), reserved
    /// entries included.
    pub context: Vec<(String, String)>,
    /// V3: the HKDF salt and the key commitment.
    pub message_id: Option<[u8; MESSAGE_ID_LEN]>,
    pub commitment: Option<[u8; COMMITMENT_LEN]>,
}

fn malformed(what: impl Into<String>) -> CseError {
    CseError::Malformed(what.into())
}

fn tampered(what: impl Into<String>) -> CseError {
    CseError::Tampered(what.into())
}

fn decode(meta: &Metadata, key: &str) -> CseResult<Vec<u8>> {
    let text = meta.get(key).ok_or_else(|| malformed(format!("{key} is missing")))?;
    STANDARD.decode(text).map_err(|_| malformed(format!("{key} is not valid base64")))
}

fn decode_fixed<const N: usize>(meta: &Metadata, key: &str) -> CseResult<[u8; N]> {
    let bytes = decode(meta, key)?;
    <[u8; N]>::try_from(bytes.as_slice()).map_err(|_| malformed(format!("{key} must decode to {N} bytes")))
}

/// A JSON object of strings (an encryption context), in key order.
fn context_json(meta: &Metadata, key: &str) -> CseResult<Vec<(String, String)>> {
    let Some(text) = meta.get(key) else { return Ok(Vec::new()) };
    let map: BTreeMap<String, String> =
        serde_json::from_str(text).map_err(|_| malformed(format!("{key} is not a JSON object of strings")))?;
    Ok(map.into_iter().collect())
}

/// Whether the object's own metadata lacks what decryption needs, so that
/// the instruction file `<key>.instruction` must be read: V3 content
/// metadata without its data key, or no S3EC data key at all.
#[must_use]
pub fn needs_instruction_file(object: &Metadata) -> bool {
    [keys::KEY_V1, keys::KEY_V2, keys::KEY_V3].iter().all(|k| !object.contains_key(*k))
}

/// An instruction file's body: a JSON object whose entries are S3EC mapkeys
/// with string values, and nothing else.
pub fn parse_instruction_file(body: &[u8]) -> CseResult<Metadata> {
    if body.len() > MAX_INSTRUCTION_FILE {
        return Err(malformed(format!("the instruction file is over {MAX_INSTRUCTION_FILE} bytes")));
    }
    let entries: Metadata =
        serde_json::from_slice(body).map_err(|_| malformed("the instruction file is not a JSON object of strings"))?;
    if let Some(unknown) = entries.keys().find(|k| !keys::ALL.contains(&k.as_str())) {
        return Err(tampered(format!("the instruction file holds {unknown:?}, which is no S3EC mapkey")));
    }
    Ok(entries)
}

fn detect(meta: &Metadata) -> Option<Format> {
    let has = |k: &str| meta.contains_key(k);
    let v1 = has(keys::KEY_V1) && has(keys::IV) && has(keys::MATDESC);
    let v2 = has(keys::KEY_V2) && has(keys::IV) && has(keys::CEK_ALG) && has(keys::WRAP_ALG);
    let v3 = [keys::KEY_V3, keys::CONTENT_ALG_V3, keys::WRAP_ALG_V3, keys::COMMITMENT_V3, keys::MESSAGE_ID_V3]
        .iter()
        .all(|k| has(k));
    match (v1, v2, v3) {
        (true, false, false) => Some(Format::V1),
        (false, true, false) => Some(Format::V2),
        (false, false, true) => Some(Format::V3),
        _ => None,
    }
}

/// The metadata decryption reads: the object's own, merged over the
/// instruction file's (the object's entries win), under the tamper rules
/// of the specification.
fn merged(object: &Metadata, instruction: Option<&Metadata>) -> CseResult<Metadata> {
    let Some(instruction) = instruction else { return Ok(object.clone()) };
    if let Some(key) = keys::OBJECT_ONLY_V3.iter().find(|k| instruction.contains_key(**k)) {
        return Err(tampered(format!("the instruction file holds {key}, which only object metadata may")));
    }
    let mut merged = instruction.clone();
    merged.extend(object.iter().map(|(k, v)| (k.clone(), v.clone())));
    let content_in_object = [keys::CEK_ALG, keys::IV, keys::WRAP_ALG].iter().any(|k| object.contains_key(*k));
    if matches!(detect(&merged), Some(Format::V1 | Format::V2)) && content_in_object {
        return Err(tampered("V1/V2 content metadata is split between the object and its instruction file"));
    }
    Ok(merged)
}

/// The envelope of an object from its metadata and, if it has one, its
/// instruction file's entries.
pub fn parse(object: &Metadata, instruction: Option<&Metadata>) -> CseResult<Envelope> {
    let meta = merged(object, instruction)?;
    let data_keys = [keys::KEY_V1, keys::KEY_V2, keys::KEY_V3].iter().filter(|k| meta.contains_key(**k)).count();
    if data_keys > 1 {
        return Err(tampered("the metadata mixes the keys of more than one format"));
    }
    let v3_content = keys::OBJECT_ONLY_V3.iter().any(|k| meta.contains_key(*k));
    match detect(&meta) {
        Some(Format::V1) => v1(&meta),
        Some(Format::V2) if v3_content => Err(tampered("V2 metadata carries V3 content keys")),
        Some(Format::V2) => v2(&meta),
        Some(Format::V3) => v3(&meta),
        None if data_keys == 0 && !v3_content => Err(CseError::NotEncrypted("the object".into())),
        None => Err(malformed("the metadata matches no S3EC format completely")),
    }
}

fn wrap_v1_v2(meta: &Metadata) -> KeyWrap {
    match meta.get(keys::WRAP_ALG).map(String::as_str) {
        Some("kms+context") => KeyWrap::KmsContext,
        Some("kms") => KeyWrap::Kms,
        Some(other) => KeyWrap::Unsupported(other.to_owned()),
        None => KeyWrap::Unsupported("a symmetric master key".to_owned()),
    }
}

fn v1(meta: &Metadata) -> CseResult<Envelope> {
    let iv = decode_fixed::<16>(meta, keys::IV)?;
    Ok(Envelope {
        format: Format::V1,
        suite: Suite::AesCbc,
        wrap: wrap_v1_v2(meta),
        encrypted_key: decode(meta, keys::KEY_V1)?,
        iv: iv.to_vec(),
        context: context_json(meta, keys::MATDESC)?,
        message_id: None,
        commitment: None,
    })
}

fn v2(meta: &Metadata) -> CseResult<Envelope> {
    let alg = &meta[keys::CEK_ALG];
    let Some(suite @ (Suite::AesGcm | Suite::AesCbc)) = Suite::from_content_alg(alg) else {
        return Err(malformed(format!("unknown V2 content algorithm {alg:?}")));
    };
    let iv = if suite == Suite::AesGcm {
        if meta.get(keys::TAG_LEN).is_some_and(|t| t != "128") {
            return Err(malformed("only 128-bit GCM tags exist in S3EC objects"));
        }
        decode_fixed::<12>(meta, keys::IV)?.to_vec()
    } else {
        decode_fixed::<16>(meta, keys::IV)?.to_vec()
    };
    Ok(Envelope {
        format: Format::V2,
        suite,
        wrap: wrap_v1_v2(meta),
        encrypted_key: decode(meta, keys::KEY_V2)?,
        iv,
        context: context_json(meta, keys::MATDESC)?,
        message_id: None,
        commitment: None,
    })
}

fn v3(meta: &Metadata) -> CseResult<Envelope> {
    let alg = &meta[keys::CONTENT_ALG_V3];
    if Suite::from_content_alg(alg) != Some(Suite::AesGcmCommitting) {
        return Err(malformed(format!("unknown V3 content algorithm {alg:?}")));
    }
    let (wrap, context_key) = match meta[keys::WRAP_ALG_V3].as_str() {
        "12" => (KeyWrap::KmsContext, keys::CONTEXT_V3),
        "02" => (KeyWrap::Unsupported("AES/GCM".into()), keys::MATDESC_V3),
        "22" => (KeyWrap::Unsupported("RSA-OAEP-SHA1".into()), keys::MATDESC_V3),
        other => return Err(malformed(format!("unknown V3 key wrapping algorithm {other:?}"))),
    };
    Ok(Envelope {
        format: Format::V3,
        suite: Suite::AesGcmCommitting,
        wrap,
        encrypted_key: decode(meta, keys::KEY_V3)?,
        iv: COMMITTING_IV.to_vec(),
        context: context_json(meta, context_key)?,
        message_id: Some(decode_fixed(meta, keys::MESSAGE_ID_V3)?),
        commitment: Some(decode_fixed(meta, keys::COMMITMENT_V3)?),
    })
}

/// Checks a caller's encryption context as AWS's clients do: it may not
/// name the reserved entry, and must equal the stored context without its
/// reserved entries. The stored context must also bind the object's actual
/// content algorithm (it is authenticated by KMS, the metadata is not).
pub fn check_context(envelope: &Envelope, request: &[(String, String)]) -> CseResult<()> {
    if request.iter().any(|(k, _)| k == RESERVED_CONTEXT_KEY) {
        return Err(CseError::InvalidContext(format!("{RESERVED_CONTEXT_KEY} is reserved for the client")));
    }
    match envelope.wrap {
        KeyWrap::Kms if !request.is_empty() => {
            Err(CseError::NotAllowed("the legacy kms key wrapping carries no encryption context".into()))
        }
        KeyWrap::KmsContext => {
            let stored: BTreeMap<&str, &str> = envelope.context.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            if stored.get(RESERVED_CONTEXT_KEY) != Some(&envelope.suite.content_alg()) {
                return Err(tampered("the encryption context does not bind the content algorithm"));
            }
            let stored: BTreeSet<(&str, &str)> =
                stored.into_iter().filter(|(k, _)| *k != RESERVED_CONTEXT_KEY && *k != KMS_V1_CONTEXT_KEY).collect();
            let requested: BTreeSet<(&str, &str)> = request.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            if stored == requested { Ok(()) } else { Err(CseError::ContextMismatch) }
        }
        _ => Ok(()),
    }
}

/// A caller's encryption context, checked for what S3 metadata can carry,
/// with the reserved entry for `suite` appended (the context KMS binds).
pub fn context_for(suite: Suite, request: &[(String, String)]) -> CseResult<Vec<(String, String)>> {
    let mut seen = BTreeSet::new();
    for (k, v) in request {
        if k == RESERVED_CONTEXT_KEY {
            return Err(CseError::InvalidContext(format!("{RESERVED_CONTEXT_KEY} is reserved for the client")));
        }
        if !k.is_ascii() || !v.is_ascii() {
            return Err(CseError::InvalidContext(format!(
                "{k}={v}: keys and values must be US-ASCII, which S3 metadata stores unchanged"
            )));
        }
        if !seen.insert(k) {
            return Err(CseError::InvalidContext(format!("{k} is given twice")));
        }
    }
    let mut context = request.to_vec();
    context.push((RESERVED_CONTEXT_KEY.to_owned(), suite.content_alg().to_owned()));
    Ok(context)
}

/// A JSON object as Python's `json.dumps` writes it (`", "` and `": "`,
/// entries in order), which the official clients write and read.
fn python_json(pairs: &[(String, String)]) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let body: Vec<String> = pairs.iter().map(|(k, v)| format!("{}: {}", quote(k), quote(v))).collect();
    format!("{{{}}}", body.join(", "))
}

impl Envelope {
    /// Every mapkey of the envelope, in the order the official clients write them.
    #[must_use]
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        let b64 = |bytes: &[u8]| STANDARD.encode(bytes);
        let context = python_json(&self.context);
        match self.format {
            Format::V3 => vec![
                (keys::CONTENT_ALG_V3, self.suite.content_alg().to_owned()),
                (keys::KEY_V3, b64(&self.encrypted_key)),
                (keys::CONTEXT_V3, context),
                (keys::WRAP_ALG_V3, "12".to_owned()),
                (keys::COMMITMENT_V3, b64(self.commitment.as_ref().map_or(&[][..], |c| &c[..]))),
                (keys::MESSAGE_ID_V3, b64(self.message_id.as_ref().map_or(&[][..], |m| &m[..]))),
            ],
            Format::V1 | Format::V2 => vec![
                (keys::KEY_V2, b64(&self.encrypted_key)),
                (keys::WRAP_ALG, self.wrap.name().to_owned()),
                (keys::MATDESC, context),
                (keys::IV, b64(&self.iv)),
                (keys::CEK_ALG, self.suite.content_alg().to_owned()),
                (keys::TAG_LEN, "128".to_owned()),
            ],
        }
    }

    /// The entries split between the object's metadata and an instruction
    /// file's JSON body (V3 keeps its content entries on the object).
    #[must_use]
    pub fn with_instruction_file(&self) -> (Vec<(&'static str, String)>, String) {
        let (object, file): (Vec<_>, Vec<_>) =
            self.entries().into_iter().partition(|(k, _)| keys::OBJECT_ONLY_V3.contains(k));
        let file: Vec<(String, String)> = file.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        (object, python_json(&file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> Metadata {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// What amazon-s3-encryption-client-python 4.0.0 writes (aws-semantics.md §6.2).
    fn python_v3() -> Metadata {
        meta(&[
            ("x-amz-c", "115"),
            ("x-amz-3", "AQIDBA=="),
            ("x-amz-t", r#"{"purpose": "demo", "aws:x-amz-cek-alg": "115"}"#),
            ("x-amz-w", "12"),
            ("x-amz-d", &STANDARD.encode([7u8; 28])),
            ("x-amz-i", &STANDARD.encode([9u8; 28])),
        ])
    }

    fn python_v2() -> Metadata {
        meta(&[
            ("x-amz-key-v2", "AQIDBA=="),
            ("x-amz-wrap-alg", "kms+context"),
            ("x-amz-matdesc", r#"{"purpose": "demo", "aws:x-amz-cek-alg": "AES/GCM/NoPadding"}"#),
            ("x-amz-iv", &STANDARD.encode([3u8; 12])),
            ("x-amz-cek-alg", "AES/GCM/NoPadding"),
            ("x-amz-tag-len", "128"),
        ])
    }

    fn request(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_official_clients_formats_parse_and_write_back_the_same() {
        let v3 = parse(&python_v3(), None).unwrap();
        assert_eq!((v3.format, v3.suite, &v3.wrap), (Format::V3, Suite::AesGcmCommitting, &KeyWrap::KmsContext));
        assert_eq!(v3.encrypted_key, [1, 2, 3, 4]);
        let written: Metadata = v3.entries().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let mut reordered = python_v3();
        reordered.insert("x-amz-t".into(), r#"{"aws:x-amz-cek-alg": "115", "purpose": "demo"}"#.into());
        assert_eq!(written, reordered, "parsed contexts come back in key order");
        let v2 = parse(&python_v2(), None).unwrap();
        assert_eq!((v2.format, v2.suite, v2.iv.len()), (Format::V2, Suite::AesGcm, 12));
        check_context(&v2, &request(&[("purpose", "demo")])).unwrap();
    }

    #[test]
    fn contexts_are_checked_as_the_official_clients_check_them() {
        let v3 = parse(&python_v3(), None).unwrap();
        check_context(&v3, &request(&[("purpose", "demo")])).unwrap();
        assert!(matches!(check_context(&v3, &request(&[])), Err(CseError::ContextMismatch)));
        assert!(matches!(check_context(&v3, &request(&[("purpose", "other")])), Err(CseError::ContextMismatch)));
        let reserved = request(&[("purpose", "demo"), (RESERVED_CONTEXT_KEY, "115")]);
        assert!(matches!(check_context(&v3, &reserved), Err(CseError::InvalidContext(_))));
        let mut unbound = python_v3();
        unbound.insert("x-amz-t".into(), r#"{"purpose": "demo", "aws:x-amz-cek-alg": "AES/GCM/NoPadding"}"#.into());
        let unbound = parse(&unbound, None).unwrap();
        assert!(matches!(check_context(&unbound, &request(&[("purpose", "demo")])), Err(CseError::Tampered(_))));
        let context = context_for(Suite::AesGcmCommitting, &request(&[("a", "1")])).unwrap();
        assert_eq!(python_json(&context), r#"{"a": "1", "aws:x-amz-cek-alg": "115"}"#);
        assert!(context_for(Suite::AesGcm, &request(&[("k", "é")])).is_err(), "non-ASCII");
        assert!(context_for(Suite::AesGcm, &request(&[("k", "1"), ("k", "2")])).is_err(), "twice");
    }

    #[test]
    fn mixed_incomplete_and_unknown_metadata_is_refused_by_name() {
        let mut mixed = python_v3();
        mixed.insert("x-amz-key-v2".into(), "AQ==".into());
        assert!(matches!(parse(&mixed, None), Err(CseError::Tampered(_))));
        let mut unknown = python_v3();
        unknown.insert("x-amz-c".into(), "116".into());
        assert!(matches!(parse(&unknown, None), Err(CseError::Malformed(m)) if m.contains("116")));
        let mut short = python_v3();
        short.insert("x-amz-i".into(), STANDARD.encode([1u8; 27]));
        assert!(matches!(parse(&short, None), Err(CseError::Malformed(m)) if m.contains("28 bytes")));
        let mut bad_b64 = python_v2();
        bad_b64.insert("x-amz-iv".into(), "not base64!".into());
        assert!(matches!(parse(&bad_b64, None), Err(CseError::Malformed(_))));
        let mut bad_json = python_v2();
        bad_json.insert("x-amz-matdesc".into(), "{not json".into());
        assert!(matches!(parse(&bad_json, None), Err(CseError::Malformed(_))));
        let mut incomplete = python_v3();
        incomplete.remove("x-amz-d");
        assert!(matches!(parse(&incomplete, None), Err(CseError::Malformed(_))));
        assert!(matches!(parse(&meta(&[("owner", "x")]), None), Err(CseError::NotEncrypted(_))));
    }

    #[test]
    fn instruction_files_follow_the_tamper_rules() {
        let v3 = parse(&python_v3(), None).unwrap();
        let (object, file) = v3.with_instruction_file();
        let object: Metadata = object.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        assert!(needs_instruction_file(&object));
        let file = parse_instruction_file(file.as_bytes()).unwrap();
        assert_eq!(parse(&object, Some(&file)).unwrap(), v3);

        let mut spoofed = file.clone();
        spoofed.insert("x-amz-c".into(), "115".into());
        assert!(matches!(parse(&object, Some(&spoofed)), Err(CseError::Tampered(_))), "object-only keys");
        let v2_keys: Metadata = python_v2();
        assert!(matches!(parse(&object, Some(&v2_keys)), Err(CseError::Tampered(_))), "a V2 downgrade");
        let split = meta(&[("x-amz-iv", &STANDARD.encode([3u8; 12]))]);
        let mut rest = python_v2();
        rest.remove("x-amz-iv");
        assert!(matches!(parse(&split, Some(&rest)), Err(CseError::Tampered(_))), "split V2 content");
        assert!(matches!(parse_instruction_file(br#"{"owner": "x"}"#), Err(CseError::Tampered(_))));
        assert!(matches!(parse_instruction_file(b"[1]"), Err(CseError::Malformed(_))));
        let huge = vec![b' '; MAX_INSTRUCTION_FILE + 1];
        assert!(matches!(parse_instruction_file(&huge), Err(CseError::Malformed(_))));
    }
}
