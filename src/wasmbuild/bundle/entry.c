/* wasmbuild bundle: the entry point of a one-file Python app for WASI.
 *
 * bundle.bin (made by wasmbuild/bundle/__init__.py) holds the standard library's code objects and the app's
 * sources; boot.py serves imports from it (no file system needed) and runs the app. Built with the WASI SDK
 * against the artifact's libpython (its -dev archive).
 *
 * Pre-initialised (the default): `wasmtime wizer` calls the `wizer-initialize` export, which starts Python,
 * installs the bundle's importer and imports what the app imports; the memory is snapshotted into the module.
 * At run time `_start` -> main() finds the interpreter initialised and only hands it this run's argv and
 * environment (boot.run). While the snapshot is taken the clock and the entropy source are fixed, so the same
 * app on the same artifact gives the same bytes (boot.run re-seeds `random` from the real source).
 * Without pre-initialisation (--no-preinit) main() does all of it at every start.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wasi/api.h>
#include <wasi/libc-environ.h>

static const unsigned char BUNDLE[] = {
#embed "bundle.bin"
};

static const char BOOT[] = {
#embed "boot.py"
    , 0
};

/* 1 while the snapshot is being made: the clocks and the entropy source give fixed answers. */
static int initializing;
/* 1 in a snapshot: the interpreter is up, the app's imports are done. */
static int initialized;
static PyObject *boot;  /* boot.py's namespace */
/* What app code drew from the entropy source while the snapshot was taken: boot.py turns the count on around
 * the app's imports, and exempts random.Random's seeding (re-seeded at every start). Anything else drawn then
 * (os.urandom, secrets, uuid4 at module level) is frozen into the snapshot: the bundler refuses it. */
static int entropy_counting;
static int entropy_exempt;
static unsigned long long entropy_calls, entropy_bytes;

#define SNAPSHOT_EPOCH WASMBUILD_SOURCE_DATE_EPOCH

/* Every clock and every random byte of wasi-libc (and of its emulated process clocks) come through these two
 * functions: wrapped (-Wl,--wrap), so that while the snapshot is taken time starts at the recipe's
 * SOURCE_DATE_EPOCH and advances 1 us per reading, and the entropy is a fixed stream. */
__wasi_errno_t __real___wasi_clock_time_get(__wasi_clockid_t id, __wasi_timestamp_t precision,
                                            __wasi_timestamp_t *out);
__wasi_errno_t
__wrap___wasi_clock_time_get(__wasi_clockid_t id, __wasi_timestamp_t precision, __wasi_timestamp_t *out)
{
    if (initializing) {
        static __wasi_timestamp_t ticks;
        ticks += 1000;
        *out = (id == __WASI_CLOCKID_REALTIME ? (__wasi_timestamp_t)SNAPSHOT_EPOCH * 1000000000ULL : 0) + ticks;
        return 0;
    }
    return __real___wasi_clock_time_get(id, precision, out);
}

__wasi_errno_t __real___wasi_random_get(uint8_t *buffer, __wasi_size_t length);
__wasi_errno_t
__wrap___wasi_random_get(uint8_t *buffer, __wasi_size_t length)
{
    if (initializing) {
        /* xorshift: what is seeded at bundle time is re-seeded at run time (boot.run) */
        static unsigned long long state = 0x9e3779b97f4a7c15ULL;
        if (entropy_counting && !entropy_exempt) {
            entropy_calls += 1;
            entropy_bytes += length;
        }
        for (__wasi_size_t i = 0; i < length; i++) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            buffer[i] = (uint8_t)(state >> 56);
        }
        return 0;
    }
    return __real___wasi_random_get(buffer, length);
}

static PyObject *
bundle_data(PyObject *self, PyObject *unused)
{
    return PyMemoryView_FromMemory((char *)BUNDLE, sizeof BUNDLE, PyBUF_READ);
}

static PyObject *
bundle_entropy_drawn(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("(KK)", entropy_calls, entropy_bytes);
}

static PyObject *
bundle_count_entropy(PyObject *self, PyObject *args)
{
    int counting, exempt;
    if (!PyArg_ParseTuple(args, "ii", &counting, &exempt)) {
        return NULL;
    }
    if (counting >= 0) {
        entropy_counting = counting;
    }
    entropy_exempt += exempt;
    Py_RETURN_NONE;
}

