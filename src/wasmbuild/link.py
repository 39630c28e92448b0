"""`wasmbuild link`: an artifact plus C extension modules -> a new artifact with the modules in it.

WASI has no dynamic loading, so the modules are compiled with the provisioned WASI SDK and linked into a new
python.wasm against the artifact's own libpython (its cross-build kit, kit.py), registered as built-in modules
before Python starts. On Emscripten they are built as side modules into lib/pythonX.Y/lib-dynload/, where
the interpreter (linked as MAIN_MODULE) loads them with dlopen. Either way the artifact's BUILD.json gains
`artifact.linked_modules` (each module's sources and their sha256) and the new files' hashes; the output is
written next to its final place and renamed there, so a failed compile or link leaves nothing behind.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmbuild import cache, log
from wasmbuild.archive import expansion_limit, safe_extract, write_deterministic_tar_gz
from wasmbuild.artifact import WebRuntime, artifact_runtime, run_python, unpack_artifact
from wasmbuild.errors import ArchiveError, BuildError, UsageError
from wasmbuild.files import write_json
from wasmbuild.kit import Module, missing_kit, module_object
from wasmbuild.recipe import select_recipe
from wasmbuild.record import RECORD_NAME, read_record
from wasmbuild.steps import BuildOptions
from wasmbuild.targets import Target, get_target
from wasmbuild.toolchain import Toolchain
from wasmbuild.toolchain.node import pinned_node_finder

MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_module(spec: str) -> Module:
    """`path/to/name.c`, or `NAME=a.c,b.c` (a module from several files)."""
    name, sep, files = spec.partition("=")
    if not sep:
        files, name = spec, Path(spec).stem.split(".", 1)[0]
    sources = tuple(Path(f).expanduser().resolve() for f in files.split(",") if f)
    if not MODULE_NAME.match(name):
        raise UsageError(f"--module {spec!r}: {name!r} is not a valid module name",
                         hint="name the file <module>.c, or write --module NAME=FILE.c")
    if not sources:
        raise UsageError(f"--module {spec!r}: no source files", hint="write --module FILE.c or NAME=A.c,B.c")
    for src in sources:
        if not src.is_file():
            raise UsageError(f"--module {spec!r}: source file not found: {src}")
        if src.suffix != ".c":
            raise UsageError(f"--module {spec!r}: {src.name} is not a C source (.c)")
    return Module(name, sources)


def check_modules(modules: list[Module]) -> None:
    if not modules:
        raise UsageError("no --module given", hint="wasmbuild link ARTIFACT --module mod.c -o out/")
    names = [m.name for m in modules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UsageError(f"module named more than once: {', '.join(dupes)}")


def artifact_facts(root: Path, artifact: Path) -> tuple[dict[str, Any], str]:
    """The artifact's record and its X.Y, after checking that it carries the cross-build kit."""
    record = read_record(root, artifact)
    short = ".".join(record["python"]["version"].split(".")[:2])
    missing = missing_kit(root, short, dev=False)
    if missing:
        raise UsageError(f"{artifact} has no cross-build files: missing {', '.join(missing)}",
                         hint="rebuild the artifact with this wasmbuild (nox -s build-wasi / build-emscripten): "
                              "its artifacts carry include/, libpython and lib/pkgconfig/")
    return record, short


def check_output_dir(out: Path) -> None:
    """The directory `out` goes into exists and takes new files (written beside `out`, then renamed there):
    otherwise one message, before any work."""
    parent = out.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise UsageError(f"-o {out}: {parent} {what}", hint="create the directory first, or name another output")
    try:
        probe = tempfile.TemporaryDirectory(prefix=f".{out.name}.probe-", dir=parent)
    except OSError as exc:
        raise UsageError(f"-o {out}: cannot write into {parent}: {exc.strerror or exc}",
                         hint="name an output in a directory you can write to") from None
    probe.cleanup()


def staging_dir(out: Path) -> tempfile.TemporaryDirectory[str]:
    """A temporary directory beside `out` (the output is made there and renamed into place); a directory that
    cannot be written gives one message."""
    try:
        return tempfile.TemporaryDirectory(prefix=f".{out.name}.tmp-", dir=out.parent)
    except OSError as exc:
        raise UsageError(f"-o {out}: cannot write into {out.parent}: {exc.strerror or exc}",
                         hint="name an output in a directory you can write to") from None


