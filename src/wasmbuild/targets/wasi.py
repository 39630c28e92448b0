"""wasm32-wasip1: WASI SDK toolchain, configure/make for the host, and the staged install tree."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from wasmbuild import cache, log, wasi_sdk
from wasmbuild.build import STEPS_VERSION, Context, build_python, build_triple, configure_and_make_host, prepare_source
from wasmbuild.process import run
from wasmbuild.recipe import load_toolchain, toolchain_file
from wasmbuild.toolchain import Toolchain

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
MAX_WASM_STACK = 8 * 1024 * 1024
# Bump when the host build's commands change (invalidates cached host builds only).
HOST_STEPS_VERSION = 2


def provision_toolchain(ctx: Context) -> Toolchain:
    manifest = load_toolchain(toolchain_file(ctx.root, ctx.target.toolchain))
    with log.step(f"Provision {manifest.name} {manifest.version}"):
        tc = wasi_sdk.provision(manifest, ctx.cache, ctx.sources, ctx.toolchain_route,
                                ctx.state.get("wasi_sdk_path"))
        log.info(f"  {manifest.name} {tc.version} via the {tc.route} route: {tc.path}")
    ctx.state["toolchain"] = tc
    return tc


def _path_map(ctx: Context, src: Path, build: Path, sdk: Path) -> dict[str, str]:
    """Build paths and the neutral names they get in the output."""
    return {str(build): "/build/cpython", str(src): "/src/cpython", str(sdk): "/wasi-sdk"}


def host_settings(
    ctx: Context, src: Path, build: Path, tc: Toolchain, bp: Path
) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    """(configure argv, environment, record) for the host configure."""
    t = ctx.target
    sdk = tc.path
    sysroot = sdk / "share" / "wasi-sysroot"
    prefix_maps = [f"-ffile-prefix-map={k}={v}" for k, v in _path_map(ctx, src, build, sdk).items()]
    cflags = [*prefix_maps, *t.cflags]
    tools = {"CC": "clang", "CPP": "clang-cpp", "CXX": "clang++", "AR": "llvm-ar", "RANLIB": "ranlib"}
    env = {k: f"{sdk / 'bin' / v}" for k, v in tools.items()}
    for k in ("CC", "CPP", "CXX"):
        env[k] += f" --target={t.triple} --sysroot={sysroot}"
    env |= {
        "CFLAGS": " ".join(cflags),
        "LDFLAGS": " ".join(t.ldflags),
        "PKG_CONFIG_PATH": "",
        "PKG_CONFIG_LIBDIR": f"{sysroot / 'lib' / 'pkgconfig'}{os.pathsep}{sysroot / 'share' / 'pkgconfig'}",
        "PKG_CONFIG_SYSROOT_DIR": str(sysroot),
        "WASI_SDK_PATH": str(sdk),
        "WASI_SYSROOT": str(sysroot),
        "PATH": f"{sdk / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "SOURCE_DATE_EPOCH": str(ctx.recipe.source_date_epoch),
    }
    if t.config_site:
        env["CONFIG_SITE"] = str(src / t.config_site)
    argv = [
        # A relative path: configure then records a relative VPATH, and getpath.c's VPATH string (compiled
        # into python.wasm) names no directory of this machine.
        os.path.relpath(src / "configure", build),
        f"--host={t.host}",
        f"--build={build_triple(src)}",
        f"--with-build-python={bp}",
        *t.configure_args,
        *(f"{k}={v}" for k, v in sorted(t.config_cache.items())),
    ]
    record = {
        "args": [f"--host={t.host}", "--build=<build triple>", "--with-build-python=<build-python>",
                 *t.configure_args],
        "config_site": t.config_site,
        "config_cache": dict(sorted(t.config_cache.items())),
        "cflags": [*(f"-ffile-prefix-map=<{n}>={v}" for n, v in
                     (("build", "/build/cpython"), ("src", "/src/cpython"), ("sdk", "/wasi-sdk"))), *t.cflags],
        "ldflags": list(t.ldflags),
        "compilers": {k: f"<sdk>/bin/{v}" for k, v in tools.items()},
    }
    return argv, env, record


def build_host(ctx: Context) -> Path:
    """configure-host + make-host; returns the host build directory (holding python.wasm)."""
    src = prepare_source(ctx)
    bp = build_python(ctx)
    tc = ctx.state.get("toolchain") or provision_toolchain(ctx)
    t = ctx.target
    key_inputs = {
        "v": [STEPS_VERSION, HOST_STEPS_VERSION],
        "source": ctx.state["source_key"],
        "build_python": ctx.state["build_python"]["key"],
        "toolchain": tc.record(),
        "target": {k: (list(v) if isinstance(v, tuple) else v) for k, v in t.__dict__.items()},
    }
    key = cache.hash_key(key_inputs)
    entry = ctx.cache / "hosts" / f"cpython-{ctx.recipe.version}-{t.triple}-{key[:12]}"
    argv, env, record = host_settings(ctx, src, entry, tc, bp)
    ctx.state["configure"] = record
    ctx.state["host_key"] = key
    return configure_and_make_host(ctx, entry, key, argv, env, outputs=("python.wasm",))


def stage(ctx: Context, build: Path, dest: Path, debug_dest: Path) -> dict[str, Any]:
    """Lay out the artifact tree in `dest`: python.wasm (stripped), lib/pythonX.Y, LICENSE, python.sh.
    The unstripped module goes to `debug_dest`. Returns the part of the build record it knows."""
    from wasmbuild.package import install_stdlib

    tc: Toolchain = ctx.state["toolchain"]
    src = prepare_source(ctx)
    bp = Path(ctx.state["build_python"]["path"])
    dest.mkdir(parents=True, exist_ok=True)
    debug_dest.mkdir(parents=True, exist_ok=True)
    (debug_dest / "python.wasm").write_bytes((build / "python.wasm").read_bytes())
    run([tc.path / "bin" / "llvm-strip", "--strip-all", "-o", dest / "python.wasm", build / "python.wasm"],
        what="llvm-strip")
    sysconfig_files = sorted(p for p in (build / "build").glob("lib.*/*") if p.suffix in {".py", ".json"})
    install_stdlib(ctx, src, bp, dest / "lib", sysconfig_files,
                   _path_map(ctx, src, build, tc.path) | {str(ctx.cache): "/cache"})
    (dest / "LICENSE").write_bytes((src / "LICENSE").read_bytes())
    launcher = dest / "python.sh"
    launcher.write_text(LAUNCHER.format(stack=MAX_WASM_STACK))
    launcher.chmod(0o755)
    return {"launcher": "python.sh", "max_wasm_stack": MAX_WASM_STACK}


