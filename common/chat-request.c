/* SPDX-License-Identifier: MIT */
/* Request bodies of both formats (see chat-request.h). */
#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <strings.h>

#include "buf.h"
#include "chat-request.h"
#include "image-type.h"
#include "json-util.h"

static const char *const chat_privacy_table[_CHAT_PRIVACY_MAX] = {
        [CHAT_PRIVACY_STANDARD] = "standard",
        [CHAT_PRIVACY_ZDR] = "zdr",
        [CHAT_PRIVACY_PRIVATE] = "private",
};

DEFINE_STRING_TABLE_LOOKUP(chat_privacy, ChatPrivacy, _CHAT_PRIVACY_INVALID);

ChatPrivacy chat_privacy_from_header(const char *s) {
        if (!s)
                return _CHAT_PRIVACY_INVALID;
        for (ChatPrivacy p = 0; p < _CHAT_PRIVACY_MAX; p++)
                if (strcasecmp(s, chat_privacy_table[p]) == 0)
                        return p;
        return _CHAT_PRIVACY_INVALID;
}

ChatPrivacy chat_privacy_from_model_suffix(const char *id, size_t *ret_len) {
        size_t n = id ? strlen(id) : 0;
        ChatPrivacy p = CHAT_PRIVACY_STANDARD;

        if (n > 4 && strcasecmp(id + n - 4, ":zdr") == 0)
                p = CHAT_PRIVACY_ZDR, n -= 4;
        else if (n > 8 && strcasecmp(id + n - 8, ":private") == 0)
                p = CHAT_PRIVACY_PRIVATE, n -= 8;
        if (ret_len)
                *ret_len = n;
        return p;
}

ChatPrivacy chat_privacy_from_url(const char *url) {
        size_t n = url ? strlen(url) : 0;

        while (n > 0 && url[n - 1] == '/')
                n--;
        if (n >= 4 && strncasecmp(url + n - 4, "/zdr", 4) == 0)
                return CHAT_PRIVACY_ZDR;
        if (n >= 8 && strncasecmp(url + n - 8, "/private", 8) == 0)
                return CHAT_PRIVACY_PRIVATE;
        return CHAT_PRIVACY_STANDARD;
}

ChatMessage *chat_messages_free(ChatMessage *messages, size_t n) {
        for (size_t i = 0; messages && i < n; i++)
                free((char *) messages[i].content);
        free(messages);
        return NULL;
}

static bool role_is_valid(const char *role) {
        return role && (streq(role, "system") || streq(role, "user") || streq(role, "assistant"));
}

/* The image's data as a JSON string, written straight into json-c's output
 * (a data: URL for OpenAI, bare base64 for Anthropic): the base64 alphabet
 * needs no escaping, so the megabytes are neither copied into a string
 * object first nor scanned for escapes. */
typedef struct ImageValue {
        const ChatImage *img;
        bool data_url;
} ImageValue;

static int image_value_serialize(json_object *o, struct printbuf *pb, int level, int flags) {
        const ImageValue *v = json_object_get_userdata(o);
        char chunk[BASE64_LEN(3 * 1024)];
        const uint8_t *p = v->img->data;

        if (printbuf_memappend(pb, "\"", 1) < 0)
                return -1;
        if (v->data_url && (printbuf_memappend(pb, "data:", 5) < 0 ||
                            printbuf_memappend(pb, v->img->mime, (int) strlen(v->img->mime)) < 0 ||
                            printbuf_memappend(pb, ";base64,", 8) < 0))
                return -1;
        for (size_t i = 0; i < v->img->size; i += 3 * 1024) {
                size_t n = MIN(v->img->size - i, (size_t) 3 * 1024);
                if (printbuf_memappend(pb, chunk, (int) base64_encode_to(p + i, n, chunk)) < 0)
                        return -1;
        }
        return printbuf_memappend(pb, "\"", 1) < 0 ? -1 : 0;
}

static void image_value_free(json_object *o, void *userdata) {
        free(userdata);
}

