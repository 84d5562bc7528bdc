/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Models: the model list, always served from memory.
 *
 * Three sources, best first: a live answer from GET /v1/models, the cache
 * of the last live answer ($XDG_CACHE_HOME/bankr-llm/models.json, with its
 * fetch time and gateway), and the catalog shipped in data/. At start the
 * cache (or the catalog) is served at once; a stale list (older than the
 * TTL, or from another gateway) is refreshed in the background, and so is
 * any list when the key or the gateway changes. Without a key the catalog
 * is served and nothing is fetched. Only Refresh() waits for the network,
 * and concurrent Refresh() calls share one fetch.
 */
#include <json-c/json.h>
#include <math.h>

#include "bus-util.h"
#include "fetcher.h"
#include "gateway.h"
#include "log.h"
#include "model-list.h"
#include "models.h"
#include "retry-policy.h"
#include "utf8.h"

#define MODELS_TTL_USEC (60 * 60 * USEC_PER_SEC)
#define MODELS_TIMEOUT_USEC (5 * USEC_PER_SEC) /* as the bankr CLI */
#define MODELS_MAX_BODY (4U * 1024U * 1024U)
#define CACHE_MAX_SIZE (8U * 1024U * 1024U)
#define CLOSEST_MAX 3

struct Models {
        Context *context;

        ModelList *catalog; /* NULL when the shipped catalog is missing or broken */
        ModelList *list;    /* what is served; never NULL (maybe empty) */
        bool live;          /* list came from the gateway in this run */
        uint64_t updated_at; /* realtime µs of the fetch that produced list; 0 for the catalog */
        char *list_url;      /* gateway the list came from (NULL for the catalog) */

        ModelList *cache;       /* the cache file as loaded at start */
        uint64_t cache_time;
        char *cache_url;

        bool seen_key;     /* a key was in use at some point in this run */
        bool key_rejected; /* 401/403: no background fetches until the key changes */

        Fetcher *fetcher; /* GET /v1/models, Refresh() calls sharing it, the next background refresh */

        /* Deprecations the gateway reported on answers in this run (id,
         * replacement or ""), announced once each with ModelDeprecated. */
        char **deprecated; /* pairs: id, replacement */
        uint64_t ttl_usec;
};

static char *cache_path(Models *m) {
        char *p;
        if (asprintf(&p, "%s/models.json", m->context->cache_dir) < 0)
                return NULL;
        return p;
}

static int empty_list(ModelList **ret) {
        ModelList *l = calloc(1, sizeof(ModelList));
        if (!l)
                return -ENOMEM;
        *ret = l;
        return 0;
}

/* --- the catalog and the cache ------------------------------------------ */

static void models_load_catalog(Models *m) {
        _cleanup_free_ char *data = NULL, *err = NULL;
        size_t size;
        int r;

        r = read_full_file(m->context->catalog_path, CACHE_MAX_SIZE, &data, &size);
        if (r < 0) {
                log_warning_errno(r, "Failed to read the model catalog %s: %m; serving an empty list until the gateway answers.",
                                  m->context->catalog_path);
                return;
        }
        r = model_list_from_gateway_json(data, size, NULL, &m->catalog, &err);
        if (r == -ENOMEM)
                log_oom();
        else if (r < 0)
                log_warning("Ignoring the model catalog %s: %s", m->context->catalog_path, strna(err));
        else
                log_debug("Loaded %zu models from the catalog %s.", m->catalog->n, m->context->catalog_path);
}

