// Types of wasmbuild's JavaScript API (wasmbuild-python.mjs).

export interface Progress {
  /** Bytes of python.wasm and python.data read so far. */
  loaded: number;
  /** Their total size, null while a size is not known yet. */
  total: number | null;
  /** 'download', then 'init' (compiling the module, starting Python), then 'ready'. */
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

export interface Python {
  /** Runs code as the REPL does: the repr of its last expression, undefined when there is none (or it is None).
   * Rejects with a PythonError for a Python exception; with a plain Error when the interpreter itself failed (a
   * wasm trap, the JS stack exhausted by deep C recursion): it is then unusable, load a new one. */
  runPython(code: string): Promise<string | undefined>;
  /** False while a REPL needs more lines (an open block, bracket or string). */
  complete(code: string): boolean;
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
