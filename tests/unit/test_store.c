/* test_store.c -- unit tests of the SQLite store: commits, idempotency, recovery, kv, tokens, kill -9. */
#include "store/store.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <poll.h>
#include <sqlite3.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- harness: a temp dir, a wake pipe, and a loop that polls the store ---- */

typedef struct {
    char dir[64];
    int wake[2];
    acdm_store *st;
    int group_ms;
} harness;

static void wake_fn(void *arg)
{
    const int *fd = arg;
    char c = 1;
    ssize_t r = write(*fd, &c, 1);  /* non-blocking; a full pipe already means "wake up" */
    (void)r;
}

static void h_open(harness *h)
{
    char err[256];
    int rc = acdm_store_open(h->dir, h->group_ms, wake_fn, &h->wake[1], &h->st, err, sizeof err);
    ck_assert_msg(rc == 0, "open failed: %d %s", rc, err);
}

static void h_init(harness *h, int group_ms)
{
    snprintf(h->dir, sizeof h->dir, "/tmp/acdm-test-store-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(h->dir));
    ck_assert_int_eq(pipe2(h->wake, O_NONBLOCK | O_CLOEXEC), 0);
    h->group_ms = group_ms;
    h_open(h);
}

static void h_reopen(harness *h)
{
    acdm_store_close(h->st);
    h->st = NULL;
    h_open(h);
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void h_done(harness *h)
{
    if (h->st) acdm_store_close(h->st);
    h->st = NULL;
    close(h->wake[0]);
    close(h->wake[1]);
    nftw(h->dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for wakes and runs callbacks until *flag >= want or timeout_ms passed. */
static void pump(harness *h, const int *flag, int want, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    while (*flag < want && mono_ms() < end) {
        struct pollfd p = {.fd = h->wake[0], .events = POLLIN};
        poll(&p, 1, 50);
        char buf[64];
        while (read(h->wake[0], buf, sizeof buf) > 0) {}
        acdm_store_poll(h->st);
    }
}

typedef struct {
    int called;
    int status;
    char existing[64];
    int64_t at_ms;
} ins_res;

static void ins_cb(void *user, int status, const char *existing_id)
{
    ins_res *r = user;
    r->called++;
    r->status = status;
    r->at_ms = mono_ms();
    snprintf(r->existing, sizeof r->existing, "%s", existing_id ? existing_id : "");
}

static int flushed;
static void flush_cb(void *user, int status)
{
    (void)user;
    ck_assert_int_eq(status, 0);
    flushed++;
}

/* Queues a flush and pumps until it ran: everything queued before is committed. */
static void h_sync(harness *h)
{
    int before = flushed;
    ck_assert_int_eq(acdm_store_flush(h->st, flush_cb, NULL), 0);
    pump(h, &flushed, before + 1, 5000);
    ck_assert_int_eq(flushed, before + 1);
}

static acdm_bericht_row mkrow(const char *id, const char *idem, acdm_bstate state, int64_t qms)
{
    return (acdm_bericht_row){
        .id = id, .channel = "mail1", .kind = ACDM_KIND_EMAIL, .direction = "in",
        .from = "anna@example.org", .customer_id = "c-17", .conversation = "conv-1",
        .queue = "support", .priority = 3,
        .skills_json = "[{\"name\":\"dutch\",\"level\":2}]", .state = state, .agent = NULL,
        .idem_key = idem, .payload_json = "{\"subject\":\"Waar blijft mijn pakket?\"}",
        .created_ms = qms - 5, .queued_ms = qms};
}

/* get_bericht_json parsed; NULL when the store says it is absent. */
static json_t *get_json(harness *h, const char *id)
{
    char *txt = NULL;
    int rc = acdm_store_get_bericht_json(h->st, id, &txt);
    if (rc == ACDM_ENOENT) return NULL;
    ck_assert_int_eq(rc, 0);
    json_t *j = json_loads(txt, 0, NULL);
    free(txt);
    ck_assert_ptr_nonnull(j);
    return j;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* ---- tests ---- */

START_TEST(insert_commits_then_calls_back_and_survives_reopen)
{
    harness h = {.st = NULL};
    h_init(&h, 200);
    ins_res r = {0};
    acdm_bericht_row row = mkrow("0190a5e0-0000-7000-8000-000000000001", "msg-1@x", ACDM_B_QUEUED,
                                 1700000000000);
    int64_t t0 = mono_ms();
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &row, ins_cb, &r), 0);
    acdm_store_poll(h.st);
    ck_assert_int_eq(r.called, 0);          /* not before the commit */
    pump(&h, &r.called, 1, 5000);
    ck_assert_int_eq(r.called, 1);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.existing, "");
    /* grouped: the writer waits for the group interval, then commits promptly */
    ck_assert_int_ge(r.at_ms - t0, 150);
    ck_assert_int_lt(r.at_ms - t0, 2000);

    h_reopen(&h);
    json_t *j = get_json(&h, row.id);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(jstr(j, "id"), row.id);
    ck_assert_str_eq(jstr(j, "channel"), "mail1");
    ck_assert_str_eq(jstr(j, "kind"), "email");
    ck_assert_str_eq(jstr(j, "state"), "queued");
    ck_assert_str_eq(jstr(j, "queue"), "support");
    ck_assert_str_eq(jstr(j, "from"), "anna@example.org");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "priority")), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "queued_ms")), 1700000000000);
    ck_assert_str_eq(jstr(json_object_get(j, "payload"), "subject"), "Waar blijft mijn pakket?");
    ck_assert_str_eq(jstr(json_array_get(json_object_get(j, "skills"), 0), "name"), "dutch");
    json_decref(j);
    h_done(&h);
}
END_TEST