static void models_load_cache(Models *m) {
        _cleanup_free_ char *path = cache_path(m), *data = NULL, *err = NULL;
        struct json_object *root = NULL, *o;
        size_t size;
        int r;

        if (!path) {
                log_oom();
                return;
        }
        r = read_full_file(path, CACHE_MAX_SIZE, &data, &size);
        if (r == -ENOENT)
                return;
        if (r < 0) {
                log_warning_errno(r, "Failed to read the model cache %s: %m", path);
                return;
        }
        root = json_tokener_parse(data);
        if (!root || !json_object_is_type(root, json_type_object)) {
                log_warning("Ignoring the model cache %s: not a JSON object.", path);
                goto finish;
        }
        if (!json_object_object_get_ex(root, "fetched_at", &o) || !json_object_is_type(o, json_type_int) ||
            json_object_get_int64(o) <= 0) {
                log_warning("Ignoring the model cache %s: no fetch time.", path);
                goto finish;
        }
        m->cache_time = (uint64_t) json_object_get_int64(o);
        if (json_object_object_get_ex(root, "gateway_url", &o) && json_object_is_type(o, json_type_string) &&
            free_and_strdup(&m->cache_url, json_object_get_string(o)) < 0) {
                log_oom();
                goto finish;
        }
        r = model_list_from_gateway_json(data, size, m->catalog, &m->cache, &err);
        if (r == -ENOMEM)
                log_oom();
        else if (r < 0)
                log_warning("Ignoring the model cache %s: %s", path, strna(err));
        else
                log_debug("Loaded %zu models from the cache %s (fetched from %s).", m->cache->n, path,
                          strna(m->cache_url));
finish:
        json_object_put(root);
}

static void models_save_cache(Models *m) {
        _cleanup_free_ char *path = cache_path(m), *text = NULL;
        struct json_object *root;
        const char *s;
        int r;

        if (!path) {
                log_oom();
                return;
        }
        r = model_list_to_json(m->list, &text);
        if (r < 0) {
                log_oom();
                return;
        }
        root = json_tokener_parse(text);
        if (!root) {
                log_warning("Failed to write the model cache: the list does not serialise.");
                return;
        }
        /* Our own fields next to "data": the file stays readable as a gateway answer. */
        if (json_object_object_add(root, "fetched_at", json_object_new_int64((int64_t) m->updated_at)) < 0 ||
            json_object_object_add(root, "gateway_url", json_object_new_string(strempty(m->list_url))) < 0) {
                json_object_put(root);
                log_oom();
                return;
        }
        s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                         JSON_C_TO_STRING_NOSLASHESCAPE);
        r = mkdir_p(m->context->cache_dir, 0700);
        if (r >= 0 && s)
                r = write_file_atomic(path, s, strlen(s), 0600);
        else if (r >= 0)
                r = -ENOMEM;
        json_object_put(root);
        if (r < 0)
                log_warning_errno(r, "Failed to write the model cache %s: %m", path);
}

/* --- what is served ----------------------------------------------------- */

/* Takes l (may be NULL: an empty list) and emits PropertiesChanged for what
 * actually changed. */
static void models_serve(Models *m, ModelList *l, bool live, uint64_t updated_at, const char *url) {
        _cleanup_(model_list_freep) ModelList *new_list = l;
        const char *changed[4];
        size_t n = 0;

        if (!new_list && empty_list(&new_list) < 0) {
                log_oom();
                return;
        }
        if (!model_list_equal(m->list, new_list))
                changed[n++] = "Models";
        if (live != m->live)
                changed[n++] = "Live";
        if (updated_at != m->updated_at)
                changed[n++] = "UpdatedAt";
        if (free_and_strdup(&m->list_url, url) < 0) {
                log_oom();
                return;
        }

        model_list_free(m->list);
        m->list = TAKE_PTR(new_list);
        m->live = live;
        m->updated_at = updated_at;

        if (n == 0 || !m->context->bus)
                return;
        changed[n] = NULL;
        (void) sd_bus_emit_properties_changed_strv(m->context->bus, OBJECT_PATH, IFACE_MODELS, (char **) changed);
}

static void models_serve_catalog(Models *m) {
        ModelList *l = NULL;

        if (m->catalog && model_list_copy(m->catalog, &l) < 0) {
                log_oom();
                return;
        }
        models_serve(m, l, false, 0, NULL);
}

