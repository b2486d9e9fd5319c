/*
 * ha_blob.c
 *		The trigger on images that queues, in ha_blob_wanted, a blob this
 *		node's store lacks (ha_blob_want_image()); the rest of the file sync
 *		is SQL (55_blobs.sql).
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
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

PG_FUNCTION_INFO_V1(ha_blob_want_image);

/* The prepared statements, per backend, for the extension's schema. */
static SPIPlanPtr missing_plan = NULL;
static SPIPlanPtr insert_plan = NULL;
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
	Oid			args3[3] = {TEXTOID, TEXTOID, INT8OID};

	if (missing_plan != NULL && plans_nsp == nsp)
		return;
	if (missing_plan != NULL)
		SPI_freeplan(missing_plan);
	if (insert_plan != NULL)
		SPI_freeplan(insert_plan);
	missing_plan = insert_plan = NULL;
	/* without an attached store (no agent here) nothing is queued */
	missing_plan = keep_plan(psprintf("SELECT NOT EXISTS (SELECT 1 FROM %s.ha_blobs b WHERE b.sha256 OPERATOR(pg_catalog.=) $1) "
									  "AND EXISTS (SELECT 1 FROM %s.ha_blob_store)", s, s),
							 1, text1);
	insert_plan = keep_plan(psprintf("INSERT INTO %s.ha_blob_wanted (sha256, file_path, file_size) "
									 "VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING", s),
							3, args3);
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
 * AFTER INSERT OR UPDATE OF sha256 ON images FOR EACH ROW: the row's blob
 * goes into ha_blob_wanted when ha_blobs lacks it and a store is attached.
 * An update that keeps the sha256 (the apply worker names every column)
 * does nothing.
 */
Datum
ha_blob_want_image(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	HeapTuple	row;
	Datum		args[3];
	bool		isnull;
	bool		missing;
	bool		saved_read_only;
	int			rc = 0;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) || !TRIGGER_FIRED_FOR_ROW(td->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(td->tg_event) || TRIGGER_FIRED_BY_UPDATE(td->tg_event)))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("ha_blob_want_image() is an AFTER INSERT OR UPDATE row trigger")));
	row = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
	args[0] = column(td, row, "sha256", &isnull);
	if (isnull)
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_UPDATE(td->tg_event))
	{
		bool		oldnull;
		Datum		old = column(td, td->tg_trigtuple, "sha256", &oldnull);

		if (!oldnull && DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, old, args[0])))
			return PointerGetDatum(NULL);
	}

	if (SPI_connect() != SPI_OK_CONNECT)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: SPI_connect failed")));
	prepare_plans(get_func_namespace(fcinfo->flinfo->fn_oid));
	if (SPI_execute_plan(missing_plan, args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("crawler_ha: the probe of ha_blobs failed")));
	missing = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
	if (missing)
	{
		char		nulls[3] = {' ', ' ', ' '};

		args[1] = column(td, row, "file_path", &isnull);
		if (isnull)
			nulls[1] = 'n';
		args[2] = column(td, row, "file_size", &isnull);
		if (isnull)
			nulls[2] = 'n';
		saved_read_only = XactReadOnly;
		PG_TRY();
		{
			XactReadOnly = false;
			rc = SPI_execute_plan(insert_plan, args, nulls, false, 0);
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
	SPI_finish();
	return PointerGetDatum(NULL);
}
