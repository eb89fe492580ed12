/* webchat.c -- the web chat channel: a widget on a website, visitors chat with agents (or a bot
 * first) over a websocket. One instance per website. See docs/webchat.md. */
#include <acdm/plugin.h>
#include <acdm/plugin_util.h>

#include "bot.h"
#include "handoff.h"
#include "jcfg.h"        /* channels/sms/jcfg.h: the config readers, shared with sms and whatsapp */
#include "visitor.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/random.h>

/*
 * Instance config ("config" of a channel with "plugin": "webchat"):
 *   allowed_origins   [string]  origins whose pages may embed the widget (required, e.g.
 *                               "https://www.example.nl"); "*" allows any (not for production);
 *                               "{listen}" allows acdmd's own origin as the browser reached it
 *                               (Origin equal to the scheme://host:port of the request URL, so
 *                               the instance's /demo page works on any --listen address/port)
 *   title, greeting   string    shown in the widget header / as its first line
 *   texts             object    overrides of the widget's (Dutch) texts, see default_texts
 *   lang              string    the widget's lang attribute (default "nl")
 *   max_message_chars int       longest visitor message (default 2000)
 *   inactivity_s      int       a chat without any message for this long ends (default 900)
 *   reconnect_grace_s int       a waiting visitor without a connection for this long has left
 *                               (a reload reconnects well within it; default 30)
 *   max_sessions      int       concurrent conversations: sessions in which the visitor wrote
 *                               (default 20000); sessions without a message (a page that opened
 *                               the widget) are counted apart, up to the same number, and are
 *                               dropped as soon as their last connection closes
 *   max_sessions_per_address int sessions (with or without a message) of one client address
 *                               (default 20; the host's peer address, ABI 1.1)
 *   messages_per_minute int     a visitor's sustained message rate after a burst of 10
 *                               (default 60); faster ones get error "too_fast"
 *   attachments       object    {max_bytes (default 1048576), types: [content types] (default
 *                               images, PDF, plain text)}; {"max_bytes": 0} disables them
 *   leave_message_queue string  queue of the messages visitors leave when the chat is closed
 *                               (default: the channel's queue); they come in as kind "email"
 * Sessions in which the visitor wrote are kept in the instance's kv store (durable), so after a
 * restart of acdmd a visitor who reconnects with the resume token continues the same
 * conversation: "s:<token>" the session, "c:<sid>" its token, "l:<sid>:<n>" transcript line n.
 * Sessions without a message are never stored.
 *   bot               object    bot first: {url (e.g. Rasa's REST webhook), protocol
 *                               (default "rasa", see bot.h), timeout_ms (default 5000),
 *                               return_after_agent (bool)}; see docs/webchat.md
 */

#define MAX_CONNS 4
#define WC_EPERM (-7)           /* check_token: a valid token for something else */
#define SWEEP_MS 1000
#define POSITION_EVERY_MS 3000
#define TRANSCRIPT_MAX 500
#define RATE_BURST 10            /* visitor messages in a burst, then messages_per_minute */

extern const unsigned char asset_widget_js[], asset_widget_css[], asset_demo_html[];
extern const size_t asset_widget_js_len, asset_widget_css_len, asset_demo_html_len;

enum { S_NEW = 0, S_BOT, S_SUBMITTING, S_WAITING, S_ACTIVE, S_ENDED, S_CLOSED };
static const char *const state_names[] = {"new", "bot", "connecting", "waiting", "active", "ended",
                                          "closed"};

typedef struct cfg {
    json_t *origins;            /* array of strings */
    json_t *texts;              /* merged texts object */
    char *lang, *leave_queue, *bot_url;
    int max_chars, inactivity_s, grace_s, max_sessions, bot_timeout_ms, per_minute, per_address;
    long max_attach;
    json_t *attach_types;       /* array of strings */
    bool bot_return;
    const bot_protocol *bot;
} cfg;

typedef struct session {
    struct session *prev, *next;      /* w->all */
    struct session *h_tok, *h_sid, *h_ber;
    char token[33], sid[17], conv[96], bericht[40], agent[64];
    int state;
    json_t *transcript;               /* [{from, text, ts, attachment?}] */
    json_t *pending;                  /* visitor texts typed while the first submit is in flight */
    json_t *bot_queue;                /* visitor texts waiting for the bot's answer */
    acdm_wsconn *conns[MAX_CONNS];
    int nconns;
    int64_t created, last_activity, gone_since, last_pos_ms, last_typing_ms, rate_ms;
    int rate_tokens;
    uint32_t pos, est;
    bool bot_busy, visitor_ended, handed_off;
    bool engaged;                     /* a conversation going on (counts in max_sessions) */
    bool stored;                      /* its keys are in kv */
    size_t n_stored;                  /* transcript lines in kv */
    unsigned seq;                     /* numbers the idempotency keys of its submits */
    char *first_text;                 /* the first submit's text while it is in flight */
    char first_key[128];              /* ... and its idempotency key (resent after a crash) */
    bool wrote;                       /* the visitor ever wrote (else nothing to keep at close) */
    char peer[64];                    /* the client's address ("" when the host does not say) */
    /* attachment being uploaded */
    unsigned char *up;
    size_t up_len, up_size;
    char up_name[201], up_type[128];
    void *handoff_token;              /* a POST /handoff of the bot waiting for the submit */
    char csat_bericht[40];            /* the last conversation an agent had with the visitor: the
                                       * satisfaction question is about it ("" none) */
    bool rated;                       /* ... and the visitor answered it (at most once) */
} session;

#define NB 4096

/* Sessions per client address (max_sessions_per_address). */
typedef struct addr_count {
    struct addr_count *next;
    int n;
    char addr[64];
} addr_count;

typedef struct webchat {
    const acdm_host *host;
    acdm_instance *inst;
    cfg c;
    session *all;
    session *by_tok[NB], *by_sid[NB], *by_ber[NB];
    addr_count *by_addr[NB];
    int n_sessions, n_engaged, n_empty;  /* all; conversations going on; never written in */
    unsigned long refused;            /* upgrades refused since the last log line about them */
    int64_t refused_logged_ms;
    bool said_no_peer;
    bool stopped;                     /* after stop: no host calls, kv kept for the next start */
    acdm_timer *sweep;
    char *body;                       /* last response body (the host copies it) */
    char *info;                       /* the queue as host->queue_info last said (JSON), or NULL */
    int64_t info_ms;
    bool nobody;                      /* ... nobody logged in to the queue: no waiting estimate */
} webchat;

/* A submit in flight: the session is found again by its token (it may be gone meanwhile). */
typedef struct sub {
    webchat *w;
    char token[33];
    int what;                         /* SUB_FIRST, SUB_FOLLOW, SUB_LEAVE */
} sub;
enum { SUB_FIRST = 0, SUB_FOLLOW, SUB_LEAVE };

static void persist(webchat *w, session *s);
static void persist_lines(webchat *w, session *s);
static session *load_session(webchat *w, const char *token);
static session *load_by_sid(webchat *w, const char *sid);
static int submit_key(webchat *w, session *s, int what, const char *text, const char *subject,
                      json_t *payload, const handoff *h, const char *key);

/* ---------------------------------------------------------------- small helpers */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char b[32];
    if (nbytes > sizeof b) nbytes = sizeof b;
    if (getrandom(b, nbytes, 0) != (ssize_t)nbytes) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t k = 0; k < nbytes; k++) b[k] = (unsigned char)(ts.tv_nsec >> (k % 4 * 8)) ^ (unsigned char)k;
    }
    for (size_t k = 0; k < nbytes; k++) snprintf(out + 2 * k, 3, "%02x", b[k]);
}

static unsigned hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NB;
}

#define H_FIND(table, field, link, key) do { \
        for (session *s_ = w->table[hash(key)]; s_; s_ = s_->link) \
            if (!strcmp(s_->field, key)) return s_; \
        return NULL; \
    } while (0)

static session *by_token(webchat *w, const char *t) { H_FIND(by_tok, token, h_tok, t); }
static session *by_sid(webchat *w, const char *t) { H_FIND(by_sid, sid, h_sid, t); }
static session *by_bericht(webchat *w, const char *t) { H_FIND(by_ber, bericht, h_ber, t); }

static void h_unlink(session **head, session *s, size_t link_off)
{
    for (session **pp = head; *pp; pp = (session **)((char *)*pp + link_off))
        if (*pp == s) { *pp = *(session **)((char *)s + link_off); return; }
}

static void set_bericht(webchat *w, session *s, const char *id)
{
    if (s->bericht[0]) h_unlink(&w->by_ber[hash(s->bericht)], s, offsetof(session, h_ber));
    snprintf(s->bericht, sizeof s->bericht, "%s", id ? id : "");
    if (s->bericht[0]) {
        unsigned h = hash(s->bericht);
        s->h_ber = w->by_ber[h];
        w->by_ber[h] = s;
    }
}

/* The session of an event or reply: by conversation key ("<instance>:<sid>"), else bericht. */
static session *find_conv(webchat *w, const char *conv, const char *bericht)
{
    const char *iname = w->host->instance_name(w->inst);
    size_t n = strlen(iname);
    if (conv && !strncmp(conv, iname, n) && conv[n] == ':') {
        session *s = by_sid(w, conv + n + 1);
        if (!s) s = load_by_sid(w, conv + n + 1);   /* after a restart, before the visitor is back */
        if (s) return s;
    }
    return bericht ? by_bericht(w, bericht) : NULL;
}

static const char *text_of(webchat *w, const char *key)
{
    const char *t = json_string_value(json_object_get(w->c.texts, key));
    return t ? t : "";
}

/* ---------------------------------------------------------------- config */

