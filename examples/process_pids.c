/*
 * process_pids.c — three child processes, each printing its PID.
 *
 * The Python it mirrors (multiprocessing):
 *
 *     from multiprocessing import Process
 *     import os
 *
 *     def task(name):
 *         print(f"Process {name} running on PID: {os.getpid()}")
 *
 *     processes = [Process(target=task, args=(i,)) for i in range(3)]
 *     for p in processes:
 *         p.start()
 *     for p in processes:
 *         p.join()
 *
 * Python's args=(i,) are pickled and sent to the child; here the argument
 * is bytes that concur copies into the child (a pointer would mean nothing
 * in a child forked from the fork server). cc_process_init at the top of
 * main starts the fork server while the program has only one thread.
 */
#include <concur.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int task(void *arg, size_t len)
{
    int name;
    memcpy(&name, arg, sizeof name);
    (void)len;
    printf("Process %d running on PID: %ld\n", name, (long)getpid());
    return 0;
}

int main(void)
{
    int rc = cc_process_init();
    if (rc < 0) {
        fprintf(stderr, "cc_process_init: %s\n", cc_strerror(rc));
        return 1;
    }
    printf("Parent running on PID: %ld\n", (long)getpid());
    fflush(stdout);
    cc_process *processes[3];
    for (int i = 0; i < 3; i++) {
        rc = cc_process_new(&processes[i], task, &i, sizeof i, NULL);
        if (rc < 0) {
            fprintf(stderr, "cc_process_new: %s\n", cc_strerror(rc));
            return 1;
        }
    }
    for (int i = 0; i < 3; i++)
        if ((rc = cc_process_start(processes[i])) < 0) {
            fprintf(stderr, "cc_process_start: %s\n", cc_strerror(rc));
            return 1;
        }
    for (int i = 0; i < 3; i++) {
        int code = -1;
        cc_process_join(processes[i], CC_FOREVER);
        cc_process_exitcode(processes[i], &code);
        if (code != 0)
            fprintf(stderr, "process %d exited with %d\n", i, code);
        cc_process_free(processes[i]);
    }
    return 0;
}
