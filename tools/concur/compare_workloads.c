/*
 * The workloads of `concur compare`. Each task of a workload does the same
 * work under every model; the models differ only in how the tasks are
 * spread over threads, processes and coroutines. Every task returns a
 * checksum, and the sums must agree between models (and with the Python
 * script, which implements the same arithmetic): a model that computed
 * something else is a bug, not a result.
 *
 * I/O-bound: sleep (wait a fixed latency), tcp (a request to the loopback
 * server, answered after a latency), files (read a file from a cold page
 * cache). CPU-bound: primes (trial division), mandelbrot (escape counts),
 * blur (a box blur of a grey image). The last entry is the user's --task.
 */
#include "compare.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "concur/compare.h"
#include "concur/error.h"
#include "concur/executor.h"
#include "concur/future.h"
#include "concur/loop.h"
#include "concur/process.h"
#include "concur/thread.h"

/* [n*k/parts]: the first index of part k when [0, n) is cut into parts
 * nearly equal pieces. Exact without 128-bit arithmetic as long as
 * parts^2 fits in 64 bits (tasks are limited to 10^6). */
static uint64_t split(uint64_t n, uint64_t parts, uint64_t k)
{
    return n / parts * k + n % parts * k / parts;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ==== sleep: the seeds' time.sleep ======================================= */

static int sleep_run(void *state, const cmp_params *p, uint64_t i,
                     uint64_t *sum)
{
    (void)state;
    *sum = i;
    return cc_sleep(p->latency_ns);
}

static int sleep_run_async(void *state, const cmp_params *p, uint64_t i,
                           uint64_t *sum)
{
    (void)state;
    *sum = i;
    return cc_async_sleep(p->latency_ns);
}

/* ==== tcp: request/response with a loopback server ==========================
 * A request is the task's index as a decimal line; the answer, sent after
 * the latency, is tcp_answer(index) as a decimal line. One connection per
 * request, as a client fetching from a slow service would make. */

static uint64_t tcp_answer(uint64_t i)
{
    return i * i + 1;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || (*end && *end != '\n'))
        return -EPROTO;
    *out = v;
    return 0;
}

static int tcp_run(void *state, const cmp_params *p, uint64_t i, uint64_t *sum)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    /* Every wait has a limit, so a lost answer fails the task instead of
     * hanging the run (the parent's --timeout is the last resort). */
    struct timeval tv = {30, 0};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons(p->port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = 0;
    while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno != EINTR) {
            rc = -errno;
            break;
        }
    }
    char line[64];
    int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)i);
    if (rc == 0)
        rc = write_all(fd, line, (size_t)n);
    size_t got = 0;
    while (rc == 0) {
        ssize_t k = read(fd, line + got, sizeof line - 1 - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = errno == EAGAIN ? -ETIMEDOUT : -errno;
        } else if (k == 0) {
            rc = -EPIPE;
        } else {
            got += (size_t)k;
            line[got] = 0;
            if (memchr(line, '\n', got))
                break;
            if (got == sizeof line - 1)
                rc = -EPROTO;
        }
    }
    close(fd);
    return rc < 0 ? rc : parse_u64(line, sum);
}

static int tcp_run_async(void *state, const cmp_params *p, uint64_t i,
                         uint64_t *sum)
{
    (void)state;
    cc_stream *s;
    int rc = cc_open_connection("127.0.0.1", p->port, CC_SEC(30), &s);
    if (rc < 0)
        return rc;
    char line[64];
    int n = snprintf(line, sizeof line, "%llu\n", (unsigned long long)i);
    rc = cc_stream_write(s, line, (size_t)n);
    if (rc == 0)
        rc = cc_stream_drain(s, CC_SEC(30));
    ssize_t got =
        rc < 0 ? rc : cc_stream_readline(s, line, sizeof line - 1, CC_SEC(30));
    cc_stream_close(s);
    if (got < 0)
        return (int)got;
    if (got == 0)
        return -EPIPE;
    line[got] = 0;
    return parse_u64(line, sum);
}

/* ---- the server: a child process running one event loop ----------------- */

