"""A `tensorflow-datasets` builder for Genomic Benchmarks.

Importing this module registers the builder `genomic_benchmarks`, with one
config per Genomic Benchmarks dataset, so users who live in TFDS can write:

    import attngen_keras.data.tfds_builder  # registers the builder
    import tensorflow_datasets as tfds

    ds = tfds.load(
        "genomic_benchmarks/demo_human_or_worm",
        split="train",
        download_and_prepare_kwargs={
            "download_config": tfds.download.DownloadConfig(manual_dir=MANUAL)
        },
    )

Examples are `{"id": str, "sequence": str, "label": ClassLabel}`. Offline, the
data is read from `MANUAL/<config>/`: either the full-sequence layout
(`{train,test}/<class>/<id>.txt`, what `download_dataset` writes) or an
interval list (`metadata.yaml`, `{train,test}/<class>.csv.gz`) with its
reference genomes in `MANUAL/references/`. With nothing there, the builder
downloads the dataset with Genomic Benchmarks (needs internet).
"""

from pathlib import Path

import tensorflow_datasets as tfds

from attngen_keras.data import alphabet
from attngen_keras.data.errors import DataError, DownloadError
from attngen_keras.data.loading import load_raw_splits

# Class names of the Genomic Benchmarks datasets (sorted, as folder names).
DATASET_CLASSES = {
    "demo_coding_vs_intergenomic_seqs": ["coding_seqs", "intergenomic_seqs"],
    "demo_human_or_worm": ["human", "worm"],
    "drosophila_enhancers_stark": ["negative", "positive"],
    "dummy_mouse_enhancers_ensembl": ["negative", "positive"],
    "human_enhancers_cohn": ["negative", "positive"],
    "human_enhancers_ensembl": ["negative", "positive"],
    "human_ensembl_regulatory": ["enhancer", "ocr", "promoter"],
    "human_nontata_promoters": ["negative", "positive"],
    "human_ocr_ensembl": ["negative", "positive"],
}


class GenomicBenchmarksConfig(tfds.core.BuilderConfig):
    """One Genomic Benchmarks dataset.

    Args:
        class_names: the dataset's class names, in label order.
        **kwargs: `tfds.core.BuilderConfig` arguments (`name`, ...).
    """

    def __init__(self, *, class_names, **kwargs):
        super().__init__(**kwargs)
        self.class_names = list(class_names)


class GenomicBenchmarks(tfds.core.GeneratorBasedBuilder):
    """Genomic Benchmarks DNA classification datasets (Gresova et al. 2023)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    BUILDER_CONFIGS = [
        GenomicBenchmarksConfig(
            name=name, class_names=classes, description=f"Genomic Benchmarks {name}"
        )
        for name, classes in DATASET_CLASSES.items()
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "Put the dataset in <manual_dir>/<config name>/ either in the full-sequence "
        "layout ({train,test}/<class>/<id>.txt, as written by "
        "genomic_benchmarks.loc2seq.download_dataset) or as an interval list "
        "(metadata.yaml, {train,test}/<class>.csv.gz) with its reference genomes in "
        "<manual_dir>/references/. Without it the dataset is downloaded (needs internet)."
    )

    def _info(self):
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {
                    "id": tfds.features.Text(),
                    "sequence": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=self.builder_config.class_names),
                }
            ),
            supervised_keys=("sequence", "label"),
            homepage="https://github.com/ML-Bioinfo-CEITEC/genomic_benchmarks",
        )

    def _split_generators(self, dl_manager):
        name = self.builder_config.name
        source, references = name, None
        try:
            manual = Path(dl_manager.manual_dir)
        except AssertionError:  # no manual_dir configured
            manual = None
        if manual is not None and (manual / name).is_dir():
            source = str(manual / name)
            if (manual / "references").is_dir():
                references = str(manual / "references")
        try:
            splits, _, _ = load_raw_splits(source, references, cache_dir=None)
        except DownloadError as error:
            where = f"{manual / name}" if manual is not None else "<manual_dir>/" + name
            raise DataError(
                f"{error} (with TFDS, offline: put the full-sequence dataset, or its interval list "
                f"with the genomes in <manual_dir>/references/, in {where}/ and pass "
                "download_config=tfds.download.DownloadConfig(manual_dir=...))"
            ) from None
        return {split: self._generate_examples(raw) for split, raw in splits.items()}

    def _generate_examples(self, raw):
        for i in range(len(raw)):
            tokens = raw.flat[raw.offsets[i] : raw.offsets[i + 1]]
            key = f"{raw.labels[i]}/{raw.ids[i]}"
            yield (
                key,
                {
                    "id": str(raw.ids[i]),
                    "sequence": alphabet.decode(tokens),
                    "label": str(raw.labels[i]),
                },
            )
