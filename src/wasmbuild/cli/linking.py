"""`wasmbuild link|bundle`: building against an artifact (link.py) and pre-initialised apps (bundle/)."""

from __future__ import annotations

import argparse
import os
import shlex
import time

from wasmbuild import log
from wasmbuild.cli.options import (
    _add_common,
    _add_fetch_options,
    _build_options,
    _nonempty,
    _path,
    _positive_int,
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """This family's subcommands and their options."""
    lk = sub.add_parser("link", help="build C extension modules into an artifact: WASI links a new python.wasm, "
                        "Emscripten adds side modules to lib-dynload/")
    lk.add_argument("artifact", type=_path, help="an artifact archive or directory (built by this wasmbuild)")
    lk.add_argument("--module", action="append", required=True, metavar="[NAME=]FILE.c[,FILE.c...]",
                    help="an extension module's C source(s); its name is the file's stem unless NAME= (repeatable)")
    lk.add_argument("-o", "--output", type=_path, required=True, metavar="OUT",
                    help="the new artifact: a directory, or a .tar.gz archive")
    lk.add_argument("--dev", type=_path, metavar="DEV_ARCHIVE",
                    help="the artifact's -dev archive (default: the one beside the artifact archive)")
    _add_fetch_options(lk)

    bu = sub.add_parser("bundle", help="one self-contained, pre-initialised WASI module of an app: CPython, its "
                        "standard library and the app inside, its imports done")
    bu.add_argument("app", type=_path, help="a script (app.py) or a package directory")
    bu.add_argument("-o", "--output", type=_path, required=True, metavar="APP.wasm")
    bu.add_argument("--module", type=_nonempty, metavar="NAME", help="run this module of the directory (python -m)")
    bu.add_argument("--artifact", type=_path, help="a WASI artifact archive (default: build the --python one)")
    bu.add_argument("--dev", type=_path, metavar="DEV_ARCHIVE",
                    help="the artifact's -dev archive (default: the one beside the artifact archive)")
    bu.add_argument("-r", "--requirement", action="append", type=_path, default=[], metavar="FILE",
                    help="install these requirements into a copy of the artifact first (wasmbuild install; --hash "
                         "lines honoured): they travel in the bundle")
    bu.add_argument("--package", action="append", default=[], metavar="REQ",
                    help="a requirement to install first, as pip takes it (repeatable)")
    bu.add_argument("--no-preinit", action="store_true",
                    help="only embed the files: Python initialises at every start (no snapshot)")
    bu.add_argument("--allow-frozen-entropy", action="store_true",
                    help="bundle an app whose imports draw entropy (os.urandom, secrets) at bundle time, though "
                         "the snapshot then holds the same bytes for every run (refused otherwise)")
    _add_common(bu)
    bu.add_argument("--dist-dir", type=_path, default=None, help="where the artifact is built (default: ./dist)")
    bu.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)


def cmd_link(args: argparse.Namespace) -> int:
    from wasmbuild.link import describe, link, parse_module

    modules = [parse_module(spec) for spec in args.module]
    out = link(args.artifact, modules, args.output, options=_build_options(args), dev=args.dev)
    log.info(describe(out))
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from wasmbuild.bundle import make_bundle

    start = time.monotonic()
    out = args.output.expanduser().resolve()
    record = make_bundle(args.app, out, options=_build_options(args), module=args.module, artifact=args.artifact,
                         python=args.python, dev=args.dev, preinit=not args.no_preinit,
                         allow_frozen_entropy=args.allow_frozen_entropy, requirements=args.package,
                         requirement_files=args.requirement)
    log.info(f"done in {log.format_duration(time.monotonic() - start)}: {out} ({record['size'] / 1e6:.1f} MB, "
             f"{'pre-initialised' if record['preinit'] else 'not pre-initialised'}; record: "
             f"{out.with_name(out.stem + '.BUNDLE.json').name})")
    log.info(f"run it: wasmtime run {shlex.quote(str(out))} ARGS   or   python -m wasmbuild run {shlex.quote(str(out))}"
             " -- ARGS")
    return 0


COMMANDS = {"link": cmd_link, "bundle": cmd_bundle}