static const char *const default_texts[][2] = {
    {"title", "Chat met ons"},
    {"greeting", "Welkom! Stel hier uw vraag, dan helpt een medewerker u zo snel mogelijk."},
    {"open_button", "Chat openen"},
    {"close_button", "Chatvenster sluiten"},
    {"input_label", "Uw bericht"},
    {"send", "Versturen"},
    {"end", "Chat beëindigen"},
    {"download", "Gesprek downloaden"},
    {"attach", "Bestand toevoegen"},
    {"you", "U"},
    {"agent", "Medewerker"},
    {"bot", "Chatbot"},
    {"system", "Melding"},
    {"connecting", "Verbinden…"},
    {"reconnecting", "De verbinding is verbroken. Opnieuw verbinden…"},
    {"sending", "wordt verzonden…"},
    {"waiting", "U bent nummer {position} in de wachtrij."},
    {"estimate", "Geschatte wachttijd: ongeveer {minutes} minuten."},
    {"waiting_next", "U bent aan de beurt. Een medewerker neemt uw chat zo aan."},
    {"joined", "Een medewerker is nu bij u."},
    {"agent_typing", "Medewerker typt…"},
    {"ended_agent", "De medewerker heeft het gesprek beëindigd."},
    {"ended_visitor", "U heeft het gesprek beëindigd."},
    {"ended_timeout", "Het gesprek is beëindigd omdat het een tijd stil was."},
    {"new_chat", "Nieuw gesprek"},
    {"closed", "De chat is op dit moment gesloten."},
    {"leave_message_intro", "Laat een bericht achter, dan nemen wij contact met u op."},
    {"leave_name", "Naam (niet verplicht)"},
    {"leave_email", "E-mailadres"},
    {"leave_text", "Uw bericht"},
    {"leave_send", "Bericht versturen"},
    {"leave_thanks", "Bedankt voor uw bericht. Wij nemen zo snel mogelijk contact met u op."},
    {"leave_failed", "Uw bericht kon nu niet worden aangenomen. Probeer het later opnieuw, of neem op een andere manier contact met ons op."},
    {"handoff", "Een ogenblik, u wordt doorverbonden met een medewerker."},
    {"back_to_bot", "U chat weer met de chatbot."},
    {"too_long", "Uw bericht is te lang: maximaal {max} tekens."},
    {"attach_too_big", "Dit bestand is te groot: maximaal {max} kB."},
    {"attach_type", "Dit soort bestand kan niet worden verstuurd. Toegestaan: {types}."},
    {"attach_sent", "Bestand verstuurd: {name}"},
    {"error", "Er ging iets mis. Probeer het opnieuw."},
    {"busy", "Het is nu erg druk in de chat. Probeer het over een paar minuten opnieuw."},
    {"minimize_button", "Chat minimaliseren"},
    {"nobody", "Er is op dit moment geen medewerker beschikbaar."},
    {"nobody_leave", "U kunt blijven wachten of een bericht achterlaten; dan nemen wij contact met u op."},
    {"leave_button", "Bericht achterlaten"},
    {"hours_title", "Openingstijden"},
    {"hours_closed_day", "gesloten"},
    {"reopens", "De chat is weer open {day} om {time} uur."},
    {"today", "vandaag"},
    {"tomorrow", "morgen"},
    {"on_day", "op {day}"},
    {"day_range", "{from} t/m {to}"},
    {"day_mon", "maandag"}, {"day_tue", "dinsdag"}, {"day_wed", "woensdag"}, {"day_thu", "donderdag"},
    {"day_fri", "vrijdag"}, {"day_sat", "zaterdag"}, {"day_sun", "zondag"},
    {"invalid_email", "Vul een geldig e-mailadres in, bijvoorbeeld naam@voorbeeld.nl."},
    {"required_email", "Vul uw e-mailadres in, zodat wij u kunnen antwoorden."},
    {"required_text", "Vul uw bericht in."},
    {"csat_question", "Hoe tevreden bent u over dit gesprek?"},
    {"csat_scale", "1 = zeer ontevreden, 5 = zeer tevreden"},
    {"csat_helped", "Bent u geholpen?"},
    {"yes", "Ja"},
    {"no", "Nee"},
    {"csat_send", "Beoordeling versturen"},
    {"csat_required", "Kies een cijfer of beantwoord de vraag \"Bent u geholpen?\"."},
    {"csat_thanks", "Bedankt voor uw beoordeling."},
};

/* The same texts in English, the defaults of an instance with "lang": "en" (texts overrides
 * either). Keys as default_texts; a key missing here keeps the Dutch text. */
static const char *const default_texts_en[][2] = {
    {"title", "Chat with us"},
    {"greeting", "Welcome! Ask your question here and a colleague will help you as soon as possible."},
    {"open_button", "Open chat"},
    {"close_button", "Close chat window"},
    {"input_label", "Your message"},
    {"send", "Send"},
    {"end", "End chat"},
    {"download", "Download conversation"},
    {"attach", "Add a file"},
    {"you", "You"},
    {"agent", "Agent"},
    {"bot", "Chatbot"},
    {"system", "Notice"},
    {"connecting", "Connecting…"},
    {"reconnecting", "The connection was lost. Reconnecting…"},
    {"sending", "sending…"},
    {"waiting", "You are number {position} in the queue."},
    {"estimate", "Estimated wait: about {minutes} minutes."},
    {"waiting_next", "You are next. A colleague will take your chat shortly."},
    {"joined", "A colleague is with you now."},
    {"agent_typing", "The agent is typing…"},
    {"ended_agent", "The agent has ended the conversation."},
    {"ended_visitor", "You have ended the conversation."},
    {"ended_timeout", "The conversation was ended because it was quiet for a while."},
    {"new_chat", "New conversation"},
    {"closed", "The chat is closed at the moment."},
    {"leave_message_intro", "Leave a message and we will contact you."},
    {"leave_name", "Name (optional)"},
    {"leave_email", "E-mail address"},
    {"leave_text", "Your message"},
    {"leave_send", "Send message"},
    {"leave_thanks", "Thank you for your message. We will contact you as soon as possible."},
    {"leave_failed", "Your message could not be taken now. Please try again later, or contact us another way."},
    {"handoff", "One moment, you are being transferred to a colleague."},
    {"back_to_bot", "You are chatting with the chatbot again."},
    {"too_long", "Your message is too long: at most {max} characters."},
    {"attach_too_big", "This file is too big: at most {max} kB."},
    {"attach_type", "This kind of file cannot be sent. Allowed: {types}."},
    {"attach_sent", "File sent: {name}"},
    {"error", "Something went wrong. Please try again."},
    {"busy", "The chat is very busy right now. Please try again in a few minutes."},
    {"minimize_button", "Minimise chat"},
    {"nobody", "No colleague is available at the moment."},
    {"nobody_leave", "You can keep waiting or leave a message; we will then contact you."},
    {"leave_button", "Leave a message"},
    {"hours_title", "Opening hours"},
    {"hours_closed_day", "closed"},
    {"reopens", "The chat opens again {day} at {time}."},
    {"today", "today"},
    {"tomorrow", "tomorrow"},
    {"on_day", "on {day}"},
    {"day_range", "{from} to {to}"},
    {"day_mon", "Monday"}, {"day_tue", "Tuesday"}, {"day_wed", "Wednesday"}, {"day_thu", "Thursday"},
    {"day_fri", "Friday"}, {"day_sat", "Saturday"}, {"day_sun", "Sunday"},
    {"invalid_email", "Enter a valid e-mail address, for example name@example.com."},
    {"required_email", "Enter your e-mail address so that we can answer you."},
    {"required_text", "Enter your message."},
    {"csat_question", "How satisfied are you with this conversation?"},
    {"csat_scale", "1 = very dissatisfied, 5 = very satisfied"},
    {"csat_helped", "Were you helped?"},
    {"yes", "Yes"},
    {"no", "No"},
    {"csat_send", "Send rating"},
    {"csat_required", "Choose a score or answer \"Were you helped?\"."},
    {"csat_thanks", "Thank you for your rating."},
};

static void cfg_free(cfg *c)
{
    json_decref(c->origins); json_decref(c->texts); json_decref(c->attach_types);
    free(c->lang); free(c->leave_queue); free(c->bot_url);
    memset(c, 0, sizeof *c);
}

static int cfg_parse(const char *text, cfg *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    json_t *o = json_loads(text, 0, NULL);
    int rc = -1;
    if (!json_is_object(o)) { snprintf(err, errlen, "config must be a JSON object"); goto out; }
    static const char *const known[] = {"allowed_origins", "title", "greeting", "texts", "lang",
        "max_message_chars", "inactivity_s", "reconnect_grace_s", "max_sessions", "attachments",
        "leave_message_queue", "bot", "messages_per_minute", "max_sessions_per_address", NULL};
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++) ok = !strcmp(key, known[i]);
        if (!ok) { snprintf(err, errlen, "%s: unknown setting", key); goto out; }
    }
    json_t *orig = json_object_get(o, "allowed_origins");
    if (!json_is_array(orig) || !json_array_size(orig)) {
        snprintf(err, errlen, "allowed_origins: required, a non-empty array of origins such as "
                 "\"https://www.example.nl\"");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(orig); i++) {
        const char *s = json_string_value(json_array_get(orig, i));
        bool special = s && (!strcmp(s, "*") || !strcmp(s, "{listen}"));
        if (!s || (!special && strncmp(s, "http://", 7) && strncmp(s, "https://", 8)) ||
            (!special && s[strlen(s) - 1] == '/')) {
            snprintf(err, errlen, "allowed_origins[%zu]: expected an origin like "
                     "\"https://www.example.nl\" (scheme and host, no path), \"{listen}\" or \"*\"", i);
            goto out;
        }
    }
    c->origins = json_incref(orig);
    c->texts = json_object();
    for (size_t i = 0; i < sizeof default_texts / sizeof *default_texts; i++)
        json_object_set_new(c->texts, default_texts[i][0], json_string(default_texts[i][1]));
    const char *lg = json_string_value(json_object_get(o, "lang"));
    if (lg && !strncmp(lg, "en", 2))      /* "en", "en-GB": the English defaults */
        for (size_t i = 0; i < sizeof default_texts_en / sizeof *default_texts_en; i++)
            json_object_set_new(c->texts, default_texts_en[i][0], json_string(default_texts_en[i][1]));
    json_t *tx = json_object_get(o, "texts");
    if (tx && !json_is_object(tx)) { snprintf(err, errlen, "texts must be an object of strings"); goto out; }
    json_object_foreach(tx, key, val) {
        if (!json_is_string(val) || !json_object_get(c->texts, key)) {
            snprintf(err, errlen, "texts.%s: %s", key, json_is_string(val) ? "unknown text" : "must be a string");
            goto out;
        }
        json_object_set(c->texts, key, val);
    }
    const char *simple[] = {"title", "greeting"};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(o, simple[i]);
        if (!v) continue;
        if (!json_is_string(v)) { snprintf(err, errlen, "%s must be a string", simple[i]); goto out; }
        json_object_set(c->texts, simple[i], v);
    }
    if (jcfg_str(o, "lang", false, NULL, &c->lang, err, errlen) ||
        jcfg_str(o, "leave_message_queue", false, NULL, &c->leave_queue, err, errlen) ||
        jcfg_int(o, "max_message_chars", 2000, 1, 20000, &c->max_chars, err, errlen) ||
        jcfg_int(o, "inactivity_s", 900, 5, 86400, &c->inactivity_s, err, errlen) ||
        jcfg_int(o, "reconnect_grace_s", 30, 1, 3600, &c->grace_s, err, errlen) ||
        jcfg_int(o, "max_sessions", 20000, 1, 1000000, &c->max_sessions, err, errlen) ||
        jcfg_int(o, "messages_per_minute", 60, 1, 60000, &c->per_minute, err, errlen) ||
        jcfg_int(o, "max_sessions_per_address", 20, 1, 1000000, &c->per_address, err, errlen))
        goto out;
    if (!c->lang && !(c->lang = strdup("nl"))) goto out;
    json_t *at = json_object_get(o, "attachments");
    c->max_attach = 1048576;
    if (at) {
        if (!json_is_object(at)) { snprintf(err, errlen, "attachments must be an object {max_bytes, types}"); goto out; }
        json_t *mb = json_object_get(at, "max_bytes");
        if (mb && (!json_is_integer(mb) || json_integer_value(mb) < 0 ||
                   json_integer_value(mb) > (json_int_t)ACDM_ATTACHMENT_MAX)) {
            snprintf(err, errlen, "attachments.max_bytes must be an integer from 0 to %u (the core's cap)",
                     ACDM_ATTACHMENT_MAX);
            goto out;
        }
        if (mb) c->max_attach = (long)json_integer_value(mb);
        json_t *ty = json_object_get(at, "types");
        if (ty) {
            if (!json_is_array(ty)) { snprintf(err, errlen, "attachments.types must be an array of content types"); goto out; }
            for (size_t i = 0; i < json_array_size(ty); i++)
                if (!json_is_string(json_array_get(ty, i)) || !strchr(json_string_value(json_array_get(ty, i)), '/')) {
                    snprintf(err, errlen, "attachments.types[%zu]: expected a content type like \"image/png\"", i);
                    goto out;
                }
            c->attach_types = json_incref(ty);
        }
    }
    if (!c->attach_types)
        c->attach_types = json_pack("[s,s,s,s,s]", "image/png", "image/jpeg", "image/gif",
                                    "application/pdf", "text/plain");
    json_t *bot = json_object_get(o, "bot");
    if (bot && !json_is_null(bot)) {
        if (!json_is_object(bot)) { snprintf(err, errlen, "bot must be an object {url, timeout_ms, return_after_agent}"); goto out; }
        if (jcfg_str(bot, "url", false, NULL, &c->bot_url, err, errlen)) goto out;
        if (!c->bot_url || (strncmp(c->bot_url, "http://", 7) && strncmp(c->bot_url, "https://", 8))) {
            snprintf(err, errlen, "bot.url: required, an http:// or https:// URL (e.g. Rasa's "
                     "http://localhost:5005/webhooks/rest/webhook)");
            goto out;
        }
        if (jcfg_int(bot, "timeout_ms", 5000, 100, 60000, &c->bot_timeout_ms, err, errlen)) goto out;
        json_t *pn = json_object_get(bot, "protocol");
        if (pn && !json_is_string(pn)) { snprintf(err, errlen, "bot.protocol must be a string (one of: %s)", bot_protocol_names()); goto out; }
        c->bot = bot_protocol_find(pn ? json_string_value(pn) : "rasa");
        if (!c->bot) {
            snprintf(err, errlen, "bot.protocol: unknown protocol \"%s\" (known: %s)", json_string_value(pn),
                     bot_protocol_names());
            goto out;
        }
        const char *key2;
        json_t *v2;
        json_object_foreach(bot, key2, v2) {
            if (strcmp(key2, "url") && strcmp(key2, "protocol") && strcmp(key2, "timeout_ms") &&
                strcmp(key2, "return_after_agent")) {
                snprintf(err, errlen, "bot.%s: unknown setting (known: url, protocol, timeout_ms, return_after_agent)", key2);
                goto out;
            }
        }
        json_t *rb = json_object_get(bot, "return_after_agent");
        if (rb && !json_is_boolean(rb)) { snprintf(err, errlen, "bot.return_after_agent must be true or false"); goto out; }
        c->bot_return = json_is_true(rb);
    }
    rc = 0;
