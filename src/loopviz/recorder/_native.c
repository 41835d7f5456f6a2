/* The native recorder core: the hot path of recording in C (docs/recording.md).
 *
 * Three things run for every task step or wake-up, and cost too much in Python
 * (docs/performance.md): the task proxy's step, the event buffer's append, and the loop's
 * call_soon wrapper. Here they are:
 *
 * - EventBuffer: events as fixed-size binary records in a preallocated array, appended without
 *   allocating; the writer thread turns them into the same msgpack frames as wire.encode_frame.
 *   Rare events (anything recorded from Python) are kept as the tuple Python made.
 * - LoopSlots: the base of recorder.loops.LoopState, its step bookkeeping as C int64s that the
 *   proxy reads and writes directly (and Python reads as ordinary attributes).
 * - TaskCoroutine: the proxy around a task's coroutine, driven by the C Task through am_send
 *   (PyIter_Send) with no Python frame. A resume and a bare yield are recorded here; everything
 *   else about a step (its end, what it waits on, a block) is handed to recorder/proxy.py, the
 *   same code the pure-Python proxy runs.
 * - WakeupHook: loop.call_soon, recording a task's wake-up (a `ready` event) in C.
 *
 * Every function here runs with the GIL held; nothing releases it between reading and writing
 * the buffer, so the buffer needs no lock (the Python list it replaces relied on the same).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>
#include <structmember.h>
#include <string.h>

#if PY_VERSION_HEX < 0x030B0000
#error "loopviz's native recorder needs Python 3.11 or newer"
#endif

/* Where the frame layouts are known (3.11 to 3.13, as _stackwatch.c reads them), a new task's
   spawn site is found by walking the interpreter's frames, without making a frame object of
   each (which costs more than all the rest of recording a task). Elsewhere, through the API. */
#if PY_VERSION_HEX < 0x030E0000 && !defined(Py_GIL_DISABLED)
#define WALK_INTERPRETER_FRAMES 1
#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE
#endif

/* What recorder/core.py expects (its NATIVE_VERSION): a build left over from an older checkout
   is not used. Raise it with any change to what Python and C ask of each other. */
#define NATIVE_VERSION 5

/* Wire kind codes (loopviz/wire.py LAYOUTS). */
#define KIND_RESUME 4
#define KIND_SUSPEND 5 /* a record of this kind holds its wait's fields and its `where` */
#define SUSPEND_ITEMS 10
#define KIND_DONE 6 /* a record of this kind is a task that returned None */
#define KIND_READY 15
#define KIND_YIELD 17
/* A record holding a Python tuple: one event as Python laid it out. */
#define KIND_TUPLE 0
#define KIND_CREATE 3 /* wire.CREATE: a record of this kind holds a task not named yet */
#define CREATE_ITEMS 10
#define NONE_ID (-1)

#if PY_VERSION_HEX < 0x030C0000
/* 3.12's way of holding an exception while other code runs, on 3.11 */
static PyObject *
PyErr_GetRaisedException(void)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_DECREF(type);
    Py_XDECREF(traceback);
    return value;
}

static void
PyErr_SetRaisedException(PyObject *exc)
{
    if (exc == NULL) {
        return;
    }
    PyObject *traceback = PyException_GetTraceback(exc);
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, traceback);
}
#endif

/* time.perf_counter_ns(): on Linux, CLOCK_MONOTONIC read directly (Python's own call adds
   overflow checks that cost as much as the read, twice per step). */
static inline int64_t
perf_counter_ns(void)
{
#if defined(__linux__)
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
#elif PY_VERSION_HEX >= 0x030D0000
    PyTime_t t;
    (void)PyTime_PerfCounterRaw(&t);
    return (int64_t)t;
#else
    return (int64_t)_PyTime_GetPerfCounter();
#endif
}

/* Python helpers in recorder/proxy.py and recorder/loops.py (set by configure()). */
static PyObject *record_suspend_hook;  /* (proxy, state, yielded, end) */
static PyObject *record_return_hook;   /* (proxy, state, value, end) */
static PyObject *record_raise_hook;    /* (proxy, state, exception, end) */
static PyObject *record_block_hook;    /* (proxy, state, start, end) */
static PyObject *wakeup_hook;          /* (state, callback, args) */
static PyObject *fallback_encode;      /* msgspec's encode, for values the frame encoder lacks */
static PyObject *asyncio_module;      /* its Task is looked up at each use, as waits.py does */
static PyObject *asyncio_dir;         /* asyncio's folder, ending in a separator */
static PyObject *current_task;        /* asyncio.current_task */
static PyObject *str_woken;
static PyObject *str_task_id_attr;
static PyObject *str_throw;
static PyObject *str_get_name;
static PyObject *str_loop_id;
static PyObject *str_get_coro;
static PyObject *str_Task;
static PyObject *str_children;
static PyObject *str_empty;
static PyObject *str_cr_code, *str_cr_frame, *str_cr_await;
static PyObject *str_when;
static PyObject *str_gi_code, *str_gi_frame, *str_gi_yieldfrom;
static PyObject *str_ag_code, *str_ag_frame, *str_ag_await;

/* ---------------------------------------------------------------------------------------- */
/* EventBuffer                                                                              */

typedef struct {
    int32_t kind;
    int32_t unused;
    int64_t t;
    int64_t task;
    PyObject *tuple; /* KIND_TUPLE: the event's items; KIND_CREATE: the task; KIND_SUSPEND: the
                        wait's (kind, label, obj, deadline, ref), often shared by many suspends */
    PyObject *where; /* KIND_CREATE: the task's proxy, which holds the rest of its create;
                        KIND_SUSPEND: the wait's `where` */
} Record;

typedef struct {
    PyObject_HEAD
    Record *records;
    Py_ssize_t count;
    Py_ssize_t capacity;
    Record *spare; /* the other array: a drain encodes one while the program fills this one */
    Py_ssize_t spare_capacity;
    Py_ssize_t items; /* flat items held (an event is 3 to 10), as len() of the old list */
    Py_ssize_t sent_items; /* flat items the frame being encoded holds so far */
    int sending;           /* send() is writing `out`, the GIL released */
    char *out;        /* the frame being encoded, kept between drains */
    Py_ssize_t out_len;
    Py_ssize_t out_capacity;
} EventBuffer;

static PyTypeObject EventBufferType;

#define INITIAL_RECORDS (1 << 16) /* 2 MB: 13 million events a second at a 5 ms drain */

static int
buffer_grow(EventBuffer *self)
{
    /* Only when the writer fell behind by more than the preallocated array. */
    Py_ssize_t capacity = self->capacity * 2;
    Record *grown = PyMem_Realloc(self->records, (size_t)capacity * sizeof(Record));
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->records = grown;
    self->capacity = capacity;
    return 0;
}

static inline int
buffer_push(EventBuffer *self, int32_t kind, int64_t t, int64_t task, int32_t items)
{
    if (self->count == self->capacity && buffer_grow(self) < 0) {
        return -1;
    }
    Record *record = &self->records[self->count++];
    record->kind = kind;
    record->t = t;
    record->task = task;
    record->tuple = NULL;
    record->where = NULL;
    self->items += items;
    return 0;
}

/* Queue a task's create, sent once the task is made (its proxy's `created` is True): it is
   named then, as Task.__init__ named it. The proxy holds the rest of it (see TaskCoroutine). */
static int
buffer_push_create(EventBuffer *self, int64_t t, int64_t task_id, PyObject *task, PyObject *proxy)
{
    if (buffer_push(self, KIND_CREATE, t, task_id, CREATE_ITEMS) < 0) {
        return -1;
    }
    Record *record = &self->records[self->count - 1];
    record->tuple = Py_NewRef(task);
    record->where = Py_NewRef(proxy);
    return 0;
}

static PyObject *
EventBuffer_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
        PyErr_SetString(PyExc_TypeError, "EventBuffer() takes no arguments");
        return NULL;
    }
    EventBuffer *self = (EventBuffer *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->records = PyMem_Malloc(INITIAL_RECORDS * sizeof(Record));
    self->spare = PyMem_Malloc(INITIAL_RECORDS * sizeof(Record));
    self->out_capacity = 1 << 16;
    self->out = PyMem_Malloc((size_t)self->out_capacity);
    if (self->records == NULL || self->spare == NULL || self->out == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    self->capacity = self->spare_capacity = INITIAL_RECORDS;
    return (PyObject *)self;
}

static void
release_records(Record *records, Py_ssize_t count)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_CLEAR(records[i].tuple);
        Py_CLEAR(records[i].where);
    }
}

static int
EventBuffer_traverse(EventBuffer *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->count; i++) {
        Py_VISIT(self->records[i].tuple);
        Py_VISIT(self->records[i].where);
    }
    return 0;
}

static int
EventBuffer_clear_refs(EventBuffer *self)
{
    release_records(self->records, self->count);
    self->count = 0;
    self->items = 0;
    return 0;
}

static void
EventBuffer_dealloc(EventBuffer *self)
{
    PyObject_GC_UnTrack(self);
    if (self->records != NULL) {
        release_records(self->records, self->count);
    }
    PyMem_Free(self->records);
    PyMem_Free(self->spare);
    PyMem_Free(self->out);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
EventBuffer_len(EventBuffer *self)
{
    return self->items;
}

static PyObject *
EventBuffer_extend(EventBuffer *self, PyObject *event)
{
    PyObject *tuple = PySequence_Tuple(event);
    if (tuple == NULL) {
        return NULL;
    }
    if (self->count == self->capacity && buffer_grow(self) < 0) {
        Py_DECREF(tuple);
        return NULL;
    }
    Record *record = &self->records[self->count++];
    record->kind = KIND_TUPLE;
    record->t = 0;
    record->task = 0;
    record->tuple = tuple;
    record->where = NULL;
    self->items += PyTuple_GET_SIZE(tuple);
    Py_RETURN_NONE;
}

static PyObject *
EventBuffer_clear(EventBuffer *self, PyObject *Py_UNUSED(ignored))
{
    EventBuffer_clear_refs(self);
    Py_RETURN_NONE;
}

/* -- msgpack, as msgspec writes it for the types events hold ------------------------------- */

static int
out_reserve(EventBuffer *self, Py_ssize_t extra)
{
    if (self->out_len + extra <= self->out_capacity) {
        return 0;
    }
    Py_ssize_t capacity = self->out_capacity;
    while (capacity < self->out_len + extra) {
        capacity *= 2;
    }
    char *grown = PyMem_Realloc(self->out, (size_t)capacity);
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->out = grown;
    self->out_capacity = capacity;
    return 0;
}

static inline void
put_be(char *at, uint64_t value, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        at[i] = (char)(value & 0xff);
        value >>= 8;
    }
}

/* The msgpack of an int, as msgspec writes it (its shortest form), at ``at``: its length. */
static inline Py_ssize_t
put_int(char *at, int64_t value)
{
    if (value >= 0) {
        if (value < 128) {
            at[0] = (char)value;
            return 1;
        }
        if (value <= 0xff) {
            at[0] = (char)0xcc;
            at[1] = (char)value;
            return 2;
        }
        if (value <= 0xffff) {
            at[0] = (char)0xcd;
            put_be(at + 1, (uint64_t)value, 2);
            return 3;
        }
        if (value <= 0xffffffffLL) {
            at[0] = (char)0xce;
            put_be(at + 1, (uint64_t)value, 4);
            return 5;
        }
        at[0] = (char)0xcf;
        put_be(at + 1, (uint64_t)value, 8);
        return 9;
    }
    if (value >= -32) {
        at[0] = (char)(int8_t)value;
        return 1;
    }
    if (value >= -128) {
        at[0] = (char)0xd0;
        at[1] = (char)value;
        return 2;
    }
    if (value >= -32768) {
        at[0] = (char)0xd1;
        put_be(at + 1, (uint64_t)value, 2);
        return 3;
    }
    if (value >= -2147483648LL) {
        at[0] = (char)0xd2;
        put_be(at + 1, (uint64_t)value, 4);
        return 5;
    }
    at[0] = (char)0xd3;
    put_be(at + 1, (uint64_t)value, 8);
    return 9;
}

static inline int
encode_int(EventBuffer *self, int64_t value)
{
    if (out_reserve(self, 9) < 0) {
        return -1;
    }
    self->out_len += put_int(self->out + self->out_len, value);
    return 0;
}

/* Three ints: a record's kind, time and task, the start of every event. */
static inline int
encode_head(EventBuffer *self, int64_t kind, int64_t t, int64_t task)
{
    if (out_reserve(self, 27) < 0) {
        return -1;
    }
    char *at = self->out + self->out_len;
    Py_ssize_t n = put_int(at, kind);
    n += put_int(at + n, t);
    n += put_int(at + n, task);
    self->out_len += n;
    return 0;
}

static int
encode_header(EventBuffer *self, Py_ssize_t n, int fix_base, int fix_max, int code16)
{
    /* fix_base/fix_max: the fixstr (0xa0, 31) or fixarray (0x90, 15) form; code16 the 16-bit
       form's code, the 32-bit one following it (0xda, 0xdb for str; 0xdc, 0xdd for array). */
    if (out_reserve(self, 5) < 0) {
        return -1;
    }
    char *at = self->out + self->out_len;
    if (n <= fix_max) {
        at[0] = (char)(fix_base | n);
        self->out_len += 1;
    } else if (n <= 0xffff) {
        at[0] = (char)code16;
        put_be(at + 1, (uint64_t)n, 2);
        self->out_len += 3;
    } else {
        at[0] = (char)(code16 + 1);
        put_be(at + 1, (uint64_t)n, 4);
        self->out_len += 5;
    }
    return 0;
}

