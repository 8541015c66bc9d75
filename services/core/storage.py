"""Where job files live: the NATS object store (uploads) or a sandboxed local root.

A job's ``file_path`` is either ``upload:<id>/<name>`` (an object in the bus's object store,
readable by every replica on every machine) or a path relative to the imports root. A path
that leaves the root is refused.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from contracts.subjects import Subjects

__all__ = [
    "UPLOAD_SCHEME",
    "FileNotAllowedError",
    "StorageError",
    "local_path",
    "new_upload_name",
    "open_job_file",
    "safe_filename",
    "upload_owner",
]

UPLOAD_SCHEME = "upload:"


class StorageError(Exception):
    """A job's file cannot be found or read."""


class FileNotAllowedError(StorageError):
    """The path leaves its root, or names something that is not a plain file."""


# as file systems allow; a longer name would also make an object store subject that the
# NATS server refuses by closing the connection
MAX_FILENAME_BYTES = 255


def safe_filename(name: str) -> str:
    base = PurePosixPath(name.replace("\\", "/")).name
    if any(ord(c) < 32 for c in base):
        raise FileNotAllowedError(f"{name[:80]!r} has control characters in its name")
    if not base or base in {".", ".."}:
        raise FileNotAllowedError(f"{name[:80]!r} is not a file name")
    if len(base.encode("utf-8", "surrogatepass")) > MAX_FILENAME_BYTES:
        raise FileNotAllowedError(
            f"the file name {base[:40]!r}... is longer than {MAX_FILENAME_BYTES} bytes"
        )
    return base


def new_upload_name(filename: str) -> str:
    return f"{uuid.uuid4().hex}/{safe_filename(filename)}"


def local_path(root: Path, file_path: str) -> Path:
    """``file_path`` resolved inside ``root``; raises ``FileNotAllowedError`` if it leaves it."""
    root = root.resolve()
    candidate = (root / file_path).resolve()
    if candidate != root and root not in candidate.parents:
        raise FileNotAllowedError(f"file_path {file_path!r} is outside the imports root")
    return candidate


@contextlib.asynccontextmanager
async def open_job_file(
    file_path: str, *, root: Path, js: JetStreamContext, subjects: Subjects
) -> AsyncIterator[Path]:
    """A local path to read the job's file from (a temporary copy for uploads)."""
    if file_path.startswith(UPLOAD_SCHEME):
        async with _download(file_path[len(UPLOAD_SCHEME) :], js, subjects) as path:
            yield path
        return
    path = local_path(root, file_path)
    if not path.is_file():
        raise StorageError(f"file {file_path!r} does not exist in the imports root")
    yield path


@contextlib.asynccontextmanager
async def _download(name: str, js: JetStreamContext, subjects: Subjects) -> AsyncIterator[Path]:
    store = await js.object_store(subjects.object_store)
    # the copy keeps the uploaded file's own name, so messages name the user's file
    with tempfile.TemporaryDirectory(prefix="dm-upload-") as folder:
        path = Path(folder) / safe_filename(name)
        with open(path, "wb") as out:
            try:
                await store.get(name, writeinto=out)
            except NotFoundError as e:
                raise StorageError(f"uploaded file {name!r} no longer exists") from e
        yield path


OWNER_HEADER = "Dm-Owner"


async def upload_owner(js: JetStreamContext, subjects: Subjects, file_path: str) -> str | None:
    """Who uploaded ``upload:<name>`` ("" for objects other systems put on the bus).

    Raises ``StorageError`` when there is no such upload.
    """
    store = await js.object_store(subjects.object_store)
    try:
        info = await store.get_info(file_path[len(UPLOAD_SCHEME) :])
    except NotFoundError as e:
        raise StorageError(f"there is no uploaded file {file_path!r}") from e
    headers = info.headers or {}
    owner = headers.get(OWNER_HEADER, "")
    return str(owner[0] if isinstance(owner, list) and owner else owner)
