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
#include "ha_demote.h"
#include "ha_events.h"
#include "ha_rejoin.h"
#include "ha_settings.h"
#include "ha_state.h"
#include "ha_step.h"

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
	n = ha_spi_sql("WITH ch AS MATERIALIZED (SELECT lsn, xid, pg_catalog.get_byte(data, 0) AS t "
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
			ha_txn_begin("crawler_ha: rejoin: tail check");
			have_old_slot = ha_spi_sql("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'",
									old_slot) != NULL;
			split = peer.split_lsn;
			if (have_old_slot)
			{
				if (split == InvalidXLogRecPtr)
					split = ha_parse_lsn(ha_spi_sql("SELECT confirmed_flush_lsn::text FROM pg_catalog.pg_replication_slots "
											  "WHERE slot_name = '%s'", old_slot));
				tail = tail_changes_in_txn(old_slot, split);
			}
			else
				tail = -1;
			ha_txn_commit();
		}
		PG_CATCH();
		{
			ha_step_failed(cxt, step, msg, msglen);
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

			ha_txn_begin("crawler_ha: rejoin: merge");
			v = ha_spi_sql("SELECT %s.ha_merge_tail(%s, '%X/%X')::text", ha_local.schema,
						have_old_slot ? quote_literal_cstr(old_slot) : "NULL", LSN_FORMAT_ARGS(split));
			if (v)
				summary = MemoryContextStrdup(cxt, v);
			ha_txn_commit();
		}
		PG_CATCH();
		{
			ha_step_failed(cxt, step, msg, msglen);
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
						ha_ms_since(merge_start), summary);
	}

	PG_TRY();
	{
		/* merged, or nothing to merge: the old slot has served its purpose */
		step = "dropping the old slot";
		ha_txn_begin("crawler_ha: rejoin: drop old slot");
		if (have_old_slot)
			ha_spi_sql("SELECT pg_catalog.pg_drop_replication_slot('%s')", old_slot);
		ha_txn_commit();

		step = "subscribing to the new primary";
		ha_txn_begin("crawler_ha: rejoin: subscribe");
		if (ha_spi_sql("SELECT 1 FROM pg_catalog.pg_subscription WHERE subname = '" HA_SUBSCRIPTION "'") != NULL)
		{
			ha_spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " DISABLE");
			ha_spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " SET (slot_name = NONE)");
			ha_spi_sql("DROP SUBSCRIPTION " HA_SUBSCRIPTION);
		}
		if (resync)
			ha_spi_sql("TRUNCATE %s", ha_spi_sql("SELECT %s.ha_data_table_list()", ha_local.schema));
		ha_spi_sql("CREATE SUBSCRIPTION " HA_SUBSCRIPTION " CONNECTION %s PUBLICATION " HA_PUBLICATION
				" WITH (create_slot = false, slot_name = '%s', copy_data = %s, "
				"disable_on_error = true, synchronous_commit = local)",
				quote_literal_cstr(ha_peer_conninfo), my_slot, resync ? "true" : "false");
		ha_spi_sql("UPDATE %s.ha_state SET role = 'standby', term = GREATEST(term, " INT64_FORMAT "), "
				"primary_name = %s, primary_node_id = %d, peer_node_id = %d, fenced = false, "
				"needs_rejoin = false",
				ha_local.schema, peer.term, quote_literal_cstr(peer.name), peer.node_id, peer.node_id);
		ha_set_read_only_in_txn(true);
		ha_txn_commit();
		ha_reload_config();
	}
	PG_CATCH();
	{
		ha_step_failed(cxt, step, msg, msglen);
		return false;
	}
	PG_END_TRY();

	ha_local.needs_rejoin = false;
	ha_local.sub_exists = true;
	ha_local.sub_enabled = true;
	ha_local.term = Max(ha_local.term, peer.term);
	ha_publish_local_state();
	snprintf(msg, msglen, "node %s rejoined as standby of %s (term " INT64_FORMAT ")",
			 ha_local.node_name, peer.name, peer.term);
	ha_record_event("rejoin", msg, ha_ms_since(t0), NULL);
	return true;
}
