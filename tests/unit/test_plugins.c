/* test_plugins.c -- unit tests of the plugin host: loader refusals, instances, host calls, hot drop. */
#include "net/outbound.h"
#include "plugins/plugins.h"
#include "net/http.h"
#include "base/log.h"
#include "fake_http.h"   /* routes and websockets driven directly, instead of core/net/http.c */
#include "plugin_cfg.h"    /* configs of channels for the host */

#include "store/store.h"

#include <check.h>
#include <sqlite3.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define TP "build/testplugins/"
#define END ((const char *)NULL)   /* ends cfg_make's list */
/* The ABI 1.1 host functions this core implements (ACDM_HOST_HAS true), in table order. */
#define HOST_HAS_EXPECTED "submit_err attachment_store attachment_read kv_set_ttl update " \
                          "device_result device_reachable originate_result flush set_conversation"

/* ================================================================ a mock engine (the core's side) */

typedef struct { pthread_t tid; char inst[64], what[64], text[512]; } record;
typedef struct { acdm_instance *inst; acdm_submit_cb cb; void *user; } owed;

static struct {
    record rec[512];
    int n;
    owed owed[16];
    int n_owed;
    int submits, ends;
    char last_from[64], last_kind[16];
} eng;

static void rec_add(acdm_instance *inst, const char *what, const char *text)
{
    ck_assert_int_lt(eng.n, 512);
    record *r = &eng.rec[eng.n++];
    r->tid = pthread_self();
    snprintf(r->inst, sizeof r->inst, "%s", acdm_instance_name_of(inst));
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->text, sizeof r->text, "%s", text ? text : "");
}

static int mock_submit(void *e, acdm_instance *inst, const acdm_inbound *in, acdm_submit_cb cb, void *user,
                       char *err, size_t errlen)
{
    (void)e;
    if (in->queue && !strcmp(in->queue, "nope")) {   /* the engine's own refusal */
        snprintf(err, errlen, "queue: no queue named \"%s\"", in->queue);
        return ACDM_ENOENT;
    }
    eng.submits++;
    snprintf(eng.last_from, sizeof eng.last_from, "%s", in->from);
    snprintf(eng.last_kind, sizeof eng.last_kind, "%s", in->kind);
    if (cb) eng.owed[eng.n_owed++] = (owed){inst, cb, user};
    return 0;
}
static int mock_end(void *e, acdm_instance *inst, const char *id, const char *reason)
{
    (void)e; (void)inst; (void)id; (void)reason;
    eng.ends++;
    return 0;
}
static int mock_delivery_report(void *e, acdm_instance *inst, const char *id, const char *text, const char *pl)
{
    (void)e; (void)pl;
    rec_add(inst, id, text);
    return 0;
}
/* attachments: the engine's side records what the host handed over */
static int mock_att_store(void *e, acdm_instance *inst, const acdm_attachment_in *a, int fd,
                          char id_out[64])
{
    (void)e;
    char what[256];
    if (fd >= 0) {
        struct stat st;
        ck_assert_int_eq(fstat(fd, &st), 0);
        snprintf(what, sizeof what, "file %lld %s %s", (long long)st.st_size,
                 a->content_type ? a->content_type : "-", a->content_id ? a->content_id : "-");
        close(fd);                          /* the callee owns it */
    } else {
        snprintf(what, sizeof what, "mem %zu %.*s", a->len, (int)a->len, (const char *)a->data);
    }
    rec_add(inst, "att-store", what);
    snprintf(id_out, 64, "att-1");
    return 0;
}
static int mock_att_read(void *e, acdm_instance *inst, const char *id, acdm_attachment_meta *m,
                         int *fd)
{
    (void)e; (void)inst;
    if (!strcmp(id, "other")) return ACDM_EPERM;
    if (strcmp(id, "att-1")) return ACDM_ENOENT;
    ck_assert_uint_eq(m->struct_size, sizeof *m);   /* the host passes its own, full size */
    snprintf(m->bericht_id, sizeof m->bericht_id, "b-1");
    snprintf(m->filename, sizeof m->filename, "f.bin");
    snprintf(m->content_id, sizeof m->content_id, "cid-1");
    m->size = 7;
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(write(p[1], "content", 7), 7);
    close(p[1]);
    *fd = p[0];
    return 0;
}
/* ABI 1.1 routing calls as the engine gets them (recorded; the answers are the engine's) */
static int mock_update(void *e, acdm_instance *inst, const char *id, const acdm_update *u, char *err, size_t errlen)
{
    (void)e;
    char t[512];
    snprintf(t, sizeof t, "%s q=%s p=%d pl=%s", id, u->queue ? u->queue : "-", u->priority,
             u->payload_json ? u->payload_json : "-");
    rec_add(inst, "update", t);
    if (u->queue && !strcmp(u->queue, "nope")) { snprintf(err, errlen, "queue: no queue named \"nope\""); return ACDM_EINVAL; }
    return 0;
}
static int mock_device_result(void *e, acdm_instance *inst, const char *id, const char *agent,
                              acdm_device_outcome o, const char *reason)
{
    (void)e;
    char t[512];
    snprintf(t, sizeof t, "%s %s %d %s", id, agent, (int)o, reason ? reason : "-");
    rec_add(inst, "device_result", t);
    return 0;
}
static int mock_device_reachable(void *e, acdm_instance *inst, const char *agent, const char *kind,
                                 int up, const char *reason)
{
    (void)e;
    char t[512];
    snprintf(t, sizeof t, "%s %s %d %s", agent, kind, up, reason ? reason : "-");
    rec_add(inst, "device_reachable", t);
    return 0;
}
static int mock_originate_result(void *e, acdm_instance *inst, const char *id, acdm_originate_outcome o,
                                 const char *reason)
{
    (void)e;
    char t[512];
    snprintf(t, sizeof t, "%s %d %s", id, (int)o, reason ? reason : "-");
    rec_add(inst, "originate_result", t);
    return 0;
}

static void mock_devices_gone(void *e, acdm_instance *inst, const char *key)
{
    (void)e;
    rec_add(inst, "devices_gone", key);
}

/* the engine keeps its promise: every owed submit callback is called (after "commit") */
static void mock_commit_all(void)
{
    for (int k = 0; k < eng.n_owed; k++)
        eng.owed[k].cb(eng.owed[k].inst, NULL, eng.owed[k].user, ACDM_SUBMIT_QUEUED, "b-1", NULL);
    eng.n_owed = 0;
}
/* the oldest owed submit is committed with this outcome */
static void mock_commit_one(acdm_submit_outcome o, const char *id, const char *text)
{
    ck_assert_int_gt(eng.n_owed, 0);
    owed w = eng.owed[0];
    memmove(&eng.owed[0], &eng.owed[1], (size_t)(eng.n_owed - 1) * sizeof w);
    eng.n_owed--;
    w.cb(w.inst, NULL, w.user, o, id, text);
}

static const record *find_rec(const char *inst, const char *what)
{
    for (int k = eng.n - 1; k >= 0; k--)
        if ((!inst || !strcmp(eng.rec[k].inst, inst)) && !strcmp(eng.rec[k].what, what))
            return &eng.rec[k];
    return NULL;
}
static int count_rec(const char *what)
{
    int n = 0;
    for (int k = 0; k < eng.n; k++) n += !strcmp(eng.rec[k].what, what);
    return n;
}

/* ================================================================ fixture */

static uv_loop_t loop;
static uv_timer_t tick;
static acdm_plugins *P;
static acdm_outbound *OUT;   /* the core's outbound client the host's http_request runs on */
static acdm_store *ST;       /* a real store for the next host_new when ST_DIR is set */
static const char *ST_DIR;
static uv_async_t st_async;
static void st_wake(void *a) { uv_async_send(a); }
static void st_poll(uv_async_t *a) { acdm_store_poll(a->data); }

static void on_tick(uv_timer_t *t) { (void)t; }

static acdm_plugins *host_new(const char *dir, bool with_http)
{
    memset(&eng, 0, sizeof eng);
    memset(&fake_http, 0, sizeof fake_http);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);   /* keeps uv_run(ONCE) from blocking for long */
    ck_assert_int_eq(acdm_outbound_create(&loop, &OUT), 0);
    ST = NULL;
    if (ST_DIR) {
        char err[256];
        ck_assert_int_eq(uv_async_init(&loop, &st_async, st_poll), 0);
        /* a long group commit: a write is not durable until the writer's next group */
        ck_assert_msg(acdm_store_open(ST_DIR, 300, st_wake, &st_async, &ST, err, sizeof err) == 0,
                      "%s", err);
        st_async.data = ST;
    }
    acdm_plugin_env env = {.loop = &loop, .store = ST, .http = with_http ? &fake_http : NULL,
                           .outbound = OUT,
                           .engine = &eng, .submit = mock_submit, .end = mock_end,
                           .delivery_report = mock_delivery_report,
                           .attachment_store = mock_att_store, .attachment_read = mock_att_read,
                           .update = mock_update,
                           .device_result = mock_device_result, .device_reachable = mock_device_reachable,
                           .originate_result = mock_originate_result, .devices_gone = mock_devices_gone};
    acdm_plugins *p = NULL;
    ck_assert_int_eq(acdm_plugins_create(&env, dir, &p), 0);
    return p;
}