typedef struct server_hello {
    int32_t status; /* 0 or a negative code */
    uint32_t port;
} server_hello;

static int64_t server_latency_ns;

static int serve_request(cc_stream *s, void *ctx)
{
    (void)ctx;
    char line[64];
    ssize_t n = cc_stream_readline(s, line, sizeof line - 1, CC_SEC(60));
    if (n <= 0)
        return 0;
    line[n] = 0;
    uint64_t i;
    if (parse_u64(line, &i) < 0)
        return 0;
    if (cc_async_sleep(server_latency_ns) < 0)
        return 0;
    int len = snprintf(line, sizeof line, "%llu\n",
                       (unsigned long long)tcp_answer(i));
    if (cc_stream_write(s, line, (size_t)len) == 0)
        cc_stream_drain(s, CC_SEC(60));
    return 0;
}

static int server_main(void *arg, void **result)
{
    (void)result;
    int fd = *(int *)arg;
    cc_server *srv;
    server_hello h = {0, 0};
    h.status = cc_start_server(NULL, "127.0.0.1", 0, serve_request, NULL, &srv);
    if (h.status == 0)
        h.port = cc_server_port(srv);
    if (write_all(fd, &h, sizeof h) < 0 || h.status < 0)
        return h.status < 0 ? h.status : -EPIPE;
    close(fd);
    /* Serves until the parent kills this process. */
    cc_async_sleep(CC_FOREVER);
    cc_server_free(srv);
    return 0;
}

int cmp_server_start(int64_t latency_ns, uint16_t *port, int *pid_out,
                     char *err, size_t cap)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, cap, "pipe: %s", strerror(errno));
        return -errno;
    }
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        snprintf(err, cap, "fork: %s", strerror(e));
        return -e;
    }
    if (pid == 0) {
        /* Dies with the tool, however the tool ends. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_IGN);
        close(fds[0]);
        server_latency_ns = latency_ns;
        int rc = cc_run(server_main, &fds[1], NULL);
        _exit(rc < 0 ? 1 : 0);
    }
    close(fds[1]);
    server_hello h = {-EPIPE, 0};
    struct pollfd pfd = {fds[0], POLLIN, 0};
    int ready = poll(&pfd, 1, 10000);
    ssize_t n = ready > 0 ? read(fds[0], &h, sizeof h) : -1;
    close(fds[0]);
    if (n != (ssize_t)sizeof h || h.status < 0 || h.port == 0 ||
        h.port > 65535) {
        int rc = n == (ssize_t)sizeof h && h.status < 0 ? h.status : -EPROTO;
        snprintf(err, cap, "the loopback TCP server did not start: %s",
                 ready == 0 ? "no answer within 10 s" : cc_strerror(rc));
        cmp_server_stop(pid);
        return rc;
    }
    *port = (uint16_t)h.port;
    *pid_out = pid;
    return 0;
}

void cmp_server_stop(int pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}

static int server_pid;

static int tcp_setup(cmp_params *p, char *err, size_t cap)
{
    return cmp_server_start(p->latency_ns, &p->port, &server_pid, err, cap);
}

static int64_t tcp_helper_cpu_ns(void)
{
    return cmp_process_cpu_ns(server_pid);
}

static void tcp_teardown(cmp_params *p)
{
    (void)p;
    cmp_server_stop(server_pid);
    server_pid = 0;
}

/* ==== files: read many files from a cold page cache =========================
 * The files live in a private directory (mkdtemp: mode 0700; files 0600,
 * created O_EXCL) and are removed at the end. Byte j of file i is
 * (i * 131 + j * 7 + (j >> 9)) mod 256; a task's checksum is the sum of the
 * bytes it read. Before each measurement the pages are dropped from the
 * page cache (written back first, then POSIX_FADV_DONTNEED), so that the
 * reads go to the device: otherwise the workload would measure memcpy. */

static void file_path(char *out, size_t cap, const cmp_params *p, uint64_t i)
{
    snprintf(out, cap, "%s/f%06llu", p->dir, (unsigned long long)i);
}

static void files_remove(const cmp_params *p)
{
    if (!p->dir[0])
        return;
    char path[PATH_MAX + 32];
    for (uint64_t i = 0; i < p->tasks; i++) {
        file_path(path, sizeof path, p, i);
        unlink(path);
    }
    if (rmdir(p->dir) < 0 && errno != ENOENT)
        fprintf(stderr, "concur compare: could not remove %s: %s\n", p->dir,
                strerror(errno));
}

static int files_setup(cmp_params *p, char *err, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    if (snprintf(p->dir, sizeof p->dir, "%s/concur-compare-XXXXXX", tmp) >=
        (int)sizeof p->dir) {
        snprintf(err, cap, "TMPDIR is too long");
        p->dir[0] = 0;
        return -ENAMETOOLONG;
    }
    if (!mkdtemp(p->dir)) {
        int e = errno;
        snprintf(err, cap, "cannot create a directory in %s: %s", tmp,
                 strerror(e));
        p->dir[0] = 0;
        return -e;
    }
    size_t bytes = (size_t)p->size * 1024;
    unsigned char *buf = malloc(bytes ? bytes : 1);
    if (!buf) {
        snprintf(err, cap, "out of memory for a %zu-byte file", bytes);
        rmdir(p->dir);
        p->dir[0] = 0;
        return -ENOMEM;
    }
    int rc = 0;
    char path[PATH_MAX + 32];
    for (uint64_t i = 0; i < p->tasks && rc == 0; i++) {
        for (size_t j = 0; j < bytes; j++)
            buf[j] = (unsigned char)(i * 131 + j * 7 + (j >> 9));
        file_path(path, sizeof path, p, i);
        int fd = open(
            path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || write_all(fd, buf, bytes) < 0) {
            rc = -errno;
            snprintf(err, cap, "cannot write %s: %s", path, strerror(errno));
        }
        if (fd >= 0)
            close(fd);
    }
    free(buf);
    if (rc == 0) {
        /* Dirty pages cannot be dropped: write them all back once. */
        int dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            syncfs(dfd);
            close(dfd);
        }
    } else {
        files_remove(p);
        p->dir[0] = 0;
    }
    return rc;
}

