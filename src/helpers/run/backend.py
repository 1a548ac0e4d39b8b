"""The Keras backend a build trains with (a report's ``backend``). Keras reads KERAS_BACKEND once, when
it is first imported, so the choice is made before that: in the build process (whose run keys read
it, helpers.run.cache.versions) and, inherited, in every kernel; a notebook opened by hand makes it
when its training cell loads the parameter files."""
from __future__ import annotations

import importlib.util
import os
import sys

BACKENDS = {"tensorflow": "TensorFlow", "jax": "JAX"}


class BackendUnavailable(Exception):
    """The backend cannot be used in this process; str() is one line saying what to do."""


def use(name: str) -> None:
    if name not in BACKENDS:
        raise BackendUnavailable(f"unknown backend {name!r}; allowed: {', '.join(BACKENDS)}")
    if importlib.util.find_spec(name) is None:
        raise BackendUnavailable(f"{BACKENDS[name]} is not installed in {sys.prefix}; "
                                 f"`make setup BACKEND={name}` installs it")
    keras = sys.modules.get("keras")
    if keras is not None and keras.backend.backend() != name:
        raise BackendUnavailable(f"Keras is already loaded with the {keras.backend.backend()} backend in this "
                                 f"process; restart it (the kernel) to train on {name}")
    os.environ["KERAS_BACKEND"] = name
