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
 * - slot[1] holds when the callbacks running now began (0 while the loop waits in select() or
 *   does not run);
 * - this thread is the recorder's only clock: every `interval_ns` it looks at the slots and at
 *   the time of the last frame sent, without the GIL, and wakes a Python thread only when there
 *   is work for it (see "bells" below). Python threads that woke on a timer of their own took
 *   the GIL from the loop thread a few hundred times a second, and each time the loop thread
 *   paid for it at every system call it made until they got it (a fifth of a TCP echo's time);
 * - beat() is called by the Python watchdog when it wakes. When a step past `threshold_ns` rang
 *   the watchdog's bell and it has not answered for `stale_ns` (the GIL is held by C code: a
 *   thread running bytecode hands the GIL over within the switch interval), the native thread
 *   reads the stack itself, once per step;
 * - slot.sample_of(start) gives that step's stack, innermost frame first, as
 *   (filename, lineno, function name, id of the code object, id of the coroutine or generator
 *   whose frame it is, or 0) tuples, or None.
 *
 * The frames are walked as CPython's own _Py_DumpTraceback walks them (3.11 to 3.13 layouts of
 * _PyInterpreterFrame, from the internal headers of the Python it is built for), but unlike
 * faulthandler, never by dereferencing memory another thread owns: that thread may be running
 * and freeing its frames (see "reading a stack without the GIL" below). Every read is a copy
 * that fails where the memory is gone, and a sample is dropped if the step ended, the Python
 * watchdog ran or the innermost frame changed while it was read.
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

enum { STEP, CALLBACKS, SLOT_VALUES };

typedef struct Slot {
    PyObject_HEAD
    /* the buffer, written by the loop thread, read by the watcher: when the step running now
       began (STEP) and when the callbacks running now began (CALLBACKS), 0 for none */
    int64_t values[SLOT_VALUES];
    Py_ssize_t shape;       /* SLOT_VALUES, for the buffer's shape */
    /* Guarded by watch_lock: */
    PyThreadState *tstate;  /* the attached loop thread's state, NULL when detached */
    int64_t rung_for;       /* the step or callbacks start the watchdog's bell was rung for */
    int64_t rung_at;        /* when */
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
static int64_t flush_stale_ns = 0;
static int64_t last_flush = 0;  /* atomic: when the recorder last sent a frame, trace clock */
static int64_t writer_rung_for = -1; /* guarded by watch_lock: the last_flush it was rung for */
static int64_t heartbeat = 0;   /* atomic: the Python watchdog's last tick, trace clock */
static uint64_t samples_taken = 0; /* guarded by watch_lock */
static uint64_t walks_made = 0;    /* guarded by watch_lock */
static int reads_memory = 0;       /* guarded by watch_lock: read_memory works here */

static int64_t
monotonic_ns(void)
{
    /* time.perf_counter_ns() on Linux and macOS: CLOCK_MONOTONIC */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* -- reading a stack without the GIL ------------------------------------------------------- */

/* The loop thread's stack is read while that thread runs on. A stale heartbeat usually means it
 * is inside a C call that holds the GIL, but not always: the Python watchdog is also late when
 * the machine is loaded and it is not scheduled, and a C call may return while we read. The
 * loop thread may then push and pop frames as we walk them, and popping the last frame of a
 * chunk of its frame stack unmaps that chunk: reading it directly faulted, killing the program
 * (about one run in a hundred of the worst-case benchmark under load, the main thread caught in
 * whatever it ran, tasks.spawn_site). So no memory of the loop thread's is ever dereferenced
 * here: every frame, code object, string and line table is copied through read_memory(), which
 * fails (EFAULT) instead of faulting on memory that is gone, and a read that fails, or yields
 * something that is not a frame of a code object, ends the walk. What a moving stack yields is
 * dropped by sample_step; it is never a crash. */

#ifdef __linux__
#include <sys/uio.h>
#include <unistd.h>
#define CAN_READ_SAFELY 1
#endif

static pid_t own_pid = 0; /* set at start() and in a forked child */

/* -- bells: how this thread wakes the recorder's Python threads ----------------------------- */

/* A Python thread waits on its bell without the GIL (wait_bell()); the watcher rings it when
 * there is work: the watchdog's when a step or callbacks pass the threshold, the writer's when
 * no frame was sent for `flush_stale_ns` (the loop thread sends its own between iterations; the
 * writer sends what a blocked or idle loop cannot). A ring is kept until it is answered. */
enum { WATCHDOG_BELL, WRITER_BELL, BELLS };

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int64_t rung_at; /* guarded by lock: when it was rung (trace clock, at least 1), 0 if not */
} Bell;

static Bell bells[BELLS];

static void
init_bells(void)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    for (int i = 0; i < BELLS; i++) {
        pthread_mutex_init(&bells[i].lock, NULL);
        pthread_cond_init(&bells[i].cond, &attr);
        bells[i].rung_at = 0;
    }
    pthread_condattr_destroy(&attr);
}

