"""C2SP signed notes, checkpoints and proofs, with Ed25519 keys.

- signed note (c2sp.org/signed-note): a text ending in a newline, a blank line, then
  lines ``— <key name> base64(key ID || signature)``; key ID = the first four bytes
  of SHA-256(key name || 0x0A || 0x01 || public key); Ed25519 signs the text.
- keys use the text forms of golang.org/x/mod/sumdb/note, which the transparency
  tools (and C2SP's witnesses) read: the signer key ``PRIVATE+KEY+<name>+<hex
  id>+base64(0x01 || seed)`` stays in a file the operator keeps; the verifier key
  ``<name>+<hex id>+base64(0x01 || public key)`` is published.
- checkpoint (c2sp.org/tlog-checkpoint): the note text ``<origin>\\n<size>\\n<base64
  root>\\n``.
- proof (c2sp.org/tlog-proof): ``c2sp.org/tlog-proof@v1``, an optional ``extra``
  line (here: the entry's canonical bytes, so that one file proves one entry),
  ``index N``, the inclusion path one base64 hash a line, a blank line, the
  checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from collections.abc import Iterable, Sequence

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = 0x01
DASH = "\u2014"
PROOF_HEADER = "c2sp.org/tlog-proof@v1"
_NAME = re.compile(r"[^\s+]+")


class NoteError(ValueError):
    """A key, note, checkpoint or proof that is malformed or does not verify."""


def key_id(name: str, public_key: bytes) -> int:
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()
    return struct.unpack(">I", digest[:4])[0]


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces or '+'")
    return name


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not valid base64") from None


@attrs.frozen
class Verifier:
    """A public key that verifies a log's signatures."""

    name: str
    public_key: bytes = attrs.field(repr=False)

    @property
    def id(self) -> int:
        return key_id(self.name, self.public_key)

    @property
    def text(self) -> str:
        """The verifier key: ``<name>+<hex id>+base64(0x01 || public key)``."""
        material = base64.b64encode(bytes([ED25519]) + self.public_key).decode()
        return f"{self.name}+{self.id:08x}+{material}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key reads <name>+<8 hex digits>+<base64 key>")
        name, hex_id, material = parts
        _check_name(name)
        if not re.fullmatch(r"[0-9a-f]{8}", hex_id):
            raise NoteError(f"verifier key id {hex_id!r} must be 8 lower-case hex digits")
        raw = _b64decode(material, "the verifier key")
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (0x01 and 32 bytes)")
        verifier = cls(name, raw[1:])
        if verifier.id != int(hex_id, 16):
            raise NoteError("the verifier key's id does not match its name and key")
        return verifier

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except (InvalidSignature, ValueError):
            return False
        return True


@attrs.frozen
class Signer:
    """A private signing key. Its text form must never be stored in the ledger."""

    name: str
    seed: bytes = attrs.field(repr=False)

    @classmethod
    def generate(cls, name: str) -> Signer:
        _check_name(name)
        if not (name.isascii() and name.isprintable()):
            # Other tools read key names as ASCII (C2SP log origins are schema-less URLs).
            raise NoteError(f"key name {name!r} must be printable ASCII, such as "
                            "syndicat.example/ledger")
        key = Ed25519PrivateKey.generate()
        from cryptography.hazmat.primitives.serialization import NoEncryption, PrivateFormat

        seed = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return cls(name, seed)

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signing key reads PRIVATE+KEY+<name>+<8 hex digits>+<base64 key>")
        _, _, name, hex_id, material = parts
        _check_name(name)
        raw = _b64decode(material, "the signing key")
        if len(raw) != 33 or raw[0] != ED25519:
            raise NoteError("the signing key is not an Ed25519 key (0x01 and 32 bytes)")
        signer = cls(name, raw[1:])
        if f"{signer.verifier.id:08x}" != hex_id:
            raise NoteError("the signing key's id does not match its name and key")
        return signer

    @property
    def text(self) -> str:
        material = base64.b64encode(bytes([ED25519]) + self.seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.id:08x}+{material}"

    @property
    def verifier(self) -> Verifier:
        key = Ed25519PrivateKey.from_private_bytes(self.seed)
        return Verifier(self.name, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, text: bytes) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).sign(text)


# Signed notes ---------------------------------------------------------------------------------

def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note may not contain control characters other than newline")


def sign_note(text: str, signer: Signer) -> str:
    """The signed note: ``text``, a blank line, the signature line."""
    _check_text(text)
    verifier = signer.verifier
    blob = struct.pack(">I", verifier.id) + signer.sign(text.encode())
    return f"{text}\n{DASH} {signer.name} {base64.b64encode(blob).decode()}\n"


