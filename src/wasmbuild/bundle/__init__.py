"""`wasmbuild bundle`: one self-contained WASI module holding CPython, its standard library and an app,
pre-initialised with `wasmtime wizer` so that a run starts with Python up and the app's imports done.

    APP (script or package directory) + the WASI artifact (+ its -dev archive)
      -> bundle.bin: the standard library's code objects (the artifact's .pyc without their headers, minus tests
         and what no bundle can use), the artifact's site-packages (its modules compiled by the artifact's own
         python.wasm, compile.py; its other files and .dist-info directories as data) and the app's sources and
         package data, indexed for boot.py's importer
      -> entry.c + boot.py + bundle.bin compiled with the provisioned WASI SDK against the artifact's libpython
      -> `wasmtime wizer` (the pinned wasmtime CLI, toolchains/host-tools.yaml) runs `wizer-initialize` and
         snapshots the memory (skipped with --no-preinit: then every start initialises)
      -> app.wasm with a `wasmbuild.bundle` custom section holding its record, and app.BUNDLE.json beside it

The snapshot is deterministic (entry.c fixes the clock and the entropy source while it is taken, the string
hash seed is 0); what a run must see fresh (argv, environment, `random`'s seed, line buffering of a terminal)
boot.run sets at every start. docs/platform-notes.md#pre-initialised-bundles has the details.
"""

from __future__ import annotations

import ast
import email.parser
import hashlib
import marshal
import os
import re
import shlex
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from wasmbuild import __version__, cache, log, pipeline
from wasmbuild.artifact import run_python
from wasmbuild.engines.wasmtime_api import MAX_WASM_STACK
from wasmbuild.errors import BuildError, UsageError
from wasmbuild.files import json_text
from wasmbuild.kit import read_pc
from wasmbuild.link import check_output_dir, prepare, staging_dir, working_copy
from wasmbuild.packages.install import InstallOptions, install
from wasmbuild.process import capture, run
from wasmbuild.recipe import select_recipe
from wasmbuild.steps import BuildOptions
from wasmbuild.targets import get_target
from wasmbuild.targets.wasi import sdk_cc
from wasmbuild.toolchain import Toolchain, hosttools

BUNDLE_FORMAT = 2  # 2: site-packages, package data and `packages`
MAGIC = b"WBB1"
SECTION = "wasmbuild.bundle"
GUEST_APP_ROOT = "/app"
# Parts of the standard library a bundle leaves out: test suites, and packages no WASI program can use.
STDLIB_EXCLUDE = frozenset({"test", "tests", "idle_test", "idlelib", "tkinter", "turtledemo", "ensurepip",
                            "lib2to3", "pydoc_data", "site-packages", "lib-dynload", "__phello__", "venv"})
# CPython's own link flags for python.wasm apply (the embed .pc); these make the snapshot deterministic.
WRAPPED = ("__wasi_clock_time_get", "__wasi_random_get")


@dataclass(frozen=True)
class App:
    """What is bundled: the main script (or the module run with -m), the app's Python files and the other files
    of its packages (data: templates, JSON, py.typed...)."""

    kind: str  # "script" or "module"
    main: str  # the script's guest path, or the module's name
    files: dict[str, Path]  # guest-relative path (pkg/mod.py) -> host file
    data: dict[str, Path] = field(default_factory=dict)  # guest-relative path (pkg/x.txt) -> host file

    @property
    def script_rel(self) -> str | None:
        return self.main[len(GUEST_APP_ROOT) + 1:] if self.kind == "script" else None


def _skipped(path: Path) -> bool:
    """What no bundle carries of an app's tree: hidden files, bytecode caches, bytecode."""
    return path.name.startswith(".") or path.name == "__pycache__" or path.suffix in (".pyc", ".pyo")


