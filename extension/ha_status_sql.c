/*
 * ha_status_sql.c
 *		ha_status() and ha_health(): this node's view of the pair, from
 *		shared memory (what the worker last saw) and this node's ha_node row.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "ha_shared.h"
#include "ha_write_rule.h"
#include "ha_guc.h"
#include "ha_witness.h"
#include "ha_sql.h"

PG_FUNCTION_INFO_V1(ha_status);
PG_FUNCTION_INFO_V1(ha_health);

/* ---- ha_status() and ha_health() ---- */

#define STATUS_COLS 20
#define STATUS_AGENT_URL 19		/* appended last: callers read columns by position too */

static void
put_remote_row(Tuplestorestate *ts, TupleDesc td, const HaRemoteView *v, const char *kind,
			   const char *detail)
{
	Datum		values[STATUS_COLS];
	bool		nulls[STATUS_COLS];

	memset(nulls, 0, sizeof(nulls));
	values[0] = CStringGetTextDatum(v->name[0] ? v->name : kind);
	if (v->node_id > 0)
		values[1] = Int32GetDatum(v->node_id);
	else
		nulls[1] = true;
	values[2] = BoolGetDatum(false);
	values[3] = CStringGetTextDatum(v->ever_seen ? ha_role_name(v->role) : "unknown");
	values[4] = Int64GetDatum(v->term);
	nulls[4] = !v->ever_seen;
	values[5] = BoolGetDatum(v->healthy && v->ever_seen);
	values[6] = TimestampTzGetDatum(v->last_check);
	nulls[6] = v->last_check == 0;
	values[7] = Float8GetDatum(v->latency_ms);
	nulls[7] = v->last_check == 0;
	values[8] = Int32GetDatum(v->consecutive_failures);
	values[9] = CStringGetTextDatum(ha_replication_mode_name(ha_replication_mode));
	nulls[10] = nulls[11] = nulls[12] = nulls[13] = nulls[14] = true;
	values[15] = BoolGetDatum(v->fenced);
	values[16] = BoolGetDatum(v->needs_rejoin);
	nulls[17] = true;
	values[18] = CStringGetTextDatum(v->last_error[0] ? v->last_error
									 : detail ? detail
									 : psprintf("%s, lsn %X/%X", kind, LSN_FORMAT_ARGS(v->lsn)));
	/* the peer's agent as its last answered ping said; a witness has none */
	values[STATUS_AGENT_URL] = CStringGetTextDatum(v->agent_url);
	nulls[STATUS_AGENT_URL] = v->agent_url[0] == '\0';
	tuplestore_putvalues(ts, td, values, nulls);
}

/* ha_status() on the witness: what it last heard from each data node. */
static void
put_witness_rows(FunctionCallInfo fcinfo, Tuplestorestate *ts, TupleDesc td)
{
	char	   *sql = psprintf("SELECT node_name, node_id, role, term, fenced, last_heard, silent_ms, reports "
							   "FROM %s.ha_witness_seen()", ha_own_schema(fcinfo));

	if (SPI_connect() != SPI_OK_CONNECT)
		return;
	if (SPI_execute(sql, true, 0) == SPI_OK_SELECT)
	{
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			Datum		values[STATUS_COLS];
			bool		nulls[STATUS_COLS];
			bool		isnull;
			double		silent = DatumGetFloat8(SPI_getbinval(t, d, 7, &isnull));

			memset(nulls, 1, sizeof(nulls));
			values[0] = CStringGetTextDatum(SPI_getvalue(t, d, 1));
			nulls[0] = false;
			values[1] = SPI_getbinval(t, d, 2, &nulls[1]);
			values[2] = BoolGetDatum(false);
			nulls[2] = false;
			values[3] = CStringGetTextDatum(SPI_getvalue(t, d, 3));
			nulls[3] = false;
			values[4] = SPI_getbinval(t, d, 4, &nulls[4]);
			values[5] = BoolGetDatum(silent <= (double) ha_health_check_interval_ms * ha_failure_threshold);
			nulls[5] = false;
			values[6] = SPI_getbinval(t, d, 6, &nulls[6]);
			values[15] = SPI_getbinval(t, d, 5, &nulls[15]);
			values[18] = CStringGetTextDatum(psprintf("heard %.0f ms ago (%s reports)", silent,
													  SPI_getvalue(t, d, 8)));
			nulls[18] = false;
			tuplestore_putvalues(ts, td, values, nulls);
		}
	}
	SPI_finish();
}

Datum
ha_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HaShared	snap;
	Datum		values[STATUS_COLS];
	bool		nulls[STATUS_COLS];
	int32		node_id;
	char		node_name[HA_NAME_LEN];

	ha_require_preload();
#if PG_VERSION_NUM >= 160000
	InitMaterializedSRF(fcinfo, 0);
#else
	SetSingleFuncCall(fcinfo, 0);
