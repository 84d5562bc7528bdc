/* SPDX-License-Identifier: MIT */
/*
 * Model records (see model-list.h): parsing the gateway's /v1/models answer
 * (also our catalog and cache format), writing it back, and finding the ids
 * closest to a mistyped one. Everything that comes from the network is
 * checked: a field of the wrong type or with an absurd value is replaced by
 * the catalog's or the default value, never trusted.
 */
#include <ctype.h>
#include <math.h>
#include <strings.h>

#include "json-util.h"
#include "model-list.h"
#include "utf8.h"

#define MODELS_MAX 10000U
#define ID_MAX 256U
#define NAME_MAX_LEN 256U
#define TOKENS_MAX UINT32_C(100000000) /* 100 M tokens: anything above is nonsense */
#define PRICE_MAX 1000000.0            /* USD per 1M tokens */
#define MODALITIES_MAX 16U

#define DEFAULT_CONTEXT_WINDOW UINT32_C(128000)
#define DEFAULT_MAX_OUTPUT UINT32_C(32768)

static void model_done(Model *m) {
        free(m->id);
        free(m->name);
        free(m->provider);
        free(m->api);
        strv_free(m->input);
        strv_free(m->output);
        free(m->replacement);
}

ModelList *model_list_free(ModelList *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                model_done(&l->models[i]);
        free(l->models);
        free(l);
        return NULL;
}

const Model *model_list_find(const ModelList *l, const char *id) {
        if (!l || !id)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->models[i].id, id))
                        return &l->models[i];
        return NULL;
}

/* ---- validation ---------------------------------------------------------- */

/* A JSON string we can hand to D-Bus and print: valid UTF-8, no NUL, no
 * control characters; ids additionally without blanks. */
static const char *json_get_clean_string(struct json_object *o, size_t max, bool is_id) {
        const char *s;
        size_t n;

        if (!o || !json_object_is_type(o, json_type_string))
                return NULL;
        s = json_object_get_string(o);
        n = (size_t) json_object_get_string_len(o);
        if (n == 0 || n > max || strlen(s) != n || !utf8_is_valid_n(s, n))
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c < 0x20 || c == 0x7f || (is_id && c == ' '))
                        return NULL;
        }
        return s;
}

static bool json_get_number(struct json_object *o, double *ret) {
        double d;

        if (!o)
                return false;
        if (json_object_is_type(o, json_type_int))
                d = (double) json_object_get_int64(o);
        else if (json_object_is_type(o, json_type_double))
                d = json_object_get_double(o);
        else
                return false;
        if (!isfinite(d))
                return false;
        *ret = d;
        return true;
}

static bool json_get_tokens(struct json_object *o, uint32_t *ret) {
        double d;

        if (!json_get_number(o, &d) || d < 1 || d > TOKENS_MAX || d != floor(d))
                return false;
        *ret = (uint32_t) d;
        return true;
}

static bool json_get_price(struct json_object *o, double *ret) {
        double d;

        if (!json_get_number(o, &d) || d < 0 || d > PRICE_MAX)
                return false;
        *ret = d;
        return true;
}

/* input_modalities: a non-empty array of clean strings; duplicates dropped. */
static int json_get_modalities(struct json_object *o, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n;
        int r;

        if (!o || !json_object_is_type(o, json_type_array))
                return 0;
        n = json_object_array_length(o);
        for (size_t i = 0; i < n && strv_length(l) < MODALITIES_MAX; i++) {
                const char *s = json_get_clean_string(json_object_array_get_idx(o, i), 64, true);
                if (!s || strv_contains(l, s))
                        continue;
                r = strv_extend(&l, s);
                if (r < 0)
                        return r;
        }
        if (!l)
                return 0;
        *ret = TAKE_PTR(l);
        return 1;
}

static struct json_object *get_field(struct json_object *o, const char *key) {
        struct json_object *v = NULL;

        if (!o || !json_object_is_type(o, json_type_object))
                return NULL;
        (void) json_object_object_get_ex(o, key, &v);
        return v;
}

/* true for a JSON true (or the strings "true"/"yes"); false otherwise. */
static bool json_is_true(struct json_object *v) {
        if (json_object_is_type(v, json_type_boolean))
                return json_object_get_boolean(v);
        if (json_object_is_type(v, json_type_string))
                return strcasecmp(json_object_get_string(v), "true") == 0 ||
                       strcasecmp(json_object_get_string(v), "yes") == 0;
        return false;
}

