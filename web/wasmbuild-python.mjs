// wasmbuild's JavaScript API for the web build of CPython (python.mjs + python.wasm + python.data).
//
//   import { loadPython } from './wasmbuild-python.mjs';
//   const py = await loadPython({ stdout: (line) => console.log(line) });
//   await py.runPython('print(6 * 7)');        // stdout: 42; resolves to undefined (no value)
//   await py.runPython('1 + 1');               // '2': the repr of the last expression
//   py.complete('if x:');                      // false: a REPL needs more lines
//   py.FS.writeFile('/tmp/data.txt', 'hello'); // Emscripten's in-memory file system
//   await py.installWheel('attrs-25.4.0-py3-none-any.whl', { sha256 });   // a pure-Python wheel into site-packages
//
// An artifact made by `wasmbuild install` carries wheels/ (the wheels and wheels.json, their manifest): loadPython
// installs every wheel it lists, with its sha256 checked, before it resolves (py.packages says which).
// Runs in browsers (page or worker) and under node. The Python half is `_wasmbuild_web` in the artifact's
// standard library (web/_wasmbuild_web.py): code and answers pass through two files in the in-memory file system.

const IN = '/tmp/_wb_in.py';
const OUT = '/tmp/_wb_out.json';
const WHEEL = '/tmp/_wb_wheel.whl'; // a wheel's bytes while installWheel hands them to Python
const IS_NODE = typeof process === 'object' && typeof process.versions?.node === 'string';
// wasmbuild install's wheels beside python.mjs, and their manifest (written by src/wasmbuild/packages/web_install.py).
const WHEELS_DIR = 'wheels/';
const WHEELS_MANIFEST = 'wheels.json';
const MANIFEST_FORMAT = 1;

/** A Python exception: `message` is the text Python prints (the traceback), `type` its class name. */
export class PythonError extends Error {
  constructor(result) {
    super(result.traceback || `${result.type}: ${result.message}`);
    this.name = 'PythonError';
    this.type = result.type;
    this.pythonMessage = result.message;
  }
}

/** A wheel installWheel does not install: `message` names the cause and the fix; the interpreter goes on. */
export class WheelError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = 'WheelError';
  }
}

// The bytes of installWheel's source when it is bytes (any realm's ArrayBuffer or view), else null.
function sourceBytes(source) {
  if (ArrayBuffer.isView(source)) return new Uint8Array(source.buffer, source.byteOffset, source.byteLength);
  if (source instanceof ArrayBuffer || Object.prototype.toString.call(source) === '[object ArrayBuffer]') {
    return new Uint8Array(source);
  }
  return null;
}

