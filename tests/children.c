/* children.c — the harness's checks for child processes: none may be left
 * behind by a test, zombies included (see harness.h). */
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "process/process_internal.h"

/* Appends the pids listed in /proc/PID/task/<tid>/children for every task
 * of pid (zombies included: a zombie is still a child). */
static int list_children(pid_t pid, pid_t *out, int cap)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char file[320];
        snprintf(file, sizeof file, "/proc/%d/task/%s/children", (int)pid,
                 e->d_name);
        FILE *f = fopen(file, "r");
        if (!f)
            continue;
        int c;
        while (n < cap && fscanf(f, "%d", &c) == 1)
            out[n++] = c;
        fclose(f);
    }
    closedir(d);
    return n;
}

/* Children of ours and of the launcher, the launcher itself excepted. */
int cct_child_count(void)
{
    pid_t kids[256];
    pid_t launcher = cci_forkserver_pid();
    int n = list_children(getpid(), kids, 256), count = 0;
    for (int i = 0; i < n; i++)
        count += kids[i] != launcher;
    if (launcher > 0)
        count += list_children(launcher, kids, 256);
    return count;
}

static bool no_children(void *ctx)
{
    (void)ctx;
    return cct_child_count() == 0;
}

int cct_children_teardown(void **state)
{
    int rc = 0;
    if (!cct_wait_until(no_children, NULL, CC_SEC(5))) {
        fprintf(stderr, "leak: %d child processes remain\n",
                cct_child_count());
        rc = -1;
    }
    return cct_teardown(state) < 0 ? -1 : rc;
}

/* A pid that no longer runs: gone from /proc, or a zombie waiting for its
 * (new) parent to reap it. */
bool cct_pid_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *rp = strrchr(buf, ')');
    return !rp || rp[1] == 0 || rp[2] == 'Z' || rp[2] == 'X';
}

bool cct_pid_gone_pred(void *ctx)
{
    return cct_pid_gone(*(pid_t *)ctx);
}
