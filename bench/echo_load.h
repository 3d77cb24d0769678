/*
 * bench/echo_load.h — a load generator for TCP echo servers on loopback.
 *
 * The client of an echo benchmark must not be what limits the figure, and
 * a client in the measuring process's own thread is: on two CPUs it shares
 * them with the server under test, and it costs about as much per request
 * as a good server (the same send and receive system calls). So the load
 * comes from child processes, forked once and kept for the whole suite,
 * each pinned to a CPU of its own and driving a share of the connections
 * with epoll. The server under test is meant to be pinned to the one CPU
 * left out (echo_load_server_cpu), so that each side has a core to itself.
 *
 * Every connection carries one 64-byte message at a time: send, wait for
 * all 64 bytes to come back, check them, send the next (no pipelining).
 * A run does exactly `requests` round trips in all, taken from one counter
 * shared by every child, so no connection runs alone at the end while the
 * others wait for it. Connections are opened and warmed up (one untimed
 * round trip each, so the server has accepted all of them) before the
 * clock starts; the time runs from the first child's start to the last
 * child's end.
 *
 * While waiting the children poll (epoll_wait with no timeout) for up to
 * 100 us before they sleep: a client on its own CPU then never adds a
 * wake-up of that CPU (60-70 us on these virtual machines) to a round
 * trip. The time spent waiting is counted, so each run also tells how busy
 * the client was: well under 100 % means the server set the pace.
 */
#ifndef CONCUR_BENCH_ECHO_LOAD_H
#define CONCUR_BENCH_ECHO_LOAD_H

#include <stdint.h>

#define ECHO_LOAD_MSG 64

typedef struct echo_load echo_load;

/* What one run measured besides its time. */
typedef struct echo_load_stats {
    int64_t wall_ns;  /* summed over the children: each one's run time */
    int64_t idle_ns;  /* of that, spent waiting for the server */
} echo_load_stats;

/*
 * Forks the client processes. With two or more CPUs allowed to this
 * process, one of them (the first) is kept for the server and every other
 * gets one child pinned to it (at most 8); with one CPU there is one
 * unpinned child. Call it before starting threads, so the children are
 * copies of a single-threaded process. Returns 0 or a negative errno.
 */
int echo_load_start(echo_load **out);

/* The CPU to pin the server under test to, or -1 for no pinning. */
int echo_load_server_cpu(const echo_load *l);

/* How many client processes there are. */
int echo_load_clients(const echo_load *l);

/*
 * Opens nconn connections to 127.0.0.1:port (shared out between the
 * children), warms them up, does `requests` round trips over them and
 * closes them. Returns the nanoseconds the round trips took, or a negative
 * error code: -ETIMEDOUT when the server stopped answering for 10 s, -EIO
 * when it echoed something else, -EPIPE when it closed a connection,
 * -ECHILD when a client process died. stats may be NULL.
 */
int64_t echo_load_run(echo_load *l, uint16_t port, int nconn,
                      uint64_t requests, echo_load_stats *stats);

/* Ends the client processes and waits for them. NULL is ignored. */
void echo_load_stop(echo_load *l);

#endif /* CONCUR_BENCH_ECHO_LOAD_H */
