"""`wasmbuild reproduce` (nox -s reproduce): two cold builds of one artifact, the second under conditions that
must not matter, compared file by file.

  build A: this user, a fresh cache and dist/ under <work>/a, TZ=UTC, LC_ALL=C.UTF-8, umask 022
  build B: another user (`nobody` when run as root; the same user otherwise, said so), a deeper directory
           <work>/b/other/build-dir, TZ=Asia/Kathmandu (+05:45), LC_ALL=C, umask 077, and the clock 9 days and
           3 hours ahead when `faketime` is installed

Every file of B's dist/ must be byte-identical to A's (the provenance files too: both builds take the same
routes). Differences are listed per file, with the differing archive members, and diffoscope's report where
diffoscope is installed. Nothing is kept unless --keep.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from wasmbuild import cache, log
from wasmbuild.errors import BuildError, UsageError, VerifyError
from wasmbuild.recipe import project_root, select_recipe
from wasmbuild.release.verify import FetchOptions, compare_archives, read_archive

CLOCK_OFFSET = "+9d3h"  # faketime's relative offset for build B


@dataclass(frozen=True)
class Conditions:
    """How one build runs (its command line is the same `wasmbuild build` but for the paths)."""

    label: str
    directory: Path
    user: str | None  # None: this process's user
    env: dict[str, str]
    umask: int
    faketime: str | None

    def describe(self) -> str:
        who = self.user or pwd.getpwuid(os.getuid()).pw_name
        clock = f"clock {self.faketime}" if self.faketime else "real clock"
        return (f"user {who}, {self.directory}, TZ={self.env['TZ']}, LC_ALL={self.env['LC_ALL']}, "
                f"umask {self.umask:03o}, {clock}")


def conditions(work: Path, *, other_user: str | None, faketime: bool) -> tuple[Conditions, Conditions]:
    a = Conditions("A", work / "a", None, {"TZ": "UTC", "LC_ALL": "C.UTF-8"}, 0o022, None)
    b = Conditions("B", work / "b" / "other" / "build-dir", other_user,
                   {"TZ": "Asia/Kathmandu", "LC_ALL": "C"}, 0o077, CLOCK_OFFSET if faketime else None)
    return a, b


def command(c: Conditions, python: Sequence[str], build_args: Sequence[str]) -> list[str]:
    """The whole command line of one build: [setpriv to the user] [faketime] sh -c 'umask; exec build'."""
    build = [*python, "-m", "wasmbuild", "build", "--cache-dir", str(c.directory / "cache"), "--dist-dir",
             str(c.directory / "dist"), "--no-smoke-test", *build_args]
    argv = ["sh", "-c", f"umask {c.umask:03o} && exec \"$@\"", "sh", *build]
    if c.faketime:
        argv = ["faketime", "-f", c.faketime, *argv]
    if c.user:
        pw = pwd.getpwnam(c.user)
        argv = ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", "--", *argv]
    return argv


def environment(c: Conditions, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "WASMBUILD_CACHE")) and k != "LANG"}
    env.update(c.env)
    env.update(extra)
    env["HOME"] = str(c.directory / "home")
    env["XDG_CACHE_HOME"] = str(c.directory / "home" / ".cache")
    env["TMPDIR"] = str(c.directory / "tmp")
    if c.faketime:
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
    return env


def python_for(user: str | None, work: Path, root: Path) -> list[str]:
    """A Python that `user` can run with wasmbuild importable: this one when it can, else a venv of
    /usr/bin/python3 (readable by everyone) with a copy of this wasmbuild installed."""
    probe = [sys.executable, "-c", "import wasmbuild, wasmtime, yaml, requests"]
    if user is None or _run_as(user, probe, work) == 0:
        return [sys.executable]
    base = shutil.which("python3", path="/usr/bin:/usr/local/bin")
    if base is None:
        raise UsageError(f"user {user} cannot run {sys.executable} and there is no /usr/bin/python3",
                         hint="run reproduce with --user pointing at a user who can read this Python")
    src = work / "wasmbuild-src"
    src.mkdir()
    for part in ("pyproject.toml", "README.md"):
        shutil.copy2(root / part, src / part)
    shutil.copytree(root / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    venv = work / "venv"
    log.info(f"  {user} cannot run {sys.executable}: a venv of {base} with this wasmbuild ({venv})")
    for argv in ([base, "-m", "venv", str(venv)],
                 [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(src)]):
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise BuildError(f"preparing a Python for {user} failed: {' '.join(argv)}:\n{proc.stderr[-2000:]}")
    _open_up(work)
    return [str(venv / "bin" / "python")]


def _run_as(user: str, argv: list[str], work: Path) -> int:
    """`argv`'s exit status run as `user` the way the build runs (through sh: setpriv's own exec of a path the
    user cannot reach may still succeed, the build's exec would not)."""
    pw = pwd.getpwnam(user)
    return subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups", "--",
                           "sh", "-c", 'exec "$@"', "sh", *argv], cwd=work, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "HOME": str(work)},
                          check=False).returncode


