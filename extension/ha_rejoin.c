/*
 * ha_rejoin.c
 *		Rejoin: an old primary follows the new one, its unreplicated tail
 *		merged or recopied.
 *
 * Only the HA worker calls these.  Each step runs in its own transaction,
 * because several of them cannot share one (a logical slot cannot be created
 * by a transaction that has written; ALTER SYSTEM is not transactional).
 * Errors are caught, logged with their errcode and returned as text: a
 * failed step never takes the worker down.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "ha_shared.h"
#include "ha_conn.h"
#include "ha_guc.h"
#include "ha_demote.h"
#include "ha_events.h"
#include "ha_rejoin.h"
#include "ha_replication.h"
#include "ha_settings.h"
#include "ha_state.h"
#include "ha_step.h"

/* ---- rejoin ---- */

/* what the steps of a rejoin share */
typedef struct Rejoin
{
	HaRemoteView peer;			/* the new primary, as the last check saw it */
	char	   *old_slot;		/* the slot our old standby used: it holds the tail */
	char	   *my_slot;		/* the slot the new primary made for us */
	bool		have_old_slot;
	XLogRecPtr	split;			/* the last change the new primary received from us */
	int64		tail;			/* changes after the split, as the merge step read them; -1: not known */
	bool		resync;			/* merged: copy the new primary afresh */
	char	   *summary;		/* ha_merge_tail()'s per-table counts (JSON) */
	TimestampTz started;		/* when this attempt began: the event's duration */
	char		event[256];		/* the rejoin event's reason, once subscribed */
} Rejoin;

/*
 * Whether the new primary holds the slot it made for us at its promotion;
 * false with msg saying why not, or why it could not be asked.
 */
static bool
new_primary_has_slot(const Rejoin *r, char *msg, size_t msglen)
{
	char	   *val = NULL;
	char		err[256];

	if (!ha_remote_query(ha_peer_conninfo,
						 psprintf("SELECT count(*) FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'",
								  r->my_slot),
						 ha_response_timeout_ms, &val, err, sizeof(err)))
	{
		snprintf(msg, msglen, "could not ask the new primary for its slot: %s", err);
		return false;
	}
	if (val == NULL || strcmp(val, "1") != 0)
	{
		snprintf(msg, msglen, "the new primary %s has no replication slot %s for this node",
				 r->peer.name, r->my_slot);
		return false;
	}
	return true;
}

static void
split_point_step(void *arg)
{
	Rejoin	   *r = (Rejoin *) arg;

	r->have_old_slot = ha_spi_sql("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'",
								  r->old_slot) != NULL;
	r->split = r->peer.split_lsn;
	if (r->have_old_slot)
	{
		if (r->split == InvalidXLogRecPtr)
			r->split = ha_parse_lsn(ha_spi_sql("SELECT confirmed_flush_lsn::text FROM pg_catalog.pg_replication_slots "
											   "WHERE slot_name = '%s'", r->old_slot));
	}
}

static void
merge_step(void *arg)
{
	Rejoin	   *r = (Rejoin *) arg;
	char	   *v;

	v = ha_spi_sql("SELECT %s.ha_merge_tail(%s, '%X/%X', %d)::text", ha_local.schema,
				   r->have_old_slot ? quote_literal_cstr(r->old_slot) : "NULL", LSN_FORMAT_ARGS(r->split),
				   ha_merge_chunk_rows);
	r->summary = ha_step_keep(v);
	/* the tail's changes, read from the slot in the same pass as its keys */
	v = ha_spi_sql("SELECT (%s::jsonb ->> 'changes')", quote_literal_cstr(r->summary));
	r->tail = v ? strtoi64(v, NULL, 10) : -1;
}

/*
 * Rows this node wrote after the split point (or, without the slot, rows
 * a key comparison finds only here or different here) go to the new
 * primary, by its merge rules; then this node is to copy the new primary
 * afresh (r->resync), unless the slot showed no tail at all (r->tail 0).
 * The tail is counted by the merge's own reading of the slot, not by a
 * reading of its own: decoding the slot is most of a tail's cost.  A failed
 * merge keeps the data and the slot (false, msg says so), and is tried
 * again.
 */
static bool
merge_tail(Rejoin *r, char *msg, size_t msglen)
{
	TimestampTz merge_start = GetCurrentTimestamp();

	if (!ha_step_run("merging the tail into the new primary", merge_step, r, msg, msglen))
	{
		size_t		len = strlen(msg);

		snprintf(msg + len, msglen - len, "; the data and the slot %s are kept",
				 r->have_old_slot ? r->old_slot : "(none)");
		return false;
	}
	if (r->have_old_slot && r->tail == 0)
		return true;			/* nothing written after the split: no copy */
	r->resync = true;
	ha_record_event("merge",
					psprintf("node %s merged what it wrote after split point %X/%X (%s changes%s) into "
							 "the new primary %s; it copies the new primary afresh",
							 ha_local.node_name, LSN_FORMAT_ARGS(r->split),
							 r->tail >= 0 ? psprintf(INT64_FORMAT, r->tail) : "unknown",
							 r->have_old_slot ? "" : ", found by key comparison: no slot", r->peer.name),
					ha_ms_since(merge_start), r->summary);
	return true;
}

