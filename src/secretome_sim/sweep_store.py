"""A sweep's folder on disk: written chunk by chunk, never corrupt, resumable.

Layout::

    sweep.json              what is being computed (fingerprint, factors, columns, chunking)
    design.csv              every point's factor values, written before any point runs
    chunks/chunk-000012.parquet   the rows of chunk 12, each file complete or absent
    trajectories.zarr       optional: value[point, arm, time, output], written chunk by chunk
    results.parquet, results.csv, summary.json   consolidated at the end

Every file is written to a temporary name in its folder and renamed into place, so a sweep
killed at any moment leaves finished chunks intact and no half-written file. A chunk's table
file is its commit record: it is renamed into place after the chunk's trajectories are stored,
so ``--resume`` reruns exactly the chunks without one (rewriting their trajectory block).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import SecretomeError

CHUNK_FILE = re.compile(r"^chunk-(\d{6})\.parquet$")
ROW_GROUP = 65_536  # rows per Parquet row group in results.parquet
SQUASH = 64  # chunk tables merged into one contiguous piece while a row group fills


class SweepFolderError(SecretomeError):
    """The sweep folder cannot be used as asked (exists, belongs to another sweep, ...)."""


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)`` then rename the result onto ``path`` in one step."""
    with atomic_paths(path) as (temporary,):
        write(temporary)


