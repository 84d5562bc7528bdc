/* SPDX-License-Identifier: MIT */
/* Unit tests for the endpoint's pure decisions (common/endpoint-route.c). */
#include <errno.h>
#include <string.h>

#include "endpoint-route.h"
#include "test.h"

static void test_routes(void) {
        static const struct {
                const char *method, *target;
                int r;
                EndpointRouteKind kind;
                ChatApi format;
                const char *upstream;
        } t[] = {
                { "POST", "/v1/chat/completions", 0, ENDPOINT_ROUTE_CHAT, CHAT_API_OPENAI, "/v1/chat/completions" },
                { "POST", "/chat/completions", 0, ENDPOINT_ROUTE_CHAT, CHAT_API_OPENAI, "/v1/chat/completions" },
                { "POST", "/v1/messages?beta=true", 0, ENDPOINT_ROUTE_MESSAGES, CHAT_API_ANTHROPIC, "/v1/messages?beta=true" },
                { "POST", "/messages", 0, ENDPOINT_ROUTE_MESSAGES, CHAT_API_ANTHROPIC, "/v1/messages" },
                { "POST", "/v1/messages/count_tokens?beta=true", 0, ENDPOINT_ROUTE_COUNT_TOKENS, CHAT_API_ANTHROPIC,
                  "/v1/messages/count_tokens?beta=true" },
                { "POST", "/v1/images/generations", 0, ENDPOINT_ROUTE_IMAGES, CHAT_API_OPENAI, "/v1/images/generations" },
                { "GET", "/v1/models", 0, ENDPOINT_ROUTE_MODELS, CHAT_API_OPENAI, "/v1/models" },
                { "GET", "/models/", 0, ENDPOINT_ROUTE_MODELS, CHAT_API_OPENAI, "/v1/models" },
                { "POST", "/zdr/v1/chat/completions", 0, ENDPOINT_ROUTE_CHAT, CHAT_API_OPENAI, "/zdr/v1/chat/completions" },
                { "POST", "/zdr/messages", 0, ENDPOINT_ROUTE_MESSAGES, CHAT_API_ANTHROPIC, "/zdr/v1/messages" },
                { "POST", "/private/v1/messages?beta=true", 0, ENDPOINT_ROUTE_MESSAGES, CHAT_API_ANTHROPIC,
                  "/private/v1/messages?beta=true" },
                { "GET", "/v1/chat/completions", -EBADRQC, 0, CHAT_API_OPENAI, NULL },
                { "GET", "/v1/messages", -EBADRQC, 0, CHAT_API_ANTHROPIC, NULL },
                { "POST", "/v1/models", -EBADRQC, 0, CHAT_API_OPENAI, NULL },
                { "POST", "/v1/messages/batches", -ENOENT, 0, CHAT_API_ANTHROPIC, NULL },
                { "POST", "/v1/credits", -ENOENT, 0, CHAT_API_OPENAI, NULL },
                { "POST", "/zdrx/v1/chat/completions", -ENOENT, 0, CHAT_API_OPENAI, NULL },
                { "POST", "/v1/v1/chat/completions", -ENOENT, 0, CHAT_API_OPENAI, NULL },
                { "POST", "/zdr/private/v1/chat/completions", -ENOENT, 0, CHAT_API_OPENAI, NULL },
                { "POST", "/v1/chat/completions/", 0, ENDPOINT_ROUTE_CHAT, CHAT_API_OPENAI, "/v1/chat/completions" },
                { "POST", "/v1/chat/../completions", -ENOENT, 0, CHAT_API_OPENAI, NULL },
                { "POST", "http://evil/v1/chat/completions", -EINVAL, 0, CHAT_API_OPENAI, NULL },
                { "POST", "*", -EINVAL, 0, CHAT_API_OPENAI, NULL },
                { "POST", "/v1/messages?a b", -EINVAL, 0, CHAT_API_OPENAI, NULL },
                { "POST", "/v1/messages?a\r\nX: y", -EINVAL, 0, CHAT_API_OPENAI, NULL },
        };
        EndpointRoute r;

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                int k = endpoint_route_parse(t[i].method, t[i].target, &r);
                EXPECT(k == t[i].r);
                if (k != t[i].r)
                        fprintf(stderr, "  %s %s → %d\n", t[i].method, t[i].target, k);
                EXPECT(r.format == t[i].format);
                if (k == 0) {
                        EXPECT(r.kind == t[i].kind);
                        ASSERT_STREQ(r.upstream_path, t[i].upstream);
                }
        }
        EndpointRoute p;
        ASSERT(endpoint_route_parse("POST", "/zdr/v1/chat/completions", &p) == 0 && p.privacy == ENDPOINT_PRIVACY_ZDR);
        ASSERT(endpoint_route_parse("POST", "/private/chat/completions", &p) == 0 && p.privacy == ENDPOINT_PRIVACY_PRIVATE);

        char big[ENDPOINT_TARGET_MAX + 10] = "/v1/messages?";
        memset(big + strlen(big), 'a', sizeof(big) - strlen(big) - 1);
        big[sizeof(big) - 1] = 0;
        ASSERT(endpoint_route_parse("POST", big, &r) == -E2BIG);
        ASSERT(endpoint_route_parse(NULL, "/v1/models", &r) == -EINVAL);
        ASSERT(endpoint_route_parse("GET", NULL, &r) == -EINVAL);
}

