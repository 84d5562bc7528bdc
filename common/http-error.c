/* SPDX-License-Identifier: MIT */
/* Error bodies and Retry-After (see http-error.h). */
#include <json-c/json.h>

#include "buf.h"
#include "http-error.h"
#include "json-util.h"
#include "utf8.h"

/* Bodies of error answers are only searched this far for an HTML title. */
#define ERROR_BODY_SCAN_MAX ((size_t) 64U * 1024U)
/* A plain-text error body is shown when it is at most this long. */
#define ERROR_BODY_TEXT_MAX 1024U
#define ERROR_TYPE_MAX 64U

/* ---- Sanitising and finding errors (shared with chat-stream.c) ---------- */

int chat_error_sanitize_message(const char *str, size_t n, size_t max, char **ret) {
        _cleanup_(buf_done) Buf valid = {}, out = {};
        size_t i = 0;
        bool space = false;
        int r;

        /* NULs stay for now: they are control characters, folded below. */
        r = utf8_sanitize_append(&valid, str ?: "", str ? n : 0, true, NULL);
        if (r < 0)
                return r;

        while (i < valid.n) {
                const uint8_t *s = (const uint8_t *) valid.p + i;
                uint32_t cp;
                int k = utf8_decode((const char *) s, valid.n - i, &cp);

                if (k <= 0) /* cannot happen after sanitising; be safe anyway */
                        k = 1, cp = 0xFFFD;

                if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == ' ') {
                        space = out.n > 0;
                        i += k;
                        continue;
                }

                size_t need = (space ? 1 : 0) + (size_t) k;
                if (out.n + need > max) {
                        /* Cut here; make room for the ellipsis on a boundary. */
                        out.n = max >= strlen("…") ? utf8_cut(out.p, out.n, max - strlen("…")) : 0;
                        while (out.n > 0 && out.p[out.n - 1] == ' ')
                                out.n--;
                        if (out.p)
                                out.p[out.n] = 0;
                        if (out.n + strlen("…") <= max) {
                                r = buf_append(&out, "…", strlen("…"));
                                if (r < 0)
                                        return r;
                        }
                        break;
                }

                if (space) {
                        r = buf_append(&out, " ", 1);
                        if (r < 0)
                                return r;
                        space = false;
                }
                r = buf_append(&out, s, k);
                if (r < 0)
                        return r;
                i += k;
        }

        if (!out.p) {
                r = buf_append(&out, "", 0);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(out.p);
        return 0;
}

int chat_error_sanitize_type(const char *s, char **ret) {
        _cleanup_free_ char *t = NULL;
        size_t n = 0;

        if (isempty(s)) {
                *ret = NULL;
                return 0;
        }

        t = malloc(ERROR_TYPE_MAX + 1);
        if (!t)
                return -ENOMEM;
        for (; *s && n < ERROR_TYPE_MAX; s++)
                if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                    *s == '_' || *s == '-' || *s == '.')
                        t[n++] = *s;
        t[n] = 0;
        *ret = n > 0 ? TAKE_PTR(t) : NULL;
        return 0;
}

void chat_error_find(json_object *root, const char **ret_type, const char **ret_message, size_t *ret_len) {
        const char *type = NULL, *message = NULL;
        size_t len = 0;
        json_object *e = json_get(root, "error");

        if (json_object_is_type(e, json_type_object)) {
                /* {"error":{"message","type","code"}} and
                 * {"type":"error","error":{"type","message"}} */
                type = json_get_string(e, "type", NULL);
                if (isempty(type))
                        type = json_get_string(e, "code", NULL);
                message = json_get_string(e, "message", &len);
        } else if (json_object_is_type(e, json_type_string)) {
                /* {"error":"msg"} */
                message = json_get_string(root, "error", &len);
        }

        if (isempty(message)) {
                message = json_get_string(root, "message", &len);
                if (isempty(message))
                        message = json_get_string(root, "detail", &len);
        }
        if (isempty(message))
                message = NULL, len = 0;
        if (isempty(type))
                type = NULL;

        *ret_type = type;
        *ret_message = message;
        *ret_len = len;
}

/* ---- Error bodies ------------------------------------------------------ */

static const char *memmem_nocase(const char *h, size_t hlen, const char *needle) {
        size_t nlen = strlen(needle);

        if (nlen > hlen)
                return NULL;
        for (size_t i = 0; i + nlen <= hlen; i++)
                if (strncasecmp(h + i, needle, nlen) == 0)
                        return h + i;
        return NULL;
}

