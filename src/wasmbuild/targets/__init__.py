"""Targets implement the same named steps over one Context: provision_toolchain, configure_host, make_host,
stage (the installable tree), and the record of what they used."""

from __future__ import annotations

from wasmbuild.errors import UsageError

TARGET_NAMES = ("wasi", "emscripten")


def get_target(name: str):  # -> module with the step functions
    if name == "wasi":
        from wasmbuild.targets import wasi

        return wasi
    if name == "emscripten":
        from wasmbuild.targets import emscripten

        return emscripten
    raise UsageError(f"unknown target '{name}'", hint=f"choose one of: {', '.join(TARGET_NAMES)}")
