/*
 * ha_sql.c
 *		SQL-callable HA functions: the term half of the write fence,
 *		ha_failover() and the internal primitives the plpgsql functions use
 *		(ALTER SYSTEM, a query on the peer, a request to the worker).
 *		ha_status() and ha_health() are in ha_status_sql.c.
 *
 * They read shared memory or hand work to the worker; none of them changes
 * replication state itself.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"

#include "ha_shared.h"
#include "ha_write_rule.h"
#include "ha_conn.h"
#include "ha_guc.h"
#include "ha_witness.h"
#include "ha_settings.h"
#include "ha_sql.h"

PG_FUNCTION_INFO_V1(ha_fence_check);
PG_FUNCTION_INFO_V1(ha_assert_writable);
PG_FUNCTION_INFO_V1(ha_state_fence_held);
PG_FUNCTION_INFO_V1(ha_alter_system);
PG_FUNCTION_INFO_V1(ha_check_fence_order);
PG_FUNCTION_INFO_V1(ha_peer_query);
PG_FUNCTION_INFO_V1(ha_request);
PG_FUNCTION_INFO_V1(ha_failover);
PG_FUNCTION_INFO_V1(ha_peer_reachable);

/* ha_peer_reachable(): the worker's last check of the peer succeeded. */
Datum
ha_peer_reachable(PG_FUNCTION_ARGS)
{
	bool		r;

	if (!ha_shmem_ready())
		PG_RETURN_NULL();
	SpinLockAcquire(&ha_shared->mutex);
	r = ha_shared->peer.configured && ha_shared->peer.reachable;
	SpinLockRelease(&ha_shared->mutex);
	PG_RETURN_BOOL(r);
}

static void
require_superuser(const char *what)
{
	if (!superuser())
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("only a superuser may call %s directly", what),
				 errhint("Use the ha_* functions granted to crawler_ha_admin.")));
}

char *
ha_own_schema(FunctionCallInfo fcinfo)
{
	Oid			nsp = get_func_namespace(fcinfo->flinfo->fn_oid);

	return pstrdup(quote_identifier(get_namespace_name(nsp)));
}

void
ha_node_identity(FunctionCallInfo fcinfo, int32 *id, char *name)
{
	char	   *sql = psprintf("SELECT node_id, node_name FROM %s.ha_node", ha_own_schema(fcinfo));
	bool		isnull;
	Datum		v;
	int32		got_id;

	if (SPI_connect() != SPI_OK_CONNECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: SPI_connect failed")));
	if (SPI_execute(sql, true, 2) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("crawler_ha: ha_node must hold exactly one row")));
	v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	got_id = isnull ? 0 : DatumGetInt32(v);
	if (id != NULL)
		*id = got_id;
	v = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (isnull)
		snprintf(name, HA_NAME_LEN, "node%d", got_id);
	else
		text_to_cstring_buffer(DatumGetTextPP(v), name, HA_NAME_LEN);
	SPI_finish();
}

/*
 * This node's role in ha_state as the caller's snapshot sees it; HA_ROLE_NONE
 * for a node never set up (the default "primary" of term 0).
 */
