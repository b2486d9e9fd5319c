/*
 * ha_actions.c
 *		The HA state changes: promote, demote, rejoin, switchover, the
 *		read-only and synchronous-standby settings, events.
 *
 * Only the HA worker calls these.  Each step runs in its own transaction,
 * because several of them cannot share one (a logical slot cannot be created
 * by a transaction that has written; ALTER SYSTEM is not transactional).
 * Errors are caught, logged with their errcode and returned as text: a
 * failed step never takes the worker down.
 */
#include "postgres.h"

#include <signal.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "postmaster/postmaster.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "crawler_ha.h"
#include "ha_shared.h"

HaLocal		ha_local;

/* ---- transactions and SPI ---- */

static void
txn_begin(const char *what)
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

static void
txn_commit(void)
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

static char *
spi_sql(const char *fmt,...) pg_attribute_printf(1, 2);

static char *
spi_sql(const char *fmt,...)
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

static XLogRecPtr
parse_lsn(const char *s)
{
	uint32		hi,
				lo;

	if (s == NULL || sscanf(s, "%X/%X", &hi, &lo) != 2)
		return InvalidXLogRecPtr;
	return ((uint64) hi << 32) | lo;
}

static bool
ha_parse_bool(const char *s)
{
	return s != NULL && (s[0] == 't' || s[0] == 'o');
}

/*
 * Catch an error of one step: log it with its errcode, abort the
 * transaction, and hand the message back.
 */
static void
step_failed(MemoryContext cxt, const char *what, char *msg, size_t msglen)
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

char *
ha_slot_name(int32 node_id)
{
	return psprintf(HA_SLOT_PREFIX "%d", node_id);
}

const char *
ha_ext_schema(void)
{
	return ha_local.schema;
}

static void
publish_local_state(void)
{
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->state_loaded = ha_local.ext_present;
	ha_shared->role = ha_local.role;
	ha_shared->term = ha_local.term;
	ha_shared->fenced = ha_local.fenced;
	ha_shared->needs_rejoin = ha_local.needs_rejoin;
	ha_shared->paused = ha_local.paused;
	strlcpy(ha_shared->primary_name, ha_local.primary_name, HA_NAME_LEN);
	if (ha_local.term > ha_shared->max_term_seen)
		ha_shared->max_term_seen = ha_local.term;
	SpinLockRelease(&ha_shared->mutex);
}

static void
raise_max_term(int64 term)
{
	SpinLockAcquire(&ha_shared->mutex);
	if (term > ha_shared->max_term_seen)
		ha_shared->max_term_seen = term;
	SpinLockRelease(&ha_shared->mutex);
}

/* ---- reading this node's state ---- */

static void
load_state_in_txn(void)
{
	char	   *nsp;
	int			rc;

	nsp = spi_sql("SELECT n.nspname FROM pg_catalog.pg_extension e "
				  "JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace "
				  "WHERE e.extname = 'crawler_ha'");
	if (nsp == NULL || !(ha_local.ext_present = true))
	{
		ha_local.ext_present = false;
		return;
	}
	strlcpy(ha_local.schema, quote_identifier(nsp), sizeof(ha_local.schema));

	rc = SPI_execute(psprintf("SELECT n.node_id, n.node_name, s.role, s.term, "
							  "coalesce(s.primary_name, ''), coalesce(s.primary_node_id, 0), "
							  "coalesce(s.peer_node_id, 0), s.fenced, s.needs_rejoin, s.paused, "
							  "(SELECT subenabled FROM pg_catalog.pg_subscription "
							  "  WHERE subname = '" HA_SUBSCRIPTION "' AND subdbid = "
							  "  (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())) "
							  "FROM %s.ha_node n, %s.ha_state s",
							  ha_local.schema, ha_local.schema), true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
	{
		ha_local.ext_present = false;
		return;
	}
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		char	   *v;

		ha_local.node_id = atoi(SPI_getvalue(t, d, 1));
		strlcpy(ha_local.node_name, SPI_getvalue(t, d, 2), HA_NAME_LEN);
		ha_local.role = ha_role_from_name(SPI_getvalue(t, d, 3));
		ha_local.term = strtoi64(SPI_getvalue(t, d, 4), NULL, 10);
		strlcpy(ha_local.primary_name, SPI_getvalue(t, d, 5), HA_NAME_LEN);
		ha_local.primary_node_id = atoi(SPI_getvalue(t, d, 6));
		ha_local.peer_node_id = atoi(SPI_getvalue(t, d, 7));
		ha_local.fenced = ha_parse_bool(SPI_getvalue(t, d, 8));
		ha_local.needs_rejoin = ha_parse_bool(SPI_getvalue(t, d, 9));
		ha_local.paused = ha_parse_bool(SPI_getvalue(t, d, 10));
		v = SPI_getvalue(t, d, 11);
		ha_local.sub_exists = (v != NULL);
		ha_local.sub_enabled = ha_parse_bool(v);
	}
}

bool
ha_load_local_state(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = true;

	PG_TRY();
	{
		txn_begin("crawler_ha: reading state");
		load_state_in_txn();
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, "reading this node's HA state", NULL, 0);
		ha_local.ext_present = false;
		ok = false;
	}
	PG_END_TRY();
	publish_local_state();
	return ok && ha_local.ext_present;
}

/* ---- settings: ALTER SYSTEM without SQL ---- */

/*
 * ALTER SYSTEM SET name = value, or RESET when value is NULL, in
 * postgresql.auto.conf; the running server sees it at its next reload
 * (ha_reload_config()).  Not transactional: a caller does it last, once
 * nothing else can fail.  Needs a transaction (privilege check, lookups).
 */
