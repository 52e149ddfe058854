"""The one reader of a child's answer (``result.npz``): untrusted data checked against the check's schema.

A child runs student code, and student code can write the answer file itself. So before the grader uses any
array, this module checks the whole file: a zip that is safe to open (:func:`grader.runner.unpack_problem`),
exactly the arrays the check declares (no unknown, none missing), each with the declared number of dimensions,
the declared length in each fixed dimension, a plain dtype of an allowed kind (never object), and at most the
declared number of elements. Only then are the arrays read (``allow_pickle=False``). Anything else raises
:class:`AnswerError`, whose message the check shows as its 0.

A schema is a dict ``{array name: Field}`` written next to the check that reads the answer (grader/checks_*.py,
grader/grade.py), so that a change of what a child writes changes one place.
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import numpy as np

MAX_ANSWER_ITEMS = 4_000_000         # elements of one array when its shape leaves a dimension open (32 MB of f8)
MAX_STRING_CHARS = 8192              # characters of one string element (kind "U")


class AnswerError(ValueError):
    """The answer is not what the grader's harness writes (the message says what is wrong)."""


@dataclass(frozen=True)
class Field:
    """One declared array: ``shape`` (an int fixes a dimension, None leaves it open), the dtype kinds allowed
    (numpy kinds: ``f`` float, ``b`` bool, ``i``/``u`` integer, ``U`` unicode) and, when a dimension is open, at
    most ``max_items`` elements in all."""

    shape: tuple[int | None, ...]
    kinds: str = "f"
    max_items: int | None = None

    def limit(self) -> int:
        if self.max_items is not None:
            return self.max_items
        if all(d is not None for d in self.shape):
            return int(np.prod([int(d) for d in self.shape], dtype=np.int64))
        return MAX_ANSWER_ITEMS

    def problem(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> str:
        """'' if an array of ``shape`` and ``dtype`` fits this field, else why not."""
        if dtype.hasobject or dtype.kind not in self.kinds or dtype.fields is not None or dtype.subdtype is not None:
            return f"array '{name}' has dtype {dtype.str}, not a plain {_kinds(self.kinds)} array"
        if dtype.kind == "U" and dtype.itemsize > 4 * MAX_STRING_CHARS:
            return f"array '{name}' holds strings longer than {MAX_STRING_CHARS} characters"
        want = "(" + ", ".join("n" if d is None else str(d) for d in self.shape) + ("," if len(self.shape) == 1 else "")
        want += ")"
        if len(shape) != len(self.shape) or any(d is not None and d != s for d, s in zip(self.shape, shape,
                                                                                          strict=False)):
            return f"array '{name}' has shape {tuple(shape)}, expected {want}"
        n = 1
        for s in shape:
            n *= int(s)
        if n > self.limit():
            return f"array '{name}' has {n} elements, more than the {self.limit()} expected"
        return ""


Schema = dict[str, Field]


def _kinds(kinds: str) -> str:
    names = {"f": "float", "b": "bool", "i": "integer", "u": "integer", "U": "string"}
    return "/".join(dict.fromkeys(names.get(k, k) for k in kinds))


def _header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise AnswerError(f"unsupported .npy version {version}")


def read_answer(raw: bytes, schema: Schema) -> dict[str, np.ndarray]:
    """The arrays of ``raw`` (a child's ``result.npz``) if they match ``schema`` exactly; else AnswerError.

    Every header is checked before any array is read, so a forged shape never makes the grader allocate."""
    from grader.runner import unpack_problem

    problem = unpack_problem(raw)
    if problem:
        raise AnswerError(f"unreadable answer ({problem})")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = z.infolist()
            names = [i.filename for i in infos]
            unknown = [n for n in names if not n.endswith(".npy") or n[:-4] not in schema]
            if unknown:
                raise AnswerError(f"unexpected array '{unknown[0].removesuffix('.npy')[:40]}' in the answer")
            if len(set(names)) != len(names):
                raise AnswerError("an array appears twice in the answer")
            missing = sorted(set(schema) - {n[:-4] for n in names})
            if missing:
                raise AnswerError(f"array '{missing[0]}' is missing from the answer")
            for info in infos:
                name = info.filename[:-4]
                with z.open(info) as f:
                    shape, _, dtype = _header(f)
                why = schema[name].problem(name, tuple(int(s) for s in shape), dtype)
                if why:
                    raise AnswerError(why)
            out = {}
            for info in infos:
                with z.open(info) as f:
                    out[info.filename[:-4]] = np.lib.format.read_array(f, allow_pickle=False)
            return out
    except AnswerError:
        raise
    except Exception as e:  # noqa: BLE001 - anything unreadable is the child's fault
        raise AnswerError(f"unreadable answer ({type(e).__name__})") from None