static HaRole
committed_role(FunctionCallInfo fcinfo)
{
	char	   *sql = psprintf("SELECT role, term FROM %s.ha_state", ha_own_schema(fcinfo));
	HaRole		role;
	char	   *term;

	if (SPI_connect() != SPI_OK_CONNECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: SPI_connect failed")));
	if (SPI_execute(sql, true, 2) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("crawler_ha: ha_state must hold exactly one row")));
	role = ha_role_from_name(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	term = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (role == HA_ROLE_PRIMARY && (term == NULL || strcmp(term, "0") == 0))
		role = HA_ROLE_NONE;
	SPI_finish();
	return role;
}

/*
 * Raises 25006, naming this node and the primary, unless this node may write
 * in the given state (ha_check_write()'s rule); returns when it may.
 */
static void
refuse_unless_writable(FunctionCallInfo fcinfo, const char *role, int64 term, bool fenced,
					   const char *primary)
{
	char		me[HA_NAME_LEN];
	HaWriteCheck check;

	ha_check_write(ha_role_from_name(role), term, fenced, &check);
	if (check.verdict == HA_WRITE_ALLOWED)
		return;

	/* the name is read only when a write is refused */
	ha_node_identity(fcinfo, NULL, me);
	switch (check.verdict)
	{
		case HA_WRITE_IN_RECOVERY:
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("crawler_ha node \"%s\" does not accept writes", me),
					 errdetail("The server is in recovery."),
					 errhint("Connect to the primary, for example with libpq's target_session_attrs=read-write.")));
			break;
		case HA_WRITE_NOT_PRIMARY:
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("crawler_ha node \"%s\" does not accept writes: it is a %s; the primary is \"%s\"",
							me, role, primary ? primary : "unknown"),
					 errdetail("Term " INT64_FORMAT ".", term),
					 errhint("Connect to the primary, for example with libpq's target_session_attrs=read-write.")));
			break;
		case HA_WRITE_FENCED:
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("crawler_ha node \"%s\" does not accept writes: it is fenced", me),
					 errdetail("A switchover or a fence is in progress in term " INT64_FORMAT ".", term),
					 errhint("Retry on the primary in a moment.")));
			break;
		case HA_WRITE_NEWER_TERM:
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("crawler_ha node \"%s\" does not accept writes: a newer term " INT64_FORMAT " exists; the primary is \"%s\"",
							me, check.newer_term, check.newer_primary[0] ? check.newer_primary : "unknown"),
					 errdetail("This node was the primary of term " INT64_FORMAT " and must rejoin.", term),
					 errhint("Connect to the primary, for example with libpq's target_session_attrs=read-write.")));
			break;
		case HA_WRITE_BLOCKED:
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("crawler_ha node \"%s\" does not accept writes: %s", me, check.why),
					 errdetail("Term " INT64_FORMAT "; a witness is configured.", term),
					 errhint("Connect to the primary, for example with libpq's target_session_attrs=read-write.")));
			break;
		case HA_WRITE_UNCHECKED:
			ereport(ERROR,
					(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
					 errmsg("crawler_ha node \"%s\" does not accept writes yet: its first check of the peer is not done", me),
					 errdetail("A restarted primary first makes sure no newer term exists."),
					 errhint("Retry in a moment.")));
			break;
		case HA_WRITE_READ_ONLY:
		case HA_WRITE_ALLOWED:
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
			 errmsg("crawler_ha node \"%s\" does not accept writes", me),
			 errdetail("default_transaction_read_only is on for this node."),
			 errhint("Connect to the primary, for example with libpq's target_session_attrs=read-write.")));
}

/*
 * ha_fence_check(term, role, fenced, primary_name): the write rule applied
 * to a state the caller read (ha_backup_require_primary); raises 25006.
 */
Datum
ha_fence_check(PG_FUNCTION_ARGS)
{
	int64		term = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	char	   *role = PG_ARGISNULL(1) ? "unknown" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	bool		fenced = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	char	   *primary = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));

	refuse_unless_writable(fcinfo, role, term, fenced, primary);
	PG_RETURN_VOID();
}

/* Where ha_assert_writable() finds ha_state and its columns, per call site. */
typedef struct FenceTarget
{
	Oid			relid;
	AttrNumber	role;
	AttrNumber	term;
	AttrNumber	fenced;
	AttrNumber	primary_name;
} FenceTarget;

static AttrNumber
state_column(Oid relid, const char *name)
{
	AttrNumber	n = get_attnum(relid, name);

	if (n == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("crawler_ha: ha_state has no column \"%s\"", name)));
	return n;
}

static FenceTarget *
fence_target(FunctionCallInfo fcinfo)
{
	FenceTarget *t = (FenceTarget *) fcinfo->flinfo->fn_extra;

	if (t == NULL)
	{
		Oid			nsp = get_func_namespace(fcinfo->flinfo->fn_oid);
		Oid			relid = get_relname_relid("ha_state", nsp);

		if (!OidIsValid(relid))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("crawler_ha: ha_state is missing from the extension's schema")));
		t = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(FenceTarget));
		t->relid = relid;
		t->role = state_column(relid, "role");
		t->term = state_column(relid, "term");
		t->fenced = state_column(relid, "fenced");
		t->primary_name = state_column(relid, "primary_name");
		fcinfo->flinfo->fn_extra = t;
	}
	return t;
}

/*
 * ha_assert_writable(): the write fence every write-API function calls
 * first.  Raises 25006, naming the primary, unless this node is the unfenced
 * primary of the newest term it knows; returns otherwise.
 *
 * Ordered against demotion by a table lock, not a row lock: it takes
 * ha_state in ROW EXCLUSIVE mode, held to the end of the caller's
 * transaction, and only then reads the row with the newest snapshot.  Every
 * change that stops this node's writes (a demotion, a fence, the backup
 * freeze) first takes ha_state in EXCLUSIVE mode, so it waits for the writes
 * that passed this check, and every write after it reads what it committed
 * (the BEFORE UPDATE trigger refuses such a change made without that lock).
 * Unlike SELECT ... FOR SHARE, nothing is written: no WAL record, no
 * multixact when several writers hold it; the lock is a fast-path one.
 */