@contextmanager
def atomic_paths(*paths: Path) -> Iterator[tuple[Path, ...]]:
    """Temporary files beside ``paths``, renamed onto them if the block succeeds, removed if
    it fails: several files written in one pass, none ever seen half-written."""
    temporaries = []
    try:
        for path in paths:
            handle, name = tempfile.mkstemp(
                prefix=f".{path.name}.", suffix=".partial", dir=path.parent
            )
            os.close(handle)
            temporaries.append(Path(name))
        yield tuple(temporaries)
        for temporary, path in zip(temporaries, paths, strict=True):
            os.chmod(temporary, 0o666 & ~_umask())
            os.replace(temporary, path)
    except BaseException:
        for temporary in temporaries:
            temporary.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class SweepStore:
    """Create or reopen a sweep folder; store chunks; consolidate the results."""

    def __init__(self, folder: Path, manifest: dict[str, Any]):
        self.folder = Path(folder)
        self.manifest = manifest
        self.chunks = self.folder / "chunks"

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        folder: str | Path,
        manifest: dict[str, Any],
        design: pd.DataFrame,
        *,
        resume: bool,
        trajectory_layout: dict[str, Any] | None,
    ) -> SweepStore:
        """A new folder (must not exist or be empty) or, with ``resume``, the folder of the same
        sweep (same fingerprint) started earlier."""
        folder = Path(folder)
        store = cls(folder, manifest)
        existing = folder / "sweep.json"
        if resume and existing.exists():
            previous = json.loads(existing.read_text(encoding="utf-8"))
            if previous.get("fingerprint") != manifest["fingerprint"]:
                raise SweepFolderError(
                    f"{folder} holds a different sweep (fingerprint {previous.get('fingerprint')}"
                    f", this one is {manifest['fingerprint']}): the scenario, model or sweep "
                    "spec changed since it started; use a new --out folder"
                )
            store.manifest = {**manifest, "chunk_size": previous["chunk_size"]}
            return store
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            hint = "" if resume else "; pass --resume to continue the sweep it holds"
            raise SweepFolderError(
                f"sweep folder {folder} already exists and is not a sweep to resume{hint}"
                if resume and not existing.exists()
                else f"sweep folder {folder} already exists and is not empty{hint}"
            )
        # Built in a hidden sibling and renamed into place: the folder appears whole or not at all
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
        try:
            staging.chmod(0o777 & ~_umask())
            (staging / "chunks").mkdir()
            design.to_csv(staging / "design.csv", index=False, chunksize=10_000)
            if trajectory_layout is not None:
                _create_trajectory_store(staging / "trajectories.zarr", trajectory_layout, manifest)
            text = json.dumps(manifest, indent=2, default=str) + "\n"
            (staging / "sweep.json").write_text(text, encoding="utf-8")
            if folder.exists():
                folder.rmdir()  # empty, checked above
            os.replace(staging, folder)
        except BaseException:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
            raise
        return store

    @property
    def chunk_size(self) -> int:
        return int(self.manifest["chunk_size"])

    def write_json(self, name: str, content: dict[str, Any]) -> None:
        text = json.dumps(content, indent=2, default=str) + "\n"
        write_atomically(self.folder / name, lambda p: p.write_text(text, encoding="utf-8"))

    # ----------------------------------------------------------------- chunks
    def done_chunks(self) -> set[int]:
        """Chunks whose table file is in place (complete by construction)."""
        return {
            int(m.group(1))
            for name in os.listdir(self.chunks)
            if (m := CHUNK_FILE.match(name)) is not None
        }

    def chunk_path(self, chunk: int) -> Path:
        return self.chunks / f"chunk-{chunk:06d}.parquet"

    def write_chunk(self, chunk: int, table: pd.DataFrame, trajectories: np.ndarray | None) -> None:
        """Trajectories first, then the table file (the commit record)."""
        if trajectories is not None:
            import zarr

            array = zarr.open_array(self.folder / "trajectories.zarr" / "value", mode="r+")
            start = chunk * self.chunk_size
            array[start : start + trajectories.shape[0]] = trajectories
        write_atomically(self.chunk_path(chunk), lambda p: table.to_parquet(p, index=False))

    def iter_chunks(self) -> Any:
        """Each finished chunk's table, in chunk order (one at a time: bounded memory)."""
        for chunk in sorted(self.done_chunks()):
            yield pd.read_parquet(self.chunk_path(chunk))

    # ----------------------------------------------------------------- consolidation
    def consolidate(self, tally: Callable[[pd.DataFrame], None] | None = None) -> None:
        """results.parquet and results.csv from the chunk files in one streamed pass (each
        chunk read once, handed to ``tally`` too). Parquet row groups hold at least ROW_GROUP
        rows (whole chunks), not one chunk each: a large sweep's file stays compact."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        targets = (self.folder / "results.parquet", self.folder / "results.csv")
        with atomic_paths(*targets) as (parquet, csv), csv.open("w", encoding="utf-8") as text:
            writer = None
            pending: list[pa.Table] = []  # pieces of ~SQUASH chunks, each one contiguous table
            small: list[pa.Table] = []  # chunks not yet squashed
            rows = 0

            def squash() -> None:
                if small:  # many tiny tables cost far more memory than their data
                    pending.append(pa.concat_tables(small).combine_chunks())
                    small.clear()

            def flush() -> None:
                nonlocal rows
                squash()
                if pending:
                    writer.write_table(pa.concat_tables(pending))  # one row group
                    pending.clear()
                    rows = 0
                    pa.default_memory_pool().release_unused()

            try:
                for index, table in enumerate(self.iter_chunks()):
                    if tally is not None:
                        tally(table)
                    table.to_csv(text, index=False, header=index == 0, lineterminator="\n")
                    arrow = pa.Table.from_pandas(table, preserve_index=False)
                    if writer is None:
                        text_columns = [
                            f.name
                            for f in arrow.schema
                            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
                        ]
                        # dictionary encoding only where it pays (arm, status, message)
                        writer = pq.ParquetWriter(
                            parquet, arrow.schema, use_dictionary=text_columns
                        )
                    small.append(arrow.cast(writer.schema))
                    rows += arrow.num_rows
                    if len(small) >= SQUASH:
                        squash()
                    if rows >= ROW_GROUP:
                        flush()
                if writer is not None:
                    flush()
            finally:
                if writer is not None:
                    writer.close()


def _create_trajectory_store(path: Path, layout: dict[str, Any], manifest: dict) -> None:
    """An empty value[point, arm, time, output] array (NaN until a chunk fills its block),
    chunked like the sweep so that each chunk writes its own block; xarray opens it."""
    import zarr

    points, arms, times, outputs = (
        layout["points"],
        layout["arms"],
        layout["times"],
        layout["outputs"],
    )
    chunk = int(manifest["chunk_size"])
    root = zarr.open_group(path, mode="w")
    value = root.create_array(
        "value",
        shape=(points, len(arms), len(times), len(outputs)),
        chunks=(chunk, len(arms), len(times), len(outputs)),
        dtype="f8",
        fill_value=np.nan,
        dimension_names=("point", "arm", "time", "output"),
    )
    value.attrs.update(
        {
            "units": layout["units"],
            "time_unit": layout["time_unit"],
            "description": "model predictions, not measurements; NaN where a point failed",
        }
    )
    coordinates = {
        "point": np.arange(points, dtype=np.int64),
        "arm": np.array(arms, dtype=object),
        "time": np.asarray(times, dtype=float),
        "output": np.array(outputs, dtype=object),
    }
    for name, values in coordinates.items():
        array = root.create_array(
            name,
            shape=values.shape,
            dtype=str if values.dtype == object else values.dtype,  # str: variable-length UTF-8
            dimension_names=(name,),
        )
        array[:] = values
