"""wasm32-emscripten, web variant: the node build's objects relinked as an ES module for browsers, web workers and
node, with the standard library as an Emscripten file package.

Nothing is compiled again: the host build of the node variant (configure, make, the libraries) is the same cache
entry, and only CPython's own link of python.js is run again, from that build tree, with the node-only flags
replaced by the web ones (`web_link_argv`). The link is a cache entry of its own (`link`), keyed by the host
build and everything that changes the link.

The artifact (`cpython-<version>-wasm32-emscripten-web.tar.gz`):

    python.mjs    the ES module: `export default createPython(moduleArg) -> Promise<Module>` (no main at load)
    python.wasm   the module's code, found beside python.mjs (Module.locateFile overrides)
    python.data   the standard library a browser can use, mounted at /lib/pythonX.Y (file_packager; its loader is
                  inside python.mjs and fetches it through Module.locateFile('python.data', ''))
    BUILD.json, LICENSE

docs/platform-notes.md ("The web variant") holds the toolchain facts this relies on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wasmbuild import cache, log
from wasmbuild.errors import BuildError
from wasmbuild.names import WEB_DATA as DATA
from wasmbuild.names import WEB_MODULE as MODULE
from wasmbuild.npm import NPM_NAME, package_inputs, tarball_name, write_npm_package
from wasmbuild.process import capture, run
from wasmbuild.recipe import Recipe, TargetOptions, ToolchainManifest
from wasmbuild.staging import check_no_build_paths, install_stdlib, output_mapping, sysconfig_files
from wasmbuild.steps import Context, HostBuild, PackageExtra, StagedTree
from wasmbuild.targets.emscripten import PRE_JS_NAME, Emscripten
from wasmbuild.toolchain import Toolchain, emsdk

VARIANT = "web"
EXPORT_NAME = "createPython"
# The C functions a JS API calls instead of main(), put on the Module object (Module._Py_Initialize, and ccall finds
# them there). With MAIN_MODULE the wasm exports every symbol anyway, and emcc warns that EXPORTED_FUNCTIONS "is not
# valid with LINKABLE set"; without the flag, though, none of these is on Module.
EXPORTED_FUNCTIONS = ("_main", "_Py_Initialize", "_PyRun_SimpleString", "_Py_FinalizeEx", "_malloc", "_free")
EXPORTED_RUNTIME_METHODS = ("FS", "callMain", "ccall", "cwrap", "ENV")
# The link flags the web link adds to CPython's own (the stack size, MAIN_MODULE, the file system libraries and
# the initial memory stay as the node link has them).
WEB_LDFLAGS = (
    "-sMODULARIZE=1",
    "-sEXPORT_ES6=1",
    f"-sEXPORT_NAME={EXPORT_NAME}",
    "-sENVIRONMENT=web,worker,node",
    "-sALLOW_MEMORY_GROWTH=1",
    "-sINVOKE_RUN=0",
    f"-sEXPORTED_RUNTIME_METHODS={','.join(EXPORTED_RUNTIME_METHODS)}",
    f"-sEXPORTED_FUNCTIONS={','.join(EXPORTED_FUNCTIONS)}",
    # No JavaScript from strings: emscripten_run_script* (reachable from Python through ctypes, as every JS library
    # function of a MAIN_MODULE is) aborts instead of eval()ing its argument (Emscripten 3.1.69, src/settings.js
    # DYNAMIC_EXECUTION; docs/platform-notes.md, "What the guest can reach").
    "-sDYNAMIC_EXECUTION=0",
)
# The node link's flags a browser cannot have: the host's file system, the exit of the runtime after main(), the
# pre-js copying process.env, and the runtime methods given above instead. NODERAWFS must be there: without it
# this is not the node link the variant is made from.
NODE_ONLY_FLAGS = ("-sNODERAWFS", "-sEXIT_RUNTIME", "-sENVIRONMENT=node", "-sEXPORTED_RUNTIME_METHODS=ENV")
REQUIRED_NODE_FLAG = "-sNODERAWFS"
WEB_PRE_JS_NAME = "wasmbuild-web-pre.js"
# Runs before the file package's loader (the next --pre-js), which asks Module.locateFile where python.data is
# with an empty prefix, i.e. relative to the page. This default finds python.wasm and python.data beside
# python.mjs in browsers, workers and node (where the loader reads a path with fs.readFile, not a file: URL).
WEB_PRE_JS = """// wasmbuild (web variant): python.wasm and python.data lie beside python.mjs,
// unless Module.locateFile says otherwise.
if (!Module['locateFile']) {
  Module['locateFile'] = (path) => {
    var url = new URL(path, import.meta.url);
    return ENVIRONMENT_IS_NODE && url.protocol == 'file:' ? require('url').fileURLToPath(url) : url.href;
  };
}
"""
LOADER_NAME = "python.data.js"
WEB_JS_LIBRARY_NAME = "wasmbuild-web-lib.js"
# Emscripten library functions that load or run code, or read a URL, for the caller: a MAIN_MODULE links all of
# Emscripten's JS library, and Python reaches every function of it through ctypes (ctypes.CDLL(None).name). CPython
# calls none of them. emscripten_run_script* already abort with -sDYNAMIC_EXECUTION=0; these would add a <script>
# of any URL to a page (eval() a file under node), run a script later, or fetch any URL (under node: read any host
# file) into the guest.
DISABLED_JS_FUNCTIONS = ("emscripten_async_run_script", "emscripten_async_load_script", "emscripten_async_wget",
                         "emscripten_async_wget_data", "emscripten_async_wget2", "emscripten_async_wget2_data",
                         "_emscripten_dlopen_js")
# Linked with --js-library after Emscripten's own libraries, so these replace its definitions (their signatures
# stay). system() (os.system, or libc's through ctypes) would run a shell command as the host user when the module
# runs under node: it says "no shell" (ENOSYS), as it does in a browser. The others abort, as emscripten_run_script
# does with -sDYNAMIC_EXECUTION=0 (the interpreter stops: the JS API rejects with a plain Error); the asynchronous
# dlopen (emscripten_dlopen, which fetches) among them. dlopen() loads only files in the module's file system:
# otherwise Emscripten reads the name with readBinary, a host path under node (fs.readFileSync) and any URL from a
# worker (synchronous XMLHttpRequest). The postset runs after the shell has set readBinary, before the module is
# instantiated (python.wasm comes from wasmBinary or readAsync, never readBinary, when readAsync works). The
# emptied __deps: Emscripten warns of a user library function depending on its internal $dlSetError.
WEB_JS_LIBRARY = ("// wasmbuild (web variant): no shell; no script, no URL, no file outside the module's file system "
                  """loaded for
