/* bs-money.h: exact money as integer cents; never a float. */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

/* The largest amount NUMERIC(10,2) holds: 99999999.99. */
#define BS_MONEY_MAX_CENTS G_GINT64_CONSTANT (9999999999)

/* Parse a plain decimal ("15.99", "7", "0.5", "007.10", "1.500") into cents.
 * The rule, the same for every spelling of a price (docs/validation.md):
 * digits, optionally a point and digits; no exponent, '+' or whitespace;
 * at most BS_MONEY_MAX_CENTS; a whole number of cents (digits after the
 * second decimal must be zeros: "1.500" is 150, "1.505" is refused); not
 * negative, but negative zero ("-0", "-0.00") is zero. Errors are
 * BS_ERROR_VALIDATION. */
gboolean bs_money_parse (const char *text, gint64 *out_cents, GError **error);

/* Parse a JSON string (bs_money_parse) or number into cents. A number may
 * have an exponent (1.5e1 is 1500 cents) and otherwise follows the same
 * rule, applied to the shortest decimal that reads back as its double, which
 * is the number the client wrote when the body went through
 * bs_json_parse_object (it refuses numbers a double cannot keep exactly). */
gboolean bs_money_from_json (JsonNode *node, gint64 *out_cents, GError **error);

/* Read an amount PostgreSQL rendered from a NUMERIC(p,2) column ("25.98",
 * "-0.30", "199900.00"; at most 16 integer digits). Not for user input. */
gboolean bs_money_parse_stored (const char *text, gint64 *out_cents);

/* "15.99", "7.00", "0.30"; negative amounts get a leading '-'. */
char *bs_money_format (gint64 cents);

G_END_DECLS
