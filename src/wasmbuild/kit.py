"""The cross-build kit every artifact carries: what `make install` lays out for building against CPython, made
relocatable and free of build paths. Split in two, as Debian splits python3.X from libpython3.X-dev:

in the artifact itself (about 0.5 MB compressed: enough to compile an extension module, and what sysconfig names)
    include/pythonX.Y/                       the headers, with the target's pyconfig.h
    lib/pythonX.Y/config-X.Y-<multiarch>/    as `make libainstall` lays it (Makefile, Setup*, config.c, makesetup,
                                             python-config.py)
    lib/pkgconfig/python-X.Y.pc              flags to compile an extension module
    lib/pkgconfig/python-X.Y-embed.pc        flags to compile and link a program embedding Python
    bin/pythonX.Y-config                     the same answers as the .pc files (relocatable shell script)

in the companion `-dev` archive (the static libraries: libpython alone is ~45 MB with its DWARF, which
llvm-strip cannot remove from wasm object files; needed only to link: embedding, `wasmbuild link` on WASI)
    lib/libpythonX.Y.a                       libpython, and beside it the static libraries it needs to link:
    lib/lib{mpdec,expat,Hacl_*,z,...}.a      CPython's vendored ones and recipes/libraries.yaml's
    lib/pythonX.Y/config-X.Y-<multiarch>/    python.o, and libpythonX.Y.a as a link to ../../

Both archives hold the same top directory: unpacked in one place they give the whole `make install` layout.
The host build installs the raw tree (`make inclinstall libainstall DESTDIR=...`, KIT_INSTALL);
`stage_kit` reshapes it. The .pc files locate everything from their own directory (`${pcfiledir}`), so an
artifact unpacked anywhere works with `PKG_CONFIG_PATH=<artifact>/lib/pkgconfig`. Libraries are static: the
embed file's `Libs:` carries every library and the link flags a program needs (the WASM stack size and initial
memory CPython is linked with), not only `-lpython`.
"""

from __future__ import annotations

import ast
import re
import shlex
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmbuild import cache
from wasmbuild.errors import ArchiveError, BuildError

# Where the host build installs its headers, libpython and config directory (`make inclinstall libainstall`
# with this DESTDIR, configure's prefix below it): the cross-build kit is staged from there.
KIT_INSTALL = "_install"
# configure's default prefix: the host build is configured without --prefix.
CONFIGURE_PREFIX = "/usr/local"
# Files of the config directory that are text and may name build paths (rewritten with the path map).
TEXT_SUFFIXES = {"", ".c", ".in", ".py", ".local", ".stdlib", ".bootstrap", ".sh"}
# Link flags the embed .pc passes on from CPython's own link of python.wasm / python.js (the rest name build
# files, or are flags only the interpreter's own link wants).
KEPT_LINK_FLAGS = re.compile(r"^(-Wl,-z,stack-size=\d+|-Wl,--stack-first|-Wl,--initial-memory=\d+|"
                             r"-Wl,--max-memory=\d+|-sSTACK_SIZE=\d+|-sALLOW_MEMORY_GROWTH(=1)?|"
                             r"-sINITIAL_MEMORY=\w+|-sTOTAL_MEMORY=\w+|-sWASM_BIGINT|-sMAIN_MODULE(=\d)?)$")


def read_sysconfig_vars(path: Path) -> dict[str, Any]:
    """The `build_time_vars` dict of a `_sysconfigdata_*.py` file, read without running it."""
    try:
        tree = ast.parse(path.read_text(), str(path))
    except (OSError, SyntaxError) as exc:
        raise ArchiveError(f"{path}: not a readable sysconfig data module: {exc}") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "build_time_vars"
                                                for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, dict):
                return value
    raise ArchiveError(f"{path}: no build_time_vars in this sysconfig data module")


def sysconfig_module(lib: Path) -> Path:
    """The one `_sysconfigdata_*.py` under `lib` (a build's lib.*/ directory or an artifact's lib/pythonX.Y/)."""
    found = sorted(lib.glob("_sysconfigdata_*.py"))
    if len(found) != 1:
        raise ArchiveError(f"{lib}: expected one _sysconfigdata_*.py, found {len(found)}")
    return found[0]


