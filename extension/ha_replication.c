/*
 * ha_replication.c
 *		On the primary, the watch of replication (lag, the synchronous standby);
 *		maintenance mode; the subscription switch; blocked merges released.
 *
 * Only the HA worker calls these.  Each step runs in its own transaction,
 * because several of them cannot share one (a logical slot cannot be created
 * by a transaction that has written; ALTER SYSTEM is not transactional).
 * Errors are caught, logged with their errcode and returned as text: a
 * failed step never takes the worker down.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "ha_shared.h"
#include "ha_events.h"
#include "ha_guc.h"
#include "ha_replication.h"
#include "ha_timing.h"
#include "ha_state.h"
#include "ha_step.h"

/* ---- replication watch, on the primary ---- */

/* when the standby was last seen streaming, for the lag of one that is away */
static TimestampTz last_streaming = 0;

static void
read_replication_lag_step(void *unused)
{
	int			rc;

	rc = SPI_execute("SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), r.flush_lsn)::bigint, "
					 "coalesce(extract(epoch FROM greatest(r.flush_lag, r.write_lag)), 0)::float8, "
					 "r.sync_state "
					 "FROM pg_catalog.pg_stat_replication r "
					 "WHERE r.application_name = '" HA_SUBSCRIPTION "' AND r.state = 'streaming' "
					 "ORDER BY r.flush_lsn DESC NULLS LAST LIMIT 1", true, 1);
	if (rc == SPI_OK_SELECT && SPI_processed == 1)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		char	   *b = SPI_getvalue(t, d, 1);
		char	   *s = SPI_getvalue(t, d, 2);
		char	   *st = SPI_getvalue(t, d, 3);

		last_streaming = GetCurrentTimestamp();
		SpinLockAcquire(&ha_shared->mutex);
		ha_shared->standby_streaming = true;
		ha_shared->lag_bytes = b ? strtoi64(b, NULL, 10) : 0;
		ha_shared->lag_seconds = s ? strtod(s, NULL) : 0;
		strlcpy(ha_shared->sync_state, st ? st : "none", HA_ROLE_LEN);
		SpinLockRelease(&ha_shared->mutex);
	}
	else
	{
		char	   *b = ha_spi_sql("SELECT max(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), "
								"confirmed_flush_lsn))::bigint FROM pg_catalog.pg_replication_slots "
								"WHERE slot_name LIKE '" HA_SLOT_PREFIX "%%'");

		int64		bytes = b ? strtoi64(b, NULL, 10) : 0;

		/* a standby that is away lags by as long as it has been away */
		if (last_streaming == 0)
			last_streaming = GetCurrentTimestamp();
		SpinLockAcquire(&ha_shared->mutex);
		ha_shared->standby_streaming = false;
		ha_shared->lag_bytes = bytes;
		ha_shared->lag_seconds = bytes > 0 ? ha_ms_since(last_streaming) / 1000.0 : 0;
		strlcpy(ha_shared->sync_state, "disconnected", HA_ROLE_LEN);
		SpinLockRelease(&ha_shared->mutex);
	}
}

/*
 * On the primary: reads replication lag and the synchronous standby's state
 * into shared memory, in a transaction of its own; a failure is logged and
 * leaves shared memory as it was.
 */
void
ha_monitor_replication(void)
{
	(void) ha_step_run("reading replication lag", read_replication_lag_step, NULL, NULL, 0);
}

/* ---- maintenance mode and the subscription switch ---- */

static void
set_paused_step(void *arg)
{
	bool		paused = *(bool *) arg;

	/*
	 * Writes do not hold the row (the fence is a table lock this UPDATE
	 * does not conflict with), but an ha_* function or a backup freeze
	 * left open in a client's transaction can: it must not hold up the
	 * worker, which does everything else too (a failover among them): give
	 * up after the grace and say why.
	 */
	ha_spi_sql("SET LOCAL lock_timeout = %d", HA_DEMOTE_GRACE_MS);
	if (ha_spi_sql("UPDATE %s.ha_state SET paused = %s WHERE paused <> %s RETURNING 1",
				ha_local.schema, paused ? "true" : "false", paused ? "true" : "false") != NULL)
		ha_record_event_in_txn(paused ? "pause" : "resume",
							paused ? "automatic failover paused" : "automatic failover resumed", -1, NULL);
}

