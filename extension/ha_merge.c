/*
 * ha_merge.c
 *		Reading an old primary's unreplicated tail for the merge on rejoin.
 *
 * The tail is in the slot the old standby used (pgoutput, nothing consumed
 * by peeking).  The merge needs only which rows the tail touched: every
 * data table's primary key is its first column, and a pgoutput row message
 * carries the table's OID on this node, so one message gives (table, key).
 * The rows themselves are then read as they are now on this node, which
 * stopped writing when it stepped down.
 *
 * This is the one decoder of pgoutput in the extension: the SQL that reads
 * a slot (ha_tail_changes() in 65_merge.sql) asks it for every message's
 * type, a commit's included, rather than reading bytes itself.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"


PG_FUNCTION_INFO_V1(ha_pgoutput_change);

typedef struct MsgReader
{
	const unsigned char *p;
	const unsigned char *end;
} MsgReader;

static void
malformed(const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("malformed pgoutput message: %s", what)));
}

static unsigned char
read_byte(MsgReader *r)
{
	if (r->p >= r->end)
		malformed("truncated");
	return *r->p++;
}

static uint32
read_uint(MsgReader *r, int bytes)
{
	uint32		v = 0;

	if (r->end - r->p < bytes)
		malformed("truncated");
	for (int i = 0; i < bytes; i++)
		v = (v << 8) | *r->p++;
	return v;
}

/*
 * Read one TupleData; return its first column as text, or NULL when that
 * column is null or an unchanged TOAST value (then *known is false).
 */
static text *
read_tuple_first(MsgReader *r, bool *known)
{
	int			natts = (int) read_uint(r, 2);
	text	   *first = NULL;

	*known = false;
	for (int i = 0; i < natts; i++)
	{
		unsigned char kind = read_byte(r);

		if (kind == 'n' || kind == 'u')
			continue;
		if (kind == 't' || kind == 'b')
		{
			uint32		len = read_uint(r, 4);

			if ((uint32) (r->end - r->p) < len)
				malformed("column longer than the message");
			if (i == 0 && kind == 't')
			{
				first = cstring_to_text_with_len((const char *) r->p, (int) len);
				*known = true;
			}
			r->p += len;
			continue;
		}
		malformed("unknown column kind");
	}
	return first;
}

/*
 * A truncate's relations (protocol 1: their count, the option bits, an OID
 * each): the one it names, or InvalidOid when it names several (TRUNCATE of
 * a list, or cascaded), which one record cannot report.
 */
static Oid
read_truncate_rel(MsgReader *r)
{
	uint32		nrels = read_uint(r, 4);
	Oid			first = InvalidOid;

	(void) read_byte(r);		/* CASCADE, RESTART IDENTITY */
	for (uint32 i = 0; i < nrels; i++)
	{
		Oid			rel = (Oid) read_uint(r, 4);

		if (i == 0)
			first = rel;
	}
	return nrels == 1 ? first : InvalidOid;
}

/*
 * ha_pgoutput_change(data bytea) -> (op "char", rel oid, key text)
 * One pgoutput (protocol 1) message, whatever its type: op is its type
 * letter ('B' begin, 'C' commit, 'R' relation, 'I', 'U', 'D', 'T' ...).
 * For an insert, update or delete, rel is the table's OID on this node and
 * key its first column's value (NULL when null or an unchanged TOAST value);
 * for a truncate, rel is the table when it names one and NULL when it names
 * several; otherwise rel and key are NULL.  A malformed row or truncate
 * message raises 22P03.
 */
Datum
ha_pgoutput_change(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	MsgReader	r;
	TupleDesc	tupdesc;
	Datum		values[3];
	bool		nulls[3] = {false, true, true};
	unsigned char op;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("ha_pgoutput_change must return a record")));
	tupdesc = BlessTupleDesc(tupdesc);

	r.p = (const unsigned char *) VARDATA_ANY(data);
	r.end = r.p + VARSIZE_ANY_EXHDR(data);
	op = read_byte(&r);
	values[0] = CharGetDatum((char) op);

	if (op == 'I' || op == 'U' || op == 'D')
	{
		Oid			rel = (Oid) read_uint(&r, 4);
		unsigned char part = read_byte(&r);
		bool		known = false;
		text	   *key = NULL;

		values[1] = ObjectIdGetDatum(rel);
		nulls[1] = false;
		if (op == 'I' && part != 'N')
			malformed("insert without a new tuple");
		if (op == 'D' && part != 'K' && part != 'O')
			malformed("delete without a key");
		if (op == 'U' && part != 'K' && part != 'O' && part != 'N')
			malformed("update without a tuple");

		key = read_tuple_first(&r, &known);
		if (op == 'U' && part != 'N')
		{
			/* the old key came first; the new tuple follows */
			bool		new_known = false;
			text	   *new_key;

			if (read_byte(&r) != 'N')
				malformed("update without a new tuple");
			new_key = read_tuple_first(&r, &new_known);
			if (new_known)
			{
				key = new_key;
				known = true;
			}
		}
		if (known)
		{
			values[2] = PointerGetDatum(key);
			nulls[2] = false;
		}
	}
	else if (op == 'T')
	{
		Oid			rel = read_truncate_rel(&r);

		if (OidIsValid(rel))
		{
			values[1] = ObjectIdGetDatum(rel);
			nulls[1] = false;
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