static void test_request_headers(void) {
        static const struct {
                const char *name, *value;
                EndpointHeaderAction a;
        } t[] = {
                { "Content-Type", "application/json", ENDPOINT_HEADER_FORWARD },
                { "accept", "text/event-stream", ENDPOINT_HEADER_FORWARD },
                { "anthropic-version", "2023-06-01", ENDPOINT_HEADER_FORWARD },
                { "anthropic-beta", "a,b", ENDPOINT_HEADER_FORWARD },
                { "User-Agent", "claude-cli/1", ENDPOINT_HEADER_FORWARD },
                { "x-stainless-lang", "python", ENDPOINT_HEADER_FORWARD },
                { "Authorization", "Bearer x", ENDPOINT_HEADER_CREDENTIAL },
                { "X-API-KEY", "x", ENDPOINT_HEADER_CREDENTIAL },
                { "Host", "127.0.0.1:1", ENDPOINT_HEADER_DROP },
                { "Cookie", "a=b", ENDPOINT_HEADER_DROP },
                { "Connection", "close", ENDPOINT_HEADER_DROP },
                { "Keep-Alive", "5", ENDPOINT_HEADER_DROP },
                { "Transfer-Encoding", "chunked", ENDPOINT_HEADER_DROP },
                { "Content-Length", "5", ENDPOINT_HEADER_DROP },
                { "TE", "trailers", ENDPOINT_HEADER_DROP },
                { "Upgrade", "h2c", ENDPOINT_HEADER_DROP },
                { "Proxy-Authorization", "Basic x", ENDPOINT_HEADER_DROP },
                { "Expect", "100-continue", ENDPOINT_HEADER_DROP },
                { "Origin", "https://x", ENDPOINT_HEADER_DROP },
                { "Accept-Encoding", "gzip", ENDPOINT_HEADER_DROP },
                { "api-key", "x", ENDPOINT_HEADER_DROP },
                { "X-Forwarded-For", "1.2.3.4", ENDPOINT_HEADER_DROP },
                { "Bad Name", "x", ENDPOINT_HEADER_DROP },
                { "", "x", ENDPOINT_HEADER_DROP },
                { "X-Ok", "a\r\nInjected: 1", ENDPOINT_HEADER_DROP },
                { "X-Ok", NULL, ENDPOINT_HEADER_DROP },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                EXPECT(endpoint_request_header_action(t[i].name, t[i].value) == t[i].a);
        }
}

static void test_connection_lists(void) {
        ASSERT(endpoint_connection_lists("keep-alive, X-Hop", "x-hop"));
        ASSERT(endpoint_connection_lists("X-Hop", "X-Hop"));
        ASSERT(endpoint_connection_lists(" ,x-a , x-b ,", "x-b"));
        ASSERT(!endpoint_connection_lists("keep-alive, X-Hop2", "x-hop"));
        ASSERT(!endpoint_connection_lists("keep-alive", "keep"));
        ASSERT(!endpoint_connection_lists(NULL, "x"));
        ASSERT(!endpoint_connection_lists("x", ""));
}

