/* ctl.h: what every bookstorectl command shares: the options, the exit
 * statuses, and how results are printed (JSON or text). */
#pragma once

#include "ctl-config.h"

#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* Exit statuses (bookstorectl(8), EXIT STATUS). */
#define CTL_EXIT_OK 0
#define CTL_EXIT_UNHEALTHY 1    /* something unhealthy, not found, or refused */
#define CTL_EXIT_USAGE 64       /* EX_USAGE */
#define CTL_EXIT_UNAVAILABLE 69 /* EX_UNAVAILABLE: Redis or PostgreSQL unreachable */
#define CTL_EXIT_CONFIG 78      /* EX_CONFIG: a configuration file unreadable or invalid */

typedef struct
{
  CtlConfig *config;
  gboolean json;
  guint timeout_ms; /* every connect, command, query and HTTP call */
} Ctl;

/* A command: its arguments after the command's name (argv[0] is the name). */
typedef int (*CtlCommandFunc) (Ctl *ctl, int argc, char **argv);

int ctl_status (Ctl *ctl, int argc, char **argv);
int ctl_order (Ctl *ctl, int argc, char **argv);
int ctl_dead_letters (Ctl *ctl, int argc, char **argv);
int ctl_outbox (Ctl *ctl, int argc, char **argv);
int ctl_idempotency (Ctl *ctl, int argc, char **argv);

/* Prints @node as one JSON document on stdout (pretty when stdout is a
 * terminal). Takes nothing. */
void ctl_print_json (JsonNode *node);

/* A usage message on stderr; returns CTL_EXIT_USAGE. */
int ctl_usage_error (const char *format, ...) G_GNUC_PRINTF (1, 2);

/* An error on stderr ("bookstorectl: ..."), or with --json an object
 * {"error": message} on stdout as well; returns @status. */
int ctl_fail (Ctl *ctl, int status, const char *format, ...) G_GNUC_PRINTF (3, 4);

/* "3d 4h", "5m 2s", "12s": a duration for people. */
char *ctl_format_duration (gint64 seconds);

/* "2026-01-01 12:00:00 UTC" for microseconds since the epoch. */
char *ctl_format_time_us (gint64 usec);

/* A member of @object as a string, or @fallback. */
const char *ctl_json_string (JsonObject *object, const char *member, const char *fallback);

/* A member that is an object (an array), or NULL. */
JsonObject *ctl_json_object (JsonObject *object, const char *member);
JsonArray *ctl_json_array (JsonObject *object, const char *member);

/* {"available": false, "reason": @reason}, and an empty array named
 * @empty_array when it is not NULL: what a part of a report says when its
 * source (the journal, systemd) cannot be read. */
JsonNode *ctl_unavailable (const char *reason, const char *empty_array);

G_END_DECLS
