/* device_phone.c -- test plugin "testphone": a stand-in voice channel that exercises the ABI 1.1
 * routing calls (offer_device, device_result, device_reachable, update, originate,
 * originate_result) and ABI 1.2's transfer_out (a number starting 0900 is refused; any other
 * ends the bericht "transferred to <number>" right after, as a channel that took the call over
 * would) so integration tests drive them over HTTP against the real acdmd.
 *
 * Routes under /channels/<instance>/ (a test fixture: no authentication, never shipped):
 *   POST /call?from=X[&kind=voice]       submit; answers {"outcome":..,"bericht":..} after the commit
 *   GET  /log                            what the core handed over: {"offers":[..],"originates":[..],
 *                                        "events":[..],"transfers":[..]} (newest last)
 *   POST /result?bericht=B&agent=A&outcome=answered|declined|busy|noanswer|failed[&reason=R]
 *   POST /reachable?agent=A&kind=K&up=0|1[&reason=R]
 *   POST /update?bericht=B[&queue=Q][&priority=N]   body: payload_json to merge (or empty)
 *   POST /orig_result?bericht=B&outcome=connected|failed[&reason=R]
 *   POST /conversation?bericht=B&key=K   set_conversation (answers {"rc":n})
 *   POST /call?...&conversation=K[&text=T]   the customer's message in conversation K
 * each answering {"rc":n,"err":".."}.
 * Config: {"refuse_offer": true} (offer_device returns -1), {"refuse_originate": true}. */
#include <acdm/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOG_MAX 64
#define LINE 512

typedef struct {
    const acdm_host *host;
    acdm_instance *inst;
    int refuse_offer, refuse_originate;
    char offers[LOG_MAX][LINE]; int n_offers;
    char origs[LOG_MAX][LINE]; int n_origs;
    char events[LOG_MAX][LINE]; int n_events;
    char transfers[LOG_MAX][LINE]; int n_transfers;
} phone;

/* value of key in a decoded query "a=1&b=2" (copied into out), "" when absent */
static const char *arg(const char *q, const char *key, char *out, size_t len)
{
    out[0] = 0;
    size_t kl = strlen(key);
    for (const char *p = q; p && *p;) {
        const char *amp = strchr(p, '&');
        size_t n = amp ? (size_t)(amp - p) : strlen(p);
        if (n > kl && p[kl] == '=' && !strncmp(p, key, kl)) {
            size_t vl = n - kl - 1;
            if (vl >= len) vl = len - 1;
            memcpy(out, p + kl + 1, vl);
            out[vl] = 0;
            break;
        }
        p = amp ? amp + 1 : NULL;
    }
    return out;
}

/* a JSON string without quotes or backslashes in it (test data only) */
static const char *safe(const char *s)
{
    return s && !strpbrk(s, "\"\\\n") ? s : "";
}

static void push(char (*list)[LINE], int *n, const char *line)
{
    if (*n == LOG_MAX) {
        memmove(list[0], list[1], (size_t)(LOG_MAX - 1) * LINE);
        (*n)--;
    }
    snprintf(list[(*n)++], LINE, "%s", line);
}

static void answer(acdm_http_response *resp, int rc, const char *err)
{
    static char body[700];
    char e[300];
    size_t n = 0;
    for (const char *p = err ? err : ""; *p && n < sizeof e - 1; p++)   /* quotes become ' */
        e[n++] = *p == '"' ? '\'' : *p == '\\' || *p == '\n' ? ' ' : *p;
    e[n] = 0;
    snprintf(body, sizeof body, "{\"rc\":%d,\"err\":\"%s\"}", rc, e);
    resp->body = body;
}

/* ---- calls coming in */

typedef struct { void *token; } pending;

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome outcome,
                      const char *bericht_id, const char *text)
{
    (void)inst; (void)text;
    phone *p = priv;
    pending *pd = user;
    static const char *const names[] = {"queued", "duplicate", "followup", "closed", "error"};
    char body[256];
    snprintf(body, sizeof body, "{\"outcome\":\"%s\",\"bericht\":\"%s\"}",
             (unsigned)outcome < 5 ? names[outcome] : "?", safe(bericht_id));
    acdm_http_response r = {.status = outcome == ACDM_SUBMIT_ERROR ? 503 : 200, .body = body};
    p->host->http_respond(pd->token, &r);
    free(pd);
}

static void on_call(acdm_instance *inst, void *priv, const acdm_http_request *req,
                    acdm_http_response *resp)
{
    phone *p = priv;
    char from[128], kind[32], conv[128], text[256];
    arg(req->query, "from", from, sizeof from);
    arg(req->query, "kind", kind, sizeof kind);
    arg(req->query, "conversation", conv, sizeof conv);
    arg(req->query, "text", text, sizeof text);
    acdm_inbound in = {.struct_size = sizeof in, .kind = kind[0] ? kind : ACDM_KIND_NAME_VOICE,
                       .from = from, .conversation = conv[0] ? conv : NULL,
                       .text = text[0] ? text : NULL};
    pending *pd = malloc(sizeof *pd);
    if (!pd) { resp->status = 500; return; }
    pd->token = resp->token;
    resp->defer = 1;
    int rc = p->host->submit(inst, &in, submitted, pd);
    if (rc < 0) {
        free(pd);
        acdm_http_response r = {.status = 400, .body = "{\"outcome\":\"refused\"}"};
        p->host->http_respond(resp->token, &r);
    }
}

