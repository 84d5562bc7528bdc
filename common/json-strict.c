/* SPDX-License-Identifier: MIT */
/* Strict JSON in, JSON.stringify-style JSON out (see json-strict.h). */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>

#include "buf.h"
#include "json-strict.h"
#include "utf8.h"

#define JSON_MAX_DEPTH 512U

/* ---- JSON output, as JSON.stringify(v, null, 2) writes it ---- */

void json_put_string(Buf *b, const char *s, size_t n) {
        buf_putc(b, '"');
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                switch (c) {
                case '"':
                        buf_puts(b, "\\\"");
                        break;
                case '\\':
                        buf_puts(b, "\\\\");
                        break;
                case '\b':
                        buf_puts(b, "\\b");
                        break;
                case '\f':
                        buf_puts(b, "\\f");
                        break;
                case '\n':
                        buf_puts(b, "\\n");
                        break;
                case '\r':
                        buf_puts(b, "\\r");
                        break;
                case '\t':
                        buf_puts(b, "\\t");
                        break;
                default:
                        if (c < 0x20)
                                buf_printf(b, "\\u%04x", c);
                        else
                                buf_putc(b, (char) c);
                }
        }
        buf_putc(b, '"');
}

/* Shortest text that reads back as the same double, spelled as JavaScript
 * spells numbers (6.25, 0.08333, 128000, 1e-7), so that our output matches
 * the bankr CLI's for the same prices. */
static void format_number(double v, char out[static 64]) {
        char t[64];
        int p, exp10;

        if (!isfinite(v) || v == 0) {
                strcpy(out, "0"); /* JSON has no NaN/Infinity; JS writes -0 as 0 */
                return;
        }
        if (v == trunc(v) && fabs(v) < 1e21) {
                snprintf(out, 64, "%.0f", v);
                return;
        }
        for (p = 1; p < 17; p++) {
                snprintf(t, sizeof t, "%.*e", p - 1, v);
                if (strtod(t, NULL) == v)
                        break;
        }
        snprintf(t, sizeof t, "%.*e", p - 1, v);
        exp10 = atoi(strchr(t, 'e') + 1);
        if (exp10 >= -6 && exp10 < 21) {
                /* Non-integral below 1e21: plain decimal with exactly the
                 * significant digits found above. */
                snprintf(out, 64, "%.*f", MAX(0, p - 1 - exp10), v);
                return;
        }
        /* Mantissa, then "e-8" rather than C's "e-08". */
        char *e = strchr(t, 'e');
        *e = 0;
        snprintf(out, 64, "%.40se%s%d", t, exp10 < 0 ? "-" : "+", abs(exp10));
}

struct json_object *json_new_number(double v) {
        char t[64];

        format_number(v, t);
        /* json-c keeps t as the number's text (its userdata), which we print. */
        return json_object_new_double_s(v, t);
}

static void json_write(Buf *b, struct json_object *o, unsigned level) {
        const char *raw;
        char t[64];
        size_t i, n;

        switch (json_object_get_type(o)) {
        case json_type_null:
                buf_puts(b, "null");
                break;
        case json_type_boolean:
                buf_puts(b, json_object_get_boolean(o) ? "true" : "false");
                break;
        case json_type_int:
        case json_type_double:
                /* Numbers we parsed or made carry their exact text. */
                raw = json_object_get_userdata(o);
                if (raw)
                        buf_puts(b, raw);
                else if (json_object_is_type(o, json_type_int))
                        buf_printf(b, "%" PRId64, json_object_get_int64(o));
                else {
                        format_number(json_object_get_double(o), t);
                        buf_puts(b, t);
                }
                break;
        case json_type_string:
                json_put_string(b, json_object_get_string(o), (size_t) json_object_get_string_len(o));
                break;
        case json_type_array:
                n = json_object_array_length(o);
                if (n == 0) {
                        buf_puts(b, "[]");
                        break;
                }
                buf_puts(b, "[\n");
                for (i = 0; i < n; i++) {
                        buf_indent(b, level + 1);
                        json_write(b, json_object_array_get_idx(o, i), level + 1);
                        buf_puts(b, i + 1 < n ? ",\n" : "\n");
                }
                buf_indent(b, level);
                buf_putc(b, ']');
                break;
        case json_type_object:
                n = (size_t) json_object_object_length(o);
                if (n == 0) {
                        buf_puts(b, "{}");
                        break;
                }
                buf_puts(b, "{\n");
                i = 0;
                json_object_object_foreach(o, key, val) {
                        buf_indent(b, level + 1);
                        json_put_string(b, key, strlen(key));
                        buf_puts(b, ": ");
                        json_write(b, val, level + 1);
                        buf_puts(b, ++i < n ? ",\n" : "\n");
                }
                buf_indent(b, level);
                buf_putc(b, '}');
                break;
        }
}

