/*
 * ha_promote.c
 *		Promotion: a standby becomes the primary of a new term.
 *
 * Only the HA worker calls these.  Each step runs in its own transaction
 * (ha_step_run), because several of them cannot share one (a logical slot
 * cannot be created by a transaction that has written; ALTER SYSTEM is not
 * transactional).
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "ha_shared.h"
#include "ha_guc.h"
#include "ha_timing.h"
#include "ha_events.h"
#include "ha_promote.h"
#include "ha_replication.h"
#include "ha_settings.h"
#include "ha_state.h"
#include "ha_step.h"

/* ---- promotion ---- */

static void
count_uncopied_tables(void *arg)
{
	*(char **) arg = ha_step_keep(ha_spi_sql("SELECT count(*) FROM pg_catalog.pg_subscription_rel sr "
											 "JOIN pg_catalog.pg_subscription s ON s.oid = sr.srsubid "
											 "WHERE s.subname = '" HA_SUBSCRIPTION "' AND sr.srsubstate <> 'r'"));
}

bool
ha_initial_copy_done(char *msg, size_t msglen)
{
	char	   *pending = NULL;

	if (!ha_step_run("checking the initial copy", count_uncopied_tables, &pending, msg, msglen))
		return false;
	if (pending != NULL && strcmp(pending, "0") != 0)
	{
		snprintf(msg, msglen, "node %s cannot be promoted: the initial copy of %s of its tables is not "
				 "finished, so it lacks rows the primary had", ha_local.node_name, pending);
		return false;
	}
	return true;
}

/* What the steps of one promotion share. */
typedef struct Promotion
{
	const char *reason;
	bool		switchover;
	int64		term;			/* the new term */
	int32		old_primary_id;
	char	   *split;			/* the subscription's split point, or NULL */
	char	   *slot;			/* the reverse slot, or NULL */
} Promotion;

/* 1. detach and drop the subscription, keeping its split point */
static void
detach_subscription(void *arg)
{
	Promotion  *p = (Promotion *) arg;

	if (ha_local.sub_exists)
	{
		p->split = ha_step_keep(ha_spi_sql("SELECT os.remote_lsn::text FROM pg_catalog.pg_replication_origin_status os "
										   "JOIN pg_catalog.pg_subscription s ON os.external_id = 'pg_' || s.oid "
										   "WHERE s.subname = '" HA_SUBSCRIPTION "'"));
		ha_drop_subscription_in_txn();
	}
	if (ha_spi_sql("SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = '" HA_PUBLICATION "'") == NULL)
		ha_spi_sql("CREATE PUBLICATION " HA_PUBLICATION " FOR TABLE %s",
				   ha_spi_sql("SELECT %s.ha_data_table_list()", ha_local.schema));
}

static void
drop_stale_reverse_slot(void *arg)
{
	Promotion  *p = (Promotion *) arg;

	if (ha_spi_sql("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'", p->slot) != NULL)
		ha_spi_sql("SELECT pg_catalog.pg_drop_replication_slot('%s')", p->slot);
}

/* its own transaction: a slot cannot be created by one that has written */
static void
create_reverse_slot(void *arg)
{
	Promotion  *p = (Promotion *) arg;

	ha_spi_sql("SELECT pg_catalog.pg_create_logical_replication_slot('%s', 'pgoutput')", p->slot);
}

static void
name_synchronous_standby(void *arg)
{
	ha_set_system_setting("synchronous_standby_names", HA_SUBSCRIPTION);
}

/* 4. the new term, and read-only lifted, in one commit */
static void
take_term(void *arg)
{
	Promotion  *p = (Promotion *) arg;

	ha_spi_sql("UPDATE %s.ha_state SET role = 'primary', term = " INT64_FORMAT ", primary_name = %s, "
			   "primary_node_id = %d, fenced = false, needs_rejoin = false, split_lsn = %s",
			   ha_local.schema, p->term, quote_literal_cstr(ha_local.node_name), ha_local.node_id,
			   p->split ? quote_literal_cstr(p->split) : "NULL");
	ha_spi_sql("INSERT INTO %s.ha_terms (term, primary_name, primary_node_id, reason) "
			   "VALUES (" INT64_FORMAT ", %s, %d, %s) ON CONFLICT (term) DO NOTHING",
			   ha_local.schema, p->term, quote_literal_cstr(ha_local.node_name),
			   ha_local.node_id, quote_literal_cstr(p->reason));
	ha_set_read_only_in_txn(false);
}

/*
 * 3. synchronous standby first, so no write of the new term escapes it: the
 * checkpointer publishes the setting to every backend when it processes the
 * reload, which takes it milliseconds; give it HA_SYNC_NAMES_RELOAD_WAIT_MS.
 */
