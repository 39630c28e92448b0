"""wasm32-wasip1: the WASI SDK, configure/make for the host, the stripped module, run by wasmtime."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wasmbuild import libs
from wasmbuild.engines.wasmtime_api import MAX_WASM_STACK
from wasmbuild.kit import Module, module_object, read_pc
from wasmbuild.libs import Built
from wasmbuild.process import run
from wasmbuild.recipe import ToolchainManifest
from wasmbuild.steps import BuildPython, Context, HostBuild, SourceTree
from wasmbuild.targets.base import ExtensionTools, HostSettings, PathMap, Target, build_triple
from wasmbuild.toolchain import Toolchain, wasi_sdk

LAUNCHER = """#!/bin/sh
# Run this CPython with the wasmtime CLI: the current directory is the guest's /, the standard library
# is mapped read-only at /lib. Set WASMTIME to choose the wasmtime binary.
here=$(cd "$(dirname "$0")" && pwd)
exec "${{WASMTIME:-wasmtime}}" run \\
    -W max-wasm-stack={stack} \\
    --dir "$PWD::/" \\
    --dir "$here/lib::/lib" \\
    --env PYTHONHOME=/ \\
    --argv0 python \\
    "$here/python.wasm" "$@"
"""
# The entry point of a python.wasm with extension modules built in (wasmbuild link): registered as built-in
# modules, then CPython's own main.
LINKED_MAIN = """/* wasmbuild link: python.wasm with extension modules built in. */
#include <Python.h>

{declarations}

