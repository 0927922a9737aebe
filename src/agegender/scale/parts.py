"""Output parts: each written atomically with a manifest of the inputs it covers; resume; compaction.

Layout of an output folder::

    _job.json                   format and model of the job (a rerun must match once a part is committed;
                                a folder without parts, e.g. left by a failed start, takes any job)
    _manifests/NAME.json        one per committed part: its data file and the inputs it covers
    NAME.parquet|csv|jsonl      the part's rows (only committed parts carry a visible name)
    _ray.log                    Ray's own output, Ray engine only (written unless --debug; appended to by
                                each run)
    .lock, .workers.lock        held while a job runs (one job at a time; its workers); empty files
    .tmp-*                      being written; removed or finished by the next run

Committing a part: (1) write its rows to ``.tmp-NAME.ext`` and fsync; (2) write the manifest to a
temporary file, fsync, ``os.replace`` it into ``_manifests/`` -- the commit point; (3) ``os.replace`` the
data file to ``NAME.ext``. A process killed before (2) leaves only temporary files (removed by the next
run: the inputs are redone); killed after (2), the next run finishes (3). So at any moment every input
is covered by at most one manifest, and the rerun covers the rest: exactly once.

Compaction writes one file with every row, commits a manifest that ``replaces`` the old ones, then
removes them; a rerun finishes an interrupted compaction the same way. pyarrow, pandas and Ray read
the folder as a dataset (they skip names starting with ``_`` and ``.``).
"""

from __future__ import annotations

import contextlib
import csv
import json
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from .rows import COLUMNS, InputResult, ModelId, Row, typed

log = logging.getLogger(__name__)

FORMATS = ("parquet", "csv", "jsonl")
MANIFEST_DIR = "_manifests"
JOB_FILE = "_job.json"
TMP = ".tmp-"
LOCK_FILE = ".lock"
WORKERS_LOCK_FILE = ".workers.lock"
_PART_PREFIXES = ("part-", "compact-")


class OutputDirError(Exception):
    """The output folder cannot take this job (in use, or made with another format or model)."""


@dataclass(frozen=True)
class Manifest:
    """The commit record of one part."""

    name: str
    file: str
    format: str
    inputs: tuple[str, ...]
    images: int
    faces: int
    failures: int
    rows: int
    workers: tuple[str, ...] = ()  # "host:pid" of the processes that computed the rows
    nodes: tuple[str, ...] = ()  # Ray node ids (Ray engine)
    replaces: tuple[str, ...] = ()  # names of the parts a compaction merged
    created: float = 0.0  # when it was committed (time.time() of the committing process)
    started: float = 0.0  # when its worker began computing its rows (first one, for a compaction)
    finished: float = 0.0  # when its worker was done computing them (last one, for a compaction)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        d = json.loads(text)
        for k in ("inputs", "workers", "nodes", "replaces"):
            d[k] = tuple(d.get(k, ()))
        return cls(**d)


@dataclass(frozen=True)
class Totals:
    images: int = 0
    faces: int = 0
    failures: int = 0
    rows: int = 0
    parts: int = 0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


# -- files ------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a folder be opened/fsynced
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f"{TMP}{path.name}")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _write_csv(f: IO[str], rows: Iterable[Row], header: bool = True) -> None:
    w = csv.writer(f, lineterminator="\n")
    if header:
        w.writerow(COLUMNS)
    w.writerows(rows)


def write_rows(path: Path, rows: list[Row], fmt: str) -> None:
    """Write ``rows`` to ``path`` in ``fmt`` and fsync it."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        from .rows import arrow_table

        pq.write_table(arrow_table(rows), path)
        with open(path, "rb") as f:
            os.fsync(f.fileno())
        return
    with open(path, "w", newline="", encoding="utf-8") as f:
        if fmt == "csv":
            _write_csv(f, rows)
        else:
            for r in rows:
                f.write(json.dumps(typed(r), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_typed(path: Path, fmt: str) -> list[dict[str, Any]]:
    """The rows of one data file as typed dicts (ints, floats, strings, ``None``)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    with open(path, newline="", encoding="utf-8") as f:
        if fmt == "csv":
            reader = csv.reader(f)
            next(reader, None)
            return [typed(r) for r in reader]
        return [json.loads(line) for line in f if line.strip()]


