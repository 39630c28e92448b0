"""libs.fetch_source: the error naming both the upstream and the Debian repack routes."""

from __future__ import annotations

import hashlib

import pytest

from wasmbuild import libs
from wasmbuild.download import Sources
from wasmbuild.errors import ChecksumError, DownloadError
from wasmbuild.recipe import Download

REPACK_PATH = "pool/main/f/foo/foo_1.0+dfsg.orig.tar.gz"


def test_both_routes_failing_gives_the_hint_once(http_server, tmp_path):
    sha = hashlib.sha256(b"foo").hexdigest()
    repack_sha = hashlib.sha256(b"foo+dfsg").hexdigest()
    lib = libs.Library(
        name="foo", version="1.0", license="MIT",
        source=Download(url=http_server.url("/upstream/foo-1.0.tar.gz"), sha256=sha, size=3),
        repack=Download(url=f"debian:{REPACK_PATH}", sha256=repack_sha, size=8,
                        filename=REPACK_PATH.rsplit("/", 1)[-1], debian=REPACK_PATH),
        script="true", provides={}, data={},
    )
    with pytest.raises(DownloadError) as info:
        libs.fetch_source(lib, tmp_path / "cache", Sources(debian_mirror=http_server.url("/debian")))
    assert not isinstance(info.value, ChecksumError)
    message = str(info.value)
    assert message.count("hint:") == 1
    assert message.endswith("\n  hint: " + info.value.hint)
    assert message.startswith(f"could not obtain foo-1.0.tar.gz (sha256 {sha}):\n"
                              f"  - upstream: {lib.source.url}: HTTP 404 Not Found\n"
                              f"  - debian (repacked orig): could not obtain foo_1.0+dfsg.orig.tar.gz")
    assert f"{http_server.url('/debian/' + REPACK_PATH)}: HTTP 404" in message
    assert http_server.requests == ["/upstream/foo-1.0.tar.gz", f"/debian/{REPACK_PATH}"]
