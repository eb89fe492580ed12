/* outbox.c -- answers released after their writes are committed (see outbox.h). */
#include "api/outbox.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>

#define WHO "api"

typedef struct ob_entry {
    struct ob_entry *next;
    uint64_t seq;
    acdm_session *s;         /* a websocket message, or */
    acdm_req *r;             /* a REST reply */
    int status;              /* REST: the status; ws: a close code when text is NULL */
    char *text;              /* ws: the message; REST: the JSON body (NULL: empty) */
    char re[124];            /* ws ack: the type acknowledged ("" if not an ack); close: the reason */
    char bericht[40];
} ob_entry;

typedef struct {
    acdm_outbox *ob;
    uint64_t upto;           /* entries with seq <= upto are released by this flush */
} ob_flush;

struct acdm_outbox {
    acdm_engine *e;
    ob_entry *head, *tail;
    uint64_t seq;            /* last entry's seq */
    uint64_t requested;      /* entries up to here have a flush on its way */
    uint64_t mark;           /* the store's position at the last flush request */
    uint64_t inflight;       /* flushes not yet called back */
    uv_timer_t kick;
    bool kick_on, kick_armed, closed;
};

static void entry_free(ob_entry *x)
{
    if (x->s && x->s->ob_pending) x->s->ob_pending--;
    free(x->text);
    free(x);
}

static void send_entry(acdm_outbox *ob, ob_entry *x, bool ok)
{
    (void)ob;
    if (x->s) {
        if (!x->text) {
            acdm_ws_close(x->s->ws, x->status, x->re);
            return;
        }
        if (!ok && x->re[0]) {
            json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "type", "error", "code", "unsaved",
                                  "text", "not saved: the store could not commit this change (see GET "
                                  "/api/v1/health); it may be undone after a restart, try again",
                                  "re", x->re, "bericht", x->bericht[0] ? x->bericht : NULL);
            char *t = json_dumps(j, JSON_COMPACT);
            json_decref(j);
            if (t) acdm_ws_send(x->s->ws, t, strlen(t));
            free(t);
        } else {
            acdm_ws_send(x->s->ws, x->text, strlen(x->text));
        }
        return;
    }
    if (!ok) {
        acdm_http_problem(x->r, 503, "Not stored",
                          "the change could not be saved: the store cannot commit (see GET /api/v1/health); "
                          "it may be undone after a restart");
    } else if (x->text) {
        acdm_http_reply(x->r, x->status, "application/json", x->text, strlen(x->text));
    } else {
        acdm_http_reply(x->r, x->status, NULL, NULL, 0);
    }
}

static void flushed(void *user, int status)
{
    ob_flush *f = user;
    acdm_outbox *ob = f->ob;
    ob->inflight--;
    while (ob->head && ob->head->seq <= f->upto) {
        ob_entry *x = ob->head;
        ob->head = x->next;
        if (!ob->head) ob->tail = NULL;
        if (!ob->closed) send_entry(ob, x, status == 0);
        entry_free(x);
    }
    free(f);
}

static void request_flush(acdm_outbox *ob)
{
    if (ob->requested >= ob->seq) return;
    acdm_store *st = acdm_engine_store(ob->e);
    ob_flush *f = malloc(sizeof *f);
    /* writes of entries queued after the previous request were all queued after its mark */
    uint64_t mark = ob->mark;
    if (f) {
        f->ob = ob;
        f->upto = ob->seq;
        if (!acdm_store_flush_since(st, mark, flushed, f)) {
            ob->mark = acdm_store_mark(st);   /* this flush included: its own failure is its own */
            ob->requested = ob->seq;
            ob->inflight++;
            return;
        }
        free(f);
    }
    /* cannot flush (out of memory, no store): answer that it is not known to be stored */
    acdm_log(ACDM_LOG_ERR, WHO, "outbox: cannot ask the store for a commit; answering as not stored");
    while (ob->head) {
        ob_entry *x = ob->head;
        ob->head = x->next;
        send_entry(ob, x, false);
        entry_free(x);
    }
    ob->tail = NULL;
    ob->requested = ob->seq;
}

static void on_kick(uv_timer_t *t)
{
    acdm_outbox *ob = t->data;
    ob->kick_armed = false;
    request_flush(ob);
}

