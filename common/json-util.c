/* SPDX-License-Identifier: MIT */
/* json-c conveniences (see json-util.h). */
#include <math.h>

#include "json-util.h"

json_object *json_get(json_object *o, const char *key) {
        json_object *v = NULL;

        if (!json_object_is_type(o, json_type_object))
                return NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v; /* NULL for JSON null too */
}

const char *json_get_string(json_object *o, const char *key, size_t *ret_len) {
        json_object *v = json_get(o, key);

        if (!json_object_is_type(v, json_type_string))
                return NULL;
        if (ret_len)
                *ret_len = (size_t) json_object_get_string_len(v);
        return json_object_get_string(v);
}

bool json_get_count(json_object *o, const char *key, uint64_t *ret) {
        json_object *v = json_get(o, key);

        if (json_object_is_type(v, json_type_int)) {
                int64_t i = json_object_get_int64(v);
                *ret = i > 0 ? (uint64_t) i : 0;
                return true;
        }
        if (json_object_is_type(v, json_type_double)) {
                double d = json_object_get_double(v);
                *ret = isfinite(d) && d > 0 ? (d < 1e18 ? (uint64_t) d : UINT64_C(1000000000000000000)) : 0;
                return true;
        }
        return false;
}

json_object *json_parse_n(json_tokener *tok, const char *s, size_t n, const char **ret_error) {
        json_object *o;
        size_t off;

        if (n > INT32_MAX) {
                *ret_error = "too large";
                return NULL;
        }

        json_tokener_reset(tok);
        o = json_tokener_parse_ex(tok, s, (int) n);
        if (!o) {
                enum json_tokener_error e = json_tokener_get_error(tok);
                *ret_error = e == json_tokener_continue ? "unexpected end of data" : json_tokener_error_desc(e);
                return NULL;
        }

        off = json_tokener_get_parse_end(tok);
        for (; off < n; off++)
                if (!strchr(" \t\r\n", s[off]) || s[off] == 0) {
                        json_object_put(o);
                        *ret_error = "unexpected data after the JSON value";
                        return NULL;
                }
        return o;
}

json_object *json_new_double_short(double d) {
        char s[64];

        for (int prec = 1; prec <= 17; prec++) {
                (void) snprintf(s, sizeof s, "%.*g", prec, d);
                if (strtod(s, NULL) == d)
                        break;
        }
        return json_object_new_double_s(d, s);
}

int json_add(json_object *o, const char *key, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_object_add(o, key, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int json_append(json_object *a, json_object *v) {
        if (!v)
                return -ENOMEM;
        if (json_object_array_add(a, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int json_parse_body(const char *body, size_t len, json_object **ret) {
        enum json_tokener_error jerr;
        json_tokener *tok;
        json_object *o;

        if (len > INT32_MAX)
                return -E2BIG;
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        o = json_tokener_parse_ex(tok, body, (int) len);
        jerr = json_tokener_get_error(tok);
        json_tokener_free(tok);
        if (!o || jerr != json_tokener_success) {
                json_object_put(o);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}