START_TEST(close_commits_pending_and_runs_callbacks)
{
    harness h = {.st = NULL};
    h_init(&h, 10000);                      /* the group timer would not fire in this test */
    ins_res r = {0};
    acdm_bericht_row row = mkrow("b-close", NULL, ACDM_B_QUEUED, 1000);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &row, ins_cb, &r), 0);
    acdm_store_close(h.st);
    h.st = NULL;
    ck_assert_int_eq(r.called, 1);
    ck_assert_int_eq(r.status, 0);
    h_open(&h);
    json_t *j = get_json(&h, "b-close");
    ck_assert_ptr_nonnull(j);
    json_decref(j);
    h_done(&h);
}
END_TEST

START_TEST(flush_runs_after_earlier_inserts)
{
    harness h = {.st = NULL};
    h_init(&h, 20);
    ins_res r[3] = {{0}};
    char id[3][16];
    for (int i = 0; i < 3; i++) {
        snprintf(id[i], sizeof id[i], "b-f%d", i);
        acdm_bericht_row row = mkrow(id[i], NULL, ACDM_B_QUEUED, 1000 + i);
        ck_assert_int_eq(acdm_store_insert_bericht(h.st, &row, ins_cb, &r[i]), 0);
    }
    h_sync(&h);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(r[i].called, 1);
    h_done(&h);
}
END_TEST

START_TEST(duplicate_in_same_group_gets_eexist_and_original_id)
{
    harness h = {.st = NULL};
    h_init(&h, 100);
    ins_res a = {0}, b = {0}, c = {0};
    acdm_bericht_row ra = mkrow("b-orig", "wamid.HBgL", ACDM_B_QUEUED, 1000);
    acdm_bericht_row rb = mkrow("b-dup", "wamid.HBgL", ACDM_B_QUEUED, 1001);
    acdm_bericht_row rc = mkrow("b-other-chan", "wamid.HBgL", ACDM_B_QUEUED, 1002);
    rc.channel = "wa2";                     /* the key is unique per channel only */
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &ra, ins_cb, &a), 0);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &rb, ins_cb, &b), 0);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &rc, ins_cb, &c), 0);
    pump(&h, &c.called, 1, 5000);
    ck_assert_int_eq(a.status, 0);
    ck_assert_int_eq(b.called, 1);
    ck_assert_int_eq(b.status, ACDM_EEXIST);
    ck_assert_str_eq(b.existing, "b-orig");
    ck_assert_int_eq(c.status, 0);
    json_t *j = get_json(&h, "b-dup");
    ck_assert_ptr_null(j);                  /* the duplicate was not stored */
    h_done(&h);
}
END_TEST

START_TEST(duplicate_after_reopen_gets_eexist_and_original_id)
{
    harness h = {.st = NULL};
    h_init(&h, 5);
    ins_res a = {0}, b = {0}, c = {0};
    acdm_bericht_row ra = mkrow("b-first", "<abc@mail.example>", ACDM_B_QUEUED, 1000);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &ra, ins_cb, &a), 0);
    pump(&h, &a.called, 1, 5000);
    ck_assert_int_eq(a.status, 0);
    h_reopen(&h);
    acdm_bericht_row rb = mkrow("b-again", "<abc@mail.example>", ACDM_B_QUEUED, 2000);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &rb, ins_cb, &b), 0);
    pump(&h, &b.called, 1, 5000);
    ck_assert_int_eq(b.status, ACDM_EEXIST);
    ck_assert_str_eq(b.existing, "b-first");
    /* the same id twice (a retried insert without key) is a duplicate too */
    acdm_bericht_row rc = mkrow("b-first", NULL, ACDM_B_QUEUED, 3000);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &rc, ins_cb, &c), 0);
    pump(&h, &c.called, 1, 5000);
    ck_assert_int_eq(c.status, ACDM_EEXIST);
    ck_assert_str_eq(c.existing, "b-first");
    h_done(&h);
}
END_TEST

typedef struct {
    int n;
    char ids[16][32];
    int64_t qms[16];
    char agent[16][32];
} open_list;

static void open_cb(void *user, const acdm_bericht_row *row)
{
    open_list *l = user;
    ck_assert_int_lt(l->n, 16);
    snprintf(l->ids[l->n], sizeof l->ids[0], "%s", row->id);
    snprintf(l->agent[l->n], sizeof l->agent[0], "%s", row->agent ? row->agent : "");
    l->qms[l->n] = row->queued_ms;
    ck_assert_int_eq(row->kind, ACDM_KIND_EMAIL);
    ck_assert_str_eq(row->queue, "support");
    ck_assert_str_eq(row->payload_json, "{\"subject\":\"Waar blijft mijn pakket?\"}");
    l->n++;
}

