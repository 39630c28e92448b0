"""An SBOM per artifact: CycloneDX 1.6 JSON, made from the build record (BUILD.json) with cyclonedx-python-lib and
checked with its JSON schema validator before it is written.

What it lists, each with its sha256 and licence:

    metadata.component   the artifact archive (cpython-X.Y.Z-<triple>.tar.gz), made by metadata.tools: wasmbuild
    cpython              the CPython source (PSF-2.0), depending on the CPython patches (files, PSF-2.0)
    <library>            each C library built into it (recipes/libraries.yaml's `license`)
    <toolchain>          the toolchain (wasi-sdk, emscripten), depending on its inputs (Debian packages or a release
                         archive) and its own patches; and each host tool a library needed (tclsh for sqlite)

The artifact depends on cpython and the libraries. Licences of toolchain inputs are data: each entry of
toolchains/*.yaml carries a `license:` (an SPDX expression), gathered by `licenses_from_project`.

The SBOM is a function of the record and the archive's bytes: the serial number derives from the archive's sha256,
the timestamp is the record's source_date_epoch, every bom-ref is a name+version or a sha256, and the library
sorts the components.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cyclonedx.exception import CycloneDxException
from cyclonedx.model import ExternalReference, ExternalReferenceType, HashAlgorithm, HashType, Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.model.tool import ToolRepository
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.spdx import is_expression, is_supported_id
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL

from wasmbuild import cache
from wasmbuild.errors import BuildError, RecipeError
from wasmbuild.files import atomic_write
from wasmbuild.recipe import load_toolchain
from wasmbuild.toolchain import hosttools

# sha256 of a toolchain input, host-tool input or toolchain patch file -> its SPDX licence expression.
Licenses = Mapping[str, str]

CPYTHON_LICENSE = "PSF-2.0"
SBOM_SUFFIX = ".cdx.json"
# Fixed namespace of the serial numbers (uuid5 of the archive's sha256): one archive, one serial number.
SERIAL_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:wasmbuild:sbom")
ROLE = "wasmbuild:role"


def sbom_name(archive: Path) -> str:
    """The SBOM's file name beside `archive`: cpython-3.13.15-wasm32-wasip1.tar.gz -> ...wasip1.cdx.json."""
    name = archive.name
    for suffix in (".tar.gz", ".tar.xz", ".tgz"):
        if name.endswith(suffix):
            return name[: -len(suffix)] + SBOM_SUFFIX
    return name + SBOM_SUFFIX


def write_sbom(record: dict[str, Any], archive: Path, out: Path, licenses: Licenses) -> Path:
    """Write the CycloneDX 1.6 JSON SBOM of `archive` (built as `record` says) to `out`, validated; return `out`.

    Raises BuildError when the record names an input without a known licence or the SBOM does not validate."""
    text = sbom_json(build_bom(record, archive.name, cache.sha256_file(archive), licenses))
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out, text)
    return out


def sbom_json(bom: Bom) -> str:
    """`bom` as CycloneDX 1.6 JSON (two-space indent, final newline), checked against the 1.6 JSON schema."""
    text = JsonV1Dot6(bom).output_as_string(indent=2) + "\n"
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        raise BuildError(f"the SBOM does not validate against CycloneDX 1.6: {_describe(error)}",
                         hint="a record field the SBOM copies is malformed, or this is a wasmbuild bug")
    return text


def _describe(error: Any) -> str:
    detail = getattr(error, "data", None)
    message = getattr(detail, "message", None) or str(error)
    where = "/".join(str(p) for p in getattr(detail, "absolute_path", ()) or ())
    return f"{where}: {message}" if where else message


def build_bom(record: dict[str, Any], archive_name: str, archive_sha256: str, licenses: Licenses) -> Bom:
    """The SBOM of the artifact `archive_name` (sha256 `archive_sha256`) that `record` describes."""
    try:
        return _Builder(record, licenses).bom(archive_name, archive_sha256)
    except (KeyError, TypeError, ValueError, AttributeError, CycloneDxException) as exc:
        raise BuildError(f"cannot make the SBOM of {archive_name}: the build record lacks or mangles a field "
                         f"({type(exc).__name__}: {exc})") from None


