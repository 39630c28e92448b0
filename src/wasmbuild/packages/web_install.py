"""`wasmbuild install` into a web artifact (python.mjs, python.wasm, python.data): pure-Python wheels only, carried
in the artifact's wheels/ directory and installed by the JavaScript loader when it starts the interpreter.

    facts     a web artifact runs only in a JavaScript host through its API, so it is not run to ask what it is
              (resolve.target_facts): its answers are a fixed table filled from its record (web_target_facts), the
              ones the node Emscripten artifact of the same build gives (Emscripten's libc uname, the toolchain's
              version in the platform)
    sysconfig pip is given the artifact's own _sysconfigdata module, read out of python.data: file_packager's table of
              contents (each file's start and end in the package) is linked into python.mjs (file_package_table)
    resolve   pip's resolver under pip_for_target.py, as for every artifact (resolve.resolve)
    wheels    a pure wheel (abi none, platform any) as it is; an sdist with no compiled code built into a wheel on the
              host (wheels.build_wheel, with no compiler: cached as any built wheel) that must come out pure; a
              platform wheel, or an sdist with C, C++, Cython, Fortran or Rust sources, is refused in one line
              (--allow-pure-fallback: an sdist whose C extension is optional is built without it)
    output    the web artifact plus wheels/: the wheel files and wheels.json (the manifest loadPython reads: name,
              version, file, sha256, url), BUILD.json's artifact.packages; a directory, or a deterministic .tar.gz
              with its SBOM beside it
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from wasmbuild import cache, log, pipeline
from wasmbuild.artifact import WebRuntime, artifact_runtime, unpack_artifact
from wasmbuild.errors import ArchiveError, BuildError, PackageError, UsageError
from wasmbuild.files import write_json
from wasmbuild.kit import read_sysconfig_vars
from wasmbuild.link import staging_dir
from wasmbuild.names import WEB_DATA, WEB_MODULE, WEB_WHEELS, WEB_WHEELS_MANIFEST
from wasmbuild.packages.cross import CrossEnv
from wasmbuild.packages.output import place_output
from wasmbuild.packages.resolve import Pin, resolve, wheel_tag_platform
from wasmbuild.packages.tools import Index, ToolEnv, configured_index, tool_env
from wasmbuild.packages.wheels import (
    Wheel,
    build_wheel,
    fetch_dist,
    inspect_sdist,
    metadata_license,
    refuse_unbuildable,
    wheel_metadata,
    wheel_tags,
)
from wasmbuild.process import capture
from wasmbuild.recipe import select_recipe
from wasmbuild.record import RECORD_NAME, read_record
from wasmbuild.steps import BuildOptions

MANIFEST_FORMAT = 1
MANIFEST_PATH = f"{WEB_WHEELS}/{WEB_WHEELS_MANIFEST}"
PURE_ENV_VERSION = 1
# An entry of file_packager's table in its loader: {filename:"/lib/python3.13/os.py",start:0,end:4718} as the
# minified link writes it, {"filename": "...", "start": 0, "end": 4718} unminified.
PACKAGE_ENTRY = re.compile(r'\{\s*"?filename"?\s*:\s*"([^"\\]*)"\s*,\s*"?start"?\s*:\s*(\d+)\s*,'
                           r'\s*"?end"?\s*:\s*(\d+)\s*\}')
PACKAGE_SIZE = re.compile(r'"?remote_package_size"?\s*:\s*(\d+)')
# A sourceless _sysconfigdata .pyc (the web variant keeps the smaller of a module's source and .pyc), as source:
# its code object run by the tool venv's Python, the artifact's CPython X.Y (the same marshal format).
PYC_TO_SOURCE = """import marshal, sys
with open(sys.argv[1], "rb") as f:
    code = marshal.loads(f.read()[16:])
