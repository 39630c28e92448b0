# wasmbuild bundle: the importer and the start-up of a one-file Python app (run by entry.c; not a module of
# wasmbuild itself). Runs on the bundled CPython after its core initialisation, before any import from the
# standard library: only built-in and frozen modules are available until BundleFinder is on sys.meta_path.
#
# The bundle (entry.c's BUNDLE, made by wasmbuild/bundle/__init__.py) is  b"WBB1" + u32 n + index + files:
# the index is marshal data, {module name: (kind, is_package, offset, size, filename)} plus the "" entry holding
# the app's description; kind "c" is a code object (a .pyc without its header), "s" Python source.
import _frozen_importlib
import builtins
import marshal
import sys

import _wasmbuild_bundle

_DATA = _wasmbuild_bundle.data()
if bytes(_DATA[:4]) != b"WBB1":
    raise ImportError("wasmbuild bundle: the embedded data is not a bundle")
_SIZE = int.from_bytes(_DATA[4:8], "little")
_INDEX = marshal.loads(_DATA[8:8 + _SIZE])
_BASE = 8 + _SIZE
_APP = _INDEX.pop("")


def _payload(entry):
    offset, size = entry[2], entry[3]
    return _DATA[_BASE + offset:_BASE + offset + size]


class BundleFinder:
    """Modules from the bundle: the standard library's code objects, the app's sources."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        entry = _INDEX.get(name)
        if entry is None:
            return None
        spec = _frozen_importlib.ModuleSpec(name, cls, origin=entry[4], is_package=entry[1])
        spec.has_location = True
        if entry[1]:
            spec.submodule_search_locations = [entry[4].rpartition("/")[0]]
        return spec

    @classmethod
    def create_module(cls, spec):
        return None

    @classmethod
    def exec_module(cls, module):
        exec(cls.get_code(module.__spec__.name), module.__dict__)

    @classmethod
    def get_code(cls, name):
        entry = _INDEX[name]
        if entry[0] == "c":
            return marshal.loads(_payload(entry))
        return compile(bytes(_payload(entry)), entry[4], "exec", dont_inherit=True)

    @classmethod
    def get_source(cls, name):
        if name == "__main__" and "script" in _APP:
            return bytes(_payload(_APP["script"])).decode("utf-8")
        entry = _INDEX.get(name)
        if entry is None or entry[0] != "s":
            return None
        return bytes(_payload(entry)).decode("utf-8")

    @classmethod
    def is_package(cls, name):
        return bool(_INDEX[name][1])

    @classmethod
    def get_filename(cls, name):
        return _INDEX[name][4]


# After the built-in and frozen importers, before the path finder (which the main phase adds).
sys.meta_path.append(BundleFinder)


def _exit_status(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF if code >= 0 else 1
    print(code, file=sys.stderr)
    return 1


class BOOT:
    """prepare(): at bundle time (in the snapshot) or at start (--no-preinit); run(): every start."""

    main_code = None
    reseed = ()  # weak references to the random.Random instances seeded from entropy at bundle time
    frozen = []  # (where, calls, bytes): other entropy the app's imports drew at bundle time

    @classmethod
    def prepare(cls):
        if not _APP.get("preinit"):
            return cls._prepare()
        seeded = cls._watch_entropy()
        try:
            cls._prepare()
        finally:
            cls._unwatch_entropy(seeded)
        if cls.frozen:  # the bundler reads this line (bundle/__init__.py) and refuses or records it
            where = "; ".join(f"{w}: {b} bytes in {c} calls" for w, c, b in cls.frozen)
            print(f"wasmbuild-bundle-entropy: {sum(b for _, _, b in cls.frozen)} {where}", file=sys.stderr)
        cls._settle()

    @classmethod
    def _watch_entropy(cls):
        """While the app's imports run: random.Random instances seeded from entropy are remembered (run()
        re-seeds them) and their seeding is not counted; entry.c counts every other draw."""
        import random
        import weakref

        seeded = {}
        original = random.Random.seed

        def seed(self, a=None, version=2):
            if a is not None:
                seeded.pop(id(self), None)  # an explicit seed: the app wants this sequence
                return original(self, a, version)
            _wasmbuild_bundle.count_entropy(-1, 1)
            try:
                return original(self, a, version)
            finally:
                _wasmbuild_bundle.count_entropy(-1, -1)
                try:
                    seeded[id(self)] = weakref.ref(self)
                except TypeError:  # __slots__ without __weakref__
                    seeded[id(self)] = lambda self=self: self

        def setstate(self, state):
            seeded.pop(id(self), None)
            return original_setstate(self, state)

        original_setstate = random.Random.setstate
        seeded["original"] = (original, original_setstate)
        random.Random.seed = seed
        random.Random.setstate = setstate
        _wasmbuild_bundle.count_entropy(1, 0)
        return seeded

    @classmethod
    def _unwatch_entropy(cls, seeded):
        import random

        _wasmbuild_bundle.count_entropy(0, 0)
        random.Random.seed, random.Random.setstate = seeded.pop("original")
        cls.reseed = tuple(seeded.values())

    @classmethod
    def _drawn(cls, where, before):
        calls, size = _wasmbuild_bundle.entropy_drawn()
        if size > before[1]:
            cls.frozen.append((where, calls - before[0], size - before[1]))

    @classmethod
    def _prepare(cls):
        kind, name, path = _APP["main"]
        # The main script compiles now (a syntax error stops the bundle); the app's modules when imported (in a
        # pre-initialised bundle, its imports are done here too).
        if kind == "script":
            source = bytes(_payload(_APP["script"]))  # compiled and scanned as bytes: no decoded copy
            cls.main_code = compile(source, path, "exec", dont_inherit=True)
            package = None
        else:
            spec = BundleFinder.find_spec(name)
            if spec is None:
                raise ImportError(f"wasmbuild bundle: no module {name!r} in the app")
            package = name if spec.submodule_search_locations is not None else name.rpartition(".")[0]
            if package:
                before = _wasmbuild_bundle.entropy_drawn()
                __import__(package)
                cls._drawn(f"{path} (package {package})", before)
            source = BundleFinder.get_source(name + ".__main__" if package == name else name) or ""
        if _APP.get("preinit"):
            cls._import_the_apps_imports(source, path, package)
        else:
            cls._settle()

    @staticmethod
    def _import_the_apps_imports(source, path, package):
        """The imports at the main module's top level (not in functions), done as the statements would do them;
        those inside `try:` may fail (optional dependencies)."""
        import ast

        def walk(body, optional):
            for node in body:
                if isinstance(node, ast.Import):
                    for alias in node.names:
                        yield optional, alias.name, None, 0, node.lineno
                elif isinstance(node, ast.ImportFrom):
                    yield optional, node.module or "", [a.name for a in node.names], node.level, node.lineno
                elif isinstance(node, ast.Try | ast.TryStar):
                    yield from walk(node.body, True)
                    for handler in node.handlers:
                        yield from walk(handler.body, True)
                    yield from walk(node.orelse, optional)
                    yield from walk(node.finalbody, optional)
                elif isinstance(node, ast.If | ast.With):
                    yield from walk(node.body, optional)
                    yield from walk(getattr(node, "orelse", []), optional)

        for optional, module, names, level, line in walk(ast.parse(source, path).body, False):
            if level and not package:
                continue
            before = _wasmbuild_bundle.entropy_drawn()
            try:
                __import__(module, {"__package__": package, "__name__": package or "__main__"}, None,
                           names or (), level)
                BOOT._drawn(f"{path}, line {line} (import {'.' * level}{module})", before)
            except ImportError as exc:
                if not optional:
                    exc.add_note(f"wasmbuild bundle: imported at bundle time by {path}, line {line}")
                    raise

    @staticmethod
    def _settle():
        """What must not leak from bundle time into a run: buffered output, seeded generators."""
        random = sys.modules.get("random")
        if random is not None:
            random.seed(0)  # deterministic snapshot; run() re-seeds from the run's entropy
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()

    @classmethod
    def run(cls, args, env):
        import os

        if env.get(b"WASMBUILD_BUNDLE_CHECK") == b"1":
            return 0  # wasmbuild bundle --no-preinit: prepare() ran (the main script compiles), nothing else

        sys.argv[:] = args
        sys.orig_argv[:] = args
        data = os.environ._data  # the same dict as posix.environ (and os.environb)
        data.clear()
        data.update(env)
        random = sys.modules.get("random")
        if random is not None:
            random.seed()
            for ref in cls.reseed:  # seeded from (fixed) entropy while the snapshot was taken: this run's
                instance = ref()
                if instance is not None:
                    random.Random.seed(instance)
        tempfile = sys.modules.get("tempfile")
        if tempfile is not None:
            tempfile._name_sequence = None
        for fd, stream in ((1, sys.stdout), (2, sys.stderr)):
            if stream is not None and hasattr(stream, "reconfigure"):
                stream.reconfigure(line_buffering=os.isatty(fd))
        kind, name, path = _APP["main"]
        try:
            if kind == "script":
                main = sys.modules["__main__"]
                namespace = main.__dict__
                namespace.clear()
                namespace.update(__name__="__main__", __file__=path, __builtins__=builtins,
                                 __loader__=BundleFinder, __spec__=None, __package__=None, __doc__=None)
                exec(cls.main_code, namespace)
            else:
                import runpy

                runpy._run_module_as_main(name, alter_argv=False)
        except SystemExit as exc:
            return _exit_status(exc)
        except BaseException:
            sys.excepthook(*sys.exc_info())
            return 1
        return 0
