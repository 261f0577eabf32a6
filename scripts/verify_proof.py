#!/usr/bin/env python3
"""Check a proof from `ledger audit prove` without the ledger: Python's standard library and
the `cryptography` package only (pip install cryptography).

    python verify_proof.py F-2027-000002.tlog-proof 'territorial-ledger/253…+b143289f+AQ7v…'

It checks, in this order, and says which step fails:
1. the checkpoint (C2SP tlog-checkpoint) carries an Ed25519 signature (C2SP signed-note) by
   the public key given — the key the operator published, not one taken from the proof;
2. the entry carried on the proof's ``extra`` line hashes to a leaf (SHA-256 of 0x00 and the
   entry's bytes) that the inclusion path (RFC 9162 §2.1.3.2) leads to the signed root;
3. the entry says it sits at the position the proof is for.
Exit code 0 when all hold, 4 otherwise. docs/audit.md explains each format.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(step: str, why: str) -> None:
    print(f"REJECTED ({step}): {why}", file=sys.stderr)
    sys.exit(4)


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    if not 0 <= index < size:
        fail("inclusion", f"index {index} is outside a tree of {size} entries")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            fail("inclusion", "the path is too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        fail("inclusion", "the path is too short")
    return r


def main(proof_file: str, verifier_key: str) -> None:
    text = open(proof_file, encoding="utf-8").read()
    if text.lstrip().startswith("{"):  # the --json form
        data = json.loads(text)
        index, entry = int(data["index"]), base64.b64decode(data["leaf"])
        path, note = [base64.b64decode(h) for h in data["hashes"]], data["checkpoint"]
    else:
        head, _, note = text.partition("\n\n")
        lines = head.split("\n")
        if lines[0] != "c2sp.org/tlog-proof@v1" or not lines[1].startswith("extra "):
            fail("format", "not a c2sp.org/tlog-proof@v1 file with an 'extra' entry line")
        entry = base64.b64decode(lines[1][6:])
        index = int(lines[2].removeprefix("index "))
        path = [base64.b64decode(h) for h in lines[3:]]

    # 1. The signed checkpoint.
    name, key_id, material = verifier_key.strip().split("+", 2)
    raw = base64.b64decode(material)
    if raw[0] != 1 or len(raw) != 33:
        fail("key", "not an Ed25519 verifier key")
    public = raw[1:]
    expected_id = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    if expected_id.hex() != key_id:
        fail("key", "the key id does not match the key")
    body, _, signatures = note[:-1].rpartition("\n\n")
    body += "\n"
    signed = False
    for line in signatures.split("\n"):
        signer, _, blob = line.removeprefix("\u2014 ").rpartition(" ")
        blob = base64.b64decode(blob)
        if signer == name and blob[:4] == expected_id:
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], body.encode())
            except InvalidSignature:
                fail("signature", "the checkpoint's signature does not verify")
            signed = True
    if not signed:
        fail("signature", f"the checkpoint is not signed by {name}")
    origin, size, root = body.split("\n")[:3]
    size, root = int(size), base64.b64decode(root)

    # 2. The entry is in the signed tree.
    leaf = hashlib.sha256(b"\x00" + entry).digest()
    if root_from_inclusion(index, size, leaf, path) != root:
        fail("inclusion", "the entry is not in the tree the checkpoint signed")

    # 3. The entry is the one at that position.
    record = json.loads(entry)
    if record.get("position") != index + 1:
        fail("entry", f"the entry says position {record.get('position')}, not {index + 1}")
    print(f"OK: entry {record['position']} ({record['event']}, recorded {record['recorded_at']}) "
          f"is in the tree of {size} entries signed by {origin}.")
    document = record.get("data", {}).get("document")
    if isinstance(document, dict):
        print(f"    {document['number']} of {document['issued_on']}: {document['total_ht']} € HT, "
              f"buyer {document['buyer']['name']} (SIRET {document['buyer']['siret']})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    try:
        main(sys.argv[1], sys.argv[2])
    except OSError as error:  # a mistake of the command line, not a proof that fails
        print(f"error: cannot read {sys.argv[1]}: {error.strerror}", file=sys.stderr)
        sys.exit(1)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as error:
        fail("format", f"not a proof or key this script can read ({type(error).__name__}: "
                       f"{error})")