class _Builder:
    def __init__(self, record: dict[str, Any], licenses: Licenses) -> None:
        self.record = record
        self.licenses = licenses
        self.components: dict[str, Component] = {}  # by bom-ref: one component per input (a shared .deb once)
        self.depends: dict[str, set[str]] = {}

    def bom(self, archive_name: str, archive_sha256: str) -> Bom:
        r = self.record
        version = r["python"]["version"]
        target = r["target"]
        artifact = Component(
            type=ComponentType.APPLICATION,
            bom_ref=f"artifact:{archive_name}",
            name=archive_name,
            version=version,
            description=f"CPython {version} for {target['triple']} ({target['name']}), built by wasmbuild",
            hashes=[_sha256(archive_sha256)],
            properties=[Property(name="wasmbuild:target", value=target["name"]),
                        Property(name="wasmbuild:triple", value=target["triple"]),
                        Property(name="wasmbuild:recipe", value=r["recipe"])],
        )
        cpython = self._cpython(version)
        libraries = [self._library(lib) for lib in r["artifact"].get("libraries") or []]
        packages = [self._package(p) for p in r["artifact"].get("packages") or []]
        self._toolchain(r["toolchain"])
        self._other_inputs()
        self.depends[_ref(artifact)] = {_ref(c) for c in [cpython, *libraries, *packages]}
        bom = Bom(
            serial_number=uuid.uuid5(SERIAL_NAMESPACE, f"sha256:{archive_sha256}"),
            metadata=BomMetaData(
                timestamp=datetime.fromtimestamp(int(r["source_date_epoch"]), tz=UTC),
                component=artifact,
                tools=ToolRepository(components=[
                    Component(type=ComponentType.APPLICATION, bom_ref=f"wasmbuild@{r['wasmbuild']}",
                              name="wasmbuild", version=str(r["wasmbuild"]))
                ]),
            ),
            components=self.components.values(),
        )
        by_ref = {**self.components, _ref(artifact): artifact}
        for ref in sorted(by_ref):  # every component gets an entry (leaves with no dependsOn), in one order
            bom.register_dependency(by_ref[ref], [by_ref[d] for d in sorted(self.depends.get(ref, ()))])
        return bom

    def _add(self, component: Component, depends: Iterable[Component] = ()) -> Component:
        """`component`, or the one already added under its bom-ref (a file pinned twice is listed once)."""
        component = self.components.setdefault(_ref(component), component)
        self.depends.setdefault(_ref(component), set()).update(_ref(c) for c in depends)
        return component

    def _package(self, item: dict[str, Any]) -> Component:
        """A package `wasmbuild install` put into site-packages: the distribution file pip chose (a wheel, or the
        sdist the wheel was built from), its licence as its metadata states it."""
        name = str(item["name"])
        return self._add(Component(
            type=ComponentType.LIBRARY,
            bom_ref=f"pypi:{name.lower()}@{item['version']}",
            name=name,
            version=str(item["version"]),
            description=f"installed into site-packages from {item['file']}"
                        + (f" (built into {item['wheel']})" if item.get("built_from_sdist") else ""),
            licenses=[_license(item["license"])] if item.get("license") else [],
            purl=PackageURL(type="pypi", name=name.lower().replace("_", "-"), version=str(item["version"]),
                            qualifiers={"file_name": item["file"]}),
            hashes=[_sha256(item["sha256"])],
            external_references=_refs(item.get("url"), ExternalReferenceType.DISTRIBUTION),
            properties=[Property(name=ROLE, value="package")],
        ))

    def _other_inputs(self) -> None:
        """The record's inputs not listed yet (the SBOM lists every one): a library the artifact does not name,
        an input of a role this module does not know."""
        listed = {h.content for c in self.components.values() for h in c.hashes}
        for item in self.record["inputs"]:
            if item["sha256"] in listed:
                continue
            if item.get("role") == "library":
                self._library(item)
            else:
                self._input(item, str(item.get("role") or "input"), f"{item.get('role') or 'other'}")

    def _cpython(self, version: str) -> Component:
        sources = [i for i in self.record["inputs"] if i.get("role") == "cpython-source"]
        if len(sources) != 1:
            raise BuildError(f"the build record lists {len(sources)} cpython-source inputs (expected one)")
        source = sources[0]
        patches = [self._patch(p, CPYTHON_LICENSE, "cpython-patch") for p in self.record.get("patches") or []]
        return self._add(Component(
            type=ComponentType.LIBRARY,
            bom_ref=f"cpython@{version}",
            name="cpython",
            version=version,
            description=f"CPython source ({source['name']})",
            licenses=[_license(CPYTHON_LICENSE)],
            purl=PackageURL(type="generic", name="cpython", version=version),
            hashes=[_sha256(source["sha256"])],
            external_references=_refs(source.get("url"), ExternalReferenceType.SOURCE_DISTRIBUTION),
            properties=[Property(name=ROLE, value="cpython-source")],
        ), patches)

    def _library(self, lib: dict[str, Any]) -> Component:
        for tool in lib.get("tools") or []:  # the host tools that built it: build-time, their own roots
            self._tool(tool)
        return self._add(Component(
            type=ComponentType.LIBRARY,
            bom_ref=f"library:{lib['name']}@{lib['version']}",
            name=lib["name"],
            version=lib["version"],
            description=f"C library, built from {lib['file']}" if lib.get("file") else "C library",
            licenses=[_license(lib["license"])],
            purl=PackageURL(type="generic", name=lib["name"], version=lib["version"]),
            hashes=[_sha256(lib["sha256"])],
            external_references=_refs(lib.get("url"), ExternalReferenceType.SOURCE_DISTRIBUTION),
            properties=[Property(name=ROLE, value="library")],
        ))

    def _tool(self, tool: dict[str, Any]) -> Component:
        inputs = [self._input(i, "build-tool", f"host tool {tool['name']}") for i in tool.get("inputs") or []]
        return self._add(Component(
            type=ComponentType.APPLICATION,
            bom_ref=f"host-tool:{tool['name']}@{tool['version']}",
            name=tool["name"],
            version=str(tool["version"]),
            description="host tool a library's build ran (not part of the artifact)",
            properties=[Property(name=ROLE, value="build-tool")],
        ), inputs)

    def _toolchain(self, tc: dict[str, Any]) -> Component:
        what = f"toolchain {tc['name']}"
        inputs = [self._input(i, "toolchain", what, version=str(tc["version"])) for i in tc.get("inputs") or []]
        patches = [self._patch(p, self._licence_of(p, f"{what} patch {p.get('file')}"), "toolchain-patch")
                   for p in tc.get("patches") or []]
        components = tc.get("components") or {}
        return self._add(Component(
            type=ComponentType.APPLICATION,
            bom_ref=f"toolchain:{tc['name']}@{tc['version']}",
            name=tc["name"],
            version=str(tc["version"]),
            description="the cross-compiler toolchain the artifact was built with",
            properties=[Property(name=ROLE, value="toolchain"),
                        *(Property(name=f"wasmbuild:component:{k}", value=str(v))
                          for k, v in sorted(components.items()))],
        ), [*inputs, *patches])

    def _licence_of(self, item: dict[str, Any], what: str) -> str:
        expression = self.licenses.get(item["sha256"])
        if not expression:
            raise BuildError(f"no licence known for {what} (sha256 {item['sha256']})",
                             hint="give its entry in toolchains/*.yaml a `license:` (an SPDX expression)")
        return expression

    def _input(self, item: dict[str, Any], role: str, what: str, version: str | None = None) -> Component:
        """A toolchain or host-tool input: a Debian package, a PyPI wheel, or a release archive."""
        name, sha = item["name"], item["sha256"]
        licence = self._licence_of(item, f"{what} input {name}")
        component_version: str | None
        if item.get("suite") and item.get("package"):  # a Debian package
            arch = name[: -len(".deb")].rsplit("_", 1)[-1] if name.endswith(".deb") and "_" in name else None
            qualifiers = {"arch": arch, "distro": item["suite"]} if arch else {"distro": item["suite"]}
            purl = PackageURL(type="deb", namespace="debian", name=item["package"], version=item["version"],
                              qualifiers=qualifiers)
            component_name, component_version = item["package"], str(item["version"])
        elif name.endswith(".whl") and item.get("package"):  # a PyPI wheel
            purl = PackageURL(type="pypi", name=item["package"].lower().replace("_", "-"), version=item["version"],
                              qualifiers={"file_name": name})
            component_name, component_version = item["package"], str(item["version"])
        else:  # a release archive
            purl = PackageURL(type="generic", name=name, version=version, qualifiers={"checksum": f"sha256:{sha}"})
            component_name, component_version = name, version
        return self._add(Component(
            type=ComponentType.APPLICATION,
            bom_ref=f"sha256:{sha}",
            name=component_name,
            version=component_version,
            description=f"{what}: {name}",
            licenses=[_license(licence)],
            purl=purl,
            hashes=[_sha256(sha)],
            external_references=_refs(item.get("url"), ExternalReferenceType.DISTRIBUTION),
            properties=[Property(name=ROLE, value=role)],
        ))

    def _patch(self, patch: dict[str, Any], licence: str, role: str) -> Component:
        upstream = str(patch.get("upstream") or "")
        return self._add(Component(
            type=ComponentType.FILE,
            bom_ref=f"sha256:{patch['sha256']}",
            name=patch["file"],
            description=patch.get("reason"),
            licenses=[_license(licence)],
            hashes=[_sha256(patch["sha256"])],
            external_references=_refs(upstream if upstream.startswith(("https://", "http://")) else None,
                                      ExternalReferenceType.OTHER, comment="upstream"),
            properties=[Property(name=ROLE, value=role),
                        *([Property(name="wasmbuild:upstream", value=upstream)] if upstream else [])],
        ))


