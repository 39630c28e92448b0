"""`wasmbuild verify|reproduce|download`: the release wing (release/)."""

from __future__ import annotations

import argparse
import os

from wasmbuild import log
from wasmbuild.cli.options import (
    _add_common,
    _add_fetch_options,
    _cache_root,
    _check_route,
    _fetch_options,
    _nonempty,
    _path,
    _positive_int,
)
from wasmbuild.names import TARGET_NAMES


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """This family's subcommands and their options."""
    v = sub.add_parser("verify", help="check an artifact archive against its BUILD.json, SHA256SUMS, release.json "
                       "and SBOM beside it (with none of SHA256SUMS, release.json, SBOM: not verified, exit 13); "
                       "--rebuild rebuilds it in a fresh cache and compares the bytes")
    v.add_argument("artifact", type=_path, help="a cpython-<version>-<triple>.tar.gz archive")
    v.add_argument("--rebuild", action="store_true",
                   help="rebuild it from the recipe its record names (fresh temporary cache) and compare the bytes")
    v.add_argument("--keep", type=_path, metavar="DIR", help="with --rebuild: copy the rebuild's files here when "
                   "they differ")
    _add_fetch_options(v)

    rp = sub.add_parser("reproduce", help="two cold builds (the second as another user, in another directory, "
                        "umask 077, another TZ and locale, another clock with faketime) compared file by file")
    rp.add_argument("--target", choices=TARGET_NAMES, default="wasi")
    rp.add_argument("--user", type=_nonempty, help="the second build's user (default as root: nobody)")
    rp.add_argument("--keep", action="store_true", help="keep both builds' directories")
    _add_common(rp)
    rp.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)

    dl = sub.add_parser("download", help="fetch a released artifact, check it against the release's index and "
                        "SHA256SUMS, and unpack it (with --dev, its -dev archive too)")
    dl.add_argument("--python", metavar="VERSION", help="CPython version: 3.13 or 3.13.15 (default: the newest the "
                    "release has)")
    dl.add_argument("--target", choices=TARGET_NAMES, default="wasi")
    dl.add_argument("--release", type=_nonempty, metavar="TAG",
                    help="a release of the project's repository (default: the latest); not with --from")
    dl.add_argument("--from", dest="location", type=_nonempty, metavar="URL|DIR",
                    help="a release location: the http(s) base url of the directory holding release.json, or a "
                    "local directory (default: the project's repository, when pyproject.toml names one)")
    dl.add_argument("-o", "--output", type=_path, default=None, metavar="DIR",
                    help="where the archive is kept and unpacked (default: the current directory)")
    dl.add_argument("--dev", action="store_true",
                    help="also the -dev archive (static libraries to link against), unpacked into the same tree")
    dl.add_argument("--cache-dir", type=_path, help="cache directory, for the partial file of an interrupted "
                    "transfer (env WASMBUILD_CACHE_DIR; default ~/.cache/wasmbuild)")


def cmd_verify(args: argparse.Namespace) -> int:
    from wasmbuild.release.verify import verify

    verify(args.artifact, rebuild=args.rebuild, fetch=_fetch_options(args), keep=args.keep)
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from wasmbuild.release.reproduce import reproduce_artifact

    _check_route(args)
    reproduce_artifact(args.target, args.python, jobs=args.jobs, fetch=_fetch_options(args), user=args.user,
                       keep=args.keep)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from wasmbuild.release.client import download_artifact, how_to_run

    installed = download_artifact(source=args.location, release=args.release, python=args.python,
                                  target=args.target, output=args.output, dev=args.dev,
                                  cache_root=lambda: _cache_root(args))
    for line in how_to_run(installed):
        log.info(line)
    print(installed.root)
    return 0


COMMANDS = {"verify": cmd_verify, "reproduce": cmd_reproduce, "download": cmd_download}
