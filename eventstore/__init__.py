"""The event store, a layer of its own: one log in commit order, provable.

Every stored event is an entry of one append-only log: a dense, gapless
*position* and a *recorded time*, both set by the store when the entry is
committed, the event's stable type name and version, its aggregate, its data,
the metadata of the command that produced it (who, from which file) and the
Merkle *leaf* hash of all of that (RFC 9162). Signed checkpoints of the Merkle
tree make history that cannot be rewritten unnoticed.

Modules: ``canonical`` (the exact bytes of an entry), ``merkle`` (RFC 9162
trees and proofs), ``notes`` (C2SP signed notes, checkpoints and proofs),
``mapper`` (domain events ↔ entries, through ``ledger.events``), ``sqlite`` and
``postgres`` (the two stores), ``app`` (opening a store), ``tree`` (proofs
against a store).
"""