static int
encode_array_header(EventBuffer *self, Py_ssize_t n)
{
    return encode_header(self, n, 0x90, 15, 0xdc);
}

static int
encode_str(EventBuffer *self, const char *text, Py_ssize_t size)
{
    if (size > 31 && size <= 0xff) { /* str8 */
        if (out_reserve(self, 2 + size) < 0) {
            return -1;
        }
        self->out[self->out_len] = (char)0xd9;
        self->out[self->out_len + 1] = (char)size;
        self->out_len += 2;
    } else if (encode_header(self, size, 0xa0, 31, 0xda) < 0 || out_reserve(self, size) < 0) {
        return -1;
    }
    memcpy(self->out + self->out_len, text, (size_t)size);
    self->out_len += size;
    return 0;
}

static int encode_object(EventBuffer *self, PyObject *value);

static int
encode_with_fallback(EventBuffer *self, PyObject *value)
{
    if (fallback_encode == NULL) {
        PyErr_Format(PyExc_TypeError, "no encoder for %R: configure() was not called", value);
        return -1;
    }
    PyObject *encoded = PyObject_CallOneArg(fallback_encode, value);
    if (encoded == NULL) {
        return -1;
    }
    if (!PyBytes_Check(encoded)) {
        Py_DECREF(encoded);
        PyErr_SetString(PyExc_TypeError, "the fallback encoder must return bytes");
        return -1;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(encoded);
    if (out_reserve(self, size) < 0) {
        Py_DECREF(encoded);
        return -1;
    }
    memcpy(self->out + self->out_len, PyBytes_AS_STRING(encoded), (size_t)size);
    self->out_len += size;
    Py_DECREF(encoded);
    return 0;
}

static int
encode_object(EventBuffer *self, PyObject *value)
{
    if (value == Py_None || value == Py_True || value == Py_False) {
        if (out_reserve(self, 1) < 0) {
            return -1;
        }
        self->out[self->out_len++] =
            (char)(value == Py_None ? 0xc0 : value == Py_True ? 0xc3 : 0xc2);
        return 0;
    }
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long number = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (number == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (!overflow) {
            return encode_int(self, number);
        }
        return encode_with_fallback(self, value);
    }
    if (PyUnicode_CheckExact(value)) {
        if (PyUnicode_IS_COMPACT_ASCII(value)) { /* most of them: its bytes are its UTF-8 */
            return encode_str(self, (const char *)PyUnicode_DATA(value),
                              PyUnicode_GET_LENGTH(value));
        }
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(value, &size);
        if (text == NULL) { /* lone surrogates: msgspec says what is wrong */
            PyErr_Clear();
            return encode_with_fallback(self, value);
        }
        return encode_str(self, text, size);
    }
    if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
        PyObject *items = PySequence_Fast(value, "");
        if (items == NULL) {
            return -1;
        }
        Py_ssize_t n = PySequence_Fast_GET_SIZE(items);
        int failed = encode_array_header(self, n) < 0;
        for (Py_ssize_t i = 0; i < n && !failed; i++) {
            failed = encode_object(self, PySequence_Fast_GET_ITEM(items, i)) < 0;
        }
        Py_DECREF(items);
        return failed ? -1 : 0;
    }
    return encode_with_fallback(self, value); /* floats, subclasses, anything else */
}

static int encode_create(EventBuffer *self, Record *record);

static int
encode_record(EventBuffer *self, Record *record)
{
    switch (record->kind) {
    case KIND_CREATE:
        return encode_create(self, record);
    case KIND_TUPLE: {
        Py_ssize_t n = PyTuple_GET_SIZE(record->tuple);
        self->sent_items += n;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (encode_object(self, PyTuple_GET_ITEM(record->tuple, i)) < 0) {
                return -1;
            }
        }
        return 0;
    }
    case KIND_SUSPEND: /* kind, t, task, the wait's five fields, where, timeout (none) */
        self->sent_items += SUSPEND_ITEMS;
        if (encode_head(self, KIND_SUSPEND, record->t, record->task) < 0) {
            return -1;
        }
        for (Py_ssize_t i = 0; i < 5; i++) {
            if (encode_object(self, PyTuple_GET_ITEM(record->tuple, i)) < 0) {
                return -1;
            }
        }
        if (encode_object(self, record->where) < 0) {
            return -1;
        }
        return encode_int(self, NONE_ID);
    case KIND_READY:
        self->sent_items += 4;
        if (encode_head(self, KIND_READY, record->t, record->task) < 0) {
            return -1;
        }
        return encode_str(self, "woken", 5);
    case KIND_DONE:
        self->sent_items += 5;
        if (encode_head(self, KIND_DONE, record->t, record->task) < 0 ||
            encode_str(self, "returned", 8) < 0) {
            return -1;
        }
        return encode_str(self, "None", 4);
    default: /* RESUME, YIELD: kind, t, task */
        self->sent_items += 3;
        return encode_head(self, record->kind, record->t, record->task);
    }
}

/* frame(head) -> bytes: one wire frame of ``head`` (the watermark, and the pure-Python
   recorder's creates) followed by every event held, which the buffer lets go of (a create whose
   task is still being made stays, for the next frame). */
static int
encode_frame(EventBuffer *self, PyObject *head)
{
    if (!PyList_Check(head)) {
        PyErr_SetString(PyExc_TypeError, "frame() takes the list that starts the frame");
        return -1;
    }
    if (self->spare == NULL || self->sending) { /* the writer holds a lock: a bug of ours */
        PyErr_SetString(PyExc_RuntimeError, "frame() is already running");
        return -1;
    }
    /* Take the records, and give the program the spare array: encoding may run Python code
       (the fallback encoder), during which other threads append. */
    Record *records = self->records;
    Py_ssize_t count = self->count;
    Py_ssize_t capacity = self->capacity;
    self->records = self->spare;
    self->capacity = self->spare_capacity;
    self->count = 0;
    self->items = 0;
    self->spare = NULL;

    /* the length, then the items' count as an array32 header: both written last (a create
       may stay for the next frame) */
    self->out_len = 9;
    self->sent_items = PyList_GET_SIZE(head);
    int failed = out_reserve(self, 9) < 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(head) && !failed; i++) {
        failed = encode_object(self, PyList_GET_ITEM(head, i)) < 0;
    }
    for (Py_ssize_t i = 0; i < count && !failed; i++) {
        failed = encode_record(self, &records[i]) < 0;
    }
    release_records(records, count);
    self->spare = records;
    self->spare_capacity = capacity;
    if (failed) {
        return -1;
    }
    put_be(self->out, (uint64_t)(self->out_len - 4), 4);
    self->out[4] = (char)0xdd;
    put_be(self->out + 5, (uint64_t)self->sent_items, 4);
    return 0;
}

static PyObject *
EventBuffer_frame(EventBuffer *self, PyObject *head)
{
    if (encode_frame(self, head) < 0) {
        return NULL;
    }
    return PyBytes_FromStringAndSize(self->out, self->out_len);
}

/* send(head, fd): write the frame to `fd`, the GIL released while the pipe is full. The frame
   is written from the buffer it was encoded in: no copy of it is made, so the recorder never
   allocates (and frees) a block as large as a frame, which would move glibc's mmap threshold
   and change how the program's own large buffers are allocated. */
static PyObject *
EventBuffer_send(EventBuffer *self, PyObject *args)
{
    PyObject *head;
    int fd;
    if (!PyArg_ParseTuple(args, "O!i:send", &PyList_Type, &head, &fd)) {
        return NULL;
    }
    if (encode_frame(self, head) < 0) {
        return NULL;
    }
    self->sending = 1;
    Py_ssize_t done = 0;
    int error = 0;
    while (done < self->out_len && !error) {
        Py_ssize_t written;
        Py_BEGIN_ALLOW_THREADS
        written = write(fd, self->out + done, (size_t)(self->out_len - done));
        Py_END_ALLOW_THREADS
        if (written >= 0) {
            done += written;
        } else if (errno != EINTR) {
            error = errno;
        } else if (PyErr_CheckSignals() < 0) {
            self->sending = 0;
            return NULL;
        }
    }
    self->sending = 0;
    if (error) {
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyMethodDef EventBuffer_methods[] = {
    {"extend", (PyCFunction)EventBuffer_extend, METH_O,
     "Append one event, given as its flat items (kind, t, fields...)."},
    {"clear", (PyCFunction)EventBuffer_clear, METH_NOARGS, "Drop every event held."},
    {"frame", (PyCFunction)EventBuffer_frame, METH_O,
     "frame(head) -> bytes: a wire frame of head's items then every event held, which are "
     "dropped."},
    {"send", (PyCFunction)EventBuffer_send, METH_VARARGS,
     "send(head, fd): write that frame to the file descriptor fd (OSError if it cannot)."},
    {NULL},
};

static PySequenceMethods EventBuffer_as_sequence = {
    .sq_length = (lenfunc)EventBuffer_len,
};

static PyTypeObject EventBufferType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loopviz.recorder._native.EventBuffer",
    .tp_doc = "The recorded events, as fixed-size records, until the writer sends them.",
    .tp_basicsize = sizeof(EventBuffer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = EventBuffer_new,
    .tp_dealloc = (destructor)EventBuffer_dealloc,
    .tp_traverse = (traverseproc)EventBuffer_traverse,
    .tp_clear = (inquiry)EventBuffer_clear_refs,
    .tp_methods = EventBuffer_methods,
    .tp_as_sequence = &EventBuffer_as_sequence,
};

/* -- a cache keyed by (code object, int) ---------------------------------------------------- */

/* Direct-mapped: each (code, key) has one place, and a newcomer there replaces what was in it.
   A lookup allocates nothing and hashes nothing (a code object's own hash is computed anew at
   each dict lookup on 3.11 to 3.13: its name, its constants..., about 150 ns; a dict keyed by its
   address makes an int at each lookup), and the cache never grows. Each entry holds its
   code, so that no other object has that address while the entry lives. */
#define CODE_CACHE_SIZE 1024
/* the key of a code's wait handler; a `where` is keyed by its offset (never negative, save -1
   for a frame not started) */
#define HANDLER_KEY INT_MIN

typedef struct {
    PyObject *code;
    int key;
    PyObject *value;
} CodeCacheEntry;

static inline CodeCacheEntry *
code_cache_entry(CodeCacheEntry *cache, PyObject *code, int key)
{
    uintptr_t h = ((uintptr_t)code >> 4) ^ ((uintptr_t)(unsigned)key * 0x9E3779B1u);
    return &cache[(h ^ (h >> 10)) & (CODE_CACHE_SIZE - 1)];
}

/* The value kept for (code, key), borrowed, or NULL. */
static inline PyObject *
code_cache_get(CodeCacheEntry *cache, PyObject *code, int key)
{
    if (cache == NULL) {
        return NULL;
    }
    CodeCacheEntry *entry = code_cache_entry(cache, code, key);
    return entry->code == code && entry->key == key ? entry->value : NULL;
}

static int
code_cache_put(CodeCacheEntry **cache, PyObject *code, int key, PyObject *value)
{
    if (*cache == NULL &&
        (*cache = PyMem_Calloc(CODE_CACHE_SIZE, sizeof(CodeCacheEntry))) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    CodeCacheEntry *entry = code_cache_entry(*cache, code, key);
    PyObject *old_code = entry->code, *old_value = entry->value;
    entry->code = Py_NewRef(code);
    entry->key = key;
    entry->value = Py_NewRef(value);
    Py_XDECREF(old_code);
    Py_XDECREF(old_value);
    return 0;
}

static int
code_cache_traverse(CodeCacheEntry *cache, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; cache != NULL && i < CODE_CACHE_SIZE; i++) {
        Py_VISIT(cache[i].value);
    }
    return 0;
}

static void
code_cache_free(CodeCacheEntry **cache)
{
    CodeCacheEntry *entries = *cache;
    *cache = NULL;
    for (Py_ssize_t i = 0; entries != NULL && i < CODE_CACHE_SIZE; i++) {
        Py_XDECREF(entries[i].code);
        Py_XDECREF(entries[i].value);
    }
    PyMem_Free(entries);
}

/* ---------------------------------------------------------------------------------------- */
/* LoopSlots                                                                                */

typedef struct {
    PyObject_HEAD
    long long step_start; /* 0 = no step running */
    long long step_task;
    long long nested_in;
    long long nested_ns;
    long long callback_start;
    long long t0;
    long long block_threshold_ns;
    unsigned long thread_id;
    PyObject *events;          /* the recorder's EventBuffer */
    PyObject *timeouts;        /* dict: task id -> its asyncio.timeout */
    PyObject *handed_back;     /* the dict inside the WeakKeyDictionary of handed-back futures */
    PyObject *wait_handlers;   /* WaitNamer.by_code: code -> its wait handler, or a file's name */
    PyObject *owner_waits;     /* WaitNamer.owner_waits: id(object) -> (code, wait fields) */
    PyObject *sleep_locals;    /* WaitNamer.sleep_locals: (sleep's code, delay's and h's index) */
    double loop_offset;        /* the loop's clock (ns) minus the recorder's */
    CodeCacheEntry *code_cache;       /* wait_handlers' entries, and user lines' `where` */
    PyObject *step_proxy;      /* borrowed: the proxy whose step runs now, or NULL */
    int64_t *step_clock;       /* the native watchdog's slot, or NULL: [0] the step's start,
                                  [1] the callbacks' (callback_start) */
    Py_buffer step_clock_view;
} LoopSlots;

static PyTypeObject LoopSlotsType;

static int
LoopSlots_traverse(LoopSlots *self, visitproc visit, void *arg)
{
    Py_VISIT(self->events);
    Py_VISIT(self->timeouts);
    Py_VISIT(self->handed_back);
    Py_VISIT(self->wait_handlers);
    Py_VISIT(self->owner_waits);
    Py_VISIT(self->sleep_locals);
    return code_cache_traverse(self->code_cache, visit, arg);
}

static int
LoopSlots_clear(LoopSlots *self)
{
    Py_CLEAR(self->events);
    Py_CLEAR(self->timeouts);
    Py_CLEAR(self->handed_back);
    Py_CLEAR(self->wait_handlers);
    Py_CLEAR(self->owner_waits);
    Py_CLEAR(self->sleep_locals);
    code_cache_free(&self->code_cache);
    return 0;
}

static void
LoopSlots_dealloc(LoopSlots *self)
{
    PyObject_GC_UnTrack(self);
    LoopSlots_clear(self);
    if (self->step_clock != NULL) {
        PyBuffer_Release(&self->step_clock_view);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
LoopSlots_get_step_proxy(LoopSlots *self, void *Py_UNUSED(closure))
{
    PyObject *proxy = self->step_proxy != NULL ? self->step_proxy : Py_None;
    return Py_NewRef(proxy);
}

/* attach_step_clock(buffer): the native watchdog's int64[2] slot for this loop; each step
   writes its start time in [0], and 0 when it ends; callback_start is copied to [1]. */
static PyObject *
LoopSlots_attach_step_clock(LoopSlots *self, PyObject *buffer)
{
    Py_buffer view;
    if (PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE) < 0) {
        return NULL;
    }
    if (view.len < 2 * (Py_ssize_t)sizeof(int64_t) || ((uintptr_t)view.buf % sizeof(int64_t))) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "the step clock is two aligned int64s");
        return NULL;
    }
    if (self->step_clock != NULL) {
        PyBuffer_Release(&self->step_clock_view);
    }
    self->step_clock_view = view;
    self->step_clock = (int64_t *)view.buf;
    __atomic_store_n(&self->step_clock[0], self->step_start, __ATOMIC_RELEASE);
    __atomic_store_n(&self->step_clock[1], self->callback_start, __ATOMIC_RELEASE);
    Py_RETURN_NONE;
}

static inline void
set_callback_start(LoopSlots *state, long long start)
{
    state->callback_start = start;
    if (state->step_clock != NULL) { /* the native watchdog's copy */
        __atomic_store_n(&state->step_clock[1], start, __ATOMIC_RELEASE);
    }
}

static PyObject *
LoopSlots_get_callback_start(LoopSlots *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->callback_start);
}