START_TEST(load_open_returns_inflight_work_by_queue_time)
{
    harness h = {.st = NULL};
    h_init(&h, 5);
    struct { const char *id; acdm_bstate s; int64_t q; } rows[] = {
        {"b-queued", ACDM_B_QUEUED, 300}, {"b-offered", ACDM_B_OFFERED, 100},
        {"b-active", ACDM_B_ACTIVE, 200}, {"b-done", ACDM_B_DONE, 50},
        {"b-wrapup", ACDM_B_WRAPUP, 10}, {"b-abandoned", ACDM_B_ABANDONED, 20},
        {"b-closed", ACDM_B_CLOSED, 30}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        acdm_bericht_row r = mkrow(rows[i].id, NULL, rows[i].s, rows[i].q);
        if (rows[i].s == ACDM_B_ACTIVE) r.agent = "agent-7";
        ck_assert_int_eq(acdm_store_insert_bericht(h.st, &r, NULL, NULL), 0);
    }
    h_reopen(&h);                           /* as after a restart */
    open_list l = {0};
    ck_assert_int_eq(acdm_store_load_open(h.st, open_cb, &l), 0);
    ck_assert_int_eq(l.n, 3);
    ck_assert_str_eq(l.ids[0], "b-offered");
    ck_assert_str_eq(l.ids[1], "b-active");
    ck_assert_str_eq(l.ids[2], "b-queued");
    ck_assert_int_eq(l.qms[0], 100);
    ck_assert_int_eq(l.qms[2], 300);
    ck_assert_str_eq(l.agent[1], "agent-7");
    h_done(&h);
}
END_TEST

START_TEST(update_changes_state_queue_and_agent)
{
    harness h = {.st = NULL};
    h_init(&h, 5);
    acdm_bericht_row r = mkrow("b-upd", NULL, ACDM_B_QUEUED, 500);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &r, NULL, NULL), 0);
    ck_assert_int_eq(acdm_store_update_bericht(h.st, "b-upd", ACDM_B_ACTIVE, "billing", "agent-3",
                                               450, 9000), 0);
    h_sync(&h);
    json_t *j = get_json(&h, "b-upd");
    ck_assert_str_eq(jstr(j, "state"), "active");
    ck_assert_str_eq(jstr(j, "queue"), "billing");
    ck_assert_str_eq(jstr(j, "agent"), "agent-3");
    ck_assert_int_eq(json_integer_value(json_object_get(j, "queued_ms")), 450);
    ck_assert_int_eq(json_integer_value(json_object_get(j, "updated_ms")), 9000);
    json_decref(j);

    ck_assert_int_eq(acdm_store_update_bericht(h.st, "b-upd", ACDM_B_DONE, NULL, NULL, 450, 9500),
                     0);
    h_reopen(&h);
    j = get_json(&h, "b-upd");
    ck_assert_str_eq(jstr(j, "state"), "done");
    ck_assert_str_eq(jstr(j, "queue"), "billing");  /* NULL queue keeps the queue */
    ck_assert(json_is_null(json_object_get(j, "agent")));
    json_decref(j);
    open_list l = {0};
    ck_assert_int_eq(acdm_store_load_open(h.st, open_cb, &l), 0);
    ck_assert_int_eq(l.n, 0);
    h_done(&h);
}
END_TEST

START_TEST(events_and_messages_appear_in_bericht_json)
{
    harness h = {.st = NULL};
    h_init(&h, 5);
    acdm_bericht_row r = mkrow("b-ev", NULL, ACDM_B_QUEUED, 100);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &r, NULL, NULL), 0);
    acdm_event_row e1 = {.ts_ms = 100, .type = "queued", .bericht = "b-ev", .queue = "support",
                         .channel = "mail1", .kind = "email"};
    acdm_event_row e2 = {.ts_ms = 150, .type = "offered", .bericht = "b-ev", .queue = "support",
                         .agent = "agent-1", .detail_json = "{\"ring_ms\":15000}"};
    acdm_event_row e3 = {.ts_ms = 160, .type = "agent_login", .agent = "agent-1"};
    ck_assert_int_eq(acdm_store_append_event(h.st, &e1), 0);
    ck_assert_int_eq(acdm_store_append_event(h.st, &e2), 0);
    ck_assert_int_eq(acdm_store_append_event(h.st, &e3), 0);
    ck_assert_int_eq(acdm_store_add_message(h.st, "b-ev", 100, "in", "anna@example.org",
                                            "Hallo, waar is mijn pakket?", NULL), 0);
    ck_assert_int_eq(acdm_store_add_message(h.st, "b-ev", 170, "out", "agent-1",
                                            "Het komt morgen.", "{\"html\":false}"), 0);
    h_sync(&h);
    json_t *j = get_json(&h, "b-ev");
    json_t *ev = json_object_get(j, "events");
    ck_assert_int_eq(json_array_size(ev), 2);
    ck_assert_str_eq(jstr(json_array_get(ev, 0), "type"), "queued");
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(ev, 0), "ts")), 100);
    ck_assert_str_eq(jstr(json_array_get(ev, 1), "type"), "offered");
    ck_assert_str_eq(jstr(json_array_get(ev, 1), "agent"), "agent-1");
    ck_assert_int_eq(json_integer_value(json_object_get(
        json_object_get(json_array_get(ev, 1), "detail"), "ring_ms")), 15000);
    json_t *m = json_object_get(j, "messages");
    ck_assert_int_eq(json_array_size(m), 2);
    ck_assert_str_eq(jstr(json_array_get(m, 0), "direction"), "in");
    ck_assert_str_eq(jstr(json_array_get(m, 0), "text"), "Hallo, waar is mijn pakket?");
    ck_assert_str_eq(jstr(json_array_get(m, 1), "author"), "agent-1");
    ck_assert(json_is_false(json_object_get(json_object_get(json_array_get(m, 1), "payload"),
                                            "html")));
    json_decref(j);
    h_done(&h);
}
END_TEST

