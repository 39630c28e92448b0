"""`wasmbuild install`: an artifact plus packages from an index -> a new artifact with them in its site-packages.

    resolve   pip's resolver, answering for the artifact's interpreter (resolve.py): its version and tags, markers
              evaluated for its platform; --hash / --require-hashes honoured
    fetch     every file pip chose, verified by the sha256 the index (or the requirement's --hash) gave
    wheels    pure wheels as they are; sdists built for the target in its cross-build environment (wheels.py,
              cross.py), cached by the sdist's sha256
    install   PyPA's installer unpacks each wheel into lib/pythonX.Y/site-packages/ (INSTALLER: wasmbuild); the
              .pyc are compiled as the standard library's (unchecked-hash)
    link      WASI: the extension modules the wheels carry (relocatable objects) are linked into a new python.wasm
              as built-in modules under their dotted names (Target.link_modules) and leave site-packages;
              Emscripten: side modules stay at their package path, loaded with dlopen
    record    BUILD.json's artifact.packages (name, version, file, sha256, url, how a wheel was built) and
              linked_modules; the output is written beside its place and renamed there

The output is a directory or a deterministic .tar.gz (the archive gets its CycloneDX SBOM beside it, every package a
pkg:pypi component). The same artifact, requirements and index give the same bytes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wasmbuild import cache, log, pipeline
from wasmbuild.errors import BuildError, UsageError
from wasmbuild.files import write_json
from wasmbuild.kit import Module, sysconfig_module
from wasmbuild.link import (
    add_dotted_builtins_finder,
    check_imports,
    linked_entries,
    plan_modules,
    prepare,
    prepare_output,
    refresh_objects,
    relink_modules,
    staging_dir,
    working_copy,
)
from wasmbuild.packages.cross import make_cross_env
from wasmbuild.packages.output import place_output
from wasmbuild.packages.resolve import resolve, target_facts, wheel_tag_platform
from wasmbuild.packages.tools import Index, ToolEnv, configured_index, tool_env
from wasmbuild.packages.web_install import install_web, is_web_artifact
from wasmbuild.packages.wheels import (
    BUILD_TIMEOUT,
    Wheel,
    build_wheel,
    check_wheel_platform,
    fetch_dist,
    metadata_headers,
    metadata_license,
    wheel_metadata,
)
from wasmbuild.process import capture
from wasmbuild.recipe import select_recipe
from wasmbuild.record import RECORD_NAME
from wasmbuild.staging import compile_bytecode
from wasmbuild.steps import BuildOptions

MAX_DIST_SIZE = 1 << 30  # bytes: the largest wheel or sdist fetched
# PyPA installer, in the tool venv: every scheme path of a wheel into site-packages except scripts, headers and
# data, which an artifact has no place for (they go to a directory that is reported and dropped).
INSTALL_CODE = """import json, sys
from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile
args = json.loads(sys.argv[1])
dest = SchemeDictionaryDestination(args["scheme"], interpreter="/usr/bin/env python3", script_kind="posix",
                                   bytecode_optimization_levels=())
for wheel in args["wheels"]:
    with WheelFile.open(wheel) as source:
        install(source=source, destination=dest, additional_metadata={"INSTALLER": b"wasmbuild\\n"})
"""


@dataclass(frozen=True)
class InstallOptions:
    """What `wasmbuild install` was asked beyond the packages: the index, hash checking, what it may accept."""

    index: Index | None = None  # None: pip's configured index-url, else pip's default
    require_hashes: bool = False
    allow_pure_fallback: bool = False
    prefer_binary: bool = False  # pip's --prefer-binary: an older release with a wheel over a newer sdist
    build_timeout: float = BUILD_TIMEOUT


def _install_wheels(tools: ToolEnv, wheels: list[Wheel], site: Path, dropped: Path, logf: Path) -> None:
    scheme = {"purelib": str(site), "platlib": str(site), "scripts": str(dropped / "scripts"),
              "headers": str(dropped / "headers"), "data": str(dropped / "data")}
    proc = capture([str(tools.python), "-I", "-c", INSTALL_CODE,
                    json.dumps({"scheme": scheme, "wheels": [str(w.path) for w in wheels]})])
    with open(logf, "a") as f:
        f.write(f"\n# installer: {', '.join(w.path.name for w in wheels)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        raise BuildError(f"installing the wheels failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}",
                         hint=f"see {logf}")


def _extension_modules(site: Path, ext_suffix: str) -> dict[str, Path]:
    """The extension modules installed in site-packages: dotted name -> file."""
    found = {}
    for path in sorted(site.rglob(f"*{ext_suffix}")):
        rel = path.relative_to(site)
        found[".".join((*rel.parts[:-1], path.name[: -len(ext_suffix)]))] = path
    return found


def _drop_from_record(site: Path, files: list[Path]) -> None:
    """Remove `files` (moved out of site-packages) and everything installed outside site-packages (the scripts,
    headers and data left out) from the distributions' RECORD files."""
    gone = {str(f.relative_to(site)) for f in files}
    for record in site.glob("*.dist-info/RECORD"):
        lines = record.read_text().splitlines(keepends=True)
        kept = [line for line in lines
                if line.split(",", 1)[0] not in gone and not line.split(",", 1)[0].startswith("../")]
        if kept != lines:
            record.write_text("".join(kept))