void
ha_set_system_setting(const char *name, const char *value)
{
	AlterSystemStmt *stmt = makeNode(AlterSystemStmt);
	VariableSetStmt *set = makeNode(VariableSetStmt);

	set->name = pstrdup(name);
	if (value == NULL)
	{
		set->kind = VAR_RESET;
		set->args = NIL;
	}
	else
	{
		A_Const    *c = makeNode(A_Const);

		c->val.sval.type = T_String;
		c->val.sval.sval = pstrdup(value);
		c->location = -1;
		set->kind = VAR_SET_VALUE;
		set->args = list_make1(c);
	}
	stmt->setstmt = set;
	AlterSystemSetConfigFile(stmt);
}

void
ha_reload_config(void)
{
	if (kill(PostmasterPid, SIGHUP) != 0)
		ereport(WARNING,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("crawler_ha: could not signal the postmaster to reload: %m")));
}

/*
 * Both need a transaction around them (privilege check, catalog lookups).
 * The worker's own session overrides default_transaction_read_only, so its
 * view of the setting says nothing about the file: always write it.
 */
static bool
set_read_only_in_txn(bool on)
{
	ha_set_system_setting("default_transaction_read_only", on ? "on" : NULL);
	/* the fence holds from here, not from whenever the reload is seen */
	if (on)
	{
		SpinLockAcquire(&ha_shared->mutex);
		ha_shared->server_read_only = true;
		SpinLockRelease(&ha_shared->mutex);
	}
	return true;
}

/*
 * The server's default_transaction_read_only, as its configuration files
 * set it, into shared memory for the write fence.  Every session's own
 * value can be set by its client (PGOPTIONS, SET) and the worker's own is
 * forced off, so neither says what the server was told: the files do.
 * Called by the worker at its start and after every reload.
 */
void
ha_refresh_server_read_only(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		char	   *v;
		bool		on = false;

		txn_begin("crawler_ha: server read-only setting");
		v = spi_sql("SELECT setting FROM pg_catalog.pg_file_settings "
					"WHERE name = 'default_transaction_read_only' AND error IS NULL "
					"ORDER BY seqno DESC LIMIT 1");
		if (v != NULL)
			(void) parse_bool(v, &on);
		txn_commit();
		SpinLockAcquire(&ha_shared->mutex);
		ha_shared->server_read_only = on;
		SpinLockRelease(&ha_shared->mutex);
	}
	PG_CATCH();
	{
		step_failed(cxt, "reading the server's read-only setting", NULL, 0);
	}
	PG_END_TRY();
}

void
ha_set_read_only(bool on)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		bool		changed;

		txn_begin("crawler_ha: read-only");
		changed = set_read_only_in_txn(on);
		txn_commit();
		ha_refresh_server_read_only();
		if (changed)
		{
			ha_reload_config();
			ereport(LOG,
					(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
					 errmsg("crawler_ha: default_transaction_read_only turned %s", on ? "on" : "off")));
		}
	}
	PG_CATCH();
	{
		step_failed(cxt, "changing default_transaction_read_only", NULL, 0);
	}
	PG_END_TRY();
}

/*
 * synchronous_standby_names is ours only while it is empty or names our
 * subscription; an operator's own value is never touched.
 */
void
ha_set_sync_standby(bool on)
{
	MemoryContext cxt = CurrentMemoryContext;
	const char *cur = GetConfigOptionResetString("synchronous_standby_names");
	bool		is_ours = (cur != NULL && strcmp(cur, HA_SUBSCRIPTION) == 0);
	bool		is_empty = (cur == NULL || cur[0] == '\0');

	if ((on && is_ours) || (!on && is_empty))
		return;
	if (!is_ours && !is_empty)
		return;

	PG_TRY();
	{
		txn_begin("crawler_ha: synchronous_standby_names");
		ha_set_system_setting("synchronous_standby_names", on ? HA_SUBSCRIPTION : NULL);
		txn_commit();
		ha_reload_config();
		ereport(LOG,
				(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
				 errmsg("crawler_ha: synchronous replication %s", on ? "on" : "off")));
	}
	PG_CATCH();
	{
		step_failed(cxt, "changing synchronous_standby_names", NULL, 0);
	}
	PG_END_TRY();
}

/* ---- events and client sessions ---- */

static void
record_event_in_txn(const char *kind, const char *reason, double duration_ms,
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

/* duration_ms < 0 means none. */
void
ha_record_event(const char *kind, const char *reason, double duration_ms,
				const char *detail_json)
{
	MemoryContext cxt = CurrentMemoryContext;

	ereport(LOG,
			(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
			 errmsg("crawler_ha event %s: %s", kind, reason)));
	if (!ha_local.ext_present)
		return;
	PG_TRY();
	{
		txn_begin("crawler_ha: event");
		record_event_in_txn(kind, reason, duration_ms, detail_json);
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, "recording an event", NULL, 0);
	}
	PG_END_TRY();
}

static int
terminate_clients_in_txn(int except_pid)
{
	char	   *n = spi_sql("SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid)) "
							"FROM pg_catalog.pg_stat_activity "
							"WHERE backend_type = 'client backend' AND pid <> pg_catalog.pg_backend_pid() "
							"AND pid <> %d AND datname = pg_catalog.current_database() "
							"AND application_name NOT LIKE 'crawler_ha%%'",
							except_pid);

	return n ? atoi(n) : 0;
}

int
ha_terminate_clients(int except_pid)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			n = 0;

	PG_TRY();
	{
		txn_begin("crawler_ha: ending client sessions");
		n = terminate_clients_in_txn(except_pid);
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, "ending client sessions", NULL, 0);
	}
	PG_END_TRY();
	return n;
}

static void sleep_ms(long ms);

/* ---- promotion ---- */

static double
ms_since(TimestampTz t)
{
	return (double) (GetCurrentTimestamp() - t) / 1000.0;
}

/*
 * Whether this standby's subscription has finished its initial copy.  One
 * that has not (a rejoin's copy afresh, or a new standby's) lacks the rows
 * the primary had before it subscribed, and no tail would bring them back:
 * promoted, the old primary's rejoin would empty itself and copy this
 * node.  So only a forced failover promotes it.  On false, msg says why.
 */
