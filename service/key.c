/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Key: where the key comes from. Six sources are merged in
 * the order of dbus-api.md (environment, keyring, config file; LLM key
 * before API key). The environment is read once at start, the keyring is
 * cached and re-read when the Secret Service says an item changed, and the
 * config file is watched with inotify. Any change recomputes the resolved
 * key and URLs and emits PropertiesChanged for what actually changed.
 */
#include <sys/inotify.h>
#include <sys/stat.h>

#include "bankr-config.h"
#include "keyfmt.h"
#include "keyring.h"
#include "key.h"
#include "log.h"
#include "polkit.h"
#include "url.h"

enum { KIND_LLM, KIND_API, _KIND_MAX };

/* How long start-up waits for the keyring before taking the bus name, so the
 * first caller sees the key that is really there. */
#define KEYRING_STARTUP_TIMEOUT_USEC (3 * USEC_PER_SEC)
static const char *const kind_table[_KIND_MAX] = { "llm", "api" };

struct Keys {
        Context *context;

        char *env_key[_KIND_MAX]; /* BANKR_LLM_KEY, BANKR_API_KEY (secret) */
        char *env_llm_url, *env_api_url;
        char *ring_key[_KIND_MAX]; /* secret */
        BankrConfig *config;
        char *config_error; /* last parse error, to log it only once */

        /* Resolved state, as exported. */
        char *key; /* copies of the winners (secret) */
        char *api_key;
        const char *source, *kind;
        const char *api_source;
        char *api_masked;
        char *masked;
        char *gateway_url, *api_url;

        sd_event_source *watch;        /* inotify on the config dir (or the nearest existing parent) */
        sd_event_source *reload_timer; /* debounces bursts of inotify events */
        sd_event_source *ring_timer;   /* debounces keyring change signals */
        sd_bus_slot *ring_match, *ring_owner_match;

        /* Start-up: the first keyring lookups, bounded by a timer. */
        unsigned initial_pending;
        sd_event_source *initial_timer;
        void (*ready)(Context *c);
};

typedef struct KeyCall {
        Keys *keys;
        sd_bus_message *message;
        int kind;
        bool remove_plaintext;
        int pending; /* keyring jobs still out (Import) */
        char *error;  /* first failure (Import) */
        char *imported[_KIND_MAX]; /* what Import copied (secret): only that may be removed from the file */
} KeyCall;

