/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target for the endpoint's request edges (common/endpoint-route.c).
 * Input: one control byte, then text split at the first NUL or newline
 * into pieces that play the method, the request target, a header name and
 * value, a Host header and a JSON body. Checks the invariants the server
 * relies on: a parsed route's upstream path is our prefix, /v1 and a known
 * route, and never holds a CR, LF, blank or NUL; a forwarded header has a
 * token name and no CR/LF in its value; a credential lies inside its
 * header's value; a Host is only ever accepted for loopback names with the
 * exact port; error bodies are JSON objects in the route's shape.
 */
#include <json-c/json.h>
#include <string.h>

#include "endpoint-route.h"
#include "fuzz.h"

static char *piece(const uint8_t **p, const uint8_t *end) {
        const uint8_t *s = *p, *e = s;
        char *r;

        while (e < end && *e != '\n' && *e != 0)
                e++;
        r = strndup((const char *) s, (size_t) (e - s));
        *p = e < end ? e + 1 : e;
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *p = data, *end = data + size;
        EndpointRoute r;
        unsigned port;
        size_t n;
        char *method, *target, *name, *value, *host;

        if (size < 1 || size > 64 * 1024)
                return 0;
        port = 1 + data[0] * 257U;
        p++;
        method = piece(&p, end);
        target = piece(&p, end);
        name = piece(&p, end);
        value = piece(&p, end);
        host = piece(&p, end);
        FUZZ_CHECK(method && target && name && value && host);

        if (endpoint_route_parse(method, target, &r) == 0) {
                const char *u = r.upstream_path;
                FUZZ_CHECK(strncmp(u, "/v1/", 4) == 0 || strncmp(u, "/zdr/v1/", 8) == 0 ||
                           strncmp(u, "/private/v1/", 12) == 0);
                FUZZ_CHECK(!strpbrk(u, "\r\n \t"));
                FUZZ_CHECK(r.kind >= 0 && r.kind < _ENDPOINT_ROUTE_MAX);
                FUZZ_CHECK(strlen(target) <= ENDPOINT_TARGET_MAX);
                FUZZ_CHECK(strstr(u, "/..") == NULL || strchr(u, '?') < strstr(u, "/.."));
        }

        switch (endpoint_request_header_action(name, value)) {
        case ENDPOINT_HEADER_FORWARD:
                FUZZ_CHECK(*name && !strpbrk(name, " \t\r\n:"));
                FUZZ_CHECK(!strpbrk(value, "\r\n"));
                FUZZ_CHECK(strcasecmp(name, "host") != 0 && strcasecmp(name, "cookie") != 0 &&
                           strcasecmp(name, "authorization") != 0 && strcasecmp(name, "connection") != 0);
                break;
        case ENDPOINT_HEADER_CREDENTIAL: {
                const char *t = endpoint_credential_token(name, value, &n);
                if (t) {
                        FUZZ_CHECK(t >= value && t + n <= value + strlen(value));
                        FUZZ_CHECK(n > 0 && !memchr(t, ' ', n) && !memchr(t, '\t', n));
                }
                break;
        }
        case ENDPOINT_HEADER_DROP:
                break;
        }
        (void) endpoint_response_header_keep(name);

        if (endpoint_host_ok(host, port)) {
                FUZZ_CHECK(strncasecmp(host, "127.0.0.1:", 10) == 0 || strncasecmp(host, "localhost:", 10) == 0 ||
                           strncasecmp(host, "[::1]:", 6) == 0);
                FUZZ_CHECK(strtoul(strrchr(host, ':') + 1, NULL, 10) == port);
        }

        for (int f = 0; f < 2; f++) {
                char *b = endpoint_error_body(f ? CHAT_API_ANTHROPIC : CHAT_API_OPENAI, name, NULL, value);
                json_object *o;
                FUZZ_CHECK(b);
                o = json_tokener_parse(b);
                FUZZ_CHECK(o && json_object_is_type(o, json_type_object));
                json_object_put(o);
                free(b);
        }

        {
                char *m = NULL;
                ChatUsage u;
                FUZZ_CHECK(endpoint_body_model(p, (size_t) (end - p), &m) == 0);
                free(m);
                (void) endpoint_body_usage(data[0] & 1 ? CHAT_API_ANTHROPIC : CHAT_API_OPENAI, p, (size_t) (end - p), &u,
                                           &m);
                free(m);
        }

        free(method);
        free(target);
        free(name);
        free(value);
        free(host);
        return 0;
}
