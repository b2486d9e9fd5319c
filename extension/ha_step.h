/*
 * ha_step.h
 *		The steps of the HA worker's actions (ha_step.c): each in a transaction
 *		of its own with SPI, a failed one caught and handed back as text.
 */
#ifndef HA_STEP_H
#define HA_STEP_H

#include "access/xlogdefs.h"
#include "datatype/timestamp.h"
#include "utils/palloc.h"

/*
 * The body of one step: runs inside the transaction ha_step_run() opened,
 * with SPI connected and a snapshot pushed; it reports failure by raising.
 * arg is whatever the caller passed to ha_step_run().
 */
typedef void (*HaStepBody) (void *arg);

/*
 * Runs body in a transaction of its own and commits it; true when it
 * committed.  An error raised inside is caught: logged with its errcode, the
 * transaction aborted, and when msg is not NULL "<what> failed: <message>"
 * written into it; false is returned and the worker goes on.  `what` shows in
 * pg_stat_activity meanwhile.  Must not be called inside another step's
 * transaction.  This is the only place that catches a step's error.
 */
extern bool ha_step_run(const char *what, HaStepBody body, void *arg, char *msg, size_t msglen);
/*
 * Inside a step's body: a copy of s (NULL stays NULL) in the memory context
 * of the ha_step_run() caller, so that it outlives the step's SPI memory.
 */
extern char *ha_step_keep(const char *s);

/*
 * Runs one statement built like printf in the current step's transaction;
 * for a query, the first value of its first row as text (NULL when none).
 * Raises what the statement raises.
 */
extern char *ha_spi_sql(const char *fmt,...) pg_attribute_printf(1, 2);
/* An LSN from its text form; InvalidXLogRecPtr for NULL or garbage. */
extern XLogRecPtr ha_parse_lsn(const char *s);
/* A boolean from SPI's text ("t", "on"): anything else, NULL too, is false. */
extern bool ha_parse_bool(const char *s);
/* Milliseconds since t. */
extern double ha_ms_since(TimestampTz t);
/* Waits ms on the latch (woken early by it), then checks for interrupts. */
extern void ha_sleep_ms(long ms);

#endif							/* HA_STEP_H */
