/*
 * poller.h — the I/O readiness contract the event loop is written against.
 *
 * One implementation file per kernel facility, picked by CMake:
 * poller_epoll.c today; an io_uring back-end would implement the same calls
 * (readiness through IORING_OP_POLL_ADD, the wake through a registered
 * eventfd or IORING_OP_MSG_RING) without the loop changing.
 *
 * Thread rules: cci_poller_wake may be called from any thread and from a
 * signal handler (it is async-signal-safe); every other call belongs to the
 * thread that runs the loop owning the poller.
 */
#ifndef CCI_POLLER_H
#define CCI_POLLER_H

#include <stdint.h>

#define CCI_POLL_IN 1u   /* readable, or the peer hung up */
#define CCI_POLL_OUT 2u  /* writable */
#define CCI_POLL_ERR 4u  /* error or hang-up: reported with IN/OUT too */
#define CCI_POLL_EDGE 8u /* report a change of readiness once (edge mode) */
#define CCI_POLL_HUP 16u /* the peer closed its side (reported with IN) */

typedef struct cci_poller cci_poller;

typedef struct cci_poll_event {
    void *data;      /* what cci_poller_set registered with the fd */
    uint32_t events; /* CCI_POLL_* */
} cci_poll_event;

/* Creates a poller with its own wake-up channel. Errors: -ENOMEM, -EMFILE
 * and other negative errno values from the kernel. */
int cci_poller_new(cci_poller **out);
void cci_poller_free(cci_poller *p);

/*
 * Sets what fd is watched for. old is what was registered before (0: not
 * registered), events what is wanted now (0: stop watching). data (never
 * NULL) comes back with every event for fd. Costs one system call when
 * old != events and none otherwise.
 * Errors: negative errno (-EBADF, -EPERM for regular files, -ENOMEM).
 */
int cci_poller_set(cci_poller *p, int fd, uint32_t old, uint32_t events,
                   void *data);

/*
 * Waits until an fd is ready, the poller is woken, or timeout_ns passes
 * (-1: no limit, 0: just look). Writes at most max events and returns how
 * many (0 after a wake-up or a timeout), or -EINTR. A wake-up is consumed
 * here and never reported as an event.
 */
int cci_poller_wait(cci_poller *p, cci_poll_event *events, int max,
                    int64_t timeout_ns);

/* Makes the current or next cci_poller_wait return. Wakes coalesce: many
 * calls before the waiter runs cost it one wake-up. Async-signal-safe. */
void cci_poller_wake(cci_poller *p);

#endif /* CCI_POLLER_H */