static void
ring_bell(Bell *bell, int64_t now)
{
    pthread_mutex_lock(&bell->lock);
    if (bell->rung_at == 0) {
        bell->rung_at = now > 0 ? now : 1;
    }
    pthread_cond_signal(&bell->cond);
    pthread_mutex_unlock(&bell->lock);
}

/* Copy `size` bytes at `address` into `out`: 0, or -1 where that memory is not (all) mapped. */
static int
read_memory(const void *address, void *out, size_t size)
{
#ifdef CAN_READ_SAFELY
    struct iovec local = {out, size};
    struct iovec remote = {(void *)address, size};
    return process_vm_readv(own_pid, &local, 1, &remote, 1, 0) == (ssize_t)size ? 0 : -1;
#else
    (void)address, (void)out, (void)size;
    return -1; /* no way to read without risking a fault: no stack is read */
#endif
}

#define READ(address, out) read_memory((address), (out), sizeof(*(out)))

/* Copy the str at `address` into `out` as UTF-8 (a lone surrogate as its three bytes, read back
 * with "surrogatepass"), cut at a character boundary if it does not fit; "" if it cannot be
 * read or is not a compact str (every str the compiler makes is). */
#define MAX_TEXT_CHARS 1024
static void
copy_text(PyObject *address, char *out, size_t cap)
{
    size_t used = 0;
    PyCompactUnicodeObject head;
    static Py_UCS4 chars[MAX_TEXT_CHARS]; /* only the watcher thread, under watch_lock */
    if (address != NULL && READ(address, &head) == 0 && Py_TYPE((PyObject *)&head) == &PyUnicode_Type
        && head._base.state.compact) {
        int kind = head._base.state.kind;
        Py_ssize_t length = head._base.length;
        if (length > MAX_TEXT_CHARS) {
            length = MAX_TEXT_CHARS;
        }
        const char *data = (const char *)address + (head._base.state.ascii
                                                        ? sizeof(PyASCIIObject)
                                                        : sizeof(PyCompactUnicodeObject));
        if ((kind == 1 || kind == 2 || kind == 4) && length >= 0
            && read_memory(data, chars, (size_t)length * (size_t)kind) == 0) {
            for (Py_ssize_t i = 0; i < length; i++) {
                Py_UCS4 c = PyUnicode_READ(kind, chars, i);
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
                } else if (c < 0x110000) {
                    bytes[0] = (char)(0xF0 | (c >> 18));
                    bytes[1] = (char)(0x80 | ((c >> 12) & 0x3F));
                    bytes[2] = (char)(0x80 | ((c >> 6) & 0x3F));
                    bytes[3] = (char)(0x80 | (c & 0x3F));
                    n = 4;
                } else {
                    break; /* not a character: torn memory */
                }
                if (used + n >= cap) {
                    break;
                }
                memcpy(out + used, bytes, n);
                used += n;
            }
        }
    }
    out[used] = '\0';
}

/* A code object's line table, read a piece at a time. */
typedef struct {
    const char *at; /* the next bytes to read */
    Py_ssize_t left;
    unsigned char buffer[512];
    int held, next;
} TableReader;

/* The next byte, or -1 at the end of the table or where it cannot be read. */
static int
next_byte(TableReader *reader)
{
    if (reader->next == reader->held) {
        int n = reader->left < (Py_ssize_t)sizeof(reader->buffer) ? (int)reader->left
                                                                  : (int)sizeof(reader->buffer);
        if (n <= 0 || read_memory(reader->at, reader->buffer, (size_t)n) < 0) {
            return -1;
        }
        reader->at += n;
        reader->left -= n;
        reader->held = n;
        reader->next = 0;
    }
    return reader->buffer[reader->next++];
}

