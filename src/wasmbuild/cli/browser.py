"""`wasmbuild serve|npm-pack`: the web artifact's REPL page and npm package (web.py)."""

from __future__ import annotations

import argparse
import os

from wasmbuild import cache, log
from wasmbuild.cli.options import (
    _add_common,
    _build_options,
    _cache_root,
    _out_dir,
    _path,
    _port,
    _positive_int,
)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """This family's subcommands and their options."""
    se = sub.add_parser("serve", help="serve the REPL page (web/) with the web artifact on 127.0.0.1 (built if "
                        "needed) and print its URL")
    se.add_argument("--port", type=_port, default=8000, help="TCP port (default 8000; 0 picks a free one)")
    se.add_argument("--artifact", type=_path, help="a web artifact, archive or directory (default: build the "
                    "--python one with --variant web into --dist-dir)")
    _add_common(se)
    se.add_argument("--dist-dir", type=_path, default=None, help="where the artifact is built (default: ./dist)")
    se.add_argument("--jobs", "-j", type=_positive_int, default=os.cpu_count() or 1)

    npm = sub.add_parser("npm-pack", help="the npm package of a web artifact: "
                         "DIST/wasmbuild-cpython-<version>-wasmbuild.<n>.tgz, listed in DIST/SHA256SUMS")
    npm.add_argument("artifact", type=_path, help="a web artifact, archive or directory (nox -s build-emscripten -- "
                     "--variant web)")
    npm.add_argument("--dist-dir", type=_path, default=None, help="output directory (default: ./dist)")
    npm.add_argument("--cache-dir", type=_path)


def cmd_serve(args: argparse.Namespace) -> int:
    """The web artifact (given, or built as `build --variant web` would) and web/, assembled and served."""
    from wasmbuild.web import serve_repl

    serve_repl(artifact=args.artifact, python=args.python, port=args.port, options=_build_options(args))
    return 0


def cmd_npm_pack(args: argparse.Namespace) -> int:
    from wasmbuild.recipe import project_root
    from wasmbuild.web import npm_pack

    dist = _out_dir(args.dist_dir, "--dist-dir", "dist")
    out = npm_pack(args.artifact, dist=dist, cache_root=_cache_root(args), root=project_root())
    log.info(f"  {out} ({out.stat().st_size / 1e6:.1f} MB), sha256 {cache.sha256_file(out)}")
    print(out)
    return 0


COMMANDS = {"serve": cmd_serve, "npm-pack": cmd_npm_pack}