out:
    json_decref(o);
    if (rc) cfg_free(c);
    return rc;
}

static int wc_check_config(const char *config_json, char *err, size_t errlen)
{
    cfg c;
    if (cfg_parse(config_json, &c, err, errlen)) return -1;
    cfg_free(&c);
    return 0;
}

/* The request came from a page of acdmd itself: its Origin is the scheme://host[:port] of the
 * URL the browser asked for (the Host header; a page on another origin cannot make them agree). */
static bool same_origin(const char *origin, const char *url)
{
    if (!origin || !url) return false;
    const char *sep = strstr(url, "://");
    if (!sep) return false;
    const char *end = strchr(sep + 3, '/');
    size_t n = end ? (size_t)(end - url) : strlen(url);
    /* a websocket's URL says ws:// or wss:// where the page's origin says http:// or https:// */
    const char *ou = url;
    char buf[320];
    if (!strncmp(url, "ws://", 5) || !strncmp(url, "wss://", 6)) {
        int k = snprintf(buf, sizeof buf, "http%.*s", (int)(n - 2), url + 2);
        if (k < 0 || (size_t)k >= sizeof buf) return false;
        ou = buf;
        n = (size_t)k;
    }
    return strlen(origin) == n && !strncasecmp(origin, ou, n);
}

static bool origin_allowed(const webchat *w, const char *origin, const char *url)
{
    for (size_t i = 0; i < json_array_size(w->c.origins); i++) {
        const char *o = json_string_value(json_array_get(w->c.origins, i));
        if (!strcmp(o, "*")) return true;
        if (!strcmp(o, "{listen}")) { if (same_origin(origin, url)) return true; continue; }
        if (origin && !strcasecmp(o, origin)) return true;
    }
    return false;
}

/* ---------------------------------------------------------------- sending to the visitor */

static void send_doc(webchat *w, session *s, json_t *doc)
{
    char *t = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!t) return;
    for (int k = 0; k < s->nconns; k++) w->host->ws_send(s->conns[k], t, strlen(t));
    free(t);
}

static void add_line(webchat *w, session *s, const char *from, const char *text, json_t *extra)
{
    json_t *m = json_pack("{s:s, s:s, s:I}", "from", from, "text", text, "ts", (json_int_t)now_ms());
    if (extra) json_object_update(m, extra);
    if (json_array_size(s->transcript) < TRANSCRIPT_MAX) json_array_append(s->transcript, m);
    persist_lines(w, s);
    json_object_set_new(m, "type", json_string("message"));
    send_doc(w, s, m);
}

static void send_error(webchat *w, acdm_wsconn *c, const char *code, const char *text)
{
    json_t *d = json_pack("{s:s, s:s, s:s}", "type", "error", "code", code, "text", text);
    char *t = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    if (t) w->host->ws_send(c, t, strlen(t));
    free(t);
}

static void send_state(webchat *w, session *s)
{
    json_t *d = json_pack("{s:s, s:s}", "type", "state", "state", state_names[s->state]);
    if (s->bericht[0]) json_object_set_new(d, "reference", json_string(s->bericht));   /* for a call back */
    if (s->state == S_WAITING && s->pos)
        json_object_update_new(d, json_pack("{s:i, s:i}", "position", (int)s->pos, "estimate_s",
                                            w->nobody ? 0 : (int)s->est));
    send_doc(w, s, d);
}

/* ---------------------------------------------------------------- the queue as the visitor sees it */

static void update_position(webchat *w, session *s, bool force);

/* The instance's queue from the host (open, closed by whom, the opening hours, agents logged
 * in): NULL from a core without queue_info. */
static json_t *queue_info_json(webchat *w)
{
    if (!ACDM_HOST_HAS(w->host, queue_info) || !w->host->queue_info) return NULL;
    char *t = w->host->queue_info(w->inst, NULL, "chat");
    if (!t) return NULL;
    json_t *o = json_loads(t, 0, NULL);
    w->host->free(t);
    return json_is_object(o) ? o : (json_decref(o), NULL);
}

static void send_all(webchat *w, json_t *doc)
{
    char *t = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (!t) return;
    for (session *s = w->all; s; s = s->next)
        for (int k = 0; k < s->nconns; k++) w->host->ws_send(s->conns[k], t, strlen(t));
    free(t);
}

/* Re-reads the queue; when it changed (opened, closed, the first agent logged in, the last one
 * out), every open widget gets {type: "queue_info", queue}. */
static void refresh_info(webchat *w, bool push)
{
    json_t *o = queue_info_json(w);
    w->info_ms = now_ms();
    if (!o) return;
    json_t *ag = json_object_get(o, "agents");
    w->nobody = ag && json_integer_value(json_object_get(ag, "logged_in")) == 0;
    /* available agents come and go with every conversation: only what the widget shows counts */
    json_t *key = json_pack("{s:O?, s:O?, s:b, s:O?}", "open", json_object_get(o, "open"),
                            "closed_by", json_object_get(o, "closed_by"), "nobody", w->nobody,
                            "hours", json_object_get(o, "hours"));
    char *t = key ? json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(key);
    if (t && (!w->info || strcmp(t, w->info))) {
        free(w->info);
        w->info = t;
        t = NULL;
        if (push) {
            send_all(w, json_pack("{s:s, s:O}", "type", "queue_info", "queue", o));
            /* the estimate goes (nobody logged in) or comes back: at once, not at the next poll */
            for (session *s = w->all; s; s = s->next)
                if (s->state == S_WAITING && s->nconns) update_position(w, s, true);
        }
    }
    free(t);
    json_decref(o);
}

/* ---------------------------------------------------------------- sessions */

/* ---------------------------------------------------------------- client addresses */

static addr_count **addr_slot(webchat *w, const char *addr)
{
    addr_count **pp = &w->by_addr[hash(addr)];
    while (*pp && strcmp((*pp)->addr, addr)) pp = &(*pp)->next;
    return pp;
}

static int addr_sessions(webchat *w, const char *addr)
{
    addr_count **pp = addr_slot(w, addr);
    return *pp ? (*pp)->n : 0;
}

static void addr_add(webchat *w, const char *addr, int d)
{
    if (!addr[0]) return;
    addr_count **pp = addr_slot(w, addr);
    if (!*pp) {
        if (d < 0 || !(*pp = calloc(1, sizeof **pp))) return;
        snprintf((*pp)->addr, sizeof (*pp)->addr, "%s", addr);
    }
    (*pp)->n += d;
    if ((*pp)->n <= 0) {
        addr_count *gone = *pp;
        *pp = gone->next;
        free(gone);
    }
}

/* The client's address from an ABI 1.1 host (NULL from an older one, or when it is unknown). */
static const char *req_peer(const acdm_http_request *req)
{
    if (req->struct_size < offsetof(acdm_http_request, peer) + sizeof req->peer) return NULL;
    return req->peer && *req->peer ? req->peer : NULL;
}

/* A refused upgrade is logged at most every 10 s, with the count since the last line, so a
 * flood of upgrades cannot flood the log. */
static void log_refusal(webchat *w, const char *why, const char *peer)
{
    int64_t now = now_ms();
    w->refused++;
    if (now - w->refused_logged_ms < 10000) return;
    w->host->log(w->inst, ACDM_PLOG_WARN, "visitor refused: %s (%s; %lu refused in the last 10 s)",
                 why, peer ? peer : "address unknown", w->refused);
    w->refused = 0;
    w->refused_logged_ms = now;
}

static session *session_new(webchat *w, const char *peer)
{
    session *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    snprintf(s->peer, sizeof s->peer, "%s", peer ? peer : "");
    addr_add(w, s->peer, +1);
    random_hex(s->token, 16);
    random_hex(s->sid, 8);
    snprintf(s->conv, sizeof s->conv, "%s:%s", w->host->instance_name(w->inst), s->sid);
    s->transcript = json_array();
    s->pending = json_array();
    s->bot_queue = json_array();
    s->created = s->last_activity = now_ms();
    s->state = w->c.bot_url ? S_BOT : S_NEW;
    unsigned h = hash(s->token);
    s->h_tok = w->by_tok[h];
    w->by_tok[h] = s;
    h = hash(s->sid);
    s->h_sid = w->by_sid[h];
    w->by_sid[h] = s;
    s->next = w->all;
    if (w->all) w->all->prev = s;
    w->all = s;
    w->n_sessions++;
    w->n_empty++;
    return s;
}

static void unstore(webchat *w, session *s);

