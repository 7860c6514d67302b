"""Model files: :func:`save` and :func:`load` (one ``.npz``, arrays plus JSON metadata).

The file holds every array as an ``.npy`` member and one JSON document (member ``__emkit__``)
that describes the rest: the class, its constructor parameters, the emkit version, the format
version and the fitted state (the public attributes, the traces and the model's parameter
values). It is read with ``allow_pickle=False``, and nothing in it names code to run: classes
are looked up among emkit's public estimators and the frozen dataclasses of emkit's own
modules (models, traces), so loading a file builds arrays, numbers, strings and those values
only.

The encoding is generic: every constructor parameter from ``get_params()`` and every
attribute the fit set are written by type, so a new parameter or a new estimator needs no code
here. What has no data form is not saved: a callable parameter (``callback``) and a
``RandomState`` instance given as ``random_state`` are stored as None (listed under
``dropped_params`` in the metadata).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import zipfile
from os import PathLike

import numpy as np

__all__ = ["save", "load", "FORMAT_VERSION"]

#: version of the file layout; a file with a larger number is refused (written by a newer emkit)
FORMAT_VERSION = 1
_MAGIC = "emkit-model"
_META = "__emkit__"


def _estimator_classes() -> dict:
    """emkit's public estimator classes by name (the only classes a file may name)."""
    from sklearn.base import BaseEstimator

    import emkit

    out = {}
    for name in emkit.__all__:
        obj = getattr(emkit, name)
        if isinstance(obj, type) and issubclass(obj, BaseEstimator):
            out[name] = obj
    return out


def _value_class(qualname: str):
    """A frozen dataclass of an already imported emkit module (models, Trace), or None."""
    module, _, name = qualname.rpartition(".")
    if not (module == "emkit" or module.startswith("emkit.")):
        return None
    mod = sys.modules.get(module)  # never imports: only modules emkit itself loaded
    cls = getattr(mod, name, None) if mod is not None else None
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        return None
    # defined in that emkit module (not a class it imported), and a value: frozen, or Trace
    if cls.__module__ != module or not (cls.__dataclass_params__.frozen or name == "Trace"):
        return None
    return cls


