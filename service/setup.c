/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Setup: tool integrations. Preview shows what a tool gets
 * from the current model list and gateway URL, Install merges our provider
 * entry into the tool's config file (OpenClaw, OpenCode), and Environment
 * hands the launcher (bankr-llm claude/opencode) the variables the tool
 * needs. The text comes from common/setup-gen.c, the file writing from
 * common/safe-install.c; this module validates, authorizes and maps errors.
 *
 * One rule for the key: whatever returns the key or writes it to a file
 * (Preview and Install with key=inline, Environment) needs polkit
 * bot.bankr.LLM1.reveal-key, asked before anything changes.
 *
 * The default key mode is "endpoint": the configs point at the local
 * endpoint (context_endpoint_url()) and get a token from `bankr-llm token`
 * through each tool's credential helper, so neither the key nor a
 * long-lived token is written anywhere. The helper's path is BINDIR's
 * bankr-llm, or $BANKR_LLM_HELPER (absolute) from the service's environment
 * (the tests point it at the build tree).
 *
 * Install does its file I/O synchronously in the handler: it is a few small
 * local reads, one write, fsync and rename in the user's own config
 * directories, which takes milliseconds; a worker thread would add more risk
 * than it removes. Nothing here touches the network.
 */
#include <sys/stat.h>

#include "log.h"
#include "models.h"
#include "setup.h"
#include "polkit.h"
#include "safe-install.h"
#include "setup-gen.h"


struct Setup {
        Context *context;

        /* From the service's environment at start: where the tools' configs live. */
        char *home;
        char *xdg_config_home;
        char *openclaw_config_path;
        char *claude_config_dir;
        char *helper; /* absolute path of bankr-llm, the tools' credential helper */
};

typedef struct SetupOptions {
        SetupKeyMode key;
        bool force;
} SetupOptions;

static const char *tool_title(SetupTool t) {
        switch (t) {
        case SETUP_TOOL_OPENCLAW:
                return "OpenClaw";
        case SETUP_TOOL_OPENCODE:
                return "OpenCode";
        case SETUP_TOOL_CLAUDE:
                return "Claude Code";
        case SETUP_TOOL_CURSOR:
                return "Cursor";
        default:
                return "?";
        }
}

static int read_tool(sd_bus_message *m, SetupTool *ret, sd_bus_error *error) {
        const char *name;
        SetupTool t;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        t = setup_tool_from_string(name);
        if (t < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown tool \"%s\": use openclaw, opencode, claude or cursor.", name);
        *ret = t;
        return 0;
}

/* a{sv}: key s ("env" default, "inline"); force b where allowed. Unknown
 * options are refused, not ignored: a typo must not silently write the key. */
static int read_options(sd_bus_message *m, const char *method, bool allow_force, SetupOptions *ret,
                        sd_bus_error *error) {
        SetupOptions o = { .key = SETUP_KEY_ENDPOINT };
        bool have_key = false, have_force = false;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *contents;

                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                r = sd_bus_message_peek_type(m, NULL, &contents);
                if (r < 0)
                        return r;

                if (streq(name, "key")) {
                        const char *v;

                        if (have_key)
                                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Option \"key\" given twice.");
                        if (!streq(contents, "s"))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option \"key\" must be a string (s), not \"%s\".", contents);
                        r = sd_bus_message_read(m, "v", "s", &v);
                        if (r < 0)
                                return r;
                        o.key = setup_key_mode_from_string(v);
                        if (o.key < 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Unknown key mode \"%s\": use \"endpoint\" (the default: the config "
                                                         "points at the local endpoint and gets a token from bankr-llm), "
                                                         "\"env\" (it refers to an environment variable holding the key) or "
                                                         "\"inline\" (the key itself).", v);
                        have_key = true;
                } else if (streq(name, "force") && allow_force) {
                        int b;

                        if (have_force)
                                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Option \"force\" given twice.");
                        if (!streq(contents, "b"))
                                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                         "Option \"force\" must be a boolean (b), not \"%s\".", contents);
                        r = sd_bus_message_read(m, "v", "b", &b);
                        if (r < 0)
                                return r;
                        o.force = b;
                        have_force = true;
                } else if (streq(name, "force"))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Option \"force\" applies to Install only; %s changes no file.", method);
                else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown option \"%s\" for %s: valid options are key%s.", name, method,
                                                 allow_force ? " and force" : "");

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        *ret = o;
        return 0;
}

/* The tool's config file, absolute. OPENCLAW_CONFIG_PATH may start with ~/
 * like OpenClaw accepts it; anything else relative is refused, since the
 * service's working directory means nothing to the user. */
