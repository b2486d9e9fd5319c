/*
 * ha_events.c
 *		HA events (ha_events, NOTIFY) and ending client sessions.
 *
 * Only the HA worker calls these.  Each step runs in its own transaction,
 * because several of them cannot share one (a logical slot cannot be created
 * by a transaction that has written; ALTER SYSTEM is not transactional).
 * Errors are caught, logged with their errcode and returned as text: a
 * failed step never takes the worker down.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "ha_shared.h"
#include "ha_events.h"
#include "ha_step.h"

/* ---- events and client sessions ---- */

void
ha_record_event_in_txn(const char *kind, const char *reason, double duration_ms,
					const char *detail_json)
{
	Oid			types[4] = {TEXTOID, TEXTOID, FLOAT8OID, TEXTOID};
	Datum		vals[4];
	char		nulls[4] = {' ', ' ', duration_ms < 0 ? 'n' : ' ', ' '};
	int			rc;

	vals[0] = CStringGetTextDatum(kind);
	vals[1] = CStringGetTextDatum(reason);
	vals[2] = Float8GetDatum(duration_ms);
	vals[3] = CStringGetTextDatum(detail_json ? detail_json : "{}");
	rc = SPI_execute_with_args(psprintf("SELECT %s.ha_record_event($1, $2, $3, $4::jsonb)",
										ha_local.schema),
							   4, types, vals, nulls, false, 0);
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: could not record event %s", kind)));
	CommandCounterIncrement();
}

/* what ha_record_event() hands its step */
typedef struct EventArgs
{
	const char *kind;
	const char *reason;
	double		duration_ms;
	const char *detail_json;
} EventArgs;

static void
record_event_step(void *arg)
{
	EventArgs  *a = (EventArgs *) arg;

	ha_record_event_in_txn(a->kind, a->reason, a->duration_ms, a->detail_json);
}

/*
 * Logs the event, then records it in ha_events in a transaction of its own;
 * a failure to record is logged, never raised.  duration_ms < 0 means none.
 */
void
ha_record_event(const char *kind, const char *reason, double duration_ms,
				const char *detail_json)
{
	EventArgs	a = {kind, reason, duration_ms, detail_json};

	ereport(LOG,
			(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
			 errmsg("crawler_ha event %s: %s", kind, reason)));
	if (!ha_local.ext_present)
		return;
	(void) ha_step_run("recording an event", record_event_step, &a, NULL, 0);
}

/* what ha_terminate_clients() hands its step, and what it gets back */
typedef struct TerminateArgs
{
	int			except_pid;
	int			ended;
} TerminateArgs;

static void
terminate_clients_step(void *arg)
{
	TerminateArgs *a = (TerminateArgs *) arg;
	char	   *n = ha_spi_sql("SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid)) "
							"FROM pg_catalog.pg_stat_activity "
							"WHERE backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid() "
							"AND pid <> %d AND datname = pg_catalog.current_database() "
							"AND application_name NOT LIKE 'crawler_ha%%'",
							a->except_pid);

	a->ended = n ? atoi(n) : 0;
}

/*
 * Ends every client session of this server but the worker's own and
 * `except_pid`, in a transaction of its own; returns how many (0 when the
 * step failed, which is logged).
 */
int
ha_terminate_clients(int except_pid)
{
	TerminateArgs a = {except_pid, 0};

	(void) ha_step_run("ending client sessions", terminate_clients_step, &a, NULL, 0);
	return a.ended;
}