namespace = {}
exec(code, namespace)
print("build_time_vars = " + repr(namespace["build_time_vars"]))
"""
# The C compiler of a web artifact's sdist builds: none (a build that compiles fails, saying why).
NO_COMPILER = """#!/bin/sh
echo "wasmbuild: no C compiler for a web artifact: it loads pure-Python wheels only" >&2
exit 1
"""


class PackageOptions(Protocol):
    """What `wasmbuild install` was asked beyond the packages (install.InstallOptions has these)."""

    @property
    def index(self) -> Index | None: ...

    @property
    def require_hashes(self) -> bool: ...

    @property
    def allow_pure_fallback(self) -> bool: ...

    @property
    def prefer_binary(self) -> bool: ...

    @property
    def build_timeout(self) -> float: ...


def is_web_artifact(artifact: Path, cache_root: Path) -> bool:
    """Whether `artifact` (archive or directory) is a web artifact (python.mjs): unpacked into the cache to see."""
    return isinstance(artifact_runtime(unpack_artifact(artifact, cache_root)), WebRuntime)


def web_target_facts(record: dict[str, Any], sysconfig_vars: dict[str, Any]) -> dict[str, str]:
    """What a web artifact's interpreter would say about itself (resolve.FACTS_CODE), from its record and its
    sysconfig data: what the node Emscripten artifact of the same build answers when it is run."""
    toolchain = record.get("toolchain") or {}
    if toolchain.get("name") != "emscripten" or not toolchain.get("version"):
        raise ArchiveError(f"the web artifact's record names the toolchain {toolchain.get('name')!r} "
                           f"{toolchain.get('version')!r}, not an Emscripten version",
                           hint="use a web artifact built by wasmbuild (nox -s build-emscripten -- --variant web)")
    version = str(record["python"]["version"])
    major, minor = version.split(".")[:2]
    emscripten = str(toolchain["version"])
    return {"sys_platform": "emscripten", "os_name": "posix",
            # Emscripten's libc uname(): sysname, release (the Emscripten version), version, machine.
            "platform_system": "Emscripten", "platform_machine": "wasm32", "platform_release": emscripten,
            "platform_version": "#1", "platform": f"emscripten-{emscripten}-wasm32",
            "multiarch": "wasm32-emscripten", "python": version,
            "ext_suffix": str(sysconfig_vars.get("EXT_SUFFIX") or f".cpython-{major}{minor}-wasm32-emscripten.so"),
            "cache_tag": f"cpython-{major}{minor}"}


def file_package_table(module: Path, data: Path) -> dict[str, tuple[int, int]]:
    """The table of contents of a web artifact's file package: each file's path in the guest -> (start, end) in
    `data` (python.data). file_packager writes it into its loader, which the web link puts into `module`
    (python.mjs): `loadPackage({files: [{filename, start, end}, ...], remote_package_size})`. Checked: one
    package size, python.data's, and the entries cover it end to end without a gap or an overlap."""
    text = module.read_text(errors="replace")
    entries = PACKAGE_ENTRY.findall(text)
    sizes = {int(s) for s in PACKAGE_SIZE.findall(text)}
    size = data.stat().st_size
    table = {name: (int(start), int(end)) for name, start, end in entries}
    spans = sorted(table.values())
    whole = (len(table) == len(entries) and bool(spans) and spans[0][0] == 0 and spans[-1][1] == size
             and all(a[1] == b[0] and a[0] <= a[1] for a, b in zip(spans, spans[1:], strict=False)))
    if sizes != {size} or not whole:
        raise ArchiveError(f"{module.name}: its file package table ({len(entries)} entries, package size "
                           f"{sorted(sizes) or 'none'}) does not describe {data.name} ({size} bytes)",
                           hint="use a web artifact from dist/ as wasmbuild built it (python.mjs and python.data "
                                "of one build)")
    return table


def web_sysconfig_module(root: Path, short: str, dest: Path, python: Path) -> Path:
    """The web artifact's `_sysconfigdata_*.py` (from python.data, at /lib/pythonX.Y/), written into `dest`; a
    sourceless .pyc is turned back into source by `python` (the tool venv's, the artifact's X.Y)."""
    table = file_package_table(root / WEB_MODULE, root / WEB_DATA)
    lib = f"/lib/python{short}/"
    found = sorted(n for n in table if n.startswith(f"{lib}_sysconfigdata_") and "/" not in n[len(lib):]
                   and n.endswith((".py", ".pyc")))
    if len(found) != 1:
        raise ArchiveError(f"{root.name}: expected one {lib}_sysconfigdata_*.py in {WEB_DATA}, found {len(found)}")
    start, end = table[found[0]]
    with open(root / WEB_DATA, "rb") as f:
        f.seek(start)
        data = f.read(end - start)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / (PurePosixPath(found[0]).stem + ".py")
    if found[0].endswith(".py"):
        out.write_bytes(data)
    else:
        pyc = dest / PurePosixPath(found[0]).name
        pyc.write_bytes(data)
        proc = capture([str(python), "-I", "-c", PYC_TO_SOURCE, str(pyc)])
        if proc.returncode != 0:
            raise BuildError(f"{found[0]} of {root.name} does not load in CPython {short}: "
                             f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}")
        out.write_text(proc.stdout)
    read_sysconfig_vars(out)  # a module with its build_time_vars, or one error
    return out