static KeyCall *key_call_free(KeyCall *kc) {
        if (!kc)
                return NULL;
        sd_bus_message_unref(kc->message);
        free(kc->error);
        for (int i = 0; i < _KIND_MAX; i++)
                erase_and_free(kc->imported[i]);
        free(kc);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(KeyCall *, key_call_free);

DEFINE_PRIVATE_STRING_TABLE_FROM_STRING(kind, int, -EINVAL);

/* --- resolution --------------------------------------------------------- */

static char *resolve_url(const char *env, const char *env_name, const char *cfg, const char *cfg_name, const char *def) {
        const char *cand[] = { env, cfg };
        const char *names[] = { env_name, cfg_name };

        for (size_t i = 0; i < ELEMENTSOF(cand); i++) {
                _cleanup_free_ char *n = NULL, *err = NULL;
                if (isempty(cand[i]))
                        continue;
                if (url_normalize(cand[i], &n, &err) >= 0)
                        return TAKE_PTR(n);
                log_warning("Ignoring %s: %s", names[i], strna(err));
        }
        return strdup(def);
}

void key_resolve(const char *const sources[static _KEY_SOURCE_MAX], KeyResolution *ret) {
        static const char *const source_name[_KEY_SOURCE_MAX] = { "env", "keyring", "config", "env", "keyring", "config" };
        KeyResolution res = { .source = "none", .kind = "", .api_source = "none" };

        for (size_t i = 0; i < _KEY_SOURCE_MAX; i++)
                if (!isempty(sources[i])) {
                        res.key = sources[i];
                        res.source = source_name[i];
                        res.kind = i < KEY_SOURCE_ENV_API ? "llm" : "api";
                        break;
                }
        for (size_t i = KEY_SOURCE_ENV_API; i < _KEY_SOURCE_MAX; i++)
                if (!isempty(sources[i])) {
                        res.api_key = sources[i];
                        res.api_source = source_name[i];
                        break;
                }
        *ret = res;
}

static void keys_recompute(Keys *k, bool initial) {
        const char *const sources[_KEY_SOURCE_MAX] = {
                [KEY_SOURCE_ENV_LLM] = k->env_key[KIND_LLM],
                [KEY_SOURCE_KEYRING_LLM] = k->ring_key[KIND_LLM],
                [KEY_SOURCE_CONFIG_LLM] = k->config ? k->config->llm_key : NULL,
                [KEY_SOURCE_ENV_API] = k->env_key[KIND_API],
                [KEY_SOURCE_KEYRING_API] = k->ring_key[KIND_API],
                [KEY_SOURCE_CONFIG_API] = k->config ? k->config->api_key : NULL,
        };
        const char *changed[12];
        size_t n_changed = 0;
        KeyResolution res;
        bool key_changed;

        key_resolve(sources, &res);
        const char *key = res.key, *source = res.source, *kind = res.kind;
        const char *api_key = res.api_key, *api_source = res.api_source;
        _cleanup_free_ char *api_masked = key_mask(api_key);
        if (!api_masked) {
                log_oom();
                return;
        }
        if (erase_and_strdup(&k->api_key, api_key) < 0) {
                log_oom();
                return;
        }

        _cleanup_free_ char *masked = key_mask(key);
        _cleanup_free_ char *gw = resolve_url(k->env_llm_url, "BANKR_LLM_URL", k->config ? k->config->llm_url : NULL,
                                              "llmUrl in the config file", DEFAULT_GATEWAY_URL);
        _cleanup_free_ char *api = resolve_url(k->env_api_url, "BANKR_API_URL", k->config ? k->config->api_url : NULL,
                                               "apiUrl in the config file", DEFAULT_API_URL);
        if (!masked || !gw || !api) {
                log_oom();
                return;
        }

        /* Compare by value: the pointer may move between sources holding the
         * same key, and the same key from another source (an import, say) is
         * no new key for models and credits to refetch with. */
        key_changed = !streq_ptr(key, k->key);
        if ((key != NULL) != (k->key != NULL))
                changed[n_changed++] = "Present";
        if (!streq(source, k->source))
                changed[n_changed++] = "Source";
        if (!streq(kind, k->kind))
                changed[n_changed++] = "Kind";
        if (!streq_ptr(masked, k->masked))
                changed[n_changed++] = "Masked";
        bool url_changed = !streq_ptr(gw, k->gateway_url);
        if (url_changed)
                changed[n_changed++] = "GatewayUrl";
        if (!streq_ptr(api, k->api_url))
                changed[n_changed++] = "ApiUrl";
        if (!streq_ptr(api_source, k->api_source))
                changed[n_changed++] = "ApiKeySource";
        if (!streq_ptr(api_masked, k->api_masked))
                changed[n_changed++] = "ApiKeyMasked";

        if (erase_and_strdup(&k->key, key) < 0) {
                log_oom();
                return;
        }
        k->source = source;
        k->kind = kind;
        k->api_source = api_source;
        free(k->api_masked);
        k->api_masked = TAKE_PTR(api_masked);
        free(k->masked);
        k->masked = TAKE_PTR(masked);
        free(k->gateway_url);
        k->gateway_url = TAKE_PTR(gw);
        free(k->api_url);
        k->api_url = TAKE_PTR(api);

        if (n_changed == 0 || initial)
                return;

        log_info("Key source is now %s%s%s; gateway %s.", source, key ? ", key " : "", key ? k->masked : "", k->gateway_url);
        changed[n_changed] = NULL;
        (void) sd_bus_emit_properties_changed_strv(k->context->bus, OBJECT_PATH, IFACE_KEY, (char **) changed);
        if (key_changed || url_changed)
                context_key_changed(k->context);
}

const char *keys_get_llm_key(const Keys *k) {
        return k ? k->key : NULL;
}

const char *keys_get_api_key(const Keys *k) {
        return k ? k->api_key : NULL;
}

const char *keys_get_gateway_url(const Keys *k) {
        return k && k->gateway_url ? k->gateway_url : DEFAULT_GATEWAY_URL;
}

const char *keys_get_api_url(const Keys *k) {
        return k && k->api_url ? k->api_url : DEFAULT_API_URL;
}

/* --- the config file ---------------------------------------------------- */

static void keys_load_config(Keys *k) {
        _cleanup_(bankr_config_freep) BankrConfig *cfg = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = bankr_config_load(k->context->config_path, &cfg, &err);
        if (r < 0) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "%s", err ? err : strerror(-r)) < 0)
                        msg = NULL;
                /* Log once per distinct problem, then treat the file as empty;
                 * never rewrite it because of this. */
                if (!streq_ptr(msg, k->config_error))
                        log_warning("Ignoring %s: %s.", k->context->config_path, strna(msg));
                free(k->config_error);
                k->config_error = TAKE_PTR(msg);
                cfg = calloc(1, sizeof(BankrConfig));
                if (!cfg) {
                        log_oom();
                        return;
                }
        } else
                k->config_error = mfree(k->config_error);

        bankr_config_free(k->config);
        k->config = TAKE_PTR(cfg);
}

