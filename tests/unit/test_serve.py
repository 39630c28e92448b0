"""wasmbuild serve (wasmbuild.serve): the directory assembled from a web artifact and web/, the MIME types browsers
need, port 0, a port in use; the command line's checks."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from wasmbuild import cli, serve
from wasmbuild.errors import UsageError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def artifact_root(tmp_path) -> Path:
    root = tmp_path / "cpython-3.13.15-wasm32-emscripten-web"
    root.mkdir()
    (root / "python.mjs").write_text("export default function createPython() {}\n")
    (root / "python.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "python.data").write_bytes(bytes(range(256)))
    (root / "LICENSE").write_text("PSF\n")
    (root / "BUILD.json").write_text("{}\n")
    return root


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()


def test_assemble_links_the_runtime_files_beside_the_page(artifact_root, tmp_path):
    site = serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    names = sorted(p.name for p in site.iterdir())
    for name in ("python.mjs", "python.wasm", "python.data", "LICENSE", "index.html", "repl.mjs", "worker.mjs",
                 "repl.css", "wasmbuild-python.mjs"):
        assert name in names
    assert "BUILD.json" not in names
    assert all((site / n).is_symlink() for n in names)
    assert (site / "python.data").read_bytes() == bytes(range(256))
    assert (site / "index.html").resolve() == (ROOT / "web" / "index.html").resolve()
    serve.assemble(artifact_root, ROOT / "web", site)  # again into the same directory: the links are replaced


def test_assemble_refuses_an_artifact_that_is_not_a_web_one(artifact_root, tmp_path):
    (artifact_root / "python.data").unlink()
    with pytest.raises(UsageError, match="not a web artifact: no python.data"):
        serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    (artifact_root / "python.data").write_bytes(b"")
    with pytest.raises(UsageError, match="no index.html"):
        serve.assemble(artifact_root, tmp_path, tmp_path / "site2")


@pytest.mark.parametrize(("name", "mime"), [
    ("python.mjs", "text/javascript"),
    ("worker.mjs", "text/javascript"),
    ("python.wasm", "application/wasm"),
    ("python.data", "application/octet-stream"),
    ("index.html", "text/html"),
    ("repl.css", "text/css"),
])
def test_mime_types(artifact_root, tmp_path, name, mime):
    site = serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    with serve.serving(site, port=0, quiet=True) as server:
        status, headers, body = get(server.url + name)
    assert status == 200
    assert headers["content-type"].split(";")[0] == mime
    assert headers["cache-control"] == "no-cache"
    assert body == (site / name).read_bytes()


def test_port_zero_picks_a_free_port_on_loopback(artifact_root, tmp_path):
    site = serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    with serve.serving(site, port=0, quiet=True) as a, serve.serving(site, port=0, quiet=True) as b:
        assert a.url.startswith("http://127.0.0.1:") and a.url.endswith("/")
        assert a.server_address[1] != 0 and a.server_address[1] != b.server_address[1]
        status, headers, body = get(a.url)  # / is the page
        assert b"repl.mjs" in body and headers["content-type"].startswith("text/html")
        with pytest.raises(urllib.error.HTTPError) as missing:
            get(a.url + "nothing-here.js")
        assert missing.value.code == 404


def test_a_port_in_use_is_a_usage_error(artifact_root, tmp_path):
    site = serve.assemble(artifact_root, ROOT / "web", tmp_path / "site")
    with serve.serving(site, port=0, quiet=True) as server:
        with pytest.raises(UsageError, match=rf"cannot serve on 127.0.0.1:{server.server_address[1]}") as exc:
            serve.make_server(site, port=server.server_address[1])
        assert "--port 0" in (exc.value.hint or "")


@pytest.mark.parametrize(("argv", "message"), [
    (["serve", "--port", "-1"], "expected a port number"),
    (["serve", "--port", "65536"], "expected a port number"),
    (["serve", "--port", "http"], "expected a port number"),
])
def test_serve_options_are_checked(capsys, argv, message):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_serve_refuses_a_missing_artifact(capsys, tmp_path):
    assert cli.main(["serve", "--artifact", str(tmp_path / "missing.tar.gz")]) == 2
    assert "artifact not found" in capsys.readouterr().err


def test_serve_serves_an_artifact_directory(monkeypatch, artifact_root, capsys):
    """--artifact DIR: the assembled directory is served (serve_forever replaced: it would block)."""
    seen = {}

    def serve_forever(directory, *, host, port):
        seen.update(directory=directory, host=host, port=port, files=sorted(p.name for p in directory.iterdir()))

    monkeypatch.setattr(serve, "serve_forever", serve_forever)
    assert cli.main(["serve", "--artifact", str(artifact_root), "--port", "0"]) == 0
    assert seen["host"] == "127.0.0.1" and seen["port"] == 0
    assert "python.wasm" in seen["files"] and "index.html" in seen["files"]
    assert not seen["directory"].exists()  # the assembled directory is temporary
