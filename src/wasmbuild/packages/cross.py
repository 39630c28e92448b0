"""A cross-build environment for an artifact: what makes an sdist's build backend (setuptools, meson-python)
running on the native build-python produce extension modules for the artifact's target.

    sysconfig   a copy of the artifact's own `_sysconfigdata_*.py` (EXT_SUFFIX, SOABI, sizes: the target's), its
                compilers replaced by the wrappers below, loaded through `_PYTHON_SYSCONFIGDATA_NAME` from a
                directory on PYTHONPATH; `_PYTHON_HOST_PLATFORM` gives the wheel's platform tag
    wrappers    cc, cxx, ldshared: cross_compile.py with the target's tools (Target.extension_tools), the artifact's
                headers, the build tree's own include directories left out
    env         CIBUILDWHEEL=1: packages that fall back to pure Python when their extension fails to compile
                (MarkupSafe) fail instead, as they do on CI wheel builders; SOURCE_DATE_EPOCH from the artifact

Every path of the environment is fixed under its directory, and the compile maps the source and tool paths away
(-ffile-prefix-map), so the same sdist gives the same wheel.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from wasmbuild import cache
from wasmbuild.kit import read_sysconfig_vars, sysconfig_module
from wasmbuild.packages.tools import ToolEnv
from wasmbuild.targets.base import ExtensionTools
from wasmbuild.toolchain import Toolchain

CROSS_VERSION = 1
# The artifact's sysconfig variables a build backend compiles and links with, replaced by the wrappers'.
COMPILER_VARS = ("CC", "CXX", "LDSHARED", "LDCXXSHARED", "BLDSHARED", "CPP")
FLAG_VARS = ("CFLAGS", "CCSHARED", "LDFLAGS", "CPPFLAGS", "CONFIGURE_CFLAGS", "CONFIGURE_LDFLAGS", "PY_CFLAGS",
             "PY_CPPFLAGS", "PY_LDFLAGS", "PY_CORE_CFLAGS", "PY_STDMODULE_CFLAGS", "CFLAGS_NODIST", "LDFLAGS_NODIST",
             "OPT", "BASECFLAGS")


@dataclass(frozen=True)
class CrossEnv:
    """The environment variables a build runs with, and what identifies the environment (for cache keys)."""

    root: Path
    env: dict[str, str]
    platform_tag: str  # the wheel platform tag the build must produce
    ext_suffix: str
    linked_into_interpreter: bool
    key: dict[str, Any]


def make_cross_env(dest: Path, *, tree: Path, short: str, tools: ExtensionTools, toolchain: Toolchain,
                   tool_env: ToolEnv, drop: list[Path], platform: str, source_date_epoch: int) -> CrossEnv:
    """The cross-build environment for the unpacked artifact `tree` (CPython X.Y `short`) in `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    lib = tree / "lib" / f"python{short}"
    sysdata = sysconfig_module(lib)
    values = read_sysconfig_vars(sysdata)
    include = tree / "include" / f"python{short}"
    wrapper = dest / "cross_compile.py"
    wrapper.write_text(resources.files("wasmbuild.packages").joinpath("cross_compile.py").read_text())
    config = {"cc": tools.cc, "cxx": tools.cxx, "ldshared": tools.ldshared,
              "cflags": [*tools.cflags, f"-I{include}", f"-ffile-prefix-map={tree}=/python"],
              "ldflags": [], "drop": [str(d) for d in drop], "env": tools.env,
              "relocatable": tools.linked_into_interpreter}
    (dest / "config.json").write_text(json.dumps(config, indent=1))
    commands = {}
    for kind in ("cc", "cxx", "ldshared"):
        script = dest / kind
        script.write_text(f"#!/bin/sh\nexec {shlex.quote(str(tool_env.python))} {shlex.quote(str(wrapper))} "
                          f"{shlex.quote(str(dest / 'config.json'))} {kind} \"$@\"\n")
        script.chmod(0o755)
        commands[kind] = shlex.quote(str(script))
    values.update({"CC": commands["cc"], "CXX": commands["cxx"], "CPP": f"{commands['cc']} -E",
                   "LDSHARED": commands["ldshared"], "LDCXXSHARED": commands["ldshared"],
                   "BLDSHARED": commands["ldshared"], "INCLUDEPY": str(include), "CONFINCLUDEPY": str(include)})
    for var in FLAG_VARS:
        if var in values:
            values[var] = ""
    pkg = dest / "sysconfig"
    pkg.mkdir(exist_ok=True)
    (pkg / sysdata.name).write_text(f"# the sysconfig data of {tree.name}, for cross-builds (wasmbuild install)\n"
                                    f"build_time_vars = {values!r}\n")
    ext_suffix = str(values.get("EXT_SUFFIX") or ".so")
    env = {"_PYTHON_SYSCONFIGDATA_NAME": sysdata.stem, "PYTHONPATH": str(pkg),
           "_PYTHON_HOST_PLATFORM": platform, "CC": commands["cc"], "CXX": commands["cxx"],
           "LDSHARED": commands["ldshared"], "LDCXXSHARED": commands["ldshared"], "CFLAGS": "", "CXXFLAGS": "",
           "LDFLAGS": "", "CPPFLAGS": "", "CIBUILDWHEEL": "1", "SOURCE_DATE_EPOCH": str(source_date_epoch),
           "PYTHONHASHSEED": "0"}
    key = {"v": CROSS_VERSION, "toolchain": [toolchain.name, toolchain.version], "platform": platform,
           "ext_suffix": ext_suffix, "sysconfig": cache.hash_key(values | {"CC": "", "CXX": "", "CPP": "",
                                                                              "LDSHARED": "", "LDCXXSHARED": "",
                                                                              "BLDSHARED": "", "INCLUDEPY": "",
                                                                              "CONFINCLUDEPY": ""}),
           "headers": cache.hash_key({str(p.relative_to(include)): cache.sha256_file(p)
                                      for p in sorted(include.rglob("*.h"))}),
           "tools": [[a.rsplit("/", 1)[-1] for a in argv if not a.startswith("--sysroot")]
                     for argv in (tools.cc, tools.cxx, tools.ldshared)],
           "cflags": [f for f in tools.cflags if not f.startswith("-ffile-prefix-map")],
           "wrapper": cache.sha256_file(wrapper)}
    return CrossEnv(dest, env, platform.replace("-", "_").replace(".", "_"), ext_suffix,
                    tools.linked_into_interpreter, key)
