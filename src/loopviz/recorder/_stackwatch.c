/* loopviz.recorder._stackwatch: a native watchdog that reads a loop thread's Python stack
 * while C code holds the GIL.
 *
 * Why it exists: a task step blocked inside a C call that holds the GIL (a huge sorted(), a
 * regex, a C extension) also stops the recorder's Python watchdog thread, so such a block had
 * no culprit line. This module runs a plain pthread that never takes the GIL, as faulthandler's
 * dump_traceback_later does, and reads the loop thread's frames itself.
 *
 * How it is used (see loopviz/recorder/watchdog.py):
 * - a Slot per watched loop holds the start of the step running now (the trace clock,
 *   perf_counter_ns() - origin; 0 when no step runs) in an int64 exposed as a writable buffer
 *   (memoryview(slot) is one int64, for a store through the buffer's pointer from C) and as
 *   slot[0] (the Python proxy's write, faster than the memoryview's);
 * - slot.attach() on the loop's thread records that thread's PyThreadState; slot.detach(), the
 *   thread's end (its thread-state dict is cleared) or the slot's deallocation forget it, under
 *   the watcher's lock, so a dead thread state is never read;
 * - beat() is called by the Python watchdog at each of its ticks. Only when it has not ticked for
 *   `stale_ns` (the GIL is held by C code: a thread running bytecode hands the GIL over within
 *   the switch interval) does the native thread read a stack, once per step past `threshold_ns`;
 * - slot.sample_of(start) gives that step's stack, innermost frame first, as
 *   (filename, lineno, function name, id of the code object, id of the coroutine or generator
 *   whose frame it is, or 0) tuples, or None.
 *
 * The frames are walked as CPython's own _Py_DumpTraceback walks them (3.11 to 3.13 layouts of
 * _PyInterpreterFrame, from the internal headers of the Python it is built for). Like
 * faulthandler, the walk reads memory another thread owns; it is made only while that thread
 * holds the GIL inside C code, and a sample is dropped if the step ended or the Python watchdog
 * ran while it was read.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030E0000
#error "the native watchdog knows the frame layouts of CPython 3.11 to 3.13 only"
#endif
#ifdef Py_GIL_DISABLED
#error "a free-threaded build has no GIL to watch: the Python watchdog is used"
#endif

#define Py_BUILD_CORE 1
#include "internal/pycore_frame.h"
#undef Py_BUILD_CORE

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define MAX_FRAMES 48
#define MAX_FILENAME 1024
#define MAX_NAME 256
#define MAX_DEPTH 4096 /* frames walked at most, a guard against a torn linked list */
#define GUARD_KEY "loopviz._stackwatch.thread_guard"

typedef struct {
    char filename[MAX_FILENAME];
    char name[MAX_NAME];
    int lineno;
    uintptr_t code;      /* the code object's address: id(code) */
    uintptr_t generator; /* the coroutine or generator running in this frame: id(coro), or 0 */
} Frame;

typedef struct Slot {
    PyObject_HEAD
    int64_t start;          /* the buffer: written by the proxies, read by the watcher */
    Py_ssize_t shape;       /* 1, for the buffer's shape */
    /* Guarded by watch_lock: */
    PyThreadState *tstate;  /* the attached loop thread's state, NULL when detached */
    int64_t sampled_start;  /* the step the frames below belong to, 0 for none */
    int nframes;
    Frame *frames;          /* MAX_FRAMES of them, made by the watcher at its first sample */
    struct Slot *prev, *next; /* the list of attached slots */
} Slot;

typedef struct {
    PyObject_HEAD
    PyThreadState *tstate;
} ThreadGuard;

static pthread_mutex_t watch_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t watch_wake;
static pthread_t watch_thread;
static int thread_started = 0;  /* guarded by watch_lock */
static int running = 0;         /* guarded by watch_lock */
static Slot *attached = NULL;   /* guarded by watch_lock */
static int64_t origin_ns = 0, threshold_ns = 0, stale_ns = 0, interval_ns = 0;
static int64_t heartbeat = 0;   /* atomic: the Python watchdog's last tick, trace clock */
static uint64_t samples_taken = 0; /* guarded by watch_lock */