int main(int argc, char **argv) {{
{registrations}
    return Py_BytesMain(argc, argv);
}}
"""
# The SDK's tools, as configure's variables name them.
TOOLS = {"CC": "clang", "CPP": "clang-cpp", "CXX": "clang++", "AR": "llvm-ar", "RANLIB": "ranlib"}


def sdk_tools(sdk: Path, triple: str) -> dict[str, str]:
    """The SDK's tools (TOOLS) for CPython's configure and the libraries' scripts alike: the compilers targeting
    `triple` with the SDK's sysroot, and the SDK's bin/ first on PATH."""
    env = {k: str(sdk / "bin" / v) for k, v in TOOLS.items()}
    for k in ("CC", "CPP", "CXX"):
        env[k] += f" --target={triple} --sysroot={sdk / 'share' / 'wasi-sysroot'}"
    env["PATH"] = f"{sdk / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    return env


def sdk_cc(sdk: Path, triple: str) -> list[str]:
    """The SDK's clang for `triple` as an argv (what sdk_tools' CC says as one string for configure): a path
    with spaces in it stays one word."""
    return [str(sdk / "bin" / TOOLS["CC"]), f"--target={triple}", f"--sysroot={sdk / 'share' / 'wasi-sysroot'}"]


class Wasi(Target):
    name = "wasi"
    host_outputs = ("python.wasm",)
    host_steps_version = 5  # 4: install, mkdir, llvm-profdata by name; 5: make inclinstall libainstall (the kit)
    link_needs_dev = True
    launcher = LAUNCHER.format(stack=MAX_WASM_STACK)

    def provision(self, manifest: ToolchainManifest, ctx: Context) -> Toolchain:
        return wasi_sdk.provision(manifest, ctx.cache, ctx.sources, ctx.toolchain_route, ctx.wasi_sdk_path)

    def library_env(self, ctx: Context, tc: Toolchain, src: Path) -> dict[str, str]:
        """The SDK's clang for the target (static libraries: zlib, bzip2, xz, sqlite)."""
        sdk, t = tc.path, ctx.target
        tools = sdk_tools(sdk, t.triple)
        return {
            **{k: tools[k] for k in ("CC", "CXX", "AR", "RANLIB", "PATH")},
            "CFLAGS": f"-O2 -ffile-prefix-map={sdk}=/wasi-sdk",
            "HOST": t.triple,
            "BUILD": build_triple(src),
            "CONFIGURE_WRAPPER": "",
            "PKG_CONFIG_LIBDIR": f"{sdk / 'share' / 'wasi-sysroot' / 'lib' / 'pkgconfig'}",
        }

    def host_key_extra(self, built: list[Built]) -> dict[str, Any]:
        return {"libraries": [b.lib.data for b in built]} if built else {}

    def path_map(self, src: Path, build: Path, tc: Toolchain, built: list[Built]) -> PathMap:
        return PathMap((("build", build, "/build/cpython"), ("src", src, "/src/cpython"),
                        ("sdk", tc.path, "/wasi-sdk")), tuple((b.prefix, f"/opt/{b.lib.name}") for b in built))

    def host_settings(self, ctx: Context, src: SourceTree, build: Path, tc: Toolchain, bp: BuildPython,
                      built: list[Built]) -> HostSettings:
        t = ctx.target
        sdk = tc.path
        sysroot = sdk / "share" / "wasi-sysroot"
        paths = self.path_map(src.path, build, tc, built)
        env = {**libs.configure_env(built), **sdk_tools(sdk, t.triple)}
        env |= {
            **self.common_env(ctx, src.path, paths),
            "LDFLAGS": " ".join(t.ldflags),
            "PKG_CONFIG_LIBDIR": f"{sysroot / 'lib' / 'pkgconfig'}{os.pathsep}{sysroot / 'share' / 'pkgconfig'}",
            "PKG_CONFIG_SYSROOT_DIR": str(sysroot),
            "WASI_SDK_PATH": str(sdk),
            "WASI_SYSROOT": str(sysroot),
        }
        record = {
            **self.configure_record(t, paths),
            "ldflags": list(t.ldflags),
            **({"libraries": self.libraries_record(built)} if built else {}),
            "compilers": {k: f"<sdk>/bin/{v}" for k, v in TOOLS.items()},
        }
        return HostSettings(self.configure_argv(ctx, src.path, build, bp), env, record)

    def stage_module(self, host: HostBuild, dest: Path, debug: Path) -> dict[str, Any]:
        """python.wasm stripped into `dest`, the unstripped module (DWARF, name section) into `debug`."""
        (debug / "python.wasm").write_bytes((host.path / "python.wasm").read_bytes())
        run([host.toolchain.path / "bin" / "llvm-strip", "--strip-all", "-o", dest / "python.wasm",
             host.path / "python.wasm"], what="llvm-strip")
        extra: dict[str, Any] = {"max_wasm_stack": MAX_WASM_STACK}
        if host.libraries:
            extra["libraries"] = [b.record for b in host.libraries]
        return extra

    def extension_tools(self, tc: Toolchain, triple: str) -> ExtensionTools:
        """No dynamic loading on WASI: a package's extension module is linked as a relocatable object
        (`wasm-ld -r`), then into a new python.wasm as a built-in module (link_modules)."""
        sysroot = f"--sysroot={tc.path / 'share' / 'wasi-sysroot'}"
        return ExtensionTools(
            cc=sdk_cc(tc.path, triple),
            cxx=[str(tc.path / "bin" / TOOLS["CXX"]), f"--target={triple}", sysroot],
            ldshared=[str(tc.path / "bin" / "wasm-ld"), "-r"],
            cflags=["-O2", f"-ffile-prefix-map={tc.path}=/wasi-sdk"],
            env={"PATH": f"{tc.path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"},
            linked_into_interpreter=True)

    def link_modules(self, tc: Toolchain, tree: Path, modules: Sequence[Module], work: Path, log_file: Path,
                     short: str, triple: str) -> dict[str, str]:
        """A new python.wasm: each module's sources compiled with the SDK and the kit's embed flags
        (python-X.Y-embed.pc), registered with PyImport_AppendInittab before Py_BytesMain, linked against the
        kit's libpython and libraries, stripped like the artifact's own."""
        embed = read_pc(tree / "lib" / "pkgconfig" / f"python-{short}-embed.pc")
        cc = sdk_cc(tc.path, triple)
        cflags = ["-O2", *shlex.split(embed.get("Cflags", "")), f"-ffile-prefix-map={tc.path}=/wasi-sdk",
                  f"-ffile-prefix-map={work}=/build"]
        objects = []
        for m in modules:
            parts = []
            for i, src in enumerate(m.sources):
                obj = work / f"{m.name}-{i}-{src.stem}.o"
                run([*cc, *cflags, f"-ffile-prefix-map={src.parent}=/src/{m.name}", "-c", src, "-o", obj],
                    log_file=log_file, what=f"compiling {src} (module {m.name})")
                parts.append(obj)
            parts.extend(m.objects)
            # One relocatable object per module, kept in the artifact (kit.module_object) for the next link.
            combined = work / f"{m.name}.o"
            run([tc.path / "bin" / "wasm-ld", "-r", "-o", combined, *parts], log_file=log_file,
                what=f"combining the objects of module {m.name}")
            objects.append(combined)
        main = work / "main.c"
        main.write_text(LINKED_MAIN.format(
            declarations="\n".join(f"extern PyObject *{m.init}(void);" for m in modules),
            registrations="\n".join(
                f'    if (PyImport_AppendInittab("{m.name}", {m.init}) == -1) {{ return 120; }}'
                for m in modules)))
        run([*cc, *cflags, "-c", main, "-o", work / "main.o"], log_file=log_file, what="compiling the entry point")
        linked = work / "python.wasm"
        run([*cc, "-o", linked, work / "main.o", *objects, *shlex.split(embed.get("Libs", ""))], log_file=log_file,
            what=f"linking python.wasm with {', '.join(m.name for m in modules)}")
        run([tc.path / "bin" / "llvm-strip", "--strip-all", "-o", tree / "python.wasm", linked], log_file=log_file,
            what="llvm-strip")
        for m, obj in zip(modules, objects, strict=True):
            kept = module_object(tree, short, m.name)
            kept.parent.mkdir(exist_ok=True)
            shutil.copyfile(obj, kept)
        return {m.name: "python.wasm" for m in modules}

