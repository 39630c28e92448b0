"""Emscripten provisioning with fake toolchains: an emsdk-shaped release archive and fake Debian packages from
a local server, fake `node` scripts, EM_CONFIG generation.

sanity_check (which runs emcc and node) is replaced by a stub: no compiler ever runs here.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from wasmbuild import cache
from wasmbuild.download import Sources
from wasmbuild.errors import ChecksumError, PatchError, ToolchainError, UsageError
from wasmbuild.patching import patch_records
from wasmbuild.recipe import load_toolchain
from wasmbuild.toolchain import emsdk, hosttools
from wasmbuild.toolchain import node as nodes

ARCHIVE = "wasm-binaries.tar.xz"
ARCHIVE_PATH = f"/emscripten-releases-builds/linux/0123abcd/{ARCHIVE}"
FAKE_EMCC = "emcc (Emscripten gcc/clang-like replacement + linker emulating GNU ld) 3.1.69 (fake)"
FAKE_EXE = b"#!/bin/sh\necho fake\n"
SYSCALL_JS = """\
var SyscallsLibrary = {
  __syscall_fstat64: (fd, buf) => {
    var stream = SYSCALLS.getStreamFromFD(fd);
    return SYSCALLS.doStat(FS.stat, stream.path, buf);
  },
};
"""
PATCHED_SYSCALL_JS = SYSCALL_JS.replace(
    "    return SYSCALLS.doStat(FS.stat, stream.path, buf);\n",
    "#if NODERAWFS\n    if (stream.nfd !== undefined) return SYSCALLS.doStat(FS.fstat, stream.nfd, buf);\n#endif\n"
    "    return SYSCALLS.doStat(FS.stat, stream.path, buf);\n",
)
PATCH_NAME = "0001-noderawfs-fstat-stdio.patch"
needs_patch = pytest.mark.skipif(shutil.which("patch") is None, reason="the `patch` program is not installed")

EMSDK_TREE = [
    ("dir", "install"),
    ("dir", "install/bin"),
    ("file", "install/bin/clang", FAKE_EXE, 0o755),
    ("symlink", "install/bin/clang++", "clang"),
    ("file", "install/bin/wasm-ld", FAKE_EXE, 0o755),
    ("file", "install/bin/llvm-ar", FAKE_EXE, 0o755),
    ("file", "install/bin/wasm-opt", FAKE_EXE, 0o755),
    ("file", "install/bin/wasm-emscripten-finalize", FAKE_EXE, 0o755),
    ("file", "install/emscripten/emcc.py", b"# emcc\n"),
    ("file", "install/emscripten/emcc", b"#!/bin/sh\nexec python3 \"$0.py\" \"$@\"\n", 0o755),
    ("file", "install/emscripten/src/library_syscall.js", SYSCALL_JS.encode()),
    ("file", "install/emscripten/src/library_noderawfs.js", b"addToLibrary({});\n"),
]

# Fake Debian packages for the Debian route (names shortened; contents shaped like the real ones).
DEB_TREES = {
    "pool/main/e/emscripten/emscripten_3.1.69-3_all.deb": [
        ("file", "./usr/share/emscripten/emcc.py", b"# emcc\n"),
        ("file", "./usr/share/emscripten/emcc", FAKE_EXE, 0o755),
        ("file", "./usr/share/emscripten/src/library_syscall.js", SYSCALL_JS.encode()),
        ("file", "./usr/share/emscripten/src/library_noderawfs.js", b"addToLibrary({});\n"),
    ],
    "pool/main/l/llvm-toolchain-19/llvm-19_19.1.7-3_amd64.deb": [
        ("file", "./usr/lib/llvm-19/bin/clang", FAKE_EXE, 0o755),
        ("file", "./usr/lib/llvm-19/bin/lld", FAKE_EXE, 0o755),
        ("symlink", "./usr/lib/llvm-19/bin/wasm-ld", "lld"),
        ("file", "./usr/lib/llvm-19/bin/llvm-ar", FAKE_EXE, 0o755),
        ("file", "./usr/lib/llvm-19/lib/clang/19/include/stddef.h", b"/* stddef */\n"),
        ("file", "./usr/lib/x86_64-linux-gnu/libLLVM.so.19.1", b"\x7fELF fake"),
    ],
    "pool/main/b/binaryen/binaryen_120-4_amd64.deb": [
        ("file", "./usr/bin/wasm-opt", FAKE_EXE, 0o755),
        ("file", "./usr/bin/wasm-emscripten-finalize", FAKE_EXE, 0o755),
    ],
    # The "loader" prints its arguments, so the binaryen wrappers can be run without running binaryen.
    "pool/main/g/glibc/libc6_2.41-12_amd64.deb": [
        ("file", "./usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", b'#!/bin/sh\nprintf "%s\\n" "$0" "$@"\n',
         0o755),
        ("file", "./usr/lib/x86_64-linux-gnu/libc.so.6", b"\x7fELF fake"),
    ],
    "pool/main/a/acorn/node-acorn_8.8.1-2_all.deb": [
        ("file", "./usr/share/nodejs/acorn/package.json", b'{"name": "acorn"}\n'),
    ],
}


# --- fixtures ----------------------------------------------------------------------------------------------


def write_node(folder: Path, version: str, name: str = "node", body: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    node = folder / name
    node.write_text(body if body is not None else f"#!/bin/sh\necho v{version}\n")
    node.chmod(0o755)
    return node


@pytest.fixture
def node20(tmp_path) -> Path:
    return write_node(tmp_path / "node-20", "20.1.0")


@pytest.fixture(autouse=True)
def environment(monkeypatch, node20):
    """Pretend to be linux-x86_64, stub the toolchain check, use a fake node; record the checks made."""
    calls: list[tuple[Path, nodes.Node]] = []

    def fake_sanity_check(root: Path, node: nodes.Node) -> str:
        calls.append((root, node))
        return FAKE_EMCC

    monkeypatch.setattr(emsdk, "sanity_check", fake_sanity_check)
    for where in ("wasmbuild.toolchain",):
        monkeypatch.setattr(f"{where}.host_platform", lambda: "linux-x86_64")
    # Not cleared by conftest's guards: the caller's values must not leak in.
    monkeypatch.setenv("WASMBUILD_NODE", str(node20))
    monkeypatch.delenv("EMSDK_PYTHON", raising=False)
    return calls


@pytest.fixture
def cache_root(tmp_path):
    return tmp_path / "cache"


def write_patch(tmp_path: Path, name: str, old: str, new: str) -> None:
    diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        "a/src/library_syscall.js", "b/src/library_syscall.js"))
    path = tmp_path / "patches" / "emscripten-3.1.69" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"A test patch for the fake emscripten.\n\n{diff}")


def write_manifest(tmp_path: Path, *, release: tuple[str, bytes] | None = None,
                   release_platform: str = "linux-x86_64", debs: dict[str, bytes] | None = None,
                   patches: tuple[str, ...] = (), node_minimum: int | None = 18) -> Path:
    routes: dict = {}
    if release:
        url, data = release
        routes["release"] = [{"platform": release_platform, "url": url, "sha256": hashlib.sha256(data).hexdigest(),
                              "max_size": 1 << 20, "strip_components": 1}]
    routes["debian"] = {
        "platform": "linux-x86_64",
        "arch": "amd64",
        "packages": [
            {"name": path.rsplit("/", 1)[-1].split("_")[0], "version": "1", "suite": "trixie", "path": path,
             "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for path, data in (debs or {"pool/main/f/fake/fake_1_amd64.deb": b"unused"}).items()
        ],
    }
    data: dict = {"format": 1, "name": "emscripten", "version": "3.1.69",
                  "components": {"emscripten": "3.1.69", "llvm": "19", "binaryen": "120"}}
    if node_minimum is not None:
        data["node"] = {"minimum": node_minimum}
    if patches:
        data["patches"] = [{"file": f"emscripten-3.1.69/{name}", "reason": "stdio under NODERAWFS",
                            "upstream": "https://github.com/emscripten-core/emscripten/pull/23364"}
                           for name in patches]
    data["routes"] = routes
    path = tmp_path / "toolchains" / "emscripten.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture
def archive(build_tar) -> bytes:
    return build_tar(EMSDK_TREE, "xz")


@pytest.fixture
def release(tmp_path, http_server, archive):
    """A manifest whose release asset (for linux-x86_64) is the fake emsdk archive on the local server."""
    url = http_server.serve(ARCHIVE_PATH, archive)
    return load_toolchain(write_manifest(tmp_path, release=(url, archive))), url


@pytest.fixture
def debs(http_server, build_deb) -> dict[str, bytes]:
    """The fake Debian packages, served under /debian/."""
    built = {path: build_deb(tree) for path, tree in DEB_TREES.items()}
    for path, data in built.items():
        http_server.serve(f"/debian/{path}", data)
    return built


def toolchain_entries(cache_root: Path) -> list[str]:
    folder = cache_root / "toolchains"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def read_config(root: Path) -> dict:
    namespace: dict = {}
    exec((root / emsdk.CONFIG_NAME).read_text(), namespace)  # EM_CONFIG is Python: emscripten execs it
    return {k: v for k, v in namespace.items() if not k.startswith("__")}


# --- find_node ---------------------------------------------------------------------------------------------


def test_find_node_from_the_environment(node20):
    node = nodes.find_node(18)
    assert node == nodes.Node(node20.resolve(), "20.1.0")


def test_find_node_explicit_wins_over_the_environment(tmp_path, node20):
    node22 = write_node(tmp_path / "node-22", "22.3.0")
    assert nodes.find_node(18, str(node22)) == nodes.Node(node22.resolve(), "22.3.0")


def test_find_node_on_path(tmp_path, monkeypatch):
    monkeypatch.delenv("WASMBUILD_NODE")
    bindir = tmp_path / "path-bin"
    write_node(bindir, "18.19.0")
    monkeypatch.setenv("PATH", str(bindir))  # only the fakes: the machine may have a real node
    assert nodes.find_node(18) == nodes.Node((bindir / "node").resolve(), "18.19.0")
    # Debian's old name for it.
    (bindir / "node").rename(bindir / "nodejs")
    assert nodes.find_node(18).path == (bindir / "nodejs").resolve()
    # A bare name is looked up on PATH too.
    assert nodes.find_node(18, "nodejs").path == (bindir / "nodejs").resolve()


def test_find_node_follows_symlinks(tmp_path, node20):
    link = tmp_path / "links" / "node"
    link.parent.mkdir()
    link.symlink_to(node20)
    assert nodes.find_node(18, str(link)).path == node20.resolve()


def test_find_node_too_old(tmp_path):
    node16 = write_node(tmp_path / "node-16", "16.0.0")
    with pytest.raises(ToolchainError, match=re.escape(f"node 16.0.0 at {node16.resolve()} is too old (need >= 18)")
                       ) as info:
        nodes.find_node(18, str(node16))
    assert "hint: install node >= 18" in str(info.value)
    assert "WASMBUILD_NODE" in str(info.value)
    assert nodes.find_node(16, str(node16)).version == "16.0.0"


@pytest.mark.parametrize("on_path", [None, "16.0.0"])
def test_find_node_missing_or_too_old_on_path_provisions_the_pinned_node(tmp_path, monkeypatch, on_path):
    monkeypatch.delenv("WASMBUILD_NODE")
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    if on_path:
        write_node(empty, on_path)
    monkeypatch.setenv("PATH", str(empty))
    pinned = write_node(tmp_path / "tools" / "node-x" / "bin", "20.18.0")
    asked = []

    def ensure(names, project, cache_root, sources):
        asked.append((list(names), cache_root))
        return [hosttools.Provisioned(hosttools.Tool("node", "20.18.0", {"bin": {"node": "x"}}), pinned.parent, ())]

    monkeypatch.setattr(hosttools, "ensure", ensure)
    node = nodes.find_node(18, cache_root=tmp_path / "cache")
    assert node == nodes.Node(pinned.resolve(), "20.18.0")
    assert asked == [(["node"], tmp_path / "cache")]
    assert os.environ["PATH"].split(os.pathsep)[0] == str(pinned.parent)  # emcc, python.sh and workers see it


def test_find_node_explicit_path_that_does_not_exist(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere" / "node"
    monkeypatch.setenv("WASMBUILD_NODE", str(missing))
    with pytest.raises(ToolchainError, match=re.escape(f"node not found at {missing}")) as info:
        nodes.find_node(18)
    assert "hint: install node >= 18" in str(info.value)
    with pytest.raises(ToolchainError, match="node not found at"):
        nodes.find_node(18, str(tmp_path))  # a directory


def test_find_node_that_cannot_be_executed(tmp_path):
    node = tmp_path / "not-executable" / "node"
    node.parent.mkdir()
    node.write_text("#!/bin/sh\necho v20.0.0\n")  # mode 644
    with pytest.raises(ToolchainError, match="cannot run node at"):
        nodes.find_node(18, str(node))


def test_find_node_that_fails_to_run_says_so(tmp_path):
    broken = write_node(tmp_path / "broken", "", body=(
        "#!/bin/sh\necho 'node: error while loading shared libraries: libnode.so.115' >&2\nexit 127\n"))
    with pytest.raises(ToolchainError) as info:
        nodes.find_node(18, str(broken))
    assert "too old" not in str(info.value)
    assert "libnode.so.115" in str(info.value)


# --- EM_CONFIG and the environment --------------------------------------------------------------------------


def test_em_config_text_is_python_naming_the_layout(tmp_path):
    root = tmp_path / "it's a \"root\""  # quotes in paths must survive
    text = emsdk.em_config_text(root, Path("/opt/node/bin/node"))
    assert text.endswith("\n")
    namespace: dict = {}
    exec(text, namespace)
    assert namespace["LLVM_ROOT"] == str(root / "llvm" / "bin")
    assert namespace["BINARYEN_ROOT"] == str(root / "binaryen")
    assert namespace["NODE_JS"] == "/opt/node/bin/node"
    assert namespace["CACHE"] == str(root / "emscripten" / "cache")
    assert namespace["FROZEN_CACHE"] is False


def test_write_em_config_rewrites_only_when_it_changes(tmp_path):
    root = tmp_path / "tc"
    root.mkdir()
    path = emsdk.write_em_config(root, Path("/usr/bin/node"))
    assert path == root / emsdk.CONFIG_NAME
    assert path.read_text() == emsdk.em_config_text(root, Path("/usr/bin/node"))
    before = path.stat()
    assert emsdk.write_em_config(root, Path("/usr/bin/node")) == path
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not rewritten
    emsdk.write_em_config(root, Path("/opt/node22/bin/node"))
    assert path.stat().st_ino != before.st_ino
    assert read_config(root)["NODE_JS"] == "/opt/node22/bin/node"
    assert sorted(p.name for p in root.iterdir()) == [emsdk.CONFIG_NAME]  # no temporary file left


def test_tool_env(tmp_path, monkeypatch):
    root = tmp_path / "tc"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    env = emsdk.tool_env(root)
    assert env["EM_CONFIG"] == str(root / emsdk.CONFIG_NAME)
    assert env["PATH"] == f"{root / 'emscripten'}{os.pathsep}/usr/bin:/bin"
    assert env["EMSDK_PYTHON"] == (shutil.which("python3") or "python3")
    monkeypatch.setenv("EMSDK_PYTHON", "/opt/python3.12/bin/python3")
    assert emsdk.tool_env(root)["EMSDK_PYTHON"] == "/opt/python3.12/bin/python3"


def test_check_layout_lists_what_is_missing(tmp_path):
    (tmp_path / "emscripten").mkdir()
    (tmp_path / "emscripten" / "emcc.py").write_text("")
    with pytest.raises(ToolchainError, match=re.escape(
        f"test at {tmp_path} is not an Emscripten toolchain: missing emscripten/src/library_syscall.js, "
        "llvm/bin/clang, llvm/bin/wasm-ld, binaryen/bin/wasm-opt"
    )):
        emsdk.check_layout(tmp_path, "test")


# --- the release route ---------------------------------------------------------------------------------------


def release_key(archive: bytes, patches: list | None = None) -> str:
    return cache.hash_key({"layout": emsdk.LAYOUT_VERSION, "inputs": hashlib.sha256(archive).hexdigest(),
                           "patches": patches or []})


def test_release_route_installs_the_layout(release, archive, cache_root, http_server, environment, node20):
    manifest, url = release
    tc = emsdk.provision(manifest, cache_root, Sources(), route="release")
    key = release_key(archive)
    root = tc.path
    assert root == cache_root / "toolchains" / f"emscripten-3.1.69-release-{key[:12]}"
    assert (tc.name, tc.version, tc.route) == ("emscripten", "3.1.69", "release")
    # The layout: install/ stripped, llvm/bin and binaryen/bin are emsdk's bin/.
    assert not (root / "install").exists()
    assert (root / "llvm" / "bin").resolve() == (root / "bin").resolve()
    assert (root / "binaryen" / "bin").resolve() == (root / "bin").resolve()
    assert not os.path.isabs(os.readlink(root / "llvm" / "bin"))
    assert (root / "llvm" / "bin" / "clang").is_file() and (root / "binaryen" / "bin" / "wasm-opt").is_file()
    assert (root / "emscripten" / "cache").is_dir()
    assert (root / "emscripten" / "src" / "library_syscall.js").read_text() == SYSCALL_JS  # no patches
    emsdk.check_layout(root, "test")
    # EM_CONFIG names this toolchain and this node.
    config = read_config(root)
    assert config == {"LLVM_ROOT": str(root / "llvm" / "bin"), "BINARYEN_ROOT": str(root / "binaryen"),
                      "NODE_JS": str(node20.resolve()), "CACHE": str(root / "emscripten" / "cache"),
                      "FROZEN_CACHE": False}
    # What was recorded.
    sha = hashlib.sha256(archive).hexdigest()
    assert tc.inputs == [{"name": ARCHIVE, "sha256": sha, "size": None, "url": url,
                          "fetch": {"route": "upstream", "url": url}}]
    assert tc.components == {"emscripten": "3.1.69", "llvm": "19", "binaryen": "120", "node": "20.1.0"}
    record = tc.record()
    assert record["route"] == "release" and record["inputs"] == tc.inputs
    assert cache.read_stamp(root) == {"key": key, "route": "release", "fetch_route": "upstream", "url": url}
    assert environment == [(root, nodes.Node(node20.resolve(), "20.1.0"))]
    assert http_server.requests == [ARCHIVE_PATH]


def test_release_route_from_the_cache_with_another_node(release, cache_root, http_server, environment, tmp_path):
    manifest, url = release
    first = emsdk.provision(manifest, cache_root, Sources(), route="release")
    node22 = write_node(tmp_path / "node-22", "22.3.0")
    again = emsdk.provision(manifest, cache_root, Sources(upstream=False), route="release",
                                 node_path=str(node22))
    assert again.path == first.path
    assert again.inputs == first.inputs  # the fetch route and url come from the stamp
    assert again.components["node"] == "22.3.0"
    assert read_config(again.path)["NODE_JS"] == str(node22.resolve())  # EM_CONFIG follows the node
    assert len(environment) == 1  # not checked again
    assert http_server.hits(ARCHIVE_PATH) == 1
    assert toolchain_entries(cache_root) == [first.path.name]


def test_release_route_uses_the_mirror_dir(release, archive, cache_root, tmp_path, http_server):
    manifest, _ = release
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / ARCHIVE).write_bytes(archive)
    tc = emsdk.provision(manifest, cache_root, Sources(mirror_dir=mirror, upstream=False), route="release")
    assert tc.inputs[0]["fetch"] == {"route": "mirror-dir", "url": (mirror / ARCHIVE).as_uri()}
    assert http_server.requests == []


def test_tampered_release_archive_leaves_no_entry(tmp_path, http_server, build_tar, cache_root, environment, archive):
    url = http_server.serve(ARCHIVE_PATH, archive + b"tampered")
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, archive)))
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        emsdk.provision(manifest, cache_root, Sources(), route="release")
    assert toolchain_entries(cache_root) == []
    assert not list((cache_root / "downloads").rglob(ARCHIVE))
    assert environment == []
    # auto does not fall back to Debian from a checksum failure.
    with pytest.raises(ChecksumError):
        emsdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")), route="auto")
    assert not [r for r in http_server.requests if r.startswith("/debian")]
    assert toolchain_entries(cache_root) == []


def test_release_archive_that_is_not_emscripten_leaves_no_entry(tmp_path, http_server, build_tar, cache_root,
                                                               environment):
    data = build_tar([e for e in EMSDK_TREE if "library_syscall" not in e[1]], "xz")
    url = http_server.serve(ARCHIVE_PATH, data)
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, data)))
    with pytest.raises(ToolchainError, match=r"the provisioned toolchain at \S+ is not an Emscripten toolchain: "
                                             r"missing emscripten/src/library_syscall\.js"):
        emsdk.provision(manifest, cache_root, Sources(), route="release")
    assert toolchain_entries(cache_root) == []
    assert environment == []


def test_failing_sanity_check_leaves_no_entry(release, cache_root, monkeypatch):
    manifest, _ = release

    def broken(root: Path, node: nodes.Node) -> str:
        raise ToolchainError(f"a NODERAWFS test program built by {root} fails under node {node.version}")

    monkeypatch.setattr(emsdk, "sanity_check", broken)
    with pytest.raises(ToolchainError, match="fails under node 20.1.0"):
        emsdk.provision(manifest, cache_root, Sources(), route="release")
    assert toolchain_entries(cache_root) == []


def test_release_route_without_an_asset_for_this_host(release, cache_root, monkeypatch, http_server):
    manifest, _ = release
    for where in ("wasmbuild.toolchain",):
        monkeypatch.setattr(f"{where}.host_platform", lambda: "macos-arm64")
    with pytest.raises(ToolchainError, match=re.escape(
        "emscripten.yaml: no pinned release of emscripten 3.1.69 for macos-arm64 (pinned: linux-x86_64)"
    )) as info:
        emsdk.provision(manifest, cache_root, Sources(), route="release")
    assert "hint: use the Debian route (--toolchain-route debian)" in str(info.value)
    assert http_server.requests == []


# --- patches ---------------------------------------------------------------------------------------------------


@needs_patch
def test_release_route_applies_the_manifest_patches(tmp_path, http_server, archive, cache_root, environment):
    write_patch(tmp_path, PATCH_NAME, SYSCALL_JS, PATCHED_SYSCALL_JS)
    url = http_server.serve(ARCHIVE_PATH, archive)
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, archive), patches=(PATCH_NAME,)))
    tc = emsdk.provision(manifest, cache_root, Sources(), route="release")
    assert (tc.path / "emscripten" / "src" / "library_syscall.js").read_text() == PATCHED_SYSCALL_JS
    assert not list((tc.path / "emscripten").rglob("*.orig")) and not list((tc.path / "emscripten").rglob("*.rej"))
    records = patch_records(manifest.patches)
    assert records[0]["file"] == f"emscripten-3.1.69/{PATCH_NAME}"
    # The patches are part of the key: the entry differs from an unpatched toolchain's.
    assert tc.path.name == f"emscripten-3.1.69-release-{release_key(archive, records)[:12]}"
    assert release_key(archive, records) != release_key(archive)
    assert tc.record().get("patches", records) == records
    assert len(environment) == 1
    # Cached: the patch is not applied a second time.
    again = emsdk.provision(manifest, cache_root, Sources(), route="release")
    assert again.path == tc.path
    assert (tc.path / "emscripten" / "src" / "library_syscall.js").read_text() == PATCHED_SYSCALL_JS


@needs_patch
def test_changed_patch_gives_a_new_entry(tmp_path, http_server, archive, cache_root):
    write_patch(tmp_path, PATCH_NAME, SYSCALL_JS, PATCHED_SYSCALL_JS)
    url = http_server.serve(ARCHIVE_PATH, archive)
    manifest_file = write_manifest(tmp_path, release=(url, archive), patches=(PATCH_NAME,))
    first = emsdk.provision(load_toolchain(manifest_file), cache_root, Sources(), route="release")
    write_patch(tmp_path, PATCH_NAME, SYSCALL_JS, PATCHED_SYSCALL_JS.replace("#endif", "#endif // NODERAWFS"))
    second = emsdk.provision(load_toolchain(manifest_file), cache_root, Sources(), route="release")
    assert second.path != first.path
    assert "#endif // NODERAWFS" in (second.path / "emscripten" / "src" / "library_syscall.js").read_text()
    assert http_server.hits(ARCHIVE_PATH) == 1  # the archive itself comes from the download cache


@needs_patch
def test_patch_that_does_not_apply_leaves_no_entry(tmp_path, http_server, archive, cache_root, environment):
    other = SYSCALL_JS.replace("stream.path", "stream.node.path")  # written against another emscripten
    write_patch(tmp_path, PATCH_NAME, other, other.replace("var stream", "const stream"))
    url = http_server.serve(ARCHIVE_PATH, archive)
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, archive), patches=(PATCH_NAME,)))
    with pytest.raises(PatchError, match=re.escape(
        f"patch emscripten-3.1.69/{PATCH_NAME} no longer applies to Emscripten 3.1.69"
    )) as info:
        emsdk.provision(manifest, cache_root, Sources(), route="release")
    assert f"hint: refresh {tmp_path / 'patches' / 'emscripten-3.1.69' / PATCH_NAME}" in str(info.value)
    assert "emscripten.yaml" in str(info.value)
    assert toolchain_entries(cache_root) == []
    assert environment == []
    # Nor does auto turn it into a fall back to Debian.
    with pytest.raises(PatchError):
        emsdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")), route="auto")
    assert not [r for r in http_server.requests if r.startswith("/debian")]


# --- routes and node ------------------------------------------------------------------------------------------


def test_route_errors(release, cache_root, monkeypatch, tmp_path):
    manifest, _ = release
    # Checked before node is looked for.
    monkeypatch.setenv("WASMBUILD_NODE", str(tmp_path / "no-node"))
    with pytest.raises(UsageError, match="--toolchain-route path is for the WASI SDK; Emscripten uses release or "
                                         "debian"):
        emsdk.provision(manifest, cache_root, Sources(), route="path")
    with pytest.raises(UsageError, match="unknown toolchain route 'fast'") as info:
        emsdk.provision(manifest, cache_root, Sources(), route="fast")
    assert "choose one of: auto, release, debian, path" in str(info.value)
    assert toolchain_entries(cache_root) == []


def test_provision_uses_the_manifests_node_minimum(tmp_path, http_server, archive, cache_root, environment):
    url = http_server.serve(ARCHIVE_PATH, archive)
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, archive), node_minimum=22))
    with pytest.raises(ToolchainError, match=r"node 20\.1\.0 at \S+ is too old \(need >= 22\)"):
        emsdk.provision(manifest, cache_root, Sources(), route="release")
    assert http_server.requests == [] and toolchain_entries(cache_root) == []
    # Without a minimum in the manifest, the default applies.
    node16 = write_node(tmp_path / "node-16", "16.20.0")
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, archive), node_minimum=None))
    with pytest.raises(ToolchainError, match=r"need >= 18"):
        emsdk.provision(manifest, cache_root, Sources(), route="release", node_path=str(node16))


def test_manifest_cannot_lower_the_node_minimum(tmp_path, http_server, archive, cache_root):
    url = http_server.serve(ARCHIVE_PATH, archive)
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, archive), node_minimum=16))
    node16 = write_node(tmp_path / "node-16", "16.20.0")
    with pytest.raises(ToolchainError, match=rf"need >= {nodes.NODE_MINIMUM}"):
        emsdk.provision(manifest, cache_root, Sources(), route="release", node_path=str(node16))


# --- auto and the Debian route ----------------------------------------------------------------------------------


def test_auto_prefers_a_working_release(release, cache_root, http_server, debs):
    manifest, _ = release
    tc = emsdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")), route="auto")
    assert tc.route == "release"
    assert not [r for r in http_server.requests if r.startswith("/debian")]


def test_auto_without_a_release_for_this_host_falls_to_debian(tmp_path, http_server, archive, cache_root):
    url = http_server.serve(ARCHIVE_PATH, archive)
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, archive), release_platform="linux-arm64"))
    with pytest.raises(ToolchainError) as info:
        emsdk.provision(manifest, cache_root, Sources(debian_mirror=None), route="auto")
    message = str(info.value)
    assert message.startswith("could not provision emscripten 3.1.69:\n")
    assert "\n  - debian route: the Debian route needs a Debian mirror and none is configured" in message
    assert "hint: give --mirror-dir (a folder holding the release archive) or --debian-mirror" in message
    assert http_server.requests == []  # the arm64 archive is never fetched
    assert toolchain_entries(cache_root) == []


def test_auto_error_explains_why_the_release_route_was_not_tried(tmp_path, http_server, archive, cache_root):
    url = http_server.serve(ARCHIVE_PATH, archive)
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, archive), release_platform="linux-arm64"))
    with pytest.raises(ToolchainError) as info:
        emsdk.provision(manifest, cache_root, Sources(debian_mirror=None), route="auto")
    assert "\n  - release route: emscripten.yaml: no pinned release of emscripten 3.1.69 for linux-x86_64 " \
           "(pinned: linux-arm64)" in str(info.value)
    assert "\n  - debian route: " in str(info.value)


def test_auto_lists_both_routes_when_both_fail(tmp_path, http_server, archive, cache_root):
    url = http_server.url(ARCHIVE_PATH)  # not served: 404
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, archive)))
    with pytest.raises(ToolchainError) as info:
        emsdk.provision(manifest, cache_root, Sources(), route="auto")
    message = str(info.value)
    assert re.search(rf"\n  - release route: could not obtain {ARCHIVE} .*\n.*{re.escape(url)}: HTTP 404", message)
    assert "\n  - debian route: the Debian route needs a Debian mirror and none is configured" in message
    assert toolchain_entries(cache_root) == []


def test_debian_route_assembles_the_layout(tmp_path, http_server, debs, cache_root, environment, node20):
    manifest = load_toolchain(write_manifest(tmp_path, debs=debs))
    tc = emsdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")),
                              route="debian")
    root = tc.path
    deb = root / "debian-root"
    assert tc.route == "debian" and root.name.startswith("emscripten-3.1.69-debian-")
    emsdk.check_layout(root, "test")
    # emscripten moved out of usr/share; llvm -> the Debian LLVM tree (relative link).
    assert (root / "emscripten" / "emcc.py").is_file() and not (deb / "usr" / "share" / "emscripten").exists()
    assert (root / "emscripten" / "cache").is_dir()
    assert (root / "llvm").is_symlink() and not os.path.isabs(os.readlink(root / "llvm"))
    assert (root / "llvm").resolve() == (deb / "usr" / "lib" / "llvm-19").resolve()
    assert os.readlink(deb / "usr" / "lib" / "llvm-19" / "bin" / "wasm-ld-19") == "lld"
    lib_link = deb / "usr" / "lib" / "llvm-19" / "lib" / "libLLVM.so.19.1"
    assert lib_link.is_symlink() and not os.path.isabs(os.readlink(lib_link))
    assert lib_link.resolve() == (deb / "usr" / "lib" / "x86_64-linux-gnu" / "libLLVM.so.19.1").resolve()
    # binaryen: wrappers for the tools the package has, none for the others.
    wrappers = sorted(p.name for p in (root / "binaryen" / "bin").iterdir())
    assert wrappers == ["wasm-emscripten-finalize", "wasm-opt"]
    assert os.access(root / "binaryen" / "bin" / "wasm-opt", os.X_OK)
    # acorn for the JS optimizer.
    acorn = root / "emscripten" / "node_modules" / "acorn"
    assert acorn.is_symlink() and (acorn / "package.json").is_file()
    # EM_CONFIG, records, stamp.
    assert read_config(root)["LLVM_ROOT"] == str(root / "llvm" / "bin")
    assert [i["url"] for i in tc.inputs] == [f"debian:{path}" for path in DEB_TREES]
    assert [i["sha256"] for i in tc.inputs] == [hashlib.sha256(d).hexdigest() for d in debs.values()]
    assert {i["route"] for i in tc.inputs} == {"debian"}
    assert cache.read_stamp(root)["route"] == "debian"
    assert environment == [(root, nodes.Node(node20.resolve(), "20.1.0"))]
    # Again: from the cache, without the network.
    before = list(http_server.requests)
    again = emsdk.provision(manifest, cache_root, Sources(), route="debian")
    assert again.path == root and again.inputs == tc.inputs and http_server.requests == before
    assert len(environment) == 1


def test_debian_binaryen_wrapper_runs_the_tool_through_the_private_loader(tmp_path, http_server, debs, cache_root):
    manifest = load_toolchain(write_manifest(tmp_path, debs=debs))
    tc = emsdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")),
                              route="debian")
    deb = (tc.path / "debian-root").resolve()
    # The fake loader prints its arguments: what the wrapper would exec.
    out = subprocess.run([tc.path / "binaryen" / "bin" / "wasm-opt", "--version", "a b.wasm"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert Path(out[0]).resolve() == deb / "usr" / "lib" / "x86_64-linux-gnu" / "ld-linux-x86-64.so.2"
    assert out[1] == "--library-path"
    assert [Path(p).resolve() for p in out[2].split(":")] == [deb / "usr/lib/x86_64-linux-gnu",
                                                              deb / "lib/x86_64-linux-gnu"]
    assert Path(out[3]).resolve() == deb / "usr" / "bin" / "wasm-opt"
    assert out[4:] == ["--version", "a b.wasm"]


def test_auto_falls_back_to_debian_when_the_release_is_missing(tmp_path, http_server, debs, cache_root, archive):
    manifest = load_toolchain(write_manifest(tmp_path, release=(http_server.url(ARCHIVE_PATH), archive), debs=debs))
    tc = emsdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")), route="auto")
    assert tc.route == "debian"
    assert http_server.requests[0] == ARCHIVE_PATH
    # Now a warm Debian toolchain wins over a release that became reachable.
    http_server.serve(ARCHIVE_PATH, archive)
    before = list(http_server.requests)
    again = emsdk.provision(manifest, cache_root, Sources(), route="auto")
    assert (again.route, again.path) == ("debian", tc.path) and http_server.requests == before


def test_auto_without_a_release_for_this_host_uses_debian(tmp_path, http_server, debs, cache_root, archive):
    url = http_server.serve(ARCHIVE_PATH, archive)
    manifest = load_toolchain(write_manifest(tmp_path, release=(url, archive), release_platform="macos-arm64",
                                             debs=debs))
    tc = emsdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")), route="auto")
    assert tc.route == "debian"
    assert ARCHIVE_PATH not in http_server.requests


def test_debian_packages_without_acorn_leave_no_entry(tmp_path, http_server, debs, cache_root, environment):
    debs = {p: d for p, d in debs.items() if "acorn" not in p}
    manifest = load_toolchain(write_manifest(tmp_path, debs=debs))
    with pytest.raises(ToolchainError, match="the Debian packages hold no acorn: wrong package list"):
        emsdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")),
                             route="debian")
    assert toolchain_entries(cache_root) == []
    assert environment == []


def test_debian_route_errors(tmp_path, http_server, debs, cache_root, monkeypatch):
    manifest = load_toolchain(write_manifest(tmp_path, debs=debs))
    with pytest.raises(ToolchainError, match="the Debian route needs a Debian mirror and none is configured") as info:
        emsdk.provision(manifest, cache_root, Sources(), route="debian")
    assert "hint: set --debian-mirror / WASMBUILD_DEBIAN_MIRROR" in str(info.value)
    for where in ("wasmbuild.toolchain",):
        monkeypatch.setattr(f"{where}.host_platform", lambda: "linux-arm64")
    with pytest.raises(ToolchainError, match=re.escape(
        "emscripten.yaml: the Debian route serves linux-x86_64, this host is linux-arm64"
    )):
        emsdk.provision(manifest, cache_root, Sources(debian_mirror=http_server.url("/debian")),
                             route="debian")
    assert http_server.requests == []
    assert toolchain_entries(cache_root) == []
