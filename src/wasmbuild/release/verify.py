"""`wasmbuild verify ARTIFACT [--rebuild]`: check an artifact archive against what is published beside it, and
optionally rebuild it from its recipe in a fresh cache and compare the bytes.

Checks (each one printed; missing companion files are reported as not checked, never as passed). An archive is
verified only when something independent of it vouched for its bytes: SHA256SUMS, release.json, the SBOM or the
rebuild. Its own record travels inside it (an altered archive carries an altered record along), so an archive
with none of these beside it is "not verified" (NotVerified, a non-zero exit), whatever its record says.
  - the archive opens, its first file is BUILD.json, and the record's python.wasm sha256 and size match the member;
  - `<name>.BUILD.json` beside it has the same bytes as the member;
  - `SHA256SUMS` beside it lists the archive (and its -dev / -debuginfo companions present) with their sha256;
  - `release.json` beside it lists the archive with its sha256, size and BUILD.json sha256;
  - `<name>.cdx.json` (the SBOM) names the archive's sha256 and lists every input of the record by sha256.
With --rebuild: `wasmbuild build` of the record's CPython version and target by the record's toolchain route, in a
fresh temporary cache and dist/, then a byte comparison of the archive and its companions; differing files are
named with their differing members (and diffoscope's report where diffoscope is installed).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmbuild import cache, log
from wasmbuild.errors import ArchiveError, DownloadError, UsageError, VerifyError
from wasmbuild.recipe import available_recipes, load_recipe, project_root
from wasmbuild.record import RECORD_NAME
from wasmbuild.release.index import INDEX_NAME, SBOM_SUFFIX, load_index
from wasmbuild.release.sums import parse_sums
from wasmbuild.schema import file_name_problem


class NotVerified(VerifyError):
    """Nothing independent of the archive could be checked: it is neither good nor bad, only unverified."""

    def __init__(self, message: str, report: Report, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


@dataclass
class Report:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # The passed checks that compared the archive's bytes with something outside it (sums, index, SBOM, rebuild).
    independent: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str, detail: str = "", *, independent: bool = False) -> None:
        (self.passed if ok else self.failed).append(what if ok or not detail else f"{what}: {detail}")
        if ok and independent:
            self.independent.append(what)
        log.info(f"  {'✓' if ok else '✕'} {what}" + (f": {detail}" if detail and not ok else ""))

    def skip(self, what: str) -> None:
        self.skipped.append(what)
        log.info(f"  - {what}")


@dataclass(frozen=True)
class Contents:
    """What the archive holds: its top directory, the BUILD.json member's bytes, member name -> sha256."""

    top: str
    record_bytes: bytes
    members: dict[str, str]

    @property
    def record(self) -> dict[str, Any]:
        return json.loads(self.record_bytes)


def read_archive(path: Path) -> Contents:
    """Hash every member of a wasmbuild archive; ArchiveError when it is not one."""
    if not path.is_file():
        raise UsageError(f"artifact not found: {path}", hint="give the path of a cpython-*.tar.gz archive")
    members: dict[str, str] = {}
    record_bytes = None
    first_file = None
    try:
        with tarfile.open(path, "r:gz") as tar:
            for m in tar:
                if not m.isfile():
                    members[m.name] = f"<{'dir' if m.isdir() else 'link:' + m.linkname}>"
                    continue
                f = tar.extractfile(m)
                data = f.read() if f else b""
                members[m.name] = hashlib.sha256(data).hexdigest()
                if first_file is None:
                    first_file = m.name
                    if m.name.endswith("/" + RECORD_NAME) and m.name.count("/") == 1:
                        record_bytes = data
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError(f"{path}: not a readable archive ({exc})", hint="download it again") from None
    if record_bytes is None or first_file is None:
        raise ArchiveError(f"{path}: its first file is not <top>/{RECORD_NAME}: not a wasmbuild artifact",
                           hint="give an archive made by wasmbuild (cpython-<version>-<triple>.tar.gz)")
    try:
        record = json.loads(record_bytes)
    except (ValueError, RecursionError):
        raise ArchiveError(f"{path}: its {RECORD_NAME} is not valid JSON", hint="download it again") from None
    if problem := record_problem(record):
        raise ArchiveError(f"{path}: its {RECORD_NAME} is not a build record: {problem}",
                           hint="give an archive made by wasmbuild, or download it again") from None
    return Contents(first_file.split("/", 1)[0], record_bytes, members)