static int
LoopSlots_set_callback_start(LoopSlots *self, PyObject *value, void *Py_UNUSED(closure))
{
    long long start = value == NULL ? -1 : PyLong_AsLongLong(value);
    if (start == -1 && (value == NULL || PyErr_Occurred())) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "callback_start cannot be deleted");
        }
        return -1;
    }
    set_callback_start(self, start);
    return 0;
}

static PyMemberDef LoopSlots_members[] = {
    {"step_start", T_LONGLONG, offsetof(LoopSlots, step_start), 0, NULL},
    {"step_task", T_LONGLONG, offsetof(LoopSlots, step_task), 0, NULL},
    {"nested_in", T_LONGLONG, offsetof(LoopSlots, nested_in), 0, NULL},
    {"nested_ns", T_LONGLONG, offsetof(LoopSlots, nested_ns), 0, NULL},
    {"t0", T_LONGLONG, offsetof(LoopSlots, t0), 0, NULL},
    {"block_threshold_ns", T_LONGLONG, offsetof(LoopSlots, block_threshold_ns), 0, NULL},
    {"thread_id", T_ULONG, offsetof(LoopSlots, thread_id), 0, NULL},
    {"events", T_OBJECT, offsetof(LoopSlots, events), 0, NULL},
    {"timeouts", T_OBJECT, offsetof(LoopSlots, timeouts), 0, NULL},
    {"handed_back_refs", T_OBJECT, offsetof(LoopSlots, handed_back), 0, NULL},
    {"wait_handlers", T_OBJECT, offsetof(LoopSlots, wait_handlers), 0, NULL},
    {"owner_waits", T_OBJECT, offsetof(LoopSlots, owner_waits), 0, NULL},
    {"sleep_locals", T_OBJECT, offsetof(LoopSlots, sleep_locals), 0, NULL},
    {"loop_offset", T_DOUBLE, offsetof(LoopSlots, loop_offset), 0, NULL},
    {NULL},
};

static PyGetSetDef LoopSlots_getset[] = {
    {"step_proxy", (getter)LoopSlots_get_step_proxy, NULL,
     "The proxy whose step runs now (None between steps).", NULL},
    {"callback_start", (getter)LoopSlots_get_callback_start,
     (setter)LoopSlots_set_callback_start,
     "When the callbacks running now began (0: none), copied to the native watchdog.", NULL},
    {NULL},
};

static PyMethodDef LoopSlots_methods[] = {
    {"attach_step_clock", (PyCFunction)LoopSlots_attach_step_clock, METH_O,
     "attach_step_clock(buffer): the native watchdog's int64[2] slot for this loop."},
    {NULL},
};

static PyTypeObject LoopSlotsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loopviz.recorder._native.LoopSlots",
    .tp_doc = "One loop's step bookkeeping, shared by the native proxy and the watchdog.",
    .tp_basicsize = sizeof(LoopSlots),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)LoopSlots_dealloc,
    .tp_traverse = (traverseproc)LoopSlots_traverse,
    .tp_clear = (inquiry)LoopSlots_clear,
    .tp_members = LoopSlots_members,
    .tp_getset = LoopSlots_getset,
    .tp_methods = LoopSlots_methods,
};

/* ---------------------------------------------------------------------------------------- */
/* TaskCoroutine                                                                            */

typedef struct {
    PyObject_HEAD
    PyObject *coro;
    PyObject *state; /* a LoopSlots (a LoopState), NULL until the task knows its loop */
    PyObject *sent_name;
    PyObject *created;
    long long task_id;
    long long suspended_at;
    char seek_entry;
    PyObject *weakreflist;
    /* its task's create, until it is sent (see buffer_push_create) */
    long long parent_id;
    PyObject *site;      /* where the task was made */
    PyObject *args;      /* the coroutine's arguments, shown */
    PyObject *qualname;  /* the coroutine's */
    PyObject *internal;  /* True for asyncio's own */
} TaskCoroutine;

static PyTypeObject TaskCoroutineType;

/* A queued create: sent, with the task's name now, if its task was made; kept for the next frame
   if Task.__init__ still runs (in another thread); dropped if it failed (no task after all). */
static int
encode_create(EventBuffer *self, Record *record)
{
    PyObject *task = record->tuple;
    TaskCoroutine *proxy = (TaskCoroutine *)record->where;
    if (proxy->created == Py_False) {
        if (buffer_push_create(self, record->t, record->task, task, (PyObject *)proxy) < 0) {
            return -1;
        }
        return 0;
    }
    if (proxy->created != Py_True || proxy->site == NULL) {
        return 0;
    }
    PyObject *name = PyObject_CallMethodNoArgs(task, str_get_name);
    if (name == NULL) {
        return -1;
    }
    Py_XSETREF(proxy->sent_name, Py_NewRef(name));
    PyObject *loop_id = proxy->state == NULL ? PyLong_FromLong(0)
                                             : PyObject_GetAttr(proxy->state, str_loop_id);
    int failed = loop_id == NULL || encode_head(self, KIND_CREATE, record->t, record->task) < 0 ||
                 encode_object(self, name) < 0 || encode_object(self, proxy->qualname) < 0 ||
                 encode_int(self, proxy->parent_id) < 0 || encode_object(self, proxy->site) < 0 ||
                 encode_object(self, proxy->internal) < 0 || encode_object(self, loop_id) < 0 ||
                 encode_object(self, proxy->args) < 0;
    Py_DECREF(name);
    Py_XDECREF(loop_id);
    self->sent_items += CREATE_ITEMS;
    Py_CLEAR(proxy->site); /* sent: the proxy needs none of it any more */
    Py_CLEAR(proxy->args);
    Py_CLEAR(proxy->qualname);
    Py_CLEAR(proxy->internal);
    return failed ? -1 : 0;
}

static PyObject *
TaskCoroutine_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"coro", "task_id", "state", NULL};
    PyObject *coro, *state;
    long long task_id;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OLO:TaskCoroutine", names, &coro, &task_id,
                                     &state)) {
        return NULL;
    }
    if (state != Py_None && !PyObject_TypeCheck(state, &LoopSlotsType)) {
        PyErr_SetString(PyExc_TypeError, "state must be a LoopState or None");
        return NULL;
    }
    TaskCoroutine *self = (TaskCoroutine *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->coro = Py_NewRef(coro);
    self->state = state == Py_None ? NULL : Py_NewRef(state);
    self->sent_name = Py_NewRef(Py_None);
    self->created = Py_NewRef(Py_False);
    self->task_id = task_id;
    self->suspended_at = NONE_ID;
    return (PyObject *)self;
}

static int
TaskCoroutine_traverse(TaskCoroutine *self, visitproc visit, void *arg)
{
    Py_VISIT(self->coro);
    Py_VISIT(self->state);
    Py_VISIT(self->sent_name);
    Py_VISIT(self->created);
    return 0; /* its create's site, args, qualname and internal: strs and a bool, never in a cycle */
}

static int
TaskCoroutine_clear(TaskCoroutine *self)
{
    Py_CLEAR(self->coro);
    Py_CLEAR(self->state);
    Py_CLEAR(self->sent_name);
    Py_CLEAR(self->created);
    Py_CLEAR(self->site);
    Py_CLEAR(self->args);
    Py_CLEAR(self->qualname);
    Py_CLEAR(self->internal);
    return 0;
}

