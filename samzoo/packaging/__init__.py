"""bioimage.io model packages: building them (:func:`build_packages`) and loading them back (:func:`load_package`).

See ``docs/packaging.md``. ``samzoo.load_model`` takes package paths too.
"""

from samzoo.packaging.builder import BuiltPackage, build_packages, validate_package
from samzoo.packaging.reader import load_package

__all__ = ["BuiltPackage", "build_packages", "validate_package", "load_package"]
