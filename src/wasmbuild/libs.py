"""Third-party C libraries (recipes/libraries.yaml) built from pinned, verified sources for a target.

Each library is one cache entry holding `prefix/{include,lib}`, keyed by its recipe data and the toolchain.
Its build is the recipe's shell script, run in the unpacked source with the target's compiler in the
environment (CC, AR, RANLIB, CFLAGS, HOST, BUILD, PREFIX, JOBS).
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmbuild import cache, log
from wasmbuild.archive import extract_tarball
from wasmbuild.download import DownloadError, Fetched, Sources, fetch
from wasmbuild.errors import BuildError, ChecksumError, RecipeError
from wasmbuild.process import run
from wasmbuild.recipe import Download, project_root
from wasmbuild.record import FETCH
from wasmbuild.schema import DOWNLOAD, Field, ListOf, MapOf, Sha256, load_document
from wasmbuild.toolchain import hosttools

FORMAT = 1
# Bump when the way libraries are built changes (invalidates cached libraries).
LIBS_VERSION = 1

LIBRARY_SCHEMA = {
    "version": str,
    "license": str,
    "source": DOWNLOAD,
    # Debian's orig tarball when it is NOT the upstream file (repacked): pinned by its own hash.
    # `tools`: host tools its script then needs (toolchains/host-tools.yaml), always the pinned ones.
    "debian_repack": Field({"path": str, "sha256": Sha256, "size": int, "tools": Field(ListOf(str), required=False)},
                           required=False),
    # Shell script (sh -eu) run in the unpacked source; it installs into $PREFIX.
    "script": str,
    # Variables handed to CPython's configure; {prefix} is the installed prefix.
    "provides": MapOf(str),
}
FILE_SCHEMA = {"format": int, "libraries": MapOf(LIBRARY_SCHEMA)}


@dataclass(frozen=True)
class Library:
    name: str
    version: str
    license: str
    source: Download
    repack: Download | None
    script: str
    provides: dict[str, str]
    data: dict[str, Any]
    # Host tools the script needs when the source is Debian's repack (toolchains/host-tools.yaml).
    repack_tools: tuple[str, ...] = ()


def load_libraries(file: Path) -> dict[str, Library]:
    data = load_document(file, FILE_SCHEMA, FORMAT)
    libs = {}
    for name, lib in data["libraries"].items():
        repack = None
        if r := lib.get("debian_repack"):
            repack = Download(url=f"debian:{r['path']}", sha256=r["sha256"], size=r["size"],
                              filename=r["path"].rsplit("/", 1)[-1], debian=r["path"])
        libs[name] = Library(name=name, version=lib["version"], license=lib["license"],
                             source=Download.from_data(lib["source"]), repack=repack,
                             repack_tools=tuple((lib.get("debian_repack") or {}).get("tools", ())),
                             script=lib["script"], provides=dict(lib["provides"]), data=lib)
    return libs


def select(file: Path, names: tuple[str, ...], owner: Path) -> list[Library]:
    libs = load_libraries(file)
    unknown = [n for n in names if n not in libs]
    if unknown:
        raise RecipeError(f"{owner}: libraries: unknown {', '.join(unknown)} (defined in {file.name}: "
                          f"{', '.join(sorted(libs))})")
    return [libs[n] for n in names]


def fetch_source(lib: Library, cache_root: Path, sources: Sources) -> tuple[Fetched, Download]:
    """The upstream file (or its byte-identical copies), else Debian's repacked orig tarball."""
    try:
        return fetch(lib.source, cache_root, sources), lib.source
    except ChecksumError:
        raise
    except DownloadError as exc:
        if not (lib.repack and sources.debian_mirror):
            raise
        log.info(f"  {lib.source.name} unavailable; using Debian's repacked source {lib.repack.name}")
        repack = Download(url=f"{sources.debian_mirror.rstrip('/')}/{lib.repack.debian}",
                          sha256=lib.repack.sha256, size=lib.repack.size, filename=lib.repack.filename)
        try:
            got = fetch(repack, cache_root, Sources(mirror_dir=sources.mirror_dir, debian_mirror=None, upstream=True))
        except ChecksumError:
            raise
        except DownloadError as exc2:
            # The messages without their hints (str() appends it): the combined error carries it once.
            raise DownloadError(f"{exc.args[0]}\n  - debian (repacked orig): {exc2.args[0]}", hint=exc.hint) from None
        return dataclasses.replace(got, route="debian"), lib.repack


@dataclass
class Built:
    lib: Library
    prefix: Path
    record: dict[str, Any]

    def configure_env(self) -> dict[str, str]:
        return {k: v.replace("{prefix}", str(self.prefix)) for k, v in self.provides_items()}

    def provides_items(self) -> list[tuple[str, str]]:
        return sorted(self.lib.provides.items())