static bool
prepare_synchronous_standby(const Promotion *p, char *msg, size_t msglen)
{
	const char *cur = GetConfigOptionResetString("synchronous_standby_names");

	if (ha_replication_mode == HA_MODE_SEMI_SYNC && !p->switchover)
	{
		/* the standby this semi_sync primary would wait for is the node that just died */
		SpinLockAcquire(&ha_shared->mutex);
		ha_shared->sync_degraded = true;
		SpinLockRelease(&ha_shared->mutex);
		return true;
	}
	if (ha_replication_mode == HA_MODE_ASYNC || (cur != NULL && cur[0] != '\0'))
		return true;
	if (!ha_step_run("taking the new term", name_synchronous_standby, NULL, msg, msglen))
		return false;
	ha_reload_config();
	ha_sleep_ms(HA_SYNC_NAMES_RELOAD_WAIT_MS);
	return true;
}

/* The new term: the one the witness granted, else one past the newest heard of. */
static int64
next_term(int64 granted)
{
	int64		seen;

	if (granted > 0)
		return granted;
	SpinLockAcquire(&ha_shared->mutex);
	seen = Max(ha_shared->max_term_seen, ha_shared->peer.term);
	SpinLockRelease(&ha_shared->mutex);
	return Max(seen, ha_local.term) + 1;
}

/* Whether this node can be promoted at all; when not, msg says why. */
static bool
promotable(bool force, bool *already, char *msg, size_t msglen)
{
	*already = false;
	if (ha_local.role == HA_ROLE_PRIMARY && !ha_local.fenced)
	{
		snprintf(msg, msglen, "node %s is already the primary of term " INT64_FORMAT,
				 ha_local.node_name, ha_local.term);
		*already = true;
		return false;
	}
	if (ha_local.role != HA_ROLE_STANDBY || ha_local.needs_rejoin)
	{
		snprintf(msg, msglen, "node %s is %s%s and cannot be promoted", ha_local.node_name,
				 ha_role_name(ha_local.role), ha_local.needs_rejoin ? " waiting to rejoin" : "");
		return false;
	}
	return force || ha_initial_copy_done(msg, msglen);
}

/* After the commit: the event, and the figures ha_status() shows. */
static void
record_promotion(const Promotion *p, TimestampTz t0)
{
	char	   *detail = psprintf("{\"split_lsn\": %s, \"reverse_slot\": %s, \"promotion_ms\": %.1f}",
								  p->split ? quote_literal_cstr(p->split) : "null",
								  p->slot ? quote_literal_cstr(p->slot) : "null",
								  ha_ms_since(t0));

	/* JSON wants double quotes */
	for (char *c = detail; *c; c++)
		if (*c == '\'')
			*c = '"';
	ha_record_event("promotion", p->reason, ha_ms_since(t0), detail);
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->last_failover = GetCurrentTimestamp();
	ha_shared->last_failover_ms = ha_ms_since(t0);
	SpinLockRelease(&ha_shared->mutex);
	if (ha_replication_mode == HA_MODE_SEMI_SYNC && !p->switchover)
		ha_record_event("sync_degraded", "promoted without a standby: writing asynchronously until one catches up",
						-1, NULL);
}

bool
ha_promote(const char *reason, bool switchover, bool force, int64 granted_term, char *msg, size_t msglen)
{
	TimestampTz t0 = GetCurrentTimestamp();
	Promotion	p = {reason, switchover, 0, 0, NULL, NULL};
	bool		already;

	if (!promotable(force, &already, msg, msglen))
		return already;
	p.old_primary_id = ha_local.primary_node_id ? ha_local.primary_node_id : ha_local.peer_node_id;

	if (!ha_step_run("detaching the subscription", detach_subscription, &p, msg, msglen))
		return false;
	/* 2. the reverse slot, before any write of the new term */
	if (p.old_primary_id > 0)
	{
		p.slot = ha_slot_name(p.old_primary_id);
		if (!ha_step_run("creating the reverse replication slot", drop_stale_reverse_slot, &p, msg, msglen) ||
			!ha_step_run("creating the reverse replication slot", create_reverse_slot, &p, msg, msglen))
			return false;
	}
	if (!prepare_synchronous_standby(&p, msg, msglen))
		return false;
	p.term = next_term(granted_term);
	if (!ha_step_run("taking the new term", take_term, &p, msg, msglen))
		return false;
	ha_reload_config();
	ha_refresh_server_read_only();
	ha_raise_max_term(p.term);
	ha_refresh_local_state();

	snprintf(msg, msglen, "node %s promoted: primary of term " INT64_FORMAT " (%.0f ms)",
			 ha_local.node_name, p.term, ha_ms_since(t0));
	record_promotion(&p, t0);
	return true;
}
