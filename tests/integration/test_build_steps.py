"""The host build step with a stand-in configure (no compiler): its Makefile is run by real make, so this lives with
the integration tests (unit tests may not run build tools)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from wasmbuild import cache
from wasmbuild.download import Sources
from wasmbuild.errors import BuildError
from wasmbuild.pipeline import configure_and_make
from wasmbuild.recipe import load_recipe
from wasmbuild.steps import Context
from wasmbuild.targets.base import HostSettings

RECIPE = {
    "format": 1,
    "version": "3.11.2",
    "source": {"url": "https://python.example/Python-3.11.2.tgz", "filename": "Python-3.11.2.tgz",
               "sha256": "a" * 64, "size": 1, "top_dir": "Python-3.11.2"},
    "source_date_epoch": 1_700_000_000,
    "targets": {"emscripten": {
        "triple": "wasm32-emscripten", "host": "wasm32-unknown-emscripten", "toolchain": "emscripten",
        "make_args": ["MODULE_X_LDFLAGS="],
        "setup_local": ["_ctypes _ctypes/_ctypes.c -DHAVE_X $(LIBFFI_CFLAGS) $(LIBFFI_LIBS)"],
    }},
}

CONFIGURE = textwrap.dedent("""\
    #!/bin/sh
    # Stand-in for CPython's configure: record the arguments, write a Makefile whose `all` shows what make saw.
    echo "$@" > configure.args
    printf 'all:\\n\\tcat Modules/Setup.local > made.txt\\n' > Makefile
    printf '\\techo "LIBFFI_LIBS=$(LIBFFI_LIBS) X=$(MODULE_X_LDFLAGS)" >> made.txt\\n\\ttouch python.wasm\\n'>>Makefile
    printf 'inclinstall:\\n\\techo "inclinstall DESTDIR=$(DESTDIR)" >> made.txt\\n' >> Makefile
    printf 'libainstall:\\n\\techo "libainstall" >> made.txt\\n' >> Makefile
    """)


@pytest.fixture
def ctx(tmp_path):
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "cpython-3.11.yaml").write_text(yaml.safe_dump(RECIPE))
    (tmp_path / "patches").mkdir()
    recipe = load_recipe(recipes / "cpython-3.11.yaml")
    root = cache.ensure_cache_root(tmp_path / "cache")
    return Context(root=tmp_path, cache=root, dist=tmp_path / "dist", recipe=recipe,
                   target=recipe.target("emscripten"), sources=Sources(), jobs=1)


def test_setup_local_lines_reach_the_build_and_make_sees_the_library_variables(ctx, tmp_path):
    configure = tmp_path / "configure"
    configure.write_text(CONFIGURE)
    configure.chmod(0o755)
    entry = ctx.cache / "hosts" / "h"
    env = {"PATH": "/usr/bin:/bin", "LIBFFI_LIBS": "-L/opt/libffi/lib -lffi"}
    record = configure_and_make(ctx, entry, "k1",
                                HostSettings([str(configure), "--host=wasm32-unknown-emscripten"], env, {"args": []}),
                                outputs=("python.wasm",), files={"pre.js": "// pre"})
    made = (entry / "made.txt").read_text().splitlines()
    assert made[0] == "# From the recipe's setup_local (wasmbuild)"
    assert made[1] == "_ctypes _ctypes/_ctypes.c -DHAVE_X $(LIBFFI_CFLAGS) $(LIBFFI_LIBS)"
    assert made[2] == "LIBFFI_LIBS=-L/opt/libffi/lib -lffi X="  # make_args override, env fills the rest
    # The cross-build kit is installed into the entry, not onto the machine.
    assert made[3:] == [f"inclinstall DESTDIR={entry / '_install'}", "libainstall"]
    assert (entry / "pre.js").read_text() == "// pre"
    assert record["setup_local"] == list(RECIPE["targets"]["emscripten"]["setup_local"])
    assert cache.is_valid(entry, "k1")


def test_missing_output_fails_and_leaves_no_cache_entry(ctx, tmp_path):
    configure = tmp_path / "configure"
    configure.write_text("#!/bin/sh\nprintf 'all inclinstall libainstall:\\n\\ttrue\\n' > Makefile\n")
    configure.chmod(0o755)
    entry = ctx.cache / "hosts" / "h2"
    with pytest.raises(BuildError, match=r"python\.wasm is missing"):
        configure_and_make(ctx, entry, "k2", HostSettings([str(configure)], {"PATH": "/usr/bin:/bin"}, {}),
                           outputs=("python.wasm",))
    assert not entry.exists() and not cache.is_valid(entry, "k2")
    assert Path(ctx.logs).is_dir()
