"""Dinucleotide-preserving shuffles (Altschul & Erickson 1985), in numpy.

A sequence is an Eulerian path through the multigraph whose vertices are the
symbols and whose edges are its dinucleotides (`s[i] -> s[i+1]`). A random
Eulerian path with the same first symbol uses every dinucleotide exactly as
often as the original, so the shuffle keeps the dinucleotide counts (and with
them the mono-nucleotide counts) and the first and last symbol. The path is
drawn the standard way: a random spanning arborescence of "last exits"
rooted at the last symbol (Wilson's loop-erased random walks, each step
picking one of the vertex's out-edges uniformly), the other out-edges of
every vertex in random order before its last exit, then the walk from the
first symbol.
"""

import numpy as np

from attngen_keras.data.alphabet import PAD


def dinucleotide_shuffle(tokens_row, rng):
    """A dinucleotide-preserving shuffle of one token sequence.

    Padding (`PAD`) positions are left where they are; the real positions
    (any symbol, including `N` and IUPAC codes) are shuffled among
    themselves as one sequence.

    Args:
        tokens_row: 1-D `uint8` tokens.
        rng: `numpy.random.Generator`.

    Returns:
        the shuffled copy, same shape and dtype.

    Example:

    >>> from attngen_keras.data import decode, encode
    >>> shuffled = dinucleotide_shuffle(encode("AACGTTGCAACG"), np.random.default_rng(0))
    >>> text = decode(shuffled)
    >>> text[0], text[-1], sorted(text) == sorted("AACGTTGCAACG")
    ('A', 'G', True)
    """
    row = np.asarray(tokens_row, dtype=np.uint8)
    out = row.copy()
    keep = row != PAD
    seq = row[keep]
    if seq.size < 3:
        return out
    symbols, codes = np.unique(seq, return_inverse=True)
    k = len(symbols)
    first, last = int(codes[0]), int(codes[-1])
    # out-edges of every vertex, in sequence order
    sources, targets = codes[:-1], codes[1:]
    edges = [targets[sources == v].tolist() for v in range(k)]
    # random arborescence of last exits towards `last` (Wilson's algorithm)
    in_tree = np.zeros(k, dtype=bool)
    in_tree[last] = True
    last_exit = np.full(k, -1)  # index into edges[v] of v's last exit
    for start in range(k):
        if not edges[start] and start != last:
            continue  # cannot happen in an Eulerian path (only `last` may lack out-edges)
        v = start
        while not in_tree[
            v
        ]:  # random walk, remembering the last exit of each vertex (loop erasure)
            last_exit[v] = rng.integers(len(edges[v]))
            v = edges[v][last_exit[v]]
        v = start
        while not in_tree[v]:
            in_tree[v] = True
            v = edges[v][last_exit[v]]
    # every vertex: its other out-edges in random order, then its last exit
    order = []
    for v in range(k):
        targets_v = list(edges[v])
        tail = [targets_v.pop(last_exit[v])] if last_exit[v] >= 0 else []
        order.append([targets_v[i] for i in rng.permutation(len(targets_v))] + tail)
    walk = [first]
    position = np.zeros(k, dtype=int)
    for _ in range(seq.size - 1):
        v = walk[-1]
        walk.append(order[v][position[v]])
        position[v] += 1
    out[keep] = symbols[np.asarray(walk)]
    return out


def shuffle_tokens(tokens, rng):
    """`dinucleotide_shuffle` of every row of `(n, length)` tokens.

    Example:

    >>> shuffle_tokens(np.zeros((2, 5), np.uint8), np.random.default_rng(0)).shape
    (2, 5)
    """
    tokens = np.asarray(tokens, dtype=np.uint8)
    return (
        np.stack([dinucleotide_shuffle(row, rng) for row in tokens])
        if len(tokens)
        else tokens.copy()
    )
