"""Known-answer vectors for tern-cse, from the official S3 Encryption Client
(amazon-s3-encryption-client-python 4.0.0) with fixed data keys, message ids
and IVs. Regenerate: .venv/bin/python crates/tern-cse/tests/kat/generate.py
> crates/tern-cse/tests/kat/vectors.json (the interop suite checks that the
committed file still matches what the client writes)."""

import base64
import json
import types

from s3_encryption import pipelines
from s3_encryption.materials.crypto_materials_manager import DefaultCryptoMaterialsManager
from s3_encryption.materials.kms_keyring import KmsKeyring
from s3_encryption.materials.materials import AlgorithmSuite


class FixedKms:
    """A KMS that always hands out the same data key."""

    meta = types.SimpleNamespace(config=types.SimpleNamespace(user_agent_extra=None))

    def __init__(self, data_key: bytes, blob: bytes):
        self.data_key, self.blob = data_key, blob

    def generate_data_key(self, **_):
        return {"Plaintext": self.data_key, "CiphertextBlob": self.blob}


SUITES = {
    "v3": AlgorithmSuite.ALG_AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
    "v2": AlgorithmSuite.ALG_AES_256_GCM_IV12_TAG16_NO_KDF,
}


def vector(name: str, suite: str, seed: int, plaintext: bytes, context: dict) -> dict:
    data_key = bytes((seed + i) % 256 for i in range(32))
    nonce = bytes((seed * 7 + i) % 256 for i in range(28 if suite == "v3" else 12))
    blob = b"kms-blob-" + bytes([seed])
    pipelines.os.urandom = lambda n: nonce[:n]
    keyring = KmsKeyring(kms_client=FixedKms(data_key, blob), kms_key_id="alias/kat")
    pipeline = pipelines.PutEncryptedObjectPipeline(
        cmm=DefaultCryptoMaterialsManager(keyring=keyring), encryption_algorithm=SUITES[suite])
    ciphertext, metadata = pipeline.encrypt(plaintext, dict(context))
    return {
        "name": name, "suite": suite, "data_key": data_key.hex(), "nonce": nonce.hex(),
        "encrypted_key": base64.b64encode(blob).decode(), "context": list(context.items()),
        "plaintext": plaintext.hex(), "ciphertext": ciphertext.hex(), "metadata": metadata,
    }


CASES = [
    ("empty", b"", {}),
    ("one byte", b"x", {"purpose": "kat"}),
    ("a block and one", bytes(range(17)), {"a": "1", "b": "2"}),
    ("a kilobyte", bytes(i % 251 for i in range(1000)), {"zone": "eu", "app": "tern"}),
]

vectors = [vector(f"{suite} {name}", suite, seed, plaintext, context)
           for suite in SUITES for seed, (name, plaintext, context) in enumerate(CASES, 1)]
print(json.dumps(vectors, indent=1))