def _open_up(path: Path) -> None:
    """World-readable (directories searchable), so the other user can use what this one prepared."""
    for p in [path, *path.rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o444 | (0o111 if p.is_dir() or p.stat().st_mode & 0o100 else 0))


def compare(a: Path, b: Path) -> list[tuple[str, str]]:
    """(file, result) for every file of either dist/: "identical", "differs", "only in A", "only in B"."""
    rows = []
    for name in sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()}):
        pa, pb = a / name, b / name
        if not pb.exists():
            rows.append((name, "only in A"))
        elif not pa.exists():
            rows.append((name, "only in B"))
        else:
            rows.append((name, "identical" if cache.sha256_file(pa) == cache.sha256_file(pb) else "differs"))
    return rows


def reproduce(build_args: Sequence[str], *, user: str | None, keep: bool, root: Path) -> list[tuple[str, str]]:
    """Both builds, then the comparison; VerifyError when any file differs."""
    if user is not None and os.getuid() != 0:
        raise UsageError(f"--user {user} needs root (setpriv switches users)", hint="run as root, or leave out --user")
    if user is None and os.getuid() == 0:
        user = "nobody"
    if user is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            raise UsageError(f"--user {user}: no such user", hint="name an existing user") from None
    if not shutil.which("setpriv") and user is not None:
        raise UsageError("setpriv is missing (util-linux): it runs the second build as another user",
                         hint="apt-get install util-linux, or run without root")
    faketime = shutil.which("faketime") is not None
    work = Path(tempfile.mkdtemp(prefix="wasmbuild-reproduce-"))
    try:
        work.chmod(0o755)
        first, second = conditions(work, other_user=user, faketime=faketime)
        for c in (first, second):
            for d in ("home", "tmp"):
                (c.directory / d).mkdir(parents=True)
        if user:
            pw = pwd.getpwnam(user)
            for p in [work / "b", *(work / "b").rglob("*")]:
                os.chown(p, pw.pw_uid, pw.pw_gid)
        pythons = {first.label: [sys.executable], second.label: python_for(user, work, root)}
        extra = {"WASMBUILD_ROOT": str(root)}
        for c in (first, second):
            log.info(f"▶ build {c.label}: {c.describe()}")
            start = time.monotonic()
            argv = command(c, pythons[c.label], build_args)
            code = subprocess.run(argv, cwd=c.directory, env=environment(c, extra), stdin=subprocess.DEVNULL,
                                  check=False).returncode
            if code != 0:
                raise BuildError(f"build {c.label} failed (exit {code}); its output is above",
                                 hint="fix what it names, then run reproduce again")
            log.info(f"✓ build {c.label} in {log.format_duration(time.monotonic() - start)}")
        rows = compare(first.directory / "dist", second.directory / "dist")
        if not faketime:
            log.info("  (faketime is not installed: both builds ran on the real clock; apt-get install faketime)")
        print()
        print(f"A: {first.describe()}\nB: {second.describe()}")
        for name, result in rows:
            sha = cache.sha256_file(first.directory / "dist" / name)[:16] if result == "identical" else ""
            print(f"  {result:<10} {name} {sha}")
        differing = [name for name, result in rows if result != "identical"]
        for name in differing:
            pa, pb = first.directory / "dist" / name, second.directory / "dist" / name
            if name.endswith(".tar.gz") and pa.exists() and pb.exists():
                for line in compare_archives(read_archive(pa), read_archive(pb)):
                    print(f"      {line}")
                if shutil.which("diffoscope"):
                    report = Path.cwd() / f"reproduce-{name}.diffoscope.txt"
                    subprocess.run(["diffoscope", "--text", str(report), str(pa), str(pb)],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False)
                    print(f"      diffoscope: {report}")
        if differing:
            keep = True
            raise VerifyError(f"{len(differing)} of {len(rows)} files differ between the two builds: "
                              + ", ".join(differing), hint=f"both builds are kept in {work}")
        log.info(f"✓ reproducible: {len(rows)} files byte-identical")
        return rows
    finally:
        if keep:
            log.info(f"  kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def reproduce_artifact(target: str, python: str | None, *, jobs: int, fetch: FetchOptions, user: str | None,
                       keep: bool) -> list[tuple[str, str]]:
    """`wasmbuild reproduce`: `reproduce` of the build of CPython `python` (X.Y, X.Y.Z or None: the newest) for
    `target` with `jobs` jobs and the options `fetch`. An unknown version is refused before anything is built."""
    root = project_root()
    recipe = select_recipe(root, python)
    build_args = ["--target", target, "--python", recipe.version, "--jobs", str(jobs), *fetch.build_args()]
    return reproduce(build_args, user=user, keep=keep, root=root)