static int64_t
monotonic_ns(void)
{
    /* time.perf_counter_ns() on Linux and macOS: CLOCK_MONOTONIC */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* -- reading a stack without the GIL ------------------------------------------------------- */

/* Copy a str into `out` as UTF-8 (a lone surrogate as its three bytes, read back with
 * "surrogatepass"), cut at a character boundary if it does not fit. Reads only the object. */
static void
copy_text(PyObject *text, char *out, size_t cap)
{
    size_t used = 0;
    if (text != NULL && PyUnicode_Check(text)) {
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        Py_ssize_t length = PyUnicode_GET_LENGTH(text);
        for (Py_ssize_t i = 0; i < length; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            char bytes[4];
            size_t n;
            if (c < 0x80) {
                bytes[0] = (char)c;
                n = 1;
            } else if (c < 0x800) {
                bytes[0] = (char)(0xC0 | (c >> 6));
                bytes[1] = (char)(0x80 | (c & 0x3F));
                n = 2;
            } else if (c < 0x10000) {
                bytes[0] = (char)(0xE0 | (c >> 12));
                bytes[1] = (char)(0x80 | ((c >> 6) & 0x3F));
                bytes[2] = (char)(0x80 | (c & 0x3F));
                n = 3;
            } else {
                bytes[0] = (char)(0xF0 | (c >> 18));
                bytes[1] = (char)(0x80 | ((c >> 12) & 0x3F));
                bytes[2] = (char)(0x80 | ((c >> 6) & 0x3F));
                bytes[3] = (char)(0x80 | (c & 0x3F));
                n = 4;
            }
            if (used + n >= cap) {
                break;
            }
            memcpy(out + used, bytes, n);
            used += n;
        }
    }
    out[used] = '\0';
}

static _PyInterpreterFrame *
innermost_frame(PyThreadState *tstate)
{
#if PY_VERSION_HEX >= 0x030D0000
    return tstate->current_frame;
#else
    return tstate->cframe != NULL ? tstate->cframe->current_frame : NULL;
#endif
}

static PyObject *
code_of(_PyInterpreterFrame *frame)
{
#if PY_VERSION_HEX >= 0x030D0000
    return frame->f_executable;
#else
    return (PyObject *)frame->f_code;
#endif
}

/* The thread's frames, innermost first, into `out`; how many were kept. */
static int
walk_stack(PyThreadState *tstate, Frame *out)
{
    int kept = 0;
    int depth = 0;
    for (_PyInterpreterFrame *frame = innermost_frame(tstate);
         frame != NULL && kept < MAX_FRAMES && depth < MAX_DEPTH;
         frame = frame->previous, depth++) {
#if PY_VERSION_HEX >= 0x030C0000
        if (frame->owner == FRAME_OWNED_BY_CSTACK) {
            continue; /* the shim frame of a call from C into Python */
        }
#endif
        PyObject *code = code_of(frame);
        if (code == NULL || Py_TYPE(code) != &PyCode_Type || _PyFrame_IsIncomplete(frame)) {
            continue;
        }
        PyCodeObject *co = (PyCodeObject *)code;
        Frame *f = &out[kept++];
        copy_text(co->co_filename, f->filename, MAX_FILENAME);
        copy_text(co->co_name, f->name, MAX_NAME);
        f->lineno = PyCode_Addr2Line(co, _PyInterpreterFrame_LASTI(frame) * (int)sizeof(_Py_CODEUNIT));
        f->code = (uintptr_t)code;
        /* a coroutine's frame lives inside the coroutine object */
        f->generator = frame->owner == FRAME_OWNED_BY_GENERATOR
                           ? (uintptr_t)frame - offsetof(PyGenObject, gi_iframe)
                           : 0;
    }
    return kept;
}

static int
interpreter_finalizing(void)
{
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing();
#else
    return _Py_IsFinalizing();
#endif
}

/* Called with watch_lock held: sample every attached loop whose step crossed the threshold
 * while the Python watchdog could not run. */
static void
check_slots(void)
{
    int64_t beat = __atomic_load_n(&heartbeat, __ATOMIC_ACQUIRE);
    int64_t now = monotonic_ns() - origin_ns;
    if (now - beat < stale_ns || interpreter_finalizing()) {
        return; /* the GIL changes hands: the Python watchdog samples what it can see */
    }
    for (Slot *slot = attached; slot != NULL; slot = slot->next) {
        int64_t start = __atomic_load_n(&slot->start, __ATOMIC_ACQUIRE);
        if (start == 0 || start == slot->sampled_start || now - start < threshold_ns) {
            continue;
        }
        if (slot->frames == NULL) {
            /* made at the first sample: most loops never block inside C */
            slot->frames = PyMem_RawMalloc(MAX_FRAMES * sizeof(Frame));
            if (slot->frames == NULL) {
                continue;
            }
        }
        slot->sampled_start = 0;
        int kept = walk_stack(slot->tstate, slot->frames);
        if (__atomic_load_n(&slot->start, __ATOMIC_ACQUIRE) != start
            || __atomic_load_n(&heartbeat, __ATOMIC_ACQUIRE) != beat) {
            continue; /* the step ended or the GIL moved while we read: the frames may be torn */
        }
        slot->nframes = kept;
        slot->sampled_start = start;
        samples_taken++;
    }
}

static void *
watch_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&watch_lock);
    while (running) {
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        int64_t ns = deadline.tv_nsec + interval_ns;
        deadline.tv_sec += ns / 1000000000;
        deadline.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&watch_wake, &watch_lock, &deadline);
        if (running) {
            check_slots();
        }
    }
    pthread_mutex_unlock(&watch_lock);
    return NULL;
}