def pure_build_env(dest: Path, facts: dict[str, str], source_date_epoch: int) -> CrossEnv:
    """The environment an sdist is built in for a web artifact: the host's build-python with no compiler (the
    wrapper fails, saying why), so the build gives a pure wheel or fails."""
    dest.mkdir(parents=True, exist_ok=True)
    compiler = dest / "no-compiler"
    compiler.write_text(NO_COMPILER)
    compiler.chmod(0o755)
    env = {name: str(compiler) for name in ("CC", "CXX", "LDSHARED", "LDCXXSHARED")}
    env.update({"CFLAGS": "", "CXXFLAGS": "", "LDFLAGS": "", "CPPFLAGS": "",
                "SOURCE_DATE_EPOCH": str(source_date_epoch), "PYTHONHASHSEED": "0"})
    key = {"v": PURE_ENV_VERSION, "web": "pure only", "platform": facts["platform"], "compiler": NO_COMPILER}
    return CrossEnv(dest, env, wheel_tag_platform(facts), facts["ext_suffix"], False, key)


def is_pure(filename: str) -> bool:
    """A wheel file name of a pure-Python wheel: abi `none`, platform `any`."""
    _, abi, plat = wheel_tags(filename)
    return "none" in abi.split(".") and "any" in plat.split(".")


def _refuse_compiled(pin: Pin, what: str) -> PackageError:
    return PackageError(f"{pin.name} {pin.version}: {what}: the web artifact loads pure-Python wheels only",
                        hint="use the node Emscripten artifact (built without --variant web), which loads extension "
                             "modules; or --allow-pure-fallback, when the package works without its C extension")


def web_wheel(pin: Pin, dist: Path, *, tools: ToolEnv, env: CrossEnv, cache_root: Path, index: Index, logs: Path,
              work: Path, options: PackageOptions) -> Wheel:
    """The pure wheel of a distribution pip chose for a web artifact: a pure wheel as it is, an sdist without
    compiled code built (with --allow-pure-fallback: one whose C extension is optional, built without it)."""
    if pin.is_wheel:
        if not is_pure(dist.name):
            raise _refuse_compiled(pin, f"{dist.name} is a platform wheel ({wheel_tags(dist.name)[2]})")
        return Wheel(dist, pin, None)
    requires, native = inspect_sdist(dist, work / f"inspect-{pin.name.lower()}")
    refuse_unbuildable(pin, requires, native)
    if native["c"] and not options.allow_pure_fallback:
        count = len(native["c"])
        raise _refuse_compiled(pin, f"{dist.name} has a C extension ({count} C/C++/Cython source"
                                    f"{'s' * (count != 1)}, e.g. {native['c'][0]})")
    wheel = build_wheel(pin, dist, tools=tools, cross=env, cache_root=cache_root, index=index, logs=logs,
                        allow_pure_fallback=options.allow_pure_fallback, timeout=options.build_timeout)
    if not is_pure(wheel.path.name):
        raise _refuse_compiled(pin, f"its sdist built {wheel.path.name}, not a pure wheel")
    if (wheel.built or {}).get("pure_fallback"):
        log.warn(f"{pin.name} {pin.version}: installed without its C extension (--allow-pure-fallback)")
    return wheel


def wheels_manifest(wheels: list[Wheel]) -> dict[str, Any]:
    """wheels/wheels.json: each wheel as loadPython installs it (`file` in wheels/, its `sha256`), what it is
    (`name`, `version`) and where wasmbuild got it (`url`; for a wheel built here, the sdist's, named by
    `built_from`), in pip's order (by name)."""
    return {"format": MANIFEST_FORMAT, "wheels": [
        {"name": w.pin.name, "version": w.pin.version, "file": w.path.name, "sha256": cache.sha256_file(w.path),
         "url": w.pin.url, **({"built_from": w.pin.filename} if w.built else {})} for w in wheels]}