// WebCrypto's SHA-256 as hex: globalThis.crypto in browsers (secure contexts only) and node >= 19, node:crypto's
// webcrypto in node 18.
async function sha256Hex(bytes, what) {
  const subtle = globalThis.crypto?.subtle ?? (IS_NODE ? (await import('node:crypto')).webcrypto.subtle : undefined);
  if (!subtle) {
    throw new WheelError(`cannot check the sha256 of ${what}: WebCrypto (crypto.subtle) exists only in secure ` +
                         'contexts (https:, http://localhost, http://127.0.0.1); serve the page from one, or leave ' +
                         'out the sha256 option');
  }
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

function directoryURL(url) {
  const href = String(url);
  return new URL(href.endsWith('/') ? href : `${href}/`);
}

async function defaultBase() {
  if (globalThis.location?.href) return globalThis.location.href;
  if (IS_NODE) {
    const { pathToFileURL } = await import('node:url');
    return pathToFileURL(`${process.cwd()}/`).href;
  }
  return import.meta.url;
}

// Defaults of loadPython's download bounds: the web build's python.wasm and python.data are about 10 MB each.
const MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024; // per file
const DOWNLOAD_TIMEOUT_MS = 300_000; // for both files together

// One file's bytes as an ArrayBuffer, reporting each chunk's size; a failure names the file, the url and why.
// At most `limits.maxBytes` bytes; `limits.signal` aborts the transfer (the download deadline).
async function fetchBytes(url, onChunk, limits) {
  const name = url.pathname.split('/').pop();
  const tooLarge = (size) => new Error(`cannot fetch ${name} from ${url.href}: ${size === null ? 'more than' : size} ` +
    `bytes, over the limit of ${limits.maxBytes} (the maxDownloadBytes option)`);
  if (url.protocol === 'file:') {
    const [{ readFile, stat }, { fileURLToPath }] = await Promise.all([import('node:fs/promises'), import('node:url')]);
    let data;
    try {
      const size = (await stat(fileURLToPath(url))).size;
      if (size > limits.maxBytes) throw tooLarge(size);
      data = await readFile(fileURLToPath(url));
    } catch (error) {
      if (error.message.startsWith('cannot fetch')) throw error;
      const failure = new Error(`cannot read ${name} at ${fileURLToPath(url)}: ${error.message}`, { cause: error });
      failure.missing = error.code === 'ENOENT' || error.code === 'ENOTDIR';
      throw failure;
    }
    onChunk(data.byteLength, data.byteLength);
    return data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength);
  }
  const failure = (error) => (limits.signal.aborted ? limits.signal.reason : error.message);
  let response;
  try {
    response = await fetch(url, { signal: limits.signal });
  } catch (error) {
    throw new Error(`cannot fetch ${name} from ${url.href}: ${failure(error)}`, { cause: error });
  }
  if (!response.ok) {
    response.body?.cancel().catch(() => {});
    const failure = new Error(`cannot fetch ${name} from ${url.href}: HTTP ${response.status} ` +
                              `${response.statusText}`.trim());
    failure.missing = response.status === 404;
    throw failure;
  }
  // Content-Length is the transferred size: with a compressing server it is not the size of what is read.
  const encoded = response.headers.get('Content-Encoding');
  const length = Number(response.headers.get('Content-Length'));
  const total = !encoded && length > 0 ? length : null;
  if (total !== null && total > limits.maxBytes) {
    response.body?.cancel().catch(() => {});
    throw tooLarge(total);
  }
  onChunk(0, total);
  if (!response.body) {
    const data = await response.arrayBuffer();
    if (data.byteLength > limits.maxBytes) throw tooLarge(data.byteLength);
    onChunk(data.byteLength, total);
    return data;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      loaded += value.byteLength;
      if (loaded > limits.maxBytes) {
        reader.cancel().catch(() => {});
        throw tooLarge(null);
      }
      chunks.push(value);
      onChunk(value.byteLength, total);
    }
  } catch (error) {
    if (loaded > limits.maxBytes) throw error;
    throw new Error(`cannot fetch ${name} from ${url.href}: the transfer broke off after ${loaded} bytes ` +
                    `(${failure(error)})`, { cause: error });
  }
  const data = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    data.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return data.buffer;
}

// The manifest of the wheels `wasmbuild install` put beside the interpreter (wheels/wheels.json): its entries
// ({name, version, file, sha256, url}), or null when there is none (HTTP 404, or no such file under node): an
// artifact without packages has no wheels/. Any other failure, or a manifest that is not one, is an error.
async function fetchManifest(url, limits) {
  let bytes;
  try {
    bytes = await fetchBytes(url, () => {}, limits);
  } catch (error) {
    if (error.missing) return null;
    throw error;
  }
  const bad = (why) => new Error(`${url.href} is not a manifest of wasmbuild install's wheels: ${why}`);
  let manifest;
  try {
    manifest = JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw bad(`not JSON (${error.message})`);
  }
  if (manifest?.format !== MANIFEST_FORMAT || !Array.isArray(manifest.wheels)) {
    throw bad(`format ${JSON.stringify(manifest?.format)} with ${Array.isArray(manifest?.wheels) ? 'a' : 'no'} ` +
              `wheels list; this loader reads format ${MANIFEST_FORMAT}`);
  }
  for (const entry of manifest.wheels) {
    if (typeof entry?.file !== 'string' || !/^[^/\\]+\.whl$/.test(entry.file) || entry.file.startsWith('.')) {
      throw bad(`an entry's file is ${JSON.stringify(entry?.file)}, not a wheel's file name in ${WHEELS_DIR}`);
    }
    if (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256)) {
      throw bad(`${entry.file} has no sha256 (64 hexadecimal digits)`);
    }
  }
  return manifest.wheels;
}

// Bytes written by the guest, one call per line (UTF-8, without its newline); flush() hands over a partial line.
function lineWriter(emit) {
  const decoder = new TextDecoder();
  let bytes = [];
  const flush = () => {
    if (bytes.length) {
      const line = decoder.decode(new Uint8Array(bytes));
      bytes = [];
      emit(line);
    }
  };
  const write = (byte) => {
    if (byte === null || byte === undefined) flush();
    else if (byte === 10) {
      const line = decoder.decode(new Uint8Array(bytes));
      bytes = [];
      emit(line);
    } else bytes.push(byte < 0 ? byte + 256 : byte);
  };
  return { write, flush };
}

