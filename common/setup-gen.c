/* SPDX-License-Identifier: MIT */
/*
 * Tool setup generators and the strict JSON merge (see setup-gen.h).
 *
 * json-c holds the trees, but we parse and print ourselves: json-c's STRICT
 * tokener still takes single quotes and NaN, clamps integers beyond 64 bits
 * and silently keeps the last of duplicate keys, and its printer writes "{ }"
 * and reformats numbers. Our parser is RFC 8259 to the letter, says exactly
 * what is wrong and where, and keeps each number's original spelling; our
 * printer writes what JSON.stringify(v, null, 2) writes.
 */
#include <inttypes.h>
#include <json-c/json.h>
#include <math.h>
#include <stdarg.h>

#include "json-strict.h"
#include "setup-gen.h"

#define OPENCODE_SCHEMA "https://opencode.ai/config.json"

static const char *const setup_tool_table[_SETUP_TOOL_MAX] = {
        [SETUP_TOOL_OPENCLAW] = "openclaw",
        [SETUP_TOOL_OPENCODE] = "opencode",
        [SETUP_TOOL_CLAUDE] = "claude",
        [SETUP_TOOL_CURSOR] = "cursor",
};

static const char *const setup_key_mode_table[_SETUP_KEY_MODE_MAX] = {
        [SETUP_KEY_ENV] = "env",
        [SETUP_KEY_INLINE] = "inline",
};

/* Models the bankr CLI recommends, in its order. */
static const char *const recommended_models[] = {
        "claude-opus-4.6",
        "gemini-3-pro",
        "gpt-5.2",
};

DEFINE_STRING_TABLE_LOOKUP(setup_tool, SetupTool, _SETUP_TOOL_INVALID);
DEFINE_STRING_TABLE_LOOKUP(setup_key_mode, SetupKeyMode, _SETUP_KEY_MODE_INVALID);

bool setup_tool_has_config(SetupTool t) {
        return t == SETUP_TOOL_OPENCLAW || t == SETUP_TOOL_OPENCODE;
}

int setup_tool_config_path(SetupTool t, const char *home, const char *xdg_config_home,
                           const char *openclaw_config_path, char **ret) {
        char *p;

        switch (t) {
        case SETUP_TOOL_OPENCLAW:
                if (!isempty(openclaw_config_path))
                        p = strdup(openclaw_config_path);
                else if (isempty(home))
                        return -EINVAL;
                else if (asprintf(&p, "%s/.openclaw/openclaw.json", home) < 0)
                        p = NULL;
                break;
        case SETUP_TOOL_OPENCODE:
                /* OpenCode follows the XDG base directory spec; a relative
                 * XDG_CONFIG_HOME is invalid by that spec and ignored. */
                if (!isempty(xdg_config_home) && xdg_config_home[0] == '/') {
                        if (asprintf(&p, "%s/opencode/opencode.json", xdg_config_home) < 0)
                                p = NULL;
                } else if (isempty(home))
                        return -EINVAL;
                else if (asprintf(&p, "%s/.config/opencode/opencode.json", home) < 0)
                        p = NULL;
                break;
        case SETUP_TOOL_CLAUDE:
        case SETUP_TOOL_CURSOR:
                return -EOPNOTSUPP;
        default:
                return -EINVAL;
        }
        if (!p)
                return -ENOMEM;
        *ret = p;
        return 0;
}


/* ---- Generators ---- */

/* The gateway URL as the tools want it: no trailing '/' nor "/v1" (OpenClaw
 * and Claude Code add the API paths themselves), and with "/v1" for the
 * OpenAI-compatible clients. */
static int gateway_base(const char *url, bool v1, char **ret) {
        size_t n;

        if (isempty(url))
                return -EINVAL;
        n = strlen(url);
        for (;;) {
                while (n > 0 && url[n - 1] == '/')
                        n--;
                if (n >= 3 && memcmp(url + n - 3, "/v1", 3) == 0)
                        n -= 3;
                else
                        break;
        }
        if (n == 0)
                return -EINVAL;
        if (asprintf(ret, "%.*s%s", (int) n, url, v1 ? "/v1" : "") < 0)
                return -ENOMEM;
        return 0;
}