static void host_free(acdm_plugins *p)
{
    acdm_plugins_destroy(p);
    acdm_outbound_destroy(OUT);
    OUT = NULL;
    if (ST) {
        acdm_store_close(ST);
        ST = NULL;
        uv_close((uv_handle_t *)&st_async, NULL);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);   /* every handle of the host is closed */
}

/* Runs the loop until what is recorded (for inst), or timeout. */
static const record *run_until(const char *inst, const char *what, int timeout_ms)
{
    uint64_t end = uv_now(&loop) + (uint64_t)timeout_ms;
    const record *r;
    while (!(r = find_rec(inst, what)) && uv_now(&loop) < end) uv_run(&loop, UV_RUN_ONCE);
    return r;
}
static void run_for(int ms)
{
    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + (uint64_t)ms;
    while (uv_now(&loop) < end) uv_run(&loop, UV_RUN_ONCE);
}

static int deliver(acdm_plugins *p, const char *inst, const char *text)
{
    acdm_reply r = {.struct_size = sizeof r, .bericht_id = "b-1", .to = "alice", .agent = "a1",
                    .text = text};
    return acdm_plugins_deliver(p, inst, &r);
}

static void load_good(acdm_plugins *p)
{
    char err[256];
    ck_assert_int_eq(acdm_plugins_load_file(p, TP "good_counter.so", err, sizeof err), 0);
}

/* ================================================================ loader */

static void expect_refused(acdm_plugins *p, const char *file, const char *reason_part)
{
    char err[512] = "";
    ck_assert_int_lt(acdm_plugins_load_file(p, file, err, sizeof err), 0);
    ck_assert_msg(strstr(err, reason_part), "%s: reason \"%s\" lacks \"%s\"", file, err, reason_part);
}

START_TEST(refusals_name_the_reason_and_the_host_keeps_going)
{
    P = host_new(TP, false);
    expect_refused(P, TP "bad_abi_major.so", "built for plugin ABI 2.0, this core speaks 1.2");
    expect_refused(P, TP "missing_deliver.so", "mandatory callback deliver is missing");
    expect_refused(P, TP "no_entry.so", "no exported symbol acdm_plugin_entry");
    expect_refused(P, TP "small_struct.so", "not binary compatible");
    expect_refused(P, TP "does_not_exist.so", "cannot open: No such file");
    expect_refused(P, TP "calls_internal.so", "calls acdm_log_raw, which is not part of the plugin ABI");
    expect_refused(P, "tests/unit/test_plugins.c", "not an ELF shared object");
    ck_assert_int_eq(acdm_plugins_load_file(P, TP "dup_name_a.so", NULL, 0), 0);
    expect_refused(P, TP "dup_name_b.so", "plugin name \"dup_name\" is already taken by "
                   TP "dup_name_a.so");
    load_good(P);   /* still loading after every refusal */
    json_t *ref = acdm_plugins_refused_json(P);
    ck_assert_int_eq(json_array_size(ref), 8);
    json_decref(ref);
    json_t *list = acdm_plugins_json(P);
    ck_assert_int_eq(json_array_size(list), 2);
    json_decref(list);
    host_free(P);
}
END_TEST

START_TEST(refusal_is_one_log_line_naming_file_and_reason)
{
    char path[] = "/tmp/acdm-plugins-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    P = host_new(TP, false);
    acdm_plugins_load_file(P, TP "bad_abi_major.so", NULL, 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[4096] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    unlink(path);
    ck_assert_int_gt(n, 0);
    buf[n] = 0;
    const char *line = strstr(buf, "ERR [plugins] refused " TP "bad_abi_major.so: built for plugin ABI 2.0");
    ck_assert_msg(line, "log was: %s", buf);
    ck_assert_ptr_nonnull(strstr(line, "rebuild the plugin"));
    host_free(P);
}
END_TEST

/* the body a route answered (fake_http) */
static const char *post_to(const char *path, const char *query, const char *body)
{
    static struct acdm_req r;
    fake_route *rt = find_route(&fake_http, path);
    ck_assert_msg(rt != NULL, "no route %s", path);
    memset(&r, 0, sizeof r);
    r.method = "POST"; r.path = path; r.query = query; r.body = body;
    rt->fn(rt->user, &r);
    ck_assert_int_eq(r.status, 200);
    return r.out;
}

START_TEST(routing_calls_reach_the_engine_and_offers_reach_the_plugin)
{
    P = host_new(TP, true);
    char err[256];
    ck_assert_int_eq(acdm_plugins_load_file(P, TP "device_phone.so", err, sizeof err), 0);
    ck_assert_int_eq(acdm_plugins_load_file(P, TP "good_counter.so", err, sizeof err), 0);
    configure(P, cfg_make("tel1", "testphone", "{}", "web1", "good_counter", "{\"tag\":\"t\"}", END));
    /* the descriptor's device key and originate, only for the plugin that has them */
    ck_assert_str_eq(acdm_plugins_device_key(P, "tel1"), "phone");
    ck_assert_ptr_null(acdm_plugins_device_key(P, "web1"));
    ck_assert_ptr_null(acdm_plugins_device_key(P, "nope"));
    ck_assert(acdm_plugins_can_originate(P, "tel1"));
    ck_assert(!acdm_plugins_can_originate(P, "web1"));
    acdm_device_offer o = {.struct_size = sizeof o, .bericht_id = "b-1", .agent_id = "a1", .agent_name = "Anouk",
                           .kind = "voice", .endpoint = "sip:1001@127.0.0.1", .from = "+3161", .queue = "q",
                           .timeout_ms = 20000};
    ck_assert_int_eq(acdm_plugins_offer_device(P, "tel1", &o), 0);
    ck_assert_int_eq(acdm_plugins_offer_device(P, "web1", &o), ACDM_ENOENT);
    acdm_originate og = {.struct_size = sizeof og, .bericht_id = "b-2", .kind = "sms", .to = "+3162",
                         .agent_id = "a1", .text = "hoi"};
    ck_assert_int_eq(acdm_plugins_originate(P, "tel1", &og, err, sizeof err), 0);
    ck_assert_int_eq(acdm_plugins_originate(P, "web1", &og, err, sizeof err), ACDM_ENOENT);
    ck_assert_ptr_nonnull(strstr(err, "cannot start outbound contacts"));
    struct acdm_req lr = {.method = "GET", .path = "/channels/tel1/log"};
    fake_route *log = find_route(&fake_http, "/channels/tel1/log");
    log->fn(log->user, &lr);
    ck_assert_ptr_nonnull(strstr(lr.out, "\"endpoint\":\"sip:1001@127.0.0.1\""));
    ck_assert_ptr_nonnull(strstr(lr.out, "\"timeout_ms\":20000"));
    ck_assert_ptr_nonnull(strstr(lr.out, "\"to\":\"+3162\""));
    /* the host checks what it can, the engine gets the rest */
    ck_assert_str_eq(post_to("/channels/tel1/result", "bericht=b-1&agent=a1&outcome=busy&reason=486", NULL),
                     "{\"rc\":0,\"err\":\"\"}");
    ck_assert_str_eq(find_rec("tel1", "device_result")->text, "b-1 a1 2 486");
    ck_assert_str_eq(post_to("/channels/tel1/result", "bericht=&agent=a1&outcome=busy", NULL),
                     "{\"rc\":-1,\"err\":\"\"}");
    ck_assert_str_eq(post_to("/channels/tel1/reachable", "agent=a1&kind=fax&up=1", NULL), "{\"rc\":-1,\"err\":\"\"}");
    ck_assert_str_eq(post_to("/channels/tel1/reachable", "agent=a1&kind=voice&up=1", NULL), "{\"rc\":0,\"err\":\"\"}");
    ck_assert_str_eq(find_rec("tel1", "device_reachable")->text, "a1 voice 1 -");
    ck_assert_str_eq(post_to("/channels/tel1/update", "bericht=b-3&queue=nope", NULL),
                     "{\"rc\":-1,\"err\":\"queue: no queue named 'nope'\"}");
    ck_assert_str_eq(post_to("/channels/tel1/update", "bericht=b-3&priority=4", "{\"ivr\":\"2\"}"),
                     "{\"rc\":0,\"err\":\"\"}");
    ck_assert_str_eq(find_rec("tel1", "update")->text, "b-3 q=- p=4 pl={\"ivr\":\"2\"}");
    ck_assert_str_eq(post_to("/channels/tel1/orig_result", "bericht=b-2&outcome=failed&reason=busy", NULL),
                     "{\"rc\":0,\"err\":\"\"}");
    ck_assert_str_eq(find_rec("tel1", "originate_result")->text, "b-2 1 busy");
    ck_assert_ptr_null(find_rec(NULL, "devices_gone"));
    configure(P, cfg_make(END));
    /* its stop voids what it said of registrations; the other plugin rings nothing */
    ck_assert_str_eq(find_rec("tel1", "devices_gone")->text, "phone");
    ck_assert_int_eq(count_rec("devices_gone"), 1);
    /* a stopped instance gets nothing */
    ck_assert_int_eq(acdm_plugins_offer_device(P, "tel1", &o), ACDM_ENOENT);
    host_free(P);
}
END_TEST

START_TEST(load_all_loads_good_ones_and_refuses_the_rest)
{
    P = host_new(TP, false);
    /* alphabetical: dup_name_a.so wins over dup_name_b.so */
    ck_assert_int_eq(acdm_plugins_load_all(P), 3);   /* device_phone, dup_name_a, good_counter */
    json_t *list = acdm_plugins_json(P);
    ck_assert_int_eq(json_array_size(list), 3);
    json_t *ref = acdm_plugins_refused_json(P);
    /* bad_abi_major, calls_internal, dup_name_b, good_counter_v2 (the name is taken),
     * missing_deliver, no_entry, small_struct */
    ck_assert_int_eq(json_array_size(ref), 7);
    bool dup_seen = false;
    for (size_t k = 0; k < json_array_size(ref); k++) {
        json_t *v = json_array_get(ref, k);
        const char *why = json_string_value(json_object_get(v, "reason"));
        if (strstr(json_string_value(json_object_get(v, "file")), "dup_name_b.so")) {
            dup_seen = true;
            ck_assert_ptr_nonnull(strstr(why, "dup_name_a.so"));
        }
    }
    ck_assert(dup_seen);
    json_decref(ref);
    json_decref(list);
    ck_assert_int_eq(acdm_plugins_load_all(P), 0);   /* already loaded: nothing new */
    host_free(P);
}
END_TEST

/* ================================================================ instances */

START_TEST(two_instances_get_separate_memory)
{
    P = host_new(TP, false);
    load_good(P);
    ck_assert_int_eq(configure(P, cfg_make("c1", "good_counter", "{\"tag\":\"a\"}",
                                           "c2", "good_counter", "{\"tag\":\"b\"}", END)), 0);
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "c1")), "running");
    ck_assert_str_eq(acdm_instance_queue(acdm_plugins_instance(P, "c2")), "algemeen");
    ck_assert_int_eq(deliver(P, "c1", "count"), 0);
    ck_assert_int_eq(deliver(P, "c1", "count"), 0);
    ck_assert_int_eq(deliver(P, "c2", "count"), 0);
    ck_assert_str_eq(find_rec("c1", "count")->text, "c1/a:2");
    ck_assert_str_eq(find_rec("c2", "count")->text, "c2/b:1");
    ck_assert_int_eq(deliver(P, "nope", "count"), ACDM_ENOENT);
    json_t *list = acdm_plugins_json(P);
    json_t *insts = json_object_get(json_array_get(list, 0), "instances");
    ck_assert_int_eq(json_array_size(insts), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "abi")), "1.2");
    json_decref(list);
    host_free(P);
}
END_TEST