def archive_flag(name: str) -> str:
    """-l<name> for lib<name>.a."""
    if not (name.startswith("lib") and name.endswith(".a")):
        raise ValueError(f"not a static library name: {name}")
    return "-l" + name[3:-2]


@dataclass(frozen=True)
class LinkPlan:
    """What a program embedding this CPython links, in order: libpython, the archives CPython built and
    links from its build tree (copied into lib/), the -l libraries (ours and the system's), the link flags."""

    libpython: str  # libpython3.13.a
    archives: tuple[str, ...]  # build-tree paths of the vendored archives (Modules/expat/libexpat.a ...)
    libs: tuple[str, ...]  # -lz -lm ...
    flags: tuple[str, ...]  # -Wl,--stack-first ...

    def libs_line(self) -> str:
        return " ".join(["-L${libdir}", archive_flag(self.libpython),
                         *(archive_flag(Path(a).name) for a in self.archives), *self.libs, *self.flags])


def _dedupe(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    return [i for i in items if not (i in seen or seen.add(i))]  # type: ignore[func-returns-value]


def _split_flags(text: str) -> list[str]:
    """Split a Makefile value into flags; `-z value` (wasm-ld's `-z stack-size=N`) becomes `-Wl,-z,value`."""
    words = shlex.split(text)
    out: list[str] = []
    for word in words:
        if out and out[-1] == "-z":
            out[-1] = f"-Wl,-z,{word}"  # one word: pkg-config may reorder or merge separate ones
        else:
            out.append(word)
    return out


def link_plan(vars: dict[str, Any]) -> LinkPlan:
    """The embed link line from the build's sysconfig variables: MODLIBS (what the built-in modules link: build-tree
    archives, -L/-l of the recipe's libraries), LIBS, SYSLIBS, and the stack and memory flags of CPython's own link."""
    library = str(vars.get("LIBRARY", ""))
    if not library.endswith(".a"):
        raise BuildError(f"this CPython build has no static libpython (LIBRARY={library!r}): nothing to embed")
    archives: list[str] = []
    libs: list[str] = []
    for word in _split_flags(" ".join(str(vars.get(k, "")) for k in ("MODLIBS", "LIBS", "SYSLIBS"))):
        if word.endswith(".a"):
            archives.append(word)
        elif word.startswith("-l"):
            libs.append(word)
    flags = [w for w in _split_flags(" ".join(str(vars.get(k, "")) for k in ("PY_CORE_LDFLAGS", "LINKFORSHARED")))
             if KEPT_LINK_FLAGS.match(w)]
    return LinkPlan(library, tuple(_dedupe(archives)), tuple(_dedupe(libs)), tuple(_dedupe(flags)))


PC_HEADER = """\
# {what}, CPython {version} for {triple} (wasmbuild). Relocatable: found from this file's directory,
# use it with PKG_CONFIG_PATH=<artifact>/lib/pkgconfig. Static libraries only.
prefix=${{pcfiledir}}/../..
exec_prefix=${{prefix}}
libdir=${{exec_prefix}}/lib
includedir=${{prefix}}/include

"""


def pc_files(plan: LinkPlan, *, version: str, short: str, triple: str) -> dict[str, str]:
    """python-X.Y.pc (compile an extension module: no libraries, as on Linux) and python-X.Y-embed.pc."""
    cflags = f"Cflags: -I${{includedir}}/python{short}\n"
    ext = (PC_HEADER.format(what="Build a C extension module", version=version, triple=triple)
           + f"Name: Python\nDescription: Build a C extension for Python\nRequires:\nVersion: {short}\n"
           + "Libs.private:\nLibs:\n" + cflags)
    embed = (PC_HEADER.format(what="Embed Python into an application", version=version, triple=triple)
             + f"Name: Python\nDescription: Embed Python into an application\nRequires:\nVersion: {short}\n"
             + f"Libs.private:\nLibs: {plan.libs_line()}\n" + cflags)
    return {f"python-{short}.pc": ext, f"python-{short}-embed.pc": embed}


def shell_escape(text: str) -> str:
    """`text` with a backslash before each character a shell would split or expand, as pkg-config escapes
    ${pcfiledir}: one word under shlex.split, whatever the path holds."""
    return re.sub(r"([^\w@%+=:,./-])", r"\\\1", text)


def read_pc(path: Path) -> dict[str, str]:
    """A .pc file's fields (Cflags, Libs, ...) with its variables expanded, ${pcfiledir} included: what
    `pkg-config --cflags/--libs` print, without needing pkg-config. As pkg-config does, the file's directory is
    escaped for the shell (a space becomes `\\ `): split a field with shlex.split, as a path with spaces in it
    (a cache directory, an output directory) stays one word."""
    variables = {"pcfiledir": shell_escape(str(path.parent))}
    fields: dict[str, str] = {}

    def expand(value: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: variables.get(m.group(1), ""), value)

    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^(\w[\w.]*)\s*([=:])\s*(.*)$", line)
        if not m:
            raise ArchiveError(f"{path}: not a pkg-config line: {raw!r}")
        name, sep, value = m.groups()
        if sep == "=":
            variables[name] = expand(value)
        else:
            fields[name] = expand(value)
    return fields


def _rewrite(text: str, path_map: dict[str, str]) -> str:
    for old, new in sorted(path_map.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    return text


def embed_libs_for_config(script: str, plan: LinkPlan) -> str:
    """python-config's --embed --libs: every library the static link needs, as the embed .pc says."""
    libs = " ".join([archive_flag(plan.libpython), *(archive_flag(Path(a).name) for a in plan.archives),
                     *plan.libs, *plan.flags])
    new, count = re.subn(r'^LIBS_EMBED=".*"$', f'LIBS_EMBED="{libs}"', script, flags=re.M)
    if count != 1:
        raise BuildError("python-config has no LIBS_EMBED line to complete (CPython's Misc/python-config.sh.in "
                         "changed?)")
    return new


def stage_kit(*, install: Path, build: Path, tree: Path, dev: Path, short: str, version: str, triple: str,
              path_map: dict[str, str], library_prefixes: Iterable[Path], vars: dict[str, Any]) -> dict[str, Any]:
    """Reshape the host build's `make inclinstall libainstall` tree (`install`, configure's prefix inside it)
    into the artifact `tree` and the -dev tree `dev`; returns the record's view of the kit."""
    root = install / CONFIGURE_PREFIX.lstrip("/")
    include = root / "include" / f"python{short}"
    configs = sorted((root / "lib" / f"python{short}").glob(f"config-{short}*"))
    if not (include / "Python.h").is_file() or len(configs) != 1:
        raise BuildError(f"{install}: `make inclinstall libainstall` installed no include/python{short}/Python.h "
                         "or no config directory", hint="see the host build's log")
    plan = link_plan(vars)
    shutil.copytree(include, tree / "include" / f"python{short}")
    rel_config = Path("lib") / f"python{short}" / configs[0].name
    config, dev_config = tree / rel_config, dev / rel_config
    config.mkdir(parents=True)
    dev_config.mkdir(parents=True)
    dev_lib = dev / "lib"
    for item in sorted(configs[0].iterdir()):
        if item.name == plan.libpython:
            shutil.copyfile(item, dev_lib / item.name)
            (dev_config / item.name).symlink_to(Path("..") / ".." / item.name)
        elif item.suffix == ".o":
            shutil.copyfile(item, dev_config / item.name)
        elif item.suffix in TEXT_SUFFIXES or item.name == "Makefile":
            (config / item.name).write_text(_rewrite(item.read_text(), path_map))
            shutil.copymode(item, config / item.name)
        else:
            shutil.copyfile(item, config / item.name)
    if not (dev_lib / plan.libpython).is_file():
        raise BuildError(f"{configs[0]}: no {plan.libpython} (a static libpython) installed")
    archives = [plan.libpython]
    for rel in plan.archives:
        src = build / rel
        if not src.is_file():
            raise BuildError(f"{src}: an archive CPython links ({rel}) is missing from the host build")
        shutil.copyfile(src, dev_lib / src.name)
        archives.append(src.name)
    wanted = {flag[2:] for flag in plan.libs}
    for prefix in library_prefixes:
        for lib in sorted((prefix / "lib").glob("lib*.a")):
            if lib.name[3:-2] in wanted:
                shutil.copyfile(lib, dev_lib / lib.name)
                archives.append(lib.name)
    pkgconfig = tree / "lib" / "pkgconfig"
    pkgconfig.mkdir()
    pcs = pc_files(plan, version=version, short=short, triple=triple)
    for name, text in pcs.items():
        (pkgconfig / name).write_text(text)
    bindir = tree / "bin"
    bindir.mkdir()
    config_script = root / "bin" / f"python{short}-config"
    (bindir / config_script.name).write_text(embed_libs_for_config(_rewrite(config_script.read_text(), path_map), plan))
    (bindir / config_script.name).chmod(0o755)
    return {
        "include": f"include/python{short}",
        "config": rel_config.as_posix(),
        "pkg_config": [f"lib/pkgconfig/{n}" for n in sorted(pcs)],
        "python_config": f"bin/{config_script.name}",
        "dev_static_libraries": [f"lib/{a}" for a in sorted(archives)],
        "embed_libs": plan.libs_line().replace("-L${libdir} ", ""),
    }


def artifact_prefix_sysconfig(text: str) -> str:
    """The artifact's sysconfig data names its own layout: configure's prefix (/usr/local) becomes the
    artifact's root, `/` (what the launchers set PYTHONHOME to; sysconfig's get_paths() and the prefix
    variables follow sys.prefix at run time anyway)."""
    for quote in ("'", '"'):
        text = text.replace(f"{quote}{CONFIGURE_PREFIX}{quote}", f"{quote}/{quote}")
    return text.replace(f"{CONFIGURE_PREFIX}/", "/")


def missing_kit(root: Path, short: str, *, dev: bool) -> list[str]:
    """What of the kit an unpacked artifact lacks (relative paths; with `dev`, the -dev archive's part too)."""
    need = [f"include/python{short}/Python.h", f"include/python{short}/pyconfig.h",
            f"lib/pkgconfig/python-{short}.pc", f"lib/pkgconfig/python-{short}-embed.pc"]
    if dev:
        need.append(f"lib/libpython{short}.a")
    return [n for n in need if not (root / n).is_file()]


def module_object(tree: Path, short: str, name: str) -> Path:
    """Where an artifact keeps the object of an extension module linked into its python.wasm (WASI): in the kit's
    config directory, modules/<dotted name>.o, so that a later link (wasmbuild link, a bundle) links it again."""
    configs = sorted((tree / "lib" / f"python{short}").glob(f"config-{short}*"))
    if len(configs) != 1:
        raise ArchiveError(f"{tree}: expected one lib/python{short}/config-{short}-*/ directory (the cross-build "
                           f"kit), found {len(configs)}")
    return configs[0] / "modules" / f"{name}.o"


@dataclass(frozen=True)
class Module:
    """An extension module: its import name (dotted for a module inside a package: `markupsafe._speedups`),
    its C sources, and objects already compiled for the target (a package's extension built by
    `wasmbuild install`, packages/). Its init function is PyInit_<last part of the name>, in one of them."""

    name: str
    sources: tuple[Path, ...]
    objects: tuple[Path, ...] = ()

    @property
    def base(self) -> str:
        """The last part of the name: what the init function and a side module's file are named after."""
        return self.name.rpartition(".")[2]

    @property
    def init(self) -> str:
        return f"PyInit_{self.base}"

    def record(self) -> dict[str, Any]:
        return {"name": self.name,
                "sources": [{"file": s.name, "sha256": cache.sha256_file(s)} for s in (*self.sources, *self.objects)]}
