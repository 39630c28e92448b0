"""Emscripten: emsdk's release archive, or the same versions assembled from pinned Debian packages.

Both routes give one layout in the toolchain's cache entry, and one generated EM_CONFIG:

    emscripten/            emcc & co, patched (the manifest's patches), with a writable cache/ (CACHE)
    llvm/bin -> ...        clang, wasm-ld, llvm-ar ... (LLVM_ROOT)
    binaryen/bin/          wasm-opt, wasm-emscripten-finalize ... (BINARYEN_ROOT)
    emscripten-config.py   EM_CONFIG (NODE_JS is the node chosen for this run, rewritten when it changes)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from wasmbuild import cache, log
from wasmbuild.build import apply_patches, patch_records
from wasmbuild.debian import extract_deb
from wasmbuild.download import DownloadError, Sources
from wasmbuild.errors import ChecksumError, ToolchainError, UsageError
from wasmbuild.recipe import ReleaseAsset, ToolchainManifest
from wasmbuild.toolchain import ROUTES, Toolchain, host_platform, install_debian, install_release, release_asset

# Bump when the code that arranges a provisioned toolchain changes, so cached ones are rebuilt.
LAYOUT_VERSION = 1
CONFIG_NAME = "emscripten-config.py"
# Oldest node that runs emcc 3.1.69 and the built python.js (the manifest may ask for more).
NODE_MINIMUM = 18
BINARYEN_TOOLS = ("wasm-opt", "wasm-emscripten-finalize", "wasm-metadce", "wasm-split", "wasm-ctor-eval",
                  "wasm-as", "wasm-dis", "wasm-merge", "wasm2js")
REQUIRED = ("emscripten/emcc.py", "emscripten/src/library_syscall.js", "llvm/bin/clang", "llvm/bin/wasm-ld",
            "binaryen/bin/wasm-opt")
# Runs a trixie binary (binaryen 120 needs glibc >= 2.38) with trixie's own loader and libraries, extracted
# privately: the host's libc is neither replaced nor used.
LOADER_WRAPPER = """#!/bin/sh
# wasmbuild: run {name} with the loader and libraries of the Debian release it was built for.
root=$(cd "$(dirname "$0")/../../debian-root" && pwd)
exec "$root/{loader}" --library-path "{libpath}" "$root/usr/bin/{name}" "$@"
"""
# A program that checks the toolchain end to end, including the NODERAWFS stdio fixes (patches).
SANITY_C = r"""
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <termios.h>
int main(void) {
    struct stat st;
    struct termios t;
    if (fstat(1, &st) != 0) { perror("fstat(1)"); return 2; }
    tcgetattr(0, &t);  /* ioctl(TCGETS) on stdio: must not throw */
    printf("ok %d\n", isatty(1));
    return 0;
}
"""


@dataclass(frozen=True)
class Node:
    path: Path
    version: str


def _node_version(node: str) -> str:
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"cannot run node at {node}: {exc}") from None
    if out.returncode != 0:
        raise ToolchainError(f"cannot run node at {node} (exit {out.returncode}): {out.stderr.strip()[-500:]}")
    return out.stdout.strip().lstrip("v")


def find_node(minimum: int, explicit: str | None = None, cache_root: Path | None = None,
              sources: Sources | None = None) -> Node:
    """The node to use: `explicit` (--node / WASMBUILD_NODE), else the one on PATH if at least `minimum`, else the
    pinned node of toolchains/host-tools.yaml, provisioned into the cache (and put first on this process's PATH,
    so emcc, python.sh and the test-suite workers find the same node)."""
    explicit = explicit or os.environ.get("WASMBUILD_NODE")
    hint = (f"install node >= {minimum} or name one with --node / WASMBUILD_NODE (with neither, wasmbuild "
            "provisions its pinned node)")
    if explicit:
        path = Path(shutil.which(explicit) or explicit).resolve()
        if not path.is_file():
            raise ToolchainError(f"node not found at {explicit}", hint=hint)
        return _checked_node(path, minimum, hint)
    found = shutil.which("node") or shutil.which("nodejs")
    if found:
        path = Path(found).resolve()
        version = _node_version(str(path))
        if _new_enough(version, minimum):
            return Node(path, version)
        log.info(f"  node {version} at {path} is older than {minimum}: using the pinned node instead")
    return _provisioned_node(minimum, cache_root, sources, hint)


def _new_enough(version: str, minimum: int) -> bool:
    match = re.match(r"(\d+)\.", version)
    return bool(match) and int(match.group(1)) >= minimum


def _checked_node(path: Path, minimum: int, hint: str) -> Node:
    version = _node_version(str(path))
    if not _new_enough(version, minimum):
        raise ToolchainError(f"node {version or '?'} at {path} is too old (need >= {minimum})", hint=hint)
    return Node(path, version)


def _provisioned_node(minimum: int, cache_root: Path | None, sources: Sources | None, hint: str) -> Node:
    """The pinned node; `sources` are the command's (else, for `run` and the smoke test, the environment's)."""
    from wasmbuild import debian, hosttools
    from wasmbuild.recipe import project_root

    if sources is None:
        mirror_dir = os.environ.get("WASMBUILD_MIRROR_DIR")
        sources = Sources(mirror_dir=Path(mirror_dir) if mirror_dir else None,
                          debian_mirror=debian.resolve_mirror(None))
    (tool,) = hosttools.ensure(["node"], project_root(), cache_root or cache.default_cache_dir(), sources)
    os.environ["PATH"] = hosttools.path_with([tool])
    return _checked_node(tool.path("node"), minimum, hint)


def em_config_text(root: Path, node: Path) -> str:
    """The EM_CONFIG for a toolchain laid out at `root` (see the module docstring)."""
    lines = [
        "# Generated by wasmbuild for this toolchain; rewritten on each use.",
        f"LLVM_ROOT = {str(root / 'llvm' / 'bin')!r}",
        f"BINARYEN_ROOT = {str(root / 'binaryen')!r}",
        f"NODE_JS = {str(node)!r}",
        f"CACHE = {str(root / 'emscripten' / 'cache')!r}",
        "FROZEN_CACHE = False",
        "",
    ]
    return "\n".join(lines)


def write_em_config(root: Path, node: Path) -> Path:
    path = root / CONFIG_NAME
    text = em_config_text(root, node)
    if not path.is_file() or path.read_text() != text:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(text)
        tmp.replace(path)
    return path


def tool_env(root: Path) -> dict[str, str]:
    """Environment for running emcc/emconfigure/emmake from this toolchain."""
    return {
        "EM_CONFIG": str(root / CONFIG_NAME),
        "EMSDK_PYTHON": os.environ.get("EMSDK_PYTHON", shutil.which("python3") or "python3"),
        "PATH": f"{root / 'emscripten'}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def check_layout(path: Path, label: str) -> None:
    missing = [p for p in REQUIRED if not (path / p).exists()]
    if missing:
        raise ToolchainError(
            f"{label} at {path} is not an Emscripten toolchain: missing {', '.join(missing)}",
            hint="remove that cache folder and run again, or use --toolchain-route",
        )


def sanity_check(root: Path, node: Node) -> str:
    """Compile, link and run a small NODERAWFS program; return `emcc --version`'s first line."""
    env = {**os.environ, **tool_env(root)}
    emcc = root / "emscripten" / "emcc"
    try:
        version = subprocess.run([emcc, "--version"], capture_output=True, text=True, env=env, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise ToolchainError(f"{emcc} does not run: {detail.strip()}",
                             hint="remove that cache folder and run again, or use --toolchain-route") from None
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.c"
        src.write_text(SANITY_C)
        out = Path(tmp) / "t.js"
        proc = subprocess.run([emcc, "-O1", "-sNODERAWFS", src, "-o", out], capture_output=True, text=True,
                              env=env, cwd=tmp)
        if proc.returncode != 0 or not out.exists():
            raise ToolchainError(
                f"the Emscripten toolchain at {root} cannot compile a test program:\n"
                + (proc.stderr or proc.stdout).strip()[-3000:],
                hint="remove that cache folder and run again, or use --toolchain-route",
            )
        ran = subprocess.run([node.path, out], capture_output=True, text=True, cwd=tmp,
                             stdin=subprocess.DEVNULL)
        if ran.returncode != 0 or not ran.stdout.startswith("ok"):
            raise ToolchainError(
                f"a NODERAWFS test program built by {root} fails under node {node.version} "
                f"(exit {ran.returncode}):\n{(ran.stdout + ran.stderr).strip()[-2000:]}",
                hint="the toolchain patches (patches/emscripten-*) are missing or do not fix stdio",
            )
    return version.splitlines()[0] if version else "unknown"


def _entry(manifest: ToolchainManifest, cache_root: Path, route: str, inputs: object) -> tuple[Path, str]:
    key = cache.hash_key({"layout": LAYOUT_VERSION, "inputs": inputs, "patches": patch_records(manifest.patches)})
    return cache_root / "toolchains" / f"{manifest.name}-{manifest.version}-{route}-{key[:12]}", key


def _release_entry(manifest: ToolchainManifest, cache_root: Path, asset: ReleaseAsset) -> tuple[Path, str]:
    return _entry(manifest, cache_root, "release", asset.download.sha256)


def _debian_entry(manifest: ToolchainManifest, cache_root: Path) -> tuple[Path, str]:
    return _entry(manifest, cache_root, "debian", [p.__dict__ for p in manifest.debian_packages])


def _finish(manifest: ToolchainManifest, root: Path, node: Node) -> str:
    """Patch emscripten, write EM_CONFIG, check the result; return the compiler's version line."""
    apply_patches(root / "emscripten", manifest.patches, f"Emscripten {manifest.version}", manifest.file)
    (root / "emscripten" / "cache").mkdir(exist_ok=True)
    check_layout(root, "the provisioned toolchain")
    write_em_config(root, node.path)
    return sanity_check(root, node)


def _arrange_debian(root: Path) -> None:
    """Turn extracted Debian packages (root/debian-root/usr/...) into the layout above."""
    deb = root / "debian-root"
    shutil.move(deb / "usr" / "share" / "emscripten", root / "emscripten")
    llvm_dirs = sorted((deb / "usr" / "lib").glob("llvm-*"))
    if not llvm_dirs:
        raise ToolchainError("the Debian packages hold no usr/lib/llvm-*: wrong package list in the manifest")
    llvm = llvm_dirs[-1]
    major = llvm.name.split("-", 1)[1]
    # The binaries' RUNPATH is $ORIGIN/../lib, which lacks libLLVM: link it there.
    (llvm / "lib").mkdir(exist_ok=True)
    for lib in (deb / "usr" / "lib" / "x86_64-linux-gnu").glob("libLLVM*.so*"):
        link = llvm / "lib" / lib.name
        if not link.exists():
            link.symlink_to(os.path.relpath(lib, link.parent))
    # Debian's clang execs wasm-ld-<major>: give it one next to clang.
    if not (llvm / "bin" / f"wasm-ld-{major}").exists():
        (llvm / "bin" / f"wasm-ld-{major}").symlink_to("lld")
    (root / "llvm").symlink_to(os.path.relpath(llvm, root))
    # binaryen through trixie's loader and libraries.
    loaders = sorted((deb / "usr" / "lib" / "x86_64-linux-gnu").glob("ld-linux-x86-64.so.*"))
    if not loaders or not (deb / "usr" / "bin" / "wasm-opt").exists():
        raise ToolchainError("the Debian packages hold no binaryen or no loader: wrong package list in the manifest")
    loader = loaders[0].relative_to(deb).as_posix()
    libpath = ":".join(f"$root/{d}" for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"))
    bindir = root / "binaryen" / "bin"
    bindir.mkdir(parents=True)
    for name in BINARYEN_TOOLS:
        if (deb / "usr" / "bin" / name).exists():
            wrapper = bindir / name
            wrapper.write_text(LOADER_WRAPPER.format(name=name, loader=loader, libpath=libpath))
            wrapper.chmod(0o755)
    # emscripten's JS optimizer imports acorn.
    acorn = deb / "usr" / "share" / "nodejs" / "acorn"
    if not acorn.is_dir():
        raise ToolchainError("the Debian packages hold no acorn: wrong package list in the manifest")
    modules = root / "emscripten" / "node_modules"
    modules.mkdir(exist_ok=True)
    if not (modules / "acorn").exists():
        (modules / "acorn").symlink_to(os.path.relpath(acorn, modules))


def _arrange_release(root: Path) -> None:
    """emsdk's archive (install/ stripped): bin/ holds LLVM and binaryen, emscripten/ the compiler."""
    if not (root / "llvm").exists():
        (root / "llvm").mkdir()
        (root / "llvm" / "bin").symlink_to("../bin")
    if not (root / "binaryen").exists():
        (root / "binaryen").mkdir()
        (root / "binaryen" / "bin").symlink_to("../bin")


def _toolchain(manifest: ToolchainManifest, entry: Path, route: str, inputs: list, node: Node) -> Toolchain:
    write_em_config(entry, node.path)
    components = {**manifest.components, "node": node.version}
    return Toolchain(manifest.name, manifest.version, entry, route, components, inputs,
                     patches=patch_records(manifest.patches))


def provision_debian(manifest: ToolchainManifest, cache_root: Path, sources: Sources, node: Node) -> Toolchain:
    def install(root: Path, debs: list[Path]) -> None:
        for deb in debs:
            extract_deb(deb, root / "debian-root")
        _arrange_debian(root)
        version = _finish(manifest, root, node)
        log.info(f"  assembled Emscripten from {len(debs)} Debian packages: {version}")

    entry, inputs = install_debian(manifest, cache_root, sources, *_debian_entry(manifest, cache_root), install,
                                   hint="use the release route (--toolchain-route release)")
    return _toolchain(manifest, entry, "debian", inputs, node)


def provision_release(manifest: ToolchainManifest, cache_root: Path, sources: Sources, node: Node) -> Toolchain:
    def install(root: Path) -> None:
        _arrange_release(root)
        version = _finish(manifest, root, node)
        log.info(f"  installed Emscripten release: {version}")

    entry, inputs = install_release(manifest, cache_root, sources,
                                    lambda asset: _release_entry(manifest, cache_root, asset), install,
                                    hint="use the Debian route (--toolchain-route debian)")
    return _toolchain(manifest, entry, "release", inputs, node)


def provision(manifest: ToolchainManifest, cache_root: Path, sources: Sources, route: str = "auto",
              node_path: str | None = None) -> Toolchain:
    if route not in ROUTES:
        raise UsageError(f"unknown toolchain route '{route}'", hint=f"choose one of: {', '.join(ROUTES)}")
    if route == "path":
        raise UsageError("--toolchain-route path is for the WASI SDK; Emscripten uses release or debian")
    node = find_node(max(NODE_MINIMUM, manifest.node_minimum or 0), node_path, cache_root, sources)
    if route == "release":
        return provision_release(manifest, cache_root, sources, node)
    if route == "debian":
        return provision_debian(manifest, cache_root, sources, node)
    # auto: a toolchain already in the cache, else the upstream release where pinned and reachable, else Debian.
    asset = release_asset(manifest)
    if asset and cache.is_valid(*_release_entry(manifest, cache_root, asset)):
        return provision_release(manifest, cache_root, sources, node)
    if manifest.debian_platform == host_platform() and cache.is_valid(*_debian_entry(manifest, cache_root)):
        return provision_debian(manifest, cache_root, sources, node)
    errors = []
    if asset is None:
        pinned = ", ".join(a.platform for a in manifest.release) or "none"
        errors.append(f"release route: {manifest.file.name}: no pinned release of {manifest.name} {manifest.version} "
                      f"for {host_platform()} (pinned: {pinned})")
    elif sources.upstream or sources.mirror_dir:
        try:
            return provision_release(manifest, cache_root, sources, node)
        except ChecksumError:
            raise
        except (ToolchainError, DownloadError) as exc:
            errors.append(f"release route: {exc}")
            log.info("  release route unavailable; trying the Debian route")
    try:
        return provision_debian(manifest, cache_root, sources, node)
    except (ToolchainError, DownloadError) as exc:
        errors.append(f"debian route: {exc}")
    raise ToolchainError(
        f"could not provision {manifest.name} {manifest.version}:\n" + "\n".join(f"  - {e}" for e in errors),
        hint="give --mirror-dir (a folder holding the release archive) or --debian-mirror",
    )