bool
ha_initial_copy_done(char *msg, size_t msglen)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *volatile pending = NULL;

	PG_TRY();
	{
		txn_begin("crawler_ha: initial copy");
		pending = spi_sql("SELECT count(*) FROM pg_catalog.pg_subscription_rel sr "
						  "JOIN pg_catalog.pg_subscription s ON s.oid = sr.srsubid "
						  "WHERE s.subname = '" HA_SUBSCRIPTION "' AND sr.srsubstate <> 'r'");
		if (pending)
			pending = MemoryContextStrdup(cxt, pending);
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, "checking the initial copy", msg, msglen);
		return false;
	}
	PG_END_TRY();
	if (pending != NULL && strcmp(pending, "0") != 0)
	{
		snprintf(msg, msglen, "node %s cannot be promoted: the initial copy of %s of its tables is not "
				 "finished, so it lacks rows the primary had", ha_local.node_name, pending);
		return false;
	}
	return true;
}

/*
 * Make this standby the primary of a new term.  Order matters: the old
 * subscription is detached (never re-enabled: it would pull the old
 * primary's split-brain writes), the reverse slot exists before the first
 * write, and only then is the new term committed.
 */
bool
ha_promote(const char *reason, bool switchover, bool force, char *msg, size_t msglen)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz t0 = GetCurrentTimestamp();
	char	   *split = NULL;
	char	   *slot = NULL;
	int64		new_term = 0;
	int32		old_primary_id;
	const char *volatile step = "detaching the subscription";

	if (ha_local.role == HA_ROLE_PRIMARY && !ha_local.fenced)
	{
		snprintf(msg, msglen, "node %s is already the primary of term " INT64_FORMAT,
				 ha_local.node_name, ha_local.term);
		return true;
	}
	if (ha_local.role != HA_ROLE_STANDBY || ha_local.needs_rejoin)
	{
		snprintf(msg, msglen, "node %s is %s%s and cannot be promoted", ha_local.node_name,
				 ha_role_name(ha_local.role), ha_local.needs_rejoin ? " waiting to rejoin" : "");
		return false;
	}
	old_primary_id = ha_local.primary_node_id ? ha_local.primary_node_id : ha_local.peer_node_id;

	if (!force && !ha_initial_copy_done(msg, msglen))
		return false;

	PG_TRY();
	{
		/* 1. detach and drop the subscription, keeping its split point */
		txn_begin("crawler_ha: promote: detach subscription");
		if (ha_local.sub_exists)
		{
			split = spi_sql("SELECT os.remote_lsn::text FROM pg_catalog.pg_replication_origin_status os "
							"JOIN pg_catalog.pg_subscription s ON os.external_id = 'pg_' || s.oid "
							"WHERE s.subname = '" HA_SUBSCRIPTION "'");
			if (split)
				split = MemoryContextStrdup(cxt, split);
			spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " DISABLE");
			spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " SET (slot_name = NONE)");
			spi_sql("DROP SUBSCRIPTION " HA_SUBSCRIPTION);
		}
		if (spi_sql("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = '" HA_PUBLICATION "'") == NULL)
			spi_sql("CREATE PUBLICATION " HA_PUBLICATION " FOR TABLE %s",
					spi_sql("SELECT %s.ha_data_table_list()", ha_local.schema));
		txn_commit();

		/* 2. the reverse slot, before any write of the new term */
		step = "creating the reverse replication slot";
		if (old_primary_id > 0)
		{
			slot = ha_slot_name(old_primary_id);
			txn_begin("crawler_ha: promote: reverse slot");
			if (spi_sql("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'", slot) != NULL)
				spi_sql("SELECT pg_catalog.pg_drop_replication_slot('%s')", slot);
			txn_commit();
			txn_begin("crawler_ha: promote: reverse slot");
			spi_sql("SELECT pg_catalog.pg_create_logical_replication_slot('%s', 'pgoutput')", slot);
			txn_commit();
		}

		/*
		 * 3. synchronous standby first, so no write of the new term escapes
		 * it: the checkpointer publishes the setting to every backend when it
		 * processes the reload, which takes it milliseconds; give it 200.
		 */
		step = "taking the new term";
		if (ha_replication_mode == HA_MODE_SEMI_SYNC && !switchover)
		{
			/* the standby this semi_sync primary would wait for is the node that just died */
			SpinLockAcquire(&ha_shared->mutex);
			ha_shared->sync_degraded = true;
			SpinLockRelease(&ha_shared->mutex);
		}
		else if (ha_replication_mode != HA_MODE_ASYNC)
		{
			const char *cur = GetConfigOptionResetString("synchronous_standby_names");

			if (cur == NULL || cur[0] == '\0')
			{
				txn_begin("crawler_ha: promote: synchronous standby");
				ha_set_system_setting("synchronous_standby_names", HA_SUBSCRIPTION);
				txn_commit();
				ha_reload_config();
				sleep_ms(200);
			}
		}
		txn_begin("crawler_ha: promote: term");
		{
			int64		seen;

			SpinLockAcquire(&ha_shared->mutex);
			seen = Max(ha_shared->max_term_seen, ha_shared->peer.term);
			SpinLockRelease(&ha_shared->mutex);
			/* with a witness, exactly the term it granted */
			new_term = ha_granted_term > 0 ? ha_granted_term : Max(seen, ha_local.term) + 1;
		}
		spi_sql("UPDATE %s.ha_state SET role = 'primary', term = " INT64_FORMAT ", primary_name = %s, "
				"primary_node_id = %d, fenced = false, needs_rejoin = false, split_lsn = %s",
				ha_local.schema, new_term, quote_literal_cstr(ha_local.node_name), ha_local.node_id,
				split ? quote_literal_cstr(split) : "NULL");
		spi_sql("INSERT INTO %s.ha_terms (term, primary_name, primary_node_id, reason) "
				"VALUES (" INT64_FORMAT ", %s, %d, %s) ON CONFLICT (term) DO NOTHING",
				ha_local.schema, new_term, quote_literal_cstr(ha_local.node_name),
				ha_local.node_id, quote_literal_cstr(reason));
		/* 4. lift read-only */
		set_read_only_in_txn(false);
		txn_commit();
		ha_reload_config();
		ha_refresh_server_read_only();
		raise_max_term(new_term);
		ha_local.role = HA_ROLE_PRIMARY;
		ha_local.term = new_term;
		ha_local.fenced = false;
		ha_local.sub_exists = false;
		strlcpy(ha_local.primary_name, ha_local.node_name, HA_NAME_LEN);
		ha_local.primary_node_id = ha_local.node_id;
		publish_local_state();
	}
	PG_CATCH();
	{
		step_failed(cxt, step, msg, msglen);
		return false;
	}
	PG_END_TRY();

	snprintf(msg, msglen, "node %s promoted: primary of term " INT64_FORMAT " (%.0f ms)",
			 ha_local.node_name, new_term, ms_since(t0));
	{
		char	   *detail = psprintf("{\"split_lsn\": %s, \"reverse_slot\": %s, \"promotion_ms\": %.1f}",
									  split ? quote_literal_cstr(split) : "null",
									  slot ? quote_literal_cstr(slot) : "null",
									  ms_since(t0));

		/* JSON wants double quotes */
		for (char *p = detail; *p; p++)
			if (*p == '\'')
				*p = '"';
		ha_record_event("promotion", reason, ms_since(t0), detail);
	}
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->last_failover = GetCurrentTimestamp();
	ha_shared->last_failover_ms = ms_since(t0);
	SpinLockRelease(&ha_shared->mutex);
	if (ha_replication_mode == HA_MODE_SEMI_SYNC && !switchover)
		ha_record_event("sync_degraded", "promoted without a standby: writing asynchronously until one catches up",
						-1, NULL);
	return true;
}