static int check_key(SetupKeyMode mode, const char *key) {
        if (mode == SETUP_KEY_ENV)
                return 0;
        if (mode != SETUP_KEY_INLINE || isempty(key))
                return -EINVAL;
        return 0;
}

static const char *model_name(const Model *m) {
        /* OpenClaw requires a non-empty name. */
        return isempty(m->name) ? m->id : m->name;
}

/* Model i of the list, unless it has no id or repeats an earlier one. */
static bool model_usable(const ModelList *l, size_t i) {
        const Model *m = &l->models[i];

        if (isempty(m->id))
                return false;
        for (size_t j = 0; j < i; j++)
                if (streq_ptr(l->models[j].id, m->id))
                        return false;
        return true;
}

static int json_add(struct json_object *obj, const char *key, struct json_object *val) {
        if (!val)
                return -ENOMEM;
        if (json_object_object_add(obj, key, val) < 0) {
                json_object_put(val);
                return -ENOMEM;
        }
        return 0;
}

static int openclaw_model(const Model *m, struct json_object **ret) {
        static const char *const modalities[] = { "text", "image", "video", "audio" };
        _cleanup_(json_erase_and_putp) struct json_object *o = NULL, *input = NULL, *cost = NULL;
        int r;

        o = json_object_new_object();
        input = json_object_new_array();
        cost = json_object_new_object();
        if (!o || !input || !cost)
                return -ENOMEM;

        /* OpenClaw validates "input" against this set: drop anything else
         * (and doubles), keep the gateway's order. */
        for (char **i = m->input; i && *i; i++) {
                bool known = false, seen = false;

                for (size_t k = 0; k < ELEMENTSOF(modalities); k++)
                        known = known || streq(*i, modalities[k]);
                for (char **j = m->input; j < i; j++)
                        seen = seen || streq(*i, *j);
                if (known && !seen && json_object_array_add(input, json_object_new_string(*i)) < 0)
                        return -ENOMEM;
        }
        if (json_object_array_length(input) == 0 &&
            json_object_array_add(input, json_object_new_string("text")) < 0)
                return -ENOMEM;

        if ((r = json_add(o, "id", json_object_new_string(m->id))) < 0 ||
            (r = json_add(o, "name", json_object_new_string(model_name(m)))) < 0)
                return r;
        if (model_is_anthropic(m) && (r = json_add(o, "api", json_object_new_string("anthropic-messages"))) < 0)
                return r;
        if ((r = json_add(o, "input", TAKE_PTR(input))) < 0 ||
            (r = json_add(o, "contextWindow", json_object_new_int64(m->context_window))) < 0 ||
            (r = json_add(o, "maxTokens", json_object_new_int64(m->max_output_tokens))) < 0 ||
            (r = json_add(cost, "input", json_new_number(m->price_input))) < 0 ||
            (r = json_add(cost, "output", json_new_number(m->price_output))) < 0 ||
            (r = json_add(cost, "cacheRead", json_new_number(m->price_cache_read))) < 0 ||
            (r = json_add(cost, "cacheWrite", json_new_number(m->price_cache_write))) < 0 ||
            (r = json_add(o, "cost", TAKE_PTR(cost))) < 0)
                return r;

        *ret = TAKE_PTR(o);
        return 0;
}