static int config_path(Setup *s, SetupTool t, char **ret, sd_bus_error *error) {
        _cleanup_free_ char *expanded = NULL, *p = NULL;
        const char *oc = s->openclaw_config_path;
        int r;

        if (oc && (streq(oc, "~") || startswith(oc, "~/"))) {
                if (isempty(s->home))
                        return sd_bus_error_set(error, SD_BUS_ERROR_FAILED,
                                                "OPENCLAW_CONFIG_PATH starts with ~, but HOME is not set for bankr-llmd.");
                if (asprintf(&expanded, "%s%s", s->home, oc + 1) < 0)
                        return -ENOMEM;
                oc = expanded;
        }

        r = setup_tool_config_path_full(t, s->home, s->xdg_config_home, oc, s->claude_config_dir, &p);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                         "Cannot tell where %s's config file is: HOME is not set for bankr-llmd.",
                                         tool_title(t));
        if (p[0] != '/')
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                         "OPENCLAW_CONFIG_PATH (%s) in bankr-llmd's environment is not an absolute path.", p);
        *ret = TAKE_PTR(p);
        return 0;
}

/* The key for inline output, after polkit said yes. Returns 1 and sets
 * *ret_key when authorized, 0 when polkit is being asked (the handler must
 * return 1 and runs again later), or <0 with error set. */
static int authorize_key(Setup *s, sd_bus_message *m, const char **ret_key, sd_bus_error *error) {
        int r;

        /* No password prompt for nothing: without a key the answer is NoKey anyway. */
        if (!context_llm_key(s->context))
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY,
                                        "There is no key. Set one with \"bankr-llm key set\".");

        r = polkit_check_host_async(s->context->polkit, m, error);
        if (r <= 0)
                return r;
        r = polkit_check_async(s->context->polkit, m, ACTION_REVEAL_KEY, error);
        if (r <= 0)
                return r;

        /* The key may have gone while polkit was asked. */
        *ret_key = context_llm_key(s->context);
        if (!*ret_key)
                return sd_bus_error_set(error, BUS_ERROR_NO_KEY, "The key was removed while authorization was pending.");
        return 1;
}

/* Maps a failure of safe_install_read()/safe_install() to a bus error; the
 * sentence from there names the file and the cause. */
static int file_error(sd_bus_error *error, int r, const char *path, const char *sentence) {
        const char *name;

        if (r == -ENOMEM)
                return r;
        /* EPERM: an immutable file or directory, which even root cannot write. */
        name = r == -EACCES || r == -EPERM || r == -EROFS ? SD_BUS_ERROR_ACCESS_DENIED : SD_BUS_ERROR_FAILED;
        if (!isempty(sentence))
                return sd_bus_error_set(error, name, sentence);
        return sd_bus_error_setf(error, name, "Cannot write %s: %s.", path, strerror(-r));
}

/* What the generators get for a mode: the URL the config points at, and
 * for key=endpoint the helper in place of the key. Cursor's servers cannot
 * reach the local endpoint: it always gets the gateway and key=env text. */
static int mode_inputs(Setup *s, SetupTool t, SetupKeyMode *mode, const char **ret_url, const char **ret_helper,
                       sd_bus_error *error) {
        const char *url;

        *ret_helper = NULL;
        if (*mode != SETUP_KEY_ENDPOINT) {
                *ret_url = context_gateway_url(s->context);
                return 0;
        }
        if (t == SETUP_TOOL_CURSOR) {
                *mode = SETUP_KEY_ENV;
                *ret_url = context_gateway_url(s->context);
                return 0;
        }
        url = context_endpoint_url(s->context);
        if (isempty(url))
                return sd_bus_error_setf(error, SD_BUS_ERROR_FAILED,
                                         "The local endpoint is not listening, so there is nothing for %s to point at "
                                         "(Endpoint.Url is empty). Use key mode \"env\", or see the service's log.",
                                         tool_title(t));
        *ret_url = url;
        *ret_helper = s->helper;
        return 0;
}

static const ModelList *current_models(Setup *s) {
        /* NULL (no list at all) gives a provider without models; the
         * generators take it like an empty list. */
        return models_list(s->context->models);
}

/* The arguments of Preview and Install: (s tool, a{sv} options). */
static int read_call(sd_bus_message *m, const char *method, bool allow_force, SetupTool *ret_tool, SetupOptions *ret,
                     sd_bus_error *error) {
        int r;

        r = read_tool(m, ret_tool, error);
        if (r < 0)
                return r;
        return read_options(m, method, allow_force, ret, error);
}

