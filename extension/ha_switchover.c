/*
 * ha_switchover.c
 *		A planned switchover, run on the primary.
 *
 * Only the HA worker calls these.  Each step runs in its own transaction,
 * because several of them cannot share one (a logical slot cannot be created
 * by a transaction that has written; ALTER SYSTEM is not transactional).
 * Errors are caught, logged with their errcode and returned as text: a
 * failed step never takes the worker down.
 */
#include "postgres.h"

#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "ha_shared.h"
#include "ha_conn.h"
#include "ha_guc.h"
#include "ha_timing.h"
#include "ha_demote.h"
#include "ha_events.h"
#include "ha_promote.h"
#include "ha_replication.h"
#include "ha_settings.h"
#include "ha_state.h"
#include "ha_switchover.h"
#include "ha_step.h"

/* ---- planned switchover, run on the primary ---- */

/* what set_fenced() hands its step */
typedef struct FenceArgs
{
	bool		fenced;
	const char *reason;
} FenceArgs;

static void
set_fenced_step(void *arg)
{
	FenceArgs  *a = (FenceArgs *) arg;

	if (a->fenced)
		(void) ha_lock_state_row_in_txn();
	ha_spi_sql("UPDATE %s.ha_state SET fenced = %s", ha_local.schema, a->fenced ? "true" : "false");
	ha_record_event_in_txn(a->fenced ? "fence" : "unfence", a->reason, -1, NULL);
	ha_set_read_only_in_txn(a->fenced);
}

/* The fence up or down (ha_state, an event, read-only); false when the step failed (logged). */
static bool
set_fenced(bool fenced, const char *reason)
{
	FenceArgs	a = {fenced, reason};

	if (!ha_step_run(fenced ? "fencing" : "lifting the fence", set_fenced_step, &a, NULL, 0))
		return false;
	ha_reload_config();
	ha_refresh_local_state();
	return true;
}

/* one LSN read by a query of its own */
typedef struct LsnQuery
{
	const char *sql;
	XLogRecPtr	lsn;
} LsnQuery;

static void
read_lsn_step(void *arg)
{
	LsnQuery   *q = (LsnQuery *) arg;

	q->lsn = ha_parse_lsn(ha_spi_sql("%s", q->sql));
}

/* The LSN the query reads, in a step of its own; invalid when unknown or the step failed (logged). */
static XLogRecPtr
read_lsn(const char *what, const char *sql)
{
	LsnQuery	q = {sql, InvalidXLogRecPtr};

	if (!ha_step_run(what, read_lsn_step, &q, NULL, 0))
		return InvalidXLogRecPtr;
	return q.lsn;
}

/* The standby's confirmed flush position, as its walsender reports it (invalid when unknown). */
static XLogRecPtr
standby_flush_lsn(void)
{
	return read_lsn("reading the standby's position",
					"SELECT max(flush_lsn)::text FROM pg_catalog.pg_stat_replication "
					"WHERE application_name = '" HA_SUBSCRIPTION "'");
}

/* This node's WAL insert position (invalid when it could not be read). */
static XLogRecPtr
current_lsn(void)
{
	return read_lsn("reading the WAL position", "SELECT pg_catalog.pg_current_wal_lsn()::text");
}

/*
 * Whether this primary may hand over to `peer` now, judged on the check just
 * made; false with msg saying why not.  A standby that just subscribed gets
 * a moment to start streaming.
 */
static bool
target_ready(const HaRemoteView *peer, const char *target_name, bool force, char *msg, size_t msglen)
{
	TimestampTz deadline;

	if (ha_local.role != HA_ROLE_PRIMARY)
	{
		snprintf(msg, msglen, "node %s is not the primary", ha_local.node_name);
		return false;
	}
	if (!peer->ever_seen || !peer->reachable)
	{
		snprintf(msg, msglen, "the target \"%s\" is not healthy: %d consecutive failed checks (%s); "
				 "force => true does not help a standby that cannot be reached",
				 peer->name[0] ? peer->name : "peer", peer->consecutive_failures, peer->last_error);
		return false;
	}
	/* judged on the check just made: a name heard before may be another node's */
	if (target_name != NULL && target_name[0] != '\0' && strcmp(target_name, peer->name) != 0)
	{
		snprintf(msg, msglen, "no standby named \"%s\": the standby of node %s is \"%s\"",
				 target_name, ha_local.node_name, peer->name);
		return false;
	}
	if (peer->role != HA_ROLE_STANDBY || peer->needs_rejoin)
	{
		snprintf(msg, msglen, "the target \"%s\" is not a standby ready to take over (%s%s)",
				 peer->name, ha_role_name(peer->role), peer->needs_rejoin ? ", waiting to rejoin" : "");
		return false;
	}
	/* a standby that just subscribed may need a moment to start streaming */
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   Min(ha_response_timeout_ms, HA_STANDBY_STREAMING_WAIT_MAX_MS));
	for (;;)
	{
		bool		streaming;

		ha_monitor_replication();
		SpinLockAcquire(&ha_shared->mutex);
		streaming = ha_shared->standby_streaming;
		SpinLockRelease(&ha_shared->mutex);
		if (streaming || force || GetCurrentTimestamp() >= deadline)
			break;
		ha_sleep_ms(HA_STREAMING_POLL_MS);
	}
	if (!force && ha_shared->lag_seconds * 1000.0 > ha_replication_lag_threshold_ms)
	{
		snprintf(msg, msglen, "the target \"%s\" is %.1f s behind; wait until it catches up, or use force => true",
				 peer->name, ha_shared->lag_seconds);
		return false;
	}
	if (!force && !ha_shared->standby_streaming)
	{
		snprintf(msg, msglen, "the target %s is not receiving changes; use force => true to switch anyway",
				 peer->name);
		return false;
	}
	return true;
}

