"""DNA alphabet: tokens, one-hot table, IUPAC codes and reverse complement.

Sequences are stored as `uint8` tokens. A/C/G/T are tokens 0-3 and encode
to the one-hot rows of the 4 channels (order A, C, G, T). `N` and the IUPAC
ambiguity codes (R Y S W K M B D H V) encode to the uniform distribution over
the bases they stand for (N -> 0.25 each, R -> A/G 0.5 each, ...), so every
real position has a channel sum of 1. Padding (token `PAD`) encodes to all
zeros, which is how models recognize it. Input is case-insensitive; `U` is
read as `T`. Any other character is an error.
"""

import numpy as np

from attngen_keras.data.errors import DataError

BASES = "ACGT"
IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T",
    "N": "ACGT",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG",
}  # fmt: skip
SYMBOLS = "ACGTNRYSWKMBDHV"
# At least this share of characters other than A, C, G, T and N: the input is not DNA (protein?).
NOT_DNA_SHARE = 0.25
PAD = len(SYMBOLS)  # 15
INVALID = 255
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "N": "N", "R": "Y", "Y": "R",
              "S": "S", "W": "W", "K": "M", "M": "K", "B": "V", "D": "H", "H": "D",
              "V": "B"}  # fmt: skip


def _byte_lookup():
    table = np.full(256, INVALID, dtype=np.uint8)
    for token, symbol in enumerate(SYMBOLS):
        table[ord(symbol)] = token
        table[ord(symbol.lower())] = token
    table[ord("U")] = table[ord("u")] = SYMBOLS.index("T")
    return table


def _one_hot_table():
    table = np.zeros((PAD + 1, 4), dtype=np.float32)
    for token, symbol in enumerate(SYMBOLS):
        members = IUPAC[symbol]
        for base in members:
            table[token, BASES.index(base)] = 1.0 / len(members)
    return table


def _complement_tokens():
    table = np.arange(PAD + 1, dtype=np.uint8)
    for token, symbol in enumerate(SYMBOLS):
        table[token] = SYMBOLS.index(COMPLEMENT[symbol])
    return table


BYTE_TO_TOKEN = _byte_lookup()
ONE_HOT_TABLE = _one_hot_table()
COMPLEMENT_TOKEN = _complement_tokens()
TOKEN_TO_BYTE = np.frombuffer((SYMBOLS + "-").encode(), dtype=np.uint8)


def encode(sequence, file=None, record=None):
    """Tokenizes one DNA sequence (str or bytes) to `uint8` tokens.

    Args:
        sequence: the sequence; whitespace is not allowed inside it.
        file: source file, named in errors.
        record: record id, named in errors.

    Returns:
        1-D `uint8` array of tokens.

    Raises:
        DataError: on an empty sequence or a character that is not a
            nucleotide or IUPAC code, naming the 1-based position.

    Example:

    >>> encode("ACgtN").tolist()
    [0, 1, 2, 3, 4]
    """
    raw = sequence.encode("utf-8") if isinstance(sequence, str) else bytes(sequence)
    if not raw:
        raise DataError("empty sequence", file, record)
    tokens = BYTE_TO_TOKEN[np.frombuffer(raw, dtype=np.uint8)]
    bad = np.flatnonzero(tokens == INVALID)
    if bad.size:
        position = int(bad[0])
        text = raw.decode("utf-8", errors="replace")
        char = text[position] if position < len(text) else repr(raw[position : position + 1])
        raise DataError(
            f"invalid character {char!r} at position {position + 1} "
            f"({bad.size} invalid in total); allowed: A C G T U, N and IUPAC "
            f"codes {' '.join(SYMBOLS[5:])}",
            file,
            record,
        )
    return tokens


def decode(tokens):
    """Turns tokens back into an upper-case string (padding dropped).

    Example:

    >>> decode(encode("acgn"))
    'ACGN'
    """
    tokens = np.asarray(tokens, dtype=np.uint8)
    return TOKEN_TO_BYTE[tokens[tokens != PAD]].tobytes().decode()


def one_hot(tokens):
    """One-hot `(..., length, 4)` float32 from tokens `(..., length)`.

    Example:

    >>> one_hot(encode("AR")).tolist()
    [[1.0, 0.0, 0.0, 0.0], [0.5, 0.0, 0.5, 0.0]]
    """
    tokens = np.asarray(tokens)
    if tokens.dtype.kind not in "iu":
        raise ValueError(f"tokens must be integers (see encode), got {tokens.dtype}")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= len(ONE_HOT_TABLE)):
        raise ValueError(
            f"tokens must be in 0-{len(ONE_HOT_TABLE) - 1} (see encode), got values "
            f"{tokens.min()}-{tokens.max()}"
        )
    return ONE_HOT_TABLE[tokens]
