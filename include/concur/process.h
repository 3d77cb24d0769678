/*
 * concur/process.h — multiprocessing: child processes (multiprocessing.Process).
 *
 * Python                                  concur
 *   multiprocessing.set_start_method(m)   cc_process_set_start_method
 *   (forkserver started early)            cc_process_init, top of main
 *   Process(target=f, args=...)           cc_process_new(&p, f, arg, len, &o)
 *   p.start() / p.join(timeout)           cc_process_start / cc_process_join
 *   p.is_alive() / p.pid / p.exitcode     cc_process_is_alive / _pid / _exitcode
 *   p.terminate() / p.kill()              cc_process_terminate / cc_process_kill
 *   p.daemon / p.name / p.sentinel        options.daemon / _name / _sentinel
 *   p.close()                             cc_process_free
 *
 * START METHODS. A child is always a fork of something; the question is of
 * what.
 *   CC_START_FORKSERVER (the default): a small single-threaded launcher
 *     process is forked from this one once (at cc_process_init, or on first
 *     use), and every child is forked from the launcher on request over a
 *     socket. A child never inherits another thread's lock (the launcher
 *     has one thread and was forked before the program started its own),
 *     and starting a child does not copy the parent's current memory. The
 *     price: the child is a copy of the program *as it was when the
 *     launcher was forked*. Pointers to code (functions of the program and
 *     of libraries loaded then) are valid there; pointers to data created
 *     later are not. So a fork-server child receives its argument as bytes
 *     (copied over), and file descriptors only through pass_fds. Call
 *     cc_process_init at the top of main, before any thread exists, to get
 *     the guarantee; a launcher started lazily later is forked from a
 *     program that may already run threads (it only runs concur's code, but
 *     children see whatever state other threads' locks were in then).
 *   CC_START_FORK: the child is a fork of the calling thread, now. It sees
 *     all current memory, so arg may be any pointer. Unsafe when other
 *     threads exist: a lock (malloc's, stdio's, yours) held by another
 *     thread at the fork stays locked forever in the child. Use it from
 *     single-threaded programs, or for children that only call
 *     async-signal-safe functions. Linux delivers the parent-death signal
 *     when the *thread* that forked a child exits, so start FORK children
 *     from a thread that outlives them (the main thread, a pool worker).
 *   (Python's "spawn" — exec a fresh program — has no counterpart: C has no
 *    interpreter to re-enter your function in a fresh image.)
 *
 * WHAT EVERY CHILD GETS, whatever the method:
 *   - file descriptors 0, 1, 2 (the parent's current ones) and exactly those
 *     listed in pass_fds, at the same numbers; everything else is closed;
 *   - the parent-death signal SIGKILL (and a check right after, for a parent
 *     that died before it was set): a child never outlives its parent (for
 *     fork-server children through the launcher, which exits when this
 *     process dies, taking its children with it);
 *   - in fork-server children every signal has its default action and none
 *     is blocked; FORK children keep the forking thread's handlers and mask;
 *   - the function's return value as exit status (0..255; a negative return
 *     exits with 1 after printing the code to stderr, as Python prints a
 *     traceback); stdout and stderr are flushed, then _exit: no atexit
 *     handler of the parent runs in the child.
 * Children are reaped by join, is_alive, exitcode or free, never left as
 * zombies by free. At normal exit (atexit) concur terminates daemon
 * children and joins the others, as Python does, then stops the launcher.
 * Do not ignore SIGCHLD (SIG_IGN) or call waitpid(-1, ...) elsewhere: that
 * reaps FORK children behind concur's back (join then fails with -ECHILD).
 *
 * Exit codes follow Python: the exit status (>= 0) for a normal exit, the
 * negative signal number when a signal killed the child (-9 for kill, -15
 * for terminate, -11 for a segfault).
 */
#ifndef CONCUR_PROCESS_H
#define CONCUR_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "concur/executor.h"
#include "concur/sync.h"
#include "concur/time.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum cc_start_method {
    CC_START_DEFAULT = 0, /* whatever cc_process_set_start_method chose */
    CC_START_FORKSERVER,
    CC_START_FORK
} cc_start_method;