Datum
ha_assert_writable(PG_FUNCTION_ARGS)
{
	FenceTarget *t = fence_target(fcinfo);
	Relation	rel;
	Snapshot	snap;
	TableScanDesc scan;
	HeapTuple	tup;
	char	   *role = "unknown";
	char	   *primary = NULL;
	int64		term = 0;
	bool		fenced = false;

	rel = table_open(t->relid, RowExclusiveLock);
	snap = RegisterSnapshot(GetLatestSnapshot());
	scan = table_beginscan(rel, snap, 0, NULL);
	tup = heap_getnext(scan, ForwardScanDirection);
	if (tup != NULL)
	{
		TupleDesc	desc = RelationGetDescr(rel);
		bool		isnull;
		Datum		v;

		v = heap_getattr(tup, t->role, desc, &isnull);
		if (!isnull)
			role = TextDatumGetCString(v);
		v = heap_getattr(tup, t->term, desc, &isnull);
		if (!isnull)
			term = DatumGetInt64(v);
		v = heap_getattr(tup, t->fenced, desc, &isnull);
		if (!isnull)
			fenced = DatumGetBool(v);
		v = heap_getattr(tup, t->primary_name, desc, &isnull);
		if (!isnull)
			primary = TextDatumGetCString(v);
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, NoLock);

	refuse_unless_writable(fcinfo, role, term, fenced, primary);
	PG_RETURN_VOID();
}

/*
 * ha_state_fence_held(): whether this transaction holds ha_state in
 * EXCLUSIVE mode or stronger, which a change that stops this node's writes
 * must (see ha_assert_writable()).  Read by ha_state's update trigger.
 */
Datum
ha_state_fence_held(PG_FUNCTION_ARGS)
{
	FenceTarget *t = fence_target(fcinfo);
	Relation	rel = table_open(t->relid, AccessShareLock);
	bool		held = CheckRelationLockedByMe(rel, ExclusiveLock, true);

	table_close(rel, NoLock);
	PG_RETURN_BOOL(held);
}

/*
 * ha_check_fence_order(): raises 22023 when the settings break the fence
 * order (ha_fence_order_problem()), the rule the worker alerts on too.
 */
Datum
ha_check_fence_order(PG_FUNCTION_ARGS)
{
	const char *problem = ha_fence_order_problem();

	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s", problem),
				 errdetail("With a witness, an isolated primary must turn read-only before its standby can promote."),
				 errhint("Lower crawler_ha.fence_timeout or raise the interval or the threshold, then reload.")));
	PG_RETURN_VOID();
}

/* ha_alter_system(name, value): ALTER SYSTEM SET/RESET, then reload. */
Datum
ha_alter_system(PG_FUNCTION_ARGS)
{
	require_superuser("ha_alter_system()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("setting name must not be NULL")));
	ha_set_system_setting(text_to_cstring(PG_GETARG_TEXT_PP(0)),
					PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)));
	ha_reload_config();
	PG_RETURN_VOID();
}

/* ha_peer_query(query, timeout_ms): first value of a query run on the peer. */
Datum
ha_peer_query(PG_FUNCTION_ARGS)
{
	char	   *query;
	int			timeout = PG_ARGISNULL(1) ? ha_response_timeout_ms : PG_GETARG_INT32(1);
	char	   *value = NULL;
	HaRemoteError err;

	require_superuser("ha_peer_query()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("query must not be NULL")));
	if (ha_peer_conninfo == NULL || ha_peer_conninfo[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION),
				 errmsg("crawler_ha.peer_conninfo is not set"),
				 errhint("Set it in postgresql.conf to the other data node and reload.")));
	query = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!ha_remote_query_diag(ha_peer_conninfo, query, timeout, &value, &err))
		ha_raise_remote_error(&err, "query on the peer (crawler_ha.peer_conninfo)");
	if (value == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(value));
}


/* Hand a request to the worker and wait (interruptibly) for its answer. */
static char *
post_request(HaRequestKind kind, const char *arg, bool force)
{
	uint64		my_id;
	Latch	   *latch;
	bool		ok;
	char		msg[HA_MSG_LEN];

	ha_require_preload();
	SpinLockAcquire(&ha_shared->mutex);
	latch = ha_shared->worker_latch;
	if (ha_shared->worker_pid == 0 || latch == NULL)
	{
		SpinLockRelease(&ha_shared->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the crawler_ha worker is not running"),
				 errhint("It starts with the server when crawler_ha is in shared_preload_libraries; see the server log.")));
	}
	if (ha_shared->req_id != ha_shared->done_id)
	{
		SpinLockRelease(&ha_shared->mutex);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_IN_USE),
				 errmsg("another HA operation is in progress on this node"),
				 errhint("Wait for it to finish and look at ha_events.")));
	}
	my_id = ++ha_shared->req_id;
	ha_shared->req_kind = kind;
	ha_shared->req_force = force;
	ha_shared->req_pid = MyProcPid;
	strlcpy(ha_shared->req_arg, arg ? arg : "", HA_NAME_LEN);
	SpinLockRelease(&ha_shared->mutex);
	SetLatch(latch);

	for (;;)
	{
		uint64		done;
		pid_t		wpid;

		SpinLockAcquire(&ha_shared->mutex);
		done = ha_shared->done_id;
		wpid = ha_shared->worker_pid;
		if (done >= my_id)
		{
			ok = ha_shared->req_ok;
			strlcpy(msg, ha_shared->req_msg, HA_MSG_LEN);
		}
		SpinLockRelease(&ha_shared->mutex);
		if (done >= my_id)
			break;
		if (wpid == 0)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the crawler_ha worker stopped before it answered"),
					 errhint("Look at ha_events and the server log, then retry.")));
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s", msg),
				 errhint("ha_status() and ha_events tell more.")));
	return pstrdup(msg);
}

