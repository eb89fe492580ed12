/* email_fetch.c -- the baseline of bench_email.py: the mail recipe's bare libcurl fetch
 * (shared/recipes/mail/fetch.c) in a loop over UIDs 1..n on one reused connection, each
 * message parsed with GMime and its text part read. No store, no move.
 * usage: email_fetch mailbox-url user pass n */
#include <curl/curl.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf { char *p; size_t n; };

static size_t on_data(char *d, size_t sz, size_t nm, void *ud)
{
    struct buf *b = ud;
    size_t len = sz * nm;
    char *np = realloc(b->p, b->n + len + 1);
    if (!np) return 0;
    memcpy(np + b->n, d, len);
    b->p = np;
    b->n += len;
    b->p[b->n] = 0;
    return len;
}

static void find_plain(GMimeObject *parent, GMimeObject *part, gpointer ud)
{
    char **out = ud;
    (void)parent;
    if (*out || !GMIME_IS_TEXT_PART(part)) return;
    GMimeContentType *ct = g_mime_object_get_content_type(part);
    if (g_mime_content_type_is_type(ct, "text", "plain") && !g_mime_part_is_attachment(GMIME_PART(part)))
        *out = g_mime_text_part_get_text(GMIME_TEXT_PART(part));
}

int main(int argc, char **argv)
{
    if (argc != 5) { fprintf(stderr, "usage: %s mailbox-url user pass n\n", argv[0]); return 2; }
    long n = atol(argv[4]), ok = 0;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    g_mime_init();
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_USERNAME, argv[2]);
    curl_easy_setopt(c, CURLOPT_PASSWORD, argv[3]);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    for (long uid = 1; uid <= n; uid++) {
        char url[1024];
        snprintf(url, sizeof url, "%s;UID=%ld", argv[1], uid);
        struct buf b = {0};
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
        if (curl_easy_perform(c) == CURLE_OK && b.p) {
            GMimeStream *s = g_mime_stream_mem_new_with_buffer(b.p, b.n);
            GMimeParser *p = g_mime_parser_new_with_stream(s);
            GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
            if (m) {
                char *text = NULL;
                g_mime_message_foreach(m, find_plain, &text);
                if (text) ok++;
                g_free(text);
                g_object_unref(m);
            }
            g_object_unref(p);
            g_object_unref(s);
        }
        free(b.p);
    }
    curl_easy_cleanup(c);
    printf("%ld\n", ok);
    return ok == n ? 0 : 1;
}
