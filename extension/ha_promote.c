/*
 * ha_promote.c
 *		Promotion: a standby becomes the primary of a new term.
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
#include "ha_timing.h"
#include "ha_events.h"
#include "ha_promote.h"
#include "ha_settings.h"
#include "ha_state.h"
#include "ha_step.h"

/* ---- promotion ---- */


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
		ha_txn_begin("crawler_ha: initial copy");
		pending = ha_spi_sql("SELECT count(*) FROM pg_catalog.pg_subscription_rel sr "
						  "JOIN pg_catalog.pg_subscription s ON s.oid = sr.srsubid "
						  "WHERE s.subname = '" HA_SUBSCRIPTION "' AND sr.srsubstate <> 'r'");
		if (pending)
			pending = MemoryContextStrdup(cxt, pending);
		ha_txn_commit();
	}
	PG_CATCH();
	{
		ha_step_failed(cxt, "checking the initial copy", msg, msglen);
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
		ha_txn_begin("crawler_ha: promote: detach subscription");
		if (ha_local.sub_exists)
		{
			split = ha_spi_sql("SELECT os.remote_lsn::text FROM pg_catalog.pg_replication_origin_status os "
							"JOIN pg_catalog.pg_subscription s ON os.external_id = 'pg_' || s.oid "
							"WHERE s.subname = '" HA_SUBSCRIPTION "'");
			if (split)
				split = MemoryContextStrdup(cxt, split);
			ha_spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " DISABLE");
			ha_spi_sql("ALTER SUBSCRIPTION " HA_SUBSCRIPTION " SET (slot_name = NONE)");
			ha_spi_sql("DROP SUBSCRIPTION " HA_SUBSCRIPTION);
		}
		if (ha_spi_sql("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = '" HA_PUBLICATION "'") == NULL)
			ha_spi_sql("CREATE PUBLICATION " HA_PUBLICATION " FOR TABLE %s",
					ha_spi_sql("SELECT %s.ha_data_table_list()", ha_local.schema));
		ha_txn_commit();

		/* 2. the reverse slot, before any write of the new term */
		step = "creating the reverse replication slot";
		if (old_primary_id > 0)
		{
			slot = ha_slot_name(old_primary_id);
			ha_txn_begin("crawler_ha: promote: reverse slot");
			if (ha_spi_sql("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'", slot) != NULL)
				ha_spi_sql("SELECT pg_catalog.pg_drop_replication_slot('%s')", slot);
			ha_txn_commit();
			ha_txn_begin("crawler_ha: promote: reverse slot");
			ha_spi_sql("SELECT pg_catalog.pg_create_logical_replication_slot('%s', 'pgoutput')", slot);
			ha_txn_commit();
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
				ha_txn_begin("crawler_ha: promote: synchronous standby");
				ha_set_system_setting("synchronous_standby_names", HA_SUBSCRIPTION);
				ha_txn_commit();
				ha_reload_config();
				ha_sleep_ms(HA_SYNC_NAMES_RELOAD_WAIT_MS);
			}
		}
		ha_txn_begin("crawler_ha: promote: term");
		{
			int64		seen;

			SpinLockAcquire(&ha_shared->mutex);
			seen = Max(ha_shared->max_term_seen, ha_shared->peer.term);
			SpinLockRelease(&ha_shared->mutex);
			/* with a witness, exactly the term it granted */
			new_term = ha_granted_term > 0 ? ha_granted_term : Max(seen, ha_local.term) + 1;
		}
		ha_spi_sql("UPDATE %s.ha_state SET role = 'primary', term = " INT64_FORMAT ", primary_name = %s, "
				"primary_node_id = %d, fenced = false, needs_rejoin = false, split_lsn = %s",
				ha_local.schema, new_term, quote_literal_cstr(ha_local.node_name), ha_local.node_id,
				split ? quote_literal_cstr(split) : "NULL");
		ha_spi_sql("INSERT INTO %s.ha_terms (term, primary_name, primary_node_id, reason) "
				"VALUES (" INT64_FORMAT ", %s, %d, %s) ON CONFLICT (term) DO NOTHING",
				ha_local.schema, new_term, quote_literal_cstr(ha_local.node_name),
				ha_local.node_id, quote_literal_cstr(reason));
		/* 4. lift read-only */
		ha_set_read_only_in_txn(false);
		ha_txn_commit();
		ha_reload_config();
		ha_refresh_server_read_only();
		ha_raise_max_term(new_term);
		ha_local.role = HA_ROLE_PRIMARY;
		ha_local.term = new_term;
		ha_local.fenced = false;
		ha_local.sub_exists = false;
		strlcpy(ha_local.primary_name, ha_local.node_name, HA_NAME_LEN);
		ha_local.primary_node_id = ha_local.node_id;
		ha_publish_local_state();
	}
	PG_CATCH();
	{
		ha_step_failed(cxt, step, msg, msglen);
		return false;
	}
	PG_END_TRY();

	snprintf(msg, msglen, "node %s promoted: primary of term " INT64_FORMAT " (%.0f ms)",
			 ha_local.node_name, new_term, ha_ms_since(t0));
	{
		char	   *detail = psprintf("{\"split_lsn\": %s, \"reverse_slot\": %s, \"promotion_ms\": %.1f}",
									  split ? quote_literal_cstr(split) : "null",
									  slot ? quote_literal_cstr(slot) : "null",
									  ha_ms_since(t0));

		/* JSON wants double quotes */
		for (char *p = detail; *p; p++)
			if (*p == '\'')
				*p = '"';
		ha_record_event("promotion", reason, ha_ms_since(t0), detail);
	}
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->last_failover = GetCurrentTimestamp();
	ha_shared->last_failover_ms = ha_ms_since(t0);
	SpinLockRelease(&ha_shared->mutex);
	if (ha_replication_mode == HA_MODE_SEMI_SYNC && !switchover)
		ha_record_event("sync_degraded", "promoted without a standby: writing asynchronously until one catches up",
						-1, NULL);
	return true;
}