def prepare_output(out: Path) -> None:
    """An existing output is replaced only when it is an earlier artifact (a directory with BUILD.json, or a
    .tar.gz file); anything else is refused before any work."""
    if out.is_dir():
        if any(out.iterdir()) and not (out / RECORD_NAME).is_file():
            raise UsageError(f"-o {out}: a directory that is not empty and holds no artifact (no {RECORD_NAME})",
                             hint="name a new or empty directory, or an earlier output of wasmbuild link")
    elif out.exists() and not out.name.endswith(".tar.gz"):
        raise UsageError(f"-o {out}: exists and is not a directory", hint="name a directory, or a .tar.gz")
    check_output_dir(out)


BUILTIN_ENTRY = re.compile(r'\{\s*"([A-Za-z_][A-Za-z0-9_]*)"\s*,')


def builtin_module_names(root: Path, short: str) -> set[str]:
    """The artifact's sys.builtin_module_names, read from its kit's config.c (CPython's _PyImport_Inittab, the
    table the interpreter was linked with)."""
    found = sorted((root / "lib" / f"python{short}").glob(f"config-{short}*/config.c"))
    if len(found) != 1:
        raise ArchiveError(f"{root}: no config.c in lib/python{short}/config-{short}-*/ (the cross-build kit)")
    return set(BUILTIN_ENTRY.findall(found[0].read_text(errors="replace")))


def taken_names(root: Path, short: str) -> dict[str, str]:
    """Names a linked module must not take: the artifact's built-in modules, its standard library's top-level
    modules and packages, its extension modules in lib-dynload/ (each with what it is)."""
    taken = {name: "a built-in module of the artifact (sys.builtin_module_names)"
             for name in builtin_module_names(root, short)}
    stdlib = root / "lib" / f"python{short}"
    for path in stdlib.iterdir():
        if path.suffix == ".py" or (path / "__init__.py").is_file():
            taken.setdefault(path.name.removesuffix(".py"), "a module of the artifact's standard library")
    dynload = stdlib / "lib-dynload"
    if dynload.is_dir():
        for path in dynload.iterdir():
            if path.suffix == ".so":
                taken.setdefault(path.name.split(".", 1)[0], "an extension module in the artifact's lib-dynload/")
    return taken


def plan_modules(artifact: Path, modules: list[Module], record: dict[str, Any], root: Path, short: str,
                 target: Target) -> list[dict[str, Any]]:
    """The artifact's earlier linked modules (artifact.linked_modules) that stay as they are in the new
    artifact. A module may not take the name of one of the artifact's own modules (taken_names). A module
    linked earlier and given again is built again from the sources given. On a target that links a new
    python.wasm (WASI) an earlier module is linked again from the object the artifact keeps (kit.module_object,
    relink_modules); one linked by an older wasmbuild, with no object kept, must be given again: a new
    python.wasm made without it would silently drop it."""
    earlier = {e["name"]: e for e in record["artifact"].get("linked_modules") or []}
    taken = taken_names(root, short)
    for m in modules:
        top = m.name.split(".", 1)[0]
        if top in taken and m.name not in earlier:
            what = f"{m.name!r} is" if top == m.name else f"{m.name!r} is inside {top!r}, which is"
            raise UsageError(f"--module {m.name}: {what} {taken[top]}: a linked module of that name would "
                             "replace or shadow CPython's own", hint="give the module another name (NAME=FILE.c "
                                                                     "and PyInit_NAME in its source)")
    if target.link_needs_dev:
        inits: dict[str, list[str]] = {}
        for name in [*(m.name for m in modules), *(n for n in earlier if n not in {m.name for m in modules})]:
            inits.setdefault(f"PyInit_{name.rpartition('.')[2]}", []).append(name)
        clash = {init: names for init, names in inits.items() if len(names) > 1}
        if clash:
            init, names = sorted(clash.items())[0]
            raise UsageError(f"modules {' and '.join(names)} both define {init}: linked into one python.wasm as "
                             "built-in modules their init functions would be one symbol",
                             hint="link them into separate artifacts, or rename one module's init function "
                                  "(and its NAME=...)")
    given = {m.name for m in modules}
    missing = [name for name in earlier if name not in given]
    if target.link_needs_dev:  # linked again from the objects the artifact kept (kit.module_object)
        missing = [name for name in missing if not (earlier[name].get("object")
                                                    and (root / earlier[name]["object"]).is_file())]
    if missing and target.link_needs_dev:
        raise UsageError(
            f"{artifact} already has linked modules built into its python.wasm ({', '.join(missing)}); linking "
            "makes a new python.wasm from libpython and the sources given, so they would be lost",
            hint="link all modules in one call from the original artifact, or pass the earlier modules' sources "
                 f"again: --module {' --module '.join(f'{n}=...' for n in missing)}")
    return [earlier[name] for name in earlier if name not in given]


