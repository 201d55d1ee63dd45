/* bs-money.h: exact money as integer cents; never a float. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The largest amount NUMERIC(10,2) holds: 99999999.99. */
#define BS_MONEY_MAX_CENTS G_GINT64_CONSTANT (9999999999)

/* Parse a plain decimal ("15.99", "7", "0.5") into cents. Rejects signs,
 * exponents, more than two decimals, whitespace, and values above
 * BS_MONEY_MAX_CENTS, with a BS_ERROR_VALIDATION error. */
gboolean bs_money_parse (const char *text, gint64 *out_cents, GError **error);

/* Parse a JSON string or number into cents. Numbers are read through their
 * shortest exact decimal form (%.15g), so 18.99 is 1899 cents, 1.999 is
 * rejected, and anything within NUMERIC(10,2) round-trips exactly. */
gboolean bs_money_from_json (JsonNode *node, gint64 *out_cents, GError **error);

/* Read an amount PostgreSQL rendered from a NUMERIC(p,2) column ("25.98",
 * "-0.30", "199900.00"; at most 16 integer digits). Not for user input. */
gboolean bs_money_parse_stored (const char *text, gint64 *out_cents);

/* "15.99", "7.00", "0.30"; negative amounts get a leading '-'. */
char *bs_money_format (gint64 cents);

G_END_DECLS