static PyMethodDef bundle_methods[] = {
    {"data", bundle_data, METH_NOARGS, "The bundle's index and files, read-only."},
    {"entropy_drawn", bundle_entropy_drawn, METH_NOARGS,
     "(calls, bytes) of entropy counted while the snapshot was taken."},
    {"count_entropy", bundle_count_entropy, METH_VARARGS,
     "count_entropy(counting, exempt_delta): count draws (1) or not (0) or as before (-1); exempt the next "
     "draws (+1) or stop (-1)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef bundle_module = {
    PyModuleDef_HEAD_INIT, "_wasmbuild_bundle", "The files wasmbuild bundled into this module.", -1,
    bundle_methods,
};

static PyObject *
init_bundle_module(void)
{
    return PyModule_Create(&bundle_module);
}

/* modules.c (generated by the bundler): registers the C extension modules linked into the artifact's python.wasm
   (wasmbuild link / install), linked into the bundle again from the objects the artifact keeps. */
extern int wasmbuild_register_modules(void);

/* Start Python with the bundle's importer in place before the first import from the standard library. */
static int
start_python(void)
{
    if (PyImport_AppendInittab("_wasmbuild_bundle", init_bundle_module) == -1 ||
        wasmbuild_register_modules() == -1) {
        return -1;
    }
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    config.use_hash_seed = 1;  /* fixed by the snapshot in any case: say so */
    config.hash_seed = 0;
    config.write_bytecode = 0;
    config.pathconfig_warnings = 0;
    config.module_search_paths_set = 1;  /* sys.path = []: the bundle serves every import */
    config._init_main = 0;               /* core only: boot.py installs the importer, then the main phase */
    PyStatus status = PyConfig_SetString(&config, &config.program_name, L"python");
    if (!PyStatus_Exception(status)) {
        status = PyConfig_SetString(&config, &config.home, L"/");
    }
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }
    PyObject *module = PyImport_AddModule("_wasmbuild_boot");
    if (module == NULL) {
        return -1;
    }
    boot = PyModule_GetDict(module);
    Py_INCREF(boot);
    PyObject *code = Py_CompileString(BOOT, "<wasmbuild bundle boot>", Py_file_input);
    if (code == NULL) {
        return -1;
    }
    PyObject *ran = PyEval_EvalCode(code, boot, boot);
    Py_DECREF(code);
    if (ran == NULL) {
        return -1;
    }
    Py_DECREF(ran);
    status = _Py_InitializeMain();
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }
    PyObject *done = PyObject_CallMethod(PyDict_GetItemString(boot, "BOOT"), "prepare", NULL);
    if (done == NULL) {
        return -1;
    }
    Py_DECREF(done);
    return 0;
}

void __wasm_call_ctors(void);

__attribute__((export_name("wizer-initialize")))
void
wasmbuild_initialize(void)
{
    initializing = 1;  /* before the constructors: wasi-libc's process clocks read their start time there */
    __wasm_call_ctors();
    if (start_python() < 0) {
        if (PyErr_Occurred()) {
            PyErr_Print();
        }
        fflush(stderr);
        abort();  /* wizer fails: no output */
    }
    initializing = 0;
    initialized = 1;
}

void __wasilibc_reset_preopens(void);

int
main(int argc, char **argv)
{
    if (initialized) {
        /* The snapshot remembers the (empty) preopen table of bundle time: read this run's again. */
        __wasilibc_reset_preopens();
    }
    else if (start_python() < 0) {
        PyErr_Print();
        return 120;
    }
    PyObject *args = PyList_New(0);
    PyObject *env = PyDict_New();
    if (args == NULL || env == NULL) {
        return 120;
    }
    for (int i = 0; i < argc; i++) {
        PyObject *arg = PyUnicode_DecodeFSDefault(argv[i]);
        if (arg == NULL || PyList_Append(args, arg) < 0) {
            return 120;
        }
        Py_DECREF(arg);
    }
    /* This run's environment (wasi-libc read it again when _start ran the constructors). */
    for (char **entry = __wasilibc_get_environ(); entry != NULL && *entry != NULL; entry++) {
        const char *eq = strchr(*entry, '=');
        if (eq == NULL) {
            continue;
        }
        PyObject *key = PyBytes_FromStringAndSize(*entry, eq - *entry);
        PyObject *value = PyBytes_FromString(eq + 1);
        if (key == NULL || value == NULL || PyDict_SetItem(env, key, value) < 0) {
            return 120;
        }
        Py_DECREF(key);
        Py_DECREF(value);
    }
    PyObject *result = PyObject_CallMethod(PyDict_GetItemString(boot, "BOOT"), "run", "OO", args, env);
    Py_DECREF(args);
    Py_DECREF(env);
    int code = 1;
    if (result == NULL) {
        PyErr_Print();
    }
    else {
        code = (int)PyLong_AsLong(result);
        Py_DECREF(result);
    }
    if (Py_FinalizeEx() < 0 && code == 0) {
        code = 120;
    }
    return code;
}
