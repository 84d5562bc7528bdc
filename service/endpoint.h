/* SPDX-License-Identifier: MIT */
/*
 * bot.bankr.LLM1.Endpoint: the local gateway. An HTTP/1.1 server
 * (libmicrohttpd, on its own epoll fd driven by the Context's sd-event
 * loop) on 127.0.0.1, ::1 and a unix socket in $XDG_RUNTIME_DIR, that
 * speaks the gateway's API to local tools, checks their scoped token
 * (tokens.h), adds the real key and relays each request through http.c,
 * the answer streamed back as it arrives. See docs/architecture.md,
 * "Endpoint", and docs/security.md.
 */
#pragma once

#include <systemd/sd-bus.h>

#include "bankr-llmd.h"

typedef struct Endpoint Endpoint;

/* Body cap: base64 images in chat and image requests fit. */
#define ENDPOINT_MAX_BODY (32U * 1024U * 1024U)
/* Per-connection memory of libmicrohttpd: bounds the request line and
 * headers (a request over it is answered 431 by libmicrohttpd), and holds
 * the write buffer of a streamed answer. Up to 32 KiB libmicrohttpd takes
 * it from malloc, above from mmap; either way it zeroes what it gives back
 * of the read buffer, so each stream costs about half of it in RSS. */
#define ENDPOINT_CONNECTION_MEMORY (32U * 1024U)
/* Seconds a connection may stay silent (slow clients, idle keep-alive). */
#define ENDPOINT_CONNECTION_TIMEOUT_S 60U
#define ENDPOINT_MAX_CONNECTIONS 1024U
#define ENDPOINT_FDS_PER_CONNECTION 2U
/* The first port tried when none was kept; BANKR_LLMD_ENDPOINT_PORT
 * overrides it (0: any free port). */
#define ENDPOINT_PORT_DEFAULT 48110U
/* How many ports after the kept or default one are tried when it is taken. */
#define ENDPOINT_PORT_TRIES 16U

/* Loads the tokens and watches the bus for their creators leaving. */
int endpoint_new(Context *c, Endpoint **ret);
/* Starts listening: once the bus name is ours (a second instance must not
 * take the port or replace the socket). A listener that cannot be set up
 * is logged and left out (Url or SocketPath is then ""); the daemon runs
 * on without it. */
void endpoint_start(Endpoint *e);
Endpoint *endpoint_free(Endpoint *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(Endpoint *, endpoint_free);

/* Url ("http://127.0.0.1:PORT"), or NULL while not listening on TCP. */
const char *endpoint_get_url(Endpoint *e);

extern const sd_bus_vtable endpoint_vtable[];