/* Decodes the handful of entities that show up in page titles. */
static int html_unescape(const char *s, size_t n, Buf *out) {
        static const struct {
                const char *entity;
                const char *text;
        } table[] = {
                { "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" }, { "&quot;", "\"" },
                { "&#39;", "'" }, { "&apos;", "'" }, { "&nbsp;", " " },
        };
        int r;

        for (size_t i = 0; i < n;) {
                bool found = false;

                if (s[i] == '&')
                        for (size_t k = 0; k < ELEMENTSOF(table); k++) {
                                size_t l = strlen(table[k].entity);
                                if (l <= n - i && strncasecmp(s + i, table[k].entity, l) == 0) {
                                        r = buf_append(out, table[k].text, strlen(table[k].text));
                                        if (r < 0)
                                                return r;
                                        i += l;
                                        found = true;
                                        break;
                                }
                        }
                if (found)
                        continue;
                r = buf_append(out, s + i, 1);
                if (r < 0)
                        return r;
                i++;
        }
        return 0;
}

static int error_summary_html(const char *body, size_t len, char **ret) {
        _cleanup_(buf_done) Buf t = {};
        const char *start, *end;
        int r;

        len = MIN(len, ERROR_BODY_SCAN_MAX);
        start = memmem_nocase(body, len, "<title");
        if (start) {
                start = memchr(start, '>', len - (start - body));
                if (start) {
                        start++;
                        end = memmem_nocase(start, len - (start - body), "</title");
                        if (end) {
                                r = html_unescape(start, end - start, &t);
                                if (r < 0)
                                        return r;
                                if (t.p) {
                                        _cleanup_free_ char *m = NULL;

                                        r = chat_error_sanitize_message(t.p, t.n, CHAT_ERROR_MESSAGE_MAX, &m);
                                        if (r < 0)
                                                return r;
                                        if (!isempty(m)) {
                                                *ret = TAKE_PTR(m);
                                                return 0;
                                        }
                                }
                        }
                }
        }

        *ret = strdup("unexpected HTML answer");
        return *ret ? 0 : -ENOMEM;
}

static bool looks_like_text(const char *s, size_t n) {
        if (!utf8_is_valid_n(s, n))
                return false;
        for (size_t i = 0; i < n; i++)
                if ((uint8_t) s[i] < 0x20 && !strchr("\t\r\n", s[i]))
                        return false;
        return true;
}

int chat_parse_error_body(const char *body, size_t len, char **ret_type, char **ret_message) {
        _cleanup_free_ char *type = NULL, *message = NULL;
        int structured = 0, r;

        if (!ret_message || (!body && len > 0))
                return -EINVAL;

        /* Skip a BOM and leading white space. */
        if (len >= 3 && memcmp(body, "\xEF\xBB\xBF", 3) == 0)
                body += 3, len -= 3;
        while (len > 0 && strchr(" \t\r\n", body[0]) && body[0])
                body++, len--;
        while (len > 0 && strchr(" \t\r\n", body[len - 1]) && body[len - 1])
                len--;

        if (len == 0) {
                message = strdup("empty answer");
                if (!message)
                        return -ENOMEM;

        } else if (body[0] == '{' || body[0] == '[') {
                _cleanup_(json_object_putp) json_object *root = NULL;
                json_tokener *tok;
                const char *err = NULL, *t, *m;
                size_t mlen;

                tok = json_tokener_new_ex(JSON_NET_MAX_DEPTH);
                if (!tok)
                        return -ENOMEM;
                root = json_parse_n(tok, body, len, &err);
                json_tokener_free(tok);

                chat_error_find(root, &t, &m, &mlen);
                if (m) {
                        r = chat_error_sanitize_type(t, &type);
                        if (r < 0)
                                return r;
                        r = chat_error_sanitize_message(m, mlen, CHAT_ERROR_MESSAGE_MAX, &message);
                        if (r < 0)
                                return r;
                        structured = 1;
                } else if (t) {
                        /* A type but no message: say at least that much. */
                        r = chat_error_sanitize_type(t, &type);
                        if (r < 0)
                                return r;
                        message = strdup(type ? type : "unexpected JSON answer");
                        if (!message)
                                return -ENOMEM;
                        structured = 1;
                } else {
                        message = strdup(root ? "unexpected JSON answer" : "unexpected non-JSON answer");
                        if (!message)
                                return -ENOMEM;
                }

        } else if (body[0] == '<' || memmem_nocase(body, MIN(len, ERROR_BODY_SCAN_MAX), "<html")) {
                r = error_summary_html(body, len, &message);
                if (r < 0)
                        return r;

        } else if (len <= ERROR_BODY_TEXT_MAX && looks_like_text(body, len)) {
                /* Short plain text, as proxies send ("upstream connect error"). */
                r = chat_error_sanitize_message(body, len, CHAT_ERROR_MESSAGE_MAX, &message);
                if (r < 0)
                        return r;
        } else {
                message = strdup("unexpected non-JSON answer");
                if (!message)
                        return -ENOMEM;
        }

        if (ret_type)
                *ret_type = TAKE_PTR(type);
        *ret_message = TAKE_PTR(message);
        return structured;
}

