"""The Merkle tree of a store's log, for checkpoints and proofs.

Leaf hashes are stored with their entries. Perfect subtrees of 256 leaves and
more are cached in ``ledger_tree`` when a checkpoint is made, so that an
inclusion or consistency proof reads O(log n) cached nodes and at most two
tiles of 256 leaves, whatever the size of the log. The cache is not part of the
history: every proof is checked against a signed root before it is given out,
and ``ledger audit verify`` recomputes everything from the entries themselves.
"""

from __future__ import annotations

from typing import Any

from eventstore.merkle import EMPTY_ROOT, node_hash, root_of, split_point

TILE_LEVEL = 8
TILE = 1 << TILE_LEVEL
_READ = 65_536  # leaves read at once when filling the cache


class StoreTree:
    """``subtree(lo, hi)`` over a store's stored leaves and node cache."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self._nodes: dict[tuple[int, int], bytes] = {}

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH of the leaves at tree indices ``[lo, hi)`` (positions lo + 1 … hi)."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n >= TILE and n & (n - 1) == 0 and lo % n == 0:
            level = n.bit_length() - 1
            key = (level, lo >> level)
            if key not in self._nodes:
                self._nodes.update(self.recorder.tree_nodes([key]))
            if key not in self._nodes:
                middle = lo + n // 2
                self._nodes[key] = node_hash(self.subtree(lo, middle), self.subtree(middle, hi))
            return self._nodes[key]
        if n <= TILE:
            return root_of(self.recorder.leaves(lo, hi))
        k = split_point(n)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def fill(self, size: int) -> int:
        """Cache every perfect subtree of 256 leaves or more within the first ``size`` leaves.

        Reads only the leaves not yet covered by cached tiles. Returns how many nodes were added.
        """
        tiles = size >> TILE_LEVEL
        have = self._cached_tiles(tiles)
        new: dict[tuple[int, int], bytes] = {}
        for start in range(have * TILE, tiles * TILE, _READ):
            stop = min(start + _READ, tiles * TILE)
            leaves = self.recorder.leaves(start, stop)
            if len(leaves) != stop - start:
                raise ValueError(f"the log has no entry at some position between {start + 1} "
                                 f"and {stop}")
            for offset in range(0, len(leaves), TILE):
                new[(TILE_LEVEL, (start + offset) >> TILE_LEVEL)] = root_of(
                    leaves[offset:offset + TILE])
        level = TILE_LEVEL + 1
        while (1 << level) <= size:
            first, count = (have * TILE) >> level, size >> level
            if first < count:
                wanted = [(level - 1, i) for i in range(2 * first, 2 * count)
                          if (level - 1, i) not in new]
                known = {**self.recorder.tree_nodes(wanted), **new} if wanted else new
                for index in range(first, count):
                    new[(level, index)] = node_hash(known[(level - 1, 2 * index)],
                                                    known[(level - 1, 2 * index + 1)])
            level += 1
        self.recorder.put_tree_nodes(new)
        self._nodes.update(new)
        return len(new)

    def _cached_tiles(self, tiles: int) -> int:
        """How many leading tiles are cached (binary search: tiles are cached in order)."""
        lo, hi = 0, tiles
        while lo < hi:
            middle = (lo + hi) // 2
            if self.recorder.tree_nodes([(TILE_LEVEL, middle)]):
                lo = middle + 1
            else:
                hi = middle
        return lo