static int keys_watch_config(Keys *k);

static int on_reload_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Keys *k = userdata;

        (void) keys_watch_config(k); /* the directory may have appeared or gone */
        keys_load_config(k);
        keys_recompute(k, false);
        return 0;
}

static void schedule(Keys *k, sd_event_source **timer, sd_event_time_handler_t handler, uint64_t delay) {
        int r;

        if (*timer) {
                int enabled = SD_EVENT_OFF;
                (void) sd_event_source_get_enabled(*timer, &enabled);
                if (enabled != SD_EVENT_OFF)
                        return; /* already coming */
                r = sd_event_source_set_time_relative(*timer, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(*timer, SD_EVENT_ONESHOT);
        } else
                r = sd_event_add_time_relative(k->context->event, timer, CLOCK_MONOTONIC, delay, 1000, handler, k);
        if (r < 0)
                log_warning_errno(r, "Failed to schedule a reload: %m");
}

static int on_config_event(sd_event_source *s, const struct inotify_event *ev, void *userdata) {
        Keys *k = userdata;
        /* Editors write in bursts (truncate, write, rename): settle first. */
        schedule(k, &k->reload_timer, on_reload_timer, 30 * USEC_PER_MSEC);
        return 0;
}

static int keys_watch_config(Keys *k) {
        _cleanup_free_ char *dir = strdup(k->context->config_path);
        int r;

        if (!dir)
                return -ENOMEM;
        k->watch = sd_event_source_disable_unref(k->watch);

        /* Watch the file's directory, or the nearest parent that exists, so
         * a config created later (mkdir ~/.bankr; write) is seen too. */
        for (;;) {
                char *slash = strrchr(dir, '/');
                if (!slash)
                        return -ENOENT;
                if (slash == dir)
                        slash[1] = 0;
                else
                        *slash = 0;
                r = sd_event_add_inotify(k->context->event, &k->watch, dir,
                                         IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE |
                                                 IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR,
                                         on_config_event, k);
                if (r >= 0) {
                        log_debug("Watching %s for changes to the config file.", dir);
                        return 0;
                }
                if (r != -ENOENT && r != -ENOTDIR)
                        return log_warning_errno(r, "Failed to watch %s: %m", dir);
                if (streq(dir, "/"))
                        return r;
        }
}

/* --- the keyring -------------------------------------------------------- */

static void keys_initial_done(Keys *k) {
        void (*ready)(Context *c) = k->ready;

        k->initial_pending = 0;
        k->initial_timer = sd_event_source_disable_unref(k->initial_timer);
        k->ready = NULL;
        if (ready)
                ready(k->context);
}

static int on_initial_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Keys *k = userdata;
        log_warning("The keyring did not answer within %u s; starting without it for now.",
                    (unsigned) (KEYRING_STARTUP_TIMEOUT_USEC / USEC_PER_SEC));
        keys_initial_done(k);
        return 0;
}