static bool array_has_string(struct json_object *a, const char *s) {
        if (!json_object_is_type(a, json_type_array))
                return false;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                struct json_object *v = json_object_array_get_idx(a, i);
                if (json_object_is_type(v, json_type_string) && strcasecmp(json_object_get_string(v), s) == 0)
                        return true;
        }
        return false;
}

/* The privacy and deprecation flags, as the gateway may spell them: zdr /
 * zero_data_retention / supports_zdr, private / confidential / tee, or a
 * privacy (privacy_tiers) array naming the tiers; deprecated, or a status
 * "deprecated"; replacement / replaced_by / replacement_model. Tiers nest:
 * a private-capable model counts as zdr-capable. */
static int model_flags_from_json(struct json_object *o, Model *m) {
        struct json_object *tiers = get_field(o, "privacy") ?: get_field(o, "privacy_tiers");
        const char *s;

        m->private_tier = json_is_true(get_field(o, "private")) || json_is_true(get_field(o, "confidential")) ||
                          json_is_true(get_field(o, "tee")) || array_has_string(tiers, "private");
        m->zdr = m->private_tier || json_is_true(get_field(o, "zdr")) ||
                 json_is_true(get_field(o, "zero_data_retention")) || json_is_true(get_field(o, "supports_zdr")) ||
                 array_has_string(tiers, "zdr");
        s = json_get_clean_string(get_field(o, "status"), 64, true);
        m->deprecated = json_is_true(get_field(o, "deprecated")) || (s && strcasecmp(s, "deprecated") == 0);
        s = json_get_clean_string(get_field(o, "replacement"), NAME_MAX_LEN, true);
        if (!s)
                s = json_get_clean_string(get_field(o, "replaced_by"), NAME_MAX_LEN, true);
        if (!s)
                s = json_get_clean_string(get_field(o, "replacement_model"), NAME_MAX_LEN, true);
        if (s && !(m->replacement = strdup(s)))
                return -ENOMEM;
        return 0;
}

/* ---- parsing ------------------------------------------------------------- */

static int model_from_json(struct json_object *o, const char *id, const ModelList *catalog, Model *ret) {
        const Model *c = model_list_find(catalog, id);
        struct json_object *pricing = get_field(o, "pricing");
        const char *s;
        Model m = {};
        int r;

        m.id = strdup(id);
        if (!m.id)
                goto oom;

        s = json_get_clean_string(get_field(o, "name"), NAME_MAX_LEN, false);
        if (!s)
                s = json_get_clean_string(get_field(o, "display_name"), NAME_MAX_LEN, false);
        if (!s)
                s = c ? c->name : id;
        m.name = strdup(s);
        if (!m.name)
                goto oom;

        s = json_get_clean_string(get_field(o, "owned_by"), NAME_MAX_LEN, true);
        if (!s)
                s = c ? c->provider : "";
        m.provider = strdup(s);
        if (!m.provider)
                goto oom;

        bool anthropic = !isempty(m.provider) ? strcasecmp(m.provider, "anthropic") == 0
                                              : startswith(id, "claude-") != NULL;
        m.api = strdup(anthropic ? "anthropic" : "openai");
        if (!m.api)
                goto oom;

        if (!json_get_tokens(get_field(o, "context_window"), &m.context_window))
                m.context_window = c ? c->context_window : DEFAULT_CONTEXT_WINDOW;
        if (!json_get_tokens(get_field(o, "max_output_tokens"), &m.max_output_tokens))
                m.max_output_tokens = c ? c->max_output_tokens : DEFAULT_MAX_OUTPUT;

        r = json_get_modalities(get_field(o, "input_modalities"), &m.input);
        if (r < 0)
                goto oom;
        if (r == 0) {
                static char *const text_only[] = { (char *) "text", NULL };
                m.input = strv_copy(c && c->input ? c->input : text_only);
                if (!m.input)
                        goto oom;
        }

        r = json_get_modalities(get_field(o, "output_modalities"), &m.output);
        if (r < 0)
                goto oom;
        if (r == 0) {
                static char *const text_only[] = { (char *) "text", NULL };
                m.output = strv_copy(c && c->output ? c->output : text_only);
                if (!m.output)
                        goto oom;
        }
        if (!json_get_price(get_field(pricing, "image_output"), &m.price_image_output))
                m.price_image_output = c ? c->price_image_output : 0;
        if (model_flags_from_json(o, &m) < 0)
                goto oom;

        if (!json_get_price(get_field(pricing, "input"), &m.price_input))
                m.price_input = c ? c->price_input : 0;
        if (!json_get_price(get_field(pricing, "output"), &m.price_output))
                m.price_output = c ? c->price_output : 0;
        if (!json_get_price(get_field(pricing, "cache_read"), &m.price_cache_read))
                m.price_cache_read = c ? c->price_cache_read : 0;
        if (!json_get_price(get_field(pricing, "cache_write"), &m.price_cache_write))
                m.price_cache_write = c ? c->price_cache_write : 0;

        *ret = m;
        return 0;

oom:
        model_done(&m);
        return -ENOMEM;
}