def commit_part(out_dir: Path, name: str, fmt: str, results: list[InputResult], workers: Iterable[str] = (),
                nodes: Iterable[str] = (), started: float = 0.0, finished: float = 0.0) -> Manifest:
    """Write the rows of ``results`` as part ``name``, atomically, with its manifest (see the module doc)."""
    out_dir = Path(out_dir)
    rows = [r for res in results for r in res.rows]
    file = f"{name}.{fmt}"
    tmp = out_dir / f"{TMP}{file}"
    write_rows(tmp, rows, fmt)
    m = Manifest(
        name=name, file=file, format=fmt, inputs=tuple(r.key for r in results), images=len(results),
        faces=sum(r.faces for r in results), failures=sum(r.failed for r in results), rows=len(rows),
        workers=tuple(sorted(set(workers))), nodes=tuple(sorted(set(nodes))), created=time.time(),
        started=started, finished=finished,
    )
    atomic_write_text(out_dir / MANIFEST_DIR / f"{name}.json", m.to_json())  # the commit point
    os.replace(tmp, out_dir / file)
    return m


# -- locks ------------------------------------------------------------------------------------------


def _flock(path: Path, mode: str, blocking: bool = True) -> IO[str] | None:
    """Open ``path`` and take an flock on it (``mode`` "ex" or "sh"); ``None`` if non-blocking and held."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no locking
        return open(path, "a")  # noqa: SIM115
    f = open(path, "a")  # noqa: SIM115 - held for the lock's lifetime
    op = fcntl.LOCK_EX if mode == "ex" else fcntl.LOCK_SH
    try:
        fcntl.flock(f.fileno(), op | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        f.close()
        return None
    return f


def hold_workers_lock(out_dir: Path) -> IO[str] | None:
    """Called by each local worker process: a shared lock kept for the process's life, so that the next
    run can wait until every worker of a killed run is gone before it looks at the parts."""
    return _flock(Path(out_dir) / WORKERS_LOCK_FILE, "sh")


def committed_manifests(out_dir: Path) -> list[Path]:
    """The manifest files of the committed parts of an output folder (none for a new folder)."""
    d = Path(out_dir) / MANIFEST_DIR
    return sorted(p for p in d.glob("*.json") if not p.name.startswith(TMP)) if d.is_dir() else []


def read_job(out_dir: Path) -> dict[str, Any] | None:
    """The ``_job.json`` of an output folder (``None`` if it has none); :class:`OutputDirError` if unreadable."""
    path = Path(out_dir) / JOB_FILE
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise OutputDirError(f"{path}: unreadable ({exc})") from None
    if not isinstance(d, dict) or not isinstance(d.get("model"), dict) or "format" not in d:
        raise OutputDirError(f"{path}: not a batch job description")
    return d


def committed_job(out_dir: Path) -> dict[str, Any] | None:
    """The job an output folder holds parts of: its ``_job.json`` if at least one part is committed, else
    ``None`` (a new folder, or one a failed start left without parts: it binds no format or model)."""
    if not committed_manifests(out_dir):
        return None
    d = read_job(out_dir)
    if d is None:
        raise OutputDirError(f"{out_dir}: holds parts but no {JOB_FILE}; use another --out")
    return d


# -- the store ---------------------------------------------------------------------------------------


@dataclass
class PartStore:
    """One output folder, opened by the one process that drives a job (see the module doc)."""

    out_dir: Path
    fmt: str
    model: ModelId
    run_id: str = field(default_factory=new_run_id)
    _lock: IO[str] | None = field(default=None, repr=False)
    _manifests: dict[str, Manifest] = field(default_factory=dict, repr=False)
    _seq: int = 0

    def open(self) -> PartStore:
        """Lock the folder, check it belongs to this kind of job, and recover from any interrupted run."""
        if self.fmt not in FORMATS:
            raise OutputDirError(f"unknown format {self.fmt!r} (choose from {', '.join(FORMATS)})")
        self.out_dir = Path(self.out_dir)
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise OutputDirError(f"{self.out_dir}: exists and is not a folder")
        try:
            (self.out_dir / MANIFEST_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputDirError(f"{self.out_dir}: cannot create the output folder ({exc.strerror})") from None
        self._lock = _flock(self.out_dir / LOCK_FILE, "ex", blocking=False)
        if self._lock is None:
            raise OutputDirError(f"{self.out_dir}: another batch job is writing to this folder")
        try:
            waited = _flock(self.out_dir / WORKERS_LOCK_FILE, "ex", blocking=False)
            if waited is None:
                log.warning("%s: waiting for the worker processes of an earlier run to exit", self.out_dir)
                waited = _flock(self.out_dir / WORKERS_LOCK_FILE, "ex")
            assert waited is not None
            waited.close()  # released: this run's workers take it shared
            self._check_job()  # with no worker of an earlier run left: none commits a part behind our back
            self.recover()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> PartStore:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_job(self) -> None:
        """A folder that holds parts takes only a job of the same format and model; one that holds none (new,
        or left by a run that failed before its first part) takes any: its ``_job.json`` is (re)written."""
        want = {"format": self.fmt, "model": asdict(self.model)}
        have = committed_job(self.out_dir)
        if have is None:
            atomic_write_text(self.out_dir / JOB_FILE, json.dumps({**want, "created": time.time()}, indent=1))
            return
        if have.get("format") != self.fmt:
            raise OutputDirError(f"{self.out_dir}: holds {have.get('format')} parts; rerun with "
                                 f"--format {have.get('format')} or use another --out")
        if have.get("model") != want["model"]:
            m = have.get("model", {})
            raise OutputDirError(f"{self.out_dir}: made with model {m.get('name')} {m.get('version')} "
                                 f"(sha256 {str(m.get('sha256'))[:12]}…); use the same model or another --out")

    def _load_manifests(self) -> dict[str, Manifest]:
        out: dict[str, Manifest] = {}
        for p in sorted((self.out_dir / MANIFEST_DIR).glob("*.json")):
            if p.name.startswith(TMP):  # written but never renamed: not committed (recover removes it)
                continue
            try:
                m = Manifest.from_json(p.read_text(encoding="utf-8"))
            except (ValueError, TypeError, KeyError) as exc:
                log.warning("%s: unreadable manifest, ignored and removed (%s)", p, exc)
                p.unlink()
                continue
            out[m.name] = m
        return out

    def recover(self) -> None:
        """Finish what a killed run committed, drop what it did not (call with no worker running)."""
        ms = self._load_manifests()
        replaced = {r for m in ms.values() for r in m.replaces}
        for m in sorted(ms.values(), key=lambda m: not m.replaces):  # compactions first
            data, tmp = self.out_dir / m.file, self.out_dir / f"{TMP}{m.file}"
            if m.name in replaced:
                for p in (data, tmp, self.out_dir / MANIFEST_DIR / f"{m.name}.json"):
                    p.unlink(missing_ok=True)
                del ms[m.name]
            elif not data.exists():
                if tmp.exists():
                    os.replace(tmp, data)  # committed, not yet renamed: roll forward
                else:
                    log.warning("%s: data file of part %s is gone; its %d input(s) will be redone",
                                self.out_dir, m.name, len(m.inputs))
                    (self.out_dir / MANIFEST_DIR / f"{m.name}.json").unlink()
                    del ms[m.name]
        live_files = {m.file for m in ms.values()}
        for d in (self.out_dir, self.out_dir / MANIFEST_DIR):
            for p in d.iterdir():
                if p.name.startswith(TMP):
                    p.unlink()  # uncommitted
                elif (d == self.out_dir and p.name.startswith(_PART_PREFIXES) and p.suffix[1:] in FORMATS
                      and p.name not in live_files):
                    log.warning("%s: %s has no manifest; removed", self.out_dir, p.name)
                    p.unlink()
        _fsync_dir(self.out_dir)
        self._manifests = ms

    # -- state -------------------------------------------------------------------------------------
    @property
    def manifests(self) -> list[Manifest]:
        return sorted(self._manifests.values(), key=lambda m: (m.created, m.name))

    def done(self) -> set[str]:
        """Keys of every input some committed part covers."""
        return {k for m in self._manifests.values() for k in m.inputs}

    def totals(self) -> Totals:
        ms = self._manifests.values()
        return Totals(images=sum(m.images for m in ms), faces=sum(m.faces for m in ms),
                      failures=sum(m.failures for m in ms), rows=sum(m.rows for m in ms), parts=len(ms))

    def next_name(self) -> str:
        self._seq += 1
        return f"part-{self.run_id}-{self._seq:06d}"

    def record(self, m: Manifest) -> None:
        """Note a part committed by a worker process."""
        self._manifests[m.name] = m

    def commit(self, results: list[InputResult], workers: Iterable[str] = (), nodes: Iterable[str] = (),
               started: float = 0.0, finished: float = 0.0) -> Manifest:
        m = commit_part(self.out_dir, self.next_name(), self.fmt, results, workers=workers, nodes=nodes,
                        started=started, finished=finished)
        self.record(m)
        return m

    # -- compaction ----------------------------------------------------------------------------------
    def compact(self) -> Manifest | None:
        """Merge every part into one file (atomically); ``None`` if there is at most one part."""
        old = self.manifests
        if len(old) <= 1:
            return old[0] if old else None
        name = f"compact-{new_run_id()}"
        file = f"{name}.{self.fmt}"
        tmp = self.out_dir / f"{TMP}{file}"
        self._merge([self.out_dir / m.file for m in old], tmp)
        m = Manifest(
            name=name, file=file, format=self.fmt, inputs=tuple(k for o in old for k in o.inputs),
            images=sum(o.images for o in old), faces=sum(o.faces for o in old),
            failures=sum(o.failures for o in old), rows=sum(o.rows for o in old),
            workers=tuple(sorted({w for o in old for w in o.workers})),
            nodes=tuple(sorted({n for o in old for n in o.nodes})),
            replaces=tuple(o.name for o in old), created=time.time(),
            started=min(o.started for o in old), finished=max(o.finished for o in old),
        )
        atomic_write_text(self.out_dir / MANIFEST_DIR / f"{name}.json", m.to_json())  # the commit point
        os.replace(tmp, self.out_dir / file)
        self.recover()  # removes the replaced parts
        return m

    def _merge(self, files: list[Path], dest: Path) -> None:
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            from .rows import arrow_schema

            with pq.ParquetWriter(dest, arrow_schema()) as w:
                for f in files:
                    w.write_table(pq.read_table(f).cast(arrow_schema()))
        else:
            with open(dest, "w", newline="", encoding="utf-8") as out:
                if self.fmt == "csv":
                    _write_csv(out, ())
                for f in files:
                    with open(f, encoding="utf-8") as src:
                        if self.fmt == "csv":
                            next(src, None)
                        for line in src:
                            out.write(line)
        with open(dest, "rb") as f:
            os.fsync(f.fileno())


def read_rows(out_dir: str | Path) -> list[dict[str, Any]]:
    """Every row of every committed part of an output folder, as typed dicts (for checks and small jobs;
    for big outputs read the folder with pyarrow.dataset or pandas)."""
    out_dir = Path(out_dir)
    ms = [Manifest.from_json(p.read_text(encoding="utf-8")) for p in sorted((out_dir / MANIFEST_DIR).glob("*.json"))
          if not p.name.startswith(TMP)]
    replaced = {r for m in ms for r in m.replaces}
    rows: list[dict[str, Any]] = []
    for m in ms:
        if m.name not in replaced and (out_dir / m.file).exists():
            rows += read_typed(out_dir / m.file, m.format)
    return rows