static void on_lookup_done(KeyringOp op, const char *kind, KeyringStatus status, const char *secret,
                           const char *message, void *userdata) {
        Keys *k = userdata;
        int i = kind_from_string(kind);

        if (i < 0 || status == KEYRING_CANCELLED)
                return;
        if (status != KEYRING_OK)
                log_debug("Keyring lookup of the %s key failed: %s", kind, strna(message));
        /* A lookup that failed (no keyring, locked) means "no key there". */
        if (erase_and_strdup(&k->ring_key[i], status == KEYRING_OK ? secret : NULL) < 0)
                log_oom();
        keys_recompute(k, false);
        if (k->initial_pending > 0 && --k->initial_pending == 0)
                keys_initial_done(k);
}

static void keys_lookup_keyring(Keys *k) {
        for (int i = 0; i < _KIND_MAX; i++) {
                int r = keyring_submit(k->context->keyring, KEYRING_LOOKUP, kind_table[i], NULL, on_lookup_done, k);
                if (r < 0)
                        log_warning_errno(r, "Failed to queue a keyring lookup: %m");
        }
}

static int on_ring_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        keys_lookup_keyring(userdata);
        return 0;
}

static int on_ring_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Keys *k = userdata;
        schedule(k, &k->ring_timer, on_ring_timer, 50 * USEC_PER_MSEC);
        return 0;
}

static int on_ring_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Keys *k = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0)
                return 0;
        if (isempty(new_owner))
                log_info("The Secret Service (%s) left the bus; keyring keys are gone until it returns.", old_owner);
        else
                log_info("The Secret Service is now %s; reconnecting to the keyring.", new_owner);
        keyring_reconnect(k->context->keyring);
        schedule(k, &k->ring_timer, on_ring_timer, 50 * USEC_PER_MSEC);
        return 0;
}

/* --- methods ------------------------------------------------------------ */

static int reply_keyring_error(sd_bus_message *m, KeyringStatus status, const char *message) {
        return sd_bus_reply_method_errorf(m, status == KEYRING_CANCELLED ? BUS_ERROR_CANCELLED : BUS_ERROR_KEYRING_UNAVAILABLE,
                                          "%s", message ?: "The keyring is not available.");
}

static void on_store_done(KeyringOp op, const char *kind, KeyringStatus status, const char *secret,
                          const char *message, void *userdata) {
        _cleanup_(key_call_freep) KeyCall *kc = userdata;
        Keys *k = kc->keys;
        int r;

        if (status != KEYRING_OK) {
                r = reply_keyring_error(kc->message, status, message);
                goto finish;
        }
        /* Export the new state before replying, so a caller reading the
         * properties right after sees it. */
        if (erase_and_strdup(&k->ring_key[kc->kind], op == KEYRING_STORE ? secret : NULL) < 0) {
                r = -ENOMEM;
                goto finish;
        }
        keys_recompute(k, false);
        log_info("%s the %s key %s the keyring.", op == KEYRING_STORE ? "Stored" : "Removed", kind,
                 op == KEYRING_STORE ? "in" : "from");
        r = sd_bus_reply_method_return(kc->message, NULL);
finish:
        if (r < 0)
                log_debug_errno(r, "Failed to reply: %m");
}

/* polkit first (the call runs again from the top with its answer), then a
 * KeyCall that will answer m. 1 with *ret, 0 when refused or still asking
 * (the caller returns 1), -errno. */
static int key_call_authorize(Keys *k, sd_bus_message *m, sd_bus_error *error, KeyCall **ret) {
        KeyCall *kc;
        int r;

        r = polkit_check_host_async(k->context->polkit, m, error);
        if (r <= 0)
                return r;
        kc = calloc(1, sizeof(KeyCall));
        if (!kc)
                return -ENOMEM;
        kc->keys = k;
        kc->message = sd_bus_message_ref(m);
        *ret = kc;
        return 1;
}

/* Set and Clear, once the arguments are checked: one keyring job, answered
 * by on_store_done(). */
static int key_store(Keys *k, sd_bus_message *m, KeyringOp op, const char *kind, const char *key, sd_bus_error *error) {
        _cleanup_(key_call_freep) KeyCall *kc = NULL;
        int r;

        r = key_call_authorize(k, m, error, &kc);
        if (r <= 0)
                return r < 0 ? r : 1; /* refused, or asking: we run again with the answer */
        kc->kind = kind_from_string(kind);
        r = keyring_submit(k->context->keyring, op, kind, key, on_store_done, kc);
        if (r < 0)
                return r;
        TAKE_PTR(kc);
        return 1;
}

