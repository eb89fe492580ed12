/* test_config.c -- unit tests of the config loader/validator (config.c) and opening hours (schedule.c). */
#include "config/config.h"
#include "config/schedule.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

static char errbuf[16384];

/* Parses text; returns the config (NULL on failure, errors in errbuf). */
static acdm_config *parse(const char *text)
{
    acdm_config *cfg = NULL;
    errbuf[0] = '\0';
    int rc = acdm_config_parse("t.json", text, &cfg, errbuf, sizeof errbuf);
    ck_assert_int_eq(rc == 0, cfg != NULL);
    return cfg;
}

/* Expects text to be rejected with a message containing every string of want[]. */
#define REJECT(text, ...) reject_(text, (const char *[]){__VA_ARGS__, NULL})
static void reject_(const char *text, const char **want)
{
    acdm_config *cfg = parse(text);
    ck_assert_msg(cfg == NULL, "accepted: %s", text);
    for (; *want; want++)
        ck_assert_msg(strstr(errbuf, *want), "expected \"%s\" in:\n%s", *want, errbuf);
}

static int count_lines(const char *s)
{
    int n = *s ? 1 : 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* ------------------------------------------------------------------ shipped config */

START_TEST(shipped_config_validates)
{
    acdm_config *cfg = NULL;
    int rc = acdm_config_load("conf/acdm.json", &cfg, errbuf, sizeof errbuf);
    ck_assert_msg(rc == 0, "conf/acdm.json rejected:\n%s", errbuf);
    ck_assert_str_eq(cfg->listen_host, "127.0.0.1");
    ck_assert_int_eq(cfg->listen_port, 8080);
    ck_assert_str_eq(cfg->data_dir, "var");
    ck_assert_str_eq(cfg->plugin_dir, "plugins");
    ck_assert_str_eq(cfg->ui_dir, "core/ui");
    ck_assert_str_eq(cfg->timezone, "Europe/Amsterdam");
    const acdm_queue_def *q = acdm_config_queue(cfg, "algemeen");
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(q->strategy, ACDM_STRAT_LONGEST_IDLE);
    ck_assert_ptr_null(q->schedule); /* always open, so the demo works at any hour */
    q = acdm_config_queue(cfg, "vergunningen");
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(q->strategy, ACDM_STRAT_ROUND_ROBIN);
    ck_assert_str_eq(q->schedule, "kantoor");
    ck_assert_uint_ge(q->n_skills, 1);
    q = acdm_config_queue(cfg, "email");
    ck_assert_int_eq(q->strategy, ACDM_STRAT_LEAST_OCCUPIED);
    ck_assert_int_eq(q->wrapup_s, 60);
    ck_assert_ptr_nonnull(acdm_config_queue(cfg, "terugbellen"));
    const acdm_schedule_def *s = acdm_config_schedule(cfg, "kantoor");
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->n_week[1], 1);
    ck_assert_int_eq(s->week[1][0].from_min, 8 * 60);
    ck_assert_int_eq(s->week[1][0].to_min, 17 * 60);
    ck_assert_int_eq(s->n_week[0], 0);
    ck_assert_uint_ge(s->n_holidays, 20);
    for (int i = 1; i <= 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "agent%d", i);
        const acdm_agent_def *a = acdm_config_agent(cfg, id);
        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(a->name);
        ck_assert_uint_ge(a->n_queues, 1);
    }
    ck_assert_uint_eq(cfg->n_channels, 3);   /* webhook, web chat, chatbot */
    ck_assert_str_eq(cfg->channels[0].plugin, "webhook");
    ck_assert_str_eq(cfg->channels[1].plugin, "webchat");
    ck_assert_str_eq(cfg->channels[2].plugin, "chatbot");
    ck_assert_str_eq(cfg->channels[0].queue, "algemeen");
    ck_assert(json_is_object(cfg->channels[0].config));
    ck_assert(acdm_config_reason_valid(cfg, "pauze"));
    ck_assert(acdm_config_reason_valid(cfg, "no-answer"));
    ck_assert(!acdm_config_reason_valid(cfg, "koffie"));
    bool paspoort = false;
    for (size_t i = 0; i < cfg->n_topics; i++) paspoort |= !strcmp(cfg->topics[i], "Paspoort");
    ck_assert(paspoort);
    ck_assert(json_is_object(cfg->root));
    acdm_config_free(cfg);
}
END_TEST

START_TEST(examples_validate)
{
    static const char *const ex[] = {"conf/examples/minimal.json", "conf/examples/multi-website.json"};
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        acdm_config *cfg = NULL;
        int rc = acdm_config_load(ex[i], &cfg, errbuf, sizeof errbuf);
        ck_assert_msg(rc == 0, "%s rejected:\n%s", ex[i], errbuf);
        acdm_config_free(cfg);
    }
}
END_TEST

/* ------------------------------------------------------------------ defaults */