/* ---- the log of what the core handed over */

static void on_log(acdm_instance *inst, void *priv, const acdm_http_request *req,
                   acdm_http_response *resp)
{
    (void)inst; (void)req;
    phone *p = priv;
    static char body[4 * LOG_MAX * (LINE + 2) + 64];
    size_t o = 0;
    const struct { const char *name; char (*list)[LINE]; int n; } parts[] = {
        {"offers", p->offers, p->n_offers}, {"originates", p->origs, p->n_origs},
        {"events", p->events, p->n_events}, {"transfers", p->transfers, p->n_transfers}};
    o += (size_t)snprintf(body + o, sizeof body - o, "{");
    for (int k = 0; k < 4; k++) {
        o += (size_t)snprintf(body + o, sizeof body - o, "%s\"%s\":[", k ? "," : "", parts[k].name);
        for (int i = 0; i < parts[k].n; i++)
            o += (size_t)snprintf(body + o, sizeof body - o, "%s%s", i ? "," : "", parts[k].list[i]);
        o += (size_t)snprintf(body + o, sizeof body - o, "]");
    }
    snprintf(body + o, sizeof body - o, "}");
    resp->body = body;
}

/* ---- the routing calls, on command */

static void on_result(acdm_instance *inst, void *priv, const acdm_http_request *req,
                      acdm_http_response *resp)
{
    phone *p = priv;
    char b[64], a[64], oc[32], reason[128];
    arg(req->query, "bericht", b, sizeof b);
    arg(req->query, "agent", a, sizeof a);
    arg(req->query, "outcome", oc, sizeof oc);
    arg(req->query, "reason", reason, sizeof reason);
    static const char *const names[] = {"answered", "declined", "busy", "noanswer", "failed"};
    int o = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(oc, names[i])) o = i;
    if (o < 0) { answer(resp, -1, "outcome?"); return; }
    answer(resp, p->host->device_result(inst, b, a, (acdm_device_outcome)o, reason[0] ? reason : NULL), "");
}

static void on_reachable(acdm_instance *inst, void *priv, const acdm_http_request *req,
                         acdm_http_response *resp)
{
    phone *p = priv;
    char a[64], kind[32], up[8], reason[128];
    arg(req->query, "agent", a, sizeof a);
    arg(req->query, "kind", kind, sizeof kind);
    arg(req->query, "up", up, sizeof up);
    arg(req->query, "reason", reason, sizeof reason);
    answer(resp, p->host->device_reachable(inst, a, kind, !strcmp(up, "1"), reason[0] ? reason : NULL), "");
}

static void on_update(acdm_instance *inst, void *priv, const acdm_http_request *req,
                      acdm_http_response *resp)
{
    phone *p = priv;
    char b[64], q[64], prio[8];
    arg(req->query, "bericht", b, sizeof b);
    arg(req->query, "queue", q, sizeof q);
    arg(req->query, "priority", prio, sizeof prio);
    acdm_update u = {.struct_size = sizeof u, .queue = q[0] ? q : NULL,
                     .priority = prio[0] ? atoi(prio) : -1,
                     .payload_json = req->body && req->body_len ? req->body : NULL};
    char err[256] = "";
    int rc = p->host->update(inst, b, &u, err, sizeof err);
    answer(resp, rc, err);
}

static void on_orig_result(acdm_instance *inst, void *priv, const acdm_http_request *req,
                           acdm_http_response *resp)
{
    phone *p = priv;
    char b[64], oc[32], reason[128];
    arg(req->query, "bericht", b, sizeof b);
    arg(req->query, "outcome", oc, sizeof oc);
    arg(req->query, "reason", reason, sizeof reason);
    acdm_originate_outcome o = !strcmp(oc, "connected") ? ACDM_ORIG_CONNECTED : ACDM_ORIG_FAILED;
    answer(resp, p->host->originate_result(inst, b, o, reason[0] ? reason : NULL), "");
}

static void on_conversation(acdm_instance *inst, void *priv, const acdm_http_request *req,
                            acdm_http_response *resp)
{
    phone *p = priv;
    char b[64], key[128];
    arg(req->query, "bericht", b, sizeof b);
    arg(req->query, "key", key, sizeof key);
    answer(resp, ACDM_HOST_HAS(p->host, set_conversation) ?
           p->host->set_conversation(inst, b, key) : -99, "");
}

/* ---- the descriptor's callbacks */