static void
drop_old_slot_step(void *arg)
{
	Rejoin	   *r = (Rejoin *) arg;

	if (r->have_old_slot)
		ha_spi_sql("SELECT pg_catalog.pg_drop_replication_slot('%s')", r->old_slot);
}

static void
subscribe_step(void *arg)
{
	Rejoin	   *r = (Rejoin *) arg;

	/* first, as every change that may stop writes: the write fence's lock */
	ha_spi_sql("LOCK TABLE %s.ha_state IN EXCLUSIVE MODE", ha_local.schema);
	ha_drop_subscription_in_txn();
	if (r->resync)
		ha_spi_sql("TRUNCATE %s", ha_spi_sql("SELECT %s.ha_data_table_list()", ha_local.schema));
	ha_create_subscription_in_txn(r->my_slot, r->resync);
	ha_spi_sql("UPDATE %s.ha_state SET role = 'standby', term = GREATEST(term, " INT64_FORMAT "), "
			"primary_name = %s, primary_node_id = %d, peer_node_id = %d, fenced = false, "
			"needs_rejoin = false",
			ha_local.schema, r->peer.term, quote_literal_cstr(r->peer.name), r->peer.node_id,
			r->peer.node_id);

	/*
	 * The event commits with the state: whoever sees this node rejoined in
	 * ha_state finds the rejoin in ha_events too.
	 */
	snprintf(r->event, sizeof(r->event), "node %s rejoined as standby of %s (term " INT64_FORMAT ")",
			 ha_local.node_name, r->peer.name, r->peer.term);
	ha_record_event_in_txn("rejoin", r->event, ha_ms_since(r->started), NULL);
	ha_set_read_only_in_txn(true);
}

/*
 * Makes this old primary a standby of the current one: its unreplicated
 * tail is merged into the new primary (or the node recopied), then it
 * subscribes.  Nothing is dropped before the merge is confirmed.  On false,
 * msg says why (the caller retries with backoff); true also when there was
 * nothing to do (msg says so).
 */
bool
ha_rejoin(char *msg, size_t msglen)
{
	Rejoin		r;

	memset(&r, 0, sizeof(r));
	r.started = GetCurrentTimestamp();
	SpinLockAcquire(&ha_shared->mutex);
	r.peer = ha_shared->peer;
	SpinLockRelease(&ha_shared->mutex);

	if (!(ha_local.role == HA_ROLE_STANDBY && ha_local.needs_rejoin) &&
		!(ha_local.role == HA_ROLE_PRIMARY && r.peer.term > ha_local.term))
	{
		snprintf(msg, msglen, "node %s does not need to rejoin (%s of term " INT64_FORMAT ")",
				 ha_local.node_name, ha_role_name(ha_local.role), ha_local.term);
		return true;
	}
	if (!r.peer.reachable || r.peer.role != HA_ROLE_PRIMARY || r.peer.term < ha_local.term)
	{
		snprintf(msg, msglen, "the peer is not a reachable primary of a term >= " INT64_FORMAT,
				 ha_local.term);
		return false;
	}
	if (ha_local.role == HA_ROLE_PRIMARY &&
		!ha_demote(r.peer.term, r.peer.name, r.peer.node_id, true, "rejoin requested"))
	{
		snprintf(msg, msglen, "could not demote this node");
		return false;
	}

	r.old_slot = ha_slot_name(r.peer.node_id);
	r.my_slot = ha_slot_name(ha_local.node_id);
	if (!new_primary_has_slot(&r, msg, msglen))
		return false;

	if (!ha_step_run("finding the split point", split_point_step, &r, msg, msglen) ||
		!merge_tail(&r, msg, msglen))
		return false;

	/* merged, or nothing to merge: the old slot has served its purpose */
	if (!ha_step_run("dropping the old slot", drop_old_slot_step, &r, msg, msglen) ||
		!ha_step_run("subscribing to the new primary", subscribe_step, &r, msg, msglen))
		return false;
	ereport(LOG,
			(errcode(ERRCODE_SUCCESSFUL_COMPLETION),
			 errmsg("crawler_ha event rejoin: %s", r.event)));
	ha_reload_config();
	ha_refresh_local_state();
	strlcpy(msg, r.event, msglen);
	return true;
}
