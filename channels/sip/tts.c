/* tts.c -- the prompt worker: renders typed text with espeak-ng (Dutch by default) and reads WAV
 * files, both converted to 8 kHz, off the SIP thread (its 20 ms media clock must never wait)
 * and off the core thread. Results go to the SIP thread as MQ_TTS_DONE. */
#include "sipint.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define TTS_MAX_BYTES (64u * 1024u * 1024u)

void tts_job_free(tts_job *j)
{
    if (!j) return;
    free(j->key); free(j->text); free(j->file); free(j->voice); free(j->command);
    sipa_clip_free(&j->clip);
    free(j);
}

static int read_all(int fd, uint8_t **out, size_t *len, size_t max)
{
    size_t cap = 65536, n = 0;
    uint8_t *b = malloc(cap);
    if (!b) return -1;
    for (;;) {
        if (n == cap) {
            if (cap >= max) { free(b); return -1; }
            uint8_t *g = realloc(b, cap * 2);
            if (!g) { free(b); return -1; }
            b = g;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { free(b); return -1; }
        if (r == 0) break;
        n += (size_t)r;
    }
    *out = b;
    *len = n;
    return 0;
}

static int render_file(const char *path, sipa_clip *out, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return -1; }
    uint8_t *b = NULL;
    size_t n = 0;
    int rc = read_all(fd, &b, &n, TTS_MAX_BYTES);
    close(fd);
    if (rc < 0) { snprintf(err, errlen, "%s: cannot read (or larger than 64 MB)", path); return -1; }
    char e[160];
    rc = sipa_wav_decode(b, n, out, e, sizeof e);
    free(b);
    if (rc < 0) snprintf(err, errlen, "%s: %s", path, e);
    return rc;
}

/* espeak-ng --stdin --stdout -v VOICE: the text on stdin (never on a command line or a shell),
 * a WAV on stdout. */
static int render_text(const tts_job *j, sipa_clip *out, char *err, size_t errlen)
{
    int in[2], outp[2];
    if (pipe2(in, O_CLOEXEC) < 0) { snprintf(err, errlen, "pipe: %s", strerror(errno)); return -1; }
    if (pipe2(outp, O_CLOEXEC) < 0) { close(in[0]); close(in[1]); snprintf(err, errlen, "pipe: %s", strerror(errno)); return -1; }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    char *argv[] = {j->command, "-v", j->voice, "-s", "150", "--stdin", "--stdout", NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, j->command, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(outp[1]);
    if (rc != 0) {
        close(in[1]); close(outp[0]);
        snprintf(err, errlen, "cannot run %s: %s", j->command, strerror(rc));
        return -1;
    }
    /* the text is small (<= 4 KB, one pipe buffer): write it all, then read the WAV */
    size_t tl = strlen(j->text), off = 0;
    while (off < tl) {
        ssize_t w = write(in[1], j->text + off, tl - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    (void)!write(in[1], "\n", 1);
    close(in[1]);
    uint8_t *b = NULL;
    size_t n = 0;
    int rrc = read_all(outp[0], &b, &n, TTS_MAX_BYTES);
    close(outp[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (rrc < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(b);
        snprintf(err, errlen, "%s -v %s failed (exit %d)", j->command, j->voice,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return -1;
    }
    char e[160];
    rc = sipa_wav_decode(b, n, out, e, sizeof e);
    free(b);
    if (rc < 0) { snprintf(err, errlen, "%s output: %s", j->command, e); return -1; }
    sipa_normalize(out);
    return 0;
}

int tts_render(const tts_job *j, sipa_clip *out, char *err, size_t errlen)
{
    if (j->file) return render_file(j->file, out, err, errlen);
    return render_text(j, out, err, errlen);
}

static void *tts_main(void *arg)
{
    sipp *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->tts_quit && !p->tts_jobs) pthread_cond_wait(&p->tts_cv, &p->mu);
        if (p->tts_quit) break;
        tts_job *j = p->tts_jobs;
        p->tts_jobs = j->next;
        pthread_mutex_unlock(&p->mu);
        j->rc = tts_render(j, &j->clip, j->err, sizeof j->err);
        smsg *m = smsg_new(p, MQ_TTS_DONE, 0);
        if (m) {
            m->ptr = j;
            if (ua_push(p, m) < 0) tts_job_free(j);
        } else tts_job_free(j);
        pthread_mutex_lock(&p->mu);
    }
    while (p->tts_jobs) {
        tts_job *j = p->tts_jobs;
        p->tts_jobs = j->next;
        tts_job_free(j);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int tts_start(sipp *p)
{
    p->tts_quit = false;
    if (pthread_create(&p->tts_thread, NULL, tts_main, p)) return -1;
    p->tts_running = true;
    return 0;
}

void tts_stop(sipp *p)
{
    if (!p->tts_running) return;
    pthread_mutex_lock(&p->mu);
    p->tts_quit = true;
    pthread_cond_signal(&p->tts_cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->tts_thread, NULL);
    p->tts_running = false;
}

void tts_submit(sipp *p, tts_job *j)
{
    pthread_mutex_lock(&p->mu);
    if (p->tts_quit || !p->tts_running) {
        pthread_mutex_unlock(&p->mu);
        tts_job_free(j);
        return;
    }
    tts_job **pp = &p->tts_jobs;
    while (*pp) pp = &(*pp)->next;
    j->next = NULL;
    *pp = j;
    pthread_cond_signal(&p->tts_cv);
    pthread_mutex_unlock(&p->mu);
}