def relink_modules(kept: list[dict[str, Any]], tree: Path, work: Path, target: Target) -> list[Module]:
    """On a target that links a new python.wasm (WASI): the kept earlier modules, from the objects the artifact
    keeps (copied to `work`: the link writes them again)."""
    if not target.link_needs_dev:
        return []
    modules = []
    for entry in kept:
        obj = work / f"earlier-{entry['name']}.o"
        shutil.copyfile(tree / entry["object"], obj)
        modules.append(Module(entry["name"], (), (obj,)))
    return modules


# CPython before 3.12: BuiltinImporter.find_spec answers only for top-level names (`if path is not None: return
# None`), so a package's extension module linked in as a built-in (markupsafe._speedups) is not found. This .pth
# file (site runs it at start-up) puts a finder for dotted built-in names first on sys.meta_path.
DOTTED_BUILTINS_PTH = "_wasmbuild_dotted_builtins.pth"
DOTTED_BUILTINS_LINE = (
    "import sys, _imp, _frozen_importlib as b; sys.meta_path.insert(0, type('DottedBuiltins', (), {'find_spec': "
    "classmethod(lambda c, n, p=None, t=None, i=_imp, b=b: b.ModuleSpec(n, b.BuiltinImporter, origin='built-in') "
    "if '.' in n and i.is_builtin(n) else None)}))\n")


def add_dotted_builtins_finder(tree: Path, short: str, names: list[str]) -> str | None:
    """On CPython 3.11 with dotted built-in modules among `names`: the .pth file that finds them (its path in the
    tree), else None."""
    if not any("." in n for n in names) or tuple(map(int, short.split("."))) >= (3, 12):
        return None
    rel = f"lib/python{short}/site-packages/{DOTTED_BUILTINS_PTH}"
    (tree / rel).parent.mkdir(parents=True, exist_ok=True)
    (tree / rel).write_text(DOTTED_BUILTINS_LINE)
    return rel


def refresh_objects(kept: list[dict[str, Any]], tree: Path) -> list[dict[str, Any]]:
    """Kept entries with the sha256 of their object as the new link wrote it."""
    return [{**e, "object_sha256": cache.sha256_file(tree / e["object"])} if e.get("object") else e for e in kept]


def linked_entries(modules: list[Module], files: dict[str, str], tree: Path, short: str,
                   **extra: Any) -> list[dict[str, Any]]:
    """The record's entries for modules just linked: the file holding each, and on WASI the object kept."""
    entries = []
    for m in modules:
        entry = {**m.record(), **extra, "file": files[m.name]}
        obj = module_object(tree, short, m.name) if files[m.name] == "python.wasm" else None
        if obj is not None and obj.is_file():
            entry["object"] = str(obj.relative_to(tree))
            entry["object_sha256"] = cache.sha256_file(obj)
        entries.append(entry)
    return entries


def companion_dev(artifact: Path) -> Path | None:
    """The -dev archive beside an artifact archive (dist/cpython-X-T.tar.gz -> dist/cpython-X-T-dev.tar.gz)."""
    if artifact.is_file() and artifact.name.endswith(".tar.gz"):
        return artifact.with_name(artifact.name[: -len(".tar.gz")] + "-dev.tar.gz")
    return None