static int openclaw_provider(const ModelList *models, const char *url, SetupKeyMode mode, const char *key,
                             struct json_object **ret) {
        _cleanup_(json_erase_and_putp) struct json_object *o = NULL, *list = NULL;
        _cleanup_free_ char *base = NULL;
        int r;

        r = gateway_base(url, false, &base);
        if (r < 0)
                return r;
        o = json_object_new_object();
        list = json_object_new_array();
        if (!o || !list)
                return -ENOMEM;

        for (size_t i = 0; models && i < models->n; i++) {
                struct json_object *m;

                if (!model_usable(models, i))
                        continue;
                r = openclaw_model(&models->models[i], &m);
                if (r < 0)
                        return r;
                if (json_object_array_add(list, m) < 0) {
                        json_object_put(m);
                        return -ENOMEM;
                }
        }

        if ((r = json_add(o, "baseUrl", json_object_new_string(base))) < 0 ||
            (r = json_add(o, "apiKey", json_object_new_string(mode == SETUP_KEY_INLINE ? key : "${BANKR_API_KEY}"))) < 0 ||
            (r = json_add(o, "api", json_object_new_string("openai-completions"))) < 0 ||
            (r = json_add(o, "models", TAKE_PTR(list))) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

static int opencode_provider(const ModelList *models, const char *url, SetupKeyMode mode, const char *key,
                             struct json_object **ret) {
        _cleanup_(json_erase_and_putp) struct json_object *o = NULL, *options = NULL, *list = NULL;
        _cleanup_free_ char *base = NULL;
        int r;

        r = gateway_base(url, true, &base);
        if (r < 0)
                return r;
        o = json_object_new_object();
        options = json_object_new_object();
        list = json_object_new_object();
        if (!o || !options || !list)
                return -ENOMEM;

        for (size_t i = 0; models && i < models->n; i++) {
                const Model *m = &models->models[i];
                struct json_object *entry;

                if (!model_usable(models, i))
                        continue;
                entry = json_object_new_object();
                if (!entry)
                        return -ENOMEM;
                if ((r = json_add(entry, "name", json_object_new_string(model_name(m)))) < 0 ||
                    (r = json_add(list, m->id, entry)) < 0) {
                        json_object_put(entry);
                        return r;
                }
        }

        if ((r = json_add(options, "baseURL", json_object_new_string(base))) < 0 ||
            (r = json_add(options, "apiKey", json_object_new_string(mode == SETUP_KEY_INLINE ? key : "{env:BANKR_API_KEY}"))) < 0 ||
            (r = json_add(o, "npm", json_object_new_string("@ai-sdk/openai-compatible"))) < 0 ||
            (r = json_add(o, "name", json_object_new_string("Bankr LLM Gateway"))) < 0 ||
            (r = json_add(o, "options", TAKE_PTR(options))) < 0 ||
            (r = json_add(o, "models", TAKE_PTR(list))) < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int setup_provider_json(SetupTool t, const ModelList *models, const char *gateway_url,
                        SetupKeyMode mode, const char *key, char **ret) {
        _cleanup_(json_erase_and_putp) struct json_object *o = NULL;
        int r;

        r = check_key(mode, key);
        if (r < 0)
                return r;
        switch (t) {
        case SETUP_TOOL_OPENCLAW:
                r = openclaw_provider(models, gateway_url, mode, key, &o);
                break;
        case SETUP_TOOL_OPENCODE:
                r = opencode_provider(models, gateway_url, mode, key, &o);
                break;
        case SETUP_TOOL_CLAUDE:
        case SETUP_TOOL_CURSOR:
                return -EOPNOTSUPP;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        return json_to_text(o, ret);
}

/* Characters that need no quoting in a POSIX shell word. */
static bool shell_safe(const char *s) {
        for (; *s; s++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,:/@%+=~", *s))
                        return false;
        return true;
}

/* Double quotes like the bankr CLI when nothing inside could expand (or
 * trigger bash's history expansion); single quotes otherwise. */
static void shell_quote(Buf *b, const char *s) {
        if (shell_safe(s)) {
                buf_putc(b, '"');
                buf_puts(b, s);
                buf_putc(b, '"');
                return;
        }
        buf_putc(b, '\'');
        for (; *s; s++)
                if (*s == '\'')
                        buf_puts(b, "'\\''");
                else
                        buf_putc(b, *s);
        buf_putc(b, '\'');
}

/* A shell word for a command line shown to people: bare when safe. */
static void shell_word(Buf *b, const char *s) {
        if (shell_safe(s))
                buf_puts(b, s);
        else
                shell_quote(b, s);
}

/* Model ids come from the network: keep terminal control sequences out of
 * text meant for people. */
static void put_plain(Buf *b, const char *s) {
        for (; *s; s++)
                buf_putc(b, (unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s);
}

static int claude_text(const char *url, SetupKeyMode mode, const char *key, char **ret) {
        _cleanup_free_ char *base = NULL;
        Buf b = {};
        int r;

        r = gateway_base(url, false, &base);
        if (r < 0)
                return r;

        if (mode == SETUP_KEY_ENV)
                buf_puts(&b,
                         "# Claude Code through the Bankr LLM Gateway. Simplest: `bankr-llm claude [ARGS...]`\n"
                         "# runs claude with both variables set. To export them yourself, put your key in\n"
                         "# BANKR_LLM_KEY first (`bankr-llm key reveal` prints it).\n");
        buf_puts(&b, "export ANTHROPIC_BASE_URL=");
        shell_quote(&b, base);
        buf_puts(&b, "\nexport ANTHROPIC_AUTH_TOKEN=");
        if (mode == SETUP_KEY_INLINE)
                shell_quote(&b, key);
        else
                buf_puts(&b, "\"${BANKR_LLM_KEY}\"");
        buf_putc(&b, '\n');
        return buf_steal(&b, ret);
}

static bool url_is_local(const char *url) {
        const char *h = strstr(url, "://");
        size_t n;

        h = h ? h + 3 : url;
        if (strchr(h, '@') && strchr(h, '@') < h + strcspn(h, "/"))
                h = strchr(h, '@') + 1;
        if (h[0] == '[') {
                n = strcspn(h, "]");
                return n == 4 && strncmp(h, "[::1", 4) == 0;
        }
        n = strcspn(h, ":/");
        return (n == 9 && strncasecmp(h, "localhost", 9) == 0) ||
                (n >= 4 && strncmp(h, "127.", 4) == 0) ||
                (n == 7 && strncmp(h, "0.0.0.0", 7) == 0);
}

static size_t usable_count(const ModelList *models) {
        size_t k = 0;

        for (size_t i = 0; models && i < models->n; i++)
                if (model_usable(models, i))
                        k++;
        return k;
}

static bool has_model(const ModelList *models, const char *id) {
        for (size_t i = 0; models && i < models->n; i++)
                if (streq_ptr(models->models[i].id, id))
                        return true;
        return false;
}

static int cursor_text(const ModelList *models, const char *url, SetupKeyMode mode, const char *key, char **ret) {
        _cleanup_free_ char *base = NULL;
        size_t shown = 0, total = usable_count(models);
        Buf b = {};
        int r;

        r = gateway_base(url, true, &base);
        if (r < 0)
                return r;

        buf_puts(&b, "Cursor: use the Bankr LLM Gateway for Cursor's OpenAI models\n\n"
                     "1. Open Cursor Settings > Models and find \"API Keys\".\n"
                     "2. Enter your Bankr LLM key as the \"OpenAI API Key\":\n");
        if (mode == SETUP_KEY_INLINE)
                buf_printf(&b, "     %s\n", key);
        else
                buf_puts(&b, "     run `bankr-llm key reveal` to print it.\n");
        buf_printf(&b, "3. Turn on \"Override OpenAI Base URL\" and set it to:\n"
                       "     %s\n", base);

        if (total > 0) {
                buf_puts(&b, "4. Add the models you want by id (\"+ Add Model\"), for example:\n");
                for (size_t k = 0; k < ELEMENTSOF(recommended_models); k++)
                        if (has_model(models, recommended_models[k])) {
                                buf_printf(&b, "     %s\n", recommended_models[k]);
                                shown++;
                        }
                /* None of the usual ones offered: show the first few instead. */
                for (size_t i = 0; shown == 0 && i < models->n; i++)
                        if (model_usable(models, i)) {
                                buf_puts(&b, "     ");
                                put_plain(&b, models->models[i].id);
                                buf_putc(&b, '\n');
                                if (++shown == ELEMENTSOF(recommended_models))
                                        break;
                        }
                buf_printf(&b, "   All %zu available models: bankr-llm models\n", total);
        } else
                buf_puts(&b, "4. Add the models you want by id; `bankr-llm models` lists them.\n");
        buf_puts(&b, "5. Click \"Verify\", then pick one of these models in the chat.\n\n"
                     "Note: with the override on, all of Cursor's requests for OpenAI-key models go\n"
                     "through the gateway and are paid from your Bankr LLM credits.\n"
                     "Note: Cursor sends these requests from its own servers, not from your computer,\n"
                     "so the base URL must be reachable from the internet: a gateway on localhost\n"
                     "will not work.\n");
        if (url_is_local(base))
                buf_printf(&b, "\nWarning: %s is a local address, which Cursor's servers cannot reach.\n", base);
        return buf_steal(&b, ret);
}

int setup_preview(SetupTool t, const ModelList *models, const char *gateway_url,
                  SetupKeyMode mode, const char *key, char **ret) {
        int r;

        r = check_key(mode, key);
        if (r < 0)
                return r;
        switch (t) {
        case SETUP_TOOL_OPENCLAW:
        case SETUP_TOOL_OPENCODE: {
                _cleanup_(erase_and_freep) char *provider = NULL;

                /* The preview is exactly what a fresh install writes. */
                r = setup_provider_json(t, models, gateway_url, mode, key, &provider);
                if (r < 0)
                        return r;
                return setup_merge(t, NULL, provider, false, ret, NULL);
        }
        case SETUP_TOOL_CLAUDE:
                return claude_text(gateway_url, mode, key, ret);
        case SETUP_TOOL_CURSOR:
                return cursor_text(models, gateway_url, mode, key, ret);
        default:
                return -EINVAL;
        }
}

static const char *default_model(SetupTool t, const ModelList *models) {
        if (t == SETUP_TOOL_CLAUDE) {
                if (has_model(models, recommended_models[0]))
                        return recommended_models[0];
                for (size_t i = 0; models && i < models->n; i++)
                        if (model_usable(models, i) && model_is_anthropic(&models->models[i]))
                                return models->models[i].id;
        } else
                for (size_t k = 0; k < ELEMENTSOF(recommended_models); k++)
                        if (has_model(models, recommended_models[k]))
                                return recommended_models[k];
        for (size_t i = 0; models && i < models->n; i++)
                if (model_usable(models, i))
                        return models->models[i].id;
        return NULL;
}

int setup_default_hint(SetupTool t, const ModelList *models, char **ret) {
        _cleanup_free_ char *ref = NULL;
        const char *id;
        Buf b = {};

        if (t < 0 || t >= _SETUP_TOOL_MAX)
                return -EINVAL;
        id = default_model(t, models);
        if (!id)
                return -ENODATA;

        switch (t) {
        case SETUP_TOOL_OPENCLAW:
                if (asprintf(&ref, "bankr/%s", id) < 0)
                        return -ENOMEM;
                buf_puts(&b, "To make a Bankr model OpenClaw's default, set agents.defaults.model.primary\n"
                             "in openclaw.json:\n"
                             "  \"agents\": { \"defaults\": { \"model\": { \"primary\": ");
                json_put_string(&b, ref, strlen(ref));
                buf_puts(&b, " } } }\n"
                             "Every model of the list is available as bankr/<id>.\n");
                break;
        case SETUP_TOOL_OPENCODE:
                if (asprintf(&ref, "bankr/%s", id) < 0)
                        return -ENOMEM;
                buf_puts(&b, "To make a Bankr model OpenCode's default, set in opencode.json:\n"
                             "  \"model\": ");
                json_put_string(&b, ref, strlen(ref));
                buf_puts(&b, "\nor choose one per run: bankr-llm opencode -m ");
                shell_word(&b, ref);
                buf_putc(&b, '\n');
                break;
        case SETUP_TOOL_CLAUDE:
                buf_puts(&b, "To choose the model, pass it to Claude Code: bankr-llm claude --model ");
                shell_word(&b, id);
                buf_puts(&b, "\n(or set ANTHROPIC_MODEL).\n");
                break;
        case SETUP_TOOL_CURSOR:
                buf_puts(&b, "Pick the model (for example ");
                put_plain(&b, id);
                buf_puts(&b, ") in the model menu of Cursor's chat.\n");
                break;
        default:
                return -EINVAL;
        }
        return buf_steal(&b, ret);
}

/* ---- Merge ---- */

/* The object member key of parent, created empty at the end when absent.
 * NULL with *ret_type set when it exists but is no object. */
static int object_child(struct json_object *parent, const char *key, struct json_object **ret,
                        const char **ret_type) {
        struct json_object *child;
        int r;

        if (json_object_object_get_ex(parent, key, &child)) {
                if (!json_object_is_type(child, json_type_object)) {
                        *ret = NULL;
                        *ret_type = json_type_phrase(child);
                        return 0;
                }
                *ret = child;
                return 0;
        }
        child = json_object_new_object();
        r = json_add(parent, key, child);
        if (r < 0)
                return r;
        *ret = child;
        return 0;
}

/* Returns a copy of obj with key=val first and everything else after it. */
static int object_prepend(struct json_object *obj, const char *key, struct json_object *val,
                          struct json_object **ret) {
        _cleanup_(json_erase_and_putp) struct json_object *n = json_object_new_object();
        int r;

        if (!n)
                return -ENOMEM;
        r = json_add(n, key, val);
        if (r < 0)
                return r;
        json_object_object_foreach(obj, k, v) {
                /* v may be NULL: JSON null. */
                if (json_object_object_add(n, k, json_object_get(v)) < 0) {
                        json_object_put(v);
                        return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(n);
        return 0;
}

static int merge_error(char **ret_error, const char *what, const char *remedy, bool force) {
        char *e;

        if (force)
                e = asprintf(&e, "It is not strict JSON: %s.", what) < 0 ? NULL : e;
        else
                e = asprintf(&e,
                             "It is not strict JSON: %s. bankr-llm rewrites only strict JSON, so that "
                             "nothing in the file is lost; %s, or use --force to move the file aside "
                             "(it is kept as a backup) and write a fresh one.",
                             what, remedy) < 0 ? NULL : e;
        if (!e)
                return -ENOMEM;
        *ret_error = e;
        return 0;
}

static int conflict_error(char **ret_error, const char *member, const char *type, bool force) {
        char *e;

        if (force)
                e = asprintf(&e, "Its \"%s\" is %s, not an object.", member, type) < 0 ? NULL : e;
        else
                e = asprintf(&e,
                             "Its \"%s\" is %s, not an object, so there is no place for the bankr "
                             "provider. bankr-llm will not change it; fix it by hand, or use --force to "
                             "move the file aside (it is kept as a backup) and write a fresh one.",
                             member, type) < 0 ? NULL : e;
        if (!e)
                return -ENOMEM;
        *ret_error = e;
        return 0;
}

/* Puts provider into root; 0, or -EBADMSG with *ret_member and *ret_type set. */
static int merge_into(SetupTool t, struct json_object **root, struct json_object *provider,
                      const char **ret_member, const char **ret_type) {
        struct json_object *models, *providers, *prov;
        const char *type = NULL;
        int r;

        switch (t) {
        case SETUP_TOOL_OPENCLAW:
                r = object_child(*root, "models", &models, &type);
                if (r < 0)
                        return r;
                if (!models) {
                        *ret_member = "models";
                        *ret_type = type;
                        return -EBADMSG;
                }
                r = object_child(models, "providers", &providers, &type);
                if (r < 0)
                        return r;
                if (!providers) {
                        *ret_member = "models.providers";
                        *ret_type = type;
                        return -EBADMSG;
                }
                /* json-c replaces an existing key's value in place: its
                 * position in the file stays. */
                return json_add(providers, "bankr", json_object_get(provider));

        case SETUP_TOOL_OPENCODE:
                r = object_child(*root, "provider", &prov, &type);
                if (r < 0)
                        return r;
                if (!prov) {
                        *ret_member = "provider";
                        *ret_type = type;
                        return -EBADMSG;
                }
                r = json_add(prov, "bankr", json_object_get(provider));
                if (r < 0)
                        return r;
                if (!json_object_object_get_ex(*root, "$schema", NULL)) {
                        struct json_object *n;

                        r = object_prepend(*root, "$schema", json_object_new_string(OPENCODE_SCHEMA), &n);
                        if (r < 0)
                                return r;
                        json_object_put(*root);
                        *root = n;
                }
                return 0;

        default:
                return -EOPNOTSUPP;
        }
}

int setup_merge(SetupTool t, const char *existing, const char *provider_json, bool force,
                char **ret_text, char **ret_error) {
        _cleanup_(json_erase_and_putp) struct json_object *root = NULL, *provider = NULL;
        _cleanup_free_ char *what = NULL, *reason = NULL;
        const char *remedy = NULL, *member = NULL, *type = NULL;
        char *text;
        int r;

        if (!setup_tool_has_config(t))
                return t >= 0 && t < _SETUP_TOOL_MAX ? -EOPNOTSUPP : -EINVAL;
        if (!provider_json || !ret_text)
                return -EINVAL;

        r = json_parse_strict(provider_json, &provider, &what, &remedy);
        if (r < 0 || !provider)
                return r == -ENOMEM ? r : -EINVAL; /* ours: a bug, not the user's */
        free(TAKE_PTR(what));

        if (existing) {
                r = json_parse_strict(existing, &root, &what, &remedy);
                if (r == -EBADMSG) {
                        r = merge_error(&reason, what, remedy, force);
                        if (r < 0)
                                return r;
                        if (!force)
                                goto refuse;
                } else if (r < 0)
                        return r;
        }
        if (!root && !(root = json_object_new_object()))
                return -ENOMEM;

        r = merge_into(t, &root, provider, &member, &type);
        if (r == -EBADMSG) {
                r = conflict_error(&reason, member, type, force);
                if (r < 0)
                        return r;
                if (!force)
                        goto refuse;
                json_erase_and_putp(&root);
                root = json_object_new_object();
                if (!root)
                        return -ENOMEM;
                r = merge_into(t, &root, provider, &member, &type);
        }
        if (r < 0)
                return r;

        r = json_to_text(root, &text);
        if (r < 0)
                return r;
        *ret_text = text;
        if (!reason)
                return 0;
        /* force: the old content was discarded, say why. */
        if (ret_error)
                *ret_error = TAKE_PTR(reason);
        return 1;

refuse:
        if (ret_error)
                *ret_error = TAKE_PTR(reason);
        return -EBADMSG;
}

/* ---- keys a backup must not keep ---------------------------------------- */

const char *setup_key_reference(SetupTool t) {
        switch (t) {
        case SETUP_TOOL_OPENCLAW:
                return "${BANKR_API_KEY}";
        case SETUP_TOOL_OPENCODE:
                return "{env:BANKR_API_KEY}";
        default:
                return NULL;
        }
}

static bool is_key_char(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

char **setup_keys_free(char **l) {
        for (char **k = l; k && *k; k++)
                explicit_bzero(*k, strlen(*k));
        return strv_free(l);
}

int setup_inline_keys(SetupTool t, const char *existing, char ***ret) {
        _cleanup_(setup_keys_freep) char **l = NULL;
        struct json_object *o, *v = NULL;
        const char *ref = setup_key_reference(t);
        int r;

        *ret = NULL;
        if (!ref || !existing)
                return 0;

        /* Where our provider entry keeps it, however it is spelt. */
        o = json_tokener_parse(existing);
        if (o) {
                struct json_object *p = NULL;
                bool found = t == SETUP_TOOL_OPENCLAW ?
                        json_object_object_get_ex(o, "models", &p) && json_object_object_get_ex(p, "providers", &p) &&
                                json_object_object_get_ex(p, "bankr", &p) && json_object_object_get_ex(p, "apiKey", &v) :
                        json_object_object_get_ex(o, "provider", &p) && json_object_object_get_ex(p, "bankr", &p) &&
                                json_object_object_get_ex(p, "options", &p) && json_object_object_get_ex(p, "apiKey", &v);
                if (found && json_object_is_type(v, json_type_string) && !streq(json_object_get_string(v), ref) &&
                    json_object_get_string_len(v) > 0) {
                        r = strv_extend(&l, json_object_get_string(v));
                        if (r < 0) {
                                json_object_put(o);
                                return r;
                        }
                }
                json_object_put(o);
        }

        /* Anything that looks like a Bankr key (bk_…), anywhere: also in a
         * file that is not JSON and is being replaced with --force. */
        for (const char *s = existing; (s = strstr(s, "bk_"));) {
                size_t n = 3;
                while (is_key_char(s[n]))
                        n++;
                if (n >= 3 + 8 && (s == existing || !is_key_char(s[-1]))) {
                        _cleanup_(erase_and_freep) char *k = strndup(s, n);
                        if (!k)
                                return -ENOMEM;
                        if (!strv_contains(l, k) && (r = strv_extend(&l, k)) < 0)
                                return r;
                }
                s += n;
        }
        *ret = TAKE_PTR(l);
        return 0;
}