static int method_set(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Keys *k = userdata;
        const char *key, *kind, *reason = NULL;
        int r;

        r = sd_bus_message_read(m, "ss", &key, &kind);
        if (r < 0)
                return r;
        if (!key_kind_valid(kind))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown key kind \"%s\": use \"llm\" or \"api\".", kind);
        if (key_check(key, strlen(key), &reason) < 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, reason);
        return key_store(k, m, KEYRING_STORE, kind, key, error);
}

static int method_clear(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Keys *k = userdata;
        const char *kind;
        int r;

        r = sd_bus_message_read(m, "s", &kind);
        if (r < 0)
                return r;
        if (!key_kind_valid(kind))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown key kind \"%s\": use \"llm\" or \"api\".", kind);
        return key_store(k, m, KEYRING_CLEAR, kind, NULL, error);
}

static void import_finish(KeyCall *kc) {
        Keys *k = kc->keys;
        int r;

        if (kc->error) {
                r = sd_bus_reply_method_errorf(kc->message, BUS_ERROR_KEYRING_UNAVAILABLE, "%s", kc->error);
                goto done;
        }
        if (kc->remove_plaintext) {
                static const char *const names[_KIND_MAX] = { [KIND_LLM] = "llmKey", [KIND_API] = "apiKey" };
                const char *expected[_KIND_MAX];
                _cleanup_free_ char *err = NULL;
                unsigned kept = 0;

                for (int i = 0; i < _KIND_MAX; i++)
                        expected[i] = kc->imported[i];
                /* Only what was imported, and only while the file still holds
                 * it: a key written there meanwhile is in no keyring. */
                r = bankr_config_remove_if_unchanged(k->context->config_path, names, expected, _KIND_MAX, &kept, &err);
                if (r < 0) {
                        log_warning("Failed to remove the keys from %s: %s", k->context->config_path, strna(err));
                        r = sd_bus_reply_method_errorf(kc->message, BUS_ERROR_INVALID_CONFIG,
                                                       "The keys were copied to the keyring, but removing them from the config file failed: %s.",
                                                       strna(err));
                        goto done;
                }
                for (int i = 0; i < _KIND_MAX; i++)
                        if (kept & (1U << i))
                                log_warning("The %s in %s changed while it was being imported; the new one was left in the file "
                                            "(the keyring holds the one imported).", names[i], k->context->config_path);
                if (kept == 0)
                        log_info("Removed the imported plaintext keys from %s.", k->context->config_path);
                keys_load_config(k);
        }
        keys_recompute(k, false);
        r = sd_bus_reply_method_return(kc->message, "s", k->source);
done:
        if (r < 0)
                log_debug_errno(r, "Failed to reply: %m");
}

static void on_import_store_done(KeyringOp op, const char *kind, KeyringStatus status, const char *secret,
                                 const char *message, void *userdata) {
        KeyCall *kc = userdata;
        int i = kind_from_string(kind);

        if (status != KEYRING_OK && !kc->error)
                kc->error = strdup(message ?: "The keyring is not available.");
        if (status == KEYRING_OK && i >= 0 && erase_and_strdup(&kc->keys->ring_key[i], secret) < 0 && !kc->error)
                kc->error = strdup("Out of memory.");
        if (--kc->pending > 0)
                return;
        import_finish(kc);
        key_call_free(kc);
}

