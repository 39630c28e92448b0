# wasmbuild bundle: the importer and the start-up of a one-file Python app (run by entry.c; not a module of
# wasmbuild itself). Runs on the bundled CPython after its core initialisation, before any import from the
# standard library: only built-in and frozen modules are available until BundleFinder is on sys.meta_path.
#
# The bundle (entry.c's BUNDLE, made by wasmbuild/bundle/__init__.py) is  b"WBB1" + u32 n + index + files:
# the index is marshal data, {module name: (kind, is_package, offset, size, filename)} plus the "" entry holding
# the app's description; kind "c" is a code object (a .pyc without its header), "s" Python source, "n" a
# namespace package (filename: its directory). The description's "files" are the data files by guest path
# ({path: (offset, size)}: package data, .dist-info directories), "distributions" the installed distributions
# ([(normalized name, .dist-info path)]).
#
# Everything is served from memory, with no file system: modules (BundleFinder, BUNDLE_LOADER), package data
# (get_data, importlib.resources through get_resource_reader) and metadata (importlib.metadata through
# BundleFinder.find_distributions).
import _frozen_importlib
import _imp
import builtins
import marshal
import sys
import zipimport

import _wasmbuild_bundle

_DATA = _wasmbuild_bundle.data()
if bytes(_DATA[:4]) != b"WBB1":
    raise ImportError("wasmbuild bundle: the embedded data is not a bundle")
_SIZE = int.from_bytes(_DATA[4:8], "little")
_INDEX = marshal.loads(_DATA[8:8 + _SIZE])
_BASE = 8 + _SIZE
_APP = _INDEX.pop("")
_FILES = _APP.get("files", {})  # data files: guest path -> (offset, size)


def _payload(entry):
    offset, size = entry[2], entry[3]
    return _DATA[_BASE + offset:_BASE + offset + size]


def _normpath(path):
    """An absolute guest path without ".", ".." or repeated slashes (relative paths are from /)."""
    parts = []
    for part in str(path).split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


_MODULE_FILES = None  # guest filename -> index entry of the bundle's modules ("c", "s"), made on first use
_TREE = None  # guest directory -> the names in it, made on first use


def _module_files():
    global _MODULE_FILES
    if _MODULE_FILES is None:
        files = {entry[4]: entry for entry in _INDEX.values() if entry[0] != "n"}
        if "script" in _APP:
            files[_APP["script"][4]] = _APP["script"]
        _MODULE_FILES = files
    return _MODULE_FILES


def _tree():
    """The bundle's directories: those holding its data files and modules, and namespace packages."""
    global _TREE
    if _TREE is None:
        tree = {"/": set()}
        namespaces = [entry[4] for entry in _INDEX.values() if entry[0] == "n"]
        for path in [*_FILES, *_module_files(), *namespaces]:
            while path != "/":
                parent, _, name = path.rpartition("/")
                parent = parent or "/"
                known = parent in tree
                tree.setdefault(parent, set()).add(name)
                if known:  # its ancestors are in already
                    break
                path = parent
        for directory in namespaces:  # even when it holds nothing
            tree.setdefault(directory, set())
        _TREE = tree
    return _TREE


def _read(path):
    """The bytes of the bundle's file at `path` (data, or a module's source)."""
    import errno

    path = _normpath(path)
    entry = _FILES.get(path)
    if entry is not None:
        return bytes(_DATA[_BASE + entry[0]:_BASE + entry[0] + entry[1]])
    entry = _module_files().get(path)
    if entry is not None and entry[0] == "s":
        return bytes(_payload(entry))
    if entry is not None:
        raise FileNotFoundError(errno.ENOENT, "the bundle holds this module's code object, not its source", path)
    if path in _tree():
        raise IsADirectoryError(errno.EISDIR, "Is a directory", path)
    raise FileNotFoundError(errno.ENOENT, "No such file in the bundle", path)


class BundlePath:
    """A file or directory of the bundle, read-only: importlib.resources' Traversable and importlib.metadata's
    SimplePath (name, parent, joinpath and /, iterdir, is_file, is_dir, exists, open, read_bytes, read_text)."""

    __slots__ = ("_path",)

    def __init__(self, path):
        self._path = _normpath(path)

    def __repr__(self):
        return f"BundlePath({self._path!r})"

    def __str__(self):
        return self._path

    def __eq__(self, other):
        return isinstance(other, BundlePath) and other._path == self._path

    def __hash__(self):
        return hash(self._path)

    @property
    def name(self):
        return self._path.rpartition("/")[2]

    @property
    def parent(self):
        return BundlePath(self._path.rpartition("/")[0] or "/")

    def joinpath(self, *descendants):
        path = self._path
        for part in descendants:
            part = str(part)
            path = part if part.startswith("/") else f"{path}/{part}"
        return BundlePath(path)

    def __truediv__(self, child):
        return self.joinpath(child)

    def is_file(self):
        return self._path in _FILES or self._path in _module_files()

    def is_dir(self):
        return self._path in _tree()

    def exists(self):
        return self._path in _tree() or self.is_file()

    def iterdir(self):
        import errno

        if not self.is_dir():
            error = NotADirectoryError if self.exists() else FileNotFoundError
            raise error(errno.ENOTDIR if self.exists() else errno.ENOENT, "Not a directory in the bundle", self._path)
        base = "" if self._path == "/" else self._path
        return iter([BundlePath(f"{base}/{name}") for name in sorted(_tree()[self._path])])

    def read_bytes(self):
        return _read(self._path)

    def open(self, mode="r", buffering=-1, encoding=None, errors=None, newline=None):
        import io

        if mode not in ("r", "rt", "tr", "rb", "br"):
            raise ValueError(f"the bundle's files are read-only: mode {mode!r}")
        stream = io.BytesIO(self.read_bytes())
        if "b" in mode:
            return stream
        return io.TextIOWrapper(stream, encoding=encoding or "utf-8", errors=errors, newline=newline)

    def read_text(self, encoding=None, errors=None):
        with self.open("r", encoding=encoding, errors=errors) as stream:
            return stream.read()


