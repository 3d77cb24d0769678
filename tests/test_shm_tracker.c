/*
 * The resource tracker of named shared memory (src/process/shm_tracker.c),
 * with real processes: a program killed with SIGKILL does not leave its
 * segments in /dev/shm, a segment unlinked normally is neither unlinked
 * again nor reported, and malformed registrations cannot make the tracker
 * unlink anything. After every test: no thread, fd, child or zombie left.
 */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "process/process_internal.h"

#define PT(fn) CCT_PROCESS_TEST(fn)

static bool shm_exists(const char *name)
{
    char path[128];
    snprintf(path, sizeof path, "/dev/shm%s", name);
    return access(path, F_OK) == 0;
}

static bool shm_gone_pred(void *ctx)
{
    return !shm_exists(ctx);
}

/* Reads until EOF (or the bound passes) into buf, NUL-terminated. */
static size_t read_to_eof(int fd, char *buf, size_t cap, cc_duration bound)
{
    size_t got = 0;
    int64_t start = cc_monotonic_ns();
    while (got + 1 < cap && cct_seconds_since(start) * 1e9 < (double)bound) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

/* ---- a program killed with SIGKILL -------------------------------------------- */

struct program_arg {
    int names; /* pipe: the two names, kept and freed */
    int err;   /* pipe: becomes stderr, the tracker's included */
};

/* A program of its own (it starts its own launcher, which is its tracker):
 * creates a segment and frees it, creates another and keeps it, reports
 * both names, then waits to be killed. */
static int program_main(void *arg, size_t len)
{
    struct program_arg a;
    memcpy(&a, arg, sizeof a);
    (void)len;
    if (dup2(a.err, 2) < 0)
        return 2;
    close(a.err);
    char names[2][CC_SHM_NAME_MAX];
    cc_shm *freed, *kept;
    if (cc_shm_create(&freed, 4096, names[0], sizeof names[0]) != 0)
        return 3;
    cc_shm_free(freed);
    if (cc_shm_create(&kept, 4096, names[1], sizeof names[1]) != 0)
        return 4;
    memset(cc_shm_data(kept), 1, 4096);
    if (write(a.names, names, sizeof names) != (ssize_t)sizeof names)
        return 5;
    for (;;)
        pause();
    return 0;
}

static void test_sigkilled_creator_leaves_no_name(void **state)
{
    (void)state;
    int names[2], err[2];
    assert_int_equal(pipe2(names, O_CLOEXEC), 0);
    assert_int_equal(pipe2(err, O_CLOEXEC), 0);
    struct program_arg a = {names[1], err[1]};
    int pass[2] = {names[1], err[1]};
    cc_process_options o = {.pass_fds = pass, .n_pass_fds = 2};
    cc_process *p;
    assert_int_equal(cc_process_new(&p, program_main, &a, sizeof a, &o), 0);
    assert_int_equal(cc_process_start(p), 0);
    close(names[1]);
    close(err[1]);

    char got[2][CC_SHM_NAME_MAX];
    struct pollfd pf = {.fd = names[0], .events = POLLIN};
    assert_int_equal(poll(&pf, 1, 30000), 1);
    assert_int_equal(read(names[0], got, sizeof got), (ssize_t)sizeof got);
    assert_true(cci_shm_name_valid(got[0]));
    assert_true(cci_shm_name_valid(got[1]));
    assert_false(shm_exists(got[0]));
    assert_true(shm_exists(got[1]));

    assert_int_equal(cc_process_kill(p), 0);
    assert_int_equal(cc_process_join(p, CC_SEC(30)), 0);
    int code;
    assert_int_equal(cc_process_exitcode(p, &code), 1);
    assert_int_equal(code, -SIGKILL);
    cc_process_free(p);

    /* Its launcher sees EOF, unlinks the kept name, says so, and exits
     * (closing the last copy of the stderr pipe). */
    assert_true(cct_wait_until(shm_gone_pred, got[1], CC_SEC(30)));
    char text[4096];
    read_to_eof(err[0], text, sizeof text, CC_SEC(30));
    assert_non_null(strstr(text, "resource tracker"));
    assert_non_null(strstr(text, got[1]));
    assert_null(strstr(text, got[0]));
    close(names[0]);
    close(err[0]);
}

/* ---- this process's own tracker ------------------------------------------------ */

/* A real segment named name (an exact concur name or not), made without
 * cc_shm_create so that nothing registers it. */
static void make_segment(const char *name)
{
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
}

/* Sends a tracker datagram of len bytes whose name field holds exactly
 * the CC_SHM_NAME_MAX bytes of name (padding included). */
static void send_raw(uint32_t magic, uint32_t op, const char *name,
                     size_t len, const int *fds, size_t nfds)
{
    struct {
        struct cci_track_msg m;
        char extra[16];
    } raw;
    memset(&raw, 0, sizeof raw);
    raw.m.magic = magic;
    raw.m.op = op;
    memcpy(raw.m.name, name, sizeof raw.m.name);
    assert_int_equal(cci_forkserver_notify(&raw, len, fds, nfds, true), 0);
}

/* The same with a string, NUL-padded. */
static void send_track(uint32_t magic, uint32_t op, const char *name,
                       size_t len, const int *fds, size_t nfds)
{
    char padded[CC_SHM_NAME_MAX] = {0};
    assert_true(strlen(name) < sizeof padded);
    memcpy(padded, name, strlen(name));
    send_raw(magic, op, padded, len, fds, nfds);
}

static int child_ok(void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return 0;
}

static void random_name(char *name)
{
    cc_shm *s;
    char tmp[CC_SHM_NAME_MAX];
    /* A fresh valid name: create one, then remove it the normal way. */
    assert_int_equal(cc_shm_create(&s, 1, tmp, sizeof tmp), 0);
    cc_shm_free(s);
    memcpy(name, tmp, sizeof tmp);
}

static void test_malformed_registrations_ignored(void **state)
{
    (void)state;
    const size_t full = sizeof(struct cci_track_msg);
    /* Segments that exist, registered only in malformed ways. */
    char valid[CC_SHM_NAME_MAX], upper[CC_SHM_NAME_MAX], longer[CC_SHM_NAME_MAX];
    random_name(valid);
    make_segment(valid);
    memcpy(upper, valid, sizeof valid);
    memcpy(upper + 8, "ABCDEF", 6); /* uppercase hex: not our format */
    make_segment(upper);
    memcpy(longer, valid, 40); /* one digit too many */
    memcpy(longer + 40, "0", 2);
    make_segment(longer);
    /* A file outside /dev/shm, named through "..". */
    char tmp[] = "/tmp/concur-tracker-XXXXXX";
    cct_temp_file(tmp);
    char escape[CC_SHM_NAME_MAX];
    snprintf(escape, sizeof escape, "/concur-../../..%s", tmp);

    send_track(CCI_TRACK_MAGIC, CCI_TRACK_REGISTER, upper, full, NULL, 0);
    send_track(CCI_TRACK_MAGIC, CCI_TRACK_REGISTER, longer, full, NULL, 0);
    send_track(CCI_TRACK_MAGIC, CCI_TRACK_REGISTER, escape, full, NULL, 0);
    send_track(CCI_TRACK_MAGIC, CCI_TRACK_REGISTER, "/etc/passwd", full,
               NULL, 0);
    /* The valid name, in malformed messages: short, long, wrong magic,
     * unknown operation, a descriptor attached, no NUL, garbage after it. */
    send_track(CCI_TRACK_MAGIC, CCI_TRACK_REGISTER, valid, full - 1, NULL, 0);
    send_track(CCI_TRACK_MAGIC, CCI_TRACK_REGISTER, valid, full + 8, NULL, 0);
    send_track(CCI_TRACK_MAGIC + 1, CCI_TRACK_REGISTER, valid, full, NULL, 0);
    send_track(CCI_TRACK_MAGIC, 7, valid, full, NULL, 0);
    int one = 1;
    send_track(CCI_TRACK_MAGIC, CCI_TRACK_REGISTER, valid, full, &one, 1);
    char raw[CC_SHM_NAME_MAX];
    memset(raw, 'a', sizeof raw);
    memcpy(raw, valid, strlen(valid));
    send_raw(CCI_TRACK_MAGIC, CCI_TRACK_REGISTER, raw, full, NULL, 0);
    memset(raw, 0, sizeof raw);
    memcpy(raw, valid, strlen(valid));
    raw[sizeof raw - 2] = 'x';
    send_raw(CCI_TRACK_MAGIC, CCI_TRACK_REGISTER, raw, full, NULL, 0);
    /* The launcher still serves children after all that (no stray reply
     * was queued for the next request to mistake for its own). */
    cc_process *p;
    assert_int_equal(cc_process_new(&p, child_ok, NULL, 0, NULL), 0);
    assert_int_equal(cc_process_start(p), 0);
    assert_int_equal(cc_process_join(p, CC_SEC(30)), 0);
    int code = -1;
    assert_int_equal(cc_process_exitcode(p, &code), 1);
    assert_int_equal(code, 0);
    cc_process_free(p);

    /* One well-formed registration, so that the EOF below proves the
     * tracker acts on what it should. */
    char good[CC_SHM_NAME_MAX];
    random_name(good);
    make_segment(good);
    send_track(CCI_TRACK_MAGIC, CCI_TRACK_REGISTER, good, full, NULL, 0);

    /* EOF: the launcher unlinks what is registered, then exits; stop
     * waits for it. */
    cci_forkserver_stop();
    assert_int_equal(cci_forkserver_pid(), 0);
    assert_false(shm_exists(good));
    assert_true(shm_exists(valid));
    assert_true(shm_exists(upper));
    assert_true(shm_exists(longer));
    assert_int_equal(access(tmp, F_OK), 0);
    shm_unlink(valid);
    shm_unlink(upper);
    shm_unlink(longer);
    unlink(tmp);
    assert_int_equal(cc_process_init(), 0); /* for the next tests */
}

/* A segment its creator frees is unregistered: the tracker's EOF leaves
 * a segment of the same name alone (someone else's, say). */
static void test_unlinked_segment_forgotten(void **state)
{
    (void)state;
    char name[CC_SHM_NAME_MAX];
    cc_shm *s;
    assert_int_equal(cc_shm_create(&s, 4096, name, sizeof name), 0);
    assert_true(shm_exists(name));
    assert_int_equal(cc_shm_unlink(s), 0);
    assert_false(shm_exists(name));
    make_segment(name);
    cci_forkserver_stop();
    assert_true(shm_exists(name));
    shm_unlink(name);
    cc_shm_free(s);
    assert_int_equal(cc_process_init(), 0);
}

/* Without cc_process_init the first named segment starts the launcher. */
static void test_tracker_started_lazily(void **state)
{
    (void)state;
    cci_forkserver_stop();
    assert_int_equal(cci_forkserver_pid(), 0);
    char name[CC_SHM_NAME_MAX];
    cc_shm *s;
    assert_int_equal(cc_shm_create(&s, 4096, name, sizeof name), 0);
    assert_true(cci_forkserver_pid() > 0);
    cc_shm_free(s);
    assert_false(shm_exists(name));
}

int main(void)
{
    /* Before any thread: the launcher is a single-threaded copy. */
    if (cc_process_init() != 0) {
        fprintf(stderr, "cc_process_init failed\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        PT(test_sigkilled_creator_leaves_no_name),
        PT(test_malformed_registrations_ignored),
        PT(test_unlinked_segment_forgotten),
        PT(test_tracker_started_lazily),
    };
    return CCT_RUN(tests);
}