#endif

	SpinLockAcquire(&ha_shared->mutex);
	memcpy(&snap, ha_shared, sizeof(HaShared));
	SpinLockRelease(&ha_shared->mutex);

	memset(nulls, 0, sizeof(nulls));
	ha_node_identity(fcinfo, &node_id, node_name);
	values[0] = CStringGetTextDatum(node_name);
	values[1] = Int32GetDatum(node_id);
	values[2] = BoolGetDatum(true);
	values[3] = CStringGetTextDatum(snap.state_loaded ? ha_role_name(snap.role) : "unknown");
	values[4] = Int64GetDatum(snap.term);
	values[5] = BoolGetDatum(snap.worker_pid != 0 && snap.state_loaded);
	nulls[6] = nulls[7] = nulls[8] = true;
	values[9] = CStringGetTextDatum(ha_replication_mode_name(ha_replication_mode));
	values[10] = CStringGetTextDatum(snap.role == HA_ROLE_PRIMARY
									 ? (snap.sync_degraded ? "degraded" : snap.sync_state) : "n/a");
	values[11] = Int64GetDatum(snap.lag_bytes);
	values[12] = Float8GetDatum(snap.lag_seconds);
	nulls[11] = nulls[12] = !ha_primary_lag_known(&snap);
	values[13] = TimestampTzGetDatum(snap.last_failover);
	values[14] = Float8GetDatum(snap.last_failover_ms);
	nulls[13] = nulls[14] = snap.last_failover == 0;
	values[15] = BoolGetDatum(snap.fenced);
	values[16] = BoolGetDatum(snap.needs_rejoin);
	values[17] = BoolGetDatum(snap.paused);
	{
		const char *why = ha_write_block_reason(&snap);

		values[18] = CStringGetTextDatum(snap.worker_pid == 0 ? "HA worker not running"
										 : snap.role == HA_ROLE_WITNESS ? "witness: grants terms, holds no crawl data"
										 : psprintf("primary %s%s%s%s%s%s%s%s%s",
													snap.primary_name[0] ? snap.primary_name : "unknown",
													snap.max_term_seen > snap.term ? "; a newer term exists" : "",
													why ? "; writes refused: " : "", why ? why : "",
													snap.settings_problem[0] ? "; ALERT: " : "", snap.settings_problem,
													snap.grant_state[0] ? psprintf("; witness: %s", snap.grant_state) : "",
													snap.needs_rejoin && snap.rejoin_problem[0] ? "; rejoin refused: " : "",
													snap.needs_rejoin ? snap.rejoin_problem : ""));
	}
	values[STATUS_AGENT_URL] = CStringGetTextDatum(ha_agent_url ? ha_agent_url : "");
	nulls[STATUS_AGENT_URL] = ha_agent_url == NULL || ha_agent_url[0] == '\0';
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);

	if (snap.peer.configured)
		put_remote_row(rsinfo->setResult, rsinfo->setDesc, &snap.peer, "peer", NULL);
	if (snap.witness.configured)
		put_remote_row(rsinfo->setResult, rsinfo->setDesc, &snap.witness, "witness",
					   snap.witness.ever_seen
					   ? psprintf("witness: term " INT64_FORMAT ", primary %s; sees %s", snap.witness.term,
								  snap.witness_primary[0] ? snap.witness_primary : "none",
								  snap.witness_seen[0] ? snap.witness_seen : "no data node yet")
					   : "witness: not reached yet");

	/* on the witness: one row per data node it hears from */
	if (snap.role == HA_ROLE_WITNESS && snap.state_loaded)
		put_witness_rows(fcinfo, rsinfo->setResult, rsinfo->setDesc);
	return (Datum) 0;
}

Datum
ha_health(PG_FUNCTION_ARGS)
{
	TupleDesc	td;
	HaShared	snap;
	Datum		values[12];
	bool		nulls[12];
	char		node_name[HA_NAME_LEN];
	HaWriteCheck check;
	bool		writable;

	ha_require_preload();
	if (get_call_result_type(fcinfo, NULL, &td) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ha_health() must return a row")));
	td = BlessTupleDesc(td);

	SpinLockAcquire(&ha_shared->mutex);
	memcpy(&snap, ha_shared, sizeof(HaShared));
	SpinLockRelease(&ha_shared->mutex);

	ha_check_write(snap.state_loaded ? snap.role : HA_ROLE_NONE, snap.term, snap.fenced, &check);
	writable = check.verdict == HA_WRITE_ALLOWED;

	memset(nulls, 0, sizeof(nulls));
	ha_node_identity(fcinfo, NULL, node_name);
	values[0] = CStringGetTextDatum(node_name);
	values[1] = CStringGetTextDatum(snap.state_loaded ? ha_role_name(snap.role) : "unknown");
	values[2] = Int64GetDatum(snap.term);
	values[3] = BoolGetDatum(writable);
	values[4] = BoolGetDatum(snap.worker_pid != 0 && snap.state_loaded);
	values[5] = BoolGetDatum(snap.fenced);
	values[6] = BoolGetDatum(snap.needs_rejoin);
	values[7] = BoolGetDatum(snap.paused);
	values[8] = BoolGetDatum(snap.peer.healthy && snap.peer.ever_seen);
	nulls[8] = !snap.peer.configured;
	values[9] = Int64GetDatum(snap.lag_bytes);
	values[10] = Float8GetDatum(snap.lag_seconds);
	nulls[9] = nulls[10] = !ha_primary_lag_known(&snap);
	values[11] = TimestampTzGetDatum(snap.peer.last_check);
	nulls[11] = snap.peer.last_check == 0;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(td, values, nulls)));
}
