"""Evaluation results cached next to each run, one small JSON file per evaluation, keyed on everything that
determines the numbers: a second report costs nothing, an interrupted one resumes, and one evaluation asked
for by several subcommands (cross-testing's diagonal, ``tables --from-checkpoints``, ``resolution`` at the
run's own size) is computed once.

The key: the checkpoint's content (sha256 of its bytes), the test padding and a digest of the code of the
module that defines it, the val set's config and digest (its images and labels), the test size (in the val
config), the precision, the device (its kind and, on a CPU, the model, vector extension and threads), the
batch size and number of processes, and digests of padlib's code and of torch, torchvision and timm's
versions. Nothing is trusted by name, size or
modification time alone: a checkpoint replaced under the same name, with its size and mtime kept
(``cp -p``, ``rsync -t``, a restore), is another key. ``evaluate.py ... --recompute`` ignores what is cached.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import sys
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from padlib.fileio import atomic_write_bytes, sha256_file

# <run dir>/eval_cache/<sha1 of the key>.json; only the evaluator reads or writes it, and deleting it
# only costs time
CACHE_DIR = "eval_cache"
FORMAT = "padlib-eval/2"
DIGESTS = "checkpoint_digests"  # in CACHE_DIR (JSON): each checkpoint's sha256, for one version of the file


@dataclass(frozen=True)
class EvalRecord:
    """What one evaluation of one checkpoint measured."""

    top1: float
    top5: float
    loss: float
    count: int  # val images scored (every image once, across all ranks)
    skipped: int  # unreadable val images
    epoch: int | None  # epochs finished when the checkpoint was written (its ``epoch`` field)
    device: str  # cpu, cuda: where it was measured (CPU numbers are exact, GPU ones within a tolerance)
    seconds: float


def _version_of(path: Path) -> list[int]:
    """What changes whenever a file is replaced or rewritten: inode, size, mtime and ctime (the kernel sets
    ctime on every change; copying with kept times cannot set it back)."""
    st = path.stat()
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def file_digest(path: Path, memo_dir: Path | None = None) -> str:
    """The sha256 of ``path``'s bytes. Remembered in ``memo_dir``/checkpoint_digests for that version of the
    file only (inode, size, mtime, ctime), so each version is read once."""
    memo_path = memo_dir / DIGESTS if memo_dir is not None else None
    version = _version_of(path)
    memo: dict[str, Any] = {}
    if memo_path is not None:
        try:
            memo = json.loads(memo_path.read_text())
        except (OSError, ValueError):
            memo = {}
        seen = memo.get(path.name)
        if isinstance(seen, dict) and seen.get("version") == version:
            return str(seen["sha256"])
    sha = sha256_file(path)
    if memo_path is not None and _version_of(path) == version:  # not rewritten while it was read
        memo[path.name] = {"version": version, "sha256": sha}
        with contextlib.suppress(OSError):  # a read-only sweep: the digest is computed again next time
            atomic_write_bytes(memo_path, json.dumps(memo, sort_keys=True, indent=1).encode())
    return sha


@functools.cache
def code_digest() -> str:
    """A digest of padlib's source as this process loaded it: any change to padlib's code is another key."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


_PROCESS = uuid.uuid4().hex  # for code this process cannot read: its results are its own


def mode_code_digest(padding: str) -> str:
    """A digest of the code behind ``padding``'s mode: every loaded module of the package that defines it (a
    user's mode edited, or a helper it imports from its own package, is another key); 'padlib' for padlib's
    own modes, which ``code_digest`` covers. A mode defined where no source file is (a notebook) gets this
    process's own token: its results are never served to another process."""
    from padlib.padding import get_padding

    module_name = type(get_padding(padding)).__module__
    top = module_name.split(".")[0]
    if top == "padlib":
        return "padlib"
    files = sorted({Path(m.__file__).resolve() for name, m in list(sys.modules.items())
                    if (name == top or name.startswith(top + ".")) and getattr(m, "__file__", None)})
    if not files or module_name == "__main__":
        return f"process {_PROCESS}"
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def checkpoint_key(checkpoint_sha256: str, val: Mapping[str, Any], val_digest: str, padding: str, precision: str,
                   device: str, batches: tuple[int, int] = (64, 1)) -> dict[str, Any]:
    """The cache key of evaluating the checkpoint whose bytes digest to ``checkpoint_sha256`` on the val set of
    the data config ``val`` whose images digest to ``val_digest``, in ``padding`` mode at ``precision`` on
    ``device`` (``provenance.device_name``) in ``batches`` (batch size, processes: how the images are grouped
    can move the last bits of a logit), with this code and these package versions."""
    from padlib.provenance import package_versions  # torch: only when a key is made

    return {"format": FORMAT, "checkpoint_sha256": checkpoint_sha256, "val": dict(val), "val_digest": val_digest,
            "padding": padding, "padding_code": mode_code_digest(padding), "precision": precision,
            "device": device, "batch_size": batches[0], "processes": batches[1], "padlib_code": code_digest(),
            "versions": package_versions()}


def _canonical(key: Mapping[str, Any]) -> str:
    return json.dumps(key, sort_keys=True, default=str)


def cache_path(run_path: Path, key: Mapping[str, Any]) -> Path:
    """Where the result of ``key`` is cached."""
    digest = hashlib.sha1(_canonical(key).encode()).hexdigest()[:20]
    return run_path / CACHE_DIR / f"{digest}.json"


def read_cached(run_path: Path, key: Mapping[str, Any]) -> EvalRecord | None:
    """The cached result of ``key``, or None (nothing cached, or an unreadable or foreign entry)."""
    try:
        entry = json.loads(cache_path(run_path, key).read_text())
        if _canonical(entry["key"]) != _canonical(key):
            return None
        return EvalRecord(**entry["result"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_cached(run_path: Path, key: Mapping[str, Any], record: EvalRecord) -> None:
    """Cache ``record`` as the result of ``key`` (atomically: an interrupted write leaves no half entry)."""
    text = json.dumps({"key": key, "result": asdict(record)}, sort_keys=True, indent=1, default=str)
    atomic_write_bytes(cache_path(run_path, key), text.encode())