static char *slurp(const char *path)
{
    static char buf[4096];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = 0;
    return buf;
}

START_TEST(configure_applies_a_diff)
{
    char trace[] = "/tmp/acdm-trace-XXXXXX";
    int fd = mkstemp(trace);
    close(fd);
    char c1[256], c1b[256], c2[256], c3[256], c1r[256];
    snprintf(c1, sizeof c1, "{\"tag\":\"a\",\"trace\":\"%s\"}", trace);
    snprintf(c1b, sizeof c1b, "{\"tag\":\"a2\",\"trace\":\"%s\"}", trace);
    snprintf(c1r, sizeof c1r, "{\"tag\":\"a3\",\"refuse_reload\":true,\"trace\":\"%s\"}", trace);
    snprintf(c2, sizeof c2, "{\"tag\":\"b\",\"trace\":\"%s\"}", trace);
    snprintf(c3, sizeof c3, "{\"tag\":\"c\",\"trace\":\"%s\"}", trace);
    P = host_new(TP, false);
    load_good(P);
    ck_assert_int_eq(configure(P, cfg_make("c1", "good_counter", c1, "c2", "good_counter", c2, END)), 0);
    ck_assert_str_eq(slurp(trace), "init a\nstart a\ninit b\nstart b\n");
    deliver(P, "c1", "count");
    truncate(trace, 0);
    /* c1 changed (reload keeps its memory), c2 removed, c3 new, nothing else touched */
    ck_assert_int_eq(configure(P, cfg_make("c1", "good_counter", c1b, "c3", "good_counter", c3, END)), 0);
    ck_assert_str_eq(slurp(trace), "reload a2\ninit c\nstart c\nstop b\ndestroy b\n");
    ck_assert_ptr_null(acdm_plugins_instance(P, "c2"));
    deliver(P, "c1", "count");
    ck_assert_str_eq(find_rec("c1", "count")->text, "c1/a2:2");
    /* same config again: no callback at all */
    truncate(trace, 0);
    ck_assert_int_eq(configure(P, cfg_make("c1", "good_counter", c1b, "c3", "good_counter", c3, END)), 0);
    ck_assert_str_eq(slurp(trace), "");
    /* a refused reload keeps the old config and reports the failure */
    ck_assert_int_lt(configure(P, cfg_make("c1", "good_counter", c1r, "c3", "good_counter", c3, END)), 0);
    deliver(P, "c1", "count");
    ck_assert_str_eq(find_rec("c1", "count")->text, "c1/a2:3");
    /* check_config runs before a reload, nothing applied */
    char err[512];
    acdm_config *bad = cfg_make("c1", "good_counter", "{\"bad\":true}", "w", "not_loaded", "{}", END);
    ck_assert_int_eq(acdm_plugins_check(P, bad, err, sizeof err), ACDM_EINVAL);
    ck_assert_str_eq(err, "channels[0] (c1): plugin good_counter: \"bad\" must not be true");
    cfg_free(bad);
    /* a failing init leaves the instance failed, the others running */
    ck_assert_int_lt(configure(P, cfg_make("c1", "good_counter", c1b, "f", "good_counter",
                                           "{\"fail_init\":true}", END)), 0);
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "f")), "failed");
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "c1")), "running");
    host_free(P);
    unlink(trace);
}
END_TEST

START_TEST(instances_wait_for_their_plugin_and_follow_enable)
{
    P = host_new(TP, false);
    ck_assert_int_eq(configure(P, cfg_make("w1", "good_counter", "{\"tag\":\"w\"}", END)), 0);
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "w1")), "waiting");
    ck_assert_int_eq(deliver(P, "w1", "count"), ACDM_ENOENT);
    load_good(P);
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "w1")), "running");
    ck_assert_int_eq(acdm_plugins_unload(P, "good_counter"), ACDM_ESTATE);  /* in use */
    ck_assert_int_eq(acdm_plugins_enable(P, "good_counter", false), 0);
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "w1")), "disabled");
    ck_assert_int_eq(deliver(P, "w1", "count"), ACDM_ENOENT);
    ck_assert_int_eq(acdm_plugins_enable(P, "good_counter", true), 0);
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "w1")), "running");
    ck_assert_int_eq(acdm_plugins_enable(P, "good_counter.so", true), ACDM_ENOENT); /* by name, not file */
    host_free(P);
}
END_TEST

/* ================================================================ host calls */

START_TEST(post_from_a_thread_runs_on_the_loop_thread)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    ck_assert_int_eq(deliver(P, "c1", "post"), 0);
    ck_assert_ptr_null(find_rec("c1", "post"));   /* not run inside post() */
    const record *r = run_until("c1", "post", 2000);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->text, "ran");
    ck_assert(pthread_equal(r->tid, pthread_self()));
    host_free(P);
}
END_TEST

START_TEST(posts_to_a_stopped_instance_are_dropped)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    ck_assert_int_eq(deliver(P, "c1", "burst"), 0);   /* 100 posts queued, none run yet */
    configure(P, cfg_make(END));
    run_for(50);
    ck_assert_int_eq(count_rec("post"), 0);
    host_free(P);
}
END_TEST

START_TEST(timers_fire_and_are_cancelled_on_stop)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    deliver(P, "c1", "timer 20");
    deliver(P, "c1", "repeat 10");
    ck_assert_str_eq(run_until("c1", "timer", 2000)->text, "fired");
    ck_assert_str_eq(run_until("c1", "repeat", 2000)->text, "3");
    run_for(50);
    ck_assert_int_eq(count_rec("repeat"), 1);     /* stopped from its own callback */
    deliver(P, "c1", "timer 30");                 /* still pending at stop: freed by the host */
    configure(P, cfg_make(END));
    run_for(60);
    ck_assert_int_eq(count_rec("timer"), 1);
    host_free(P);
}
END_TEST

START_TEST(kv_is_per_instance)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", "c2", "good_counter", "{}", END));
    deliver(P, "c1", "kv-get k");
    ck_assert_str_eq(find_rec("c1", "kv")->text, "ENOENT");
    deliver(P, "c1", "kv-set k v1");
    ck_assert_str_eq(find_rec("c1", "kv")->text, "0");
    deliver(P, "c1", "kv-get k");
    ck_assert_str_eq(find_rec("c1", "kv")->text, "v1");
    deliver(P, "c2", "kv-get k");
    ck_assert_str_eq(find_rec("c2", "kv")->text, "ENOENT");
    deliver(P, "c1", "kv-set k v2");
    deliver(P, "c1", "kv-get k");
    ck_assert_str_eq(find_rec("c1", "kv")->text, "v2");
    /* survives a restart of the instance */
    configure(P, cfg_make("c2", "good_counter", "{}", END));
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    deliver(P, "c1", "kv-get k");
    ck_assert_str_eq(find_rec("c1", "kv")->text, "v2");
    deliver(P, "c1", "kv-set k -");   /* delete */
    deliver(P, "c1", "kv-get k");
    ck_assert_str_eq(find_rec("c1", "kv")->text, "ENOENT");
    host_free(P);
}
END_TEST

