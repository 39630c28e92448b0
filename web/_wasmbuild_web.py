"""The Python half of wasmbuild's JavaScript API (web/wasmbuild-python.mjs), installed into the web artifact's
standard library as `_wasmbuild_web`.

`run(code)` runs code as a REPL (or Pyodide's eval_code) does: every statement is executed in `__main__`'s
namespace, and when the last one is an expression its value is returned as its `repr` (None is no value).
Nothing is captured: stdout and stderr go where the interpreter's go (the page's console). The result is a dict:
`{"ok": True, "repr": "2"}` (`"repr": None` when there is no value), or
`{"ok": False, "type": "ZeroDivisionError", "message": "division by zero", "traceback": "Traceback ..."}`; a
SyntaxError has its formatted text (file, line, caret) as its traceback, as the REPL shows it.

`complete(source)` says whether a REPL's input is complete: False while more lines are needed (`if x:` ...),
True when it can run, syntax errors included (running it reports them).

`install_wheel(path, filename)` installs a pure-Python wheel (py3-none-any) into site-packages, as pip would
without its dependencies: the file name (PEP 427) and its tags, the zip, every member's path and its RECORD hash
are checked before anything is written; purelib and platlib (and the .data directory's purelib and platlib parts)
are installed, the .data directory's other parts (scripts, headers, data) are left out and reported. The import
system sees the package at once. A wheel this interpreter does not install raises WheelError, whose message names
the cause and the fix. Dependencies are not resolved: install each wheel (Requires-Dist comes back as `requires`).

The JavaScript side talks to it through two files in the in-memory file system (`run_file`, `complete_file`,
`wheel_name_file`, `install_wheel_file`): it writes the input with FS.writeFile, calls PyRun_SimpleString and reads
the JSON answer back.
"""

from __future__ import annotations

import ast
import builtins
import codeop
import contextlib
import json
import linecache
import os
import re
import sys
import traceback
from typing import Any

__all__ = ["WheelError", "complete", "complete_file", "install_wheel", "install_wheel_file", "parse_wheel_name",
           "run", "run_file", "wheel_name_file"]

# Each input gets its own file name, as the 3.13 REPL names them, so a traceback through a function defined by an
# earlier input shows that input's lines (they are kept in linecache).
_FILENAME = "<python-input-{}>"
_counter = 0


def _next_filename(code: str) -> str:
    global _counter
    name = _FILENAME.format(_counter)
    _counter += 1
    linecache.cache[name] = (len(code), None, code.splitlines(keepends=True), name)
    return name


# Frames of this module are left out of tracebacks: its code objects' file name (from a .pyc or the source alike).
_THIS_FILE = _next_filename.__code__.co_filename


def _namespace() -> dict[str, Any]:
    import __main__

    return __main__.__dict__


def _error(exc: BaseException, *, compiling: bool = False) -> dict[str, Any]:
    """The exception as the REPL prints it: without this module's own frames, and for code that does not compile
    only the error itself (a SyntaxError's file, line and caret)."""
    if compiling:
        lines = traceback.format_exception_only(type(exc), exc)
        message = exc.msg if isinstance(exc, SyntaxError) else str(exc)
    else:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == _THIS_FILE:
            tb = tb.tb_next
        lines = traceback.format_exception(type(exc), exc, tb)
        message = str(exc)
    return {"ok": False, "type": type(exc).__name__, "message": message, "traceback": "".join(lines).rstrip("\n")}


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # a closed or replaced stream: the result is still returned
            pass


def run(code: str) -> dict[str, Any]:
    """Execute `code` in __main__; the repr of its last expression, or the exception as the REPL shows it."""
    namespace = _namespace()
    filename = _next_filename(code)
    try:
        try:
            tree = ast.parse(code, filename, "exec")
        except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
            return _error(exc, compiling=True)  # ValueError: a NUL character in the source (3.11.2)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        try:
            exec(compile(tree, filename, "exec"), namespace)
            if last is None:
                return {"ok": True, "repr": None}
            value = eval(compile(last, filename, "eval"), namespace)
            if value is None:
                return {"ok": True, "repr": None}
            builtins._ = value  # as the REPL's sys.displayhook does
            return {"ok": True, "repr": repr(value)}
        except BaseException as exc:  # noqa: B036 -- SystemExit and KeyboardInterrupt are results here too
            # For pdb.pm() and friends, as the REPL leaves them (sys.last_exc is 3.12's name).
            sys.last_type, sys.last_value, sys.last_traceback = type(exc), exc, exc.__traceback__
            sys.last_exc = exc
            return _error(exc)
    finally:
        _flush()