/* ---- demotion: a newer term exists elsewhere ---- */

/*
 * How long a demotion or a fence lets writes in flight finish.  They hold
 * the ha_state row FOR SHARE until they end, and the UPDATE waits for them.
 * A write commits in milliseconds; what is still there after this is a
 * client idle in its transaction, or a commit waiting for a synchronous
 * standby that is gone, and would hold the demotion up for as long as it
 * likes.  Those sessions are ended: the demotion ends every client session
 * a moment later anyway.
 */
#define DEMOTE_GRACE_MS 2000

/* End the client sessions that hold the state row; returns how many. */
static int
end_state_lock_holders_in_txn(void)
{
	char	   *n = spi_sql("SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(a.pid)) "
							"FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
							"WHERE l.locktype = 'relation' AND l.granted AND l.mode = 'RowShareLock' "
							"AND l.relation = '%s.ha_state'::pg_catalog.regclass "
							"AND l.database = (SELECT oid FROM pg_catalog.pg_database "
							"                  WHERE datname = pg_catalog.current_database()) "
							"AND a.backend_type = 'client backend' AND a.pid <> pg_catalog.pg_backend_pid()",
							ha_local.schema);

	return n ? atoi(n) : 0;
}

/*
 * Lock the state row for the UPDATE that demotes or fences this node,
 * inside the caller's transaction.  The wait is queued like any UPDATE's
 * (writes that hold the row finish, later ones wait behind it) but lasts
 * at most DEMOTE_GRACE_MS; then the client sessions still holding the row
 * are ended and the lock taken.  If even that fails, the error goes to the
 * caller, whose next check tries again.  Returns how many sessions ended.
 */
static int
lock_state_row_in_txn(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	int			ended = 0;

	spi_sql("SET LOCAL lock_timeout = %d", DEMOTE_GRACE_MS);
	BeginInternalSubTransaction(NULL);
	PG_TRY();
	{
		spi_sql("SELECT 1 FROM %s.ha_state FOR UPDATE", ha_local.schema);
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
				 errmsg("crawler_ha: ended %d client sessions that still held the state row after %d ms",
						ended, DEMOTE_GRACE_MS),
				 errdetail("A transaction left open, or a commit waiting for a synchronous standby that is gone.")));
		spi_sql("SELECT 1 FROM %s.ha_state FOR UPDATE", ha_local.schema);
	}
	PG_END_TRY();
	return ended;
}

bool
ha_demote(int64 new_term, const char *primary_name, int32 primary_id,
		  bool needs_rejoin, const char *reason)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz t0 = GetCurrentTimestamp();
	volatile int ended = 0;

	/* the fence is up in every backend before anything else happens */
	raise_max_term(new_term);

	PG_TRY();
	{
		txn_begin("crawler_ha: demote");
		/* waits for writes in flight (they hold ha_state FOR SHARE), boundedly */
		ended = lock_state_row_in_txn();
		spi_sql("UPDATE %s.ha_state SET role = 'standby', term = GREATEST(term, " INT64_FORMAT "), "
				"primary_name = %s, primary_node_id = %d, fenced = false, needs_rejoin = %s",
				ha_local.schema, new_term, quote_literal_cstr(primary_name), primary_id,
				needs_rejoin ? "true" : "false");
		spi_sql("INSERT INTO %s.ha_terms (term, primary_name, primary_node_id, reason) "
				"VALUES (" INT64_FORMAT ", %s, %d, 'learned from peer') ON CONFLICT (term) DO NOTHING",
				ha_local.schema, new_term, quote_literal_cstr(primary_name), primary_id);
		set_read_only_in_txn(true);
		{
			const char *cur = GetConfigOptionResetString("synchronous_standby_names");

			if (cur != NULL && strcmp(cur, HA_SUBSCRIPTION) == 0)
				ha_set_system_setting("synchronous_standby_names", NULL);
		}
		txn_commit();
		ha_reload_config();
		ended += ha_terminate_clients(0);
	}
	PG_CATCH();
	{
		step_failed(cxt, "demoting this node", NULL, 0);
		return false;
	}
	PG_END_TRY();

	ha_local.role = HA_ROLE_STANDBY;
	ha_local.term = Max(ha_local.term, new_term);
	ha_local.needs_rejoin = needs_rejoin;
	ha_local.fenced = false;
	strlcpy(ha_local.primary_name, primary_name, HA_NAME_LEN);
	ha_local.primary_node_id = primary_id;
	publish_local_state();
	ha_record_event("demotion", psprintf("%s; %d client sessions ended%s", reason, ended,
										 needs_rejoin ? "; needs to rejoin" : ""),
					ms_since(t0), NULL);
	return true;
}