/*
 * Waits up to response_timeout for the standby to confirm everything this
 * node wrote: *target is this node's position, *flushed the standby's last.
 */
static void
wait_for_standby_flush(XLogRecPtr *target, XLogRecPtr *flushed)
{
	TimestampTz deadline;

	*target = current_lsn();
	deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ha_response_timeout_ms);
	while (GetCurrentTimestamp() < deadline)
	{
		*flushed = standby_flush_lsn();
		if (*target != InvalidXLogRecPtr && *flushed >= *target)
			break;
		ha_sleep_ms(HA_FLUSH_POLL_MS);
	}
}

/*
 * Has the standby promote itself; *new_term is the term it took.  On false
 * (the request failed) the fence here is lifted and msg says why.
 */
static bool
promote_target(const HaRemoteView *peer, int64 *new_term, char *msg, size_t msglen)
{
	char	   *val = NULL;
	char		err[256];

	/* the term it took, read as a column once the promotion is done */
	if (!ha_remote_query(ha_peer_conninfo,
						 psprintf("SELECT %s.ha_promote(%s); SELECT term FROM %s.ha_state",
								  ha_local.schema,
								  quote_literal_cstr(psprintf("switchover from %s", ha_local.node_name)),
								  ha_local.schema),
						 ha_response_timeout_ms * 2, &val, err, sizeof(err)))
	{
		/* did it happen anyway?  the next health check will tell */
		set_fenced(false, psprintf("switchover abandoned: %s", err));
		snprintf(msg, msglen, "promoting %s failed: %s", peer->name, err);
		return false;
	}
	SpinLockAcquire(&ha_shared->mutex);
	*new_term = Max(ha_shared->max_term_seen, ha_local.term) + 1;
	SpinLockRelease(&ha_shared->mutex);
	if (val != NULL)
		*new_term = strtoi64(val, NULL, 10);
	ha_raise_max_term(*new_term);
	return true;
}

/* what the steps of follow_new_primary() share */
typedef struct FollowArgs
{
	const HaRemoteView *peer;
	int64		new_term;
	char	   *old_slot;		/* the slot the standby used to follow us */
	char	   *my_slot;		/* the slot the new primary made for us */
	bool		old_slot_gone;	/* dropped, or not there */
} FollowArgs;

static void
follow_step(void *arg)
{
	FollowArgs *a = (FollowArgs *) arg;
	const char *cur;

	ha_spi_sql("UPDATE %s.ha_state SET role = 'standby', term = GREATEST(term, " INT64_FORMAT "), "
			"primary_name = %s, primary_node_id = %d, peer_node_id = %d, fenced = false, "
			"needs_rejoin = false",
			ha_local.schema, a->new_term, quote_literal_cstr(a->peer->name), a->peer->node_id,
			a->peer->node_id);
	ha_spi_sql("INSERT INTO %s.ha_terms (term, primary_name, primary_node_id, reason) "
			"VALUES (" INT64_FORMAT ", %s, %d, 'switchover') ON CONFLICT (term) DO NOTHING",
			ha_local.schema, a->new_term, quote_literal_cstr(a->peer->name), a->peer->node_id);
	cur = GetConfigOptionResetString("synchronous_standby_names");
	if (cur != NULL && strcmp(cur, HA_SUBSCRIPTION) == 0)
		ha_set_system_setting("synchronous_standby_names", NULL);
}