static void session_free(webchat *w, session *s)
{
    if (!w->stopped) unstore(w, s);          /* after stop: kept for the next start */
    free(s->first_text);
    for (int k = 0; k < s->nconns; k++) {
        w->host->ws_set_user(s->conns[k], NULL);
        w->host->ws_close(s->conns[k], 1000, "chat ended");
    }
    if (s->handoff_token) {
        acdm_http_response r = {.status = 503, .content_type = "application/problem+json",
                                .body = "{\"type\":\"about:blank\",\"title\":\"Gone\",\"status\":503,"
                                        "\"detail\":\"the chat session ended before the handoff was stored\"}"};
        w->host->http_respond(s->handoff_token, &r);
    }
    h_unlink(&w->by_tok[hash(s->token)], s, offsetof(session, h_tok));
    h_unlink(&w->by_sid[hash(s->sid)], s, offsetof(session, h_sid));
    if (s->bericht[0]) h_unlink(&w->by_ber[hash(s->bericht)], s, offsetof(session, h_ber));
    if (s->prev) s->prev->next = s->next; else w->all = s->next;
    if (s->next) s->next->prev = s->prev;
    json_decref(s->transcript); json_decref(s->pending); json_decref(s->bot_queue);
    free(s->up);
    addr_add(w, s->peer, -1);
    if (s->engaged) w->n_engaged--;
    if (!s->wrote) w->n_empty--;
    free(s);
    w->n_sessions--;
}

/* ---------------------------------------------------------------- sessions in kv (survive a restart) */

static int kv_put(webchat *w, const char *key, const char *val, size_t len)
{
    /* entries expire by themselves where the host can (ABI 1.1): a session nobody resumes */
    if (val && ACDM_HOST_HAS(w->host, kv_set_ttl) && w->host->kv_set_ttl)
        return w->host->kv_set_ttl(w->inst, key, val, len,
                                   (uint32_t)w->c.inactivity_s + (uint32_t)w->c.grace_s + 600u);
    return w->host->kv_set(w->inst, key, val, len);
}

/* Writes the session's record (and its sid -> token key the first time). Only sessions in which
 * the visitor wrote are stored. */
static void persist(webchat *w, session *s)
{
    if (!s->wrote || w->stopped) return;
    char key[128];
    if (!s->stored) {
        snprintf(key, sizeof key, "c:%s", s->sid);
        kv_put(w, key, s->token, strlen(s->token));
        s->stored = true;
    }
    json_t *d = json_pack("{s:i, s:s, s:s, s:s, s:s, s:I, s:b, s:b, s:I, s:i, s:s?, s:s}",
                          "v", 1, "sid", s->sid, "state", state_names[s->state], "bericht", s->bericht,
                          "agent", s->agent, "created", (json_int_t)s->created,
                          "handed_off", s->handed_off, "visitor_ended", s->visitor_ended,
                          "lines", (json_int_t)s->n_stored, "seq", (int)s->seq,
                          "first_text", s->first_text, "first_key", s->first_key);
    if (d && s->csat_bericht[0])
        json_object_update_new(d, json_pack("{s:s, s:b}", "csat_bericht", s->csat_bericht, "rated", s->rated));
    char *t = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (!t) return;
    snprintf(key, sizeof key, "s:%s", s->token);
    if (kv_put(w, key, t, strlen(t)) < 0)
        w->host->log(w->inst, ACDM_PLOG_WARN, "chat %s could not be stored: a restart would lose it", s->sid);
    free(t);
}

/* Writes the transcript lines not stored yet, then the record (which counts them). */
static void persist_lines(webchat *w, session *s)
{
    if (!s->wrote || w->stopped) return;
    size_t n = json_array_size(s->transcript);
    if (n == s->n_stored) return;
    for (size_t i = s->n_stored; i < n; i++) {
        char key[64];
        char *t = json_dumps(json_array_get(s->transcript, i), JSON_COMPACT);
        if (!t) break;
        snprintf(key, sizeof key, "l:%s:%zu", s->sid, i);
        kv_put(w, key, t, strlen(t));
        free(t);
        s->n_stored = i + 1;
    }
    persist(w, s);
}

static void unstore(webchat *w, session *s)
{
    if (!s->stored) return;
    char key[128];
    for (size_t i = 0; i < s->n_stored; i++) {
        snprintf(key, sizeof key, "l:%s:%zu", s->sid, i);
        w->host->kv_set(w->inst, key, NULL, 0);
    }
    snprintf(key, sizeof key, "s:%s", s->token);
    w->host->kv_set(w->inst, key, NULL, 0);
    snprintf(key, sizeof key, "c:%s", s->sid);
    w->host->kv_set(w->inst, key, NULL, 0);
    s->stored = false;
}

static bool hex_ok(const char *t, size_t n)
{
    if (strlen(t) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f'))) return false;
    return true;
}

static int state_of(const char *name)
{
    for (int i = 0; i < (int)(sizeof state_names / sizeof *state_names); i++)
        if (name && !strcmp(name, state_names[i])) return i;
    return -1;
}

/* A session the visitor wrote in before acdmd restarted, back from kv (NULL when there is none,
 * or it is damaged: then the visitor simply starts a new one). It has no connection yet: the
 * reconnect grace runs from now. */
static session *load_session(webchat *w, const char *token)
{
    if (!hex_ok(token, 32) || w->stopped) return NULL;
    char key[128], *val = NULL;
    size_t len = 0;
    snprintf(key, sizeof key, "s:%s", token);
    if (w->host->kv_get(w->inst, key, &val, &len) != 0 || !val) return NULL;
    json_t *d = json_loadb(val, len, 0, NULL);
    w->host->free(val);
    const char *sid = json_string_value(json_object_get(d, "sid"));
    int st = state_of(json_string_value(json_object_get(d, "state")));
    if (!json_is_object(d) || !sid || !hex_ok(sid, 16) || st < 0 || by_sid(w, sid)) {
        json_decref(d);
        return NULL;
    }
    session *s = session_new(w, NULL);
    if (!s) { json_decref(d); return NULL; }
    /* session_new made a random token and sid: put the stored ones in their place */
    h_unlink(&w->by_tok[hash(s->token)], s, offsetof(session, h_tok));
    h_unlink(&w->by_sid[hash(s->sid)], s, offsetof(session, h_sid));
    snprintf(s->token, sizeof s->token, "%s", token);
    snprintf(s->sid, sizeof s->sid, "%s", sid);
    snprintf(s->conv, sizeof s->conv, "%s:%s", w->host->instance_name(w->inst), s->sid);
    unsigned h = hash(s->token);
    s->h_tok = w->by_tok[h];
    w->by_tok[h] = s;
    h = hash(s->sid);
    s->h_sid = w->by_sid[h];
    w->by_sid[h] = s;
    s->state = st;
    s->wrote = s->stored = true;
    w->n_empty--;                             /* session_new counted it as empty */
    s->handed_off = json_is_true(json_object_get(d, "handed_off"));
    s->visitor_ended = json_is_true(json_object_get(d, "visitor_ended"));
    s->seq = (unsigned)json_integer_value(json_object_get(d, "seq"));
    s->created = json_integer_value(json_object_get(d, "created"));
    snprintf(s->agent, sizeof s->agent, "%s", json_string_value(json_object_get(d, "agent")) ?
             json_string_value(json_object_get(d, "agent")) : "");
    const char *b = json_string_value(json_object_get(d, "bericht"));
    if (b && *b) set_bericht(w, s, b);
    const char *cb = json_string_value(json_object_get(d, "csat_bericht"));
    snprintf(s->csat_bericht, sizeof s->csat_bericht, "%s", cb ? cb : "");
    s->rated = json_is_true(json_object_get(d, "rated"));
    const char *ft = json_string_value(json_object_get(d, "first_text"));
    const char *fk = json_string_value(json_object_get(d, "first_key"));
    json_int_t n = json_integer_value(json_object_get(d, "lines"));
    for (json_int_t i = 0; i < n && i < TRANSCRIPT_MAX; i++) {
        char *lv = NULL;
        size_t ll = 0;
        snprintf(key, sizeof key, "l:%s:%lld", s->sid, (long long)i);
        if (w->host->kv_get(w->inst, key, &lv, &ll) != 0 || !lv) break;
        json_t *line = json_loadb(lv, ll, 0, NULL);
        w->host->free(lv);
        if (!json_is_object(line)) { json_decref(line); break; }
        json_array_append_new(s->transcript, line);
    }
    s->n_stored = json_array_size(s->transcript);
    s->gone_since = now_ms();
    if (s->state == S_WAITING || s->state == S_ACTIVE || s->state == S_SUBMITTING || s->state == S_BOT) {
        s->engaged = true;
        w->n_engaged++;
    }
    /* a conversation in progress at the crash went back to its queue in the core */
    uint32_t pos = 0, est = 0;
    if ((s->state == S_ACTIVE || s->state == S_WAITING) && s->bericht[0] &&
        ACDM_HOST_HAS(w->host, queue_position) &&
        w->host->queue_position(w->inst, s->bericht, &pos, &est) == 0 && pos) {
        s->state = S_WAITING;
        s->pos = pos;
        s->est = est;
    }
    w->host->log(w->inst, ACDM_PLOG_INFO, "chat %s resumed from the store (%s, bericht %s, %zu lines)",
                 s->sid, state_names[s->state], s->bericht[0] ? s->bericht : "-", json_array_size(s->transcript));
    if (s->state == S_SUBMITTING && ft) {
        /* its first submit was in flight: send it again with the same key (a duplicate if it
         * had been stored; its callback then names the bericht) */
        if (submit_key(w, s, SUB_FIRST, ft, NULL, NULL, NULL, fk && *fk ? fk : NULL) < 0) s->state = S_NEW;
    } else if (s->state == S_SUBMITTING) {
        s->state = S_NEW;
    }
    json_decref(d);
    return s;
}

static session *load_by_sid(webchat *w, const char *sid)
{
    if (!hex_ok(sid, 16) || w->stopped) return NULL;
    char key[64], *tok = NULL;
    size_t len = 0;
    snprintf(key, sizeof key, "c:%s", sid);
    if (w->host->kv_get(w->inst, key, &tok, &len) != 0 || !tok) return NULL;
    char t[40];
    snprintf(t, sizeof t, "%.*s", (int)(len < 39 ? len : 39), tok);
    w->host->free(tok);
    return by_token(w, t) ? NULL : load_session(w, t);
}

/* The visitor wrote: from now on the session is a conversation (max_sessions). False when
 * max_sessions conversations are going on; the visitor is told to try again later. */
static bool engage(webchat *w, session *s, acdm_wsconn *c)
{
    if (s->engaged) return true;
    if (w->n_engaged >= w->c.max_sessions) {
        log_refusal(w, "max_sessions conversations reached", s->peer[0] ? s->peer : NULL);
        json_t *d = json_pack("{s:s, s:s, s:s}", "type", "error", "code", "busy", "text", text_of(w, "busy"));
        char *t = json_dumps(d, JSON_COMPACT);
        json_decref(d);
        if (t) w->host->ws_send(c, t, strlen(t));
        free(t);
        return false;
    }
    if (!s->wrote) w->n_empty--;
    s->engaged = s->wrote = true;
    w->n_engaged++;
    return true;
}

/* The conversation is over (ended, or the queue was closed): no longer counted. */
static void disengage(webchat *w, session *s)
{
    if (!s->engaged) return;
    s->engaged = false;
    w->n_engaged--;
}

/* ---------------------------------------------------------------- submitting */

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome outcome,
                      const char *bericht_id, const char *text);

