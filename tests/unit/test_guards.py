"""The unit-test guards themselves: they must actually block the network and compilers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest
import requests

from wasmbuild import download


def test_requests_to_a_remote_host_are_blocked(guards):
    expected = "must not use the network: name lookup of 'blocked.example'"
    with pytest.raises(pytest.fail.Exception, match=expected):
        requests.get("http://blocked.example/file", timeout=1)
    guards.violations.clear()


def test_raw_socket_connect_to_a_remote_address_is_blocked(guards):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(pytest.fail.Exception, match=r"socket.connect to \('192.0.2.1', 80\) blocked"):
            sock.connect(("192.0.2.1", 80))
    finally:
        sock.close()
    with pytest.raises(pytest.fail.Exception, match="create_connection"):
        socket.create_connection(("198.51.100.7", 443), timeout=1)
    guards.violations.clear()


def test_download_to_a_remote_host_fails_loudly_not_as_a_download_error(guards, tmp_path):
    # The guard's failure is a BaseException: wasmbuild's `except DownloadError` paths cannot hide it.
    with pytest.raises(pytest.fail.Exception):
        download.download("https://blocked.example/x.tar.gz", tmp_path / "x.tar.gz", "0" * 64)
    assert list(tmp_path.iterdir()) == []
    guards.violations.clear()


def test_loopback_server_is_reachable(http_server):
    url = http_server.serve("/hello", b"hi")
    assert requests.get(url, timeout=5).content == b"hi"
    assert http_server.requests == ["/hello"]


@pytest.mark.parametrize(
    ("argv", "shell"),
    [
        (["cc", "--version"], False),
        (["/usr/bin/gcc", "-c", "x.c"], False),
        (["clang-19", "--version"], False),
        (["x86_64-linux-gnu-gcc", "-v"], False),
        (["make", "-j2"], False),
        (["./configure", "--host=wasm32-wasi"], False),
        (["sh", "-c", "cd build && make install"], False),
        (["env", "CC=clang", "make"], False),
        ("CC=cc ./configure && make", True),
    ],
)
def test_compilers_and_build_tools_are_refused(guards, argv, shell):
    with pytest.raises(pytest.fail.Exception, match="must not run compilers or build tools"):
        subprocess.run(argv, shell=shell, check=False)
    guards.violations.clear()


def test_os_system_is_guarded_too(guards):
    with pytest.raises(pytest.fail.Exception, match="'make'"):
        os.system("make all")
    guards.violations.clear()


def test_harmless_commands_still_run():
    proc = subprocess.run([sys.executable, "-c", "print('ok')"], capture_output=True, text=True, check=True)
    assert proc.stdout == "ok\n"


def test_backoff_is_zero_in_unit_tests():
    assert download.BACKOFF == 0
