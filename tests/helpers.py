"""Small file writers shared by the tests."""

from pathlib import Path


def write_fasta(path, records):
    path = Path(path)
    lines = []
    for name, seq in records:
        lines += [f">{name} description", seq[: len(seq) // 2], seq[len(seq) // 2 :]]
    text = "\n".join(lines) + "\n"
    if path.suffix == ".gz":
        import gzip

        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def write_full_sequence_dir(root, data, split_sizes=None):
    """Writes {train,test}/<class>/<id>.txt from a {split: [(id, label, seq)]}."""
    root = Path(root)
    for split, rows in data.items():
        for record_id, label, seq in rows:
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{record_id}.txt").write_text(seq)
    return root