acdm_outbox *acdm_outbox_create(acdm_engine *e)
{
    acdm_outbox *ob = calloc(1, sizeof *ob);
    if (!ob) return NULL;
    ob->e = e;
    ob->mark = acdm_store_mark(acdm_engine_store(e));
    uv_timer_init(acdm_engine_loop(e), &ob->kick);
    ob->kick.data = ob;
    ob->kick_on = true;
    return ob;
}

static void push(acdm_outbox *ob, ob_entry *x)
{
    x->seq = ++ob->seq;
    if (ob->tail) ob->tail->next = x;
    else ob->head = x;
    ob->tail = x;
    if (ob->closed || !acdm_engine_store(ob->e)) {
        request_flush(ob);   /* no store: answered as not stored */
        return;
    }
    if (!ob->kick_armed && ob->kick_on) {
        /* once per loop turn: everything said in this turn waits for one flush */
        uv_timer_start(&ob->kick, on_kick, 0, 0);
        ob->kick_armed = true;
    }
}

void acdm_outbox_ws(acdm_outbox *ob, acdm_session *s, char *text, const char *re, const char *bericht)
{
    if (!text) return;
    ob_entry *x = ob ? calloc(1, sizeof *x) : NULL;
    if (!x) {
        /* nothing to wait with: send now (no worse than before the outbox) */
        acdm_ws_send(s->ws, text, strlen(text));
        free(text);
        return;
    }
    x->s = s;
    s->ob_pending++;
    x->text = text;
    if (re) snprintf(x->re, sizeof x->re, "%s", re);
    if (bericht) snprintf(x->bericht, sizeof x->bericht, "%s", bericht);
    push(ob, x);
}

void acdm_outbox_ws_close(acdm_outbox *ob, acdm_session *s, int code, const char *reason)
{
    ob_entry *x = ob ? calloc(1, sizeof *x) : NULL;
    if (!x) {
        acdm_ws_close(s->ws, code, reason);
        return;
    }
    x->s = s;
    s->ob_pending++;
    x->status = code;
    snprintf(x->re, sizeof x->re, "%s", reason ? reason : "");
    push(ob, x);
}

void acdm_outbox_ws_notify(acdm_outbox *ob, acdm_session *s, char *text)
{
    if (!text) return;
    if (ob && s->ob_pending) {
        acdm_outbox_ws(ob, s, text, NULL, NULL);
        return;
    }
    acdm_ws_send(s->ws, text, strlen(text));
    free(text);
}

void acdm_outbox_reply(acdm_outbox *ob, acdm_req *r, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(obj);
    ob_entry *x = ob && (text || !obj) ? calloc(1, sizeof *x) : NULL;
    if (!x) {
        free(text);
        acdm_http_problem(r, 500, "Internal Server Error", "out of memory");
        return;
    }
    x->r = r;
    x->status = status;
    x->text = text;
    push(ob, x);
}

void acdm_outbox_reply_empty(acdm_outbox *ob, acdm_req *r, int status)
{
    acdm_outbox_reply(ob, r, status, NULL);
}

void acdm_outbox_forget(acdm_outbox *ob, acdm_session *s)
{
    if (!ob) return;
    ob_entry **pp = &ob->head, *last = NULL;
    while (*pp) {
        ob_entry *x = *pp;
        if (x->s == s) {
            *pp = x->next;
            entry_free(x);
            continue;
        }
        last = x;
        pp = &x->next;
    }
    ob->tail = last;
}

void acdm_outbox_shutdown(acdm_outbox *ob)
{
    if (!ob) return;
    if (ob->kick_on) {
        uv_timer_stop(&ob->kick);
        uv_close((uv_handle_t *)&ob->kick, NULL);
        ob->kick_on = false;
        ob->kick_armed = false;
    }
    request_flush(ob);
}

void acdm_outbox_free(acdm_outbox *ob)
{
    if (!ob) return;
    ob->closed = true;
    while (ob->head) {
        ob_entry *x = ob->head;
        ob->head = x->next;
        x->s = NULL;          /* its session is gone (closed before the release) */
        entry_free(x);
    }
    ob->tail = NULL;
    /* flushes still in flight were called back by the store's close (before HTTP closed) */
    if (!ob->inflight) free(ob);
    else acdm_log(ACDM_LOG_WARN, WHO, "outbox: %llu flushes never called back", (unsigned long long)ob->inflight);
}
