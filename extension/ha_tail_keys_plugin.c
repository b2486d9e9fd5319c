/*
 * ha_tail_keys_plugin.c
 *		The logical decoding output plugin "crawler_ha": which rows an old
 *		primary's tail changed, and nothing else, for the merge on rejoin.
 *
 * The tail is in the slot the old standby used, a pgoutput slot.  pgoutput
 * writes every column of every change (58 MB for 200,000 changes), and the
 * merge uses only the operation, the table and the key, then reads the rows
 * as they are now on this node.  ha_tail_changes() (65_merge.sql) therefore
 * reads a temporary copy of that slot with this plugin, which writes just
 * those, and leaves the real slot as it was.
 *
 * It follows what pgoutput would send for the extension's publication, so
 * that the count and the keys are the ones pgoutput's messages gave: the
 * caller names the publication's tables and actions (a FOR TABLE publication
 * without row filters or column lists, as ha_setup() makes it), the key is
 * the first column pgoutput would send (not dropped, not generated), unknown
 * when null or an unchanged TOAST value, a delete without its old key is not
 * sent, and a truncate is one line for all the followed tables it empties.
 *
 * One line per change, text:
 *   "I <oid> <key>", "U <oid> <key>", "D <oid> <key>"  (" <key>" absent when
 *       the key is not known), <oid> the table's OID on this node;
 *   "T <oid>" for a truncate of one followed table, "T" for several.
 * Options (pg_logical_slot_peek_changes(..., name, value, ...)):
 *   relations  the OIDs of the followed tables, comma-separated (required;
 *              empty follows none);
 *   after_lsn  only transactions whose commit record ends after this LSN
 *              (required): the end is how a subscriber's replication origin
 *              counts what it received;
 *   actions    which of I, U, D, T are followed (default all four).
 * Nothing is written for begin and commit: the caller knows which
 * transactions count from after_lsn.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "replication/logical.h"
#include "replication/output_plugin.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_lsn.h"
#include "utils/rel.h"

/* the followed tables are the data tables: a handful */
#define TAIL_KEYS_MAX_RELATIONS 64

typedef struct TailKeysState
{
	MemoryContext cxt;			/* the decoding's: lives as long as it */
	MemoryContext change_cxt;	/* reset after each change */
	XLogRecPtr	after_lsn;
	int			nrelations;
	Oid			relations[TAIL_KEYS_MAX_RELATIONS]; /* sorted */
	bool		follow_insert;
	bool		follow_update;
	bool		follow_delete;
	bool		follow_truncate;
	/* the output function of the last key's type: the busy tables' keys are all bigint */
	Oid			out_type;
	FmgrInfo	out_fn;
} TailKeysState;

extern PGDLLEXPORT void _PG_output_plugin_init(OutputPluginCallbacks *cb);

static void
bad_option(const char *name, const char *value, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("crawler_ha output plugin: option \"%s\" = \"%s\" %s", name, value ? value : "(null)", why)));
}

/* "16384,16390": the OIDs, digits only, each a valid OID */
static void
parse_relations(TailKeysState *st, const char *value)
{
	const char *p = value;

	st->nrelations = 0;
	while (*p != '\0')
	{
		uint64		v = 0;
		const char *start = p;

		while (*p >= '0' && *p <= '9' && p - start < 11)
			v = v * 10 + (uint64) (*p++ - '0');
		if (p == start || v == 0 || v > PG_UINT32_MAX || (*p != ',' && *p != '\0'))
			bad_option("relations", value, "is not a comma-separated list of table OIDs");
		if (st->nrelations == TAIL_KEYS_MAX_RELATIONS)
			bad_option("relations", value, "names more tables than the plugin follows");
		st->relations[st->nrelations++] = (Oid) v;
		if (*p == ',')
		{
			p++;
			if (*p == '\0')
				bad_option("relations", value, "is not a comma-separated list of table OIDs");
		}
	}
	qsort(st->relations, st->nrelations, sizeof(Oid), oid_cmp);
}