static void
drop_old_slot_step(void *arg)
{
	FollowArgs *a = (FollowArgs *) arg;
	char	   *active;

	active = ha_spi_sql("SELECT active::text FROM pg_catalog.pg_replication_slots WHERE slot_name = '%s'",
						a->old_slot);
	if (active != NULL && strcmp(active, "false") == 0)
		ha_spi_sql("SELECT pg_catalog.pg_drop_replication_slot('%s')", a->old_slot);
	a->old_slot_gone = (active == NULL || strcmp(active, "false") == 0);
}

static void
subscribe_step(void *arg)
{
	FollowArgs *a = (FollowArgs *) arg;

	ha_create_subscription_in_txn(a->my_slot, false);
}

/*
 * This node becomes the standby of `peer`, primary of `new_term`: its state,
 * then the old slot dropped (our old one is spent), then a subscription over
 * the slot the new primary made for us.  One transaction each, stopping at
 * the first failure (false, msg says which).
 */
static bool
follow_new_primary(const HaRemoteView *peer, int64 new_term, char *msg, size_t msglen)
{
	FollowArgs	a = {peer, new_term, ha_slot_name(peer->node_id), ha_slot_name(ha_local.node_id), false};
	int			tries;

	if (!ha_step_run("following the new primary", follow_step, &a, msg, msglen))
		return false;
	ha_reload_config();
	/* a standby from here on, also if the slot or the subscription fails below */
	ha_refresh_local_state();

	/* the target's walsender may take a moment to let go of the slot */
	for (tries = 0; tries < HA_SLOT_DROP_TRIES; tries++)
	{
		if (!ha_step_run("dropping the old slot", drop_old_slot_step, &a, msg, msglen))
			return false;
		if (a.old_slot_gone)
			break;
		ha_sleep_ms(HA_SLOT_DROP_RETRY_MS);
	}

	if (!ha_step_run("subscribing to the new primary", subscribe_step, &a, msg, msglen))
		return false;
	ha_refresh_local_state();
	return true;
}

/*
 * A planned switchover from this primary to its standby, judged on the
 * check just made: refused unless the standby is healthy, caught up and
 * (when `target_name` is given) so named, unless `force` for lag.  Fences,
 * waits for the standby to confirm the last LSN, hands over the term, ends
 * client sessions but `except_pid`.  On false msg says why; nothing changed
 * unless the failure came after the promotion (msg names the step).
 */
bool
ha_switchover(const char *target_name, bool force, int except_pid, char *msg, size_t msglen)
{
	TimestampTz t0 = GetCurrentTimestamp();
	HaRemoteView peer;
	XLogRecPtr	target;
	XLogRecPtr	flushed = InvalidXLogRecPtr;
	int64		new_term;
	int			ended;

	SpinLockAcquire(&ha_shared->mutex);
	peer = ha_shared->peer;
	SpinLockRelease(&ha_shared->mutex);

	if (!target_ready(&peer, target_name, force, msg, msglen))
		return false;

	/* 1. fence: no new writes here, open sessions ended */
	if (!set_fenced(true, psprintf("switchover to %s", peer.name)))
	{
		snprintf(msg, msglen, "could not fence node %s", ha_local.node_name);
		return false;
	}
	ended = ha_terminate_clients(except_pid);

	/* 2. wait until the standby has flushed everything up to here */
	wait_for_standby_flush(&target, &flushed);
	if (flushed < target && !force)
	{
		set_fenced(false, "switchover abandoned: the target did not catch up");
		snprintf(msg, msglen, "the target %s did not confirm LSN %X/%X within %d ms (it has %X/%X); "
				 "nothing changed", peer.name, LSN_FORMAT_ARGS(target), ha_response_timeout_ms,
				 LSN_FORMAT_ARGS(flushed));
		return false;
	}

	/* 3. promote the target */
	if (!promote_target(&peer, &new_term, msg, msglen))
		return false;

	/* 4. follow the new primary: our old slot is spent, its slot for us is fresh */
	if (!follow_new_primary(&peer, new_term, msg, msglen))
		return false;

	snprintf(msg, msglen, "switched over: %s is the primary of term " INT64_FORMAT
			 ", %s follows it (%d sessions ended, %.0f ms)",
			 peer.name, new_term, ha_local.node_name, ended, ha_ms_since(t0));
	ha_record_event("switchover", msg, ha_ms_since(t0),
					psprintf("{\"target_lsn\": \"%X/%X\", \"confirmed_lsn\": \"%X/%X\", \"forced\": %s}",
							 LSN_FORMAT_ARGS(target), LSN_FORMAT_ARGS(flushed),
							 force ? "true" : "false"));
	SpinLockAcquire(&ha_shared->mutex);
	ha_shared->last_failover = GetCurrentTimestamp();
	ha_shared->last_failover_ms = ha_ms_since(t0);
	SpinLockRelease(&ha_shared->mutex);
	return true;
}