/* "forkserver", "fork"; "default" for CC_START_DEFAULT; NULL otherwise. */
const char *cc_start_method_name(cc_start_method method);

/*
 * Starts the fork-server launcher now (idempotent). Call it at the top of
 * main, before creating threads, so that every child is forked from a
 * single-threaded copy of the program (see START METHODS). Without it the
 * launcher starts on first use. Returns 0, or -errno if the launcher could
 * not be started (fork, socketpair). Thread-safe.
 */
int cc_process_init(void);

/* The method CC_START_DEFAULT stands for: CC_START_FORKSERVER unless set.
 * Errors: -EINVAL (unknown method, or CC_START_DEFAULT). */
int cc_process_set_start_method(cc_start_method method);
cc_start_method cc_process_get_start_method(void);

/* ---- processes (multiprocessing.Process) ---------------------------------- */

typedef struct cc_process cc_process;

/*
 * What a child runs: fn(arg, len), where arg and len are those given to
 * cc_process_new (arg pointing at the child's own copy when len > 0). The
 * return value is the exit status (see above).
 */
typedef int (*cc_process_fn)(void *arg, size_t len);

/* Most descriptors cc_process_options.pass_fds may list. */
#define CC_PROCESS_MAX_PASS_FDS 16

typedef struct cc_process_options {
    const char *name;             /* NULL: "Process-N"; copied */
    bool daemon;                  /* terminated at the parent's exit */
    cc_start_method start_method; /* CC_START_DEFAULT: the global choice */
    /* Descriptors the child keeps, at the same numbers (each >= 3,
     * distinct, open when start is called). Copied. */
    const int *pass_fds;
    size_t n_pass_fds;
} cc_process_options;

/*
 * Creates a NEW process object that will run fn in a child. opts may be
 * NULL (defaults). arg and len:
 *   len > 0: the len bytes at arg are copied now; the child gets a pointer
 *            to its own copy. Works with every start method.
 *   len == 0: arg itself is passed. With CC_START_FORK any pointer works
 *            (the child is a copy of this memory); with the fork server
 *            arg must be NULL (-EINVAL otherwise: a pointer to data made
 *            after the launcher means nothing in its children).
 * fn must be a function of the program or of a library loaded before the
 * launcher started (a fork-server child checks it is mapped and exits with
 * 127 if not).
 * Errors: -EINVAL (out or fn NULL, bad options, len > 1 GiB), -ENOMEM.
 */
int cc_process_new(cc_process **out, cc_process_fn fn, const void *arg,
                   size_t len, const cc_process_options *opts);

/*
 * Starts the child. Returns 0 once it exists (its pid is known).
 * Blocks for the fork (and, with the fork server, one request to the
 * launcher): about 0.1-1 ms.
 * Errors: -EINVAL (NULL), -EALREADY (started before), -EBADF (a pass_fds
 * entry is not open), -EAGAIN/-ENOMEM (fork failed; the object stays NEW),
 * or -errno from the launcher's socket.
 */
int cc_process_start(cc_process *p);

/*
 * Waits until the child has exited (or the timeout expires) and reaps it.
 * Joining an exited child again returns 0 at once. The calling thread is
 * BLOCKED on CC_WAIT_PROCESS meanwhile. Any thread may join, several at
 * once. Errors: -EINVAL (NULL, bad timeout, not started), -ETIMEDOUT,
 * -ECHILD (someone else reaped the child; see above).
 */
int cc_process_join(cc_process *p, cc_duration timeout);

/* True from a successful start until the child is known to have exited
 * (reaps it if it has). Never blocks. */
bool cc_process_is_alive(cc_process *p);

/* The child's pid, 0 before start (NULL gives 0). */
int64_t cc_process_pid(const cc_process *p);