START_TEST(kv_visible_at_once_and_after_reopen)
{
    harness h = {.st = NULL};
    h_init(&h, 1000);                       /* the sets below are read long before a commit */
    char *v = NULL;
    size_t n = 0;
    ck_assert_int_eq(acdm_store_kv_get(h.st, "wa1", "cursor", &v, &n), ACDM_ENOENT);
    ck_assert_int_eq(acdm_store_kv_set(h.st, "wa1", "cursor", "abc", 3), 0);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "wa1", "cursor", &v, &n), 0);
    ck_assert_str_eq(v, "abc");
    ck_assert_uint_eq(n, 3);
    free(v);
    ck_assert_int_eq(acdm_store_kv_set(h.st, "wa1", "cursor", "abcdef", 6), 0);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "wa1", "cursor", &v, &n), 0);
    ck_assert_str_eq(v, "abcdef");
    free(v);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "wa2", "cursor", &v, &n), ACDM_ENOENT);
    const char bin[] = {'x', 0, 'y'};
    ck_assert_int_eq(acdm_store_kv_set(h.st, "imap1", "uidvalidity", bin, 3), 0);
    ck_assert_int_eq(acdm_store_kv_set(h.st, "imap1", "gone", "1", 1), 0);
    ck_assert_int_eq(acdm_store_kv_set(h.st, "imap1", "gone", NULL, 0), 0);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "imap1", "gone", &v, &n), ACDM_ENOENT);

    h_reopen(&h);                           /* close commits */
    ck_assert_int_eq(acdm_store_kv_get(h.st, "wa1", "cursor", &v, &n), 0);
    ck_assert_str_eq(v, "abcdef");
    free(v);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "imap1", "uidvalidity", &v, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(memcmp(v, bin, 3), 0);
    free(v);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "imap1", "gone", &v, &n), ACDM_ENOENT);
    /* a delete of a committed key is visible at once and after the commit */
    ck_assert_int_eq(acdm_store_kv_set(h.st, "wa1", "cursor", NULL, 0), 0);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "wa1", "cursor", &v, &n), ACDM_ENOENT);
    h_sync(&h);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "wa1", "cursor", &v, &n), ACDM_ENOENT);
    h_done(&h);
}
END_TEST

START_TEST(token_create_and_check)
{
    harness h = {.st = NULL};
    h_init(&h, 10000);                      /* token_create must not wait for the group timer */
    char tok[64], tok2[64], role[32], name[64];
    int64_t t0 = mono_ms();
    ck_assert_int_eq(acdm_store_token_create(h.st, "agent", "agent-42", tok), 0);
    ck_assert_int_lt(mono_ms() - t0, 3000);
    ck_assert_uint_eq(strlen(tok), 43);
    ck_assert_uint_eq(strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                  "0123456789-_"), 43);
    ck_assert_int_eq(acdm_store_token_create(h.st, "admin", NULL, tok2), 0);
    ck_assert_str_ne(tok, tok2);
    ck_assert_int_eq(acdm_store_token_check(h.st, tok, role, sizeof role, name, sizeof name), 0);
    ck_assert_str_eq(role, "agent");
    ck_assert_str_eq(name, "agent-42");
    ck_assert_int_eq(acdm_store_token_check(h.st, tok2, role, sizeof role, name, sizeof name), 0);
    ck_assert_str_eq(role, "admin");
    ck_assert_int_eq(acdm_store_token_check(h.st, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                            role, sizeof role, name, sizeof name), ACDM_ENOENT);
    ck_assert_int_eq(acdm_store_token_check(h.st, "", role, sizeof role, name, sizeof name),
                     ACDM_ENOENT);
    tok[0] = tok[0] == 'A' ? 'B' : 'A';     /* one character off */
    ck_assert_int_eq(acdm_store_token_check(h.st, tok, role, sizeof role, name, sizeof name),
                     ACDM_ENOENT);
    h_reopen(&h);
    ck_assert_int_eq(acdm_store_token_check(h.st, tok2, role, sizeof role, name, sizeof name), 0);
    ck_assert_str_eq(role, "admin");
    h_done(&h);
}
END_TEST