static void
TaskCoroutine_dealloc(TaskCoroutine *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    TaskCoroutine_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A Python helper's own failure: a bug of ours, never the program's. */
static void
hook_failed(PyObject *hook)
{
    PyErr_WriteUnraisable(hook);
}

static void
call_hook4(PyObject *hook, PyObject *a, PyObject *b, PyObject *c, long long end)
{
    PyObject *end_obj = PyLong_FromLongLong(end);
    if (end_obj == NULL) {
        hook_failed(hook);
        return;
    }
    PyObject *args[4] = {a, b, c, end_obj};
    PyObject *result = PyObject_Vectorcall(hook, args, 4, NULL);
    Py_DECREF(end_obj);
    if (result == NULL) {
        hook_failed(hook);
    }
    Py_XDECREF(result);
}

static void
record_block(TaskCoroutine *self, LoopSlots *state, long long start, long long end)
{
    PyObject *start_obj = PyLong_FromLongLong(start);
    if (start_obj == NULL) {
        hook_failed(record_block_hook);
        return;
    }
    call_hook4(record_block_hook, (PyObject *)self, (PyObject *)state, start_obj, end);
    Py_DECREF(start_obj);
}

static inline void
set_step_start(LoopSlots *state, long long start)
{
    state->step_start = start;
    if (state->step_clock != NULL) { /* the native watchdog's slot (recorder._stackwatch) */
        __atomic_store_n(&state->step_clock[0], start, __ATOMIC_RELEASE);
    }
}

/* One step: throw_args NULL sends ``value``, else calls coro.throw(*throw_args). */
static PySendResult
step(TaskCoroutine *self, PyObject *value, PyObject *throw_args, PyObject **result);

/* -- the fast path of wait naming ---------------------------------------------------------- */

/* One coroutine, generator or async generator of an await chain, read where it is suspended. */
typedef struct {
    PyObject *code;  /* borrowed: the coroutine holds it */
    int offset;      /* its current instruction's, in bytes (as PyFrame_GetLasti) */
    PyObject *owner; /* borrowed: its first argument, a method's self (NULL where not read) */
} Link;

enum { LINK_END, LINK_FOLLOW, LINK_GIVE_UP };

/* A new reference to the frame object of a coroutine, generator or async generator. */
static PyObject *
frame_of(PyObject *node)
{
    PyObject *name = PyCoro_CheckExact(node)  ? str_cr_frame
                     : PyGen_CheckExact(node) ? str_gi_frame
                                              : str_ag_frame;
    return PyObject_GetAttr(node, name);
}

/* A new reference to what ``node`` (a coroutine, generator or async generator) awaits. */
static PyObject *
awaited_by(PyObject *node)
{
    PyObject *name = PyCoro_CheckExact(node)  ? str_cr_await
                     : PyGen_CheckExact(node) ? str_gi_yieldfrom
                                              : str_ag_await;
    return PyObject_GetAttr(node, name);
}

/* What ``node`` is in an await chain: LINK_END for the awaited future (or an awaitable of the
   program's, whose attributes are never asked); LINK_GIVE_UP for a link the fast path leaves to
   waits.py (an opaque awaitable, a compiled coroutine, one not suspended, an error);
   LINK_FOLLOW for a suspended coroutine, generator or async generator, ``link`` filled in.
   Where the frame layouts are known, its code, offset and first argument are read from its
   interpreter frame: reading cr_frame would make a frame object (and fire an audit event),
   which the coroutine then carries to its end. */
static int
read_link(PyObject *node, Link *link)
{
    if (!PyCoro_CheckExact(node) && !PyGen_CheckExact(node) && !PyAsyncGen_CheckExact(node)) {
        PyTypeObject *type = Py_TYPE(node);
        if (strncmp(type->tp_name, "async_generator_", 16) == 0 ||
            strcmp(type->tp_name, "coroutine_wrapper") == 0 ||
            _PyType_Lookup(type, str_cr_await) != NULL) {
            return LINK_GIVE_UP; /* opaque awaitables and compiled coroutines */
        }
        return LINK_END;
    }
    link->owner = NULL;
#ifdef WALK_INTERPRETER_FRAMES
    PyGenObject *gen = (PyGenObject *)node;
    if (gen->gi_frame_state >= FRAME_EXECUTING) {
        return LINK_GIVE_UP;
    }
    _PyInterpreterFrame *frame = (_PyInterpreterFrame *)gen->gi_iframe;
#if PY_VERSION_HEX >= 0x030D0000
    link->code = frame->f_executable;
#else
    link->code = (PyObject *)frame->f_code;
#endif
    if (link->code == NULL || !PyCode_Check(link->code)) {
        return LINK_GIVE_UP;
    }
    link->offset = _PyInterpreterFrame_LASTI(frame) * (int)sizeof(_Py_CODEUNIT);
    if (((PyCodeObject *)link->code)->co_argcount > 0) {
        PyObject *first = frame->localsplus[0];
        link->owner = first != NULL && !PyCell_Check(first) ? first : NULL;
    }
    return LINK_FOLLOW;
#else
    PyObject *frame = frame_of(node);
    if (frame == NULL || frame == Py_None) {
        int status = frame == NULL ? LINK_GIVE_UP : LINK_END;
        Py_XDECREF(frame);
        return status;
    }
    link->code = (PyObject *)PyFrame_GetCode((PyFrameObject *)frame);
    Py_DECREF(link->code); /* the coroutine holds it */
    link->offset = PyFrame_GetLasti((PyFrameObject *)frame);
    Py_DECREF(frame);
    return LINK_FOLLOW;
#endif
}

/* What a task that is not a known primitive's waits on, for the two common futures: a task and
   a gather (waits.WaitNamer._describe_future): its fields. NULL without an error: not one of
   those. */
static PyObject *
future_wait(PyObject *yielded)
{
    PyObject *task_class = PyObject_GetAttr(asyncio_module, str_Task);
    int is_task = task_class == NULL ? -1 : PyObject_IsInstance(yielded, task_class);
    Py_XDECREF(task_class);
    if (is_task < 0) {
        return NULL;
    }
    if (is_task) {
        PyObject *name = PyObject_CallMethodNoArgs(yielded, str_get_name);
        PyObject *label = name == NULL ? NULL : PyUnicode_FromFormat("task %S", name);
        Py_XDECREF(name);
        PyObject *target = label == NULL ? NULL : PyObject_GetAttr(yielded, str_task_id_attr);
        if (target == NULL && label != NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
            PyErr_Clear();
            target = PyLong_FromLong(NONE_ID);
        }
        PyObject *fields = target == NULL ? NULL
                                          : Py_BuildValue("(sOiiO)", "task", label, NONE_ID,
                                                          NONE_ID, target);
        Py_XDECREF(label);
        Py_XDECREF(target);
        return fields;
    }
    if (strcmp(Py_TYPE(yielded)->tp_name, "_GatheringFuture") != 0) {
        return NULL;
    }
    PyObject *children = PyObject_GetAttr(yielded, str_children);
    if (children == NULL || !PyList_CheckExact(children)) {
        Py_XDECREF(children);
        PyErr_Clear();
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(children);
    PyObject *ids = PyList_New(n);
    for (Py_ssize_t i = 0; ids != NULL && i < n; i++) {
        PyObject *id = PyObject_GetAttr(PyList_GET_ITEM(children, i), str_task_id_attr);
        if (id == NULL) {
            PyErr_Clear();
            id = PyLong_FromLong(NONE_ID);
        }
        PyList_SET_ITEM(ids, i, id);
    }
    Py_DECREF(children);
    PyObject *label = ids == NULL ? NULL : PyUnicode_FromFormat("gather (%zd)", n);
    PyObject *fields = label == NULL ? NULL
                                     : Py_BuildValue("(sOiiO)", "gather", label, NONE_ID,
                                                     NONE_ID, ids);
    Py_XDECREF(label);
    Py_XDECREF(ids);
    return fields;
}

/* wait_handlers[code] (borrowed), or NULL: waits.py never sets an entry twice, so each is
   kept in the code cache once seen. Its "" (code that is not the program's) is kept as True
   for asyncio's own code, which the walk goes through, and False for a library's. */
static PyObject *
wait_handler(LoopSlots *state, PyObject *code)
{
    PyObject *handler = code_cache_get(state->code_cache, code, HANDLER_KEY);
    if (handler != NULL) {
        return handler;
    }
    handler = PyDict_GetItemWithError(state->wait_handlers, code);
    if (handler != NULL && PyUnicode_CheckExact(handler) && PyUnicode_GET_LENGTH(handler) == 0) {
        PyObject *file = ((PyCodeObject *)code)->co_filename;
        Py_ssize_t in_asyncio =
            PyUnicode_Tailmatch(file, asyncio_dir, 0, PyUnicode_GET_LENGTH(asyncio_dir), -1);
        handler = in_asyncio < 0 ? NULL : in_asyncio ? Py_True : Py_False;
    }
    if (handler != NULL && code_cache_put(&state->code_cache, code, HANDLER_KEY, handler) < 0) {
        return NULL;
    }
    return handler;
}

/* "file:line" of a user frame (new reference), as waits.py writes it; kept by code and offset. */
static PyObject *
where_of(LoopSlots *state, PyObject *file, PyObject *code, int offset)
{
    PyObject *where = code_cache_get(state->code_cache, code, offset);
    if (where != NULL) {
        return Py_NewRef(where);
    }
    int line = PyCode_Addr2Line((PyCodeObject *)code, offset);
    where = line < 0 ? PyUnicode_FromFormat("%U:None", file)
                     : PyUnicode_FromFormat("%U:%d", file, line);
    if (where != NULL && code_cache_put(&state->code_cache, code, offset, where) < 0) {
        Py_CLEAR(where);
    }
    return where;
}

/* The fields waits.py kept for a wait in ``code`` on ``owner`` (borrowed; see
   waits.ObjectIds.keep_wait), or NULL. */
static PyObject *
owner_wait(LoopSlots *state, PyObject *owner, PyObject *code)
{
    if (owner == NULL || state->owner_waits == NULL || !PyDict_CheckExact(state->owner_waits) ||
        PyDict_GET_SIZE(state->owner_waits) == 0) {
        return NULL;
    }
    PyObject *key = PyLong_FromVoidPtr(owner); /* id(owner) */
    PyObject *kept = key == NULL ? NULL : PyDict_GetItemWithError(state->owner_waits, key);
    Py_XDECREF(key);
    if (kept == NULL || !PyTuple_CheckExact(kept) || PyTuple_GET_SIZE(kept) != 2 ||
        PyTuple_GET_ITEM(kept, 0) != code) {
        return NULL;
    }
    return PyTuple_GET_ITEM(kept, 1);
}

#ifdef WALK_INTERPRETER_FRAMES
/* An int64 of a float, as Python's int() of it, if it fits (-2**63 < x < 2**63 - 1); else
   NONE_ID, as waits.py and loops.py say a time no run reaches. */
static long long
ns_or_none(double ns)
{
    return ns > -9223372036854775808.0 && ns < 9223372036854775808.0 ? (long long)ns : NONE_ID;
}

/* waits.WaitNamer._sleep, read from asyncio.sleep's frame (``sleep``, suspended in its
   ``await future``): its fields (new reference), or NULL (no error) where Python should name
   it: a delay that is not a plain int or float, no timer handle. */
static PyObject *
sleep_wait(LoopSlots *state, PyObject *sleep, PyObject *code)
{
    PyObject *spec = state->sleep_locals;
    if (spec == NULL || !PyTuple_CheckExact(spec) || PyTuple_GET_SIZE(spec) != 3 ||
        PyTuple_GET_ITEM(spec, 0) != code) {
        return NULL;
    }
    Py_ssize_t delay_at = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 1));
    Py_ssize_t handle_at = PyLong_AsSsize_t(PyTuple_GET_ITEM(spec, 2));
    Py_ssize_t size = ((PyCodeObject *)code)->co_nlocalsplus;
    if (delay_at < 0 || handle_at < 0 || delay_at >= size || handle_at >= size) {
        PyErr_Clear();
        return NULL;
    }
    _PyInterpreterFrame *frame = (_PyInterpreterFrame *)((PyGenObject *)sleep)->gi_iframe;
    PyObject *delay = frame->localsplus[delay_at], *handle = frame->localsplus[handle_at];
    if (delay == NULL || handle == NULL ||
        (!PyFloat_CheckExact(delay) && !PyLong_CheckExact(delay))) {
        return NULL;
    }
    double seconds = PyFloat_CheckExact(delay) ? PyFloat_AS_DOUBLE(delay)
                                               : PyLong_AsDouble(delay);
    if (seconds == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *when = PyObject_CallMethodNoArgs(handle, str_when);
    double at = when == NULL ? -1.0 : PyFloat_AsDouble(when);
    Py_XDECREF(when);
    if (at == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return NULL;
    }
    char *shown = PyOS_double_to_string(seconds, 'g', 6, 0, NULL); /* f"{delay:g}" */
    if (shown == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *label = PyUnicode_FromFormat("sleep %ss", shown);
    PyMem_Free(shown);
    long long deadline = ns_or_none(at * 1e9 - state->loop_offset - (double)state->t0);
    PyObject *fields = label == NULL ? NULL
                                     : Py_BuildValue("(sOiLL)", "sleep", label, NONE_ID, deadline,
                                                     ns_or_none(seconds * 1e9));
    Py_XDECREF(label);
    PyErr_Clear();
    return fields;
}
#endif

/* What the suspended task waits on, as waits.WaitNamer.describe says it, for the common cases:
   an await chain of coroutines and generators through asyncio and the program's own code, down
   to a known primitive (its handler, in Python, names it from its frame, unless it kept the
   name for that object), a task or a gather. 1 with *fields, (kind, label, obj, deadline, ref),
   and *where (new references); or 0 (and no error) for anything else: a library's code on the
   way, an opaque awaitable, a wait for an executor's future, a code object seen for the first
   time, the program's own code in a task whose entry is still sought. Those go to Python. */
static int
fast_wait(LoopSlots *state, TaskCoroutine *self, PyObject *yielded, PyObject **fields,
          PyObject **where)
{
    *fields = *where = NULL;
    if (state->wait_handlers == NULL || !PyDict_CheckExact(state->wait_handlers) ||
        asyncio_module == NULL) {
        return 0;
    }
    PyObject *node = Py_NewRef(self->coro);
    /* the outermost known primitive: its handler, coroutine, code and owner */
    PyObject *known = NULL, *known_node = NULL, *known_code = NULL, *known_owner = NULL;
    PyObject *user_file = NULL, *user_code = NULL; /* the innermost user frame */
    int user_offset = 0;
    int followed = 1;
    while (followed) {
        Link link;
        int kind = read_link(node, &link);
        if (kind != LINK_FOLLOW) {
            followed = kind == LINK_END;
            break;
        }
        PyObject *handler = wait_handler(state, link.code); /* borrowed */
        if (handler == NULL || handler == Py_False) {
            /* first seen: waits.py decides what it is, and caches it; or a library's code: its
               own line and label, in waits.py */
            followed = 0;
        } else if (handler == Py_True) {
            /* asyncio's own code, on the way to what it waits on */
        } else if (PyUnicode_CheckExact(handler)) {
            Py_XSETREF(user_file, Py_NewRef(handler));
            Py_XSETREF(user_code, Py_NewRef(link.code));
            user_offset = link.offset;
        } else if (known == NULL) {
            known = Py_NewRef(handler);
            known_node = Py_NewRef(node);
            known_code = Py_NewRef(link.code);
            known_owner = Py_XNewRef(link.owner);
        }
        PyObject *awaited = followed ? awaited_by(node) : NULL;
        if (awaited == NULL || awaited == Py_None) {
            followed = followed && awaited != NULL;
            Py_XDECREF(awaited);
            break;
        }
        Py_SETREF(node, awaited);
    }
    Py_DECREF(node);
    if (self->seek_entry && user_code != NULL) {
        followed = 0; /* the program's own code in a library's task: its entry, in Python */
    }
    if (followed && !PyErr_Occurred()) {
        *where = user_file == NULL ? Py_NewRef(str_empty)
                                   : where_of(state, user_file, user_code, user_offset);
    }
    if (*where != NULL && known != NULL) {
        *fields = Py_XNewRef(owner_wait(state, known_owner, known_code));
#ifdef WALK_INTERPRETER_FRAMES
        if (*fields == NULL && !PyErr_Occurred()) {
            *fields = sleep_wait(state, known_node, known_code);
        }
#endif
        PyObject *frame = *fields == NULL && !PyErr_Occurred() ? frame_of(known_node) : NULL;
        if (frame != NULL) {
            PyObject *args[2] = {frame, yielded};
            *fields = PyObject_Vectorcall(known, args, 2, NULL);
            Py_DECREF(frame);
        }
    } else if (*where != NULL) {
        *fields = future_wait(yielded);
    }
    Py_XDECREF(known);
    Py_XDECREF(known_node);
    Py_XDECREF(known_code);
    Py_XDECREF(known_owner);
    Py_XDECREF(user_file);
    Py_XDECREF(user_code);
    if (*fields != NULL && (!PyTuple_CheckExact(*fields) || PyTuple_GET_SIZE(*fields) != 5)) {
        Py_CLEAR(*fields);
    }
    if (*fields == NULL) {
        Py_CLEAR(*where);
        PyErr_Clear(); /* Python tries again, and reports what fails there */
        return 0;
    }
    return 1;
}

/* The ``suspend`` of a step that yielded ``yielded``: named in C when fast_wait can, and
   without a timeout; else by proxy.record_suspend. */
static void
record_suspend(TaskCoroutine *self, LoopSlots *state, PyObject *yielded, long long end)
{
    int plain = state->timeouts != NULL && PyDict_CheckExact(state->timeouts) &&
                PyDict_GET_SIZE(state->timeouts) == 0;
    PyObject *fields, *where;
    if (!plain || yielded == Py_None || !fast_wait(state, self, yielded, &fields, &where)) {
        call_hook4(record_suspend_hook, (PyObject *)self, (PyObject *)state, yielded, end);
        return;
    }
    EventBuffer *events = (EventBuffer *)state->events;
    if (buffer_push(events, KIND_SUSPEND, end, self->task_id, SUSPEND_ITEMS) < 0) {
        Py_DECREF(fields);
        Py_DECREF(where);
        PyErr_WriteUnraisable((PyObject *)self); /* out of memory: this event is lost */
        return;
    }
    Record *record = &events->records[events->count - 1];
    record->tuple = fields;
    record->where = where;
}

/* Whether the task whose step ended renamed itself since its create was sent (then
   proxy.record_raise says so in a ``rename``); 1 also when that cannot be told here. */
static int
renamed(TaskCoroutine *self)
{
    if (self->sent_name == NULL || self->sent_name == Py_None) {
        return 0; /* its create is not sent yet: it carries the name the task has then */
    }
    if (current_task == NULL) {
        return 1;
    }
    PyObject *task = PyObject_CallNoArgs(current_task);
    int differs = 1;
    if (task != NULL && task != Py_None) {
        PyObject *coro = PyObject_CallMethodNoArgs(task, str_get_coro);
        if (coro != (PyObject *)self) {
            differs = coro == NULL ? 1 : 0; /* not this proxy's task: nothing to say */
        } else {
            PyObject *name = PyObject_CallMethodNoArgs(task, str_get_name);
            differs = name == NULL ? 1 : PyObject_RichCompareBool(name, self->sent_name, Py_NE);
            Py_XDECREF(name);
        }
        Py_XDECREF(coro);
    }
    Py_XDECREF(task);
    if (PyErr_Occurred()) {
        PyErr_Clear(); /* Python asks again, and reports what fails there */
        return 1;
    }
    return differs != 0;
}

static PySendResult
nested_step(TaskCoroutine *self, LoopSlots *state, PyObject *value, PyObject *throw_args,
            PyObject **result)
{
    /* An eager task's first step runs inside the step of the task that made it (3.12+):
       record it as its own step, then give the outer step back to the watchdog. */
    long long outer_task = state->step_task, outer_start = state->step_start;
    PyObject *outer_proxy = state->step_proxy;
    set_step_start(state, 0);
    int64_t began = perf_counter_ns();
    PySendResult status = step(self, value, throw_args, result);
    state->step_task = outer_task;
    state->step_proxy = outer_proxy;
    set_step_start(state, outer_start);
    /* the outer step did not hold the loop for this long itself (see LoopState.long_step) */
    if (state->nested_in != outer_start) {
        state->nested_in = outer_start;
        state->nested_ns = 0;
    }
    state->nested_ns += perf_counter_ns() - began;
    return status;
}

static PySendResult
step(TaskCoroutine *self, PyObject *value, PyObject *throw_args, PyObject **result)
{
    LoopSlots *state = (LoopSlots *)self->state;
    if (state == NULL || self->coro == NULL || state->events == NULL ||
        !Py_IS_TYPE(state->events, &EventBufferType)) {
        PyErr_SetString(PyExc_RuntimeError, "loopviz: a task stepped before it was recorded");
        *result = NULL;
        return PYGEN_ERROR;
    }
    if (state->step_start) {
        return nested_step(self, state, value, throw_args, result);
    }
    EventBuffer *events = (EventBuffer *)state->events;
    long long task_id = self->task_id;
    long long start = perf_counter_ns() - state->t0;
    /* step_start is written last and cleared first: the watchdog reads it before and after
       step_task (a seqlock on the start time). */
    state->step_task = task_id;
    state->step_proxy = (PyObject *)self;
    set_step_start(state, start);
    if (buffer_push(events, KIND_RESUME, start, task_id, 3) < 0) {
        PyErr_WriteUnraisable((PyObject *)self); /* out of memory: this event is lost */
    }
    Py_INCREF(self); /* a step may drop the task's last reference to its proxy */
    PySendResult status;
    if (throw_args == NULL) {
        status = PyIter_Send(self->coro, value, result);
    } else {
        PyObject *thrower = PyObject_GetAttr(self->coro, str_throw);
        *result = thrower == NULL ? NULL : PyObject_Call(thrower, throw_args, NULL);
        Py_XDECREF(thrower);
        status = *result == NULL ? PYGEN_ERROR : PYGEN_NEXT;
    }
    long long end = perf_counter_ns() - state->t0;
    set_step_start(state, 0);
    state->step_proxy = NULL;
    if (state->callback_start) { /* callbacks after this step are timed from its end */
        set_callback_start(state, end);
    }
    if (status == PYGEN_ERROR) {
        PyObject *exc = PyErr_GetRaisedException();
        if (end - start >= state->block_threshold_ns) {
            record_block(self, state, start, end);
        }
        call_hook4(record_raise_hook, (PyObject *)self, (PyObject *)state, exc, end);
        PyErr_SetRaisedException(exc);
    } else {
        if (end - start >= state->block_threshold_ns) {
            record_block(self, state, start, end);
        }
        int no_timeouts = state->timeouts != NULL && PyDict_CheckExact(state->timeouts) &&
                          PyDict_GET_SIZE(state->timeouts) == 0;
        if (status == PYGEN_RETURN) {
            if (*result == Py_None && no_timeouts && !renamed(self)) {
                /* the common end: returned None, no timeout to forget, no new name */
                if (buffer_push(events, KIND_DONE, end, task_id, 5) < 0) {
                    PyErr_WriteUnraisable((PyObject *)self);
                }
            } else {
                call_hook4(record_return_hook, (PyObject *)self, (PyObject *)state, *result,
                           end);
            }
        } else if (*result == Py_None && no_timeouts) {
            /* a bare yield: asyncio.sleep(0) */
            if (buffer_push(events, KIND_YIELD, end, task_id, 3) < 0) {
                PyErr_WriteUnraisable((PyObject *)self);
            }
        } else {
            self->suspended_at = end;
            record_suspend(self, state, *result, end);
        }
    }
    Py_DECREF(self);
    return status;
}

static PySendResult
TaskCoroutine_am_send(TaskCoroutine *self, PyObject *value, PyObject **result)
{
    return step(self, value, NULL, result);
}

static PyObject *
stop_iteration(PyObject *value)
{
    PyObject *exc = PyObject_CallOneArg(PyExc_StopIteration, value);
    if (exc != NULL) {
        PyErr_SetObject(PyExc_StopIteration, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static PyObject *
TaskCoroutine_send(TaskCoroutine *self, PyObject *value)
{
    PyObject *result;
    PySendResult status = step(self, value, NULL, &result);
    if (status == PYGEN_RETURN) {
        PyObject *raised = stop_iteration(result);
        Py_DECREF(result);
        return raised;
    }
    return status == PYGEN_NEXT ? result : NULL;
}

static PyObject *
TaskCoroutine_throw(TaskCoroutine *self, PyObject *args)
{
    PyObject *result;
    PySendResult status = step(self, Py_None, args, &result);
    return status == PYGEN_NEXT ? result : NULL;
}

static PyObject *
TaskCoroutine_close(TaskCoroutine *self, PyObject *Py_UNUSED(ignored))
{
    if (self->coro == NULL) {
        Py_RETURN_NONE;
    }
    return PyObject_CallMethod(self->coro, "close", NULL);
}

static PyObject *
TaskCoroutine_await(TaskCoroutine *self)
{
    if (self->coro == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the task's coroutine is gone");
        return NULL;
    }
    return PyObject_CallMethod(self->coro, "__await__", NULL);
}

static PyObject *
TaskCoroutine_getattro(TaskCoroutine *self, PyObject *name)
{
    /* cr_frame, cr_await, cr_code, cr_running, __name__, __qualname__... of the real
       coroutine, as the Python proxy's __getattr__ passes them through */
    PyObject *found = PyObject_GenericGetAttr((PyObject *)self, name);
    if (found != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return found;
    }
    PyErr_Clear();
    if (self->coro == NULL) {
        PyErr_Format(PyExc_AttributeError, "'TaskCoroutine' object has no attribute '%U'", name);
        return NULL;
    }
    return PyObject_GetAttr(self->coro, name);
}

static PyObject *
TaskCoroutine_repr(TaskCoroutine *self)
{
    return PyObject_Repr(self->coro != NULL ? self->coro : Py_None);
}

static PyObject *
TaskCoroutine_get_coro(TaskCoroutine *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->coro != NULL ? self->coro : Py_None);
}

static int
TaskCoroutine_set_coro(TaskCoroutine *self, PyObject *value, void *Py_UNUSED(closure))
{
    Py_XSETREF(self->coro, value == NULL || value == Py_None ? NULL : Py_NewRef(value));
    return 0;
}

static PyObject *
TaskCoroutine_get_state(TaskCoroutine *self, void *Py_UNUSED(closure))
{
    return Py_NewRef(self->state != NULL ? self->state : Py_None);
}

static int
TaskCoroutine_set_state(TaskCoroutine *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value != NULL && value != Py_None && !PyObject_TypeCheck(value, &LoopSlotsType)) {
        PyErr_SetString(PyExc_TypeError, "_state must be a LoopState or None");
        return -1;
    }
    Py_XSETREF(self->state, value == NULL || value == Py_None ? NULL : Py_NewRef(value));
    return 0;
}

static PyMethodDef TaskCoroutine_methods[] = {
    {"send", (PyCFunction)TaskCoroutine_send, METH_O, "One step of the task, recorded."},
    {"throw", (PyCFunction)TaskCoroutine_throw, METH_VARARGS,
     "One step of the task that raises inside it, recorded."},
    {"close", (PyCFunction)TaskCoroutine_close, METH_NOARGS, "Close the coroutine."},
    {NULL},
};

static PyMemberDef TaskCoroutine_members[] = {
    {"task_id", T_LONGLONG, offsetof(TaskCoroutine, task_id), READONLY, NULL},
    {"suspended_at", T_LONGLONG, offsetof(TaskCoroutine, suspended_at), 0, NULL},
    {"seek_entry", T_BOOL, offsetof(TaskCoroutine, seek_entry), 0, NULL},
    {"sent_name", T_OBJECT, offsetof(TaskCoroutine, sent_name), 0, NULL},
    {"created", T_OBJECT, offsetof(TaskCoroutine, created), 0, NULL},
    {NULL},
};

static PyGetSetDef TaskCoroutine_getset[] = {
    {"_coro", (getter)TaskCoroutine_get_coro, (setter)TaskCoroutine_set_coro,
     "The task's own coroutine.", NULL},
    {"_state", (getter)TaskCoroutine_get_state, (setter)TaskCoroutine_set_state,
     "The LoopState of the task's loop.", NULL},
    {NULL},
};

static PyAsyncMethods TaskCoroutine_as_async = {
    .am_await = (unaryfunc)TaskCoroutine_await,
    .am_send = (sendfunc)TaskCoroutine_am_send,
};

static PyTypeObject TaskCoroutineType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loopviz.recorder._native.TaskCoroutine",
    .tp_doc = "Wraps a task's coroutine: every step the Task makes through it is recorded.",
    .tp_basicsize = sizeof(TaskCoroutine),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = TaskCoroutine_new,
    .tp_dealloc = (destructor)TaskCoroutine_dealloc,
    .tp_traverse = (traverseproc)TaskCoroutine_traverse,
    .tp_clear = (inquiry)TaskCoroutine_clear,
    .tp_as_async = &TaskCoroutine_as_async,
    .tp_getattro = (getattrofunc)TaskCoroutine_getattro,
    .tp_repr = (reprfunc)TaskCoroutine_repr,
    .tp_methods = TaskCoroutine_methods,
    .tp_members = TaskCoroutine_members,
    .tp_getset = TaskCoroutine_getset,
    .tp_weaklistoffset = offsetof(TaskCoroutine, weakreflist),
};

/* ---------------------------------------------------------------------------------------- */
/* WakeupHook: loop.call_soon                                                              */

typedef struct {
    PyObject_HEAD
    PyObject *call_soon; /* the loop's own */
    PyObject *state;     /* its LoopState */
    vectorcallfunc vectorcall;
} WakeupHook;

static PyTypeObject WakeupHookType;

static PyObject *WakeupHook_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                       PyObject *kwnames);

static PyObject *
WakeupHook_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"call_soon", "state", NULL};
    PyObject *call_soon, *state;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!:WakeupHook", names, &call_soon,
                                     &LoopSlotsType, &state)) {
        return NULL;
    }
    WakeupHook *self = (WakeupHook *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->call_soon = Py_NewRef(call_soon);
    self->state = Py_NewRef(state);
    self->vectorcall = WakeupHook_vectorcall;
    return (PyObject *)self;
}