// the guest.
addToLibrary({
  _emscripten_system: (command) => command ? -{{{ cDefs.ENOSYS }}} : 0,
  _emscripten_system__postset: 'readBinary = undefined;',
""" + "".join(f"  {name}: () => abort('wasmbuild: {name} is disabled in the web variant'),\n"
              for name in DISABLED_JS_FUNCTIONS) + """  _emscripten_dlopen_js__deps: [],
});
""")
# Bump when the web link's commands change (invalidates the cached web links only).
LINK_VERSION = 2  # 2: -sDYNAMIC_EXECUTION=0 and WEB_JS_LIBRARY

# What a browser cannot use, beyond the recipe's exclusions: the test suite and the tests inside packages (3.11
# still has ctypes/test, unittest/test, distutils/tests; a path a version lacks excludes nothing), IDLE and Tk,
# the package and environment tools, lib2to3, pydoc's topic data, the frozen-module test package.
WEB_EXCLUDE = ("test", "ctypes/test", "unittest/test", "distutils/tests", "idlelib", "tkinter", "turtledemo",
               "ensurepip", "lib2to3", "venv", "pydoc_data", "__phello__")
# Side modules built by --enable-wasm-dynamic-linking that only CPython's tests import (lib-dynload/).
TEST_MODULES = re.compile(r"^(_test|_ctypes_test|_xx|xx)")
# The standard library's form in the file package (prune_stdlib): per module the smaller of its source and its
# .pyc. Measured on 3.13 (docs/platform-notes.md, "The web variant"): smaller than source only (and, compressed,
# than every .pyc), and the modules kept compiled import without compiling.
STDLIB_FORMS = ("smaller", "pyc", "py", "both")
STDLIB_FORM = "smaller"
# The JS API's Python half (web/ of the project: web/wasmbuild-python.mjs is the other half), in the file package
# beside the standard library: a project without it cannot build the web variant.
API_MODULE = Path("web") / "_wasmbuild_web.py"


def web_link_argv(node_argv: Sequence[str], output: Path, pre_js: Sequence[Path],
                  js_libraries: Sequence[Path] = ()) -> list[str]:
    """The web link from CPython's link of python.js (`node_argv`, as its Makefile runs it): the node-only flags
    and the node pre-js out, `output` (python.mjs) instead of python.js, the web flags, `pre_js` and
    `js_libraries` added."""
    argv = list(node_argv)
    if REQUIRED_NODE_FLAG not in argv:
        raise BuildError(f"CPython's link of python.js has no {REQUIRED_NODE_FLAG}: not the node link the web "
                         "variant is made from", hint="the recipe's emscripten target must configure "
                         "--with-emscripten-target=node")
    try:
        at = next(i for i in range(len(argv) - 1) if argv[i] == "-o" and argv[i + 1] == "python.js")
    except StopIteration:
        raise BuildError("CPython's link of python.js has no '-o python.js'") from None
    argv[at + 1] = str(output)
    kept = [a for a in argv if a not in NODE_ONLY_FLAGS
            and not (a.startswith("--pre-js=") and Path(a.removeprefix("--pre-js=")).name == PRE_JS_NAME)]
    return [*kept, *WEB_LDFLAGS, *(f"--pre-js={p}" for p in pre_js), *(f"--js-library={p}" for p in js_libraries)]


def node_link_argv(host: HostBuild, make_args: Sequence[str], env: dict[str, str], log_file: Path) -> list[str]:
    """CPython's own link command of python.js in the host build, as its Makefile would run it now (`make -n`
    with Programs/python.o taken as new: only the link is printed), in the host build's environment `env` (make
    reads variables from it: LDFLAGS, and 3.11's Setup.local line names $(LIBFFI_LIBS)). `-o Makefile -o
    Makefile.pre`: make remakes an outdated makefile even with -n; the cached host build is only read."""
    argv = ["make", "-n", "-o", "Makefile", "-o", "Makefile.pre", "-W", "Programs/python.o", "python.js", *make_args]
    proc = capture(argv, cwd=host.path, env={**os.environ, **env, "LC_ALL": "C"})
    with open(log_file, "a") as out:
        out.write(f"\n$ {shlex.join(argv)} (exit {proc.returncode})\n{proc.stdout}{proc.stderr}")
    lines = [line for line in proc.stdout.splitlines() if re.search(r"\s-o\s+python\.js(\s|$)", line)]
    if proc.returncode != 0 or len(lines) != 1:
        raise BuildError(f"cannot read CPython's link of python.js from its Makefile (make -n found {len(lines)} "
                         f"link lines, exit {proc.returncode}); see {log_file}")
    return shlex.split(lines[0])


def link_key_inputs() -> dict[str, Any]:
    """What changes the web link besides the host build and the pre-js files (also part of the stage key: a
    staged tree holds the link's python.mjs and python.wasm)."""
    return {"v": LINK_VERSION, "ldflags": WEB_LDFLAGS, "removed": NODE_ONLY_FLAGS, "js_library": WEB_JS_LIBRARY}


def link(ctx: Context, host: HostBuild, env: dict[str, str], pre_js: Sequence[Path]) -> Path:
    """python.mjs + python.wasm relinked from the host build with the web flags and WEB_JS_LIBRARY, in the host
    build's environment `env`: a cache entry (links/) keyed by the host build, the flags, the JS library and the
    pre-js files, made once."""
    key = cache.hash_key({
        **link_key_inputs(),
        "host": host.key,
        "pre_js": [{"name": p.name, "sha256": cache.sha256_file(p)} for p in pre_js],
        "make_args": list(ctx.target.make_args),
    })
    entry = ctx.cache / "links" / f"cpython-{ctx.recipe.version}-{ctx.target.triple}-web-{key[:12]}"
    if cache.is_valid(entry, key):
        log.info(f"✓ web link {ctx.recipe.version}: cached ({entry})")
        return entry
    logf = ctx.log_file(f"link-web-{ctx.target.triple}")
    with log.step(f"Link CPython {ctx.recipe.version} for the web from the {ctx.target.triple} build (log: {logf})"), \
            cache.fresh_entry(entry, key):
        js_library = entry / WEB_JS_LIBRARY_NAME
        js_library.write_text(WEB_JS_LIBRARY)
        argv = web_link_argv(node_link_argv(host, ctx.target.make_args, env, logf), entry / MODULE, pre_js,
                             [js_library])
        # A response file: the link names hundreds of objects (the log has them, the console the short form).
        rsp = entry / "link.rsp"
        rsp.write_text(shlex.join(argv[1:]) + "\n")
        with open(logf, "a") as out:
            out.write(f"\n# {rsp}:\n{rsp.read_text()}")
        run([argv[0], f"@{rsp}"], cwd=host.path, env=env, log_file=logf, what="the web link of python.mjs")
        for name in (MODULE, "python.wasm"):
            if not (entry / name).is_file():
                raise BuildError(f"the web link finished but {entry / name} is missing; see {logf}")
    return entry


def prune_stdlib(libdir: Path, form: str) -> None:
    """Leave the compiled standard library at `libdir` (X.py beside __pycache__/X.<tag>.pyc) in one of STDLIB_FORMS:
    "smaller" keeps, per module, the smaller of the two files (the .pyc as X.pyc in place of X.py: a sourceless
    import), "pyc" the compiled file of every module, "py" the source only, "both" everything."""
    if form not in STDLIB_FORMS:
        raise ValueError(f"unknown standard library form {form!r}")
    for pycache in sorted(libdir.rglob("__pycache__"), reverse=True):
        if form in ("smaller", "pyc"):
            for pyc in sorted(pycache.glob("*.pyc")):
                source = pycache.parent / (pyc.name.split(".", 1)[0] + ".py")
                if source.is_file() and (form == "pyc" or pyc.stat().st_size < source.stat().st_size):
                    pyc.rename(source.with_suffix(".pyc"))
                    source.unlink()
        if form != "both":
            shutil.rmtree(pycache)


def package_stdlib(tc: Toolchain, libdir: Path, mount: str, out: Path, loader: Path, log_file: Path) -> None:
    """The Emscripten file package of `libdir`, mounted at `mount`: out/python.data and its loader (`loader`, given
    to the link as --pre-js). Run in `out` with a relative name: the loader names the package `python.data` only."""
    run([emsdk.tool_env(tc.path)["EMSDK_PYTHON"], tc.path / "emscripten" / "tools" / "file_packager.py", DATA,
         "--preload", f"{libdir}@{mount}", f"--js-output={loader}"], cwd=out, env=emsdk.tool_env(tc.path),
        log_file=log_file, what="file_packager (the standard library's file package)")
    if not (out / DATA).is_file() or not loader.is_file():
        raise BuildError(f"file_packager wrote no {DATA} or no loader; see {log_file}")


def web_module(root: Path) -> Path:
    """The JS API's Python half (API_MODULE) in the project at `root`."""
    path = root / API_MODULE
    if not path.is_file():
        raise BuildError(f"{path} is missing: the web variant's standard library carries the JS API's Python half",
                         hint=f"restore {API_MODULE} (a wasmbuild checkout has it), or point WASMBUILD_ROOT at one")
    return path


def file_record(path: Path) -> dict[str, Any]:
    return {"sha256": cache.sha256_file(path), "size": path.stat().st_size}


class EmscriptenWeb(Emscripten):
    """The web variant of the emscripten target: the same host build, relinked (no NODERAWFS, ES module)."""

    variant = VARIANT
    name_suffix = f"-{VARIANT}"

    def provision(self, manifest: ToolchainManifest, ctx: Context) -> Toolchain:
        """The node variant's toolchain, once the JS API's Python half is known to be there (the first step: a
        project without it is told before anything is built)."""
        web_module(ctx.root)
        return super().provision(manifest, ctx)

    def stage_key(self, ctx: Context) -> dict[str, Any]:
        return {"variant": self.variant, "exclude": WEB_EXCLUDE, "form": STDLIB_FORM, "pre_js": WEB_PRE_JS,
                "web_module": hashlib.sha256(web_module(ctx.root).read_bytes()).hexdigest(),
                "link": link_key_inputs()}

    def stdlib_exclude(self, recipe: Recipe) -> tuple[str, ...]:
        return (*recipe.stdlib_exclude, *(e for e in WEB_EXCLUDE if e not in recipe.stdlib_exclude))

    def stage_tree(self, ctx: Context, host: HostBuild, entry: Path) -> dict[str, Any]:
        """python.mjs and python.wasm from the web link; the standard library (with the JS API's Python half) as
        python.data; LICENSE. No launcher, no cross-build kit (nothing links against a browser's module)."""
        tree, files, work = entry / "tree", entry / "files", entry / "work"
        for d in (tree, files, work):
            d.mkdir(parents=True)
        short = ctx.recipe.short_version
        build, src = host.path, host.source.path
        mount = f"/lib/python{short}"
        mapping = output_mapping(ctx, self.path_map(src, build, host.toolchain, host.libraries).mapping())
        web_ctx = dataclasses.replace(ctx, recipe=dataclasses.replace(ctx.recipe,
                                                                      stdlib_exclude=self.stdlib_exclude(ctx.recipe)))
        install_stdlib(web_ctx, src, host.build_python.python, files / "lib", sysconfig_files(build), mapping,
                       [m for m in self.shared_modules(build) if not TEST_MODULES.match(m.name)])
        libdir = files / "lib" / f"python{short}"
        prune_stdlib(libdir, STDLIB_FORM)
        # getpath looks for lib-dynload to find the exec prefix; the file package holds files, not directories.
        (libdir / "lib-dynload" / ".empty").write_text("")
        module = web_module(ctx.root)
        shutil.copyfile(module, libdir / module.name)
        check_no_build_paths(files, [str(ctx.cache), str(build)])
        logf = ctx.log_file(f"stage-web-{ctx.target.triple}")
        loader = work / LOADER_NAME
        package_stdlib(host.toolchain, libdir, mount, tree, loader, logf)
        pre_js = work / WEB_PRE_JS_NAME
        pre_js.write_text(WEB_PRE_JS)
        settings = self.host_settings(ctx, host.source, build, host.toolchain, host.build_python, host.libraries)
        linked = link(ctx, host, settings.env, [pre_js, loader])
        for name in (MODULE, "python.wasm"):
            shutil.copyfile(linked / name, tree / name)
        (tree / "LICENSE").write_bytes((src / "LICENSE").read_bytes())
        count = sum(1 for p in libdir.rglob("*") if p.is_file())
        return {
            MODULE: {**file_record(tree / MODULE), "export": EXPORT_NAME, "environment": ["web", "worker", "node"],
                     "exported_functions": list(EXPORTED_FUNCTIONS),
                     "exported_runtime_methods": list(EXPORTED_RUNTIME_METHODS)},
            DATA: {**file_record(tree / DATA), "mount": mount, "files": count, "form": STDLIB_FORM,
                   "loader": f"{MODULE} (file_packager --js-output, linked as --pre-js)",
                   "web_module": module.name},
            "libraries": [b.record for b in host.libraries],
            "debuginfo": None,
        }

    def package_extras(self, ctx: Context, staged: StagedTree) -> list[PackageExtra]:
        """The npm package @wasmbuild/cpython (npm.py): the staged tree and the project's JS API (web/)."""
        out = ctx.dist / tarball_name(ctx.recipe.version)

        def write() -> None:
            write_npm_package(staged.tree, ctx.dist, python_version=ctx.recipe.version, root=ctx.root,
                              mtime=ctx.recipe.source_date_epoch)
            log.info(f"  {out} ({out.stat().st_size / 1e6:.1f} MB): the npm package {NPM_NAME}")

        return [PackageExtra(out, package_inputs(ctx.root), write)]

    def record_target(self, t: TargetOptions) -> dict[str, str]:
        return {**super().record_target(t), "variant": VARIANT}

    def record_configure(self, host: HostBuild) -> dict[str, Any]:
        """The node build's configure record, and what the web link changes in CPython's link of python.js."""
        return {**host.configure, "web_link": {"removed": list(NODE_ONLY_FLAGS), "added": list(WEB_LDFLAGS),
                                               "pre_js": [WEB_PRE_JS_NAME, f"{LOADER_NAME} (file_packager)"],
                                               "web_pre_js": WEB_PRE_JS,
                                               "js_library": [WEB_JS_LIBRARY_NAME],
                                               "web_js_library": WEB_JS_LIBRARY}}

    def record_stdlib(self, recipe: Recipe) -> dict[str, Any]:
        return {"exclude": list(self.stdlib_exclude(recipe)), "pyc": "unchecked-hash", "form": STDLIB_FORM}

