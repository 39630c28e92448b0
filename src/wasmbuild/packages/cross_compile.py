"""The compiler wrapper of a cross-build environment (packages/cross.py): run by the tool venv's python in place of
CC, CXX and LDSHARED when an sdist's build backend compiles an extension module; never imported by wasmbuild.

    python cross_compile.py CONFIG.json cc|cxx|ldshared ARGS...

The build-python is an uninstalled build tree, so build backends add its own include directories (the host's
pyconfig.h: "LONG_BIT definition appears wrong for platform") and library paths: every -I/-L under a directory
CONFIG lists in "drop" is left out, CONFIG's flags (the artifact's headers, the target's flags, path maps) are
added. For a target whose extension modules are linked into the interpreter (WASI), the shared-module link keeps
only the objects and archives and the output (`wasm-ld -r`): link flags for a shared library have no meaning there.
"""

import json
import os
import sys

with open(sys.argv[1]) as f:
    CONFIG = json.load(f)
kind, args = sys.argv[2], sys.argv[3:]
drop = tuple(os.path.join(d, "") for d in CONFIG["drop"])


def dropped(path: str) -> bool:
    return os.path.join(os.path.abspath(path), "").startswith(drop)


kept = []
i = 0
while i < len(args):
    arg = args[i]
    for flag in ("-I", "-L", "-isystem"):
        if arg == flag and i + 1 < len(args):
            if not dropped(args[i + 1]):
                kept += [arg, args[i + 1]]
            i += 2
            break
        if arg.startswith(flag) and len(arg) > len(flag):
            if not dropped(arg[len(flag):]):
                kept.append(arg)
            i += 1
            break
    else:
        kept.append(arg)
        i += 1

if kind == "ldshared" and CONFIG["relocatable"]:
    out, objects, i = None, [], 0
    while i < len(kept):
        if kept[i] == "-o" and i + 1 < len(kept):
            out = kept[i + 1]
            i += 2
            continue
        if kept[i].endswith((".o", ".a", ".obj")) and not kept[i].startswith("-"):
            objects.append(kept[i])
        i += 1
    if out is None:
        sys.exit("wasmbuild cross_compile: the shared-module link names no output (-o)")
    argv = [*CONFIG["ldshared"], "-o", out, *objects]
else:
    tool = CONFIG[kind]
    # Sources are named relative to the package's directory, or not: either way no build path stays in the module.
    extra = [*CONFIG["cflags"], f"-ffile-prefix-map={os.getcwd()}=/src"] if kind in ("cc", "cxx") \
        else CONFIG["ldflags"]
    argv = [*tool, *extra, *kept]
if os.environ.get("WASMBUILD_CROSS_LOG"):
    with open(os.environ["WASMBUILD_CROSS_LOG"], "a") as log:
        log.write(" ".join(argv) + "\n")
os.execvpe(argv[0], argv, {**os.environ, **CONFIG["env"]})
