/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <stdio.h>

#include "url.h"

bool url_host_is_loopback(const char *host) {
        unsigned a, b, c, d;
        char tail;

        if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0)
                return true;
        if (sscanf(host, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) == 4)
                return a == 127 && b < 256 && c < 256 && d < 256;
        return false;
}

#include <stdarg.h>

_printf_(2, 3) static int fail(char **ret_error, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                free(*ret_error);
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -EINVAL;
}

int url_normalize(const char *in, char **ret, char **ret_error) {
        _cleanup_free_ char *s = NULL, *host = NULL, *out = NULL;
        const char *p, *authority, *path;
        bool https;
        size_t l;

        if (!in)
                return fail(ret_error, "No URL given.");

        /* Trim surrounding whitespace, which copy and paste brings along. */
        while (isspace((unsigned char) *in))
                in++;
        s = strdup(in);
        if (!s)
                return -ENOMEM;
        l = strlen(s);
        while (l > 0 && isspace((unsigned char) s[l - 1]))
                s[--l] = 0;

        if (l == 0)
                return fail(ret_error, "The URL is empty.");
        if (l > 2048)
                return fail(ret_error, "The URL is longer than 2048 characters.");
        for (const char *q = s; *q; q++)
                if ((unsigned char) *q <= ' ' || *q == 0x7f || *q == '\\' || *q == '"')
                        return fail(ret_error, "The URL contains spaces or characters that are not allowed in a URL.");

        if (strncasecmp(s, "https://", 8) == 0) {
                https = true;
                authority = s + 8;
        } else if (strncasecmp(s, "http://", 7) == 0) {
                https = false;
                authority = s + 7;
        } else
                return fail(ret_error, "\"%s\" is not a URL: it must start with https:// (for example https://llm.bankr.bot).", s);

        p = authority + strcspn(authority, "/?#");
        if (*p == '?' || *p == '#' || strpbrk(p, "?#"))
                return fail(ret_error, "The URL must not contain a query (?…) or a fragment (#…).");
        path = p;

        host = strndup(authority, (size_t) (p - authority));
        if (!host)
                return -ENOMEM;
        if (strchr(host, '@'))
                return fail(ret_error, "The URL must not contain a user name or password; keys belong in the keyring.");
        if (isempty(host))
                return fail(ret_error, "\"%s\" is not a URL: the host name is missing.", s);

        /* Split off and check the port. */
        char *port = NULL;
        if (host[0] == '[') {
                char *close = strchr(host, ']');
                if (!close || close == host + 1)
                        return fail(ret_error, "\"%s\" is not a URL: the IPv6 address is not closed with ].", s);
                for (char *q = host + 1; q < close; q++)
                        if (!isxdigit((unsigned char) *q) && *q != ':' && *q != '.')
                                return fail(ret_error, "\"%s\" is not a URL: the IPv6 address is malformed.", s);
                if (close[1] == ':')
                        port = close + 1;
                else if (close[1] != 0)
                        return fail(ret_error, "\"%s\" is not a URL: unexpected text after the IPv6 address.", s);
        } else {
                port = strchr(host, ':');
                for (char *q = host; *q && q != port; q++)
                        if (!isalnum((unsigned char) *q) && *q != '-' && *q != '.' && *q != '_')
                                return fail(ret_error, "\"%s\" is not a URL: the host name contains characters that are not allowed.", s);
        }
        if (port) {
                char *end;
                long v;
                *port = 0;
                if (!isdigit((unsigned char) port[1]))
                        return fail(ret_error, "\"%s\" is not a URL: the port is not a number.", s);
                errno = 0;
                v = strtol(port + 1, &end, 10);
                if (errno != 0 || *end != 0 || v < 1 || v > 65535)
                        return fail(ret_error, "\"%s\" is not a URL: the port must be a number from 1 to 65535.", s);
                *port = ':';
        }
        for (char *q = host; *q && q != port; q++)
                *q = (char) tolower((unsigned char) *q);

        if (!https) {
                _cleanup_free_ char *bare = strndup(host, port ? (size_t) (port - host) : strlen(host));
                if (!bare)
                        return -ENOMEM;
                if (!url_host_is_loopback(bare))
                        return fail(ret_error, "Refusing plain http:// for %s: the key would travel unencrypted. Use https:// (http is allowed only for localhost).", bare);
        }

        /* Path: drop trailing slashes and "/v1" (repeatedly, so that the
         * result normalises to itself). */
        size_t pl = strlen(path);
        for (;;) {
                while (pl > 0 && path[pl - 1] == '/')
                        pl--;
                if (pl >= 3 && strncasecmp(path + pl - 3, "/v1", 3) == 0)
                        pl -= 3;
                else
                        break;
        }

        if (asprintf(&out, "%s://%s%.*s", https ? "https" : "http", host, (int) pl, path) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(out);
        return 0;
}
