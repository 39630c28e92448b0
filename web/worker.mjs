// The REPL's interpreter, in a module worker: a long computation blocks this thread, never the page.
//
// page -> worker: {type: 'init', indexURL?}, {type: 'run', id, code}, {type: 'complete', id, code},
//                 {type: 'installWheel', id, source, options?} (source: a URL, relative to worker.mjs, or the
//                 wheel's bytes, an ArrayBuffer or Uint8Array; options as python.installWheel's)
// worker -> page: {type: 'progress', loaded, total, stage}, {type: 'ready', version, ms},
//                 {type: 'output', lines: [[stream, text], ...]}, {type: 'result', id, ok, repr | error, fatal},
//                 {type: 'complete', id, value}, {type: 'installed', id, ok, wheel | error, errorType, fatal},
//                 {type: 'failed', message} (Python could not be loaded)

import { loadPython } from './wasmbuild-python.mjs';

let python = null;
const queue = [];

// Output lines go to the page in batches: a loop printing thousands of lines must not flood it with messages.
let pending = [];
let lastPost = 0;
function flushOutput() {
  if (pending.length) {
    postMessage({ type: 'output', lines: pending });
    pending = [];
  }
  lastPost = performance.now();
}
function output(stream) {
  return (text) => {
    pending.push([stream, text]);
    if (pending.length >= 200 || performance.now() - lastPost > 50) flushOutput();
  };
}

function handle(message) {
  if (message.type === 'run') {
    python.runPython(message.code).then(
      (repr) => { flushOutput(); postMessage({ type: 'result', id: message.id, ok: true, repr }); },
      (error) => {
        flushOutput();
        // Not a Python exception: the interpreter itself failed (e.g. the JS engine's stack) and is unusable.
        const fatal = error.name !== 'PythonError';
        postMessage({ type: 'result', id: message.id, ok: false, error: error.message, errorType: error.type, fatal });
      });
  } else if (message.type === 'installWheel') {
    python.installWheel(message.source, message.options ?? {}).then(
      (wheel) => { flushOutput(); postMessage({ type: 'installed', id: message.id, ok: true, wheel }); },
      (error) => {
        flushOutput();
        // A refused wheel (WheelError), bad arguments (TypeError) or a Python exception leave the interpreter usable.
        const fatal = !['WheelError', 'TypeError', 'PythonError'].includes(error.name);
        postMessage({ type: 'installed', id: message.id, ok: false, error: error.message, errorType: error.name,
                      fatal });
      });
  } else if (message.type === 'complete') {
    let value = true;
    try {
      value = python.complete(message.code);
    } catch (error) {
      flushOutput();
    }
    postMessage({ type: 'complete', id: message.id, value });
  }
}

// `?index=` may name a directory of this page's own server only: python.mjs from another origin would run as this
// page (the server's Content-Security-Policy refuses it too; this says why).
function sameOriginURL(value) {
  const url = new URL(value, self.location.href);
  if (url.origin !== self.location.origin) {
    throw new Error(`?index=${value}: not on this page's server (${self.location.origin}); the interpreter is loaded only from there`);
  }
  return url.href;
}

async function init(message) {
  const started = performance.now();
  try {
    python = await loadPython({
      ...(message.indexURL ? { indexURL: sameOriginURL(message.indexURL) } : {}),
      stdout: output('stdout'),
      stderr: output('stderr'),
      onProgress: (p) => postMessage({ type: 'progress', ...p }),
    });
  } catch (error) {
    flushOutput();
    postMessage({ type: 'failed', message: error.message });
    return;
  }
  flushOutput();
  postMessage({ type: 'ready', version: python.version, ms: performance.now() - started });
  while (queue.length) handle(queue.shift());
}

self.onmessage = ({ data }) => {
  if (data.type === 'init') init(data);
  else if (python) handle(data);
  else queue.push(data);
};
