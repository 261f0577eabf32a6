#!/usr/bin/env python3
"""Check a dossier made by `ledger dossier`, without the ledger: Python's standard library and
the `cryptography` package only (pip install cryptography).

    python verify.py --key 'territorial-ledger/253…+b143289f+AQ7v…' [DOSSIER_DIR_OR_ZIP]

Give the operator's public key as published (not the copy inside the dossier). It checks:
1. MANIFEST.sig: the manifest of the dossier is signed by that key (C2SP signed note);
2. every file the manifest lists has the SHA-256 it states, and no other file is there;
3. checkpoint.txt is a tree head signed by that key;
4. every proof in proofs/ leads its entry (SHA-256 of 0x00 and the entry's bytes) to the signed
   root (RFC 9162 inclusion), and the entry says it sits at that position;
5. every document in documents/*.json is, field for field, the one its proved entry recorded,
   with the same digest; every entry of history.json has its proof, naming the same event.
Exit code 0 when everything holds, 4 otherwise (the first failure is named).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
import zipfile
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Rejected(Exception):
    pass


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_inclusion(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    if not 0 <= index < size:
        raise Rejected(f"index {index} is outside a tree of {size} entries")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Rejected("an inclusion path is too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Rejected("an inclusion path is too short")
    return r


def parse_key(text: str) -> tuple[str, bytes, bytes]:
    name, key_id, material = text.strip().split("+", 2)
    raw = base64.b64decode(material)
    if raw[0] != 1 or len(raw) != 33:
        raise Rejected("the key is not an Ed25519 verifier key")
    public = raw[1:]
    expected = hashlib.sha256(name.encode() + b"\n\x01" + public).digest()[:4]
    if expected.hex() != key_id:
        raise Rejected("the key's id does not match the key")
    return name, expected, public


def open_note(note: str, key: tuple[str, bytes, bytes], what: str) -> str:
    """The text of a signed note, if that key signed it."""
    name, key_id, public = key
    if not note.endswith("\n") or note.endswith("\n\n"):
        raise Rejected(f"{what}: not a signed note (it must end with one newline)")
    body, _, signatures = note[:-1].rpartition("\n\n")
    body += "\n"
    for line in signatures.split("\n"):
        signer, _, blob = line.removeprefix("\u2014 ").rpartition(" ")
        raw = base64.b64decode(blob)
        if signer == name and raw[:4] == key_id:
            try:
                Ed25519PublicKey.from_public_bytes(public).verify(raw[4:], body.encode())
            except InvalidSignature:
                raise Rejected(f"{what}: the signature does not verify") from None
            return body
    raise Rejected(f"{what}: not signed by {name}")


def read_files(location: str) -> dict[str, bytes]:
    path = Path(location)
    if path.is_dir():
        return {str(p.relative_to(path)).replace("\\", "/"): p.read_bytes()
                for p in sorted(path.rglob("*")) if p.is_file()}
    with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()
                if not info.is_dir()}


def check(files: dict[str, bytes], key_text: str) -> str:
    key = parse_key(key_text)
    # 1. The signed manifest.
    manifest_bytes = files.get("MANIFEST.json")
    signature = files.get("MANIFEST.sig")
    if manifest_bytes is None or signature is None:
        raise Rejected("MANIFEST.json or MANIFEST.sig is missing")
    body = open_note(signature.decode("utf-8"), key, "MANIFEST.sig")
    lines = body.split("\n")
    if lines[0] != "territorial-ledger dossier" or \
            lines[2] != hashlib.sha256(manifest_bytes).hexdigest():
        raise Rejected("MANIFEST.sig does not sign this MANIFEST.json")
    manifest = json.loads(manifest_bytes)
    # 2. Every file, and nothing else.
    listed = manifest["files"]
    for name, digest in listed.items():
        if name not in files:
            raise Rejected(f"{name} is listed in the manifest but missing")
        if hashlib.sha256(files[name]).hexdigest() != digest:
            raise Rejected(f"{name} was altered (its SHA-256 is not the manifest's)")
    extra = sorted(set(files) - set(listed) - {"MANIFEST.json", "MANIFEST.sig"})
    if extra:
        raise Rejected(f"{extra[0]} is not in the manifest")
    # 3. The signed checkpoint.
    checkpoint = files["checkpoint.txt"].decode("utf-8")
    head = open_note(checkpoint, key, "checkpoint.txt").split("\n")
    size, root = int(head[1]), base64.b64decode(head[2])
    # 4. Every proof.
    entries = {}
    for name in sorted(n for n in files if n.startswith("proofs/")):
        text = files[name].decode("utf-8")
        proof_head, _, note = text.partition("\n\n")
        if note != checkpoint:
            raise Rejected(f"{name} is not against checkpoint.txt")
        rows = proof_head.split("\n")
        if rows[0] != "c2sp.org/tlog-proof@v1" or not rows[1].startswith("extra "):
            raise Rejected(f"{name} is not a c2sp.org/tlog-proof@v1 proof with its entry")
        entry = base64.b64decode(rows[1][6:])
        index = int(rows[2].removeprefix("index "))
        path = [base64.b64decode(h) for h in rows[3:]]
        if root_from_inclusion(index, size, hashlib.sha256(b"\x00" + entry).digest(),
                               path) != root:
            raise Rejected(f"{name}: the entry is not in the tree the checkpoint signed")
        record = json.loads(entry)
        if record["position"] != index + 1:
            raise Rejected(f"{name}: the entry says position {record['position']}")
        entries[record["position"]] = record
    # 5. Documents and history against their proved entries.
    documents = 0
    for name in sorted(n for n in files if n.startswith("documents/") and n.endswith(".json")):
        recorded = json.loads(files[name])
        entry = entries.get(recorded["position"])
        if entry is None:
            raise Rejected(f"{name}: no proof of entry {recorded['position']}")
        if entry["data"].get("document") != recorded["document"] or \
                entry["data"].get("digest") != recorded["sha256"]:
            raise Rejected(f"{name} is not the document entry {recorded['position']} recorded")
        documents += 1
    history = json.loads(files["history.json"])
    for item in history:
        entry = entries.get(item["position"])
        if entry is None or entry["event"] != item["event"]:
            raise Rejected(f"history.json: entry {item['position']} has no matching proof")
    return (f"OK: {len(listed)} files as signed, {len(entries)} entries in the tree of {size} "
            f"signed by {key[0]}, {documents} document(s) as recorded.")


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--key":
        print(__doc__, file=sys.stderr)
        return 2
    location = argv[3] if len(argv) > 3 else str(Path(__file__).resolve().parent)
    try:
        print(check(read_files(location), argv[2]))
    except (Rejected, KeyError, ValueError) as error:
        print(f"REJECTED: {error}", file=sys.stderr)
        return 4
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