static int
is_python_wakeup(PyObject *callback)
{
    /* a pure-Python Task's bound ``__wakeup`` */
    if (!PyMethod_Check(callback)) {
        return 0;
    }
    PyObject *func = PyMethod_GET_FUNCTION(callback);
    if (!PyFunction_Check(func)) {
        return 0;
    }
    PyObject *name = ((PyFunctionObject *)func)->func_name;
    return PyUnicode_Check(name) && (PyUnicode_CompareWithASCIIString(name, "__wakeup") == 0 ||
                                     PyUnicode_CompareWithASCIIString(name, "_Task__wakeup") == 0);
}

static PyObject *
WakeupHook_vectorcall(PyObject *hook, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    WakeupHook *self = (WakeupHook *)hook;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs >= 1) {
        PyObject *callback = args[0];
        LoopSlots *state = (LoopSlots *)self->state;
        /* A C Task's wake-up is its bound ``task_wakeup``; its steps are scheduled as
           TaskStepMethWrapper objects, rejected by type alone. */
        int c_wakeup = PyCFunction_Check(callback) &&
                       strcmp(((PyCFunctionObject *)callback)->m_ml->ml_name, "task_wakeup") == 0;
        int rare = is_python_wakeup(callback) ||
                   (c_wakeup && (PyThread_get_thread_ident() != state->thread_id ||
                                 (nargs > 1 && state->handed_back != NULL &&
                                  PyDict_Check(state->handed_back) &&
                                  PyDict_GET_SIZE(state->handed_back) != 0)));
        if (rare) {
            PyObject *rest = PyTuple_New(nargs - 1);
            if (rest == NULL) {
                return NULL;
            }
            for (Py_ssize_t i = 1; i < nargs; i++) {
                PyTuple_SET_ITEM(rest, i - 1, Py_NewRef(args[i]));
            }
            PyObject *hook_args[3] = {self->state, callback, rest};
            PyObject *done = PyObject_Vectorcall(wakeup_hook, hook_args, 3, NULL);
            Py_DECREF(rest);
            if (done == NULL) {
                hook_failed(wakeup_hook);
            }
            Py_XDECREF(done);
        } else if (c_wakeup) {
            long long task_id = NONE_ID;
            PyObject *task = PyCFunction_GET_SELF(callback);
            PyObject *id = task == NULL ? NULL : PyObject_GetAttr(task, str_task_id_attr);
            if (id != NULL) {
                task_id = PyLong_AsLongLong(id);
                Py_DECREF(id);
            }
            if (PyErr_Occurred()) { /* a task loopviz never saw */
                PyErr_Clear();
                task_id = NONE_ID;
            }
            long long t = perf_counter_ns() - state->t0;
            if (buffer_push((EventBuffer *)state->events, KIND_READY, t, task_id, 4) < 0) {
                PyErr_WriteUnraisable((PyObject *)self);
            }
        }
    }
    return PyObject_Vectorcall(self->call_soon, args, nargsf, kwnames);
}

