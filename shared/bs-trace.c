/* bs-trace.c: traceparent parsing and formatting, tracestate checking, and
 * random ids from the kernel's generator. */
#include "bs-trace.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

/* Ids come from getrandom(2) (g_random is predictable), a buffer at a time:
 * one system call per 32 span ids rather than one per span. */
#define RANDOM_POOL 256

static _Thread_local struct
{
  guint8 bytes[RANDOM_POOL];
  gsize left; /* unused bytes at the end of bytes[] */
} pool;

static void
refill_pool (void)
{
  gsize got = 0;

  while (got < RANDOM_POOL)
    {
      ssize_t n = getrandom (pool.bytes + got, RANDOM_POOL - got, 0);

      if (n > 0)
        got += (gsize) n;
      else if (n < 0 && errno != EINTR)
        break;
    }
  /* no getrandom (a kernel before 3.17): GLib's generator, seeded from
   * /dev/urandom; ids need to be unique, not secret */
  for (; got < RANDOM_POOL; got++)
    pool.bytes[got] = (guint8) g_random_int_range (0, 256);
  pool.left = RANDOM_POOL;
}

/* @len random bytes as 2 × @len lowercase hex digits, never all zeros. */
static void
random_hex (char *out, gsize len)
{
  static const char digits[] = "0123456789abcdef";
  gboolean zero;

  do
    {
      zero = TRUE;
      for (gsize i = 0; i < len; i++)
        {
          guint8 b;

          if (pool.left == 0)
            refill_pool ();
          b = pool.bytes[RANDOM_POOL - pool.left--];
          zero = zero && b == 0;
          out[2 * i] = digits[b >> 4];
          out[2 * i + 1] = digits[b & 0xf];
        }
    }
  while (zero);
  out[2 * len] = '\0';
}

static gboolean
is_lower_hex (char c)
{
  return g_ascii_isdigit (c) || (c >= 'a' && c <= 'f');
}

/* @len lowercase hex digits at @p, not all '0'. */
static gboolean
is_id (const char *p, gsize len)
{
  gboolean zero = TRUE;

  for (gsize i = 0; i < len; i++)
    {
      if (!is_lower_hex (p[i]))
        return FALSE;
      zero = zero && p[i] == '0';
    }
  return !zero;
}

gboolean
bs_traceparent_parse (const char *value, char *trace_id, char *parent_id, guint8 *flags)
{
  gsize len;

  if (value == NULL)
    return FALSE;
  len = strlen (value);
  /* version-format = version "-" trace-id "-" parent-id "-" trace-flags */
  if (len < BS_TRACEPARENT_LEN || !is_lower_hex (value[0]) || !is_lower_hex (value[1])
      || value[2] != '-' || value[35] != '-' || value[52] != '-' || !is_lower_hex (value[53])
      || !is_lower_hex (value[54]))
    return FALSE;
  if (value[0] == 'f' && value[1] == 'f')
    return FALSE; /* version ff is forbidden */
  if (value[0] == '0' && value[1] == '0' && len != BS_TRACEPARENT_LEN)
    return FALSE; /* version 00 has exactly four fields */
  if (len > BS_TRACEPARENT_LEN && value[BS_TRACEPARENT_LEN] != '-')
    return FALSE; /* a later version's further fields follow a dash */
  if (!is_id (value + 3, BS_TRACE_ID_LEN) || !is_id (value + 36, BS_SPAN_ID_LEN))
    return FALSE;
  memcpy (trace_id, value + 3, BS_TRACE_ID_LEN);
  trace_id[BS_TRACE_ID_LEN] = '\0';
  memcpy (parent_id, value + 36, BS_SPAN_ID_LEN);
  parent_id[BS_SPAN_ID_LEN] = '\0';
  /* only the sampled flag is defined: the others are passed on as zero */
  *flags = (g_ascii_xdigit_value (value[54]) & BS_TRACE_FLAG_SAMPLED);
  return TRUE;
}

gboolean
bs_traceparent_is_valid (const char *value)
{
  char trace_id[BS_TRACE_ID_LEN + 1], parent_id[BS_SPAN_ID_LEN + 1];
  guint8 flags;

  return bs_traceparent_parse (value, trace_id, parent_id, &flags);
}