/* The line of the instruction at byte offset `addr` of `code` (a copy of its head; its line
 * table still where the code object points), as PyCode_Addr2Line finds it in the location table
 * of 3.11 to 3.13 (Objects/locations.md): -1 for an instruction without a line, or when the
 * table cannot be read. */
static int
line_at(const PyCodeObject *code, int addr)
{
    if (addr < 0) {
        return code->co_firstlineno;
    }
    PyBytesObject head;
    if (code->co_linetable == NULL || READ(code->co_linetable, &head) < 0
        || Py_TYPE((PyObject *)&head) != &PyBytes_Type) {
        return -1;
    }
    TableReader reader = {.at = (const char *)code->co_linetable + offsetof(PyBytesObject, ob_sval),
                          .left = Py_SIZE((PyObject *)&head)};
    int line = code->co_firstlineno, start = 0;
    int byte = next_byte(&reader);
    while (byte >= 0) {
        if (!(byte & 0x80)) {
            return -1; /* not the first byte of an entry: not a line table */
        }
        int kind = (byte >> 3) & 15;
        int end = start + ((byte & 7) + 1) * (int)sizeof(_Py_CODEUNIT);
        int delta = 0;
        byte = next_byte(&reader);
        if (kind == 13 || kind == 14) { /* no columns, long form: a signed varint first */
            unsigned int value = 0;
            int shift = 0;
            while (byte >= 0 && !(byte & 0x80)) {
                value |= (unsigned int)(byte & 63) << shift;
                shift += 6;
                int more = byte & 64;
                byte = next_byte(&reader);
                if (!more || shift > 30) {
                    break;
                }
            }
            delta = value & 1 ? -(int)(value >> 1) : (int)(value >> 1);
        } else if (kind >= 10 && kind <= 12) { /* one line: 0, 1 or 2 past the last */
            delta = kind - 10;
        }
        line += delta;
        if (addr < end) {
            return kind == 15 ? -1 : line;
        }
        while (byte >= 0 && !(byte & 0x80)) { /* the rest of this entry */
            byte = next_byte(&reader);
        }
        start = end;
    }
    return -1;
}

/* The address of the innermost frame of `tstate`, or NULL. */
static _PyInterpreterFrame *
innermost_frame(PyThreadState *tstate)
{
    _PyInterpreterFrame *frame = NULL;
#if PY_VERSION_HEX >= 0x030D0000
    if (READ(&tstate->current_frame, &frame) < 0) {
        return NULL;
    }
#else
    _PyCFrame *cframe = NULL;
    if (READ(&tstate->cframe, &cframe) < 0 || cframe == NULL
        || READ(&cframe->current_frame, &frame) < 0) {
        return NULL;
    }
#endif
    return frame;
}

/* The frames from the one at `address` outwards, innermost first, into `out`; how many were
 * kept. Every read is a copy through read_memory: see above. */
static int
walk_frames(_PyInterpreterFrame *address, Frame *out)
{
    int kept = 0;
    for (int depth = 0; address != NULL && kept < MAX_FRAMES && depth < MAX_DEPTH; depth++) {
        _PyInterpreterFrame frame;
        if (READ(address, &frame) < 0) {
            break; /* gone while we read: the caller drops what was read */
        }
        _PyInterpreterFrame *here = address;
        address = frame.previous;
#if PY_VERSION_HEX >= 0x030C0000
        if (frame.owner == FRAME_OWNED_BY_CSTACK) {
            continue; /* the shim frame of a call from C into Python */
        }
#endif
#if PY_VERSION_HEX >= 0x030D0000
        PyObject *code = frame.f_executable;
        _Py_CODEUNIT *instr = frame.instr_ptr;
#else
        PyObject *code = (PyObject *)frame.f_code;
        _Py_CODEUNIT *instr = frame.prev_instr;
#endif
        PyCodeObject co;
        if (code == NULL || READ(code, &co) < 0 || Py_TYPE((PyObject *)&co) != &PyCode_Type) {
            continue; /* not a code object's frame (3.13: None for a C function's) */
        }
        _Py_CODEUNIT *first = (_Py_CODEUNIT *)((char *)code + offsetof(PyCodeObject, co_code_adaptive));
        if (frame.owner != FRAME_OWNED_BY_GENERATOR && instr < first + co._co_firsttraceable) {
            continue; /* incomplete: not started yet (_PyFrame_IsIncomplete) */
        }
        Frame *f = &out[kept++];
        copy_text(co.co_filename, f->filename, MAX_FILENAME);
        copy_text(co.co_name, f->name, MAX_NAME);
        f->lineno = line_at(&co, (int)(instr - first) * (int)sizeof(_Py_CODEUNIT));
        f->code = (uintptr_t)code;
        /* a coroutine's frame lives inside the coroutine object */
        f->generator = frame.owner == FRAME_OWNED_BY_GENERATOR
                           ? (uintptr_t)here - offsetof(PyGenObject, gi_iframe)
                           : 0;
    }
    return kept;
}

