/* wire.c — encoders and checked decoders for wire.h. */
#include "process/wire.h"
#include "platform/le_bytes.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

void cci_frame_encode(uint8_t hdr[CCI_FRAME_HEADER], uint64_t len)
{
    cci_put32_le(hdr, CCI_FRAME_MAGIC);
    cci_put32_le(hdr + 4, 0);
    cci_put64_le(hdr + 8, len);
}

int cci_frame_decode(const uint8_t hdr[CCI_FRAME_HEADER], uint64_t max,
                     uint64_t *len)
{
    if (cci_get32_le(hdr) != CCI_FRAME_MAGIC || cci_get32_le(hdr + 4) != 0)
        return -EPROTO;
    uint64_t n = cci_get64_le(hdr + 8);
    if (n > max)
        return -EMSGSIZE;
    *len = n;
    return 0;
}

size_t cci_task_encoded_size(size_t name_len, size_t inline_len)
{
    return CCI_TASK_HEADER + name_len + inline_len;
}

static long encode(uint8_t *buf, size_t cap, uint32_t magic, uint32_t word,
                   uint64_t id, const void *text, size_t text_len,
                   bool out_of_line, const void *body, uint64_t body_len)
{
    size_t inline_len = out_of_line ? 0 : (size_t)body_len;
    if (!out_of_line && body_len > SIZE_MAX - CCI_TASK_HEADER - text_len)
        return -EMSGSIZE;
    size_t total = cci_task_encoded_size(text_len, inline_len);
    if (total > cap || total > (size_t)LONG_MAX)
        return -EMSGSIZE;
    cci_put32_le(buf, magic);
    cci_put32_le(buf + 4, word);
    cci_put64_le(buf + 8, id);
    cci_put32_le(buf + 16, (uint32_t)text_len);
    cci_put32_le(buf + 20, out_of_line ? CCI_WIRE_OUT_OF_LINE : 0);
    cci_put64_le(buf + 24, body_len);
    if (text_len)
        memcpy(buf + CCI_TASK_HEADER, text, text_len);
    if (inline_len && body) /* NULL: the caller writes it in place */
        memcpy(buf + CCI_TASK_HEADER + text_len, body, inline_len);
    return (long)total;
}

long cci_task_encode(uint8_t *buf, size_t cap, uint32_t kind, uint64_t id,
                     const char *name, size_t name_len, bool out_of_line,
                     const void *payload, uint64_t payload_len)
{
    if (name_len > CCI_TASK_NAME_MAX)
        return -EMSGSIZE;
    return encode(buf, cap, CCI_TASK_MAGIC, kind, id, name, name_len,
                  out_of_line, payload, payload_len);
}

long cci_result_encode(uint8_t *buf, size_t cap, int32_t status, uint64_t id,
                       const char *message, size_t message_len,
                       bool out_of_line, const void *result,
                       uint64_t result_len)
{
    if (message_len > CCI_MESSAGE_MAX)
        message_len = CCI_MESSAGE_MAX; /* a long message is cut, not lost */
    return encode(buf, cap, CCI_RESULT_MAGIC, (uint32_t)status, id, message,
                  message_len, out_of_line, result, result_len);
}

/* The common layout: checks lengths against len; returns 0 or -EPROTO. */
struct parts {
    uint32_t word;
    uint64_t id;
    uint32_t text_len;
    bool out_of_line;
    uint64_t body_len;
    const uint8_t *text, *body;
};