static void
init_wake(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&watch_wake, &attr);
    pthread_condattr_destroy(&attr);
}

/* -- fork: only the forking thread lives on in the child ----------------------------------- */

static void
before_fork(void)
{
    pthread_mutex_lock(&watch_lock);
}

static void
after_fork_in_parent(void)
{
    pthread_mutex_unlock(&watch_lock);
}

static void
after_fork_in_child(void)
{
    /* The watcher thread and every other thread are gone, and the child is not recorded. */
    running = 0;
    thread_started = 0;
    for (Slot *slot = attached; slot != NULL;) {
        Slot *next = slot->next;
        slot->tstate = NULL;
        slot->prev = slot->next = NULL;
        slot = next;
    }
    attached = NULL;
    init_wake();
    pthread_mutex_unlock(&watch_lock);
}

/* -- the attached list (callers hold watch_lock) ------------------------------------------ */

static void
unlink_slot(Slot *slot)
{
    if (slot->tstate == NULL) {
        return;
    }
    if (slot->prev != NULL) {
        slot->prev->next = slot->next;
    } else {
        attached = slot->next;
    }
    if (slot->next != NULL) {
        slot->next->prev = slot->prev;
    }
    slot->prev = slot->next = NULL;
    slot->tstate = NULL;
}

/* -- ThreadGuard: lives in a thread's state dict, forgets the thread when it is cleared ----- */

static void
guard_dealloc(ThreadGuard *guard)
{
    pthread_mutex_lock(&watch_lock);
    for (Slot *slot = attached; slot != NULL;) {
        Slot *next = slot->next;
        if (slot->tstate == guard->tstate) {
            unlink_slot(slot);
        }
        slot = next;
    }
    pthread_mutex_unlock(&watch_lock);
    PyObject_Free(guard);
}

static PyTypeObject ThreadGuardType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loopviz.recorder._stackwatch.ThreadGuard",
    .tp_basicsize = sizeof(ThreadGuard),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)guard_dealloc,
    .tp_doc = "Detaches the slots of a thread when its thread state is cleared.",
};

/* Make sure this thread's state dict holds a guard, so its end detaches its slots. */
static int
guard_this_thread(PyThreadState *tstate)
{
    PyObject *dict = PyThreadState_GetDict();
    if (dict == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this thread has no thread state dict");
        return -1;
    }
    PyObject *existing = PyDict_GetItemString(dict, GUARD_KEY);
    if (existing != NULL) {
        return 0;
    }
    ThreadGuard *guard = PyObject_New(ThreadGuard, &ThreadGuardType);
    if (guard == NULL) {
        return -1;
    }
    guard->tstate = tstate;
    int failed = PyDict_SetItemString(dict, GUARD_KEY, (PyObject *)guard);
    Py_DECREF(guard);
    return failed;
}

/* -- Slot ----------------------------------------------------------------------------------- */

static PyObject *
slot_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, ":Slot", keywords)) {
        return NULL;
    }
    Slot *slot = (Slot *)type->tp_alloc(type, 0);
    if (slot == NULL) {
        return NULL;
    }
    slot->shape = 1;
    return (PyObject *)slot;
}

static void
slot_dealloc(Slot *slot)
{
    pthread_mutex_lock(&watch_lock);
    unlink_slot(slot);
    pthread_mutex_unlock(&watch_lock);
    PyMem_RawFree(slot->frames);
    Py_TYPE(slot)->tp_free((PyObject *)slot);
}

static PyObject *
slot_attach(Slot *slot, PyObject *unused)
{
    PyThreadState *tstate = PyThreadState_Get();
    if (guard_this_thread(tstate) < 0) {
        return NULL;
    }
    pthread_mutex_lock(&watch_lock);
    unlink_slot(slot);
    slot->tstate = tstate;
    slot->prev = NULL;
    slot->next = attached;
    if (attached != NULL) {
        attached->prev = slot;
    }
    attached = slot;
    pthread_mutex_unlock(&watch_lock);
    Py_RETURN_NONE;
}