def complete(source: str) -> bool:
    """False while the REPL needs more lines (an open block, bracket or string), True when `source` can run."""
    try:
        return codeop.compile_command(source, _FILENAME.format("?"), "single") is not None
    except (SyntaxError, ValueError, OverflowError):
        return True  # complete, and wrong: running it reports the error


def _write_json(path: str, value: Any) -> None:
    # ASCII JSON: a repr or message with lone surrogates is still written (as \udXXX escapes, which JSON.parse reads).
    with open(path, "w", encoding="ascii") as f:
        json.dump(value, f)


def run_file(source_path: str, result_path: str) -> None:
    """run() the UTF-8 code in `source_path`; its result as JSON in `result_path` (the JavaScript side's call)."""
    with open(source_path, encoding="utf-8") as f:
        code = f.read()
    _write_json(result_path, run(code))


def complete_file(source_path: str, result_path: str) -> None:
    """complete() of the code in `source_path`, as JSON `true`/`false` in `result_path`."""
    with open(source_path, encoding="utf-8") as f:
        source = f.read()
    _write_json(result_path, complete(source))


# --- installing pure-Python wheels --------------------------------------------------------------------------------


class WheelError(Exception):
    """A wheel this interpreter does not install; the message names the cause and the fix."""


# PEP 427 (the binary distribution format): {distribution}-{version}(-{build tag})?-{python}-{abi}-{platform}.whl,
# each component escaped (runs of other characters as `_`), a tag part possibly a compressed set (`py2.py3`).
_WHEEL_NAME = re.compile(r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)-(?P<version>[A-Za-z0-9_.!+]+)"
                         r"(?:-(?P<build>[0-9][A-Za-z0-9_.]*))?"
                         r"-(?P<python>[A-Za-z0-9_.]+)-(?P<abi>[A-Za-z0-9_.]+)-(?P<platform>[A-Za-z0-9_.]+)\.whl")
_WHEEL_NAME_FORM = "{distribution}-{version}(-{build})?-{python tag}-{abi tag}-{platform tag}.whl"
# The uncompressed size a wheel may have (the wasm heap holds it twice while it is installed).
MAX_UNPACKED_BYTES = 512 * 1024 * 1024
# What INSTALLER names (the installer of a distribution, as pip writes "pip").
INSTALLER = "wasmbuild"
# The .data directory's parts that are installed, into these install scheme paths; the others are reported.
_INSTALLED_SCHEMES = ("purelib", "platlib")


def _canonical(name: str) -> str:
    """A project name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pure_python_tags() -> frozenset[str]:
    """The Python tags of a pure-Python wheel this interpreter can use, with abi `none` and platform `any`, as pip
    accepts them: py3, py3N for every minor version up to this one, and this CPython's own cp3N."""
    major, minor = sys.version_info[:2]
    return frozenset({f"py{major}", f"cp{major}{minor}", *(f"py{major}{m}" for m in range(minor + 1))})


def parse_wheel_name(filename: str) -> dict[str, Any]:
    """The parts of a wheel's file name (PEP 427), once its tags are known to be ones of a pure-Python wheel for
    this interpreter: {"name", "version", "build", "tag"}; WheelError otherwise."""
    match = _WHEEL_NAME.fullmatch(filename)
    if match is None:
        raise WheelError(f"{filename!r} is not a wheel's file name ({_WHEEL_NAME_FORM}, PEP 427): give the wheel's "
                         f"own file name, as its project publishes it (the filename option names bytes or a URL "
                         f"that does not end in it)")
    parts = match.groupdict()
    tag = f"{parts['python']}-{parts['abi']}-{parts['platform']}"
    pythons, abis, platforms = (set(parts[k].split(".")) for k in ("python", "abi", "platform"))
    version = ".".join(map(str, sys.version_info[:2]))
    if "none" not in abis or "any" not in platforms:
        raise WheelError(f"{filename}: its tag {tag} is a platform wheel's (compiled code for {parts['platform']}, "
                         f"ABI {parts['abi']}): this interpreter (CPython {version} for wasm32-emscripten) cannot "
                         f"load platform wheels, only pure-Python ones (py3-none-any); install the project's "
                         f"py3-none-any wheel, if it publishes one")
    if not pythons & _pure_python_tags():
        raise WheelError(f"{filename}: its tag {tag} is not for CPython {version} (a pure-Python wheel for it is "
                         f"tagged py3-none-any or py2.py3-none-any): install a wheel of the project made for "
                         f"Python 3")
    return {"name": parts["name"], "version": parts["version"], "build": parts["build"], "tag": tag}