static void
parse_actions(TailKeysState *st, const char *value)
{
	st->follow_insert = st->follow_update = st->follow_delete = st->follow_truncate = false;
	for (const char *p = value; *p != '\0'; p++)
	{
		switch (*p)
		{
			case 'I':
				st->follow_insert = true;
				break;
			case 'U':
				st->follow_update = true;
				break;
			case 'D':
				st->follow_delete = true;
				break;
			case 'T':
				st->follow_truncate = true;
				break;
			default:
				bad_option("actions", value, "may only hold the letters I, U, D and T");
		}
	}
}

static void
tail_keys_startup(LogicalDecodingContext *ctx, OutputPluginOptions *opt, bool is_init)
{
	TailKeysState *st = MemoryContextAllocZero(ctx->context, sizeof(TailKeysState));
	bool		have_relations = false;
	bool		have_after = false;
	ListCell   *lc;

	st->cxt = ctx->context;
	st->change_cxt = AllocSetContextCreate(ctx->context, "crawler_ha tail keys", ALLOCSET_DEFAULT_SIZES);
	st->follow_insert = st->follow_update = st->follow_delete = st->follow_truncate = true;
	ctx->output_plugin_private = st;
	opt->output_type = OUTPUT_PLUGIN_TEXTUAL_OUTPUT;
	opt->receive_rewrites = false;

	foreach(lc, ctx->output_plugin_options)
	{
		DefElem    *elem = lfirst(lc);
		const char *value = (elem->arg != NULL && IsA(elem->arg, String)) ? strVal(elem->arg) : NULL;

		if (value == NULL)
			bad_option(elem->defname, value, "needs a value");
		if (strcmp(elem->defname, "relations") == 0)
		{
			parse_relations(st, value);
			have_relations = true;
		}
		else if (strcmp(elem->defname, "after_lsn") == 0)
		{
			bool		bad = false;

			st->after_lsn = pg_lsn_in_internal(value, &bad);
			if (bad)
				bad_option("after_lsn", value, "is not an LSN");
			have_after = true;
		}
		else if (strcmp(elem->defname, "actions") == 0)
			parse_actions(st, value);
		else
			bad_option(elem->defname, value, "is not an option of this plugin");
	}

	/*
	 * Creating or copying a slot decodes nothing and passes no options; a
	 * reading that forgot which tables to follow must not look like an empty
	 * tail, which the merge would take as nothing to send.
	 */
	if (!is_init && (!have_relations || !have_after))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("crawler_ha output plugin: the options \"relations\" and \"after_lsn\" are required")));
}

static void
tail_keys_shutdown(LogicalDecodingContext *ctx)
{
	/* everything is in ctx->context, which logical decoding frees */
}

static void
tail_keys_begin(LogicalDecodingContext *ctx, ReorderBufferTXN *txn)
{
	/* nothing to write: see the file's comment */
}

static void
tail_keys_commit(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, XLogRecPtr commit_lsn)
{
	/* nothing to write: see the file's comment */
}

static bool
followed(const TailKeysState *st, ReorderBufferTXN *txn, Oid relid)
{
	/*
	 * The top transaction's end_lsn is set before its changes are replayed
	 * (the peek reports it as the commit's LSN).
	 */
	if (txn->end_lsn <= st->after_lsn)
		return false;
	return bsearch(&relid, st->relations, st->nrelations, sizeof(Oid), oid_cmp) != NULL;
}

/*
 * Append " <key>" for the first column pgoutput would send of tuple, and
 * return true; false (nothing appended) when that value is null or an
 * unchanged TOAST value, which pgoutput sends without its value.
 */