def install_web(artifact: Path, requirements: list[str], requirement_files: list[Path], out: Path, *,
                options: BuildOptions, install_options: PackageOptions) -> Path:
    """Install the requirements, pure-Python wheels only, into a copy of the web artifact `artifact` at `out`
    (directory or .tar.gz): the wheels in its wheels/ directory with their manifest, for loadPython to install."""
    out = out.expanduser().resolve()
    cache_root = options.cache
    root = unpack_artifact(artifact, cache_root)
    record = read_record(root, artifact)
    earlier = record["artifact"].get("packages") or []
    if earlier or (root / WEB_WHEELS).exists():
        raise UsageError(f"{artifact} already has packages in {WEB_WHEELS}/ ({len(earlier)})",
                         hint="install all packages in one call into the original web artifact")
    version, triple = record["python"]["version"], record["target"]["triple"]
    short = ".".join(version.split(".")[:2])
    index = install_options.index or Index(url=configured_index())
    ctx = options.context(select_recipe(options.root, short), "emscripten")
    with cache.lock(ctx.cache, wait=True):
        bp = pipeline.build_python(ctx, pipeline.prepare_source(ctx))
        tools = tool_env(options.root, bp, cache_root, index)
    logs = cache_root / "logs" / "install"
    logs.mkdir(parents=True, exist_ok=True)
    logf = logs / f"install-{version}-{triple}-web.log"
    logf.write_text(f"# wasmbuild install into the web artifact {artifact}: {' '.join(requirements)}\n")
    asked = " ".join([*requirements, *(f"-r {f}" for f in requirement_files)])
    name = root.name
    with staging_dir(out) as tmp:
        work = Path(tmp) / "work"
        sysdata = web_sysconfig_module(root, short, work / "sysconfig", tools.python)
        facts = web_target_facts(record, read_sysconfig_vars(sysdata))
        with log.step(f"Resolve {asked} for {facts['platform']} (CPython {version}, the web artifact: pure-Python "
                      f"wheels only; log: {logf})"):
            resolution = resolve(tools, facts, requirements, requirement_files, index, sysconfig_data=sysdata,
                                 require_hashes=install_options.require_hashes, log_file=logf,
                                 prefer_binary=install_options.prefer_binary)
        resolution.report()
        env = pure_build_env(work / "pure", facts, record["source_date_epoch"])
        wheels = [web_wheel(pin, fetch_dist(pin, cache_root), tools=tools, env=env, cache_root=cache_root,
                            index=index, logs=logs, work=work, options=install_options)
                  for pin in resolution.pins]
        tree = Path(tmp) / name
        shutil.copytree(root, tree, symlinks=True)
        for path in (tree, *tree.rglob("*")):  # the unpacked cache copy is read-only
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o200)
        (tree / WEB_WHEELS).mkdir()
        for w in wheels:
            shutil.copyfile(w.path, tree / WEB_WHEELS / w.path.name)
        write_json(tree / MANIFEST_PATH, wheels_manifest(wheels))
        extra = record["artifact"]
        extra["packages"] = [{**w.record(), **metadata_license(wheel_metadata(w.path)), "extension_modules": []}
                             for w in wheels]
        extra["packages_index"] = index.record()
        if resolution.ignored:
            extra["packages_left_out"] = resolution.ignored
        extra[WEB_WHEELS] = {"manifest": MANIFEST_PATH, "sha256": cache.sha256_file(tree / MANIFEST_PATH),
                             "installed": "by loadPython (the JavaScript API) when it starts the interpreter"}
        write_json(tree / RECORD_NAME, record)
        shutil.rmtree(work)
        place_output(tree, out, Path(tmp), record, options.root)
    log.info(f"  {out}: {', '.join(f'{w.pin.name} {w.pin.version}' for w in wheels)} in {WEB_WHEELS}/, installed by "
             f"loadPython at start-up")
    return out


def describe_web(out: Path) -> str:
    """How to use a web artifact with packages."""
    shown = json.dumps(str(out))
    return (f"serve it: python -m wasmbuild serve --artifact {shown} (or python -m wasmbuild npm-pack {shown}); "
            f"loadPython() installs its wheels")