START_TEST(token_revoke_agent)
{
    harness h = {.st = NULL};
    h_init(&h, 10000);                      /* committed before it returns, without the group timer */
    char a1[64], a2[64], other[64], sup[64], role[32], name[64];
    ck_assert_int_eq(acdm_store_token_create(h.st, "agent", "sanne", a1), 0);
    ck_assert_int_eq(acdm_store_token_create(h.st, "agent", "sanne", a2), 0);
    ck_assert_int_eq(acdm_store_token_create(h.st, "agent", "sanne2", other), 0);
    ck_assert_int_eq(acdm_store_token_create(h.st, "supervisor", "sanne", sup), 0);
    int n = -1;
    int64_t t0 = mono_ms();
    ck_assert_int_eq(acdm_store_token_revoke_agent(h.st, "sanne", &n), 0);
    ck_assert_int_lt(mono_ms() - t0, 3000);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(acdm_store_token_check(h.st, a1, role, sizeof role, name, sizeof name), ACDM_ENOENT);
    ck_assert_int_eq(acdm_store_token_check(h.st, a2, role, sizeof role, name, sizeof name), ACDM_ENOENT);
    /* another agent, and a non-agent token with the same name, stay valid */
    ck_assert_int_eq(acdm_store_token_check(h.st, other, role, sizeof role, name, sizeof name), 0);
    ck_assert_int_eq(acdm_store_token_check(h.st, sup, role, sizeof role, name, sizeof name), 0);
    ck_assert_int_eq(acdm_store_token_revoke_agent(h.st, "sanne", &n), 0);   /* nothing left */
    ck_assert_int_eq(n, 0);
    ck_assert_int_eq(acdm_store_token_revoke_agent(h.st, "", &n), ACDM_EINVAL);
    h_reopen(&h);
    ck_assert_int_eq(acdm_store_token_check(h.st, a1, role, sizeof role, name, sizeof name), ACDM_ENOENT);
    ck_assert_int_eq(acdm_store_token_check(h.st, other, role, sizeof role, name, sizeof name), 0);
    h_done(&h);
}
END_TEST

static int never_called;
static void never_cb(void *user, int status, const char *existing_id)
{
    (void)user; (void)status; (void)existing_id;
    never_called++;
}

START_TEST(bad_input_is_refused_without_callback)
{
    harness h = {.st = NULL};
    h_init(&h, 5);
    acdm_bericht_row r = mkrow(NULL, NULL, ACDM_B_QUEUED, 1);
    ck_assert_int_lt(acdm_store_insert_bericht(h.st, &r, never_cb, NULL), 0);
    r.id = "";
    ck_assert_int_lt(acdm_store_insert_bericht(h.st, &r, never_cb, NULL), 0);
    r.id = "b-ok";
    r.kind = (acdm_kind)99;
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &r, never_cb, NULL), ACDM_EINVAL);
    r.kind = ACDM_KIND_SMS;
    r.state = (acdm_bstate)-1;
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &r, never_cb, NULL), ACDM_EINVAL);
    r.state = ACDM_B_QUEUED;
    r.direction = "sideways";
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &r, never_cb, NULL), ACDM_EINVAL);
    r.direction = "in";
    r.channel = NULL;
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &r, never_cb, NULL), ACDM_EINVAL);
    char longid[200];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    r = mkrow(longid, NULL, ACDM_B_QUEUED, 1);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &r, never_cb, NULL), ACDM_EINVAL);
    ck_assert_int_lt(acdm_store_insert_bericht(h.st, NULL, never_cb, NULL), 0);
    ck_assert_int_lt(acdm_store_insert_bericht(NULL, &r, never_cb, NULL), 0);
    ck_assert_int_lt(acdm_store_update_bericht(h.st, NULL, ACDM_B_DONE, NULL, NULL, 0, 0), 0);
    ck_assert_int_lt(acdm_store_update_bericht(h.st, "", ACDM_B_DONE, NULL, NULL, 0, 0), 0);
    ck_assert_int_lt(acdm_store_update_bericht(h.st, "b", (acdm_bstate)42, NULL, NULL, 0, 0), 0);
    acdm_event_row ev = {.ts_ms = 1, .type = NULL};
    ck_assert_int_lt(acdm_store_append_event(h.st, &ev), 0);
    ck_assert_int_lt(acdm_store_append_event(h.st, NULL), 0);
    ck_assert_int_lt(acdm_store_add_message(h.st, NULL, 1, "in", "a", "t", NULL), 0);
    ck_assert_int_lt(acdm_store_add_message(h.st, "b", 1, "up", "a", "t", NULL), 0);
    ck_assert_int_lt(acdm_store_kv_set(h.st, NULL, "k", "v", 1), 0);
    ck_assert_int_lt(acdm_store_kv_set(h.st, "ns", "", "v", 1), 0);
    char *out = NULL;
    size_t n;
    ck_assert_int_lt(acdm_store_kv_get(h.st, "ns", NULL, &out, &n), 0);
    ck_assert_int_lt(acdm_store_get_bericht_json(h.st, NULL, &out), 0);
    ck_assert_int_eq(acdm_store_get_bericht_json(h.st, "no-such-bericht", &out), ACDM_ENOENT);
    ck_assert_ptr_null(out);
    char tok[64];
    ck_assert_int_lt(acdm_store_token_create(h.st, NULL, "x", tok), 0);
    ck_assert_int_lt(acdm_store_token_check(h.st, NULL, NULL, 0, NULL, 0), 0);
    acdm_store *bad = NULL;
    char err[256];
    ck_assert_int_lt(acdm_store_open("/proc/no/such/dir", 5, NULL, NULL, &bad, err, sizeof err), 0);
    ck_assert_ptr_null(bad);
    ck_assert_uint_gt(strlen(err), 10);     /* a sentence a person can act on */
    h_sync(&h);
    ck_assert_int_eq(never_called, 0);
    ck_assert_int_eq(acdm_store_get_bericht_json(h.st, "b-ok", &out), ACDM_ENOENT);
    h_done(&h);
}
END_TEST