static int json_add_base64(json_object *o, const char *key, bool data_url, const ChatImage *img) {
        json_object *v;
        ImageValue *iv;

        if (img->size > (size_t) INT32_MAX / 2)
                return -EFBIG; /* printbuf counts in int */
        iv = malloc(sizeof(ImageValue));
        if (!iv)
                return -ENOMEM;
        *iv = (ImageValue) { .img = img, .data_url = data_url };
        v = json_object_new_string("");
        if (!v) {
                free(iv);
                return -ENOMEM;
        }
        json_object_set_serializer(v, image_value_serialize, iv, image_value_free);
        return json_add(o, key, v);
}

/* One image as a content part of the format. */
static json_object *image_part(ChatApi api, const ChatImage *img) {
        json_object *part = json_object_new_object(), *inner;
        int r;

        if (!part)
                return NULL;
        inner = json_object_new_object();
        /* part owns inner from here on (json_add frees it on failure). */
        r = json_add(part, api == CHAT_API_OPENAI ? "image_url" : "source", inner);
        if (r >= 0 && api == CHAT_API_OPENAI) {
                r = json_add(part, "type", json_object_new_string("image_url"));
                if (r >= 0)
                        r = json_add_base64(inner, "url", true, img);
        } else if (r >= 0) {
                r = json_add(part, "type", json_object_new_string("image"));
                if (r >= 0)
                        r = json_add(inner, "type", json_object_new_string("base64"));
                if (r >= 0)
                        r = json_add(inner, "media_type", json_object_new_string(img->mime));
                if (r >= 0)
                        r = json_add_base64(inner, "data", false, img);
        }
        if (r < 0) {
                json_object_put(part);
                return NULL;
        }
        return part;
}

static int json_append_message_full(ChatApi api, json_object *a, const char *role, const char *content,
                                    const ChatRequestParams *p, size_t index) {
        json_object *m, *c;
        bool images = false;
        int r;

        for (size_t i = 0; i < p->n_images; i++)
                if (p->images[i].message == index)
                        images = true;

        m = json_object_new_object();
        if (!m)
                return -ENOMEM;
        r = json_add(m, "role", json_object_new_string(role));
        if (r >= 0 && !images)
                r = json_add(m, "content", json_object_new_string(content));
        else if (r >= 0) {
                json_object *text = NULL;

                c = json_object_new_array();
                r = json_add(m, "content", c);
                if (r >= 0 && !isempty(content)) {
                        text = json_object_new_object();
                        r = json_add(text, "type", json_object_new_string("text"));
                        if (r >= 0)
                                r = json_add(text, "text", json_object_new_string(content));
                        if (r < 0)
                                json_object_put(text);
                        else if (api == CHAT_API_OPENAI)
                                r = json_append(c, text), text = NULL;
                }
                for (size_t i = 0; r >= 0 && i < p->n_images; i++)
                        if (p->images[i].message == index) {
                                json_object *part = image_part(api, p->images + i);
                                r = part ? json_append(c, part) : -ENOMEM;
                        }
                if (text) {
                        if (r >= 0)
                                r = json_append(c, text);
                        else
                                json_object_put(text);
                }
        }
        if (r < 0) {
                json_object_put(m);
                return r;
        }
        return json_append(a, m);
}

static int json_append_message(json_object *a, const char *role, const char *content) {
        static const ChatRequestParams none = {};
        return json_append_message_full(CHAT_API_OPENAI, a, role, content, &none, 0);
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
        if (p->privacy < 0 || p->privacy >= _CHAT_PRIVACY_MAX || (p->n_images > 0 && !p->images))
                return -EINVAL;
        for (size_t i = 0; i < p->n_images; i++)
                if (p->images[i].message >= p->n_messages || streq(p->messages[p->images[i].message].role, "system") ||
                    !p->images[i].mime || (!p->images[i].data && p->images[i].size > 0))
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
                        r = json_append_message_full(api, messages, p->messages[i].role, p->messages[i].content, p, i);
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

                        r = json_append_message_full(api, messages, m->role, m->content, p, i);
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

        if (p->privacy > CHAT_PRIVACY_STANDARD) {
                r = json_add(root, "privacy", json_object_new_string(chat_privacy_to_string(p->privacy)));
                if (r < 0)
                        return r;
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
