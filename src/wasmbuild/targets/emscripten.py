"""wasm32-emscripten (node): Emscripten toolchain, the C libraries, configure/make for the host, staging.

The artifact is python.js + python.wasm for node (NODERAWFS: the guest sees the host's files), built with
dynamic-linking support (MAIN_MODULE) like CPython's `emscripten-node-dl` profile.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from wasmbuild import cache, emscripten, libs, log
from wasmbuild.build import STEPS_VERSION, Context, build_python, build_triple, configure_and_make_host, prepare_source
from wasmbuild.recipe import load_toolchain, toolchain_file
from wasmbuild.runner import NODE_STACK_KB
from wasmbuild.toolchain import Toolchain

HOST = "wasm32-unknown-emscripten"
# Bump when the host build's commands change (invalidates cached host builds only).
HOST_STEPS_VERSION = 1
PRE_JS_NAME = "wasmbuild-pre.js"
# Emscripten hands programs a fixed environment (USER=web_user, HOME=/home/web_user ...); CPython needs the
# host's (PYTHONHOME, PYTHONPATH, TMPDIR ...). Copied in before main() runs -- except PATH: programs found on
# the host's PATH cannot be started from wasm (shutil.which would find them, subprocess then fails).
PRE_JS = """// wasmbuild: give CPython the host environment under node (not PATH: no host program can run).
Module['preRun'] = Module['preRun'] || [];
Module['preRun'].push(() => {
  if (typeof process == 'object' && process.env) {
    Object.assign(Module['ENV'], process.env);
    delete Module['ENV']['PATH'];
  }
});
"""
LAUNCHER = """#!/bin/sh
# Run this CPython with node. The guest sees the host's files (NODERAWFS). Set NODE to choose node.
# CPython's deep recursion needs a big V8 stack, and V8's stack must fit in the process stack.
here=$(cd "$(dirname "$0")" && pwd)
ulimit -s unlimited 2>/dev/null || ulimit -s "$(ulimit -H -s)" 2>/dev/null || true
PYTHONHOME="$here" exec "${{NODE:-node}}" --stack-size={stack} "$here/python.js" "$@"
"""


def provision_toolchain(ctx: Context) -> Toolchain:
    manifest = load_toolchain(toolchain_file(ctx.root, ctx.target.toolchain))
    with log.step(f"Provision {manifest.name} {manifest.version}"):
        tc = emscripten.provision(manifest, ctx.cache, ctx.sources, ctx.toolchain_route, ctx.state.get("node"))
        log.info(f"  {manifest.name} {tc.version} via the {tc.route} route (node {tc.components['node']}): {tc.path}")
    ctx.state["toolchain"] = tc
    return tc


def _toolchain_key(tc: Toolchain) -> dict[str, Any]:
    """What identifies the compiler (not the node that runs it, nor where it was fetched from)."""
    return {"name": tc.name, "version": tc.version, "route": tc.route,
            "components": {k: v for k, v in tc.components.items() if k != "node"},
            "inputs": [{k: v for k, v in i.items() if k in {"name", "sha256"}} for i in tc.inputs],
            "patches": tc.patches}


def compiler_env(ctx: Context, tc: Toolchain, src: Path) -> dict[str, str]:
    return {
        **emscripten.tool_env(tc.path),
        "CC": "emcc",
        "CXX": "em++",
        "AR": "emar",
        "RANLIB": "emranlib",
        "CFLAGS": "-O2 -fPIC",
        "HOST": HOST,
        "BUILD": build_triple(src),
        "CONFIGURE_WRAPPER": "emconfigure",
        "SOURCE_DATE_EPOCH": str(ctx.recipe.source_date_epoch),
    }


def build_libraries(ctx: Context, tc: Toolchain) -> list[libs.Built]:
    src = prepare_source(ctx)
    selected = libs.select(ctx.root / "recipes" / "libraries.yaml", ctx.target.libraries, ctx.recipe.file)
    built = libs.build_all(selected, cache_root=ctx.cache, sources=ctx.sources, target=ctx.target.triple,
                           toolchain_key=_toolchain_key(tc), env=compiler_env(ctx, tc, src), jobs=ctx.jobs,
                           log_dir=ctx.logs)
    ctx.state["libraries"] = built
    return built


def _path_map(ctx: Context, src: Path, build: Path, tc: Toolchain, built: list[libs.Built]) -> dict[str, str]:
    """Build paths and the neutral names they get in the output."""
    return {str(build): "/build/cpython", str(src): "/src/cpython", str(tc.path): "/emsdk",
            **libs.path_map(built)}


def host_settings(ctx: Context, src: Path, build: Path, tc: Toolchain, bp: Path,
                  built: list[libs.Built]) -> tuple[list[str], dict[str, str], dict[str, Any]]:
    t = ctx.target
    prefix_maps = [f"-ffile-prefix-map={k}={v}" for k, v in _path_map(ctx, src, build, tc, built).items()]
    pre_js = build / PRE_JS_NAME
    ldflags = [*t.ldflags, "-sEXPORTED_RUNTIME_METHODS=ENV", f"--pre-js={pre_js}"]
    env = {
        **emscripten.tool_env(tc.path),
        **libs.configure_env(built),
        "CFLAGS": " ".join([*prefix_maps, *t.cflags]),
        "LDFLAGS": " ".join(ldflags),
        "PKG_CONFIG_PATH": "",
        "PKG_CONFIG_LIBDIR": "",
        "SOURCE_DATE_EPOCH": str(ctx.recipe.source_date_epoch),
        "TZ": "UTC",
    }
    if t.config_site:
        env["CONFIG_SITE"] = str(src / t.config_site)
    argv = [
        "emconfigure",
        # Relative: configure records a relative VPATH (no machine path in the output).
        os.path.relpath(src / "configure", build),
        f"--host={t.host}",
        f"--build={build_triple(src)}",
        f"--with-build-python={bp}",
        *t.configure_args,
        *(f"{k}={v}" for k, v in sorted(t.config_cache.items())),
    ]
    record = {
        "args": [f"--host={t.host}", "--build=<build triple>", "--with-build-python=<build-python>", *t.configure_args],
        "config_site": t.config_site,
        "config_cache": dict(sorted(t.config_cache.items())),
        "cflags": [*(f"-ffile-prefix-map=<{k}>={v}" for k, v in
                     (("build", "/build/cpython"), ("src", "/src/cpython"), ("emsdk", "/emsdk"))), *t.cflags],
        "ldflags": [*t.ldflags, "-sEXPORTED_RUNTIME_METHODS=ENV", f"--pre-js=<build>/{PRE_JS_NAME}"],
        "pre_js": PRE_JS,
        "libraries": {k: v.replace(str(b.prefix), f"/opt/{b.lib.name}")
                      for b in built for k, v in b.configure_env().items()},
        "make_args": list(t.make_args),
        "compilers": {"CC": "emcc", "CXX": "em++", "AR": "emar"},
    }
    return argv, env, record


def build_host(ctx: Context) -> Path:
    """Libraries, configure-host and make-host; returns the host build directory (python.js, python.wasm)."""
    src = prepare_source(ctx)
    bp = build_python(ctx)
    tc = ctx.state.get("toolchain") or provision_toolchain(ctx)
    built = build_libraries(ctx, tc)
    t = ctx.target
    key = cache.hash_key({
        "v": [STEPS_VERSION, HOST_STEPS_VERSION],
        "source": ctx.state["source_key"],
        "build_python": ctx.state["build_python"]["key"],
        "toolchain": _toolchain_key(tc),
        "libraries": [b.lib.data for b in built],
        "target": {k: (list(v) if isinstance(v, tuple) else v) for k, v in t.__dict__.items()},
        "pre_js": PRE_JS,
    })
    entry = ctx.cache / "hosts" / f"cpython-{ctx.recipe.version}-{t.triple}-{key[:12]}"
    argv, env, record = host_settings(ctx, src, entry, tc, bp, built)
    ctx.state["configure"] = record
    ctx.state["host_key"] = key
    return configure_and_make_host(ctx, entry, key, argv, env, outputs=("python.js", "python.wasm"),
                                   files={PRE_JS_NAME: PRE_JS})


def stage(ctx: Context, build: Path, dest: Path, debug_dest: Path) -> dict[str, Any]:
    """Lay out the artifact tree in `dest`: python.js, python.wasm, lib/pythonX.Y, LICENSE, python.sh."""
    from wasmbuild.package import install_stdlib

    tc: Toolchain = ctx.state["toolchain"]
    src = prepare_source(ctx)
    bp = Path(ctx.state["build_python"]["path"])
    built = ctx.state.get("libraries") or build_libraries(ctx, tc)
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("python.js", "python.wasm"):
        shutil.copyfile(build / name, dest / name)
    sysconfig_files = sorted(p for p in (build / "build").glob("lib.*/*") if p.suffix in {".py", ".json"})
    # Extension modules built as side modules (the test modules of --enable-wasm-dynamic-linking builds, e.g.
    # _ctypes_test, _testmultiphase): loaded with dlopen from lib-dynload/, as `make install` would place them.
    shared_modules = sorted((build / "build").glob("lib.*/*.so"))
    install_stdlib(ctx, src, bp, dest / "lib", sysconfig_files,
                   _path_map(ctx, src, build, tc, built) | {str(ctx.cache): "/cache"}, shared_modules)
    (dest / "LICENSE").write_bytes((src / "LICENSE").read_bytes())
    launcher = dest / "python.sh"
    launcher.write_text(LAUNCHER.format(stack=NODE_STACK_KB))
    launcher.chmod(0o755)
    return {
        "launcher": "python.sh",
        "python.js": {"sha256": cache.sha256_file(dest / "python.js"), "size": (dest / "python.js").stat().st_size},
        "node": {"minimum": emscripten.NODE_MINIMUM, "stack_size_kb": NODE_STACK_KB},
        "libraries": [b.record for b in built],
        "debuginfo": None,
    }