static int method_preview(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_erase_ char *text = NULL;
        _cleanup_free_ char *path = NULL;
        Setup *s = userdata;
        const char *key = NULL, *url, *helper;
        SetupOptions o;
        SetupTool t;
        int r;

        r = read_call(m, "Preview", false, &t, &o, error);
        if (r < 0)
                return r;
        if (setup_tool_can_install(t, o.key)) {
                r = config_path(s, t, &path, error);
                if (r < 0)
                        return r;
        }
        r = mode_inputs(s, t, &o.key, &url, &helper, error);
        if (r < 0)
                return r;

        if (o.key == SETUP_KEY_INLINE) {
                r = authorize_key(s, m, &key, error);
                if (r <= 0)
                        return r < 0 ? r : 1;
        }

        r = setup_preview(t, current_models(s), url, o.key, key ?: helper, &text);
        if (r < 0)
                return log_error_errno(r, "Failed to generate the %s preview: %m", setup_tool_to_string(t));

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        if (key)
                (void) sd_bus_message_sensitive(reply);
        r = sd_bus_message_append(reply, "ss", text, strempty(path));
        if (r < 0)
                return r;
        if (key)
                log_info("Showed the %s setup with the key inline to a caller authorized by polkit.", tool_title(t));
        return sd_bus_send(NULL, reply, NULL);
}

static int method_install(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_erase_ char *provider = NULL, *old = NULL, *text = NULL;
        _cleanup_free_ char *path = NULL, *backup = NULL, *err = NULL, *reason = NULL, *secret = NULL;
        Setup *s = userdata;
        const char *key = NULL, *url, *helper;
        SetupOptions o;
        SetupTool t;
        int r;

        r = read_call(m, "Install", true, &t, &o, error);
        if (r < 0)
                return r;
        if (t == SETUP_TOOL_CLAUDE && !setup_tool_can_install(t, o.key))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "With key mode \"%s\" Claude Code prints instructions only; Install writes "
                                         "its settings.json with key mode \"endpoint\" (the default), or launch it "
                                         "with \"bankr-llm claude\".", setup_key_mode_to_string(o.key));
        if (!setup_tool_can_install(t, o.key))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "%s has no config file bankr-llm writes: it prints instructions only; "
                                         "use Preview or \"bankr-llm setup %s\".",
                                         tool_title(t), setup_tool_to_string(t));
        r = config_path(s, t, &path, error);
        if (r < 0)
                return r;

        /* Authorize before touching anything: no sandboxed app writes the
         * host's tool configs, and an inline key needs reveal-key too. */
        r = polkit_check_host_async(s->context->polkit, m, error);
        if (r <= 0)
                return r < 0 ? r : 1;
        if (o.key == SETUP_KEY_INLINE) {
                r = authorize_key(s, m, &key, error);
                if (r <= 0)
                        return r < 0 ? r : 1;
        }
        r = mode_inputs(s, t, &o.key, &url, &helper, error);
        if (r < 0)
                return r;

        r = setup_provider_json(t, current_models(s), url, o.key, key ?: helper, &provider);
        if (r < 0)
                return log_error_errno(r, "Failed to generate the %s provider: %m", setup_tool_to_string(t));
        r = setup_secret_provider_json(t, o.key, helper, &secret);
        if (r < 0)
                return log_error_errno(r, "Failed to generate the %s secret provider: %m", setup_tool_to_string(t));

        r = safe_install_read(path, &old, &err);
        if (r == -EFBIG) /* over SAFE_INSTALL_MAX_SIZE: the sentence names the size and the cap */
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG, "%s", strna(err));
        if (r == -EBADMSG && o.force) {
                /* NUL bytes: not text at all; with force it goes aside as a backup. */
                log_notice("Replacing %s, kept as a backup: %s", path, strna(err));
                err = mfree(err);
        } else if (r == -EBADMSG)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG, "%s", strna(err));
        else if (r < 0 && r != -ENOENT)
                return file_error(error, r, path, err);

        r = setup_merge_full(t, old, provider, secret, o.force, &text, &reason);
        if (r == -EBADMSG)
                return sd_bus_error_setf(error, BUS_ERROR_INVALID_CONFIG, "%s was left untouched. %s", path, strna(reason));
        if (r < 0)
                return log_error_errno(r, "Failed to merge the %s provider into %s: %m", setup_tool_to_string(t), path);
        if (r > 0)
                log_notice("Replacing %s, kept as a backup: %s", path, strna(reason));

        /* A key the new text drops must not live on in the backup. */
        _cleanup_(setup_keys_freep) char **old_keys = NULL;
        r = setup_inline_keys(t, old, &old_keys);
        if (r < 0)
                return log_error_errno(r, "Failed to look for keys in %s: %m", path);
        r = safe_install_full(path, text, 0600, o.key == SETUP_KEY_INLINE, (const char *const *) old_keys,
                              setup_key_reference(t), &backup, &err);
        if (r < 0) {
                log_warning("Failed to install the %s provider: %s", tool_title(t), strna(err));
                return file_error(error, r, path, err);
        }

        if (backup)
                log_info("Installed the bankr provider (key %s) in %s; the previous version is %s.",
                         setup_key_mode_to_string(o.key), path, backup);
        else
                log_info("Installed the bankr provider (key %s) in %s.", setup_key_mode_to_string(o.key), path);
        return sd_bus_reply_method_return(m, "ss", path, strempty(backup));
}

