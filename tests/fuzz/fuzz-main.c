/* fuzz-main.c: runs a libFuzzer target over corpus files, so the corpus is a
 * regression test in every build, with or without clang. */
#include <glib.h>
#include <stdint.h>
#include <stdio.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
main (int argc, char **argv)
{
  int n = 0;

  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GDir) dir = g_dir_open (argv[i], 0, NULL);
      const char *name;

      if (dir == NULL)
        {
          g_autofree char *data = NULL;
          gsize len = 0;
          if (!g_file_get_contents (argv[i], &data, &len, NULL))
            return 1;
          LLVMFuzzerTestOneInput ((const uint8_t *) data, len);
          n++;
          continue;
        }
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *path = g_build_filename (argv[i], name, NULL);
          g_autofree char *data = NULL;
          gsize len = 0;
          if (!g_file_get_contents (path, &data, &len, NULL))
            return 1;
          LLVMFuzzerTestOneInput ((const uint8_t *) data, len);
          n++;
        }
    }
  printf ("1..1\nok 1 - %d corpus inputs\n", n);
  return 0;
}
