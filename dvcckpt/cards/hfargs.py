"""Hugging Face `training_args.bin`, read without running it.

The Trainer writes its `TrainingArguments` with `torch.save`: a zip holding one pickle
(`<folder>/data.pkl`). Loading a pickle can run any code it names, so this reader never
imports or calls anything: every class or function the pickle names becomes an inert
stand-in (`_Named`) that only records its name, its arguments and its state, and
persistent ids (tensor storages) become plain placeholders. What comes back is data.

A pickle that names a function or a module a `TrainingArguments` record never uses
(`posix.system`, `builtins.eval`, `subprocess.Popen`) is refused: nothing was run, but
a file like that would run code in whoever loads it with `torch.load`. So is anything
that is not a `*Arguments` record; every refusal is a `UsageError` naming the file.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

from dvcckpt.errors import UsageError

# A real record's pickle is about 4 KB; anything far bigger is not one.
MAX_PICKLE_BYTES = 1 << 20
MAX_ARCHIVE_BYTES = 8 << 20
_CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9_]*")
# Modules whose classes build code, processes or I/O when called: never in a record.
_DANGEROUS_ROOTS = frozenset(
    {
        "builtins", "os", "posix", "nt", "sys", "subprocess", "shutil", "socket", "importlib",
        "runpy", "pickle", "marshal", "code", "codeop", "ctypes", "pty", "webbrowser", "io",
        "types", "functools", "operator", "multiprocessing", "threading", "asyncio", "pdb",
    }
)  # fmt: skip
# Functions (not classes) that plain data records legitimately use.
_DATA_FUNCTIONS = frozenset(
    {
        ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
        ("builtins", "bytearray"), ("_codecs", "encode"), ("copyreg", "_reconstructor"),
        ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
        ("torch", "device"), ("torch", "float32"), ("torch", "float16"), ("torch", "bfloat16"),
    }
)  # fmt: skip


class _Named:
    """Stand-in for something a pickle names: records how it was built, runs nothing."""

    qualname = "?"
    args: tuple[Any, ...]
    state: Any

    # `__new__`, not `__init__`: NEWOBJ builds instances without calling `__init__`.
    def __new__(cls, *args: Any) -> _Named:
        made = super().__new__(cls)
        made.args, made.state = args, None
        return made

    def __setstate__(self, state: Any) -> None:  # BUILD
        self.state = state


class _InertUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes) -> None:
        super().__init__(io.BytesIO(data))
        self.refused: list[str] = []

    def find_class(self, module: str, name: str) -> type[_Named]:
        qualname = f"{module}.{name}"
        if not _harmless(module, name):
            self.refused.append(qualname)
        # A fresh subclass per name (NEWOBJ needs a type); no import ever happens.
        return type(name, (_Named,), {"qualname": qualname})

    def persistent_load(self, pid: Any) -> object:
        return _Named()  # a tensor storage: never loaded


def _harmless(module: str, name: str) -> bool:
    if (module, name) in _DATA_FUNCTIONS:
        return True
    root = module.split(".", 1)[0]
    return bool(_CLASS_NAME.fullmatch(name)) and root not in _DANGEROUS_ROOTS


def read(path: Path) -> dict[str, Any]:
    """The `TrainingArguments` fields recorded in `path`, as plain values."""
    record = _unpickled(path, _pickle_bytes(path))
    if not isinstance(record, _Named) or not record.qualname.endswith("Arguments"):
        raise _refused(path, "it does not hold a TrainingArguments record")
    if not isinstance(record.state, dict):
        raise _refused(path, f"its {record.qualname} carries no fields")
    return {str(key): plain(value) for key, value in record.state.items()}


def plain(value: Any) -> Any:
    """A field's value as data: an enum member (`IntervalStrategy('steps')`) is its value."""
    if isinstance(value, _Named):
        return value.args[0] if len(value.args) == 1 else None
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return None  # nested records (accelerator settings, devices) are not recorded


def _pickle_bytes(path: Path) -> bytes:
    try:
        if path.stat().st_size > MAX_ARCHIVE_BYTES:
            raise _refused(path, f"it is over {MAX_ARCHIVE_BYTES} bytes")
        with zipfile.ZipFile(path) as archive:
            members = [
                i for i in archive.infolist() if re.fullmatch(r"[^/]+/data\.pkl", i.filename)
            ]
            if len(members) != 1:
                raise _refused(path, "it is not a torch.save archive (no single data.pkl)")
            if members[0].file_size > MAX_PICKLE_BYTES:
                raise _refused(path, f"its data.pkl is over {MAX_PICKLE_BYTES} bytes")
            with archive.open(members[0]) as stream:
                return stream.read(MAX_PICKLE_BYTES + 1)[:MAX_PICKLE_BYTES]
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError) as exc:
        raise _refused(path, f"it is not a torch.save archive ({exc})") from None
    except OSError as exc:
        raise _refused(path, f"it cannot be read ({exc.strerror or exc})") from None


def _unpickled(path: Path, data: bytes) -> Any:
    unpickler = _InertUnpickler(data)
    try:
        record = unpickler.load()
    except Exception as exc:  # any malformed pickle: the reader itself ran nothing
        raise _refused(path, f"its pickle is malformed ({type(exc).__name__})") from None
    if unpickler.refused:
        raise _refused(
            path,
            f"it names {unpickler.refused[0]}, which would run code when loaded (nothing was run)",
        )
    return record


def _refused(path: Path, why: str) -> UsageError:
    return UsageError(
        f"{path}: not a readable training_args.bin: {why}",
        hint="do not torch.load it; delete it (the card then records no training arguments) "
        "or re-save it from TrainingArguments",
    )