/* Whether read_memory works here (process_vm_readv may be refused: a seccomp filter). */
static int
can_read_memory(void)
{
    int64_t probe = 42, copy = 0;
    return READ(&probe, &copy) == 0 && copy == 42;
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

/* Read the stack of a step that has held the GIL since its bell rang (watch_lock held). */
static void
sample_step(Slot *slot, int64_t start, int64_t beat)
{
    if (slot->frames == NULL) {
        /* made at the first sample: most loops never block inside C */
        slot->frames = PyMem_RawMalloc(MAX_FRAMES * sizeof(Frame));
        if (slot->frames == NULL) {
            return;
        }
    }
    slot->sampled_start = 0;
    _PyInterpreterFrame *innermost = innermost_frame(slot->tstate);
    int kept = walk_frames(innermost, slot->frames);
    walks_made++;
    if (__atomic_load_n(&slot->values[STEP], __ATOMIC_ACQUIRE) != start
        || __atomic_load_n(&heartbeat, __ATOMIC_ACQUIRE) != beat
        || innermost_frame(slot->tstate) != innermost) {
        return; /* the step ended, the GIL moved or the stack moved while we read: the frames
                   may be torn */
    }
    slot->nframes = kept;
    slot->sampled_start = start;
    samples_taken++;
}

/* One look, with watch_lock held: ring the watchdog for each step or callbacks newly past the
 * threshold, read the stack of a step whose ring the watchdog could not answer (C code holds the
 * GIL), and ring the writer if no frame went out for a while. Not while a loop runs callbacks
 * that are not (yet) a block: that loop sends its own frame when they end, and the writer would
 * only take the GIL from it. */
static void
tick(void)
{
    int64_t now = monotonic_ns() - origin_ns;
    int64_t beat = __atomic_load_n(&heartbeat, __ATOMIC_ACQUIRE);
    int finalizing = interpreter_finalizing();
    int running_callbacks = 0;
    for (Slot *slot = attached; slot != NULL; slot = slot->next) {
        int64_t start = __atomic_load_n(&slot->values[STEP], __ATOMIC_ACQUIRE);
        int64_t since = start ? start : __atomic_load_n(&slot->values[CALLBACKS], __ATOMIC_ACQUIRE);
        if (since == 0) {
            continue;
        }
        if (now - since < threshold_ns) {
            running_callbacks = 1;
            continue;
        }
        if (slot->rung_for != since) {
            slot->rung_for = since;
            slot->rung_at = now;
            ring_bell(&bells[WATCHDOG_BELL], now);
        } else if (start && start != slot->sampled_start && reads_memory && !finalizing
                   && beat < slot->rung_at && now - slot->rung_at >= stale_ns) {
            sample_step(slot, start, beat);
        }
    }
    int64_t flushed = __atomic_load_n(&last_flush, __ATOMIC_ACQUIRE);
    if (flush_stale_ns > 0 && !running_callbacks && now - flushed >= flush_stale_ns
        && writer_rung_for != flushed) {
        writer_rung_for = flushed;
        ring_bell(&bells[WRITER_BELL], now);
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
            tick();
        }
    }
    pthread_mutex_unlock(&watch_lock);
    return NULL;
}

