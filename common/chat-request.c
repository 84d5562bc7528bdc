/* SPDX-License-Identifier: MIT */
/* Request bodies of both formats (see chat-request.h). */
#include <json-c/json.h>
#include <math.h>

#include "buf.h"
#include "chat-request.h"
#include "json-util.h"

ChatMessage *chat_messages_free(ChatMessage *messages, size_t n) {
        for (size_t i = 0; messages && i < n; i++)
                free((char *) messages[i].content);
        free(messages);
        return NULL;
}

static bool role_is_valid(const char *role) {
        return role && (streq(role, "system") || streq(role, "user") || streq(role, "assistant"));
}

static int json_append_message(json_object *a, const char *role, const char *content) {
        json_object *m;
        int r;

        m = json_object_new_object();
        if (!m)
                return -ENOMEM;
        r = json_add(m, "role", json_object_new_string(role));
        if (r >= 0)
                r = json_add(m, "content", json_object_new_string(content));
        if (r < 0) {
                json_object_put(m);
                return r;
        }
        return json_append(a, m);
}

static bool sampling_param_valid(double d) {
        return isnan(d) || (isfinite(d) && d >= 0);
}

int chat_request_build(ChatApi api, const ChatRequestParams *p, char **ret_json) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_(buf_done) Buf system = {};
        json_object *messages;
        size_t n_kept = 0;
        int r;

        if (!p || !ret_json || api < 0 || api >= _CHAT_API_MAX)
                return -EINVAL;
        if (isempty(p->model) || p->n_messages == 0 || !p->messages)
                return -EINVAL;
        for (size_t i = 0; i < p->n_messages; i++)
                if (!role_is_valid(p->messages[i].role) || !p->messages[i].content)
                        return -EINVAL;
        if (!sampling_param_valid(p->temperature) || !sampling_param_valid(p->top_p))
                return -EINVAL;

        root = json_object_new_object();
        if (!root)
                return -ENOMEM;
        r = json_add(root, "model", json_object_new_string(p->model));
        if (r < 0)
                return r;

        messages = json_object_new_array();
        r = json_add(root, "messages", messages);
        if (r < 0)
                return r;

        if (api == CHAT_API_OPENAI) {
                if (!isempty(p->system)) {
                        r = json_append_message(messages, "system", p->system);
                        if (r < 0)
                                return r;
                }
                for (size_t i = 0; i < p->n_messages; i++) {
                        r = json_append_message(messages, p->messages[i].role, p->messages[i].content);
                        if (r < 0)
                                return r;
                }
        } else {
                if (!isempty(p->system)) {
                        r = buf_append(&system, p->system, strlen(p->system));
                        if (r < 0)
                                return r;
                }
                for (size_t i = 0; i < p->n_messages; i++) {
                        const ChatMessage *m = p->messages + i;

                        if (streq(m->role, "system")) {
                                /* Anthropic has no system role: gather them
                                 * into the top-level field. */
                                if (system.p) {
                                        r = buf_append(&system, "\n\n", 2);
                                        if (r < 0)
                                                return r;
                                }
                                r = buf_append(&system, m->content, strlen(m->content));
                                if (r < 0)
                                        return r;
                                continue;
                        }

                        r = json_append_message(messages, m->role, m->content);
                        if (r < 0)
                                return r;
                        n_kept++;
                }
                if (n_kept == 0)
                        return -EINVAL;
                if (system.p) {
                        r = json_add(root, "system", json_object_new_string(system.p));
                        if (r < 0)
                                return r;
                }
        }

        uint32_t max_tokens = p->max_tokens;
        if (api == CHAT_API_ANTHROPIC && max_tokens == 0)
                max_tokens = p->model_max_output_tokens > 0 ?
                        MIN(p->model_max_output_tokens, CHAT_ANTHROPIC_DEFAULT_MAX_TOKENS) :
                        CHAT_ANTHROPIC_DEFAULT_MAX_TOKENS;
        if (max_tokens > 0) {
                r = json_add(root, api == CHAT_API_OPENAI ? "max_completion_tokens" : "max_tokens",
                             json_object_new_int64(max_tokens));
                if (r < 0)
                        return r;
        }

        if (!isnan(p->temperature)) {
                r = json_add(root, "temperature", json_new_double_short(p->temperature));
                if (r < 0)
                        return r;
        }
        if (!isnan(p->top_p)) {
                r = json_add(root, "top_p", json_new_double_short(p->top_p));
                if (r < 0)
                        return r;
        }

        if (p->stop && p->stop[0]) {
                json_object *a = json_object_new_array();

                r = json_add(root, api == CHAT_API_OPENAI ? "stop" : "stop_sequences", a);
                if (r < 0)
                        return r;
                for (char *const *s = p->stop; *s; s++) {
                        r = json_append(a, json_object_new_string(*s));
                        if (r < 0)
                                return r;
                }
        }

        r = json_add(root, "stream", json_object_new_boolean(true));
        if (r < 0)
                return r;

        if (api == CHAT_API_OPENAI) {
                json_object *o = json_object_new_object();

                r = json_add(root, "stream_options", o);
                if (r < 0)
                        return r;
                r = json_add(o, "include_usage", json_object_new_boolean(true));
                if (r < 0)
                        return r;
        }

        const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return -ENOMEM;
        char *j = strdup(s);
        if (!j)
                return -ENOMEM;
        *ret_json = j;
        return 0;
}
