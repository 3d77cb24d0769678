#include "harness.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct baseline {
    int threads;
    int fds;
};

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

int cct_thread_count(void)
{
    return count_dir("/proc/self/task");
}

int cct_fd_count(void)
{
    return count_dir("/proc/self/fd") - 1; /* the directory's own fd */
}

bool cct_wait_until(bool (*pred)(void *ctx), void *ctx, cc_duration timeout)
{
    int64_t deadline = cc_monotonic_ns() + timeout;
    for (;;) {
        if (pred(ctx))
            return true;
        if (cc_monotonic_ns() >= deadline)
            return false;
        cc_sleep(CC_MSEC(1));
    }
}

int cct_run_program(const char *path, char *out, size_t cap)
{
    int fds[2];
    if (cap == 0 || pipe(fds) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t used = 0;
    ssize_t n;
    while (used < cap - 1 &&
           (n = read(fds[0], out + used, cap - 1 - used)) > 0)
        used += (size_t)n;
    out[used] = '\0';
    close(fds[0]);
    int wstatus;
    if (waitpid(pid, &wstatus, 0) != pid)
        return -1;
    return wstatus;
}

void cct_temp_file(char *path)
{
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
}

char *cct_dump_text(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    assert_int_equal(cc_dump(f), 0);
    fclose(f);
    return text;
}

int cct_python_check(const char *script, const char *arg)
{
    char path[] = "/tmp/concur-check-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    size_t len = strlen(script);
    bool ok = write(fd, script, len) == (ssize_t)len;
    close(fd);
    int status = -1;
    char cmd[512];
    if (ok) {
        snprintf(cmd, sizeof cmd, "python3 %s %s", path, arg);
        status = system(cmd);
        if (status != 0) {
            snprintf(cmd, sizeof cmd, "cat %.*s >&2", (int)strcspn(arg, " "),
                     arg);
            (void)!system(cmd);
        }
    }
    unlink(path);
    return status;
}

double cct_seconds_since(int64_t start_ns)
{
    return (double)(cc_monotonic_ns() - start_ns) / 1e9;
}

static void *nothing(void *arg)
{
    return arg;
}

int cct_setup(void **state)
{
    /* ThreadSanitizer starts a background thread of its own when the first
     * thread is created; create one before the first baseline so that it
     * is not counted as a leak of the first test. */
    static bool warmed_up;
    if (!warmed_up) {
        pthread_t p;
        if (pthread_create(&p, NULL, nothing, NULL) == 0)
            pthread_join(p, NULL);
        warmed_up = true;
    }
    struct baseline *b = malloc(sizeof *b);
    if (!b)
        return -1;
    b->threads = cct_thread_count();
    b->fds = cct_fd_count();
    *state = b;
    return 0;
}

static bool back_to_baseline(void *ctx)
{
    struct baseline *b = ctx;
    return cct_thread_count() <= b->threads && cct_fd_count() <= b->fds;
}

int cct_teardown(void **state)
{
    struct baseline *b = *state;
    int rc = 0;
    if (!cct_wait_until(back_to_baseline, b, CC_SEC(5))) {
        fprintf(stderr, "leak: threads %d -> %d, fds %d -> %d\n", b->threads,
                cct_thread_count(), b->fds, cct_fd_count());
        rc = -1;
    }
    free(b);
    return rc;
}
