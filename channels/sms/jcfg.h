/* jcfg.h -- the small readers of an instance's JSON config (jansson) that the channels share:
 * a string, a bounded integer, and a secret kept in a file whose path the config names. Each
 * writes the user-visible error ("<key> is required", "<key> must be a non-empty string",
 * "<key> must be an integer from <lo> to <hi>", "<key>: cannot read <path>", "<key>: <path> is
 * empty") into err and returns -1; 0 on success. Shared by channels/sms, channels/whatsapp and
 * channels/webchat (they build this file too: see their plugin.mk). */
#ifndef ACDM_JCFG_H
#define ACDM_JCFG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* o[key] as a new string in *out. Absent or null: an error when required, else a copy of def
 * (NULL when def is NULL). Present: must be a non-empty string. */
int jcfg_str(json_t *o, const char *key, bool required, const char *def, char **out, char *err, size_t el);

/* o[key] as an int in lo..hi into *out; def when absent. */
int jcfg_int(json_t *o, const char *key, int def, int lo, int hi, int *out, char *err, size_t el);

/* o[key] is the path of a file whose first line (trailing blanks cut) is the secret, into *out
 * (a new string). Absent or null: an error when required, else *out = NULL. An unreadable or
 * empty file is an error. */
int jcfg_secret(json_t *o, const char *key, bool required, char **out, char *err, size_t el);

#endif