/**
 * Load the interpreter and initialise Python once.
 *
 * options.indexURL  where python.mjs, python.wasm and python.data are (default: this module's directory)
 * options.stdout    called with each line Python writes to stdout (default: console.log)
 * options.stderr    the same for stderr (default: console.warn)
 * options.onProgress({loaded, total, stage})  stage 'download' (bytes of python.wasm + python.data; total is
 *                   null while a size is unknown), then 'init' (compiling, starting Python), then 'ready'
 * options.maxDownloadBytes  the most bytes python.wasm or python.data may have (default 256 MiB each)
 * options.downloadTimeout   milliseconds within which both must have arrived (default 300000: 5 minutes)
 * options.wheels    false: do not look for wheels/wheels.json (default: install the wheels it lists, when the
 *                   artifact has it; a 404 means none)
 *
 * Resolves to { runPython(code), complete(code), installWheel(source, options), packages, FS, version, module };
 * rejects with an Error naming the file and the reason when python.mjs, python.wasm or python.data cannot be
 * loaded, Python does not start, or a wheel of wheels/wheels.json does not install. The wheels' and the loader's
 * downloads share maxDownloadBytes and downloadTimeout.
 */
export async function loadPython(options = {}) {
  const indexURL = directoryURL(options.indexURL === undefined
    ? new URL('./', import.meta.url)
    : new URL(String(options.indexURL), await defaultBase()));
  const outLine = options.stdout ?? ((line) => console.log(line));
  const errLine = options.stderr ?? ((line) => console.warn(line));
  const stdout = lineWriter(outLine);
  const stderr = lineWriter(errLine);
  const progress = options.onProgress ?? (() => {});

  const files = { 'python.wasm': { loaded: 0, total: null }, 'python.data': { loaded: 0, total: null } };
  const report = () => {
    const all = Object.values(files);
    const loaded = all.reduce((sum, f) => sum + f.loaded, 0);
    const total = all.every((f) => f.total !== null) ? all.reduce((sum, f) => sum + f.total, 0) : null;
    progress({ loaded, total: total === null ? null : Math.max(total, loaded), stage: 'download' });
  };
  const bound = (value, fallback, option) => {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !(value > 0)) throw new TypeError(`${option} must be a positive number`);
    return value;
  };
  const maxBytes = bound(options.maxDownloadBytes, MAX_DOWNLOAD_BYTES, 'maxDownloadBytes');
  const timeoutMs = bound(options.downloadTimeout, DOWNLOAD_TIMEOUT_MS, 'downloadTimeout');
  // One deadline for both files: a server that drips them (each byte in time, the whole never) is cut off.
  const deadline = new AbortController();
  const limits = { maxBytes, signal: deadline.signal };
  const download = (name) => fetchBytes(new URL(name, indexURL), (bytes, total) => {
    files[name].loaded += bytes;
    files[name].total = total;
    report();
  }, limits);
  const timer = setTimeout(() => deadline.abort(`not downloaded within ${timeoutMs} ms (the downloadTimeout ` +
                                                `option)`), timeoutMs);

  const toPath = IS_NODE ? (await import('node:url')).fileURLToPath : null;
  const factoryURL = new URL('python.mjs', indexURL);
  const wheelsURL = new URL(WHEELS_DIR, indexURL);
  const [factory, wasm, data, bundled] = await Promise.all([
    import(factoryURL.href).then(
      (mod) => mod.default ?? mod.createPython,
      (error) => { throw new Error(`cannot load python.mjs from ${factoryURL.href}: ${error.message}`, { cause: error }); }),
    download('python.wasm'),
    download('python.data'),
    options.wheels === false ? null : fetchManifest(new URL(WHEELS_MANIFEST, wheelsURL), limits),
  ]).finally(() => {
    clearTimeout(timer);
    deadline.abort('the download stopped'); // a failed file ends the other one's transfer too
  });
  if (typeof factory !== 'function') throw new Error(`${factoryURL.href} does not export the module factory`);
  progress({ loaded: files['python.wasm'].loaded + files['python.data'].loaded,
             total: files['python.wasm'].loaded + files['python.data'].loaded, stage: 'init' });

  let module;
  try {
    module = await factory({
      noInitialRun: true,
      wasmBinary: wasm,
      // Only asked for what is not handed over below; node's loaders read paths, not file: URLs.
      locateFile: (path) => {
        const url = new URL(path, indexURL);
        return toPath && url.protocol === 'file:' ? toPath(url) : url.href;
      },
      // file_packager's loader asks for the package before fetching it: the bytes fetched above.
      getPreloadedPackage: (name) => (String(name).endsWith('python.data') ? data : null),
      // Emscripten's own messages (an abort's reason, a missing file).
      print: (line) => { stdout.flush(); outLine(line); },
      printErr: (line) => { stderr.flush(); errLine(line); },
      // Emscripten runs preRun callbacks last to first: this one runs after the artifact's own (the packaged
      // standard library's, an environment copied from node's), so its environment wins.
      preRun: [(mod) => {
        // Standard streams of our own: no tty (stdin is at its end: a page has none), UTF-8 lines.
        if (!mod.FS.init.initialized) mod.FS.init(() => null, stdout.write, stderr.write);
        if (mod.ENV) {
          for (const name of ['PYTHONPATH', 'PYTHONSTARTUP', 'PYTHONSAFEPATH']) delete mod.ENV[name];
          mod.ENV.PYTHONHOME = '/';
          mod.ENV.PYTHONDONTWRITEBYTECODE = '1';
        }
      }],
    });
  } catch (error) {
    stdout.flush();
    stderr.flush();
    throw new Error(`cannot start the WebAssembly module: ${error?.message ?? error}`, { cause: error });
  }
  const { FS } = module;

  // PyRun_SimpleString, with its own failure (not the user code's: run() catches those) as an Error.
  const simple = (statement) => {
    const status = module.ccall('PyRun_SimpleString', 'number', ['string'], [statement]);
    stdout.flush();
    stderr.flush();
    if (status !== 0) throw new Error(`Python failed running: ${statement} (see stderr)`);
  };
  // A failure below Python (the JS engine's stack exhausted by deep C recursion, a wasm trap, an abort) leaves the
  // module in an unknown state: every later call is refused with the first failure's reason.
  let broken = null;
  const call = (fn, code) => {
    if (broken) throw new Error(`the interpreter stopped working after an earlier error: ${broken}`);
    try {
      FS.writeFile(IN, code);
      try { FS.unlink(OUT); } catch { /* not there */ }
      simple(`__import__('_wasmbuild_web').${fn}(${JSON.stringify(IN)}, ${JSON.stringify(OUT)})`);
      return JSON.parse(FS.readFile(OUT, { encoding: 'utf8' }));
    } catch (error) {
      stdout.flush();
      stderr.flush();
      broken = `${error?.name ?? 'Error'}: ${error?.message ?? error}`;
      throw new Error(`the interpreter stopped working: ${broken}`, { cause: error });
    }
  };

  try {
    module.ccall('Py_Initialize', null, [], []);
    // stdout is a pipe-like device: line buffering, so print() output shows while code still runs.
    simple("__import__('sys').stdout.reconfigure(line_buffering=True); __import__('_wasmbuild_web')");
  } catch (error) {
    stdout.flush();
    stderr.flush();
    throw new Error(`Python did not start: ${error?.message ?? error}`, { cause: error });
  }
  // Not through run(): the user's first input is <python-input-0>.
  simple(`open(${JSON.stringify(OUT)}, 'w').write('.'.join(map(str, __import__('sys').version_info[:3])))` +
         "; globals().pop('__warningregistry__', None)"); // left by the start-up: __main__ starts clean
  const version = FS.readFile(OUT, { encoding: 'utf8' });

  // installWheel's steps: the file name checked by Python before anything is fetched, the bytes (downloaded within
  // the loader's bounds, or given), their sha256, then Python's install_wheel (zip, paths, RECORD, site-packages).
  const wheelCall = (fn, input) => {
    const result = call(fn, input);
    if (result.ok) return result;
    throw result.refused ? new WheelError(result.message) : new PythonError(result);
  };
  const installWheel = async (source, opts = {}) => {
    // A copy: the caller's buffer may change while its hash is computed; the bytes checked are the ones written.
    let bytes = sourceBytes(source)?.slice() ?? null;
    let url = null;
    if (bytes === null) {
      if (typeof source !== 'string' && !(source instanceof URL)) {
        throw new TypeError('installWheel(source): source is a URL (string or URL) or the wheel\'s bytes ' +
                            '(Uint8Array or ArrayBuffer)');
      }
      url = new URL(String(source), await defaultBase());
    }
    let filename = opts.filename;
    if (filename === undefined && url) {
      const last = url.pathname.split('/').pop();
      try { filename = decodeURIComponent(last); } catch { filename = last; }
    }
    if (!filename) {
      throw new TypeError(url ? `installWheel(${url.href}): the URL does not end in the wheel's file name; give it ` +
                                'as the filename option'
        : 'installWheel(bytes) needs the filename option: the wheel\'s file name (e.g. ' +
          'attrs-25.4.0-py3-none-any.whl), whose name, version and tags PEP 427 reads');
    }
    filename = String(filename);
    const expected = opts.sha256 === undefined ? null : String(opts.sha256).toLowerCase();
    if (expected !== null && !/^[0-9a-f]{64}$/.test(expected)) {
      throw new TypeError(`installWheel: the sha256 option must be 64 hexadecimal digits (the wheel's SHA-256, as ` +
                          `sha256sum or PyPI's "digests" give it), not ${JSON.stringify(opts.sha256)}`);
    }
    wheelCall('wheel_name_file', filename); // a platform wheel is refused before it is downloaded
    if (url) {
      const wheelBytes = bound(opts.maxDownloadBytes, maxBytes, 'maxDownloadBytes');
      const wheelTimeout = bound(opts.downloadTimeout, timeoutMs, 'downloadTimeout');
      const wheelDeadline = new AbortController();
      const stop = setTimeout(() => wheelDeadline.abort(`not downloaded within ${wheelTimeout} ms (the ` +
                                                        'downloadTimeout option)'), wheelTimeout);
      try {
        const limits = { maxBytes: wheelBytes, signal: wheelDeadline.signal };
        bytes = new Uint8Array(await fetchBytes(url, () => {}, limits));
      } catch (error) {
        throw new WheelError(`${error.message}; nothing was installed`, { cause: error });
      } finally {
        clearTimeout(stop);
      }
    }
    const what = url ? `${filename} from ${url.href}` : filename;
    if (expected !== null) {
      const actual = await sha256Hex(bytes, what);
      if (actual !== expected) {
        throw new WheelError(`${what}: its sha256 is ${actual}, not the expected ${expected}: these are not ` +
                             'the bytes the hash names (a changed or damaged file, or the wrong url or hash); ' +
                             'nothing was installed');
      }
    }
    if (broken) throw new Error(`the interpreter stopped working after an earlier error: ${broken}`);
    FS.writeFile(WHEEL, bytes);
    try {
      const { ok, ...installed } = wheelCall('install_wheel_file', JSON.stringify({ path: WHEEL, filename }));
      return installed;
    } finally {
      try { FS.unlink(WHEEL); } catch { /* the interpreter failed with it */ }
    }
  };

  // The artifact's own wheels (wasmbuild install), each through installWheel with its sha256, before Python is
  // handed over: a wheel that does not install rejects loadPython.
  const packages = [];
  for (const entry of bundled ?? []) {
    try {
      const { name, version: installed } = await installWheel(new URL(encodeURIComponent(entry.file), wheelsURL),
                                                              { sha256: entry.sha256, filename: entry.file });
      packages.push({ name, version: installed });
    } catch (error) {
      throw new Error(`cannot install ${entry.file}, listed in ${new URL(WHEELS_MANIFEST, wheelsURL).href}: ` +
                      `${error.message}`, { cause: error });
    }
  }
  progress({ loaded: files['python.wasm'].loaded + files['python.data'].loaded,
             total: files['python.wasm'].loaded + files['python.data'].loaded, stage: 'ready' });

  return {
    /** Run code as the REPL does: resolves to the repr of its last expression (undefined when there is none or it
     * is None); rejects with a PythonError whose message is the traceback (SyntaxErrors included), or with an
     * Error (not a PythonError) when the interpreter itself failed: it is then unusable, load a new one. */
    async runPython(code) {
      const result = call('run_file', String(code));
      if (!result.ok) throw new PythonError(result);
      return result.repr ?? undefined;
    },
    /** False while the REPL needs more lines (`if x:`, an open bracket or string), true when `code` can run. */
    complete(code) {
      return call('complete_file', String(code)) === true;
    },
    /** Install a pure-Python wheel (py3-none-any) from a URL or its bytes into site-packages: importable at once.
     * options: sha256 (hex, checked with WebCrypto), filename (needed for bytes), maxDownloadBytes and
     * downloadTimeout (default: loadPython's). Dependencies are not installed. Resolves to {name, version, files,
     * location, requires, skipped, replaced}; rejects with a WheelError naming the cause and the fix. */
    installWheel,
    /** The wheels of wheels/wheels.json installed at start-up (wasmbuild install): [{name, version}], in its order. */
    packages,
    FS,
    version,
    module,
  };
}