/* ---- rejoin ---- */

/*
 * Count the published changes in transactions this node committed after the
 * split point: what the new primary never received.  The old slot of the
 * peer's subscription still holds them; peeking does not consume anything.
 */
static int64
tail_changes_in_txn(const char *slot, XLogRecPtr split)
{
	char	   *n;
	char		splitbuf[32];

	snprintf(splitbuf, sizeof(splitbuf), "%X/%X", LSN_FORMAT_ARGS(split));
	n = spi_sql("WITH ch AS MATERIALIZED (SELECT lsn, xid, pg_catalog.get_byte(data, 0) AS t "
				"  FROM pg_catalog.pg_logical_slot_peek_binary_changes('%s', NULL, NULL, "
				"       'proto_version', '1', 'publication_names', '" HA_PUBLICATION "')) "
				"SELECT count(*) FROM ch WHERE t IN (73, 85, 68, 84) "
				"AND xid IN (SELECT xid FROM ch WHERE t = 67 AND lsn > '%s'::pg_lsn)",
				slot, splitbuf);
	return n ? strtoi64(n, NULL, 10) : 0;
}

bool
ha_rejoin(char *msg, size_t msglen)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz t0 = GetCurrentTimestamp();
	HaRemoteView peer;
	char	   *old_slot;
	char	   *my_slot;
	char	   *val = NULL;
	char		err[256];
	volatile int64 tail = 0;
	volatile bool have_old_slot = false;
	volatile XLogRecPtr split = InvalidXLogRecPtr;
	bool		resync = false;
	const char *volatile step = "checking for an unreplicated tail";

	SpinLockAcquire(&ha_shared->mutex);
	peer = ha_shared->peer;
	SpinLockRelease(&ha_shared->mutex);

	if (!(ha_local.role == HA_ROLE_STANDBY && ha_local.needs_rejoin) &&
		!(ha_local.role == HA_ROLE_PRIMARY && peer.term > ha_local.term))
	{
		snprintf(msg, msglen, "node %s does not need to rejoin (%s of term " INT64_FORMAT ")",
				 ha_local.node_name, ha_role_name(ha_local.role), ha_local.term);
		return true;
	}
	if (!peer.reachable || peer.role != HA_ROLE_PRIMARY || peer.term < ha_local.term)
	{
		snprintf(msg, msglen, "the peer is not a reachable primary of a term >= " INT64_FORMAT,
				 ha_local.term);
		return false;
	}
	if (ha_local.role == HA_ROLE_PRIMARY &&
		!ha_demote(peer.term, peer.name, peer.node_id, true, "rejoin requested"))
	{
		snprintf(msg, msglen, "could not demote this node");
		return false;
	}

	old_slot = ha_slot_name(peer.node_id);
	my_slot = ha_slot_name(ha_local.node_id);

	/* the new primary must hold a slot for us, made at its promotion */
	if (!ha_remote_query(ha_peer_conninfo,
						 psprintf("SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'",
								  my_slot),
						 ha_response_timeout_ms, &val, err, sizeof(err)))
	{
		snprintf(msg, msglen, "could not ask the new primary for its slot: %s", err);
		return false;
	}
	if (val == NULL || strcmp(val, "1") != 0)
	{
		snprintf(msg, msglen, "the new primary %s has no replication slot %s for this node",
				 peer.name, my_slot);
		return false;
	}

	{
		bool		failed = false;

		PG_TRY();
		{
			txn_begin("crawler_ha: rejoin: tail check");
			have_old_slot = spi_sql("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'",
									old_slot) != NULL;
			split = peer.split_lsn;
			if (have_old_slot)
			{
				if (split == InvalidXLogRecPtr)
					split = parse_lsn(spi_sql("SELECT confirmed_flush_lsn::text FROM pg_catalog.pg_replication_slots "
											  "WHERE slot_name = '%s'", old_slot));
				tail = tail_changes_in_txn(old_slot, split);
			}
			else
				tail = -1;
			txn_commit();
		}
		PG_CATCH();
		{
			step_failed(cxt, step, msg, msglen);
			failed = true;
		}
		PG_END_TRY();
		if (failed)
			return false;
	}

	/*
	 * Rows this node wrote after the split point (or, without the slot, rows
	 * a key comparison finds only here or different here) go to the new
	 * primary first, by its merge rules; then this node copies the new
	 * primary afresh over the slot made for it at the promotion.  Nothing is
	 * dropped before the merge is confirmed: a failed merge keeps the data and
	 * the slot, and is tried again.
	 */
	if (tail != 0)
	{
		char	   *volatile summary = NULL;
		bool		failed = false;
		TimestampTz merge_start = GetCurrentTimestamp();

		step = "merging the tail into the new primary";
		PG_TRY();
		{
			char	   *v;

			txn_begin("crawler_ha: rejoin: merge");
			v = spi_sql("SELECT %s.ha_merge_tail(%s, '%X/%X')::text", ha_local.schema,
						have_old_slot ? quote_literal_cstr(old_slot) : "NULL", LSN_FORMAT_ARGS(split));
			if (v)
				summary = MemoryContextStrdup(cxt, v);
			txn_commit();
		}
		PG_CATCH();
		{
			step_failed(cxt, step, msg, msglen);
			failed = true;
		}
		PG_END_TRY();
		if (failed)
		{
			size_t		len = strlen(msg);

			snprintf(msg + len, msglen - len, "; the data and the slot %s (%lld changes) are kept",
					 have_old_slot ? old_slot : "(none)", (long long) tail);
			return false;
		}
		resync = true;
		ha_record_event("merge",
						psprintf("node %s merged what it wrote after split point %X/%X (%lld changes%s) into "
								 "the new primary %s; it copies the new primary afresh",
								 ha_local.node_name, LSN_FORMAT_ARGS(split), (long long) tail,
								 have_old_slot ? "" : ", found by key comparison: no slot", peer.name),
						ms_since(merge_start), summary);
	}

	PG_TRY();
	{
		/* merged, or nothing to merge: the old slot has served its purpose */
		step = "dropping the old slot";
		txn_begin("crawler_ha: rejoin: drop old slot");
		if (have_old_slot)
			spi_sql("SELECT pg_catalog.pg_drop_replication_slot('%s')", old_slot);
		txn_commit();

		step = "subscribing to the new primary";
		txn_begin("crawler_ha: rejoin: subscribe");
		if (spi_sql("SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = '" HA_SUBSCRIPTION "'") != NULL)
		{
			spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " DISABLE");
			spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " SET (slot_name = NONE)");
			spi_sql("DROP SUBSCRIPTION " HA_SUBSCRIPTION);
		}
		if (resync)
			spi_sql("TRUNCATE %s", spi_sql("SELECT %s.ha_data_table_list()", ha_local.schema));
		spi_sql("CREATE SUBSCRIPTION " HA_SUBSCRIPTION " CONNECTION %s PUBLICATION " HA_PUBLICATION
				" WITH (create_slot = false, slot_name = '%s', copy_data = %s, "
				"disable_on_error = true, synchronous_commit = local)",
				quote_literal_cstr(ha_peer_conninfo), my_slot, resync ? "true" : "false");
		spi_sql("UPDATE %s.ha_state SET role = 'standby', term = GREATEST(term, " INT64_FORMAT "), "
				"primary_name = %s, primary_node_id = %d, peer_node_id = %d, fenced = false, "
				"needs_rejoin = false",
				ha_local.schema, peer.term, quote_literal_cstr(peer.name), peer.node_id, peer.node_id);
		set_read_only_in_txn(true);
		txn_commit();
		ha_reload_config();
	}
	PG_CATCH();
	{
		step_failed(cxt, step, msg, msglen);
		return false;
	}
	PG_END_TRY();

	ha_local.needs_rejoin = false;
	ha_local.sub_exists = true;
	ha_local.sub_enabled = true;
	ha_local.term = Max(ha_local.term, peer.term);
	publish_local_state();
	snprintf(msg, msglen, "node %s rejoined as standby of %s (term " INT64_FORMAT ")",
			 ha_local.node_name, peer.name, peer.term);
	ha_record_event("rejoin", msg, ms_since(t0), NULL);
	return true;
}