def _python_files(root: Path, rel: Path, files: dict[str, Path], data: dict[str, Path] | None = None) -> None:
    """The package under root/rel (a directory with __init__.py), every .py in it, recursively; with `data`,
    its other files too (any directory of a package counts: templates/, static/ ...). root/rel itself may be a
    directory of modules (no __init__.py): its own other files are not the app's data."""
    package = (root / rel / "__init__.py").is_file()
    for path in sorted((root / rel).iterdir()):
        if _skipped(path):
            continue
        if path.is_dir() and (path / "__init__.py").is_file():
            _python_files(root, rel / path.name, files, data)
        elif path.is_file() and path.suffix == ".py":
            files[(rel / path.name).as_posix()] = path
        elif package and data is not None:
            _data_files(path, (rel / path.name).as_posix(), data)


def _data_files(path: Path, rel: str, data: dict[str, Path]) -> None:
    """The file at `path`, or every file under the directory `path`, as data at `rel`."""
    if path.is_file():
        data[rel] = path
    elif path.is_dir():
        for child in sorted(path.iterdir()):
            if not _skipped(child):
                _data_files(child, f"{rel}/{child.name}", data)


def _top_imports(path: Path) -> set[str]:
    """The first component of every absolute import in the file at `path`, anywhere in it (functions too)."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError):
        return set()  # the bundle reports it when the file is compiled or imported
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.partition(".")[0])
    return names


def _script_files(script: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """A script and the modules and packages beside it that it imports (`import x`, `from x import y`, found in
    its source; then, in turn, what those import): nothing else of its directory. A package comes whole, its
    data too. (Python files, data files.)"""
    directory = script.parent
    files: dict[str, Path] = {script.name: script}
    data: dict[str, Path] = {}
    todo = [script]
    seen: set[str] = {script.stem}
    while todo:
        for name in sorted(_top_imports(todo.pop()) - seen):
            seen.add(name)
            found: dict[str, Path] = {}
            if (directory / name / "__init__.py").is_file():
                _python_files(directory, Path(name), found, data)
            elif (directory / f"{name}.py").is_file():
                found[f"{name}.py"] = directory / f"{name}.py"
            files.update(found)
            todo.extend(found.values())
    return dict(sorted(files.items())), dict(sorted(data.items()))


# The largest app file a bundle takes: its bytes sit in the bundle's data, and what the snapshot does with them
# (the parse of an imported module, its objects) stays in the snapshot's memory on top of that.
APP_FILE_LIMIT = 8 * 1024 * 1024


def load_app(path: Path, module: str | None) -> App:
    """A script (with the modules and packages beside it that it imports, _script_files) or a directory: a
    package (run as `python -m NAME`, its __main__.py) or a directory of modules (--module NAME, or its
    __main__.py run as a script), every Python file of it."""
    app = _load_app(path, module)
    for file in [*app.files.values(), *app.data.values()]:
        size = file.stat().st_size
        if size > APP_FILE_LIMIT:
            raise UsageError(f"{file}: {size / 2**20:.1f} MiB; a bundle takes app files up to "
                             f"{APP_FILE_LIMIT // 2**20} MiB (their bytes are in the bundle's data and, once "
                             "imported, in its snapshot again)",
                             hint="keep large data in a file the app opens at run time (wasmtime run --dir ...)")
    return app


def _load_app(path: Path, module: str | None) -> App:
    path = path.expanduser().resolve()
    if not path.exists():
        raise UsageError(f"app not found: {path}", hint="give a script (app.py) or a package directory")
    files: dict[str, Path] = {}
    data: dict[str, Path] = {}
    if path.is_file():
        if module:
            raise UsageError("--module applies to a package directory, not to a script",
                             hint=f"wasmbuild bundle {path.parent} --module NAME")
        if path.suffix != ".py":
            raise UsageError(f"{path}: not a Python script (.py)")
        return App("script", f"{GUEST_APP_ROOT}/{path.name}", *_script_files(path))
    if (path / "__init__.py").is_file():  # a package: its parent is the import root
        _python_files(path.parent, Path(path.name), files, data)
        name = module or path.name
    else:
        _python_files(path, Path("."), files, data)
        data = {k.removeprefix("./"): v for k, v in sorted(data.items())}
        if (path / "__main__.py").is_file() and not module:
            files["__main__.py"] = path / "__main__.py"
            return App("script", f"{GUEST_APP_ROOT}/__main__.py", dict(sorted(files.items())), data)
        if not module:
            raise UsageError(f"{path}: a directory without __init__.py or __main__.py",
                             hint="name the module to run with --module NAME")
        name = module
    files = {k.removeprefix("./"): v for k, v in files.items()}
    modules = {_module_name(rel)[0] for rel in files}
    if name not in modules and f"{name}.__main__" not in modules:
        raise UsageError(f"--module {name}: no such module in {path}",
                         hint=f"modules found: {', '.join(sorted(modules)[:10]) or 'none'}")
    return App("module", name, dict(sorted(files.items())), dict(sorted(data.items())))


def _module_name(rel: str) -> tuple[str, bool]:
    parts = rel.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def stdlib_modules(libdir: Path, cache_tag: str) -> list[tuple[str, bool, Path, str]]:
    """(module, is_package, .pyc, guest filename) of the artifact's standard library, minus STDLIB_EXCLUDE."""
    out = []
    short = libdir.name.removeprefix("python")

    def walk(directory: Path, prefix: str) -> None:
        for path in sorted(directory.iterdir()):
            if path.is_dir():
                if (path.name in STDLIB_EXCLUDE or not path.name.isidentifier()
                        or not (path / "__init__.py").is_file()):
                    continue
                walk(path, f"{prefix}{path.name}.")
            elif path.suffix == ".py" and path.stem.isidentifier():
                pyc = path.parent / "__pycache__" / f"{path.stem}.{cache_tag}.pyc"
                if not pyc.is_file():
                    continue  # source with deliberate syntax errors (test data): compileall left it alone
                rel = path.relative_to(libdir).as_posix()
                package = path.stem == "__init__"
                name = prefix.rstrip(".") if package else f"{prefix}{path.stem}"
                if path.stem in STDLIB_EXCLUDE:
                    continue
                out.append((name, package, pyc, f"/lib/python{short}/{rel}"))

    walk(libdir, "")
    return out