def record_problem(record: Any) -> str | None:
    """Why `record` (a parsed BUILD.json) does not have the shape the checks read, None when it has."""
    def kind(value: Any, types: type | tuple[type, ...], where: str, optional: bool = False) -> str | None:
        if optional and value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
            return f"{where}: expected {'a ' + names if names != 'dict' else 'a mapping'}, got {value!r:.60}"
        return None

    if p := kind(record, dict, "the record"):
        return p
    for where, value, types, optional in [
        ("python", record.get("python"), dict, False),
        ("target", record.get("target"), dict, False),
        ("artifact", record.get("artifact"), dict, False),
        ("inputs", record.get("inputs"), list, True),
        ("patches", record.get("patches"), list, True),
        ("toolchain", record.get("toolchain"), dict, True),
        ("recipe", record.get("recipe"), str, True),
    ]:
        if p := kind(value, types, where, optional):
            return p
    artifact = record["artifact"]
    for where, value, types, optional in [
        ("python.version", record["python"].get("version"), str, False),
        ("target.name", record["target"].get("name"), str, False),
        ("target.triple", record["target"].get("triple"), str, False),
        ("target.variant", record["target"].get("variant"), str, True),
        ("artifact.python.wasm", artifact.get("python.wasm"), dict, False),
        ("artifact.dev", artifact.get("dev"), str, True),
        ("artifact.debuginfo", artifact.get("debuginfo"), str, True),
        ("toolchain.route", (record.get("toolchain") or {}).get("route"), str, True),
    ]:
        if p := kind(value, types, where, optional):
            return p
    if p := kind(artifact["python.wasm"].get("sha256"), str, "artifact.python.wasm.sha256"):
        return p
    for key in ("inputs", "patches"):
        for i, item in enumerate(record.get(key) or []):
            if p := kind(item, dict, f"{key}[{i}]") or kind(item.get("sha256"), str, f"{key}[{i}].sha256", True):
                return p
    for key in ("dev", "debuginfo"):  # names of files beside the archive
        if (name := artifact.get(key)) and file_name_problem(name):
            return f"artifact.{key}: {file_name_problem(name)}, got {name!r:.60}"
    return None


def check_published(archive: Path, contents: Contents, report: Report) -> None:
    """Every check of the module docstring but the rebuild."""
    record = contents.record
    name = archive.name.removesuffix(".tar.gz")
    digest = cache.sha256_file(archive)
    size = archive.stat().st_size
    dist = archive.parent
    log.info(f"{archive.name}: sha256 {digest}, {size} bytes; CPython {record.get('python', {}).get('version')} "
             f"for {record.get('target', {}).get('triple')}")

    wasm = record.get("artifact", {}).get("python.wasm", {})
    member = contents.members.get(f"{contents.top}/python.wasm")
    report.check(member is not None and member == wasm.get("sha256"), "python.wasm matches the record's sha256",
                 f"record {wasm.get('sha256')}, archive {member}")

    beside = dist / f"{name}.BUILD.json"
    if beside.is_file():
        report.check(beside.read_bytes() == contents.record_bytes, f"{beside.name} is the archive's {RECORD_NAME}",
                     "the bytes differ")
    else:
        report.skip(f"{beside.name}: not beside the archive (not checked)")

    companions = [c for c in (record.get("artifact", {}).get(k) for k in ("dev", "debuginfo")) if c]
    sums_file = dist / "SHA256SUMS"
    try:
        sums = parse_sums(sums_file.read_bytes(), str(sums_file)) if sums_file.is_file() else None
    except DownloadError as exc:
        report.check(False, "SHA256SUMS is readable", exc.args[0])
        sums = None
    except OSError as exc:
        report.check(False, "SHA256SUMS is readable", exc.strerror or str(exc))
        sums = None
    if sums is not None:
        report.check(sums.get(archive.name) == digest, f"SHA256SUMS lists {archive.name} with its sha256",
                     f"SHA256SUMS says {sums.get(archive.name, 'nothing')}", independent=True)
        for comp in companions:
            if (dist / comp).is_file():
                report.check(sums.get(comp) == cache.sha256_file(dist / comp), f"SHA256SUMS lists {comp} with its "
                             "sha256", f"SHA256SUMS says {sums.get(comp, 'nothing')}")
    elif not sums_file.is_file():
        report.skip("SHA256SUMS: not beside the archive (not checked)")

    index_file = dist / INDEX_NAME
    if index_file.is_file():
        try:
            entries = [a for a in load_index(index_file.read_bytes(), str(index_file)).artifacts
                       if a.file == archive.name]
        except DownloadError as exc:
            report.check(False, f"{INDEX_NAME} lists the archive", exc.args[0])
        except OSError as exc:
            report.check(False, f"{INDEX_NAME} lists the archive", f"cannot read it: {exc.strerror or exc}")
        else:
            if not entries:
                report.check(False, f"{INDEX_NAME} lists the archive", "no entry for it")
            else:
                e = entries[0]
                report.check((e.sha256, e.size) == (digest, size), f"{INDEX_NAME} gives the archive's sha256 and "
                             "size", f"index says {e.sha256}, {e.size} bytes", independent=True)
                report.check(e.build_json_sha256 == hashlib.sha256(contents.record_bytes).hexdigest(),
                             f"{INDEX_NAME} gives the sha256 of the archive's {RECORD_NAME}", "it differs")
    else:
        report.skip(f"{INDEX_NAME}: not beside the archive (not checked)")

    sbom_file = dist / f"{name}{SBOM_SUFFIX}"
    if sbom_file.is_file():
        check_sbom(sbom_file, digest, record, report)
    else:
        report.skip(f"{sbom_file.name}: no SBOM beside the archive (not checked)")


