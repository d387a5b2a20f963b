"""Genome-scale use: scan genomes into tracks (`attngen scan`), score variants (`attngen variants`),
locally or on Apache Beam (`--runner beam`)."""