/* ---- Retry-After ------------------------------------------------------- */

/* A non-negative decimal number ("12", "1.5"), white space around allowed,
 * scaled by unit (µs per 1). */
static int parse_decimal_usec(const char *s, uint64_t unit, uint64_t *ret) {
        uint64_t whole = 0, frac = 0, scale = unit;
        bool digits = false;

        s += strspn(s, " \t");
        for (; *s >= '0' && *s <= '9'; s++) {
                digits = true;
                if (whole > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                whole = whole * 10 + (uint64_t) (*s - '0');
        }
        if (*s == '.') {
                s++;
                for (; *s >= '0' && *s <= '9'; s++) {
                        digits = true;
                        scale /= 10;
                        frac += (uint64_t) (*s - '0') * scale; /* digits beyond µs vanish */
                }
        }
        s += strspn(s, " \t");
        if (!digits || *s)
                return -EINVAL;
        if (whole > (UINT64_MAX - frac) / unit)
                return -ERANGE;

        *ret = whole * unit + frac;
        return 0;
}

static int month_from_name(const char *m) {
        static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

        for (int i = 0; i < 12; i++)
                if (strcasecmp(m, months[i]) == 0)
                        return i + 1;
        return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

/* HTTP dates (RFC 9110 §5.6.7), parsed by hand: strptime() would follow the
 * locale for month names. */
static int parse_http_date(const char *s, uint64_t *ret_usec) {
        char wday[16], mon[4];
        int day, year, hh, mm, ss, n = -1;

        s += strspn(s, " \t");

        /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        if (sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", wday, &day, mon, &year, &hh, &mm, &ss, &n) ==
                    7 &&
            n > 0)
                goto parsed;
        /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        n = -1;
        if (sscanf(s, "%15[A-Za-z], %2d-%3[A-Za-z]-%4d %2d:%2d:%2d GMT%n", wday, &day, mon, &year, &hh, &mm, &ss, &n) ==
                    7 &&
            n > 0) {
                if (year < 100)
                        year += year < 70 ? 2000 : 1900;
                goto parsed;
        }
        /* asctime: Sun Nov  6 08:49:37 1994 */
        n = -1;
        if (sscanf(s, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", wday, mon, &day, &hh, &mm, &ss, &year, &n) == 7 &&
            n > 0)
                goto parsed;
        return -EINVAL;

parsed:
        s += n;
        s += strspn(s, " \t");
        if (*s)
                return -EINVAL;

        int month = month_from_name(mon);
        if (month < 0 || day < 1 || day > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 60 ||
            year < 1970)
                return -EINVAL;

        int64_t t = days_from_civil(year, month, day) * 86400 + hh * 3600 + mm * 60 + ss;
        if (t < 0)
                return -EINVAL;
        *ret_usec = (uint64_t) t * USEC_PER_SEC;
        return 0;
}

int http_parse_retry_after(const char *retry_after, const char *retry_after_ms, uint64_t now_usec_realtime,
                           uint64_t *ret_usec) {
        uint64_t v, when;
        int r = -ENODATA;

        if (!ret_usec)
                return -EINVAL;

        /* The OpenAI clients' convention: milliseconds, preferred when valid. */
        if (retry_after_ms) {
                r = parse_decimal_usec(retry_after_ms, USEC_PER_MSEC, &v);
                if (r >= 0) {
                        *ret_usec = v;
                        return 0;
                }
        }

        if (retry_after) {
                r = parse_decimal_usec(retry_after, USEC_PER_SEC, &v);
                if (r >= 0) {
                        *ret_usec = v;
                        return 0;
                }
                if (r == -EINVAL) {
                        r = parse_http_date(retry_after, &when);
                        if (r >= 0) {
                                *ret_usec = when > now_usec_realtime ? when - now_usec_realtime : 0;
                                return 0;
                        }
                }
        }

        return r;
}
