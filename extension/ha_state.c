/*
 * ha_state.c
 *		This node's HA state as the worker reads it from ha_node and ha_state
 *		(HaLocal) and publishes it to shared memory.
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

#include "ha_shared.h"
#include "ha_state.h"
#include "ha_step.h"

HaLocal		ha_local;

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

void
ha_publish_local_state(void)
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

void
ha_raise_max_term(int64 term)
{
	SpinLockAcquire(&ha_shared->mutex);
	if (term > ha_shared->max_term_seen)
		ha_shared->max_term_seen = term;
	SpinLockRelease(&ha_shared->mutex);
}

/* ---- reading this node's state ---- */

/* The body of ha_load_local_state()'s step: HaLocal from ha_node, ha_state and the subscription. */
static void
load_state_step(void *unused)
{
	char	   *nsp;
	int			rc;

	nsp = ha_spi_sql("SELECT n.nspname FROM pg_catalog.pg_extension e "
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

/*
 * Reads ha_node and ha_state in a transaction of its own into HaLocal and
 * publishes them.  False when the extension is not installed in the
 * worker's database, or the read failed (logged; then HaLocal counts as not
 * loaded, which shared memory says too).
 */
bool
ha_load_local_state(void)
{
	bool		ok = ha_step_run("reading this node's HA state", load_state_step, NULL, NULL, 0);

	if (!ok)
		ha_local.ext_present = false;
	ha_publish_local_state();
	return ok && ha_local.ext_present;
}

/*
 * ha_load_local_state() after a transition committed; on a failed read the
 * role is unknown until the next one succeeds (see ha_state.h).
 */
void
ha_refresh_local_state(void)
{
	if (ha_load_local_state())
		return;
	ha_local.role = HA_ROLE_NONE;
	ha_publish_local_state();
}
