/*
 * harness.h — what every concur test file shares.
 *
 * Include it instead of <cmocka.h>. Register tests with CCT_TEST(fn): each
 * test then runs between cct_setup, which counts the process's threads and
 * open file descriptors, and cct_teardown, which fails the test if either
 * count has not come back within a few seconds (threads take a moment to
 * vanish from /proc after a join).
 */
#ifndef CCT_HARNESS_H
#define CCT_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>

#include "concur.h"

int cct_setup(void **state);
int cct_teardown(void **state);

#define CCT_TEST(fn) cmocka_unit_test_setup_teardown(fn, cct_setup, cct_teardown)

/* Threads of this process (entries in /proc/self/task). */
int cct_thread_count(void);
/* Open file descriptors (entries in /proc/self/fd, minus the one used to
 * list them). */
int cct_fd_count(void);

/* Polls pred(ctx) every millisecond until it is true or timeout passes;
 * returns whether it became true. Tests wait this way instead of sleeping
 * fixed times. */
bool cct_wait_until(bool (*pred)(void *ctx), void *ctx, cc_duration timeout);

/* Runs the program at path (no arguments) in a child process, collects
 * what it writes to stdout into out (NUL-terminated, at most cap - 1
 * bytes) and returns its exit status as waitpid reports it, or -1 if it
 * could not be run. */
int cct_run_program(const char *path, char *out, size_t cap);

/* Creates an empty file from a mkstemp template (…XXXXXX, rewritten in
 * place) and closes it; fails the test if it cannot. The caller unlinks. */
void cct_temp_file(char *path);

/* What cc_dump prints now, as a string (caller frees). */
char *cct_dump_text(void);

/* Runs python3 with script (the text of a program) and arg (its
 * arguments, a file first); returns its exit status as system() does (0:
 * the script's checks passed). On failure the file is copied to stderr,
 * for the reader. */
int cct_python_check(const char *script, const char *arg);

/* Child processes (children.c). cct_child_count counts this process's
 * children and the fork-server launcher's, zombies included, the launcher
 * itself excepted. CCT_PROCESS_TEST(fn) runs a test between cct_setup and
 * cct_children_teardown, which also fails the test if a child remains. */
int cct_child_count(void);
int cct_children_teardown(void **state);
#define CCT_PROCESS_TEST(fn) \
    cmocka_unit_test_setup_teardown(fn, cct_setup, cct_children_teardown)
/* A pid that no longer runs: gone from /proc, or a zombie waiting for its
 * (new) parent. The _pred form takes a pid_t * for cct_wait_until. */
bool cct_pid_gone(pid_t pid);
bool cct_pid_gone_pred(void *ctx);

/* Seconds elapsed since start_ns (from cc_monotonic_ns). */
double cct_seconds_since(int64_t start_ns);

/* Runs the group with the harness's per-test checks and returns what
 * cmocka_run_group_tests returns. */
#define CCT_RUN(tests) cmocka_run_group_tests(tests, NULL, NULL)

#endif /* CCT_HARNESS_H */