static int
WakeupHook_traverse(WakeupHook *self, visitproc visit, void *arg)
{
    Py_VISIT(self->call_soon);
    Py_VISIT(self->state);
    return 0;
}

static int
WakeupHook_clear(WakeupHook *self)
{
    Py_CLEAR(self->call_soon);
    Py_CLEAR(self->state);
    return 0;
}

static void
WakeupHook_dealloc(WakeupHook *self)
{
    PyObject_GC_UnTrack(self);
    WakeupHook_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject WakeupHookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loopviz.recorder._native.WakeupHook",
    .tp_doc = "The loop's call_soon, recording each task's wake-up (a `ready` event).",
    .tp_basicsize = sizeof(WakeupHook),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = WakeupHook_new,
    .tp_dealloc = (destructor)WakeupHook_dealloc,
    .tp_traverse = (traverseproc)WakeupHook_traverse,
    .tp_clear = (inquiry)WakeupHook_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(WakeupHook, vectorcall),
};

/* ---------------------------------------------------------------------------------------- */
/* CreationRecorder: what recorder/tasks.py records of a new task                           */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *state_of;         /* LoopInstaller.state_of */
    PyObject *task_ids;         /* the recorder's itertools.count */
    PyObject *events;           /* Recorder.events: the EventBuffer the creates are queued in */
    PyObject *get_running_loop; /* asyncio.events._get_running_loop */
    PyObject *current_task;     /* asyncio.current_task */
    PyObject *loop_class;       /* asyncio.AbstractEventLoop */
    PyObject *creation_facts;   /* tasks.creation_facts: coro -> (seek, args, name, internal) */
    PyObject *code_facts;       /* tasks.code_facts: code -> (seek_entry, internal) */
    PyObject *coroutine_args;   /* tasks.coroutine_args */
    PyObject *spawn_site;       /* tasks.spawn_site: frame -> "file:line" */
    PyObject *outside;          /* tasks._outside_asyncio: code -> bool, filled by spawn_site */
    CodeCacheEntry *cache;      /* by code: its facts (FACTS_KEY), whether it is outside
                                   asyncio and loopviz (OUTSIDE_KEY: True, or None), and by
                                   code and offset: the spawn site of a line outside them */
    PyObject *last_loop;        /* borrowed, for identity only: the loop last checked... */
    PyObject *last_state;       /* ...and its LoopState, which holds it weakly (loop_ref) */
    long long t0;
} CreationRecorder;

static PyTypeObject CreationRecorderType;
static PyObject *str_loop_ref;
static PyObject *str_qualname;

static PyObject *CreationRecorder_vectorcall(PyObject *self, PyObject *const *args,
                                             size_t nargsf, PyObject *kwnames);

static PyObject *
CreationRecorder_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"state_of",       "task_ids",   "events",     "get_running_loop",
                            "current_task",   "loop_class", "creation_facts", "code_facts",
                            "coroutine_args", "spawn_site", "outside",    "t0",
                            NULL};
    PyObject *o[11];
    long long t0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO!OOOOOOOO!L:CreationRecorder", names,
                                     &o[0], &o[1], &EventBufferType, &o[2], &o[3], &o[4], &o[5],
                                     &o[6], &o[7], &o[8], &o[9], &PyDict_Type, &o[10], &t0)) {
        return NULL;
    }
    CreationRecorder *self = (CreationRecorder *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    PyObject **fields[] = {&self->state_of,       &self->task_ids,   &self->events,
                           &self->get_running_loop, &self->current_task, &self->loop_class,
                           &self->creation_facts, &self->code_facts, &self->coroutine_args,
                           &self->spawn_site,     &self->outside};
    for (int i = 0; i < 11; i++) {
        *fields[i] = Py_NewRef(o[i]);
    }
    self->t0 = t0;
    self->vectorcall = CreationRecorder_vectorcall;
    return (PyObject *)self;
}

static int
CreationRecorder_traverse(CreationRecorder *self, visitproc visit, void *arg)
{
    Py_VISIT(self->state_of);
    Py_VISIT(self->task_ids);
    Py_VISIT(self->events);
    Py_VISIT(self->get_running_loop);
    Py_VISIT(self->current_task);
    Py_VISIT(self->loop_class);
    Py_VISIT(self->creation_facts);
    Py_VISIT(self->code_facts);
    Py_VISIT(self->coroutine_args);
    Py_VISIT(self->spawn_site);
    Py_VISIT(self->outside);
    Py_VISIT(self->last_state);
    return code_cache_traverse(self->cache, visit, arg);
}

static int
CreationRecorder_clear(CreationRecorder *self)
{
    Py_CLEAR(self->state_of);
    Py_CLEAR(self->task_ids);
    Py_CLEAR(self->events);
    Py_CLEAR(self->get_running_loop);
    Py_CLEAR(self->current_task);
    Py_CLEAR(self->loop_class);
    Py_CLEAR(self->creation_facts);
    Py_CLEAR(self->code_facts);
    Py_CLEAR(self->coroutine_args);
    Py_CLEAR(self->spawn_site);
    Py_CLEAR(self->outside);
    code_cache_free(&self->cache);
    Py_CLEAR(self->last_state);
    self->last_loop = NULL;
    return 0;
}

