/* SPDX-License-Identifier: MIT */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "endpoint-route.h"
#include "json-util.h"

static const char *const route_kind_table[_ENDPOINT_ROUTE_MAX] = {
        [ENDPOINT_ROUTE_CHAT] = "chat",
        [ENDPOINT_ROUTE_MESSAGES] = "messages",
        [ENDPOINT_ROUTE_COUNT_TOKENS] = "count_tokens",
        [ENDPOINT_ROUTE_IMAGES] = "images",
        [ENDPOINT_ROUTE_MODELS] = "models",
};

const char *endpoint_route_kind_to_string(EndpointRouteKind k) {
        return k >= 0 && k < _ENDPOINT_ROUTE_MAX ? route_kind_table[k] : NULL;
}

static const struct {
        const char *path; /* after the prefix and the optional /v1 */
        const char *method;
        EndpointRouteKind kind;
        ChatApi format;
} routes[] = {
        { "/chat/completions", "POST", ENDPOINT_ROUTE_CHAT, CHAT_API_OPENAI },
        { "/messages", "POST", ENDPOINT_ROUTE_MESSAGES, CHAT_API_ANTHROPIC },
        { "/messages/count_tokens", "POST", ENDPOINT_ROUTE_COUNT_TOKENS, CHAT_API_ANTHROPIC },
        { "/images/generations", "POST", ENDPOINT_ROUTE_IMAGES, CHAT_API_OPENAI },
        { "/models", "GET", ENDPOINT_ROUTE_MODELS, CHAT_API_OPENAI },
};

static bool query_ok(const char *q) {
        /* Printable ASCII without blanks, as a request line carries it. */
        for (; *q; q++)
                if ((unsigned char) *q <= 0x20 || (unsigned char) *q >= 0x7f || *q == '#')
                        return false;
        return true;
}

int endpoint_route_parse(const char *method, const char *target, EndpointRoute *ret) {
        const char *p, *q, *prefix = "";
        size_t plen;

        *ret = (EndpointRoute) { .kind = _ENDPOINT_ROUTE_INVALID, .format = CHAT_API_OPENAI };
        if (!method || !target || target[0] != '/')
                return -EINVAL;
        if (strlen(target) > ENDPOINT_TARGET_MAX)
                return -E2BIG;

        p = target;
        q = strchr(p, '?');
        plen = q ? (size_t) (q - p) : strlen(p);
        if (q && !query_ok(q + 1))
                return -EINVAL;

        /* A trailing slash is the same route ("/v1/models/"), nothing else is normalised. */
        if (plen > 1 && p[plen - 1] == '/')
                plen--;

        if (plen >= 4 && strncmp(p, "/zdr", 4) == 0 && (plen == 4 || p[4] == '/')) {
                ret->privacy = ENDPOINT_PRIVACY_ZDR;
                prefix = "/zdr";
                p += 4, plen -= 4;
        } else if (plen >= 8 && strncmp(p, "/private", 8) == 0 && (plen == 8 || p[8] == '/')) {
                ret->privacy = ENDPOINT_PRIVACY_PRIVATE;
                prefix = "/private";
                p += 8, plen -= 8;
        }
        if (plen >= 3 && strncmp(p, "/v1", 3) == 0 && (plen == 3 || p[3] == '/'))
                p += 3, plen -= 3;

        if (plen >= 9 && strncmp(p, "/messages", 9) == 0 && (plen == 9 || p[9] == '/'))
                ret->format = CHAT_API_ANTHROPIC;

        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                if (strlen(routes[i].path) != plen || strncmp(routes[i].path, p, plen) != 0)
                        continue;
                ret->format = routes[i].format;
                if (strcmp(method, routes[i].method) != 0)
                        return -EBADRQC;
                ret->kind = routes[i].kind;
                if ((size_t) snprintf(ret->upstream_path, sizeof(ret->upstream_path), "%s/v1%s%s", prefix,
                                      routes[i].path, q ?: "") >= sizeof(ret->upstream_path))
                        return -E2BIG;
                return 0;
        }
        return -ENOENT;
}