def merge_dev(dev: Path, tree: Path, record: dict[str, Any]) -> None:
    """Unpack the -dev archive `dev` over `tree`, after checking that it comes from the same build."""
    with tempfile.TemporaryDirectory(prefix="wasmbuild-dev-") as tmp:
        try:
            with tarfile.open(dev, "r:*") as tar:
                safe_extract(tar, Path(tmp), strip_components=1, label=str(dev),
                             max_bytes=expansion_limit(dev.stat().st_size))
        except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise ArchiveError(f"{dev}: not a readable archive: {exc}") from None
        try:
            theirs = json.loads((Path(tmp) / RECORD_NAME).read_text())
        except (OSError, ValueError):
            raise ArchiveError(f"{dev}: no readable {RECORD_NAME}: not a wasmbuild -dev archive") from None
        if theirs != record:
            raise UsageError(f"{dev} is the -dev archive of another build than the artifact's",
                             hint="use the -dev archive made with the artifact (the same dist/ and SHA256SUMS)")
        (Path(tmp) / RECORD_NAME).unlink()
        shutil.copytree(tmp, tree, symlinks=True, dirs_exist_ok=True)


@dataclass(frozen=True)
class Prepared:
    """An artifact ready to build against: unpacked, its record read, its target's toolchain provisioned, and
    the -dev archive to merge into a working copy (None: not needed, or already in the directory)."""

    root: Path
    record: dict[str, Any]
    short: str
    target: Target
    toolchain: Toolchain
    dev: Path | None


def provision_for_record(record: dict[str, Any], short: str, options: BuildOptions) -> tuple[Target, Toolchain]:
    """The target an artifact's record names and its toolchain, provisioned as a build of its CPython X.Y
    (`short`) with `options` would (under the cache lock)."""
    target = get_target(record["target"]["name"])
    ctx = options.context(select_recipe(options.root, short), target.name)
    with cache.lock(ctx.cache, wait=True):
        return target, target.provision_toolchain(ctx)


def prepare(artifact: Path, *, options: BuildOptions, dev: Path | None, needs_dev: Callable[[Target], bool],
            what: str) -> Prepared:
    """Unpack and check `artifact`, provision its toolchain (the same one that built it), find its -dev archive
    when `needs_dev(target)` (`dev`, else the one beside the artifact archive)."""
    root = unpack_artifact(artifact, options.cache)
    if isinstance(artifact_runtime(root), WebRuntime):
        raise UsageError(f"{what} needs an artifact with the cross-build kit: {artifact.name} is a web artifact "
                         "(python.mjs), which has none", hint="use the emscripten artifact built without --variant web")
    record, short = artifact_facts(root, artifact)
    target, toolchain = provision_for_record(record, short, options)
    built_with = record.get("toolchain", {})
    if (built_with.get("name"), built_with.get("version")) != (toolchain.name, toolchain.version):
        raise UsageError(f"{artifact} was built with {built_with.get('name')} {built_with.get('version')}; this "
                         f"wasmbuild provisions {toolchain.name} {toolchain.version} for it",
                         hint="use the wasmbuild version that built the artifact, or rebuild the artifact")
    dev_archive = None
    if needs_dev(target) and missing_kit(root, short, dev=True):
        dev_archive = dev.expanduser().resolve() if dev else companion_dev(artifact.expanduser().resolve())
        if dev_archive is None or not dev_archive.is_file():
            where = f" (looked for {dev_archive})" if dev_archive else ""
            raise UsageError(f"{what} for {target.name} needs the artifact's static libraries (libpython{short}.a "
                             f"...), which come in its companion -dev archive{where}",
                             hint="pass --dev PATH/cpython-...-dev.tar.gz, or keep it beside the artifact archive "
                                  "as dist/ has it")
    return Prepared(root, record, short, target, toolchain, dev_archive)


def working_copy(prepared: Prepared, dest: Path) -> Path:
    """A writable copy of the artifact at `dest`, with its -dev archive merged in."""
    shutil.copytree(prepared.root, dest, symlinks=True)
    for path in (dest, *dest.rglob("*")):  # the unpacked cache copy is read-only
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o200)
    if prepared.dev:
        merge_dev(prepared.dev, dest, prepared.record)
    return dest


