/*
 * shm_killed_creator.c — a worker process creates a named shared memory
 * segment, hands its name over and is killed with SIGKILL before it can
 * unlink it. The name does not stay in /dev/shm: the worker's resource
 * tracker (its fork-server launcher) unlinks it when the worker dies and
 * says so on stderr.
 *
 * In Python:
 *
 *     from multiprocessing import Process, Pipe, shared_memory
 *     import os, signal
 *
 *     def worker(conn):
 *         shm = shared_memory.SharedMemory(create=True, size=4096)
 *         shm.buf[:5] = b"hello"
 *         conn.send(shm.name)
 *         signal.pause()                 # killed before shm.unlink()
 *
 *     if __name__ == "__main__":
 *         a, b = Pipe()
 *         p = Process(target=worker, args=(b,)); p.start()
 *         shm = shared_memory.SharedMemory(a.recv())
 *         print(bytes(shm.buf[:5])); shm.close()
 *         p.kill(); p.join()
 *         # resource_tracker: ... leaked shared_memory objects ...
 *
 * Usage: shm_killed_creator
 */
#include <concur.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int worker(void *arg, size_t len)
{
    int fd;
    memcpy(&fd, arg, sizeof fd);
    (void)len;
    cc_conn *conn;
    if (cc_conn_from_fd(&conn, fd) != 0)
        return 2;
    cc_shm *shm;
    char name[CC_SHM_NAME_MAX];
    if (cc_shm_create(&shm, 4096, name, sizeof name) != 0)
        return 3;
    memcpy(cc_shm_data(shm), "hello", 6);
    if (cc_conn_send(conn, name, strlen(name) + 1) != 0)
        return 4;
    for (;;)
        pause(); /* killed before cc_shm_free */
}

int main(void)
{
    cc_process_init();
    cc_conn *mine, *theirs;
    if (cc_pipe_new(&mine, &theirs, true) != 0)
        return 1;
    int fd = cc_conn_fd(theirs);
    cc_process_options opts = {.pass_fds = &fd, .n_pass_fds = 1};
    cc_process *p;
    if (cc_process_new(&p, worker, &fd, sizeof fd, &opts) != 0 ||
        cc_process_start(p) != 0)
        return 1;
    cc_conn_free(theirs);

    char *name;
    size_t len;
    int rc = cc_conn_recv(mine, (void **)&name, &len, CC_SEC(30));
    if (rc != 0 || len == 0 || name[len - 1] != '\0') {
        fprintf(stderr, "no name from the worker: %s\n", cc_strerror(rc));
        return 1;
    }
    cc_shm *shm;
    if (cc_shm_open(&shm, name) != 0)
        return 1;
    printf("worker %d created %s: \"%s\"\n", (int)cc_process_pid(p), name,
           (char *)cc_shm_data(shm));
    cc_shm_free(shm); /* not the creator: unmaps, does not unlink */

    cc_process_kill(p);
    cc_process_join(p, CC_FOREVER);
    int code;
    cc_process_exitcode(p, &code);
    printf("worker killed (exit code %d) without unlinking\n", code);

    /* Its tracker notices the death and unlinks the name; poll for it. */
    int64_t start = cc_monotonic_ns();
    while (cc_shm_open(&shm, name) == 0) {
        cc_shm_free(shm);
        if (cc_monotonic_ns() - start > CC_SEC(10)) {
            printf("%s is still there\n", name);
            return 1;
        }
        cc_sleep(CC_MSEC(1));
    }
    printf("%s is gone from /dev/shm\n", name);
    free(name);
    cc_process_free(p);
    cc_conn_free(mine);
    return 0;
}
