/*
 * ha_step.c
 *		The steps of HA actions: a transaction with SPI around each, SQL run
 *		through SPI, and a failed step caught, logged and handed back as text.
 *
 * Only the HA worker calls these.  Each step runs in its own transaction,
 * because several of them cannot share one (a logical slot cannot be created
 * by a transaction that has written; ALTER SYSTEM is not transactional).
 * Errors are caught, logged with their errcode and returned as text: a
 * failed step never takes the worker down.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "ha_step.h"

/* ---- transactions and SPI ---- */

static void ha_txn_begin(const char *what);
static void ha_txn_commit(void);
static void ha_step_failed(MemoryContext cxt, const char *what, char *msg, size_t msglen);

/* the memory context of the innermost ha_step_run() caller, for ha_step_keep() */
static MemoryContext step_caller_cxt = NULL;

bool
ha_step_run(const char *what, HaStepBody body, void *arg, char *msg, size_t msglen)
{
	MemoryContext cxt = CurrentMemoryContext;
	MemoryContext outer = step_caller_cxt;
	volatile bool ok = true;

	step_caller_cxt = cxt;
	PG_TRY();
	{
		ha_txn_begin(what);
		body(arg);
		ha_txn_commit();
	}
	PG_CATCH();
	{
		ha_step_failed(cxt, what, msg, msglen);
		ok = false;
	}
	PG_END_TRY();
	step_caller_cxt = outer;
	MemoryContextSwitchTo(cxt);
	return ok;
}

char *
ha_step_keep(const char *s)
{
	Assert(step_caller_cxt != NULL);
	return s ? MemoryContextStrdup(step_caller_cxt, s) : NULL;
}

/* Starts a transaction with SPI and a snapshot; `what` shows in pg_stat_activity. */
static void
ha_txn_begin(const char *what)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (SPI_connect() != SPI_OK_CONNECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: SPI_connect failed")));
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, what);
}

/* Ends SPI and commits the transaction ha_txn_begin() started. */
static void
ha_txn_commit(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Run a statement; for SELECTs return the first value as text (or NULL). */
static char *
spi_value(const char *sql, int nargs, Oid *types, Datum *values)
{
	int			rc;

	rc = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);
	if (rc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: SPI failed (%d) on: %s", rc, sql)));
	/* the snapshot must see what the previous statement did */
	CommandCounterIncrement();
	if (SPI_tuptable != NULL && SPI_processed > 0)
		return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	return NULL;
}

char *
ha_spi_sql(const char *fmt,...)
{
	StringInfoData buf;
	va_list		args;
	int			needed;

	initStringInfo(&buf);
	for (;;)
	{
		va_start(args, fmt);
		needed = appendStringInfoVA(&buf, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&buf, needed);
	}
	return spi_value(buf.data, 0, NULL, NULL);
}

XLogRecPtr
ha_parse_lsn(const char *s)
{
	uint32		hi,
				lo;

	if (s == NULL || sscanf(s, "%X/%X", &hi, &lo) != 2)
		return InvalidXLogRecPtr;
	return ((uint64) hi << 32) | lo;
}

bool
ha_parse_bool(const char *s)
{
	return s != NULL && (s[0] == 't' || s[0] == 'o');
}

/*
 * Catch an error of one step: log it with its errcode, abort the
 * transaction, and hand the message back.
 */
static void
ha_step_failed(MemoryContext cxt, const char *what, char *msg, size_t msglen)
{
	ErrorData  *ed;

	MemoryContextSwitchTo(cxt);
	ed = CopyErrorData();
	FlushErrorState();
	AbortCurrentTransaction();
	pgstat_report_activity(STATE_IDLE, NULL);
	ereport(LOG,
			(errcode(ed->sqlerrcode),
			 errmsg("crawler_ha: %s failed: %s", what, ed->message)));
	if (msg)
		snprintf(msg, msglen, "%s failed: %s", what, ed->message);
	FreeErrorData(ed);
	MemoryContextSwitchTo(cxt);
}

double
ha_ms_since(TimestampTz t)
{
	return (double) (GetCurrentTimestamp() - t) / 1000.0;
}

void
ha_sleep_ms(long ms)
{
	int			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   ms, PG_WAIT_EXTENSION);

	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}
