"""pip, answering for a WebAssembly artifact's interpreter: run by the native build-python of the artifact's CPython
version (same version, same ABI) in wasmbuild's tool venv, never imported by wasmbuild itself.

    python pip_for_target.py TARGET.json PIP-ARGS...

TARGET.json holds what the artifact itself answered when run (resolve.target_facts): sys.platform, the platform
module's answers, sysconfig.get_platform(), sys.implementation._multiarch, and a directory holding a copy of its
sysconfig data module. pip evaluates environment markers and
computes the compatible wheel tags from those functions (pip's `--platform` does not change markers: pypa/pip issue
11664), so they are replaced here, after the modules that take decisions from sys.platform at import time
(subprocess, the HTTP stack, pip's CLI) are imported with the host's answers. Used for resolving only
(`install --dry-run --report`): a build under this wrapper would compile for the host.
"""

import json
import sys

with open(sys.argv[1]) as f:
    TARGET = json.load(f)

import platform  # noqa: E402
import subprocess  # noqa: E402,F401  (imported with the host's sys.platform)
import sysconfig  # noqa: E402

import pip._vendor.requests  # noqa: E402,F401
import pip._vendor.urllib3  # noqa: E402,F401
from pip._internal.cli.main import main  # noqa: E402

# sysconfig, asked after the patch, imports the target's sysconfig data module: a copy of it is put on the path,
# and its name given (CPython derives the name from the platform and the multiarch, Debian's Python otherwise).
sys.path.insert(0, TARGET["sysconfig_dir"])
sysconfig._get_sysconfigdata_name = lambda: TARGET["sysconfig_name"]  # type: ignore[attr-defined]
sys.platform = TARGET["sys_platform"]
platform.system = lambda: TARGET["platform_system"]
platform.machine = lambda: TARGET["platform_machine"]
platform.release = lambda: TARGET["platform_release"]
platform.version = lambda: TARGET["platform_version"]
sysconfig.get_platform = lambda: TARGET["platform"]
sys.implementation._multiarch = TARGET["multiarch"]  # type: ignore[attr-defined]

sys.exit(main(sys.argv[2:]))