/* A kv row as another connection sees it in the database file (committed), or "" */
static void kv_on_disk(const char *dir, const char *ns, const char *key, char *out, size_t cap)
{
    char path[512];
    snprintf(path, sizeof path, "%s/acdm.db", dir);
    sqlite3 *db = NULL;
    out[0] = 0;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT value FROM kv WHERE ns=? AND key=?", -1, &q, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(q, 1, ns, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW)
        snprintf(out, cap, "%.*s", sqlite3_column_bytes(q, 0), (const char *)sqlite3_column_blob(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
}

START_TEST(flush_calls_back_once_the_instance_writes_are_committed)
{
    char dir[] = "/tmp/acdm-flush-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ST_DIR = dir;
    P = host_new(TP, false);
    ST_DIR = NULL;
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    deliver(P, "c1", "kv-set outbox m1");
    deliver(P, "c1", "flush");
    ck_assert_str_eq(find_rec("c1", "flush-rc")->text, "0");
    char v[64];
    kv_on_disk(dir, "c1", "outbox", v, sizeof v);
    ck_assert_str_eq(v, "");                       /* not yet: the group commit is 300 ms away */
    ck_assert_ptr_null(find_rec("c1", "flushed"));   /* and the callback waits for it */
    ck_assert_ptr_nonnull(run_until("c1", "flushed", 3000));
    kv_on_disk(dir, "c1", "outbox", v, sizeof v);
    ck_assert_str_eq(v, "m1");                     /* when it runs, the write is on disk */
    ck_assert_int_eq(count_rec("flushed"), 1);
    run_for(400);
    ck_assert_int_eq(count_rec("flushed"), 1);     /* exactly once */

    /* a flush outstanding when the instance stops: never called (the plugin is gone) */
    deliver(P, "c1", "kv-set outbox m2");
    deliver(P, "c1", "flush");
    configure(P, cfg_make(END));
    run_for(700);
    ck_assert_int_eq(count_rec("flushed"), 1);
    host_free(P);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(fd_watch_fires)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    ck_assert_int_eq(deliver(P, "c1", "watch"), 0);
    const record *r = run_until("c1", "watch", 2000);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->text, "x");
    host_free(P);
}
END_TEST

START_TEST(submit_is_validated_and_forwarded)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    deliver(P, "c1", "submit chat alice@example.nl");
    ck_assert_str_eq(find_rec("c1", "submit-rc")->text, "0");
    ck_assert_int_eq(eng.submits, 1);
    ck_assert_str_eq(eng.last_from, "alice@example.nl");
    ck_assert_ptr_null(find_rec("c1", "submit-cb"));
    mock_commit_all();
    ck_assert_str_eq(find_rec("c1", "submit-cb")->text, "0 b-1 -");
    /* bad input: negative, the engine never sees it, the callback never runs */
    deliver(P, "c1", "submit fax alice");
    ck_assert_str_eq(find_rec("c1", "submit-rc")->text, "-1");
    deliver(P, "c1", "submit chat -");
    ck_assert_str_eq(find_rec("c1", "submit-rc")->text, "-1");
    deliver(P, "c1", "submit-small");
    ck_assert_str_eq(find_rec("c1", "submit-rc")->text, "-1");
    ck_assert_int_eq(eng.submits, 1);
    ck_assert_int_eq(count_rec("submit-cb"), 1);
    deliver(P, "c1", "end b-1");
    ck_assert_str_eq(find_rec("c1", "end-rc")->text, "0");
    ck_assert_int_eq(eng.ends, 1);
    /* a callback owed to an instance that stopped meanwhile is swallowed */
    deliver(P, "c1", "submit sms 0612345678");
    configure(P, cfg_make(END));
    mock_commit_all();
    ck_assert_int_eq(count_rec("submit-cb"), 1);
    host_free(P);
}
END_TEST

START_TEST(submit_err_writes_the_refusal_sentence)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    /* the host's own checks, each naming the field */
    deliver(P, "c1", "submit-err fax alice");
    ck_assert_str_eq(find_rec("c1", "submit-err")->text,
                     "-1 kind: unknown kind \"fax\" (voice, chat, email, sms, whatsapp or callback)");
    deliver(P, "c1", "submit-err chat -");
    ck_assert_str_eq(find_rec("c1", "submit-err")->text, "-1 from: required");
    /* the engine's refusal comes through as its sentence */
    deliver(P, "c1", "submit-err chat alice nope");
    ck_assert_str_eq(find_rec("c1", "submit-err")->text, "-2 queue: no queue named \"nope\"");
    ck_assert_int_eq(eng.submits, 0);
    ck_assert_int_eq(eng.n_owed, 0);           /* a refusal never owes a callback */
    /* accepted: 0, err left empty, the callback comes after the commit */
    deliver(P, "c1", "submit-err chat alice");
    ck_assert_str_eq(find_rec("c1", "submit-err")->text, "0 ");
    ck_assert_int_eq(eng.submits, 1);
    mock_commit_all();
    ck_assert_str_eq(find_rec("c1", "submit-cb")->text, "0 b-1 -");
    host_free(P);
}
END_TEST

START_TEST(routes_get_the_abi_1_1_request_fields)
{
    P = host_new(TP, true);
    load_good(P);
    configure(P, cfg_make("web1", "good_counter", "{\"http\":true}", END));
    fake_route *rt = route("/channels/web1/req");
    struct acdm_req r = {.method = "GET", .path = "/channels/web1/req", .query = "text=1+1 & 2",
                         .query_raw = "text=1%2B1%20%26%202&x=y",
                         .url = "http://h:1/channels/web1/req?text=1%2B1%20%26%202&x=y",
                         .peer = "192.0.2.7",
                         .hdrs = {{"host", "h:1"}, {"x-hub-signature-256", "sha256=ab"}}, .n_hdrs = 2};
    rt->fn(rt->user, &r);
    ck_assert_int_eq(r.status, 200);
    ck_assert_str_eq(r.out, "size=1 raw=text=1%2B1%20%26%202&x=y "
                     "url=http://h:1/channels/web1/req?text=1%2B1%20%26%202&x=y peer=192.0.2.7 n=2 "
                     "sig=sha256=ab text=7:1+1 & 2");
    /* no query, no headers: NULL and 0, never garbage */
    struct acdm_req r2 = {.method = "GET", .path = "/channels/web1/req"};
    rt->fn(rt->user, &r2);
    ck_assert_str_eq(r2.out, "size=1 raw=- url=- peer= n=0 sig=- text=-1:");
    host_free(P);
}
END_TEST

START_TEST(host_table_has_exactly_what_is_implemented)
{
    /* ACDM_HOST_HAS must be true for every function the host fills and false beyond */
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    deliver(P, "c1", "host-has");
    ck_assert_str_eq(find_rec("c1", "host-has")->text, HOST_HAS_EXPECTED);
    host_free(P);
}
END_TEST

START_TEST(attachment_store_validates_and_hands_over_a_file_or_memory)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    deliver(P, "c1", "att-mem b-1 hallo");
    ck_assert_str_eq(find_rec("c1", "att")->text, "0 att-1");
    ck_assert_str_eq(find_rec("c1", "att-store")->text, "mem 5 hallo");
    /* from a file: the host opens it (the plugin may delete it after) and passes the fd */
    char path[] = "/tmp/acdm-att-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "0123456789", 10), 10);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "att-path b-1 %s", path);
    deliver(P, "c1", cmd);
    ck_assert_str_eq(find_rec("c1", "att")->text, "0 att-1");
    ck_assert_str_eq(find_rec("c1", "att-store")->text, "file 10 - cid-1");
    /* over the file cap: refused before the engine sees it (a sparse file costs no disk) */
    ck_assert_int_eq(truncate(path, (off_t)ACDM_ATTACHMENT_FILE_MAX + 1), 0);
    eng.n = 0;
    deliver(P, "c1", cmd);
    ck_assert_str_eq(find_rec("c1", "att")->text, "-20 ");
    ck_assert_ptr_null(find_rec("c1", "att-store"));
    unlink(path);
    deliver(P, "c1", cmd);                                  /* gone */
    ck_assert_str_eq(find_rec("c1", "att")->text, "-2 ");
    deliver(P, "c1", "att-both b-1");                       /* data and path: one or the other */
    ck_assert_str_eq(find_rec("c1", "att")->text, "-1");
    deliver(P, "c1", "att-path b-1 /tmp");                  /* not a regular file */
    ck_assert_str_eq(find_rec("c1", "att")->text, "-1 ");
    ck_assert_ptr_null(find_rec("c1", "att-store"));
    host_free(P);
}
END_TEST

