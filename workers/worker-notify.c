/* worker-notify.c: "send" a notification: a journal entry with
 * NOTIFICATION_TYPE, RECIPIENT and ORDER_ID, found with
 * journalctl NOTIFICATION_TYPE=order.completed. */
#include "worker-notify.h"

#include "worker-streams.h"

#include "bs-log.h"

#define FIELD_MAX_CHARS 320

/* Event fields go into log fields: bounded, valid UTF-8, no control chars. */
static gboolean
field_ok (const char *value)
{
  if (value == NULL || *value == '\0' || !g_utf8_validate (value, -1, NULL)
      || g_utf8_strlen (value, -1) > FIELD_MAX_CHARS)
    return FALSE;
  for (const char *p = value; *p != '\0'; p++)
    if (g_ascii_iscntrl (*p))
      return FALSE;
  return TRUE;
}

void
worker_notify_handle (WorkerJob *job, gpointer user_data)
{
  const char *type = worker_job_get_field (job, "type");
  const char *order_id = worker_job_get_field (job, "order_id");
  const char *recipient = worker_job_get_field (job, "recipient");
  g_autofree char *message = NULL;

  if (recipient == NULL)
    recipient = user_data;
  if (!field_ok (type) || !field_ok (order_id) || !field_ok (recipient))
    {
      worker_job_fail (job, WORKER_FAILURE_OTHER,
                       "malformed notification: type, order_id or recipient missing or invalid");
      return;
    }
  message = g_strdup_printf ("notification %s for order %s sent to %s", type, order_id, recipient);
  {
    GLogField fields[] = {
      { "PRIORITY", "6", -1 },
      { "GLIB_DOMAIN", G_LOG_DOMAIN, -1 },
      { "QUEUE", WORKER_QUEUE_SEND_NOTIFICATION, -1 },
      { "JOB_ID", worker_job_get_id (job), -1 },
      BS_TRACE_LOG_FIELDS (worker_job_get_trace (job)),
      { "NOTIFICATION_TYPE", type, -1 },
      { "RECIPIENT", recipient, -1 },
      { "ORDER_ID", order_id, -1 },
      { "MESSAGE", message, -1 },
    };
    bs_log_fields (G_LOG_LEVEL_INFO, fields, G_N_ELEMENTS (fields));
  }
  worker_job_complete (job);
}