/* ha_request(kind, arg, force) */
Datum
ha_request(PG_FUNCTION_ARGS)
{
	char	   *kind;
	char	   *arg = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	bool		force = PG_ARGISNULL(2) ? false : PG_GETARG_BOOL(2);
	HaRequestKind k;

	require_superuser("ha_request()");
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("request kind must not be NULL")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(kind, "promote") == 0)
		k = HA_REQ_PROMOTE;
	else if (strcmp(kind, "switchover") == 0)
		k = HA_REQ_SWITCHOVER;
	else if (strcmp(kind, "rejoin") == 0)
		k = HA_REQ_REJOIN;
	else if (strcmp(kind, "pause") == 0)
		k = HA_REQ_PAUSE;
	else if (strcmp(kind, "resume") == 0)
		k = HA_REQ_RESUME;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown HA request \"%s\"", kind)));
	PG_RETURN_TEXT_P(cstring_to_text(post_request(k, arg, force)));
}

/*
 * ha_failover(target, force): on the primary, a switchover to the peer; on
 * the standby, the same asked of the primary, or with force and no primary
 * in reach, a promotion of this node.
 */
Datum
ha_failover(PG_FUNCTION_ARGS)
{
	char	   *target = PG_ARGISNULL(0) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(0));
	bool		force = PG_ARGISNULL(1) ? false : PG_GETARG_BOOL(1);
	char		me[HA_NAME_LEN];
	HaRemoteView peer;
	HaRole		role;

	ha_require_preload();
	ha_node_identity(fcinfo, NULL, me);
	/*
	 * The role as committed, which the worker reads again before it acts:
	 * shared memory may still show the one before a change the worker has
	 * not re-read yet (a fresh node's default "primary" of term 0 just after
	 * ha_setup('standby')).
	 */
	role = committed_role(fcinfo);
	SpinLockAcquire(&ha_shared->mutex);
	peer = ha_shared->peer;
	SpinLockRelease(&ha_shared->mutex);

	if (role == HA_ROLE_PRIMARY)
	{
		if (target != NULL && strcmp(target, me) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("node \"%s\" is already the primary", me)));
		/* the target's name, health and lag are judged by the worker, on a fresh check */
		PG_RETURN_TEXT_P(cstring_to_text(post_request(HA_REQ_SWITCHOVER, target, force)));
	}

	if (role == HA_ROLE_STANDBY)
	{
		if (target != NULL && strcmp(target, me) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("node \"%s\" can only promote itself", me),
					 errhint("Call ha_failover() on the primary to choose another target.")));
		if (peer.ever_seen && peer.healthy)
		{
			char	   *value = NULL;
			char		err[256];
			char	   *sql = psprintf("SELECT %s.ha_failover(%s, %s)", ha_own_schema(fcinfo),
									   quote_literal_cstr(me), force ? "true" : "false");

			if (!ha_remote_query(ha_peer_conninfo, sql, ha_response_timeout_ms * 3, &value, err, sizeof(err)))
				ereport(ERROR,
						(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						 errmsg("the switchover on the primary \"%s\" failed: %s", peer.name, err)));
			PG_RETURN_TEXT_P(cstring_to_text(value ? value : "switched over"));
		}
		if (!force)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the primary \"%s\" cannot be reached", peer.name[0] ? peer.name : "peer"),
					 errdetail("%s", peer.last_error),
					 errhint("ha_failover(force => true) promotes this node anyway; writes the primary did not send are not here.")));
		PG_RETURN_TEXT_P(cstring_to_text(post_request(HA_REQ_PROMOTE, "forced failover", true)));
	}

	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("node \"%s\" is %s and takes no part in failover", me, role != HA_ROLE_NONE ? ha_role_name(role) : "not set up")));
	PG_RETURN_NULL();
}