START_TEST(attachment_read_fills_meta_and_an_fd)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    deliver(P, "c1", "att-read att-1");
    ck_assert_str_eq(find_rec("c1", "att-read")->text, "0 b-1 f.bin cid-1 7 content");
    deliver(P, "c1", "att-read other");
    ck_assert_str_eq(find_rec("c1", "att-read")->text, "-7    0 ");   /* meta untouched */
    deliver(P, "c1", "att-read nope");
    ck_assert_str_eq(find_rec("c1", "att-read")->text, "-2    0 ");
    deliver(P, "c1", "att-read-small att-1");               /* struct_size too small: EABI */
    ck_assert_str_eq(find_rec("c1", "att-read")->text, "-10 -1");
    host_free(P);
}
END_TEST

START_TEST(kv_set_ttl_expires_and_is_removed)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    deliver(P, "c1", "kv-ttl short v1 1");
    deliver(P, "c1", "kv-ttl long v2 3600");
    deliver(P, "c1", "kv-ttl plain v3 0");
    deliver(P, "c1", "kv-get short");
    ck_assert_str_eq(find_rec("c1", "kv")->text, "v1");
    usleep(1100 * 1000);
    deliver(P, "c1", "kv-get short");                       /* invisible at once */
    ck_assert_str_eq(find_rec("c1", "kv")->text, "ENOENT");
    deliver(P, "c1", "kv-get long");
    ck_assert_str_eq(find_rec("c1", "kv")->text, "v2");
    deliver(P, "c1", "kv-get plain");
    ck_assert_str_eq(find_rec("c1", "kv")->text, "v3");
    deliver(P, "c1", "kv-set short again");                 /* a plain set has no expiry */
    deliver(P, "c1", "kv-get short");
    ck_assert_str_eq(find_rec("c1", "kv")->text, "again");
    host_free(P);
}
END_TEST

START_TEST(status_json_is_shown_per_instance_and_in_health)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("ok1", "good_counter", "{}", "sick1", "good_counter", "{\"sick\":true}",
                          "lost1", "no_such_plugin", "{}", END));
    deliver(P, "ok1", "count");
    json_t *list = acdm_plugins_json(P);
    json_t *insts = json_object_get(json_array_get(list, 0), "instances");
    int seen = 0;
    for (size_t k = 0; k < json_array_size(insts); k++) {
        json_t *i = json_array_get(insts, k);
        const char *name = json_string_value(json_object_get(i, "name"));
        char *st = json_dumps(json_object_get(i, "status"), JSON_COMPACT | JSON_SORT_KEYS);
        if (!strcmp(name, "ok1")) { ck_assert_str_eq(st, "{\"count\":1,\"healthy\":true}"); seen++; }
        if (!strcmp(name, "sick1")) { ck_assert_str_eq(st, "{\"count\":0,\"healthy\":false}"); seen++; }
        free(st);
    }
    ck_assert_int_eq(seen, 2);
    json_decref(list);
    char *txt;
    json_t *degraded = NULL;
    json_t *h = acdm_plugins_health_json(P, &degraded);
    ck_assert_int_eq(json_array_size(h), 3);
    txt = json_dumps(degraded, JSON_COMPACT);
    /* the sick one and the one whose plugin is not loaded; ok1 is healthy */
    ck_assert_msg(strstr(txt, "\"sick1\"") && strstr(txt, "\"lost1\"") && !strstr(txt, "ok1"), "%s", txt);
    free(txt);
    json_decref(degraded);
    json_decref(h);
    host_free(P);
}
END_TEST

START_TEST(reply_carries_message_id_and_payload)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    acdm_reply r = {.struct_size = sizeof r, .bericht_id = "b-1", .to = "alice", .agent = "a1",
                    .text = "reply-id", .payload_json = "{\"subject\":\"Re: x\"}",
                    .message_id = "m-42"};
    ck_assert_int_eq(acdm_plugins_deliver(P, "c1", &r), 0);
    ck_assert_str_eq(find_rec("c1", "reply-id")->text, "m-42|{\"subject\":\"Re: x\"}");
    host_free(P);
}
END_TEST

START_TEST(events_reach_on_event)
{
    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    acdm_event_info ev = {.struct_size = sizeof ev, .type = ACDM_EV_ACCEPTED, .bericht_id = "b-9",
                          .queue = "algemeen", .agent = "a1"};
    acdm_plugins_event(P, "c1", &ev);
    ck_assert_str_eq(find_rec("c1", "event")->text, "2 b-9");
    ev.type = ACDM_EV_HOLD;               /* appended types (ABI 1.0): 8 hold, 9 resume */
    acdm_plugins_event(P, "c1", &ev);
    ck_assert_str_eq(find_rec("c1", "event")->text, "8 b-9");
    ck_assert_int_eq(ACDM_EV_RESUME, 9);
    acdm_plugins_event(P, "nope", &ev);   /* ignored */
    host_free(P);
}
END_TEST

START_TEST(routes_are_mapped_under_channels_and_removed_on_stop)
{
    P = host_new(TP, true);
    load_good(P);
    configure(P, cfg_make("web1", "good_counter", "{\"tag\":\"t\",\"http\":true}", END));
    fake_route *hello = find_route(&fake_http, "/channels/web1/hello");
    fake_route *echo = find_route(&fake_http, "/channels/web1/echo/*");
    fake_route *ws = find_route(&fake_http, "/channels/web1/ws");
    ck_assert_ptr_nonnull(hello);
    ck_assert_ptr_nonnull(echo);
    ck_assert_ptr_nonnull(ws);
    ck_assert_str_eq(hello->method, "GET");
    ck_assert_str_eq(echo->method, "*");

    struct acdm_req r1 = {.method = "GET", .path = "/channels/web1/hello"};
    hello->fn(hello->user, &r1);
    ck_assert_int_eq(r1.status, 200);
    ck_assert_str_eq(r1.ctype, "application/json");
    ck_assert_str_eq(r1.out, "{\"instance\":\"web1\",\"tag\":\"t\",\"path\":\"/hello\"}");
    struct acdm_req r2 = {.method = "POST", .path = "/channels/web1/echo/x", .body = "{\"a\":1}"};
    echo->fn(echo->user, &r2);
    ck_assert_int_eq(r2.status, 201);
    ck_assert_str_eq(r2.ctype, "text/plain");
    ck_assert_str_eq(r2.out, "{\"a\":1}");

    struct acdm_ws w1 = {0}, w2 = {0};
    struct acdm_req up = {.method = "GET", .path = "/channels/web1/ws"};
    struct acdm_req deny = {.method = "GET", .path = "/channels/web1/ws", .query = "deny=1"};
    ck_assert_int_eq(ws->hd.open(ws->user, &w1, &up), 0);
    ck_assert_int_lt(ws->hd.open(ws->user, &w2, &deny), 0);
    ws->hd.message(ws->user, &w1, "hi", 2);
    ck_assert_str_eq(fake_ws_last(&w1), "hi");

    configure(P, cfg_make(END));            /* stop: routes gone, open websocket closed */
    ck_assert_int_eq(fake_http.unrouted, 7);
    ck_assert_int_eq(w1.closed_code, 1001);
    ws->hd.close(ws->user, &w1);            /* the server's close callback comes later */
    host_free(P);
}
END_TEST

static void req_to(fake_route *rt, struct acdm_req *r, const char *method, const char *path)
{
    memset(r, 0, sizeof *r);
    r->method = method; r->path = path;
    rt->fn(rt->user, r);
}

START_TEST(deferred_responses_are_sent_once_when_completed_and_503_at_stop)
{
    P = host_new(TP, true);
    load_good(P);
    ck_assert_int_eq(configure(P, cfg_make("web1", "good_counter", "{\"http\":true}", END)), 0);
    fake_route *later = find_route(&fake_http, "/channels/web1/later");
    fake_route *now = find_route(&fake_http, "/channels/web1/now");
    ck_assert_ptr_nonnull(later);
    ck_assert_ptr_nonnull(now);

    /* deferred and completed inside the handler: sent at once */
    struct acdm_req rn;
    req_to(now, &rn, "GET", "/channels/web1/now");
    ck_assert_str_eq(find_rec("web1", "respond-rc")->text, "0");
    ck_assert(rn.replied);
    ck_assert_int_eq(rn.status, 202);
    ck_assert_str_eq(rn.ctype, "text/plain");
    ck_assert_str_eq(rn.out, "now");

    /* deferred: nothing is sent when the handler returns, nor while the loop runs */
    struct acdm_req r1;
    req_to(later, &r1, "POST", "/channels/web1/later");
    ck_assert(!r1.replied);
    run_for(20);
    ck_assert(!r1.replied);
    deliver(P, "web1", "respond-null");      /* refused; the token stays pending */
    ck_assert_str_eq(find_rec("web1", "respond-rc")->text, "-1");
    ck_assert(!r1.replied);
    deliver(P, "web1", "respond 201");
    ck_assert_str_eq(find_rec("web1", "respond-rc")->text, "0");
    ck_assert(r1.replied);
    ck_assert_int_eq(r1.status, 201);
    ck_assert_str_eq(r1.ctype, "application/json");   /* the default */
    ck_assert_str_eq(r1.out, "later");                 /* not the handler's "not this" */

    /* the client went away before the completion: no-op, the pending state is freed */
    struct acdm_req r2;
    req_to(later, &r2, "POST", "/channels/web1/later");
    r2.gone = true;
    deliver(P, "web1", "respond 200");
    ck_assert_str_eq(find_rec("web1", "respond-rc")->text, "0");
    ck_assert(r2.dropped);

    /* still deferred when the instance stops: the host answers 503 (a gone client: dropped) */
    struct acdm_req r3, r4;
    req_to(later, &r3, "POST", "/channels/web1/later");
    req_to(later, &r4, "POST", "/channels/web1/later");   /* the plugin forgot r3's token */
    r4.gone = true;
    ck_assert(!r3.replied && !r4.replied);
    configure(P, cfg_make(END));
    ck_assert(r3.replied);
    ck_assert_int_eq(r3.status, 503);
    ck_assert_str_eq(r3.ctype, "application/problem+json");
    ck_assert(r4.dropped);
    host_free(P);                              /* ASan: no deferred state left behind */
}
END_TEST