static void
init_wake(void)
{
    init_bells();
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
#ifdef CAN_READ_SAFELY
    own_pid = getpid();
#endif
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
    slot->shape = SLOT_VALUES;
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

/* (filename, lineno, name, id of the code, id of the coroutine or 0) for each of `frames`. */
static PyObject *
frames_tuple(const Frame *frames, int n)
{
    PyObject *result = PyTuple_New(n);
    for (int i = 0; result != NULL && i < n; i++) {
        PyObject *item = Py_BuildValue(
            "(O&iO&KK)",
            text_of, frames[i].filename,
            frames[i].lineno,
            text_of, frames[i].name,
            (unsigned long long)frames[i].code,
            (unsigned long long)frames[i].generator);
        if (item == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyTuple_SET_ITEM(result, i, item);
    }
    return result;
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
    PyObject *result = n < 0 ? Py_NewRef(Py_None) : frames_tuple(frames, n);
    PyMem_RawFree(frames);
    return result;
}

static int
slot_getbuffer(Slot *slot, Py_buffer *view, int flags)
{
    view->obj = Py_NewRef(slot);
    view->buf = slot->values;
    view->len = sizeof(slot->values);
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
    return SLOT_VALUES;
}

static PyObject *
slot_item(Slot *slot, Py_ssize_t index)
{
    if (index < 0 || index >= SLOT_VALUES) {
        PyErr_SetString(PyExc_IndexError, "a slot holds two start times: the step's, the callbacks'");
        return NULL;
    }
    return PyLong_FromLongLong(__atomic_load_n(&slot->values[index], __ATOMIC_RELAXED));
}

static int
slot_ass_item(Slot *slot, Py_ssize_t index, PyObject *value)
{
    if (index < 0 || index >= SLOT_VALUES || value == NULL) {
        PyErr_SetString(PyExc_IndexError, "a slot holds two start times: the step's, the callbacks'");
        return -1;
    }
    int64_t start = PyLong_AsLongLong(value);
    if (start == -1 && PyErr_Occurred()) {
        return -1;
    }
    __atomic_store_n(&slot->values[index], start, __ATOMIC_RELEASE);
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
    .tp_doc = "One watched loop: an int64[2] buffer, when its running step and its running "
              "callbacks began (0: none).",
};

/* -- module functions ----------------------------------------------------------------------- */

static PyObject *
start_watching(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"origin_ns", "threshold_ns", "stale_ns", "interval_ns",
                               "flush_stale_ns", NULL};
    long long origin, threshold, stale, interval, flush_stale = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "LLLL|L:start", keywords,
                                     &origin, &threshold, &stale, &interval, &flush_stale)) {
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
    flush_stale_ns = flush_stale;
    __atomic_store_n(&heartbeat, monotonic_ns() - origin, __ATOMIC_RELEASE);
    __atomic_store_n(&last_flush, monotonic_ns() - origin, __ATOMIC_RELEASE);
#ifdef CAN_READ_SAFELY
    own_pid = getpid();
#endif
    reads_memory = can_read_memory();
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

/* wait_bell(bell, timeout=None): block, without the GIL, until the bell rings; when it rang
 * (trace clock), or 0 at the timeout. */
static PyObject *
wait_bell(PyObject *module, PyObject *args)
{
    int which;
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTuple(args, "i|O:wait_bell", &which, &timeout)) {
        return NULL;
    }
    if (which < 0 || which >= BELLS) {
        PyErr_SetString(PyExc_ValueError, "no such bell");
        return NULL;
    }
    int64_t deadline_ns = -1;
    if (timeout != Py_None) {
        double seconds = PyFloat_AsDouble(timeout);
        if (seconds == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        deadline_ns = monotonic_ns() + (int64_t)(seconds > 0 ? seconds * 1e9 : 0);
    }
    Bell *bell = &bells[which];
    int64_t rung;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&bell->lock);
    while (bell->rung_at == 0) {
        if (deadline_ns < 0) {
            pthread_cond_wait(&bell->cond, &bell->lock);
            continue;
        }
        struct timespec deadline = {.tv_sec = deadline_ns / 1000000000,
                                    .tv_nsec = deadline_ns % 1000000000};
        if (pthread_cond_timedwait(&bell->cond, &bell->lock, &deadline) == ETIMEDOUT) {
            break;
        }
    }
    rung = bell->rung_at;
    bell->rung_at = 0;
    pthread_mutex_unlock(&bell->lock);
    Py_END_ALLOW_THREADS
    return PyLong_FromLongLong(rung);
}