/*
 * Maintenance mode on or off (ha_state.paused), giving up after
 * HA_DEMOTE_GRACE_MS behind a transaction holding ha_state.  msg (not
 * NULL) says what happened, or why not on false.
 */
bool
ha_set_paused(bool paused, char *msg, size_t msglen)
{
	if (!ha_step_run(paused ? "pausing" : "resuming", set_paused_step, &paused, msg, msglen))
	{
		size_t		len = strlen(msg);

		snprintf(msg + len, msglen - len,
				 "; a client transaction holds this node's ha_state (a backup's freeze, or an ha_* call "
				 "in a transaction left open): end it, or wait for it, and try again");
		return false;
	}
	ha_refresh_local_state();
	snprintf(msg, msglen, "%s", paused ? "paused" : "resumed");
	return true;
}

static void
enable_subscription_step(void *unused)
{
	ha_spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " ENABLE");
}

/*
 * ALTER SUBSCRIPTION ... ENABLE in a transaction of its own (after
 * disable_on_error stopped it); a failure is logged, not raised.
 */
void
ha_enable_subscription(void)
{
	(void) ha_step_run("enabling the subscription", enable_subscription_step, NULL, NULL, 0);
}

static void
set_conninfo_step(void *arg)
{
	const char *conninfo = (const char *) arg;

	ha_spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " CONNECTION %s", quote_literal_cstr(conninfo));
}

void
ha_drop_subscription_in_txn(void)
{
	if (ha_spi_sql("SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = '" HA_SUBSCRIPTION "'") == NULL)
		return;
	ha_spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " DISABLE");
	ha_spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " SET (slot_name = NONE)");
	ha_spi_sql("DROP SUBSCRIPTION " HA_SUBSCRIPTION);
}

void
ha_create_subscription_in_txn(const char *slot, bool copy_data)
{
	ha_spi_sql("CREATE SUBSCRIPTION " HA_SUBSCRIPTION " CONNECTION %s PUBLICATION " HA_PUBLICATION
			   " WITH (create_slot = false, slot_name = %s, copy_data = %s, "
			   "disable_on_error = true, synchronous_commit = local)",
			   quote_literal_cstr(ha_peer_conninfo), quote_literal_cstr(slot), copy_data ? "true" : "false");
}

/*
 * Point the subscription at a new connection string (the peer moved, or
 * its TLS or user settings changed).  The apply worker reconnects with it.
 * A failure is logged, not raised.
 */
void
ha_subscription_set_conninfo(const char *conninfo)
{
	(void) ha_step_run("changing the subscription's connection", set_conninfo_step,
					   unconstify(char *, conninfo), NULL, 0);
}

static void
release_blocked_merges_step(void *unused)
{
	char	   *v = ha_spi_sql("SELECT %s.ha_release_blocked_merges()", ha_local.schema);
	int			n = v ? atoi(v) : 0;

	if (n > 0)
		ha_record_event_in_txn("sync_wait_cancelled",
							psprintf("%d commits waiting for the synchronous standby held up a rejoining "
									 "node's merge (that node is the standby they wait for): their waits "
									 "were cancelled; the commits stay here and their clients got a warning", n),
							-1, NULL);
}

/*
 * Cancel the commits waiting for an absent synchronous standby that hold
 * up a merge (67_merge_receive.sql); an event when any were cancelled.  A
 * failure is logged, not raised.
 */
void
ha_release_blocked_merges(void)
{
	(void) ha_step_run("freeing a merge's way", release_blocked_merges_step, NULL, NULL, 0);
}