class BundleResourceReader:
    """importlib.resources' reader of a package (or a module's directory): files() is its directory."""

    def __init__(self, directory):
        self._root = BundlePath(directory)

    def files(self):
        return self._root

    # The older ResourceReader methods, as importlib.resources.abc.TraversableResources defines them.
    def open_resource(self, resource):
        return self._root.joinpath(resource).open("rb")

    def resource_path(self, resource):
        raise FileNotFoundError(resource)

    def is_resource(self, path):
        return self._root.joinpath(path).is_file()

    def contents(self):
        return (item.name for item in self._root.iterdir())


class BundleLoader(zipimport.zipimporter):
    """The loader of every module of the bundle. A zipimporter by type, with the bundle as its archive (`archive`
    is "/", get_data reads any of its files, `_files`/`_get_files()` lists them relative to it): code that serves
    package data from an archive then works from memory too (Jinja's PackageLoader, pkgutil.get_data)."""

    def __init__(self):  # no zip file to open: the bundle's data
        self.archive = "/"
        self.prefix = ""

    def __repr__(self):
        return "<wasmbuild bundle loader>"

    def find_spec(self, fullname, target=None):
        return BundleFinder.find_spec(fullname)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__spec__.name
        if _INDEX[name][0] != "n":
            exec(self.get_code(name), module.__dict__)

    def load_module(self, fullname):
        return _frozen_importlib._load_module_shim(self, fullname)

    def get_code(self, fullname):
        entry = _INDEX[fullname]
        if entry[0] == "c":
            return marshal.loads(_payload(entry))
        if entry[0] == "n":
            return None
        return compile(bytes(_payload(entry)), entry[4], "exec", dont_inherit=True)

    def get_source(self, fullname):
        if fullname == "__main__" and "script" in _APP:
            return bytes(_payload(_APP["script"])).decode("utf-8")
        entry = _INDEX.get(fullname)
        if entry is None or entry[0] != "s":
            return None
        return bytes(_payload(entry)).decode("utf-8")

    def is_package(self, fullname):
        return bool(_INDEX[fullname][1])

    def get_filename(self, fullname):
        return _INDEX[fullname][4]

    def get_data(self, pathname):
        return _read(pathname)

    def get_resource_reader(self, fullname):
        entry = _INDEX.get(fullname)
        if entry is None:
            return None
        return BundleResourceReader(entry[4] if entry[0] == "n" else entry[4].rpartition("/")[0])

    def _get_files(self):
        return {path[1:]: None for path in _FILES}

    @property
    def _files(self):
        return self._get_files()

    def invalidate_caches(self):
        pass


BUNDLE_LOADER = BundleLoader()
_DISTRIBUTION = None  # the importlib.metadata.Distribution subclass, made on first use


def _distribution_type():
    global _DISTRIBUTION
    if _DISTRIBUTION is None:
        import importlib.metadata

        class BundleDistribution(importlib.metadata.Distribution):
            """An installed distribution whose .dist-info directory is in the bundle."""

            def __init__(self, path):
                self._path = BundlePath(path)

            def __repr__(self):
                return f"<BundleDistribution {str(self._path)!r}>"

            def read_text(self, filename):
                try:
                    return self._path.joinpath(filename).read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    return None

            def locate_file(self, path):
                return self._path.parent.joinpath(path)

        _DISTRIBUTION = BundleDistribution
    return _DISTRIBUTION


class BundleFinder:
    """Modules from the bundle (the standard library's code objects, site-packages, the app's sources) and
    the distributions installed in its site-packages."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        entry = _INDEX.get(name)
        if entry is None:
            # A package's extension module linked in as a built-in (markupsafe._speedups): CPython 3.11's
            # BuiltinImporter looks at top-level names only.
            if "." in name and _imp.is_builtin(name):
                return _frozen_importlib.ModuleSpec(name, _frozen_importlib.BuiltinImporter, origin="built-in")
            return None
        if entry[0] == "n":
            spec = _frozen_importlib.ModuleSpec(name, BUNDLE_LOADER, origin=None, is_package=True)
            spec.submodule_search_locations = [entry[4]]
            return spec
        spec = _frozen_importlib.ModuleSpec(name, BUNDLE_LOADER, origin=entry[4], is_package=entry[1])
        spec.has_location = True
        if entry[1]:
            spec.submodule_search_locations = [entry[4].rpartition("/")[0]]
        return spec

    @classmethod
    def find_distributions(cls, context=None):
        """importlib.metadata's hook: the bundle's distributions named as context.name is (all without one)."""
        import re

        name = getattr(context, "name", None)
        wanted = None if name is None else re.sub(r"[-_.]+", "_", name).lower()
        make = _distribution_type()
        return iter([make(path) for normalized, path in _APP.get("distributions", ())
                     if wanted is None or normalized == wanted])


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
            source = BUNDLE_LOADER.get_source(name + ".__main__" if package == name else name) or ""
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
                                 __loader__=BUNDLE_LOADER, __spec__=None, __package__=None, __doc__=None)
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