static PyObject *
slot_detach(Slot *slot, PyObject *unused)
{
    pthread_mutex_lock(&watch_lock);
    unlink_slot(slot);
    pthread_mutex_unlock(&watch_lock);
    Py_RETURN_NONE;
}

static PyObject *
slot_attached(Slot *slot, void *unused)
{
    pthread_mutex_lock(&watch_lock);
    int is_attached = slot->tstate != NULL;
    pthread_mutex_unlock(&watch_lock);
    return PyBool_FromLong(is_attached);
}

static PyObject *
text_of(void *utf8)
{
    return PyUnicode_DecodeUTF8((const char *)utf8, (Py_ssize_t)strlen((const char *)utf8),
                                "surrogatepass");
}

static PyObject *
slot_sample_of(Slot *slot, PyObject *arg)
{
    int64_t start = PyLong_AsLongLong(arg);
    if (start == -1 && PyErr_Occurred()) {
        return NULL;
    }
    /* Copy out under the lock, build the objects after it. */
    Frame *frames = NULL;
    int n = -1;
    pthread_mutex_lock(&watch_lock);
    if (start != 0 && slot->sampled_start == start) {
        n = slot->nframes;
        frames = PyMem_RawMalloc((size_t)n * sizeof(Frame) + 1);
        if (frames != NULL) {
            memcpy(frames, slot->frames, (size_t)n * sizeof(Frame));
        }
    }
    pthread_mutex_unlock(&watch_lock);
    if (n >= 0 && frames == NULL) {
        return PyErr_NoMemory();
    }
    PyObject *result = NULL;
    if (n < 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = PyTuple_New(n);
    if (result == NULL) {
        goto done;
    }
    for (int i = 0; i < n; i++) {
        PyObject *item = Py_BuildValue(
            "(O&iO&KK)",
            text_of, frames[i].filename,
            frames[i].lineno,
            text_of, frames[i].name,
            (unsigned long long)frames[i].code,
            (unsigned long long)frames[i].generator);
        if (item == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyTuple_SET_ITEM(result, i, item);
    }
done:
    PyMem_RawFree(frames);
    return result;
}

static int
slot_getbuffer(Slot *slot, Py_buffer *view, int flags)
{
    view->obj = Py_NewRef(slot);
    view->buf = &slot->start;
    view->len = sizeof(int64_t);
    view->readonly = 0;
    view->itemsize = sizeof(int64_t);
    view->format = (flags & PyBUF_FORMAT) ? "q" : NULL;
    view->ndim = 1;
    view->shape = (flags & PyBUF_ND) ? &slot->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) ? &view->itemsize : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    return 0;
}

/* slot[0] = start: what memoryview(slot)[0] = start does, at half its cost (the proxy's hot path) */
static Py_ssize_t
slot_length(Slot *slot)
{
    return 1;
}

static PyObject *
slot_item(Slot *slot, Py_ssize_t index)
{
    if (index != 0) {
        PyErr_SetString(PyExc_IndexError, "a slot holds one start time, at index 0");
        return NULL;
    }
    return PyLong_FromLongLong(__atomic_load_n(&slot->start, __ATOMIC_RELAXED));
}

static int
slot_ass_item(Slot *slot, Py_ssize_t index, PyObject *value)
{
    if (index != 0 || value == NULL) {
        PyErr_SetString(PyExc_IndexError, "a slot holds one start time, at index 0");
        return -1;
    }
    int64_t start = PyLong_AsLongLong(value);
    if (start == -1 && PyErr_Occurred()) {
        return -1;
    }
    __atomic_store_n(&slot->start, start, __ATOMIC_RELEASE);
    return 0;
}

static PySequenceMethods slot_as_sequence = {
    .sq_length = (lenfunc)slot_length,
    .sq_item = (ssizeargfunc)slot_item,
    .sq_ass_item = (ssizeobjargproc)slot_ass_item,
};

static PyBufferProcs slot_as_buffer = {
    .bf_getbuffer = (getbufferproc)slot_getbuffer,
};

static PyMethodDef slot_methods[] = {
    {"attach", (PyCFunction)slot_attach, METH_NOARGS,
     "Watch this slot's steps on the calling thread (the loop's)."},
    {"detach", (PyCFunction)slot_detach, METH_NOARGS,
     "Stop watching: the loop stopped running on its thread."},
    {"sample_of", (PyCFunction)slot_sample_of, METH_O,
     "sample_of(start): the stack read during the step that began at `start`, innermost "
     "frame first, as (filename, lineno, name, id of the code, id of the coroutine or 0) "
     "tuples; None if none was read."},
    {NULL},
};

static PyGetSetDef slot_getset[] = {
    {"attached", (getter)slot_attached, NULL, "Whether a thread is watched for this slot.", NULL},
    {NULL},
};

static PyTypeObject SlotType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "loopviz.recorder._stackwatch.Slot",
    .tp_basicsize = sizeof(Slot),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = slot_new,
    .tp_dealloc = (destructor)slot_dealloc,
    .tp_as_sequence = &slot_as_sequence,
    .tp_as_buffer = &slot_as_buffer,
    .tp_methods = slot_methods,
    .tp_getset = slot_getset,
    .tp_doc = "One watched loop: an int64 buffer with the start of its running step.",
};