def _ref(component: Component) -> str:
    return component.bom_ref.value or ""


def _sha256(value: str) -> HashType:
    return HashType(alg=HashAlgorithm.SHA_256, content=value)


def _refs(url: str | None, kind: ExternalReferenceType, comment: str | None = None) -> list[ExternalReference]:
    return [ExternalReference(type=kind, url=XsUri(url), comment=comment)] if url else []


def _license(value: str) -> License:
    """A licence as CycloneDX has it: an SPDX id, an SPDX expression, or (neither) a named licence."""
    if is_supported_id(value):
        return DisjunctiveLicense(id=value)
    if is_expression(value):
        return LicenseExpression(value)
    return DisjunctiveLicense(name=value)


# --- licences of the toolchain inputs, from toolchains/*.yaml --------------------------------------------------

def licenses_from_project(root: Path) -> dict[str, str]:
    """sha256 -> SPDX expression of every release archive, Debian package, wheel and toolchain patch that
    toolchains/*.yaml pins (the toolchain manifests and host-tools.yaml, through their loaders). Every entry must
    carry a `license:` that is a valid SPDX expression, and one file pinned twice must carry one licence: else a
    RecipeError names the file and the entry."""
    found: dict[str, tuple[str, str]] = {}  # sha256 -> (expression, where)

    def add(file: Path, where: str, sha256: str, expression: str | None) -> None:
        entry = f"{file}: {where}"
        if not expression:
            raise RecipeError(f"{entry}: missing 'license' (an SPDX expression; the SBOM needs every input's)",
                              hint="add e.g. `license: MIT` or `license: Apache-2.0 WITH LLVM-exception`")
        if not (is_supported_id(expression) or is_expression(expression)):
            raise RecipeError(f"{entry}: license: {expression!r} is not a valid SPDX expression",
                              hint="use SPDX identifiers (spdx.org/licenses) joined by AND, OR, WITH")
        if sha256 in found and found[sha256][0] != expression:
            raise RecipeError(f"{entry}: license: {expression!r}, but {found[sha256][1]} pins the same file "
                              f"with {found[sha256][0]!r}")
        found.setdefault(sha256, (expression, entry))

    tools_file = hosttools.manifest_file(root)
    for file in sorted((root / "toolchains").glob("*.yaml")):
        if file.name == tools_file.name:
            continue
        manifest = load_toolchain(file, root / "patches")
        for i, asset in enumerate(manifest.release):
            add(file, f"routes.release[{i}] ({asset.download.name})", asset.download.sha256,
                manifest.licenses.get(asset.download.sha256))
        for i, pkg in enumerate(manifest.debian_packages):
            add(file, f"routes.debian.packages[{i}] ({pkg.name})", pkg.sha256, manifest.licenses.get(pkg.sha256))
        for i, patch in enumerate(manifest.patches):
            add(file, f"patches[{i}] ({patch.rel})", cache.sha256_file(patch.file), patch.license)
    if tools_file.is_file():
        for name, tool in hosttools.load_tools(tools_file).items():
            for where, sha256 in hosttools.input_entries(tool):
                add(tools_file, f"tools.{name}.{where}", sha256, tool.licenses.get(sha256))
    return {sha256: expression for sha256, (expression, _) in sorted(found.items())}
