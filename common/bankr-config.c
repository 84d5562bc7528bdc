/* SPDX-License-Identifier: MIT */
#include <assert.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "bankr-config.h"
#include "json-strict.h"

const char *const bankr_config_keys[] = { "llmKey", "apiKey", "llmUrl", "apiUrl", NULL };

bool bankr_config_key_valid(const char *name) {
        return name && strv_contains((char *const *) bankr_config_keys, name);
}

bool bankr_config_key_is_secret(const char *name) {
        return name && (streq(name, "llmKey") || streq(name, "apiKey"));
}

BankrConfig *bankr_config_free(BankrConfig *c) {
        if (!c)
                return NULL;
        erase_and_free(c->llm_key);
        erase_and_free(c->api_key);
        free(c->llm_url);
        free(c->api_url);
        free(c);
        return NULL;
}

int bankr_config_path(char **ret) {
        const char *e = getenv("BANKR_CONFIG"), *home;
        char *p;

        if (!isempty(e))
                p = strdup(e);
        else {
                home = getenv("HOME");
                if (isempty(home) || home[0] != '/')
                        return -ENXIO;
                if (asprintf(&p, "%s/.bankr/config.json", home) < 0)
                        p = NULL;
        }
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}

/* Parses text as strict JSON and insists on an object. The tree may hold
 * keys: callers free it with json_erase_and_putp(). */
