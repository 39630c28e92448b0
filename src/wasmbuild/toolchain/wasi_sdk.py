"""WASI SDK: the official release tarball, the same SDK assembled from pinned Debian packages, or a local one.

All routes give one layout: `bin/clang`, `bin/clang++`, `bin/clang-cpp`, `bin/wasm-ld`, `bin/llvm-ar`,
`bin/ranlib`, `bin/llvm-strip`, `share/wasi-sysroot/{include,lib}`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from wasmbuild import cache, log
from wasmbuild.download import Sources
from wasmbuild.errors import ToolchainError, UsageError
from wasmbuild.process import capture
from wasmbuild.recipe import ReleaseAsset, ToolchainManifest
from wasmbuild.toolchain import Toolchain, check_route, install_debian, install_release, provision_by_route
from wasmbuild.toolchain.debian import extract_deb

# Bump when the code that arranges a provisioned SDK changes, so cached SDKs are rebuilt.
LAYOUT_VERSION = 1
TARGET = "wasm32-wasip1"
REQUIRED = ("bin/clang", "bin/wasm-ld", "bin/llvm-ar", "bin/ranlib", "share/wasi-sysroot")
TOOL_LINKS = {
    "wasm-ld": "lld",
    "llvm-ar": "llvm-ar",
    "ranlib": "llvm-ranlib",
    "llvm-ranlib": "llvm-ranlib",
    "llvm-strip": "llvm-strip",
    "llvm-nm": "llvm-nm",
    "llvm-objdump": "llvm-objdump",
}
WRAPPER = """#!/bin/sh
# wasmbuild: Debian's clang defaults to the host target; this SDK's {name} targets WASI.
sdk=$(cd "$(dirname "$0")/.." && pwd)
exec "$sdk/{llvm}/bin/{name}" --target={target} --sysroot="$sdk/share/wasi-sysroot" "$@"
"""


def check_layout(path: Path, label: str, hint: str | None = None) -> None:
    missing = [p for p in REQUIRED if not (path / p).exists()]
    if missing:
        raise ToolchainError(
            f"{label} at {path} is not a WASI SDK: missing {', '.join(missing)}",
            hint=hint or "point WASI_SDK_PATH at an extracted wasi-sdk release (it has bin/clang and "
            "share/wasi-sysroot), or unset it to let wasmbuild provision one",
        )


def sanity_check(sdk: Path) -> str:
    """Compile and link a tiny program; return `clang --version`'s first line."""
    clang = sdk / "bin" / "clang"
    try:
        version = capture([clang, "--version"], check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        raise ToolchainError(f"{clang} does not run: {detail.strip()}", hint=_ldd_hint(sdk)) from None
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "t.c"
        src.write_text('#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n')
        proc = capture(
            [clang, f"--target={TARGET}", f"--sysroot={sdk / 'share' / 'wasi-sysroot'}", "-O2", src,
             "-o", Path(tmp) / "t.wasm"],
        )
        if proc.returncode != 0 or not (Path(tmp) / "t.wasm").exists():
            raise ToolchainError(
                f"the WASI SDK at {sdk} cannot compile a test program:\n{proc.stderr.strip()}",
                hint=_ldd_hint(sdk),
            )
    return version.splitlines()[0] if version else "unknown"


def _ldd_hint(sdk: Path) -> str:
    missing = set()
    for exe in (sdk / "bin").glob("*"):
        real = exe.resolve()
        if not real.is_file() or real.read_bytes()[:4] != b"\x7fELF":
            continue
        try:
            out = capture(["ldd", real]).stdout
        except OSError:
            continue
        missing |= {line.split()[0] for line in out.splitlines() if "not found" in line}
    if missing:
        return f"shared libraries not found: {', '.join(sorted(missing))}; install them with your package manager"
    return "remove the SDK's cache folder and try again, or use --toolchain-route"


def _arrange_debian(root: Path, sdk: Path, arch_triple: str) -> None:
    """Turn extracted Debian packages (root/usr/...) into a WASI-SDK-shaped folder."""
    llvm_dirs = sorted((root / "usr" / "lib").glob("llvm-*"))
    if not llvm_dirs:
        raise ToolchainError("the Debian packages hold no usr/lib/llvm-*: wrong package list in the manifest")
    llvm = llvm_dirs[-1]
    major = llvm.name.split("-", 1)[1]
    llvm_rel = llvm.relative_to(sdk).as_posix()
    # Pitfall: RUNPATH is $ORIGIN/../lib, which lacks libLLVM; link it there.
    for lib in (root / "usr" / "lib" / arch_triple).glob("libLLVM*.so*"):
        link = llvm / "lib" / lib.name
        if not link.exists():
            link.symlink_to(os.path.relpath(lib, link.parent))
    # Pitfall: Debian's clang execs wasm-ld-<major>; give it one next to clang.
    (llvm / "bin" / f"wasm-ld-{major}").symlink_to("lld")
    # Pitfall: clang looks for builtins in lib/<os>p1; Debian ships lib/wasi.
    for builtins in (llvm / "lib" / "clang").glob("*/lib"):
        if (builtins / "wasi").is_dir() and not (builtins / "wasip1").exists():
            (builtins / "wasip1").symlink_to("wasi")
    sysroot = sdk / "share" / "wasi-sysroot"
    for kind in ("include", "lib", "share"):
        (sysroot / kind).mkdir(parents=True, exist_ok=True)
        for entry in sorted((root / "usr" / kind).glob("wasm32-wasi*")):
            entry.rename(sysroot / kind / entry.name)
    if not (sysroot / "lib" / "wasm32-wasi" / "libc.a").exists():
        raise ToolchainError("the Debian packages hold no wasm32-wasi libc.a: wrong package list in the manifest")
    bindir = sdk / "bin"
    bindir.mkdir()
    for name in ("clang", "clang++", "clang-cpp"):
        wrapper = bindir / name
        wrapper.write_text(WRAPPER.format(name=name, llvm=llvm_rel, target=TARGET))
        wrapper.chmod(0o755)
    for name, real in TOOL_LINKS.items():
        (bindir / name).symlink_to(os.path.relpath(llvm / "bin" / real, bindir))


def _debian_entry(manifest: ToolchainManifest, cache_root: Path) -> tuple[Path, str]:
    key = cache.hash_key({"layout": LAYOUT_VERSION, "packages": [p.__dict__ for p in manifest.debian_packages]})
    return cache_root / "toolchains" / f"{manifest.name}-{manifest.version}-debian-{key[:12]}", key


def _release_entry(manifest: ToolchainManifest, cache_root: Path, asset: ReleaseAsset) -> tuple[Path, str]:
    key = cache.hash_key({"layout": LAYOUT_VERSION, "sha256": asset.download.sha256})
    return cache_root / "toolchains" / f"{manifest.name}-{manifest.version}-release-{key[:12]}", key


def provision_debian(manifest: ToolchainManifest, cache_root: Path, sources: Sources) -> Toolchain:
    arch_triple = {"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[manifest.debian_arch or "amd64"]

    def install(sdk: Path, debs: list[Path]) -> None:
        root = sdk / "debian-root"
        for deb in debs:
            extract_deb(deb, root)
        _arrange_debian(root, sdk, arch_triple)
        clang = sanity_check(sdk)
        log.info(f"  assembled WASI SDK from {len(debs)} Debian packages: {clang}")

    entry, inputs = install_debian(manifest, cache_root, sources, *_debian_entry(manifest, cache_root), install,
                                   hint="use the release route or set WASI_SDK_PATH")
    return Toolchain(manifest.name, manifest.version, entry, "debian", manifest.components, inputs)


def provision_release(manifest: ToolchainManifest, cache_root: Path, sources: Sources) -> Toolchain:
    def install(sdk: Path) -> None:
        check_layout(sdk, "the release archive", hint="the pinned archive does not have the expected layout: check "
                     "strip_components and the release entry in toolchains/wasi-sdk.yaml")
        clang = sanity_check(sdk)
        log.info(f"  installed WASI SDK release: {clang}")

    entry, inputs = install_release(manifest, cache_root, sources,
                                    lambda asset: _release_entry(manifest, cache_root, asset), install,
                                    hint="use the Debian route (--toolchain-route debian) or set WASI_SDK_PATH")
    return Toolchain(manifest.name, manifest.version, entry, "release", manifest.components, inputs)


def provision_path(manifest: ToolchainManifest, path: Path) -> Toolchain:
    path = path.expanduser().resolve()
    check_layout(path, "WASI_SDK_PATH")
    clang = sanity_check(path)
    return Toolchain(
        manifest.name, f"local ({clang})", path, "path", {},
        [{"name": "WASI_SDK_PATH", "path": str(path), "clang": clang, "route": "path"}],
    )


def provision(manifest: ToolchainManifest, cache_root: Path, sources: Sources, route: str = "auto",
              sdk_path: Path | None = None) -> Toolchain:
    """The WASI SDK by `route` (toolchain.provision_by_route); `path` and, under `auto`, a given SDK path
    (--wasi-sdk-path, WASI_SDK_PATH) come first."""
    check_route(route)
    sdk_path = sdk_path or (Path(os.environ["WASI_SDK_PATH"]) if os.environ.get("WASI_SDK_PATH") else None)
    if route == "path" or (route == "auto" and sdk_path):
        if not sdk_path:
            raise UsageError("--toolchain-route path needs WASI_SDK_PATH or --wasi-sdk-path")
        return provision_path(manifest, sdk_path)
    return provision_by_route(
        manifest, route, sources,
        release=lambda: provision_release(manifest, cache_root, sources),
        debian=lambda: provision_debian(manifest, cache_root, sources),
        release_entry=lambda asset: _release_entry(manifest, cache_root, asset),
        debian_entry=lambda: _debian_entry(manifest, cache_root),
        hint="set WASI_SDK_PATH to an installed WASI SDK, or give --mirror-dir / --debian-mirror",
    )