/*
 * Python's exitcode: returns 1 and stores the exit code in *code once the
 * child has exited (reaping it if needed; never blocks); returns 0 while it
 * runs or before start. Errors: -EINVAL (NULL).
 */
int cc_process_exitcode(cc_process *p, int *code);

/* Send SIGTERM / SIGKILL / any signal through a pidfd, so a recycled pid is
 * never hit. Signalling an exited child does nothing and returns 0.
 * Errors: -EINVAL (NULL, not started, bad signal), -errno. */
int cc_process_terminate(cc_process *p);
int cc_process_kill(cc_process *p);
int cc_process_signal(cc_process *p, int sig);

/*
 * Pollable handles, for an event loop. The pidfd becomes readable when the
 * child exits. The sentinel becomes readable when its exit code can be
 * collected without blocking (for FORK children it is the pidfd; for
 * fork-server children a pipe the launcher writes the status to). Both are
 * owned by p, valid until cc_process_free. Errors: -EINVAL (NULL, not
 * started).
 */
int cc_process_pidfd(const cc_process *p);
int cc_process_sentinel(const cc_process *p);

/* The name (owned by p). NULL gives NULL. */
const char *cc_process_name(const cc_process *p);
bool cc_process_is_daemon(const cc_process *p);
/* The method actually used (never CC_START_DEFAULT after new). */
cc_start_method cc_process_start_method(const cc_process *p);

/*
 * Frees p. A child still running is killed (SIGKILL) and reaped first, so
 * free never leaves a process or a zombie behind. NULL is ignored. Must not
 * race with other calls on p.
 */
void cc_process_free(cc_process *p);

/* Number of started children this process has not yet seen exit
 * (Python's len(active_children()); reaps the ones that have exited). */
size_t cc_process_active_count(void);

/* ==== inter-process communication ============================================
 *
 * Every IPC object below lives in a kernel object (a socket, a memory file)
 * reachable through one descriptor. To use it in a child: with CC_START_FORK
 * the child's copy of the object works as is, provided its descriptor is in
 * pass_fds; with the fork server, pass the descriptor (cc_X_fd) in
 * pass_fds, send its number in the argument bytes, and rebuild the object
 * in the child with cc_X_from_fd. Nothing here is reachable by name by
 * another user: descriptors are private, named segments are created
 * O_EXCL with mode 0600 and an unguessable name. Bytes that come from
 * another process (message lengths, headers in shared memory) are checked
 * before use; a check that fails gives -EPROTO and never a crash.
 */

/* ---- Pipe (multiprocessing.Pipe) ------------------------------------------
 * Two connected ends carrying whole messages of bytes: a message sent with
 * one send is received by one recv, whole, in order. Each message travels
 * as a 16-byte header (magic, length) and the bytes over a Unix stream
 * socket, so a message has no size limit beyond the receiver's maximum
 * (CC_CONN_DEFAULT_MAX unless changed), which is checked before anything is
 * allocated. A recv that times out half-way through a message keeps what
 * it has and the next recv continues it. Sends are atomic with respect to
 * each other (one lock per end), as are recvs. */
typedef struct cc_conn cc_conn;

#define CC_CONN_DEFAULT_MAX ((size_t)256 << 20)

/*
 * Creates a connected pair. duplex: both ends send and receive (Python's
 * default); otherwise *a only receives and *b only sends (Python's
 * Pipe(False) returns (reader, writer) in that order).
 * Errors: -EINVAL, -EMFILE/-ENFILE, -ENOMEM.
 */
int cc_pipe_new(cc_conn **a, cc_conn **b, bool duplex);

/* Wraps a descriptor received in a child (takes ownership on success:
 * freeing the conn closes it; on failure fd stays yours). It must be a stream socket end of a cc_pipe.
 * Errors: -EINVAL (NULL, fd < 0), -ENOTSOCK, -ENOMEM. */
int cc_conn_from_fd(cc_conn **out, int fd);

/* The descriptor, for pass_fds and poll (owned by c). */
int cc_conn_fd(const cc_conn *c);

