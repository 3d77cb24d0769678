/*
 * print_numbers.c — two threads print the numbers 0..4, sleeping between
 * numbers, and the main thread waits for both.
 *
 * The Python it mirrors (threading):
 *
 *     import threading, time
 *
 *     def print_numbers():
 *         for i in range(5):
 *             print(f"Number: {i}")
 *             time.sleep(1)
 *
 *     thread1 = threading.Thread(target=print_numbers)
 *     thread2 = threading.Thread(target=print_numbers)
 *     thread1.start()
 *     thread2.start()
 *     thread1.join()
 *     thread2.join()
 *     print("Threads completed.")
 *
 * Usage: print_numbers [SECONDS]   the pause between numbers (default 1).
 * The two threads' lines interleave; their exact order may vary.
 */
#include <concur.h>

#include <stdio.h>
#include <stdlib.h>

/* A thread function takes a context pointer and returns a status (0: ok). */
static int print_numbers(void *ctx)
{
    const cc_duration *pause = ctx;
    for (int i = 0; i < 5; i++) {
        printf("%s: Number: %d\n", cc_thread_name(cc_thread_current()), i);
        cc_sleep(*pause);
    }
    return 0;
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "print_numbers: %s: %s\n", what, cc_strerror(rc));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    /* Python writes durations as float seconds; cc_seconds converts. */
    cc_duration pause = argc > 1 ? cc_seconds(strtod(argv[1], NULL)) : CC_SEC(1);
    if (pause < 0) {
        fprintf(stderr, "usage: print_numbers [SECONDS]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* show each line as it is printed */

    cc_thread *thread1, *thread2;
    check(cc_thread_new(&thread1, print_numbers, &pause, NULL), "thread 1");
    check(cc_thread_new(&thread2, print_numbers, &pause, NULL), "thread 2");

    check(cc_thread_start(thread1), "start 1");
    check(cc_thread_start(thread2), "start 2");

    check(cc_thread_join(thread1, CC_FOREVER), "join 1");
    check(cc_thread_join(thread2, CC_FOREVER), "join 2");
    printf("Threads completed.\n");

    /* cc_thread_new handed us one reference to each thread; give it back. */
    cc_thread_unref(thread1);
    cc_thread_unref(thread2);
    return 0;
}
