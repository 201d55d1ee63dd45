/* test-redis-sentinel-config.c: "host:port" addresses, the REDIS_SENTINELS
 * list, and the REDIS_* rules with Sentinel (bs_config_get_redis()). */
#include "bs-config.h"
#include "bs-error.h"
#include "bs-redis.h"
#include "bs-test.h"

#include <glib.h>
#include <string.h>

static const char *const redis_vars[] = {
  "REDIS_HOST",      "REDIS_PORT",        "REDIS_USERNAME",      "REDIS_PASSWORD",
  "REDIS_SENTINELS", "REDIS_MASTER_NAME", "REDIS_PASSWORD_FILE", "CREDENTIALS_DIRECTORY",
};

typedef struct
{
  int unused;
} Fixture;

static void
unset_redis_vars (void)
{
  for (gsize i = 0; i < G_N_ELEMENTS (redis_vars); i++)
    g_unsetenv (redis_vars[i]);
}

static void
fixture_setup (Fixture *fixture, gconstpointer user_data)
{
  unset_redis_vars ();
}

static void
fixture_teardown (Fixture *fixture, gconstpointer user_data)
{
  unset_redis_vars ();
}

/* ---- one address ---- */

static void
test_address_valid (Fixture *fixture, gconstpointer user_data)
{
  static const struct
  {
    const char *text;
    const char *host;
    guint16 port;
  } cases[] = {
    { "127.0.0.1:26380", "127.0.0.1", 26380 },
    { "127.0.0.1", "127.0.0.1", 26379 },
    { "sentinel-1.example:1", "sentinel-1.example", 1 },
    { "db2:65535", "db2", 65535 },
    { "[::1]:26381", "::1", 26381 },
    { "[fe80::1]", "fe80::1", 26379 },
    { "localhost:00080", "localhost", 80 },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *host = NULL;
      guint16 port = 0;

      if (!bs_redis_parse_address (cases[i].text, 26379, &host, &port, &error))
        {
          bs_test_fail ("\"%s\" refused: %s", cases[i].text, error->message);
          continue;
        }
      if (g_strcmp0 (host, cases[i].host) != 0 || port != cases[i].port)
        bs_test_fail ("\"%s\": got %s port %u, expected %s port %u", cases[i].text, host, port,
                      cases[i].host, cases[i].port);
    }
}

static void
test_address_invalid (Fixture *fixture, gconstpointer user_data)
{
  static const char *const cases[] = {
    "",          "host:",     "host:0",    "host:65536",  "host:12a", "host:-1",  ":26379",
    "::1",       "::1:26379", "[::1",      "[::1]x",      "[::1]:",   "[host]:1", "[127.0.0.1]:1",
    "host name", "host:1:2",  "a/b:26379", "host:999999", "[]:1",     "host:+1",  "host:\t1",
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_autofree char *host = NULL;
      guint16 port = 0;

      if (bs_redis_parse_address (cases[i], 26379, &host, &port, &error))
        {
          bs_test_fail ("\"%s\" accepted as %s port %u", cases[i], host, port);
          continue;
        }
      if (!g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG))
        bs_test_fail ("\"%s\": not BS_ERROR_CONFIG: %s", cases[i], error->message);
      else if (*cases[i] != '\0' && strstr (error->message, cases[i]) == NULL)
        bs_test_fail ("\"%s\": the message does not quote it: %s", cases[i], error->message);
    }
}

/* ---- the list ---- */

static void
test_sentinels_list (Fixture *fixture, gconstpointer user_data)
{
  static const struct
  {
    const char *list;
    const char *joined; /* the entries joined with "|" */
  } cases[] = {
    { "127.0.0.1:26379", "127.0.0.1:26379" },
    { "a:1,b:2,c", "a:1|b:2|c" },
    { " a:1 , [::1]:2,\tb ", "a:1|[::1]:2|b" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_auto (GStrv) entries = bs_redis_parse_sentinels (cases[i].list, &error);
      g_autofree char *joined = NULL;

      if (entries == NULL)
        {
          bs_test_fail ("\"%s\" refused: %s", cases[i].list, error->message);
          continue;
        }
      joined = g_strjoinv ("|", entries);
      if (g_strcmp0 (joined, cases[i].joined) != 0)
        bs_test_fail ("\"%s\": got %s, expected %s", cases[i].list, joined, cases[i].joined);
    }
}

static void
test_sentinels_list_invalid (Fixture *fixture, gconstpointer user_data)
{
  g_autoptr (GString) too_many = g_string_new ("h:1");
  const char *cases[] = { "a:1,,b:2", "a:1,", ",a:1", "a:1,b:0", "a:1;b:2", " , ", NULL };

  for (int i = 0; i < BS_REDIS_MAX_SENTINELS; i++)
    g_string_append (too_many, ",h:1");
  cases[G_N_ELEMENTS (cases) - 1] = too_many->str;
  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr (GError) error = NULL;
      g_auto (GStrv) entries = bs_redis_parse_sentinels (cases[i], &error);

      if (entries != NULL)
        bs_test_fail ("\"%s\" accepted", cases[i]);
      else if (!g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG))
        bs_test_fail ("\"%s\": not BS_ERROR_CONFIG", cases[i]);
    }
}