START_TEST(defaults_applied)
{
    acdm_config *cfg = parse("{\"queues\":[{\"name\":\"q\"}],"
                             "\"agents\":[{\"id\":\"a\",\"capacity\":{\"chat\":7}}]}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert_str_eq(cfg->listen_host, "127.0.0.1");
    ck_assert_int_eq(cfg->listen_port, 8080);
    ck_assert_str_eq(cfg->data_dir, "var");
    ck_assert_str_eq(cfg->plugin_dir, "plugins");
    ck_assert_str_eq(cfg->ui_dir, "core/ui");
    ck_assert_str_eq(cfg->timezone, "Europe/Amsterdam");
    ck_assert_str_eq(cfg->log_level, "info");
    ck_assert_int_eq(cfg->max_misses, 0);
    ck_assert_int_eq(cfg->group_commit_ms, 0);
    const acdm_queue_def *q = &cfg->queues[0];
    ck_assert_int_eq(q->strategy, ACDM_STRAT_LONGEST_IDLE);
    ck_assert_int_eq(q->priority, 0);
    ck_assert_int_eq(q->sl_target_pct, 80);
    ck_assert_int_eq(q->sl_seconds, 20);
    ck_assert(!q->closed && !q->emergency);
    ck_assert_ptr_null(q->schedule);
    ck_assert_ptr_null(q->overflow);
    ck_assert_int_eq(q->max_wait_s, 0);
    ck_assert_int_eq(q->wrapup_s, 30);
    ck_assert_int_eq(q->offer_timeout_s, 20);
    ck_assert_int_eq(q->quick_drop_s, 5);
    ck_assert_int_eq(q->relax_after_s, 0);
    ck_assert_uint_eq(q->n_skills, 0);
    ck_assert_str_eq(acdm_config_closed_text(q, ACDM_KIND_VOICE),
                     "Deze wachtrij is op dit moment gesloten. Probeer het later opnieuw.");
    const acdm_agent_def *a = &cfg->agents[0];
    ck_assert_str_eq(a->name, "a"); /* display name defaults to the id */
    ck_assert_int_eq(a->capacity[ACDM_KIND_VOICE], 1);
    ck_assert_int_eq(a->capacity[ACDM_KIND_CHAT], 7);
    ck_assert_int_eq(a->capacity[ACDM_KIND_EMAIL], 5);
    ck_assert_int_eq(a->capacity[ACDM_KIND_SMS], 3);
    ck_assert_int_eq(a->capacity[ACDM_KIND_WHATSAPP], 3);
    ck_assert_int_eq(a->capacity[ACDM_KIND_CALLBACK], 1);
    ck_assert(a->voice_blocks);
    acdm_config_free(cfg);
}
END_TEST

START_TEST(values_read)
{
    acdm_config *cfg = parse(
        "{\"listen\":{\"host\":\"::\",\"port\":9090},\"log_level\":\"debug\",\"max_misses\":2,"
        "\"queues\":[{\"name\":\"a\",\"strategy\":\"ring-all\",\"priority\":100,\"max_wait_s\":30,"
        "\"overflow\":\"b\",\"fallback\":\"b\",\"skills\":[\"wmo\",{\"name\":\"nl\",\"level\":4}],"
        "\"closed_text\":{\"default\":\"dicht\",\"email\":\"mail dicht\"}},{\"name\":\"b\"}],"
        "\"agents\":[{\"id\":\"x.y_z-1\",\"name\":\"X\",\"queues\":[\"a\",\"b\"],\"voice_blocks\":false,"
        "\"skills\":[{\"name\":\"wmo\",\"level\":100}]}]}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert_str_eq(cfg->listen_host, "::");
    ck_assert_int_eq(cfg->listen_port, 9090);
    ck_assert_str_eq(cfg->log_level, "debug");
    const acdm_queue_def *q = acdm_config_queue(cfg, "a");
    ck_assert_int_eq(q->strategy, ACDM_STRAT_RING_ALL);
    ck_assert_str_eq(q->overflow, "b");
    ck_assert_uint_eq(q->n_skills, 2);
    ck_assert_str_eq(q->skills[0].name, "wmo");
    ck_assert_int_eq(q->skills[0].level, 1);
    ck_assert_int_eq(q->skills[1].level, 4);
    ck_assert_str_eq(acdm_config_closed_text(q, ACDM_KIND_EMAIL), "mail dicht");
    ck_assert_str_eq(acdm_config_closed_text(q, ACDM_KIND_CHAT), "dicht");
    const acdm_agent_def *a = acdm_config_agent(cfg, "x.y_z-1");
    ck_assert(!a->voice_blocks);
    ck_assert_uint_eq(a->n_queues, 2);
    ck_assert_int_eq(a->skills[0].level, 100);
    acdm_config_free(cfg);

    cfg = parse("{\"listen\":\"[::1]:8443\"}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert_str_eq(cfg->listen_host, "::1");
    ck_assert_int_eq(cfg->listen_port, 8443);
    acdm_config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------------ error classes */

START_TEST(error_unknown_key_hint)
{
    REJECT("{\"queues\":[{\"name\":\"q\",\"stratgy\":\"linear\"}]}",
           "t.json: queues[0]: unknown key \"stratgy\" (did you mean \"strategy\"?)");
    REJECT("{\"lisen\":\"1.2.3.4:80\"}", "t.json: (top level): unknown key \"lisen\" (did you mean \"listen\"?)");
    REJECT("{\"zzzzzzzzzz\":1}", "unknown key \"zzzzzzzzzz\" in the configuration (known keys: listen,");
    REJECT("{\"agents\":[{\"id\":\"a\",\"capacity\":{\"voic\":1}}]}",
           "t.json: agents[0].capacity.voic: unknown kind \"voic\" (did you mean \"voice\"?)");
    REJECT("{\"schedules\":[{\"name\":\"s\",\"week\":{\"monday\":[]}}]}",
           "t.json: schedules[0].week.monday: unknown day \"monday\"");
}
END_TEST

START_TEST(error_unknown_strategy)
{
    REJECT("{\"queues\":[{\"name\":\"a\"},{\"name\":\"b\"},{\"name\":\"c\",\"strategy\":\"fastest\"}]}",
           "t.json: queues[2].strategy: unknown strategy \"fastest\" (expected one of: linear, round-robin, "
           "longest-idle, least-occupied, fewest-handled, random, ring-all)");
}
END_TEST

START_TEST(error_types)
{
    REJECT("{\"max_misses\":\"3\"}", "t.json: max_misses: expected an integer, got a string");
    REJECT("{\"queues\":{}}", "t.json: queues: expected an array of queue objects, got an object");
    REJECT("{\"queues\":[{\"name\":\"q\",\"closed\":1}]}", "t.json: queues[0].closed: expected true or false, got an integer");
    REJECT("{\"queues\":[\"q\"]}", "t.json: queues[0]: expected a queue object, got a string");
    REJECT("[]", "t.json: (top level): expected a configuration object, got an array");
    REJECT("{\"queues\":[{\"name\":\"q\",\"priority\":1.5}]}", "queues[0].priority: expected an integer, got a number with a fraction");
    REJECT("{\"channels\":[{\"name\":\"c\",\"plugin\":\"p\",\"config\":[]}]}", "channels[0].config: expected an object, got an array");
}
END_TEST

START_TEST(error_ranges)
{
    REJECT("{\"listen\":\"127.0.0.1:70000\"}", "t.json: listen: port 70000 is out of range (1..65535)");
    REJECT("{\"listen\":{\"host\":\"x\",\"port\":0}}", "t.json: listen: port 0 is out of range (1..65535)");
    REJECT("{\"listen\":\"localhost\"}", "t.json: listen: invalid listen address \"localhost\"");
    REJECT("{\"queues\":[{\"name\":\"q\",\"wrapup_s\":-1}]}", "t.json: queues[0].wrapup_s: -1 is out of range (0..");
    REJECT("{\"queues\":[{\"name\":\"q\",\"priority\":101}]}", "t.json: queues[0].priority: 101 is out of range (0..100)");
    REJECT("{\"queues\":[{\"name\":\"q\",\"skills\":[{\"name\":\"s\",\"level\":0}]}]}",
           "t.json: queues[0].skills[0].level: 0 is out of range (1..100)");
    REJECT("{\"agents\":[{\"id\":\"a\",\"capacity\":{\"chat\":101}}]}",
           "t.json: agents[0].capacity.chat: 101 is out of range (0..100)");
    REJECT("{\"timezone\":\"Europe/Atlantis\"}", "t.json: timezone: unknown time zone \"Europe/Atlantis\"");
    REJECT("{\"log_level\":\"verbose\"}", "t.json: log_level: unknown log level \"verbose\"");
}
END_TEST

START_TEST(error_names)
{
    REJECT("{\"queues\":[{\"name\":\"met spatie\"}]}",
           "t.json: queues[0].name: invalid name \"met spatie\": use only letters, digits");
    char long_name[200];
    snprintf(long_name, sizeof long_name, "{\"agents\":[{\"id\":\"%064d\"}]}", 0);
    REJECT(long_name, "t.json: agents[0].id: invalid name", "at most 63 characters");
    REJECT("{\"queues\":[{\"title\":\"x\"}]}", "t.json: queues[0]: missing required key \"name\" in a queue");
    REJECT("{\"queues\":[{\"name\":\"\"}]}", "t.json: queues[0].name: must not be empty");
}
END_TEST

START_TEST(error_duplicates)
{
    REJECT("{\"queues\":[{\"name\":\"q\"},{\"name\":\"r\"},{\"name\":\"q\"}]}",
           "t.json: queues[2].name: duplicate queue \"q\" (first defined in t.json at queues[0])");
    REJECT("{\"agents\":[{\"id\":\"a\"},{\"id\":\"a\"}]}", "t.json: agents[1].id: duplicate agent \"a\"");
    REJECT("{\"channels\":[{\"name\":\"c\",\"plugin\":\"p\"},{\"name\":\"c\",\"plugin\":\"p\"}]}",
           "t.json: channels[1].name: duplicate channel \"c\"");
    REJECT("{\"schedules\":[{\"name\":\"s\"},{\"name\":\"s\"}]}", "t.json: schedules[1].name: duplicate schedule \"s\"");
    REJECT("{\"topics\":[\"Afval\",\"Afval\"]}", "t.json: topics[1]: duplicate topic \"Afval\"");
    REJECT("{\"queues\":[{\"name\":\"q\",\"nam\":\"x\",\"name\":\"y\"}]}", "t.json:1:");
}
END_TEST

START_TEST(error_references)
{
    REJECT("{\"schedules\":[{\"name\":\"kantoor\"}],\"queues\":[{\"name\":\"q\",\"schedule\":\"kantor\"}]}",
           "t.json: queues[0].schedule: unknown schedule \"kantor\" (did you mean \"kantoor\"?)");
    REJECT("{\"queues\":[{\"name\":\"q\",\"max_wait_s\":10,\"overflow\":\"elders\"}]}",
           "t.json: queues[0].overflow: unknown queue \"elders\"");
    REJECT("{\"queues\":[{\"name\":\"q\",\"fallback\":\"nergens\"}]}", "t.json: queues[0].fallback: unknown queue \"nergens\"");
    REJECT("{\"queues\":[{\"name\":\"q\"}],\"agents\":[{\"id\":\"a\",\"queues\":[\"q\",\"p\"]}]}",
           "t.json: agents[0].queues[1]: unknown queue \"p\"");
    REJECT("{\"channels\":[{\"name\":\"c\",\"plugin\":\"p\",\"queue\":\"x\"}]}", "t.json: channels[0].queue: unknown queue \"x\"");
    REJECT("{\"queues\":[{\"name\":\"q\"},{\"name\":\"r\",\"overflow\":\"q\"}]}",
           "t.json: queues[1].overflow: needs \"max_wait_s\" > 0");
    REJECT("{\"queues\":[{\"name\":\"q\",\"max_wait_s\":10,\"overflow\":\"q\"}]}",
           "t.json: queues[0].overflow: queue \"q\" cannot overflow to itself");
    REJECT("{\"queues\":[{\"name\":\"q\",\"max_wait_s\":10}]}", "t.json: queues[0].max_wait_s: is 10 but no \"overflow\"");
}
END_TEST

START_TEST(error_times_and_dates)
{
    REJECT("{\"schedules\":[{\"name\":\"s\",\"week\":{\"mon\":[\"8:00-17:00\"]}}]}",
           "t.json: schedules[0].week.mon[0]: invalid time range \"8:00-17:00\" (expected \"HH:MM-HH:MM\"");
    REJECT("{\"schedules\":[{\"name\":\"s\",\"week\":{\"tue\":[\"08:00-12:00\",\"17:00-08:00\"]}}]}",
           "t.json: schedules[0].week.tue[1]: \"17:00-08:00\": the start must be before the end");
    REJECT("{\"schedules\":[{\"name\":\"s\",\"week\":{\"wed\":[\"08:00-12:00\",\"11:00-13:00\"]}}]}",
           "t.json: schedules[0].week.wed: ranges 08:00-12:00 and 11:00-13:00 overlap");
    REJECT("{\"schedules\":[{\"name\":\"s\",\"week\":{\"thu\":[\"24:00-24:00\"]}}]}", "invalid time range \"24:00-24:00\"");
    REJECT("{\"schedules\":[{\"name\":\"s\",\"holidays\":[\"2026-02-29\"]}]}",
           "t.json: schedules[0].holidays[0]: invalid date \"2026-02-29\"");
    REJECT("{\"schedules\":[{\"name\":\"s\",\"holidays\":[\"2026-13-01\"]}]}", "invalid date \"2026-13-01\"");
    acdm_config *cfg = parse("{\"schedules\":[{\"name\":\"s\",\"week\":{\"fri\":[\"13:00-24:00\",\"00:00-08:00\"]},"
                             "\"holidays\":[\"2028-02-29\",\"2026-12-25\"]}]}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    const acdm_schedule_def *s = &cfg->schedules[0];
    ck_assert_int_eq(s->n_week[5], 2);
    ck_assert_int_eq(s->week[5][0].from_min, 0); /* sorted */
    ck_assert_int_eq(s->week[5][1].to_min, 1440);
    ck_assert_str_eq(s->holidays[0], "2026-12-25");
    acdm_config_free(cfg);
}
END_TEST

START_TEST(error_syntax_line_col)
{
    REJECT("{\n  \"queues\": [\n    {\"name\": \"q\",}\n  ]\n}", "t.json:3:");
    ck_assert(strncmp(errbuf, "t.json:3:", 9) == 0);
    REJECT("", "t.json:");
}
END_TEST

START_TEST(many_errors_at_once)
{
    REJECT("{\"listen\":\"x:0\",\"queues\":[{\"name\":\"a b\",\"strategy\":\"fastest\",\"priority\":-5},"
           "{\"name\":\"c\",\"schedule\":\"none\"}],\"agents\":[{\"id\":\"a\",\"queues\":[\"zz\"]}],\"typo\":1}",
           "listen: port 0", "queues[0].name: invalid name", "queues[0].strategy: unknown strategy",
           "queues[0].priority: -5 is out of range", "queues[1].schedule: unknown schedule \"none\"",
           "agents[0].queues[0]: unknown queue \"zz\"", "(top level): unknown key \"typo\"");
    ck_assert_int_eq(count_lines(errbuf), 7);
    /* every line names the file */
    for (char *line = errbuf; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        ck_assert(strncmp(line, "t.json: ", 8) == 0);
}
END_TEST

START_TEST(error_buffer_small)
{
    char small[100];
    acdm_config *cfg = NULL;
    int rc = acdm_config_parse("t.json", "{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5}", &cfg, small, sizeof small);
    ck_assert_int_eq(rc, ACDM_EINVAL);
    ck_assert_ptr_null(cfg);
    ck_assert_uint_lt(strlen(small), sizeof small);
    ck_assert_ptr_nonnull(strstr(small, "more problems not shown"));
    ck_assert_int_eq(acdm_config_parse("t.json", "{\"a\":1}", &cfg, NULL, 0), ACDM_EINVAL);
}
END_TEST

/* ------------------------------------------------------------------ fragments */

static char tmpdir[64];

static void write_file(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void make_tree(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/acdm-cfg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    char d[128];
    snprintf(d, sizeof d, "%s/acdm.d", tmpdir);
    ck_assert_int_eq(mkdir(d, 0700), 0);
    write_file("acdm.json", "{\"listen\":\"127.0.0.1:9000\",\"queues\":[{\"name\":\"algemeen\"}],"
                            "\"topics\":[\"Afval\"]}");
}

/* Removes the tree of make_tree (two levels). */
static void remove_tree(void)
{
    if (!tmpdir[0]) return;
    char d[128], p[512];
    snprintf(d, sizeof d, "%s/acdm.d", tmpdir);
    DIR *dir = opendir(d);
    struct dirent *e;
    while (dir && (e = readdir(dir)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", d, e->d_name);
            unlink(p);
        }
    if (dir) closedir(dir);
    rmdir(d);
    snprintf(p, sizeof p, "%s/acdm.json", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    tmpdir[0] = '\0';
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    static char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static acdm_config *load_tree(void)
{
    char path[128];
    acdm_config *cfg = NULL;
    snprintf(path, sizeof path, "%s/acdm.json", tmpdir);
    errbuf[0] = '\0';
    int rc = acdm_config_load(path, &cfg, errbuf, sizeof errbuf);
    ck_assert_int_eq(rc == 0, cfg != NULL);
    return cfg;
}

START_TEST(fragments_add)
{
    make_tree();
    write_file("acdm.d/20-email.json", "{\"queues\":[{\"name\":\"email\",\"strategy\":\"linear\"}],"
                                       "\"agents\":[{\"id\":\"a9\",\"queues\":[\"algemeen\",\"email\"]}]}");
    write_file("acdm.d/10-wmo.json", "{\"queues\":[{\"name\":\"wmo\",\"fallback\":\"email\"}],\"topics\":[\"Wmo\"],"
                                     "\"log_level\":\"debug\"}");
    write_file("acdm.d/notes.txt", "not json, ignored");
    write_file("acdm.d/.hidden.json", "{broken");
    acdm_config *cfg = load_tree();
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert_uint_eq(cfg->n_queues, 3);
    ck_assert_str_eq(cfg->queues[0].name, "algemeen");
    ck_assert_str_eq(cfg->queues[1].name, "wmo"); /* 10-... before 20-... */
    ck_assert_str_eq(cfg->queues[2].name, "email");
    ck_assert_uint_eq(cfg->n_topics, 2);
    ck_assert_str_eq(cfg->log_level, "debug"); /* main file lacks it: a fragment may set it */
    ck_assert_int_eq(cfg->listen_port, 9000);
    ck_assert_uint_eq(json_array_size(json_object_get(cfg->root, "queues")), 3);
    acdm_config_free(cfg);
}
END_TEST

START_TEST(fragments_errors_name_the_file)
{
    make_tree();
    write_file("acdm.d/10-a.json", "{\"queues\":[{\"name\":\"x\"},{\"name\":\"algemeen\"}],\"listen\":\"0.0.0.0:1\"}");
    write_file("acdm.d/20-b.json", "{\"queues\":[{\"name\":\"y\",\"strategy\":\"fastest\"}]}");
    write_file("acdm.d/30-c.json", "{\"agents\":[{\"id\":\"a\"}],\n\"queues\": [}");
    acdm_config *cfg = load_tree();
    ck_assert_ptr_null(cfg);
    char want[512];
    snprintf(want, sizeof want, "%s/acdm.d/10-a.json: queues[1].name: duplicate queue \"algemeen\" "
             "(first defined in %s/acdm.json at queues[0])", tmpdir, tmpdir);
    ck_assert_msg(strstr(errbuf, want), "expected \"%s\" in:\n%s", want, errbuf);
    snprintf(want, sizeof want, "%s/acdm.d/10-a.json: listen: already set in %s/acdm.json", tmpdir, tmpdir);
    ck_assert_msg(strstr(errbuf, want), "expected \"%s\" in:\n%s", want, errbuf);
    snprintf(want, sizeof want, "%s/acdm.d/20-b.json: queues[0].strategy: unknown strategy \"fastest\"", tmpdir);
    ck_assert_msg(strstr(errbuf, want), "expected \"%s\" in:\n%s", want, errbuf);
    snprintf(want, sizeof want, "%s/acdm.d/30-c.json:2:", tmpdir);
    ck_assert_msg(strstr(errbuf, want), "expected \"%s\" in:\n%s", want, errbuf);
}
END_TEST

START_TEST(fragment_references_across_files)
{
    make_tree();
    write_file("acdm.d/a.json", "{\"agents\":[{\"id\":\"a\",\"queues\":[\"later\",\"nope\"]}]}");
    write_file("acdm.d/b.json", "{\"queues\":[{\"name\":\"later\"}]}");
    acdm_config *cfg = load_tree();
    ck_assert_ptr_null(cfg);
    char want[256];
    snprintf(want, sizeof want, "%s/acdm.d/a.json: agents[0].queues[1]: unknown queue \"nope\"", tmpdir);
    ck_assert_msg(strstr(errbuf, want), "expected \"%s\" in:\n%s", want, errbuf);
    ck_assert_int_eq(count_lines(errbuf), 1); /* "later" from b.json is known */
}
END_TEST

START_TEST(example_fragment_beside_shipped_config)
{
    make_tree();
    write_file("acdm.json", slurp("conf/acdm.json"));
    write_file("acdm.d/50-wmo.json", slurp("conf/examples/fragment-wmo.json"));
    acdm_config *cfg = load_tree();
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert_ptr_nonnull(acdm_config_queue(cfg, "wmo"));
    ck_assert_ptr_nonnull(acdm_config_queue(cfg, "algemeen"));
    acdm_config_free(cfg);
}
END_TEST

START_TEST(missing_file)
{
    acdm_config *cfg = NULL;
    int rc = acdm_config_load("/nonexistent/acdm.json", &cfg, errbuf, sizeof errbuf);
    ck_assert_int_eq(rc, ACDM_EINVAL);
    ck_assert_ptr_nonnull(strstr(errbuf, "/nonexistent/acdm.json: unable to open"));
}
END_TEST

/* ------------------------------------------------------------------ schedules */

static acdm_config *kantoor(void)
{
    acdm_config *cfg = NULL;
    int rc = acdm_config_load("conf/acdm.json", &cfg, errbuf, sizeof errbuf);
    ck_assert_msg(rc == 0, "%s", errbuf);
    return cfg;
}

#define MS(sec) ((int64_t)(sec) * 1000)

START_TEST(schedule_open_closed)
{
    ck_assert_int_eq(acdm_set_timezone("Europe/Amsterdam"), 0);
    acdm_config *cfg = kantoor();
    const acdm_schedule_def *s = acdm_config_schedule(cfg, "kantoor");
    ck_assert(acdm_schedule_open_at(s, MS(1774256400)));        /* Mon 2026-03-23 10:00 CET */
    ck_assert(!acdm_schedule_open_at(s, MS(1774083600)));       /* Sat 2026-03-21 10:00 */
    ck_assert(!acdm_schedule_open_at(s, MS(1775462400)));       /* Mon 2026-04-06 10:00, Tweede Paasdag */
    ck_assert(acdm_schedule_open_at(s, MS(1775548800)));        /* Tue 2026-04-07 10:00 CEST */
    ck_assert(!acdm_schedule_open_at(s, MS(1774249140)));       /* Mon 07:59 */
    ck_assert(acdm_schedule_open_at(s, MS(1774249200)));        /* Mon 08:00 */
    ck_assert(acdm_schedule_open_at(s, MS(1774281600) - 1));    /* Mon 16:59:59.999 */
    ck_assert(!acdm_schedule_open_at(s, MS(1774281600)));       /* Mon 17:00 */
    ck_assert(acdm_schedule_open_at(NULL, MS(1774083600)));     /* no schedule: always open */
    acdm_config_free(cfg);
}
END_TEST

START_TEST(schedule_next_change)
{
    ck_assert_int_eq(acdm_set_timezone("Europe/Amsterdam"), 0);
    acdm_config *cfg = kantoor();
    const acdm_schedule_def *s = acdm_config_schedule(cfg, "kantoor");
    ck_assert_int_eq(acdm_schedule_next_change(s, MS(1774249140)), MS(1774249200));  /* 07:59 -> 08:00 */
    ck_assert_int_eq(acdm_schedule_next_change(s, MS(1774249200)), MS(1774281600));  /* 08:00 -> 17:00 */
    ck_assert_int_eq(acdm_schedule_next_change(s, MS(1774256400) + 123), MS(1774281600));
    /* Friday 17:30: nothing until Monday, but the next midnight may matter */
    ck_assert_int_eq(acdm_schedule_next_change(s, MS(1774024200)), MS(1774051200 - 3600));
    /* never more than 24 h ahead */
    int64_t t = MS(1774083600);
    ck_assert_int_le(acdm_schedule_next_change(s, t), t + MS(86400));
    ck_assert_int_eq(acdm_schedule_next_change(NULL, t), t + MS(86400));
    /* walking next_change over a week visits every flip and open_at agrees in between */
    int flips = 0;
    bool was = acdm_schedule_open_at(s, MS(1774051200));
    for (int64_t x = MS(1774051200); x < MS(1774051200 + 7 * 86400);) {
        int64_t n = acdm_schedule_next_change(s, x);
        ck_assert_int_gt(n, x);
        ck_assert(acdm_schedule_open_at(s, n - 1) == acdm_schedule_open_at(s, x));
        bool now = acdm_schedule_open_at(s, n);
        flips += now != was;
        was = now;
        x = n;
    }
    ck_assert_int_eq(flips, 10); /* Mon..Fri, open and close */
    acdm_config_free(cfg);
}
END_TEST

START_TEST(schedule_dst)
{
    ck_assert_int_eq(acdm_set_timezone("Europe/Amsterdam"), 0);
    acdm_config *cfg = parse("{\"schedules\":[{\"name\":\"zon\",\"week\":{\"sun\":[\"08:00-17:00\"]}},"
                             "{\"name\":\"gat\",\"week\":{\"sun\":[\"02:30-04:00\"]}},"
                             "{\"name\":\"nacht\",\"week\":{\"sun\":[\"00:00-02:30\"]}}]}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    const acdm_schedule_def *zon = acdm_config_schedule(cfg, "zon");
    const acdm_schedule_def *gat = acdm_config_schedule(cfg, "gat");
    const acdm_schedule_def *nacht = acdm_config_schedule(cfg, "nacht");
    /* 06:30 UTC is 08:30 CEST on 2026-03-29 (after the change) but 07:30 CET a week before */
    ck_assert(acdm_schedule_open_at(zon, MS(1774765800)));
    ck_assert(!acdm_schedule_open_at(zon, MS(1774161000)));
    /* the DST day opens at 08:00 CEST = 06:00 UTC */
    ck_assert_int_eq(acdm_schedule_next_change(zon, MS(1774744200)), MS(1774764000));
    /* 02:30 does not exist on 2026-03-29: at 01:59:59 CET closed, at 03:00 CEST open */
    ck_assert(!acdm_schedule_open_at(gat, MS(1774746000) - 1000));
    ck_assert(acdm_schedule_open_at(gat, MS(1774746000)));
    ck_assert_int_eq(acdm_schedule_next_change(gat, MS(1774744200)), MS(1774746000));
    /* 2026-10-25: 02:00-03:00 occurs twice; 00:00-02:30 is open, closed, then open again */
    ck_assert(acdm_schedule_open_at(nacht, MS(1792887600)));   /* 02:20 CEST */
    ck_assert(!acdm_schedule_open_at(nacht, MS(1792888200)));  /* 02:30 CEST */
    ck_assert(acdm_schedule_open_at(nacht, MS(1792890600)));   /* 02:10 CET */
    ck_assert(!acdm_schedule_open_at(nacht, MS(1792891800)));  /* 02:30 CET */
    ck_assert_int_eq(acdm_schedule_next_change(nacht, MS(1792887600)), MS(1792888200));
    ck_assert_int_eq(acdm_schedule_next_change(nacht, MS(1792888200)), MS(1792890000));
    ck_assert_int_eq(acdm_schedule_next_change(nacht, MS(1792890600)), MS(1792891800));
    acdm_config_free(cfg);
}
END_TEST

/* Property: over the days around both DST changes of 2026, next_change never skips a flip
 * (found by stepping minute by minute) and open_at does not change before it. */
START_TEST(schedule_next_change_never_skips)
{
    ck_assert_int_eq(acdm_set_timezone("Europe/Amsterdam"), 0);
    acdm_config *cfg = parse("{\"schedules\":[{\"name\":\"a\",\"week\":{\"sun\":[\"00:00-02:30\",\"02:45-03:15\",\"08:00-24:00\"],"
                             "\"sat\":[\"22:00-24:00\"],\"mon\":[\"00:00-01:00\",\"02:00-03:00\"]},\"holidays\":[\"2026-03-30\"]}]}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    const acdm_schedule_def *s = &cfg->schedules[0];
    static const int64_t starts[] = {1774656000, 1792800000}; /* 2026-03-28 and 2026-10-24 00:00 UTC */
    for (size_t k = 0; k < 2; k++)
        for (int64_t t = MS(starts[k]); t < MS(starts[k] + 3 * 86400); t += MS(7 * 60 + 13)) {
            int64_t n = acdm_schedule_next_change(s, t);
            bool at = acdm_schedule_open_at(s, t);
            int64_t flip = (t / 60000 + 1) * 60000;
            while (flip <= t + MS(86400) && acdm_schedule_open_at(s, flip) == at) flip += 60000;
            ck_assert_msg(n > t && n <= flip, "t=%lld: next_change %lld, but it flips at %lld",
                          (long long)t, (long long)n, (long long)flip);
            ck_assert(acdm_schedule_open_at(s, n - 1) == at);
        }
    acdm_config_free(cfg);
}
END_TEST

START_TEST(timezone_set)
{
    ck_assert_int_eq(acdm_set_timezone("Europe/Atlantis"), ACDM_EINVAL);
    ck_assert_int_eq(acdm_set_timezone("../../etc/passwd"), ACDM_EINVAL);
    ck_assert_int_eq(acdm_set_timezone("/etc/passwd"), ACDM_EINVAL);
    ck_assert_int_eq(acdm_set_timezone(""), ACDM_EINVAL);
    ck_assert_int_eq(acdm_set_timezone("UTC"), 0);
    acdm_config *cfg = parse("{\"schedules\":[{\"name\":\"s\",\"week\":{\"mon\":[\"08:00-17:00\"]}}]}");
    ck_assert_ptr_nonnull(cfg);
    /* Mon 2026-03-23 07:30 UTC: open in UTC, in Amsterdam it is 08:30 as well; 07:00 UTC differs */
    ck_assert(!acdm_schedule_open_at(&cfg->schedules[0], MS(1774249200)));
    ck_assert_int_eq(acdm_set_timezone("Europe/Amsterdam"), 0);
    ck_assert(acdm_schedule_open_at(&cfg->schedules[0], MS(1774249200)));
    acdm_config_free(cfg);
}
END_TEST

/* ------------------------------------------------------------------ oidc block */

START_TEST(oidc_read_with_defaults)
{
    acdm_config *cfg = parse("{}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert(!cfg->oidc.enabled);
    acdm_config_free(cfg);
    cfg = parse("{\"oidc\":{\"issuer\":\"https://login.microsoftonline.com/t/v2.0\",\"audience\":\"api://acdm\","
                "\"jwks_file\":\"conf/jwks.json\",\"role_map\":{\"ACDM.Admin\":\"admin\",\"ACDM.Agent\":\"agent\"}}}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert(cfg->oidc.enabled);
    ck_assert_str_eq(cfg->oidc.issuer, "https://login.microsoftonline.com/t/v2.0");
    ck_assert_str_eq(cfg->oidc.audience, "api://acdm");
    ck_assert_str_eq(cfg->oidc.jwks_file, "conf/jwks.json");
    ck_assert_ptr_null(cfg->oidc.jwks_url);
    ck_assert_str_eq(cfg->oidc.role_claim, "roles");
    ck_assert_str_eq(cfg->oidc.agent_claim, "preferred_username");
    ck_assert_int_eq(cfg->oidc.leeway_s, 60);
    ck_assert_str_eq(json_string_value(json_object_get(cfg->oidc.role_map, "ACDM.Agent")), "agent");
    acdm_config_free(cfg);
    cfg = parse("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_url\":\"https://idp/keys\","
                "\"role_claim\":\"groups\",\"agent_claim\":\"upn\",\"leeway_s\":0,\"role_map\":{\"g1\":\"supervisor\"}}}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert_str_eq(cfg->oidc.jwks_url, "https://idp/keys");
    ck_assert_str_eq(cfg->oidc.role_claim, "groups");
    ck_assert_str_eq(cfg->oidc.agent_claim, "upn");
    ck_assert_int_eq(cfg->oidc.leeway_s, 0);
    acdm_config_free(cfg);
}
END_TEST

START_TEST(oidc_browser_sign_in)
{
    acdm_config *cfg = parse("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"role_map\":{\"x\":\"admin\"}}}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert_ptr_null(cfg->oidc.authorization_endpoint);
    ck_assert_ptr_null(cfg->oidc.token_endpoint);
    ck_assert_ptr_null(cfg->oidc.client_id);
    ck_assert_str_eq(cfg->oidc.scope, "openid profile");
    ck_assert_str_eq(cfg->oidc.use_token, "id_token");
    acdm_config_free(cfg);
    cfg = parse("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"role_map\":{\"x\":\"admin\"},"
                "\"authorization_endpoint\":\"https://idp/authorize\",\"token_endpoint\":\"http://127.0.0.1:9/token\","
                "\"client_id\":\"c1\",\"scope\":\"openid api://acdm/x\",\"use_token\":\"access_token\"}}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert_str_eq(cfg->oidc.authorization_endpoint, "https://idp/authorize");
    ck_assert_str_eq(cfg->oidc.token_endpoint, "http://127.0.0.1:9/token");
    ck_assert_str_eq(cfg->oidc.client_id, "c1");
    ck_assert_str_eq(cfg->oidc.scope, "openid api://acdm/x");
    ck_assert_str_eq(cfg->oidc.use_token, "access_token");
    acdm_config_free(cfg);
    REJECT("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"role_map\":{\"x\":\"admin\"},"
           "\"authorization_endpoint\":\"https://idp/authorize\",\"client_id\":\"c1\"}}",
           "t.json: oidc: set \"authorization_endpoint\", \"token_endpoint\" and \"client_id\" together");
    REJECT("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"role_map\":{\"x\":\"admin\"},"
           "\"authorization_endpoint\":\"idp/authorize\",\"token_endpoint\":\"https://idp/token\",\"client_id\":\"c1\"}}",
           "t.json: oidc.authorization_endpoint: invalid URL \"idp/authorize\"");
    REJECT("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"role_map\":{\"x\":\"admin\"},"
           "\"use_token\":\"refresh_token\",\"scope\":\"\"}}",
           "t.json: oidc.use_token: expected \"id_token\" or \"access_token\", got \"refresh_token\"",
           "t.json: oidc.scope: must not be empty");
}
END_TEST

START_TEST(oidc_errors)
{
    REJECT("{\"oidc\":{\"audience\":\"a\",\"jwks_file\":\"f\",\"role_map\":{\"x\":\"admin\"}}}",
           "t.json: oidc: missing required key \"issuer\" in an oidc settings");
    REJECT("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"role_map\":{\"x\":\"admin\"}}}",
           "t.json: oidc: missing \"jwks_file\" or \"jwks_url\"");
    REJECT("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"jwks_url\":\"https://x/k\",\"role_map\":{\"x\":\"admin\"}}}",
           "t.json: oidc: set either \"jwks_file\" or \"jwks_url\", not both");
    REJECT("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_url\":\"ftp://x/k\",\"role_map\":{\"x\":\"admin\"}}}",
           "t.json: oidc.jwks_url: invalid URL \"ftp://x/k\"");
    REJECT("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"role_map\":{\"x\":\"boss\",\"y\":3}}}",
           "t.json: oidc.role_map.x: expected \"admin\", \"supervisor\" or \"agent\", got \"boss\"",
           "t.json: oidc.role_map.y: expected \"admin\", \"supervisor\" or \"agent\", got an integer");
    REJECT("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"role_map\":{}}}",
           "t.json: oidc.role_map: is empty");
    REJECT("{\"oidc\":{\"issuer\":\"i\",\"audience\":\"a\",\"jwks_file\":\"f\",\"role_map\":{\"x\":\"admin\"},\"leeway_s\":7200}}",
           "t.json: oidc.leeway_s: 7200 is out of range (0..3600)");
    REJECT("{\"oidc\":{\"issuer\":\"\",\"audience\":\"a\",\"jwks_file\":\"f\",\"role_map\":{\"x\":\"admin\"},\"audiance\":1}}",
           "t.json: oidc.issuer: must not be empty", "unknown key \"audiance\" (did you mean \"audience\"?)");
    REJECT("{\"oidc\":[]}", "t.json: oidc: expected an oidc settings object, got an array");
}
END_TEST

/* ------------------------------------------------------------------ screen_pop block (R50) */

START_TEST(screen_pop_read_with_defaults)
{
    acdm_config *cfg = parse("{}");
    ck_assert_ptr_nonnull(cfg);
    ck_assert(!cfg->screen_pop.enabled);
    acdm_config_free(cfg);
    cfg = parse("{\"screen_pop\":{\"url\":\"https://zaak.example/klant?tel={from}&kanaal={channel}\"}}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert(cfg->screen_pop.enabled);
    ck_assert_str_eq(cfg->screen_pop.url, "https://zaak.example/klant?tel={from}&kanaal={channel}");
    ck_assert_int_eq(cfg->screen_pop.timeout_ms, 2000);
    acdm_config_free(cfg);
    cfg = parse("{\"screen_pop\":{\"url\":\"http://127.0.0.1:9/k/{bericht}/{queue}/{kind}?c={conversation}\",\"timeout_ms\":500}}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert_int_eq(cfg->screen_pop.timeout_ms, 500);
    acdm_config_free(cfg);
}
END_TEST

START_TEST(screen_pop_errors)
{
    REJECT("{\"screen_pop\":{}}", "t.json: screen_pop: missing required key \"url\"");
    REJECT("{\"screen_pop\":{\"url\":\"ftp://zaak/x\"}}", "t.json: screen_pop.url: invalid URL \"ftp://zaak/x\"");
    REJECT("{\"screen_pop\":{\"url\":\"https://zaak/x?tel={telefoon}\"}}",
           "t.json: screen_pop.url: unknown placeholder \"{telefoon}\"");
    REJECT("{\"screen_pop\":{\"url\":\"https://zaak/x?tel={from\"}}", "t.json: screen_pop.url: unknown placeholder");
    REJECT("{\"screen_pop\":{\"url\":\"https://zaak/x\",\"timeout_ms\":10}}",
           "t.json: screen_pop.timeout_ms: 10 is out of range (100..60000)");
    REJECT("{\"screen_pop\":{\"url\":\"https://zaak/x\",\"timeout\":10}}", "unknown key \"timeout\"");
    REJECT("{\"screen_pop\":\"https://zaak/x\"}", "t.json: screen_pop: expected a screen-pop settings object, got a string");
}
END_TEST

/* ------------------------------------------------------------------ reports block (R29) */

START_TEST(reports_daily_export)
{
    acdm_config *cfg = parse("{}");
    ck_assert_ptr_null(cfg->reports.daily_export_dir);           /* no daily export */
    acdm_config_free(cfg);
    cfg = parse("{\"reports\":{\"daily_export_dir\":\"/srv/bi/acdm\"}}");
    ck_assert_str_eq(cfg->reports.daily_export_dir, "/srv/bi/acdm");
    ck_assert_str_eq(cfg->reports.daily_export_interval, "1h");
    ck_assert_int_eq(cfg->reports.daily_export_delay_min, 5);
    acdm_config_free(cfg);
    cfg = parse("{\"reports\":{\"daily_export_dir\":\"bi\",\"daily_export_interval\":\"15m\",\"daily_export_delay_min\":90}}");
    ck_assert_str_eq(cfg->reports.daily_export_interval, "15m");
    ck_assert_int_eq(cfg->reports.daily_export_delay_min, 90);
    acdm_config_free(cfg);
    REJECT("{\"reports\":{\"daily_export_dir\":\"\"}}", "t.json: reports.daily_export_dir: must not be empty");
    REJECT("{\"reports\":{\"daily_export_dir\":\"bi\",\"daily_export_interval\":\"5m\"}}",
           "t.json: reports.daily_export_interval: expected \"15m\", \"1h\" or \"1d\", got \"5m\"");
    REJECT("{\"reports\":{\"daily_export_delay_min\":-1}}", "t.json: reports.daily_export_delay_min: -1 is out of range (0..720)");
    REJECT("{\"reports\":{\"daily_export_dir\":7}}", "t.json: reports.daily_export_dir: expected a string");
    REJECT("{\"reports\":{\"mail_to\":\"x\"}}", "unknown key \"mail_to\"");
    /* the mail (R66) */
    cfg = parse("{\"reports\":{\"mail\":{\"smtp_url\":\"smtps://mail.example.nl:465\",\"from\":\"acdm@example.nl\","
                "\"to\":\"a@example.nl, b@example.nl\",\"username\":\"acdm\",\"password_file\":\"/etc/acdm/smtp.pw\"}}}");
    ck_assert(cfg->reports.mail.enabled);
    ck_assert_str_eq(cfg->reports.mail.schedule, "weekly");
    ck_assert_str_eq(cfg->reports.mail.format, "xlsx");
    ck_assert_str_eq(cfg->reports.mail.password_file, "/etc/acdm/smtp.pw");
    acdm_config_free(cfg);
    cfg = parse("{}");
    ck_assert(!cfg->reports.mail.enabled);
    acdm_config_free(cfg);
    REJECT("{\"reports\":{\"mail\":{\"from\":\"a@example.nl\",\"to\":\"b@example.nl\"}}}",
           "t.json: reports.mail: missing required key \"smtp_url\"");
    REJECT("{\"reports\":{\"mail\":{\"smtp_url\":\"smtp://m\",\"from\":\"a@example.nl\",\"to\":\"b@example.nl,\"}}}",
           "t.json: reports.mail.to: expected e-mail addresses");
    REJECT("{\"reports\":{\"mail\":{\"smtp_url\":\"smtp://m\",\"from\":\"a@@example.nl\",\"to\":\"b@example.nl\"}}}",
           "t.json: reports.mail.from: expected e-mail addresses");
    REJECT("{\"reports\":{\"mail\":{\"smtp_url\":\"smtp://m\",\"from\":\"a@example.nl\",\"to\":\"b@example.nl\",\"format\":\"docx\"}}}",
           "t.json: reports.mail.format: expected \"xlsx\", \"pdf\" or \"csv\", got \"docx\"");
}
END_TEST

/* ------------------------------------------------------------------ standard answers (snippets) */

START_TEST(snippets_read_and_checked)
{
    acdm_config *cfg = parse("{\"queues\":[{\"name\":\"q\"}],\"snippets\":["
                             "{\"id\":\"groet\",\"title\":\"Groet\",\"text\":\"Dag {klant}\"},"
                             "{\"id\":\"pas\",\"title\":\"Paspoort\",\"text\":\"...\",\"queue\":\"q\",\"language\":\"nl\"}]}");
    ck_assert_msg(cfg != NULL, "%s", errbuf);
    ck_assert_uint_eq(cfg->n_snippets, 2);
    ck_assert_str_eq(cfg->snippets[0].text, "Dag {klant}");
    ck_assert_ptr_null(cfg->snippets[0].queue);
    ck_assert_ptr_null(cfg->snippets[0].language);
    ck_assert_str_eq(cfg->snippets[1].queue, "q");
    ck_assert_str_eq(cfg->snippets[1].language, "nl");
    acdm_config_free(cfg);
    REJECT("{\"queues\":[{\"name\":\"q\"}],\"snippets\":[{\"id\":\"a\",\"title\":\"T\",\"text\":\"x\",\"queue\":\"r\"}]}",
           "snippets[0].queue", "unknown queue \"r\"");
    REJECT("{\"queues\":[{\"name\":\"q\"}],\"snippets\":[{\"id\":\"a\",\"title\":\"T\",\"text\":\"x\",\"language\":\"NL\"}]}",
           "snippets[0].language", "language code");
    REJECT("{\"queues\":[{\"name\":\"q\"}],\"snippets\":[{\"id\":\"a\",\"title\":\"T\"}]}", "snippets[0]", "text");
    REJECT("{\"queues\":[{\"name\":\"q\"}],\"snippets\":[{\"id\":\"a\",\"title\":\"T\",\"text\":\"x\"},"
           "{\"id\":\"a\",\"title\":\"U\",\"text\":\"y\"}]}", "snippet", "\"a\"");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, shipped_config_validates);
    tcase_add_test(tc, snippets_read_and_checked);
    tcase_add_test(tc, examples_validate);
    tcase_add_test(tc, defaults_applied);
    tcase_add_test(tc, values_read);
    tcase_add_test(tc, screen_pop_read_with_defaults);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, error_unknown_key_hint);
    tcase_add_test(tc, screen_pop_errors);
    tcase_add_test(tc, reports_daily_export);
    tcase_add_test(tc, error_unknown_strategy);
    tcase_add_test(tc, error_types);
    tcase_add_test(tc, error_ranges);
    tcase_add_test(tc, error_names);
    tcase_add_test(tc, error_duplicates);
    tcase_add_test(tc, error_references);
    tcase_add_test(tc, error_times_and_dates);
    tcase_add_test(tc, error_syntax_line_col);
    tcase_add_test(tc, many_errors_at_once);
    tcase_add_test(tc, error_buffer_small);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, oidc_read_with_defaults);
    tcase_add_test(tc, oidc_browser_sign_in);
    tcase_add_test(tc, oidc_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("fragments");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, fragments_add);
    tcase_add_test(tc, fragments_errors_name_the_file);
    tcase_add_checked_fixture(tc, NULL, remove_tree);
    tcase_add_test(tc, fragment_references_across_files);
    tcase_add_test(tc, example_fragment_beside_shipped_config);
    suite_add_tcase(s, tc);

    tc = tcase_create("schedule");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, schedule_open_closed);
    tcase_add_test(tc, schedule_next_change);
    tcase_add_test(tc, schedule_dst);
    tcase_add_test(tc, schedule_next_change_never_skips);
    tcase_add_test(tc, timezone_set);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