static PyObject *
ring(PyObject *module, PyObject *arg)
{
    int which = (int)PyLong_AsLong(arg);
    if (which == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (which < 0 || which >= BELLS) {
        PyErr_SetString(PyExc_ValueError, "no such bell");
        return NULL;
    }
    ring_bell(&bells[which], monotonic_ns() - origin_ns);
    Py_RETURN_NONE;
}

static PyObject *
flushed(PyObject *module, PyObject *unused)
{
    __atomic_store_n(&last_flush, monotonic_ns() - origin_ns, __ATOMIC_RELEASE);
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
    unsigned long long taken = samples_taken, walks = walks_made;
    int reads = reads_memory;
    Py_ssize_t slots = 0;
    for (Slot *slot = attached; slot != NULL; slot = slot->next) {
        slots++;
    }
    pthread_mutex_unlock(&watch_lock);
    return Py_BuildValue("{s:O,s:n,s:K,s:K,s:O}", "running", watching ? Py_True : Py_False,
                         "attached", slots, "samples", taken, "walks", walks, "reads_memory",
                         reads ? Py_True : Py_False);
}

/* The watcher's walk, run here: for tests of what it reads, and of what it survives. */
static PyObject *
read_stack(PyObject *module, PyObject *args)
{
    PyObject *where = Py_None;
    if (!PyArg_ParseTuple(args, "|O:read_stack", &where)) {
        return NULL;
    }
    _PyInterpreterFrame *address;
    if (where == Py_None) {
        address = innermost_frame(PyThreadState_Get());
    } else {
        address = (_PyInterpreterFrame *)PyLong_AsVoidPtr(where);
        if (address == NULL && PyErr_Occurred()) {
            return NULL;
        }
    }
    Frame *frames = PyMem_RawMalloc(MAX_FRAMES * sizeof(Frame));
    if (frames == NULL) {
        return PyErr_NoMemory();
    }
    int n;
    Py_BEGIN_ALLOW_THREADS /* the watcher may hold the lock while it reads */
    pthread_mutex_lock(&watch_lock);
    n = walk_frames(address, frames);
    pthread_mutex_unlock(&watch_lock);
    Py_END_ALLOW_THREADS
    PyObject *result = frames_tuple(frames, n);
    PyMem_RawFree(frames);
    return result;
}

static PyMethodDef module_methods[] = {
    {"start", (PyCFunction)(void (*)(void))start_watching, METH_VARARGS | METH_KEYWORDS,
     "start(origin_ns, threshold_ns, stale_ns, interval_ns, flush_stale_ns=0): run (or "
     "reconfigure) the native watcher (no writer's bell with 0). Times are perf_counter_ns() - "
     "origin_ns."},
    {"stop", stop_watching, METH_NOARGS, "Stop the native watcher and wait for it to end."},
    {"beat", beat, METH_NOARGS, "The Python watchdog woke: the GIL is not stuck."},
    {"wait_bell", wait_bell, METH_VARARGS,
     "wait_bell(bell, timeout=None): wait, without the GIL, until the bell (WATCHDOG_BELL or "
     "WRITER_BELL) rings; when it rang (trace clock), or 0 at the timeout."},
    {"ring", ring, METH_O, "ring(bell): ring it now (to wake its thread at the end)."},
    {"flushed", flushed, METH_NOARGS,
     "A frame was just sent: the writer's bell rings after flush_stale_ns without another."},
    {"stats", stats, METH_NOARGS,
     "{'running', 'attached', 'samples', 'walks', 'reads_memory'}: for tests."},
    {"read_stack", read_stack, METH_VARARGS,
     "read_stack(address=None): the frames the watcher would read from the interpreter frame at "
     "`address` (this thread's innermost when None), as sample_of gives them. For tests."},
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
#ifdef CAN_READ_SAFELY
    own_pid = getpid();
#endif
    if (PyType_Ready(&SlotType) < 0 || PyType_Ready(&ThreadGuardType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&stackwatch_module);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "Slot", (PyObject *)&SlotType) < 0
        || PyModule_AddIntConstant(module, "WATCHDOG_BELL", WATCHDOG_BELL) < 0
        || PyModule_AddIntConstant(module, "WRITER_BELL", WRITER_BELL) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