static const char *privacy_prefix(EndpointPrivacy p) {
        return p == ENDPOINT_PRIVACY_PRIVATE ? "/private" : p == ENDPOINT_PRIVACY_ZDR ? "/zdr" : "";
}

int endpoint_route_raise_privacy(EndpointRoute *r, EndpointPrivacy min) {
        char path[sizeof(r->upstream_path)];
        const char *rest;

        if (r->privacy >= min)
                return 0;
        rest = r->upstream_path + strlen(privacy_prefix(r->privacy));
        if ((size_t) snprintf(path, sizeof(path), "%s%s", privacy_prefix(min), rest) >= sizeof(path))
                return -E2BIG;
        memcpy(r->upstream_path, path, sizeof(path));
        r->privacy = min;
        return 1;
}

static bool name_is_token(const char *name) {
        /* RFC 9110 tchar. */
        if (!name || !*name)
                return false;
        for (const char *c = name; *c; c++)
                if (!(((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') || (*c >= '0' && *c <= '9') ||
                      strchr("!#$%&'*+-.^_`|~", *c)))
                        return false;
        return true;
}

static bool name_in(const char *name, const char *const *list) {
        for (; *list; list++)
                if (strcasecmp(name, *list) == 0)
                        return true;
        return false;
}

/* Hop-by-hop (RFC 9110 7.6.1) plus what frames the message. */
static const char *const hop_by_hop[] = {
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-authorization", "proxy-authenticate", "content-length", NULL,
};

EndpointHeaderAction endpoint_request_header_action(const char *name, const char *value) {
        static const char *const dropped[] = {
                "host", "cookie", "cookie2", "expect", "forwarded", "x-forwarded-for", "x-forwarded-host",
                "x-forwarded-proto", "x-real-ip", "origin", "accept-encoding", "http2-settings", NULL,
        };

        if (!name_is_token(name) || !value || strpbrk(value, "\r\n"))
                return ENDPOINT_HEADER_DROP;
        if (strcasecmp(name, "authorization") == 0 || strcasecmp(name, "x-api-key") == 0)
                return ENDPOINT_HEADER_CREDENTIAL;
        /* Other credentials a tool might send for the gateway or a provider. */
        if (strcasecmp(name, "api-key") == 0 || strcasecmp(name, "x-goog-api-key") == 0 ||
            strcasecmp(name, "openai-api-key") == 0)
                return ENDPOINT_HEADER_DROP;
        if (name_in(name, hop_by_hop) || name_in(name, dropped))
                return ENDPOINT_HEADER_DROP;
        return ENDPOINT_HEADER_FORWARD;
}

bool endpoint_connection_lists(const char *connection, const char *name) {
        size_t n;

        if (!connection || !name || !*name)
                return false;
        n = strlen(name);
        for (const char *p = connection; *p;) {
                size_t len;
                p += strspn(p, " \t,");
                len = strcspn(p, ",");
                while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                        len--;
                if (len == n && strncasecmp(p, name, n) == 0)
                        return true;
                p += strcspn(p, ",");
        }
        return false;
}

bool endpoint_response_header_keep(const char *name) {
        static const char *const dropped[] = {
                "content-encoding", "set-cookie", "set-cookie2", "alt-svc", "strict-transport-security",
                "date", "server", NULL,
        };

        if (!name_is_token(name))
                return false;
        return !name_in(name, hop_by_hop) && !name_in(name, dropped);
}

bool endpoint_host_ok(const char *host, unsigned port) {
        static const char *const names[] = { "127.0.0.1", "localhost", "[::1]" };
        char want[16];
        size_t n;

        if (!host || port == 0 || port > 65535)
                return false;
        snprintf(want, sizeof(want), ":%u", port);
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                n = strlen(names[i]);
                if (strncasecmp(host, names[i], n) == 0 && strcmp(host + n, want) == 0)
                        return true;
        }
        return false;
}

const char *endpoint_credential_token(const char *name, const char *value, size_t *ret_len) {
        const char *t;
        size_t n;

        if (!name || !value)
                return NULL;
        if (strcasecmp(name, "authorization") == 0) {
                if (strncasecmp(value, "Bearer", 6) != 0 || (value[6] != ' ' && value[6] != '\t'))
                        return NULL;
                t = value + 6;
        } else if (strcasecmp(name, "x-api-key") == 0)
                t = value;
        else
                return NULL;
        t += strspn(t, " \t");
        n = strcspn(t, " \t\r\n");
        if (n == 0 || t[n + strspn(t + n, " \t")] != 0)
                return NULL;
        *ret_len = n;
        return t;
}

char *endpoint_error_body(ChatApi format, const char *type, const char *code, const char *message) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object(), *e = json_object_new_object();
        const char *s;
        char *r;

        if (!o || !e)
                return NULL;
        if (format == CHAT_API_ANTHROPIC) {
                if (json_add(o, "type", json_object_new_string("error")) < 0 ||
                    json_add(e, "type", json_object_new_string(type)) < 0 ||
                    json_add(e, "message", json_object_new_string(message)) < 0)
                        return NULL;
        } else if (json_add(e, "message", json_object_new_string(message)) < 0 ||
                   json_add(e, "type", json_object_new_string(type)) < 0 ||
                   json_add(e, "code", json_object_new_string(code ?: type)) < 0)
                return NULL;
        if (json_add(o, "error", json_object_get(e)) < 0)
                return NULL;
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (!s)
                return NULL;
        r = strdup(s);
        return r;
}

