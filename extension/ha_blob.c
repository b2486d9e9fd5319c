/*
 * ha_blob.c
 *		The trigger on images that queues, in ha_blob_wanted, the blobs of a
 *		row (its file and its thumbnails') this node's store lacks
 *		(ha_blob_want_image()); the rest of the file sync is SQL
 *		(55_blobs.sql, 44_thumbnails.sql).
 *
 * It is C for two reasons.  On a standby the server runs with
 * default_transaction_read_only = on; the logical-replication apply worker
 * and its initial table copy still write images (they insert without the
 * executor's read-only check) and fire this trigger, whose INSERT through
 * the executor would be refused ("cannot execute INSERT in a read-only
 * transaction") and disable the subscription.  ha_blob_wanted is per node
 * and never replicated, like the HA worker's own tables, so the read-only
 * fence (which guards the crawl data) does not apply to it: that one insert
 * runs with the transaction's read-only flag lifted, restored after it,
 * error or not.  And it runs once per images row, in the write API's hot
 * path: two prepared statements kept per backend, no PL/pgSQL call and no
 * search_path change per row (measured: a PL/pgSQL body pinning its
 * search_path cost 17 us a row more).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "utils/jsonb.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(ha_blob_want_image);

/* The prepared statements, per backend, for the extension's schema. */
static SPIPlanPtr missing_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
static SPIPlanPtr thumbnails_plan = NULL;
static Oid	plans_nsp = InvalidOid;

static SPIPlanPtr
keep_plan(const char *sql, int nargs, Oid *types)
{
	SPIPlanPtr	plan = SPI_prepare(sql, nargs, types);

	if (plan == NULL || SPI_keepplan(plan) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: cannot prepare \"%s\": %s", sql, SPI_result_code_string(SPI_result))));
	return plan;
}

/*
 * Every name qualified, the operator too: the plans are made under the
 * writer's search_path, which must change nothing.
 */
static void
prepare_plans(Oid nsp)
{
	const char *s = quote_identifier(get_namespace_name(nsp));
	Oid			text1[1] = {TEXTOID};
	Oid			args4[4] = {TEXTOID, TEXTOID, INT8OID, INTERVALOID};
	Oid			jsonb2[2] = {JSONBOID, INTERVALOID};

	if (missing_plan != NULL && plans_nsp == nsp)
		return;
	if (missing_plan != NULL)
		SPI_freeplan(missing_plan);
	if (insert_plan != NULL)
		SPI_freeplan(insert_plan);
	if (thumbnails_plan != NULL)
		SPI_freeplan(thumbnails_plan);
	missing_plan = insert_plan = thumbnails_plan = NULL;
	/* without an attached store (no agent here) nothing is queued */
	missing_plan = keep_plan(psprintf("SELECT NOT EXISTS (SELECT 1 FROM %s.ha_blobs b WHERE b.sha256 OPERATOR(pg_catalog.=) $1) "
									  "AND EXISTS (SELECT 1 FROM %s.ha_blob_store)", s, s),
							 1, text1);
	insert_plan = keep_plan(psprintf("INSERT INTO %s.ha_blob_wanted (sha256, file_path, file_size, next_try_at) "
									 "VALUES ($1, $2, $3, pg_catalog.now() OPERATOR(pg_catalog.+) $4) "
									 "ON CONFLICT (sha256) DO NOTHING", s),
							4, args4);
	/*
	 * A row's thumbnails (image_thumbnails_problem()'s shape, which every
	 * path that writes images has checked) in one statement: a row has a
	 * few, and most rows none, which never run it.
	 */
	thumbnails_plan = keep_plan(psprintf("INSERT INTO %s.ha_blob_wanted (sha256, file_path, file_size, next_try_at) "
										 "SELECT t.h, t.p, t.n, pg_catalog.now() OPERATOR(pg_catalog.+) $2 FROM (SELECT e.value OPERATOR(pg_catalog.->>) 'sha256'::pg_catalog.text AS h, "
										 "e.value OPERATOR(pg_catalog.->>) 'file_path'::pg_catalog.text AS p, "
										 "(e.value OPERATOR(pg_catalog.->>) 'bytes'::pg_catalog.text)::pg_catalog.int8 AS n "
										 "FROM pg_catalog.jsonb_each($1) e "
										 "WHERE pg_catalog.jsonb_typeof(e.value) OPERATOR(pg_catalog.=) 'object'::pg_catalog.text) t "
										 "WHERE t.h IS NOT NULL AND t.p IS NOT NULL AND t.n IS NOT NULL "
										 "AND EXISTS (SELECT 1 FROM %s.ha_blob_store) "
										 "AND NOT EXISTS (SELECT 1 FROM %s.ha_blobs b WHERE b.sha256 OPERATOR(pg_catalog.=) t.h) "
										 "ON CONFLICT (sha256) DO NOTHING", s, s, s),
								2, jsonb2);
	plans_nsp = nsp;
}