static void files_teardown(cmp_params *p)
{
    files_remove(p);
    p->dir[0] = 0;
}

static void files_evict(const cmp_params *p)
{
    char path[PATH_MAX + 32];
    for (uint64_t i = 0; i < p->tasks; i++) {
        file_path(path, sizeof path, p, i);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
}

static int files_run(void *state, const cmp_params *p, uint64_t i,
                     uint64_t *sum)
{
    (void)state;
    char path[PATH_MAX + 32];
    file_path(path, sizeof path, p, i);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    enum { CHUNK = 64 * 1024 };
    unsigned char *buf = malloc(CHUNK);
    int rc = buf ? 0 : -ENOMEM;
    uint64_t s = 0;
    while (rc == 0) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        if (n <= 0)
            break;
        for (ssize_t k = 0; k < n; k++)
            s += buf[k];
    }
    free(buf);
    close(fd);
    *sum = s;
    return rc;
}

/* asyncio cannot wait for a regular file either (epoll refuses them), so
 * the async model reads through run_in_executor, as asyncio.to_thread and
 * aiofiles do. */
typedef struct file_job {
    const cmp_params *p;
    uint64_t index;
    uint64_t sum;
} file_job;

static int file_job_run(void *arg, void **result)
{
    (void)result;
    file_job *j = arg;
    return files_run(NULL, j->p, j->index, &j->sum);
}

static int files_run_async(void *state, const cmp_params *p, uint64_t i,
                           uint64_t *sum)
{
    (void)state;
    /* On this coroutine's stack: the coroutine is never cancelled, so it
     * outlives the job it awaits. */
    file_job job = {p, i, 0};
    cc_future *f;
    int rc = cc_loop_run_in_executor(cc_loop_current(), NULL, file_job_run,
                                     &job, &f);
    if (rc < 0)
        return rc;
    rc = cc_await(f, NULL);
    cc_future_unref(f);
    *sum = job.sum;
    return rc;
}