static json_object *parse_object(const void *body, size_t len) {
        json_tokener *tok;
        json_object *o;
        const char *err;

        if (!body || len == 0 || len > INT32_MAX)
                return NULL;
        tok = json_tokener_new_ex(64);
        if (!tok)
                return NULL;
        o = json_parse_n(tok, body, len, &err);
        json_tokener_free(tok);
        if (o && !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

int endpoint_body_model(const void *body, size_t len, char **ret) {
        _cleanup_(json_object_putp) json_object *o = parse_object(body, len);
        const char *m;
        size_t n;

        *ret = NULL;
        m = o ? json_get_string(o, "model", &n) : NULL;
        if (!m || n == 0 || strlen(m) != n)
                return 0;
        *ret = strdup(m);
        return *ret ? 0 : -ENOMEM;
}

bool endpoint_body_usage(ChatApi format, const void *body, size_t len, ChatUsage *ret, char **ret_model) {
        _cleanup_(json_object_putp) json_object *o = parse_object(body, len);
        json_object *u, *d;
        uint64_t prompt = 0, cached = 0, cw = 0;

        *ret = (ChatUsage) {};
        if (ret_model) {
                const char *m = o ? json_get_string(o, "model", NULL) : NULL;
                *ret_model = m ? strdup(m) : NULL;
        }
        u = json_get(o, "usage");
        if (!u || !json_object_is_type(u, json_type_object))
                return false;
        if (format == CHAT_API_ANTHROPIC) {
                (void) json_get_count(u, "input_tokens", &ret->input);
                (void) json_get_count(u, "output_tokens", &ret->output);
                (void) json_get_count(u, "cache_read_input_tokens", &ret->cache_read);
                (void) json_get_count(u, "cache_creation_input_tokens", &ret->cache_write);
                return true;
        }
        (void) json_get_count(u, "prompt_tokens", &prompt);
        (void) json_get_count(u, "completion_tokens", &ret->output);
        d = json_get(u, "prompt_tokens_details");
        (void) json_get_count(d, "cached_tokens", &cached);
        (void) json_get_count(d, "cache_write_tokens", &cw);
        ret->cache_read = cached;
        ret->cache_write = cw;
        ret->input = prompt > cached + cw ? prompt - cached - cw : 0;
        return true;
}
