/* Embedding CPython in a WASI program, for wasmbuild's tests: initialise with PyConfig, run a string that uses
 * built-in C modules (zlib, sqlite3, decimal), return a value computed by Python as the exit status.
 *
 * Compiled and linked with only the artifact's pkg-config files:
 *   clang --target=wasm32-wasip1 $(pkg-config --cflags python-3.13-embed) embed.c $(pkg-config --libs python-3.13-embed)
 * Run with the standard library preopened at /lib:  wasmtime run --dir LIB::/lib embed.wasm [ARGS]
 */
#include <Python.h>

static const char *CODE =
    "import sys, zlib, sqlite3, decimal\n"
    "db = sqlite3.connect(':memory:')\n"
    "db.execute('create table t (x)')\n"
    "db.executemany('insert into t values (?)', [(i,) for i in range(10)])\n"
    "total = db.execute('select sum(x) from t').fetchone()[0]\n"
    "assert zlib.decompress(zlib.compress(b'abc' * 100)) == b'abc' * 100\n"
    "result = total + int(decimal.Decimal('0.5') * 2) + len(sys.argv)\n"
    "print('embedded', sys.version.split()[0], sys.argv, result)\n";

int
main(int argc, char **argv)
{
    PyConfig config;
    PyConfig_InitIsolatedConfig(&config);
    /* The standard library is at /lib/pythonX.Y: the prefix is the guest's root. */
    PyStatus status = PyConfig_SetString(&config, &config.home, L"/");
    if (!PyStatus_Exception(status)) {
        status = PyConfig_SetBytesArgv(&config, argc, argv);
    }
    if (!PyStatus_Exception(status)) {
        status = Py_InitializeFromConfig(&config);
    }
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }
    PyObject *globals = PyModule_GetDict(PyImport_AddModule("__main__"));
    PyObject *ran = PyRun_String(CODE, Py_file_input, globals, globals);
    if (ran == NULL) {
        PyErr_Print();
        return 100;
    }
    Py_DECREF(ran);
    long result = PyLong_AsLong(PyDict_GetItemString(globals, "result"));
    if (Py_FinalizeEx() < 0) {
        return 101;
    }
    return (int)result;
}
