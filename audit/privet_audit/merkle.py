"""RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their verifiers.

The log commits to entries with the tree of RFC 9162 section 2.1:
``leaf = SHA-256(0x00 || entry)`` and ``node = SHA-256(0x01 || left || right)``.
The platform keeps the hashes of *perfect* subtrees (``level``, ``index``) — the
node covering leaves ``[index * 2**level, (index + 1) * 2**level)`` — so it can
serve any proof with O(log n) look-ups through a ``node(level, index)`` callable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "ConsistencyError",
    "InclusionError",
    "MemoryTree",
    "Node",
    "NodeFn",
    "ProofError",
    "consistency_proof",
    "consistency_proof_ranges",
    "inclusion_proof",
    "inclusion_proof_keys",
    "inclusion_proofs",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_hash",
    "subtree_hash",
    "subtree_keys",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
#: Root of the empty tree: SHA-256 of the empty string.
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256

#: ``node(level, index) -> hash`` of a perfect subtree; level 0 is the leaf hash.
NodeFn = Callable[[int, int], bytes]


class ProofError(ValueError):
    """A Merkle proof does not verify; the message says exactly why."""


class InclusionError(ProofError):
    """An inclusion proof does not prove that the leaf is in the tree."""


class ConsistencyError(ProofError):
    """A consistency proof does not prove that one tree extends the other."""


def leaf_hash(entry: bytes) -> bytes:
    """Hash of a leaf: SHA-256(0x00 || entry)."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _hash_level(level: Sequence[bytes]) -> list[bytes]:
    """Pair up a level; an odd last node is promoted unchanged (RFC 6962 shape)."""
    sha = _sha256
    nxt = [sha(b"\x01" + a + b).digest() for a, b in zip(level[0::2], level[1::2], strict=False)]
    if len(level) % 2:
        nxt.append(level[-1])
    return nxt


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """Root of the tree over ``leaf_hashes`` (iterative, level by level)."""
    if not leaf_hashes:
        return EMPTY_ROOT
    level: Sequence[bytes] = leaf_hashes
    while len(level) > 1:
        level = _hash_level(level)
    return level[0]