static void
CreationRecorder_dealloc(CreationRecorder *self)
{
    PyObject_GC_UnTrack(self);
    CreationRecorder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The LoopState last asked for (borrowed), if it is still ``loop``'s; else NULL. */
static PyObject *
cached_state(CreationRecorder *self, PyObject *loop)
{
    if (self->last_state == NULL || loop != self->last_loop) {
        return NULL;
    }
    PyObject *ref = PyObject_GetAttr(self->last_state, str_loop_ref);
    PyObject *alive = NULL; /* compared, never used: ``loop`` is alive */
    if (ref != NULL && PyWeakref_Check(ref)) {
#if PY_VERSION_HEX >= 0x030D0000
        if (PyWeakref_GetRef(ref, &alive) > 0) {
            Py_DECREF(alive);
        }
#else
        alive = PyWeakref_GetObject(ref);
#endif
    }
    Py_XDECREF(ref);
    PyErr_Clear();
    return alive == loop ? self->last_state : NULL;
}

/* The LoopState of ``loop``, an event loop (new reference), from installer.state_of. */
static PyObject *
state_for(CreationRecorder *self, PyObject *loop)
{
    PyObject *state = PyObject_CallOneArg(self->state_of, loop);
    if (state == NULL) {
        return NULL;
    }
    Py_XSETREF(self->last_state, Py_NewRef(state));
    self->last_loop = loop;
    return state;
}

#define FACTS_KEY INT_MIN /* (an offset is never negative, save -1 for a frame not started) */
#define OUTSIDE_KEY (INT_MIN + 1)

/* Whether ``code`` is outside asyncio and loopviz (borrowed): True, or None for inside; NULL
   (no error) where tasks.spawn_site has not looked at it yet. */
static PyObject *
code_outside(CreationRecorder *self, PyObject *code)
{
    PyObject *outside = code_cache_get(self->cache, code, OUTSIDE_KEY);
    if (outside != NULL) {
        return outside;
    }
    outside = PyDict_GetItemWithError(self->outside, code); /* tasks._outside_asyncio */
    if (outside != Py_True && outside != Py_False) {
        PyErr_Clear();
        return NULL;
    }
    outside = outside == Py_True ? Py_True : Py_None;
    if (code_cache_put(&self->cache, code, OUTSIDE_KEY, outside) < 0) {
        PyErr_Clear();
    }
    return outside;
}

/* The site of the first frame outside asyncio and loopviz from ``frame`` out (new reference),
   as tasks.spawn_site finds it, from the cache kept here. A frame not in it is left to
   tasks.spawn_site, which fills its own. */
static PyObject *
spawn_site_from(CreationRecorder *self, PyFrameObject *frame)
{
    Py_XINCREF(frame);
    while (frame != NULL) {
        PyObject *code = (PyObject *)PyFrame_GetCode(frame);
        PyObject *outside = code_outside(self, code); /* borrowed */
        if (outside != Py_None) {
            int offset = PyFrame_GetLasti(frame);
            PyObject *site = outside == NULL ? NULL : code_cache_get(self->cache, code, offset);
            if (site != NULL) {
                site = Py_NewRef(site);
            } else { /* not seen yet: Python sees to it */
                site = PyObject_CallOneArg(self->spawn_site, (PyObject *)frame);
                if (site != NULL && outside == Py_True &&
                    code_cache_put(&self->cache, code, offset, site) < 0) {
                    Py_CLEAR(site);
                }
            }
            Py_DECREF(code);
            Py_DECREF(frame);
            return site;
        }
        Py_DECREF(code);
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    return Py_NewRef(str_empty);
}

#ifdef WALK_INTERPRETER_FRAMES
/* spawn_site_from(the innermost frame: the one that made the task, as TaskInit, which calls
   us, has none), from the caches alone, reading the interpreter's frames: a new reference, or
   NULL (no error) when a frame is not in them. */
static PyObject *
cached_spawn_site(CreationRecorder *self)
{
    PyThreadState *tstate = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x030D0000
    _PyInterpreterFrame *frame = tstate->current_frame;
#else
    _PyInterpreterFrame *frame = tstate->cframe != NULL ? tstate->cframe->current_frame : NULL;
#endif
    for (; frame != NULL; frame = frame->previous) {
#if PY_VERSION_HEX >= 0x030C0000
        if (frame->owner == FRAME_OWNED_BY_CSTACK) {
            continue; /* the shim frame of a call from C into Python */
        }
#endif
#if PY_VERSION_HEX >= 0x030D0000
        PyObject *code = frame->f_executable;
#else
        PyObject *code = (PyObject *)frame->f_code;
#endif
        if (code == NULL || !PyCode_Check(code) || _PyFrame_IsIncomplete(frame)) {
            continue;
        }
        PyObject *outside = code_outside(self, code); /* borrowed */
        if (outside == NULL) {
            return NULL;
        }
        if (outside == Py_None) {
            continue;
        }
        int offset = _PyInterpreterFrame_LASTI(frame) * (int)sizeof(_Py_CODEUNIT);
        return Py_XNewRef(code_cache_get(self->cache, code, offset));
    }
    return Py_NewRef(str_empty);
}
#endif

/* The code and qualname of a coroutine (borrowed: it holds them), or 0 if it is not one. */
static int
coroutine_names(PyObject *coro, PyObject **code, PyObject **qualname)
{
    if (!PyCoro_CheckExact(coro)) {
        return 0;
    }
#ifdef WALK_INTERPRETER_FRAMES /* (its frame keeps its code from 3.12 on, even once done) */
#if PY_VERSION_HEX >= 0x030D0000
    *code = ((_PyInterpreterFrame *)((PyCoroObject *)coro)->cr_iframe)->f_executable;
#elif PY_VERSION_HEX >= 0x030C0000
    *code = (PyObject *)((_PyInterpreterFrame *)((PyCoroObject *)coro)->cr_iframe)->f_code;
#else
    *code = (PyObject *)((PyCoroObject *)coro)->cr_code;
#endif
    *qualname = ((PyCoroObject *)coro)->cr_qualname;
#else
    *code = PyObject_GetAttr(coro, str_cr_code);
    *qualname = *code == NULL ? NULL : PyObject_GetAttr(coro, str_qualname);
    Py_XDECREF(*code);     /* the coroutine holds both */
    Py_XDECREF(*qualname);
    PyErr_Clear();
#endif
    return *code != NULL && PyCode_Check(*code) && *qualname != NULL &&
           PyUnicode_CheckExact(*qualname) && PyUnicode_GET_LENGTH(*qualname) > 0;
}

#ifdef WALK_INTERPRETER_FRAMES
#define ARG_REPR_LIMIT 24 /* tasks._ARG_REPR_LIMIT */

/* tasks.coroutine_args of a coroutine not started yet (new reference), read from its frame
   without making a frame object (which the coroutine would carry to its end); NULL (no error)
   for one that has started: Python reads it. */
static PyObject *
coroutine_args_from_frame(PyObject *coro, PyCodeObject *code)
{
    if (((PyCoroObject *)coro)->cr_frame_state != FRAME_CREATED) {
        return NULL;
    }
    _PyInterpreterFrame *frame = (_PyInterpreterFrame *)((PyCoroObject *)coro)->cr_iframe;
    Py_ssize_t first = 0, n = code->co_argcount;
    PyObject *name = n > 0 ? PyTuple_GET_ITEM(code->co_localsplusnames, 0) : NULL;
    if (name != NULL && (PyUnicode_CompareWithASCIIString(name, "self") == 0 ||
                         PyUnicode_CompareWithASCIIString(name, "cls") == 0)) {
        first = 1;
    }
    PyObject *shown = PyList_New(0);
    for (Py_ssize_t i = first; shown != NULL && i < n; i++) {
        PyObject *value = frame->localsplus[i];
        if (value != NULL && PyCell_Check(value)) { /* an argument a closure uses: its cell */
            value = PyCell_GET(value);
        }
        if (value == NULL) { /* (as f_locals.get gives it) */
            value = Py_None;
        }
        PyObject *text;
        if (value == Py_None || PyBool_Check(value) || PyLong_CheckExact(value) ||
            PyFloat_CheckExact(value) || PyUnicode_CheckExact(value) || PyBytes_CheckExact(value)) {
            text = PyObject_Repr(value); /* a builtin's repr: none of the program's code */
            if (text != NULL && PyUnicode_GET_LENGTH(text) > ARG_REPR_LIMIT) {
                PyObject *cut = PyUnicode_Substring(text, 0, ARG_REPR_LIMIT - 3);
                Py_SETREF(text, cut == NULL ? NULL : PyUnicode_FromFormat("%U...", cut));
                Py_XDECREF(cut);
            }
        } else {
            text = PyUnicode_FromString("...");
        }
        if (text == NULL || PyList_Append(shown, text) < 0) {
            Py_CLEAR(shown);
        }
        Py_XDECREF(text);
    }
    if (shown == NULL) {
        return NULL;
    }
    PyObject *separator = PyUnicode_FromString(", ");
    PyObject *args = separator == NULL ? NULL : PyUnicode_Join(separator, shown);
    Py_XDECREF(separator);
    Py_DECREF(shown);
    return args;
}
#endif

/* Fill in the proxy's create facts of its coroutine (seek_entry, args, qualname, internal):
   for a coroutine, from its code object's cached facts; for anything else, from
   tasks.creation_facts. */
static int
set_facts(CreationRecorder *self, TaskCoroutine *proxy, PyObject *coro)
{
    PyObject *code, *qualname;
    PyObject *facts, *args = NULL;
    PyObject *found = NULL; /* a tuple of facts this call holds */
    int is_coroutine = coroutine_names(coro, &code, &qualname);
    if (is_coroutine) {
        facts = code_cache_get(self->cache, code, FACTS_KEY); /* borrowed */
        if (facts == NULL) {
            found = facts = PyObject_CallOneArg(self->code_facts, code);
            if (found != NULL && (!PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) != 2)) {
                Py_CLEAR(found);
                PyErr_SetString(PyExc_TypeError, "code_facts() gives (seek_entry, internal)");
            }
            if (found != NULL && code_cache_put(&self->cache, code, FACTS_KEY, found) < 0) {
                Py_CLEAR(found);
            }
            if (found == NULL) {
                return -1;
            }
        }
    } else {
        found = facts = PyObject_CallOneArg(self->creation_facts, coro);
        if (found != NULL && (!PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) != 4)) {
            Py_CLEAR(found);
            PyErr_SetString(PyExc_TypeError, "creation_facts() gives (seek, args, name, internal)");
        }
        if (found == NULL) {
            return -1;
        }
        args = Py_NewRef(PyTuple_GET_ITEM(found, 1));
        qualname = PyTuple_GET_ITEM(found, 2);
    }
    /* taken before any Python code runs: a cache entry may be replaced meanwhile */
    int seek_entry = PyObject_IsTrue(PyTuple_GET_ITEM(facts, 0));
    proxy->internal = Py_NewRef(PyTuple_GET_ITEM(facts, PyTuple_GET_SIZE(facts) - 1));
    proxy->qualname = Py_NewRef(qualname);
    Py_XDECREF(found);
    if (seek_entry < 0) {
        Py_XDECREF(args);
        return -1;
    }
    proxy->seek_entry = (char)seek_entry;
    if (is_coroutine) {
        args = ((PyCodeObject *)code)->co_argcount == 0 ? Py_NewRef(str_empty) : NULL;
#ifdef WALK_INTERPRETER_FRAMES
        if (args == NULL) {
            args = coroutine_args_from_frame(coro, (PyCodeObject *)code);
        }
#endif
        if (args == NULL && !PyErr_Occurred()) {
            args = PyObject_CallOneArg(self->coroutine_args, coro);
        }
    }
    proxy->args = args;
    return args == NULL ? -1 : 0;
}

/* (task, coro, loop) -> the proxy for ``coro``, its ``create`` queued in ``events`` (sent once
   the task exists); None for a loop that is not an event loop (a test's mock). What
   tasks.make_task_class's _record_creation does in Python, called from the Task's __init__. */
static PyObject *
CreationRecorder_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                            PyObject *kwnames)
{
    CreationRecorder *self = (CreationRecorder *)callable;
    if (PyVectorcall_NARGS(nargsf) != 3 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "CreationRecorder takes (task, coro, loop)");
        return NULL;
    }
    PyObject *task = args[0], *coro = args[1];
    long long t = perf_counter_ns() - self->t0;
    int given = PyObject_IsTrue(args[2]);
    if (given < 0) {
        return NULL;
    }
    PyObject *loop = given ? Py_NewRef(args[2]) : PyObject_CallNoArgs(self->get_running_loop);
    if (loop == NULL) {
        return NULL;
    }
    PyObject *known = loop == Py_None ? NULL : cached_state(self, loop); /* borrowed */
    if (loop == Py_None) {
        Py_CLEAR(loop);
    } else if (known == NULL) {
        int is_loop = PyObject_IsInstance(loop, self->loop_class);
        if (is_loop <= 0) {
            Py_DECREF(loop);
            return is_loop < 0 ? NULL : Py_NewRef(Py_None);
        }
    }
    PyObject *task_id = PyIter_Next(self->task_ids);
    PyObject *state = NULL, *proxy = NULL;
    PyObject *result = NULL;
    if (task_id == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "no task ids left");
        }
        goto done;
    }
    if (PyObject_SetAttr(task, str_task_id_attr, task_id) < 0) {
        goto done;
    }
    long long parent_id = NONE_ID;
    if (loop != NULL) {
        state = known != NULL ? Py_NewRef(known) : state_for(self, loop);
        if (state == NULL) {
            goto done;
        }
        if (PyObject_TypeCheck(state, &LoopSlotsType)) {
            /* asyncio's current task of that loop, as the proxy sees it: the task whose step
               runs now (none between steps, or in an unrecorded task's) */
            LoopSlots *slots = (LoopSlots *)state;
            parent_id = slots->step_start ? slots->step_task : NONE_ID;
        } else {
            PyObject *parent_task = PyObject_CallOneArg(self->current_task, loop);
            PyObject *parent = parent_task == NULL || parent_task == Py_None
                                   ? NULL
                                   : PyObject_GetAttr(parent_task, str_task_id_attr);
            Py_XDECREF(parent_task);
            parent_id = parent == NULL ? NONE_ID : PyLong_AsLongLong(parent);
            Py_XDECREF(parent);
            if (PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                    goto done;
                }
                PyErr_Clear();
                parent_id = NONE_ID;
            }
        }
    }
    long long id = PyLong_AsLongLong(task_id);
    if (id == -1 && PyErr_Occurred()) {
        goto done;
    }
    TaskCoroutine *made = (TaskCoroutine *)TaskCoroutineType.tp_alloc(&TaskCoroutineType, 0);
    if (made == NULL) {
        goto done;
    }
    made->coro = Py_NewRef(coro);
    made->state = Py_XNewRef(state);
    made->sent_name = Py_NewRef(Py_None);
    made->created = Py_NewRef(Py_False);
    made->task_id = id;
    made->suspended_at = NONE_ID;
    made->parent_id = parent_id;
    proxy = (PyObject *)made;
    if (set_facts(self, made, coro) < 0) {
        goto done;
    }
#ifdef WALK_INTERPRETER_FRAMES
    made->site = cached_spawn_site(self);
#endif
    if (made->site == NULL) { /* a frame seen for the first time, or no frame layout known */
        made->site = spawn_site_from(self, PyEval_GetFrame()); /* (TaskInit has no frame) */
        if (made->site == NULL) {
            goto done;
        }
    }
    if (buffer_push_create((EventBuffer *)self->events, t, id, task, proxy) == 0) {
        result = Py_NewRef(proxy);
    }
done:
    Py_XDECREF(loop);
    Py_XDECREF(task_id);
    Py_XDECREF(state);
    Py_XDECREF(proxy);
    return result;
}

static PyTypeObject CreationRecorderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loopviz.recorder._native.CreationRecorder",
    .tp_doc = "Records a new task: its id, its proxy, and its create (queued for the writer).",
    .tp_basicsize = sizeof(CreationRecorder),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = CreationRecorder_new,
    .tp_dealloc = (destructor)CreationRecorder_dealloc,
    .tp_traverse = (traverseproc)CreationRecorder_traverse,
    .tp_clear = (inquiry)CreationRecorder_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(CreationRecorder, vectorcall),
};

/* ---------------------------------------------------------------------------------------- */
/* TaskInit: the __init__ of the recording Task subclass (recorder/tasks.py)                */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *record_creation; /* a CreationRecorder */
    PyObject *state_of;        /* LoopInstaller.state_of */
    PyObject *iscoroutine;     /* asyncio.iscoroutine */
    PyObject *trim_traceback;  /* tasks.trim_source_traceback: for debug mode's "created at" */
    PyObject *report_failure;  /* failures.report_recording_failure */
    PyObject *base;            /* the C Task, whose own __init__ makes the task */
} TaskInit;

static PyTypeObject TaskInitType;
static PyObject *str_loop, *str_coro, *str_source_traceback, *str_get_loop, *str_creation_failed;

static PyObject *TaskInit_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                     PyObject *kwnames);

static PyObject *
TaskInit_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"record_creation", "state_of", "iscoroutine", "trim_traceback",
                            "report_failure", "base", NULL};
    PyObject *o[6];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOO!:TaskInit", names, &o[0], &o[1],
                                     &o[2], &o[3], &o[4], &PyType_Type, &o[5])) {
        return NULL;
    }
    if (((PyTypeObject *)o[5])->tp_init == NULL) {
        PyErr_SetString(PyExc_TypeError, "TaskInit's base has no __init__");
        return NULL;
    }
    TaskInit *self = (TaskInit *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    PyObject **fields[] = {&self->record_creation, &self->state_of,       &self->iscoroutine,
                           &self->trim_traceback,  &self->report_failure, &self->base};
    for (int i = 0; i < 6; i++) {
        *fields[i] = Py_NewRef(o[i]);
    }
    self->vectorcall = TaskInit_vectorcall;
    return (PyObject *)self;
}