/*
 * Sends len bytes as one message; blocks until all of it is in the socket.
 * Errors: -EINVAL (NULL c, data NULL with len > 0), -EPIPE (the other end
 * is closed; never raises SIGPIPE), -EBADF (a receive-only end), -errno.
 */
int cc_conn_send(cc_conn *c, const void *data, size_t len);

/*
 * Waits up to timeout for the next message; on success stores a malloc'd
 * copy in *data (free it; NULL for an empty message) and its length in
 * *len. The calling thread is BLOCKED on CC_WAIT_IO while it waits.
 * Errors: -EINVAL, -ETIMEDOUT, -EPIPE (the other end closed: Python's
 * EOFError; also for a message cut short by it), -EMSGSIZE (longer than
 * the maximum), -EPROTO (not a concur message header), -ENOMEM. After
 * -EMSGSIZE or -EPROTO the stream cannot be trusted: every later recv
 * fails with -EPROTO.
 */
int cc_conn_recv(cc_conn *c, void **data, size_t *len, cc_duration timeout);

/* Returns 1 if a message (or end of file) can be received now or arrives
 * within timeout, 0 if not; Python's poll. Errors: -EINVAL, -errno. */
int cc_conn_poll(cc_conn *c, cc_duration timeout);

/* Largest message recv accepts (at least 1). Errors: -EINVAL. */
int cc_conn_set_max_message(cc_conn *c, size_t max);

/* Closes the descriptor and frees c. NULL is ignored. */
void cc_conn_free(cc_conn *c);

/* ---- Shared memory (multiprocessing.shared_memory.SharedMemory) ------------
 * A segment of memory mapped into every process that holds it, possibly at
 * different addresses (store offsets, never pointers, inside it). Fresh
 * segments are zero-filled. */
typedef struct cc_shm cc_shm;

/* An anonymous segment (a memfd): reachable only through its descriptor,
 * by inheritance or pass_fds. Errors: -EINVAL (size 0), -ENOMEM, -errno. */
int cc_shm_new(cc_shm **out, size_t size);

/*
 * A named segment (shm_open): the name, "/concur-" and 32 random hex
 * digits, is written to name_out (cap >= CC_SHM_NAME_MAX). Created with
 * O_EXCL and mode 0600, so only this user can open it and nobody can have
 * prepared it. The creator's cc_shm_free unlinks the name (Python's
 * unlink(), which the creator must call); call cc_shm_unlink earlier to
 * remove it as soon as every process has opened it.
 * The name is registered with this process's fork-server launcher, which
 * is also its resource tracker (Python's resource_tracker): if the process
 * ends without unlinking it — killed with SIGKILL, say — the launcher
 * unlinks it and says so on stderr. A process without a launcher (no
 * cc_process_init, or a child) gets one here, as its first
 * cc_process_start would start it.
 * Errors: -EINVAL, -ENOMEM, -errno (including fork's, starting the
 * launcher).
 */
#define CC_SHM_NAME_MAX 48
int cc_shm_create(cc_shm **out, size_t size, char *name_out, size_t cap);

/* Opens a named segment created by cc_shm_create (by this user). The size
 * is the segment's. Errors: -EINVAL (NULL, a name not of that form),
 * -ENOENT, -EACCES, -errno. */
int cc_shm_open(cc_shm **out, const char *name);

/* Maps the segment behind a received descriptor (takes ownership on
 * success; on failure fd stays yours).
 * Errors: -EINVAL, -errno (fstat, mmap). */
int cc_shm_from_fd(cc_shm **out, int fd);

void *cc_shm_data(const cc_shm *shm);
size_t cc_shm_size(const cc_shm *shm);
int cc_shm_fd(const cc_shm *shm);
/* The name of a named segment, NULL for an anonymous one. */
const char *cc_shm_name(const cc_shm *shm);

/* Removes the name (idempotent; mappings stay valid). Errors: -EINVAL
 * (NULL, anonymous), -errno. */
int cc_shm_unlink(cc_shm *shm);