def _hashes(component: Any) -> set[str]:
    """The SHA-256 hashes of a CycloneDX component; ValueError when it is not shaped as one."""
    hashes = component.get("hashes", []) if isinstance(component, dict) else None
    if not isinstance(hashes, list) or not all(isinstance(h, dict) for h in hashes):
        raise ValueError("a component without a list of hashes")
    found = {h.get("content") for h in hashes if h.get("alg") == "SHA-256"}
    if not all(isinstance(h, str) for h in found):
        raise ValueError("a hash that is not a string")
    return {h for h in found if isinstance(h, str)}


def check_sbom(path: Path, digest: str, record: dict[str, Any], report: Report) -> None:
    try:
        sbom = json.loads(path.read_bytes())
        subject = _hashes(sbom["metadata"]["component"])
        components = sbom.get("components", [])
        if not isinstance(components, list):
            raise ValueError("components is not a list")
        listed = set().union(*(_hashes(c) for c in components))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError, OSError):
        report.check(False, f"{path.name} is a CycloneDX SBOM", "not readable as one")
        return
    report.check(digest in subject, f"{path.name} describes this archive (its sha256)",
                 f"it describes {', '.join(sorted(subject)) or 'no hash'}", independent=True)
    wanted = {i["sha256"] for i in record.get("inputs", []) if i.get("sha256")}
    wanted |= {p["sha256"] for p in record.get("patches", []) if p.get("sha256")}
    missing = sorted(wanted - listed)
    report.check(not missing, f"{path.name} lists every input and patch of the record ({len(wanted)})",
                 f"{len(missing)} missing, e.g. {missing[:1]}")


# --- --rebuild -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchOptions:
    """The fetch and toolchain options of a rebuild (verify --rebuild, reproduce): what `wasmbuild build` is given
    besides the version and target. None (False, "auto"): not given, the build's own default."""

    mirror_dir: Path | None = None
    debian_mirror: str | None = None
    wasi_sdk_path: Path | None = None
    node: str | None = None
    offline: bool = False
    toolchain_route: str = "auto"

    def build_args(self) -> list[str]:
        """These options as a `wasmbuild build` command line takes them."""
        out: list[str] = []
        for flag, value in (("--mirror-dir", self.mirror_dir), ("--debian-mirror", self.debian_mirror),
                            ("--wasi-sdk-path", self.wasi_sdk_path), ("--node", self.node)):
            if value is not None:
                out += [flag, str(value)]
        if self.offline:
            out.append("--offline")
        if self.toolchain_route != "auto":
            out += ["--toolchain-route", self.toolchain_route]
        return out


def compare_archives(ours: Contents, theirs: Contents, limit: int = 20) -> list[str]:
    """Member-level differences of two archives (added, removed, changed), at most `limit` lines."""
    lines = []
    for name in sorted(set(ours.members) | set(theirs.members)):
        a, b = ours.members.get(name), theirs.members.get(name)
        if a != b:
            lines.append(f"{name}: " + ("only in the given archive" if b is None else "only in the rebuild"
                                        if a is None else "content differs"))
    return lines[:limit] + ([f"... {len(lines) - limit} more"] if len(lines) > limit else [])


def rebuild_argv(record: dict[str, Any], cache_dir: Path, dist: Path, fetch_args: Sequence[str]) -> list[str]:
    """The `wasmbuild build` command that rebuilds `record`'s artifact (its version, target, toolchain route)."""
    route = record.get("toolchain", {}).get("route", "auto")
    argv = [sys.executable, "-m", "wasmbuild", "build", "--target", record["target"]["name"], "--python",
            record["python"]["version"], "--cache-dir", str(cache_dir), "--dist-dir", str(dist), "--no-smoke-test"]
    if record["target"].get("variant"):
        argv += ["--variant", record["target"]["variant"]]
    if route in ("release", "debian") and "--toolchain-route" not in fetch_args:
        argv += ["--toolchain-route", route]
    return [*argv, *fetch_args]