static int decode(const uint8_t *buf, size_t len, uint32_t magic,
                  uint32_t text_max, uint64_t max_body, struct parts *p)
{
    if (!buf || len < CCI_TASK_HEADER || cci_get32_le(buf) != magic)
        return -EPROTO;
    p->word = cci_get32_le(buf + 4);
    p->id = cci_get64_le(buf + 8);
    p->text_len = cci_get32_le(buf + 16);
    uint32_t flags = cci_get32_le(buf + 20);
    p->body_len = cci_get64_le(buf + 24);
    if (flags & ~CCI_WIRE_OUT_OF_LINE)
        return -EPROTO;
    p->out_of_line = flags & CCI_WIRE_OUT_OF_LINE;
    if (p->text_len > text_max || p->body_len > max_body)
        return -EPROTO;
    size_t rest = len - CCI_TASK_HEADER;
    if (p->text_len > rest)
        return -EPROTO;
    rest -= p->text_len;
    /* Inline: exactly the body must follow. Out of line: nothing. */
    uint64_t want = p->out_of_line ? 0 : p->body_len;
    if (want != rest)
        return -EPROTO;
    p->text = buf + CCI_TASK_HEADER;
    p->body = p->out_of_line ? NULL : p->text + p->text_len;
    return 0;
}

int cci_task_decode(const uint8_t *buf, size_t len, uint64_t max_payload,
                    struct cci_task_view *out)
{
    struct parts p;
    int rc = decode(buf, len, CCI_TASK_MAGIC, CCI_TASK_NAME_MAX, max_payload,
                    &p);
    if (rc < 0)
        return rc;
    if (p.word == CCI_TASK_RUN) {
        if (p.text_len == 0 || memchr(p.text, 0, p.text_len))
            return -EPROTO;
    } else if (p.word == CCI_TASK_EXIT) {
        if (p.text_len != 0 || p.body_len != 0)
            return -EPROTO;
    } else {
        return -EPROTO;
    }
    *out = (struct cci_task_view){
        .kind = p.word,
        .id = p.id,
        .name = (const char *)p.text,
        .name_len = p.text_len,
        .out_of_line = p.out_of_line,
        .payload_len = p.body_len,
        .payload = p.body,
    };
    return 0;
}

int cci_result_decode(const uint8_t *buf, size_t len, uint64_t max_payload,
                      struct cci_result_view *out)
{
    struct parts p;
    int rc = decode(buf, len, CCI_RESULT_MAGIC, CCI_MESSAGE_MAX, max_payload,
                    &p);
    if (rc < 0)
        return rc;
    int32_t status = (int32_t)p.word;
    if (status > 0 || (status == 0 && p.text_len != 0) ||
        (status < 0 && p.body_len != 0))
        return -EPROTO;
    *out = (struct cci_result_view){
        .status = status,
        .id = p.id,
        .message = (const char *)p.text,
        .message_len = p.text_len,
        .out_of_line = p.out_of_line,
        .result_len = p.body_len,
        .result = p.body,
    };
    return 0;
}

/* ---- batches ------------------------------------------------------------------ */

static uint64_t host64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint32_t host32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

int cci_batch_out_decode(const uint8_t *b, size_t len, uint64_t count,
                         struct cci_batch_view *out)
{
    if (!b || len < CCI_BATCH_OUT_HEADER || host32(b) != CCI_BATCH_OUT_MAGIC ||
        host32(b + 28) != 0)
        return -EPROTO;
    int32_t status = (int32_t)host32(b + 4);
    uint64_t done = host64(b + 8), failed = host64(b + 16);
    uint32_t mlen = host32(b + 24);
    size_t rest = len - CCI_BATCH_OUT_HEADER;
    if (status > 0 || done > count || done > rest / 8 ||
        (status < 0) != (failed != UINT64_MAX) ||
        (status < 0 && (failed != done || done >= count)) ||
        (status == 0 && done != count) || (status == 0 && mlen != 0))
        return -EPROTO;
    const uint8_t *lens = b + CCI_BATCH_OUT_HEADER;
    size_t avail = rest - (size_t)done * 8;
    for (uint64_t i = 0; i < done; i++) {
        uint64_t l = host64(lens + i * 8);
        if (l > avail)
            return -EPROTO;
        avail -= (size_t)l;
    }
    if (mlen != avail)
        return -EPROTO;
    *out = (struct cci_batch_view){
        .status = status,
        .done = done,
        .lens = lens,
        .data = lens + done * 8,
        .message = (const char *)(b + len - mlen),
        .message_len = mlen,
    };
    return 0;
}
