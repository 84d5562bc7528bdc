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

#include "setup-gen.h"

#define OPENCODE_SCHEMA "https://opencode.ai/config.json"
#define JSON_MAX_DEPTH 512U

static const char *const tool_table[_SETUP_TOOL_MAX] = {
        [SETUP_TOOL_OPENCLAW] = "openclaw",
        [SETUP_TOOL_OPENCODE] = "opencode",
        [SETUP_TOOL_CLAUDE] = "claude",
        [SETUP_TOOL_CURSOR] = "cursor",
};

static const char *const key_mode_table[_SETUP_KEY_MODE_MAX] = {
        [SETUP_KEY_ENV] = "env",
        [SETUP_KEY_INLINE] = "inline",
};

/* Models the bankr CLI recommends, in its order. */
static const char *const recommended_models[] = {
        "claude-opus-4.6",
        "gemini-3-pro",
        "gpt-5.2",
};

const char *setup_tool_to_string(SetupTool t) {
        if (t < 0 || t >= _SETUP_TOOL_MAX)
                return NULL;
        return tool_table[t];
}

SetupTool setup_tool_from_string(const char *s) {
        if (s)
                for (size_t i = 0; i < ELEMENTSOF(tool_table); i++)
                        if (streq(s, tool_table[i]))
                                return (SetupTool) i;
        return _SETUP_TOOL_INVALID;
}

const char *setup_key_mode_to_string(SetupKeyMode m) {
        if (m < 0 || m >= _SETUP_KEY_MODE_MAX)
                return NULL;
        return key_mode_table[m];
}

SetupKeyMode setup_key_mode_from_string(const char *s) {
        if (s)
                for (size_t i = 0; i < ELEMENTSOF(key_mode_table); i++)
                        if (streq(s, key_mode_table[i]))
                                return (SetupKeyMode) i;
        return _SETUP_KEY_MODE_INVALID;
}

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

/* ---- A string builder whose old buffers are wiped: texts may hold the key. ---- */

typedef struct Buf {
        char *p;
        size_t n, alloc;
        bool oom;
} Buf;

static void buf_done(Buf *b) {
        if (b->p) {
                explicit_bzero(b->p, b->alloc);
                free(b->p);
        }
        *b = (Buf) {};
}

static bool buf_reserve(Buf *b, size_t extra) {
        if (b->oom)
                return false;
        if (b->n + extra + 1 <= b->alloc)
                return true;

        size_t na = MAX(b->alloc * 2, b->n + extra + 1);
        na = MAX(na, (size_t) 256);
        char *t = malloc(na);
        if (!t) {
                b->oom = true;
                return false;
        }
        if (b->p) {
                memcpy(t, b->p, b->n);
                explicit_bzero(b->p, b->alloc);
                free(b->p);
        }
        b->p = t;
        b->p[b->n] = 0;
        b->alloc = na;
        return true;
}

static void buf_put(Buf *b, const char *s, size_t n) {
        if (!buf_reserve(b, n))
                return;
        memcpy(b->p + b->n, s, n);
        b->n += n;
        b->p[b->n] = 0;
}

static void buf_puts(Buf *b, const char *s) {
        buf_put(b, s, strlen(s));
}

static void buf_putc(Buf *b, char c) {
        buf_put(b, &c, 1);
}

static void buf_indent(Buf *b, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                buf_put(b, "  ", 2);
}

_printf_(2, 3) static void buf_printf(Buf *b, const char *fmt, ...) {
        va_list ap;
        int k;

        va_start(ap, fmt);
        k = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
                b->oom = true;
                return;
        }
        if (!buf_reserve(b, (size_t) k))
                return;
        va_start(ap, fmt);
        (void) vsnprintf(b->p + b->n, (size_t) k + 1, fmt, ap);
        va_end(ap);
        b->n += (size_t) k;
}

/* Hands the text over (NUL-terminated, never NULL on success). */
static int buf_steal(Buf *b, char **ret) {
        if (b->oom || !buf_reserve(b, 0)) {
                buf_done(b);
                return -ENOMEM;
        }
        *ret = b->p;
        *b = (Buf) {};
        return 0;
}

/* ---- JSON output, as JSON.stringify(v, null, 2) writes it ---- */

static void json_put_string(Buf *b, const char *s, size_t n) {
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

static struct json_object *json_new_number(double v) {
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

static int json_to_text(struct json_object *o, char **ret) {
        Buf b = {};

        json_write(&b, o, 0);
        buf_putc(&b, '\n');
        return buf_steal(&b, ret);
}

/* Trees may hold the key: overwrite every string before json-c frees it. */
static void json_erase_strings(struct json_object *o) {
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

static void json_erase_and_putp(struct json_object **o) {
        if (*o) {
                json_erase_strings(*o);
                json_object_put(*o);
        }
}
#define _cleanup_json_ _cleanup_(json_erase_and_putp)

static const char *json_type_phrase(struct json_object *o) {
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

        if (cp < 0x80) {
                t[0] = (char) cp;
                buf_put(b, t, 1);
        } else if (cp < 0x800) {
                t[0] = (char) (0xC0 | (cp >> 6));
                t[1] = (char) (0x80 | (cp & 0x3F));
                buf_put(b, t, 2);
        } else if (cp < 0x10000) {
                t[0] = (char) (0xE0 | (cp >> 12));
                t[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
                t[2] = (char) (0x80 | (cp & 0x3F));
                buf_put(b, t, 3);
        } else {
                t[0] = (char) (0xF0 | (cp >> 18));
                t[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
                t[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
                t[3] = (char) (0x80 | (cp & 0x3F));
                buf_put(b, t, 4);
        }
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
        _cleanup_json_ struct json_object *obj = NULL;
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
                _cleanup_json_ struct json_object *val = NULL;
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
        _cleanup_json_ struct json_object *arr = NULL;
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
                _cleanup_json_ struct json_object *val = NULL;

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

/* Offset of the first byte that is not valid UTF-8, or SIZE_MAX. */
static size_t utf8_invalid_at(const char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char) s[i];
                size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
                if (len == 0 || i + len > n || !utf8_is_valid_n(s + i, len))
                        return i;
                i += len;
        }
        return SIZE_MAX;
}

static void offset_to_line_column(const char *s, size_t n, size_t at, unsigned *ret_line, unsigned *ret_col) {
        unsigned line = 1, col = 1;

        for (size_t i = 0; i < at && i < n; i++) {
                if (s[i] == '\n') {
                        line++;
                        col = 1;
                } else if (((unsigned char) s[i] & 0xC0) != 0x80)
                        col++; /* count characters, not bytes */
        }
        *ret_line = line;
        *ret_col = col;
}

/* Parses a whole config text. Empty or blank text gives *ret = NULL. On
 * -EBADMSG, *ret_what and *ret_remedy say why ("… at line L, column C"). */
static int json_parse_strict(const char *text, struct json_object **ret, char **ret_what, const char **ret_remedy) {
        _cleanup_json_ struct json_object *o = NULL;
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
        _cleanup_json_ struct json_object *o = NULL, *input = NULL, *cost = NULL;
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
        _cleanup_json_ struct json_object *o = NULL, *list = NULL;
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
        _cleanup_json_ struct json_object *o = NULL, *options = NULL, *list = NULL;
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
        _cleanup_json_ struct json_object *o = NULL;
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
        _cleanup_json_ struct json_object *n = json_object_new_object();
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
        _cleanup_json_ struct json_object *root = NULL, *provider = NULL;
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