@attrs.frozen
class Signature:
    name: str
    id: int
    signature: bytes


def split_note(note: str) -> tuple[str, list[Signature]]:
    """The text of a signed note and its signature lines (not yet verified)."""
    if not note.endswith("\n"):
        raise NoteError("a signed note must end with a newline")
    head, sep, tail = note[:-1].rpartition("\n\n")
    if not sep:
        raise NoteError("a signed note needs a blank line between its text and signatures")
    text = head + "\n"
    _check_text(text)
    signatures = []
    for line in tail.split("\n"):
        prefix = f"{DASH} "
        if not line.startswith(prefix):
            raise NoteError(f"signature line {line[:40]!r} must start with '— '")
        name, _, blob = line[len(prefix):].rpartition(" ")
        raw = _b64decode(blob, "a signature")
        if not name or len(raw) < 5:
            raise NoteError(f"signature line {line[:40]!r} is malformed")
        signatures.append(Signature(name, struct.unpack(">I", raw[:4])[0], raw[4:]))
    return text, signatures


def open_note(note: str, verifiers: Iterable[Verifier]) -> tuple[str, Verifier]:
    """The text of a note signed by one of ``verifiers``, and which one signed it.

    Unknown signatures are ignored (the note format allows witnesses' cosignatures);
    a known key whose signature fails rejects the note, as the specification says.
    """
    text, signatures = split_note(note)
    known = {(v.name, v.id): v for v in verifiers}
    verified = None
    for signature in signatures:
        verifier = known.get((signature.name, signature.id))
        if verifier is None:
            continue
        if not verifier.verify(text.encode(), signature.signature):
            raise NoteError(f"the signature of {signature.name} does not verify: the note "
                            "was altered or was not signed by this key")
        verified = verified or verifier
    if verified is None:
        names = ", ".join(sorted({s.name for s in signatures})) or "none"
        raise NoteError(f"the note is not signed by a trusted key (signatures by: {names})")
    return text, verified


# Checkpoints ----------------------------------------------------------------------------------

@attrs.frozen
class Checkpoint:
    origin: str
    size: int
    root: bytes

    @property
    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse_text(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not all(lines[:-1]):
            raise NoteError("a checkpoint is an origin, a tree size and a root hash, one a line")
        origin, size, root = lines[0], lines[1], lines[2]
        if not re.fullmatch(r"0|[1-9][0-9]*", size):
            raise NoteError(f"checkpoint tree size {size!r} is not a decimal number")
        raw = _b64decode(root, "the checkpoint's root hash")
        if len(raw) != 32:
            raise NoteError("the checkpoint's root hash is not 32 bytes")
        return cls(origin, int(size), raw)


def signed_checkpoint(checkpoint: Checkpoint, signer: Signer) -> str:
    return sign_note(checkpoint.text, signer)


def open_checkpoint(note: str, verifiers: Iterable[Verifier]) -> tuple[Checkpoint, Verifier]:
    text, verifier = open_note(note, verifiers)
    return Checkpoint.parse_text(text), verifier


# Proofs ---------------------------------------------------------------------------------------

@attrs.frozen
class Proof:
    index: int
    hashes: tuple[bytes, ...]
    checkpoint: str  # the signed checkpoint, verbatim
    extra: bytes | None = None

    @property
    def text(self) -> str:
        lines = [PROOF_HEADER]
        if self.extra is not None:
            lines.append(f"extra {base64.b64encode(self.extra).decode()}")
        lines.append(f"index {self.index}")
        lines += [base64.b64encode(h).decode() for h in self.hashes]
        return "\n".join(lines) + "\n\n" + self.checkpoint

    @classmethod
    def parse(cls, text: str) -> Proof:
        head, sep, checkpoint = text.partition("\n\n")
        if not sep:
            raise NoteError("a proof needs a blank line before its checkpoint")
        lines = head.split("\n")
        if lines[0] != PROOF_HEADER:
            raise NoteError(f"a proof starts with the line {PROOF_HEADER}")
        extra = None
        rest: Sequence[str] = lines[1:]
        if rest and rest[0].startswith("extra "):
            extra = _b64decode(rest[0][6:], "the proof's extra data")
            rest = rest[1:]
        if not rest or not re.fullmatch(r"index (0|[1-9][0-9]*)", rest[0]):
            raise NoteError("a proof needs an 'index N' line")
        hashes = tuple(_b64decode(h, "a proof hash") for h in rest[1:])
        if any(len(h) != 32 for h in hashes):
            raise NoteError("a proof hash is not 32 bytes")
        return cls(int(rest[0][6:]), hashes, checkpoint, extra)
