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
#define NATIVE_VERSION 4

/* Wire kind codes (loopviz/wire.py LAYOUTS). */
#define KIND_RESUME 4
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

static inline int64_t
perf_counter_ns(void)
{
#if PY_VERSION_HEX >= 0x030D0000
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
static PyObject *str_gi_code, *str_gi_frame, *str_gi_yieldfrom;
static PyObject *str_ag_code, *str_ag_frame, *str_ag_await;

/* ---------------------------------------------------------------------------------------- */
/* EventBuffer                                                                              */

typedef struct {
    int32_t kind;
    int32_t unused;
    int64_t t;
    int64_t task;
    PyObject *tuple; /* KIND_TUPLE: the event's items; KIND_CREATE: (parent, where, args,
                        coroutine, internal, task, proxy) */
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
    self->items += items;
    return 0;
}

/* Queue a task's create (stolen: `fields`, the KIND_CREATE tuple), sent once the task is made
   (its proxy's `created` is True): it is named then, as Task.__init__ named it. */
static int
buffer_push_create(EventBuffer *self, int64_t t, int64_t task, PyObject *fields)
{
    if (buffer_push(self, KIND_CREATE, t, task, CREATE_ITEMS) < 0) {
        Py_DECREF(fields);
        return -1;
    }
    self->records[self->count - 1].tuple = fields;
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
    }
}

