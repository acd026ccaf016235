"""BitTorrent v2 (BEP 52) merkle trees over 16 KiB blocks of SHA-256."""

from __future__ import annotations

import hashlib
from functools import lru_cache

BLOCK = 16 * 1024
ZERO = bytes(32)


@lru_cache(maxsize=64)
def pad_hash(leaves: int) -> bytes:
    """Root of a subtree of ``leaves`` zero leaves (``leaves`` a power of two)."""
    h = ZERO
    while leaves > 1:
        h = hashlib.sha256(h + h).digest()
        leaves //= 2
    return h


def next_pow2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def root(hashes: list[bytes], width: int, pad: bytes = ZERO) -> bytes:
    """Merkle root of ``hashes`` padded with ``pad`` to ``width`` (a power of two) nodes.

    Padding is done per layer with the matching subtree-of-pad hash, so a
    mostly-empty wide tree costs O(len(hashes) + log(width)) hashes.
    """
    sha = hashlib.sha256
    layer = list(hashes)
    if not layer:
        layer = [pad]
    while width > 1:
        if len(layer) % 2:
            layer.append(pad)
        layer = [sha(layer[i] + layer[i + 1]).digest() for i in range(0, len(layer), 2)]
        pad = sha(pad + pad).digest()
        width //= 2
    return layer[0]


def file_root(piece_hashes: list[bytes], piece_length: int, size: int) -> bytes:
    """A file's ``pieces root`` from its piece-layer hashes (or its one sub-piece root)."""
    if size <= piece_length:
        return piece_hashes[0]
    return root(piece_hashes, next_pow2(len(piece_hashes)), pad_hash(piece_length // BLOCK))


class PiecesRoot:
    """A file's ``pieces root``, computed from its bytes fed in order (chunks of any size).

    For callers that read a file for another reason (a SHA-256 of the whole
    file, say) and want its v2 root from the same read.
    """

    def __init__(self) -> None:
        self._leaves: list[bytes] = []
        self._tail = b""  # the bytes of a block not yet complete
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        self.size += len(view)
        if self._tail:
            need = BLOCK - len(self._tail)
            self._tail += bytes(view[:need])
            view = view[need:]
            if len(self._tail) < BLOCK:
                return
            self._leaves.append(hashlib.sha256(self._tail).digest())
            self._tail = b""
        full = len(view) - len(view) % BLOCK
        for i in range(0, full, BLOCK):
            self._leaves.append(hashlib.sha256(view[i : i + BLOCK]).digest())
        if full < len(view):
            self._tail = bytes(view[full:])

    def digest(self) -> bytes | None:
        """The root; None for an empty file (BEP 52 gives it none)."""
        if not self.size:
            return None
        leaves = self._leaves + ([hashlib.sha256(self._tail).digest()] if self._tail else [])
        return file_root(leaves, BLOCK, self.size)
