"""`wasmbuild install`: third-party packages from an index into an artifact (packages/)."""

from __future__ import annotations

import argparse
import os

from wasmbuild import log
from wasmbuild.cli.options import _add_fetch_options, _build_options, _path, _positive_int


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """This family's subcommands and their options."""
    ins = sub.add_parser("install", help="install packages from PyPI (or another index) into an artifact: pure "
                         "wheels as they are, sdists cross-built (C extensions linked into python.wasm on WASI, side "
                         "modules on Emscripten)")
    ins.add_argument("artifact", type=_path, help="a WASI or Emscripten artifact archive or directory (a web "
                     "artifact takes pure-Python packages only, installed by its loader at start-up)")
    ins.add_argument("packages", nargs="*", metavar="PACKAGE", help="requirements, as pip takes them (attrs, "
                     "'jinja2<4')")
    ins.add_argument("-r", "--requirement", action="append", type=_path, default=[], metavar="FILE",
                     help="a requirements file (--hash lines honoured; repeatable)")
    ins.add_argument("-o", "--output", type=_path, required=True, metavar="OUT",
                     help="the new artifact: a directory, or a .tar.gz archive (with an SBOM beside it)")
    ins.add_argument("--require-hashes", action="store_true",
                     help="every requirement and dependency must carry a --hash (pip's --require-hashes)")
    ins.add_argument("--index-url", metavar="URL", help="the package index (default: pip's configured index-url, "
                     "else PyPI)")
    ins.add_argument("--extra-index-url", action="append", default=[], metavar="URL")
    ins.add_argument("--find-links", action="append", default=[], metavar="DIR_OR_URL")
    ins.add_argument("--allow-pure-fallback", action="store_true",
                     help="accept a package whose optional C extension did not build, installed as pure Python "
                          "(reported); refused otherwise")
    ins.add_argument("--prefer-binary", action="store_true",
                     help="prefer an older release with a wheel to a newer one with only an sdist (pip's option)")
    ins.add_argument("--build-timeout", type=_positive_int, default=1800, metavar="SECONDS",
                     help="stop an sdist build after this long (default 1800)")
    ins.add_argument("--dev", type=_path, metavar="DEV_ARCHIVE",
                     help="the artifact's -dev archive (WASI: needed to link extension modules; default: the one "
                          "beside the artifact archive)")
    ins.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)
    _add_fetch_options(ins)


def cmd_install(args: argparse.Namespace) -> int:
    from wasmbuild.packages.install import InstallOptions, describe, install
    from wasmbuild.packages.tools import Index
    from wasmbuild.packages.web_install import describe_web, is_web_artifact

    index = None
    if args.index_url or args.extra_index_url or args.find_links:
        index = Index(url=args.index_url, extra=tuple(args.extra_index_url), find_links=tuple(args.find_links))
    options = _build_options(args)
    out = install(args.artifact, args.packages, args.requirement, args.output, options=options,
                  install_options=InstallOptions(index=index, require_hashes=args.require_hashes,
                                                 allow_pure_fallback=args.allow_pure_fallback,
                                                 prefer_binary=args.prefer_binary,
                                                 build_timeout=args.build_timeout), dev=args.dev)
    log.info(describe_web(out) if is_web_artifact(args.artifact, options.cache) else describe(out))
    return 0


COMMANDS = {"install": cmd_install}