/* ==== primes: count primes by trial division ================================
 * Task i counts the primes in [size*i/tasks, size*(i+1)/tasks): later tasks
 * cost more, which rewards models that balance load. */

static bool is_prime(uint64_t n)
{
    if (n < 2)
        return false;
    if (n < 4)
        return true;
    if (n % 2 == 0)
        return false;
    for (uint64_t d = 3; d * d <= n; d += 2)
        if (n % d == 0)
            return false;
    return true;
}

static int primes_run(void *state, const cmp_params *p, uint64_t i,
                      uint64_t *sum)
{
    (void)state;
    uint64_t lo = split(p->size, p->tasks, i);
    uint64_t hi = split(p->size, p->tasks, i + 1);
    uint64_t count = 0;
    for (uint64_t n = lo; n < hi; n++)
        count += is_prime(n);
    *sum = count;
    return 0;
}

/* ==== mandelbrot: escape counts of a width x (width*3/4) image ==============
 * Task i renders a band of rows. Pixel (x, y) maps to
 * c = (-2 + 3x/W) + (-1.2 + 2.4y/H)i and holds the number of iterations
 * (at most 255) before |z| > 2. The Python script does the same double
 * arithmetic in the same order, so the checksums match exactly. In the
 * process pool the worker sends its band back: the copy is part of that
 * model's cost. */

#define MANDEL_MAX_ITER 255

typedef struct image {
    uint8_t *in; /* blur only */
    uint8_t *out;
    uint64_t width, height;
} image;

static uint8_t mandel_pixel(uint64_t px, uint64_t py, uint64_t w, uint64_t h)
{
    double cx = -2.0 + 3.0 * (double)px / (double)w;
    double cy = -1.2 + 2.4 * (double)py / (double)h;
    double x = 0.0, y = 0.0;
    int it = 0;
    while (it < MANDEL_MAX_ITER) {
        double x2 = x * x, y2 = y * y;
        if (x2 + y2 > 4.0)
            break;
        y = 2.0 * x * y + cy;
        x = x2 - y2 + cx;
        it++;
    }
    return (uint8_t)it;
}

static uint64_t mandel_height(const cmp_params *p)
{
    return p->size * 3 / 4;
}

/* Renders rows [lo, hi) into band (row lo first) and returns the sum. */
static uint64_t mandel_band(const cmp_params *p, uint64_t lo, uint64_t hi,
                            uint8_t *band)
{
    uint64_t w = p->size, h = mandel_height(p), s = 0;
    for (uint64_t y = lo; y < hi; y++)
        for (uint64_t x = 0; x < w; x++) {
            uint8_t v = mandel_pixel(x, y, w, h);
            band[(y - lo) * w + x] = v;
            s += v;
        }
    return s;
}

static int mandel_prepare(const cmp_params *p, void **state)
{
    image *im = calloc(1, sizeof *im);
    if (!im)
        return -ENOMEM;
    im->width = p->size;
    im->height = mandel_height(p);
    size_t bytes = (size_t)(im->width * im->height);
    im->out = malloc(bytes ? bytes : 1);
    if (!im->out) {
        free(im);
        return -ENOMEM;
    }
    *state = im;
    return 0;
}

static void image_release(void *state)
{
    image *im = state;
    if (!im)
        return;
    free(im->in);
    free(im->out);
    free(im);
}

static int mandel_run(void *state, const cmp_params *p, uint64_t i,
                      uint64_t *sum)
{
    image *im = state;
    uint64_t lo = split(im->height, p->tasks, i);
    uint64_t hi = split(im->height, p->tasks, i + 1);
    *sum = mandel_band(p, lo, hi, im->out + lo * im->width);
    return 0;
}

static int mandel_remote(const cmp_params *p, uint64_t i, const void *in,
                         size_t len, void **out, size_t *out_len)
{
    (void)in;
    (void)len;
    uint64_t h = mandel_height(p);
    uint64_t lo = split(h, p->tasks, i), hi = split(h, p->tasks, i + 1);
    size_t bytes = (size_t)((hi - lo) * p->size);
    if (bytes == 0)
        return 0;
    uint8_t *band = malloc(bytes);
    if (!band)
        return -ENOMEM;
    mandel_band(p, lo, hi, band);
    *out = band;
    *out_len = bytes;
    return 0;
}