def _largest_power_of_two_below(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (n >= 2): the RFC 6962 split."""
    return 1 << ((n - 1).bit_length() - 1)


@dataclass(frozen=True, slots=True)
class Node:
    """A perfect subtree hash to persist: covers leaves [index << level, (index+1) << level)."""

    level: int
    index: int
    hash: bytes


@dataclass
class CompactRange:
    """Incremental tree over leaves [0, size): the O(log n) right border of perfect subtrees.

    ``extend`` appends leaf hashes in a batch and reports the perfect-subtree nodes the
    batch completed, so the platform can persist them and later answer proofs with a
    ``node(level, index)`` look-up. Restart from stored state with
    ``CompactRange.from_nodes(size, node)``.
    """

    size: int = 0
    #: Perfect subtree roots from the left, largest first (one per set bit of ``size``).
    hashes: list[bytes] = field(default_factory=list)

    @classmethod
    def from_nodes(cls, size: int, node: NodeFn) -> CompactRange:
        """Rebuild the border for ``size`` leaves from stored perfect-subtree nodes."""
        hashes = []
        begin = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                hashes.append(node(level, begin >> level))
                begin += 1 << level
        return cls(size=size, hashes=hashes)

    def levels(self) -> list[int]:
        """Levels of the border nodes, matching ``hashes``."""
        return [lv for lv in range(self.size.bit_length() - 1, -1, -1) if self.size >> lv & 1]

    def root(self) -> bytes:
        """Root hash of the tree of the current size."""
        if not self.hashes:
            return EMPTY_ROOT
        acc = self.hashes[-1]
        for h in reversed(self.hashes[:-1]):
            acc = _sha256(b"\x01" + h + acc).digest()
        return acc

    def append(self, leaf: bytes) -> list[Node]:
        """Append one leaf hash; return the nodes (level >= 1) it completed."""
        return self.extend([leaf])

    def extend(self, leaves: Sequence[bytes], *, collect: bool = True) -> list[Node]:
        """Append leaf hashes; return newly completed perfect-subtree nodes (level >= 1).

        Leaves (level 0) are not returned: the caller already holds them. With
        ``collect=False`` nothing is gathered, which is what the verifier uses.
        """
        out: list[Node] = []
        i, n = 0, len(leaves)
        sha = _sha256
        while i < n:
            size = self.size
            # Biggest block that starts aligned at `size` and fits in what is left.
            block = 1 << ((n - i).bit_length() - 1)
            if size:
                block = min(block, size & -size)
            level_no = block.bit_length() - 1
            level: Sequence[bytes] = leaves[i : i + block]
            base = size
            lv = 0
            while len(level) > 1:
                level = [
                    sha(b"\x01" + a + b).digest()
                    for a, b in zip(level[0::2], level[1::2], strict=True)
                ]
                lv += 1
                if collect:
                    start = base >> lv
                    out.extend(Node(lv, start + j, h) for j, h in enumerate(level))
            h = level[0]
            # Merge with equal-sized border nodes on the right edge.
            pos = size + block
            lv = level_no
            hashes = self.hashes
            while (size >> lv) & 1:
                h = sha(b"\x01" + hashes.pop() + h).digest()
                lv += 1
                if collect:
                    out.append(Node(lv, (pos >> lv) - 1, h))
            hashes.append(h)
            self.size = pos
            i += block
        return out


def subtree_keys(begin: int, end: int) -> list[tuple[int, int]]:
    """The perfect subtrees (level, index) that make up leaves [begin, end), largest
    first: what ``subtree_hash`` reads (at most log n; a perfect subtree: one)."""
    if end <= begin:
        raise ValueError(f"empty range [{begin}, {end})")
    keys: list[tuple[int, int]] = []
    pos, rest = begin, end - begin
    while rest:  # one step per set bit, largest first
        level = rest.bit_length() - 1
        if pos & ((1 << level) - 1):
            raise ValueError(f"range [{begin}, {end}) is not a subtree of the log")
        keys.append((level, pos >> level))
        pos += 1 << level
        rest ^= 1 << level
    return keys


def subtree_hash(begin: int, end: int, node: NodeFn) -> bytes:
    """MTH of leaves [begin, end) (``begin`` aligned as in the RFC 6962 tree): its perfect
    subtrees (``subtree_keys``) folded from the right."""
    parts = subtree_keys(begin, end)
    acc = node(*parts[-1])
    for key in reversed(parts[:-1]):
        acc = node_hash(node(*key), acc)
    return acc


def inclusion_proof(index: int, size: int, node: NodeFn) -> list[bytes]:
    """RFC 9162 inclusion proof (audit path) for leaf ``index`` in the tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside the tree of size {size}")
    proof: list[bytes] = []
    begin, end = 0, size
    while end - begin > 1:
        k = _largest_power_of_two_below(end - begin)
        if index < begin + k:
            proof.append(subtree_hash(begin + k, end, node))
            end = begin + k
        else:
            proof.append(subtree_hash(begin, begin + k, node))
            begin += k
    proof.reverse()
    return proof


def _walks(indexes: Iterable[int], size: int) -> Iterator[tuple[int, list[tuple[int, int]]]]:
    """The RFC 6962 walk to each leaf, top down: (proof elements kept from the previous
    leaf, leaf ranges of the new ones). It restarts below the deepest range holding both
    leaves, so leaves in order cost O(1) new elements each (amortised), not O(log n)."""
    ranges: list[tuple[int, int]] = []  # the range the leaf went into at each split
    for index in indexes:
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside the tree of size {size}")
        while ranges and not ranges[-1][0] <= index < ranges[-1][1]:
            ranges.pop()
        begin, end = ranges[-1] if ranges else (0, size)
        new: list[tuple[int, int]] = []
        while end - begin > 1:
            k = 1 << ((end - begin - 1).bit_length() - 1)  # largest power of two below
            if index < begin + k:
                new.append((begin + k, end))
                end = begin + k
            else:
                new.append((begin, begin + k))
                begin += k
            ranges.append((begin, end))
        yield len(ranges) - len(new), new


def inclusion_proofs(indexes: Iterable[int], size: int, node: NodeFn) -> Iterator[list[bytes]]:
    """``inclusion_proof(index, size, node)`` of each of ``indexes`` from one shared walk:
    neighbouring leaves only redo the lowest levels (increasing order is cheapest)."""
    top_down: list[bytes] = []
    for kept, new in _walks(indexes, size):
        del top_down[kept:]
        top_down.extend(subtree_hash(b, e, node) for b, e in new)
        yield top_down[::-1]


def inclusion_proof_keys(indexes: Iterable[int], size: int) -> set[tuple[int, int]]:
    """The nodes (level, index) ``inclusion_proofs(indexes, size, node)`` reads, from
    the same walk (to read them in one batch before building the proofs)."""
    keys: set[tuple[int, int]] = set()
    for _kept, new in _walks(indexes, size):
        keys.update(key for begin, end in new for key in subtree_keys(begin, end))
    return keys


def consistency_proof(size1: int, size2: int, node: NodeFn) -> list[bytes]:
    """RFC 9162 consistency proof that the tree of ``size2`` extends the one of ``size1``."""
    if not 0 <= size1 <= size2:
        raise ValueError(f"need 0 <= size1 <= size2, got {size1} and {size2}")
    if size1 == 0 or size1 == size2:
        return []
    proof: list[bytes] = []
    begin, end = 0, size2
    whole = True  # still on the path where the old tree is a complete left part
    while True:
        if size1 == end:
            if not whole:
                proof.append(subtree_hash(begin, end, node))
            break
        k = _largest_power_of_two_below(end - begin)
        if size1 <= begin + k:
            proof.append(subtree_hash(begin + k, end, node))
            end = begin + k
        else:
            proof.append(subtree_hash(begin, begin + k, node))
            begin += k
            whole = False
    proof.reverse()
    return proof


def consistency_proof_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf range ``[begin, end)`` that each element of ``consistency_proof`` covers.

    Once the proof verifies against both signed roots, the elements whose range starts
    at or after ``size1`` are authenticated hashes of a partition of ``[size1, size2)``;
    the verifier compares them with its own to narrow down a tampered entry.
    """
    ranges: list[tuple[int, int]] = []
    if not 0 <= size1 <= size2:
        raise ValueError(f"need 0 <= size1 <= size2, got {size1} and {size2}")
    if size1 == 0 or size1 == size2:
        return []
    begin, end, whole = 0, size2, True
    while True:
        if size1 == end:
            if not whole:
                ranges.append((begin, end))
            break
        k = _largest_power_of_two_below(end - begin)
        if size1 <= begin + k:
            ranges.append((begin + k, end))
            end = begin + k
        else:
            ranges.append((begin, begin + k))
            begin += k
            whole = False
    ranges.reverse()
    return ranges


def _check_hash(name: str, value: bytes, exc: type[ProofError]) -> None:
    if len(value) != HASH_SIZE:
        raise exc(f"{name} is {len(value)} bytes, expected {HASH_SIZE}")


def root_from_inclusion_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """Recompute the root implied by an inclusion proof (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        raise InclusionError(f"leaf index {index} is outside the tree of size {size}")
    _check_hash("leaf hash", leaf, InclusionError)
    # Shape of the path: `inner` levels where the sibling is at the same height,
    # then `border` levels where the node is a right-border node.
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    if len(proof) != inner + border:
        raise InclusionError(
            f"inclusion proof for leaf {index} in a tree of size {size} must have "
            f"{inner + border} hashes, got {len(proof)}"
        )
    acc = leaf
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p, InclusionError)
        # Sibling on the left (or a right-border node) hashes first.
        left = i >= inner or index >> i & 1
        acc = node_hash(p, acc) if left else node_hash(acc, p)
    return acc


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ``InclusionError`` unless ``proof`` shows ``leaf`` at ``index`` under ``root``."""
    _check_hash("root", root, InclusionError)
    got = root_from_inclusion_proof(leaf, index, size, proof)
    if got != root:
        raise InclusionError(
            f"inclusion proof for leaf {index} in a tree of size {size} leads to root "
            f"{got.hex()}, expected {root.hex()}"
        )


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise ``ConsistencyError`` unless the tree (size2, root2) extends (size1, root1)."""
    if size1 < 0 or size2 < 0:
        raise ConsistencyError(f"tree sizes must be non-negative, got {size1} and {size2}")
    if size2 < size1:
        raise ConsistencyError(
            f"size2 ({size2}) is smaller than size1 ({size1}): a log never shrinks"
        )
    _check_hash("root1", root1, ConsistencyError)
    _check_hash("root2", root2, ConsistencyError)
    if size1 == size2:
        if proof:
            raise ConsistencyError(
                f"equal sizes ({size1}) need an empty proof, got {len(proof)} hashes"
            )
        if root1 != root2:
            raise ConsistencyError(
                f"two trees of size {size1} have different roots {root1.hex()} and "
                f"{root2.hex()}: the log forked"
            )
        return
    if size1 == 0:
        if proof:
            raise ConsistencyError(f"a proof from the empty tree must be empty, got {len(proof)}")
        return
    # RFC 9162 section 2.1.4.2, written as transparency-dev/merkle does: the proof has
    # `inner` hashes inside the common subtree and `border` hashes on the right edge.
    inner = ((size1 - 1) ^ (size2 - 1)).bit_length()
    shift = (size1 & -size1).bit_length() - 1  # trailing zeros of size1
    inner_rel = inner - shift
    seed_in_proof = size1 != 1 << shift  # size1 a power of two: seed is root1 itself
    expected = inner_rel + bin((size1 - 1) >> inner).count("1") + (1 if seed_in_proof else 0)
    if not proof:
        raise ConsistencyError(f"empty consistency proof from size {size1} to {size2}")
    if len(proof) != expected:
        raise ConsistencyError(
            f"consistency proof from size {size1} to {size2} must have {expected} hashes, "
            f"got {len(proof)}"
        )
    for i, p in enumerate(proof):
        _check_hash(f"proof[{i}]", p, ConsistencyError)
    if seed_in_proof:
        seed, rest = proof[0], list(proof[1:])
    else:
        seed, rest = root1, list(proof)
    mask = (size1 - 1) >> shift
    # Old root: fold the left siblings only; new root: fold all siblings.
    r1 = seed
    r2 = seed
    for i in range(inner_rel):
        p = rest[i]
        if mask >> i & 1:
            r1 = node_hash(p, r1)
            r2 = node_hash(p, r2)
        else:
            r2 = node_hash(r2, p)
    for p in rest[inner_rel:]:
        r1 = node_hash(p, r1)
        r2 = node_hash(p, r2)
    if r1 != root1:
        raise ConsistencyError(
            f"consistency proof from size {size1} to {size2} leads to old root {r1.hex()}, "
            f"expected {root1.hex()}"
        )
    if r2 != root2:
        raise ConsistencyError(
            f"consistency proof from size {size1} to {size2} leads to new root {r2.hex()}, "
            f"expected {root2.hex()}"
        )


class MemoryTree:
    """A whole tree held in memory: a reference ``node`` source for tests and small exports."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for leaf in leaves:
            self.append_hash(leaf)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MemoryTree:
        """Build from raw entries (hashes each as a leaf)."""
        return cls(leaf_hash(e) for e in entries)

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def append_hash(self, leaf: bytes) -> None:
        """Append one leaf hash and complete the perfect subtrees it closes."""
        self._levels[0].append(leaf)
        lv = 0
        while len(self._levels[lv]) % 2 == 0:
            row = self._levels[lv]
            h = node_hash(row[-2], row[-1])
            if lv + 1 == len(self._levels):
                self._levels.append([])
            self._levels[lv + 1].append(h)
            lv += 1

    def node(self, level: int, index: int) -> bytes:
        """Hash of a perfect subtree; raises ``KeyError`` if it is not complete yet."""
        try:
            return self._levels[level][index]
        except IndexError:
            raise KeyError((level, index)) from None

    def root(self, size: int | None = None) -> bytes:
        """Root of the tree of the first ``size`` leaves (default: all)."""
        n = self.size if size is None else size
        if not 0 <= n <= self.size:
            raise ValueError(f"size {n} outside [0, {self.size}]")
        return EMPTY_ROOT if n == 0 else subtree_hash(0, n, self.node)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Inclusion proof for ``index`` in the tree of ``size`` leaves."""
        return inclusion_proof(index, self.size if size is None else size, self.node)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """Consistency proof between two sizes."""
        return consistency_proof(size1, self.size if size2 is None else size2, self.node)
