"""Host tools (toolchains/host-tools.yaml): the project manifest, a Debian-route tool provisioned from a local
server, relocation of absolute paths, the PyPI route's verification, the preflight."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from wasmbuild.download import Sources, cache_path
from wasmbuild.errors import ChecksumError, DownloadError, MissingToolError, RecipeError, ToolchainError
from wasmbuild.recipe import Download
from wasmbuild.toolchain import hosttools

ROOT = Path(__file__).resolve().parents[2]
# A tool whose script has its data directory compiled in, as autoconf's scripts have /usr/share/autoconf.
TOOL_SCRIPT = b"#!/bin/sh\ncat /usr/share/faketool/version.txt\necho \"FAKE=$FAKE_HOME\"\n"


def test_project_manifest_loads_and_pins_everything():
    tools = hosttools.load_tools(hosttools.manifest_file(ROOT))
    assert set(tools) == {"node", "tcl", "autotools", "wasmtime"}
    assert "autoreconf" in tools["autotools"].commands and tools["tcl"].commands == ("tclsh",)
    for tool in tools.values():
        for item in hosttools._inputs(tool):
            assert len(item["sha256"]) == 64 and item["size"] > 0, (tool.name, item)


def write_manifest(tmp_path: Path, tools: dict) -> Path:
    path = tmp_path / "toolchains" / hosttools.MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"format": 1, "tools": tools}))
    return tmp_path


def debian_tool(deb: bytes, **extra) -> dict:
    return {"version": "1.0",
            "debian": {"platform": "linux-x86_64", "packages": [
                {"name": "faketool", "version": "1.0-1", "suite": "bookworm",
                 "path": "pool/main/f/faketool_1.0_all.deb", "sha256": hashlib.sha256(deb).hexdigest(),
                 "size": len(deb)}]},
            "bin": {"faketool": "usr/bin/faketool"}, "env": {"FAKE_HOME": "usr/share/faketool"},
            "relocate": ["/usr/share/faketool"], **extra}


@pytest.fixture
def fake_deb(build_deb):
    return build_deb([("dir", "./usr"), ("dir", "./usr/bin"), ("file", "./usr/bin/faketool", TOOL_SCRIPT, 0o755),
                      ("dir", "./usr/share/faketool"), ("file", "./usr/share/faketool/version.txt", b"faketool 1.0\n")])


@pytest.fixture
def linux_x86_64(monkeypatch):
    monkeypatch.setattr(hosttools, "host_platform", lambda: "linux-x86_64")


def test_a_debian_tool_is_unpacked_relocated_wrapped_and_cached(tmp_path, fake_deb, http_server, linux_x86_64):
    http_server.serve("/debian/pool/main/f/faketool_1.0_all.deb", fake_deb)
    project = write_manifest(tmp_path / "project", {"faketool": debian_tool(fake_deb)})
    sources = Sources(debian_mirror=http_server.url("/debian"))
    (tool,) = hosttools.ensure(["faketool"], project, tmp_path / "cache", sources)
    out = subprocess.run([tool.path("faketool")], capture_output=True, text=True, check=True).stdout
    root = tool.bin.parent / "root"
    assert out == f"faketool 1.0\nFAKE={root}/usr/share/faketool\n"  # its data dir now points into the cache
    assert tool.record() == {"name": "faketool", "version": "1.0", "inputs": [
        {"name": "faketool_1.0_all.deb", "package": "faketool", "version": "1.0-1", "suite": "bookworm",
         "sha256": hashlib.sha256(fake_deb).hexdigest(), "size": len(fake_deb), "route": "debian"}]}
    # Cached: no second download; the same entry.
    again = hosttools.ensure(["faketool"], project, tmp_path / "cache", sources)[0]
    assert again.bin == tool.bin and http_server.hits("/debian/pool/main/f/faketool_1.0_all.deb") == 1
    assert hosttools.path_with([tool], "/usr/bin") == f"{tool.bin}:/usr/bin"


def test_a_tampered_deb_leaves_no_tool_entry(tmp_path, fake_deb, http_server, linux_x86_64):
    http_server.serve("/debian/pool/main/f/faketool_1.0_all.deb", fake_deb[:-1] + b"X")
    project = write_manifest(tmp_path / "project", {"faketool": debian_tool(fake_deb)})
    with pytest.raises(ChecksumError):
        hosttools.ensure(["faketool"], project, tmp_path / "cache", Sources(debian_mirror=http_server.url("/debian")))
    assert not (tmp_path / "cache" / "tools").exists() or not list((tmp_path / "cache" / "tools").iterdir())


def test_a_tool_whose_command_is_missing_leaves_no_entry(tmp_path, fake_deb, http_server, linux_x86_64):
    http_server.serve("/debian/pool/main/f/faketool_1.0_all.deb", fake_deb)
    project = write_manifest(tmp_path / "project",
                             {"faketool": debian_tool(fake_deb, bin={"faketool": "usr/bin/elsewhere"})})
    with pytest.raises(ToolchainError, match="usr/bin/elsewhere is missing"):
        hosttools.ensure(["faketool"], project, tmp_path / "cache", Sources(debian_mirror=http_server.url("/debian")))
    assert list((tmp_path / "cache" / "tools").iterdir()) == []


def test_no_debian_mirror_names_the_tool_and_the_fix(tmp_path, fake_deb, linux_x86_64):
    project = write_manifest(tmp_path / "project", {"faketool": debian_tool(fake_deb)})
    with pytest.raises(ToolchainError, match="faketool is not installed .* none is configured"):
        hosttools.ensure(["faketool"], project, tmp_path / "cache", Sources())


def test_other_host_platform_is_refused(tmp_path, fake_deb, monkeypatch):
    monkeypatch.setattr(hosttools, "host_platform", lambda: "macos-arm64")
    project = write_manifest(tmp_path / "project", {"faketool": debian_tool(fake_deb)})
    with pytest.raises(ToolchainError, match="no pinned faketool for macos-arm64"):
        hosttools.ensure(["faketool"], project, tmp_path / "cache", Sources(debian_mirror="http://127.0.0.1:9"))


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda t: t.pop("debian"), "needs a 'pypi' or a 'debian' route"),
    (lambda t: t.update(bin={"faketool": "/usr/bin/faketool"}), "must be a path inside the unpacked tree"),
    (lambda t: t.update(env={"X": "../x"}), "must be a path inside the unpacked tree"),
    (lambda t: t.update(bin={"../x": "usr/bin/faketool"}), "is not a command name"),
])
def test_manifest_errors(tmp_path, fake_deb, mutate, message):
    data = debian_tool(fake_deb)
    mutate(data)
    project = write_manifest(tmp_path / "project", {"faketool": data})
    with pytest.raises(RecipeError, match=message):
        hosttools.ensure(["faketool"], project, tmp_path / "cache", Sources())


def test_unknown_tool_is_named(tmp_path, fake_deb):
    project = write_manifest(tmp_path / "project", {"faketool": debian_tool(fake_deb)})
    with pytest.raises(RecipeError, match="unknown host tool nope"):
        hosttools.ensure(["nope"], project, tmp_path / "cache", Sources())


def test_relocate_rewrites_whole_paths_only_in_text_files(tmp_path):
    (tmp_path / "a.pl").write_text("my $d = '/usr/share/autoconf';\nmy $e = '/usr/share/autoconf2';\n"
                                   "x=/usr/share/aclocal-1.16/y z=/opt/usr/share/autoconf\n")
    (tmp_path / "bin").write_bytes(b"\0ELF /usr/share/autoconf")
    assert hosttools.relocate(tmp_path, ["/usr/share/autoconf", "/usr/share/aclocal-1.16",
                                         "/usr/share/aclocal"]) == 1
    assert (tmp_path / "a.pl").read_text() == (
        f"my $d = '{tmp_path}/usr/share/autoconf';\nmy $e = '/usr/share/autoconf2';\n"
        f"x={tmp_path}/usr/share/aclocal-1.16/y z=/opt/usr/share/autoconf\n")
    assert (tmp_path / "bin").read_bytes() == b"\0ELF /usr/share/autoconf"


def make_wheel(path: Path) -> bytes:
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("pkg/bin/node")
        info.external_attr = 0o755 << 16
        zf.writestr(info, "#!/bin/sh\necho v20.0.0\n")
    return path.read_bytes()


def pypi_tool(data: bytes) -> dict:
    return {"version": "20.0.0", "pypi": {"platform": "linux-x86_64", "package": "fake-node", "version": "20.0.0",
                                         "filename": "fake_node-20.0.0-py3-none-any.whl",
                                         "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)},
            "bin": {"node": "pkg/bin/node"}}


def test_a_pypi_tool_from_the_mirror_dir(tmp_path, linux_x86_64):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    data = make_wheel(mirror / "fake_node-20.0.0-py3-none-any.whl")
    project = write_manifest(tmp_path / "project", {"node": pypi_tool(data)})
    (tool,) = hosttools.ensure(["node"], project, tmp_path / "cache", Sources(mirror_dir=mirror))
    assert subprocess.run([tool.path("node")], capture_output=True, text=True).stdout == "v20.0.0\n"
    assert tool.inputs[0]["route"] == "pypi"


def test_a_pypi_wheel_with_other_bytes_is_refused(tmp_path, linux_x86_64, monkeypatch):
    good = make_wheel(tmp_path / "good.whl")
    project = write_manifest(tmp_path / "project", {"node": pypi_tool(good)})
    evil = tmp_path / "evil.whl"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("pkg/bin/node", "#!/bin/sh\necho evil\n")

    def fake_pip(argv, **kwargs):  # pip "downloads" a different file under the pinned name
        dest = Path(argv[argv.index("-d") + 1])
        shutil.copy(evil, dest / "fake_node-20.0.0-py3-none-any.whl")
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(hosttools, "capture", fake_pip)
    with pytest.raises(DownloadError, match=r"(?s)could not obtain fake_node-20.0.0-py3-none-any.whl .*mismatch"):
        hosttools.ensure(["node"], project, tmp_path / "cache", Sources())
    item = Download(url="x", sha256=hashlib.sha256(good).hexdigest(), filename="fake_node-20.0.0-py3-none-any.whl")
    assert not cache_path(tmp_path / "cache", item).exists()
    tools = tmp_path / "cache" / "tools"
    assert not tools.exists() or list(tools.iterdir()) == []


def test_preflight_names_every_missing_tool_at_once(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing at all
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(MissingToolError) as info:
        hosttools.preflight("emscripten")
    text = str(info.value)
    for name in ("cc:", "make:", "patch:", "perl:"):
        assert name in text
    assert "4 host tool(s) missing" in text and "apt-get install build-essential" in text
    for name in ("cc", "make", "patch"):
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    hosttools.preflight("wasi")  # perl is only needed for Emscripten's libraries
    with pytest.raises(MissingToolError, match="1 host tool"):
        hosttools.preflight("emscripten")


def test_a_tool_record_read_back_from_a_sorted_stamp_has_the_one_key_order():
    # Caches written by earlier versions stored stamps with sorted keys; the build record must not change.
    record = {"name": "tcl", "version": "8.6.13", "inputs": [{"name": "t.deb", "package": "tcl8.6", "version": "1",
                                                               "suite": "bookworm", "sha256": "0" * 64, "size": 1,
                                                               "route": "debian"}]}
    scrambled = {"inputs": [dict(sorted(record["inputs"][0].items()))], "version": "8.6.13", "name": "tcl"}
    assert list(hosttools.ordered_record(scrambled)) == ["name", "version", "inputs"]
    assert list(hosttools.ordered_record(scrambled)["inputs"][0]) == list(record["inputs"][0])
    assert hosttools.ordered_record(scrambled) == record
