// Types of wasmbuild's JavaScript API (wasmbuild-python.mjs).

export interface Progress {
  /** Bytes of python.wasm and python.data read so far. */
  loaded: number;
  /** Their total size, null while a size is not known yet. */
  total: number | null;
  /** 'download', then 'init' (compiling the module, starting Python, installing wheels/'s wheels), then 'ready'. */
  stage: 'download' | 'init' | 'ready';
}

export interface LoadPythonOptions {
  /** Where python.mjs, python.wasm and python.data are (default: the directory of wasmbuild-python.mjs). */
  indexURL?: string | URL;
  /** Each line Python writes to stdout, without its newline (default: console.log). */
  stdout?: (line: string) => void;
  /** Each line Python writes to stderr (default: console.warn). */
  stderr?: (line: string) => void;
  onProgress?: (progress: Progress) => void;
  /** The most bytes python.wasm or python.data may have; a larger one rejects loadPython (default 256 MiB each). */
  maxDownloadBytes?: number;
  /** Milliseconds within which python.wasm and python.data must have arrived, else loadPython rejects (default 300000). */
  downloadTimeout?: number;
  /** false: do not look for wheels/wheels.json beside python.mjs. By default the wheels it lists (an artifact made by
   * `wasmbuild install`) are installed, each checked against its sha256, before loadPython resolves; an artifact
   * without it (HTTP 404, no such file under node) has none. */
  wheels?: boolean;
}

/** Emscripten's file system (MEMFS): the standard library is at /lib/python3.X, /tmp and /home are writable. */
export interface EmscriptenFS {
  writeFile(path: string, data: string | ArrayBufferView, opts?: { flags?: string }): void;
  readFile(path: string, opts: { encoding: 'utf8' }): string;
  readFile(path: string, opts?: { encoding?: 'binary' }): Uint8Array;
  readdir(path: string): string[];
  mkdir(path: string, mode?: number): void;
  unlink(path: string): void;
  rmdir(path: string): void;
  stat(path: string): { size: number; mode: number; mtime: Date };
  [name: string]: unknown;
}

export interface InstallWheelOptions {
  /** The wheel's SHA-256 as 64 hex digits (sha256sum's, or PyPI's "digests"): other bytes are refused. Checked with
   * WebCrypto (crypto.subtle), which a browser offers only in secure contexts (https:, localhost, 127.0.0.1). */
  sha256?: string;
  /** The wheel's file name (PEP 427: name-version-py3-none-any.whl): required for bytes; for a URL, its last path
   * segment unless given. */
  filename?: string;
  /** The most bytes the wheel's download may have (default: loadPython's maxDownloadBytes). */
  maxDownloadBytes?: number;
  /** Milliseconds within which the download must have arrived (default: loadPython's downloadTimeout). */
  downloadTimeout?: number;
}

export interface InstalledWheel {
  /** The project's name, as its METADATA gives it. */
  name: string;
  version: string;
  /** Every file written, absolute paths in the in-memory file system (INSTALLER and RECORD included). */
  files: string[];
  /** The site-packages directory it went into, e.g. /lib/python3.13/site-packages. */
  location: string;
  /** Its Requires-Dist lines, as written: dependencies are not installed, install each one's wheel. */
  requires: string[];
  /** Members of its .data directory that were not installed (scripts, headers, data; also said on stderr). */
  skipped: string[];
  /** The version of the same project it replaced, or null. */
  replaced: string | null;
}

export interface Python {
  /** Runs code as the REPL does: the repr of its last expression, undefined when there is none (or it is None).
   * Rejects with a PythonError for a Python exception; with a plain Error when the interpreter itself failed (a
   * wasm trap, the JS stack exhausted by deep C recursion): it is then unusable, load a new one. */
  runPython(code: string): Promise<string | undefined>;
  /** False while a REPL needs more lines (an open block, bracket or string). */
  complete(code: string): boolean;
  /** Installs a pure-Python wheel (tag py3-none-any or py2.py3-none-any) into site-packages, as micropip.install or
   * `pip install --no-deps` would: `import` finds it at once. `source` is a URL (fetched with fetch, within the
   * loader's bounds; a file: URL under node) or the wheel's bytes. Checked first: the file name (PEP 427) and its
   * tag (a platform wheel is refused: this interpreter cannot load compiled extensions), the sha256 when given, the
   * zip, each member's path (no absolute path, no ..) and RECORD hash. Its .data directory's purelib and platlib
   * are installed too, its other parts left out (`skipped`). An installed version of the project is replaced
   * (modules already imported stay as they are). Dependencies are NOT resolved or installed: install each wheel.
   * Rejects with a WheelError naming the cause and the fix (nothing installed; the interpreter goes on), a
   * TypeError for bad arguments, a PythonError for an unexpected Python exception. */
  installWheel(source: string | URL | Uint8Array | ArrayBuffer, options?: InstallWheelOptions):
    Promise<InstalledWheel>;
  /** The wheels of wheels/wheels.json installed at start-up (`wasmbuild install`), in its order; [] without one. */
  packages: { name: string; version: string }[];
  FS: EmscriptenFS;
  /** The CPython version, e.g. "3.13.15". */
  version: string;
  /** The Emscripten module itself (ccall, cwrap, HEAP8 ...). */
  module: unknown;
}

/** A Python exception: `message` is what Python prints (the traceback, or a SyntaxError's text). */
export class PythonError extends Error {
  /** The exception's class name, e.g. "ZeroDivisionError". */
  type: string;
  /** str() of the exception. */
  pythonMessage: string;
}

/** A wheel installWheel does not install (its name or tag, its sha256, not a zip, a member out of site-packages, a
 * RECORD hash, a failed download): `message` names the cause and the fix. */
export class WheelError extends Error {}

/**
 * Loads CPython (python.mjs, python.wasm, python.data) and initialises it.
 *
 * What Python can reach. This interpreter is contained by the JavaScript realm it runs in, not by a sandbox of its
 * own: in a browser, by the browser's sandbox — the page's origin (what the worker's or page's own scripts may
 * fetch or store there), no host files, no processes — so load it in a Web Worker, and give code you do not trust a
 * worker of an origin that holds nothing else. Python cannot run JavaScript from a string (the module is linked
 * with -sDYNAMIC_EXECUTION=0: emscripten_run_script* reached through ctypes abort the interpreter), start a shell
 * command (os.system returns -1) or load a script or a URL through Emscripten's library (aborts). Under node it
 * runs with the rights of the node process and the user running it; it sees Emscripten's in-memory file system
 * only, but node is no sandbox: for untrusted code on a server use the WASI artifact under wasmtime
 * (`wasmbuild run`), which is one.
 */
export function loadPython(options?: LoadPythonOptions): Promise<Python>;
