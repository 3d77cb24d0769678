/*
 * loop_tasks.c — what is my event loop doing? A loop runs in its own
 * thread with a few coroutines, each waiting on something different; the
 * main thread prints the thread dump, whose "Loop" section lists every
 * task and what it awaits, for how long.
 *
 * The Python it mirrors (asyncio, run from another thread):
 *
 *     import asyncio, threading, time
 *
 *     async def cook(oven):      await oven.wait()
 *     async def serve(orders):   await orders.get()
 *     async def heartbeat():     await asyncio.sleep(60)
 *     async def restaurant():
 *         oven, orders = asyncio.Event(), asyncio.Queue()
 *         await asyncio.gather(cook(oven), serve(orders), heartbeat(),
 *                              asyncio.to_thread(time.sleep, 0.3))
 *
 *     # in another thread, while it runs:
 *     for task in asyncio.all_tasks(loop):
 *         task.print_stack()
 *
 * Here the same view comes from cc_dump (or kill -QUIT with
 * CONCUR_DUMP_ON_SIGQUIT=1), and names given with cc_name_set — to the
 * loop, the tasks' futures, the event and the queue — are what it prints.
 * The main thread then ends the scene through call_soon_threadsafe.
 */
#include <concur.h>
#include <stdio.h>

struct kitchen {
    cc_loop *loop;
    cc_async_event oven_hot;
    cc_async_queue *orders;
    cc_future *heartbeat;
};

static int cook(void *arg, void **result)
{
    (void)result;
    struct kitchen *k = arg;
    return cc_async_event_wait(&k->oven_hot, CC_FOREVER);
}

static int serve(void *arg, void **result)
{
    struct kitchen *k = arg;
    return cc_async_queue_get(k->orders, result, CC_SEC(60));
}

static int heartbeat(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = cc_async_sleep(CC_SEC(60));
    return rc == -ECANCELED ? 0 : rc; /* cancelled at closing time */
}

/* Blocking work, run in the loop's default executor (asyncio.to_thread). */
static int blocking_bookkeeping(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return cc_sleep(CC_MSEC(300));
}

static int restaurant(void *arg, void **result)
{
    (void)result;
    struct kitchen *k = arg;
    cc_future *fs[4];
    cc_create_task(cook, k, &fs[0]);
    cc_create_task(serve, k, &fs[1]);
    cc_create_task(heartbeat, k, &fs[2]);
    cc_loop_run_in_executor(k->loop, NULL, blocking_bookkeeping, NULL, &fs[3]);
    const char *names[] = {"cook", "serve", "heartbeat", "bookkeeping"};
    for (int i = 0; i < 4; i++)
        cc_name_set(fs[i], names[i]);
    k->heartbeat = fs[2];
    int rc = cc_gather(fs, 4);
    for (int i = 0; i < 4; i++) {
        cc_name_clear(fs[i]);
        cc_future_unref(fs[i]);
    }
    return rc;
}

/* Runs on the loop's thread, scheduled from main: closing time. */
static void close_kitchen(cc_loop *loop, void *ctx)
{
    (void)loop;
    struct kitchen *k = ctx;
    cc_async_event_set(&k->oven_hot);
    cc_async_queue_put(k->orders, "soup", CC_NOWAIT);
    cc_task_cancel(k->heartbeat);
}

struct run {
    cc_loop *loop;
    cc_future *main;
};

static int run_loop(void *arg)
{
    struct run *r = arg;
    return cc_loop_run_until_complete(r->loop, r->main);
}

int main(void)
{
    struct kitchen k = {0};
    cc_loop_new(&k.loop, NULL);
    cc_async_event_init(&k.oven_hot);
    cc_async_queue_new(&k.orders, 0);
    cc_name_set(k.loop, "restaurant loop");
    cc_name_set(&k.oven_hot, "oven hot");
    cc_name_set(k.orders, "orders");

    struct run r = {k.loop, NULL};
    cc_loop_create_task(k.loop, restaurant, &k, &r.main);
    cc_name_set(r.main, "restaurant");
    cc_thread *t;
    cc_thread_options o = {.name = "loop thread"};
    cc_thread_new(&t, run_loop, &r, &o);
    cc_thread_start(t);

    cc_sleep(CC_MSEC(100)); /* let every task reach its wait */
    cc_dump(stdout);

    cc_loop_call_soon_threadsafe(k.loop, close_kitchen, &k);
    cc_thread_join(t, CC_FOREVER);
    int status = -1;
    cc_thread_status(t, &status);
    cc_thread_unref(t);
    printf("the restaurant closed: %s\n", cc_strerror(status));
    cc_name_clear(r.main);
    cc_future_unref(r.main);
    cc_loop_free(k.loop);
    cc_async_event_destroy(&k.oven_hot);
    cc_async_queue_free(k.orders);
    return status == 0 ? 0 : 1;
}