static int
TaskInit_traverse(TaskInit *self, visitproc visit, void *arg)
{
    Py_VISIT(self->record_creation);
    Py_VISIT(self->state_of);
    Py_VISIT(self->iscoroutine);
    Py_VISIT(self->trim_traceback);
    Py_VISIT(self->report_failure);
    Py_VISIT(self->base);
    return 0;
}

static int
TaskInit_clear(TaskInit *self)
{
    Py_CLEAR(self->record_creation);
    Py_CLEAR(self->state_of);
    Py_CLEAR(self->iscoroutine);
    Py_CLEAR(self->trim_traceback);
    Py_CLEAR(self->report_failure);
    Py_CLEAR(self->base);
    return 0;
}

static void
TaskInit_dealloc(TaskInit *self)
{
    PyObject_GC_UnTrack(self);
    TaskInit_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* As an attribute of the class, it is the function; of a task, a method bound to it. */
static PyObject *
TaskInit_get(PyObject *self, PyObject *obj, PyObject *Py_UNUSED(type))
{
    return obj == NULL || obj == Py_None ? Py_NewRef(self) : PyMethod_New(self, obj);
}

/* The recording failed (the error is set): reported once, in one line (failures.py), and the
   task goes on unrecorded. Anything but an Exception (a KeyboardInterrupt) goes on up: 0, else
   -1 with it set. */
static int
creation_failed(TaskInit *init)
{
    if (!PyErr_ExceptionMatches(PyExc_Exception)) {
        return -1;
    }
    PyObject *error = PyErr_GetRaisedException();
    PyObject *reported = PyObject_CallFunctionObjArgs(init->report_failure, str_creation_failed,
                                                      error, NULL);
    Py_DECREF(error);
    if (reported == NULL) {
        PyErr_WriteUnraisable(init->report_failure);
    }
    Py_XDECREF(reported);
    return 0;
}

/* The C Task's own __init__(task, [first,] *rest, **kwargs), as ``super().__init__`` calls it,
   with the keyword argument at ``skip`` left out (-1: none). */
static int
base_init(TaskInit *init, PyObject *task, PyObject *first, PyObject *const *rest,
          Py_ssize_t nrest, PyObject *kwnames, PyObject *const *kwvalues, Py_ssize_t skip)
{
    Py_ssize_t n = (first != NULL) + nrest;
    PyObject *args = PyTuple_New(n);
    if (args == NULL) {
        return -1;
    }
    if (first != NULL) {
        PyTuple_SET_ITEM(args, 0, Py_NewRef(first));
    }
    for (Py_ssize_t i = 0; i < nrest; i++) {
        PyTuple_SET_ITEM(args, (first != NULL) + i, Py_NewRef(rest[i]));
    }
    PyObject *kwargs = NULL;
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nkw; i++) {
        if (i == skip) {
            continue;
        }
        if ((kwargs == NULL && (kwargs = PyDict_New()) == NULL) ||
            PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), kwvalues[i]) < 0) {
            Py_DECREF(args);
            Py_XDECREF(kwargs);
            return -1;
        }
    }
    int status = ((PyTypeObject *)init->base)->tp_init(task, args, kwargs);
    Py_DECREF(args);
    Py_XDECREF(kwargs);
    return status;
}

/* The proxy's task is made: its loop's state if it was made before its loop ran, debug mode's
   "created at" trimmed to the program's line, and its create sent. */
static int
finish_creation(TaskInit *init, PyObject *task, TaskCoroutine *proxy)
{
    if (proxy->state == NULL) {
        PyObject *loop = PyObject_CallMethodNoArgs(task, str_get_loop);
        PyObject *state = loop == NULL ? NULL : PyObject_CallOneArg(init->state_of, loop);
        Py_XDECREF(loop);
        if (state == NULL) {
            return -1;
        }
        if (!PyObject_TypeCheck(state, &LoopSlotsType)) {
            Py_DECREF(state);
            PyErr_SetString(PyExc_TypeError, "state_of() gives a LoopState");
            return -1;
        }
        Py_XSETREF(proxy->state, state);
    }
    PyObject *trace = PyObject_GetAttr(task, str_source_traceback);
    if (trace == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        trace = Py_NewRef(Py_None);
    }
    if (trace == NULL) {
        return -1;
    }
    int trimmed = 0;
    if (trace != Py_None) {
        PyObject *done = PyObject_CallOneArg(init->trim_traceback, trace);
        trimmed = done == NULL ? -1 : 0;
        Py_XDECREF(done);
    }
    Py_DECREF(trace);
    if (trimmed < 0) {
        return -1;
    }
    Py_SETREF(proxy->created, Py_NewRef(Py_True));
    return 0;
}

/* __init__(task, coro, *args, **kwargs): wraps ``coro`` in the recording proxy before the C
   Task's own __init__ runs (an eager first step included), as tasks.make_task_class says. */
static PyObject *
TaskInit_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    TaskInit *init = (TaskInit *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
    if (nargs < 1) {
        PyErr_SetString(PyExc_TypeError, "Task.__init__ needs the task");
        return NULL;
    }
    PyObject *task = args[0];
    if (!PyObject_TypeCheck(task, (PyTypeObject *)init->base)) { /* as super().__init__ says */
        PyErr_Format(PyExc_TypeError,
                     "descriptor '__init__' requires a '%s' object but received a '%s'",
                     ((PyTypeObject *)init->base)->tp_name, Py_TYPE(task)->tp_name);
        return NULL;
    }
    PyObject *const *kwvalues = args + nargs;
    PyObject *coro = nargs >= 2 ? args[1] : NULL, *loop = Py_None;
    Py_ssize_t coro_at = -1; /* `coro` passed by name: passed first, by position, here */
    for (Py_ssize_t i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (coro == NULL && (name == str_coro || PyUnicode_Compare(name, str_coro) == 0)) {
            coro = kwvalues[i];
            coro_at = i;
        } else if (name == str_loop || PyUnicode_Compare(name, str_loop) == 0) {
            loop = kwvalues[i];
        }
    }
    if (coro == NULL) { /* no coroutine: the C Task says what is wrong */
        return base_init(init, task, NULL, args + 1, nargs - 1, kwnames, kwvalues, -1) < 0
                   ? NULL
                   : Py_NewRef(Py_None);
    }
    PyObject *const *rest = args + (nargs >= 2 ? 2 : 1);
    Py_ssize_t nrest = nargs >= 2 ? nargs - 2 : nargs - 1;
    PyObject *proxy = NULL;
    int wrap = Py_IS_TYPE(coro, &PyCoro_Type);
    if (!wrap && !Py_IS_TYPE(coro, &TaskCoroutineType)) {
        PyObject *is_coro = PyObject_CallOneArg(init->iscoroutine, coro);
        wrap = is_coro == NULL ? -1 : PyObject_IsTrue(is_coro);
        Py_XDECREF(is_coro);
    }
    if (wrap > 0) {
        PyObject *made[3] = {task, coro, loop};
        proxy = PyObject_Vectorcall(init->record_creation, made, 3, NULL);
        wrap = proxy == NULL ? -1 : 1;
    }
    if (wrap < 0 && creation_failed(init) < 0) {
        return NULL;
    }
    if (proxy == NULL || proxy == Py_None || !Py_IS_TYPE(proxy, &TaskCoroutineType)) {
        /* asyncio's own error for a non-coroutine; a proxy never twice */
        Py_XDECREF(proxy);
        return base_init(init, task, coro, rest, nrest, kwnames, kwvalues, coro_at) < 0
                   ? NULL
                   : Py_NewRef(Py_None);
    }
    TaskCoroutine *made = (TaskCoroutine *)proxy;
    if (base_init(init, task, proxy, rest, nrest, kwnames, kwvalues, coro_at) < 0) {
        /* no task after all: its create is dropped, and the coroutine is the program's to warn
           about, as plainly */
        Py_SETREF(made->created, Py_NewRef(Py_None));
        Py_CLEAR(made->coro);
        Py_DECREF(proxy);
        return NULL;
    }
    if (finish_creation(init, task, made) < 0) {
        Py_SETREF(made->created, Py_NewRef(Py_None));
        if (creation_failed(init) < 0) {
            Py_DECREF(proxy);
            return NULL;
        }
    }
    Py_DECREF(proxy);
    Py_RETURN_NONE;
}

static PyTypeObject TaskInitType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loopviz.recorder._native.TaskInit",
    .tp_doc = "The recording Task's __init__: the task's coroutine wrapped in the proxy.",
    .tp_basicsize = sizeof(TaskInit),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_new = TaskInit_new,
    .tp_dealloc = (destructor)TaskInit_dealloc,
    .tp_traverse = (traverseproc)TaskInit_traverse,
    .tp_clear = (inquiry)TaskInit_clear,
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = TaskInit_get,
    .tp_vectorcall_offset = offsetof(TaskInit, vectorcall),
};

/* ---------------------------------------------------------------------------------------- */
/* The module                                                                               */

static PyObject *
configure(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"record_suspend", "record_return", "record_raise", "record_block",
                            "wakeup",         "encode",        "asyncio",      "asyncio_dir",
                            NULL};
    PyObject *hooks[8];
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOOO!U:configure", names, &hooks[0],
                                     &hooks[1], &hooks[2], &hooks[3], &hooks[4], &hooks[5],
                                     &PyModule_Type, &hooks[6], &hooks[7])) {
        return NULL;
    }
    PyObject *found_current_task = PyObject_GetAttrString(hooks[6], "current_task");
    if (found_current_task == NULL) {
        return NULL;
    }
    Py_XSETREF(current_task, found_current_task);
    Py_XSETREF(asyncio_module, Py_NewRef(hooks[6]));
    Py_XSETREF(asyncio_dir, Py_NewRef(hooks[7]));
    Py_XSETREF(record_suspend_hook, Py_NewRef(hooks[0]));
    Py_XSETREF(record_return_hook, Py_NewRef(hooks[1]));
    Py_XSETREF(record_raise_hook, Py_NewRef(hooks[2]));
    Py_XSETREF(record_block_hook, Py_NewRef(hooks[3]));
    Py_XSETREF(wakeup_hook, Py_NewRef(hooks[4]));
    Py_XSETREF(fallback_encode, Py_NewRef(hooks[5]));
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "configure(record_suspend, record_return, record_raise, record_block, wakeup, encode, "
     "asyncio, asyncio_dir): the Python code that records what C leaves to it, the asyncio "
     "module and its folder."},
    {NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "loopviz.recorder._native",
    .m_doc = "The native recorder core: the task proxy, the event buffer and the wake-up hook.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    str_woken = PyUnicode_InternFromString("woken");
    str_task_id_attr = PyUnicode_InternFromString("_loopviz_task_id");
    str_throw = PyUnicode_InternFromString("throw");
    str_get_name = PyUnicode_InternFromString("get_name");
    str_loop_id = PyUnicode_InternFromString("loop_id");
    str_get_coro = PyUnicode_InternFromString("get_coro");
    str_loop_ref = PyUnicode_InternFromString("loop_ref");
    str_qualname = PyUnicode_InternFromString("__qualname__");
    str_Task = PyUnicode_InternFromString("Task");
    str_children = PyUnicode_InternFromString("_children");
    str_empty = PyUnicode_InternFromString("");
    str_cr_code = PyUnicode_InternFromString("cr_code");
    str_cr_frame = PyUnicode_InternFromString("cr_frame");
    str_cr_await = PyUnicode_InternFromString("cr_await");
    str_gi_code = PyUnicode_InternFromString("gi_code");
    str_gi_frame = PyUnicode_InternFromString("gi_frame");
    str_gi_yieldfrom = PyUnicode_InternFromString("gi_yieldfrom");
    str_ag_code = PyUnicode_InternFromString("ag_code");
    str_ag_frame = PyUnicode_InternFromString("ag_frame");
    str_ag_await = PyUnicode_InternFromString("ag_await");
    str_loop = PyUnicode_InternFromString("loop");
    str_when = PyUnicode_InternFromString("when");
    str_coro = PyUnicode_InternFromString("coro");
    str_source_traceback = PyUnicode_InternFromString("_source_traceback");
    str_get_loop = PyUnicode_InternFromString("get_loop");
    str_creation_failed = PyUnicode_InternFromString("a task's creation");
    if (str_loop == NULL || str_when == NULL || str_coro == NULL || str_source_traceback == NULL ||
        str_get_loop == NULL || str_creation_failed == NULL ||str_woken == NULL || str_task_id_attr == NULL || str_throw == NULL ||
        str_get_name == NULL || str_get_coro == NULL || str_loop_ref == NULL || str_qualname == NULL || str_Task == NULL || str_children == NULL || str_empty == NULL || str_cr_code == NULL ||
        str_cr_frame == NULL || str_cr_await == NULL || str_gi_code == NULL ||
        str_gi_frame == NULL || str_gi_yieldfrom == NULL || str_ag_code == NULL ||
        str_ag_frame == NULL || str_ag_await == NULL) {
        return NULL;
    }
    PyTypeObject *types[] = {&EventBufferType,      &LoopSlotsType, &TaskCoroutineType,
                             &WakeupHookType,       &CreationRecorderType, &TaskInitType};
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(module, "VERSION", NATIVE_VERSION) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (PyType_Ready(types[i]) < 0 || PyModule_AddType(module, types[i]) < 0) {
            Py_DECREF(module);
            return NULL;
        }
    }
    return module;
}