/* Copies a band that came back from a worker into the image. */
static int band_absorb(void *state, const cmp_params *p, uint64_t i,
                       const void *out, size_t len, uint64_t *sum)
{
    image *im = state;
    uint64_t lo = split(im->height, p->tasks, i);
    uint64_t hi = split(im->height, p->tasks, i + 1);
    size_t bytes = (size_t)((hi - lo) * im->width);
    if (len != bytes)
        return cmp_fail(-EPROTO, "band %llu: %zu bytes, expected %zu",
                        (unsigned long long)i, len, bytes);
    if (bytes)
        memcpy(im->out + lo * im->width, out, bytes);
    const uint8_t *b = out;
    uint64_t s = 0;
    for (size_t k = 0; k < bytes; k++)
        s += b[k];
    *sum = s;
    return 0;
}

/* ==== blur: a (2R+1)^2 box blur of a size x size grey image =================
 * Input pixel (x, y) is (31x + 17y + (x xor y)) mod 256; an output pixel is
 * the integer mean of the input pixels within R in both directions that
 * lie inside the image. Task i blurs a band of rows. The process pool
 * sends each worker its band plus R rows above and below, and gets the
 * blurred band back. */

#define BLUR_RADIUS 3

/* in holds image rows [in_y0, ...) of width s. Blurs rows [lo, hi) into
 * band (row lo first) and returns the sum of the output pixels. */
static uint64_t blur_band(const uint8_t *in, uint64_t in_y0, uint64_t s,
                          uint64_t lo, uint64_t hi, uint8_t *band)
{
    const int64_t r = BLUR_RADIUS, n = (int64_t)s;
    uint64_t total = 0;
    for (int64_t y = (int64_t)lo; y < (int64_t)hi; y++) {
        int64_t y0 = y - r < 0 ? 0 : y - r;
        int64_t y1 = y + r >= n ? n - 1 : y + r;
        for (int64_t x = 0; x < n; x++) {
            int64_t x0 = x - r < 0 ? 0 : x - r;
            int64_t x1 = x + r >= n ? n - 1 : x + r;
            uint32_t acc = 0;
            for (int64_t yy = y0; yy <= y1; yy++) {
                const uint8_t *row = in + (size_t)(yy - (int64_t)in_y0) * s;
                for (int64_t xx = x0; xx <= x1; xx++)
                    acc += row[xx];
            }
            uint32_t v = acc / (uint32_t)((y1 - y0 + 1) * (x1 - x0 + 1));
            band[(size_t)(y - (int64_t)lo) * s + (size_t)x] = (uint8_t)v;
            total += v;
        }
    }
    return total;
}

static int blur_prepare(const cmp_params *p, void **state)
{
    image *im = calloc(1, sizeof *im);
    if (!im)
        return -ENOMEM;
    im->width = im->height = p->size;
    size_t bytes = (size_t)(p->size * p->size);
    im->in = malloc(bytes ? bytes : 1);
    im->out = malloc(bytes ? bytes : 1);
    if (!im->in || !im->out) {
        image_release(im);
        return -ENOMEM;
    }
    for (uint64_t y = 0; y < p->size; y++)
        for (uint64_t x = 0; x < p->size; x++)
            im->in[y * p->size + x] = (uint8_t)(x * 31 + y * 17 + (x ^ y));
    *state = im;
    return 0;
}

static int blur_run(void *state, const cmp_params *p, uint64_t i, uint64_t *sum)
{
    image *im = state;
    uint64_t lo = split(im->height, p->tasks, i);
    uint64_t hi = split(im->height, p->tasks, i + 1);
    *sum = blur_band(im->in, 0, im->width, lo, hi, im->out + lo * im->width);
    return 0;
}

/* The input rows a band needs: [lo - R, hi + R) clipped to the image. */
static void blur_rows_needed(uint64_t s, uint64_t lo, uint64_t hi, uint64_t *y0,
                             uint64_t *y1)
{
    *y0 = lo > BLUR_RADIUS ? lo - BLUR_RADIUS : 0;
    *y1 = hi + BLUR_RADIUS < s ? hi + BLUR_RADIUS : s;
}