def _member_parts(name: str, filename: str) -> tuple[str, ...]:
    """A zip member's path as its components; an absolute path, `..`, a backslash or a NUL are refused (a wheel's
    files stay inside site-packages)."""
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if name.startswith("/") or "\\" in name or "\0" in name or ".." in parts or (parts and ":" in parts[0]):
        raise WheelError(f"{filename}: its member {name!r} is an absolute path or leads out of its directory (..): "
                         f"refused, nothing was installed; the wheel is damaged or malicious, get it from the "
                         f"project again")
    return parts


def _record_hash(data_hash: str, filename: str, member: str) -> tuple[str, str]:
    """RECORD's `algorithm=urlsafe-base64` hash of a member as (algorithm, digest)."""
    import hashlib

    algorithm, _, digest = data_hash.partition("=")
    if algorithm in ("md5", "sha1") or algorithm not in hashlib.algorithms_available or not digest:
        raise WheelError(f"{filename}: RECORD gives {member} the hash {data_hash!r}: not a hash a wheel may use "
                         f"(sha256 or stronger): the wheel is damaged, get it from the project again")
    return algorithm, digest


def _read_metadata(zf: Any, path: str, filename: str) -> Any:
    import email.parser

    try:
        text = zf.read(path).decode("utf-8")
    except KeyError:
        raise WheelError(f"{filename}: it has no {path}: not a complete wheel; get it from the project "
                         f"again") from None
    except UnicodeDecodeError as exc:
        raise WheelError(f"{filename}: {path} is not UTF-8 ({exc}): the wheel is damaged") from None
    return email.parser.Parser().parsestr(text)


def _site_dir(scheme: str) -> str:
    """The install scheme's directory (sysconfig's purelib or platlib), without the `//` of prefix `/`."""
    import sysconfig

    path = sysconfig.get_path(scheme)
    return "/" + path.lstrip("/") if path.startswith("//") else path


def _installed_dist_infos(directory: str, canonical: str) -> list[str]:
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith(".dist-info")
                  and _canonical(n[: -len(".dist-info")].rpartition("-")[0]) == canonical)


def _uninstall(directory: str, dist_info: str) -> str | None:
    """Remove an installed distribution (its RECORD's files inside `directory`, its .dist-info): its version."""
    import csv
    import glob
    import shutil

    path = os.path.join(directory, dist_info)
    version = dist_info[: -len(".dist-info")].rpartition("-")[2] or None
    root = os.path.realpath(directory)
    try:
        with open(os.path.join(path, "RECORD"), encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))
    except OSError:
        rows = []
    parents: set[str] = set()
    for row in rows:
        if not row:
            continue
        target = os.path.realpath(os.path.join(directory, row[0]))
        if not target.startswith(root + os.sep):
            continue  # RECORD names only files inside site-packages to remove
        stale = [target]
        if target.endswith(".py"):  # and its bytecode, where the host wrote some
            head, tail = os.path.split(target)
            stale += glob.glob(os.path.join(glob.escape(head), "__pycache__", glob.escape(tail[:-3]) + ".*.pyc"))
        for file in stale:
            with contextlib.suppress(OSError):
                os.unlink(file)
            parents.add(os.path.dirname(file))
    shutil.rmtree(path, ignore_errors=True)
    # Directories left empty go too (an empty package directory would still import, as a namespace package).
    for parent in sorted(parents, key=len, reverse=True):
        while parent.startswith(root + os.sep):
            try:
                os.rmdir(parent)
            except OSError:
                break
            parent = os.path.dirname(parent)
    return version