static void test_response_headers(void) {
        ASSERT(endpoint_response_header_keep("Content-Type"));
        ASSERT(endpoint_response_header_keep("x-privacy-tier"));
        ASSERT(endpoint_response_header_keep("X-Model-Deprecated"));
        ASSERT(endpoint_response_header_keep("x-model-replacement"));
        ASSERT(endpoint_response_header_keep("Retry-After"));
        ASSERT(endpoint_response_header_keep("request-id"));
        ASSERT(endpoint_response_header_keep("x-request-id"));
        ASSERT(endpoint_response_header_keep("anthropic-ratelimit-requests-remaining"));
        ASSERT(endpoint_response_header_keep("x-ratelimit-limit-tokens"));
        ASSERT(!endpoint_response_header_keep("Content-Length"));
        ASSERT(!endpoint_response_header_keep("Transfer-Encoding"));
        ASSERT(!endpoint_response_header_keep("Connection"));
        ASSERT(!endpoint_response_header_keep("Content-Encoding"));
        ASSERT(!endpoint_response_header_keep("Set-Cookie"));
        ASSERT(!endpoint_response_header_keep("bad name"));
}

static void test_host(void) {
        ASSERT(endpoint_host_ok("127.0.0.1:4811", 4811));
        ASSERT(endpoint_host_ok("localhost:4811", 4811));
        ASSERT(endpoint_host_ok("LocalHost:4811", 4811));
        ASSERT(endpoint_host_ok("[::1]:4811", 4811));
        ASSERT(!endpoint_host_ok("127.0.0.1", 4811));
        ASSERT(!endpoint_host_ok("localhost", 4811));
        ASSERT(!endpoint_host_ok("127.0.0.1:4812", 4811));
        ASSERT(!endpoint_host_ok("127.0.0.1:48110", 4811));
        ASSERT(!endpoint_host_ok("evil.example:4811", 4811));
        ASSERT(!endpoint_host_ok("localhost.evil.example:4811", 4811));
        ASSERT(!endpoint_host_ok("127.0.0.1.nip.io:4811", 4811));
        ASSERT(!endpoint_host_ok("user@127.0.0.1:4811", 4811));
        ASSERT(!endpoint_host_ok("127.0.0.2:4811", 4811));
        ASSERT(!endpoint_host_ok("", 4811));
        ASSERT(!endpoint_host_ok(NULL, 4811));
        ASSERT(!endpoint_host_ok("127.0.0.1:0", 0));
}

static void test_credential(void) {
        size_t n = 0;
        const char *t;

        t = endpoint_credential_token("Authorization", "Bearer bllm_abc", &n);
        ASSERT(t && n == 8 && memcmp(t, "bllm_abc", n) == 0);
        t = endpoint_credential_token("authorization", "bearer   tok  ", &n);
        ASSERT(t && n == 3 && memcmp(t, "tok", 3) == 0);
        t = endpoint_credential_token("x-api-key", "tok", &n);
        ASSERT(t && n == 3);
        ASSERT(!endpoint_credential_token("Authorization", "Basic dXNlcjpwYXNz", &n));
        ASSERT(!endpoint_credential_token("Authorization", "Bearer", &n));
        ASSERT(!endpoint_credential_token("Authorization", "Bearer ", &n));
        ASSERT(!endpoint_credential_token("Authorization", "Bearertok", &n));
        ASSERT(!endpoint_credential_token("Authorization", "Bearer a b", &n));
        ASSERT(!endpoint_credential_token("x-api-key", "", &n));
        ASSERT(!endpoint_credential_token("Cookie", "tok", &n));
}