/* Unmaps and closes; the creator also unlinks the name. NULL is ignored. */
void cc_shm_free(cc_shm *shm);

/* ---- Value and Array (multiprocessing.Value, multiprocessing.Array) -------
 * A typed array in its own shared segment, with a process-shared lock
 * (Python's get_lock()). A Value is an array of one element. The element
 * accessors below take the lock around each access, as Python's
 * synchronized wrappers do; for compound updates take the lock yourself
 * and use cc_shared_data. */
typedef enum cc_ctype {
    CC_TYPE_INT8 = 1, CC_TYPE_UINT8, CC_TYPE_INT16, CC_TYPE_UINT16,
    CC_TYPE_INT32, CC_TYPE_UINT32, CC_TYPE_INT64, CC_TYPE_UINT64,
    CC_TYPE_FLOAT, CC_TYPE_DOUBLE
} cc_ctype;

typedef struct cc_shared cc_shared;

/* Array('i', n): n zeroed elements. Errors: -EINVAL (bad type, n == 0, too
 * big), -ENOMEM, -errno. */
int cc_shared_array_new(cc_shared **out, cc_ctype type, size_t n);
/* Value('d', 0.0) is cc_shared_value_new(&v, CC_TYPE_DOUBLE). */
int cc_shared_value_new(cc_shared **out, cc_ctype type);
/* Attaches to a received descriptor (takes ownership on success; on
 * failure fd stays yours) and checks the header (magic, type, length against the segment's size).
 * Errors: -EINVAL, -EPROTO (not a concur array), -errno. */
int cc_shared_from_fd(cc_shared **out, int fd);

int cc_shared_fd(const cc_shared *s);
cc_ctype cc_shared_type(const cc_shared *s);
size_t cc_shared_length(const cc_shared *s);
/* The elements (len * size of the type bytes). */
void *cc_shared_data(const cc_shared *s);
/* Python's get_lock(): a process-shared cc_lock in the segment. */
cc_lock *cc_shared_lock(const cc_shared *s);

/* Locked element access, converting through int64 / double. Errors:
 * -EINVAL (NULL, index out of range). An int64 stored in a narrower type
 * is truncated as a C cast would. */
int cc_shared_get_i64(cc_shared *s, size_t index, int64_t *out);
int cc_shared_set_i64(cc_shared *s, size_t index, int64_t value);
/* *out (may be NULL) gets the new value: `counter.value += n`. */
int cc_shared_add_i64(cc_shared *s, size_t index, int64_t n, int64_t *out);
int cc_shared_get_double(cc_shared *s, size_t index, double *out);
int cc_shared_set_double(cc_shared *s, size_t index, double value);

void cc_shared_free(cc_shared *s);

/* ---- Queue between processes (multiprocessing.JoinableQueue) --------------
 * A bounded FIFO of byte messages in a shared segment, guarded by
 * process-shared sync objects: put and get block with timeouts, task_done
 * and join count finished items across all processes. It holds at most
 * maxsize items and at most capacity bytes of items (each item costs its
 * length plus 8 bytes, rounded up to 8). A process that dies while it holds
 * the queue's lock (inside put or get) leaves the queue locked for all:
 * kill processes that use a queue only when they are not in a call, as
 * Python's documentation also warns. */
typedef struct cc_process_queue cc_process_queue;

/*
 * maxsize: most items (0: limited by capacity only). capacity: bytes for
 * items (0: 1 MiB). Errors: -EINVAL (capacity < 64 or > 1 GiB), -ENOMEM,
 * -errno.
 */
int cc_process_queue_new(cc_process_queue **out, size_t maxsize,
                         size_t capacity);
/* Attaches to a received descriptor (takes ownership on success; on
 * failure fd stays yours), checking the header. Errors: -EINVAL, -EPROTO, -errno. */
int cc_process_queue_from_fd(cc_process_queue **out, int fd);
int cc_process_queue_fd(const cc_process_queue *q);

