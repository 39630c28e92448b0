"""The npm package of the web artifact: `dist/wasmbuild-cpython-<version>-wasmbuild.<n>.tgz`.

It holds the JavaScript API (web/wasmbuild-python.mjs, with its TypeScript declarations) and the web artifact's
python.mjs, python.wasm and python.data (and its wheels/, when `wasmbuild install` gave it packages: loadPython
installs them at start-up), in npm's layout (`package/...`). The tarball is written by wasmbuild's
deterministic tar writer, not by `npm pack`: npm fixes member mtimes, but the compressed bytes depend on the zlib
of the node that runs it; ours depend only on the inputs, as the artifacts do.

The npm version is the CPython version with a pre-release tag counting wasmbuild's revisions of the package
(`3.13.15-wasmbuild.3`): npm versions are semver, the CPython version alone cannot be published twice, and a
pre-release is never picked by a range such as `^3.13.0` by accident (install it by version or by dist-tag).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from wasmbuild.archive import write_deterministic_tar_gz
from wasmbuild.errors import UsageError
from wasmbuild.files import json_text
from wasmbuild.names import WEB_WHEELS

NPM_NAME = "@wasmbuild/cpython"
# Bumped whenever the package changes for the same CPython (the JavaScript API, the layout, this metadata).
NPM_REVISION = 3  # 2: installWheel; 3: the wheels of wheels/wheels.json installed by loadPython
TARBALL_PREFIX = "wasmbuild-cpython-"
# The Python half of the JavaScript API: the web variant installs it into the standard library (python.data).
STDLIB_MODULE = Path("web") / "_wasmbuild_web.py"
API_FILES = ("wasmbuild-python.mjs", "wasmbuild-python.d.ts")
RUNTIME_FILES = ("python.mjs", "python.wasm", "python.data")
README = Path("web") / "npm-README.md"


def npm_version(python_version: str) -> str:
    return f"{python_version}-wasmbuild.{NPM_REVISION}"


def tarball_name(python_version: str) -> str:
    """What `npm pack` would name it: the scope joined to the name, then the version."""
    return f"{TARBALL_PREFIX}{npm_version(python_version)}.tgz"


def is_npm_tarball(name: str) -> bool:
    return name.startswith(TARBALL_PREFIX) and name.endswith(".tgz")


def package_json(python_version: str, *, wheels: bool = False) -> dict:
    """package.json; `wheels`: the artifact carries wheels/ (wasmbuild install), which the package then holds."""
    files = ["LICENSE", "README.md", *API_FILES, *RUNTIME_FILES, *([f"{WEB_WHEELS}/"] if wheels else [])]
    return {
        "name": NPM_NAME,
        "version": npm_version(python_version),
        "description": f"CPython {python_version} compiled to WebAssembly (Emscripten) for browsers and node, with a "
                       "small JavaScript API: loadPython(), runPython(), complete(), installWheel(), FS",
        "keywords": ["python", "cpython", "webassembly", "wasm", "emscripten", "repl"],
        # CPython and its standard library: PSF-2.0 (LICENSE); the JavaScript API: MIT, as wasmbuild.
        "license": "PSF-2.0 AND MIT",
        "type": "module",
        "main": "./wasmbuild-python.mjs",
        "types": "./wasmbuild-python.d.ts",
        "exports": {
            ".": {"types": "./wasmbuild-python.d.ts", "default": "./wasmbuild-python.mjs"},
            "./python.mjs": "./python.mjs",
            "./python.wasm": "./python.wasm",
            "./python.data": "./python.data",
            **({f"./{WEB_WHEELS}/*": f"./{WEB_WHEELS}/*"} if wheels else {}),
            "./package.json": "./package.json",
        },
        "files": files,
        "engines": {"node": ">=18"},
    }


def package_inputs(root: Path) -> dict[str, str]:
    """What the package takes from the project besides the artifact (sha256 by file, and the revision): a
    packaging step that skips unchanged outputs compares this too, so an edited API is packaged again."""
    files = [Path("web") / name for name in API_FILES] + [README]
    return {"revision": str(NPM_REVISION),
            **{f.as_posix(): hashlib.sha256((root / f).read_bytes()).hexdigest() for f in files}}


def write_npm_package(tree: Path, dist: Path, *, python_version: str, root: Path, mtime: int) -> Path:
    """dist/wasmbuild-cpython-<version>-wasmbuild.<n>.tgz from a web artifact's tree (python.mjs, python.wasm,
    python.data and LICENSE at its top; its wheels/ directory, when it has one) and the project's web/ files;
    written atomically, same inputs same bytes."""
    missing = [name for name in (*RUNTIME_FILES, "LICENSE") if not (tree / name).is_file()]
    if missing:
        raise UsageError(f"{tree} is not a web artifact: no {', '.join(missing)}",
                         hint="build it with: nox -s build-emscripten -- --variant web")
    web = root / "web"
    with tempfile.TemporaryDirectory(prefix="wasmbuild-npm-") as tmp:
        staging = Path(tmp)
        wheels = sorted(p for p in (tree / WEB_WHEELS).glob("*") if p.is_file() and not p.name.startswith("."))
        (staging / "package.json").write_text(json_text(package_json(python_version, wheels=bool(wheels))))
        readme = (root / README).read_text().replace("@PYTHON_VERSION@", python_version)
        (staging / "README.md").write_text(readme.replace("@NPM_VERSION@", npm_version(python_version)))
        for name in API_FILES:
            shutil.copyfile(web / name, staging / name)
        for name in (*RUNTIME_FILES, "LICENSE"):
            shutil.copyfile(tree / name, staging / name)
        if wheels:
            (staging / WEB_WHEELS).mkdir()
            for path in wheels:
                shutil.copyfile(path, staging / WEB_WHEELS / path.name)
        dist.mkdir(parents=True, exist_ok=True)
        out = dist / tarball_name(python_version)
        write_deterministic_tar_gz(out, staging, "package", mtime, first=["package.json"])
    return out