static int fail(char **ret_error, const char *msg) {
        if (ret_error) {
                char *s = strdup(msg);
                if (!s)
                        return -ENOMEM;
                free(*ret_error);
                *ret_error = s;
        }
        return -EBADMSG;
}

int model_list_from_gateway_json(const char *json, size_t len, const ModelList *catalog,
                                 ModelList **ret, char **ret_error) {
        _cleanup_(model_list_freep) ModelList *l = NULL;
        struct json_tokener *tok;
        struct json_object *root, *data;
        size_t n;
        int r;

        if (!json || !ret)
                return -EINVAL;
        if (len > INT32_MAX)
                return fail(ret_error, "The gateway's model list is too large.");

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, json, (int) len);
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        size_t offset = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (!root || jerr != json_tokener_success) {
                char buf[256];
                json_object_put(root);
                if (jerr == json_tokener_continue)
                        return fail(ret_error, "The gateway's model list is not valid JSON: it ends too early.");
                snprintf(buf, sizeof buf, "The gateway's model list is not valid JSON: %s.",
                         json_tokener_error_desc(jerr));
                return fail(ret_error, buf);
        }
        for (; offset < len; offset++)
                if (!isspace((unsigned char) json[offset])) {
                        json_object_put(root);
                        return fail(ret_error, "The gateway's model list is not valid JSON: garbage after the end.");
                }

        data = get_field(root, "data");
        if (!data || !json_object_is_type(data, json_type_array)) {
                json_object_put(root);
                return fail(ret_error, "The gateway's model list has no \"data\" array.");
        }

        l = calloc(1, sizeof(ModelList));
        if (!l)
                goto oom;
        size_t allocated = 0;
        n = json_object_array_length(data);
        for (size_t i = 0; i < n && l->n < MODELS_MAX; i++) {
                struct json_object *o = json_object_array_get_idx(data, i);
                const char *id;

                if (!o || !json_object_is_type(o, json_type_object))
                        continue;
                id = json_get_clean_string(get_field(o, "id"), ID_MAX, true);
                if (!id || model_list_find(l, id)) /* no id, or a duplicate: first one wins */
                        continue;

                if (!GREEDY_REALLOC(l->models, allocated, l->n + 1))
                        goto oom;
                r = model_from_json(o, id, catalog, &l->models[l->n]);
                if (r < 0)
                        goto oom;
                l->n++;
        }
        json_object_put(root);

        if (l->n == 0)
                return fail(ret_error, "The gateway's model list has no usable model.");

        *ret = TAKE_PTR(l);
        return 0;

oom:
        json_object_put(root);
        return -ENOMEM;
}

/* ---- writing ------------------------------------------------------------- */

static int model_to_json(const Model *m, struct json_object **ret) {
        struct json_object *o = NULL, *in = NULL, *p = NULL;

        o = json_object_new_object();
        in = json_object_new_array();
        p = json_object_new_object();
        if (!o || !in || !p)
                goto oom;

        for (char **s = m->input; s && *s; s++) {
                struct json_object *v = json_object_new_string(*s);
                if (!v || json_object_array_add(in, v) < 0) {
                        json_object_put(v);
                        goto oom;
                }
        }
        if (json_add(p, "input", json_new_double_short(m->price_input)) < 0 ||
            json_add(p, "output", json_new_double_short(m->price_output)) < 0 ||
            json_add(p, "cache_read", json_new_double_short(m->price_cache_read)) < 0 ||
            json_add(p, "cache_write", json_new_double_short(m->price_cache_write)) < 0)
                goto oom;
        if (m->price_image_output > 0 && json_add(p, "image_output", json_new_double_short(m->price_image_output)) < 0)
                goto oom;
        if (m->output) {
                struct json_object *out = json_object_new_array();
                if (json_add(o, "output_modalities", out) < 0)
                        goto oom;
                for (char **s = m->output; *s; s++)
                        if (json_append(out, json_object_new_string(*s)) < 0)
                                goto oom;
        }
        if ((m->zdr && json_add(o, "zdr", json_object_new_boolean(true)) < 0) ||
            (m->private_tier && json_add(o, "private", json_object_new_boolean(true)) < 0) ||
            (m->deprecated && json_add(o, "deprecated", json_object_new_boolean(true)) < 0) ||
            (m->replacement && json_add(o, "replacement", json_object_new_string(m->replacement)) < 0))
                goto oom;

        if (json_add(o, "id", json_object_new_string(m->id)) < 0 ||
            json_add(o, "name", json_object_new_string(strempty(m->name))) < 0 ||
            json_add(o, "owned_by", json_object_new_string(strempty(m->provider))) < 0 ||
            json_add(o, "context_window", json_object_new_int64(m->context_window)) < 0 ||
            json_add(o, "max_output_tokens", json_object_new_int64(m->max_output_tokens)) < 0)
                goto oom;
        if (json_add(o, "input_modalities", TAKE_PTR(in)) < 0 || json_add(o, "pricing", TAKE_PTR(p)) < 0)
                goto oom;

        *ret = o;
        return 0;

oom:
        json_object_put(o);
        json_object_put(in);
        json_object_put(p);
        return -ENOMEM;
}