static int method_environment(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Setup *s = userdata;
        const char *key = NULL;
        SetupTool t;
        int r;

        r = read_tool(m, &t, error);
        if (r < 0)
                return r;
        if (t != SETUP_TOOL_CLAUDE && t != SETUP_TOOL_OPENCODE)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Environment is for the tools bankr-llm launches (claude, opencode); "
                                         "for %s use Preview or Install.", setup_tool_to_string(t));

        r = authorize_key(s, m, &key, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        /* Keep the key out of sd-bus's message dumps and the journal. */
        (void) sd_bus_message_sensitive(reply);
        if (t == SETUP_TOOL_CLAUDE)
                r = sd_bus_message_append(reply, "a{ss}", 2,
                                          "ANTHROPIC_BASE_URL", context_gateway_url(s->context),
                                          "ANTHROPIC_AUTH_TOKEN", key);
        else
                /* The OpenCode provider refers to {env:BANKR_API_KEY}: it gets the LLM key in use. */
                r = sd_bus_message_append(reply, "a{ss}", 1, "BANKR_API_KEY", key);
        if (r < 0)
                return r;
        log_info("Handed the key to a caller launching %s, authorized by polkit.", tool_title(t));
        return sd_bus_send(NULL, reply, NULL);
}

static int property_get_tools(sd_bus *bus, const char *path, const char *interface, const char *property,
                              sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        int r;

        r = sd_bus_message_open_container(reply, 'a', "s");
        if (r < 0)
                return r;
        for (SetupTool t = 0; t < _SETUP_TOOL_MAX; t++) {
                r = sd_bus_message_append(reply, "s", setup_tool_to_string(t));
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(reply);
}

const sd_bus_vtable setup_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Tools", "as", property_get_tools, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Preview", SD_BUS_ARGS("s", tool, "a{sv}", options), SD_BUS_RESULT("s", text, "s", path),
                                method_preview, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Install", SD_BUS_ARGS("s", tool, "a{sv}", options),
                                SD_BUS_RESULT("s", path, "s", backup_path), method_install, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Environment", SD_BUS_ARGS("s", tool), SD_BUS_RESULT("a{ss}", env), method_environment,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END,
};

/* --- lifetime ----------------------------------------------------------- */

static int dup_env(const char *name, char **ret) {
        const char *v = getenv(name);

        if (isempty(v)) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

int setup_new(Context *c, Setup **ret) {
        Setup *s;

        s = calloc(1, sizeof(Setup));
        if (!s)
                return -ENOMEM;
        s->context = c;
        if (dup_env("HOME", &s->home) < 0 || dup_env("XDG_CONFIG_HOME", &s->xdg_config_home) < 0 ||
            dup_env("OPENCLAW_CONFIG_PATH", &s->openclaw_config_path) < 0 ||
            dup_env("CLAUDE_CONFIG_DIR", &s->claude_config_dir) < 0 || dup_env("BANKR_LLM_HELPER", &s->helper) < 0) {
                setup_free(s);
                return -ENOMEM;
        }
        if (s->helper && s->helper[0] != '/') {
                log_warning("Ignoring BANKR_LLM_HELPER=%s: not an absolute path.", s->helper);
                s->helper = mfree(s->helper);
        }
        if (!s->helper && !(s->helper = strdup(BINDIR "/bankr-llm"))) {
                setup_free(s);
                return -ENOMEM;
        }
        *ret = s;
        return 0;
}

Setup *setup_free(Setup *s) {
        if (!s)
                return NULL;
        free(s->home);
        free(s->xdg_config_home);
        free(s->openclaw_config_path);
        free(s->claude_config_dir);
        free(s->helper);
        free(s);
        return NULL;
}