START_TEST(failed_group_reports_eio_and_store_recovers)
{
    harness h = {.st = NULL};
    h_init(&h, 50);
    /* poison the table from outside: any row for queue "poison" makes its transaction fail */
    char path[128];
    snprintf(path, sizeof path, "%s/acdm.db", h.dir);
    sqlite3 *db;
    ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db, "CREATE TRIGGER poison BEFORE INSERT ON berichten "
                                  "WHEN NEW.queue = 'poison' BEGIN SELECT RAISE(ABORT, 'disk "
                                  "on fire'); END;", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ins_res good = {0}, bad = {0}, later = {0};
    acdm_bericht_row rg = mkrow("b-good", NULL, ACDM_B_QUEUED, 1);
    acdm_bericht_row rb = mkrow("b-bad", NULL, ACDM_B_QUEUED, 2);
    rb.queue = "poison";
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &rg, ins_cb, &good), 0);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &rb, ins_cb, &bad), 0);
    pump(&h, &bad.called, 1, 5000);
    /* the whole group failed (after one retry): nobody is told "stored" */
    ck_assert_int_eq(good.called, 1);
    ck_assert_int_eq(good.status, ACDM_EIO);
    ck_assert_int_eq(bad.status, ACDM_EIO);
    ck_assert_ptr_null(get_json(&h, "b-good"));
    /* the next group commits normally */
    acdm_bericht_row rl = mkrow("b-later", NULL, ACDM_B_QUEUED, 3);
    ck_assert_int_eq(acdm_store_insert_bericht(h.st, &rl, ins_cb, &later), 0);
    pump(&h, &later.called, 1, 5000);
    ck_assert_int_eq(later.status, 0);
    json_t *j = get_json(&h, "b-later");
    ck_assert_ptr_nonnull(j);
    json_decref(j);
    h_done(&h);
}
END_TEST

/* ---- durability: every acknowledged bericht survives kill -9 ---- */

static int ack_fd, acks_outstanding;
static void ack_cb(void *user, int status, const char *existing_id)
{
    (void)existing_id;
    acks_outstanding--;
    char line[80];
    int n = snprintf(line, sizeof line, "%s %d\n", (const char *)user, status);
    if (write(ack_fd, line, (size_t)n) != n) _exit(3);
    free(user);
}

static void child_ingest(harness *h, int fd)
{
    ack_fd = fd;
    h_open(h);
    for (int i = 0; i < 2000000; i++) {
        char *id = malloc(40);
        if (!id) _exit(2);
        snprintf(id, 40, "k9-%08d", i);
        acdm_bericht_row r = mkrow(id, NULL, ACDM_B_QUEUED, 1000 + i);
        if (acdm_store_insert_bericht(h->st, &r, ack_cb, id) != 0) _exit(2);
        acks_outstanding++;
        /* like the daemon's loop: run callbacks as wakes come, and keep the backlog bounded */
        while (i % 64 == 63 || acks_outstanding > 4096) {
            struct pollfd pf = {.fd = h->wake[0], .events = POLLIN};
            poll(&pf, 1, acks_outstanding > 4096 ? 100 : 0);
            char buf[64];
            while (read(h->wake[0], buf, sizeof buf) > 0) {}
            acdm_store_poll(h->st);
            if (acks_outstanding <= 4096) break;
        }
    }
    _exit(0);
}

START_TEST(acknowledged_berichten_survive_kill9)
{
    harness h = {.st = NULL};
    h_init(&h, 2);
    acdm_store_close(h.st);                 /* the child opens its own; this one made the db */
    h.st = NULL;
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        child_ingest(&h, p[1]);
    }
    close(p[1]);
    /* read acks until enough arrived, kill the child mid-stream, then read what it had sent */
    char *acked = NULL;
    size_t len = 0, cap = 0, lines = 0;
    int killed = 0;
    for (;;) {
        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 1 << 16;
            char *grown = realloc(acked, cap);
            ck_assert_ptr_nonnull(grown);
            acked = grown;
        }
        ssize_t n = read(p[0], acked + len, cap - len - 1);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) lines += acked[len + i] == '\n';
        len += (size_t)n;
        if (!killed && lines >= 20000) {
            kill(pid, SIGKILL);
            killed = 1;
        }
    }
    close(p[0]);
    acked[len] = '\0';
    int wst;
    ck_assert_int_eq(waitpid(pid, &wst, 0), pid);
    ck_assert_msg(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL, "child ended before the kill");

    h_open(&h);
    size_t checked = 0;
    char *save = NULL;
    for (char *line = strtok_r(acked, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char id[40];
        int status;
        if (sscanf(line, "%39s %d", id, &status) != 2) continue;  /* a torn last line */
        ck_assert_int_eq(status, 0);
        char *txt = NULL;
        ck_assert_msg(acdm_store_get_bericht_json(h.st, id, &txt) == 0,
                      "acknowledged bericht %s lost after kill -9", id);
        free(txt);
        checked++;
    }
    ck_assert_uint_ge(checked, 20000);
    free(acked);
    h_done(&h);
}
END_TEST

/* ---- ABI 1.1: file-backed attachments, refs, kv expiry, the schema 5 -> 6 migration ---- */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *fd_slurp(int fd, size_t *n)
{
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    ssize_t k;
    while ((k = read(fd, b + len, cap - len)) > 0) {
        len += (size_t)k;
        if (len == cap) b = realloc(b, cap *= 2);
    }
    *n = len;
    return b;
}

