"""Cache entries: stamped on success, removed on failure; keys; the lock; CACHEDIR.TAG."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest

from wasmbuild import cache
from wasmbuild.errors import LockError


@pytest.fixture
def entry(tmp_path):
    return tmp_path / "cache" / "toolchains" / "thing-1234"


# --- fresh_entry ----------------------------------------------------------------------------------------


def test_fresh_entry_stamps_on_success(entry):
    with cache.fresh_entry(entry, "k1", route="release", n=3) as path:
        assert path == entry and entry.is_dir()
        assert not (entry / cache.STAMP_NAME).exists()  # written last, not first
        (entry / "payload").write_text("data")
    stamp = json.loads((entry / cache.STAMP_NAME).read_text())
    assert stamp == {"key": "k1", "route": "release", "n": 3}
    assert cache.is_valid(entry, "k1")
    assert (entry / "payload").read_text() == "data"
    assert sorted(p.name for p in entry.iterdir()) == [cache.STAMP_NAME, "payload"]


def test_fresh_entry_starts_from_scratch(entry):
    entry.mkdir(parents=True)
    (entry / "stale-from-an-interrupted-run").write_text("x")
    with cache.fresh_entry(entry, "k"):
        assert list(entry.iterdir()) == []


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt, SystemExit])
def test_fresh_entry_removes_the_entry_when_the_body_raises(entry, exc_type):
    with pytest.raises(exc_type), cache.fresh_entry(entry, "k"):
        (entry / "sub").mkdir()
        (entry / "sub" / "half-written").write_text("x")
        raise exc_type("interrupted")
    assert not entry.exists()
    assert entry.parent.is_dir()  # only the entry itself goes
    assert not cache.is_valid(entry, "k")


def test_fresh_entry_replaces_a_valid_entry(entry):
    with cache.fresh_entry(entry, "old"):
        (entry / "old-file").write_text("x")
    with pytest.raises(ValueError, match="boom"), cache.fresh_entry(entry, "new"):
        raise ValueError("boom")
    assert not entry.exists()


# --- stamps and keys --------------------------------------------------------------------------------------


def test_is_valid_false_for_missing_mismatched_or_corrupt_stamp(entry):
    assert not cache.is_valid(entry, "k")  # no entry at all
    entry.mkdir(parents=True)
    assert not cache.is_valid(entry, "k")  # no stamp
    cache.write_stamp(entry, "other")
    assert not cache.is_valid(entry, "k")  # mismatched key
    assert cache.is_valid(entry, "other")
    (entry / cache.STAMP_NAME).write_text('{"key": "k"')  # truncated JSON
    assert not cache.is_valid(entry, "k")
    (entry / cache.STAMP_NAME).write_text("{}")
    assert not cache.is_valid(entry, "k")
    assert cache.read_stamp(entry) == {}
    assert not (entry / (cache.STAMP_NAME + ".tmp")).exists()


def test_hash_key_is_independent_of_dict_order():
    a = {"layout": 1, "packages": [{"name": "clang", "sha256": "x"}], "env": {"A": "1", "B": "2"}}
    b = {"env": {"B": "2", "A": "1"}, "packages": [{"sha256": "x", "name": "clang"}], "layout": 1}
    assert cache.hash_key(a) == cache.hash_key(b)
    assert len(cache.hash_key(a)) == 64


def test_hash_key_changes_with_any_value_and_with_list_order():
    base = {"layout": 1, "flags": ["-O2", "-g"]}
    assert cache.hash_key(base) != cache.hash_key({"layout": 2, "flags": ["-O2", "-g"]})
    assert cache.hash_key(base) != cache.hash_key({"layout": 1, "flags": ["-g", "-O2"]})
    assert cache.hash_key({"n": 1}) != cache.hash_key({"n": "1"})


def test_hash_key_accepts_paths():
    assert cache.hash_key({"p": Path("/a/b")}) == cache.hash_key({"p": "/a/b"})


def test_sha256_file(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)  # several chunks
    (tmp_path / "f").write_bytes(data)
    assert cache.sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()
    assert cache.sha256_file(tmp_path / "f", chunk=1000) == hashlib.sha256(data).hexdigest()


def test_remove_tree_handles_files_links_dirs_and_missing(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    link = tmp_path / "link"
    link.symlink_to(target)
    cache.remove_tree(link)
    assert not link.is_symlink() and (target / "keep").exists()  # the link goes, never what it points to
    cache.remove_tree(target / "keep")
    assert not (target / "keep").exists()
    (target / "d" / "e").mkdir(parents=True)
    cache.remove_tree(target)
    assert not target.exists()
    cache.remove_tree(tmp_path / "never-existed")


# --- the lock --------------------------------------------------------------------------------------------


def test_lock_raises_lock_error_when_another_holder_has_it(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    fd = os.open(root / ".wasmbuild.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LockError, match=rf"another wasmbuild run \(pid \S+\) is using the cache {root}") as info, \
                cache.lock(root):
            pytest.fail("the lock must not be granted")
        assert info.value.exit_code == 10
        assert "use another --cache-dir" in str(info.value)
    finally:
        os.close(fd)
    with cache.lock(root):  # free again once the other holder is gone
        pass


def test_lock_is_exclusive_within_one_process_and_released_after_use(tmp_path):
    root = tmp_path / "cache"
    with cache.lock(root):
        with pytest.raises(LockError), cache.lock(root):
            pass
        # A different lock name is a different lock.
        with cache.lock(root, name="other"):
            pass
        probe = os.open(root / ".wasmbuild.lock", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(probe)
    probe = os.open(root / ".wasmbuild.lock", os.O_RDWR)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released: no error
    finally:
        os.close(probe)


def test_lock_with_wait_says_so_and_waits_for_the_holder(tmp_path, capsys):
    root = tmp_path / "cache"
    order = []
    with cache.lock(root):
        def second():
            with cache.lock(root, wait=True):
                order.append("second")

        t = threading.Thread(target=second)
        t.start()
        time.sleep(0.3)
        order.append("first done")
        assert t.is_alive()
    t.join(5)
    assert order == ["first done", "second"]
    out = capsys.readouterr()
    assert f"waiting for another wasmbuild run (pid {os.getpid()}) to finish with the cache {root}" in out.out + out.err


def test_lock_is_released_when_the_body_raises(tmp_path):
    root = tmp_path / "cache"
    with pytest.raises(RuntimeError), cache.lock(root):
        raise RuntimeError("x")
    with cache.lock(root):
        pass


# --- the cache root -------------------------------------------------------------------------------------


def test_ensure_cache_root_writes_cachedir_tag(tmp_path):
    root = tmp_path / "a" / "b" / "cache"
    assert cache.ensure_cache_root(root) == root
    tag = (root / "CACHEDIR.TAG").read_text()
    assert tag.startswith("Signature: 8a477f597d28d172789f06886806bc55\n")
    assert sorted(p.name for p in root.iterdir()) == ["CACHEDIR.TAG"]


def test_ensure_cache_root_keeps_an_existing_tag(tmp_path):
    (tmp_path / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n# mine\n")
    cache.ensure_cache_root(tmp_path)
    assert (tmp_path / "CACHEDIR.TAG").read_text().endswith("# mine\n")


def test_lock_creates_the_root_and_its_tag(tmp_path):
    root = tmp_path / "new-cache"
    with cache.lock(root):
        assert (root / "CACHEDIR.TAG").is_file()
        assert (root / ".wasmbuild.lock").is_file()


def test_default_cache_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("WASMBUILD_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.default_cache_dir() == (tmp_path / "explicit").resolve()
    monkeypatch.delenv("WASMBUILD_CACHE_DIR")
    assert cache.default_cache_dir() == (tmp_path / "xdg" / "wasmbuild").resolve()
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.default_cache_dir() == (tmp_path / "home" / ".cache" / "wasmbuild").resolve()