int json_to_text(struct json_object *o, char **ret) {
        Buf b = {};

        json_write(&b, o, 0);
        buf_putc(&b, '\n');
        return buf_steal(&b, ret);
}

/* Trees may hold the key: overwrite every string before json-c frees it. */
void json_erase_strings(struct json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_string:
                explicit_bzero((char *) json_object_get_string(o), (size_t) json_object_get_string_len(o));
                break;
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++)
                        json_erase_strings(json_object_array_get_idx(o, i));
                break;
        case json_type_object: {
                json_object_object_foreach(o, key, val) {
                        (void) key;
                        json_erase_strings(val);
                }
                break;
        }
        default:
                break;
        }
}

void json_erase_and_putp(struct json_object **o) {
        if (*o) {
                json_erase_strings(*o);
                json_object_put(*o);
        }
}

const char *json_type_phrase(struct json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "a boolean";
        case json_type_int:
        case json_type_double:
                return "a number";
        case json_type_string:
                return "a string";
        case json_type_array:
                return "an array";
        default:
                return "an object";
        }
}

/* ---- Strict JSON input (RFC 8259), into json-c objects ---- */

typedef struct Parser {
        const char *s;
        size_t n, i;
        unsigned depth;
        /* First error: what is wrong (never quoting file content, which may
         * hold a secret, except a key name), where, and what to do. */
        char *what;
        const char *remedy;
        size_t where;
} Parser;

static int parser_fail(Parser *p, size_t where, const char *remedy, const char *fmt, ...) _printf_(4, 5);
static int parser_fail(Parser *p, size_t where, const char *remedy, const char *fmt, ...) {
        va_list ap;

        if (p->what)
                return -EBADMSG;
        va_start(ap, fmt);
        if (vasprintf(&p->what, fmt, ap) < 0)
                p->what = NULL;
        va_end(ap);
        if (!p->what)
                return -ENOMEM;
        p->remedy = remedy;
        p->where = where;
        return -EBADMSG;
}

static void parser_skip_ws(Parser *p) {
        while (p->i < p->n && strchr(" \t\n\r", p->s[p->i]) && p->s[p->i])
                p->i++;
}

static bool parser_eof(Parser *p) {
        return p->i >= p->n;
}

static int parser_fail_early_end(Parser *p) {
        return parser_fail(p, p->n, "complete or fix the file",
                           "the text ends before the JSON value does (an unterminated string, object or array)");
}

/* Names what is at p->i where a value, key or separator was expected. */
static int parser_fail_unexpected(Parser *p, const char *expected) {
        const char *c = p->s + p->i;

        if (parser_eof(p))
                return parser_fail_early_end(p);
        if (c[0] == '/' && p->i + 1 < p->n && (c[1] == '/' || c[1] == '*'))
                return parser_fail(p, p->i, "remove the comments",
                                   "a comment (JSONC/JSON5 syntax, not JSON)");
        if (c[0] == '#')
                return parser_fail(p, p->i, "remove the comments", "a '#' comment (not JSON)");
        if (c[0] == '\'')
                return parser_fail(p, p->i, "use double quotes",
                                   "a single-quoted string (JSON5 syntax, not JSON)");
        if (startswith(c, "NaN") || startswith(c, "Infinity") || startswith(c, "+") ||
            startswith(c, "-Infinity") || startswith(c, "."))
                return parser_fail(p, p->i, "write plain decimal numbers",
                                   "a number JSON does not allow (NaN, Infinity, a leading '+' or '.'; JSON5 syntax)");
        return parser_fail(p, p->i, "fix the syntax", "an unexpected character where %s was expected", expected);
}

static int parse_value(Parser *p, struct json_object **ret);

static int parse_hex4(Parser *p, uint32_t *ret) {
        uint32_t v = 0;

        if (p->i + 4 > p->n)
                return parser_fail_early_end(p);
        for (size_t k = 0; k < 4; k++) {
                char c = p->s[p->i + k];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t) (c - 'A' + 10);
                else
                        return parser_fail(p, p->i - 2, "fix the escape",
                                           "an invalid \\u escape in a string (four hex digits needed)");
        }
        p->i += 4;
        *ret = v;
        return 0;
}

static void put_utf8(Buf *b, uint32_t cp) {
        char t[4];

        buf_put(b, t, utf8_encode(cp, t));
}