/* ---- planned switchover, run on the primary ---- */

static bool
set_fenced(bool fenced, const char *reason)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		txn_begin("crawler_ha: fence");
		if (fenced)
			(void) lock_state_row_in_txn();
		spi_sql("UPDATE %s.ha_state SET fenced = %s", ha_local.schema, fenced ? "true" : "false");
		record_event_in_txn(fenced ? "fence" : "unfence", reason, -1, NULL);
		set_read_only_in_txn(fenced);
		txn_commit();
		ha_reload_config();
	}
	PG_CATCH();
	{
		step_failed(cxt, fenced ? "fencing" : "lifting the fence", NULL, 0);
		return false;
	}
	PG_END_TRY();
	ha_local.fenced = fenced;
	publish_local_state();
	return true;
}

/* The standby's confirmed flush position, as its walsender reports it. */
static XLogRecPtr
standby_flush_lsn(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	XLogRecPtr	lsn = InvalidXLogRecPtr;

	PG_TRY();
	{
		char	   *v;

		txn_begin("crawler_ha: standby position");
		v = spi_sql("SELECT max(flush_lsn)::text FROM pg_catalog.pg_stat_replication "
					"WHERE application_name = '" HA_SUBSCRIPTION "'");
		lsn = parse_lsn(v);
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, "reading the standby's position", NULL, 0);
	}
	PG_END_TRY();
	return lsn;
}

static XLogRecPtr
current_lsn(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	XLogRecPtr	lsn = InvalidXLogRecPtr;

	PG_TRY();
	{
		txn_begin("crawler_ha: wal position");
		lsn = parse_lsn(spi_sql("SELECT pg_catalog.pg_current_wal_lsn()::text"));
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, "reading the WAL position", NULL, 0);
	}
	PG_END_TRY();
	return lsn;
}

static void
sleep_ms(long ms)
{
	int			rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   ms, PG_WAIT_EXTENSION);

	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

