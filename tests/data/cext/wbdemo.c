/* A small extension module for wasmbuild's tests: a function and a type.
 *
 *   wbdemo.add(a, b) -> a + b (C longs)
 *   wbdemo.Counter(start=0): .increment(step=1) -> new value, .value (read-only)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

static PyObject *
wbdemo_add(PyObject *self, PyObject *args)
{
    long a, b;
    if (!PyArg_ParseTuple(args, "ll:add", &a, &b)) {
        return NULL;
    }
    return PyLong_FromLong(a + b);
}

typedef struct {
    PyObject_HEAD
    long value;
} CounterObject;

static int
Counter_init(CounterObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"start", NULL};
    long start = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|l:Counter", kwlist, &start)) {
        return -1;
    }
    self->value = start;
    return 0;
}

static PyObject *
Counter_increment(CounterObject *self, PyObject *args)
{
    long step = 1;
    if (!PyArg_ParseTuple(args, "|l:increment", &step)) {
        return NULL;
    }
    self->value += step;
    return PyLong_FromLong(self->value);
}

static PyMethodDef Counter_methods[] = {
    {"increment", (PyCFunction)Counter_increment, METH_VARARGS, "Add step (default 1); return the new value."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Counter_members[] = {
    {"value", T_LONG, offsetof(CounterObject, value), READONLY, "the current value"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject CounterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "wbdemo.Counter",
    .tp_basicsize = sizeof(CounterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A counter.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Counter_init,
    .tp_methods = Counter_methods,
    .tp_members = Counter_members,
};

static PyMethodDef wbdemo_methods[] = {
    {"add", wbdemo_add, METH_VARARGS, "Add two integers."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef wbdemo_module = {
    PyModuleDef_HEAD_INIT, "wbdemo", "wasmbuild's test extension module.", -1, wbdemo_methods,
};

PyMODINIT_FUNC
PyInit_wbdemo(void)
{
    if (PyType_Ready(&CounterType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&wbdemo_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&CounterType);
    if (PyModule_AddObject(m, "Counter", (PyObject *)&CounterType) < 0) {
        Py_DECREF(&CounterType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
