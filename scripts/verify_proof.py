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
import re
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


def fail(step: str, why: str) -> None:
    print(f"REJECTED ({step}): {why}", file=sys.stderr)
    sys.exit(4)


def usage(why: str) -> None:
    """A mistake on the command line (a file that cannot be read, a key that is not one)."""
    print(f"error: {why}", file=sys.stderr)
    sys.exit(1)


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


def read_proof(proof_file: str) -> tuple[int, bytes, list[bytes], str]:
    """``(index, entry bytes, inclusion path, checkpoint note)`` of a proof file, in either of
    its forms; a file that is not one is rejected, saying so."""
    try:
        with open(proof_file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        usage(f"cannot read {proof_file}: {getattr(error, 'strerror', None) or error}")
    try:
        if text.lstrip().startswith("{"):  # the --json form
            data = json.loads(text)
            return (int(data["index"]), base64.b64decode(data["leaf"], validate=True),
                    [base64.b64decode(h, validate=True) for h in data["hashes"]],
                    str(data["checkpoint"]))
        head, _, note = text.partition("\n\n")
        lines = head.split("\n")
        if lines[0] != "c2sp.org/tlog-proof@v1" or len(lines) < 3 \
                or not lines[1].startswith("extra "):
            fail("format", "not a c2sp.org/tlog-proof@v1 file with an 'extra' entry line")
        if not re.fullmatch(r"index (0|[1-9][0-9]*)", lines[2]):  # as tlog-proof writes it
            fail("format", f"{lines[2][:40]!r} is not an 'index N' line")
        return (int(lines[2].removeprefix("index ")), base64.b64decode(lines[1][6:], validate=True),
                [base64.b64decode(h, validate=True) for h in lines[3:]], note)
    except (ValueError, KeyError, TypeError) as error:
        fail("format", f"not a proof this script can read ({type(error).__name__}: {error})")
        raise  # not reached


def main(proof_file: str, verifier_key: str) -> None:
    index, entry, path, note = read_proof(proof_file)

    # 1. The signed checkpoint.
    try:
        name, key_id, material = verifier_key.strip().split("+", 2)
        raw = base64.b64decode(material, validate=True)
    except ValueError:
        usage(f"{verifier_key!r} is not a verifier key (NAME+ID+KEY, as `ledger audit key` "
              "prints it)")
    if len(raw) != 33 or raw[0] != 1:
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
        try:
            blob = base64.b64decode(blob, validate=True)
        except ValueError:
            fail("format", f"a signature line of the checkpoint is not base64: {line!r}")
        if signer == name and blob[:4] == expected_id:
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(blob[4:], body.encode())
            except InvalidSignature:
                fail("signature", "the checkpoint's signature does not verify")
            signed = True
    if not signed:
        fail("signature", f"the checkpoint is not signed by {name}")
    try:  # signed by the key given: a malformed body is the operator's, but still said so
        origin, size, root = body.split("\n")[:3]
        size, root = int(size), base64.b64decode(root, validate=True)
    except ValueError:
        fail("format", "the checkpoint's body is not origin, tree size and root hash")

    # 2. The entry is in the signed tree.
    leaf = hashlib.sha256(b"\x00" + entry).digest()
    if root_from_inclusion(index, size, leaf, path) != root:
        fail("inclusion", "the entry is not in the tree the checkpoint signed")

    # 3. The entry is the one at that position.
    try:
        record = json.loads(entry)
    except ValueError:
        fail("entry", "the proven entry is not JSON")
    if not isinstance(record, dict) or record.get("position") != index + 1:
        said = record.get("position") if isinstance(record, dict) else None
        fail("entry", f"the entry says position {said}, not {index + 1}")
    print(f"OK: entry {record['position']} ({record.get('event')}, recorded "
          f"{record.get('recorded_at')}) is in the tree of {size} entries signed by {origin}.")
    document = (record.get("data") or {}).get("document")
    if isinstance(document, dict):  # what the proven entry says, shown: nothing more is checked
        buyer = document.get("buyer") or {}
        print(f"    {document.get('number')} of {document.get('issued_on')}: "
              f"{document.get('total_ht')} € HT, buyer {buyer.get('name')} "
              f"(SIRET {buyer.get('siret')})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