static void test_error_bodies(void) {
        char *b;

        b = endpoint_error_body(CHAT_API_OPENAI, "invalid_request_error", "invalid_token", "No \"token\".");
        ASSERT_STREQ(b, "{\"error\":{\"message\":\"No \\\"token\\\".\",\"type\":\"invalid_request_error\",\"code\":\"invalid_token\"}}");
        free(b);
        b = endpoint_error_body(CHAT_API_OPENAI, "budget_exceeded", NULL, "spent");
        ASSERT_STREQ(b, "{\"error\":{\"message\":\"spent\",\"type\":\"budget_exceeded\",\"code\":\"budget_exceeded\"}}");
        free(b);
        b = endpoint_error_body(CHAT_API_ANTHROPIC, "authentication_error", "x", "bad/token");
        ASSERT_STREQ(b, "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"bad/token\"}}");
        free(b);
}

static void test_bodies(void) {
        static const char chat[] = "{\"model\":\"gpt-5-mini\",\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":7,"
                                   "\"prompt_tokens_details\":{\"cached_tokens\":40}}}";
        static const char msg[] = "{\"model\":\"claude-haiku-4.5\",\"usage\":{\"input_tokens\":10,\"output_tokens\":3,"
                                  "\"cache_read_input_tokens\":5,\"cache_creation_input_tokens\":2}}";
        ChatUsage u;
        char *m = NULL;

        ASSERT(endpoint_body_model(chat, strlen(chat), &m) == 0);
        ASSERT_STREQ(m, "gpt-5-mini");
        free(m);
        ASSERT(endpoint_body_model("[1]", 3, &m) == 0 && !m);
        ASSERT(endpoint_body_model("{\"model\":5}", 11, &m) == 0 && !m);
        ASSERT(endpoint_body_model("{\"model\":\"a\\u0000b\"}", 20, &m) == 0 && !m);
        ASSERT(endpoint_body_model("not json", 8, &m) == 0 && !m);
        ASSERT(endpoint_body_model(NULL, 0, &m) == 0 && !m);

        ASSERT(endpoint_body_usage(CHAT_API_OPENAI, chat, strlen(chat), &u, &m));
        ASSERT(u.input == 60 && u.cache_read == 40 && u.output == 7 && u.cache_write == 0);
        ASSERT_STREQ(m, "gpt-5-mini");
        free(m);
        ASSERT(endpoint_body_usage(CHAT_API_ANTHROPIC, msg, strlen(msg), &u, NULL));
        ASSERT(u.input == 10 && u.output == 3 && u.cache_read == 5 && u.cache_write == 2);
        ASSERT(!endpoint_body_usage(CHAT_API_ANTHROPIC, "{}", 2, &u, NULL));
        ASSERT(!endpoint_body_usage(CHAT_API_OPENAI, "{\"usage\":[]}", 12, &u, NULL));
}

static void test_raise_privacy(void) {
        EndpointRoute r;

        EXPECT(endpoint_route_parse("POST", "/v1/chat/completions?x=1", &r) == 0);
        EXPECT(endpoint_route_raise_privacy(&r, ENDPOINT_PRIVACY_STANDARD) == 0);
        EXPECT(endpoint_route_raise_privacy(&r, ENDPOINT_PRIVACY_ZDR) == 1);
        EXPECT(strcmp(r.upstream_path, "/zdr/v1/chat/completions?x=1") == 0);
        EXPECT(r.privacy == ENDPOINT_PRIVACY_ZDR);
        EXPECT(endpoint_route_raise_privacy(&r, ENDPOINT_PRIVACY_PRIVATE) == 1);
        EXPECT(strcmp(r.upstream_path, "/private/v1/chat/completions?x=1") == 0);
        /* Never lowered. */
        EXPECT(endpoint_route_raise_privacy(&r, ENDPOINT_PRIVACY_ZDR) == 0);
        EXPECT(strcmp(r.upstream_path, "/private/v1/chat/completions?x=1") == 0);
        EXPECT(endpoint_route_parse("POST", "/private/messages", &r) == 0);
        EXPECT(endpoint_route_raise_privacy(&r, ENDPOINT_PRIVACY_ZDR) == 0);
        EXPECT(strcmp(r.upstream_path, "/private/v1/messages") == 0);
}

int main(void) {
        test_routes();
        test_raise_privacy();
        test_request_headers();
        test_connection_lists();
        test_response_headers();
        test_host();
        test_credential();
        test_error_bodies();
        test_bodies();
        return test_exit_status();
}
