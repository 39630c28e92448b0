"""wasm32-emscripten (node): Emscripten, the C libraries, configure/make for the host, python.js + python.wasm.

The artifact is python.js + python.wasm for node (NODERAWFS: the guest sees the host's files), built with
dynamic-linking support (MAIN_MODULE) like CPython's `emscripten-node-dl` profile.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wasmbuild import cache, libs
from wasmbuild.engines.nodejs import NODE_MINIMUM, NODE_STACK_KB
from wasmbuild.kit import Module, read_pc, read_sysconfig_vars, sysconfig_module
from wasmbuild.process import run
from wasmbuild.recipe import ToolchainManifest
from wasmbuild.steps import BuildPython, Context, HostBuild, SourceTree
from wasmbuild.targets.base import ExtensionTools, HostSettings, PathMap, Target, build_triple
from wasmbuild.toolchain import Toolchain, emsdk

HOST = "wasm32-unknown-emscripten"
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
# Linker flags every build adds to the recipe's: the pre-js above, and ENV exported for it.
EXTRA_LDFLAGS = ("-sEXPORTED_RUNTIME_METHODS=ENV",)


# A side module's link: the interpreter is linked with -sWASM_BIGINT, so 64-bit integers cross the module boundary
# as BigInt; a side module linked without it imports int64_t functions (PyInterpreterState_GetID) with another type
# ("imported function does not match the expected type") and cannot be loaded.
SIDE_MODULE_LINK = ("-sSIDE_MODULE=1", "-sWASM_BIGINT")


class Emscripten(Target):
    name = "emscripten"
    host_outputs = ("python.js", "python.wasm")
    host_steps_version = 4  # 3: install, mkdir, llvm-profdata by name; 4: make inclinstall libainstall (the kit)
    variant = "node"  # the default variant; emscripten_web.py relinks this build for browsers
    link_needs_dev = False
    launcher = LAUNCHER.format(stack=NODE_STACK_KB)

    def provision(self, manifest: ToolchainManifest, ctx: Context) -> Toolchain:
        return emsdk.provision(manifest, ctx.cache, ctx.sources, ctx.toolchain_route, ctx.node)

    def toolchain_note(self, tc: Toolchain) -> str:
        return f" (node {tc.components['node']})"

    def toolchain_key(self, tc: Toolchain) -> dict[str, Any]:
        """What identifies the compiler (not the node that runs it, nor where it was fetched from)."""
        return {"name": tc.name, "version": tc.version, "route": tc.route,
                "components": {k: v for k, v in tc.components.items() if k != "node"},
                "inputs": [{k: v for k, v in i.items() if k in {"name", "sha256"}} for i in tc.inputs],
                "patches": tc.patches}

    def library_env(self, ctx: Context, tc: Toolchain, src: Path) -> dict[str, str]:
        """emcc and friends, emconfigure as the configure wrapper, -fPIC (the libraries link into MAIN_MODULE)."""
        return {
            **emsdk.tool_env(tc.path),
            "CC": "emcc",
            "CXX": "em++",
            "AR": "emar",
            "RANLIB": "emranlib",
            "CFLAGS": "-O2 -fPIC",
            "HOST": HOST,
            "BUILD": build_triple(src),
            "CONFIGURE_WRAPPER": "emconfigure",
        }

    def host_key_extra(self, built: list[libs.Built]) -> dict[str, Any]:
        return {"libraries": [b.lib.data for b in built], "pre_js": PRE_JS}

    def host_files(self) -> dict[str, str]:
        return {PRE_JS_NAME: PRE_JS}

    def path_map(self, src: Path, build: Path, tc: Toolchain, built: list[libs.Built]) -> PathMap:
        return PathMap((("build", build, "/build/cpython"), ("src", src, "/src/cpython"),
                        ("emsdk", tc.path, "/emsdk")),
                       tuple((b.prefix, f"/opt/{b.lib.name}") for b in built))

    def host_settings(self, ctx: Context, src: SourceTree, build: Path, tc: Toolchain, bp: BuildPython,
                      built: list[libs.Built]) -> HostSettings:
        t = ctx.target
        paths = self.path_map(src.path, build, tc, built)
        env = {
            **emsdk.tool_env(tc.path),
            **libs.configure_env(built),
            **self.common_env(ctx, src.path, paths),
            "LDFLAGS": " ".join([*t.ldflags, *EXTRA_LDFLAGS, f"--pre-js={build / PRE_JS_NAME}"]),
            "PKG_CONFIG_LIBDIR": "",
            "TZ": "UTC",
        }
        record = {
            **self.configure_record(t, paths),
            "ldflags": [*t.ldflags, *EXTRA_LDFLAGS, f"--pre-js=<build>/{PRE_JS_NAME}"],
            "pre_js": PRE_JS,
            "libraries": self.libraries_record(built),
            "make_args": list(t.make_args),
            "compilers": {"CC": "emcc", "CXX": "em++", "AR": "emar"},
        }
        return HostSettings(["emconfigure", *self.configure_argv(ctx, src.path, build, bp)], env, record)

    def stage_module(self, host: HostBuild, dest: Path, debug: Path) -> dict[str, Any]:
        """python.js and python.wasm (linked with -g0: no separate debug info)."""
        for name in ("python.js", "python.wasm"):
            shutil.copyfile(host.path / name, dest / name)
        return {
            "python.js": {"sha256": cache.sha256_file(dest / "python.js"), "size": (dest / "python.js").stat().st_size},
            "node": {"minimum": NODE_MINIMUM, "stack_size_kb": NODE_STACK_KB},
            "libraries": [b.record for b in host.libraries],
            "debuginfo": None,
        }

    def shared_modules(self, build: Path) -> list[Path]:
        """Extension modules built as side modules (the test modules of --enable-wasm-dynamic-linking builds, e.g.
        _ctypes_test, _testmultiphase): loaded with dlopen from lib-dynload/, as `make install` would place them."""
        return sorted((build / "build").glob("lib.*/*.so"))

    def extension_tools(self, tc: Toolchain, triple: str) -> ExtensionTools:
        """A package's extension module is a side module (-sSIDE_MODULE=1, -fPIC as CPython's own shared
        modules), loaded by the MAIN_MODULE interpreter with dlopen from its package's directory."""
        return ExtensionTools(cc=["emcc"], cxx=["em++"], ldshared=["emcc", *SIDE_MODULE_LINK],
                              cflags=["-O2", "-fPIC", f"-ffile-prefix-map={tc.path}=/emsdk"],
                              env=emsdk.tool_env(tc.path), linked_into_interpreter=False)

    def link_modules(self, tc: Toolchain, tree: Path, modules: Sequence[Module], work: Path, log_file: Path,
                     short: str, triple: str) -> dict[str, str]:
        """Each module a side module (emcc -sSIDE_MODULE=1, -fPIC as CPython's own shared modules) with the
        kit's extension flags (python-X.Y.pc), named with the artifact's EXT_SUFFIX, in lib-dynload/ (a dotted
        name: beside its package in site-packages/)."""
        stdlib = tree / "lib" / f"python{short}"
        suffix = str(read_sysconfig_vars(sysconfig_module(stdlib)).get("EXT_SUFFIX") or ".so")
        cflags = ["-O2", "-fPIC", *shlex.split(read_pc(tree / "lib" / "pkgconfig" / f"python-{short}.pc")
                                                .get("Cflags", "")),
                  f"-ffile-prefix-map={tc.path}=/emsdk", f"-ffile-prefix-map={work}=/build"]
        env = emsdk.tool_env(tc.path)
        files = {}
        for m in modules:
            objects = []
            for i, src in enumerate(m.sources):
                obj = work / f"{m.name}-{i}-{src.stem}.o"
                run(["emcc", *cflags, f"-ffile-prefix-map={src.parent}=/src/{m.name}", "-c", src, "-o", obj],
                    env=env, log_file=log_file, what=f"compiling {src} (module {m.name})")
                objects.append(obj)
            objects.extend(m.objects)
            # A module of a package sits beside it (site-packages/<package path>/), a top-level one in lib-dynload/.
            package = m.name.rpartition(".")[0]
            where = f"site-packages/{package.replace('.', '/')}" if package else "lib-dynload"
            rel = f"lib/python{short}/{where}/{m.base}{suffix}"
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            run(["emcc", "-O2", *SIDE_MODULE_LINK, "-o", tree / rel, *objects], env=env, log_file=log_file,
                what=f"linking the side module {m.name}{suffix}")
            files[m.name] = rel
        return files