SOURCE_KEYS = ("file", "sha256", "url", FETCH, "tools")
# Environment that does not change what a library build makes (where tools are found, how emcc is configured).
KEY_IGNORED = frozenset({"PATH", "EM_CONFIG", "EMSDK_PYTHON", "PKG_CONFIG_LIBDIR"})
# Every library is built with this fixed SOURCE_DATE_EPOCH, whatever CPython it is for (2000-01-01 UTC).
LIBS_SOURCE_DATE_EPOCH = 946684800


def build(lib: Library, *, cache_root: Path, sources: Sources, target: str, toolchain_key: Any,
          env: dict[str, str], jobs: int, log_dir: Path) -> Built:
    """Build `lib` for `target` with the compiler environment `env` (CC, AR, ... HOST, BUILD)."""
    # The key names the library, the toolchain and the target only: one build serves every CPython version, and
    # the cache directory's own path (in the compiler's path) does not count.
    key_env = {k: v.replace(str(cache_root), "<cache>") for k, v in env.items() if k not in KEY_IGNORED}
    key = cache.hash_key({"v": LIBS_VERSION, "lib": lib.data, "target": target, "toolchain": toolchain_key,
                          "env": key_env})
    entry = cache_root / "libs" / f"{lib.name}-{lib.version}-{target}-{key[:12]}"
    prefix = entry / "prefix"

    def record(source: dict[str, Any]) -> dict[str, Any]:
        # One key order whether the source was just fetched or read back from the cache stamp (which a JSON
        # writer may have sorted): the build record, and so the archive, must not depend on the cache's state.
        source = dict(source)
        if FETCH not in source and "route" in source:  # a stamp written before the record named inputs by identity
            source[FETCH] = {"route": source.pop("route"), "url": source.get("url")}
        # The input's identity: its canonical url (upstream, or Debian's path of a repacked source).
        source["url"] = (lib.repack.url if lib.repack and source.get("file") == lib.repack.name
                         else lib.source.url)
        ordered = {k: source[k] for k in SOURCE_KEYS if k in source}
        if "tools" in ordered:
            ordered["tools"] = [hosttools.ordered_record(t) for t in ordered["tools"]]
        return {"name": lib.name, "version": lib.version, "license": lib.license, **ordered}

    if cache.is_valid(entry, key):
        stamp = cache.read_stamp(entry) or {}
        return Built(lib, prefix, record(stamp.get("source", {})))
    got, item = fetch_source(lib, cache_root, sources)
    source: dict[str, Any] = {"file": item.name, "sha256": item.sha256, "url": item.url,
                              FETCH: {"route": got.route, "url": got.url}}
    tools = hosttools.ensure(lib.repack_tools if item is lib.repack else (), project_root(), cache_root, sources)
    if tools:
        source["tools"] = [t.record() for t in tools]
    logf = log_dir / f"lib-{lib.name}-{target}.log"
    logf.parent.mkdir(parents=True, exist_ok=True)
    logf.write_text(f"# {lib.name} {lib.version} for {target}\n")
    with log.step(f"Build {lib.name} {lib.version} for {target} (log: {logf})"), \
            cache.fresh_entry(entry, key, source=source):
        src = entry / "src"
        extract_tarball(got.path, src, strip_components=1)
        prefix.mkdir()
        script_env = {
            **env,
            "CFLAGS": f"{env.get('CFLAGS', '')} -ffile-prefix-map={src}=/src/{lib.name}".strip(),
            "PREFIX": str(prefix),
            "JOBS": str(jobs),
            "SOURCE_DATE_EPOCH": str(LIBS_SOURCE_DATE_EPOCH),
        }
        if tools:
            script_env["PATH"] = hosttools.path_with(tools, env.get("PATH"))
        script = entry / f"build-{lib.name}.sh"
        script.write_text(lib.script)
        run(["sh", "-eu", script], cwd=src, env=script_env, log_file=logf, what=f"the build script of {lib.name}")
        missing = [part for v in lib.provides.values() for part in shlex.split(v)
                   if part.startswith("-I{prefix}") and not Path(part[2:].replace("{prefix}", str(prefix))).is_dir()]
        if missing or not any((prefix / "lib").glob("*.a")):
            raise BuildError(f"the build script of {lib.name} installed no static library or headers into {prefix}",
                             hint=f"see {logf}")
        cache.remove_tree(src)
    return Built(lib, prefix, record(source))


def build_all(libs: list[Library], **kwargs: Any) -> list[Built]:
    return [build(lib, **kwargs) for lib in libs]


def configure_env(built: list[Built]) -> dict[str, str]:
    env: dict[str, str] = {}
    for b in built:
        env.update(b.configure_env())
    return env


def path_map(built: list[Built]) -> dict[str, str]:
    return {str(b.prefix): f"/opt/{b.lib.name}" for b in built}