def install_wheel(path: str, filename: str | None = None, *, site_packages: str | None = None) -> dict[str, Any]:
    """Install the pure-Python wheel at `path` (named `filename`, default its base name) into site-packages (or
    `site_packages`), replacing an installed distribution of the same name; the import system sees it at once.

    Resolves nothing: its dependencies (Requires-Dist, returned as `requires`) must be installed one by one.
    Returns {"name", "version", "files" (absolute paths written), "location", "requires", "skipped" (the .data
    directory's members not installed), "replaced" (the version replaced, or None)}. WheelError names what is
    wrong with a wheel and how to get a good one; nothing is written then."""
    import base64
    import csv
    import hashlib
    import importlib
    import io
    import site
    import zipfile

    filename = filename or os.path.basename(path)
    wheel_name = parse_wheel_name(filename)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as exc:
        raise WheelError(f"{filename} is not a zip archive, as a wheel is ({exc}): the download is damaged or is "
                         f"not the wheel (an HTML page served in its place?); check its url") from None
    with zf:
        infos = [i for i in zf.infolist() if not i.is_dir()]
        seen: set[str] = set()
        members: dict[str, tuple[str, ...]] = {}
        for info in infos:
            parts = _member_parts(info.filename, filename)
            if not parts:
                continue
            key = "/".join(parts)
            if key in seen:
                raise WheelError(f"{filename}: its member {key} is there twice: the wheel is damaged, get it "
                                 f"from the project again")
            seen.add(key)
            members[info.filename] = parts
        unpacked = sum(i.file_size for i in infos)
        if unpacked > MAX_UNPACKED_BYTES:
            raise WheelError(f"{filename}: it unpacks to {unpacked} bytes, more than this installer takes "
                             f"({MAX_UNPACKED_BYTES}): not a wheel for the browser")

        tops = {parts[0] for parts in members.values()}
        dist_infos = sorted(t for t in tops if t.endswith(".dist-info"))
        canonical = _canonical(wheel_name["name"])
        matching = [d for d in dist_infos if _canonical(d[: -len(".dist-info")].rpartition("-")[0]) == canonical]
        if len(matching) != 1:
            found = ", ".join(dist_infos) or "none"
            raise WheelError(f"{filename}: a wheel has one {wheel_name['name']}-<version>.dist-info directory, this "
                             f"one has {found}: the wheel is damaged or misnamed; get it from the project again")
        dist_info = matching[0]
        data_dir = dist_info[: -len(".dist-info")] + ".data"

        wheel = _read_metadata(zf, f"{dist_info}/WHEEL", filename)
        wheel_version = (wheel.get("Wheel-Version") or "").strip()
        if wheel_version.split(".")[0] != "1":
            raise WheelError(f"{filename}: its Wheel-Version is {wheel_version or 'missing'}; this installer knows "
                             f"version 1 (PEP 427): install a wheel made by a current build backend")
        metadata = _read_metadata(zf, f"{dist_info}/METADATA", filename)
        name = (metadata.get("Name") or wheel_name["name"]).strip()
        version = (metadata.get("Version") or wheel_name["version"]).strip()
        if _canonical(name) != canonical:
            raise WheelError(f"{filename}: its METADATA names the project {name!r}, its file name "
                             f"{wheel_name['name']!r}: the wheel is misnamed; get it from the project again")
        root_scheme = "purelib" if (wheel.get("Root-Is-Purelib") or "").strip().lower() == "true" else "platlib"

        record_path = f"{dist_info}/RECORD"
        try:
            record_text = zf.read(record_path).decode("utf-8")
        except KeyError:
            raise WheelError(f"{filename}: it has no {record_path}: not a complete wheel; get it from the project "
                             f"again") from None
        record = {row[0]: row[1] for row in csv.reader(io.StringIO(record_text)) if len(row) >= 2 and row[1]}

        dirs = {scheme: site_packages or _site_dir(scheme) for scheme in _INSTALLED_SCHEMES}
        # Every member checked (its place, its CRC, its RECORD hash) before the first file is written.
        plan: list[tuple[zipfile.ZipInfo, str]] = []
        planned: dict[str, str] = {}
        skipped: list[str] = []
        for info in infos:
            parts = members.get(info.filename, ())
            if not parts or parts[0] == dist_info and parts[1:] in (("RECORD",), ("RECORD.jws",), ("RECORD.p7s",),
                                                                     ("INSTALLER",)):
                continue  # RECORD and INSTALLER are written below
            if parts[0] == data_dir:
                if len(parts) < 3 or parts[1] not in _INSTALLED_SCHEMES:
                    skipped.append("/".join(parts))
                    continue
                dest = os.path.join(dirs[parts[1]], *parts[2:])
            else:
                dest = os.path.join(dirs[root_scheme], *parts)
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, NotImplementedError, EOFError, OSError, RuntimeError) as exc:
                raise WheelError(f"{filename}: its member {info.filename} cannot be read ({exc}): the wheel is "
                                 f"damaged (or compressed in a way zipfile cannot read); get it again") from None
            expected = record.get(info.filename)
            if expected is not None:
                algorithm, digest = _record_hash(expected, filename, info.filename)
                actual = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest()).rstrip(b"=").decode()
                if actual != digest.rstrip("="):
                    raise WheelError(f"{filename}: its member {info.filename} does not have the hash its RECORD "
                                     f"gives ({expected}; it has {algorithm}={actual}): the wheel is damaged or "
                                     f"was changed; get it from the project again")
            if dest in planned:
                raise WheelError(f"{filename}: its members {planned[dest]} and {info.filename} both install "
                                 f"{dest}: the wheel is damaged; get it from the project again")
            planned[dest] = info.filename
            plan.append((info, dest))

        replaced = None
        for scheme_dir in dict.fromkeys(dirs.values()):
            for old in _installed_dist_infos(scheme_dir, canonical):
                replaced = _uninstall(scheme_dir, old) or replaced
        written: list[str] = []
        try:
            for info, dest in plan:
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                with open(dest, "wb") as f:
                    f.write(zf.read(info))
                written.append(dest)
            installed_info = os.path.join(dirs[root_scheme], dist_info)
            os.makedirs(installed_info, exist_ok=True)
            installer = os.path.join(installed_info, "INSTALLER")
            with open(installer, "w", encoding="utf-8") as f:
                f.write(f"{INSTALLER}\n")
            written.append(installer)
            # RECORD as pip writes it: every installed file by its path from site-packages, with its hash and size.
            base = dirs[root_scheme]
            lines = io.StringIO()
            out = csv.writer(lines, lineterminator="\n")
            for dest in written:
                with open(dest, "rb") as f:
                    data = f.read()
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                out.writerow([os.path.relpath(dest, base).replace(os.sep, "/"), f"sha256={digest}", len(data)])
            record_file = os.path.join(installed_info, "RECORD")
            out.writerow([os.path.relpath(record_file, base).replace(os.sep, "/"), "", ""])
            with open(record_file, "w", encoding="utf-8", newline="") as f:
                f.write(lines.getvalue())
            written.append(record_file)
        except BaseException:
            for dest in written:
                with contextlib.suppress(OSError):
                    os.unlink(dest)
            raise

    # The import system sees it now: site-packages on sys.path (it is, when it existed at start-up), the wheel's
    # own .pth files processed as site does at start-up, and the finders' cached directory listings dropped.
    for directory in dict.fromkeys(dirs.values()):
        if directory not in sys.path:
            sys.path.append(directory)
        for dest in written:
            if os.path.dirname(dest) == directory and dest.endswith(".pth"):
                site.addpackage(directory, os.path.basename(dest), None)
    importlib.invalidate_caches()
    return {"name": name, "version": version, "files": sorted(written), "location": dirs[root_scheme],
            "requires": [str(r).strip() for r in metadata.get_all("Requires-Dist") or []],
            "skipped": sorted(skipped), "replaced": replaced}