@dataclass(frozen=True)
class Distribution:
    """An installed distribution in site-packages: its metadata directory (NAME-VERSION.dist-info)."""

    name: str  # as its METADATA says
    version: str
    path: str  # the .dist-info (or .egg-info) directory's guest path

    @property
    def normalized(self) -> str:
        """The name as importlib.metadata compares names (PEP 503, `-` as `_`)."""
        return normalize_name(self.name)


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@dataclass(frozen=True)
class SitePackages:
    """What a bundle carries of the artifact's lib/pythonX.Y/site-packages/: the modules and packages (compiled
    into the blob), every other file as data (package data, .dist-info directories), the distributions."""

    guest: str  # /lib/pythonX.Y/site-packages
    modules: list[tuple[str, bool, Path | None, str]]  # (module, is_package, .py or None, guest filename or dir)
    data: dict[str, Path]  # guest path -> host file
    distributions: list[Distribution]

    @property
    def sources(self) -> dict[str, Path]:
        """Guest filename -> host .py of every module to compile (namespace packages have none)."""
        return {filename: path for _, _, path, filename in self.modules if path is not None}

    def __bool__(self) -> bool:
        return bool(self.modules or self.data)


# The one file CPython itself puts into site-packages: not a package's.
SITE_PLACEHOLDER = "README.txt"
METADATA_DIRS = (".dist-info", ".egg-info")