bool
ha_switchover(const char *target_name, bool force, int except_pid, char *msg, size_t msglen)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz t0 = GetCurrentTimestamp();
	TimestampTz deadline;
	HaRemoteView peer;
	XLogRecPtr	target;
	XLogRecPtr	flushed = InvalidXLogRecPtr;
	char	   *val = NULL;
	char		err[256];
	int64		new_term;
	int			ended;
	const char *volatile step;

	SpinLockAcquire(&ha_shared->mutex);
	peer = ha_shared->peer;
	SpinLockRelease(&ha_shared->mutex);

	if (ha_local.role != HA_ROLE_PRIMARY)
	{
		snprintf(msg, msglen, "node %s is not the primary", ha_local.node_name);
		return false;
	}
	if (!peer.ever_seen || !peer.reachable)
	{
		snprintf(msg, msglen, "the target \"%s\" is not healthy: %d consecutive failed checks (%s); "
				 "force => true does not help a standby that cannot be reached",
				 peer.name[0] ? peer.name : "peer", peer.consecutive_failures, peer.last_error);
		return false;
	}
	/* judged on the check just made: a name heard before may be another node's */
	if (target_name != NULL && target_name[0] != '\0' && strcmp(target_name, peer.name) != 0)
	{
		snprintf(msg, msglen, "no standby named \"%s\": the standby of node %s is \"%s\"",
				 target_name, ha_local.node_name, peer.name);
		return false;
	}
	if (peer.role != HA_ROLE_STANDBY || peer.needs_rejoin)
	{
		snprintf(msg, msglen, "the target \"%s\" is not a standby ready to take over (%s%s)",
				 peer.name, ha_role_name(peer.role), peer.needs_rejoin ? ", waiting to rejoin" : "");
		return false;
	}
	/* a standby that just subscribed may need a moment to start streaming */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), Min(ha_response_timeout_ms, 5000));
	for (;;)
	{
		bool		streaming;

		ha_monitor_replication();
		SpinLockAcquire(&ha_shared->mutex);
		streaming = ha_shared->standby_streaming;
		SpinLockRelease(&ha_shared->mutex);
		if (streaming || force || GetCurrentTimestamp() >= deadline)
			break;
		sleep_ms(50);
	}
	if (!force && ha_shared->lag_seconds * 1000.0 > ha_replication_lag_threshold_ms)
	{
		snprintf(msg, msglen, "the target \"%s\" is %.1f s behind; wait until it catches up, or use force => true",
				 peer.name, ha_shared->lag_seconds);
		return false;
	}
	if (!force && !ha_shared->standby_streaming)
	{
		snprintf(msg, msglen, "the target %s is not receiving changes; use force => true to switch anyway",
				 peer.name);
		return false;
	}

	/* 1. fence: no new writes here, open sessions ended */
	if (!set_fenced(true, psprintf("switchover to %s", peer.name)))
	{
		snprintf(msg, msglen, "could not fence node %s", ha_local.node_name);
		return false;
	}
	ended = ha_terminate_clients(except_pid);

	/* 2. wait until the standby has flushed everything up to here */
	target = current_lsn();
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ha_response_timeout_ms);
	while (GetCurrentTimestamp() < deadline)
	{
		flushed = standby_flush_lsn();
		if (target != InvalidXLogRecPtr && flushed >= target)
			break;
		sleep_ms(20);
	}
	if (flushed < target && !force)
	{
		set_fenced(false, "switchover abandoned: the target did not catch up");
		snprintf(msg, msglen, "the target %s did not confirm LSN %X/%X within %d ms (it has %X/%X); "
				 "nothing changed", peer.name, LSN_FORMAT_ARGS(target), ha_response_timeout_ms,
				 LSN_FORMAT_ARGS(flushed));
		return false;
	}

	/* 3. promote the target */
	if (!ha_remote_query(ha_peer_conninfo,
						 psprintf("SELECT %s.ha_promote(%s)", ha_local.schema,
								  quote_literal_cstr(psprintf("switchover from %s", ha_local.node_name))),
						 ha_response_timeout_ms * 2, &val, err, sizeof(err)))
	{
		/* did it happen anyway?  the next health check will tell */
		set_fenced(false, psprintf("switchover abandoned: %s", err));
		snprintf(msg, msglen, "promoting %s failed: %s", peer.name, err);
		return false;
	}
	SpinLockAcquire(&ha_shared->mutex);
	new_term = Max(ha_shared->max_term_seen, ha_local.term) + 1;
	SpinLockRelease(&ha_shared->mutex);
	if (val != NULL)
	{
		const char *p = strstr(val, "term ");

		if (p)
			new_term = strtoi64(p + 5, NULL, 10);
	}
	raise_max_term(new_term);

	/* 4. follow the new primary: our old slot is spent, its slot for us is fresh */
	step = "following the new primary";
	PG_TRY();
	{
		char	   *old_slot = ha_slot_name(peer.node_id);
		char	   *my_slot = ha_slot_name(ha_local.node_id);
		int			tries;

		txn_begin("crawler_ha: switchover: follow");
		spi_sql("UPDATE %s.ha_state SET role = 'standby', term = GREATEST(term, " INT64_FORMAT "), "
				"primary_name = %s, primary_node_id = %d, peer_node_id = %d, fenced = false, "
				"needs_rejoin = false",
				ha_local.schema, new_term, quote_literal_cstr(peer.name), peer.node_id, peer.node_id);
		spi_sql("INSERT INTO %s.ha_terms (term, primary_name, primary_node_id, reason) "
				"VALUES (" INT64_FORMAT ", %s, %d, 'switchover') ON CONFLICT (term) DO NOTHING",
				ha_local.schema, new_term, quote_literal_cstr(peer.name), peer.node_id);
		{
			const char *cur = GetConfigOptionResetString("synchronous_standby_names");

			if (cur != NULL && strcmp(cur, HA_SUBSCRIPTION) == 0)
				ha_set_system_setting("synchronous_standby_names", NULL);
		}
		txn_commit();
		ha_reload_config();
		ha_local.role = HA_ROLE_STANDBY;
		ha_local.term = Max(ha_local.term, new_term);
		ha_local.fenced = false;
		strlcpy(ha_local.primary_name, peer.name, HA_NAME_LEN);
		ha_local.primary_node_id = peer.node_id;
		publish_local_state();

		/* the target's walsender may take a moment to let go of the slot */
		step = "dropping the old slot";
		for (tries = 0; tries < 100; tries++)
		{
			char	   *active;

			txn_begin("crawler_ha: switchover: drop old slot");
			active = spi_sql("SELECT active::text FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'",
							 old_slot);
			if (active != NULL && strcmp(active, "false") == 0)
				spi_sql("SELECT pg_catalog.pg_drop_replication_slot('%s')", old_slot);
			txn_commit();
			if (active == NULL || strcmp(active, "false") == 0)
				break;
			sleep_ms(50);
		}

		step = "subscribing to the new primary";
		txn_begin("crawler_ha: switchover: subscribe");
		spi_sql("CREATE SUBSCRIPTION " HA_SUBSCRIPTION " CONNECTION %s PUBLICATION " HA_PUBLICATION
				" WITH (create_slot = false, slot_name = '%s', copy_data = false, "
				"disable_on_error = true, synchronous_commit = local)",
				quote_literal_cstr(ha_peer_conninfo), my_slot);
		txn_commit();
		ha_local.sub_exists = true;
		ha_local.sub_enabled = true;
	}
	PG_CATCH();
	{
		step_failed(cxt, step, msg, msglen);
		return false;
	}
	PG_END_TRY();

	snprintf(msg, msglen, "switched over: %s is the primary of term " INT64_FORMAT
			 ", %s follows it (%d sessions ended, %.0f ms)",
			 peer.name, new_term, ha_local.node_name, ended, ms_since(t0));
	ha_record_event("switchover", msg, ms_since(t0),
					psprintf("{\"target_lsn\": \"%X/%X\", \"confirmed_lsn\": \"%X/%X\", \"forced\": %s}",
							 LSN_FORMAT_ARGS(target), LSN_FORMAT_ARGS(flushed),
							 force ? "true" : "false"));
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->last_failover = GetCurrentTimestamp();
	ha_shared->last_failover_ms = ms_since(t0);
	SpinLockRelease(&ha_shared->mutex);
	return true;
}