START_TEST(file_backed_attachment_is_copied_synced_and_read_back)
{
    harness h = {.st = NULL};
    h_init(&h, 5);
    /* a 3 MiB source file the plugin deletes right after handing it over */
    char src[128];
    snprintf(src, sizeof src, "%s/src.bin", h.dir);
    int fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    char block[4096];
    for (int i = 0; i < 768; i++) {
        memset(block, 'a' + i % 26, sizeof block);
        ck_assert_int_eq(write(fd, block, sizeof block), (ssize_t)sizeof block);
    }
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    unlink(src);
    acdm_attachment_new a = {.id = "att-f1", .bericht = "b-1", .channel = "mail1",
                             .filename = "scan.pdf", .content_type = "application/pdf",
                             .content_id = "part1@example.org", .fd = fd, .ts_ms = 1};
    ck_assert_int_eq(acdm_store_attachment_add(h.st, &a), 0);   /* the store owns fd now */
    acdm_attachment at;
    ck_assert_int_eq(acdm_store_attachment_meta(h.st, "att-f1", &at), ACDM_ENOENT);  /* not yet committed */
    h_sync(&h);
    ck_assert_int_eq(acdm_store_attachment_meta(h.st, "att-f1", &at), 0);
    ck_assert_str_eq(at.content_id, "part1@example.org");
    ck_assert_str_eq(at.filename, "scan.pdf");
    ck_assert_uint_eq(at.len, 768u * 4096u);
    char want[256];
    snprintf(want, sizeof want, "%s/attachments/att-f1", h.dir);
    ck_assert_str_eq(at.path, want);
    /* get does not load a file-backed one into memory */
    ck_assert_int_eq(acdm_store_attachment_get(h.st, "att-f1", &at), 0);
    ck_assert_ptr_null(at.data);
    int rfd = -1;
    ck_assert_int_eq(acdm_store_attachment_open(h.st, "att-f1", &at, &rfd), 0);
    size_t n = 0;
    char *got = fd_slurp(rfd, &n);
    close(rfd);
    ck_assert_uint_eq(n, 768u * 4096u);
    ck_assert_int_eq(got[0], 'a');
    ck_assert_int_eq(got[767 * 4096], 'a' + 767 % 26);
    free(got);
    /* one in memory: kept in the database, read back through an in-memory file */
    acdm_attachment_new m = {.id = "att-m1", .bericht = "b-1", .channel = "mail1",
                             .filename = "hi.txt", .content_type = "text/plain", .data = "hallo",
                             .len = 5, .fd = -1, .ts_ms = 2};
    ck_assert_int_eq(acdm_store_attachment_add(h.st, &m), 0);
    h_reopen(&h);                                   /* and both survive a restart */
    ck_assert_int_eq(acdm_store_attachment_open(h.st, "att-m1", &at, &rfd), 0);
    ck_assert_str_eq(at.path, "");
    ck_assert_str_eq(at.content_id, "");
    got = fd_slurp(rfd, &n);
    close(rfd);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(memcmp(got, "hallo", 5), 0);
    free(got);
    ck_assert_int_eq(acdm_store_attachment_meta(h.st, "att-f1", &at), 0);
    ck_assert_uint_eq(at.len, 768u * 4096u);
    ck_assert_int_eq(acdm_store_attachment_open(h.st, "nope", &at, &rfd), ACDM_ENOENT);
    ck_assert_int_eq(rfd, -1);
    h_done(&h);
}
END_TEST

START_TEST(attachment_refs_are_per_channel_and_durable)
{
    harness h = {.st = NULL};
    h_init(&h, 5);
    ck_assert_int_eq(acdm_store_attachment_ref(h.st, "att-1", "mail1"), 0);
    h_sync(&h);
    ck_assert_int_eq(acdm_store_attachment_ref_has(h.st, "att-1", "mail1"), 1);
    ck_assert_int_eq(acdm_store_attachment_ref_has(h.st, "att-1", "sms1"), 0);
    ck_assert_int_eq(acdm_store_attachment_ref(h.st, "att-1", "mail1"), 0);   /* twice: once */
    h_reopen(&h);
    ck_assert_int_eq(acdm_store_attachment_ref_has(h.st, "att-1", "mail1"), 1);
    h_done(&h);
}
END_TEST

static int expired_n = -100, expired_calls;
static void expired_cb(void *user, int removed)
{
    (void)user;
    expired_n = removed;
    expired_calls++;
}