static void blur_payload(void *state, const cmp_params *p, uint64_t i,
                         const void **data, size_t *len)
{
    image *im = state;
    uint64_t lo = split(im->height, p->tasks, i);
    uint64_t hi = split(im->height, p->tasks, i + 1);
    uint64_t y0, y1;
    blur_rows_needed(im->height, lo, hi, &y0, &y1);
    if (lo == hi) {
        *data = NULL;
        *len = 0;
        return;
    }
    *data = im->in + y0 * im->width;
    *len = (size_t)((y1 - y0) * im->width);
}

static int blur_remote(const cmp_params *p, uint64_t i, const void *in,
                       size_t len, void **out, size_t *out_len)
{
    uint64_t s = p->size;
    uint64_t lo = split(s, p->tasks, i), hi = split(s, p->tasks, i + 1);
    if (lo == hi)
        return 0;
    uint64_t y0, y1;
    blur_rows_needed(s, lo, hi, &y0, &y1);
    if (len != (size_t)((y1 - y0) * s))
        return cmp_fail(-EPROTO,
                        "band %llu: %zu input bytes, expected "
                        "%llu",
                        (unsigned long long)i, len,
                        (unsigned long long)((y1 - y0) * s));
    size_t bytes = (size_t)((hi - lo) * s);
    uint8_t *band = malloc(bytes);
    if (!band)
        return -ENOMEM;
    blur_band(in, y0, s, lo, hi, band);
    *out = band;
    *out_len = bytes;
    return 0;
}

/* ==== the user's task (--task LIB.so:FUNCTION) ==============================
 * The parent checks the library and the symbol before anything runs; the
 * measuring children inherit the loaded library. A process pool worker
 * resolves it itself (dlopen of the same absolute path, once per worker),
 * so it works whatever the worker is a copy of. */

static struct {
    pthread_mutex_t lock;
    cc_compare_task_fn fn;
    char lib[PATH_MAX];
    char sym[256];
} user = {PTHREAD_MUTEX_INITIALIZER, NULL, "", ""};

/* Returns the function for p's lib and sym, loading it if needed, or NULL
 * with a message in err. */
static cc_compare_task_fn user_resolve(const char *lib, const char *sym,
                                       char *err, size_t cap)
{
    pthread_mutex_lock(&user.lock);
    cc_compare_task_fn fn = NULL;
    if (user.fn && strcmp(user.lib, lib) == 0 && strcmp(user.sym, sym) == 0) {
        fn = user.fn;
        goto out;
    }
    /* RTLD_NOW: an unresolved symbol shows here, not in the middle of a
     * measurement. The handle is kept for the life of the process. */
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(err, cap, "cannot load '%s': %s", lib,
                 e ? e : "dlopen failed");
        goto out;
    }
    dlerror();
    void *addr = dlsym(h, sym);
    const char *e = dlerror();
    if (e || !addr) {
        snprintf(err, cap, "'%s' has no function '%s'%s%s", lib, sym,
                 e ? ": " : "", e ? e : "");
        goto out;
    }
    /* ISO C forbids converting an object pointer to a function pointer;
     * POSIX requires dlsym's result to allow it. */
    memcpy(&fn, &addr, sizeof fn);
    user.fn = fn;
    snprintf(user.lib, sizeof user.lib, "%s", lib);
    snprintf(user.sym, sizeof user.sym, "%s", sym);
out:
    pthread_mutex_unlock(&user.lock);
    return fn;
}

int cmp_user_task_load(const char *lib, const char *sym, char *err, size_t cap)
{
    char abs[PATH_MAX];
    if (!realpath(lib, abs)) {
        snprintf(err, cap, "cannot load '%s': %s", lib, strerror(errno));
        return -1;
    }
    return user_resolve(abs, sym, err, cap) ? 0 : -1;
}