/* Copies len bytes in as one item, waiting for room up to timeout.
 * Errors: -EINVAL, CC_EFULL (no room at the deadline, CC_NOWAIT included),
 * -EMSGSIZE (the item can never fit). BLOCKED on CC_WAIT_QUEUE. */
int cc_process_queue_put(cc_process_queue *q, const void *data, size_t len,
                         cc_duration timeout);
/* Takes the oldest item: a malloc'd copy in *data (free it; NULL when
 * empty) and its length in *len. Errors: -EINVAL, CC_EEMPTY, -EPROTO (the
 * shared state is corrupt), -ENOMEM (the item stays queued). */
int cc_process_queue_get(cc_process_queue *q, void **data, size_t *len,
                         cc_duration timeout);
/* Errors: -EINVAL (NULL, or more task_done calls than items put). */
int cc_process_queue_task_done(cc_process_queue *q);
/* Waits until every item put has been task_done. Errors: -EINVAL,
 * -ETIMEDOUT. */
int cc_process_queue_join(cc_process_queue *q, cc_duration timeout);
/* Snapshots. */
size_t cc_process_queue_size(cc_process_queue *q);
bool cc_process_queue_empty(cc_process_queue *q);
void cc_process_queue_free(cc_process_queue *q);

/* ==== tasks that cross a process boundary ===================================
 *
 * A pointer means nothing in another process, so a task for a process pool
 * takes input bytes and produces output bytes (the C counterpart of
 * pickling), or fails with a negative code and an optional message
 * (cc_task_fail, as for thread-pool tasks). A task function is identified
 * by a registered name, so that it resolves in a forked worker, an exec'd
 * worker of the same program and (later) a remote MPI rank:
 *
 *     static int square(const void *in, size_t len, void **out,
 *                       size_t *out_len) { ... }
 *     CC_TASK_REGISTER(square);            // at file scope, once
 *     ...
 *     cc_executor_submit_bytes(pool, CC_TASK(square), &x, sizeof x, &f);
 *
 * Registration happens before main (a constructor), so every copy of the
 * program knows every name. Names are checked everywhere: submitting a
 * definition that is not registered, or naming a task the worker does not
 * know, fails the future with CC_ENOT_REGISTERED; nothing ever jumps to an
 * address that came over the wire. Two registrations of one name make that
 * name unusable (CC_ENOT_REGISTERED) rather than picking one: within one
 * program the linker already refuses two CC_TASK_REGISTER(fn) of the same
 * fn, and the run-time check catches CC_TASK_REGISTER_AS collisions and
 * libraries.
 */

/*
 * A task: reads len bytes at in; on success returns 0 with *out set to a
 * malloc'd result (or NULL) of *out_len bytes, which the library frees;
 * on failure returns a negative code (use cc_task_fail for a message) and
 * *out is ignored.
 */
typedef int (*cc_bytes_task_fn)(const void *in, size_t len, void **out,
                                size_t *out_len);

/*
 * Inside a bytes task: a buffer of len bytes for the task's output, to
 * return as *out (with *out_len <= len), or NULL (len 0, no memory, a
 * second call in the same run, or not inside a bytes task). The library
 * owns it from the start: the task never frees it, and if the task fails
 * or returns another buffer, the library releases it. Equivalent to
 * malloc'ing the output, only cheaper where it can be: in a chunked map
 * (cc_executor_map_bytes) the buffer is a slice of the chunk's own output,
 * which saves a malloc, a copy and a free per element. Returning more
 * than len bytes from it fails the task with -EOVERFLOW.
 *
 *     int *r = cc_task_output(sizeof *r);
 *     if (!r) return -ENOMEM;
 *     *r = x * x;
 *     *out = r; *out_len = sizeof *r;
 */
void *cc_task_output(size_t len);

/* A registration. Fields are private; define it only through the macros. */
typedef struct cc_task_def {
    uint32_t magic;
    uint32_t state; /* 0 unregistered, 1 registered, 2 duplicate name */
    const char *name;
    cc_bytes_task_fn fn;
    struct cc_task_def *next;
} cc_task_def;