gboolean
bs_trace_start (BsTrace *trace, const char *traceparent)
{
  gboolean continued
      = bs_traceparent_parse (traceparent, trace->trace_id, trace->parent_id, &trace->flags);

  if (!continued)
    {
      random_hex (trace->trace_id, BS_TRACE_ID_LEN / 2);
      trace->parent_id[0] = '\0';
      trace->flags = BS_TRACE_FLAG_SAMPLED; /* every span is in the journal */
    }
  random_hex (trace->span_id, BS_SPAN_ID_LEN / 2);
  return continued;
}

void
bs_trace_child (BsTrace *child, const BsTrace *parent)
{
  memcpy (child->trace_id, parent->trace_id, sizeof child->trace_id);
  memcpy (child->parent_id, parent->span_id, sizeof child->parent_id);
  child->flags = parent->flags;
  random_hex (child->span_id, BS_SPAN_ID_LEN / 2);
}

void
bs_trace_format (const BsTrace *trace, char *out)
{
  g_snprintf (out, BS_TRACEPARENT_LEN + 1, "00-%s-%s-%02x", trace->trace_id, trace->span_id,
              trace->flags);
}

/* simple-key = lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/");
 * multi-tenant-key = tenant-id "@" system-id, where tenant-id may start
 * with a digit and is at most 241 characters, system-id at most 14. */
static gboolean
key_is_valid (const char *key, gsize len)
{
  const char *at = memchr (key, '@', len);
  gsize tenant_len = at != NULL ? (gsize) (at - key) : len;

  if (len == 0 || len > 256)
    return FALSE;
  if (at != NULL
      && (tenant_len == 0 || tenant_len > 241 || len - tenant_len - 1 == 0
          || len - tenant_len - 1 > 14 || !g_ascii_islower (at[1])))
    return FALSE;
  if (!g_ascii_islower (key[0]) && !(at != NULL && g_ascii_isdigit (key[0])))
    return FALSE;
  for (gsize i = 0; i < len; i++)
    {
      char c = key[i];

      if (key + i == at)
        continue;
      if (!g_ascii_islower (c) && !g_ascii_isdigit (c) && c != '_' && c != '-' && c != '*'
          && c != '/')
        return FALSE;
    }
  return TRUE;
}

/* value = 0*255(chr) nblk-chr: printable ASCII but ',' and '=', spaces
 * inside only. */
static gboolean
value_is_valid (const char *value, gsize len)
{
  if (len == 0 || len > 256 || value[len - 1] == ' ')
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (value[i] < 0x20 || value[i] > 0x7e || value[i] == ',' || value[i] == '=')
      return FALSE;
  return TRUE;
}

gboolean
bs_tracestate_is_valid (const char *value)
{
  guint members = 0;
  const char *p;

  if (value == NULL || strlen (value) > BS_TRACESTATE_MAX_LEN)
    return FALSE;
  for (p = value;;)
    {
      const char *end = strchr (p, ',');
      const char *eq;
      gsize len;

      if (end == NULL)
        end = p + strlen (p);
      /* OWS around members */
      while (p < end && (*p == ' ' || *p == '\t'))
        p++;
      len = (gsize) (end - p);
      while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
      if (len > 0)
        {
          eq = memchr (p, '=', len);
          if (eq == NULL || !key_is_valid (p, (gsize) (eq - p))
              || !value_is_valid (eq + 1, len - (gsize) (eq - p) - 1)
              || ++members > BS_TRACESTATE_MAX_MEMBERS)
            return FALSE;
        }
      if (*end == '\0')
        break;
      p = end + 1;
    }
  return members > 0;
}

/* A zeroed BsTrace (a request whose headers never came) is no span. */
static gboolean
is_span (const BsTrace *trace)
{
  return trace != NULL && trace->trace_id[0] != '\0';
}

const char *
bs_trace_get_trace_id (const BsTrace *trace)
{
  return is_span (trace) ? trace->trace_id : NULL;
}

const char *
bs_trace_get_span_id (const BsTrace *trace)
{
  return is_span (trace) ? trace->span_id : NULL;
}

const char *
bs_trace_get_parent_id (const BsTrace *trace)
{
  return is_span (trace) && trace->parent_id[0] != '\0' ? trace->parent_id : NULL;
}