/* -- module functions ----------------------------------------------------------------------- */

static PyObject *
start_watching(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"origin_ns", "threshold_ns", "stale_ns", "interval_ns", NULL};
    long long origin, threshold, stale, interval;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "LLLL:start", keywords,
                                     &origin, &threshold, &stale, &interval)) {
        return NULL;
    }
    if (threshold <= 0 || stale <= 0 || interval <= 0) {
        PyErr_SetString(PyExc_ValueError, "threshold, staleness and interval must be positive");
        return NULL;
    }
    pthread_mutex_lock(&watch_lock);
    origin_ns = origin;
    threshold_ns = threshold;
    stale_ns = stale;
    interval_ns = interval;
    __atomic_store_n(&heartbeat, monotonic_ns() - origin, __ATOMIC_RELEASE);
    int error = 0;
    if (!thread_started) {
        running = 1;
        error = pthread_create(&watch_thread, NULL, watch_main, NULL);
        if (error == 0) {
            thread_started = 1;
        } else {
            running = 0;
        }
    }
    pthread_mutex_unlock(&watch_lock);
    if (error != 0) {
        errno = error;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

static PyObject *
stop_watching(PyObject *module, PyObject *unused)
{
    pthread_mutex_lock(&watch_lock);
    int joinable = thread_started;
    running = 0;
    thread_started = 0;
    pthread_cond_signal(&watch_wake);
    pthread_mutex_unlock(&watch_lock);
    if (joinable) {
        Py_BEGIN_ALLOW_THREADS
        pthread_join(watch_thread, NULL);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *
beat(PyObject *module, PyObject *unused)
{
    __atomic_store_n(&heartbeat, monotonic_ns() - origin_ns, __ATOMIC_RELEASE);
    Py_RETURN_NONE;
}

static PyObject *
stats(PyObject *module, PyObject *unused)
{
    pthread_mutex_lock(&watch_lock);
    int watching = thread_started;
    unsigned long long taken = samples_taken;
    Py_ssize_t slots = 0;
    for (Slot *slot = attached; slot != NULL; slot = slot->next) {
        slots++;
    }
    pthread_mutex_unlock(&watch_lock);
    return Py_BuildValue("{s:O,s:n,s:K}", "running", watching ? Py_True : Py_False,
                         "attached", slots, "samples", taken);
}

static PyMethodDef module_methods[] = {
    {"start", (PyCFunction)(void (*)(void))start_watching, METH_VARARGS | METH_KEYWORDS,
     "start(origin_ns, threshold_ns, stale_ns, interval_ns): run (or reconfigure) the native "
     "watcher. Times are perf_counter_ns() - origin_ns."},
    {"stop", stop_watching, METH_NOARGS, "Stop the native watcher and wait for it to end."},
    {"beat", beat, METH_NOARGS, "The Python watchdog ticked: the GIL is not stuck."},
    {"stats", stats, METH_NOARGS, "{'running', 'attached', 'samples'}: for tests."},
    {NULL},
};

static struct PyModuleDef stackwatch_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "loopviz.recorder._stackwatch",
    .m_doc = "A native watchdog reading a loop thread's Python stack while C code holds the GIL.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__stackwatch(void)
{
    static int process_ready = 0;
    if (!process_ready) {
        init_wake();
        if (pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child) != 0) {
            PyErr_SetString(PyExc_ImportError, "could not register the native watchdog's fork handlers");
            return NULL;
        }
        process_ready = 1;
    }
    if (PyType_Ready(&SlotType) < 0 || PyType_Ready(&ThreadGuardType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&stackwatch_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Slot", (PyObject *)&SlotType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