START_TEST(routes_refused_without_http)
{
    P = host_new(TP, false);
    load_good(P);
    ck_assert_int_lt(configure(P, cfg_make("web1", "good_counter", "{\"http\":true}", END)), 0);
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "web1")), "failed");
    host_free(P);
}
END_TEST

/* a one-shot HTTP server on loopback for the outbound client */
static int srv_fd;
static void *srv_thread(void *arg)
{
    (void)arg;
    int c = accept(srv_fd, NULL, NULL);
    if (c < 0) return NULL;
    char buf[4096];
    size_t got = 0;
    while (got < sizeof buf - 1) {   /* until the 4-byte body "ping" is in */
        ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
        if (n <= 0) break;
        got += (size_t)n;
        buf[got] = 0;
        char *e = strstr(buf, "\r\n\r\n");
        if (e && strlen(e + 4) >= 4) break;
    }
    const char *resp = "HTTP/1.1 202 Accepted\r\nContent-Length: 4\r\nConnection: close\r\n\r\npong";
    if (write(c, resp, strlen(resp)) < 0) perror("write");
    close(c);
    return NULL;
}

START_TEST(outbound_http_via_curl_multi_on_the_loop)
{
    srv_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(srv_fd, (struct sockaddr *)&a, sizeof a), 0);
    listen(srv_fd, 4);
    socklen_t al = sizeof a;
    getsockname(srv_fd, (struct sockaddr *)&a, &al);
    pthread_t th;
    pthread_create(&th, NULL, srv_thread, NULL);

    P = host_new(TP, false);
    load_good(P);
    configure(P, cfg_make("c1", "good_counter", "{}", END));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "http http://127.0.0.1:%d/hook", ntohs(a.sin_port));
    deliver(P, "c1", cmd);
    ck_assert_str_eq(find_rec("c1", "http-rc")->text, "0");
    ck_assert_ptr_null(find_rec("c1", "http"));   /* done never runs inside the call */
    const record *r = run_until("c1", "http", 5000);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->text, "202 pong");
    ck_assert(pthread_equal(r->tid, pthread_self()));
    pthread_join(th, NULL);
    close(srv_fd);

    /* transport error: nothing listens there any more */
    deliver(P, "c1", cmd);
    uint64_t end = uv_now(&loop) + 5000;
    while (count_rec("http") < 2 && uv_now(&loop) < end) uv_run(&loop, UV_RUN_ONCE);
    ck_assert_int_eq(count_rec("http"), 2);
    r = find_rec("c1", "http");
    ck_assert_msg(r->text[0] == '-' && strstr(r->text, "error"), "got %s", r->text);
    /* a bad URL is refused at once */
    deliver(P, "c1", "http ftp://x/");
    ck_assert_str_eq(find_rec("c1", "http-rc")->text, "-1");
    host_free(P);
}
END_TEST

/* ================================================================ hot drop */

START_TEST(a_plugin_copied_into_the_watched_folder_starts_its_instances)
{
    char dir[] = "/tmp/acdm-hotdrop-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    P = host_new(dir, false);
    ck_assert_int_eq(acdm_plugins_load_all(P), 0);
    configure(P, cfg_make("hot", "good_counter", "{\"tag\":\"h\"}", END));
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "hot")), "waiting");
    ck_assert_int_eq(acdm_plugins_watch(P), 0);

    /* copy in steps, like cp on a slow disk: the half-written file must not be loaded */
    int in = open(TP "good_counter.so", O_RDONLY);
    ck_assert_int_ge(in, 0);
    struct stat st;
    fstat(in, &st);
    char *buf = malloc((size_t)st.st_size);
    ck_assert_int_eq(read(in, buf, (size_t)st.st_size), st.st_size);
    close(in);
    char dst[256];
    snprintf(dst, sizeof dst, "%s/good_counter.so", dir);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    size_t half = (size_t)st.st_size / 2;
    ck_assert_int_eq(write(out, buf, half), (ssize_t)half);
    run_for(600);   /* longer than the debounce: the incomplete file is retried, not loaded */
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "hot")), "waiting");
    ck_assert_int_eq(write(out, buf + half, (size_t)st.st_size - half), (ssize_t)((size_t)st.st_size - half));
    close(out);
    free(buf);

    uv_update_time(&loop);
    uint64_t end = uv_now(&loop) + 5000;
    while (strcmp(acdm_instance_state(acdm_plugins_instance(P, "hot")), "running") &&
           uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_str_eq(acdm_instance_state(acdm_plugins_instance(P, "hot")), "running");
    ck_assert_int_eq(deliver(P, "hot", "count"), 0);
    ck_assert_str_eq(find_rec("hot", "count")->text, "hot/h:1");
    json_t *ref = acdm_plugins_refused_json(P);
    ck_assert_int_eq(json_array_size(ref), 0);   /* never tried the torn file */
    json_decref(ref);

    /* rename into place: a second plugin file appears atomically */
    char tmp[256], dst2[256];
    snprintf(tmp, sizeof tmp, "%s/.incoming", dir);
    snprintf(dst2, sizeof dst2, "%s/dup_name_a.so", dir);
    in = open(TP "dup_name_a.so", O_RDONLY);
    fstat(in, &st);
    buf = malloc((size_t)st.st_size);
    ck_assert_int_eq(read(in, buf, (size_t)st.st_size), st.st_size);
    close(in);
    out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_eq(write(out, buf, (size_t)st.st_size), st.st_size);
    close(out);
    free(buf);
    ck_assert_int_eq(rename(tmp, dst2), 0);
    end = uv_now(&loop) + 5000;
    json_t *list = NULL;
    for (;;) {
        list = acdm_plugins_json(P);
        if (json_array_size(list) == 2 || uv_now(&loop) >= end) break;
        json_decref(list);
        uv_run(&loop, UV_RUN_ONCE);
    }
    ck_assert_int_eq(json_array_size(list), 2);
    json_decref(list);

    host_free(P);
    unlink(dst);
    unlink(dst2);
    rmdir(dir);
}
END_TEST


/* ================================================================ the reference webhook plugin */

/* A request whose answer may be deferred: r is the caller's, it must outlive the answer. */
static void send_to(fake_route *rt, struct acdm_req *r, const char *method, const char *path,
                    const char *auth, const char *body)
{
    memset(r, 0, sizeof *r);
    r->method = method; r->path = path; r->auth = auth; r->body = body;
    r->ctype_in = body ? "application/json" : NULL;
    rt->fn(rt->user, r);
}

/* A request answered within the handler. */
static struct acdm_req *call(fake_route *rt, const char *method, const char *path, const char *auth,
                             const char *body)
{
    static struct acdm_req r;
    send_to(rt, &r, method, path, auth, body);
    ck_assert(r.replied);
    return &r;
}

static json_int_t status_field(fake_route *status, const char *auth, const char *name)
{
    json_t *st = json_loads(call(status, "GET", "/channels/wh/status", auth, NULL)->out, 0, NULL);
    ck_assert_ptr_nonnull(st);
    json_int_t v = json_integer_value(json_object_get(st, name));
    json_decref(st);
    return v;
}