/* --- fetching ----------------------------------------------------------- */

static int models_reply(sd_bus_message *msg, unsigned kind, const sd_bus_error *e, void *userdata) {
        return e ? sd_bus_reply_method_error(msg, e) : sd_bus_reply_method_return(msg, "b", true);
}

static void models_reply_waiting(Models *m, const sd_bus_error *e) {
        fetcher_reply_all(m->fetcher, e);
}

static int models_fetch_start(Models *m) {
        int r = fetcher_start(m->fetcher);

        if (r == 0)
                log_debug("Fetching the model list from %s.", context_gateway_url(m->context));
        return r < 0 ? r : 0;
}

static void on_timer(void *userdata) {
        Models *m = userdata;
        int r;

        r = models_fetch_start(m);
        if (r < 0 && r != -ENOKEY)
                log_warning_errno(r, "Failed to start fetching the model list: %m");
}

/* Arms the background refresh to run after delay; disarms it with UINT64_MAX. */
static void models_schedule(Models *m, uint64_t delay) {
        fetcher_schedule(m->fetcher, delay);
}

uint64_t models_refresh_delay(bool have_key, bool key_rejected, uint64_t updated_at, bool same_gateway, uint64_t now,
                              uint64_t ttl) {
        if (!have_key || key_rejected)
                return UINT64_MAX;
        if (updated_at == 0 || updated_at > now || !same_gateway)
                return 0;
        if (now - updated_at >= ttl)
                return 0;
        return ttl - (now - updated_at);
}

uint64_t models_retry_delay(unsigned failures, uint64_t next, uint64_t ttl) {
        if (next == UINT64_MAX)
                return next;
        return MIN(ttl, MAX(next, retry_fetch_backoff_usec(failures, ttl)));
}

/* When the served list should next be fetched again. */
static uint64_t models_next_delay(Models *m) {
        return models_refresh_delay(context_llm_key(m->context) != NULL, m->key_rejected, m->updated_at,
                                    streq_ptr(m->list_url, context_gateway_url(m->context)), now_usec(CLOCK_REALTIME),
                                    m->ttl_usec);
}

static void models_fetch_done(HttpRequest *hr, int error, void *userdata) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
        _cleanup_(model_list_freep) ModelList *l = NULL;
        _cleanup_free_ char *err = NULL;
        Models *m = userdata;
        const char *body;
        uint64_t fb, total;
        size_t len;
        int q;

        http_request_get_timing(hr, &fb, &total);

        q = gateway_check_answer(m->context, hr, error, "the model list", &e);
        if (q >= 0) {
                body = http_request_get_body(hr, &len);
                q = model_list_from_gateway_json(body, len, m->catalog, &l, &err);
                if (q == -ENOMEM)
                        sd_bus_error_set(&e, SD_BUS_ERROR_NO_MEMORY, "Out of memory.");
                else if (q < 0)
                        sd_bus_error_setf(&e, BUS_ERROR_GATEWAY_ERROR, "%s (from %s/v1/models)", strna(err),
                                          context_gateway_url(m->context));
        }

        if (q < 0) {
                unsigned failures = fetcher_note_failure(m->fetcher);

                if (sd_bus_error_has_name(&e, BUS_ERROR_UNAUTHORIZED))
                        m->key_rejected = true;
                log_warning("Failed to refresh the model list: %s%s", e.message,
                            m->key_rejected ? " No more background refreshes until the key changes." : "");
                models_reply_waiting(m, &e);
                /* Retry sooner than the TTL, backing off: 30 s, 1 min, 2 min, … */
                models_schedule(m, models_retry_delay(failures, models_next_delay(m), m->ttl_usec));
                return;
        }

        bool changed = !model_list_equal(m->list, l);
        fetcher_reset_failures(m->fetcher);
        m->key_rejected = false;
        log_full_errno(changed ? LOG_INFO : LOG_DEBUG, 0, "Model list %s from %s: %zu models (%.0f ms).",
                       changed ? "updated" : "unchanged", context_gateway_url(m->context), l->n,
                       (double) total / USEC_PER_MSEC);
        models_serve(m, TAKE_PTR(l), true, now_usec(CLOCK_REALTIME), context_gateway_url(m->context));
        models_save_cache(m);
        models_reply_waiting(m, NULL);
        models_schedule(m, m->ttl_usec);
}