def _refused(exc: WheelError) -> dict[str, Any]:
    return {"ok": False, "refused": True, "type": "WheelError", "message": str(exc)}


def wheel_name_file(source_path: str, result_path: str) -> None:
    """parse_wheel_name() of the file name in `source_path`, as JSON in `result_path`: {"ok": true, ...} or the
    refusal (the JavaScript side's check before it downloads anything)."""
    with open(source_path, encoding="utf-8") as f:
        filename = f.read()
    try:
        result = {"ok": True, **parse_wheel_name(filename)}
    except WheelError as exc:
        result = _refused(exc)
    _write_json(result_path, result)


def install_wheel_file(source_path: str, result_path: str) -> None:
    """install_wheel() of the JSON `{"path", "filename"}` in `source_path`; its result as JSON in `result_path`:
    {"ok": true, "name", ...}, a refusal {"ok": false, "refused": true, "message"}, or another exception as run()
    gives it. The .data parts left out are said on stderr, one line per part."""
    with open(source_path, encoding="utf-8") as f:
        request = json.load(f)
    try:
        result = {"ok": True, **install_wheel(request["path"], request["filename"])}
    except WheelError as exc:
        result = _refused(exc)
    except Exception as exc:
        result = _error(exc)
    else:
        parts: dict[str, int] = {}
        for member in result["skipped"]:
            part = "/".join(member.split("/")[:2])
            parts[part] = parts.get(part, 0) + 1
        for part, count in parts.items():
            print(f"installWheel: {request['filename']}: left out {part}/ ({count} file{'s' * (count != 1)}): "
                  f"only purelib and platlib are installed", file=sys.stderr)
    _flush()
    _write_json(result_path, result)