def site_packages(libdir: Path) -> SitePackages:
    """The artifact's site-packages (libdir/site-packages), as a bundle carries it: every importable module and
    package (a directory with an identifier name: regular with __init__.py, else a namespace package), every
    other file as data; __pycache__ and bytecode left out (the modules are compiled from their .py)."""
    root = libdir / "site-packages"
    guest = f"/lib/{libdir.name}/site-packages"
    modules: list[tuple[str, bool, Path | None, str]] = []
    data: dict[str, Path] = {}

    def walk(directory: Path, rel: str, package: str | None) -> None:
        """`package`: the dotted name of `directory` ("" for site-packages itself), None where nothing can be
        imported (a .dist-info directory, a directory whose name is no identifier)."""
        for path in sorted(directory.iterdir()):
            name = path.name
            child = f"{rel}/{name}" if rel else name
            if name == "__pycache__" or path.suffix in (".pyc", ".pyo") or (not rel and name == SITE_PLACEHOLDER):
                continue
            if path.is_dir():
                if package is not None and name.isidentifier():
                    dotted = f"{package}.{name}" if package else name
                    if not (path / "__init__.py").is_file():
                        modules.append((dotted, True, None, f"{guest}/{child}"))
                    walk(path, child, dotted)
                else:
                    walk(path, child, None)
            elif path.suffix == ".py" and package is not None and path.stem.isidentifier() and (
                    package or path.stem != "__init__"):
                dotted = package if path.stem == "__init__" else f"{package}.{path.stem}" if package else path.stem
                modules.append((dotted, path.stem == "__init__", path, f"{guest}/{child}"))
            elif path.is_file():
                data[f"{guest}/{child}"] = path

    if root.is_dir():
        walk(root, "", "")
    distributions = []
    for path in sorted(root.iterdir()) if root.is_dir() else ():
        if path.is_dir() and path.name.endswith(METADATA_DIRS):
            meta = next((path / n for n in ("METADATA", "PKG-INFO") if (path / n).is_file()), None)
            if meta is None:
                continue
            headers = email.parser.HeaderParser().parsestr(meta.read_text(encoding="utf-8", errors="replace"))
            stem = path.name.rpartition(".")[0]
            distributions.append(Distribution(headers.get("Name") or stem.partition("-")[0],
                                              headers.get("Version") or stem.partition("-")[2] or "unknown",
                                              f"{guest}/{path.name}"))
    distributions.sort(key=lambda d: (d.normalized, d.version))
    return SitePackages(guest, modules, data, distributions)


def compile_sources(root: Path, sources: Mapping[str, Path], cache_root: Path, logf: Path) -> dict[str, bytes | None]:
    """The code objects (marshal data) of `sources` (guest filename -> host .py, all under the artifact's lib/),
    compiled by the unpacked artifact at `root` itself, the interpreter the bundle links: its bytecode, its
    marshal format, PYTHONHASHSEED=0 (deterministic). None for a file that does not compile: the bundle carries
    its source, and importing it raises the SyntaxError, as an installed copy would."""
    filenames = list(sources)
    with tempfile.TemporaryDirectory(prefix="wasmbuild-bundle-compile-") as tmp:
        work = Path(tmp)
        (work / "compile.py").write_text(_guest_source("compile.py"))
        (work / "sources.txt").write_text("".join(f"{name}\n" for name in filenames))
        out, err = work / "stdout", work / "stderr"
        status = run_python(root, ["-S", "-s", "-B", "/work/compile.py", "/work/sources.txt", "/work/code.bin"],
                            cache_root, [(work, "/work")], env={"PYTHONHASHSEED": "0"}, stdout=out, stderr=err)
        output = out.read_text(errors="replace") + err.read_text(errors="replace")
        with open(logf, "a") as f:
            f.write(f"\n$ python.wasm compile.py ({len(filenames)} files): exit {status}\n{output}")
        if status != 0 or not (work / "code.bin").is_file():
            raise BuildError(f"compiling site-packages with the artifact's python.wasm failed (exit {status}):\n"
                             + "\n".join(output.strip().splitlines()[-15:]), hint=f"full output: {logf}")
        return read_compiled((work / "code.bin").read_bytes(), filenames)


def read_compiled(blob: bytes, filenames: list[str]) -> dict[str, bytes | None]:
    """compile.py's output: for each file in order, a u32 length (0xFFFFFFFF: it does not compile) and the
    marshal data of its code object."""
    out: dict[str, bytes | None] = {}
    pos = 0
    for name in filenames:
        size = int.from_bytes(blob[pos:pos + 4], "little")
        pos += 4
        if size == 0xFFFFFFFF:
            out[name] = None
            continue
        out[name] = blob[pos:pos + size]
        pos += size
    if pos != len(blob) or len(out) != len(filenames):
        raise BuildError(f"compile.py's output does not match its {len(filenames)} sources ({len(blob)} bytes)")
    return out