static int submit_key(webchat *w, session *s, int what, const char *text, const char *subject,
                      json_t *payload, const handoff *h, const char *key)
{
    sub *u = calloc(1, sizeof *u);
    if (!u) return -1;
    char idem[128];
    if (key) snprintf(idem, sizeof idem, "%s", key);
    else snprintf(idem, sizeof idem, "%s:%u", s->conv, ++s->seq);   /* a resend never duplicates */
    u->w = w;
    u->what = what;
    snprintf(u->token, sizeof u->token, "%s", s->token);
    char from[64];
    snprintf(from, sizeof from, "web:%s", s->sid);
    char *pj = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    char *sk = h && h->skills ? json_dumps(h->skills, JSON_COMPACT) : NULL;
    acdm_inbound in = {.struct_size = sizeof in, .kind = "chat", .from = from,
                       .conversation = s->conv, .text = text, .subject = subject,
                       .payload_json = pj, .skills_json = sk,
                       .queue = h && h->queue ? h->queue : NULL,
                       .priority = h ? h->priority : 0,
                       .customer_id = h ? h->customer_id : NULL, .idempotency_key = idem};
    if (what == SUB_LEAVE) {
        in.kind = "email";
        in.conversation = NULL;
        in.queue = w->c.leave_queue;
        /* a left message always becomes work: when its queue is closed (or there is no
         * leave_message_queue and the channel's queue is closed, which is why the visitor is
         * leaving a message) it waits there and is offered once the queue opens */
        in.flags = ACDM_IN_WAIT_IF_CLOSED;
        const char *email = json_string_value(json_object_get(payload, "email"));
        if (email && *email) in.from = email;
    }
    if (what == SUB_FIRST) {                 /* before the call: its callback may come within it */
        free(s->first_text);
        s->first_text = text ? strdup(text) : NULL;
        snprintf(s->first_key, sizeof s->first_key, "%s", idem);
    }
    /* the counter is stored before the submit: after a crash the next key is a new one, never
     * the key of a message that was stored but not yet answered (it would pass as a duplicate) */
    persist(w, s);
    char tok[33];
    snprintf(tok, sizeof tok, "%s", s->token);
    int rc = w->host->submit(w->inst, &in, submitted, u);
    free(pj);
    free(sk);
    if (rc < 0) {
        free(u);
        if (what == SUB_FIRST && by_token(w, tok) == s) {
            free(s->first_text);
            s->first_text = NULL;
            s->first_key[0] = 0;
        }
    }
    return rc;
}

static int submit(webchat *w, session *s, int what, const char *text, const char *subject,
                  json_t *payload, const handoff *h)
{
    return submit_key(w, s, what, text, subject, payload, h, NULL);
}

static void start_bericht(webchat *w, session *s, const char *text, const char *subject,
                          json_t *payload, const handoff *h)
{
    s->state = S_SUBMITTING;
    if (submit(w, s, SUB_FIRST, text, subject, payload, h) < 0) {
        s->state = S_NEW;
        add_line(w, s, "system", text_of(w, "error"), NULL);
        send_state(w, s);
    }
}

/* The transcript as lines for the agent (bot first: what the bot and the visitor said). */
static char *transcript_lines(const session *s)
{
    size_t cap = 256, len = 0;
    char *out = malloc(cap);
    if (!out) return NULL;
    out[0] = 0;
    for (size_t i = 0; i < json_array_size(s->transcript); i++) {
        json_t *m = json_array_get(s->transcript, i);
        const char *from = json_string_value(json_object_get(m, "from"));
        const char *text = json_string_value(json_object_get(m, "text"));
        if (!from || !text || !strcmp(from, "system")) continue;
        size_t need = strlen(from) + strlen(text) + 4;
        if (len + need + 1 > cap) {
            while (len + need + 1 > cap) cap *= 2;
            char *n = realloc(out, cap);
            if (!n) { free(out); return NULL; }
            out = n;
        }
        const char *who = !strcmp(from, "visitor") ? "Klant" : !strcmp(from, "bot") ? "Chatbot"
                        : !strcmp(from, "agent") ? "Medewerker" : from;
        len += (size_t)snprintf(out + len, cap - len, "%s: %s\n", who, text);
    }
    return out;
}

/* From bot to humans: the bericht carries the transcript and the summary. */
static void do_handoff(webchat *w, session *s, const char *summary, const handoff *h)
{
    if (s->handed_off || s->state != S_BOT) return;
    s->handed_off = true;
    json_array_clear(s->bot_queue);
    add_line(w, s, "system", text_of(w, "handoff"), NULL);
    json_t *payload = json_pack("{s:s, s:s, s:O}", "source", "bot", "summary", summary,
                                "transcript", s->transcript);
    if (h && h->intent) json_object_set_new(payload, "intent", json_string(h->intent));
    char *lines = transcript_lines(s);
    start_bericht(w, s, lines ? lines : summary, summary, payload, h);
    free(lines);
    json_decref(payload);
}

/* Answers the bot's POST /handoff once the submit callback came: outcome "queued" (or
 * "duplicate"/"followup"), or "closed" with the queue's closed_text (the bericht is stored as
 * closed; the visitor sees the closed text and the leave-a-message form), or a 503. */
static void answer_handoff(webchat *w, session *s, int status, const char *detail)
{
    if (!s->handoff_token) return;
    json_t *d = status < 300
        ? json_pack("{s:s, s:s, s:s}", "bericht", s->bericht, "conversation_id", s->sid, "outcome",
                    s->state == S_CLOSED ? "closed" : "queued")
        : json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", "Not stored", "status",
                    status, "detail", detail ? detail : "");
    if (status < 300 && s->state == S_CLOSED)
        json_object_set_new(d, "closed_text", json_string(detail ? detail : text_of(w, "closed")));
    char *b = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    acdm_http_response r = {.status = status, .body = b,
                            .content_type = status < 300 ? "application/json" : "application/problem+json"};
    w->host->http_respond(s->handoff_token, &r);
    s->handoff_token = NULL;
    free(b);
}

static void update_position(webchat *w, session *s, bool force)
{
    uint32_t pos = 0, est = 0;
    if (!ACDM_HOST_HAS(w->host, queue_position) || !s->bericht[0]) return;
    if (w->host->queue_position(w->inst, s->bericht, &pos, &est) < 0) return;
    s->last_pos_ms = now_ms();
    if (!force && pos == s->pos && est == s->est) return;
    s->pos = pos;
    s->est = est;
    send_doc(w, s, json_pack("{s:s, s:i, s:i}", "type", "queue", "position", (int)pos, "estimate_s",
                             w->nobody ? 0 : (int)est));
}

static void submitted_session(webchat *w, session *s, int what, acdm_submit_outcome outcome,
                              const char *bericht_id, const char *text);

static void submitted(acdm_instance *inst, void *priv, void *user, acdm_submit_outcome outcome,
                      const char *bericht_id, const char *text)
{
    (void)inst;
    webchat *w = priv;
    sub *u = user;
    session *s = by_token(w, u->token);
    int what = u->what;
    free(u);
    if (!s) return;
    if (what == SUB_FIRST) {                  /* no longer in flight: nothing to resend */
        free(s->first_text);
        s->first_text = NULL;
        s->first_key[0] = 0;
    }
    submitted_session(w, s, what, outcome, bericht_id, text);
    if (by_token(w, s->token) == s) persist(w, s);
}

static void submitted_session(webchat *w, session *s, int what, acdm_submit_outcome outcome,
                              const char *bericht_id, const char *text)
{
    if (what == SUB_LEAVE) {
        if (s->state == S_CLOSED || s->state == S_NEW || s->state == S_ENDED)
            disengage(w, s);                  /* a left message is no conversation going on */
        if (outcome == ACDM_SUBMIT_CLOSED) {
            /* only from a core without ACDM_IN_WAIT_IF_CLOSED: the core stored it as closed, and
             * nobody would ever be offered it. Never thank the visitor for that. */
            w->host->log(w->inst, ACDM_PLOG_WARN, "a message left in the chat (bericht %s) went to "
                         "queue %s, which is closed: stored as closed, not offered to anyone. Set "
                         "leave_message_queue to a queue without opening hours (docs/webchat.md)",
                         bericht_id ? bericht_id : "?", w->c.leave_queue ? w->c.leave_queue : "(the channel's)");
            send_doc(w, s, json_pack("{s:s, s:s, s:s}", "type", "error", "code", "leave_closed", "text",
                                     text_of(w, "leave_failed")));
        } else if (outcome == ACDM_SUBMIT_ERROR) {
            send_doc(w, s, json_pack("{s:s, s:s, s:s}", "type", "error", "code", "error", "text",
                                     text_of(w, "error")));
        } else {
            send_doc(w, s, json_pack("{s:s, s:s, s:s?}", "type", "left_message", "text",
                                     text_of(w, "leave_thanks"), "reference", bericht_id));
        }
        return;
    }
    if (what == SUB_FOLLOW) {
        if (outcome == ACDM_SUBMIT_QUEUED && bericht_id) {   /* the old bericht had ended: a new one */
            set_bericht(w, s, bericht_id);
            s->state = S_WAITING;
            s->pos = 0;
            update_position(w, s, true);
            send_state(w, s);
        } else if (outcome == ACDM_SUBMIT_ERROR) {
            add_line(w, s, "system", text_of(w, "error"), NULL);
        }
        return;
    }
    switch (outcome) {
    case ACDM_SUBMIT_QUEUED: case ACDM_SUBMIT_DUPLICATE: case ACDM_SUBMIT_FOLLOWUP:
        set_bericht(w, s, bericht_id);
        if (s->state == S_ENDED) {           /* the visitor ended while it was being stored */
            w->host->end(w->inst, s->bericht, "left");
            answer_handoff(w, s, 201, NULL);
            return;
        }
        if (s->state == S_SUBMITTING) s->state = S_WAITING;
        s->pos = 0;
        answer_handoff(w, s, 201, NULL);
        update_position(w, s, true);
        send_state(w, s);
        /* what the visitor typed meanwhile joins the bericht */
        for (size_t i = 0; i < json_array_size(s->pending); i++)
            submit(w, s, SUB_FOLLOW, json_string_value(json_array_get(s->pending, i)), NULL, NULL, NULL);
        json_array_clear(s->pending);
        break;
    case ACDM_SUBMIT_CLOSED:
        set_bericht(w, s, bericht_id);
        s->state = S_CLOSED;
        disengage(w, s);
        answer_handoff(w, s, 201, text && *text ? text : NULL);
        json_array_clear(s->pending);
        send_doc(w, s, json_pack("{s:s, s:s, s:s}", "type", "closed", "text",
                                 text && *text ? text : text_of(w, "closed"), "intro",
                                 text_of(w, "leave_message_intro")));
        send_state(w, s);
        break;
    default:
        s->state = s->handed_off ? S_NEW : (w->c.bot_url ? S_BOT : S_NEW);
        answer_handoff(w, s, 503, text ? text : "the core could not store the bericht");
        add_line(w, s, "system", text_of(w, "error"), NULL);
        send_state(w, s);
        break;
    }
}

/* ---------------------------------------------------------------- the bot (Rasa REST contract) */

static void bot_send(webchat *w, session *s);