int model_list_to_json(const ModelList *l, char **ret) {
        struct json_object *root, *data;
        const char *s;
        char *t;

        if (!l || !ret)
                return -EINVAL;

        root = json_object_new_object();
        data = json_object_new_array();
        if (!root || !data)
                goto oom;
        for (size_t i = 0; i < l->n; i++) {
                struct json_object *m;
                if (model_to_json(&l->models[i], &m) < 0)
                        goto oom;
                if (json_object_array_add(data, m) < 0) {
                        json_object_put(m);
                        goto oom;
                }
        }
        if (json_add(root, "data", TAKE_PTR(data)) < 0)
                goto oom;

        s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s || asprintf(&t, "%s\n", s) < 0)
                goto oom;
        json_object_put(root);
        *ret = t;
        return 0;

oom:
        json_object_put(root);
        json_object_put(data);
        return -ENOMEM;
}

/* ---- copy and compare ------------------------------------------------------ */

int model_list_copy(const ModelList *l, ModelList **ret) {
        _cleanup_(model_list_freep) ModelList *c = NULL;

        if (!l || !ret)
                return -EINVAL;
        c = calloc(1, sizeof(ModelList));
        if (!c)
                return -ENOMEM;
        if (l->n > 0) {
                c->models = calloc(l->n, sizeof(Model));
                if (!c->models)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < l->n; i++) {
                const Model *s = &l->models[i];
                Model *d = &c->models[i];

                *d = *s;
                d->id = d->name = d->provider = d->api = NULL;
                d->input = d->output = NULL;
                d->replacement = NULL;
                c->n++; /* counted before filling so that a failure frees it */
                if ((s->id && !(d->id = strdup(s->id))) ||
                    (s->name && !(d->name = strdup(s->name))) ||
                    (s->provider && !(d->provider = strdup(s->provider))) ||
                    (s->api && !(d->api = strdup(s->api))) ||
                    (s->input && !(d->input = strv_copy(s->input))) ||
                    (s->output && !(d->output = strv_copy(s->output))) ||
                    (s->replacement && !(d->replacement = strdup(s->replacement))))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static bool strv_equal(char *const *a, char *const *b) {
        size_t n = strv_length(a);

        if (n != strv_length(b))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!streq(a[i], b[i]))
                        return false;
        return true;
}

static bool model_equal(const Model *a, const Model *b) {
        return streq_ptr(a->id, b->id) && streq_ptr(a->name, b->name) &&
               streq_ptr(a->provider, b->provider) && streq_ptr(a->api, b->api) &&
               a->context_window == b->context_window && a->max_output_tokens == b->max_output_tokens &&
               strv_equal(a->input, b->input) && a->price_input == b->price_input &&
               a->price_output == b->price_output && a->price_cache_read == b->price_cache_read &&
               a->price_cache_write == b->price_cache_write && strv_equal(a->output, b->output) &&
               a->price_image_output == b->price_image_output && a->zdr == b->zdr &&
               a->private_tier == b->private_tier && a->deprecated == b->deprecated &&
               streq_ptr(a->replacement, b->replacement);
}

bool model_list_equal(const ModelList *a, const ModelList *b) {
        if (!a || !b)
                return a == b;
        if (a->n != b->n)
                return false;
        for (size_t i = 0; i < a->n; i++)
                if (!model_equal(&a->models[i], &b->models[i]))
                        return false;
        return true;
}

/* ---- closest ids ------------------------------------------------------------ */

/* Optimal string alignment distance (Damerau-Levenshtein with adjacent
 * transpositions), case-insensitive. Strings are at most ID_MAX long. */
static size_t edit_distance(const char *a, const char *b) {
        size_t n = strlen(a), m = strlen(b);
        size_t rows[3][ID_MAX + 1];
        size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

        if (n > ID_MAX || m > ID_MAX)
                return SIZE_MAX;
        for (size_t j = 0; j <= m; j++)
                prev[j] = j;
        for (size_t i = 1; i <= n; i++) {
                cur[0] = i;
                for (size_t j = 1; j <= m; j++) {
                        char ca = (char) tolower((unsigned char) a[i - 1]), cb = (char) tolower((unsigned char) b[j - 1]);
                        size_t cost = ca != cb;
                        size_t v = MIN(MIN(prev[j] + 1, cur[j - 1] + 1), prev[j - 1] + cost);
                        if (i > 1 && j > 1 && ca == tolower((unsigned char) b[j - 2]) &&
                            tolower((unsigned char) a[i - 2]) == cb)
                                v = MIN(v, prev2[j - 2] + 1);
                        cur[j] = v;
                }
                size_t *t = prev2;
                prev2 = prev;
                prev = cur;
                cur = t;
        }
        return prev[m];
}

/* How many words of a (runs of letters and digits, at least 3 long, with a
 * letter) also occur in b: "claude-3-sonnet" shares "claude" and "sonnet"
 * with "claude-sonnet-4.5". */
static size_t shared_words(const char *a, const char *b) {
        size_t n = 0;

        for (const char *p = a; *p;) {
                size_t l = 0;
                bool letter = false;

                while (isalnum((unsigned char) p[l])) {
                        letter = letter || isalpha((unsigned char) p[l]);
                        l++;
                }
                if (l >= 3 && letter)
                        for (const char *q = b; *q;) {
                                size_t k = 0;
                                while (isalnum((unsigned char) q[k]))
                                        k++;
                                if (k == l && strncasecmp(p, q, l) == 0) {
                                        n++;
                                        break;
                                }
                                q += k;
                                if (*q)
                                        q++;
                        }
                p += l;
                if (*p)
                        p++;
        }
        return n;
}

typedef struct Candidate {
        const char *id;
        unsigned rank; /* 0: prefix, 1: substring, 2: small edit distance, 3: shared words */
        size_t distance;
        size_t shared;
} Candidate;

static int candidate_cmp(const void *x, const void *y) {
        const Candidate *a = x, *b = y;

        if (a->rank != b->rank)
                return a->rank < b->rank ? -1 : 1;
        if (a->shared != b->shared)
                return a->shared > b->shared ? -1 : 1;
        if (a->distance != b->distance)
                return a->distance < b->distance ? -1 : 1;
        return strcmp(a->id, b->id);
}

char **model_list_closest(const ModelList *l, const char *id, size_t max) {
        _cleanup_free_ Candidate *c = NULL;
        _cleanup_strv_free_ char **ret = NULL;
        size_t n = 0, len = id ? strlen(id) : 0;

        ret = calloc(1, sizeof(char *));
        if (!ret)
                return NULL;
        if (!l || l->n == 0 || len == 0 || len > ID_MAX || max == 0)
                return TAKE_PTR(ret);

        c = calloc(l->n, sizeof(Candidate));
        if (!c)
                return NULL;

        size_t limit = MAX((size_t) 3, len / 3);
        for (size_t i = 0; i < l->n; i++) {
                const char *mid = l->models[i].id;
                size_t d = edit_distance(id, mid), shared = 0;
                unsigned rank;

                if (len >= 2 && (strncasecmp(mid, id, len) == 0 ||
                                 strncasecmp(id, mid, strlen(mid)) == 0))
                        rank = 0;
                else if (len >= 3 && (strcasestr(mid, id) || strcasestr(id, mid)))
                        rank = 1;
                else if (d <= limit)
                        rank = 2;
                else if ((shared = shared_words(id, mid)) > 0)
                        rank = 3;
                else
                        continue;
                c[n++] = (Candidate) { .id = mid, .rank = rank, .distance = d, .shared = shared };
        }
        qsort(c, n, sizeof(Candidate), candidate_cmp);

        for (size_t i = 0; i < n && i < max; i++)
                if (strv_extend(&ret, c[i].id) < 0)
                        return NULL;
        return TAKE_PTR(ret);
}