static bool
append_key(TailKeysState *st, StringInfo out, Relation rel, ReorderBufferTupleBuf *tuple)
{
	TupleDesc	desc = RelationGetDescr(rel);

	if (tuple == NULL)
		return false;
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		Datum		value;
		bool		isnull;

		if (att->attisdropped || att->attgenerated)
			continue;
		value = heap_getattr(&tuple->tuple, att->attnum, desc, &isnull);
		if (isnull)
			return false;
		if (att->attlen == -1 && VARATT_IS_EXTERNAL_ONDISK(DatumGetPointer(value)))
			return false;
		if (att->atttypid != st->out_type)
		{
			Oid			fn;
			bool		varlena;

			getTypeOutputInfo(att->atttypid, &fn, &varlena);
			fmgr_info_cxt(fn, &st->out_fn, st->cxt);
			st->out_type = att->atttypid;
		}
		appendStringInfoChar(out, ' ');
		appendStringInfoString(out, OutputFunctionCall(&st->out_fn, value));
		return true;
	}
	return false;
}

static void
tail_keys_change(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, Relation rel, ReorderBufferChange *change)
{
	TailKeysState *st = ctx->output_plugin_private;
	MemoryContext old;
	char		op;
	ReorderBufferTupleBuf *first;
	ReorderBufferTupleBuf *second = NULL;

	if (!followed(st, txn, RelationGetRelid(rel)))
		return;
	switch (change->action)
	{
		case REORDER_BUFFER_CHANGE_INSERT:
			if (!st->follow_insert)
				return;
			op = 'I';
			first = change->data.tp.newtuple;
			break;
		case REORDER_BUFFER_CHANGE_UPDATE:
			if (!st->follow_update)
				return;
			op = 'U';
			/* the new key, else the old one when the update changed it */
			first = change->data.tp.newtuple;
			second = change->data.tp.oldtuple;
			break;
		case REORDER_BUFFER_CHANGE_DELETE:
			/* pgoutput sends no delete without its old key */
			if (!st->follow_delete || change->data.tp.oldtuple == NULL)
				return;
			op = 'D';
			first = change->data.tp.oldtuple;
			break;
		default:
			return;
	}

	old = MemoryContextSwitchTo(st->change_cxt);
	OutputPluginPrepareWrite(ctx, true);
	appendStringInfo(ctx->out, "%c %u", op, RelationGetRelid(rel));
	if (!append_key(st, ctx->out, rel, first) && second != NULL)
		(void) append_key(st, ctx->out, rel, second);
	OutputPluginWrite(ctx, true);
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->change_cxt);
}

static void
tail_keys_truncate(LogicalDecodingContext *ctx, ReorderBufferTXN *txn, int nrelations, Relation relations[],
				   ReorderBufferChange *change)
{
	TailKeysState *st = ctx->output_plugin_private;
	Oid			one = InvalidOid;
	int			n = 0;

	if (!st->follow_truncate)
		return;
	for (int i = 0; i < nrelations; i++)
	{
		Oid			relid = RelationGetRelid(relations[i]);

		if (followed(st, txn, relid))
		{
			one = relid;
			n++;
		}
	}
	if (n == 0)
		return;
	OutputPluginPrepareWrite(ctx, true);
	/* one line per TRUNCATE, as pgoutput sends one message: a table only if it is the one */
	if (n == 1)
		appendStringInfo(ctx->out, "T %u", one);
	else
		appendStringInfoChar(ctx->out, 'T');
	OutputPluginWrite(ctx, true);
}

/*
 * _PG_output_plugin_init(cb): logical decoding's entry point, which a slot
 * whose plugin is "crawler_ha" loads from this library.  Fills cb with the
 * plugin's callbacks; the plugin's output and options are in the file's
 * comment.  No two-phase or streaming callbacks: a transaction is decoded
 * once it commits, as pgoutput decodes it without those options.
 */
void
_PG_output_plugin_init(OutputPluginCallbacks *cb)
{
	cb->startup_cb = tail_keys_startup;
	cb->begin_cb = tail_keys_begin;
	cb->change_cb = tail_keys_change;
	cb->truncate_cb = tail_keys_truncate;
	cb->commit_cb = tail_keys_commit;
	cb->shutdown_cb = tail_keys_shutdown;
}