#define CCI_TASK_DEF_MAGIC 0x4b534154u /* "TASK" */
#define CC_TASK_NAME_MAX 128

/* Registers fn under its own name; use once, at file scope. */
#define CC_TASK_REGISTER(fn) CC_TASK_REGISTER_AS(fn, #fn)
/* Registers fn under name (1..CC_TASK_NAME_MAX bytes). */
#define CC_TASK_REGISTER_AS(fn, name)                                        \
    cc_task_def cc_task_def_##fn = {CCI_TASK_DEF_MAGIC, 0, name, fn, 0};     \
    __attribute__((constructor)) static void cc_task_register_##fn(void)     \
    {                                                                        \
        cc_task_register(&cc_task_def_##fn);                                 \
    }                                                                        \
    typedef int cc_task_registered_##fn
/* The registration of fn, for submit; CC_TASK_DECLARE(fn) makes it
 * visible in another file. */
#define CC_TASK(fn) ((const cc_task_def *)&cc_task_def_##fn)
#define CC_TASK_DECLARE(fn) extern cc_task_def cc_task_def_##fn

/*
 * Adds def to the program's table (what the macros call). Returns 0;
 * -EEXIST if the name was taken (both registrations become unusable and a
 * line goes to stderr); -EINVAL (NULL, bad magic, bad name, NULL fn).
 * Thread-safe (libraries may register from dlopen).
 */
int cc_task_register(cc_task_def *def);

/* The registration for name, or NULL (unknown or ambiguous). */
const cc_task_def *cc_task_find(const char *name);
const char *cc_task_name(const cc_task_def *def);

/*
 * Runs a registered task in the calling thread, as a worker does: returns
 * its status; on success *out / *out_len hold the result (free *out); on
 * failure *message (if not NULL) gets cc_task_fail's message or NULL (free
 * it). CC_ENOT_REGISTERED if def is not registered here.
 */
int cc_task_run(const cc_task_def *def, const void *in, size_t len,
                void **out, size_t *out_len, char **message);

/*
 * Submits a bytes task to any executor: the in bytes are copied, the
 * future finishes with the task's output bytes (cc_future_result_bytes) or
 * its error and message. A process pool runs it in a worker process; other
 * executors run it in one of their threads. Errors: as cc_executor_submit,
 * plus CC_ENOT_REGISTERED (def is not a registered task of this program),
 * -EMSGSIZE (len above what the executor carries).
 */
int cc_executor_submit_bytes(cc_executor *ex, const cc_task_def *def,
                             const void *in, size_t len, cc_future **out);

/* ==== the process pool (concurrent.futures.ProcessPoolExecutor) ============
 *
 * An executor (concur/executor.h) whose workers are processes. Submit
 * bytes tasks with cc_executor_submit_bytes (cc_executor_submit of a
 * pointer task is refused with -EINVAL: a void * cannot cross). Unlike
 * Python's pool, a worker that dies — a signal, exit(), abort(), the OOM
 * killer, a time limit — fails only the task it was running, with
 * CC_EWORKER_LOST (or -ETIMEDOUT) and a message naming the signal or exit
 * status, and is replaced; queued tasks and other workers carry on. Only
 * an initializer that fails, or more deaths than the restart budget
 * allows, breaks the pool (CC_EBROKEN_EXECUTOR for everything queued and
 * every later submit).
 *
 * Inside: one supervisor thread per pool; per worker a shared-memory
 * channel (futex doorbell, inline messages up to CC_PROCESS_POOL_INLINE
 * bytes) and two shared payload areas for larger inputs and outputs, grown
 * on demand and kept for the worker's life. A submit that finds an idle
 * worker writes the task straight into its channel. Workers and the
 * supervisor spin briefly (about 100 us) after each message before they
 * sleep, so back-to-back tasks never pay a wake-up; an idle pool sleeps.
 */

#define CC_PROCESS_POOL_INLINE ((size_t)32 * 1024)

typedef struct cc_process_pool_options {
    /* Worker processes; 0 means the number of CPUs. Started on demand, as
     * in Python. */
    unsigned max_workers;
    /* CC_START_DEFAULT: the global method (the fork server unless set).
     * With CC_START_FORK workers are forked from the pool's supervisor
     * thread, in a program that has other threads: only for tasks that
     * are safe in such a child (see START METHODS). */
    cc_start_method start_method;
    /* Runs once in each worker before its first task, with these bytes
     * (copied). Its failure breaks the pool. NULL: none. */
    const cc_task_def *initializer;
    const void *initializer_arg;
    size_t initializer_len;
    /* A worker is replaced after this many tasks (Python's
     * max_tasks_per_child); 0: never. */
    unsigned max_tasks_per_child;
    /* A task running longer is killed with its worker (replaced); its
     * future fails with -ETIMEDOUT. 0 or CC_FOREVER: no limit. */
    cc_duration task_time_limit;
    /* RLIMIT_AS of each worker, in bytes (0: none). Covers the whole
     * address space, concur's own mappings (a few hundred KiB plus the
     * payload areas) included. Sanitizer runtimes reserve terabytes of
     * address space, so do not set it in ASan/TSan builds. A task that
     * fails with -ENOMEM has its worker replaced afterwards, in case the
     * heap is exhausted. */
    uint64_t memory_limit;
    /* More than restart_budget worker deaths (time limits included, normal
     * retirements not) within restart_window break the pool.
     * 0: 4 x max_workers + 4 deaths; window 0: 10 s. */
    unsigned restart_budget;
    cc_duration restart_window;
    /* Largest input or output of a task; 0: 1 GiB. */
    size_t max_payload;
} cc_process_pool_options;

/*
 * Creates a process pool. opts may be NULL. No worker starts until the
 * first submit. Errors: -EINVAL (bad option, initializer not registered),
 * -ENOMEM, -errno (eventfd, thread creation).
 */
int cc_process_pool_new(cc_executor **out,
                        const cc_process_pool_options *opts);

/*
 * The pids of the pool's live workers, for tests and tools: up to cap pids
 * go to pids; returns how many workers are live. Errors: -EINVAL (not a
 * process pool).
 */
int cc_process_pool_pids(cc_executor *pool, int64_t *pids, size_t cap);

/* ---- map over bytes (ProcessPoolExecutor.map, Pool.imap_unordered) -------- */

typedef struct cc_bytes_map cc_bytes_map;

/*
 * Submits def over n inputs (inputs[i], lens[i] bytes; copied, so the
 * arrays may be freed at once) in chunks, and returns an iterator over the
 * outputs. opts NULL or chunksize 0: an automatic chunk size (about four
 * chunks per worker, as multiprocessing.Pool does); timeout and unordered
 * as for cc_executor_map. Works on any executor. Errors: as
 * cc_executor_submit_bytes; on error nothing was submitted.
 */
int cc_executor_map_bytes(cc_executor *ex, const cc_task_def *def,
                          const void *const *inputs, const size_t *lens,
                          size_t n, const cc_map_options *opts,
                          cc_bytes_map **out);

/*
 * Returns 1 with the next output (owned by the map, valid until
 * cc_bytes_map_free) in *data / *len and its input position in *index (any
 * of them may be NULL); 0 when all were returned; or a negative code: the
 * failed element's error (*index set, the message through
 * cc_bytes_map_error_message), -ETIMEDOUT at the deadline. After a
 * negative return the map is finished (elements not started are
 * cancelled), as Python's generator.
 */
int cc_bytes_map_next(cc_bytes_map *map, const void **data, size_t *len,
                      size_t *index);
/* The message of the failure cc_bytes_map_next returned, or NULL. */
const char *cc_bytes_map_error_message(const cc_bytes_map *map);
/* Cancels what has not started, waits for the rest, frees. */
void cc_bytes_map_free(cc_bytes_map *map);

#ifdef __cplusplus
}
#endif

#endif /* CONCUR_PROCESS_H */