START_TEST(webhook_accepts_validates_and_reports)
{
    P = host_new(TP, true);
    char err[256];
    ck_assert_int_eq(acdm_plugins_load_file(P, "plugins/webhook.so", err, sizeof err), 0);
    acdm_config *bad = cfg_make("wh", "webhook", "{\"token\":\"t\",\"callback_url\":\"ftp://x\"}", END);
    ck_assert_int_eq(acdm_plugins_check(P, bad, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "callback_url must be an http:// or https:// URL"));
    cfg_free(bad);
    ck_assert_int_eq(configure(P, cfg_make("wh", "webhook",
        "{\"token\":\"s3cret\",\"self_test\":true,\"heartbeat_ms\":20}", END)), 0);
    fake_route *post = find_route(&fake_http, "/channels/wh/messages");
    fake_route *status = find_route(&fake_http, "/channels/wh/status");
    ck_assert_ptr_nonnull(post);
    ck_assert_ptr_null(find_route(&fake_http, "/channels/wh/messages/*"));   /* no polling */
    ck_assert_ptr_nonnull(status);
    ck_assert_ptr_nonnull(find_route(&fake_http, "/channels/wh/events"));

    const char *tok = "Bearer s3cret";
    ck_assert_int_eq(call(post, "POST", "/channels/wh/messages", NULL, "{\"from\":\"a\"}")->status, 401);
    ck_assert_int_eq(call(post, "POST", "/channels/wh/messages", "Bearer nope", "{\"from\":\"a\"}")->status, 401);
    struct acdm_req *r = call(post, "POST", "/channels/wh/messages", tok, "{not json");
    ck_assert_int_eq(r->status, 400);
    ck_assert_str_eq(r->ctype, "application/problem+json");
    r = call(post, "POST", "/channels/wh/messages", tok, "{\"text\":\"hoi\"}");
    ck_assert_int_eq(r->status, 400);
    ck_assert_ptr_nonnull(strstr(r->out, "\\\"from\\\" is required"));
    r = call(post, "POST", "/channels/wh/messages", tok, "{\"from\":\"a\",\"priority\":12}");
    ck_assert_ptr_nonnull(strstr(r->out, "priority"));
    r = call(post, "POST", "/channels/wh/messages", tok, "{\"from\":\"a\",\"kind\":\"fax\"}");
    ck_assert_ptr_nonnull(strstr(r->out, "kind"));
    ck_assert_int_eq(eng.submits, 0);

    struct acdm_req m1;
    send_to(post, &m1, "POST", "/channels/wh/messages", tok,
            "{\"from\":\"0612345678\",\"text\":\"Mijn paspoort?\",\"kind\":\"sms\",\"id\":\"m-1\",\"priority\":3}");
    ck_assert(!m1.replied);                     /* no acknowledgement before the commit */
    ck_assert_int_eq(eng.submits, 1);
    ck_assert_str_eq(eng.last_kind, "sms");
    mock_commit_all();
    ck_assert(m1.replied);
    ck_assert_int_eq(m1.status, 201);
    ck_assert_str_eq(m1.ctype, "application/json");
    ck_assert_str_eq(m1.out, "{\"message\":\"m-1\",\"bericht\":\"b-1\",\"outcome\":\"queued\"}");

    run_for(150);   /* the self_test worker posts heartbeats and signals its eventfd */
    ck_assert_int_eq(status_field(status, tok, "awaiting_commit"), 0);
    r = call(status, "GET", "/channels/wh/status", tok, NULL);
    json_t *st = json_loads(r->out, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(st, "received")), 7);
    ck_assert_int_eq(json_integer_value(json_object_get(st, "rejected")), 6);
    ck_assert_int_eq(json_integer_value(json_object_get(st, "submitted")), 1);
    ck_assert_int_gt(json_integer_value(json_object_get(st, "heartbeats")), 0);
    ck_assert_int_gt(json_integer_value(json_object_get(st, "wakeups")), 0);
    json_decref(st);
    host_free(P);
}
END_TEST

/* A channel that accepts input never runs open; a web page's simple POST cannot reach it. */
START_TEST(webhook_refuses_an_open_config_and_non_json_bodies)
{
    P = host_new(TP, true);
    char err[512];
    ck_assert_int_eq(acdm_plugins_load_file(P, "plugins/webhook.so", err, sizeof err), 0);
    acdm_config *open = cfg_make("wh", "webhook", "{}", END);
    ck_assert_int_eq(acdm_plugins_check(P, open, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "token: required"));
    cfg_free(open);
    acdm_config *both = cfg_make("wh", "webhook", "{\"token\":\"a\",\"token_file\":\"b\"}", END);
    ck_assert_int_eq(acdm_plugins_check(P, both, err, sizeof err), ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "token and token_file"));
    cfg_free(both);
    ck_assert_int_lt(configure(P, cfg_make("wh", "webhook", "{}", END)), 0);   /* init refuses too */
    ck_assert_ptr_null(find_route(&fake_http, "/channels/wh/messages"));

    ck_assert_int_eq(configure(P, cfg_make("wh", "webhook", "{\"token\":\"t\"}", END)), 0);
    fake_route *post = find_route(&fake_http, "/channels/wh/messages");
    fake_route *end = find_route(&fake_http, "/channels/wh/end");
    ck_assert_ptr_nonnull(post);
    static struct acdm_req r;
    const char *types[] = {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", NULL};
    for (int k = 0; k < 4; k++) {
        memset(&r, 0, sizeof r);
        r.method = "POST"; r.path = "/channels/wh/messages"; r.auth = "Bearer t";
        r.body = "{\"from\":\"a\",\"text\":\"hoi\"}"; r.ctype_in = types[k];
        post->fn(post->user, &r);
        ck_assert(r.replied);
        ck_assert_int_eq(r.status, 415);
        ck_assert_ptr_nonnull(strstr(r.out, "application/json"));
        memset(&r, 0, sizeof r);
        r.method = "POST"; r.path = "/channels/wh/end"; r.auth = "Bearer t";
        r.body = "{\"bericht\":\"b-1\"}"; r.ctype_in = types[k];
        end->fn(end->user, &r);
        ck_assert_int_eq(r.status, 415);
    }
    ck_assert_int_eq(eng.submits, 0);
    memset(&r, 0, sizeof r);        /* a charset parameter is fine */
    r.method = "POST"; r.path = "/channels/wh/messages"; r.auth = "Bearer t";
    r.body = "{\"from\":\"a\",\"text\":\"hoi\"}"; r.ctype_in = "Application/JSON; charset=utf-8";
    post->fn(post->user, &r);
    ck_assert(!r.replied);          /* deferred until the commit */
    ck_assert_int_eq(eng.submits, 1);
    mock_commit_all();
    ck_assert_int_eq(r.status, 201);
    host_free(P);
}
END_TEST

/* token_file: made with a random token (0600) when missing, kept and reused, an empty one refused. */
START_TEST(webhook_token_file_is_made_once_and_reused)
{
    char dir[] = "/tmp/acdm-wh-XXXXXX", path[128], conf[256], tok[128] = "", again[128] = "";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/webhook.token", dir);
    snprintf(conf, sizeof conf, "{\"token_file\":\"%s\"}", path);
    P = host_new(TP, true);
    ck_assert_int_eq(acdm_plugins_load_file(P, "plugins/webhook.so", NULL, 0), 0);
    ck_assert_int_eq(configure(P, cfg_make("wh", "webhook", conf, END)), 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_nonnull(fgets(tok, sizeof tok, f));
    fclose(f);
    tok[strcspn(tok, "\n")] = 0;
    ck_assert_int_eq(strlen(tok), 64);
    char bearer[160];
    snprintf(bearer, sizeof bearer, "Bearer %s", tok);
    fake_route *status = find_route(&fake_http, "/channels/wh/status");
    ck_assert_int_eq(call(status, "GET", "/channels/wh/status", bearer, NULL)->status, 200);
    ck_assert_int_eq(call(status, "GET", "/channels/wh/status", NULL, NULL)->status, 401);
    host_free(P);
    /* a second start reads the same token */
    P = host_new(TP, true);
    ck_assert_int_eq(acdm_plugins_load_file(P, "plugins/webhook.so", NULL, 0), 0);
    ck_assert_int_eq(configure(P, cfg_make("wh", "webhook", conf, END)), 0);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(again, sizeof again, f));
    fclose(f);
    again[strcspn(again, "\n")] = 0;
    ck_assert_str_eq(again, tok);
    status = find_route(&fake_http, "/channels/wh/status");
    ck_assert_int_eq(call(status, "GET", "/channels/wh/status", bearer, NULL)->status, 200);
    host_free(P);
    /* an empty file is an error naming it, never an open channel */
    f = fopen(path, "w");
    fclose(f);
    P = host_new(TP, true);
    ck_assert_int_eq(acdm_plugins_load_file(P, "plugins/webhook.so", NULL, 0), 0);
    ck_assert_int_lt(configure(P, cfg_make("wh", "webhook", conf, END)), 0);
    ck_assert_ptr_null(find_route(&fake_http, "/channels/wh/messages"));
    host_free(P);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(webhook_acknowledges_only_after_the_submit_callback)
{
    P = host_new(TP, true);
    ck_assert_int_eq(acdm_plugins_load_file(P, "plugins/webhook.so", NULL, 0), 0);
    ck_assert_int_eq(configure(P, cfg_make("wh", "webhook", "{\"token\":\"t\"}", END)), 0);
    fake_route *post = find_route(&fake_http, "/channels/wh/messages");
    fake_route *status = find_route(&fake_http, "/channels/wh/status");
    const char *path = "/channels/wh/messages", *T = "Bearer t";
    struct acdm_req q, d, f, c, e;
    send_to(post, &q, "POST", path, T, "{\"from\":\"a\",\"id\":\"q\"}");
    send_to(post, &d, "POST", path, T, "{\"from\":\"a\",\"id\":\"d\"}");
    send_to(post, &f, "POST", path, T, "{\"from\":\"a\",\"id\":\"f\",\"conversation\":\"k\"}");
    send_to(post, &c, "POST", path, T, "{\"from\":\"a\",\"id\":\"c\"}");
    send_to(post, &e, "POST", path, T, "{\"from\":\"a\"}");   /* a generated id */
    ck_assert_int_eq(eng.submits, 5);
    run_for(30);                                /* time passes; the engine has not committed */
    ck_assert(!q.replied && !d.replied && !f.replied && !c.replied && !e.replied);
    ck_assert_int_eq(status_field(status, T, "awaiting_commit"), 5);

    mock_commit_one(ACDM_SUBMIT_QUEUED, "b-q", NULL);
    ck_assert(q.replied && !d.replied);
    ck_assert_int_eq(q.status, 201);
    ck_assert_str_eq(q.out, "{\"message\":\"q\",\"bericht\":\"b-q\",\"outcome\":\"queued\"}");
    mock_commit_one(ACDM_SUBMIT_DUPLICATE, "b-old", NULL);
    ck_assert_int_eq(d.status, 200);
    ck_assert_str_eq(d.out, "{\"message\":\"d\",\"bericht\":\"b-old\",\"outcome\":\"duplicate\"}");
    mock_commit_one(ACDM_SUBMIT_FOLLOWUP, "b-live", NULL);
    ck_assert_int_eq(f.status, 200);
    ck_assert_str_eq(f.out, "{\"message\":\"f\",\"bericht\":\"b-live\",\"outcome\":\"followup\"}");
    mock_commit_one(ACDM_SUBMIT_CLOSED, "b-c", "We zijn gesloten.");
    ck_assert_int_eq(c.status, 200);
    ck_assert_str_eq(c.out, "{\"message\":\"c\",\"bericht\":\"b-c\",\"outcome\":\"closed\","
                     "\"text\":\"We zijn gesloten.\"}");
    mock_commit_one(ACDM_SUBMIT_ERROR, NULL, "the bericht could not be stored");
    ck_assert_int_eq(e.status, 503);
    ck_assert_str_eq(e.ctype, "application/problem+json");
    json_t *pj = json_loads(e.out, 0, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(pj, "detail")), "the bericht could not be stored");
    ck_assert_int_eq(json_integer_value(json_object_get(pj, "status")), 503);
    ck_assert_int_eq(strlen(json_string_value(json_object_get(pj, "message"))), 32);
    json_decref(pj);
    ck_assert_int_eq(status_field(status, T, "awaiting_commit"), 0);
    ck_assert_int_eq(status_field(status, T, "submitted"), 4);
    host_free(P);
}
END_TEST