static int method_import(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(key_call_freep) KeyCall *kc = NULL;
        _cleanup_(bankr_config_freep) BankrConfig *cfg = NULL;
        _cleanup_free_ char *err = NULL;
        Keys *k = userdata;
        const char *reason;
        int remove, r;

        r = sd_bus_message_read(m, "b", &remove);
        if (r < 0)
                return r;

        /* Read the file afresh: the import must copy what is there now. */
        r = bankr_config_load(k->context->config_path, &cfg, &err);
        if (r < 0)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG, "Cannot import from %s: %s. The file was left untouched.",
                                         k->context->config_path, err ?: strerror(-r));
        if (isempty(cfg->llm_key) && isempty(cfg->api_key))
                return sd_bus_error_setf(error, BUS_ERROR_NO_KEY, "There is no llmKey or apiKey in %s to import.",
                                         k->context->config_path);
        if (cfg->llm_key && key_check(cfg->llm_key, strlen(cfg->llm_key), &reason) < 0)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG, "The llmKey in %s cannot be imported: %s",
                                         k->context->config_path, reason);
        if (cfg->api_key && key_check(cfg->api_key, strlen(cfg->api_key), &reason) < 0)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG, "The apiKey in %s cannot be imported: %s",
                                         k->context->config_path, reason);

        /* The user made the file read-only: we will not rewrite it, so we
         * change nothing at all (the keyring neither), rather than leave a
         * half-done import behind. */
        if (remove) {
                r = bankr_config_check_writable(k->context->config_path);
                if (r == -EROFS)
                        return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG,
                                                 "%s is read-only, so the keys cannot be removed from it; nothing was imported. "
                                                 "Make it writable (chmod u+w) first, or import without removing the keys.",
                                                 k->context->config_path);
        }

        r = key_call_authorize(k, m, error, &kc);
        if (r <= 0)
                return r < 0 ? r : 1; /* refused, or asking: we run again with the answer */
        kc->remove_plaintext = remove;
        for (int i = 0; i < _KIND_MAX; i++) {
                const char *v = i == KIND_LLM ? cfg->llm_key : cfg->api_key;
                if (isempty(v))
                        continue;
                if (remove && erase_and_strdup(&kc->imported[i], v) < 0)
                        return -ENOMEM;
                r = keyring_submit(k->context->keyring, KEYRING_STORE, kind_table[i], v, on_import_store_done, kc);
                if (r < 0)
                        return r; /* nothing queued before can have run yet: replies come from the loop */
                kc->pending++;
        }
        TAKE_PTR(kc);
        return 1;
}

static int method_validate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Keys *k = userdata;
        return context_validate_key(k->context, m, error);
}

static int method_reveal(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Keys *k = userdata;
        int r;

        if (!k->key)
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY,
                                        "There is no key to reveal. Set one with \"bankr-llm key set\".");

        r = polkit_check_host_async(k->context->polkit, m, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* refused, or asking: we run again with the answer */
        r = polkit_check_async(k->context->polkit, m, ACTION_REVEAL_KEY, error);
        if (r <= 0)
                return r < 0 ? r : 1; /* denied, or asked: we run again when polkit answers */

        /* The key may have changed while polkit was asked; send what is in use now. */
        if (!k->key)
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY, "The key was removed while authorization was pending.");
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        /* Keep the key out of sd-bus's message dumps and the journal. */
        (void) sd_bus_message_sensitive(reply);
        r = sd_bus_message_append(reply, "s", k->key);
        if (r < 0)
                return r;
        log_info("Revealed the %s key to a caller authorized by polkit.", k->kind);
        return sd_bus_send(NULL, reply, NULL);
}

/* --- properties --------------------------------------------------------- */

static int property_get(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Keys *k = userdata;

        if (streq(property, "Present"))
                return sd_bus_message_append(reply, "b", k->key != NULL);
        if (streq(property, "Source"))
                return sd_bus_message_append(reply, "s", k->source);
        if (streq(property, "Kind"))
                return sd_bus_message_append(reply, "s", k->kind);
        if (streq(property, "Masked"))
                return sd_bus_message_append(reply, "s", strempty(k->masked));
        if (streq(property, "GatewayUrl"))
                return sd_bus_message_append(reply, "s", context_gateway_url(k->context));
        if (streq(property, "ApiUrl"))
                return sd_bus_message_append(reply, "s", context_api_url(k->context));
        if (streq(property, "ApiKeySource"))
                return sd_bus_message_append(reply, "s", k->api_source);
        if (streq(property, "ApiKeyMasked"))
                return sd_bus_message_append(reply, "s", strempty(k->api_masked));
        if (streq(property, "Version"))
                return sd_bus_message_append(reply, "s", VERSION);
        return -ENOENT;
}