def link(artifact: Path, modules: list[Module], out: Path, *, options: BuildOptions, dev: Path | None = None) -> Path:
    """Build `modules` into a copy of `artifact` (archive or directory) at `out` (a directory, or a .tar.gz),
    with the artifact's own toolchain provisioned as `options` say (provision_for_record). A target that links
    against libpython (WASI) needs the -dev archive: `dev`, else the one beside the artifact archive, unless the
    artifact directory already holds it."""
    out = out.expanduser().resolve()
    check_modules(modules)
    prepare_output(out)
    cache_root = options.cache
    prep = prepare(artifact, options=options, dev=dev, needs_dev=lambda t: t.link_needs_dev, what="linking")
    record, short, target, toolchain, dev_archive = prep.record, prep.short, prep.target, prep.toolchain, prep.dev
    kept = plan_modules(artifact, modules, record, prep.root, short, target)
    logf = cache_root / "logs" / f"link-{record['python']['version']}-{record['target']['triple']}.log"
    logf.parent.mkdir(parents=True, exist_ok=True)
    logf.write_text(f"# wasmbuild link: {', '.join(m.name for m in modules)} into {artifact}\n")
    name = prep.root.name
    with staging_dir(out) as tmp:
        tree = working_copy(prep, Path(tmp) / name)
        work = Path(tmp) / "work"
        work.mkdir()
        relink = relink_modules(kept, tree, work, target)
        with log.step(f"Link {', '.join(m.name for m in modules)} into {name} (log: {logf})"):
            files = target.link_modules(toolchain, tree, [*modules, *relink], work, logf, short,
                                        record["target"]["triple"])
        shutil.rmtree(work)
        extra = record["artifact"]
        extra["linked_modules"] = [*refresh_objects(kept, tree), *linked_entries(modules, files, tree, short)]
        for rel in sorted(set(files.values())):
            extra.setdefault("files", {})[rel] = {"sha256": cache.sha256_file(tree / rel),
                                                  "size": (tree / rel).stat().st_size}
        if "python.wasm" in files.values():
            extra["python.wasm"] = {**extra["python.wasm"], "sha256": cache.sha256_file(tree / "python.wasm"),
                                    "size": (tree / "python.wasm").stat().st_size}
            extra["debuginfo"] = None  # the original debuginfo archive no longer matches this module
        if dev_archive:
            extra["dev"] = None  # merged into this tree
        if "python.wasm" in files.values():
            add_dotted_builtins_finder(tree, short, [e["name"] for e in extra["linked_modules"]])
        write_json(tree / RECORD_NAME, record)
        check_imports(tree, [e["name"] for e in extra["linked_modules"]], cache_root, logf)
        if out.name.endswith(".tar.gz"):
            staged = Path(tmp) / out.name
            write_deterministic_tar_gz(staged, tree, name, record["source_date_epoch"], first=[RECORD_NAME])
            os.replace(staged, out)
        else:
            if out.exists():
                cache.remove_tree(out)
            tree.rename(out)
    log.info(f"  {out}: {', '.join(m.name for m in modules)} built in"
             + (f" (kept from {artifact.name}: {', '.join(e['name'] for e in kept)})" if kept else ""))
    return out


def check_imports(tree: Path, names: list[str], cache_root: Path, logf: Path) -> None:
    """Every linked module imports in the new artifact (a module whose init fails is not an artifact)."""
    code = f"import {', '.join(names)}"
    with tempfile.TemporaryDirectory(prefix="wasmbuild-link-") as work:
        out, err = Path(work) / "out", Path(work) / "err"
        status = run_python(tree, ["-c", code], cache_root, [(Path(work), "/")], stdout=out, stderr=err,
                            node=pinned_node_finder(cache_root))
        if status != 0:
            text = err.read_text(errors="replace")
            with open(logf, "a") as f:
                f.write(f"\n$ python -c {code!r}\n{text}")
            raise BuildError(f"the linked artifact fails `{code}` (exit {status}):\n{text.strip()[-2000:]}",
                             hint=f"see {logf}")


def describe(out: Path) -> str:
    """How to run the result."""
    shown = json.dumps(str(out))
    return f"run it: python -m wasmbuild run {shown} -- -c 'import ...'"

