/*
 * crawler.c — a crawler-style fan-out: fetch many "pages" from a local
 * server with at most LIMIT requests in flight (a semaphore) and a time
 * limit per request (a timeout scope). Some pages are slow on purpose and
 * time out; the crawl goes on without them.
 *
 * The Python it mirrors (asyncio, 3.11+):
 *
 *     import asyncio
 *
 *     async def fetch(port, page, limit):
 *         async with limit:                          # at most LIMIT at once
 *             async with asyncio.timeout(0.2):       # per request
 *                 reader, writer = await asyncio.open_connection(
 *                     '127.0.0.1', port)
 *                 writer.write(f"GET {page}\n".encode())
 *                 body = await reader.readline()
 *                 writer.close()
 *                 return body
 *
 *     async def main(port, pages):
 *         limit = asyncio.Semaphore(4)
 *         async with asyncio.TaskGroup() as tg:
 *             tasks = [tg.create_task(fetch(port, p, limit))
 *                      for p in range(pages)]
 *         ...                                         # print each result
 *
 * (Python's TaskGroup would cancel everything at the first TimeoutError;
 * here fetch reports the timeout as its result instead of failing, so the
 * group carries on.) The server answers "GET n" after n % 5 * 60 ms, so
 * pages 4, 9, 14, 19 (240 ms) miss the 200 ms limit.
 *
 * Usage: crawler [PAGES [LIMIT]]   (default 20 pages, 4 at a time)
 */
#include <concur.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int serve_page(cc_stream *s, void *ctx)
{
    (void)ctx;
    char req[64];
    ssize_t n = cc_stream_readline(s, req, sizeof req, CC_SEC(5));
    int page = n > 4 ? atoi(req + 4) : -1;
    if (page < 0)
        return -EPROTO;
    cc_async_sleep(CC_MSEC(page % 5 * 60)); /* a slow page */
    char body[64];
    int len = snprintf(body, sizeof body, "contents of page %d\n", page);
    cc_stream_write(s, body, (size_t)len);
    return cc_stream_drain(s, CC_SEC(5));
}

typedef struct crawl {
    uint16_t port;
    cc_async_semaphore limit;
    int in_flight, max_in_flight;
} crawl;

typedef struct fetch_arg {
    crawl *c;
    int page;
    int rc; /* the request's outcome: 0, -ETIMEDOUT, ... */
    char body[64];
} fetch_arg;

static int request(fetch_arg *f)
{
    cc_stream *s;
    int rc = cc_open_connection("127.0.0.1", f->c->port, CC_FOREVER, &s);
    if (rc < 0)
        return rc;
    char req[32];
    int len = snprintf(req, sizeof req, "GET %d\n", f->page);
    rc = cc_stream_write(s, req, (size_t)len);
    ssize_t n =
        rc < 0 ? rc
               : cc_stream_readline(s, f->body, sizeof f->body - 1, CC_FOREVER);
    if (n >= 0)
        f->body[n] = '\0';
    cc_stream_close(s);
    return n < 0 ? (int)n : 0;
}

static int fetch(void *arg, void **result)
{
    (void)result;
    fetch_arg *f = arg;
    crawl *c = f->c;
    int rc = cc_async_semaphore_acquire(&c->limit, CC_FOREVER);
    if (rc < 0)
        return rc; /* cancelled */
    if (++c->in_flight > c->max_in_flight)
        c->max_in_flight = c->in_flight;
    cc_timeout scope; /* async with asyncio.timeout(0.2) */
    cc_timeout_enter(&scope, CC_MSEC(200));
    f->rc = request(f); /* every wait inside ends by the deadline */
    if (cc_timeout_exit(&scope) == -ETIMEDOUT)
        f->rc = -ETIMEDOUT;
    c->in_flight--;
    cc_async_semaphore_release(&c->limit);
    return 0;
}

typedef struct opts {
    int pages, limit;
    uint16_t port;
} opts;

static int main_task(void *arg, void **result)
{
    (void)result;
    opts *o = arg;
    cc_server *server;
    int rc = cc_start_server(NULL, NULL, 0, serve_page, NULL, &server);
    if (rc < 0)
        return rc;
    crawl c = {.port = cc_server_port(server)};
    cc_async_semaphore_init(&c.limit, (unsigned)o->limit);
    fetch_arg *fs = calloc((size_t)o->pages, sizeof *fs);
    cc_async_group g; /* asyncio.TaskGroup: leaving waits for all */
    cc_async_group_init(&g);
    for (int i = 0; i < o->pages; i++) {
        fs[i] = (fetch_arg){.c = &c, .page = i};
        cc_async_group_spawn(&g, fetch, &fs[i], NULL);
    }
    rc = cc_async_group_join(&g);
    for (int i = 0; i < o->pages; i++) {
        if (fs[i].rc == 0)
            printf("page %2d: %s", i, fs[i].body);
        else
            printf("page %2d: %s\n", i, cc_strerror(fs[i].rc));
    }
    printf("at most %d requests were in flight\n", c.max_in_flight);
    free(fs);
    cc_async_semaphore_destroy(&c.limit);
    cc_server_free(server);
    return rc;
}

int main(int argc, char **argv)
{
    opts o = {argc > 1 ? atoi(argv[1]) : 20, argc > 2 ? atoi(argv[2]) : 4, 0};
    int rc = cc_run(main_task, &o, NULL);
    if (rc < 0)
        fprintf(stderr, "failed: %s\n", cc_strerror(rc));
    return rc < 0;
}
