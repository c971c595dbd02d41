"""Known-answer and negative cases ported from transparency-dev/merkle.

Sources: testonly/constants.go (leaves, node and root hashes for sizes 0..8) and
proof/verify_test.go (inclusion/consistency vectors and their corruptions).
"""

from __future__ import annotations

import pytest

from privet_audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ConsistencyError,
    InclusionError,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)


def h(x: str) -> bytes:
    return bytes.fromhex(x)


LEAVES = [
    h(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]

ROOTS = [
    EMPTY_ROOT,
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")

# (leaf number, 1-based as in the Go file; tree size; proof)
INCLUSION = [
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (3, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        2,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (1, 1, []),
]

CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

TREE = MemoryTree.from_entries(LEAVES)


@pytest.mark.parametrize("size", range(0, 9))
def test_roots_for_sizes_0_to_8(size: int) -> None:
    hashes = [leaf_hash(x) for x in LEAVES[:size]]
    assert root_hash(hashes) == ROOTS[size]
    assert TREE.root(size) == ROOTS[size]
    cr = CompactRange()
    cr.extend(hashes)
    assert cr.root() == ROOTS[size]


def test_node_hashes_match_perfect_subtrees() -> None:
    for level, row in enumerate(NODE_HASHES):
        for index, want in enumerate(row):
            assert TREE.node(level, index) == want


def test_compact_range_reports_every_node_once_in_any_batching() -> None:
    hashes = [leaf_hash(x) for x in LEAVES]
    for batch in (1, 2, 3, 5, 8):
        cr = CompactRange()
        nodes = []
        for i in range(0, 8, batch):
            nodes += cr.extend(hashes[i : i + batch])
        got = {(n.level, n.index): n.hash for n in nodes}
        want = {(lv, i): x for lv, row in enumerate(NODE_HASHES) if lv for i, x in enumerate(row)}
        assert got == want
        assert cr.root() == ROOTS[8]


def test_compact_range_from_stored_nodes_resumes() -> None:
    hashes = [leaf_hash(x) for x in LEAVES]
    for size in range(0, 8):
        cr = CompactRange.from_nodes(size, TREE.node)
        assert cr.root() == ROOTS[size]
        cr.extend(hashes[size:])
        assert cr.root() == ROOTS[8]


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_known_answers(leaf: int, size: int, proof: list[bytes]) -> None:
    index = leaf - 1
    assert inclusion_proof(index, size, TREE.node) == proof
    lh = leaf_hash(LEAVES[index])
    assert root_from_inclusion_proof(lh, index, size, proof) == ROOTS[size]
    verify_inclusion(lh, index, size, proof, ROOTS[size])


def inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, list[bytes], bytes, bytes]]:
    probes = [
        ("index - 1", index - 1, size, proof, root, leaf),
        ("index + 1", index + 1, size, proof, root, leaf),
        ("index ^ 2", index ^ 2, size, proof, root, leaf),
        ("size * 2", index, size * 2, proof, root, leaf),
        ("size / 2", index, size // 2, proof, root, leaf),
        ("wrong leaf", index, size, proof, root, b"WrongLeaf"),
        ("empty root", index, size, proof, EMPTY_ROOT, leaf),
        ("random root", index, size, proof, SOME_HASH, leaf),
        ("trailing garbage", index, size, [*proof, b""], root, leaf),
        ("trailing root", index, size, [*proof, root], root, leaf),
        ("preceding garbage", index, size, [b"", *proof], root, leaf),
        ("preceding root", index, size, [root, *proof], root, leaf),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((f"proof[{i}] bit 3 flipped", index, size, bad, root, leaf))
    if proof:
        probes.append(("removed component", index, size, proof[:-1], root, leaf))
    if len(proof) > 1:
        probes.append(
            ("inserted component", index, size, [proof[0], SOME_HASH, *proof[1:]], root, leaf)
        )
    return probes


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_negatives(leaf: int, size: int, proof: list[bytes]) -> None:
    index = leaf - 1
    lh = leaf_hash(LEAVES[index])
    for desc, i, n, p, root, lf in inclusion_probes(index, size, proof, ROOTS[size], lh):
        with pytest.raises(InclusionError):
            verify_inclusion(lf, i, n, p, root)
            pytest.fail(f"accepted corrupted inclusion proof: {desc}")


def test_inclusion_single_entry() -> None:
    lh = leaf_hash(b"data")
    verify_inclusion(lh, 0, 1, [], lh)
    for root, leaf in [(lh, b""), (b"", lh), (b"", b"")]:
        with pytest.raises(InclusionError):
            verify_inclusion(leaf, 0, 1, [], root)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_bad_shapes(index: int, size: int) -> None:
    for leaf, root in [(SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)]:
        with pytest.raises(InclusionError):
            verify_inclusion(leaf, index, size, [], root)


def test_inclusion_error_messages_are_precise() -> None:
    lh = leaf_hash(LEAVES[0])
    proof = INCLUSION[0][2]
    with pytest.raises(InclusionError, match="must have 3 hashes, got 2"):
        verify_inclusion(lh, 0, 8, proof[:2], ROOTS[8])
    with pytest.raises(InclusionError, match=r"proof\[3\] is 0 bytes|must have 3 hashes"):
        verify_inclusion(lh, 0, 8, [*proof, b""], ROOTS[8])
    with pytest.raises(InclusionError, match="outside the tree of size 8"):
        verify_inclusion(lh, 8, 8, proof, ROOTS[8])
    with pytest.raises(InclusionError, match="leads to root .* expected " + ROOTS[7].hex()):
        verify_inclusion(lh, 0, 8, proof, ROOTS[7])


@pytest.mark.parametrize(("size1", "size2", "proof"), CONSISTENCY)
def test_consistency_known_answers(size1: int, size2: int, proof: list[bytes]) -> None:
    assert consistency_proof(size1, size2, TREE.node) == proof
    verify_consistency(size1, size2, proof, ROOTS[size1], ROOTS[size2])


@pytest.mark.parametrize(("size1", "size2", "proof"), [c for c in CONSISTENCY if c[2]])
def test_consistency_negatives(size1: int, size2: int, proof: list[bytes]) -> None:
    r1, r2 = ROOTS[size1], ROOTS[size2]
    probes = [
        ("size1 - 1", size1 - 1, size2, r1, r2, proof),
        ("size1 + 1", size1 + 1, size2, r1, r2, proof),
        ("size1 ^ 2", size1 ^ 2, size2, r1, r2, proof),
        ("size2 * 2", size1, size2 * 2, r1, r2, proof),
        ("size2 / 2", size1, size2 // 2, r1, r2, proof),
        ("wrong root1", size1, size2, b"WrongRoot", r2, proof),
        ("wrong root2", size1, size2, r1, b"WrongRoot", proof),
        ("swapped roots", size1, size2, r2, r1, proof),
        ("empty proof", size1, size2, r1, r2, []),
        ("trailing garbage", size1, size2, r1, r2, [*proof, b""]),
        ("trailing root1", size1, size2, r1, r2, [*proof, r1]),
        ("trailing root2", size1, size2, r1, r2, [*proof, r2]),
        ("preceding garbage", size1, size2, r1, r2, [b"", *proof]),
        ("preceding root1", size1, size2, r1, r2, [r1, *proof]),
        ("preceding root2", size1, size2, r1, r2, [r2, *proof]),
        ("preceding proof[0]", size1, size2, r1, r2, [proof[0], *proof]),
        ("truncated proof", size1, size2, r1, r2, proof[:-1]),
        ("size2 < size1", size2, size1, r2, r1, proof),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((f"proof[{i}] bit 4 flipped", size1, size2, r1, r2, bad))
    for desc, s1, s2, a, b, p in probes:
        with pytest.raises(ConsistencyError):
            verify_consistency(s1, s2, p, a, b)
            pytest.fail(f"accepted corrupted consistency proof: {desc}")


R1, R2 = ROOTS[1], ROOTS[2]


@pytest.mark.parametrize(
    ("size1", "size2", "root1", "root2", "proof", "ok"),
    [
        (0, 0, R1, R2, [], False),
        (1, 1, R1, R2, [], False),
        (0, 0, R1, R1, [], True),
        (0, 1, R1, R2, [], True),
        (1, 1, R2, R2, [], True),
        (1, 0, R1, R2, [], False),  # time travel to the past
        (2, 1, R1, R2, [], False),
        (1, 2, R1, R2, [], False),  # empty proof
        (0, 0, EMPTY_ROOT, R2, [], False),
        (1, 1, EMPTY_ROOT, R2, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),  # roots match, proof not empty
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
    ],
)
def test_consistency_edge_cases(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(size1, size2, proof, root1, root2)
    else:
        with pytest.raises(ConsistencyError):
            verify_consistency(size1, size2, proof, root1, root2)


def test_consistency_error_messages_are_precise() -> None:
    proof = CONSISTENCY[2][2]
    with pytest.raises(ConsistencyError, match=r"size2 \(5\) is smaller than size1 \(6\)"):
        verify_consistency(6, 5, proof, ROOTS[6], ROOTS[5])
    with pytest.raises(ConsistencyError, match="must have 3 hashes, got 2"):
        verify_consistency(6, 8, proof[:2], ROOTS[6], ROOTS[8])
    with pytest.raises(ConsistencyError, match="leads to old root"):
        verify_consistency(6, 8, proof, ROOTS[5], ROOTS[8])
    with pytest.raises(ConsistencyError, match="leads to new root"):
        verify_consistency(6, 8, proof, ROOTS[6], ROOTS[7])
    with pytest.raises(ConsistencyError, match="the log forked"):
        verify_consistency(3, 3, [], ROOTS[3], ROOTS[4])
