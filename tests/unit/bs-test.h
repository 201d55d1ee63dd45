/* bs-test.h: small helpers shared by the unit tests. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Mark the current test failed with a message, and keep going so that one
 * table-driven test reports every failing case, not only the first or last.
 * (The tests run with g_test_set_nonfatal_assertions(): a known bug in one
 * case must not hide the results of the cases and tests after it.) */
#define bs_test_fail(...)                                                                          \
  G_STMT_START                                                                                     \
  {                                                                                                \
    g_autofree char *bs_test_msg_ = g_strdup_printf (__VA_ARGS__);                                 \
    g_test_message ("FAIL: %s", bs_test_msg_);                                                     \
    /* the "not ok" TAP line must stay one line */                                                 \
    g_test_fail_printf ("%s", g_strdelimit (bs_test_msg_, "\r\n", ' '));                           \
  }                                                                                                \
  G_STMT_END

/* Every test program starts the same way. */
#define bs_test_init(argc, argv)                                                                   \
  G_STMT_START                                                                                     \
  {                                                                                                \
    g_test_init ((argc), (argv), NULL);                                                            \
    g_test_set_nonfatal_assertions ();                                                             \
  }                                                                                                \
  G_STMT_END

G_END_DECLS