START_TEST(kv_ttl_hides_at_once_and_expiry_removes_in_slices)
{
    harness h = {.st = NULL};
    h_init(&h, 5);
    int64_t now = wall_ms();
    char *v = NULL;
    size_t n = 0;
    /* pending (not committed yet) and already expired: invisible */
    ck_assert_int_eq(acdm_store_kv_set_ttl(h.st, "sms1", "old", "x", 1, now - 1), 0);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "sms1", "old", &v, &n), ACDM_ENOENT);
    ck_assert_int_eq(acdm_store_kv_set_ttl(h.st, "sms1", "live", "y", 1, now + 600000), 0);
    ck_assert_int_eq(acdm_store_kv_set(h.st, "sms1", "forever", "z", 1), 0);
    h_sync(&h);
    /* committed and expired: still invisible before any removal ran */
    ck_assert_int_eq(acdm_store_kv_get(h.st, "sms1", "old", &v, &n), ACDM_ENOENT);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "sms1", "live", &v, &n), 0);
    ck_assert_str_eq(v, "y");
    free(v);
    /* a short ttl runs out while we look */
    ck_assert_int_eq(acdm_store_kv_set_ttl(h.st, "sms1", "short", "s", 1, wall_ms() + 150), 0);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "sms1", "short", &v, &n), 0);
    free(v);
    usleep(200000);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "sms1", "short", &v, &n), ACDM_ENOENT);
    for (int i = 0; i < 3; i++) {
        char k[16];
        snprintf(k, sizeof k, "e%d", i);
        ck_assert_int_eq(acdm_store_kv_set_ttl(h.st, "sms1", k, "v", 1, now - 10), 0);
    }
    /* removal in slices of 2: old + short + e0..e2 = 5 expired rows */
    int want = 0;
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(acdm_store_kv_expire(h.st, wall_ms(), 2, expired_cb, NULL), 0);
        pump(&h, &expired_calls, ++want, 5000);
        ck_assert_int_eq(expired_n, round < 2 ? 2 : 1);
    }
    ck_assert_int_eq(acdm_store_kv_expire(h.st, wall_ms(), 2, expired_cb, NULL), 0);
    pump(&h, &expired_calls, ++want, 5000);
    ck_assert_int_eq(expired_n, 0);
    /* the rest untouched; a plain set clears an expiry */
    ck_assert_int_eq(acdm_store_kv_get(h.st, "sms1", "live", &v, &n), 0);
    free(v);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "sms1", "forever", &v, &n), 0);
    free(v);
    ck_assert_int_eq(acdm_store_kv_set_ttl(h.st, "sms1", "live", "y2", 2, wall_ms() - 1), 0);
    ck_assert_int_eq(acdm_store_kv_set(h.st, "sms1", "live", "y3", 2), 0);
    h_reopen(&h);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "sms1", "live", &v, &n), 0);
    ck_assert_str_eq(v, "y3");
    free(v);
    h_done(&h);
}
END_TEST

static void sql(const char *dbpath, const char *q)
{
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, q, NULL, NULL, &msg);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", q, msg ? msg : "");
    sqlite3_close(db);
}

START_TEST(schema_5_database_migrates_and_keeps_its_data)
{
    harness h = {.st = NULL};
    h_init(&h, 5);
    ck_assert_int_eq(acdm_store_kv_set(h.st, "web1", "k", "old value", 9), 0);
    ck_assert_int_eq(acdm_store_attachment_put(h.st, "att-old", "b-1", "web1", "a.png", "image/png",
                                               "PNG", 3, 1), 0);
    acdm_store_close(h.st);
    h.st = NULL;
    /* what a 5 database looks like: without the 6 additions */
    char db[128];
    snprintf(db, sizeof db, "%s/acdm.db", h.dir);
    sql(db, "DROP INDEX kv_expires; ALTER TABLE kv DROP COLUMN expires_ms;"
            "ALTER TABLE attachments DROP COLUMN content_id; ALTER TABLE attachments DROP COLUMN file;"
            "ALTER TABLE messages DROP COLUMN id; DROP TABLE attachment_refs;"
            "UPDATE meta SET value='5' WHERE key='schema_version';");
    h_open(&h);
    char *v = NULL;
    size_t n = 0;
    ck_assert_int_eq(acdm_store_kv_get(h.st, "web1", "k", &v, &n), 0);
    ck_assert_str_eq(v, "old value");
    free(v);
    acdm_attachment at;
    ck_assert_int_eq(acdm_store_attachment_get(h.st, "att-old", &at), 0);
    ck_assert_uint_eq(at.len, 3);
    ck_assert_str_eq(at.content_id, "");
    free(at.data);
    ck_assert_int_eq(acdm_store_kv_set_ttl(h.st, "web1", "t", "v", 1, wall_ms() + 60000), 0);
    h_sync(&h);
    ck_assert_int_eq(acdm_store_kv_get(h.st, "web1", "t", &v, &n), 0);
    free(v);
    h_done(&h);
}
END_TEST

#define ADD(s, fn, secs) do { TCase *tc = tcase_create(#fn); tcase_set_timeout(tc, secs); \
                              tcase_add_test(tc, fn); suite_add_tcase(s, tc); } while (0)

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    ADD(s, insert_commits_then_calls_back_and_survives_reopen, 20);
    ADD(s, close_commits_pending_and_runs_callbacks, 20);
    ADD(s, flush_runs_after_earlier_inserts, 20);
    ADD(s, duplicate_in_same_group_gets_eexist_and_original_id, 20);
    ADD(s, duplicate_after_reopen_gets_eexist_and_original_id, 20);
    ADD(s, load_open_returns_inflight_work_by_queue_time, 20);
    ADD(s, update_changes_state_queue_and_agent, 20);
    ADD(s, events_and_messages_appear_in_bericht_json, 20);
    ADD(s, kv_visible_at_once_and_after_reopen, 20);
    ADD(s, file_backed_attachment_is_copied_synced_and_read_back, 20);
    ADD(s, attachment_refs_are_per_channel_and_durable, 20);
    ADD(s, kv_ttl_hides_at_once_and_expiry_removes_in_slices, 20);
    ADD(s, schema_5_database_migrates_and_keeps_its_data, 20);
    ADD(s, token_create_and_check, 20);
    ADD(s, token_revoke_agent, 20);
    ADD(s, bad_input_is_refused_without_callback, 20);
    ADD(s, failed_group_reports_eio_and_store_recovers, 20);
    ADD(s, acknowledged_berichten_survive_kill9, 90);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(store_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
