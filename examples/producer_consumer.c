/*
 * producer_consumer.c — a two-stage pipeline joined by queues. Fetchers take
 * job numbers from `jobs` and put a page of text into `pages` (bounded, so
 * fast fetchers wait for slow counters); counters take pages and count their
 * words. The main thread waits with join until every job and every page has
 * been processed, then shuts both queues down so the threads end.
 *
 * The Python it mirrors (queue, Python 3.13 for shutdown):
 *
 *     import queue, threading
 *
 *     jobs, pages = queue.Queue(), queue.Queue(maxsize=4)
 *
 *     def fetcher():
 *         while True:
 *             try:
 *                 n = jobs.get()
 *             except queue.ShutDown:
 *                 return
 *             pages.put(f"page {n}: " + "word " * n)
 *             jobs.task_done()
 *
 *     def counter(totals, i):
 *         while True:
 *             try:
 *                 page = pages.get()
 *             except queue.ShutDown:
 *                 return
 *             totals[i] += len(page.split())
 *             pages.task_done()
 *
 *     for n in range(N):
 *         jobs.put(n)
 *     ... start 2 fetchers and 2 counters ...
 *     jobs.join()      # every job fetched: every page has been put
 *     pages.join()     # every page counted
 *     jobs.shutdown(); pages.shutdown()
 *
 * In C the queue holds pointers. Whoever gets an item owns it: the fetcher
 * frees its job, the counter frees its page. A fetcher calls task_done only
 * after its page is in `pages`, so once jobs.join returns, pages.join sees
 * every page.
 *
 * Usage: producer_consumer [JOBS]   number of jobs (default 50).
 */
#include <concur.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

enum { FETCHERS = 2, COUNTERS = 2 };

struct pipeline {
    cc_queue *jobs;  /* int * job numbers */
    cc_queue *pages; /* char * pages of text */
};

struct counter_args {
    struct pipeline *p;
    long words;
};

static char *make_page(int n)
{
    size_t len = 32 + 5 * (size_t)n;
    char *page = malloc(len);
    if (!page)
        return NULL;
    int off = snprintf(page, len, "page %d:", n);
    for (int i = 0; i < n; i++)
        off += snprintf(page + off, len - (size_t)off, " word");
    return page;
}

static long count_words(const char *s)
{
    long words = 0;
    for (int in_word = 0; *s; s++) {
        if (*s == ' ') {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    return words;
}

static int fetcher(void *ctx)
{
    struct pipeline *p = ctx;
    void *item;
    int rc;
    while ((rc = cc_queue_get(p->jobs, &item, CC_FOREVER)) == 0) {
        int *job = item;
        char *page = make_page(*job);
        free(job);
        if (!page)
            return cc_thread_fail(-ENOMEM, "cannot make a page");
        rc = cc_queue_put(p->pages, page, CC_FOREVER); /* waits while full */
        if (rc < 0) {
            free(page); /* not taken: still ours */
            return rc;
        }
        cc_queue_task_done(p->jobs);
    }
    return rc == CC_ESHUTDOWN ? 0 : rc; /* ShutDown: the normal way out */
}

static int counter(void *ctx)
{
    struct counter_args *a = ctx;
    void *item;
    int rc;
    while ((rc = cc_queue_get(a->p->pages, &item, CC_FOREVER)) == 0) {
        a->words += count_words(item);
        free(item);
        cc_queue_task_done(a->p->pages);
    }
    return rc == CC_ESHUTDOWN ? 0 : rc;
}

/* Items still queued when a queue is freed (only after an error here). */
static void free_item(void *item, void *ctx)
{
    (void)ctx;
    free(item);
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "producer_consumer: %s: %s\n", what, cc_strerror(rc));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    int n_jobs = argc > 1 ? atoi(argv[1]) : 50;
    if (n_jobs < 0) {
        fprintf(stderr, "usage: producer_consumer [JOBS]\n");
        return 2;
    }

    struct pipeline p;
    cc_queue_options jobs_opts = {.name = "jobs", .item_free = free_item};
    cc_queue_options pages_opts = {
        .name = "pages", .maxsize = 4, .item_free = free_item};
    check(cc_queue_new(&p.jobs, &jobs_opts), "new jobs");
    check(cc_queue_new(&p.pages, &pages_opts), "new pages");

    long expected = 0;
    for (int n = 0; n < n_jobs; n++) {
        int *job = malloc(sizeof *job);
        if (!job)
            check(-ENOMEM, "malloc");
        *job = n;
        check(cc_queue_put(p.jobs, job, CC_FOREVER), "put");
        expected += 2 + n; /* "page", "N:" and n times "word" */
    }

    cc_thread *threads[FETCHERS + COUNTERS];
    struct counter_args counters[COUNTERS];
    for (int i = 0; i < FETCHERS; i++)
        check(cc_thread_new(&threads[i], fetcher, &p, NULL), "thread");
    for (int i = 0; i < COUNTERS; i++) {
        counters[i] = (struct counter_args){.p = &p};
        check(
            cc_thread_new(&threads[FETCHERS + i], counter, &counters[i], NULL),
            "thread");
    }
    for (int i = 0; i < FETCHERS + COUNTERS; i++)
        check(cc_thread_start(threads[i]), "start");

    check(cc_queue_join(p.jobs, CC_FOREVER), "join jobs");
    check(cc_queue_join(p.pages, CC_FOREVER), "join pages");
    /* Everything is done; shutting down wakes the idle threads with
     * CC_ESHUTDOWN, which is how they know to return. */
    cc_queue_shutdown(p.jobs, false);
    cc_queue_shutdown(p.pages, false);

    int failed = 0;
    for (int i = 0; i < FETCHERS + COUNTERS; i++) {
        int status = 0;
        check(cc_thread_join(threads[i], CC_FOREVER), "join thread");
        cc_thread_status(threads[i], &status);
        failed |= status < 0;
        cc_thread_unref(threads[i]);
    }
    long words = 0;
    for (int i = 0; i < COUNTERS; i++) {
        printf("counter %d counted %ld words\n", i, counters[i].words);
        words += counters[i].words;
    }
    printf("%d jobs, %ld words in all (expected %ld)\n", n_jobs, words,
           expected);
    cc_queue_free(p.jobs);
    cc_queue_free(p.pages);
    return failed || words != expected;
}