static int ph_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *cfg,
                   char *err, size_t errlen)
{
    phone *p = priv;
    p->host = host;
    p->inst = inst;
    if (!ACDM_HOST_HAS(host, originate_result)) {
        snprintf(err, errlen, "this core has no ABI 1.1 routing calls");
        return -1;
    }
    p->refuse_offer = strstr(cfg, "\"refuse_offer\":true") != NULL;
    p->refuse_originate = strstr(cfg, "\"refuse_originate\":true") != NULL;
    host->http_route(inst, "POST", "/call", on_call);
    host->http_route(inst, "GET", "/log", on_log);
    host->http_route(inst, "POST", "/result", on_result);
    host->http_route(inst, "POST", "/reachable", on_reachable);
    host->http_route(inst, "POST", "/update", on_update);
    host->http_route(inst, "POST", "/orig_result", on_orig_result);
    host->http_route(inst, "POST", "/conversation", on_conversation);
    return 0;
}

static int ph_deliver(acdm_instance *inst, void *priv, const acdm_reply *r)
{
    (void)inst; (void)priv; (void)r;
    return 0;
}

static void ph_event(acdm_instance *inst, void *priv, const acdm_event_info *ev)
{
    (void)inst;
    phone *p = priv;
    static const char *const names[] = ACDM_EV_NAMES;
    const char *n = (unsigned)ev->type < sizeof names / sizeof *names && names[ev->type] ? names[ev->type] : "?";
    char line[LINE];
    snprintf(line, sizeof line, "{\"type\":\"%s\",\"bericht\":\"%s\",\"agent\":\"%s\",\"queue\":\"%s\"}",
             n, safe(ev->bericht_id), safe(ev->agent), safe(ev->queue));
    push(p->events, &p->n_events, line);
}

static int ph_offer_device(acdm_instance *inst, void *priv, const acdm_device_offer *o)
{
    (void)inst;
    phone *p = priv;
    char line[LINE];
    snprintf(line, sizeof line, "{\"bericht\":\"%s\",\"agent\":\"%s\",\"agent_name\":\"%s\",\"kind\":\"%s\","
             "\"endpoint\":\"%s\",\"from\":\"%s\",\"queue\":\"%s\",\"timeout_ms\":%u}",
             safe(o->bericht_id), safe(o->agent_id), safe(o->agent_name), safe(o->kind),
             safe(o->endpoint), safe(o->from), safe(o->queue), o->timeout_ms);
    push(p->offers, &p->n_offers, line);
    return p->refuse_offer ? -1 : 0;
}

static int ph_originate(acdm_instance *inst, void *priv, const acdm_originate *o, char *err,
                        size_t errlen)
{
    (void)inst;
    phone *p = priv;
    char line[LINE];
    snprintf(line, sizeof line, "{\"bericht\":\"%s\",\"kind\":\"%s\",\"to\":\"%s\",\"agent\":\"%s\","
             "\"agent_endpoint\":\"%s\",\"text\":\"%s\"}",
             safe(o->bericht_id), safe(o->kind), safe(o->to), safe(o->agent_id),
             safe(o->agent_endpoint), safe(o->text));
    push(p->origs, &p->n_origs, line);
    if (p->refuse_originate) {
        snprintf(err, errlen, "no trunk for %s", safe(o->to));
        return -1;
    }
    return 0;
}

typedef struct { char bericht[64], reason[96]; } xfer_end;

static void xfer_ended(acdm_instance *inst, void *priv, void *arg)
{
    phone *p = priv;
    xfer_end *x = arg;
    p->host->end(inst, x->bericht, x->reason);
    free(x);
}

static int ph_transfer_out(acdm_instance *inst, void *priv, const char *bericht_id, const char *number,
                           char *err, size_t errlen)
{
    phone *p = priv;
    if (!strncmp(number, "0900", 4)) {
        snprintf(err, errlen, "testphone does not dial %s", safe(number));
        return -1;
    }
    char line[LINE];
    snprintf(line, sizeof line, "{\"bericht\":\"%s\",\"number\":\"%s\"}", safe(bericht_id), safe(number));
    push(p->transfers, &p->n_transfers, line);
    xfer_end *x = calloc(1, sizeof *x);
    if (!x) return -1;
    snprintf(x->bericht, sizeof x->bericht, "%s", bericht_id);
    snprintf(x->reason, sizeof x->reason, "transferred to %s", number);
    if (p->host->post(inst, xfer_ended, x) < 0) { free(x); return -1; }
    return 0;
}

static const acdm_plugin descriptor = ACDM_PLUGIN_INIT(
    .name = "testphone",
    .version = "1.0",
    .description = "test: device offers, update and originate",
    .kinds = "voice,callback,sms",
    .instance_size = sizeof(phone),
    .init = ph_init,
    .deliver = ph_deliver,
    .on_event = ph_event,
    .offer_device = ph_offer_device,
    .device_endpoint_key = "phone",
    .originate = ph_originate,
    .transfer_out = ph_transfer_out);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &descriptor; }