static int parse_object(const char *text, size_t len, json_object **ret, char **ret_error) {
        _cleanup_(json_erase_and_putp) json_object *o = NULL;
        _cleanup_free_ char *what = NULL;
        const char *remedy = NULL;
        int r;

        if (len > BANKR_CONFIG_MAX_SIZE) {
                if (ret_error)
                        *ret_error = strdup("the file is larger than 1 MiB");
                return -EBADMSG;
        }
        if (memchr(text, 0, len) || strlen(text) != len) {
                if (ret_error)
                        *ret_error = strdup("the file contains NUL bytes");
                return -EBADMSG;
        }
        r = json_parse_strict(text, &o, &what, &remedy);
        if (r == -EBADMSG) {
                if (ret_error && asprintf(ret_error, "it is not valid JSON: %s", strna(what)) < 0)
                        *ret_error = NULL;
                return r;
        }
        if (r < 0)
                return r;
        if (!o) {
                o = json_object_new_object();
                if (!o)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

int bankr_config_parse(const char *text, size_t len, BankrConfig **ret, char **ret_error) {
        _cleanup_(json_erase_and_putp) json_object *o = NULL;
        _cleanup_(bankr_config_freep) BankrConfig *c = NULL;
        struct {
                const char *name;
                char **field;
        } map[4];
        int r;

        /* An empty file is treated as an empty object: the bankr CLI may leave one. */
        size_t i = 0;
        while (i < len && strchr(" \t\r\n", text[i]))
                i++;

        c = calloc(1, sizeof(BankrConfig));
        if (!c)
                return -ENOMEM;
        if (i == len) {
                *ret = TAKE_PTR(c);
                return 0;
        }

        r = parse_object(text, len, &o, ret_error);
        if (r < 0)
                return r;

        map[0] = (typeof(map[0])) { "llmKey", &c->llm_key };
        map[1] = (typeof(map[0])) { "apiKey", &c->api_key };
        map[2] = (typeof(map[0])) { "llmUrl", &c->llm_url };
        map[3] = (typeof(map[0])) { "apiUrl", &c->api_url };
        for (size_t k = 0; k < ELEMENTSOF(map); k++) {
                json_object *v;
                if (!json_object_object_get_ex(o, map[k].name, &v) || json_object_is_type(v, json_type_null))
                        continue;
                if (!json_object_is_type(v, json_type_string))
                        continue; /* wrong type: as if absent */
                const char *s = json_object_get_string(v);
                if (isempty(s))
                        continue;
                *map[k].field = strdup(s);
                if (!*map[k].field)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int bankr_config_load(const char *path, BankrConfig **ret, char **ret_error) {
        _cleanup_erase_ char *text = NULL;
        size_t len;
        int r;

        r = read_full_file(path, BANKR_CONFIG_MAX_SIZE, &text, &len);
        if (r == -ENOENT) {
                BankrConfig *c = calloc(1, sizeof(BankrConfig));
                if (!c)
                        return -ENOMEM;
                *ret = c;
                return 0;
        }
        if (r == -EFBIG || r == -EBADFD || r == -EISDIR) {
                if (ret_error)
                        *ret_error = strdup(r == -EFBIG ? "the file is larger than 1 MiB" : "it is not a regular file");
                return -EBADMSG;
        }
        if (r < 0)
                return r;
        return bankr_config_parse(text, len, ret, ret_error);
}

int bankr_config_edit(const char *text, const char *const *keys, const char *const *values, size_t n, char **ret) {
        _cleanup_(json_erase_and_putp) json_object *o = NULL;
        size_t i = 0, len = text ? strlen(text) : 0;
        int r;

        while (i < len && strchr(" \t\r\n", text[i]))
                i++;
        if (i == len) {
                o = json_object_new_object();
                if (!o)
                        return -ENOMEM;
        } else {
                r = parse_object(text, len, &o, NULL);
                if (r < 0)
                        return r;
        }

        for (size_t k = 0; k < n; k++) {
                if (values[k]) {
                        json_object *v = json_object_new_string(values[k]);
                        if (!v)
                                return -ENOMEM;
                        /* json-c replaces an existing member in place, keeping the order. */
                        if (json_object_object_add(o, keys[k], v) < 0)
                                return -ENOMEM;
                } else
                        json_object_object_del(o, keys[k]);
        }

        /* Written like the bankr CLI writes it: JSON.stringify(c, null, 2) + "\n". */
        return json_to_text(o, ret);
}

int bankr_config_update_file(const char *path, const char *const *keys, const char *const *values, size_t n, char **ret_error) {
        _cleanup_erase_ char *text = NULL, *out = NULL;
        _cleanup_free_ char *why = NULL, *real = NULL;
        mode_t mode = 0600;
        struct stat st;
        size_t len = 0;
        int r;

        /* A symlinked file (dotfile managers do that) is written through; the link stays. */
        real = realpath(path, NULL);
        if (real)
                path = real;

        r = read_full_file(path, BANKR_CONFIG_MAX_SIZE, &text, &len);
        if (r == -ENOENT) {
                r = mkdir_parents(path, 0700);
                if (r < 0) {
                        if (ret_error)
                                (void) asprintf(ret_error, "cannot create the directory for %s: %s", path, strerror(-r));
                        return r;
                }
        } else if (r < 0) {
                if (ret_error)
                        (void) asprintf(ret_error, "cannot read %s: %s", path, strerror(-r));
                return r;
        } else if (stat(path, &st) == 0) {
                mode = st.st_mode & 07777;
                /* The user made it read-only: not ours to rewrite (root could). */
                if (!(st.st_mode & S_IWUSR)) {
                        if (ret_error)
                                (void) asprintf(ret_error, "%s is read-only (mode %04o), so it was left as it is", path,
                                                (unsigned) mode);
                        return -EROFS;
                }
        }

        if (text) {
                _cleanup_(bankr_config_freep) BankrConfig *c = NULL;
                r = bankr_config_parse(text, len, &c, &why);
                if (r < 0) {
                        if (ret_error)
                                (void) asprintf(ret_error, "%s is not valid (%s); fix or remove it first, it was left untouched",
                                                path, strna(why));
                        return r;
                }
        }

        r = bankr_config_edit(text, keys, values, n, &out);
        if (r < 0)
                return r;
        r = write_file_atomic(path, out, strlen(out), mode);
        if (r < 0 && ret_error)
                (void) asprintf(ret_error, "cannot write %s: %s", path, strerror(-r));
        return r;
}

int bankr_config_check_writable(const char *path) {
        _cleanup_free_ char *real = realpath(path, NULL);
        struct stat st;

        if (stat(real ?: path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        return (st.st_mode & S_IWUSR) ? 0 : -EROFS;
}

int bankr_config_remove_if_unchanged(const char *path, const char *const *keys, const char *const *expected, size_t n,
                                     unsigned *ret_kept, char **ret_error) {
        _cleanup_erase_ char *text = NULL, *out = NULL;
        _cleanup_free_ char *why = NULL, *real = NULL;
        _cleanup_(json_erase_and_putp) json_object *o = NULL;
        unsigned kept = 0, removed = 0;
        struct stat st;
        size_t len = 0;
        int r;

        assert(n <= sizeof(unsigned) * 8);
        if (ret_kept)
                *ret_kept = 0;

        real = realpath(path, NULL);
        if (real)
                path = real;

        r = read_full_file(path, BANKR_CONFIG_MAX_SIZE, &text, &len);
        if (r == -ENOENT)
                return 0; /* nothing left to remove */
        if (r < 0) {
                if (ret_error)
                        (void) asprintf(ret_error, "cannot read %s: %s", path, strerror(-r));
                return r;
        }
        if (stat(path, &st) < 0) {
                r = -errno;
                if (ret_error)
                        (void) asprintf(ret_error, "cannot read %s: %s", path, strerror(-r));
                return r;
        }
        if (!(st.st_mode & S_IWUSR)) {
                if (ret_error)
                        (void) asprintf(ret_error, "%s is read-only (mode %04o), so it was left as it is", path,
                                        (unsigned) (st.st_mode & 07777));
                return -EROFS;
        }

        r = parse_object(text, len, &o, &why);
        if (r < 0) {
                if (ret_error)
                        (void) asprintf(ret_error, "%s is not valid (%s); fix or remove it first, it was left untouched",
                                        path, strna(why));
                return r;
        }

        for (size_t k = 0; k < n; k++) {
                json_object *v;
                if (!expected[k] || !json_object_object_get_ex(o, keys[k], &v))
                        continue;
                if (json_object_is_type(v, json_type_string) && streq(json_object_get_string(v), expected[k])) {
                        /* A secret: wipe it before json-c frees it. */
                        explicit_bzero((char *) json_object_get_string(v), (size_t) json_object_get_string_len(v));
                        json_object_object_del(o, keys[k]);
                        removed |= 1U << k;
                } else
                        kept |= 1U << k;
        }
        if (ret_kept)
                *ret_kept = kept;
        if (removed == 0)
                return 0;

        r = json_to_text(o, &out);
        if (r < 0)
                return r;
        r = write_file_atomic(path, out, strlen(out), st.st_mode & 07777);
        if (r < 0 && ret_error)
                (void) asprintf(ret_error, "cannot write %s: %s", path, strerror(-r));
        return r;
}