/* Decides what to serve and when to fetch, after start or a key change. */
static void models_update(Models *m, bool key_changed) {
        bool have_key = context_llm_key(m->context) != NULL;

        /* Asked with the old key or URL: its answer no longer counts. */
        fetcher_cancel(m->fetcher);
        m->key_rejected = false;
        fetcher_reset_failures(m->fetcher);

        if (!have_key) {
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

                sd_bus_error_set(&e, BUS_ERROR_NO_KEY, "The key was removed while the model list was being fetched.");
                models_reply_waiting(m, &e);
                models_serve_catalog(m);
                models_schedule(m, UINT64_MAX);
                return;
        }

        /* The first key of this run is not a change: a fresh cache stays.
         * A cache from another gateway is not served at all (its models may
         * not exist here): the catalog stays until the fetch answers. */
        if (!m->seen_key && m->cache && !m->live && streq_ptr(m->cache_url, context_gateway_url(m->context))) {
                ModelList *copy = NULL;
                if (model_list_copy(m->cache, &copy) < 0) {
                        log_oom();
                        return;
                }
                models_serve(m, copy, false, m->cache_time, m->cache_url);
        }
        if (m->seen_key && key_changed) {
                log_debug("The key or gateway changed: refetching the model list.");
                models_schedule(m, 0);
        } else
                models_schedule(m, models_next_delay(m));
        m->seen_key = true;

        /* Refresh() callers waiting on a cancelled fetch get the new one. */
        if (fetcher_n_waiting(m->fetcher) > 0) {
                int r = models_fetch_start(m);
                if (r < 0) {
                        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                        sd_bus_error_set_errnof(&e, r, "Failed to start fetching the model list: %m");
                        models_reply_waiting(m, &e);
                }
        }
}

void models_key_changed(Models *m) {
        if (m)
                models_update(m, true);
}

static const FetcherOps models_fetcher_ops = {
        .done = models_fetch_done,
        .reply = models_reply,
        .timer = on_timer,
};

/* --- lookups for other modules ------------------------------------------ */

const Model *models_find(Models *m, const char *id) {
        return m ? model_list_find(m->list, id) : NULL;
}

const ModelList *models_list(Models *m) {
        return m ? m->list : NULL;
}

/* --- D-Bus -------------------------------------------------------------- */

/* The replacement known for id from an answer ("" for none), or NULL when
 * no answer said it is deprecated. */
static const char *models_runtime_replacement(Models *m, const char *id) {
        for (char **p = m->deprecated; p && p[0] && p[1]; p += 2)
                if (streq(p[0], id))
                        return p[1];
        return NULL;
}