static int
EventBuffer_traverse(EventBuffer *self, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < self->count; i++) {
        Py_VISIT(self->records[i].tuple);
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

static int
encode_int(EventBuffer *self, int64_t value)
{
    if (out_reserve(self, 9) < 0) {
        return -1;
    }
    char *at = self->out + self->out_len;
    if (value >= 0) {
        if (value < 128) {
            at[0] = (char)value;
            self->out_len += 1;
        } else if (value <= 0xff) {
            at[0] = (char)0xcc;
            put_be(at + 1, (uint64_t)value, 1);
            self->out_len += 2;
        } else if (value <= 0xffff) {
            at[0] = (char)0xcd;
            put_be(at + 1, (uint64_t)value, 2);
            self->out_len += 3;
        } else if (value <= 0xffffffffLL) {
            at[0] = (char)0xce;
            put_be(at + 1, (uint64_t)value, 4);
            self->out_len += 5;
        } else {
            at[0] = (char)0xcf;
            put_be(at + 1, (uint64_t)value, 8);
            self->out_len += 9;
        }
    } else if (value >= -32) {
        at[0] = (char)(int8_t)value;
        self->out_len += 1;
    } else if (value >= -128) {
        at[0] = (char)0xd0;
        put_be(at + 1, (uint64_t)value, 1);
        self->out_len += 2;
    } else if (value >= -32768) {
        at[0] = (char)0xd1;
        put_be(at + 1, (uint64_t)value, 2);
        self->out_len += 3;
    } else if (value >= -2147483648LL) {
        at[0] = (char)0xd2;
        put_be(at + 1, (uint64_t)value, 4);
        self->out_len += 5;
    } else {
        at[0] = (char)0xd3;
        put_be(at + 1, (uint64_t)value, 8);
        self->out_len += 9;
    }
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
    case KIND_READY:
        self->sent_items += 4;
        if (encode_int(self, KIND_READY) < 0 || encode_int(self, record->t) < 0 ||
            encode_int(self, record->task) < 0) {
            return -1;
        }
        return encode_str(self, "woken", 5);
    case KIND_DONE:
        self->sent_items += 5;
        if (encode_int(self, KIND_DONE) < 0 || encode_int(self, record->t) < 0 ||
            encode_int(self, record->task) < 0 || encode_str(self, "returned", 8) < 0) {
            return -1;
        }
        return encode_str(self, "None", 4);
    default: /* RESUME, YIELD: kind, t, task */
        self->sent_items += 3;
        if (encode_int(self, record->kind) < 0 || encode_int(self, record->t) < 0) {
            return -1;
        }
        return encode_int(self, record->task);
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
    PyObject *wait_memo;       /* wait_handlers' entries by code address (see memo_get) */
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
    Py_VISIT(self->wait_memo);
    return 0;
}

static int
LoopSlots_clear(LoopSlots *self)
{
    Py_CLEAR(self->events);
    Py_CLEAR(self->timeouts);
    Py_CLEAR(self->handed_back);
    Py_CLEAR(self->wait_handlers);
    Py_CLEAR(self->wait_memo);
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
} TaskCoroutine;

static PyTypeObject TaskCoroutineType;

/* A queued create: sent, with the task's name now, if its task was made; kept for the next frame
   if Task.__init__ still runs (in another thread); dropped if it failed (no task after all). */
static int
encode_create(EventBuffer *self, Record *record)
{
    PyObject *fields = record->tuple;
    TaskCoroutine *proxy = (TaskCoroutine *)PyTuple_GET_ITEM(fields, 6);
    if (proxy->created == Py_False) {
        if (buffer_push(self, KIND_CREATE, record->t, record->task, CREATE_ITEMS) < 0) {
            return -1;
        }
        self->records[self->count - 1].tuple = fields; /* moved to the program's array */
        record->tuple = NULL;
        return 0;
    }
    if (proxy->created != Py_True) {
        return 0;
    }
    PyObject *name = PyObject_CallMethodNoArgs(PyTuple_GET_ITEM(fields, 5), str_get_name);
    if (name == NULL) {
        return -1;
    }
    Py_XSETREF(proxy->sent_name, Py_NewRef(name));
    PyObject *loop_id = proxy->state == NULL ? PyLong_FromLong(0)
                                             : PyObject_GetAttr(proxy->state, str_loop_id);
    int failed = loop_id == NULL || encode_int(self, KIND_CREATE) < 0 ||
                 encode_int(self, record->t) < 0 || encode_int(self, record->task) < 0 ||
                 encode_object(self, name) < 0 ||
                 encode_object(self, PyTuple_GET_ITEM(fields, 3)) < 0 ||     /* coroutine */
                 encode_object(self, PyTuple_GET_ITEM(fields, 0)) < 0 ||     /* parent */
                 encode_object(self, PyTuple_GET_ITEM(fields, 1)) < 0 ||     /* where */
                 encode_object(self, PyTuple_GET_ITEM(fields, 4)) < 0 ||     /* internal */
                 encode_object(self, loop_id) < 0 ||
                 encode_object(self, PyTuple_GET_ITEM(fields, 2)) < 0;       /* args */
    Py_DECREF(name);
    Py_XDECREF(loop_id);
    self->sent_items += CREATE_ITEMS;
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
    return 0;
}

static int
TaskCoroutine_clear(TaskCoroutine *self)
{
    Py_CLEAR(self->coro);
    Py_CLEAR(self->state);
    Py_CLEAR(self->sent_name);
    Py_CLEAR(self->created);
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

/* -- caches keyed by a code object's address ------------------------------------------------ */

/* A code object's hash is computed anew at each dict lookup (3.11 to 3.13: its name, its
   constants...), about 150 ns, and the hot paths look up several per step. These caches key on
   its address instead: {address: (code, value)}, the code held, so that its address is never
   another object's while the entry lives. */

/* The value kept for ``code`` (borrowed), or NULL (an error set only if the lookup failed). */
static PyObject *
memo_get(PyObject *memo, PyObject *code)
{
    PyObject *key = PyLong_FromVoidPtr(code);
    if (key == NULL) {
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(memo, key);
    Py_DECREF(key);
    return entry == NULL ? NULL : PyTuple_GET_ITEM(entry, 1);
}

static int
memo_put(PyObject *memo, PyObject *code, PyObject *value)
{
    PyObject *key = PyLong_FromVoidPtr(code);
    PyObject *entry = key == NULL ? NULL : PyTuple_Pack(2, code, value);
    int failed = entry == NULL || PyDict_SetItem(memo, key, entry) < 0;
    Py_XDECREF(key);
    Py_XDECREF(entry);
    return failed ? -1 : 0;
}

/* -- the fast path of wait naming ---------------------------------------------------------- */

/* The code, frame and awaited object of one link of an await chain (new references), 0; or 1
   for a link the fast path leaves to Python (an opaque awaitable, a compiled coroutine). At
   the end of the chain (a future, or an awaitable of the program's), *code is NULL. */
static int
chain_link(PyObject *node, PyObject **code, PyObject **frame, PyObject **awaited)
{
    PyObject *code_name, *frame_name, *awaited_name;
    *code = *frame = *awaited = NULL;
    if (PyCoro_CheckExact(node)) {
        code_name = str_cr_code, frame_name = str_cr_frame, awaited_name = str_cr_await;
    } else if (PyGen_CheckExact(node)) {
        code_name = str_gi_code, frame_name = str_gi_frame, awaited_name = str_gi_yieldfrom;
    } else if (PyAsyncGen_CheckExact(node)) {
        code_name = str_ag_code, frame_name = str_ag_frame, awaited_name = str_ag_await;
    } else if (strncmp(Py_TYPE(node)->tp_name, "async_generator_", 16) == 0 ||
               strcmp(Py_TYPE(node)->tp_name, "coroutine_wrapper") == 0 ||
               PyObject_HasAttr((PyObject *)Py_TYPE(node), str_cr_await)) {
        return 1; /* opaque awaitables and compiled coroutines: followed by waits.py */
    } else {
        return 0; /* a future, or an awaitable of the program's: never asked */
    }
    *code = PyObject_GetAttr(node, code_name);
    *frame = *code == NULL ? NULL : PyObject_GetAttr(node, frame_name);
    *awaited = *frame == NULL ? NULL : PyObject_GetAttr(node, awaited_name);
    if (*awaited == NULL) {
        Py_CLEAR(*code);
        Py_CLEAR(*frame);
        return -1;
    }
    if (*code == Py_None || *frame == Py_None) {
        Py_CLEAR(*code);
        Py_CLEAR(*frame);
        Py_CLEAR(*awaited);
    }
    return 0;
}

/* What a task that is not a known primitive's waits on, for the two common futures: a task and
   a gather (waits.WaitNamer._describe_future). NULL without an error: not one of those. */
static PyObject *
future_wait(PyObject *yielded, PyObject *where)
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
        PyObject *wait = target == NULL ? NULL
                                        : Py_BuildValue("(sOiiOO)", "task", label, NONE_ID,
                                                        NONE_ID, target, where);
        Py_XDECREF(label);
        Py_XDECREF(target);
        return wait;
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
    PyObject *wait = label == NULL ? NULL
                                   : Py_BuildValue("(sOiiOO)", "gather", label, NONE_ID, NONE_ID,
                                                   ids, where);
    Py_XDECREF(label);
    Py_XDECREF(ids);
    return wait;
}

/* wait_handlers[code] (borrowed), or NULL: waits.py never sets an entry twice, so each is
   kept in state->wait_memo once seen. */
static PyObject *
wait_handler(LoopSlots *state, PyObject *code)
{
    if (state->wait_memo == NULL && (state->wait_memo = PyDict_New()) == NULL) {
        return NULL;
    }
    PyObject *handler = memo_get(state->wait_memo, code);
    if (handler != NULL || PyErr_Occurred()) {
        return handler;
    }
    handler = PyDict_GetItemWithError(state->wait_handlers, code);
    if (handler != NULL && memo_put(state->wait_memo, code, handler) < 0) {
        return NULL;
    }
    return handler;
}

/* What the suspended task waits on, as waits.WaitNamer.describe says it, for the common cases:
   an await chain of coroutines and generators through asyncio and the program's own code, down
   to a known primitive (its handler, in Python, names it from its frame), a task or a gather.
   Returns the (kind, label, obj, deadline, ref, where) tuple, or NULL (and no error) for
   anything else: a library's code on the way, an opaque awaitable, a wait for an executor's
   future, a code object seen for the first time. Those go to Python. */
static PyObject *
fast_wait(LoopSlots *state, TaskCoroutine *self, PyObject *yielded)
{
    PyObject *handlers = state->wait_handlers;
    if (handlers == NULL || !PyDict_CheckExact(handlers) || asyncio_module == NULL) {
        return NULL;
    }
    PyObject *node = Py_NewRef(self->coro);
    PyObject *known = NULL, *known_frame = NULL; /* the outermost known primitive */
    PyObject *user_file = NULL, *user_frame = NULL; /* the innermost user frame */
    int give_up = 0;
    while (!give_up) {
        PyObject *code, *frame, *awaited;
        int status = chain_link(node, &code, &frame, &awaited);
        Py_DECREF(node);
        node = NULL;
        if (status != 0 || code == NULL) {
            give_up = status != 0;
            break;
        }
        PyObject *handler = wait_handler(state, code); /* borrowed */
        if (handler == NULL) { /* first seen: waits.py decides what it is, and caches it */
            give_up = 1;
        } else if (PyUnicode_CheckExact(handler)) {
            if (PyUnicode_GET_LENGTH(handler) > 0) {
                Py_XSETREF(user_file, Py_NewRef(handler));
                Py_XSETREF(user_frame, Py_NewRef(frame));
            } else if (!PyUnicode_Tailmatch(((PyCodeObject *)code)->co_filename, asyncio_dir, 0,
                                            PyUnicode_GET_LENGTH(asyncio_dir), -1)) {
                give_up = 1; /* a library's code: its own line and label, in waits.py */
            }
        } else if (known == NULL) {
            known = Py_NewRef(handler);
            known_frame = Py_NewRef(frame);
        }
        Py_DECREF(code);
        Py_DECREF(frame);
        if (awaited == Py_None) {
            Py_DECREF(awaited);
            break;
        }
        node = awaited;
    }
    Py_XDECREF(node);
    PyObject *wait = NULL;
    if (!give_up && !PyErr_Occurred()) {
        PyObject *where = user_file == NULL ? Py_NewRef(str_empty)
                                            : PyUnicode_FromFormat(
                                                  "%U:%d", user_file,
                                                  PyFrame_GetLineNumber((PyFrameObject *)user_frame));
        if (where != NULL && known != NULL) {
            PyObject *args[2] = {known_frame, yielded};
            PyObject *named = PyObject_Vectorcall(known, args, 2, NULL);
            if (named != NULL && PyTuple_CheckExact(named) && PyTuple_GET_SIZE(named) == 5) {
                wait = Py_BuildValue("(OOOOOO)", PyTuple_GET_ITEM(named, 0),
                                     PyTuple_GET_ITEM(named, 1), PyTuple_GET_ITEM(named, 2),
                                     PyTuple_GET_ITEM(named, 3), PyTuple_GET_ITEM(named, 4),
                                     where);
            }
            Py_XDECREF(named);
        } else if (where != NULL) {
            wait = future_wait(yielded, where);
        }
        Py_XDECREF(where);
    }
    Py_XDECREF(known);
    Py_XDECREF(known_frame);
    Py_XDECREF(user_file);
    Py_XDECREF(user_frame);
    if (wait == NULL) {
        PyErr_Clear(); /* Python tries again, and reports what fails there */
    }
    return wait;
}

/* The ``suspend`` of a step that yielded ``yielded``: named in C when fast_wait can, and
   without a timeout or an entry to look for; else by proxy.record_suspend. */
static void
record_suspend(TaskCoroutine *self, LoopSlots *state, PyObject *yielded, long long end)
{
    int plain = !self->seek_entry && state->timeouts != NULL &&
                PyDict_CheckExact(state->timeouts) && PyDict_GET_SIZE(state->timeouts) == 0;
    PyObject *wait = plain && yielded != Py_None ? fast_wait(state, self, yielded) : NULL;
    if (wait == NULL) {
        call_hook4(record_suspend_hook, (PyObject *)self, (PyObject *)state, yielded, end);
        return;
    }
    PyObject *event = Py_BuildValue("(iLLOOOOOOi)", 5, end, self->task_id,
                                    PyTuple_GET_ITEM(wait, 0), PyTuple_GET_ITEM(wait, 1),
                                    PyTuple_GET_ITEM(wait, 2), PyTuple_GET_ITEM(wait, 3),
                                    PyTuple_GET_ITEM(wait, 4), PyTuple_GET_ITEM(wait, 5), NONE_ID);
    Py_DECREF(wait);
    PyObject *done = event == NULL ? NULL : EventBuffer_extend((EventBuffer *)state->events, event);
    Py_XDECREF(event);
    if (done == NULL) {
        PyErr_WriteUnraisable((PyObject *)self);
    }
    Py_XDECREF(done);
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
    PyObject *facts;            /* code -> code_facts(code), by address (memo_get) */
    PyObject *frames;           /* code -> None inside asyncio or loopviz, else {lasti: site} */
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
    self->facts = PyDict_New();
    self->frames = PyDict_New();
    if (self->facts == NULL || self->frames == NULL) {
        Py_DECREF(self);
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
    Py_VISIT(self->facts);
    Py_VISIT(self->frames);
    Py_VISIT(self->last_state);
    return 0;
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
    Py_CLEAR(self->facts);
    Py_CLEAR(self->frames);
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

/* The site of the first frame outside asyncio and loopviz from ``frame`` out (new reference),
   as tasks.spawn_site finds it, from its caches kept by code address here. A frame not in
   them is left to tasks.spawn_site, which fills them. */
static PyObject *
spawn_site_from(CreationRecorder *self, PyFrameObject *frame)
{
    Py_XINCREF(frame);
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        PyObject *lines = memo_get(self->frames, (PyObject *)code); /* borrowed */
        if (lines == NULL && !PyErr_Occurred()) {
            PyObject *outside = PyDict_GetItemWithError(self->outside, (PyObject *)code);
            if (outside == Py_True || outside == Py_False) {
                PyObject *made = outside == Py_True ? PyDict_New() : Py_NewRef(Py_None);
                if (made != NULL && memo_put(self->frames, (PyObject *)code, made) == 0) {
                    lines = made; /* the memo holds it now */
                }
                Py_XDECREF(made);
            }
        }
        Py_DECREF(code);
        PyObject *site = NULL;
        PyObject *line = NULL;
        if (lines != NULL && lines != Py_None) {
            line = PyLong_FromLong(PyFrame_GetLasti(frame));
            site = line == NULL ? NULL : PyDict_GetItemWithError(lines, line);
            if (site != NULL) {
                Py_DECREF(line);
                Py_DECREF(frame);
                return Py_NewRef(site);
            }
        }
        if (lines != Py_None) { /* not seen yet, or an error: Python sees to it */
            PyErr_Clear();
            site = PyObject_CallOneArg(self->spawn_site, (PyObject *)frame);
            if (site != NULL && line != NULL && PyDict_SetItem(lines, line, site) < 0) {
                Py_CLEAR(site);
            }
            Py_XDECREF(line);
            Py_DECREF(frame);
            return site;
        }
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    return Py_NewRef(str_empty);
}

#ifdef WALK_INTERPRETER_FRAMES
/* spawn_site_from(the caller of the Task's __init__), from the caches alone, reading the
   interpreter's frames: a new reference, or NULL (no error) when a frame is not in them. */
static PyObject *
cached_spawn_site(CreationRecorder *self)
{
    PyThreadState *tstate = PyThreadState_Get();
#if PY_VERSION_HEX >= 0x030D0000
    _PyInterpreterFrame *frame = tstate->current_frame;
#else
    _PyInterpreterFrame *frame = tstate->cframe != NULL ? tstate->cframe->current_frame : NULL;
#endif
    int skipped_init = 0;
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
        if (!skipped_init) { /* the innermost: the Task's __init__, which called us */
            skipped_init = 1;
            continue;
        }
        PyObject *lines = memo_get(self->frames, code); /* borrowed */
        if (lines == NULL) {
            PyErr_Clear();
            return NULL;
        }
        if (lines == Py_None) {
            continue;
        }
        PyObject *lasti = PyLong_FromLong(_PyInterpreterFrame_LASTI(frame) *
                                          (long)sizeof(_Py_CODEUNIT));
        PyObject *site = lasti == NULL ? NULL : PyDict_GetItemWithError(lines, lasti);
        Py_XDECREF(lasti);
        PyErr_Clear();
        return Py_XNewRef(site);
    }
    return Py_NewRef(str_empty);
}
#endif

/* (seek_entry, args, qualname, internal) of ``coro`` (new reference): for a coroutine, from
   its code object's cached facts; for anything else, from tasks.creation_facts. */
static PyObject *
facts_of(CreationRecorder *self, PyObject *coro)
{
    if (!PyCoro_CheckExact(coro)) {
        return PyObject_CallOneArg(self->creation_facts, coro);
    }
    PyObject *code = PyObject_GetAttr(coro, str_cr_code);
    PyObject *name = code == NULL ? NULL : PyObject_GetAttr(coro, str_qualname);
    if (name == NULL || !PyUnicode_CheckExact(name) || PyUnicode_GET_LENGTH(name) == 0 ||
        !PyCode_Check(code)) {
        Py_XDECREF(code);
        Py_XDECREF(name);
        PyErr_Clear();
        return PyObject_CallOneArg(self->creation_facts, coro);
    }
    PyObject *facts = memo_get(self->facts, code); /* borrowed */
    if (facts == NULL && !PyErr_Occurred()) {
        PyObject *found = PyObject_CallOneArg(self->code_facts, code);
        if (found != NULL && (!PyTuple_CheckExact(found) || PyTuple_GET_SIZE(found) != 2)) {
            Py_CLEAR(found);
            PyErr_SetString(PyExc_TypeError, "code_facts() gives (seek_entry, internal)");
        }
        if (found != NULL && memo_put(self->facts, code, found) == 0) {
            facts = found; /* the dict holds it now */
        }
        Py_XDECREF(found);
    }
    PyObject *args = NULL;
    if (facts != NULL) {
        args = ((PyCodeObject *)code)->co_argcount == 0
                   ? Py_NewRef(str_empty)
                   : PyObject_CallOneArg(self->coroutine_args, coro);
    }
    PyObject *result = args == NULL ? NULL
                                    : PyTuple_Pack(4, PyTuple_GET_ITEM(facts, 0), args, name,
                                                   PyTuple_GET_ITEM(facts, 1));
    Py_XDECREF(args);
    Py_DECREF(code);
    Py_DECREF(name);
    return result;
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
    PyObject *state = NULL, *parent = NULL, *proxy = NULL, *site = NULL, *facts = NULL;
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
    if (loop != NULL) {
        state = known != NULL ? Py_NewRef(known) : state_for(self, loop);
        PyObject *parent_task = state == NULL ? NULL : PyObject_CallOneArg(self->current_task, loop);
        if (parent_task == NULL) {
            goto done;
        }
        parent = parent_task == Py_None ? NULL : PyObject_GetAttr(parent_task, str_task_id_attr);
        Py_DECREF(parent_task);
        if (parent == NULL) {
            if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_AttributeError)) {
                goto done;
            }
            PyErr_Clear();
        }
    }
    if (parent == NULL) {
        parent = PyLong_FromLong(NONE_ID);
        if (parent == NULL) {
            goto done;
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
    proxy = (PyObject *)made;
    facts = facts_of(self, coro);
    if (facts == NULL) {
        goto done;
    }
    if (!PyTuple_CheckExact(facts) || PyTuple_GET_SIZE(facts) != 4) {
        PyErr_SetString(PyExc_TypeError, "creation_facts() gives (seek, args, name, internal)");
        goto done;
    }
    int seek = PyObject_IsTrue(PyTuple_GET_ITEM(facts, 0));
    if (seek < 0) {
        goto done;
    }
    made->seek_entry = (char)seek;
#ifdef WALK_INTERPRETER_FRAMES
    site = cached_spawn_site(self);
#endif
    if (site == NULL) { /* a frame seen for the first time, or no frame layout known */
        PyFrameObject *frame = PyEval_GetFrame(); /* borrowed: the Task's __init__ */
        PyFrameObject *caller = frame == NULL ? NULL : PyFrame_GetBack(frame);
        site = spawn_site_from(self, caller);
        Py_XDECREF(caller);
        if (site == NULL) {
            goto done;
        }
    }
    PyObject *fields = PyTuple_Pack(7, parent, site, PyTuple_GET_ITEM(facts, 1),
                                    PyTuple_GET_ITEM(facts, 2), PyTuple_GET_ITEM(facts, 3), task,
                                    proxy);
    if (fields != NULL && buffer_push_create((EventBuffer *)self->events, t, id, fields) == 0) {
        result = Py_NewRef(proxy);
    }
done:
    Py_XDECREF(loop);
    Py_XDECREF(task_id);
    Py_XDECREF(state);
    Py_XDECREF(parent);
    Py_XDECREF(proxy);
    Py_XDECREF(site);
    Py_XDECREF(facts);
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
    if (str_woken == NULL || str_task_id_attr == NULL || str_throw == NULL ||
        str_get_name == NULL || str_get_coro == NULL || str_loop_ref == NULL || str_qualname == NULL || str_Task == NULL || str_children == NULL || str_empty == NULL || str_cr_code == NULL ||
        str_cr_frame == NULL || str_cr_await == NULL || str_gi_code == NULL ||
        str_gi_frame == NULL || str_gi_yieldfrom == NULL || str_ag_code == NULL ||
        str_ag_frame == NULL || str_ag_await == NULL) {
        return NULL;
    }
    PyTypeObject *types[] = {&EventBufferType, &LoopSlotsType, &TaskCoroutineType,
                             &WakeupHookType, &CreationRecorderType};
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