static void bot_done(acdm_instance *inst, void *priv, void *user, int status, const char *body,
                     size_t body_len, const char *error)
{
    (void)inst;
    webchat *w = priv;
    char *tok = user;
    session *s = by_token(w, tok);
    free(tok);
    if (!s) return;
    s->bot_busy = false;
    if (s->state != S_BOT) return;       /* handed off meanwhile: the bot's answer is dropped */
    bot_reply br;
    if (status < 200 || status >= 300 || !w->c.bot || w->c.bot->reply(body, body_len, &br) < 0) {
        char why[200];
        snprintf(why, sizeof why, "Chatbot niet bereikbaar (%s)",
                 status < 0 ? (error ? error : "transport error") : (status >= 300 || status < 200 ? "HTTP error" : "unreadable answer"));
        w->host->log(w->inst, ACDM_PLOG_WARN, "bot %s: %s (status %d): visitor %s goes to an agent",
                     w->c.bot_url, error ? error : "bad answer", status, s->sid);
        do_handoff(w, s, why, NULL);
        return;
    }
    for (size_t i = 0; i < json_array_size(br.texts); i++)
        add_line(w, s, "bot", json_string_value(json_array_get(br.texts, i)), NULL);
    if (br.handoff) {
        handoff h;
        memset(&h, 0, sizeof h);
        h.queue = br.queue;
        h.intent = br.intent;
        h.priority = br.priority;
        h.skills = br.skills;
        do_handoff(w, s, br.summary ? br.summary : (br.intent ? br.intent : "Doorverbonden door de chatbot"), &h);
    } else {
        bot_send(w, s);
    }
    bot_reply_free(&br);
}

/* Sends the next queued visitor text to the bot (one request at a time per visitor). */
static void bot_send(webchat *w, session *s)
{
    if (s->bot_busy || s->state != S_BOT || !json_array_size(s->bot_queue)) return;
    if (!w->c.bot) {                      /* the bot was removed from the config by a reload */
        do_handoff(w, s, "Chatbot uitgeschakeld", NULL);
        return;
    }
    char *b = w->c.bot->request(s->sid, json_string_value(json_array_get(s->bot_queue, 0)));
    json_array_remove(s->bot_queue, 0);
    static const char *const headers[] = {"Content-Type: application/json", "Accept: application/json", NULL};
    acdm_http_out req = {.struct_size = sizeof req, .method = "POST", .url = w->c.bot_url,
                         .headers = headers, .body = b, .body_len = b ? strlen(b) : 0,
                         .timeout_ms = w->c.bot_timeout_ms};
    char *tok = strdup(s->token);
    int rc = b && tok ? w->host->http_request(w->inst, &req, bot_done, tok) : -1;
    free(b);
    if (rc < 0) {
        free(tok);
        do_handoff(w, s, "Chatbot niet bereikbaar", NULL);
        return;
    }
    s->bot_busy = true;
}

/* ---------------------------------------------------------------- visitor messages */

static void visitor_text(webchat *w, session *s, const char *text)
{
    add_line(w, s, "visitor", text, NULL);
    switch (s->state) {
    case S_BOT:
        json_array_append_new(s->bot_queue, json_string(text));
        bot_send(w, s);
        break;
    case S_NEW: case S_ENDED:
        if (s->state == S_ENDED && w->c.bot_url && w->c.bot_return) {
            s->state = S_BOT;
            s->handed_off = false;
            json_array_append_new(s->bot_queue, json_string(text));
            bot_send(w, s);
            break;
        }
        s->visitor_ended = false;
        start_bericht(w, s, text, NULL, NULL, NULL);
        break;
    case S_SUBMITTING:
        json_array_append_new(s->pending, json_string(text));
        break;
    case S_WAITING: case S_ACTIVE:
        if (submit(w, s, SUB_FOLLOW, text, NULL, NULL, NULL) < 0)
            add_line(w, s, "system", text_of(w, "error"), NULL);
        break;
    default:   /* S_CLOSED: the visitor should leave a message instead */
        send_doc(w, s, json_pack("{s:s, s:s, s:s}", "type", "closed", "text", text_of(w, "closed"),
                                 "intro", text_of(w, "leave_message_intro")));
        break;
    }
}

/* The core takes ratings (host->feedback): the widget may ask its satisfaction question. */
static bool csat_possible(const webchat *w)
{
    return ACDM_HOST_HAS(w->host, feedback) && w->host->feedback;
}

static void visitor_end(webchat *w, session *s, const char *reason, const char *by)
{
    bool live = (s->state == S_WAITING || s->state == S_ACTIVE) && s->bericht[0];
    bool ask = s->state == S_ACTIVE && s->bericht[0] && s->agent[0];
    if (ask) { snprintf(s->csat_bericht, sizeof s->csat_bericht, "%s", s->bericht); s->rated = false; }
    s->visitor_ended = true;              /* before end(): its ENDED event comes back at once */
    s->state = S_ENDED;
    disengage(w, s);
    if (live) w->host->end(w->inst, s->bericht, reason);
    json_array_clear(s->bot_queue);
    send_doc(w, s, json_pack("{s:s, s:s, s:s, s:b}", "type", "ended", "by", by, "text",
                             text_of(w, !strcmp(by, "visitor") ? "ended_visitor" : "ended_timeout"),
                             "csat", ask && csat_possible(w)));
    send_state(w, s);
    persist(w, s);
}

static void subst(char *out, size_t n, const char *tmpl, const char *key, const char *val)
{
    const char *p = strstr(tmpl, key);
    if (!p) { snprintf(out, n, "%s", tmpl); return; }
    snprintf(out, n, "%.*s%s%s", (int)(p - tmpl), tmpl, val, p + strlen(key));
}

static bool type_allowed(webchat *w, const char *ct)
{
    for (size_t i = 0; i < json_array_size(w->c.attach_types); i++)
        if (!strcasecmp(json_string_value(json_array_get(w->c.attach_types, i)), ct)) return true;
    return false;
}

static void attach_reset(session *s)
{
    free(s->up);
    s->up = NULL;
    s->up_len = s->up_size = 0;
}

static void attach_refuse(webchat *w, acdm_wsconn *c, session *s, const char *code, const char *text)
{
    attach_reset(s);
    send_error(w, c, code, text);
}

static void visitor_attach(webchat *w, acdm_wsconn *c, session *s, const visitor_msg *m)
{
    char t[400], num[32];
    if (m->type == VM_ATTACH_START) {
        attach_reset(s);
        if (w->c.max_attach <= 0 || !ACDM_HOST_HAS(w->host, attachment_put)) {
            send_error(w, c, "attachments_off", text_of(w, "error"));
            return;
        }
        if (s->state != S_WAITING && s->state != S_ACTIVE) {
            send_error(w, c, "state", "Een bestand kan pas worden verstuurd als uw vraag in behandeling is.");
            return;
        }
        if (m->size > w->c.max_attach) {
            snprintf(num, sizeof num, "%ld", w->c.max_attach / 1024);
            subst(t, sizeof t, text_of(w, "attach_too_big"), "{max}", num);
            send_error(w, c, "too_big", t);
            return;
        }
        if (!type_allowed(w, m->content_type)) {
            char types[256] = "";
            for (size_t i = 0; i < json_array_size(w->c.attach_types); i++) {
                size_t l = strlen(types);
                snprintf(types + l, sizeof types - l, "%s%s", i ? ", " : "",
                         json_string_value(json_array_get(w->c.attach_types, i)));
            }
            subst(t, sizeof t, text_of(w, "attach_type"), "{types}", types);
            send_error(w, c, "bad_type", t);
            return;
        }
        s->up = malloc((size_t)m->size + 4);
        if (!s->up) { send_error(w, c, "error", text_of(w, "error")); return; }
        s->up_size = (size_t)m->size;
        snprintf(s->up_name, sizeof s->up_name, "%s", m->filename);
        snprintf(s->up_type, sizeof s->up_type, "%s", m->content_type);
        send_doc(w, s, json_pack("{s:s}", "type", "attachment_ready"));
        return;
    }
    if (!s->up) { send_error(w, c, "state", "attachment_start first"); return; }
    if (m->type == VM_ATTACH_CHUNK) {
        size_t room = s->up_size - s->up_len;
        if (m->data_len / 4 * 3 > room + 3) {
            snprintf(num, sizeof num, "%ld", w->c.max_attach / 1024);
            subst(t, sizeof t, text_of(w, "attach_too_big"), "{max}", num);
            attach_refuse(w, c, s, "too_big", t);
            return;
        }
        unsigned char *tmp = malloc(m->data_len / 4 * 3 + 4);
        long n = tmp ? visitor_b64_decode(m->data, m->data_len, tmp) : -1;
        if (n < 0 || (size_t)n > room) {
            free(tmp);
            attach_refuse(w, c, s, n < 0 ? "invalid" : "too_big",
                          n < 0 ? "data: not base64" : "Het bestand is groter dan aangekondigd.");
            return;
        }
        memcpy(s->up + s->up_len, tmp, (size_t)n);
        s->up_len += (size_t)n;
        free(tmp);
        return;
    }
    /* VM_ATTACH_END */
    if (s->up_len != s->up_size || !s->bericht[0]) {
        attach_refuse(w, c, s, "invalid", "Het bestand is niet volledig ontvangen.");
        return;
    }
    char id[64];
    int rc = w->host->attachment_put(w->inst, s->bericht, s->up_name, s->up_type, s->up, s->up_len, id);
    if (rc < 0) {
        attach_refuse(w, c, s, rc == ACDM_ETOOBIG ? "too_big" : "error", text_of(w, "error"));
        return;
    }
    json_t *att = json_pack("{s:s, s:s, s:s, s:I}", "id", id, "filename", s->up_name, "content_type",
                            s->up_type, "size", (json_int_t)s->up_len);
    json_t *payload = json_pack("{s:[O]}", "attachments", att);
    subst(t, sizeof t, text_of(w, "attach_sent"), "{name}", s->up_name);
    json_t *extra = json_pack("{s:O}", "attachment", att);
    add_line(w, s, "visitor", t, extra);
    json_decref(extra);
    submit(w, s, SUB_FOLLOW, t, NULL, payload, NULL);
    json_decref(payload);
    json_decref(att);
    attach_reset(s);
}

/* The hello: the session (token, state, transcript), the texts and limits, and the queue as
 * the visitor sees it (closed, opening hours, nobody logged in) before they write. c NULL: to
 * every connection of the session. */
static void send_hello(webchat *w, session *s, acdm_wsconn *c)
{
    json_t *hello = json_pack("{s:s, s:s, s:s, s:O, s:O, s:i, s:b}", "type", "hello", "token", s->token,
                              "state", state_names[s->state], "texts", w->c.texts, "transcript",
                              s->transcript, "max_message_chars", w->c.max_chars, "attachments",
                              w->c.max_attach > 0);
    if (w->c.max_attach > 0)
        json_object_update_new(hello, json_pack("{s:I, s:O}", "max_attachment_bytes",
                                                (json_int_t)w->c.max_attach, "attachment_types",
                                                w->c.attach_types));
    if (s->state == S_WAITING && s->pos)
        json_object_update_new(hello, json_pack("{s:i, s:i}", "position", (int)s->pos, "estimate_s",
                                                w->nobody ? 0 : (int)s->est));
    if (s->bericht[0]) json_object_set_new(hello, "reference", json_string(s->bericht));
    json_object_set_new(hello, "lang", json_string(w->c.lang));
    json_t *qi = queue_info_json(w);
    if (qi) json_object_set_new(hello, "queue", qi);
    if (s->csat_bericht[0] && csat_possible(w))
        json_object_set_new(hello, "csat", json_pack("{s:b}", "done", s->rated));
    if (!c) { send_doc(w, s, hello); return; }
    char *t = json_dumps(hello, JSON_COMPACT);
    json_decref(hello);
    if (t) w->host->ws_send(c, t, strlen(t));
    free(t);
}

