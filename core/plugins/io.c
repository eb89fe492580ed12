/* io.c -- outbound HTTP for plugins (host->http_request) on acdmd's one outbound client
 * (net/outbound.c: libcurl multi on the loop). A request belongs to its instance: it is
 * cancelled when the instance stops, and its done is never called after that. */
#include "plugins/plugins_int.h"

#define WHO "plugins"

static void outreq_done(void *user, int status, const char *body, size_t len, const char *error)
{
    outreq *rq = user;
    acdm_instance *inst = rq->inst;
    DLIST_DEL(inst->reqs, rq);
    if (acdm_plg_live(inst)) rq->done(inst, inst->priv, rq->user, status, body, len, error);
    free(rq);
}

void acdm_plg_outreq_cancel(outreq *rq)
{
    DLIST_DEL(rq->inst->reqs, rq);
    acdm_out_cancel(rq->req);
    free(rq);
}

int acdm_plg_host_http_request(acdm_instance *inst, const acdm_http_out *req, acdm_http_done done,
                               void *user)
{
    if (!acdm_plg_live(inst) || !req || !done || req->struct_size < HTTP_OUT_NEEDS || !req->url)
        return ACDM_EINVAL;
    acdm_plugins *p = inst->p;
    if (!p->env.outbound) return ACDM_ESTATE;
    outreq *rq = calloc(1, sizeof *rq);
    if (!rq) return ACDM_ENOMEM;
    rq->inst = inst; rq->done = done; rq->user = user;
    acdm_out_opts o = {.method = req->method, .url = req->url, .headers = req->headers,
                       .body = req->body, .body_len = req->body_len, .timeout_ms = req->timeout_ms,
                       .max_body = MAX_RESPONSE_BODY};
    char err[256] = "";
    int rc = acdm_out_start(p->env.outbound, &o, outreq_done, rq, &rq->req, err, sizeof err);
    if (rc) {
        if (err[0]) acdm_log(ACDM_LOG_WARN, inst->name, "http_request %s: %s", req->url, err);
        free(rq);
        return rc;
    }
    DLIST_ADD(inst->reqs, rq);
    return 0;
}