def make_blob(app: App, stdlib: list[tuple[str, bool, Path, str]], *, preinit: bool,
              site: SitePackages | None = None, compiled: Mapping[str, bytes | None] | None = None) -> bytes:
    """bundle.bin: MAGIC, the index's length, the index (marshal), the files (boot.py reads it). `compiled`:
    the code objects of site-packages' modules by guest filename (compile_sources)."""
    index: dict[str, Any] = {}
    chunks: list[bytes] = []
    offset = 0

    def add(data: bytes) -> tuple[int, int]:
        nonlocal offset
        chunks.append(data)
        offset += len(data)
        return offset - len(data), len(data)

    for name, package, pyc, filename in stdlib:
        code = pyc.read_bytes()[16:]  # magic, flags, source hash
        index[name] = ("c", package, *add(code), filename)
    description: dict[str, Any] = {"preinit": preinit}
    files: dict[str, tuple[int, int]] = {}
    if site:
        stdlib_names = {name.partition(".")[0] for name in index}
        for module, is_package, py, filename in site.modules:
            if module.partition(".")[0] in stdlib_names:
                continue  # the standard library comes first on sys.path: this one could never be imported
            if py is None:  # a namespace package: its directory
                index[module] = ("n", True, 0, 0, filename)
            elif (marshalled := (compiled or {}).get(filename)) is not None:
                index[module] = ("c", is_package, *add(marshalled), filename)
            else:  # does not compile: importing it raises the SyntaxError
                index[module] = ("s", is_package, *add(py.read_bytes()), filename)
        for guest_path, host in site.data.items():
            files[guest_path] = add(host.read_bytes())
        description["distributions"] = [(d.normalized, d.path) for d in site.distributions]
    for rel, path in app.files.items():
        source = path.read_bytes()
        if app.kind == "script" and rel == app.script_rel:
            description["script"] = ("s", False, *add(source), f"{GUEST_APP_ROOT}/{rel}")
            continue
        name, package = _module_name(rel)
        if name and name != "__main__":
            index[name] = ("s", package, *add(source), f"{GUEST_APP_ROOT}/{rel}")
    for rel, path in app.data.items():
        files[f"{GUEST_APP_ROOT}/{rel}"] = add(path.read_bytes())
    description["files"] = files
    if app.kind == "script":
        description["main"] = ("script", "__main__", app.main)
    else:
        entry = index.get(app.main) or index[f"{app.main}.__main__"]
        if entry[1]:  # a package runs its __main__
            entry = index.get(f"{app.main}.__main__") or entry
        description["main"] = ("module", app.main, entry[4])
    index[""] = description
    head = marshal.dumps(index, 4)
    return MAGIC + len(head).to_bytes(4, "little") + head + b"".join(chunks)


def modules_c(names: list[str]) -> str:
    """modules.c: wasmbuild_register_modules() registers the built-in modules `names` (dotted: a package's
    extension, its init function named after the last part) before Python starts."""
    inits = {name: f"PyInit_{name.rpartition('.')[2]}" for name in names}
    return "\n".join([
        "/* Generated by wasmbuild bundle: the artifact's linked C extension modules. */",
        "#include <Python.h>",
        *(f"extern PyObject *{init}(void);" for init in sorted(set(inits.values()))),
        "int wasmbuild_register_modules(void) {",
        *(f'    if (PyImport_AppendInittab("{name}", {init}) == -1) {{ return -1; }}' for name, init in inits.items()),
        "    return 0;",
        "}", ""])


def _leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def custom_section(name: str, payload: bytes) -> bytes:
    """A wasm custom section (id 0): appended to a module, ignored by every runtime."""
    body = _leb128(len(name.encode())) + name.encode() + payload
    return b"\0" + _leb128(len(body)) + body


def read_custom_section(wasm: bytes, name: str) -> bytes | None:
    """The payload of the first custom section called `name` (None if there is none)."""
    pos = 8
    while pos < len(wasm):
        section_id = wasm[pos]
        pos += 1
        size, shift = 0, 0
        while True:
            byte = wasm[pos]
            pos += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        end = pos + size
        if section_id == 0:
            nlen, shift, p = 0, 0, pos
            while True:
                byte = wasm[p]
                p += 1
                nlen |= (byte & 0x7F) << shift
                shift += 7
                if not byte & 0x80:
                    break
            if wasm[p:p + nlen].decode(errors="replace") == name:
                return wasm[p + nlen:end]
        pos = end
    return None