const sd_bus_vtable keys_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Present", "b", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Source", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Kind", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Masked", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("GatewayUrl", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ApiUrl", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ApiKeySource", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ApiKeyMasked", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Version", "s", property_get, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Set", SD_BUS_ARGS("s", key, "s", kind), SD_BUS_NO_RESULT, method_set,
                                SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_METHOD_WITH_ARGS("Clear", SD_BUS_ARGS("s", kind), SD_BUS_NO_RESULT, method_clear,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Import", SD_BUS_ARGS("b", remove_plaintext), SD_BUS_RESULT("s", source),
                                method_import, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Validate", SD_BUS_NO_ARGS, SD_BUS_RESULT("b", ok, "s", message), method_validate,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Reveal", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", key), method_reveal,
                                SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
        SD_BUS_VTABLE_END,
};

/* --- lifetime ----------------------------------------------------------- */

static char *getenv_dup(const char *name) {
        const char *v = getenv(name);
        return isempty(v) ? NULL : strdup(v);
}

int keys_new(Context *c, Keys **ret) {
        _cleanup_(keys_freep) Keys *k = NULL;
        const char *reason;
        int r;

        k = calloc(1, sizeof(Keys));
        if (!k)
                return -ENOMEM;
        k->context = c;
        k->source = "none";
        k->kind = "";
        k->api_source = "none";

        static const char *const env_names[_KIND_MAX] = { "BANKR_LLM_KEY", "BANKR_API_KEY" };
        for (int i = 0; i < _KIND_MAX; i++) {
                k->env_key[i] = getenv_dup(env_names[i]);
                if (k->env_key[i] && key_check(k->env_key[i], strlen(k->env_key[i]), &reason) < 0) {
                        log_warning("Ignoring %s: %s", env_names[i], reason);
                        k->env_key[i] = erase_and_free(k->env_key[i]);
                }
        }
        k->env_llm_url = getenv_dup("BANKR_LLM_URL");
        k->env_api_url = getenv_dup("BANKR_API_URL");

        keys_load_config(k);
        (void) keys_watch_config(k);
        keys_recompute(k, true);

        /* Follow the keyring: items changing, and the service coming and going. */
        r = sd_bus_match_signal_async(c->bus, &k->ring_match, "org.freedesktop.secrets", NULL,
                                      "org.freedesktop.Secret.Collection", NULL, on_ring_changed, NULL, k);
        if (r < 0)
                log_warning_errno(r, "Failed to watch the keyring: %m");
        r = sd_bus_add_match_async(c->bus, &k->ring_owner_match,
                                   "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                   "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='org.freedesktop.secrets'",
                                   on_ring_owner_changed, NULL, k);
        if (r < 0)
                log_warning_errno(r, "Failed to watch the keyring: %m");

        *ret = TAKE_PTR(k);
        return 0;
}

void keys_start(Keys *k, void (*ready)(Context *c)) {
        int r;

        k->ready = ready;
        k->initial_pending = _KIND_MAX;
        r = sd_event_add_time_relative(k->context->event, &k->initial_timer, CLOCK_MONOTONIC,
                                       KEYRING_STARTUP_TIMEOUT_USEC, 0, on_initial_timeout, k);
        if (r < 0) {
                log_warning_errno(r, "Failed to arm the keyring start-up timer: %m");
                keys_initial_done(k);
        }
        keys_lookup_keyring(k);
}

Keys *keys_free(Keys *k) {
        if (!k)
                return NULL;
        if (k->context->keyring)
                keyring_forget(k->context->keyring, k);
        for (int i = 0; i < _KIND_MAX; i++) {
                erase_and_free(k->env_key[i]);
                erase_and_free(k->ring_key[i]);
        }
        free(k->env_llm_url);
        free(k->env_api_url);
        erase_and_free(k->key);
        erase_and_free(k->api_key);
        bankr_config_free(k->config);
        free(k->config_error);
        free(k->masked);
        free(k->api_masked);
        free(k->gateway_url);
        free(k->api_url);
        sd_event_source_disable_unref(k->watch);
        sd_event_source_disable_unref(k->reload_timer);
        sd_event_source_disable_unref(k->ring_timer);
        sd_event_source_disable_unref(k->initial_timer);
        sd_bus_slot_unref(k->ring_match);
        sd_bus_slot_unref(k->ring_owner_match);
        free(k);
        return NULL;
}