START_TEST(webhook_pending_at_stop_gets_503_and_a_gone_client_is_harmless)
{
    P = host_new(TP, true);
    ck_assert_int_eq(acdm_plugins_load_file(P, "plugins/webhook.so", NULL, 0), 0);
    ck_assert_int_eq(configure(P, cfg_make("wh", "webhook", "{\"token\":\"t\"}", END)), 0);
    fake_route *post = find_route(&fake_http, "/channels/wh/messages");
    const char *path = "/channels/wh/messages", *T = "Bearer t";

    /* the client hangs up before the commit: the answer is dropped, nothing leaks */
    struct acdm_req g;
    send_to(post, &g, "POST", path, T, "{\"from\":\"a\",\"id\":\"g\"}");
    g.gone = true;
    mock_commit_all();
    ck_assert(g.dropped);

    /* still waiting for the commit when the channel stops: 503, retry with the same id */
    struct acdm_req s1, s2;
    send_to(post, &s1, "POST", path, T, "{\"from\":\"a\",\"id\":\"s1\"}");
    send_to(post, &s2, "POST", path, T, "{\"from\":\"a\",\"id\":\"s2\"}");
    s2.gone = true;
    ck_assert_int_eq(eng.n_owed, 2);
    configure(P, cfg_make(END));
    ck_assert(s1.replied);
    ck_assert_int_eq(s1.status, 503);
    ck_assert_str_eq(s1.ctype, "application/problem+json");
    ck_assert(s2.dropped);
    /* the engine commits later anyway: the callbacks go nowhere, no second reply */
    mock_commit_all();
    host_free(P);
}
END_TEST

static int cb_fd, cb_hits;
static char cb_body[2048];
static void *cb_thread(void *arg)
{
    (void)arg;
    for (int k = 0; k < 2; k++) {   /* first attempt gets a 500, the retry a 200 */
        int c = accept(cb_fd, NULL, NULL);
        if (c < 0) return NULL;
        char buf[4096];
        size_t got = 0;
        for (;;) {
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0) break;
            got += (size_t)n;
            buf[got] = 0;
            char *e = strstr(buf, "\r\n\r\n");
            const char *cl = strcasestr(buf, "Content-Length:");
            if (e && cl && strlen(e + 4) >= (size_t)atoi(cl + 15)) break;
        }
        char *e = strstr(buf, "\r\n\r\n");
        if (e) snprintf(cb_body, sizeof cb_body, "%s", e + 4);
        cb_hits++;
        const char *resp = k == 0 ? "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                                  : "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        if (write(c, resp, strlen(resp)) < 0) perror("write");
        close(c);
    }
    return NULL;
}

START_TEST(webhook_delivers_replies_with_retry)
{
    cb_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(cb_fd, (struct sockaddr *)&a, sizeof a), 0);
    listen(cb_fd, 4);
    socklen_t al = sizeof a;
    getsockname(cb_fd, (struct sockaddr *)&a, &al);
    pthread_t th;
    pthread_create(&th, NULL, cb_thread, NULL);

    P = host_new(TP, true);
    ck_assert_int_eq(acdm_plugins_load_file(P, "plugins/webhook.so", NULL, 0), 0);
    char conf[256];
    snprintf(conf, sizeof conf, "{\"token\":\"t\",\"callback_url\":\"http://127.0.0.1:%d/replies\",\"retries\":3,"
             "\"retry_ms\":30}", ntohs(a.sin_port));
    ck_assert_int_eq(configure(P, cfg_make("wh", "webhook", conf, END)), 0);
    acdm_reply rp = {.struct_size = sizeof rp, .bericht_id = "b-7", .to = "0612345678",
                     .agent = "a1", .text = "Uw paspoort ligt klaar."};
    ck_assert_int_eq(acdm_plugins_deliver(P, "wh", &rp), 0);
    const record *r = run_until("wh", "b-7", 5000);   /* delivery_report once delivered */
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(r->text, "Uw paspoort ligt klaar.");
    pthread_join(th, NULL);
    close(cb_fd);
    ck_assert_int_eq(cb_hits, 2);
    ck_assert_ptr_nonnull(strstr(cb_body, "\"bericht\":\"b-7\""));
    ck_assert_ptr_nonnull(strstr(cb_body, "\"text\":\"Uw paspoort ligt klaar.\""));
    host_free(P);
}
END_TEST

/* ================================================================ runner */

#define ADD(s, fn, secs) do { TCase *tc = tcase_create(#fn); tcase_set_timeout(tc, secs); \
                              tcase_add_test(tc, fn); suite_add_tcase(s, tc); } while (0)

static Suite *plugins_suite(void)
{
    Suite *s = suite_create("plugins");
    ADD(s, refusals_name_the_reason_and_the_host_keeps_going, 10);
    ADD(s, refusal_is_one_log_line_naming_file_and_reason, 10);
    ADD(s, load_all_loads_good_ones_and_refuses_the_rest, 10);
    ADD(s, routing_calls_reach_the_engine_and_offers_reach_the_plugin, 10);
    ADD(s, two_instances_get_separate_memory, 10);
    ADD(s, configure_applies_a_diff, 10);
    ADD(s, instances_wait_for_their_plugin_and_follow_enable, 10);
    ADD(s, post_from_a_thread_runs_on_the_loop_thread, 10);
    ADD(s, posts_to_a_stopped_instance_are_dropped, 10);
    ADD(s, timers_fire_and_are_cancelled_on_stop, 10);
    ADD(s, kv_is_per_instance, 10);
    ADD(s, flush_calls_back_once_the_instance_writes_are_committed, 20);
    ADD(s, fd_watch_fires, 10);
    ADD(s, submit_err_writes_the_refusal_sentence, 10);
    ADD(s, routes_get_the_abi_1_1_request_fields, 10);
    ADD(s, host_table_has_exactly_what_is_implemented, 10);
    ADD(s, attachment_store_validates_and_hands_over_a_file_or_memory, 10);
    ADD(s, attachment_read_fills_meta_and_an_fd, 10);
    ADD(s, kv_set_ttl_expires_and_is_removed, 10);
    ADD(s, status_json_is_shown_per_instance_and_in_health, 10);
    ADD(s, reply_carries_message_id_and_payload, 10);
    ADD(s, submit_is_validated_and_forwarded, 10);
    ADD(s, events_reach_on_event, 10);
    ADD(s, routes_are_mapped_under_channels_and_removed_on_stop, 10);
    ADD(s, deferred_responses_are_sent_once_when_completed_and_503_at_stop, 10);
    ADD(s, routes_refused_without_http, 10);
    ADD(s, outbound_http_via_curl_multi_on_the_loop, 20);
    ADD(s, a_plugin_copied_into_the_watched_folder_starts_its_instances, 20);
    ADD(s, webhook_accepts_validates_and_reports, 20);
    ADD(s, webhook_refuses_an_open_config_and_non_json_bodies, 20);
    ADD(s, webhook_token_file_is_made_once_and_reused, 20);
    ADD(s, webhook_acknowledges_only_after_the_submit_callback, 20);
    ADD(s, webhook_pending_at_stop_gets_503_and_a_gone_client_is_harmless, 20);
    ADD(s, webhook_delivers_replies_with_retry, 20);
    return s;
}

int main(void)
{
    acdm_log_level = ACDM_LOG_WARN;
    SRunner *sr = srunner_create(plugins_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