/* At an opening '"': decodes the string into *b (UTF-8 was checked for the
 * whole text already). */
static int parse_string(Parser *p, Buf *b) {
        int r;

        p->i++;
        for (;;) {
                if (parser_eof(p))
                        return parser_fail_early_end(p);

                unsigned char c = (unsigned char) p->s[p->i];
                if (c == '"') {
                        p->i++;
                        break;
                }
                if (c < 0x20)
                        return parser_fail(p, p->i, "write it as an escape such as \\n or \\t",
                                           "a raw control character (such as a line break or a tab) inside a string");
                if (c != '\\') {
                        buf_putc(b, (char) c);
                        p->i++;
                        continue;
                }

                p->i++;
                if (parser_eof(p))
                        return parser_fail_early_end(p);
                c = (unsigned char) p->s[p->i++];
                switch (c) {
                case '"':
                case '\\':
                case '/':
                        buf_putc(b, (char) c);
                        break;
                case 'b':
                        buf_putc(b, '\b');
                        break;
                case 'f':
                        buf_putc(b, '\f');
                        break;
                case 'n':
                        buf_putc(b, '\n');
                        break;
                case 'r':
                        buf_putc(b, '\r');
                        break;
                case 't':
                        buf_putc(b, '\t');
                        break;
                case 'u': {
                        uint32_t cp, lo;
                        size_t at = p->i - 2;

                        r = parse_hex4(p, &cp);
                        if (r < 0)
                                return r;
                        if (cp >= 0xDC00 && cp <= 0xDFFF)
                                return parser_fail(p, at, "fix the escape",
                                                   "an unpaired UTF-16 surrogate escape in a string");
                        if (cp >= 0xD800 && cp <= 0xDBFF) {
                                if (p->i + 2 > p->n || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u')
                                        return parser_fail(p, at, "fix the escape",
                                                           "an unpaired UTF-16 surrogate escape in a string");
                                p->i += 2;
                                r = parse_hex4(p, &lo);
                                if (r < 0)
                                        return r;
                                if (lo < 0xDC00 || lo > 0xDFFF)
                                        return parser_fail(p, at, "fix the escape",
                                                           "an unpaired UTF-16 surrogate escape in a string");
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        }
                        put_utf8(b, cp);
                        break;
                }
                default:
                        return parser_fail(p, p->i - 2, "fix the escape",
                                           "an invalid escape sequence in a string (JSON knows \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
                }
        }
        return b->oom ? -ENOMEM : 0;
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static int parse_number(Parser *p, struct json_object **ret) {
        size_t start = p->i;
        bool integral = true;

        if (p->s[p->i] == '-')
                p->i++;
        if (parser_eof(p))
                return parser_fail_early_end(p);
        if (!is_digit(p->s[p->i]))
                return parser_fail_unexpected(p, "a digit");
        if (p->s[p->i] == '0') {
                p->i++;
                if (!parser_eof(p) && (is_digit(p->s[p->i]) || p->s[p->i] == 'x' || p->s[p->i] == 'X'))
                        return parser_fail(p, start, "write plain decimal numbers",
                                           "a number with a leading zero or in hexadecimal (not JSON)");
        } else
                while (!parser_eof(p) && is_digit(p->s[p->i]))
                        p->i++;
        if (!parser_eof(p) && p->s[p->i] == '.') {
                integral = false;
                p->i++;
                if (parser_eof(p) || !is_digit(p->s[p->i]))
                        return parser_fail(p, start, "write plain decimal numbers",
                                           "a number with no digit after its '.' (JSON5 syntax, not JSON)");
                while (!parser_eof(p) && is_digit(p->s[p->i]))
                        p->i++;
        }
        if (!parser_eof(p) && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
                integral = false;
                p->i++;
                if (!parser_eof(p) && (p->s[p->i] == '+' || p->s[p->i] == '-'))
                        p->i++;
                if (parser_eof(p) || !is_digit(p->s[p->i]))
                        return parser_fail(p, start, "write plain decimal numbers",
                                           "a number with an incomplete exponent");
                while (!parser_eof(p) && is_digit(p->s[p->i]))
                        p->i++;
        }

        _cleanup_free_ char *raw = strndup(p->s + start, p->i - start);
        if (!raw)
                return -ENOMEM;

        struct json_object *o;
        if (integral) {
                errno = 0;
                long long v = strtoll(raw, NULL, 10);
                if (errno == ERANGE)
                        /* Beyond 64 bits: kept as its text, whatever the double. */
                        o = json_object_new_double_s(strtod(raw, NULL), raw);
                else {
                        o = json_object_new_int64((int64_t) v);
                        if (o)
                                json_object_set_serializer(o, json_object_userdata_to_json_string,
                                                           TAKE_PTR(raw), json_object_free_userdata);
                }
        } else
                o = json_object_new_double_s(strtod(raw, NULL), raw);
        if (!o)
                return -ENOMEM;
        *ret = o;
        return 0;
}

static int parse_literal(Parser *p, struct json_object **ret) {
        static const struct {
                const char *word;
                int value; /* -1: null */
        } table[] = {
                { "true", 1 },
                { "false", 0 },
                { "null", -1 },
        };

        for (size_t k = 0; k < ELEMENTSOF(table); k++) {
                size_t l = strlen(table[k].word);
                if (p->n - p->i < l || memcmp(p->s + p->i, table[k].word, l) != 0)
                        continue;
                char next = p->i + l < p->n ? p->s[p->i + l] : 0;
                if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') || is_digit(next) || next == '_')
                        continue;
                p->i += l;
                if (table[k].value < 0)
                        *ret = NULL;
                else if (!(*ret = json_object_new_boolean(table[k].value)))
                        return -ENOMEM;
                return 0;
        }
        return parser_fail_unexpected(p, "a value");
}

static bool is_ident_start(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

static int parse_object(Parser *p, struct json_object **ret) {
        _cleanup_(json_erase_and_putp) struct json_object *obj = NULL;
        size_t open = p->i;
        int r;

        if (++p->depth > JSON_MAX_DEPTH)
                return parser_fail(p, open, "flatten the file", "nesting deeper than %u levels", JSON_MAX_DEPTH);
        p->i++;
        obj = json_object_new_object();
        if (!obj)
                return -ENOMEM;

        parser_skip_ws(p);
        if (!parser_eof(p) && p->s[p->i] == '}') {
                p->i++;
                goto done;
        }

        for (;;) {
                _cleanup_(json_erase_and_putp) struct json_object *val = NULL;
                Buf key = {};
                size_t key_at;

                parser_skip_ws(p);
                key_at = p->i;
                if (parser_eof(p))
                        return parser_fail_early_end(p);
                if (p->s[p->i] != '"') {
                        if (is_ident_start(p->s[p->i]))
                                return parser_fail(p, p->i, "put the key in double quotes",
                                                   "an unquoted key (JSON5 syntax, not JSON)");
                        return parser_fail_unexpected(p, "a key in double quotes");
                }
                r = parse_string(p, &key);
                if (r < 0) {
                        buf_done(&key);
                        return r;
                }
                if (!key.p && !buf_reserve(&key, 0)) /* the empty key "" */
                        return -ENOMEM;
                if (memchr(key.p, 0, key.n)) {
                        buf_done(&key);
                        return parser_fail(p, key_at, "rename the key", "a key containing \\u0000");
                }
                if (json_object_object_get_ex(obj, key.p, NULL)) {
                        r = parser_fail(p, key_at, "remove one of them",
                                        "the key \"%.64s\" twice in the same object", key.p);
                        buf_done(&key);
                        return r;
                }

                parser_skip_ws(p);
                if (parser_eof(p) || p->s[p->i] != ':') {
                        buf_done(&key);
                        return parser_fail_unexpected(p, "a ':' after the key");
                }
                p->i++;
                r = parse_value(p, &val);
                if (r < 0) {
                        buf_done(&key);
                        return r;
                }
                r = json_object_object_add(obj, key.p, TAKE_PTR(val));
                buf_done(&key);
                if (r < 0)
                        return -ENOMEM;

                parser_skip_ws(p);
                if (parser_eof(p))
                        return parser_fail_early_end(p);
                if (p->s[p->i] == '}') {
                        p->i++;
                        break;
                }
                if (p->s[p->i] != ',')
                        return parser_fail_unexpected(p, "',' or '}'");
                size_t comma = p->i++;
                parser_skip_ws(p);
                if (!parser_eof(p) && p->s[p->i] == '}')
                        return parser_fail(p, comma, "remove the trailing comma",
                                           "a trailing comma before '}' (JSON5 syntax, not JSON)");
        }
done:
        p->depth--;
        *ret = TAKE_PTR(obj);
        return 0;
}

static int parse_array(Parser *p, struct json_object **ret) {
        _cleanup_(json_erase_and_putp) struct json_object *arr = NULL;
        size_t open = p->i;
        int r;

        if (++p->depth > JSON_MAX_DEPTH)
                return parser_fail(p, open, "flatten the file", "nesting deeper than %u levels", JSON_MAX_DEPTH);
        p->i++;
        arr = json_object_new_array();
        if (!arr)
                return -ENOMEM;

        parser_skip_ws(p);
        if (!parser_eof(p) && p->s[p->i] == ']') {
                p->i++;
                goto done;
        }
        for (;;) {
                _cleanup_(json_erase_and_putp) struct json_object *val = NULL;

                r = parse_value(p, &val);
                if (r < 0)
                        return r;
                if (json_object_array_add(arr, val) < 0)
                        return -ENOMEM;
                TAKE_PTR(val);

                parser_skip_ws(p);
                if (parser_eof(p))
                        return parser_fail_early_end(p);
                if (p->s[p->i] == ']') {
                        p->i++;
                        break;
                }
                if (p->s[p->i] != ',')
                        return parser_fail_unexpected(p, "',' or ']'");
                size_t comma = p->i++;
                parser_skip_ws(p);
                if (!parser_eof(p) && p->s[p->i] == ']')
                        return parser_fail(p, comma, "remove the trailing comma",
                                           "a trailing comma before ']' (JSON5 syntax, not JSON)");
        }
done:
        p->depth--;
        *ret = TAKE_PTR(arr);
        return 0;
}

static int parse_value(Parser *p, struct json_object **ret) {
        parser_skip_ws(p);
        if (parser_eof(p))
                return parser_fail_early_end(p);

        char c = p->s[p->i];
        if (c == '{')
                return parse_object(p, ret);
        if (c == '[')
                return parse_array(p, ret);
        if (c == '-' || is_digit(c)) {
                if (startswith(p->s + p->i, "-Infinity"))
                        return parser_fail_unexpected(p, "a value");
                return parse_number(p, ret);
        }
        if (c == '"') {
                Buf b = {};
                int r = parse_string(p, &b);
                if (r >= 0) {
                        *ret = json_object_new_string_len(b.p ?: "", (int) b.n);
                        r = *ret ? 0 : -ENOMEM;
                }
                buf_done(&b);
                return r;
        }
        if (c == 't' || c == 'f' || c == 'n')
                return parse_literal(p, ret);
        return parser_fail_unexpected(p, "a value");
}

static void offset_to_line_column(const char *s, size_t n, size_t at, unsigned *ret_line, unsigned *ret_col) {
        unsigned line = 1, col = 1;

        for (size_t i = 0; i < at && i < n; i++) {
                if (s[i] == '\n') {
                        line++;
                        col = 1;
                } else if (!utf8_is_continuation(s[i]))
                        col++; /* count characters, not bytes */
        }
        *ret_line = line;
        *ret_col = col;
}

/* Parses a whole config text. Empty or blank text gives *ret = NULL. On
 * -EBADMSG, *ret_what and *ret_remedy say why ("… at line L, column C"). */
int json_parse_strict(const char *text, struct json_object **ret, char **ret_what, const char **ret_remedy) {
        _cleanup_(json_erase_and_putp) struct json_object *o = NULL;
        Parser p = {
                .s = text,
                .n = strlen(text),
        };
        size_t bad;
        int r;

        /* A UTF-8 byte order mark is not data: accept it (and write none). */
        if (startswith(text, "\xEF\xBB\xBF"))
                p.i = 3;

        bad = utf8_invalid_at(p.s, p.n);
        if (bad != SIZE_MAX)
                r = parser_fail(&p, bad, "save the file as UTF-8", "bytes that are not valid UTF-8");
        else {
                parser_skip_ws(&p);
                if (parser_eof(&p)) {
                        *ret = NULL;
                        return 0;
                }
                r = parse_value(&p, &o);
                if (r >= 0) {
                        parser_skip_ws(&p);
                        if (!parser_eof(&p))
                                r = p.s[p.i] == '/' || p.s[p.i] == '#' ?
                                        parser_fail_unexpected(&p, "the end") :
                                        parser_fail(&p, p.i, "remove what follows the closing '}'",
                                                    "more text after the end of the JSON value");
                        else if (!json_object_is_type(o, json_type_object))
                                r = parser_fail(&p, 0, "make the top level an object",
                                                "%s at the top level, where an object ({…}) is expected",
                                                json_type_phrase(o));
                }
        }
        if (r == -EBADMSG) {
                unsigned line, col;
                char *w;

                offset_to_line_column(p.s, p.n, p.where, &line, &col);
                if (asprintf(&w, "%s at line %u, column %u", p.what, line, col) < 0)
                        r = -ENOMEM;
                else {
                        *ret_what = w;
                        *ret_remedy = p.remedy;
                }
        }
        free(p.what);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}
