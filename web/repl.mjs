// The REPL page: a console in front of the interpreter's worker (worker.mjs).
//
// window.__wasmbuild is for tests and the curious: ready (a prompt is shown), firstPromptMs (performance.now() when
// the first prompt appeared: milliseconds since navigation start), busy, error, version, runs, frames (a
// requestAnimationFrame counter: it advances while Python runs, the page is responsive), progress, output().
// `?index=URL` loads python.mjs/.wasm/.data from another directory of this page's own server (worker.mjs refuses
// another origin).

const $ = (id) => document.getElementById(id);
const output = $('output');
const input = $('input');
const promptEl = $('prompt');
const inputLine = $('input-line');
const running = $('running');
const MAX_LINES = 10000;
const HISTORY_KEY = 'wasmbuild-repl-history';
const PS1 = '>>> ';
const PS2 = '... ';

const hooks = {
  ready: false,
  firstPromptMs: null,
  loadMs: null,
  busy: false,
  error: null,
  version: null,
  runs: 0,
  frames: 0,
  progress: null,
  output: () => [...output.children].map((line) => line.textContent).join('\n'),
};
window.__wasmbuild = hooks;

const frame = () => {
  hooks.frames += 1;
  requestAnimationFrame(frame);
};
requestAnimationFrame(frame);

// --- the console -----------------------------------------------------------------------------------------------

function atBottom() {
  const c = $('console');
  return c.scrollHeight - c.scrollTop - c.clientHeight < 40;
}

function scrollDown() {
  const c = $('console');
  c.scrollTop = c.scrollHeight;
}

function append(lines) {
  const follow = atBottom();
  const fragment = document.createDocumentFragment();
  for (const [cls, text, ps] of lines) {
    const div = document.createElement('div');
    div.className = `line ${cls}`;
    if (ps) {
      const span = document.createElement('span');
      span.className = 'ps';
      span.textContent = ps;
      div.append(span);
    }
    div.append(text);
    fragment.append(div);
  }
  output.append(fragment);
  while (output.childElementCount > MAX_LINES) output.firstElementChild.remove();
  if (follow) scrollDown();
}

const note = (text) => append([['note', text]]);

function setPrompt(ps, prefill = '') {
  promptEl.textContent = ps;
  input.value = prefill;
  resize();
  inputLine.hidden = false;
  input.focus();
  scrollDown();
}

function resize() {
  input.style.height = 'auto';
  input.style.height = `${input.scrollHeight}px`;
}

function fail(message) {
  hooks.error = message;
  $('loading').hidden = true;
  inputLine.hidden = true;
  running.hidden = true;
  $('state').textContent = 'not loaded';
  const box = $('error');
  box.hidden = false;
  box.textContent = `Python could not be loaded:\n${message}`;
}

// --- the worker --------------------------------------------------------------------------------------------------

const params = new URLSearchParams(location.search);
let worker = null;
let nextId = 1;
const calls = new Map();

function request(type, code) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    calls.set(id, { resolve, reject });
    worker.postMessage({ type, id, code });
  });
}

function megabytes(bytes) {
  return (bytes / 1e6).toFixed(1);
}

function showProgress({ loaded, total, stage }) {
  hooks.progress = { loaded, total, stage };
  const bar = $('progress');
  const text = $('progress-text');
  if (stage === 'download') {
    if (total) {
      bar.value = loaded / total;
      text.textContent = `Downloading the interpreter and its standard library: ${megabytes(loaded)} of ` +
        `${megabytes(total)} MB (${Math.floor((100 * loaded) / total)}%)`;
    } else {
      bar.removeAttribute('value');
      text.textContent = `Downloading the interpreter and its standard library: ${megabytes(loaded)} MB`;
    }
  } else if (stage === 'init') {
    bar.removeAttribute('value');
    text.textContent = `Downloaded ${megabytes(loaded)} MB; starting Python…`;
  }
}

function onMessage({ data }) {
  switch (data.type) {
    case 'progress':
      showProgress(data);
      break;
    case 'output':
      append(data.lines.map(([stream, text]) => [stream, text]));
      break;
    case 'ready': {
      hooks.version = data.version;
      hooks.loadMs = data.ms;
      $('version').textContent = data.version;
      $('loading').hidden = true;
      $('state').textContent = 'ready';
      if (hooks.firstPromptMs === null) {
        note(`Python ${data.version} (wasmbuild, WebAssembly) in a Web Worker, started in ` +
             `${(data.ms / 1000).toFixed(1)} s. Type code and press Enter.`);
      } else {
        note(`Python ${data.version} started again.`);
      }
      setPrompt(PS1);
      hooks.ready = true;
      if (hooks.firstPromptMs === null) hooks.firstPromptMs = performance.now();
      break;
    }
    case 'failed':
      fail(data.message);
      break;
    case 'result':
    case 'complete': {
      const call = calls.get(data.id);
      calls.delete(data.id);
      call?.resolve(data);
      break;
    }
    default:
      break;
  }
}

function startWorker() {
  hooks.ready = false;
  $('state').textContent = 'starting';
  worker = new Worker(new URL('./worker.mjs', import.meta.url), { type: 'module' });
  worker.onmessage = onMessage;
  worker.onerror = (event) => {
    event.preventDefault();
    fail(`the interpreter's worker stopped: ${event.message || 'worker.mjs or a module it imports could not be loaded'}`);
  };
  worker.postMessage({ type: 'init', indexURL: params.get('index') ?? undefined });
}

