"""Files written inside a folder, never through a link found there.

A batch's manifest is data, often from someone else, and its output folder may be shared: a
folder inside it can turn into a link after the manifest was checked (`ln -s /elsewhere
OUT/late`). So every write opens the output folder once, then each folder below it by
descriptor, made where missing and refused where it is a link (O_NOFOLLOW); the file itself is
written under a temporary name and renamed over the final one, which replaces a link there
instead of following it. Nothing is written half-way: a reader sees the old file or the new one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
APPEND_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC


class LinkRefused(OSError):
    """A folder or file on the way is a link (or not a folder) where the write expected none."""


def write_inside(folder: Path, relative: Path, data: bytes) -> None:
    """Write `folder`/`relative` atomically, following no link below `folder`."""
    with parent_descriptor(folder, relative) as parent:
        replace_at(parent, relative.name, data)


def append_inside(folder: Path, name: str, data: bytes) -> None:
    """Append `data` to `folder`/`name` in one write, then fsync; a link there is refused."""
    with parent_descriptor(folder, Path(name)) as parent:
        try:
            descriptor = os.open(name, APPEND_FLAGS, 0o666, dir_fd=parent)
        except OSError as error:
            raise refused_or(error, folder / name) from None
        try:
            os.write(descriptor, data)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@contextlib.contextmanager
def parent_descriptor(folder: Path, relative: Path) -> Iterator[int]:
    """A descriptor of the folder `relative` goes into, opened step by step from `folder`."""
    check_relative(relative)
    folder.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(folder, DIRECTORY_FLAGS)
    try:
        for depth, name in enumerate(relative.parts[:-1], start=1):
            child = enter(descriptor, name, folder.joinpath(*relative.parts[:depth]))
            os.close(descriptor)
            descriptor = child
        yield descriptor
    finally:
        os.close(descriptor)


def check_relative(relative: Path) -> None:
    if relative.is_absolute() or not relative.parts or ".." in relative.parts:
        raise ValueError(f"{relative}: expected a path inside the folder, without '..'")


def enter(parent: int, name: str, shown: Path) -> int:
    """Open the subfolder `name` of `parent`, made when missing; a link there is refused."""
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, dir_fd=parent)
        return os.open(name, DIRECTORY_FLAGS, dir_fd=parent)
    except OSError as error:
        raise refused_or(error, shown) from None


def replace_at(parent: int, name: str, data: bytes) -> None:
    partial = f".{name}.{uuid.uuid4().hex[:8]}.part"
    try:
        descriptor = os.open(partial, NEW_FILE_FLAGS, 0o666, dir_fd=parent)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
            os.fsync(descriptor)  # the bytes are on disk before the name points at them
        finally:
            os.close(descriptor)
        os.replace(partial, name, src_dir_fd=parent, dst_dir_fd=parent)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(partial, dir_fd=parent)


def refused_or(error: OSError, path: Path) -> OSError:
    """ELOOP / ENOTDIR from O_NOFOLLOW mean a link (or a file) where a folder was expected."""
    if error.errno in (errno.ELOOP, errno.ENOTDIR):
        return LinkRefused(f"{path} is a link or not a folder; not writing through it")
    return error
