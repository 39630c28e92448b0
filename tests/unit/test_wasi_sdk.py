"""WASI SDK provisioning with fake SDKs: release tarball from a local server, Debian packages, WASI_SDK_PATH.

sanity_check (which runs clang) is replaced by a stub: no compiler ever runs here.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

from wasmbuild import cache
from wasmbuild.archive import safe_extract
from wasmbuild.download import Sources
from wasmbuild.errors import ChecksumError, ToolchainError, UsageError
from wasmbuild.recipe import load_toolchain
from wasmbuild.toolchain import wasi_sdk

TARBALL = "wasi-sdk-25.0-x86_64-linux.tar.gz"
TOP = "wasi-sdk-25.0-x86_64-linux"
FAKE_CLANG = "clang version 19.1.5-wasi-sdk (fake)"
FAKE_EXE = b"#!/bin/sh\necho fake\n"

SDK_TREE = [
    ("dir", TOP),
    ("dir", f"{TOP}/bin"),
    ("file", f"{TOP}/bin/clang-19", FAKE_EXE, 0o755),
    ("symlink", f"{TOP}/bin/clang", "clang-19"),
    ("symlink", f"{TOP}/bin/clang++", "clang-19"),
    ("file", f"{TOP}/bin/wasm-ld", FAKE_EXE, 0o755),
    ("file", f"{TOP}/bin/llvm-ar", FAKE_EXE, 0o755),
    ("symlink", f"{TOP}/bin/ranlib", "llvm-ar"),
    ("file", f"{TOP}/share/wasi-sysroot/include/wasm32-wasip1/stdio.h", b"/* stdio */\n"),
    ("file", f"{TOP}/share/wasi-sysroot/lib/wasm32-wasip1/libc.a", b"!<arch>\n"),
]
NO_SYSROOT_TREE = [e for e in SDK_TREE if "wasi-sysroot" not in e[1]]

LLVM_DEB_TREE = [
    *[("file", f"./usr/lib/llvm-19/bin/{tool}", FAKE_EXE, 0o755)
      for tool in ("clang", "lld", "llvm-ar", "llvm-ranlib", "llvm-strip", "llvm-nm", "llvm-objdump")],
    ("file", "./usr/lib/llvm-19/lib/clang/19/lib/wasi/libclang_rt.builtins-wasm32.a", b"!<arch>\n"),
    ("file", "./usr/lib/x86_64-linux-gnu/libLLVM.so.19.1", b"\x7fELF fake"),
]
LIBC_DEB_TREE = [
    ("file", "./usr/include/wasm32-wasi/stdio.h", b"/* stdio */\n"),
    ("file", "./usr/lib/wasm32-wasi/libc.a", b"!<arch>\n"),
    ("symlink", "./usr/lib/wasm32-wasip1", "wasm32-wasi"),
    ("file", "./usr/share/wasm32-wasi/defined-symbols.txt", b"puts\n"),
]


@pytest.fixture(autouse=True)
def no_compiler(monkeypatch):
    """Pretend to be linux-x86_64 and stub the compiler check; record which SDKs were checked."""
    calls: list[Path] = []

    def fake_sanity_check(sdk: Path) -> str:
        calls.append(sdk)
        return FAKE_CLANG

    monkeypatch.setattr(wasi_sdk, "sanity_check", fake_sanity_check)
    for where in ("wasmbuild.toolchain",):
        monkeypatch.setattr(f"{where}.host_platform", lambda: "linux-x86_64")
    return calls


@pytest.fixture
def cache_root(tmp_path):
    return tmp_path / "cache"


def write_manifest(tmp_path: Path, *, release: tuple[str, bytes] | None = None,
                   debs: list[tuple[str, bytes]] = ()) -> Path:
    routes: dict = {}
    if release:
        url, data = release
        routes["release"] = [{"platform": "linux-x86_64", "url": url,
                              "sha256": hashlib.sha256(data).hexdigest(), "max_size": 1 << 20, "strip_components": 1}]
    routes["debian"] = {
        "platform": "linux-x86_64",
        "arch": "amd64",
        "packages": [
            {"name": path.rsplit("/", 1)[-1].split("_")[0], "version": "1", "suite": "bookworm", "path": path,
             "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for path, data in (debs or [("pool/main/f/fake/fake_1_amd64.deb", b"unused")])
        ],
    }
    data = {"format": 1, "name": "wasi-sdk", "version": "25", "components": {"llvm": "19"}, "routes": routes}
    path = tmp_path / "toolchains" / "wasi-sdk.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def release(tmp_path, http_server, build_tar):
    """A manifest whose release asset is a fake SDK served by the local server."""
    data = build_tar(SDK_TREE, "gz")
    url = http_server.serve(f"/releases/{TARBALL}", data)
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, data)))
    return manifest, url, data


def toolchain_entries(cache_root: Path) -> list[str]:
    folder = cache_root / "toolchains"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# --- the release route -------------------------------------------------------------------------------------


def test_release_route_installs_into_the_cache(release, cache_root, http_server, no_compiler):
    manifest, url, data = release
    tc = wasi_sdk.provision(manifest, cache_root, Sources(), route="release")
    sha = hashlib.sha256(data).hexdigest()
    key = cache.hash_key({"layout": wasi_sdk.LAYOUT_VERSION, "sha256": sha})
    assert tc.path == cache_root / "toolchains" / f"wasi-sdk-25-release-{key[:12]}"
    assert (tc.route, tc.name, tc.version) == ("release", "wasi-sdk", "25")
    assert (tc.path / "bin" / "clang").resolve() == (tc.path / "bin" / "clang-19")
    assert (tc.path / "share" / "wasi-sysroot" / "lib" / "wasm32-wasip1" / "libc.a").is_file()
    assert not (tc.path / TOP).exists()  # strip_components: 1
    wasi_sdk.check_layout(tc.path, "test")
    assert tc.inputs == [{"name": TARBALL, "sha256": sha, "size": None, "url": url,
                          "fetch": {"route": "upstream", "url": url}}]
    record = tc.record()
    assert record["route"] == "release" and record["components"] == {"llvm": "19"}
    assert record["inputs"][0]["fetch"]["route"] == "upstream"
    stamp = cache.read_stamp(tc.path)
    assert stamp == {"key": key, "route": "release", "fetch_route": "upstream", "url": url}
    assert no_compiler == [tc.path]
    assert http_server.requests == [f"/releases/{TARBALL}"]


def test_second_call_reuses_the_cache_without_the_network(release, cache_root, http_server, no_compiler):
    manifest, url, _ = release
    first = wasi_sdk.provision(manifest, cache_root, Sources(), route="release")
    second = wasi_sdk.provision(manifest, cache_root, Sources(), route="release")
    assert second.path == first.path
    assert second.inputs == first.inputs
    assert second.inputs[0]["fetch"] == {"route": "upstream", "url": url} and second.inputs[0]["url"] == url
    assert http_server.hits(f"/releases/{TARBALL}") == 1
    assert no_compiler == [first.path]  # not checked again either


def test_invalid_cache_entry_is_rebuilt(release, cache_root, http_server, no_compiler):
    manifest, _, _ = release
    first = wasi_sdk.provision(manifest, cache_root, Sources(), route="release")
    (first.path / cache.STAMP_NAME).unlink()  # as after an interrupted run
    second = wasi_sdk.provision(manifest, cache_root, Sources(), route="release")
    assert second.path == first.path and cache.is_valid(second.path, cache.read_stamp(second.path)["key"])
    assert len(no_compiler) == 2
    assert http_server.hits(f"/releases/{TARBALL}") == 1  # the tarball itself comes from the download cache


def test_release_tarball_without_sysroot_fails_and_leaves_no_entry(tmp_path, http_server, build_tar,
                                                                    cache_root, no_compiler):
    data = build_tar(NO_SYSROOT_TREE, "gz")
    url = http_server.serve(f"/releases/{TARBALL}", data)
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, data)))
    with pytest.raises(ToolchainError, match=r"the release archive at \S+ is not a WASI SDK: missing "
                                             r"share/wasi-sysroot\n") as info:
        wasi_sdk.provision(manifest, cache_root, Sources(), route="release")
    # The user set no WASI_SDK_PATH: the hint is about the pinned archive, not about that variable.
    assert "hint: the pinned archive does not have the expected layout" in str(info.value)
    assert "WASI_SDK_PATH" not in str(info.value)
    assert toolchain_entries(cache_root) == []
    assert no_compiler == []


def test_failing_sanity_check_leaves_no_entry(release, cache_root, monkeypatch):
    manifest, _, _ = release

    def broken(sdk: Path) -> str:
        raise ToolchainError(f"{sdk}/bin/clang does not run: libxml2.so.2: cannot open shared object file")

    monkeypatch.setattr(wasi_sdk, "sanity_check", broken)
    with pytest.raises(ToolchainError, match="does not run: libxml2"):
        wasi_sdk.provision(manifest, cache_root, Sources(), route="release")
    assert toolchain_entries(cache_root) == []


def test_release_route_without_an_asset_for_this_host(release, cache_root, monkeypatch, http_server):
    manifest, _, _ = release
    for where in ("wasmbuild.toolchain",):
        monkeypatch.setattr(f"{where}.host_platform", lambda: "macos-arm64")
    with pytest.raises(ToolchainError, match=re.escape(
        "wasi-sdk.yaml: no pinned release of wasi-sdk 25 for macos-arm64 (pinned: linux-x86_64)"
    )):
        wasi_sdk.provision(manifest, cache_root, Sources(), route="release")
    assert http_server.requests == []


def test_release_route_uses_the_mirror_dir_when_upstream_is_off(release, cache_root, tmp_path, http_server):
    manifest, _, data = release
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / TARBALL).write_bytes(data)
    tc = wasi_sdk.provision(manifest, cache_root, Sources(mirror_dir=mirror, upstream=False), route="release")
    assert tc.inputs[0]["fetch"] == {"route": "mirror-dir", "url": (mirror / TARBALL).as_uri()}
    assert http_server.requests == []


# --- auto --------------------------------------------------------------------------------------------------


def test_auto_lists_both_routes_when_both_fail(tmp_path, http_server, cache_root):
    url = http_server.url(f"/releases/{TARBALL}")  # not served: 404
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, b"whatever")))
    with pytest.raises(ToolchainError) as info:
        wasi_sdk.provision(manifest, cache_root, Sources(), route="auto")
    message = str(info.value)
    assert message.startswith("could not provision wasi-sdk 25:\n")
    assert re.search(rf"\n  - release route: could not obtain {TARBALL} .*\n.*{re.escape(url)}: HTTP 404",
                     message)
    assert "\n  - debian route: the Debian route needs a Debian mirror and none is configured" in message
    assert "hint: set WASI_SDK_PATH" in message
    assert http_server.requests == [f"/releases/{TARBALL}"]
    assert toolchain_entries(cache_root) == []


def test_auto_does_not_fall_back_when_the_release_has_the_wrong_checksum(tmp_path, http_server, cache_root,
                                                                        build_tar):
    url = http_server.serve(f"/releases/{TARBALL}", build_tar(SDK_TREE, "gz"))
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, b"other bytes")))
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        wasi_sdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")),
                           route="auto")
    assert not [r for r in http_server.requests if r.startswith("/debian")]


def test_auto_offline_skips_the_release_route(release, cache_root, http_server, tmp_path):
    manifest, _, data = release
    with pytest.raises(ToolchainError) as info:
        wasi_sdk.provision(manifest, cache_root, Sources(upstream=False), route="auto")
    assert "release route" not in str(info.value)
    assert "\n  - debian route: the Debian route needs a Debian mirror" in str(info.value)
    # With a mirror directory the release route is possible again, without the network.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / TARBALL).write_bytes(data)
    tc = wasi_sdk.provision(manifest, cache_root, Sources(upstream=False, mirror_dir=mirror), route="auto")
    assert tc.route == "release" and tc.inputs[0]["fetch"]["route"] == "mirror-dir"
    assert http_server.requests == []


def test_auto_prefers_a_working_release(release, cache_root, http_server):
    manifest, _, _ = release
    tc = wasi_sdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")),
                            route="auto")
    assert tc.route == "release"
    assert not [r for r in http_server.requests if r.startswith("/debian")]


# --- WASI_SDK_PATH ---------------------------------------------------------------------------------------


def test_wasi_sdk_path_without_clang_is_a_clear_error(release, cache_root, tmp_path, monkeypatch,
                                                      http_server):
    manifest, _, _ = release
    empty = tmp_path / "not-an-sdk"
    (empty / "share" / "wasi-sysroot").mkdir(parents=True)
    monkeypatch.setenv("WASI_SDK_PATH", str(empty))
    with pytest.raises(ToolchainError, match=re.escape(
        f"WASI_SDK_PATH at {empty} is not a WASI SDK: missing bin/clang, bin/wasm-ld, bin/llvm-ar, bin/ranlib"
    )) as info:
        wasi_sdk.provision(manifest, cache_root, Sources(), route="auto")
    assert "share/wasi-sysroot" not in str(info.value).split("\n")[0]
    assert "hint: point WASI_SDK_PATH at an extracted wasi-sdk release" in str(info.value)
    assert http_server.requests == []  # a set WASI_SDK_PATH wins over downloading


def test_wasi_sdk_path_with_a_sdk_layout(tmp_path, cache_root, release, no_compiler, build_tar):
    manifest, _, _ = release
    sdk = tmp_path / "opt" / "wasi-sdk"
    with tarfile.open(fileobj=io.BytesIO(build_tar(SDK_TREE))) as tar:
        safe_extract(tar, tmp_path / "opt")
    (tmp_path / "opt" / TOP).rename(sdk)
    tc = wasi_sdk.provision(manifest, cache_root, Sources(), route="path", sdk_path=sdk)
    assert (tc.route, tc.path, tc.version) == ("path", sdk, f"local ({FAKE_CLANG})")
    assert tc.inputs == [{"name": "WASI_SDK_PATH", "path": str(sdk), "clang": FAKE_CLANG, "route": "path"}]
    assert no_compiler == [sdk]
    assert toolchain_entries(cache_root) == []


def test_route_errors(release, cache_root):
    manifest, _, _ = release
    with pytest.raises(UsageError, match="unknown toolchain route 'fast'") as info:
        wasi_sdk.provision(manifest, cache_root, Sources(), route="fast")
    assert "choose one of: auto, release, debian, path" in str(info.value)
    with pytest.raises(UsageError, match="--toolchain-route path needs WASI_SDK_PATH or --wasi-sdk-path"):
        wasi_sdk.provision(manifest, cache_root, Sources(), route="path")


# --- the Debian route -------------------------------------------------------------------------------------


@pytest.fixture
def debian_manifest(tmp_path, http_server, build_deb):
    debs = [
        ("pool/main/l/llvm-toolchain-19/fake-llvm-19_19.1.7_amd64.deb", build_deb(LLVM_DEB_TREE)),
        ("pool/main/w/wasi-libc/wasi-libc_0.0~git20241209.574b88d-2_all.deb", build_deb(LIBC_DEB_TREE)),
    ]
    for path, data in debs:
        http_server.serve(f"/debian/{path}", data)
    release_url = http_server.url(f"/releases/{TARBALL}")  # 404
    return load_toolchain(write_manifest(tmp_path, release=(release_url, b"x"), debs=debs)), debs


def test_debian_route_assembles_an_sdk(debian_manifest, cache_root, http_server, no_compiler):
    manifest, debs = debian_manifest
    tc = wasi_sdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")),
                            route="debian")
    assert tc.route == "debian"
    assert tc.path.name.startswith("wasi-sdk-25-debian-")
    wasi_sdk.check_layout(tc.path, "test")
    assert (tc.path / "share/wasi-sysroot/lib/wasm32-wasi/libc.a").is_file()
    assert [i["url"] for i in tc.inputs] == [f"debian:{path}" for path, _ in debs]
    assert [i["sha256"] for i in tc.inputs] == [hashlib.sha256(d).hexdigest() for _, d in debs]
    assert {i["route"] for i in tc.inputs} == {"debian"}
    assert no_compiler == [tc.path]
    assert cache.read_stamp(tc.path)["route"] == "debian"
    # Again: from the cache.
    before = list(http_server.requests)
    again = wasi_sdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")),
                               route="debian")
    assert again.path == tc.path and http_server.requests == before


def test_auto_falls_back_to_debian_when_the_release_is_missing(debian_manifest, cache_root, http_server):
    manifest, _ = debian_manifest
    tc = wasi_sdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")),
                            route="auto")
    assert tc.route == "debian"
    assert http_server.requests[0] == f"/releases/{TARBALL}"


def test_auto_reuses_a_cached_debian_sdk_before_trying_the_release(debian_manifest, cache_root, http_server,
                                                                   build_tar, no_compiler):
    manifest, _ = debian_manifest
    mirror = Sources(debian_mirror=http_server.url("/debian"))
    built = wasi_sdk.provision(manifest, cache_root, mirror, route="debian")
    # The release becomes reachable (and would be preferred on a cold cache), but the warm cache wins.
    http_server.serve(f"/releases/{TARBALL}", build_tar(SDK_TREE, "gz"))
    before = list(http_server.requests)
    tc = wasi_sdk.provision(manifest, cache_root, Sources(), route="auto")
    assert (tc.route, tc.path) == ("debian", built.path)
    assert http_server.requests == before
    assert no_compiler == [built.path]


def test_auto_reuses_a_cached_release_sdk_offline(release, cache_root, http_server):
    manifest, url, _ = release
    built = wasi_sdk.provision(manifest, cache_root, Sources(), route="release")
    tc = wasi_sdk.provision(manifest, cache_root, Sources(upstream=False), route="auto")
    assert (tc.route, tc.path) == ("release", built.path)
    assert tc.inputs[0]["fetch"]["route"] == "upstream" and tc.inputs[0]["url"] == url
    assert http_server.hits(f"/releases/{TARBALL}") == 1


def test_auto_ignores_an_unstamped_cache_entry(release, cache_root, http_server):
    manifest, _, _ = release
    built = wasi_sdk.provision(manifest, cache_root, Sources(), route="release")
    (built.path / cache.STAMP_NAME).unlink()
    with pytest.raises(ToolchainError, match="could not provision wasi-sdk 25"):
        wasi_sdk.provision(manifest, cache_root, Sources(upstream=False), route="auto")


def test_debian_route_on_another_host(debian_manifest, cache_root, http_server, monkeypatch):
    manifest, _ = debian_manifest
    for where in ("wasmbuild.toolchain",):
        monkeypatch.setattr(f"{where}.host_platform", lambda: "linux-arm64")
    with pytest.raises(ToolchainError, match=re.escape(
        "wasi-sdk.yaml: the Debian route serves linux-x86_64, this host is linux-arm64"
    )):
        wasi_sdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")),
                           route="debian")
    assert http_server.requests == []


# --- _arrange_debian ---------------------------------------------------------------------------------------


def make_debian_root(sdk: Path) -> Path:
    root = sdk / "debian-root"
    llvm = root / "usr/lib/llvm-19"
    (llvm / "bin").mkdir(parents=True)
    for tool in ("clang", "lld", "llvm-ar", "llvm-ranlib", "llvm-strip", "llvm-nm", "llvm-objdump"):
        exe = llvm / "bin" / tool
        # The fake clang prints its arguments, so the wrapper can be checked without a compiler.
        exe.write_text('#!/bin/sh\necho "$0" "$@"\n')
        exe.chmod(0o755)
    (llvm / "lib/clang/19/lib/wasi").mkdir(parents=True)
    (root / "usr/lib/x86_64-linux-gnu").mkdir(parents=True)
    (root / "usr/lib/x86_64-linux-gnu/libLLVM.so.19.1").write_bytes(b"\x7fELF")
    (root / "usr/include/wasm32-wasi").mkdir(parents=True)
    (root / "usr/include/wasm32-wasi/stdio.h").write_text("/* stdio */\n")
    (root / "usr/lib/wasm32-wasi").mkdir(parents=True)
    (root / "usr/lib/wasm32-wasi/libc.a").write_bytes(b"!<arch>\n")
    (root / "usr/lib/wasm32-wasip1").symlink_to("wasm32-wasi")
    return root


def test_arrange_debian_builds_the_sdk_layout(tmp_path):
    sdk = tmp_path / "sdk"
    root = make_debian_root(sdk)
    llvm = root / "usr/lib/llvm-19"
    wasi_sdk._arrange_debian(root, sdk, "x86_64-linux-gnu")
    wasi_sdk.check_layout(sdk, "test")

    # Wrappers for the compiler drivers.
    for name in ("clang", "clang++", "clang-cpp"):
        wrapper = sdk / "bin" / name
        assert wrapper.is_file() and not wrapper.is_symlink()
        assert os.access(wrapper, os.X_OK)
        text = wrapper.read_text()
        assert f'"$sdk/debian-root/usr/lib/llvm-19/bin/{name}" --target=wasm32-wasip1' in text
        assert '--sysroot="$sdk/share/wasi-sysroot"' in text
    # Tool links, relative, resolving into the LLVM tree.
    for name, real in wasi_sdk.TOOL_LINKS.items():
        link = sdk / "bin" / name
        assert link.is_symlink() and not os.path.isabs(os.readlink(link)), name
        assert link.resolve() == (llvm / "bin" / real).resolve(), name
    # Debian's clang execs wasm-ld-19; builtins under lib/wasip1; libLLVM next to the binaries' RUNPATH.
    assert os.readlink(llvm / "bin" / "wasm-ld-19") == "lld"
    assert os.readlink(llvm / "lib/clang/19/lib/wasip1") == "wasi"
    lib_link = llvm / "lib" / "libLLVM.so.19.1"
    assert lib_link.is_symlink() and not os.path.isabs(os.readlink(lib_link))
    assert lib_link.resolve() == (root / "usr/lib/x86_64-linux-gnu/libLLVM.so.19.1").resolve()
    # The sysroot, moved out of usr/.
    sysroot = sdk / "share" / "wasi-sysroot"
    assert (sysroot / "include/wasm32-wasi/stdio.h").read_text() == "/* stdio */\n"
    assert (sysroot / "lib/wasm32-wasi/libc.a").is_file()
    assert os.readlink(sysroot / "lib/wasm32-wasip1") == "wasm32-wasi"
    assert (sysroot / "lib/wasm32-wasip1/libc.a").is_file()
    assert not (root / "usr/lib/wasm32-wasi").exists()


def test_arrange_debian_wrapper_passes_target_and_sysroot(tmp_path):
    sdk = tmp_path / "sdk"
    root = make_debian_root(sdk)
    wasi_sdk._arrange_debian(root, sdk, "x86_64-linux-gnu")
    # The wrapper is a shell script; the `clang` it execs is the two-line echo above, not a compiler. It is
    # run under another name only because the subprocess guard refuses anything called clang.
    wrapper = sdk / "bin" / "wrapper-under-test.sh"
    wrapper.write_text((sdk / "bin" / "clang").read_text())
    out = subprocess.run(["/bin/sh", str(wrapper), "-O2", "t.c"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert Path(out[0]).resolve() == (root / "usr/lib/llvm-19/bin/clang").resolve()
    sysroot = f"{sdk.resolve()}/share/wasi-sysroot"
    assert out[1:] == ["--target=wasm32-wasip1", f"--sysroot={sysroot}", "-O2", "t.c"]


def test_arrange_debian_without_llvm(tmp_path):
    sdk = tmp_path / "sdk"
    (sdk / "debian-root" / "usr" / "lib").mkdir(parents=True)
    with pytest.raises(ToolchainError, match="hold no usr/lib/llvm-"):
        wasi_sdk._arrange_debian(sdk / "debian-root", sdk, "x86_64-linux-gnu")


def test_arrange_debian_without_libc(tmp_path):
    sdk = tmp_path / "sdk"
    root = make_debian_root(sdk)
    (root / "usr/lib/wasm32-wasip1").unlink()
    (root / "usr/lib/wasm32-wasi/libc.a").unlink()
    with pytest.raises(ToolchainError, match="hold no wasm32-wasi libc.a"):
        wasi_sdk._arrange_debian(root, sdk, "x86_64-linux-gnu")