// --- input, history, running -------------------------------------------------------------------------------------

let buffer = [];
let history = [];
try {
  history = JSON.parse(localStorage.getItem(HISTORY_KEY) ?? '[]');
} catch {
  history = [];
}
let historyIndex = history.length;
let draft = '';

function remember(source) {
  const entry = source.replace(/\n+$/, '');
  if (entry.trim() && history[history.length - 1] !== entry) history.push(entry);
  history = history.slice(-500);
  historyIndex = history.length;
  try {
    localStorage.setItem(HISTORY_KEY, JSON.stringify(history));
  } catch {
    // storage full or not allowed: the history lasts for this page only
  }
}

function recall(step) {
  if (historyIndex === history.length) draft = input.value;
  const index = Math.min(Math.max(historyIndex + step, 0), history.length);
  if (index === historyIndex) return;
  historyIndex = index;
  input.value = index === history.length ? draft : history[index];
  resize();
  const end = step < 0 ? input.value.indexOf('\n') : input.value.length;
  input.setSelectionRange(end < 0 ? input.value.length : end, end < 0 ? input.value.length : end);
}

function echo(text, first) {
  const lines = text.split('\n');
  append(lines.map((line, i) => ['echo', line, i === 0 ? first : PS2]));
}

let timer = null;
function setBusy(busy) {
  hooks.busy = busy;
  $('stop').hidden = !busy;
  running.hidden = !busy;
  $('state').textContent = busy ? 'running' : 'ready';
  clearInterval(timer);
  if (busy) {
    inputLine.hidden = true;
    const started = performance.now();
    $('elapsed').textContent = '0.0 s';
    timer = setInterval(() => {
      $('elapsed').textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`;
    }, 100);
    scrollDown();
  }
}

async function run(source) {
  setBusy(true);
  const result = await request('run', source);
  if (result.stopped) return; // stop() restarts the interpreter: the prompt comes when it is ready
  setBusy(false);
  hooks.runs += 1;
  if (result.ok) {
    if (result.repr !== undefined && result.repr !== null) append([['result', result.repr]]);
  } else {
    append(result.error.split('\n').map((line) => ['stderr', line]));
  }
  if (result.fatal) {
    note('The interpreter cannot go on after this error: starting a new one (its variables and imports are gone).');
    restart();
    return;
  }
  setPrompt(PS1);
}

async function submit() {
  if (hooks.busy || !hooks.ready) return;
  let text = input.value;
  if (!text.includes('\n') && !text.trim()) text = '';
  echo(text, promptEl.textContent);
  buffer.push(text);
  const source = buffer.join('\n');
  if (!source.trim()) {
    buffer = [];
    setPrompt(PS1);
    return;
  }
  inputLine.hidden = true;
  const { value } = await request('complete', source);
  if (!value) {
    // More lines: keep the last line's indentation, one level deeper after a colon (as the 3.13 REPL does).
    const last = text.split('\n').pop();
    const indent = (last.match(/^\s*/) ?? [''])[0] + (/:\s*$/.test(last) ? '    ' : '');
    setPrompt(PS2, text ? indent : '');
    return;
  }
  buffer = [];
  remember(source);
  await run(source);
}

function restart() {
  worker.terminate();
  for (const call of calls.values()) call.resolve({ type: 'result', ok: true, repr: undefined, stopped: true });
  calls.clear();
  buffer = [];
  setBusy(false);
  inputLine.hidden = true;
  $('loading').hidden = false;
  startWorker();
}

function stop() {
  if (!hooks.busy) return;
  append([['stderr', 'KeyboardInterrupt']]);
  note('The running code was stopped by restarting the interpreter: its variables and imports are gone.');
  restart();
}

input.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    submit();
  } else if (event.key === 'ArrowUp' && !input.value.slice(0, input.selectionStart).includes('\n')) {
    event.preventDefault();
    recall(-1);
  } else if (event.key === 'ArrowDown' && !input.value.slice(input.selectionEnd).includes('\n')) {
    event.preventDefault();
    recall(1);
  } else if (event.key === 'Tab' && !event.shiftKey) {
    event.preventDefault();
    input.setRangeText('    ', input.selectionStart, input.selectionEnd, 'end');
    resize();
  } else if (event.key === 'l' && event.ctrlKey) {
    event.preventDefault();
    output.replaceChildren();
  } else if (event.key === 'c' && event.ctrlKey && input.selectionStart === input.selectionEnd) {
    event.preventDefault();
    echo(input.value, promptEl.textContent);
    append([['stderr', 'KeyboardInterrupt']]);
    buffer = [];
    setPrompt(PS1);
  }
});
input.addEventListener('input', resize);
$('console').addEventListener('click', () => {
  if (!window.getSelection()?.toString() && !inputLine.hidden) input.focus();
});
$('stop').addEventListener('click', stop);
$('clear').addEventListener('click', () => output.replaceChildren());
document.addEventListener('keydown', (event) => {
  if (event.key === 'c' && event.ctrlKey && hooks.busy) stop();
});

startWorker();