/* ---- the environment ---- */

static void
test_config_sentinels (Fixture *fixture, gconstpointer user_data)
{
  g_auto (BsConfigRedis) config = { 0 };
  g_autoptr (GError) error = NULL;
  BsRedisOptions options;

  g_setenv ("REDIS_SENTINELS", "10.0.0.1:26379, 10.0.0.2", TRUE);
  g_setenv ("REDIS_MASTER_NAME", " bookstore ", TRUE);
  g_assert_true (bs_config_get_redis (&config, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (config.master_name, ==, "bookstore");
  g_assert_nonnull (config.sentinels);
  g_assert_cmpuint (g_strv_length (config.sentinels), ==, 2);
  g_assert_cmpstr (config.sentinels[0], ==, "10.0.0.1:26379");
  g_assert_cmpstr (config.sentinels[1], ==, "10.0.0.2");

  bs_redis_options_init_default (&options);
  bs_redis_options_set_config (&options, &config);
  g_assert_cmpstr (options.master_name, ==, "bookstore");
  g_assert_true (options.sentinels == (const char *const *) config.sentinels);
}

static void
test_config_no_sentinels (Fixture *fixture, gconstpointer user_data)
{
  g_auto (BsConfigRedis) config = { 0 };
  g_autoptr (GError) error = NULL;

  g_setenv ("REDIS_SENTINELS", "  ", TRUE);
  g_setenv ("REDIS_HOST", "10.0.0.9", TRUE);
  g_assert_true (bs_config_get_redis (&config, &error));
  g_assert_null (config.sentinels);
  g_assert_null (config.master_name);
  g_assert_cmpstr (config.host, ==, "10.0.0.9");
}

static void
test_config_sentinels_invalid (Fixture *fixture, gconstpointer user_data)
{
  static const struct
  {
    const char *sentinels, *master_name, *host, *port;
    const char *named; /* the message names this */
  } cases[] = {
    { "10.0.0.1:26379", NULL, NULL, NULL, "REDIS_MASTER_NAME" },
    { NULL, "bookstore", NULL, NULL, "REDIS_SENTINELS" },
    { "10.0.0.1:26379", "bookstore", "10.0.0.5", NULL, "REDIS_HOST" },
    { "10.0.0.1:26379", "bookstore", NULL, "6380", "REDIS_PORT" },
    { "10.0.0.1:0", "bookstore", NULL, NULL, "REDIS_SENTINELS" },
    { "10.0.0.1:26379", "book store", NULL, NULL, "REDIS_MASTER_NAME" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_auto (BsConfigRedis) config = { 0 };
      g_autoptr (GError) error = NULL;
      const char *values[]
          = { cases[i].sentinels, cases[i].master_name, cases[i].host, cases[i].port };
      const char *names[] = { "REDIS_SENTINELS", "REDIS_MASTER_NAME", "REDIS_HOST", "REDIS_PORT" };

      unset_redis_vars ();
      for (gsize v = 0; v < G_N_ELEMENTS (names); v++)
        if (values[v] != NULL)
          g_setenv (names[v], values[v], TRUE);
      if (bs_config_get_redis (&config, &error))
        bs_test_fail ("case %" G_GSIZE_FORMAT ": accepted", i);
      else if (!g_error_matches (error, BS_ERROR, BS_ERROR_CONFIG))
        bs_test_fail ("case %" G_GSIZE_FORMAT ": not BS_ERROR_CONFIG: %s", i, error->message);
      else if (strstr (error->message, cases[i].named) == NULL)
        bs_test_fail ("case %" G_GSIZE_FORMAT ": \"%s\" does not name %s", i, error->message,
                      cases[i].named);
    }
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);

#define ADD(path, func) g_test_add (path, Fixture, NULL, fixture_setup, func, fixture_teardown)
  ADD ("/bs/redis/address/valid", test_address_valid);
  ADD ("/bs/redis/address/invalid", test_address_invalid);
  ADD ("/bs/redis/sentinels/list", test_sentinels_list);
  ADD ("/bs/redis/sentinels/list-invalid", test_sentinels_list_invalid);
  ADD ("/bs/redis/sentinels/config", test_config_sentinels);
  ADD ("/bs/redis/sentinels/config-none", test_config_no_sentinels);
  ADD ("/bs/redis/sentinels/config-invalid", test_config_sentinels_invalid);
#undef ADD

  return g_test_run ();
}
