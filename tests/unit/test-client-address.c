/* test-client-address.c: X-Forwarded-For counts only from a trusted peer,
 * read from the right past trusted hops; mapped IPv4; bad configuration. */
#include "bs-client-address.h"

#include "bs-error.h"
#include "bs-test.h"

#include <string.h>

typedef struct
{
  const char *trusted;
  const char *peer;
  const char *xff;
  const char *client;
} Case;

static void
test_client_address (void)
{
  static const Case cases[] = {
    { NULL, "192.0.2.7", "203.0.113.9", "192.0.2.7" },        /* no proxy trusted: header ignored */
    { "127.0.0.1", "192.0.2.7", "203.0.113.9", "192.0.2.7" }, /* peer not trusted */
    { "127.0.0.1", "127.0.0.1", NULL, "127.0.0.1" },
    { "127.0.0.1", "127.0.0.1", "203.0.113.9", "203.0.113.9" },
    { "127.0.0.1", "127.0.0.1", "198.51.100.1, 203.0.113.9", "203.0.113.9" }, /* forged left part */
    { "127.0.0.1 10.0.0.0/8", "127.0.0.1", "198.51.100.1, 203.0.113.9, 10.1.2.3", "203.0.113.9" },
    { "127.0.0.1,10.0.0.0/8", "127.0.0.1", "10.9.9.9,10.1.2.3", "10.9.9.9" }, /* all trusted */
    { "127.0.0.1", "127.0.0.1", "not-an-address", "127.0.0.1" },
    { "127.0.0.1", "127.0.0.1", "", "127.0.0.1" },
    { "127.0.0.1", "::ffff:127.0.0.1", "203.0.113.9", "203.0.113.9" }, /* dual-stack socket */
    { "127.0.0.1", "::ffff:192.0.2.7", "203.0.113.9", "192.0.2.7" },
    { "::1", "::1", "2001:db8::5", "2001:db8::5" },
    { "fd00::/8", "fd12::1", " 2001:db8::5 , fd00::2 ", "2001:db8::5" },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      const Case *c = &cases[i];
      g_autoptr (GError) error = NULL;
      g_autoptr (BsAddressSet) proxies = bs_address_set_new ("TRUSTED_PROXIES", c->trusted, &error);
      g_autoptr (GInetAddress) peer = g_inet_address_new_from_string (c->peer);
      g_autoptr (GInetAddress) address = NULL;
      g_autofree char *client = NULL;

      g_assert_no_error (error);
      g_assert_nonnull (peer);
      address = bs_client_address (proxies, peer, c->xff);
      client = g_inet_address_to_string (address);
      if (g_strcmp0 (client, c->client) != 0)
        bs_test_fail ("trusted %s, peer %s, X-Forwarded-For %s: got %s, expected %s", c->trusted,
                      c->peer, c->xff, client, c->client);
    }
}

static void
test_bad_configuration (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (BsAddressSet) proxies
      = bs_address_set_new ("TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/33", &error);

  g_assert_null (proxies);
  g_assert_error (error, BS_ERROR, BS_ERROR_CONFIG);
  g_assert_nonnull (strstr (error->message, "TRUSTED_PROXIES"));
  g_assert_nonnull (strstr (error->message, "10.0.0.0/33"));
}

static void
test_contains (void)
{
  g_autoptr (BsAddressSet) set = bs_address_set_new ("X", "127.0.0.1, 10.0.0.0/8 fd00::/8", NULL);
  static const struct
  {
    const char *address;
    gboolean contained;
  } cases[] = {
    { "127.0.0.1", TRUE }, { "127.0.0.2", FALSE },      { "10.255.0.1", TRUE },
    { "11.0.0.1", FALSE }, { "::ffff:10.1.1.1", TRUE }, { "fd12::1", TRUE },
    { "fe80::1", FALSE },  { "not an address", FALSE },
  };

  for (gsize i = 0; i < G_N_ELEMENTS (cases); i++)
    if (bs_address_set_contains_string (set, cases[i].address) != cases[i].contained)
      bs_test_fail ("%s: expected %s", cases[i].address, cases[i].contained ? "in" : "out");
  g_assert_false (bs_address_set_contains_string (NULL, "127.0.0.1"));
}

static void
test_count (void)
{
  g_autoptr (BsAddressSet) none = bs_address_set_new ("X", "  ", NULL);
  g_autoptr (BsAddressSet) two = bs_address_set_new ("X", "127.0.0.1 ::1", NULL);

  g_assert_cmpuint (bs_address_set_get_n (none), ==, 0);
  g_assert_cmpuint (bs_address_set_get_n (two), ==, 2);
}

int
main (int argc, char **argv)
{
  bs_test_init (&argc, &argv);
  g_test_add_func ("/client-address/cases", test_client_address);
  g_test_add_func ("/client-address/bad-configuration", test_bad_configuration);
  g_test_add_func ("/client-address/contains", test_contains);
  g_test_add_func ("/client-address/count", test_count);
  return g_test_run ();
}
