"""attngen-keras: interpretable DNA classification with AttnGen in Keras 3.

Importing the package registers its Keras-serializable classes (the layers
and callbacks, under the package name `attngen`), so that after

>>> import attngen_keras  # doctest: +SKIP
>>> model = keras.saving.load_model("runs/hof/model.keras")  # doctest: +SKIP

the model loads without `custom_objects`. Keras itself takes about 10 s to
import, and the `attngen` command line needs none of it for `--help`; so when
Keras is not imported yet, the registration waits until it is (a hook on the
`keras` import), and happens at once otherwise.
"""

import importlib
import importlib.abc
import sys

__version__ = "0.1.0"

# The modules that define (or import the modules that define) every class
# decorated with `keras.saving.register_keras_serializable`; a test checks
# that this covers all of them.
SERIALIZABLE_MODULES = ("attngen_keras.layers", "attngen_keras.models", "attngen_keras.callbacks")


def _initializing(name):
    module = sys.modules.get(name)
    return module is not None and getattr(getattr(module, "__spec__", None), "_initializing", False)


def register_serializables():
    """Imports the modules that register attngen's Keras classes (idempotent).

    Nothing is imported while one of those modules is itself being imported
    (its import finishes the registration); this is what makes the hook below
    safe when `import attngen_keras.layers` is what imports Keras.
    """
    names = [m for m in sys.modules if m.startswith(SERIALIZABLE_MODULES)]
    if any(_initializing(name) for name in names):
        return
    for name in SERIALIZABLE_MODULES:
        importlib.import_module(name)


class _RegisterOnKerasImport(importlib.abc.MetaPathFinder):
    """Finds `keras` with the other finders, and registers attngen's classes once it has loaded."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        # `importlib.util.find_spec("keras")` (TensorFlow asks it) finds without
        # importing: the hook stays until Keras has actually been executed.
        for finder in sys.meta_path:
            if isinstance(finder, _RegisterOnKerasImport):
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        execute = getattr(loader, "exec_module", None)
        if execute is None:
            return spec

        def exec_module(module):
            execute(module)
            _remove_hook()
            try:
                register_serializables()
            except Exception as error:  # never break `import keras` itself
                import warnings

                warnings.warn(
                    f"attngen_keras could not register its Keras classes ({error})", stacklevel=2
                )

        loader.exec_module = exec_module
        return spec


def _remove_hook():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterOnKerasImport)]


if "keras" in sys.modules:
    register_serializables()
elif not any(isinstance(f, _RegisterOnKerasImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterOnKerasImport())
