"""wasmbuild: reproducible cross-builds of CPython for WebAssembly."""

__version__ = "0.1.0"
