/*
 * concur — Python's concurrency model for C11 on Linux.
 *
 * Modules, bottom to top (each header is usable on its own):
 *   concur/time.h    the duration type for every timeout (CC_FOREVER, CC_NOWAIT)
 *   concur/error.h   negative error codes and cc_strerror
 *   concur/sync.h    Lock, RLock, Condition, Semaphore, Event, Barrier, Once
 *   concur/thread.h  threads with an observable life cycle, local, sleep, Timer
 *   concur/queue.h   FIFO, LIFO and priority queues with task_done/join, shutdown
 *
 * Thread-safety rule for the whole library: every function may be called
 * from any thread at the same time as any other, on the same objects, unless
 * its header comment says otherwise. The exceptions are the life-time calls:
 * nothing may use an object during or after its _destroy, _free or last
 * _unref, and _init must finish before other threads see the object.
 *
 * Error rule: fallible calls return 0 (or a documented value >= 0) on
 * success and a negative code on failure (see concur/error.h). concur never
 * sets errno and never aborts on bad input; misuse that can only be a bug
 * (using a destroyed object) is caught by assert in debug builds.
 */
#ifndef CONCUR_H
#define CONCUR_H

#include "concur/time.h"
#include "concur/error.h"
#include "concur/sync.h"
#include "concur/thread.h"
#include "concur/future.h"
#include "concur/queue.h"
#include "concur/executor.h"
#include "concur/process.h"
#include "concur/loop.h"
#include "concur/trace.h"

#define CONCUR_VERSION_MAJOR 0
#define CONCUR_VERSION_MINOR 1
#define CONCUR_VERSION_PATCH 0

#endif /* CONCUR_H */