/* ---- replication watch, on the primary ---- */

void
ha_monitor_replication(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	static TimestampTz last_streaming = 0;

	PG_TRY();
	{
		int			rc;

		txn_begin("crawler_ha: replication lag");
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
			char	   *b = spi_sql("SELECT max(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), "
									"confirmed_flush_lsn))::bigint FROM pg_catalog.pg_replication_slots "
									"WHERE slot_name LIKE '" HA_SLOT_PREFIX "%%'");

			int64		bytes = b ? strtoi64(b, NULL, 10) : 0;

			/* a standby that is away lags by as long as it has been away */
			if (last_streaming == 0)
				last_streaming = GetCurrentTimestamp();
			SpinLockAcquire(&ha_shared->mutex);
			ha_shared->standby_streaming = false;
			ha_shared->lag_bytes = bytes;
			ha_shared->lag_seconds = bytes > 0 ? ms_since(last_streaming) / 1000.0 : 0;
			strlcpy(ha_shared->sync_state, "disconnected", HA_ROLE_LEN);
			SpinLockRelease(&ha_shared->mutex);
		}
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, "reading replication lag", NULL, 0);
	}
	PG_END_TRY();
}

/* ---- maintenance mode and the subscription switch ---- */

bool
ha_set_paused(bool paused, char *msg, size_t msglen)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		txn_begin("crawler_ha: pause");
		/*
		 * Writes hold the state row FOR SHARE; one left open in a client's
		 * transaction must not hold up the worker, which does everything
		 * else too (a failover among them): give up after the grace and
		 * say why.
		 */
		spi_sql("SET LOCAL lock_timeout = %d", DEMOTE_GRACE_MS);
		if (spi_sql("UPDATE %s.ha_state SET paused = %s WHERE paused <> %s RETURNING 1",
					ha_local.schema, paused ? "true" : "false", paused ? "true" : "false") != NULL)
			record_event_in_txn(paused ? "pause" : "resume",
								paused ? "automatic failover paused" : "automatic failover resumed", -1, NULL);
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, paused ? "pausing" : "resuming", msg, msglen);
		{
			size_t		len = strlen(msg);

			snprintf(msg + len, msglen - len,
					 "; a client transaction holds this node's state row (a write API call in a transaction "
					 "left open): end it, or wait for it, and try again");
		}
		return false;
	}
	PG_END_TRY();
	ha_local.paused = paused;
	publish_local_state();
	snprintf(msg, msglen, "%s", paused ? "paused" : "resumed");
	return true;
}

void
ha_enable_subscription(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		txn_begin("crawler_ha: enable subscription");
		spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " ENABLE");
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, "enabling the subscription", NULL, 0);
	}
	PG_END_TRY();
}

/*
 * Point the subscription at a new connection string (the peer moved, or
 * its TLS or user settings changed).  The apply worker reconnects with it.
 */
void
ha_subscription_set_conninfo(const char *conninfo)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		txn_begin("crawler_ha: subscription conninfo");
		spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " CONNECTION %s", quote_literal_cstr(conninfo));
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, "changing the subscription's connection", NULL, 0);
	}
	PG_END_TRY();
}

/*
 * Cancel the commits waiting for an absent synchronous standby that hold
 * up a merge (66_merge_receive.sql); an event when any were cancelled.
 */
void
ha_release_blocked_merges(void)
{
	MemoryContext cxt = CurrentMemoryContext;
	int			n = 0;

	PG_TRY();
	{
		char	   *v;

		txn_begin("crawler_ha: freeing a merge's way");
		v = spi_sql("SELECT %s.ha_release_blocked_merges()", ha_local.schema);
		n = v ? atoi(v) : 0;
		if (n > 0)
			record_event_in_txn("sync_wait_cancelled",
								psprintf("%d commits waiting for the synchronous standby held up a rejoining "
										 "node's merge (that node is the standby they wait for): their waits "
										 "were cancelled; the commits stay here and their clients got a warning", n),
								-1, NULL);
		txn_commit();
	}
	PG_CATCH();
	{
		step_failed(cxt, "freeing a merge's way", NULL, 0);
	}
	PG_END_TRY();
}