/* The visitor's answer to the satisfaction question, recorded by the core on the bericht. */
static void visitor_csat(webchat *w, acdm_wsconn *c, session *s, const visitor_msg *m)
{
    if (!s->csat_bericht[0] || !csat_possible(w)) {
        send_error(w, c, "state", "Er is geen afgerond gesprek om te beoordelen.");
        return;
    }
    if (s->rated) { send_error(w, c, "rated", text_of(w, "csat_thanks")); return; }
    json_t *d = json_object();
    if (m->score) json_object_set_new(d, "score", json_integer(m->score));
    if (m->helped >= 0) json_object_set_new(d, "helped", json_boolean(m->helped));
    char *dt = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    char err[200] = "";
    int rc = dt ? w->host->feedback(w->inst, s->csat_bericht, dt, err, sizeof err) : ACDM_P_ENOMEM;
    free(dt);
    if (rc == 0 || rc == ACDM_P_EEXIST) {
        s->rated = true;
        persist(w, s);
        send_doc(w, s, json_pack("{s:s, s:s}", "type", "csat_thanks", "text", text_of(w, "csat_thanks")));
    } else {
        w->host->log(w->inst, ACDM_PLOG_WARN, "rating of bericht %s not recorded: %s", s->csat_bericht,
                     err[0] ? err : acdm_plugin_strerror(rc));
        send_error(w, c, rc == ACDM_P_EINVAL ? "invalid" : "error", rc == ACDM_P_EINVAL ? err : text_of(w, "error"));
    }
}

/* "Nieuw gesprek": after the end, the session starts over (empty transcript, greeting); the
 * next message is a new bericht. */
static void visitor_new(webchat *w, acdm_wsconn *c, session *s)
{
    bool idle = s->state == S_NEW || s->state == S_ENDED || s->state == S_CLOSED ||
                (s->state == S_BOT && !s->handed_off);
    if (!idle || s->bot_busy || s->handoff_token || s->up) {
        send_error(w, c, "state", "Beëindig eerst het gesprek.");
        return;
    }
    unstore(w, s);
    /* a new conversation key: the old bericht may still be in wrap-up, and what the visitor
     * writes now must not join it */
    h_unlink(&w->by_sid[hash(s->sid)], s, offsetof(session, h_sid));
    random_hex(s->sid, 8);
    snprintf(s->conv, sizeof s->conv, "%s:%s", w->host->instance_name(w->inst), s->sid);
    unsigned h = hash(s->sid);
    s->h_sid = w->by_sid[h];
    w->by_sid[h] = s;
    json_array_clear(s->transcript);
    json_array_clear(s->pending);
    json_array_clear(s->bot_queue);
    s->n_stored = 0;
    set_bericht(w, s, NULL);
    s->agent[0] = 0;
    s->csat_bericht[0] = 0;
    s->rated = s->visitor_ended = s->handed_off = false;
    s->pos = s->est = 0;
    disengage(w, s);
    if (s->wrote) { s->wrote = false; w->n_empty++; }
    s->state = w->c.bot_url ? S_BOT : S_NEW;
    send_hello(w, s, NULL);
}

static void ws_message(acdm_instance *inst, void *priv, acdm_wsconn *c, const char *data, size_t len)
{
    (void)inst;
    webchat *w = priv;
    session *s = w->host->ws_user(c);
    if (!s) return;
    visitor_msg m;
    const char *code;
    char err[200];
    if (visitor_parse(data, len, (size_t)w->c.max_chars, &m, &code, err, sizeof err)) {
        if (!strcmp(code, VERR_TOO_LONG)) {
            char num[16], t[300];
            snprintf(num, sizeof num, "%d", w->c.max_chars);
            subst(t, sizeof t, text_of(w, "too_long"), "{max}", num);
            send_error(w, c, code, t);
        } else {
            send_error(w, c, code, err);
        }
        return;
    }
    int64_t now = now_ms();
    if (m.type != VM_PING && m.type != VM_TYPING) s->last_activity = now;
    switch (m.type) {
    case VM_MESSAGE:
        /* a token bucket against floods: RATE_BURST at once, then messages_per_minute */
        int64_t every = 60000 / w->c.per_minute;
        if (!s->rate_ms) { s->rate_tokens = RATE_BURST; s->rate_ms = now; }
        s->rate_tokens += (int)((now - s->rate_ms) / every);
        s->rate_ms = now - (now - s->rate_ms) % every;
        if (s->rate_tokens > RATE_BURST) s->rate_tokens = RATE_BURST;
        if (s->rate_tokens < 1) {
            send_error(w, c, "too_fast", "U stuurt te veel berichten achter elkaar. Wacht even.");
            break;
        }
        s->rate_tokens--;
        if (engage(w, s, c)) visitor_text(w, s, m.text);
        break;
    case VM_TYPING:
        if (s->state == S_ACTIVE && s->bericht[0] && now - s->last_typing_ms >= 1000 &&
            ACDM_HOST_HAS(w->host, typing)) {
            s->last_typing_ms = now;
            w->host->typing(w->inst, s->bericht);
        }
        break;
    case VM_END:
        visitor_end(w, s, "left", "visitor");
        break;
    case VM_LEAVE_MESSAGE: {
        if (s->state == S_ACTIVE || s->state == S_SUBMITTING) {
            send_error(w, c, "state", "Een medewerker is bij u: stel uw vraag in de chat.");
            break;
        }
        if (s->state == S_WAITING && s->bericht[0]) {
            /* nobody came (none logged in): the visitor leaves a message instead of waiting;
             * the waiting chat ends as the customer's */
            s->visitor_ended = true;
            s->state = S_ENDED;
            disengage(w, s);
            w->host->end(w->inst, s->bericht, "left");
            send_state(w, s);
        }
        if (!engage(w, s, c)) break;
        json_t *payload = json_pack("{s:s, s:s?, s:s?, s:s}", "source", "webchat-leave-message",
                                    "name", m.name, "email", m.email, "chat", s->sid);
        if (submit(w, s, SUB_LEAVE, m.text, "Bericht achtergelaten via de chat", payload, NULL) < 0)
            send_error(w, c, "error", text_of(w, "error"));
        json_decref(payload);
        break;
    }
    case VM_ATTACH_START: case VM_ATTACH_CHUNK: case VM_ATTACH_END:
        visitor_attach(w, c, s, &m);
        break;
    case VM_CSAT:
        visitor_csat(w, c, s, &m);
        break;
    case VM_NEW:
        visitor_new(w, c, s);
        break;
    case VM_PING:
        w->host->ws_send(c, "{\"type\":\"pong\"}", 15);
        break;
    }
    visitor_free(&m);
}

/* ---------------------------------------------------------------- websocket life */

static const char *query_arg(const char *query, const char *name, char *buf, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = query; p && *p;) {
        if (!strncmp(p, name, nl) && p[nl] == '=') {
            size_t l = strcspn(p + nl + 1, "&");
            if (l >= n) l = n - 1;
            memcpy(buf, p + nl + 1, l);
            buf[l] = 0;
            return buf;
        }
        p = strchr(p, '&');
        if (p) p++;
    }
    return NULL;
}

static int ws_open(acdm_instance *inst, void *priv, acdm_wsconn *c, const acdm_http_request *req)
{
    webchat *w = priv;
    if (!origin_allowed(w, req->origin, req->url)) {   /* url: ABI 1.1, this plugin's minor */
        w->host->log(inst, ACDM_PLOG_NOTICE, "visitor websocket refused: origin %s is not in allowed_origins",
                     req->origin ? req->origin : "(none)");
        return -1;
    }
    char tok[40];
    session *s = NULL;
    if (query_arg(req->query, "resume", tok, sizeof tok)) {
        s = by_token(w, tok);
        if (!s) s = load_session(w, tok);         /* from before a restart of acdmd */
    }
    if (s && s->nconns >= MAX_CONNS) {
        w->host->ws_set_user(s->conns[0], NULL);
        w->host->ws_close(s->conns[0], 4000, "opened elsewhere");
        memmove(s->conns, s->conns + 1, sizeof s->conns[0] * (size_t)(--s->nconns));
    }
    if (!s) {
        /* a new session costs little until the visitor writes, and is gone when its last
         * connection closes; but each address has at most max_sessions_per_address, and
         * at most max_sessions of them wait for a first message */
        const char *peer = req_peer(req);
        if (!peer && !w->said_no_peer) {
            w->said_no_peer = true;
            w->host->log(inst, ACDM_PLOG_WARN, "the host does not give visitors' addresses (needs an "
                         "ABI 1.1 core): max_sessions_per_address is not applied");
        }
        if (peer && addr_sessions(w, peer) >= w->c.per_address) {
            log_refusal(w, "max_sessions_per_address reached", peer);
            return -1;
        }
        if (w->n_empty >= w->c.max_sessions) {
            log_refusal(w, "max_sessions sessions without a message reached", peer);
            return -1;
        }
        if (!(s = session_new(w, peer))) return -1;
    }
    s->conns[s->nconns++] = c;
    s->gone_since = 0;
    w->host->ws_set_user(c, s);
    send_hello(w, s, c);
    return 0;
}

static void ws_close(acdm_instance *inst, void *priv, acdm_wsconn *c)
{
    (void)inst;
    webchat *w = priv;
    session *s = w->host->ws_user(c);
    if (!s) return;
    for (int k = 0; k < s->nconns; k++)
        if (s->conns[k] == c) {
            memmove(s->conns + k, s->conns + k + 1, sizeof s->conns[0] * (size_t)(s->nconns - k - 1));
            s->nconns--;
            break;
        }
    if (!s->nconns) s->gone_since = now_ms();
    /* nothing written, nothing to keep: an open-then-close costs nothing that lasts */
    if (!s->nconns && !s->wrote && !s->handoff_token && s->state != S_SUBMITTING && !s->bot_busy)
        session_free(w, s);
}

static const acdm_ws_callbacks ws_cb = {ws_open, ws_message, ws_close};

/* ---------------------------------------------------------------- the sweep: positions, timeouts */

static void sweep(acdm_instance *inst, void *priv, void *user)
{
    (void)inst; (void)user;
    webchat *w = priv;
    int64_t now = now_ms();
    refresh_info(w, true);                 /* cheap (no I/O): every sweep, a change is pushed within ~1 s */
    for (session *s = w->all, *next; s; s = next) {
        next = s->next;
        bool live = s->state == S_WAITING || s->state == S_ACTIVE;
        if (now - s->last_activity > (int64_t)w->c.inactivity_s * 1000) {
            if (live || s->state == S_BOT) visitor_end(w, s, "inactivity", "timeout");
            if (!s->handoff_token) { session_free(w, s); continue; }
        }
        if (!s->nconns && s->gone_since && now - s->gone_since > (int64_t)w->c.grace_s * 1000 &&
            !s->handoff_token && s->state != S_SUBMITTING) {
            /* the visitor closed the page (no reload came back in time): they left. Waiting
             * within the queue's quick-drop threshold, the model records a quick drop. */
            if (live && ACDM_HOST_HAS(w->host, end_ago))
                w->host->end_ago(w->inst, s->bericht, "left", (uint32_t)(now - s->gone_since));
            else if (live)
                w->host->end(w->inst, s->bericht, "left");
            session_free(w, s);
            continue;
        }
        if (s->state == S_WAITING && s->nconns && now - s->last_pos_ms >= POSITION_EVERY_MS)
            update_position(w, s, false);
    }
}

/* ---------------------------------------------------------------- HTTP: widget, demo, handoff */

