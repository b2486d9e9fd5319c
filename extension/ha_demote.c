/*
 * ha_demote.c
 *		Demotion: a newer term exists elsewhere, so this primary steps down.
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
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "ha_shared.h"
#include "ha_step.h"
#include "ha_demote.h"
#include "ha_events.h"
#include "ha_settings.h"
#include "ha_state.h"

/* ---- demotion: a newer term exists elsewhere ---- */

/* End the client sessions whose writes hold ha_state against the fence; returns how many. */
static int
end_state_lock_holders_in_txn(void)
{
	char	   *n = ha_spi_sql("SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(a.pid)) "
							"FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
							"WHERE l.locktype = 'relation' AND l.granted "
							"AND l.mode IN ('RowShareLock', 'RowExclusiveLock') "
							"AND l.relation = '%s.ha_state'::pg_catalog.regclass "
							"AND l.database = (SELECT oid FROM pg_catalog.pg_database "
							"                  WHERE datname = pg_catalog.current_database()) "
							"AND a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid()",
							ha_local.schema);

	return n ? atoi(n) : 0;
}

static void
lock_state_in_txn(void)
{
	ha_spi_sql("LOCK TABLE %s.ha_state IN EXCLUSIVE MODE", ha_local.schema);
	ha_spi_sql("SELECT 1 FROM %s.ha_state FOR UPDATE", ha_local.schema);
}

/*
 * Lock ha_state for the UPDATE that demotes or fences this node, inside the
 * caller's transaction: the table in EXCLUSIVE mode, which waits for every
 * write that passed the fence (ha_assert_writable() holds it in ROW
 * EXCLUSIVE mode), then the row.  The wait is queued like any lock's
 * (writes in flight finish, later ones wait behind it) but lasts at most
 * HA_DEMOTE_GRACE_MS; then the client sessions still holding it are ended
 * and the lock taken.  If even that fails, the error goes to the
 * caller, whose next check tries again.  Returns how many sessions ended.
 */
int
ha_lock_state_row_in_txn(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	int			ended = 0;

	ha_spi_sql("SET LOCAL lock_timeout = %d", HA_DEMOTE_GRACE_MS);
	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		lock_state_in_txn();
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			ReThrowError(edata);
		ended = end_state_lock_holders_in_txn();
		ereport(LOG,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("crawler_ha: ended %d client sessions that still held ha_state after %d ms",
						ended, HA_DEMOTE_GRACE_MS),
				 errdetail("A transaction left open, or a commit waiting for a synchronous standby that is gone.")));
		lock_state_in_txn();
	}
	PG_END_TRY();
	return ended;
}

/* what ha_demote() hands its step, and what it gets back */
typedef struct DemoteArgs
{
	int64		new_term;
	const char *primary_name;
	int32		primary_id;
	bool		needs_rejoin;
	int			ended;			/* client sessions ended to take ha_state */
} DemoteArgs;

static void
demote_step(void *arg)
{
	DemoteArgs *a = (DemoteArgs *) arg;
	const char *cur;

	/* waits for writes in flight (they hold ha_state in ROW EXCLUSIVE mode), boundedly */
	a->ended = ha_lock_state_row_in_txn();
	ha_spi_sql("UPDATE %s.ha_state SET role = 'standby', term = GREATEST(term, " INT64_FORMAT "), "
			"primary_name = %s, primary_node_id = %d, fenced = false, needs_rejoin = %s",
			ha_local.schema, a->new_term, quote_literal_cstr(a->primary_name), a->primary_id,
			a->needs_rejoin ? "true" : "false");
	ha_spi_sql("INSERT INTO %s.ha_terms (term, primary_name, primary_node_id, reason) "
			"VALUES (" INT64_FORMAT ", %s, %d, 'learned from peer') ON CONFLICT (term) DO NOTHING",
			ha_local.schema, a->new_term, quote_literal_cstr(a->primary_name), a->primary_id);
	ha_set_read_only_in_txn(true);
	cur = GetConfigOptionResetString("synchronous_standby_names");
	if (cur != NULL && strcmp(cur, HA_SUBSCRIPTION) == 0)
		ha_set_system_setting("synchronous_standby_names", NULL);
}

/*
 * Steps this primary down: a newer term `new_term` exists, whose primary is
 * `primary_name` (node `primary_id`).  Fences (read-only), records the
 * demotion with `reason`, ends client sessions; `needs_rejoin` leaves it to
 * rejoin later.  False when the step failed (logged); the next check
 * retries.  The fence is up in shared memory before anything else.
 */
bool
ha_demote(int64 new_term, const char *primary_name, int32 primary_id,
		  bool needs_rejoin, const char *reason)
{
	TimestampTz t0 = GetCurrentTimestamp();
	DemoteArgs	a = {new_term, primary_name, primary_id, needs_rejoin, 0};
	int			ended;

	/* the fence is up in every backend before anything else happens */
	ha_raise_max_term(new_term);

	if (!ha_step_run("demoting this node", demote_step, &a, NULL, 0))
		return false;
	ha_reload_config();
	ended = a.ended + ha_terminate_clients(0);
	ha_refresh_local_state();
	ha_record_event("demotion", psprintf("%s; %d client sessions ended%s", reason, ended,
										 needs_rejoin ? "; needs to rejoin" : ""),
					ha_ms_since(t0), NULL);
	return true;
}