def _guest_source(name: str) -> str:
    return resources.files("wasmbuild.bundle").joinpath(name).read_text()


ENTROPY_MARK = "wasmbuild-bundle-entropy: "
ENTROPY_RULE = ("entropy drawn while a bundle is pre-initialised is re-drawn at every start where it can be "
                "(random.Random instances seeded then are re-seeded, `random` and `tempfile` too); any other "
                "entropy the app's imports draw (os.urandom, secrets, uuid.uuid4, SystemRandom at module level) "
                "would be frozen into the snapshot, the same bytes in every run, and is refused")


def frozen_entropy(output: str) -> tuple[int, str] | None:
    """What boot.py reported of entropy frozen into the snapshot: (bytes, where), or None."""
    for line in output.splitlines():
        if line.startswith(ENTROPY_MARK):
            size, _, where = line[len(ENTROPY_MARK):].partition(" ")
            return int(size), where
    return None


def bundle(app: App, out: Path, *, root: Path, record: dict[str, Any], short: str, sdk: Toolchain,
           wasmtime: Callable[[], tuple[Path, dict[str, Any]]], preinit: bool, cache_root: Path,
           allow_frozen_entropy: bool = False) -> dict[str, Any]:
    """Build the bundle of `app` on the unpacked artifact `root` (with its -dev files merged) into `out`; its
    record. `wasmtime()` provisions the pinned wasmtime CLI (wizer, or the start-up check of --no-preinit)."""
    triple = record["target"]["triple"]
    major, minor = short.split(".")
    libdir = root / "lib" / f"python{short}"
    stdlib = stdlib_modules(libdir, f"cpython-{major}{minor}")
    site = site_packages(libdir)
    logf = cache_root / "logs" / f"bundle-{out.stem}.log"
    logf.parent.mkdir(parents=True, exist_ok=True)
    logf.write_text(f"# wasmbuild bundle {app.main} on {root.name}\n")
    linked_modules = record.get("artifact", {}).get("linked_modules") or []
    c_modules = [m for m in linked_modules if m.get("object") and (root / m["object"]).is_file()]
    lost = [m["name"] for m in linked_modules if m not in c_modules]
    if lost:
        log.warn(f"the artifact's linked C modules ({', '.join(lost)}) are not in the bundle: the artifact keeps no "
                 "object of them (linked by an older wasmbuild); an import of them fails in the bundle (a package "
                 "with a pure-Python fallback uses it)")
    compiled: dict[str, bytes | None] = {}
    if site.sources:
        with log.step(f"Compile site-packages ({len(site.sources)} modules; "
                      f"{', '.join(f'{d.name} {d.version}' for d in site.distributions) or 'no distributions'}) "
                      "with the artifact's python.wasm"):
            compiled = compile_sources(root, site.sources, cache_root, logf)
    with staging_dir(out) as tmp:
        work = Path(tmp)
        (work / "bundle.bin").write_bytes(make_blob(app, stdlib, preinit=preinit, site=site, compiled=compiled))
        (work / "entry.c").write_text(_guest_source("entry.c"))
        (work / "modules.c").write_text(modules_c([m["name"] for m in c_modules]))
        (work / "boot.py").write_text(_guest_source("boot.py"))
        embed = read_pc(root / "lib" / "pkgconfig" / f"python-{short}-embed.pc")
        cc = sdk_cc(sdk.path, triple)
        cflags = ["-O2", "-std=gnu23", f"-DWASMBUILD_SOURCE_DATE_EPOCH={int(record['source_date_epoch'])}LL",
                  *shlex.split(embed.get("Cflags", "")), f"-ffile-prefix-map={work}=/bundle",
                  f"-ffile-prefix-map={sdk.path}=/wasi-sdk"]
        with log.step(f"Compile the bundle's entry point ({len(stdlib)} standard library modules, "
                      + (f"{len(site.modules)} site-packages modules and {len(site.data)} files, " if site else "")
                      + f"{len(app.files) + len(app.data)} app files; log: {logf})"):
            run([*cc, *cflags, "-c", work / "entry.c", "-o", work / "entry.o"], log_file=logf,
                what="compiling the bundle's entry point")
            run([*cc, *cflags, "-c", work / "modules.c", "-o", work / "modules.o"], log_file=logf,
                what="compiling the registration of the artifact's linked C modules")
            linked = work / "linked.wasm"
            # CPython's --initial-memory leaves no room for the bundle's data: wasm-ld sizes it instead.
            libs = [f for f in shlex.split(embed.get("Libs", "")) if not f.startswith("-Wl,--initial-memory=")]
            run([*cc, "-o", linked, work / "entry.o", work / "modules.o", *(root / m["object"] for m in c_modules),
                 *libs, "-Wl,--strip-all",
                 *(f"-Wl,--wrap={name}" for name in WRAPPED)], log_file=logf, what="linking the bundle")
        cli, tool_record = wasmtime()
        tools: dict[str, Any] = {"wasi-sdk": {"name": sdk.name, "version": sdk.version}, "wasmtime": tool_record}
        module = linked
        stack = f"max-wasm-stack={MAX_WASM_STACK}"
        if preinit:
            module = work / "initialised.wasm"
            argv: list[str | os.PathLike[str]] = [cli, "wizer", "-S", "cli", "-W", stack, "-o", module, linked]
            step = "Pre-initialise it (wasmtime wizer: Python started, the app's imports done)"
        else:  # the same start-up as every run, stopped before the app runs: the main script must compile
            argv = [cli, "run", "-W", stack, "--env", "WASMBUILD_BUNDLE_CHECK=1", linked]
            step = "Check that it starts (the main script compiles)"
        with log.step(step):
            log.echo_command([str(a) for a in argv])
            proc = capture(argv, env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"})
            with open(logf, "a") as f:
                f.write(f"\n$ {' '.join(map(str, argv))}\n{proc.stdout}{proc.stderr}")
            if proc.returncode != 0 or not module.is_file():
                guest = _guest_error(proc.stdout + proc.stderr)
                raise BuildError(f"the app failed {'while it was pre-initialised' if preinit else 'to start'} "
                                 f"(exit {proc.returncode}):\n{guest}", hint=f"full output: {logf}")
        frozen = frozen_entropy(proc.stderr) if preinit else None
        if frozen and not allow_frozen_entropy:
            raise UsageError(f"the app's imports drew {frozen[0]} bytes of entropy at bundle time ({frozen[1]}): "
                             f"{ENTROPY_RULE}",
                             hint="draw it when the app runs (in a function, not at import), or bundle with "
                                  "--no-preinit; --allow-frozen-entropy bundles it anyway (the same values in every "
                                  "run)")
        if frozen:
            log.warn(f"the app's imports drew {frozen[0]} bytes of entropy at bundle time ({frozen[1]}): the same "
                     "in every run of this bundle (--allow-frozen-entropy)")
        files = [{"path": f"{GUEST_APP_ROOT}/{rel}", "sha256": cache.sha256_file(p), "size": p.stat().st_size}
                 for rel, p in sorted({**app.files, **app.data}.items())]
        build_json = root / "BUILD.json"
        bundle_record = {
            "format": BUNDLE_FORMAT,
            "wasmbuild": __version__,
            "artifact": {"name": root.name, "python": record["python"]["version"], "triple": triple,
                         "build_json_sha256": hashlib.sha256(build_json.read_bytes()).hexdigest()},
            "app": {"kind": app.kind, "main": app.main, "files": files},
            "preinit": preinit,
            **({"frozen_entropy": {"bytes": frozen[0], "where": frozen[1]}} if frozen else {}),
            "stdlib": {"modules": len(stdlib), "excluded": sorted(STDLIB_EXCLUDE)},
            "packages": [{"name": d.name, "version": d.version} for d in site.distributions],
            "site_packages": {"modules": len(site.modules), "files": len(site.data),
                              "compiled": sum(code is not None for code in compiled.values())},
            "tools": tools,
        }
        text = json_text(bundle_record)
        data = module.read_bytes() + custom_section(SECTION, text.encode())
        staged = work / "out.wasm"
        staged.write_bytes(data)
        os.replace(staged, out)
        side = out.with_name(out.stem + ".BUNDLE.json")
        side_tmp = work / "record.json"
        side_tmp.write_text(text)
        os.replace(side_tmp, side)
    bundle_record["size"] = len(data)
    return bundle_record


def _guest_error(output: str) -> str:
    """The guest's traceback (or the last lines) from wizer's output, without wasmtime's own backtrace."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback (most recent call last)") or line.startswith("  File "):
            tail = lines[i:]
            for j, rest in enumerate(tail):
                if rest.startswith("Error: ") or rest.startswith("Stack backtrace:"):
                    tail = tail[:j]
                    break
            return "\n".join(tail).strip()
    return "\n".join(lines[-15:]).strip()


def make_bundle(app_path: Path, out: Path, *, options: BuildOptions, module: str | None = None,
                artifact: Path | None = None, python: str | None = None, dev: Path | None = None,
                preinit: bool = True, allow_frozen_entropy: bool = False, requirements: list[str] | None = None,
                requirement_files: list[Path] | None = None,
                install_options: InstallOptions | None = None) -> dict[str, Any]:
    """`wasmbuild bundle`: the app at `app_path` (a script, or a directory with `module`) bundled with a WASI
    artifact (`artifact`, else the `python` one built as `wasmbuild build` would, unsmoked) into `out` (.wasm);
    the bundle's record. The artifact's -dev archive is `dev` or the one beside it; its toolchain and the pinned
    wasmtime CLI are provisioned as `options` say. `requirements` / `requirement_files`: packages installed into
    a copy of the artifact first (wasmbuild install), so that they travel in the bundle with the packages it
    already has."""
    app = load_app(app_path, module)
    out = out.expanduser().resolve()
    if out.suffix != ".wasm" or out.is_dir():
        raise UsageError(f"-o {out}: the bundle is a WebAssembly module: name a file ending in .wasm")
    check_output_dir(out)
    if python and artifact:
        raise UsageError("--python and --artifact both name the CPython to bundle", hint="give one of them")
    if artifact is None:
        ctx = options.context(select_recipe(options.root, python), "wasi")
        artifact = pipeline.build(ctx, get_target("wasi")).archive
    with tempfile.TemporaryDirectory(prefix="wasmbuild-bundle-packages-") as packages_tmp:
        if requirements or requirement_files:
            artifact = install(artifact, list(requirements or []), list(requirement_files or []),
                               Path(packages_tmp) / "artifact", options=options,
                               install_options=install_options or InstallOptions(), dev=dev)
            dev = None  # merged into the installed artifact
        return _make_bundle(app, out, artifact, options=options, dev=dev, preinit=preinit,
                            allow_frozen_entropy=allow_frozen_entropy)


def _make_bundle(app: App, out: Path, artifact: Path, *, options: BuildOptions, dev: Path | None, preinit: bool,
                 allow_frozen_entropy: bool) -> dict[str, Any]:
    prep = prepare(artifact, options=options, dev=dev, needs_dev=lambda t: True, what="bundling")
    if prep.target.name != "wasi":
        raise UsageError(f"{artifact} is a {prep.target.name} artifact: bundles are WASI modules",
                         hint="give a WASI artifact (nox -s build-wasi)")

    def wasmtime() -> tuple[Path, dict]:
        tool = hosttools.ensure(["wasmtime"], options.root, options.cache, options.sources)[0]
        return tool.path("wasmtime"), tool.record()

    with tempfile.TemporaryDirectory(prefix="wasmbuild-bundle-") as tmp:
        root = working_copy(prep, Path(tmp) / prep.root.name)
        return bundle(app, out, root=root, record=prep.record, short=prep.short, sdk=prep.toolchain,
                      wasmtime=wasmtime, preinit=preinit, cache_root=options.cache,
                      allow_frozen_entropy=allow_frozen_entropy)