static int user_run(void *state, const cmp_params *p, uint64_t i, uint64_t *sum)
{
    (void)state;
    char err[PATH_MAX + 300];
    cc_compare_task_fn fn = user_resolve(p->lib, p->sym, err, sizeof err);
    if (!fn)
        return cmp_fail(-ENOENT, "%s", err);
    *sum = 0;
    int rc = fn(i, sum);
    if (rc < 0)
        return cmp_fail(rc, "%s(%llu) returned %d (%s)", p->sym,
                        (unsigned long long)i, rc, cc_strerror(rc));
    return 0;
}

/* ==== the table ========================================================== */

static const cmp_workload workloads[] = {
    {.name = "sleep",
     .kind = CMP_IO_BOUND,
     .summary = "each task waits a fixed latency (time.sleep)",
     .default_tasks = 100,
     .default_latency_ns = 10 * 1000000LL,
     .run = sleep_run,
     .run_async = sleep_run_async},
    {.name = "tcp",
     .kind = CMP_IO_BOUND,
     .summary = "each task connects to a loopback TCP server, sends a "
                "request and reads the answer, which comes after a latency",
     .default_tasks = 100,
     .default_latency_ns = 10 * 1000000LL,
     .setup = tcp_setup,
     .teardown = tcp_teardown,
     .helper_cpu_ns = tcp_helper_cpu_ns,
     .run = tcp_run,
     .run_async = tcp_run_async},
    {.name = "files",
     .kind = CMP_IO_BOUND,
     .summary = "each task reads one file from a cold page cache and sums "
                "its bytes",
     .size_unit = "KiB per file",
     .default_tasks = 200,
     .default_size = 256,
     .python_size = 256,
     .setup = files_setup,
     .teardown = files_teardown,
     .before_each = files_evict,
     .run = files_run,
     .run_async = files_run_async},
    {.name = "primes",
     .kind = CMP_CPU_BOUND,
     .summary = "count the primes below SIZE by trial division, one range "
                "per task",
     .size_unit = "limit",
     .default_tasks = 64,
     .default_size = 4000000,
     .python_size = 1000000,
     .run = primes_run},
    {.name = "mandelbrot",
     .kind = CMP_CPU_BOUND,
     .summary = "render a SIZE x SIZE*3/4 Mandelbrot image (255 "
                "iterations), one band of rows per task",
     .size_unit = "pixels wide",
     .default_tasks = 64,
     .default_size = 1920,
     .python_size = 480,
     .prepare = mandel_prepare,
     .release = image_release,
     .run = mandel_run,
     .remote = mandel_remote,
     .absorb = band_absorb},
    {.name = "blur",
     .kind = CMP_CPU_BOUND,
     .summary = "blur a SIZE x SIZE grey image with a 7x7 box, one band of "
                "rows per task",
     .size_unit = "pixels square",
     .default_tasks = 64,
     .default_size = 3072,
     .python_size = 768,
     .prepare = blur_prepare,
     .release = image_release,
     .run = blur_run,
     .payload = blur_payload,
     .remote = blur_remote,
     .absorb = band_absorb},
    {.name = "task",
     .kind = CMP_USER,
     .summary = "the user's function from --task LIB.so:FUNCTION",
     .default_tasks = 64,
     .run = user_run},
};

#define N_WORKLOADS (sizeof workloads / sizeof workloads[0])

const char *cmp_kind_text(cmp_kind k)
{
    return k == CMP_IO_BOUND    ? "I/O-bound"
           : k == CMP_CPU_BOUND ? "CPU-bound"
                                : "your function";
}

const char *cmp_kind_json(cmp_kind k)
{
    return k == CMP_IO_BOUND ? "io" : k == CMP_CPU_BOUND ? "cpu" : "user";
}

const cmp_workload *cmp_workloads(size_t *n)
{
    *n = N_WORKLOADS;
    return workloads;
}

size_t cmp_n_builtin(void)
{
    return N_WORKLOADS - 1;
}

size_t cmp_user_workload(void)
{
    return N_WORKLOADS - 1;
}

int cmp_find_workload(const char *name)
{
    for (size_t i = 0; i < cmp_n_builtin(); i++)
        if (strcmp(workloads[i].name, name) == 0)
            return (int)i;
    return -1;
}
