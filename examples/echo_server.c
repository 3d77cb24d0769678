/*
 * echo_server.c — a TCP echo server and a few clients, all in one program
 * on one thread: the server answers every line it reads; each client sends
 * some lines and checks the answers.
 *
 * The Python it mirrors (asyncio streams):
 *
 *     import asyncio
 *
 *     async def handle(reader, writer):
 *         while line := await reader.readline():
 *             writer.write(line)
 *             await writer.drain()
 *         writer.close()
 *
 *     async def client(port, name):
 *         reader, writer = await asyncio.open_connection('127.0.0.1', port)
 *         for i in range(3):
 *             writer.write(f"{name} says hello {i}\n".encode())
 *             await writer.drain()
 *             print("echoed:", (await reader.readline()).decode(), end="")
 *         writer.close()
 *
 *     async def main():
 *         server = await asyncio.start_server(handle, '127.0.0.1', 0)
 *         port = server.sockets[0].getsockname()[1]
 *         await asyncio.gather(*(client(port, f"client-{i}") for i in
 * range(3))) server.close()
 *
 *     asyncio.run(main())
 *
 * Every wait has a timeout here, as a real server's should.
 *
 * Usage: echo_server [CLIENTS]   (default 3)
 */
#include <concur.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int handle(cc_stream *s, void *ctx)
{
    (void)ctx;
    char line[1024];
    ssize_t n;
    while ((n = cc_stream_readline(s, line, sizeof line, CC_SEC(10))) > 0) {
        cc_stream_write(s, line, (size_t)n);
        if (cc_stream_drain(s, CC_SEC(10)) < 0)
            break;
    }
    return 0; /* the stream is closed when the handler returns */
}

typedef struct client_arg {
    uint16_t port;
    int id;
} client_arg;

static int client(void *arg, void **result)
{
    (void)result;
    client_arg *a = arg;
    cc_stream *s;
    int rc = cc_open_connection("127.0.0.1", a->port, CC_SEC(5), &s);
    if (rc < 0)
        return rc;
    for (int i = 0; i < 3 && rc >= 0; i++) {
        char out[64], in[64];
        int len =
            snprintf(out, sizeof out, "client-%d says hello %d\n", a->id, i);
        rc = cc_stream_write(s, out, (size_t)len);
        if (rc == 0)
            rc = cc_stream_drain(s, CC_SEC(5));
        ssize_t n =
            rc < 0 ? rc : cc_stream_readline(s, in, sizeof in, CC_SEC(5));
        if (n > 0)
            printf("echoed: %.*s", (int)n, in);
        rc = n > 0 ? 0 : n == 0 ? -EPIPE : (int)n;
    }
    cc_stream_close(s);
    return rc;
}

static int main_task(void *arg, void **result)
{
    (void)result;
    int clients = *(int *)arg;
    cc_server *server;
    int rc = cc_start_server(NULL, "127.0.0.1", 0, handle, NULL, &server);
    if (rc < 0)
        return rc;
    uint16_t port = cc_server_port(server);
    printf("serving on 127.0.0.1:%u\n", (unsigned)port);
    client_arg *args = calloc((size_t)clients, sizeof *args);
    cc_future **tasks = calloc((size_t)clients, sizeof *tasks);
    for (int i = 0; i < clients; i++) {
        args[i] = (client_arg){port, i};
        cc_create_task(client, &args[i], &tasks[i]);
    }
    rc = cc_gather(tasks, (size_t)clients);
    for (int i = 0; i < clients; i++)
        cc_future_unref(tasks[i]);
    free(tasks);
    free(args);
    cc_server_free(server);
    return rc;
}

int main(int argc, char **argv)
{
    int clients = argc > 1 ? atoi(argv[1]) : 3;
    int rc = cc_run(main_task, &clients, NULL);
    if (rc < 0)
        fprintf(stderr, "failed: %s\n", cc_strerror(rc));
    return rc < 0;
}