static Datum
column(TriggerData *td, HeapTuple tuple, const char *name, bool *isnull)
{
	TupleDesc	desc = RelationGetDescr(td->tg_relation);
	int			attnum = SPI_fnumber(desc, name);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("crawler_ha: table \"%s\" has no column \"%s\"",
						RelationGetRelationName(td->tg_relation), name)));
	return heap_getattr(tuple, attnum, desc, isnull);
}

/*
 * Runs one of the inserts into ha_blob_wanted.  ha_blob_wanted is per node
 * and never replicated: the insert runs with the transaction's read-only
 * flag lifted (a standby's apply worker), restored after it, error or not.
 */
static void
insert_wanted(SPIPlanPtr plan, Datum *args, const char *nulls)
{
	bool		saved_read_only = XactReadOnly;
	int			rc = 0;

	PG_TRY();
	{
		XactReadOnly = false;
		rc = SPI_execute_plan(plan, args, nulls, false, 0);
	}
	PG_FINALLY();
	{
		XactReadOnly = saved_read_only;
	}
	PG_END_TRY();
	if (rc != SPI_OK_INSERT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: the insert into ha_blob_wanted failed: %s", SPI_result_code_string(rc))));
}

/*
 * How long a queued blob waits before it is handed out for fetching.  A row
 * the write API writes on this node names a blob its writer uploaded to this
 * node's agent just before (the worker uploads, then records); the agent
 * records uploads in batches (every 200 ms), so the row often commits first
 * and finds the blob missing.  Handed out at once, the entry cost a poll of
 * the fetch queue and its stale check, only for the agent to see a recent
 * upload and leave it: most of a primary's file sync work during a crawl.
 * With the grace the upload's record removes the entry before it is due;
 * a blob that no upload brings (a worker storing locally, an upload lost)
 * is fetched 2 s later.  Rows that arrive any other way (the apply worker,
 * the initial copy, a merge, a repair: session_replication_role = replica)
 * name blobs this node has not been sent: due at once.
 */
static Datum
fetch_grace(Interval *space)
{
	space->month = 0;
	space->day = 0;
	space->time = SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA ? 0 : 2 * USECS_PER_SEC;
	return IntervalPGetDatum(space);
}

/* The row's own file, when this node's store lacks it and has a store. */
static void
want_file(TriggerData *td, HeapTuple row, Datum sha256, Datum grace)
{
	Datum		args[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	bool		isnull;

	args[0] = sha256;
	if (SPI_execute_plan(missing_plan, args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: the probe of ha_blobs failed")));
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) || isnull)
		return;
	args[1] = column(td, row, "file_path", &isnull);
	if (isnull)
		nulls[1] = 'n';
	args[2] = column(td, row, "file_size", &isnull);
	if (isnull)
		nulls[2] = 'n';
	args[3] = grace;
	insert_wanted(insert_plan, args, nulls);
}

/*
 * AFTER INSERT OR UPDATE OF sha256, thumbnails ON images FOR EACH ROW: the
 * row's blobs (its file, its thumbnails') go into ha_blob_wanted when
 * ha_blobs lacks them and a store is attached.  An update that keeps the
 * sha256 (the apply worker names every column) does not look at the file
 * again, and one that keeps the thumbnails does not look at them again.
 */
Datum
ha_blob_want_image(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	row;
	Datum		sha256;
	Datum		thumbnails;
	bool		sha256_null;
	bool		thumbnails_null;
	bool		file_changed = true;
	bool		thumbnails_changed = true;
	Interval	grace_space;
	Datum		grace;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ha_blob_want_image() is an AFTER INSERT OR UPDATE row trigger")));
	row = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	sha256 = column(td, row, "sha256", &sha256_null);
	thumbnails = column(td, row, "thumbnails", &thumbnails_null);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		bool		oldnull;
		Datum		old = column(td, td->tg_trigtuple, "sha256", &oldnull);

		file_changed = !sha256_null &&
			(oldnull || !DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, old, sha256)));
		old = column(td, td->tg_trigtuple, "thumbnails", &oldnull);
		thumbnails_changed = !thumbnails_null &&
			(oldnull || !DatumGetBool(DirectFunctionCall2(jsonb_eq, old, thumbnails)));
	}
	file_changed = file_changed && !sha256_null;
	thumbnails_changed = thumbnails_changed && !thumbnails_null;
	if (!file_changed && !thumbnails_changed)
		return PointerGetDatum(NULL);

	if (SPI_connect() != SPI_OK_CONNECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: SPI_connect failed")));
	prepare_plans(get_func_namespace(fcinfo->flinfo->fn_oid));
	grace = fetch_grace(&grace_space);
	if (file_changed)
		want_file(td, row, sha256, grace);
	if (thumbnails_changed)
	{
		Datum		args[2] = {thumbnails, grace};

		insert_wanted(thumbnails_plan, args, NULL);
	}
	SPI_finish();
	return PointerGetDatum(NULL);
}