void models_note_deprecated(Models *m, const char *model, const char *replacement) {
        _cleanup_free_ char *id = NULL;
        const char *known;
        size_t n;

        /* Privacy suffixes are no part of the model. */
        (void) chat_privacy_from_model_suffix(model, &n);
        id = strndup(model, n);
        if (!id)
                return;
        known = models_runtime_replacement(m, id);
        if (known && (streq(known, strempty(replacement)) || isempty(replacement)))
                return; /* announced already */
        if (known) { /* a replacement named now: update it, no second signal */
                for (char **p = m->deprecated; p && p[0] && p[1]; p += 2)
                        if (streq(p[0], id))
                                (void) free_and_strdup(&p[1], replacement);
        } else if (strv_extend(&m->deprecated, id) < 0 || strv_extend(&m->deprecated, strempty(replacement)) < 0) {
                log_oom();
                return;
        }
        if (!m->context->bus)
                return;
        if (!known) {
                log_info("The gateway says %s is deprecated%s%s.", id, isempty(replacement) ? "" : "; its replacement is ",
                         strempty(replacement));
                (void) sd_bus_emit_signal(m->context->bus, OBJECT_PATH, IFACE_MODELS, "ModelDeprecated", "ss", id,
                                          strempty(replacement));
        }
        if (model_list_find(m->list, id))
                (void) sd_bus_emit_properties_changed(m->context->bus, OBJECT_PATH, IFACE_MODELS, "Models", NULL);
}

static int append_model_full(Models *m, sd_bus_message *reply, const Model *md) {
        const char *repl = m ? models_runtime_replacement(m, md->id) : NULL;
        int r;

        r = sd_bus_message_open_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}", "id", "s", md->id, "name", "s", md->name,
                                  "provider", "s", strempty(md->provider), "api", "s", strempty(md->api),
                                  "context_window", "u", md->context_window, "max_output_tokens", "u",
                                  md->max_output_tokens);
        if (r < 0)
                return r;
        r = bus_append_dict_strv(reply, "input", md->input);
        if (r < 0)
                return r;
        /* image_output (USD per generated image) only for models that
         * have it. */
        if (md->price_image_output > 0)
                r = sd_bus_message_append(reply, "{sv}", "pricing", "a{sd}", 5, "input", md->price_input, "output",
                                          md->price_output, "cache_read", md->price_cache_read, "cache_write",
                                          md->price_cache_write, "image_output", md->price_image_output);
        else
                r = sd_bus_message_append(reply, "{sv}", "pricing", "a{sd}", 4, "input", md->price_input, "output",
                                          md->price_output, "cache_read", md->price_cache_read, "cache_write",
                                          md->price_cache_write);
        if (r < 0)
                return r;
        r = bus_append_dict_strv(reply, "output", md->output);
        if (r < 0)
                return r;
        r = sd_bus_message_append(reply, "{sv}{sv}", "zdr", "b", md->zdr, "private", "b", md->private_tier);
        if (r < 0)
                return r;
        /* Deprecation once known: from the list, or from an answer. */
        if (md->deprecated || repl) {
                r = sd_bus_message_append(reply, "{sv}{sv}", "deprecated", "b", true, "replacement", "s",
                                          !isempty(repl) ? repl : strempty(md->replacement));
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Models *m = userdata;
        int r;

        if (streq(property, "Live"))
                return sd_bus_message_append(reply, "b", m->live);
        if (streq(property, "UpdatedAt"))
                return sd_bus_message_append(reply, "t", m->updated_at);
        if (!streq(property, "Models"))
                return -ENOENT;

        r = sd_bus_message_open_container(reply, 'a', "a{sv}");
        if (r < 0)
                return r;
        for (size_t i = 0; i < m->list->n; i++) {
                r = append_model_full(m, reply, &m->list->models[i]);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

static int method_refresh(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Models *m = userdata;
        bool started = !fetcher_in_flight(m->fetcher);
        int r;

        if (!context_llm_key(m->context))
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY,
                                        "No key is set, so the model list cannot be fetched; the built-in catalog is "
                                        "served. Set a key with \"bankr-llm key set\".");

        r = fetcher_join(m->fetcher, msg, 0);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to start fetching the model list: %m");
        if (started)
                log_debug("Fetching the model list from %s.", context_gateway_url(m->context));
        return 1;
}

static int method_get(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Models *m = userdata;
        const Model *md;
        const char *id;
        int r;

        r = sd_bus_message_read(msg, "s", &id);
        if (r < 0)
                return r;
        if (isempty(id))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "The model id is empty.");

        md = model_list_find(m->list, id);
        if (!md) {
                _cleanup_strv_free_ char **close = model_list_closest(m->list, id, CLOSEST_MAX);
                _cleanup_free_ char *names = NULL;
                size_t len = 0;

                for (size_t i = 0; close && close[i]; i++) {
                        char *n;
                        if (asprintf(&n, "%s%s\"%s\"", strempty(names), i == 0 ? "" : ", ", close[i]) < 0)
                                return -ENOMEM;
                        free(names);
                        names = n;
                        len++;
                }
                /* The id came from the caller: show it only when it is printable. */
                bool printable = utf8_is_valid_n(id, strlen(id)) && strlen(id) <= 200;
                for (const char *p = id; printable && *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f)
                                printable = false;
                if (len > 0)
                        return sd_bus_error_setf(error, BUS_ERROR_MODEL_NOT_FOUND,
                                                 "There is no model \"%s\" (%s has %zu models). Did you mean %s?",
                                                 printable ? id : "(unprintable id)",
                                                 m->live ? "the gateway's list" : m->updated_at ? "the cached list" : "the built-in catalog",
                                                 m->list->n, names);
                return sd_bus_error_setf(error, BUS_ERROR_MODEL_NOT_FOUND,
                                         "There is no model \"%s\" (%s has %zu models). \"bankr-llm models\" lists them.",
                                         printable ? id : "(unprintable id)",
                                         m->live ? "the gateway's list" : m->updated_at ? "the cached list" : "the built-in catalog",
                                         m->list->n);
        }

        r = sd_bus_message_new_method_return(msg, &reply);
        if (r < 0)
                return r;
        r = append_model_full(m, reply, md);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

const sd_bus_vtable models_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Models", "aa{sv}", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Live", "b", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UpdatedAt", "t", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_ARGS("Refresh", SD_BUS_NO_ARGS, SD_BUS_RESULT("b", live), method_refresh,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Get", SD_BUS_ARGS("s", id), SD_BUS_RESULT("a{sv}", model), method_get,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("ModelDeprecated", SD_BUS_ARGS("s", id, "s", replacement), 0),
        SD_BUS_VTABLE_END,
};