# ---------------------------------------------------------------------------- encoding
class _Encoder:
    """Turns a value into JSON with its arrays set aside (``{"__array__": key}``)."""

    def __init__(self):
        self.arrays: dict[str, np.ndarray] = {}

    def array(self, a: np.ndarray, where: str) -> dict:
        if a.dtype.hasobject:
            raise TypeError(f"emkit.save: {where} is an object array, which cannot be saved.")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = a
        return {"__array__": key}

    def __call__(self, value, where: str):
        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, np.generic):
            return value
        if isinstance(value, np.generic):
            return self.array(np.asarray(value), where) | {"scalar": True}
        if isinstance(value, np.ndarray):
            return self.array(value, where)
        if isinstance(value, np.dtype):
            return {"__dtype__": value.str}
        if isinstance(value, (list, tuple)):
            items = [self(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return items if isinstance(value, list) else {"__tuple__": items}
        if isinstance(value, dict) and all(isinstance(k, str) for k in value):
            return {"__dict__": {k: self(v, f"{where}[{k!r}]") for k, v in value.items()}}
        if isinstance(value, np.random.RandomState):
            kind, keys, pos, has_gauss, cached = value.get_state()
            return {"__random_state__": [kind, self.array(keys, where), int(pos),
                                         int(has_gauss), float(cached)]}
        cls = type(value)
        if dataclasses.is_dataclass(value) and _value_class(
            f"{cls.__module__}.{cls.__qualname__}"
        ) is cls:
            fields = {f.name: self(getattr(value, f.name), f"{where}.{f.name}")
                      for f in dataclasses.fields(value) if f.init}
            return {"__value__": f"{cls.__module__}.{cls.__qualname__}", "fields": fields}
        raise TypeError(f"emkit.save: cannot save {where} of type {cls.__name__}.")


def _bad(msg: str) -> ValueError:
    return ValueError(f"not a readable emkit model file: {msg}")


class _Decoder:
    def __init__(self, arrays):
        self.arrays = arrays

    def array(self, ref):
        key = ref.get("__array__") if isinstance(ref, dict) else None
        if not isinstance(key, str) or key not in self.arrays:
            raise _bad(f"reference to a missing array {key!r}")
        return self.arrays[key]

    def __call__(self, value):
        if value is None or isinstance(value, (bool, str, int, float)):
            return value
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            raise _bad(f"unexpected value {value!r}")
        if "__array__" in value:
            a = self.array(value)
            return a[()] if value.get("scalar") else a
        if "__dtype__" in value:
            try:
                return np.dtype(str(value["__dtype__"]))
            except TypeError as exc:
                raise _bad(f"bad dtype {value['__dtype__']!r}") from exc
        if "__tuple__" in value:
            return tuple(self(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {str(k): self(v) for k, v in dict(value["__dict__"]).items()}
        if "__random_state__" in value:
            kind, keys, pos, has_gauss, cached = value["__random_state__"]
            rs = np.random.RandomState()
            rs.set_state((str(kind), self.array(keys), int(pos), int(has_gauss), float(cached)))
            return rs
        if "__value__" in value:
            cls = _value_class(str(value["__value__"]))
            if cls is None:
                raise _bad(f"unknown value type {value['__value__']!r}")
            fields = {str(k): self(v) for k, v in dict(value.get("fields", {})).items()}
            try:
                return cls(**fields)
            except TypeError as exc:
                raise _bad(f"fields of {cls.__name__} do not match: {exc}") from exc
        raise _bad(f"unexpected value {value!r}")


# ---------------------------------------------------------------------------- public
def save(model, path: str | PathLike) -> None:
    """Write a fitted (or unfitted) emkit estimator to one ``.npz`` file.

    Parameters
    ----------
    model : any fitted (or unfitted) emkit estimator
    path : str or path-like
        Written as given (no suffix is added).

    Notes
    -----
    Array parameters (``means_init``, ...) are stored as arrays. Callables (``callback``) and
    ``RandomState`` instances passed as ``random_state`` are stored as None: a loaded model
    has no callback. Everything the fit set is stored, so the loaded model predicts exactly as
    the saved one and can be refitted or warm-started. Pickling works as well; this format is
    for files that must be safe to open (:func:`load` runs no code from the file).
    """
    classes = _estimator_classes()
    name = type(model).__name__
    if classes.get(name) is not type(model):
        raise TypeError(f"emkit.save: {name} is not an emkit estimator.")
    from . import __version__

    enc = _Encoder()
    params, dropped = {}, []
    for key, value in model.get_params(deep=False).items():
        if callable(value) or isinstance(value, np.random.RandomState):
            params[key] = None
            dropped.append(key)
        else:
            params[key] = enc(value, f"parameter {key}")
    state = {key: enc(value, f"attribute {key}") for key, value in vars(model).items()
             if key not in params}
    meta = {
        "format": _MAGIC, "format_version": FORMAT_VERSION, "emkit_version": __version__,
        "class": name, "params": params, "dropped_params": dropped, "state": state,
    }
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **{_META: np.array(json.dumps(meta))}, **enc.arrays)


def _read(path):
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except IsADirectoryError:
        raise _bad("it is a directory") from None
    if head[:2] != b"PK":  # every .npz is a zip archive
        raise _bad("it is not an .npz archive")
    try:
        npz = np.load(path, allow_pickle=False)
        if not hasattr(npz, "files"):
            raise _bad("a single .npy array, not an .npz archive")
        with npz:
            arrays = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise
    except ValueError as exc:
        if str(exc).startswith("not a readable"):
            raise
        if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
            raise _bad("it holds object arrays (pickled Python objects), which are not "
                       "loaded") from None
        raise _bad(str(exc)) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _bad(f"{type(exc).__name__}: {exc} (truncated or not an .npz file?)") from None
    except Exception as exc:  # zlib errors and others from a damaged archive
        raise _bad(f"{type(exc).__name__}: {exc}") from None
    meta = arrays.pop(_META, None)
    if meta is None or meta.dtype.kind != "U" or meta.shape != ():
        raise _bad("it has no emkit metadata (an .npz written by something else?)")
    try:
        meta = json.loads(str(meta[()]))
    except (json.JSONDecodeError, RecursionError) as exc:
        raise _bad(f"damaged metadata ({type(exc).__name__})") from None
    if not isinstance(meta, dict) or meta.get("format") != _MAGIC:
        raise _bad("it has no emkit metadata (an .npz written by something else?)")
    return meta, arrays


def load(path: str | PathLike):
    """Read a model written by :func:`save`.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    estimator
        The estimator, with its constructor parameters and fitted state.

    Raises
    ------
    ValueError
        If the file is not an emkit model, is truncated or damaged, holds object (pickled)
        arrays, names a class emkit does not have, or has a newer format version. No code
        from the file is ever run (``allow_pickle=False``; classes come from emkit only).
    FileNotFoundError
        If there is no such file.
    """
    meta, arrays = _read(path)
    version = meta.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise _bad(f"bad format version {version!r}")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path}: emkit model format version {version} is newer than this emkit "
            f"({FORMAT_VERSION}); it was written by emkit {meta.get('emkit_version')}: "
            "upgrade emkit to read it."
        )
    cls = _estimator_classes().get(meta.get("class"))
    if cls is None:
        raise _bad(f"unknown estimator class {meta.get('class')!r}")
    dec = _Decoder(arrays)
    try:
        params = {str(k): dec(v) for k, v in dict(meta.get("params", {})).items()}
        state = {str(k): dec(v) for k, v in dict(meta.get("state", {})).items()}
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        if isinstance(exc, ValueError) and str(exc).startswith("not a readable"):
            raise
        raise _bad(f"damaged metadata ({type(exc).__name__}: {exc})") from None
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise _bad(f"{cls.__name__} has no parameter(s) {', '.join(unknown)} "
                   "(written by another emkit version?)")
    model = cls(**params)
    for key, value in state.items():
        # fitted state only: fitted ("name_") or private ("_name") attributes that the class
        # does not define itself (a file cannot replace a method or a property)
        if (not key.isidentifier() or key.startswith("__")
                or not (key.endswith("_") or key.startswith("_"))
                or key in known or hasattr(cls, key)):
            raise _bad(f"unexpected attribute {key!r}")
        setattr(model, key, value)
    return model