def rebuild_and_compare(archive: Path, contents: Contents, fetch_args: Sequence[str], report: Report,
                        keep: Path | None = None) -> None:
    record = contents.record
    root = project_root()
    recipes = {p.name: p for p in available_recipes(root).values()}
    file = recipes.get(record.get("recipe", ""))
    version = record["python"]["version"]
    if file is None or load_recipe(file, root / "patches").version != version:
        raise UsageError(f"this wasmbuild has no recipe {record.get('recipe')} for CPython {version} (the "
                         f"artifact's record names it)",
                         hint=f"check out the wasmbuild {record.get('wasmbuild')} that made the artifact")
    if record.get("toolchain", {}).get("route") == "path" and "--wasi-sdk-path" not in fetch_args:
        raise UsageError("the artifact was built with a local WASI SDK (toolchain route 'path')",
                         hint="give the same SDK with --wasi-sdk-path to rebuild it")
    work = Path(tempfile.mkdtemp(prefix="wasmbuild-verify-"))
    try:
        argv = rebuild_argv(record, work / "cache", work / "dist", fetch_args)
        log.info(f"▶ rebuilding in a fresh cache: {' '.join(argv)}")
        code = subprocess.run(argv, stdin=subprocess.DEVNULL, check=False).returncode
        if code != 0:
            raise VerifyError(f"the rebuild failed (exit {code}); its output is above",
                              hint="fix what it names and run verify --rebuild again")
        dist = work / "dist"
        names = [archive.name, *(c for c in (record["artifact"].get(k) for k in ("dev", "debuginfo")) if c)]
        differing = []
        for name in names:
            given = archive.parent / name
            if not given.is_file():
                report.skip(f"{name}: not beside the archive (rebuild not compared)")
                continue
            same = cache.sha256_file(given) == cache.sha256_file(dist / name)
            report.check(same, f"rebuild: {name} is byte-identical", "it differs", independent=name == archive.name)
            if not same:
                differing.append(name)
                try:
                    lines = compare_archives(read_archive(given) if name != archive.name else contents,
                                             read_archive(dist / name))
                except ArchiveError as exc:
                    lines = [f"(members not compared: {exc.args[0]})"]
                for line in lines:
                    log.info(f"      {line}")
        if differing and shutil.which("diffoscope"):
            for name in differing:
                out = archive.parent / f"{name}.diffoscope.txt"
                subprocess.run(["diffoscope", "--text", str(out), str(archive.parent / name), str(dist / name)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False)
                log.info(f"      diffoscope: {out}")
        elif differing:
            log.info("      (install diffoscope for a full report of the differences)")
        if keep is not None and differing:
            shutil.copytree(dist, keep, dirs_exist_ok=True)
            log.info(f"      the rebuild's files: {keep}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def verify(archive: Path, *, rebuild: bool, fetch: FetchOptions | None = None, keep: Path | None = None) -> Report:
    """`wasmbuild verify`: the checks of the module docstring, with `rebuild` the rebuild too (by the options
    `fetch`; the rebuild's files are copied to `keep` when they differ). VerifyError when a check failed."""
    if keep is not None and not rebuild:
        raise UsageError("--keep is for --rebuild", hint="add --rebuild, or leave out --keep")
    fetch_args = (fetch or FetchOptions()).build_args()
    archive = archive.expanduser().resolve()
    contents = read_archive(archive)
    report = Report()
    check_published(archive, contents, report)
    if rebuild:
        rebuild_and_compare(archive, contents, fetch_args, report, keep)
    if report.failed:
        raise VerifyError(f"{archive.name}: {len(report.failed)} check(s) failed:\n"
                          + "\n".join(f"  - {f}" for f in report.failed),
                          hint="do not use this artifact; download it again from the release, or rebuild it")
    if not report.independent:
        name = archive.name.removesuffix(".tar.gz")
        raise NotVerified(
            f"{archive.name}: not verified: nothing beside it vouches for its bytes (no SHA256SUMS, {INDEX_NAME} or "
            f"{name}{SBOM_SUFFIX} in {archive.parent}); its own {RECORD_NAME} was checked, but an altered archive "
            "carries an altered record along",
            report,
            hint=f"put SHA256SUMS and {INDEX_NAME} (with {name}.BUILD.json and {name}{SBOM_SUFFIX}) from the release "
            "it came from beside it, or fetch it with `wasmbuild download`, which checks them; or run `wasmbuild "
            "verify --rebuild` to rebuild it and compare the bytes")
    log.info(f"✓ {archive.name}: {len(report.passed)} checks passed"
             + (f", {len(report.skipped)} not checked (files missing)" if report.skipped else ""))
    return report
