"""C2SP signed notes, checkpoints and proofs, with the reference example of golang.org/x/mod."""

from __future__ import annotations

import pytest

from eventstore.merkle import EMPTY_ROOT
from eventstore.notes import (
    Checkpoint,
    NoteError,
    Proof,
    Signer,
    Verifier,
    open_checkpoint,
    open_note,
    sign_note,
    signed_checkpoint,
)

# golang.org/x/mod/sumdb/note, note_test.go: a published key pair, text and signature.
SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
TEXT = ("If you think cryptography is the answer to your problem,\n"
        "then you don't know what your problem is.\n")
SIGNATURE = ("— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXg"
             "KvqfqdngotpRZb6KE6RyyBwJnAM=\n")


def test_keys_and_signature_match_the_go_reference_byte_for_byte():
    signer = Signer.parse(SKEY)
    assert signer.text == SKEY
    assert signer.verifier.text == VKEY
    assert sign_note(TEXT, signer) == TEXT + "\n" + SIGNATURE


def test_a_signed_note_opens_with_its_key_and_not_once_altered():
    note = TEXT + "\n" + SIGNATURE
    assert open_note(note, [Verifier.parse(VKEY)]) == (TEXT, Verifier.parse(VKEY))
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note.replace("cryptography", "cryptographY"), [Verifier.parse(VKEY)])
    other = Signer.generate("PeterNeumann").verifier
    with pytest.raises(NoteError, match="not signed by a trusted key"):
        open_note(note, [other])


@pytest.mark.parametrize("key", [VKEY[:-1], VKEY.replace("c74f20a3", "c74f20a4"), "PeterNeumann",
                                 VKEY.replace("PeterNeumann", "Peter Neumann"),
                                 VKEY.replace("+ARpc", "+AZpc")])
def test_mangled_verifier_keys_are_refused(key):
    with pytest.raises(NoteError):
        Verifier.parse(key)


def test_checkpoint_text_and_signature_round_trip():
    signer = Signer.generate("example.org/ledger")
    checkpoint = Checkpoint("example.org/ledger", 20852163, EMPTY_ROOT)
    assert checkpoint.text == ("example.org/ledger\n20852163\n"
                               "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n")
    note = signed_checkpoint(checkpoint, signer)
    assert open_checkpoint(note, [signer.verifier]) == (checkpoint, signer.verifier)
    with pytest.raises(NoteError):
        open_checkpoint(note.replace("20852163", "20852164"), [signer.verifier])


@pytest.mark.parametrize("text", ["origin\n012\nAAAA\n", "origin\n12\n", "origin\n12\nAAAA\n"])
def test_malformed_checkpoints_are_refused(text):
    with pytest.raises(NoteError):
        Checkpoint.parse_text(text)


def test_proof_text_round_trip_in_the_c2sp_layout():
    proof = Proof(73894, (b"\x01" * 32, b"\x02" * 32), "origin\n1\nAAAA\n\n— origin x\n",
                  extra=b'{"a":1}')
    lines = proof.text.split("\n")
    assert lines[0] == "c2sp.org/tlog-proof@v1"
    assert lines[1].startswith("extra ") and lines[2] == "index 73894"
    assert Proof.parse(proof.text) == proof
    with pytest.raises(NoteError):
        Proof.parse(proof.text.replace("index 73894", "index 073894"))