def install(artifact: Path, requirements: list[str], requirement_files: list[Path], out: Path, *,
            options: BuildOptions, install_options: InstallOptions = InstallOptions(),
            dev: Path | None = None) -> Path:
    """Install the requirements into a copy of `artifact` (archive or directory) at `out` (directory or .tar.gz)."""
    out = out.expanduser().resolve()
    if not requirements and not requirement_files:
        raise UsageError("nothing to install", hint="name packages (wasmbuild install ART attrs jinja2) or -r FILE")
    prepare_output(out)
    cache_root = options.cache
    if is_web_artifact(artifact, cache_root):  # no kit, runs only in a JS host: pure wheels (web_install.py)
        return install_web(artifact, requirements, requirement_files, out, options=options,
                           install_options=install_options)
    prep = prepare(artifact, options=options, dev=dev, needs_dev=lambda t: t.link_needs_dev,
                   what="installing packages")
    record, short, target = prep.record, prep.short, prep.target
    if record["artifact"].get("packages") and target.link_needs_dev:
        raise UsageError(f"{artifact} already has packages installed ({len(record['artifact']['packages'])}); "
                         f"on {target.name} their extension modules are part of its python.wasm",
                         hint="install all packages in one call into the original artifact")
    index = install_options.index or Index(url=configured_index())
    ctx = options.context(select_recipe(options.root, short), target.name)
    with cache.lock(ctx.cache, wait=True):
        src = pipeline.prepare_source(ctx)
        bp = pipeline.build_python(ctx, src)
        tools = tool_env(options.root, bp, cache_root, index)
    logs = cache_root / "logs" / "install"
    logs.mkdir(parents=True, exist_ok=True)
    logf = logs / f"install-{record['python']['version']}-{record['target']['triple']}.log"
    logf.write_text(f"# wasmbuild install into {artifact}: {' '.join(requirements)}\n")
    facts = target_facts(prep.root, cache_root)
    platform_tag = wheel_tag_platform(facts)
    with log.step(f"Resolve {' '.join([*requirements, *(f'-r {f}' for f in requirement_files)])} for "
                  f"{facts['platform']} (CPython {facts['python']}; log: {logf})"):
        resolution = resolve(tools, facts, requirements, requirement_files, index,
                             sysconfig_data=sysconfig_module(prep.root / "lib" / f"python{short}"),
                             require_hashes=install_options.require_hashes, log_file=logf,
                             prefer_binary=install_options.prefer_binary)
    resolution.report()
    name = prep.root.name
    with staging_dir(out) as tmp:
        work = Path(tmp) / "work"
        cross = make_cross_env(work / "cross", tree=prep.root, short=short,
                               tools=target.extension_tools(prep.toolchain, record["target"]["triple"]),
                               toolchain=prep.toolchain, tool_env=tools, drop=[bp.python.parent, src.path],
                               platform=facts["platform"], source_date_epoch=record["source_date_epoch"])
        wheels = []
        for pin in resolution.pins:
            dist = fetch_dist(pin, cache_root)
            if pin.is_wheel:
                check_wheel_platform(dist, platform_tag, pin)
                wheels.append(Wheel(dist, pin, None))
            else:
                wheels.append(build_wheel(pin, dist, tools=tools, cross=cross, cache_root=cache_root, index=index,
                                          logs=logs, allow_pure_fallback=install_options.allow_pure_fallback,
                                          timeout=install_options.build_timeout))
        tree = working_copy(prep, Path(tmp) / name)
        site = tree / "lib" / f"python{short}" / "site-packages"
        site.mkdir(parents=True, exist_ok=True)
        dropped = work / "dropped"
        with log.step(f"Install {len(wheels)} wheels into {name}"):
            _install_wheels(tools, wheels, site, dropped, logf)
        left_out = sorted(str(p.relative_to(dropped)) for p in dropped.rglob("*") if p.is_file()) \
            if dropped.is_dir() else []
        if left_out:
            log.info(f"  left out (an artifact has no place for scripts, headers or data files): "
                     f"{', '.join(left_out[:5])}{' ...' if len(left_out) > 5 else ''}")
        _drop_from_record(site, [])
        extensions = _extension_modules(site, cross.ext_suffix)
        linked: list[dict[str, Any]] = []
        if extensions and cross.linked_into_interpreter:
            objects = work / "objects"
            objects.mkdir()
            modules = []
            for dotted, path in extensions.items():
                obj = objects / f"{dotted}.o"
                shutil.move(path, obj)
                modules.append(Module(dotted, (), (obj,)))
            _drop_from_record(site, list(extensions.values()))
            kept = plan_modules(artifact, modules, record, prep.root, short, target)
            link_work = work / "link"
            link_work.mkdir()
            relink = relink_modules(kept, tree, link_work, target)
            with log.step(f"Link {', '.join(sorted(extensions))} into python.wasm (log: {logf})"):
                files = target.link_modules(prep.toolchain, tree, [*modules, *relink], link_work, logf, short,
                                            record["target"]["triple"])
            linked = linked_entries(modules, files, tree, short, package=True)
            add_dotted_builtins_finder(tree, short, list(files))
            record["artifact"]["linked_modules"] = refresh_objects(kept, tree)
        elif extensions:
            linked = [{"name": dotted, "package": True, "file": str(path.relative_to(tree))}
                      for dotted, path in extensions.items()]
        proc = compile_bytecode(bp.python, tree, site, jobs=ctx.jobs, source_date_epoch=record["source_date_epoch"])
        if proc.returncode != 0:
            failed = [line for line in proc.stdout.splitlines() if line.startswith("*** Error compiling")]
            log.warn(f"{len(failed)} files of the packages do not compile for CPython {short}; left as source")
        extra = record["artifact"]
        extra["packages"] = [{**w.record(), **metadata_license(wheel_metadata(w.path)), "extension_modules": sorted(
            d for d in extensions if d.split(".")[0] in _top_levels(site, w))} for w in wheels]
        extra["packages_index"] = index.record()
        if resolution.ignored:
            extra["packages_left_out"] = resolution.ignored
        if linked:
            extra["linked_modules"] = [*(extra.get("linked_modules") or []), *linked]
        if any(e["file"] == "python.wasm" for e in linked):
            extra["python.wasm"] = {**extra["python.wasm"], "sha256": cache.sha256_file(tree / "python.wasm"),
                                    "size": (tree / "python.wasm").stat().st_size}
            extra["debuginfo"] = None
        if prep.dev:
            extra["dev"] = None
        write_json(tree / RECORD_NAME, record)
        shutil.rmtree(work)
        if extensions:
            check_imports(tree, sorted(extensions), cache_root, logf)
        place_output(tree, out, Path(tmp), record, options.root)
    log.info(f"  {out}: {', '.join(f'{w.pin.name} {w.pin.version}' for w in wheels)}")
    return out


def _top_levels(site: Path, wheel: Wheel) -> set[str]:
    """The top-level names a wheel installed (the first parts of its RECORD's paths)."""
    name = wheel.pin.name.lower().replace("_", "-")
    for dist_info in sorted(site.glob("*.dist-info")):
        meta, record = dist_info / "METADATA", dist_info / "RECORD"
        names = metadata_headers(meta.read_text(errors="replace")).get("name", []) if meta.is_file() else []
        if name not in {n.lower().replace("_", "-") for n in names}:
            continue
        tops = set()
        for line in (record.read_text().splitlines() if record.is_file() else []):
            first = line.split(",", 1)[0].split("/", 1)[0]
            if first and not first.endswith((".dist-info", ".data")):
                tops.add(first.removesuffix(".py"))
        return tops
    return set()


def describe(out: Path) -> str:
    shown = json.dumps(str(out))
    return f"run it: python -m wasmbuild run {shown} -- -c 'import ...'"