static void reply(webchat *w, acdm_http_response *resp, int status, const char *ct, char *body)
{
    free(w->body);
    w->body = body;
    resp->status = status;
    resp->content_type = ct;
    resp->body = body;
}

static void problem(webchat *w, acdm_http_response *resp, int status, const char *title, const char *detail)
{
    json_t *d = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title", title, "status",
                          status, "detail", detail);
    reply(w, resp, status, "application/problem+json", json_dumps(d, JSON_COMPACT));
    json_decref(d);
}

static void get_widget(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    (void)inst; (void)priv; (void)req;
    /* static bytes: the host copies them */
    resp->status = 200;
    resp->content_type = "text/javascript; charset=utf-8";
    resp->body = (const char *)asset_widget_js;
    resp->body_len = asset_widget_js_len;
}

static void get_css(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    (void)inst; (void)priv; (void)req;
    resp->status = 200;
    resp->content_type = "text/css; charset=utf-8";
    resp->body = (const char *)asset_widget_css;
    resp->body_len = asset_widget_css_len;
}

static void get_demo(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    (void)req;
    webchat *w = priv;
    /* demo.html has {{instance}} and {{lang}} placeholders */
    const char *src = (const char *)asset_demo_html;
    const char *name = w->host->instance_name(inst);
    size_t cap = asset_demo_html_len + 16 * (strlen(name) + 8) + 1, len = 0;
    char *out = malloc(cap);
    if (!out) { problem(w, resp, 503, "Out of memory", "try again"); return; }
    for (const char *p = src; *p;) {
        const char *val = NULL;
        size_t skip = 0;
        if (!strncmp(p, "{{instance}}", 12)) { val = name; skip = 12; }
        else if (!strncmp(p, "{{lang}}", 8)) { val = w->c.lang; skip = 8; }
        if (val && len + strlen(val) < cap) { memcpy(out + len, val, strlen(val)); len += strlen(val); p += skip; }
        else if (len + 1 < cap) out[len++] = *p++;
        else break;
    }
    out[len] = 0;
    reply(w, resp, 200, "text/html; charset=utf-8", out);
}

/* POST /handoff: a bot that runs bot-first for this instance hands a visitor to humans by
 * calling us (instead of a handoff reply). conversation_id is the Rasa sender id. */
static void post_handoff(acdm_instance *inst, void *priv, const acdm_http_request *req, acdm_http_response *resp)
{
    webchat *w = priv;
    const char *auth = req->authorization;
    if (!auth || strncasecmp(auth, "Bearer ", 7) || !ACDM_HOST_HAS(w->host, check_token) || !w->host->check_token) {
        problem(w, resp, 401, "Unauthorized", "a bearer token is required (admin, or one issued for this channel)");
        return;
    }
    int rc = w->host->check_token(inst, auth + 7);     /* through the host's sign-in limiter */
    if (rc == ACDM_P_EFULL) {
        problem(w, resp, 429, "Too Many Requests", "too many failed sign-ins from this address; retry later");
        return;
    }
    if (rc < 0) {
        problem(w, resp, rc == WC_EPERM ? 403 : 401, rc == WC_EPERM ? "Forbidden" : "Unauthorized",
                rc == WC_EPERM ? "this token is not for this channel" : "unknown or revoked token");
        return;
    }
    if (!acdm_content_type_is(req, "application/json")) {
        problem(w, resp, 415, "Unsupported Media Type", "send the body as Content-Type: application/json");
        return;
    }
    handoff h;
    char err[300];
    if (handoff_parse(req->body, req->body_len, &h, err, sizeof err)) {
        problem(w, resp, 400, "Invalid handoff", err);
        return;
    }
    session *s = by_sid(w, h.conversation_id);
    if (!s) s = load_by_sid(w, h.conversation_id);
    if (!s) {
        handoff_free(&h);
        problem(w, resp, 404, "Unknown conversation", "conversation_id: no web chat session with this id");
        return;
    }
    if (s->handed_off || s->state != S_BOT) {
        handoff_free(&h);
        if (s->handoff_token || !s->bericht[0]) {
            problem(w, resp, 409, "Handoff in progress", "conversation_id: this conversation is being handed off");
            return;
        }
        json_t *d = json_pack("{s:s, s:s, s:s}", "bericht", s->bericht, "conversation_id", s->sid, "outcome", "duplicate");
        reply(w, resp, 200, "application/json", json_dumps(d, JSON_COMPACT));
        json_decref(d);
        return;
    }
    resp->defer = 1;
    s->handoff_token = resp->token;
    do_handoff(w, s, h.summary ? h.summary : h.intent, &h);
    handoff_free(&h);
}

/* ---------------------------------------------------------------- deliver, events, typing */

static int wc_deliver(acdm_instance *inst, void *priv, const acdm_reply *r)
{
    webchat *w = priv;
    session *s = find_conv(w, r->conversation, r->bericht_id);
    if (!s) {
        w->host->delivery_report(inst, r->bericht_id, r->text,
                                 "{\"delivery\":\"failed\",\"error\":\"the visitor's chat session is gone\"}");
        return 0;
    }
    s->last_activity = now_ms();
    add_line(w, s, "agent", r->text ? r->text : "", NULL);
    w->host->delivery_report(inst, r->bericht_id, r->text,
                             s->nconns ? "{\"delivery\":\"delivered\"}"
                                       : "{\"delivery\":\"delivered\",\"note\":\"visitor offline; shown when they return\"}");
    return 0;
}

static void wc_event(acdm_instance *inst, void *priv, const acdm_event_info *ev)
{
    (void)inst;
    webchat *w = priv;
    session *s = find_conv(w, ev->conversation, ev->bericht_id);
    if (!s || strcmp(s->bericht, ev->bericht_id ? ev->bericht_id : "")) return;
    switch (ev->type) {
    case ACDM_EV_QUEUED: case ACDM_EV_REQUEUED: case ACDM_EV_TRANSFERRED:
        if (s->state == S_ACTIVE && ev->type == ACDM_EV_TRANSFERRED && ev->agent) break;
        if (s->state == S_ACTIVE || s->state == S_WAITING) {
            s->state = S_WAITING;
            update_position(w, s, true);
            send_state(w, s);
        }
        break;
    case ACDM_EV_ACCEPTED:
        s->state = S_ACTIVE;
        snprintf(s->agent, sizeof s->agent, "%s", ev->agent ? ev->agent : "");
        s->last_activity = now_ms();
        send_doc(w, s, json_pack("{s:s}", "type", "agent_joined"));
        add_line(w, s, "system", text_of(w, "joined"), NULL);
        send_state(w, s);
        break;
    case ACDM_EV_WRAPUP: case ACDM_EV_ENDED:
        if (!s->visitor_ended && s->state != S_ENDED) {
            bool ask = s->state == S_ACTIVE && s->agent[0];
            if (ask) { snprintf(s->csat_bericht, sizeof s->csat_bericht, "%s", s->bericht); s->rated = false; }
            s->state = S_ENDED;
            if (!(w->c.bot_url && w->c.bot_return)) disengage(w, s);
            send_doc(w, s, json_pack("{s:s, s:s, s:s, s:b}", "type", "ended", "by", "agent", "text",
                                     text_of(w, "ended_agent"), "csat", ask && csat_possible(w)));
            if (w->c.bot_url && w->c.bot_return) {
                s->state = S_BOT;
                s->handed_off = false;
                add_line(w, s, "system", text_of(w, "back_to_bot"), NULL);
            }
            send_state(w, s);
        }
        set_bericht(w, s, NULL);
        break;
    default:
        break;
    }
    persist(w, s);
}

static void wc_agent_typing(acdm_instance *inst, void *priv, const char *bericht_id)
{
    (void)inst;
    webchat *w = priv;
    session *s = by_bericht(w, bericht_id);
    if (s && s->state == S_ACTIVE) send_doc(w, s, json_pack("{s:s}", "type", "typing"));
}

/* ---------------------------------------------------------------- life cycle */

static int wc_init(acdm_instance *inst, void *priv, const acdm_host *host, const char *config_json,
                   char *err, size_t errlen)
{
    webchat *w = priv;
    w->host = host;
    w->inst = inst;
    if (cfg_parse(config_json, &w->c, err, errlen)) return -1;
    return 0;
}

static int wc_start(acdm_instance *inst, void *priv)
{
    webchat *w = priv;
    if (w->host->http_route(inst, "GET", "/widget.js", get_widget) < 0 ||
        w->host->http_route(inst, "GET", "/widget.css", get_css) < 0 ||
        w->host->http_route(inst, "GET", "/demo", get_demo) < 0 ||
        w->host->http_route(inst, "POST", "/handoff", post_handoff) < 0 ||
        w->host->ws_route(inst, "/ws", &ws_cb) < 0) {
        w->host->log(inst, ACDM_PLOG_ERR, "cannot register the web chat routes");
        return -1;
    }
    w->sweep = w->host->timer_start(inst, SWEEP_MS, SWEEP_MS, sweep, NULL);
    if (!w->c.leave_queue)
        w->host->log(inst, ACDM_PLOG_NOTICE, "leave_message_queue is not set: messages left while the "
                     "chat is closed wait in the channel's queue and are offered when it opens; set it "
                     "to a queue without opening hours (e.g. \"email\") to have them handled sooner");
    w->host->log(inst, ACDM_PLOG_INFO, "web chat at /channels/%s/widget.js (demo: /channels/%s/demo)%s",
                 w->host->instance_name(inst), w->host->instance_name(inst), w->c.bot_url ? ", bot first" : "");
    return 0;
}

static int wc_reload(acdm_instance *inst, void *priv, const char *config_json, char *err, size_t errlen)
{
    (void)inst;
    webchat *w = priv;
    cfg c;
    if (cfg_parse(config_json, &c, err, errlen)) return -1;
    cfg_free(&w->c);
    w->c = c;
    return 0;
}

static void wc_stop(acdm_instance *inst, void *priv)
{
    (void)inst;
    webchat *w = priv;
    if (w->sweep) w->host->timer_stop(w->sweep);
    w->sweep = NULL;
    w->stopped = true;                        /* the sessions stay in kv for the next start */
    /* every pending handoff response is answered 503 by the host after stop */
    for (session *s = w->all; s; s = s->next) { s->handoff_token = NULL; s->nconns = 0; }
}

static void wc_destroy(acdm_instance *inst, void *priv)
{
    (void)inst;
    webchat *w = priv;
    while (w->all) session_free(w, w->all);
    for (int k = 0; k < NB; k++)
        while (w->by_addr[k]) { addr_count *a = w->by_addr[k]; w->by_addr[k] = a->next; free(a); }
    cfg_free(&w->c);
    free(w->body);
    free(w->info);
}

static const acdm_plugin descriptor = ACDM_PLUGIN_INIT(
    .name = "webchat",
    .version = "1.0.0",
    .description = "Web chat: a widget on a website, visitors chat with agents (optionally a bot first)",
    .kinds = "chat,email",
    .instance_size = sizeof(webchat),
    .check_config = wc_check_config,
    .init = wc_init,
    .start = wc_start,
    .reload = wc_reload,
    .deliver = wc_deliver,
    .on_event = wc_event,
    .stop = wc_stop,
    .destroy = wc_destroy,
    .on_agent_typing = wc_agent_typing,
);

ACDM_PLUGIN_EXPORT const acdm_plugin *acdm_plugin_entry(void) { return &descriptor; }