/* --- lifetime ----------------------------------------------------------- */

int models_new(Context *c, Models **ret) {
        Models *m;

        m = calloc(1, sizeof(Models));
        if (!m)
                return -ENOMEM;
        m->context = c;
        m->ttl_usec = getenv_msec("BANKR_LLMD_MODELS_TTL_MS", MODELS_TTL_USEC, 1, MSEC_MAX);
        if (fetcher_new(c, "/v1/models", getenv_msec("BANKR_LLMD_FETCH_TIMEOUT_MS", MODELS_TIMEOUT_USEC, 1, MSEC_MAX),
                        MODELS_MAX_BODY, USEC_PER_SEC, "models-refresh", &models_fetcher_ops, m, &m->fetcher) < 0) {
                free(m);
                return -ENOMEM;
        }

        models_load_catalog(m);
        models_load_cache(m);
        if (empty_list(&m->list) < 0) {
                models_free(m);
                return -ENOMEM;
        }
        /* Catalog first; the key (env or config now, keyring a moment later)
         * switches to the cache and decides about fetching. */
        models_serve_catalog(m);
        if (context_llm_key(c))
                models_update(m, false);

        *ret = m;
        return 0;
}

Models *models_free(Models *m) {
        _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

        if (!m)
                return NULL;
        sd_bus_error_set(&e, BUS_ERROR_CANCELLED, "bankr-llmd is shutting down.");
        models_reply_waiting(m, &e);
        fetcher_free(m->fetcher);
        model_list_free(m->catalog);
        model_list_free(m->list);
        model_list_free(m->cache);
        strv_free(m->deprecated);
        free(m->list_url);
        free(m->cache_url);
        free(m);
        return NULL;
}
